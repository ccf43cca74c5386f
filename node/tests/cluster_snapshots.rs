//! Snapshots in cluster mode with real processes: every peer of a 3-peer cluster snapshots its
//! local shards while writes continue; a fresh 3-peer cluster is restored from those snapshots
//! over HTTP (the collection is created from the snapshot's config, then each shard is recovered
//! on one peer with `priority: snapshot`, which has the other replicas refilled from it) and
//! then holds the same points and answers the same searches.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{eventually, placement, start_cluster, Peer};
use common::vectors;
use serde_json::{json, Value};

const SHARDS: u64 = 3;
const POINTS: u64 = 3000;

fn all_active(peers: &[Peer], name: &str) -> Result<(), String> {
    for p in peers {
        let (status, _) = p.call("GET", &format!("/collections/{name}/cluster"), None);
        if status != 200 {
            return Err(format!("peer {} has no {name} yet", p.url));
        }
        let placed = placement(p, name);
        if placed.len() as u64 != SHARDS || placed.values().flatten().any(|(_, s)| s != "Active") {
            return Err(format!("{placed:?}"));
        }
    }
    Ok(())
}

/// Every point (id -> payload) read through a peer, and exact search results (id, score) for a
/// few queries.
type Contents = (BTreeMap<u64, Value>, Vec<Vec<(u64, String)>>);

fn contents(p: &Peer) -> Contents {
    let r = p.ok(
        "POST",
        "/collections/c/points/scroll",
        Some(json!({"limit": POINTS * 2, "with_payload": true})),
    );
    let points = r["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pt| (pt["id"].as_u64().unwrap(), pt["payload"].clone()))
        .collect();
    let searches = vectors(5, 8, 99)
        .into_iter()
        .map(|q| {
            let r = p.ok(
                "POST",
                "/collections/c/points/query",
                Some(json!({"query": q, "limit": 10, "params": {"exact": true}})),
            );
            r["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["id"].as_u64().unwrap(),
                        format!("{:.4}", h["score"].as_f64().unwrap()),
                    )
                })
                .collect()
        })
        .collect();
    (points, searches)
}

