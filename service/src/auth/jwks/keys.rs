//! From a JWKS document to verification keys. The algorithm a key may verify is decided here, from
//! the key itself (`kty`, `crv`, `alg`), and never from a token: that is what stops `alg: none`,
//! HMAC-with-the-public-key and other algorithm-substitution tricks.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, Validation};

/// Smaller RSA moduli are refused: 2048 bits is the floor of current guidance (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// A JWKS larger than this is refused; real ones hold a handful of keys in a few KiB.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One usable key: the decoding key and the validation rules (algorithms pinned by the key).
pub struct VerifyingKey {
    pub decoding: DecodingKey,
    pub validation: Validation,
}

/// The keys of one successful JWKS fetch, by `kid`.
#[derive(Default)]
pub struct KeySet {
    pub keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// A parsed JWKS and the keys it skipped (with why), for the log.
pub struct ParsedJwks {
    pub set: KeySet,
    pub skipped: Vec<String>,
}

#[derive(serde::Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS. Keys that cannot be used for signature verification are skipped one by one (an
/// IdP may publish encryption keys or curves we do not support beside the signing key); a document
/// with no usable key at all is an error, so a broken JWKS never replaces working keys.
pub fn parse_jwks(body: &[u8], template: &Validation) -> Result<ParsedJwks, String> {
    let raw: RawJwks = serde_json::from_slice(body).map_err(|e| format!("the JWKS is not a JSON key set: {e}"))?;
    let mut set = KeySet::default();
    let mut skipped = Vec::new();
    for (index, value) in raw.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_string);
        let label = kid.clone().unwrap_or_else(|| format!("#{index}"));
        match verifying_key(value, template) {
            Ok(key) => {
                let kid = kid.expect("verifying_key requires a kid");
                if set.keys.insert(kid.clone(), key).is_some() {
                    skipped.push(format!("{kid}: duplicate kid, the last one wins"));
                }
            }
            Err(reason) => skipped.push(format!("{label}: {reason}")),
        }
    }
    if set.is_empty() {
        let reasons = if skipped.is_empty() {
            "it lists no keys".to_string()
        } else {
            skipped.join("; ")
        };
        return Err(format!("the JWKS has no usable signing key ({reasons})"));
    }
    Ok(ParsedJwks { set, skipped })
}

fn verifying_key(value: serde_json::Value, template: &Validation) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    if jwk.common.key_id.as_deref().is_none_or(str::is_empty) {
        return Err("no kid (keys are selected by kid)".into());
    }
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key (use is not \"sig\")".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops does not include \"verify\"".into());
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key material: {e}"))?;
    let algorithms = algorithms_for(&jwk, &decoding)?;
    let mut validation = template.clone();
    validation.algorithms = algorithms;
    Ok(VerifyingKey { decoding, validation })
}

/// The algorithms this key may verify, from its type and curve, narrowed by its `alg` if present.
fn algorithms_for(jwk: &Jwk, decoding: &DecodingKey) -> Result<Vec<Algorithm>, String> {
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => {
            Some(Algorithm::try_from(alg).map_err(|_| format!("alg {alg:?} is not a supported signature algorithm"))?)
        }
    };
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            let bits = rsa_modulus_bits(decoding);
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is below {MIN_RSA_BITS}"));
            }
            AlgorithmFamily::Rsa.algorithms().to_vec()
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            ref other => return Err(format!("EC curve {other:?} is not supported (P-256, P-384)")),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            ref other => return Err(format!("OKP curve {other:?} is not supported (Ed25519)")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (oct) keys are never accepted from a JWKS".into());
        }
        _ => return Err("unsupported key type (RSA, EC and OKP are supported)".into()),
    };
    match declared {
        None => Ok(by_type),
        Some(alg) if by_type.contains(&alg) => Ok(vec![alg]),
        Some(alg) => Err(format!("alg {alg:?} does not match the key type")),
    }
}

/// Bit length of the big-endian modulus, leading zero bits excluded.
fn rsa_modulus_bits(decoding: &DecodingKey) -> usize {
    match decoding.kind() {
        DecodingKeyKind::RsaModulusExponent { n, .. } => match n.iter().position(|b| *b != 0) {
            Some(first) => (n.len() - first) * 8 - n[first].leading_zeros() as usize,
            None => 0,
        },
        DecodingKeyKind::SecretOrDer(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Validation {
        Validation::new(Algorithm::RS256)
    }

    fn rsa_jwk(kid: &str, modulus: &[u8]) -> serde_json::Value {
        let key = DecodingKey::from_rsa_raw_components(modulus, &[1, 0, 1]);
        let mut jwk = serde_json::to_value(Jwk::from_decoding_key(&key, None).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk
    }

    #[test]
    fn modulus_bit_length_ignores_leading_zeros() {
        let mut modulus = vec![0xffu8; 256];
        assert_eq!(
            rsa_modulus_bits(&DecodingKey::from_rsa_raw_components(&modulus, &[1])),
            2048
        );
        modulus[0] = 0x01;
        assert_eq!(
            rsa_modulus_bits(&DecodingKey::from_rsa_raw_components(&modulus, &[1])),
            2041
        );
        modulus.insert(0, 0);
        assert_eq!(
            rsa_modulus_bits(&DecodingKey::from_rsa_raw_components(&modulus, &[1])),
            2041
        );
    }

    #[test]
    fn symmetric_keys_and_encryption_keys_are_skipped() {
        let body = json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]});
        let err = parse_jwks(body.to_string().as_bytes(), &template()).err().unwrap();
        assert!(err.contains("symmetric"), "{err}");
        assert!(err.contains("not a signature key"), "{err}");
    }

    #[test]
    fn ec_key_alg_comes_from_the_curve_and_a_mismatching_alg_is_refused() {
        let p256 = json!({"kty": "EC", "kid": "ec", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let parsed = parse_jwks(json!({"keys": [p256.clone()]}).to_string().as_bytes(), &template()).unwrap();
        assert_eq!(
            parsed.set.get("ec").unwrap().validation.algorithms,
            vec![Algorithm::ES256]
        );

        let mut wrong = p256;
        wrong["alg"] = json!("ES384");
        let err = parse_jwks(json!({"keys": [wrong]}).to_string().as_bytes(), &template())
            .err()
            .unwrap();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn keys_without_kid_and_unknown_types_are_skipped_but_others_load() {
        let body = json!({"keys": [
            {"kty": "EC", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "OKP", "kid": "x", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]});
        let parsed = parse_jwks(body.to_string().as_bytes(), &template()).unwrap();
        assert_eq!(parsed.set.kids(), vec!["ed"]);
        assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
    }

    #[test]
    fn rsa_keys_without_alg_accept_the_rsa_family_only() {
        let body = json!({"keys": [rsa_jwk("r", &[0xc1u8; 256])]});
        let parsed = parse_jwks(body.to_string().as_bytes(), &template()).unwrap();
        let algorithms = &parsed.set.get("r").unwrap().validation.algorithms;
        assert_eq!(algorithms.as_slice(), AlgorithmFamily::Rsa.algorithms());
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let body = json!({"keys": [rsa_jwk("r", &[0xc1u8; 64])]});
        let err = parse_jwks(body.to_string().as_bytes(), &template()).err().unwrap();
        assert!(err.contains("below 2048"), "{err}");
    }
}
