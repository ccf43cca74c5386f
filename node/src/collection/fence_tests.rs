//! The write fence and versioned writes on one replica, as `execute_fenced` runs them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::execute_fenced;
use super::remote::{RemoteShards, Replica, Routing};
use super::shard_request::{ShardRequest, ShardResponse};
use crate::cluster::network::PeerClients;
use crate::cluster::ReplicaState;
use crate::model::collection::CreateCollection;
use crate::model::operations::{PointOperation, PointStruct};
use crate::model::vector::VectorInput;
use crate::model::PointId;
use crate::settings::Settings;
use crate::storage::index::IndexingOptions;
use crate::storage::shard::LocalShard;

/// Routing by cluster state `index`, with shard 0 fenced at `epoch` and its replica here Active.
fn routing(index: u64, epoch: u64) -> RwLock<Option<Arc<Routing>>> {
    routing_with(index, epoch, ReplicaState::Active)
}

/// Routing by cluster state `index`, with shard 0 fenced at `epoch` and its replica here `state`.
fn routing_with(index: u64, epoch: u64, state: ReplicaState) -> RwLock<Option<Arc<Routing>>> {
    let clients = Arc::new(PeerClients::new(Duration::from_secs(1), Duration::from_secs(1)));
    RwLock::new(Some(Arc::new(Routing {
        this_peer: 1,
        index,
        write_epochs: BTreeMap::from([(0, epoch)]),
        shards: BTreeMap::from([(0, vec![Replica { peer: 1, state }])]),
        uris: BTreeMap::new(),
        remote: Arc::new(RemoteShards::new(clients, Duration::from_secs(1))),
        on_replica_failed: Arc::new(|_, _, _, _| Box::pin(async { Ok(()) })),
        sync_view: Arc::new(move || Box::pin(async move { Ok(index) })),
    })))
}

fn shard(dir: &std::path::Path) -> LocalShard {
    let config = serde_json::from_str::<CreateCollection>(r#"{"vectors": {"size": 2, "distance": "Dot"}}"#)
        .unwrap()
        .into_config(&Settings::default(), 1)
        .unwrap();
    let indexing = IndexingOptions {
        threads: 1,
        engine: Default::default(),
    };
    LocalShard::open(0, dir, &config, indexing).unwrap()
}

fn write(version: u64, routing_index: u64) -> ShardRequest {
    let point = PointStruct {
        id: PointId::Num(1),
        vector: serde_json::from_value::<VectorInput>(serde_json::json!([1.0, 2.0])).unwrap(),
        payload: None,
    };
    ShardRequest::Update {
        op: PointOperation::Upsert(vec![point], Default::default()),
        wait: false,
        version,
        routing_index,
    }
}

#[test]
fn a_write_routed_before_the_fence_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard(dir.path());
    let routing = routing(10, 8);
    let refused = execute_fenced(&routing, &shard, &write(100, 7)).unwrap();
    assert!(matches!(refused, ShardResponse::Fenced(8)), "{refused:?}");
    assert_eq!(shard.points_count(), 0, "a fenced write changes nothing");
    let taken = execute_fenced(&routing, &shard, &write(100, 8)).unwrap();
    assert!(matches!(taken, ShardResponse::Updated(_)), "{taken:?}");
    assert_eq!(shard.points_count(), 1);
    // The same write again (a retry) is taken and changes nothing; an older one is reported.
    let again = execute_fenced(&routing, &shard, &write(100, 10)).unwrap();
    assert!(matches!(again, ShardResponse::Updated(_)), "{again:?}");
    let older = execute_fenced(&routing, &shard, &write(90, 10)).unwrap();
    assert!(matches!(older, ShardResponse::Stale(100)), "{older:?}");
    assert_eq!(shard.max_version(), 100);
}

#[test]
fn a_transfer_page_is_served_only_once_the_source_routes_by_the_transfer_start() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard(dir.path());
    let routing = routing(10, 0);
    execute_fenced(&routing, &shard, &write(5, 10)).unwrap();
    let export = |fence| ShardRequest::Export {
        offset: None,
        limit: 10,
        fence,
    };
    assert!(execute_fenced(&routing, &shard, &export(11)).is_err());
    match execute_fenced(&routing, &shard, &export(10)).unwrap() {
        ShardResponse::Page {
            points, routing_index, ..
        } => {
            assert_eq!(routing_index, 10);
            assert_eq!(
                points.iter().map(|p| (p.point.id, p.version)).collect::<Vec<_>>(),
                vec![(PointId::Num(1), 5)]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_replica_marked_dead_serves_no_transfer_page() {
    // It missed an acknowledged write: a copy of it would lack that write.
    let dir = tempfile::tempdir().unwrap();
    let shard = shard(dir.path());
    execute_fenced(&routing(10, 0), &shard, &write(5, 10)).unwrap();
    let export = ShardRequest::Export {
        offset: None,
        limit: 10,
        fence: 10,
    };
    for state in [ReplicaState::Dead, ReplicaState::Partial] {
        let refused = execute_fenced(&routing_with(12, 0, state), &shard, &export);
        assert!(refused.is_err(), "{state:?}: {refused:?}");
    }
    assert!(execute_fenced(&routing_with(12, 0, ReplicaState::Active), &shard, &export).is_ok());
}

#[test]
fn a_repair_compared_before_the_replica_was_refilled_is_refused() {
    // The replica was reset and refilled (a transfer began at 8): it has lost its tombstones,
    // so a repair planned on an older view could bring back a point deleted meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let shard = shard(dir.path());
    let routing = routing(10, 8);
    let stale = crate::model::operations::ReplicaPoints {
        points: vec![crate::model::operations::VersionedPoint {
            point: PointStruct {
                id: PointId::Num(1),
                vector: serde_json::from_value::<VectorInput>(serde_json::json!([1.0, 2.0])).unwrap(),
                payload: None,
            },
            version: 50,
        }],
        tombstones: Vec::new(),
    };
    let repair = |routing_index| ShardRequest::Repair {
        points: stale.clone(),
        routing_index,
    };
    let refused = execute_fenced(&routing, &shard, &repair(7)).unwrap();
    assert!(matches!(refused, ShardResponse::Fenced(8)), "{refused:?}");
    assert_eq!(shard.points_count(), 0);
    let taken = execute_fenced(&routing, &shard, &repair(9)).unwrap();
    assert!(matches!(taken, ShardResponse::Updated(_)), "{taken:?}");
    assert_eq!(shard.points_count(), 1);
}
