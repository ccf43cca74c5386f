//! A tower layer in front of every gRPC service: checks the API key (`api-key` metadata or
//! `authorization: Bearer`) with the same rules as REST, and records each call in the metrics.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::per_collection::CollectionName;
use crate::api::auth::{self, Refusal};
use crate::node::Node;

/// Methods served without a key: health checks, as Qdrant does.
fn is_public(path: &str) -> bool {
    path == "/qdrant.Qdrant/HealthCheck" || path.starts_with("/grpc.health.v1.Health/")
}

/// Methods the read-only key may call.
fn is_read(path: &str) -> bool {
    const READS: [&str; 28] = [
        "/qdrant.Collections/Get",
        "/qdrant.Collections/List",
        "/qdrant.Collections/ListCollectionAliases",
        "/qdrant.Collections/ListAliases",
        "/qdrant.Collections/CollectionClusterInfo",
        "/qdrant.Collections/CollectionExists",
        "/qdrant.Collections/ListShardKeys",
        "/qdrant.Points/Get",
        "/qdrant.Points/Search",
        "/qdrant.Points/SearchBatch",
        "/qdrant.Points/SearchGroups",
        "/qdrant.Points/Scroll",
        "/qdrant.Points/Recommend",
        "/qdrant.Points/RecommendBatch",
        "/qdrant.Points/RecommendGroups",
        "/qdrant.Points/Discover",
        "/qdrant.Points/DiscoverBatch",
        "/qdrant.Points/Count",
        "/qdrant.Points/Query",
        "/qdrant.Points/QueryBatch",
        "/qdrant.Points/QueryGroups",
        "/qdrant.Points/Facet",
        "/qdrant.Points/SearchMatrixPairs",
        "/qdrant.Points/SearchMatrixOffsets",
        "/qdrant.Snapshots/List",
        "/qdrant.Snapshots/ListFull",
        "/qdrant.Qdrant/HealthCheck",
        "/grpc.health.v1.Health/Check",
    ];
    READS.contains(&path)
}

fn refusal_status(refusal: Refusal) -> Status {
    let code = match refusal {
        Refusal::Missing | Refusal::Invalid => Code::Unauthenticated,
        Refusal::ReadOnly => Code::PermissionDenied,
    };
    Status::new(code, refusal.message())
}

#[derive(Clone)]
pub struct AuthLayer {
    node: Arc<Node>,
}

impl AuthLayer {
    pub fn new(node: Arc<Node>) -> Self {
        AuthLayer { node }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            node: self.node.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    node: Arc<Node>,
}

impl<S, B> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let path = req.uri().path().to_string();
        let service = &self.node.settings.service;
        let allowed = if is_public(&path) {
            Ok(())
        } else {
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
            let presented = auth::presented_key(header("api-key"), header("authorization"));
            auth::check(service, presented, is_read(&path))
        };
        let node = self.node.clone();
        let response = match allowed {
            Ok(()) => Ok(self.inner.call(req)),
            Err(refusal) => Err(refusal_status(refusal)),
        };
        Box::pin(async move {
            let response = match response {
                Ok(call) => call.await?,
                Err(status) => status.into_http(),
            };
            // A failed call answers with its status in the headers (trailers-only response);
            // a successful one puts `grpc-status: 0` in the trailers. As Qdrant: the header's
            // code, else 0 for an HTTP success and 2 (UNKNOWN) otherwise.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|s| s.to_str().ok()?.parse::<i32>().ok())
                .unwrap_or(if response.status().is_success() { 0 } else { 2 });
            let collection = response.extensions().get::<CollectionName>().map(|c| c.0.as_str());
            node.metrics
                .observe_grpc(&path, code, collection, started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_classes() {
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(!is_public("/qdrant.Points/Search"));
        assert!(is_read("/qdrant.Points/Query"));
        assert!(!is_read("/qdrant.Points/Upsert"));
        assert!(!is_read("/qdrant.Collections/Delete"));
        assert_eq!(refusal_status(Refusal::ReadOnly).code(), Code::PermissionDenied);
        assert_eq!(refusal_status(Refusal::Missing).code(), Code::Unauthenticated);
    }
}
