//! The node's error type. Every layer below the APIs returns it; `api::rest::error` maps it to
//! HTTP status codes and Qdrant's error JSON in one place (and the peer API to gRPC codes).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Malformed or inconsistent input (wrong vector size, NaN, bad id...). HTTP 400.
    #[error("Wrong input: {0}")]
    BadInput(String),
    /// A request that is well-formed but cannot be served as asked. HTTP 400.
    #[error("Bad request: {0}")]
    BadRequest(String),
    /// A value outside its allowed range (`limit: 0`, `shard_number: 0`). HTTP 422.
    #[error("Validation error in JSON body: [{0}]")]
    Validation(String),
    /// Collection, point or index missing. HTTP 404.
    #[error("Not found: {0}")]
    NotFound(String),
    /// Creating something that exists. HTTP 409.
    #[error("Wrong input: {0}")]
    AlreadyExists(String),
    /// An operation that needs cluster mode on a standalone node. HTTP 405.
    #[error("Bad request: {0}")]
    NotSupported(String),
    /// The caller's access rights do not allow the call (JWT RBAC, the read-only key). HTTP 403.
    #[error("Forbidden: {0}")]
    Forbidden(String),
    /// A bounded wait ran out. HTTP 408.
    #[error("Timeout: {0}")]
    Timeout(String),
    /// Not enough replicas or peers to serve the request right now. HTTP 503.
    #[error("Shard temporarily unavailable: {0}")]
    Unavailable(String),
    /// Our own fault: I/O, corruption, a bug. HTTP 500.
    #[error("Service internal error: {0}")]
    Internal(String),
    /// A strict-mode rate limiter refused the request. HTTP 429 (gRPC `ResourceExhausted`), with
    /// `Retry-After: retry_after` seconds when waiting helps.
    #[error("Rate limiting exceeded: {message}")]
    RateLimited { message: String, retry_after: Option<u64> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Error::BadInput(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
    pub fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }

    /// The same kind of error, its message prefixed with `what` (e.g. which replica failed).
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::BadInput(m) => Error::BadInput(wrap(m)),
            Error::BadRequest(m) => Error::BadRequest(wrap(m)),
            Error::Validation(m) => Error::Validation(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::AlreadyExists(m) => Error::AlreadyExists(wrap(m)),
            Error::NotSupported(m) => Error::NotSupported(wrap(m)),
            Error::Forbidden(m) => Error::Forbidden(wrap(m)),
            Error::Timeout(m) => Error::Timeout(wrap(m)),
            Error::Unavailable(m) => Error::Unavailable(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
            Error::RateLimited { message, retry_after } => Error::RateLimited {
                message: wrap(message),
                retry_after,
            },
        }
    }

    /// A failure to reach another peer (as opposed to that peer refusing the request).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::Unavailable(_))
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Internal(format!("storage: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("io: {e}"))
    }
}
