//! Shard-level behaviour that needs the indexer held still: `indexed_only`.

use std::time::Duration;

use super::LocalShard;
use crate::model::collection::{CollectionConfig, CreateCollection};
use crate::model::operations::{PointOperation, PointStruct};
use crate::model::payload::PayloadSelector;
use crate::model::query::{SearchParams, ShardQuery, ShardQueryKind};
use crate::model::vector::{VectorInput, WithVector};
use crate::model::PointId;
use crate::settings::Settings;
use crate::storage::index::IndexingOptions;

fn config(json: &str) -> CollectionConfig {
    serde_json::from_str::<CreateCollection>(json)
        .unwrap()
        .into_config(&Settings::default(), 1)
        .unwrap()
}

fn upsert(shard: &LocalShard, ids: std::ops::Range<u64>) {
    let points = ids
        .map(|i| PointStruct {
            id: PointId::Num(i),
            vector: serde_json::from_value::<VectorInput>(serde_json::json!([i as f32, 1.0])).unwrap(),
            payload: None,
        })
        .collect();
    shard
        .apply(&PointOperation::Upsert(points, Default::default()), false)
        .unwrap();
}

fn nearest_ids(shard: &LocalShard, indexed_only: bool, exact: bool) -> Vec<u64> {
    let query = ShardQuery {
        using: String::new(),
        kind: ShardQueryKind::Dense(vec![0.0, 1.0]),
        filter: None,
        limit: 10_000,
        params: SearchParams {
            indexed_only,
            exact,
            ..Default::default()
        },
        score_threshold: None,
        with_payload: PayloadSelector::None,
        with_vector: WithVector::default(),
        exclude: Vec::new(),
        candidates: None,
        sibling: false,
    };
    let mut ids: Vec<u64> = shard
        .search(&query)
        .unwrap()
        .into_iter()
        .map(|p| match p.id {
            PointId::Num(n) => n,
            PointId::Uuid(_) => unreachable!(),
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Opens a shard, indexes `indexed` points, stops the indexer and adds `backlog` more.
fn shard_with_backlog(dir: &std::path::Path, threshold_kb: usize, indexed: u64, backlog: u64) -> LocalShard {
    let config = config(&format!(
        r#"{{"vectors": {{"size": 2, "distance": "Euclid"}},
            "hnsw_config": {{"full_scan_threshold": {threshold_kb}}},
            "optimizers_config": {{"indexing_threshold": {threshold_kb}}}}}"#
    ));
    let indexing = IndexingOptions {
        threads: 1,
        engine: Default::default(),
    };
    let shard = LocalShard::open(0, dir, &config, indexing).unwrap();
    upsert(&shard, 0..indexed);
    assert!(shard.wait_indexed(Duration::from_secs(30)));
    if let Some(indexer) = shard.indexer.lock().take() {
        indexer.stop();
    }
    upsert(&shard, indexed..indexed + backlog);
    shard
}

#[test]
fn indexed_only_skips_a_large_backlog() {
    let dir = tempfile::tempdir().unwrap();
    // 3000 pending 2-d vectors are 23 KB, over a 10 KB threshold.
    let shard = shard_with_backlog(dir.path(), 10, 100, 3000);
    assert_eq!(nearest_ids(&shard, false, false), (0..3100).collect::<Vec<_>>());
    assert_eq!(nearest_ids(&shard, true, false), (0..100).collect::<Vec<_>>());
    assert_eq!(nearest_ids(&shard, true, true), (0..100).collect::<Vec<_>>());
}

#[test]
fn indexed_only_still_searches_a_small_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_with_backlog(dir.path(), 10_000, 100, 3000);
    assert_eq!(nearest_ids(&shard, true, false), (0..3100).collect::<Vec<_>>());
}

#[test]
fn indexed_only_with_nothing_indexed_yet_finds_nothing_in_a_large_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_with_backlog(dir.path(), 10, 0, 3000);
    assert!(nearest_ids(&shard, true, false).is_empty());
    assert_eq!(nearest_ids(&shard, false, false).len(), 3000);
}
