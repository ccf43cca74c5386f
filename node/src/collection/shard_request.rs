//! One operation on one shard replica, as a value. The same request runs on a local shard or
//! travels to the peer that holds the replica (peer gRPC `Shards.Call`, JSON), so local and
//! remote execution share one code path: [`execute`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::facet::FacetHit;
use crate::model::operations::{PointOperation, ReplicaPoints, VersionedPoint};
use crate::model::payload::PayloadSelector;
use crate::model::query::{Record, ScoredPoint, ShardQuery, ShardQueryKind};
use crate::model::vector::WithVector;
use crate::model::{Filter, PointId};
use crate::storage::payload_index::PayloadIndexInfo;
use crate::storage::shard::LocalShard;
pub use crate::storage::sparse_index::SparseStats;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardRequest {
    /// A write already validated and routed to this shard, stamped with the version its
    /// coordinator gave it (0 from a coordinator that stamps none: the replica picks one) and
    /// the consensus index of the routing that chose the replicas (the write fence, see
    /// `Collection::execute_fenced`).
    Update {
        op: PointOperation,
        wait: bool,
        #[serde(default)]
        version: u64,
        #[serde(default)]
        routing_index: u64,
    },
    /// An ordered write (`?ordering=medium|strong`) sent to the shard's coordinating replica,
    /// which applies it to every replica (run by the collection, not by one shard).
    Coordinate {
        op: PointOperation,
        wait: bool,
    },
    Retrieve {
        ids: Vec<PointId>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    },
    /// Up to `limit` points with id >= `offset`, in id order.
    Scroll {
        offset: Option<PointId>,
        limit: usize,
        filter: Option<Filter>,
        with_payload: PayloadSelector,
        with_vector: WithVector,
    },
    Count {
        filter: Option<Filter>,
    },
    /// A page of a transfer: up to `limit` points with id >= `offset`, with their versions,
    /// served only once the source applied consensus index `fence` (the transfer's start).
    Export {
        offset: Option<PointId>,
        limit: usize,
        fence: u64,
    },
    /// Value counts of a payload key.
    Facet {
        key: String,
        filter: Option<Filter>,
    },
    Search {
        query: ShardQuery,
    },
    /// Counters and payload schema for `GET /collections/{c}`.
    Info,
    /// IDF statistics of a sparse vector for a query's terms (within `corpus` when given).
    SparseStats {
        using: String,
        indices: Vec<u32>,
        corpus: Option<Filter>,
    },
    /// Anti-entropy: the replica's digest over `buckets` buckets. With `fence`, a transfer's
    /// catch-up: served like [`ShardRequest::Export`].
    Digest {
        buckets: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
    },
    /// Anti-entropy: the points and tombstones of the `wanted` buckets (of `buckets`). With
    /// `fence`, a transfer's catch-up: served like [`ShardRequest::Export`].
    BucketPoints {
        wanted: Vec<u32>,
        buckets: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fence: Option<u64>,
    },
    /// Anti-entropy: take the reference replica's points and deletes where they are newer than
    /// (or, for points, as new as) what this replica holds. Fenced like a write by the cluster
    /// state the reference compared in (`routing_index`): a replica refilled since then (its
    /// tombstones gone with the reset) must not take points the reference had not seen deleted.
    Repair {
        points: ReplicaPoints,
        #[serde(default)]
        routing_index: u64,
    },
}

impl ShardRequest {
    /// The consensus index a transfer read must be served at (see [`ShardRequest::Export`]).
    pub fn transfer_fence(&self) -> Option<u64> {
        match self {
            ShardRequest::Export { fence, .. } => Some(*fence),
            ShardRequest::Digest { fence, .. } | ShardRequest::BucketPoints { fence, .. } => *fence,
            _ => None,
        }
    }

    /// A nearest-neighbour search that walks `shard`'s HNSW with no filter, no exclusions and a
    /// modest `hnsw_ef`: short (well under a millisecond at typical ef) and bounded, so it runs on
    /// the async worker instead of a blocking thread, saving two thread hand-offs per request.
    pub fn runs_inline(&self, shard: &LocalShard) -> bool {
        const MAX_INLINE_EF: usize = 512;
        /// Prefetched candidates a re-scoring query may score exactly on the async worker.
        const MAX_INLINE_CANDIDATES: usize = 1024;
        match self {
            ShardRequest::Search { query } if query.sibling => false,
            ShardRequest::Search { query } if query.candidates.is_some() => {
                query.filter.is_none()
                    && query
                        .candidates
                        .as_ref()
                        .is_some_and(|c| c.len() <= MAX_INLINE_CANDIDATES)
            }
            ShardRequest::Search { query } => {
                query.filter.is_none()
                    && query.exclude.is_empty()
                    && !query.params.exact
                    && query.limit <= MAX_INLINE_EF
                    && query.params.hnsw_ef.unwrap_or(0) <= MAX_INLINE_EF
                    && matches!(query.kind, ShardQueryKind::Dense(_))
                    && shard.search_is_short(query)
            }
            _ => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ShardRequest::Update { .. } => "update",
            ShardRequest::Coordinate { .. } => "coordinate",
            ShardRequest::Retrieve { .. } => "retrieve",
            ShardRequest::Scroll { .. } => "scroll",
            ShardRequest::Count { .. } => "count",
            ShardRequest::Export { .. } => "export",
            ShardRequest::Facet { .. } => "facet",
            ShardRequest::Search { .. } => "search",
            ShardRequest::Info => "info",
            ShardRequest::SparseStats { .. } => "sparse_stats",
            ShardRequest::Digest { .. } => "digest",
            ShardRequest::BucketPoints { .. } => "bucket_points",
            ShardRequest::Repair { .. } => "repair",
        }
    }
}

