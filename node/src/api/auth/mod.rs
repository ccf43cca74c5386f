//! Authentication and access rights shared by REST and gRPC: which credential was presented
//! (the API key, the alternative key, the read-only key, or with `service.jwt_rbac` a JWT signed
//! with one of the full keys), the [`Access`] it grants, and the refusal texts (Qdrant's). Each
//! API maps a refusal to its own status (401/403, Unauthenticated/PermissionDenied) in its error
//! module; a call the access does not allow is `Error::Forbidden` like any other error.

pub mod access;
pub mod jwt;

pub use access::{Access, CollectionMode, GlobalAccess, Need};

use crate::error::{Error, Result};
use crate::model::query::ReadConsistency;
use crate::node::Node;
use crate::settings::ServiceConfig;
use jwt::{JwtError, ValueExists};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key presented.
    Missing,
    /// Neither a key nor a JWT we accept.
    Invalid,
    /// A JWT whose signature does not match (403).
    InvalidSignature,
    /// A JWT past its `exp` (403).
    Expired,
    /// A JWT whose claims break the rules (duplicate collection, deprecated `payload`).
    BadClaims(String),
    /// `value_exists`: no point matches (401), or its collection does not exist (403).
    StatefulFailed { collection_missing: bool },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "Must provide an API key or an Authorization bearer token".into(),
            Refusal::Invalid => "Invalid API key or JWT".into(),
            Refusal::InvalidSignature => "InvalidSignature".into(),
            Refusal::Expired => "ExpiredSignature".into(),
            Refusal::BadClaims(why) => why.clone(),
            Refusal::StatefulFailed { .. } => "Invalid JWT, stateful validation failed".into(),
        }
    }

    /// 403 / PermissionDenied rather than 401 / Unauthenticated.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            Refusal::InvalidSignature
                | Refusal::Expired
                | Refusal::StatefulFailed {
                    collection_missing: true
                }
        )
    }
}

/// What a presented credential grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub access: Access,
    /// A JWT's `value_exists`: to be checked on every request ([`check_value_exists`]).
    pub value_exists: Option<ValueExists>,
}

fn non_empty(key: &Option<String>) -> Option<&str> {
    key.as_deref().filter(|k| !k.is_empty())
}

/// Whether any key is configured (otherwise every call is allowed, with full access).
pub fn keys_configured(service: &ServiceConfig) -> bool {
    non_empty(&service.api_key).is_some()
        || non_empty(&service.alt_api_key).is_some()
        || non_empty(&service.read_only_api_key).is_some()
}

/// The key of a request: `api-key: KEY`, else `authorization: Bearer KEY` (header or gRPC
/// metadata).
fn presented_key<'a>(api_key: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    api_key.or_else(|| authorization?.strip_prefix("Bearer ").map(str::trim))
}

