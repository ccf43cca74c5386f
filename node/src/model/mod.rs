//! Qdrant's data model, shared by every layer: REST and peer APIs parse into these types,
//! collections and shards compute on them. Serde shapes are Qdrant's JSON.

pub mod alias;
pub mod cluster;
pub mod collection;
pub mod facet;
pub mod filter;
pub mod formula;
pub mod groups;
pub mod matrix;
pub mod operations;
pub mod order_by;
pub mod payload;
pub mod point_id;
pub mod quantization;
pub mod query;
pub mod snapshot;
pub mod vector;
pub mod vector_name;

pub use filter::Filter;
pub use payload::Payload;
pub use point_id::PointId;
