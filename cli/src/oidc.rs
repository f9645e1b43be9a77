//! OAuth2 client credentials (RFC 6749 4.4) against an OpenID Connect issuer: discovery of the token
//! endpoint (`/.well-known/openid-configuration`) and the token request. Hand-written on the CLI's
//! own reqwest client rather than the `oauth2` crate, whose reqwest integration is pinned to
//! reqwest 0.12 (this workspace uses 0.13 with rustls); the grant is one form POST.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// How the client authenticates to the token endpoint (RFC 6749 2.3.1; OIDC Core 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (`client_secret_basic`).
    #[value(name = "basic")]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    #[value(name = "post")]
    ClientSecretPost,
}

/// A confidential client and what it asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    /// Sent as `audience` (Auth0 and others need it; Keycloak ignores it).
    pub audience: Option<String>,
    pub auth_method: AuthMethod,
}

/// The token endpoint found by discovery, and the methods the issuer says it accepts.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub token_endpoint: Url,
    pub auth_methods: Option<Vec<String>>,
}

/// An access token and when it stops being usable (Unix seconds; `None`: unknown).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_at: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the issuer at {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url} answered {status} {error}{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        url: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    #[error("{0}")]
    Policy(String),
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Client secrets travel only over HTTPS, or plain HTTP to this machine (a local test issuer or a
/// port-forward).
pub fn check_transport(url: &Url, what: &str) -> Result<(), OidcError> {
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(OidcError::Policy(format!(
            "{what} {url} must be https (plain http only to localhost): a client secret is sent to it"
        ))),
    }
}

fn transport(url: &Url, error: reqwest::Error) -> OidcError {
    // The chain carries the useful part (e.g. "invalid peer certificate: UnknownIssuer"); the URL
    // is said once, by the caller.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    OidcError::Transport {
        url: url.to_string(),
        message,
    }
}

/// `GET {issuer}/.well-known/openid-configuration`; its `issuer` must be the one asked for
/// (OpenID Connect Discovery 4.3), so a misdirected or spoofed document is refused.
pub async fn discover(http: &reqwest::Client, issuer: &Url) -> Result<Discovered, OidcError> {
    check_transport(issuer, "the issuer")?;
    let base = issuer.as_str().trim_end_matches('/');
    let url = Url::parse(&format!("{base}/.well-known/openid-configuration"))
        .map_err(|e| OidcError::Policy(format!("the issuer {issuer} does not make a discovery URL: {e}")))?;
    let response = http.get(url.clone()).send().await.map_err(|e| transport(&url, e))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| transport(&url, e))?;
    if status != 200 {
        return Err(OidcError::Refused {
            url: url.to_string(),
            status,
            error: "no discovery document".into(),
            description: Some(String::from_utf8_lossy(&body).chars().take(200).collect()),
        });
    }
    let document: Value = serde_json::from_slice(&body).map_err(|e| OidcError::Invalid {
        url: url.to_string(),
        message: format!("the discovery document is not JSON: {e}"),
    })?;
    let invalid = |message: String| OidcError::Invalid {
        url: url.to_string(),
        message,
    };
    let declared = document["issuer"].as_str().unwrap_or_default();
    if declared.trim_end_matches('/') != base {
        return Err(invalid(format!(
            "the document names the issuer {declared:?}, not {base:?}"
        )));
    }
    let endpoint = document["token_endpoint"]
        .as_str()
        .ok_or_else(|| invalid("the document has no token_endpoint".into()))?;
    let token_endpoint =
        Url::parse(endpoint).map_err(|e| invalid(format!("token_endpoint {endpoint:?} is not a URL: {e}")))?;
    check_transport(&token_endpoint, "the token endpoint")?;
    let auth_methods = document["token_endpoint_auth_methods_supported"]
        .as_array()
        .map(|methods| methods.iter().filter_map(|m| m.as_str().map(str::to_string)).collect());
    Ok(Discovered {
        token_endpoint,
        auth_methods,
    })
}

