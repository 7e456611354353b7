//! Tests of JWT verification: algorithms, keys, claims, leeway and the refusals.
use super::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const ISS: &str = "https://issuer.example";
const AUD: &str = "assurance";
/// The test-only RSA key shared with `tests/src/jwt.rs`.
const RSA_PKCS8: &[u8] =
    include_bytes!("../../../tests/fixtures/jwt/test-only-rsa2048-private-key.pk8.der");

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Signer {
    rng: SystemRandom,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ec_other: EcdsaKeyPair,
}

fn ec_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, rng).expect("generate P-256 key");
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), rng).expect("parse P-256 key")
}

impl Signer {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let rsa = RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("fixture RSA key");
        let ec = ec_key(&rng);
        let ec_other = ec_key(&rng);
        Self {
            rng,
            rsa,
            ec,
            ec_other,
        }
    }

    fn rsa_jwk(&self) -> Value {
        let c: RsaPublicKeyComponents<Vec<u8>> = self.rsa.public().into();
        json!({"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
               "n": b64(&c.n), "e": b64(&c.e)})
    }

    fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
        let point = key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
               "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    fn jwks(&self) -> String {
        json!({"keys": [self.rsa_jwk(), Self::ec_jwk(&self.ec, "ec-1")]}).to_string()
    }

    fn verifier(&self) -> JwtVerifier {
        JwtVerifier::from_jwks(&self.jwks(), ISS, AUD).expect("jwks")
    }

    fn signing_input(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }

    fn rs256_with(&self, header: &Value, claims: &Value) -> String {
        let input = Self::signing_input(header, claims);
        let mut sig = vec![0; self.rsa.public().modulus_len()];
        self.rsa
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("rsa sign");
        format!("{input}.{}", b64(&sig))
    }

    fn rs256(&self, claims: &Value) -> String {
        self.rs256_with(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
            claims,
        )
    }

    fn es256_by(&self, key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let input = Self::signing_input(header, claims);
        let sig = key.sign(&self.rng, input.as_bytes()).expect("ec sign");
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn es256(&self, claims: &Value) -> String {
        self.es256_by(
            &self.ec,
            &json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}),
            claims,
        )
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "roles": ["reader", "writer"],
        "services": ["risk"], "iat": NOW, "nbf": NOW, "exp": NOW + 300,
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    if let Some(obj) = base.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
    base
}

fn without(mut base: Value, key: &str) -> Value {
    if let Some(obj) = base.as_object_mut() {
        obj.remove(key);
    }
    base
}

fn expected() -> Claims {
    Claims {
        subject: "alice".into(),
        roles: vec!["reader".into(), "writer".into()],
        services: Some(vec!["risk".into()]),
        expires: NOW + 300,
    }
}

#[test]
fn jwt_valid_rs256_and_es256_accepted() {
    let s = Signer::new();
    let v = s.verifier();
    assert_eq!(v.key_count(), 2);
    assert_eq!(v.verify(&s.rs256(&claims()), NOW), Ok(expected()));
    assert_eq!(v.verify(&s.es256(&claims()), NOW), Ok(expected()));
}

#[test]
fn jwt_optional_claims_default() {
    let s = Signer::new();
    let v = s.verifier();
    let c = without(without(without(claims(), "roles"), "services"), "nbf");
    let got = v.verify(&s.es256(&c), NOW).expect("valid");
    assert!(got.roles.is_empty());
    assert_eq!(got.services, None);
}

#[test]
fn jwt_without_kid_tries_every_key_of_the_kty() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256"}), &claims());
    assert_eq!(v.verify(&t, NOW), Ok(expected()));
    let t = s.rs256_with(&json!({"alg": "RS256", "typ": "at+jwt"}), &claims());
    assert_eq!(v.verify(&t, NOW), Ok(expected()));
    let t = s.es256_by(&s.ec_other, &json!({"alg": "ES256"}), &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::BadSignature));
}

#[test]
fn jwt_expiry_and_leeway() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256(&claims());
    let exp = NOW + 300;
    assert!(v.verify(&t, exp).is_ok());
    assert!(v.verify(&t, exp + LEEWAY_SECS - 1).is_ok());
    assert_eq!(v.verify(&t, exp + LEEWAY_SECS), Err(JwtError::Expired));
    assert_eq!(v.verify(&t, exp + 3600), Err(JwtError::Expired));
    let t = s.es256(&without(claims(), "exp"));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::MissingClaim("exp")));
    let t = s.es256(&with(claims(), "exp", json!("soon")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "exp", json!(1.7e9 + 300.5)));
    assert_eq!(
        v.verify(&t, NOW).map(|c| c.expires),
        Ok(1_700_000_300),
        "fractional NumericDate is floored"
    );
}

