//! Replication with real processes: RF=2 over 3 peers while one peer is killed with `kill -9`
//! mid-write and restarted later. Every acknowledged point must be readable through every peer,
//! the dead peer's replicas go Dead and come back Active through a transfer, and the replicas of
//! each shard end up with the same number of points.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{eventually, start_cluster, Peer};
use common::{request, vectors};
use serde_json::{json, Value};

const SHARDS: u64 = 6;
const POINTS: u64 = 10_000;
const BATCH: u64 = 100;

/// (shard id, peer id) -> (state, points) as every peer reports it for its own replicas, plus the
/// states it reports for remote ones.
type Replicas = BTreeMap<(u64, u64), (String, Option<u64>)>;

fn replicas(peers: &[&Peer], name: &str) -> Result<Replicas, String> {
    let mut out = BTreeMap::new();
    for p in peers {
        let (status, body) = p.call("GET", &format!("/collections/{name}/cluster"), None);
        if status != 200 {
            return Err(format!("{}: {status} {body}", p.uri));
        }
        let info = &body["result"];
        let me = info["peer_id"].as_u64().ok_or(format!("no peer_id: {info}"))?;
        for s in info["local_shards"].as_array().ok_or(format!("{info}"))? {
            let key = (s["shard_id"].as_u64().unwrap(), me);
            out.insert(
                key,
                (
                    s["state"].as_str().unwrap_or("").to_string(),
                    s["points_count"].as_u64(),
                ),
            );
        }
        for s in info["remote_shards"].as_array().ok_or(format!("{info}"))? {
            let key = (s["shard_id"].as_u64().unwrap(), s["peer_id"].as_u64().unwrap());
            out.entry(key)
                .or_insert((s["state"].as_str().unwrap_or("").to_string(), None));
        }
    }
    Ok(out)
}

fn count(p: &Peer) -> Result<u64, String> {
    let (status, body) = p.call("POST", "/collections/r/points/count", Some(json!({"exact": true})));
    match body["result"]["count"].as_u64() {
        Some(n) if status == 200 => Ok(n),
        _ => Err(format!("{status} {body}")),
    }
}

fn scroll_ids(p: &Peer) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    let mut offset = Value::Null;
    loop {
        let mut body = json!({"limit": 2000, "with_payload": true, "with_vector": false});
        if !offset.is_null() {
            body["offset"] = offset.clone();
        }
        let r = p.ok("POST", "/collections/r/points/scroll", Some(body));
        for point in r["points"].as_array().unwrap() {
            let id = point["id"].as_u64().unwrap();
            assert_eq!(point["payload"]["i"], json!(id), "{point}");
            assert!(ids.insert(id), "id {id} twice");
        }
        offset = r["next_page_offset"].clone();
        if offset.is_null() {
            return ids;
        }
    }
}

