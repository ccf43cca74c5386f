//! The node's APIs: REST (Qdrant's, port 6333) and, in cluster mode, the peer gRPC API.

pub mod peer;
pub mod rest;
