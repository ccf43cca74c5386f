//! Errors crossing a process boundary (gRPC replies, applied-entry outcomes) keep their kind, so
//! the peer that took the request answers with the same HTTP status as the one that failed it.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::peer_proto::PeerError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: String,
    pub message: String,
    /// Seconds to wait before retrying (`rate_limited` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        let (kind, message, retry_after) = match e {
            Error::BadInput(m) => ("bad_input", m, None),
            Error::BadRequest(m) => ("bad_request", m, None),
            Error::Validation(m) => ("validation", m, None),
            Error::NotFound(m) => ("not_found", m, None),
            Error::AlreadyExists(m) => ("already_exists", m, None),
            Error::NotSupported(m) => ("not_supported", m, None),
            Error::Forbidden(m) => ("forbidden", m, None),
            Error::Timeout(m) => ("timeout", m, None),
            Error::Unavailable(m) => ("unavailable", m, None),
            Error::Internal(m) => ("internal", m, None),
            Error::RateLimited { message, retry_after } => ("rate_limited", message, *retry_after),
        };
        WireError {
            kind: kind.to_string(),
            message: message.clone(),
            retry_after,
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        let m = w.message;
        match w.kind.as_str() {
            "bad_input" => Error::BadInput(m),
            "bad_request" => Error::BadRequest(m),
            "validation" => Error::Validation(m),
            "not_found" => Error::NotFound(m),
            "already_exists" => Error::AlreadyExists(m),
            "not_supported" => Error::NotSupported(m),
            "forbidden" => Error::Forbidden(m),
            "timeout" => Error::Timeout(m),
            "unavailable" => Error::Unavailable(m),
            "rate_limited" => Error::RateLimited {
                message: m,
                retry_after: w.retry_after,
            },
            _ => Error::Internal(m),
        }
    }
}

impl From<WireError> for PeerError {
    fn from(w: WireError) -> Self {
        PeerError {
            kind: w.kind,
            message: w.message,
            retry_after: w.retry_after,
        }
    }
}

impl From<PeerError> for WireError {
    fn from(p: PeerError) -> Self {
        WireError {
            kind: p.kind,
            message: p.message,
            retry_after: p.retry_after,
        }
    }
}

pub fn to_peer_error(e: &Error) -> PeerError {
    WireError::from(e).into()
}

pub fn from_peer_error(p: PeerError) -> Error {
    WireError::from(p).into()
}

/// A transport failure talking to another peer.
pub fn from_status(uri: &str, status: &tonic::Status) -> Error {
    match status.code() {
        tonic::Code::DeadlineExceeded => Error::Timeout(format!("peer {uri} did not answer in time")),
        _ => Error::Unavailable(format!("cannot reach peer {uri}: {}", status.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let all = [
            Error::BadInput("a".into()),
            Error::BadRequest("b".into()),
            Error::Validation("c".into()),
            Error::NotFound("d".into()),
            Error::AlreadyExists("e".into()),
            Error::NotSupported("f".into()),
            Error::Forbidden("l".into()),
            Error::Timeout("g".into()),
            Error::Unavailable("h".into()),
            Error::Internal("i".into()),
            Error::RateLimited {
                message: "j".into(),
                retry_after: Some(3),
            },
            Error::RateLimited {
                message: "k".into(),
                retry_after: None,
            },
        ];
        for e in all {
            let back: Error = from_peer_error(to_peer_error(&e));
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&e));
            if let (Error::RateLimited { retry_after: a, .. }, Error::RateLimited { retry_after: b, .. }) = (&back, &e)
            {
                assert_eq!(a, b);
            }
        }
    }
}
