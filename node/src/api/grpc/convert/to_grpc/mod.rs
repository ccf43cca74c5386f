//! `model` results into gRPC response messages.

pub mod cluster;
pub mod collection;
pub mod collection_config;
pub mod payload_schema;
pub mod point;
pub mod value;
