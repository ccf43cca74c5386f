//! The one place where errors become HTTP responses in Qdrant's shape:
//! `{"status": {"error": "..."}, "time": 0.0}` with Qdrant's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::auth::Refusal;
use crate::error::Error;

#[derive(Debug)]
pub enum ApiError {
    /// Errors from the layers below.
    Node(Error),
    /// Malformed body or query string: 400 with the message as is.
    Format(String),
    /// A request not authenticated: a missing or wrong key (401), a JWT refused (401/403);
    /// plain text, as Qdrant.
    Refused(Refusal),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Node(e)
    }
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadInput(_) | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::AlreadyExists(_) => StatusCode::CONFLICT,
        Error::NotSupported(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
    }
}

pub fn error_body(message: &str) -> serde_json::Value {
    json!({"status": {"error": message}, "time": 0.0})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Node(e) => {
                let status = status_of(&e);
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(error = %e, "request failed");
                }
                let mut response = (status, axum::Json(error_body(&e.to_string()))).into_response();
                // Qdrant: `Retry-After` (whole seconds) on a rate limit that waiting will lift.
                if let Error::RateLimited {
                    retry_after: Some(secs),
                    ..
                } = e
                {
                    response
                        .headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
                }
                response
            }
            ApiError::Format(msg) => (StatusCode::BAD_REQUEST, axum::Json(error_body(&msg))).into_response(),
            ApiError::Refused(refusal) => {
                let status = if refusal.is_forbidden() {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                (status, refusal.message()).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_429_with_retry_after() {
        let limited = |retry_after| {
            ApiError::Node(Error::RateLimited {
                message: "Read rate limit exceeded".into(),
                retry_after,
            })
            .into_response()
        };
        let r = limited(Some(27));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "27");
        let r = limited(None);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().get(axum::http::header::RETRY_AFTER).is_none());
    }
}
