//! Conversions between the generated gRPC messages and the node's `model` types, one module per
//! direction: `from_grpc` (requests into model types, validating as it goes) and `to_grpc`
//! (results into response messages).

pub mod from_grpc;
pub mod to_grpc;