/// What `presented` grants (call only when [`keys_configured`]): the API key (or the
/// alternative one) full access, the read-only key global read, and with `jwt_rbac` a JWT signed
/// with one of the full keys its claims. `now` is Unix seconds.
pub fn authenticate(service: &ServiceConfig, presented: Option<&str>, now: u64) -> Result<Credential, Refusal> {
    let presented = presented.ok_or(Refusal::Missing)?;
    let full_keys: Vec<&str> = [non_empty(&service.api_key), non_empty(&service.alt_api_key)]
        .into_iter()
        .flatten()
        .collect();
    let granted = |access| Credential {
        access,
        value_exists: None,
    };
    if full_keys.iter().any(|k| same_secret(k, presented)) {
        return Ok(granted(Access::FULL));
    }
    if non_empty(&service.read_only_api_key).is_some_and(|k| same_secret(k, presented)) {
        return Ok(granted(Access::Global(GlobalAccess::Read)));
    }
    if !service.jwt_rbac {
        return Err(Refusal::Invalid);
    }
    let mut first_error = None;
    for key in full_keys {
        match jwt::decode(presented, key.as_bytes(), now) {
            Ok(claims) => {
                return Ok(Credential {
                    access: claims.access,
                    value_exists: claims.value_exists,
                })
            }
            Err(JwtError::NotJwt) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(match first_error {
        None | Some(JwtError::NotJwt) => Refusal::Invalid,
        Some(JwtError::InvalidSignature) => Refusal::InvalidSignature,
        Some(JwtError::Expired) => Refusal::Expired,
        Some(JwtError::Invalid(why)) => Refusal::BadClaims(why),
    })
}

/// [`authenticate`] with the credential of a request's headers (or gRPC metadata), now.
pub fn authenticate_headers(service: &ServiceConfig, headers: &http::HeaderMap) -> Result<Credential, Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    authenticate(
        service,
        presented_key(header("api-key"), header("authorization")),
        now(),
    )
}

/// Unix seconds now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token's `value_exists`: some point of its collection must match every condition, whatever
/// the token's own rights over that collection. Checked on every request, so deleting the point
/// revokes the token.
pub async fn check_value_exists(node: &Node, condition: &ValueExists) -> Result<(), Refusal> {
    let Ok(collection) = node.collection(&condition.collection) else {
        return Err(Refusal::StatefulFailed {
            collection_missing: true,
        });
    };
    let must: Vec<serde_json::Value> = condition
        .matches
        .iter()
        .map(|m| serde_json::json!({"key": m.key, "match": {"value": m.value.to_json()}}))
        .collect();
    let filter = serde_json::from_value(serde_json::json!({ "must": must })).map_err(|_| Refusal::Invalid)?;
    match collection
        .count(Some(filter), true, ReadConsistency::default(), None)
        .await
    {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(Refusal::StatefulFailed {
            collection_missing: false,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "value_exists check of a JWT failed");
            Err(Refusal::StatefulFailed {
                collection_missing: matches!(e, Error::NotFound(_)),
            })
        }
    }
}

/// Compares two secrets in time that depends only on their lengths, so response timing does not
/// reveal how much of a guessed key was right.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(full: Option<&str>, ro: Option<&str>, jwt_rbac: bool) -> ServiceConfig {
        ServiceConfig {
            api_key: full.map(String::from),
            read_only_api_key: ro.map(String::from),
            jwt_rbac,
            ..ServiceConfig::default()
        }
    }

    fn access(s: &ServiceConfig, key: Option<&str>) -> Result<Access, Refusal> {
        authenticate(s, key, 1_000).map(|c| c.access)
    }

    #[test]
    fn keys_grant_by_kind() {
        let s = service(Some("full"), Some("ro"), false);
        assert_eq!(access(&s, None), Err(Refusal::Missing));
        assert_eq!(access(&s, Some("nope")), Err(Refusal::Invalid));
        assert_eq!(access(&s, Some("ful")), Err(Refusal::Invalid));
        assert_eq!(access(&s, Some("full")), Ok(Access::FULL));
        assert_eq!(access(&s, Some("ro")), Ok(Access::Global(GlobalAccess::Read)));
        // Without jwt_rbac a token signed with the key is just a wrong key.
        let token = jwt::encode(&json!({"access": "r"}), b"full");
        assert_eq!(access(&s, Some(&token)), Err(Refusal::Invalid));
        assert!(!keys_configured(&service(Some(""), None, true)));
        assert!(keys_configured(&service(None, Some("ro"), false)));
        assert_eq!(presented_key(None, Some("Bearer  k ")), Some("k"));
        assert_eq!(presented_key(Some("a"), Some("Bearer b")), Some("a"));
        assert_eq!(presented_key(None, Some("Basic x")), None);
    }

    #[test]
    fn tokens_signed_with_either_full_key() {
        let mut s = service(Some("full"), Some("ro"), true);
        s.alt_api_key = Some("alt".into());
        let read = json!({"access": "r"});
        for key in ["full", "alt"] {
            let token = jwt::encode(&read, key.as_bytes());
            assert_eq!(access(&s, Some(&token)), Ok(Access::Global(GlobalAccess::Read)));
        }
        // The read-only key signs nothing.
        let token = jwt::encode(&read, b"ro");
        assert_eq!(access(&s, Some(&token)), Err(Refusal::InvalidSignature));
        let expired = jwt::encode(&json!({"exp": 10}), b"full");
        let refusal = access(&s, Some(&expired)).unwrap_err();
        assert_eq!(
            (refusal.message(), refusal.is_forbidden()),
            ("ExpiredSignature".into(), true)
        );
        assert!(!Refusal::Invalid.is_forbidden());
        assert!(!Refusal::StatefulFailed {
            collection_missing: false
        }
        .is_forbidden());
    }
}