#[test]
fn jwt_not_before() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256(&with(claims(), "nbf", json!(NOW + 120)));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::NotYetValid));
    let t = s.es256(&with(claims(), "nbf", json!(NOW + LEEWAY_SECS)));
    assert!(v.verify(&t, NOW).is_ok(), "within leeway");
}

#[test]
fn jwt_issuer_and_audience() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256(&with(claims(), "iss", json!("https://evil.example")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::WrongIssuer));
    let t = s.es256(&with(claims(), "iss", json!(format!("{ISS}/"))));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::WrongIssuer));
    let t = s.es256(&without(claims(), "iss"));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::MissingClaim("iss")));
    let t = s.es256(&with(claims(), "aud", json!("other")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::WrongAudience));
    let t = s.es256(&with(claims(), "aud", json!(["other", AUD])));
    assert_eq!(v.verify(&t, NOW), Ok(expected()));
    let t = s.es256(&with(claims(), "aud", json!(["other"])));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::WrongAudience));
    let t = s.es256(&with(claims(), "aud", json!([])));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::WrongAudience));
    let t = s.es256(&without(claims(), "aud"));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::MissingClaim("aud")));
}

#[test]
fn jwt_wrong_key_is_bad_signature() {
    let s = Signer::new();
    let v = s.verifier();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"});
    let t = s.es256_by(&s.ec_other, &header, &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::BadSignature));
}

#[test]
fn jwt_kid_must_exist_and_match_kty() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256", "kid": "nope"}), &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::UnknownKey));
    // An ES256 token naming the RSA key.
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256", "kid": "rsa-1"}), &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::UnknownKey));
}

