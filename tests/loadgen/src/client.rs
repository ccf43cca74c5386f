//! The calls the benchmark makes to a server, independent of the transport.
//!
//! `rest::QdrantClient` (JSON over HTTP/1.1) and `grpc::GrpcClient` (protobuf over HTTP/2)
//! implement [`ServerClient`]; the upload and search workloads are generic over it, so both
//! transports run exactly the same workload. Requests are encoded ahead of time by
//! `encode_*` (outside the timed section) and only sent by `query`/`upsert`.

use crate::grpc::GrpcError;
use crate::rest::{CollectionInfo, CollectionParams, RestError};
use serde::{Deserialize, Serialize};
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

/// Qdrant's `params.quantization` of a search (`QuantizationSearchParams` over gRPC); unset
/// fields are left out, so the server applies its defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizationSearch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescore: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversampling: Option<f64>,
}

impl QuantizationSearch {
    /// Parses `--quantization` of `qbench search` (`{"ignore":false,"rescore":true,"oversampling":2.0}`).
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// These params with `oversampling` set and rescoring on (a point of the oversampling sweep).
    pub fn with_oversampling(self, oversampling: f64) -> Self {
        Self {
            rescore: Some(true),
            oversampling: Some(oversampling),
            ..self
        }
    }
}

/// The `params` of a search: `hnsw_ef` and quantization (both optional; neither = no `params`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryParams {
    pub hnsw_ef: Option<usize>,
    pub quantization: Option<QuantizationSearch>,
}

impl QueryParams {
    pub fn is_empty(&self) -> bool {
        self.hnsw_ef.is_none() && self.quantization.is_none()
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
    fn encode_query(&self, collection: &str, vector: &[f32], limit: usize, params: &QueryParams) -> Self::Query;

    /// Points `first_id..` with the `dim`-wide rows of `rows` as their vectors.
    /// `payload`: each point gets [`point_payload`] (otherwise vectors only).
    fn encode_batch(&self, collection: &str, first_id: u64, rows: &[f32], dim: usize, payload: bool) -> Self::Batch;

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

/// The payload of point `id` when an upload asks for payloads: an integer, a keyword of 1000
/// values and a short text, about 60 bytes of JSON.
pub fn point_payload(id: u64) -> (u64, String, String) {
    (
        id,
        format!("g{}", id % 1000),
        format!("point number {id} of the benchmark"),
    )
}
