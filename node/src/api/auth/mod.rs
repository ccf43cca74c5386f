//! API-key checks shared by REST and gRPC: which key was presented, whether it grants the call, and
//! the refusal texts (Qdrant's). Each API maps a refusal to its own status (401/403,
//! Unauthenticated/PermissionDenied) in its error module.

use crate::settings::ServiceConfig;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No key presented.
    Missing,
    /// A key that is neither the API key nor the read-only key.
    Invalid,
    /// The read-only key used for a call that writes.
    ReadOnly,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "Must provide an API key or an Authorization bearer token",
            Refusal::Invalid => "Invalid API key or JWT",
            Refusal::ReadOnly => "Forbidden: read-only API key",
        }
    }
}

/// Whether any key is configured (otherwise every call is allowed).
pub fn keys_configured(service: &ServiceConfig) -> bool {
    service.api_key.is_some() || service.read_only_api_key.is_some()
}

/// The key of a request: `api-key: KEY` or `authorization: Bearer KEY` (header or gRPC metadata).
pub fn presented_key<'a>(api_key: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    api_key.or_else(|| authorization?.strip_prefix("Bearer ").map(str::trim))
}

/// Grants or refuses a call that reads only (`is_read`) or may write.
pub fn check(service: &ServiceConfig, presented: Option<&str>, is_read: bool) -> Result<(), Refusal> {
    if !keys_configured(service) {
        return Ok(());
    }
    let Some(key) = presented else {
        return Err(Refusal::Missing);
    };
    if service.api_key.as_deref().is_some_and(|k| same_secret(k, key)) {
        return Ok(());
    }
    if service
        .read_only_api_key
        .as_deref()
        .is_some_and(|k| same_secret(k, key))
    {
        return if is_read { Ok(()) } else { Err(Refusal::ReadOnly) };
    }
    Err(Refusal::Invalid)
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
    use super::*;

    fn service(full: Option<&str>, ro: Option<&str>) -> ServiceConfig {
        ServiceConfig {
            api_key: full.map(String::from),
            read_only_api_key: ro.map(String::from),
            ..ServiceConfig::default()
        }
    }

    #[test]
    fn keys_grant_by_kind_of_call() {
        let s = service(Some("full"), Some("ro"));
        assert_eq!(check(&s, None, true), Err(Refusal::Missing));
        assert_eq!(check(&s, Some("nope"), true), Err(Refusal::Invalid));
        assert_eq!(check(&s, Some("ful"), true), Err(Refusal::Invalid));
        assert_eq!(check(&s, Some("full"), false), Ok(()));
        assert_eq!(check(&s, Some("ro"), true), Ok(()));
        assert_eq!(check(&s, Some("ro"), false), Err(Refusal::ReadOnly));
        assert_eq!(check(&service(None, None), None, false), Ok(()));
        assert_eq!(presented_key(None, Some("Bearer  k ")), Some("k"));
        assert_eq!(presented_key(Some("a"), Some("Bearer b")), Some("a"));
        assert_eq!(presented_key(None, Some("Basic x")), None);
    }
}