#[test]
fn rf2_survives_a_killed_peer_and_recovers_its_replicas() {
    let started = Instant::now();
    let mut peers = start_cluster(3, &[]);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    // The writer talks to the leader; a follower dies.
    let writer = ids.iter().position(|id| *id == leader).unwrap();
    let victim = (writer + 1) % 3;
    let victim_id = ids[victim];

    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": SHARDS,
        "replication_factor": 2, "write_consistency_factor": 1});
    assert_eq!(
        peers[writer].ok("PUT", "/collections/r?timeout=10", Some(create)),
        json!(true)
    );
    let all: Vec<&Peer> = peers.iter().collect();
    let placed = replicas(&all, "r").unwrap();
    for shard in 0..SHARDS {
        let holders: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|p| placed.contains_key(&(shard, *p)))
            .collect();
        assert_eq!(holders.len(), 2, "shard {shard}: {placed:?}");
    }
    assert!(placed.values().all(|(s, _)| s == "Active"), "{placed:?}");

    // Write 10k points in batches; kill the victim after 30 batches.
    let data = vectors(POINTS as usize, 4, 11);
    let mut acked = BTreeSet::new();
    let mut failed_batches = Vec::new();
    for (b, chunk) in data.chunks(BATCH as usize).enumerate() {
        if b == 30 {
            peers[victim].kill();
        }
        let from = b as u64 * BATCH;
        let points: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"id": from + i as u64, "vector": v, "payload": {"i": from + i as u64}}))
            .collect();
        let (status, body) = peers[writer].call(
            "PUT",
            "/collections/r/points?wait=true",
            Some(json!({"points": points})),
        );
        if status == 200 {
            assert_eq!(body["result"]["status"], "completed", "{body}");
            acked.extend(from..from + chunk.len() as u64);
        } else {
            failed_batches.push(format!("batch {b}: {status} {body}"));
        }
    }
    assert!(
        failed_batches.is_empty(),
        "with RF=2 and WCF=1 one dead peer must not fail writes: {failed_batches:?}"
    );
    assert_eq!(acked.len() as u64, POINTS);

    // The victim's replicas were marked Dead (as the survivors see it).
    let survivors: Vec<&Peer> = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, p)| p)
        .collect();
    let seen = replicas(&survivors, "r").unwrap();
    let dead: Vec<_> = seen
        .iter()
        .filter(|((_, p), (s, _))| *p == victim_id && s == "Dead")
        .collect();
    assert!(!dead.is_empty(), "no replica of the killed peer is Dead: {seen:?}");
    for p in &survivors {
        assert_eq!(count(p).unwrap(), POINTS, "count via {} while a peer is down", p.uri);
    }

    // Restart: its replicas are recovered by transfers and become Active again, while a writer
    // keeps upserting (writes that arrive during a transfer must reach the new replica too).
    let t = Instant::now();
    peers[victim].respawn();
    let url = peers[writer].url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = stop.clone();
    let during = std::thread::spawn(move || {
        let mut acked = BTreeSet::new();
        let mut from = POINTS;
        while !stop_writer.load(Ordering::Relaxed) {
            let points: Vec<Value> = vectors(20, 4, from)
                .into_iter()
                .enumerate()
                .map(|(i, v)| json!({"id": from + i as u64, "vector": v, "payload": {"i": from + i as u64}}))
                .collect();
            let body = json!({"points": points}).to_string();
            let (status, reply) = request("PUT", &format!("{url}/collections/r/points?wait=true"), Some(body), &[]);
            assert_eq!(status, 200, "write during recovery: {reply}");
            acked.extend(from..from + 20);
            from += 20;
            std::thread::sleep(Duration::from_millis(10));
        }
        acked
    });
    peers[victim].wait_ready(Duration::from_secs(30));
    let all: Vec<&Peer> = peers.iter().collect();
    eventually(Duration::from_secs(60), "every replica Active", || {
        let r = replicas(&all, "r")?;
        match r.iter().find(|(_, (s, _))| s != "Active") {
            Some(bad) => Err(format!("{bad:?} in {r:?}")),
            None => Ok(()),
        }
    });
    stop.store(true, Ordering::Relaxed);
    let written_during = during.join().expect("writer during recovery");
    assert!(written_during.len() >= 100, "too few writes overlapped the recovery");
    let extra = written_during.len() as u64;
    acked.extend(written_during);
    let settled = eventually(
        Duration::from_secs(10),
        "every replica Active with equal counts",
        || {
            let r = replicas(&all, "r")?;
            if let Some(bad) = r.iter().find(|(_, (s, _))| s != "Active") {
                return Err(format!("{bad:?} in {r:?}"));
            }
            let mut per_shard: BTreeMap<u64, BTreeSet<Option<u64>>> = BTreeMap::new();
            for ((shard, _), (_, n)) in &r {
                per_shard.entry(*shard).or_default().insert(*n);
            }
            if per_shard.values().any(|n| n.len() != 1) {
                return Err(format!("replica counts differ: {per_shard:?}"));
            }
            Ok(r)
        },
    );
    println!(
        "replicas Active again {:?} after the restart; {extra} points written meanwhile",
        t.elapsed()
    );
    let total: u64 = settled
        .iter()
        .filter_map(|((_, peer), (_, n))| (*peer == ids[writer]).then_some(()).and(*n))
        .sum::<u64>();
    assert!(total > 0);
    let per_shard_sum: u64 = {
        let mut seen = BTreeSet::new();
        settled
            .iter()
            .filter(|((shard, _), _)| seen.insert(*shard))
            .map(|(_, (_, n))| n.unwrap())
            .sum()
    };
    assert_eq!(per_shard_sum, POINTS + extra, "{settled:?}");

    // Every acknowledged point through every peer, including the restarted one.
    for p in &peers {
        let n = eventually(Duration::from_secs(10), "count", || count(p));
        assert_eq!(n, POINTS + extra, "count via {}", p.uri);
        assert_eq!(scroll_ids(p), acked, "scroll via {}", p.uri);
    }
    // The recovered replicas serve reads: with the third peer down, every shard it held is read
    // from its other replica (failing over from the dead one).
    let third = 3 - writer - victim;
    peers[third].kill();
    assert_eq!(
        count(&peers[victim]).unwrap(),
        POINTS + extra,
        "count via the restarted peer"
    );
    assert_eq!(scroll_ids(&peers[victim]), acked, "scroll via the restarted peer");
    println!("rf2 test took {:?}", started.elapsed());
}
