//! `/telemetry` and `/metrics`: one snapshot of the node (collections and their local shards,
//! the cluster, request statistics, memory and process readings) taken per request, rendered
//! as Qdrant's telemetry JSON (`json.rs`, by details level 0..=4) or as its Prometheus metrics
//! (`exposition.rs`, from the most detailed snapshot, as Qdrant renders them from level 4).
//! `?anonymize=true` hashes names and rounds counts as Qdrant does (`anonymize.rs`).

mod anonymize;
pub mod exposition;
pub mod json;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cluster::{ConsensusMetrics, ReplicaState};
use crate::collection::{blocking, Collection};
use crate::metrics::system::{self, Memory, Process, System};
use crate::metrics::RequestsSnapshot;
use crate::model::cluster::ShardTransferInfo;
use crate::model::collection::CollectionConfig;
use crate::node::Node;
use crate::settings::Settings;
use crate::storage::shard::{LocalShard, VectorMemory};

/// Qdrant's details levels stop adding at 4.
pub const MAX_LEVEL: usize = 4;

/// What a request asks for: `details_level`, `per_collection`, `anonymize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detail {
    pub level: usize,
    pub per_collection: bool,
    pub anonymize: bool,
}

/// The node as one request sees it.
pub struct Snapshot {
    pub id: String,
    pub version: &'static str,
    pub startup: DateTime<Utc>,
    pub settings: Arc<Settings>,
    pub number_of_collections: usize,
    /// Level 1 and up (and `/metrics`); empty below.
    pub collections: Vec<CollectionView>,
    pub cluster: Option<ClusterView>,
    pub rest: RequestsSnapshot<u16>,
    pub grpc: RequestsSnapshot<i32>,
    pub memory: Memory,
    /// Level 1 and up (and `/metrics`).
    pub system: Option<System>,
    /// `/metrics` only.
    pub process: Option<Process>,
}

pub struct CollectionView {
    pub name: String,
    pub config: CollectionConfig,
    /// This peer's id (0 standalone).
    pub peer_id: u64,
    pub shards: Vec<ShardView>,
    pub transfers: Vec<ShardTransferInfo>,
}

pub struct ShardView {
    pub id: u32,
    pub replicas: BTreeMap<u64, ReplicaState>,
    /// The replica on this peer, if any.
    pub local: Option<LocalView>,
}

/// Counts of one local replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalView {
    pub points: usize,
    /// Vectors stored per vector name ("" for the unnamed one), dense, multi and sparse.
    pub vectors: BTreeMap<String, usize>,
    /// Dense vectors an `indexed_only` search leaves out: a not-yet-indexed backlog too large
    /// to scan, per vector name (only names with some).
    pub indexed_only_excluded: BTreeMap<String, usize>,
    /// Where the dense vectors take memory (original vectors, HNSW with codes or vectors).
    pub memory: VectorMemory,
}

impl LocalView {
    pub fn vectors_total(&self) -> usize {
        self.vectors.values().sum()
    }
}

pub struct ClusterView {
    pub peer_id: u64,
    pub metrics: ConsensusMetrics,
    /// `GET /cluster`'s result: peers, raft_info, consensus_thread_status.
    pub status: Value,
}

