//! Qdrant's public gRPC API (port 6334) over tonic.
//!
//! The wire contract is the generated server traits and messages of the `qdrant-client` crate
//! (`qdrant_client::qdrant`, here `grpc`). Handlers are thin, as on REST: convert the message into
//! `model` types (`convert::from_grpc`), call the same `Node`/`Collection` methods REST calls, and
//! convert the result back (`convert::to_grpc`). Errors become a `Status` in `error.rs`; API keys
//! and per-call metrics are a tower layer (`auth.rs`) in front of every service; TLS is the same as
//! REST's (`api::tls`).

pub mod access;
pub mod auth;
pub mod collections;
pub mod convert;
pub mod error;
pub mod per_collection;
pub mod points;
pub mod service;
pub mod snapshots;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant::collections_server::CollectionsServer;
use qdrant_client::qdrant::points_server::PointsServer;
use qdrant_client::qdrant::qdrant_server::QdrantServer;
use qdrant_client::qdrant::snapshots_server::SnapshotsServer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::api::tls::TlsListener;

use crate::node::Node;

/// Seconds since `started`, the `time` field of every response.
pub fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

/// Serves the public gRPC API on `listener` (over TLS with `tls`, see `api::tls`) until
/// `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let max = node.settings.service.max_request_size_mb.saturating_mul(1024 * 1024);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<PointsServer<points::PointsService>>().await;
    health
        .set_serving::<CollectionsServer<collections::CollectionsService>>()
        .await;
    // Pings find clients that vanished without closing their connection.
    let keepalive = node.settings.service.client_timeouts().header;
    let router = Server::builder()
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .layer(auth::AuthLayer::new(node.clone()))
        .add_service(health_service)
        .add_service(QdrantServer::new(service::QdrantService))
        .add_service(
            CollectionsServer::new(collections::CollectionsService::new(node.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            PointsServer::new(per_collection::Tagged(points::PointsService::new(node.clone())))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(SnapshotsServer::new(snapshots::SnapshotsService::new(node.clone())));
    match tls {
        Some(config) => {
            let incoming = TlsListener::new(listener, config)?.into_stream();
            router.serve_with_incoming_shutdown(incoming, shutdown).await?
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, shutdown).await?
        }
    }
    Ok(())
}
