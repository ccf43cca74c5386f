//! A Qdrant-compatible vector database node. See DESIGN.md for the layering:
//! `api` -> `node` -> `collection` -> `storage`, with `model` shared by all.

pub mod api;
pub mod cluster;
pub mod collection;
pub mod error;
pub mod issues;
pub mod metrics;
pub mod model;
pub mod node;
pub mod settings;
pub mod snapshot;
pub mod storage;
pub mod telemetry;

/// Generated from `proto/peer.proto`.
pub mod peer_proto {
    tonic::include_proto!("peer");
}