#[test]
fn jwt_unsupported_algorithms() {
    let s = Signer::new();
    let v = s.verifier();
    let body = b64(claims().to_string().as_bytes());
    let none = format!("{}.{body}.", b64(br#"{"alg":"none"}"#));
    assert_eq!(
        v.verify(&none, NOW),
        Err(JwtError::UnsupportedAlgorithm("none".into()))
    );
    let hs = format!(
        "{}.{body}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&[7; 32])
    );
    assert_eq!(
        v.verify(&hs, NOW),
        Err(JwtError::UnsupportedAlgorithm("HS256".into()))
    );
    // An RS256 signature relabelled as ES256 fails (the header is signed, too).
    let rs = s.rs256(&claims());
    let mut parts = rs.split('.');
    let (_, p, sig) = (parts.next(), parts.next(), parts.next());
    let relabelled = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"ES256"}"#),
        p.unwrap_or(""),
        sig.unwrap_or("")
    );
    assert_eq!(v.verify(&relabelled, NOW), Err(JwtError::BadSignature));
    let weird = format!(
        "{}.{body}.",
        b64(br#"{"alg":"RS256\n\u0000<script>xxxxxxxxxxxx"}"#)
    );
    match v.verify(&weird, NOW) {
        Err(JwtError::UnsupportedAlgorithm(a)) => {
            assert!(a.len() <= 16 && a.chars().all(|c| c.is_ascii_graphic()));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn jwt_tampered_payload_is_bad_signature() {
    let s = Signer::new();
    let v = s.verifier();
    for token in [s.rs256(&claims()), s.es256(&claims())] {
        let mut parts = token.split('.');
        let (h, _, sig) = (parts.next(), parts.next(), parts.next());
        let forged = with(claims(), "roles", json!(["admin"]));
        let t = format!(
            "{}.{}.{}",
            h.unwrap_or(""),
            b64(forged.to_string().as_bytes()),
            sig.unwrap_or("")
        );
        assert_eq!(v.verify(&t, NOW), Err(JwtError::BadSignature));
    }
}

#[test]
fn jwt_header_checks() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256", "typ": "jwt"}), &claims());
    assert!(v.verify(&t, NOW).is_ok());
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256", "typ": "JOSE"}), &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256_by(&s.ec, &json!({"alg": "ES256", "crit": ["exp"]}), &claims());
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    // Duplicate header members (parser-differential bait) are refused.
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    let sig = s.ec.sign(&s.rng, input.as_bytes()).expect("sign");
    let t = format!("{input}.{}", b64(sig.as_ref()));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
}

#[test]
fn jwt_malformed_inputs() {
    let s = Signer::new();
    let v = s.verifier();
    let good = s.es256(&claims());
    let oversize = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
    let padded = format!("{good}==");
    let cases = [
        String::new(),
        "garbage".to_owned(),
        "a.b".to_owned(),
        "..".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{good}.extra"),
        oversize,
        padded,
        format!("{}.e30.", b64(b"[\"ES256\"]")),
        format!("{}.e30.", b64(b"not json")),
        format!("{}.e30.", b64(br#"{"alg":5}"#)),
        format!("{}.e30.", b64(br#"{"typ":"JWT"}"#)),
        format!("é.{good}"),
    ];
    for case in &cases {
        assert_eq!(v.verify(case, NOW), Err(JwtError::Malformed), "{case:.40}");
    }
    // Signed but not an object / not JSON.
    for payload in ["[1,2]", "null", "{\"sub\":", "{}{}"] {
        let header = b64(br#"{"alg":"ES256","kid":"ec-1"}"#);
        let input = format!("{header}.{}", b64(payload.as_bytes()));
        let sig = s.ec.sign(&s.rng, input.as_bytes()).expect("sign");
        let t = format!("{input}.{}", b64(sig.as_ref()));
        assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed), "{payload}");
    }
}

#[test]
fn jwt_subject_roles_services() {
    let s = Signer::new();
    let v = s.verifier();
    let t = s.es256(&without(claims(), "sub"));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::MissingClaim("sub")));
    let t = s.es256(&with(claims(), "sub", json!("")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::MissingClaim("sub")));
    let t = s.es256(&with(claims(), "sub", json!(42)));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "sub", json!("x".repeat(257))));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "sub", json!("é".repeat(256))));
    assert!(v.verify(&t, NOW).is_ok(), "256 characters allowed");
    let t = s.es256(&with(claims(), "roles", json!("admin")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "roles", json!(["a", 1])));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "services", json!({"risk": true})));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    let t = s.es256(&with(claims(), "services", json!([])));
    assert_eq!(v.verify(&t, NOW).map(|c| c.services), Ok(Some(vec![])));
}

#[test]
fn jwt_error_display_is_short() {
    assert_eq!(JwtError::Malformed.to_string(), "malformed token");
    assert_eq!(
        JwtError::MissingClaim("sub").to_string(),
        "missing claim \"sub\""
    );
}

#[test]
fn jwt_jwks_parsing() {
    let s = Signer::new();
    let ec = Signer::ec_jwk(&s.ec, "ec-1");
    let parse = |doc: Value| JwtVerifier::from_jwks(&doc.to_string(), ISS, AUD);

    let err = parse(json!({"keys": []})).expect_err("empty");
    assert!(err.contains("no usable"), "{err}");
    assert!(JwtVerifier::from_jwks("nope", ISS, AUD).is_err());
    assert!(parse(json!([ec])).is_err());
    assert!(parse(json!({"keys": [1]})).is_err());

    let err = parse(json!({"keys": [with(ec.clone(), "x", json!("***"))]})).expect_err("b64");
    assert!(err.contains("\"x\"") && err.contains("base64"), "{err}");
    let short = b64(&[1; 31]);
    let err = parse(json!({"keys": [with(ec.clone(), "y", json!(short))]})).expect_err("len");
    assert!(err.contains("32 bytes"), "{err}");
    let off_curve = with(ec.clone(), "y", json!(b64(&[1; 32])));
    let err = parse(json!({"keys": [off_curve]})).expect_err("curve");
    assert!(err.contains("not on the P-256 curve"), "{err}");
    let err = parse(json!({"keys": [without(ec.clone(), "x")]})).expect_err("missing x");
    assert!(err.contains("no \"x\""), "{err}");

    let small_rsa = json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"});
    let err = parse(json!({"keys": [small_rsa]})).expect_err("1024-bit");
    assert!(err.contains("1024 bits"), "{err}");
    let even_e = with(s.rsa_jwk(), "e", json!(b64(&[1, 0, 0])));
    assert!(parse(json!({"keys": [even_e]})).is_err());

    // Skipped entries: encryption keys, other curves/kty/alg — but other keys still load.
    let enc = with(ec.clone(), "use", json!("enc"));
    let p384 = with(ec.clone(), "crv", json!("P-384"));
    let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
    let ps256 = with(s.rsa_jwk(), "alg", json!("PS256"));
    let es384 = with(ec.clone(), "alg", json!("ES384"));
    let err = parse(json!({"keys": [enc.clone(), p384.clone(), oct.clone(), ps256, es384]}))
        .expect_err("nothing usable");
    assert!(err.contains("no usable"), "{err}");
    let v = parse(json!({"keys": [enc, p384, oct, ec.clone(), without(s.rsa_jwk(), "alg")]}))
        .expect("two usable keys");
    assert_eq!(v.key_count(), 2);
    assert!(v.verify(&s.rs256(&claims()), NOW).is_ok());

    // Padded base64 and a leading zero byte in n are tolerated.
    let c: RsaPublicKeyComponents<Vec<u8>> = s.rsa.public().into();
    let mut n = vec![0];
    n.extend_from_slice(&c.n);
    let padded = json!({"kty": "RSA", "kid": "rsa-1", "n": format!("{}==", b64(&n)), "e": "AQAB"});
    let v = parse(json!({"keys": [padded]})).expect("padded");
    assert!(v.verify(&s.rs256(&claims()), NOW).is_ok());

    assert!(JwtVerifier::from_jwks(&s.jwks(), "", AUD).is_err());
    assert!(JwtVerifier::from_jwks(&s.jwks(), ISS, "").is_err());
}