impl ClusterView {
    /// When the consensus thread last made progress, if it is working.
    pub fn last_update(&self) -> Option<DateTime<Utc>> {
        let status = &self.status["consensus_thread_status"];
        if status["consensus_thread_status"] != "working" {
            return None;
        }
        let at = status["last_update"].as_str()?;
        DateTime::parse_from_rfc3339(at).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// Takes a snapshot. Level 3 and up (and `/metrics`, `with_process`) read every local shard.
pub async fn collect(node: &Arc<Node>, detail: Detail, with_process: bool) -> Snapshot {
    let with_shards = with_process || detail.level >= 1;
    let collections = if with_shards {
        let node = node.clone();
        blocking(move || Ok(collection_views(&node))).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let storage_path = node.settings.storage.storage_path.clone();
    let want_system = with_process || detail.level >= 1;
    let (system, process) = blocking(move || {
        Ok((
            want_system.then(|| system::system(&storage_path)),
            with_process.then(system::process).flatten(),
        ))
    })
    .await
    .unwrap_or((None, None));
    Snapshot {
        id: node.instance_id.to_string(),
        version: crate::api::rest::service::QDRANT_API_VERSION,
        startup: node.started_at,
        settings: node.settings.clone(),
        number_of_collections: node.collection_names().len(),
        collections,
        cluster: node.consensus().map(|c| ClusterView {
            peer_id: c.peer_id(),
            metrics: c.metrics(),
            status: c.status(),
        }),
        rest: node.metrics.rest(detail.per_collection),
        grpc: node.metrics.grpc(detail.per_collection),
        memory: system::memory(),
        system,
        process,
    }
}

fn collection_views(node: &Node) -> Vec<CollectionView> {
    node.collections()
        .into_iter()
        .map(|c| {
            let config = c.config();
            let (peer_id, shards, transfers) = match node.collection_cluster_info(&c.name) {
                Ok(info) => {
                    let mut shards: BTreeMap<u32, ShardView> = BTreeMap::new();
                    for l in &info.local_shards {
                        let s = shard_entry(&mut shards, l.shard_id);
                        s.replicas.insert(info.peer_id, l.state);
                        s.local = c.local_shard(l.shard_id).map(|shard| local_view(&shard, &config));
                    }
                    for r in &info.remote_shards {
                        shard_entry(&mut shards, r.shard_id).replicas.insert(r.peer_id, r.state);
                    }
                    (info.peer_id, shards.into_values().collect(), info.shard_transfers)
                }
                Err(_) => (0, local_only(&c, &config), Vec::new()),
            };
            CollectionView {
                name: c.name.clone(),
                config,
                peer_id,
                shards,
                transfers,
            }
        })
        .collect()
}

fn shard_entry(shards: &mut BTreeMap<u32, ShardView>, id: u32) -> &mut ShardView {
    shards.entry(id).or_insert_with(|| ShardView {
        id,
        replicas: BTreeMap::new(),
        local: None,
    })
}

/// The local shards of a collection the cluster state does not know (yet): each Active here.
fn local_only(c: &Collection, config: &CollectionConfig) -> Vec<ShardView> {
    c.shard_counts()
        .into_iter()
        .filter_map(|(id, _)| {
            let shard = c.local_shard(id)?;
            Some(ShardView {
                id,
                replicas: BTreeMap::from([(0, ReplicaState::Active)]),
                local: Some(local_view(&shard, config)),
            })
        })
        .collect()
}

/// Points and vectors of one local shard. Dense vectors are counted from the indexer's
/// bookkeeping (in the HNSW or waiting for it); sparse and multivectors by walking the points,
/// only when the collection has any.
pub fn local_view(shard: &LocalShard, config: &CollectionConfig) -> LocalView {
    let memory = shard.vector_memory();
    let state = shard.state.read();
    let mut view = LocalView {
        points: state.ids.len(),
        memory,
        ..LocalView::default()
    };
    for (name, ist) in &state.index_state {
        let dying_indexed = state.dying.iter().filter(|s| ist.indexed.contains(**s)).count();
        let count = (ist.indexed.len() as usize + ist.pending.len()).saturating_sub(dying_indexed);
        view.vectors.insert(name.clone(), count);
        if let Some(arena) = state.dense.get(name) {
            let backlog_kb = arena.kb_of(ist.pending.len());
            if backlog_kb > arena.unindexed_search_kb && !ist.pending.is_empty() {
                view.indexed_only_excluded.insert(name.clone(), ist.pending.len());
            }
        }
    }
    let mut walked: Vec<String> = config
        .params
        .vectors
        .by_name()
        .into_keys()
        .filter(|n| !state.index_state.contains_key(n))
        .collect();
    walked.extend(config.params.sparse_vectors.iter().flat_map(|s| s.keys().cloned()));
    for name in &walked {
        view.vectors.insert(name.clone(), 0);
    }
    if !walked.is_empty() {
        for slot in state.ids.values() {
            let Some(point) = state.live(*slot) else { continue };
            for name in point.sparse.keys().chain(point.multi.keys()) {
                if let Some(n) = view.vectors.get_mut(name) {
                    *n += 1;
                }
            }
        }
    }
    view
}
