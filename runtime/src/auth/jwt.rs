//! Verification of OIDC-style access tokens: compact JWS (RFC 7515) JWTs (RFC 7519) signed
//! with RS256 or ES256 by a key from a JSON Web Key Set (RFC 7517).
//!
//! Strict on purpose: only the two asymmetric algorithms are accepted (never `none` or HMAC),
//! the key is chosen from the configured set only (the `jwk`/`jku`/`x5u` headers are ignored),
//! any `crit` header is refused, and the claims are read only after the signature checks out.
//! Nothing here panics on input, and no error ever echoes the token.

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// Longest lifetime (`exp` − `iat`, or `exp` − now) of a JWT accepted by default: 24 hours.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 3600;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest `sub` accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 256;

/// Smallest and largest RSA modulus accepted, in bits (those of `RSA_PKCS1_2048_8192_SHA256`).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The identity a verified token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: non-empty, at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// `roles`: empty when the claim is absent.
    pub roles: Vec<String>,
    /// `services`: the services the token is scoped to; `None` when the claim is absent.
    pub services: Option<Vec<String>>,
    /// `exp`, in Unix seconds.
    pub expires: i64,
}

/// Why a token was refused. The texts are short and never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported signing algorithm \"{0}\"")]
    UnsupportedAlgorithm(String),
    #[error("no matching signing key")]
    UnknownKey,
    #[error("invalid signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing claim \"{0}\"")]
    MissingClaim(&'static str),
    #[error(
        "token lifetime too long: exp is more than {0} s after iat (or now); \
         this server accepts tokens valid for at most {0} s (--max-token-lifetime)"
    )]
    LifetimeTooLong(i64),
}

/// The two signing algorithms supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

/// Public key material of one JWK, validated at load.
#[derive(Clone)]
enum KeyMaterial {
    /// Big-endian modulus and exponent, without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed P-256 point `0x04 || x || y`.
    Ec { point: Vec<u8> },
}

