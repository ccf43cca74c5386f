//! gRPC request messages into `model` types. Malformed messages are `Error::BadInput` (gRPC
//! `InvalidArgument`), never a panic.

pub mod cluster;
pub mod collection;
pub mod collection_config;
pub mod filter;
pub mod formula;
pub mod groups;
pub mod index;
pub mod point;
pub mod query;
pub mod value;
pub mod vector;
pub mod write;
