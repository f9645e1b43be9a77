//! Signature verification for jsonwebtoken on `ring`, which rustls already builds into this
//! binary. jsonwebtoken's pure-Rust backend verifies an RSA-2048 signature several times slower
//! (big integers without assembly) and an ES256 one about ten times slower; with ring the
//! per-request cost stays within the latency budget (see `benches/auth.rs`).
//!
//! Only verification is swapped: signing (used by tests, never by the service) stays on
//! jsonwebtoken's RustCrypto backend. jsonwebtoken still decides which algorithm may run (the
//! `Validation` pinned by each key); this module only executes it.

use std::sync::LazyLock;

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result, new_error};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature::{self as ring_sig, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: RUST_CRYPTO.signer_factory,
    verifier_factory: new_verifier,
    key_utils: RUST_CRYPTO.key_utils.clone(),
});

/// Makes ring the process-wide jsonwebtoken verifier. Idempotent; call it before any token is
/// signed or verified (jsonwebtoken fixes its provider on first use). Returns false if another
/// provider was fixed first, in which case verification is correct but slower.
pub fn install() -> bool {
    let provider: &'static CryptoProvider = &PROVIDER;
    match provider.install_default() {
        Ok(()) => true,
        Err(installed) => std::ptr::eq(installed, provider),
    }
}

enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Encoded(Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    ring_algorithm: RingAlgorithm,
    key: PublicKey,
}

enum RingAlgorithm {
    Rsa(&'static ring_sig::RsaParameters),
    Other(&'static dyn VerificationAlgorithm),
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let ring_algorithm = match algorithm {
        // HMAC is never accepted from a JWKS (see `keys`); it is delegated only so the provider
        // stays complete.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return (RUST_CRYPTO.verifier_factory)(algorithm, key);
        }
        // ring's RSA parameters refuse moduli below 2048 bits, like `keys::MIN_RSA_BITS`.
        Algorithm::RS256 => RingAlgorithm::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => RingAlgorithm::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => RingAlgorithm::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => RingAlgorithm::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => RingAlgorithm::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => RingAlgorithm::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA512),
        // JWS carries ECDSA signatures as fixed-width r || s, not ASN.1.
        Algorithm::ES256 => RingAlgorithm::Other(&ring_sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => RingAlgorithm::Other(&ring_sig::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDSA => RingAlgorithm::Other(&ring_sig::ED25519),
        _ => return Err(new_error(ErrorKind::UnsupportedAlgorithm)),
    };
    // The key's family must be the algorithm's: an RSA key never verifies an EC signature, and
    // no public key is ever used as an HMAC secret.
    if key.family() != algorithm.family() || key.family() == AlgorithmFamily::Hmac {
        return Err(new_error(ErrorKind::InvalidKeyFormat));
    }
    let key = match (key.kind(), &ring_algorithm) {
        (DecodingKeyKind::RsaModulusExponent { n, e }, RingAlgorithm::Rsa(_)) => PublicKey::Rsa {
            n: n.clone(),
            e: e.clone(),
        },
        // PEM/DER keys: PKCS#1 RSAPublicKey for RSA, SEC1 point for EC, raw 32 bytes for Ed25519,
        // which is what ring's `UnparsedPublicKey` expects.
        (DecodingKeyKind::SecretOrDer(bytes), _) => PublicKey::Encoded(bytes.clone()),
        (DecodingKeyKind::RsaModulusExponent { .. }, RingAlgorithm::Other(_)) => {
            return Err(new_error(ErrorKind::InvalidKeyFormat));
        }
    };
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        ring_algorithm,
        key,
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        let verified = match (&self.key, &self.ring_algorithm) {
            (PublicKey::Rsa { n, e }, RingAlgorithm::Rsa(params)) => {
                RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
            (PublicKey::Encoded(bytes), RingAlgorithm::Rsa(params)) => {
                UnparsedPublicKey::new(*params, bytes).verify(message, signature)
            }
            (PublicKey::Encoded(bytes), RingAlgorithm::Other(params)) => {
                UnparsedPublicKey::new(*params, bytes).verify(message, signature)
            }
            (PublicKey::Rsa { .. }, RingAlgorithm::Other(_)) => Err(ring::error::Unspecified),
        };
        verified.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::crypto::sign;
    use jsonwebtoken::{DecodingKey, EncodingKey};

    use super::*;

    /// Signs with jsonwebtoken's RustCrypto backend and verifies with ring: the two agree on the
    /// JWS encodings (fixed-width ECDSA, PKCS#1 v1.5 and PSS padding).
    fn round_trip(encoding: &EncodingKey, decoding: &DecodingKey, algorithm: Algorithm) {
        let message = b"header.payload";
        let signature = sign(message, encoding, algorithm).unwrap();
        let raw = base64_url_decode(&signature);
        let verifier = new_verifier(&algorithm, decoding).unwrap();
        assert!(verifier.verify(message, &raw).is_ok(), "{algorithm:?} does not verify");
        assert!(
            verifier.verify(b"header.tampered", &raw).is_err(),
            "{algorithm:?} accepts a tampered message"
        );
    }

    fn base64_url_decode(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn ring_verifies_what_rust_crypto_signs_for_every_family() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;

        let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let rsa_encoding = EncodingKey::from_rsa_der(rsa.to_pkcs1_der().unwrap().as_bytes());
        let rsa_decoding = DecodingKey::from_rsa_raw_components(&rsa.n().to_bytes_be(), &rsa.e().to_bytes_be());
        for algorithm in AlgorithmFamily::Rsa.algorithms() {
            round_trip(&rsa_encoding, &rsa_decoding, *algorithm);
        }

        let p256 = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let p256_encoding = EncodingKey::from_ec_der(p256.to_pkcs8_der().unwrap().as_bytes());
        let p256_decoding = DecodingKey::from_ec_der(p256.public_key().to_encoded_point(false).as_bytes());
        round_trip(&p256_encoding, &p256_decoding, Algorithm::ES256);

        let p384 = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let p384_encoding =
            EncodingKey::from_ec_der(p384::pkcs8::EncodePrivateKey::to_pkcs8_der(&p384).unwrap().as_bytes());
        let p384_point = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&p384.public_key(), false);
        round_trip(
            &p384_encoding,
            &DecodingKey::from_ec_der(p384_point.as_bytes()),
            Algorithm::ES384,
        );

        let ed = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let ed_encoding = EncodingKey::from_ed_der(
            ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&ed)
                .unwrap()
                .as_bytes(),
        );
        round_trip(
            &ed_encoding,
            &DecodingKey::from_ed_der(&ed.verifying_key().to_bytes()),
            Algorithm::EdDSA,
        );
    }

    #[test]
    fn a_key_of_another_family_is_refused() {
        let ec = DecodingKey::from_ec_der(&[4u8; 65]);
        assert!(new_verifier(&Algorithm::RS256, &ec).is_err());
        let rsa = DecodingKey::from_rsa_raw_components(&[0xc1; 256], &[1, 0, 1]);
        assert!(new_verifier(&Algorithm::ES256, &rsa).is_err());
        assert!(new_verifier(&Algorithm::EdDSA, &rsa).is_err());
    }
}