impl KeyMaterial {
    fn alg(&self) -> Alg {
        match self {
            KeyMaterial::Rsa { .. } => Alg::Rs256,
            KeyMaterial::Ec { .. } => Alg::Es256,
        }
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            KeyMaterial::Rsa { n, e } => RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok(),
            KeyMaterial::Ec { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    material: KeyMaterial,
}

/// Verifies tokens against a fixed key set, issuer and audience.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Vec<Key>,
    issuer: String,
    audience: String,
    leeway: i64,
    /// Longest `exp` − `iat` (and `exp` − now) accepted, in seconds.
    max_lifetime: i64,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

/// The JOSE header fields looked at. Duplicate members are refused by the derived parser.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The claims looked at, still untyped so that missing and mistyped can be told apart.
/// Duplicate members are refused by the derived parser.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    roles: Option<Value>,
    #[serde(default)]
    services: Option<Value>,
}

impl JwtVerifier {
    /// Parses a JWKS document (`{"keys":[...]}`) — RSA keys (`kty` RSA, `n`, `e`; `alg` RS256
    /// or absent) and EC P-256 keys (`kty` EC, `crv` P-256, `x`, `y`; `alg` ES256 or absent);
    /// `kid` optional; keys with `use` other than "sig" are skipped; unsupported `kty`/`crv`/`alg`
    /// are skipped with a warning; an empty resulting key set is an error. Malformed members of
    /// supported keys (bad base64, wrong coordinate length, point off the curve, RSA modulus
    /// outside 2048..=8192 bits) are errors.
    pub fn from_jwks(json: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        if issuer.is_empty() {
            return Err("JWT issuer must not be empty".to_owned());
        }
        if audience.is_empty() {
            return Err("JWT audience must not be empty".to_owned());
        }
        let doc: Value =
            serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
        let entries = doc
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or_else(|| "JWKS must be an object with a \"keys\" array".to_owned())?;
        let mut keys = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if let Some(key) = parse_jwk(index, entry)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err("JWKS contains no usable signing keys (RS256 or ES256)".to_owned());
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: LEEWAY_SECS,
            max_lifetime: DEFAULT_MAX_LIFETIME_SECS,
        })
    }

    /// The same verifier, refusing tokens whose `exp` is more than `secs` after their `iat`
    /// (or after now, whichever is earlier).
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs.max(1);
        self
    }

    /// The longest token lifetime accepted, in seconds.
    pub fn max_lifetime(&self) -> i64 {
        self.max_lifetime
    }

    /// Reads a JWKS file and parses it with [`JwtVerifier::from_jwks`].
    pub fn load(path: &Path, issuer: &str, audience: &str) -> Result<Self, String> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read JWKS file {}: {e}", path.display()))?;
        Self::from_jwks(&json, issuer, audience)
            .map_err(|e| format!("JWKS file {}: {e}", path.display()))
    }

    /// Number of usable keys loaded.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies a compact JWS at `now` (Unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };

        let header_json = decode_segment(header_b64)?;
        let header: Header = parse_object(&header_json)?;
        let alg = match header.alg.as_str() {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            other => return Err(JwtError::UnsupportedAlgorithm(sanitize_alg(other))),
        };
        if let Some(typ) = &header.typ
            && !typ_is_acceptable(typ)
        {
            return Err(JwtError::Malformed);
        }
        if header.crit.is_some() {
            // No extension is understood, so any critical one must be refused (RFC 7515 4.1.11).
            return Err(JwtError::Malformed);
        }
        let payload_json = decode_segment(payload_b64)?;
        let sig = decode_segment(sig_b64)?;

        // The signing input is the two encoded segments exactly as received.
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        let message = token
            .as_bytes()
            .get(..signed_len)
            .ok_or(JwtError::Malformed)?;
        self.check_signature(alg, header.kid.as_deref(), message, &sig)?;

        let raw: RawClaims = parse_object(&payload_json)?;
        self.check_claims(raw, now)
    }

    fn check_signature(
        &self,
        alg: Alg,
        kid: Option<&str>,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), JwtError> {
        let candidates: Vec<&Key> = match kid {
            Some(kid) => {
                let named: Vec<&Key> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .filter(|k| k.material.alg() == alg)
                    .collect();
                if named.is_empty() {
                    return Err(JwtError::UnknownKey);
                }
                named
            }
            None => self
                .keys
                .iter()
                .filter(|k| k.material.alg() == alg)
                .collect(),
        };
        if candidates.iter().any(|k| k.material.verifies(message, sig)) {
            Ok(())
        } else {
            Err(JwtError::BadSignature)
        }
    }

    fn check_claims(&self, raw: RawClaims, now: i64) -> Result<Claims, JwtError> {
        match raw.iss {
            None => return Err(JwtError::MissingClaim("iss")),
            Some(Value::String(iss)) if iss == self.issuer => {}
            Some(Value::String(_)) => return Err(JwtError::WrongIssuer),
            Some(_) => return Err(JwtError::Malformed),
        }

        match raw.aud {
            None => return Err(JwtError::MissingClaim("aud")),
            Some(Value::String(aud)) => {
                if aud != self.audience {
                    return Err(JwtError::WrongAudience);
                }
            }
            Some(Value::Array(auds)) => {
                let auds = strings(auds)?;
                if !auds.contains(&self.audience) {
                    return Err(JwtError::WrongAudience);
                }
            }
            Some(_) => return Err(JwtError::Malformed),
        }

        let expires = numeric_date(raw.exp.ok_or(JwtError::MissingClaim("exp"))?)?;
        if now >= expires.saturating_add(self.leeway) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = raw.nbf {
            let not_before = numeric_date(nbf)?;
            if now.saturating_add(self.leeway) < not_before {
                return Err(JwtError::NotYetValid);
            }
        }
        // A token valid for years (or until the year 33658) is a credential that cannot be
        // revoked by rotating keys in time: its lifetime is capped, counted from its `iat`
        // and from now (an `iat` in the future does not extend it).
        let issued = raw.iat.map(numeric_date).transpose()?;
        let from = issued.map_or(now, |iat| iat.min(now));
        if expires.saturating_sub(from) > self.max_lifetime.saturating_add(self.leeway) {
            return Err(JwtError::LifetimeTooLong(self.max_lifetime));
        }

        let subject = match raw.sub {
            None => return Err(JwtError::MissingClaim("sub")),
            Some(Value::String(sub)) if sub.is_empty() => {
                return Err(JwtError::MissingClaim("sub"));
            }
            Some(Value::String(sub)) => sub,
            Some(_) => return Err(JwtError::Malformed),
        };
        if subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
            return Err(JwtError::Malformed);
        }

        let roles = match raw.roles {
            None => Vec::new(),
            Some(Value::Array(roles)) => strings(roles)?,
            Some(_) => return Err(JwtError::Malformed),
        };
        let services = match raw.services {
            None => None,
            Some(Value::Array(services)) => Some(strings(services)?),
            Some(_) => return Err(JwtError::Malformed),
        };

        Ok(Claims {
            subject,
            roles,
            services,
            expires,
        })
    }
}

/// Decodes one base64url segment (no padding, canonical trailing bits).
fn decode_segment(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed)
}

/// Parses a JSON object (an array would otherwise be accepted positionally by derived structs).
fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, JwtError> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(JwtError::Malformed);
    }
    serde_json::from_slice(json).map_err(|_| JwtError::Malformed)
}

