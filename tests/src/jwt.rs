//! Signing helpers for tests that need real JWTs: an RS256 key from a committed, test-only
//! fixture, a fresh ES256 key, and a second ES256 key that is *not* in the published JWKS.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

/// TEST-ONLY RSA-2048 private key (unencrypted PKCS#8 DER). Public in this repository.
const TEST_ONLY_RSA_PKCS8: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/jwt/test-only-rsa2048-private-key.pk8.der"
));

pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

/// The key pairs tests sign with.
pub struct TestKeys {
    rng: SystemRandom,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    /// Not in [`TestKeys::jwks_json`].
    ec_wrong: EcdsaKeyPair,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn generate_es256(rng: &SystemRandom) -> EcdsaKeyPair {
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, rng).expect("generate a P-256 key");
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), rng).expect("parse the generated P-256 key")
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

impl TestKeys {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let rsa = RsaKeyPair::from_pkcs8(TEST_ONLY_RSA_PKCS8).expect("parse the RSA fixture");
        let ec = generate_es256(&rng);
        let ec_wrong = generate_es256(&rng);
        Self {
            rng,
            rsa,
            ec,
            ec_wrong,
        }
    }

    /// The JWKS publishing the RSA key (kid "rsa-1") and the ES256 key (kid "ec-1").
    pub fn jwks_json(&self) -> String {
        let rsa: RsaPublicKeyComponents<Vec<u8>> = self.rsa.public().into();
        let point = self.ec.public_key().as_ref();
        // An uncompressed P-256 point: 0x04 || x (32 bytes) || y (32 bytes).
        let (x, y) = (&point[1..33], &point[33..65]);
        json!({"keys": [
            {"kty": "RSA", "kid": RSA_KID, "alg": "RS256", "use": "sig",
             "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "EC", "crv": "P-256", "kid": EC_KID, "alg": "ES256", "use": "sig",
             "x": b64(x), "y": b64(y)},
        ]})
        .to_string()
    }

    /// An RS256 token, header `{"alg":"RS256","typ":"JWT","kid":"rsa-1"}`.
    pub fn sign_rs256(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": RSA_KID});
        let input = signing_input(&header, claims);
        let mut sig = vec![0; self.rsa.public().modulus_len()];
        self.rsa
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("RS256 signing");
        format!("{input}.{}", b64(&sig))
    }

    /// An ES256 token signed by the published key, kid "ec-1".
    pub fn sign_es256(&self, claims: &Value) -> String {
        self.es256_by(&self.ec, claims)
    }

    /// An ES256 token claiming kid "ec-1" but signed by a key that is not in the JWKS.
    pub fn sign_es256_wrong_key(&self, claims: &Value) -> String {
        self.es256_by(&self.ec_wrong, claims)
    }

    /// An unsigned token: header `{"alg":"none"}`, empty signature segment.
    pub fn unsigned_alg_none(claims: &Value) -> String {
        format!("{}.", signing_input(&json!({"alg": "none"}), claims))
    }

    fn es256_by(&self, key: &EcdsaKeyPair, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": EC_KID});
        let input = signing_input(&header, claims);
        let sig = key
            .sign(&self.rng, input.as_bytes())
            .expect("ES256 signing");
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Claims for `subject` with `roles`, issued now (`iat` = `nbf` = now) and expiring
/// `expires_in_secs` from now (negative for an already expired token).
pub fn claims(
    subject: &str,
    roles: &[&str],
    issuer: &str,
    audience: &str,
    expires_in_secs: i64,
) -> Value {
    let now = now_secs();
    json!({
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "roles": roles,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(expires_in_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use assurance_runtime::auth::jwt::{JwtError, JwtVerifier, LEEWAY_SECS};

    const ISS: &str = "https://issuer.test";
    const AUD: &str = "assurance";

    fn verifier(keys: &TestKeys) -> JwtVerifier {
        JwtVerifier::from_jwks(&keys.jwks_json(), ISS, AUD).expect("JWKS of the test keys")
    }

    #[test]
    fn jwt_test_keys_round_trip() {
        let keys = TestKeys::new();
        let v = verifier(&keys);
        assert_eq!(v.key_count(), 2);
        let c = claims("alice", &["reader"], ISS, AUD, 300);
        for token in [keys.sign_rs256(&c), keys.sign_es256(&c)] {
            let got = v.verify(&token, now_secs()).expect("valid token");
            assert_eq!(got.subject, "alice");
            assert_eq!(got.roles, vec!["reader".to_owned()]);
            assert_eq!(got.services, None);
        }
    }

    #[test]
    fn jwt_test_keys_rejections() {
        let keys = TestKeys::new();
        let v = verifier(&keys);
        let c = claims("alice", &[], ISS, AUD, 300);
        assert_eq!(
            v.verify(&keys.sign_es256_wrong_key(&c), now_secs()),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            v.verify(&TestKeys::unsigned_alg_none(&c), now_secs()),
            Err(JwtError::UnsupportedAlgorithm("none".into()))
        );
        let expired = claims("alice", &[], ISS, AUD, -(LEEWAY_SECS + 60));
        assert_eq!(
            v.verify(&keys.sign_rs256(&expired), now_secs()),
            Err(JwtError::Expired)
        );
        let other_aud = claims("alice", &[], ISS, "someone-else", 300);
        assert_eq!(
            v.verify(&keys.sign_rs256(&other_aud), now_secs()),
            Err(JwtError::WrongAudience)
        );
    }

    #[test]
    fn jwt_fixture_is_rsa_2048() {
        let keys = TestKeys::new();
        assert_eq!(keys.rsa.public().modulus_len(), 256);
    }
}
