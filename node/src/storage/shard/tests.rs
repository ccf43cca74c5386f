//! Shard-level behaviour that needs a real shard: `indexed_only` (indexer held still) and
//! applying writes by version.

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
        .apply(&PointOperation::Upsert(points, Default::default()), 0, false)
        .unwrap();
}

/// A plain nearest query of `using` (no filter, payload or vectors).
fn nearest(using: &str, kind: ShardQueryKind, limit: usize, params: SearchParams) -> ShardQuery {
    ShardQuery {
        using: using.into(),
        kind,
        filter: None,
        limit,
        params,
        score_threshold: None,
        with_payload: PayloadSelector::None,
        with_vector: WithVector::default(),
        exclude: Vec::new(),
        candidates: None,
        sibling: false,
    }
}

fn nearest_ids(shard: &LocalShard, indexed_only: bool, exact: bool) -> Vec<u64> {
    let params = SearchParams {
        indexed_only,
        exact,
        ..Default::default()
    };
    let query = nearest("", ShardQueryKind::Dense(vec![0.0, 1.0]), 10_000, params);
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

fn point(id: u64, tag: &str) -> PointStruct {
    PointStruct {
        id: PointId::Num(id),
        vector: serde_json::from_value::<VectorInput>(serde_json::json!([id as f32, 1.0])).unwrap(),
        payload: Some(serde_json::from_value(serde_json::json!({ "tag": tag })).unwrap()),
    }
}

fn tag_of(shard: &LocalShard, id: u64) -> Option<String> {
    let records = shard.retrieve(&[PointId::Num(id)], &PayloadSelector::All, &WithVector::default());
    records
        .first()
        .map(|r| r.payload.as_ref().unwrap()["tag"].as_str().unwrap().to_string())
}

fn plain_shard(dir: &std::path::Path) -> LocalShard {
    let config = config(r#"{"vectors": {"size": 2, "distance": "Euclid"}}"#);
    LocalShard::open(
        0,
        dir,
        &config,
        IndexingOptions {
            threads: 1,
            engine: Default::default(),
        },
    )
    .unwrap()
}

fn upsert_at(shard: &LocalShard, p: PointStruct, version: u64) {
    shard
        .apply(&PointOperation::Upsert(vec![p], Default::default()), version, false)
        .unwrap();
}

fn delete_at(shard: &LocalShard, id: u64, version: u64) {
    let op = PointOperation::Delete(crate::model::operations::Selector::Ids(vec![PointId::Num(id)]));
    shard.apply(&op, version, false).unwrap();
}

#[test]
fn replicas_receiving_writes_in_different_orders_end_equal() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (plain_shard(da.path()), plain_shard(db.path()));
    upsert_at(&a, point(1, "old"), 10);
    upsert_at(&a, point(1, "new"), 20);
    upsert_at(&b, point(1, "new"), 20);
    upsert_at(&b, point(1, "old"), 10); // late: older than what b holds
    assert_eq!(tag_of(&a, 1).as_deref(), Some("new"));
    assert_eq!(tag_of(&b, 1).as_deref(), Some("new"));
    // Applying a write again changes nothing (and still counts as an operation).
    upsert_at(&a, point(1, "new"), 20);
    assert_eq!(a.max_version(), 20);
}

#[test]
fn a_delete_keeps_a_late_older_write_out_even_after_a_restart() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = plain_shard(da.path());
    upsert_at(&a, point(7, "x"), 10);
    delete_at(&a, 7, 30);
    let b = plain_shard(db.path());
    delete_at(&b, 7, 30); // b never saw the point: the tombstone is kept all the same
    upsert_at(&b, point(7, "x"), 10);
    assert_eq!(tag_of(&a, 7), None);
    assert_eq!(tag_of(&b, 7), None);
    drop(b);
    let b = plain_shard(db.path());
    upsert_at(&b, point(7, "late"), 20);
    assert_eq!(tag_of(&b, 7), None, "the tombstone survives a restart");
    assert_eq!(b.max_version(), 30, "the restarted replica knows its newest version");
    upsert_at(&b, point(7, "newer"), 40);
    assert_eq!(tag_of(&b, 7).as_deref(), Some("newer"));
}