/// One shard's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardInfo {
    pub points: usize,
    pub indexed_vectors: usize,
    pub pending_vectors: usize,
    pub payload_schema: BTreeMap<String, PayloadIndexInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardResponse {
    /// The shard's operation sequence number after the write.
    Updated(u64),
    Records(Vec<Record>),
    Count(usize),
    Hits(Vec<ScoredPoint>),
    Info(ShardInfo),
    Facet(Vec<FacetHit>),
    SparseStats(SparseStats),
    Digest(Vec<u64>),
    /// A replica's points and tombstones (anti-entropy).
    Bucket(ReplicaPoints),
    /// A transfer page and the consensus index of the routing it was read under.
    Page {
        points: Vec<VersionedPoint>,
        routing_index: u64,
        /// The source's tombstones in the page's id range: a refilled replica keeps knowing
        /// what was deleted recently, so a late older write or repair cannot bring it back.
        #[serde(default)]
        tombstones: Vec<(PointId, u64)>,
    },
    /// A write refused by the write fence: the writer routed it with a state older than
    /// `epoch`, so it may have skipped a replica; it must route it again.
    Fenced(u64),
    /// A write older than a version this replica holds for some of its points (stamped by a
    /// peer whose clock is behind, or racing a concurrent write): those points were left alone.
    /// The writer stamps it again past the version given and sends it again.
    Stale(u64),
}

/// Runs `request` on a local shard (blocking: call it on a blocking thread).
pub fn execute(shard: &LocalShard, request: &ShardRequest) -> Result<ShardResponse> {
    Ok(match request {
        ShardRequest::Update { op, wait, version, .. } => {
            let applied = shard.apply(op, *version, *wait)?;
            match applied.newer_held {
                Some(held) => ShardResponse::Stale(held),
                None => ShardResponse::Updated(applied.seq),
            }
        }
        ShardRequest::Coordinate { .. } => {
            return Err(Error::internal(
                "an ordered write is run by its collection, not by one shard",
            ))
        }
        ShardRequest::Retrieve {
            ids,
            with_payload,
            with_vector,
        } => ShardResponse::Records(shard.retrieve(ids, with_payload, with_vector)),
        ShardRequest::Scroll {
            offset,
            limit,
            filter,
            with_payload,
            with_vector,
        } => ShardResponse::Records(shard.scroll(*offset, *limit, filter.as_ref(), with_payload, with_vector)),
        ShardRequest::Count { filter } => ShardResponse::Count(shard.count(filter.as_ref())),
        ShardRequest::Export { .. } => {
            return Err(Error::internal(
                "a transfer page is served by its collection, not by one shard",
            ))
        }
        ShardRequest::Facet { key, filter } => ShardResponse::Facet(shard.facet(key, filter.as_ref())?),
        ShardRequest::Search { query } => ShardResponse::Hits(shard.search(query)?),
        ShardRequest::Info => ShardResponse::Info(ShardInfo {
            points: shard.points_count(),
            indexed_vectors: shard.indexed_vectors_count(),
            pending_vectors: shard.pending_vectors_count(),
            payload_schema: shard.payload_schema(),
        }),
        ShardRequest::SparseStats { using, indices, corpus } => {
            ShardResponse::SparseStats(shard.sparse_stats(using, indices, corpus.as_ref()))
        }
        ShardRequest::Digest { buckets, .. } => ShardResponse::Digest(shard.digest(*buckets)),
        ShardRequest::BucketPoints { wanted, buckets, .. } => {
            ShardResponse::Bucket(shard.bucket_contents(wanted, *buckets))
        }
        ShardRequest::Repair { points, .. } => ShardResponse::Updated(shard.merge(points, true, true)?),
    })
}

/// The response a request of this kind expects, or an internal error naming what came instead.
macro_rules! expect_response {
    ($response:expr, $variant:ident) => {
        match $response {
            $crate::collection::shard_request::ShardResponse::$variant(v) => Ok(v),
            other => Err($crate::error::Error::internal(format!(
                "unexpected shard response {:?}, expected {}",
                std::mem::discriminant(&other),
                stringify!($variant)
            ))),
        }
    };
}
pub(crate) use expect_response;