/// `typ` values accepted: "JWT" and RFC 9068's "at+jwt" (media types compare case-insensitively,
/// and the "application/" prefix may be present).
fn typ_is_acceptable(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    typ == "jwt" || typ == "at+jwt"
}

/// The header's `alg`, made safe to show in an error or log line.
fn sanitize_alg(alg: &str) -> String {
    alg.chars()
        .take(16)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A JSON array of strings.
fn strings(values: Vec<Value>) -> Result<Vec<String>, JwtError> {
    values
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(JwtError::Malformed),
        })
        .collect()
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional (floored).
fn numeric_date(value: Value) -> Result<i64, JwtError> {
    let Value::Number(n) = value else {
        return Err(JwtError::Malformed);
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.as_u64().is_some() {
        return Ok(i64::MAX);
    }
    match n.as_f64() {
        // `as` saturates at the i64 bounds.
        Some(f) if f.is_finite() => Ok(f.floor() as i64),
        _ => Err(JwtError::Malformed),
    }
}

/// One JWKS entry: `Ok(None)` when it is skipped, `Err` when a supported key is malformed.
fn parse_jwk(index: usize, entry: &Value) -> Result<Option<Key>, String> {
    let obj = entry
        .as_object()
        .ok_or_else(|| format!("JWKS key #{index} is not a JSON object"))?;
    let string_member = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("JWKS key #{index}: \"{name}\" is not a string")),
        }
    };
    let kty = string_member("kty")?.ok_or_else(|| format!("JWKS key #{index} has no \"kty\""))?;
    let kid = string_member("kid")?.map(str::to_owned);
    let label = match &kid {
        Some(kid) => format!("JWKS key #{index} (kid \"{kid}\")"),
        None => format!("JWKS key #{index}"),
    };
    if let Some(use_) = string_member("use")?
        && use_ != "sig"
    {
        tracing::debug!("{label}: skipped, \"use\" is \"{use_}\", not \"sig\"");
        return Ok(None);
    }
    let alg = string_member("alg")?;
    let required = |name: &str| -> Result<Vec<u8>, String> {
        let text = string_member(name)?.ok_or_else(|| format!("{label} has no \"{name}\""))?;
        // Padding is not allowed by RFC 7518, but tolerate it in the key set.
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("{label}: \"{name}\" is not valid base64url: {e}"))
    };

    let material = match kty {
        "RSA" => {
            if let Some(alg) = alg
                && alg != "RS256"
            {
                tracing::warn!("{label}: skipped, unsupported RSA \"alg\" \"{alg}\"");
                return Ok(None);
            }
            let n = strip_leading_zeros(required("n")?);
            let e = strip_leading_zeros(required("e")?);
            let bits = bit_length(&n);
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(format!(
                    "{label}: RSA modulus is {bits} bits, must be {RSA_MIN_BITS} to {RSA_MAX_BITS}"
                ));
            }
            // ring accepts odd exponents from 3 to 2^33 - 1.
            let exponent = if e.len() <= 8 {
                e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
            } else {
                0
            };
            if exponent < 3 || exponent.is_multiple_of(2) || exponent >= (1 << 33) {
                return Err(format!("{label}: unsupported RSA public exponent"));
            }
            KeyMaterial::Rsa { n, e }
        }
        "EC" => {
            let crv = string_member("crv")?.ok_or_else(|| format!("{label} has no \"crv\""))?;
            if crv != "P-256" {
                tracing::warn!("{label}: skipped, unsupported EC curve \"{crv}\"");
                return Ok(None);
            }
            if let Some(alg) = alg
                && alg != "ES256"
            {
                tracing::warn!("{label}: skipped, unsupported EC \"alg\" \"{alg}\"");
                return Ok(None);
            }
            let x = required("x")?;
            let y = required("y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(format!(
                    "{label}: P-256 coordinates must be 32 bytes each, got {} and {}",
                    x.len(),
                    y.len()
                ));
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if !p256_point_is_valid(&point) {
                return Err(format!("{label}: point is not on the P-256 curve"));
            }
            KeyMaterial::Ec { point }
        }
        other => {
            tracing::warn!("{label}: skipped, unsupported \"kty\" \"{other}\"");
            return Ok(None);
        }
    };
    if obj.contains_key("d") {
        tracing::warn!("{label} contains private key material; publish only public keys");
    }
    Ok(Some(Key { kid, material }))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// Whether `point` (uncompressed SEC1) is a valid P-256 public key, checked through an ECDH
/// agreement, which validates the peer point (ring has no direct check for it).
fn p256_point_is_valid(point: &[u8]) -> bool {
    use ring::agreement;
    let rng = ring::rand::SystemRandom::new();
    let Ok(private) = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng) else {
        return false;
    };
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
    agreement::agree_ephemeral(private, &peer, |_| ()).is_ok()
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