#[test]
fn jwt_load_from_file() {
    let s = Signer::new();
    let dir = std::env::temp_dir().join(format!("jwt-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("jwks.json");
    std::fs::write(&path, s.jwks()).expect("write");
    let v = JwtVerifier::load(&path, ISS, AUD).expect("load");
    assert_eq!(v.key_count(), 2);
    let missing = JwtVerifier::load(&dir.join("missing.json"), ISS, AUD).expect_err("missing");
    assert!(missing.contains("missing.json"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jwt_lifetime_is_capped() {
    let s = Signer::new();
    let day = DEFAULT_MAX_LIFETIME_SECS;
    let v = s.verifier();
    // Exactly the maximum (from iat) is accepted; one leeway more is refused.
    let t = s.es256(&with(claims(), "exp", json!(NOW + day)));
    assert!(v.verify(&t, NOW).is_ok());
    let t = s.es256(&with(claims(), "exp", json!(NOW + day + LEEWAY_SECS + 1)));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::LifetimeTooLong(day)));
    // Without iat, counted from now.
    let t = s.es256(&with(without(claims(), "iat"), "exp", json!(NOW + 2 * day)));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::LifetimeTooLong(day)));
    // An iat in the future does not stretch it.
    let t = s.es256(&with(
        with(claims(), "iat", json!(NOW + 2 * day)),
        "exp",
        json!(NOW + 3 * day),
    ));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::LifetimeTooLong(day)));
    // The year 33658 (exp = 1e12 s), with and without iat, and as a float.
    for exp in [json!(1_000_000_000_000_i64), json!(1e12), json!(u64::MAX)] {
        let t = s.es256(&with(claims(), "exp", exp.clone()));
        assert_eq!(
            v.verify(&t, NOW),
            Err(JwtError::LifetimeTooLong(day)),
            "{exp}"
        );
        let t = s.es256(&with(without(claims(), "iat"), "exp", exp.clone()));
        assert_eq!(
            v.verify(&t, NOW),
            Err(JwtError::LifetimeTooLong(day)),
            "{exp}"
        );
    }
    // A malformed iat is refused.
    let t = s.es256(&with(claims(), "iat", json!("yesterday")));
    assert_eq!(v.verify(&t, NOW), Err(JwtError::Malformed));
    // Configurable, and the reason names the limit.
    let v = s.verifier().with_max_lifetime(600);
    assert_eq!(v.max_lifetime(), 600);
    let t = s.es256(&with(claims(), "exp", json!(NOW + 3600)));
    let err = v.verify(&t, NOW).expect_err("over 600 s");
    assert!(err.to_string().contains("600 s"), "{err}");
    assert!(v.verify(&s.es256(&claims()), NOW).is_ok());
}