/// The method to use when none is asked for: Basic unless the issuer says it accepts only POST.
pub fn preferred_auth_method(advertised: Option<&[String]>) -> AuthMethod {
    match advertised {
        Some(methods)
            if !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post") =>
        {
            AuthMethod::ClientSecretPost
        }
        _ => AuthMethod::ClientSecretBasic,
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: Option<String>,
    /// A number per RFC 6749; some servers send a string.
    expires_in: Option<Value>,
}

/// The client-credentials grant at `token_endpoint`.
pub async fn request_token(
    http: &reqwest::Client,
    token_endpoint: &Url,
    client: &ClientCredentials,
) -> Result<IssuedToken, OidcError> {
    check_transport(token_endpoint, "the token endpoint")?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &client.scope {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &client.audience {
        form.append_pair("audience", audience);
    }
    let mut request = http
        .post(token_endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match client.auth_method {
        AuthMethod::ClientSecretBasic => {
            // RFC 6749 2.3.1: both parts are form-urlencoded before the Basic encoding.
            let credentials = format!(
                "{}:{}",
                form_encode(&client.client_id),
                form_encode(&client.client_secret)
            );
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        AuthMethod::ClientSecretPost => {
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", &client.client_secret);
        }
    }
    let requested_at = now();
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await
        .map_err(|e| transport(token_endpoint, e))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| transport(token_endpoint, e))?;
    if !(200..300).contains(&status) {
        // RFC 6749 5.2: {"error": "...", "error_description": "..."}.
        let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Err(OidcError::Refused {
            url: token_endpoint.to_string(),
            status,
            error: envelope["error"].as_str().unwrap_or("error").to_string(),
            description: envelope["error_description"]
                .as_str()
                .map(str::to_string)
                .or_else(|| Some(String::from_utf8_lossy(&body).chars().take(200).collect())),
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| OidcError::Invalid {
        url: token_endpoint.to_string(),
        message: format!("the token answer is not a token response: {e}"),
    })?;
    if let Some(kind) = &answer.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(OidcError::Invalid {
            url: token_endpoint.to_string(),
            message: format!("token_type {kind:?} is not Bearer"),
        });
    }
    let expires_in = answer.expires_in.as_ref().and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let expires_at = expires_in
        .map(|seconds| requested_at.saturating_add(seconds))
        .or_else(|| jwt_expiry(&answer.access_token));
    Ok(IssuedToken {
        access_token: answer.access_token,
        expires_at,
    })
}

/// The `exp` claim of a JWT, read without verifying it (only to know when to ask again; the
/// service verifies the token).
pub fn jwt_expiry(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["exp"].as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_only_over_https_or_to_this_machine() {
        for ok in [
            "https://idp.example/realms/x",
            "http://127.0.0.1:8080/realms/x",
            "http://localhost:1/t",
            "http://[::1]:1/t",
        ] {
            assert!(check_transport(&Url::parse(ok).unwrap(), "x").is_ok(), "{ok}");
        }
        for refused in ["http://idp.example/realms/x", "http://10.0.0.1/t", "ftp://127.0.0.1/t"] {
            assert!(
                check_transport(&Url::parse(refused).unwrap(), "x").is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn basic_is_preferred_unless_only_post_is_advertised() {
        let methods = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(preferred_auth_method(None), AuthMethod::ClientSecretBasic);
        assert_eq!(
            preferred_auth_method(Some(&methods(&["client_secret_post", "client_secret_basic"]))),
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            preferred_auth_method(Some(&methods(&["client_secret_post", "private_key_jwt"]))),
            AuthMethod::ClientSecretPost
        );
    }

    #[test]
    fn jwt_expiry_reads_the_exp_claim() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000,"sub":"a"}"#);
        assert_eq!(jwt_expiry(&format!("e30.{payload}.sig")), Some(1_700_000_000));
        assert_eq!(jwt_expiry("opaque-token"), None);
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
