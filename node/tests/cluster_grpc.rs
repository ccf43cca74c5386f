//! The public gRPC API in cluster mode, through the official Rust SDK: a collection with 3 shards
//! and 2 replicas each is created through one follower, written through another, and every
//! peer answers count, scroll, exact search, retrieval and cluster info identically over gRPC.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::start_cluster;
use common::grpc::{assert_ranking, connect, default_vector, eventually, int, num_id, ranking, run, Metric};
use common::vectors;
use qdrant_client::qdrant::{
    CountPointsBuilder, CreateCollectionBuilder, Distance, GetPointsBuilder, PointId, PointStruct, ReplicaState,
    ScrollPointsBuilder, SearchParamsBuilder, SearchPointsBuilder, UpdateStatus, UpsertPointsBuilder, Value,
    VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};

const DIM: usize = 8;
const POINTS: u64 = 300;
const SHARDS: u32 = 3;
const REPLICAS: u32 = 2;

/// Shard id -> peers holding an Active replica, as `p` reports it over gRPC, checking the
/// shape of the answer on the way.
async fn placement(c: &Qdrant, peer_id: u64) -> Result<BTreeMap<u32, BTreeSet<u64>>, String> {
    let info = c
        .collection_cluster_info("c")
        .await
        .map_err(|e| format!("cluster info from {peer_id}: {e}"))?;
    if info.peer_id != peer_id {
        return Err(format!("peer_id {} != {peer_id}: {info:?}", info.peer_id));
    }
    if info.shard_count != u64::from(SHARDS) {
        return Err(format!("shard_count: {info:?}"));
    }
    let mut holders: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for s in &info.local_shards {
        if s.state != ReplicaState::Active as i32 {
            return Err(format!("local shard {} not Active: {info:?}", s.shard_id));
        }
        holders.entry(s.shard_id).or_default().insert(peer_id);
    }
    for s in &info.remote_shards {
        if s.state != ReplicaState::Active as i32 {
            return Err(format!("remote shard {} not Active: {info:?}", s.shard_id));
        }
        if s.peer_id == peer_id {
            return Err(format!("remote shard {} on the peer itself: {info:?}", s.shard_id));
        }
        if !holders.entry(s.shard_id).or_default().insert(s.peer_id) {
            return Err(format!("shard {} listed twice on {}: {info:?}", s.shard_id, s.peer_id));
        }
    }
    Ok(holders)
}

