//! The one place where the node's errors become gRPC statuses, with the same messages as REST.

use tonic::{Code, Status};

use crate::error::Error;

pub fn code_of(e: &Error) -> Code {
    match e {
        Error::BadInput(_) | Error::BadRequest(_) | Error::Validation(_) => Code::InvalidArgument,
        Error::NotFound(_) => Code::NotFound,
        Error::AlreadyExists(_) => Code::AlreadyExists,
        Error::NotSupported(_) => Code::FailedPrecondition,
        Error::Forbidden(_) => Code::PermissionDenied,
        Error::Timeout(_) => Code::DeadlineExceeded,
        Error::Unavailable(_) => Code::Unavailable,
        Error::Internal(_) => Code::Internal,
        Error::RateLimited { .. } => Code::ResourceExhausted,
    }
}

/// `Status` with the code of `e` and its message, as REST reports it.
pub fn status(e: Error) -> Status {
    let code = code_of(&e);
    if code == Code::Internal {
        tracing::error!(error = %e, "gRPC request failed");
    }
    let retry_after = match &e {
        Error::RateLimited { retry_after, .. } => *retry_after,
        _ => None,
    };
    let mut status = Status::new(code, e.to_string());
    // Qdrant: `retry-after` metadata (whole seconds) on a rate limit that waiting will lift.
    if let Some(secs) = retry_after {
        status
            .metadata_mut()
            .insert("retry-after", tonic::metadata::MetadataValue::from(secs));
    }
    status
}

/// A malformed message: `InvalidArgument` with the node's wording for bad input.
pub fn invalid(msg: impl Into<String>) -> Status {
    status(Error::bad_input(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_qdrant() {
        assert_eq!(
            status(Error::not_found("Collection `x` doesn't exist!")).code(),
            Code::NotFound
        );
        assert_eq!(status(Error::validation("limit")).code(), Code::InvalidArgument);
        assert_eq!(status(Error::AlreadyExists("c".into())).code(), Code::AlreadyExists);
        assert_eq!(status(Error::Timeout("t".into())).code(), Code::DeadlineExceeded);
        assert_eq!(status(Error::Unavailable("u".into())).code(), Code::Unavailable);
        let limited = status(Error::RateLimited {
            message: "Read rate limit exceeded".into(),
            retry_after: Some(30),
        });
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert_eq!(limited.message(), "Rate limiting exceeded: Read rate limit exceeded");
        assert_eq!(limited.metadata().get("retry-after").unwrap(), "30");
        let over = status(Error::RateLimited {
            message: "too large".into(),
            retry_after: None,
        });
        assert_eq!(over.code(), Code::ResourceExhausted);
        assert!(over.metadata().get("retry-after").is_none());
        let s = status(Error::bad_input("Vector dimension error: expected dim: 4, got 3"));
        assert_eq!(
            s.message(),
            "Wrong input: Vector dimension error: expected dim: 4, got 3"
        );
    }
}
