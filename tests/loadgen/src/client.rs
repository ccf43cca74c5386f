//! The calls the benchmark makes to a server, independent of the transport.
//!
//! `rest::QdrantClient` (JSON over HTTP/1.1) and `grpc::GrpcClient` (protobuf over HTTP/2)
//! implement [`ServerClient`]; the upload and search workloads are generic over it, so both
//! transports run exactly the same workload. Requests are encoded ahead of time by
//! `encode_*` (outside the timed section) and only sent by `query`/`upsert`.

use crate::grpc::GrpcError;
use crate::rest::{CollectionInfo, CollectionParams, RestError};
use std::future::Future;

/// Which protocol qbench speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Qdrant's REST API (`--url`).
    Rest,
    /// Qdrant's public gRPC API (`--grpc-url`).
    Grpc,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::Grpc => "grpc",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
}

pub trait ServerClient: Clone + Send + Sync + 'static {
    /// A search request, encoded once and sent many times.
    type Query: Send + Sync + 'static;
    /// One upsert batch, encoded before it is timed.
    type Batch: Send + 'static;

    /// Where the requests go, for messages and reports.
    fn endpoint(&self) -> &str;

    /// Nearest-neighbour query of `vector` in `collection`: ids only, no payload.
    fn encode_query(&self, collection: &str, vector: &[f32], limit: usize, hnsw_ef: Option<usize>) -> Self::Query;

    /// Points `first_id..` with the `dim`-wide rows of `rows` as their vectors.
    fn encode_batch(&self, collection: &str, first_id: u64, rows: &[f32], dim: usize) -> Self::Batch;

    /// Sends a query encoded for `collection`; the result ids, best first.
    fn query(&self, collection: &str, q: &Self::Query) -> impl Future<Output = Result<Vec<u64>, ClientError>> + Send;

    /// Sends a batch encoded for `collection`; `wait`: answer only once it is applied.
    fn upsert(
        &self,
        collection: &str,
        b: Self::Batch,
        wait: bool,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// Deletes the collection; a missing collection is not an error.
    fn delete_collection(&self, name: &str) -> impl Future<Output = Result<(), ClientError>> + Send;

    fn create_collection(
        &self,
        name: &str,
        params: &CollectionParams,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    fn collection_info(&self, name: &str) -> impl Future<Output = Result<CollectionInfo, ClientError>> + Send;
}
