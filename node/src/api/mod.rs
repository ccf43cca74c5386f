//! The node's APIs: REST (Qdrant's, port 6333), Qdrant's public gRPC API (port 6334) and, in
//! cluster mode, the peer gRPC API. REST and public gRPC are thin edges over the same `Node` and
//! `Collection` calls; what they share (API keys, request deadlines) lives here.

pub mod auth;
pub mod grpc;
pub mod peer;
pub mod rest;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// The `timeout` (seconds) of a collection operation as the bound of its wait for consensus; the
/// operation itself is never cut off halfway.
pub fn consensus_timeout(secs: Option<u64>) -> Option<Duration> {
    secs.map(|s| Duration::from_secs(s.max(1)))
}

/// Runs a request under its `timeout` (seconds, as both APIs take it), if it has one.
pub async fn within<T>(timeout_secs: Option<u64>, request: impl Future<Output = Result<T>>) -> Result<T> {
    match timeout_secs {
        None => request.await,
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs.max(1)), request)
            .await
            .map_err(|_| Error::Timeout(format!("the request did not finish within {secs} s")))?,
    }
}