#[test]
fn transferred_points_keep_newer_writes_and_merges_take_only_newer_or_tied() {
    use crate::model::operations::ReplicaPoints;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = plain_shard(da.path());
    upsert_at(&source, point(1, "one"), 10);
    upsert_at(&source, point(2, "two"), 11);
    let target = plain_shard(db.path());
    upsert_at(&target, point(2, "written during the transfer"), 50);
    let (page, _) = source.export(None, 10);
    assert_eq!(page.iter().map(|p| p.version).collect::<Vec<_>>(), vec![10, 11]);
    let merge = |points: Vec<_>, tombstones: Vec<_>| ReplicaPoints { points, tombstones };
    // A transfer page: taken where newer.
    target.merge(&merge(page.clone(), vec![]), false, false).unwrap();
    assert_eq!(tag_of(&target, 1).as_deref(), Some("one"));
    assert_eq!(tag_of(&target, 2).as_deref(), Some("written during the transfer"));
    // A repair never replaces something newer, even with ties allowed ...
    target.merge(&merge(page.clone(), vec![]), true, false).unwrap();
    assert_eq!(tag_of(&target, 2).as_deref(), Some("written during the transfer"));
    // ... but settles a tie, and takes newer deletes.
    let (mut tied, _) = source.export(Some(PointId::Num(1)), 1);
    tied[0].point.payload = Some(serde_json::from_value(serde_json::json!({ "tag": "reference" })).unwrap());
    target
        .merge(&merge(tied, vec![(PointId::Num(2), 60)]), true, false)
        .unwrap();
    assert_eq!(tag_of(&target, 1).as_deref(), Some("reference"));
    assert_eq!(tag_of(&target, 2), None);
    target
        .merge(&merge(vec![], vec![(PointId::Num(1), 5)]), true, false)
        .unwrap();
    assert_eq!(
        tag_of(&target, 1).as_deref(),
        Some("reference"),
        "an older delete is ignored"
    );
}

#[test]
fn partial_updates_apply_only_when_newer() {
    let dir = tempfile::tempdir().unwrap();
    let shard = plain_shard(dir.path());
    upsert_at(&shard, point(3, "base"), 10);
    let set = |tag: &str| PointOperation::SetPayload {
        payload: serde_json::from_value(serde_json::json!({ "tag": tag })).unwrap(),
        selector: crate::model::operations::Selector::Ids(vec![PointId::Num(3)]),
        key: None,
    };
    let stale = shard.apply(&set("stale"), 5, false).unwrap();
    assert_eq!(stale.newer_held, Some(10), "the writer learns what it was older than");
    assert_eq!(tag_of(&shard, 3).as_deref(), Some("base"));
    shard.apply(&set("fresh"), 15, false).unwrap();
    assert_eq!(tag_of(&shard, 3).as_deref(), Some("fresh"));
    // No version given (0): the shard stamps one past everything it holds.
    shard.apply(&set("local"), 0, false).unwrap();
    assert_eq!(tag_of(&shard, 3).as_deref(), Some("local"));
    assert_eq!(shard.max_version(), 16);
}

#[test]
fn digests_match_for_equal_replicas_however_filled_and_differ_otherwise() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = plain_shard(da.path());
    for i in 0..50 {
        upsert_at(&a, point(i, "x"), 100 + i);
    }
    let set = PointOperation::SetPayload {
        payload: serde_json::from_value(serde_json::json!({ "extra": 1 })).unwrap(),
        selector: crate::model::operations::Selector::Ids(vec![PointId::Num(3)]),
        key: None,
    };
    a.apply(&set, 200, false).unwrap();
    delete_at(&a, 4, 201);
    // b gets the same points by a transfer instead of by the writes.
    let b = plain_shard(db.path());
    let (points, tombstones) = a.export(None, 1000);
    b.merge(
        &crate::model::operations::ReplicaPoints { points, tombstones },
        false,
        false,
    )
    .unwrap();
    assert_eq!(a.digest(16), b.digest(16));
    // Reloaded from disk, the fingerprints are the same.
    drop(b);
    let b = plain_shard(db.path());
    assert_eq!(a.digest(16), b.digest(16));
    // One payload differs: exactly one bucket differs.
    upsert_at(&b, point(7, "y"), 300);
    let (da_, db_) = (a.digest(16), b.digest(16));
    assert_eq!(da_.iter().zip(&db_).filter(|(x, y)| x != y).count(), 1);
}

#[test]
fn taking_the_differing_buckets_makes_a_stale_copy_equal_to_the_source() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = plain_shard(da.path());
    for i in 0..40 {
        upsert_at(&source, point(i, "x"), 100 + i);
    }
    // The copy as a snapshot had it, then the source moves on.
    let copy = plain_shard(db.path());
    let (points, tombstones) = source.export(None, 1000);
    copy.merge(
        &crate::model::operations::ReplicaPoints { points, tombstones },
        false,
        false,
    )
    .unwrap();
    upsert_at(&source, point(3, "rewritten"), 300);
    upsert_at(&source, point(77, "new"), 301);
    delete_at(&source, 5, 302);
    // A point the copy holds that the source dropped with no tombstone left (expired).
    upsert_at(&copy, point(90, "forgotten"), 50);
    // A write that reached the copy first, newer than the source's: kept.
    upsert_at(&copy, point(8, "newer here"), 400);
    upsert_at(&source, point(8, "older"), 350);

    let buckets = 32;
    let (mine, theirs) = (copy.digest(buckets), source.digest(buckets));
    let differing: Vec<u32> = (0..buckets)
        .filter(|b| mine[*b as usize] != theirs[*b as usize])
        .collect();
    assert!(!differing.is_empty() && differing.len() < buckets as usize);
    let contents = source.bucket_contents(&differing, buckets);
    let dropped = copy.take_buckets(&contents, &differing, buckets).unwrap();
    assert_eq!(dropped, 1, "only the point the source forgot");
    assert_eq!(tag_of(&copy, 3).as_deref(), Some("rewritten"));
    assert_eq!(tag_of(&copy, 77).as_deref(), Some("new"));
    assert_eq!(tag_of(&copy, 5), None);
    assert_eq!(tag_of(&copy, 90), None);
    assert_eq!(tag_of(&copy, 8).as_deref(), Some("newer here"));
    // Apart from the point newer on the copy, the two hold the same.
    upsert_at(&source, point(8, "newer here"), 400);
    assert_eq!(copy.digest(buckets), source.digest(buckets));
}

