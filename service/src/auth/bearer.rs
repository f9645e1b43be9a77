//! Reading `Authorization: Bearer <token>` strictly (RFC 6750 §2.1), shared by the JWT verifier and
//! the machine admin credential. Anything ambiguous is refused before any cryptography runs.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;

/// Tokens longer than this are refused unparsed: real access tokens are 1–3 KiB, and a cap keeps
/// a hostile header from costing base64 and JSON work (the HTTP layer's own limit is far larger).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The bearer token of the request, or why there is none.
///
/// A missing header or another scheme (`Basic ...`) is `Missing`, so the challenge carries no error
/// code (RFC 6750 §3.1: the client did not attempt bearer authentication). A bearer header that is
/// malformed (no token, two tokens, stray characters, several `Authorization` headers, oversized)
/// is `Invalid`.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::Missing(
            "send an Authorization: Bearer <token> header".into(),
        ));
    };
    if values.next().is_some() {
        return Err(AuthError::Invalid("more than one Authorization header".into()));
    }
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(AuthError::Invalid(format!(
            "the bearer token is larger than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not visible ASCII".into()))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing(
            "the Authorization header must use the Bearer scheme".into(),
        ));
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Invalid("the Bearer scheme carries no token".into()));
    }
    if !token.bytes().all(is_b64token_byte) {
        return Err(AuthError::Invalid(
            "the Authorization header must carry exactly one bearer token".into(),
        ));
    }
    Ok(token)
}

/// RFC 6750 `b64token`: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, then `"="` padding.
/// A space here means two tokens, which is refused rather than guessed at.
fn is_b64token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn accepts_one_bearer_token_with_any_scheme_case() {
        assert_eq!(bearer_token(&headers(&["Bearer abc.def.ghi"])).unwrap(), "abc.def.ghi");
        assert_eq!(bearer_token(&headers(&["bearer abc"])).unwrap(), "abc");
    }

    #[test]
    fn missing_header_and_other_schemes_are_missing_credentials() {
        assert!(matches!(bearer_token(&HeaderMap::new()), Err(AuthError::Missing(_))));
        assert!(matches!(
            bearer_token(&headers(&["Basic dXNlcjpwYXNz"])),
            Err(AuthError::Missing(_))
        ));
    }

    #[test]
    fn malformed_bearer_headers_are_invalid() {
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer a\tb"] {
            let Ok(value) = bad.parse() else { continue };
            let mut map = HeaderMap::new();
            map.insert(AUTHORIZATION, value);
            assert!(matches!(bearer_token(&map), Err(AuthError::Invalid(_))), "{bad:?}");
        }
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn oversized_tokens_are_invalid() {
        let big = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        let err = bearer_token(&headers(&[&big])).unwrap_err();
        assert!(
            matches!(err, AuthError::Invalid(ref m) if m.contains("larger than")),
            "{err}"
        );
        let fits = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert!(bearer_token(&headers(&[&fits])).is_ok());
    }
}
