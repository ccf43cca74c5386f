//! JWTs as Qdrant's RBAC accepts them: HS256 only, signed with the API key (or the alternative
//! key), claims `exp` (optional, 30 s leeway), `access`, `value_exists`, `sub`/`subject`; other
//! claims are ignored. Decoding distinguishes what the caller is told: a token that is not an
//! HS256 JWT of the right shape is just an invalid key (401), a wrong signature or an expired
//! token is refused (403), and claims that break Qdrant's rules are refused with their reason.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::access::{Access, CollectionMode, GlobalAccess};

/// Seconds an expired token is still accepted (clock skew).
const LEEWAY_SECS: u64 = 30;

/// Why a presented token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not an HS256 JWT whose claims have the expected shape.
    NotJwt,
    InvalidSignature,
    Expired,
    /// Claims that break Qdrant's rules (duplicate collection, the deprecated `payload`).
    Invalid(String),
}

/// The accepted claims of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub access: Access,
    pub value_exists: Option<ValueExists>,
    /// `subject` (or `sub`): who the token is for, for the logs.
    pub subject: Option<String>,
}

/// Access only while a point of `collection` matches every `key = value` (checked per request).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValueExists {
    pub collection: String,
    pub matches: Vec<ValueMatch>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValueMatch {
    pub key: String,
    pub value: MatchValue,
}

/// A keyword, integer or boolean, as Qdrant's `match: {value}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MatchValue {
    Bool(bool),
    Integer(i64),
    Keyword(String),
}

impl MatchValue {
    pub fn to_json(&self) -> Value {
        match self {
            MatchValue::Bool(b) => Value::from(*b),
            MatchValue::Integer(i) => Value::from(*i),
            MatchValue::Keyword(s) => Value::from(s.as_str()),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct RawClaims {
    exp: Option<u64>,
    access: Option<RawAccess>,
    value_exists: Option<ValueExists>,
    sub: Option<String>,
    subject: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAccess {
    Global(RawGlobal),
    Collections(Vec<RawCollectionAccess>),
}

#[derive(Deserialize)]
enum RawGlobal {
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "m")]
    Manage,
}

#[derive(Deserialize)]
struct RawCollectionAccess {
    collection: String,
    access: RawMode,
    #[serde(default)]
    payload: Option<Value>,
}

#[derive(Deserialize)]
enum RawMode {
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "rw")]
    ReadWrite,
    #[serde(rename = "prw")]
    PointsReadWrite,
}

/// Decodes and checks `token` against `secret` at `now` (Unix seconds).
pub fn decode(token: &str, secret: &[u8], now: u64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotJwt);
    };
    let signed = &token[..header.len() + 1 + payload.len()];
    let header: Header = decode_json(header)?;
    if header.alg != "HS256" {
        return Err(JwtError::NotJwt);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtError::NotJwt)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, signed.as_bytes(), &signature).map_err(|_| JwtError::InvalidSignature)?;
    let raw: RawClaims = decode_json(payload)?;
    if raw.exp.is_some_and(|exp| exp.saturating_add(LEEWAY_SECS) < now) {
        return Err(JwtError::Expired);
    }
    let access = match raw.access {
        None => Access::FULL,
        Some(RawAccess::Global(RawGlobal::Read)) => Access::Global(GlobalAccess::Read),
        Some(RawAccess::Global(RawGlobal::Manage)) => Access::FULL,
        Some(RawAccess::Collections(list)) => {
            let mut problems = Vec::new();
            let mut allowed = BTreeMap::new();
            for (i, entry) in list.into_iter().enumerate() {
                if entry.payload.as_ref().is_some_and(|p| !p.is_null()) {
                    problems.push(format!(
                        "access[{i}].payload: The 'payload' constraint is deprecated and should not be used"
                    ));
                }
                let mode = match entry.access {
                    RawMode::Read => CollectionMode::Read,
                    RawMode::ReadWrite => CollectionMode::ReadWrite,
                    RawMode::PointsReadWrite => CollectionMode::PointsReadWrite,
                };
                if allowed.insert(entry.collection, mode).is_some() {
                    problems.push(format!("access[{i}].collection: Collection name should be unique"));
                }
            }
            if !problems.is_empty() {
                return Err(JwtError::Invalid(problems.join("\n")));
            }
            Access::Collections(allowed)
        }
    };
    Ok(Claims {
        access,
        value_exists: raw.value_exists,
        subject: raw.subject.or(raw.sub),
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::NotJwt)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::NotJwt)
}