fn multi_shard(dir: &std::path::Path) -> LocalShard {
    let config = config(
        r#"{"vectors": {"mv": {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}}"#,
    );
    let indexing = IndexingOptions {
        threads: 2,
        engine: Default::default(),
    };
    LocalShard::open(0, dir, &config, indexing).unwrap()
}

fn multi_nearest(shard: &LocalShard, exact: bool) -> Vec<(PointId, f32)> {
    let params = SearchParams {
        exact,
        hnsw_ef: Some(400),
        ..Default::default()
    };
    let rows = vec![vec![0.3, -0.2, 0.9, 0.1], vec![-0.5, 0.4, 0.0, 0.7]];
    let query = nearest("mv", ShardQueryKind::MultiDense(rows), 5, params);
    shard
        .search(&query)
        .unwrap()
        .into_iter()
        .map(|p| (p.id, p.score))
        .collect()
}

#[test]
fn multivectors_are_indexed_searched_through_the_graph_and_reloaded_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let shard = multi_shard(dir.path());
    let mut s = 1u64;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let points = (0..300u64)
        .map(|i| {
            let rows: Vec<Vec<f32>> = (0..1 + i % 4).map(|_| (0..4).map(|_| next()).collect()).collect();
            PointStruct {
                id: PointId::Num(i),
                vector: serde_json::from_value::<VectorInput>(serde_json::json!({ "mv": rows })).unwrap(),
                payload: None,
            }
        })
        .collect();
    shard
        .apply(&PointOperation::Upsert(points, Default::default()), 0, false)
        .unwrap();
    assert!(shard.wait_indexed(Duration::from_secs(30)));
    assert_eq!(shard.indexed_vectors_count(), 300, "every multivector is in the graph");
    let exact = multi_nearest(&shard, true);
    assert_eq!(exact.len(), 5);
    // 300 nodes at ef 400: the walk sees the whole graph, so it finds the exact answer.
    assert_eq!(multi_nearest(&shard, false), exact);
    drop(shard);

    let shard = multi_shard(dir.path());
    assert_eq!(
        shard.pending_vectors_count(),
        0,
        "the saved graph was loaded, not rebuilt"
    );
    assert_eq!(shard.indexed_vectors_count(), 300);
    assert_eq!(multi_nearest(&shard, false), exact);
}

#[test]
fn a_transfer_page_carries_the_tombstones_of_its_id_range() {
    use crate::model::operations::ReplicaPoints;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = plain_shard(da.path());
    for id in 1..=6 {
        upsert_at(&source, point(id, "x"), 10 + id);
    }
    delete_at(&source, 2, 30);
    delete_at(&source, 5, 31);
    // Point 9 was never held: still a tombstone.
    delete_at(&source, 9, 32);
    // Pages of 2 (plus the next page's first id): [1, 3), [3, 6), [6, ..).
    let (p1, t1) = source.export(None, 3);
    assert_eq!(p1.len(), 3);
    assert_eq!(t1, vec![(PointId::Num(2), 30)]);
    let (_, t2) = source.export(Some(PointId::Num(3)), 3);
    assert_eq!(t2, vec![(PointId::Num(5), 31)]);
    let (p3, t3) = source.export(Some(PointId::Num(6)), 3);
    assert_eq!(p3.len(), 1);
    assert_eq!(t3, vec![(PointId::Num(9), 32)]);
    // A refilled replica that took the page keeps the older write of point 2 out.
    let target = plain_shard(db.path());
    target
        .merge(
            &ReplicaPoints {
                points: p1,
                tombstones: t1,
            },
            false,
            false,
        )
        .unwrap();
    upsert_at(&target, point(2, "late"), 20);
    assert_eq!(tag_of(&target, 2), None);
    assert_eq!(tag_of(&target, 1).as_deref(), Some("x"));
}
