//! Extractors that report bad requests the way Qdrant does (400 with the error JSON) instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Malformed JSON, wrong types and oversized bodies are 400
/// `Format error in JSON body: ...`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(inner) if inner.body_text().contains("length limit") => {
                ApiError::Format(
                    "Format error in JSON body: JSON payload is larger than allowed by service.max_request_size_mb"
                        .into(),
                )
            }
            other => ApiError::Format(format!("Format error in JSON body: {}", other.body_text())),
        })?;
        let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &bytes
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ApiError::Format(format!("Format error in JSON body: {inner}"))
            } else {
                ApiError::Format(format!("Format error in JSON body: {path}: {inner}"))
            }
        })?;
        de.end()
            .map_err(|e| ApiError::Format(format!("Format error in JSON body: {e}")))?;
        Ok(Body(value))
    }
}

/// Query-string parameters; a bad value is 400.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::Format(format!("Query deserialize error: {}", e.body_text())))
    }
}