#[test]
fn replicated_collection_over_grpc_through_every_peer() {
    let peers = start_cluster(3, &[]);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().expect("peer id")).collect();
    let leader = peers[0].cluster().expect("cluster")["raft_info"]["leader"]
        .as_u64()
        .expect("leader");
    // Two distinct followers, preferring peers other than the first one.
    let followers: Vec<usize> = (0..peers.len()).rev().filter(|i| ids[*i] != leader).collect();
    assert!(followers.len() >= 2, "leader {leader}, peers {ids:?}");
    let (creator, writer) = (followers[0], followers[1]);
    println!(
        "leader {leader}; create through {}, write through {}",
        ids[creator], ids[writer]
    );
    let urls: Vec<String> = peers.iter().map(|p| p.grpc_url.clone()).collect();

    run(Duration::from_secs(180), async {
        let mut clients = Vec::new();
        for u in &urls {
            clients.push(connect(u, None).await);
        }

        // Created through a follower: 3 shards, 2 replicas each.
        let r = clients[creator]
            .create_collection(
                CreateCollectionBuilder::new("c")
                    .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine))
                    .shard_number(SHARDS)
                    .replication_factor(REPLICAS),
            )
            .await
            .expect("create through a follower");
        assert!(r.result);
        for (i, c) in clients.iter().enumerate() {
            let info = eventually(
                Duration::from_secs(10),
                &format!("collection on peer {}", ids[i]),
                || async { c.collection_info("c").await.map_err(|e| e.to_string()) },
            )
            .await;
            let params = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .expect("params");
            assert_eq!(params.shard_number, SHARDS, "{params:?}");
            assert_eq!(params.replication_factor, Some(REPLICAS), "{params:?}");
        }

        // Every peer reports the same placement: each shard on exactly 2 peers, 2 shards per peer.
        let mut placements = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let p = eventually(
                Duration::from_secs(20),
                &format!("all replicas Active per peer {}", ids[i]),
                || async {
                    let p = placement(c, ids[i]).await?;
                    if p.len() == SHARDS as usize && p.values().all(|h| h.len() == REPLICAS as usize) {
                        Ok(p)
                    } else {
                        Err(format!("{p:?}"))
                    }
                },
            )
            .await;
            placements.push(p);
        }
        assert!(placements.windows(2).all(|w| w[0] == w[1]), "{placements:?}");
        let all_shards: BTreeSet<u32> = (0..SHARDS).collect();
        assert_eq!(placements[0].keys().copied().collect::<BTreeSet<_>>(), all_shards);
        for id in &ids {
            let held = placements[0].values().filter(|h| h.contains(id)).count();
            assert_eq!(held, 2, "peer {id} holds {held} replicas: {:?}", placements[0]);
        }
        println!("placement: {:?}", placements[0]);

        // 300 points through another follower, in three requests.
        let data = vectors(POINTS as usize, DIM, 5);
        for chunk in 0..3u64 {
            let points: Vec<PointStruct> = (chunk * 100..(chunk + 1) * 100)
                .map(|i| {
                    PointStruct::new(
                        i,
                        data[i as usize].clone(),
                        Payload::from([("n", Value::from(i as i64))]),
                    )
                })
                .collect();
            let r = clients[writer]
                .upsert_points(UpsertPointsBuilder::new("c", points).wait(true))
                .await
                .expect("upsert through a follower");
            assert_eq!(r.result.map(|u| u.status), Some(UpdateStatus::Completed as i32));
        }

        let queries = vectors(5, DIM, 55);
        let all_ids: Vec<u64> = (0..POINTS).collect();
        let mut local_points = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let who = ids[i];
            let count = c.count(CountPointsBuilder::new("c").exact(true)).await.expect("count");
            assert_eq!(count.result.map(|r| r.count), Some(POINTS), "count via {who}");

            // Scroll everything in pages of 64.
            let mut seen = Vec::new();
            let mut offset: Option<PointId> = None;
            for page in 0.. {
                assert!(page <= POINTS / 64 + 1, "scroll via {who} does not end");
                let mut req = ScrollPointsBuilder::new("c").limit(64);
                if let Some(o) = offset.take() {
                    req = req.offset(o);
                }
                let r = c.scroll(req).await.expect("scroll");
                seen.extend(r.result.iter().map(|p| num_id(&p.id)));
                offset = r.next_page_offset;
                if offset.is_none() {
                    break;
                }
            }
            assert_eq!(seen, all_ids, "scroll via {who}");

            // Exact search equals the brute force.
            for (qi, q) in queries.iter().enumerate() {
                let r = c
                    .search_points(
                        SearchPointsBuilder::new("c", q.clone(), 10).params(SearchParamsBuilder::default().exact(true)),
                    )
                    .await
                    .expect("search");
                assert_ranking(
                    &format!("search {qi} via {who}"),
                    &r.result,
                    &ranking(Metric::Cosine, &data, q),
                    10,
                );
            }

            // Retrieve every point (so ids of every shard) with payload and vector.
            let r = c
                .get_points(
                    GetPointsBuilder::new("c", all_ids.iter().map(|i| PointId::from(*i)).collect::<Vec<_>>())
                        .with_payload(true)
                        .with_vectors(true),
                )
                .await
                .expect("get");
            let mut got: Vec<u64> = r.result.iter().map(|p| num_id(&p.id)).collect();
            got.sort_unstable();
            assert_eq!(got, all_ids, "get via {who}");
            for p in &r.result {
                let id = num_id(&p.id);
                assert_eq!(
                    p.payload.get("n").and_then(int),
                    Some(id as i64),
                    "payload of {id} via {who}"
                );
                let want: Vec<f64> = common::grpc::normalized(&data[id as usize]);
                let v = default_vector(&p.vectors);
                assert!(
                    v.iter().zip(&want).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-5),
                    "vector of {id} via {who}: {v:?} vs {want:?}"
                );
            }
            let info = c.collection_cluster_info("c").await.expect("cluster info");
            local_points.push(info.local_shards.iter().map(|s| s.points_count).sum::<u64>());
        }
        // Every point is stored once per replica: the local shards of all peers add up.
        assert_eq!(
            local_points.iter().sum::<u64>(),
            POINTS * u64::from(REPLICAS),
            "{local_points:?}"
        );
    });
}