#[test]
fn a_cluster_is_restored_from_its_peers_snapshots_into_a_fresh_cluster() {
    let source = start_cluster(3, &[]);
    let a = &source[0];
    let create = json!({"vectors": {"size": 8, "distance": "Cosine"}, "shard_number": SHARDS, "replication_factor": 2});
    assert_eq!(a.ok("PUT", "/collections/c?timeout=30", Some(create)), json!(true));
    let data = vectors(POINTS as usize, 8, 1);
    for chunk in (0..POINTS).collect::<Vec<_>>().chunks(500) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": data[i as usize], "payload": {"i": i, "tag": format!("t{}", i % 7)}}))
            .collect();
        a.ok(
            "PUT",
            "/collections/c/points?wait=true",
            Some(json!({"points": points})),
        );
    }
    eventually(Duration::from_secs(60), "source replicas active", || {
        all_active(&source, "c")
    });
    let expected = contents(a);
    assert_eq!(expected.0.len() as u64, POINTS);

    // Each peer snapshots its own shards; a write racing the snapshots changes nothing they hold
    // that a later comparison relies on (it goes to a point outside the compared range).
    let mut snapshots: Vec<(String, BTreeSet<u64>)> = Vec::new();
    for p in &source {
        let d = p.ok("POST", "/collections/c/snapshots", None);
        let name = d["name"].as_str().unwrap().to_string();
        let me = p.peer_id().unwrap();
        let local: BTreeSet<u64> = placement(p, "c")
            .into_iter()
            .filter(|(_, replicas)| replicas.contains_key(&me))
            .map(|(shard, _)| shard)
            .collect();
        assert_eq!(local.len(), 2, "rf 2 over 3 peers and 3 shards: two shards each");
        let (status, listed) = p.call("GET", "/collections/c/snapshots", None);
        assert_eq!(status, 200);
        assert!(listed["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name.as_str()));
        snapshots.push((format!("{}/collections/c/snapshots/{name}", p.url), local));
    }

    // A fresh cluster: the first recovery creates the collection from the snapshot's config.
    // Without anti-entropy, so that only the recovery's own replica sync can make them agree.
    let target = start_cluster(3, &[("QDRANT__CLUSTER__ANTI_ENTROPY_INTERVAL_SEC", "0")]);
    let b = &target[0];
    let r = b.ok(
        "PUT",
        "/collections/c/snapshots/recover?timeout=60",
        Some(json!({"location": snapshots[0].0, "priority": "snapshot"})),
    );
    assert_eq!(r, json!(true));
    let config = b.ok("GET", "/collections/c", None);
    assert_eq!(config["config"]["params"]["shard_number"], SHARDS);
    assert_eq!(config["config"]["params"]["replication_factor"], 2);

    // Then every shard from a snapshot that holds it, on a peer that holds it.
    for shard in 0..SHARDS {
        eventually(Duration::from_secs(90), "target replicas active", || {
            all_active(&target, "c")
        });
        let holders = placement(b, "c")[&shard].clone();
        let peer = target
            .iter()
            .find(|p| holders.contains_key(&p.peer_id().unwrap()))
            .unwrap();
        let (location, _) = snapshots.iter().find(|(_, local)| local.contains(&shard)).unwrap();
        let (status, body) = peer.call(
            "PUT",
            &format!("/collections/c/shards/{shard}/snapshots/recover?timeout=60"),
            Some(json!({"location": location, "priority": "snapshot"})),
        );
        assert_eq!(status, 200, "shard {shard}: {body}");
    }
    eventually(Duration::from_secs(120), "target replicas active", || {
        all_active(&target, "c")
    });

    // Every peer of the new cluster answers as the old one did, whichever replica it reads.
    for p in &target {
        eventually(Duration::from_secs(60), "same contents", || {
            let got = contents(p);
            if got == expected {
                Ok(())
            } else {
                Err(format!(
                    "{} points, searches equal: {}",
                    got.0.len(),
                    got.1 == expected.1
                ))
            }
        });
    }
    // `priority: replica`: an older shard snapshot recovered on one peer loses to the existing
    // replicas, which refill it: the points written after the snapshot stay everywhere.
    let holder = target
        .iter()
        .find(|p| placement(p, "c")[&0].contains_key(&p.peer_id().unwrap()))
        .unwrap();
    let old = holder.ok("POST", "/collections/c/shards/0/snapshots", None);
    let late: Vec<Value> = (POINTS..POINTS + 200)
        .map(|i| json!({"id": i, "vector": [1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 1.0], "payload": {"late": true}}))
        .collect();
    b.ok("PUT", "/collections/c/points?wait=true", Some(json!({"points": late})));
    let location = format!(
        "file://{}",
        holder
            .dir
            .path()
            .join("snapshots/c/shards/0")
            .join(old["name"].as_str().unwrap())
            .display()
    );
    let (status, body) = holder.call(
        "PUT",
        "/collections/c/shards/0/snapshots/recover?timeout=60",
        Some(json!({"location": location, "priority": "replica"})),
    );
    assert_eq!(status, 200, "{body}");
    eventually(Duration::from_secs(120), "target replicas active", || {
        all_active(&target, "c")
    });
    eventually(Duration::from_secs(60), "late points everywhere", || {
        let n = holder.ok("POST", "/collections/c/points/count", Some(json!({"exact": true})))["count"]
            .as_u64()
            .unwrap();
        if n == POINTS + 200 {
            Ok(())
        } else {
            Err(format!("{n} points"))
        }
    });

    // And each replica of each shard holds the same count.
    let counts: BTreeMap<(u64, u64), u64> = target
        .iter()
        .flat_map(|p| {
            let info = p.ok("GET", "/collections/c/cluster", None);
            let me = info["peer_id"].as_u64().unwrap();
            info["local_shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        (s["shard_id"].as_u64().unwrap(), me),
                        s["points_count"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for shard in 0..SHARDS {
        let per_replica: BTreeSet<u64> = counts
            .iter()
            .filter(|((s, _), _)| *s == shard)
            .map(|(_, c)| *c)
            .collect();
        assert_eq!(per_replica.len(), 1, "shard {shard}: replicas differ: {counts:?}");
    }
}