/// Signs `claims` with `secret` (HS256): tests and tooling make tokens with it.
pub fn encode(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &[u8] = b"secret";
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn access_claims() {
        let read = decode(&encode(&json!({"access": "r"}), KEY), KEY, NOW).unwrap();
        assert_eq!(read.access, Access::Global(GlobalAccess::Read));
        assert_eq!(decode(&encode(&json!({}), KEY), KEY, NOW).unwrap().access, Access::FULL);
        let list = json!({"access": [{"collection": "a", "access": "rw"}, {"collection": "b", "access": "prw"}],
                          "subject": "alice", "iat": 5, "nbf": NOW + 1000});
        let claims = decode(&encode(&list, KEY), KEY, NOW).unwrap();
        assert_eq!(
            claims.access,
            Access::Collections(BTreeMap::from([
                ("a".into(), CollectionMode::ReadWrite),
                ("b".into(), CollectionMode::PointsReadWrite)
            ]))
        );
        assert_eq!(claims.subject.as_deref(), Some("alice"));
        let exists = json!({"value_exists": {"collection": "users", "matches": [{"key": "id", "value": 42}]}});
        let claims = decode(&encode(&exists, KEY), KEY, NOW).unwrap();
        assert_eq!(claims.value_exists.unwrap().matches[0].value, MatchValue::Integer(42));
    }

    #[test]
    fn refusals() {
        let token = encode(&json!({"access": "m"}), KEY);
        assert_eq!(decode(&token, b"other", NOW), Err(JwtError::InvalidSignature));
        let mut tampered = token.clone();
        tampered.push('A');
        assert!(decode(&tampered, KEY, NOW).is_err());
        assert_eq!(decode("not-a-token", KEY, NOW), Err(JwtError::NotJwt));
        assert_eq!(decode("a.b.c.d", KEY, NOW), Err(JwtError::NotJwt));
        // Expired beyond the leeway only.
        assert!(decode(&encode(&json!({"exp": NOW - 10}), KEY), KEY, NOW).is_ok());
        assert_eq!(
            decode(&encode(&json!({"exp": NOW - 31}), KEY), KEY, NOW),
            Err(JwtError::Expired)
        );
        // Wrong shapes are not tokens we know.
        for claims in [
            json!({"access": "rw"}),
            json!({"access": "x"}),
            json!({"exp": "soon"}),
            json!({"access": [{"collection": "a", "access": "m"}]}),
        ] {
            assert_eq!(
                decode(&encode(&claims, KEY), KEY, NOW),
                Err(JwtError::NotJwt),
                "{claims}"
            );
        }
        let duplicate = json!({"access": [{"collection": "a", "access": "r"}, {"collection": "a", "access": "rw"}]});
        assert_eq!(
            decode(&encode(&duplicate, KEY), KEY, NOW),
            Err(JwtError::Invalid(
                "access[1].collection: Collection name should be unique".into()
            ))
        );
        let payload = json!({"access": [{"collection": "a", "access": "r", "payload": {"x": 1}}]});
        assert!(
            matches!(decode(&encode(&payload, KEY), KEY, NOW), Err(JwtError::Invalid(m)) if m.contains("deprecated"))
        );
        // Another algorithm (even with a valid HS256 signature) is not accepted.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let body = URL_SAFE_NO_PAD.encode(b"{}");
        assert_eq!(decode(&format!("{header}.{body}."), KEY, NOW), Err(JwtError::NotJwt));
    }
}
