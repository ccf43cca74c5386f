//! Replication with real processes: RF=2 over 3 peers while one peer is killed with `kill -9`
//! mid-write and restarted later. Every acknowledged point must be readable through every peer,
//! the dead peer's replicas go Dead and come back Active through a transfer, and the replicas of
//! each shard end up with the same number of points.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{eventually, placement, start_cluster, Peer};
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
    // The creating peer saw every replica Active; the others apply the same entries a moment later.
    let placed = eventually(Duration::from_secs(5), "every peer sees every replica Active", || {
        let r = replicas(&all, "r")?;
        match r.values().all(|(s, _)| s == "Active") {
            true => Ok(r),
            false => Err(format!("{r:?}")),
        }
    });
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
            let body = points_body(from, 20).to_string();
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

/// An upsert body of points `from..from + n` (4-d vectors seeded by `from`, payload `{"i": id}`).
fn points_body(from: u64, n: u64) -> Value {
    let points: Vec<Value> = vectors(n as usize, 4, from)
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"id": from + i as u64, "vector": v, "payload": {"i": from + i as u64}}))
        .collect();
    json!({"points": points})
}

fn upsert_range(p: &Peer, name: &str, from: u64, n: u64) {
    let r = p.ok(
        "PUT",
        &format!("/collections/{name}/points?wait=true"),
        Some(points_body(from, n)),
    );
    assert_eq!(r["status"], "completed", "{r}");
}

/// Points of the collection whose shards are moved around below.
const MOVED_POINTS: u64 = 30_000;

#[test]
fn move_replicate_abort_and_drop_under_writes() {
    let peers = start_cluster(3, &[]);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let a = &peers[0];
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3});
    assert_eq!(a.ok("PUT", "/collections/r?timeout=10", Some(create)), json!(true));
    // Enough points that a transfer lasts long enough to be seen (and aborted) while it runs.
    for from in (0..MOVED_POINTS).step_by(3000) {
        upsert_range(a, "r", from, 3000);
    }
    let owner_of = |shard: u64| *placement(a, "r")[&shard].keys().next().unwrap();
    let other_than = |peer: u64| *ids.iter().find(|p| **p != peer).unwrap();

    // Refusals: 400 with a clear message.
    let cluster_op = |body: Value| a.call("POST", "/collections/r/cluster", Some(body));
    let owner0 = owner_of(0);
    for (body, needle) in [
        (
            json!({"move_shard": {"shard_id": 0, "from_peer_id": owner0, "to_peer_id": 12345}}),
            "does not exist",
        ),
        (
            json!({"move_shard": {"shard_id": 9, "from_peer_id": owner0, "to_peer_id": other_than(owner0)}}),
            "does not exist",
        ),
        (
            json!({"move_shard": {"shard_id": 0, "from_peer_id": other_than(owner0), "to_peer_id": owner0}}),
            "no active replica",
        ),
        (
            json!({"drop_replica": {"shard_id": 0, "peer_id": owner0}}),
            "last active replica",
        ),
        (
            json!({"abort_transfer": {"shard_id": 0, "from_peer_id": owner0, "to_peer_id": other_than(owner0)}}),
            "no transfer",
        ),
    ] {
        let (status, reply) = cluster_op(body.clone());
        assert_eq!(status, 400, "{body} -> {reply}");
        let error = reply["status"]["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(needle), "{body} -> {error}");
    }

    // move_shard while a writer keeps upserting: afterwards the shard lives only on the target
    // and no point is lost or duplicated.
    let url = a.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut from = 100_000u64;
        while !stop_writer.load(Ordering::Relaxed) {
            let body = points_body(from, 10).to_string();
            let (status, reply) = request("PUT", &format!("{url}/collections/r/points?wait=true"), Some(body), &[]);
            assert_eq!(status, 200, "write during the move: {reply}");
            from += 10;
            std::thread::sleep(Duration::from_millis(5));
        }
        from - 100_000
    });
    let target = other_than(owner0);
    // Streamed records, named: unasked, a shard this size now goes by snapshot, which can
    // finish before the listing below is polled.
    let (status, reply) = cluster_op(json!({"move_shard": {"shard_id": 0, "from_peer_id": owner0,
        "to_peer_id": target, "method": "stream_records"}}));
    assert_eq!((status, reply["result"].clone()), (200, json!(true)), "{reply}");
    let t = Instant::now();
    // While the target fills its replica, the transfer is listed.
    let target_peer = &peers[ids.iter().position(|id| *id == target).unwrap()];
    let listed = eventually(Duration::from_secs(5), "the transfer listed", || {
        let info = target_peer.ok("GET", "/collections/r/cluster", None);
        match info["shard_transfers"].as_array().and_then(|t| t.first().cloned()) {
            Some(t) => Ok(t),
            None => Err(info.to_string()),
        }
    });
    assert_eq!(
        (&listed["shard_id"], &listed["from"], &listed["to"]),
        (&json!(0), &json!(owner0), &json!(target)),
        "{listed}"
    );
    println!("transfer listed as {listed}");
    eventually(Duration::from_secs(30), "shard 0 moved", || {
        let p = placement(a, "r");
        let want = BTreeMap::from([(target, "Active".to_string())]);
        (p[&0] == want).then_some(()).ok_or(format!("{p:?}"))
    });
    println!("shard 0 moved in {:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    for p in &peers {
        assert_eq!(count_of(p, "r"), MOVED_POINTS + written, "count via {}", p.uri);
    }
    let info = a.ok("GET", "/collections/r/cluster", None);
    assert_eq!(info["shard_transfers"], json!([]), "{info}");

    // replicate_shard: a second Active replica with the same points; then drop it again.
    let owner1 = owner_of(1);
    let extra = other_than(owner1);
    let (status, reply) =
        cluster_op(json!({"replicate_shard": {"shard_id": 1, "from_peer_id": owner1, "to_peer_id": extra}}));
    assert_eq!(status, 200, "{reply}");
    eventually(Duration::from_secs(30), "shard 1 replicated", || {
        let p = placement(a, "r");
        let active = p[&1].values().filter(|s| *s == "Active").count();
        (active == 2).then_some(()).ok_or(format!("{p:?}"))
    });
    let per_replica = |shard: u64| -> BTreeSet<u64> {
        peers
            .iter()
            .flat_map(|p| {
                let info = p.ok("GET", "/collections/r/cluster", None);
                info["local_shards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["shard_id"].as_u64() == Some(shard))
                    .map(|s| s["points_count"].as_u64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(
        per_replica(1).len(),
        1,
        "both replicas of shard 1 hold the same number of points"
    );
    let (status, reply) = cluster_op(json!({"drop_replica": {"shard_id": 1, "peer_id": extra}}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(placement(a, "r")[&1].len(), 1);

    // abort_transfer right after starting one: the source stays, the target goes.
    let owner2 = owner_of(2);
    let to = other_than(owner2);
    let before = count_of(a, "r");
    let (status, reply) =
        cluster_op(json!({"replicate_shard": {"shard_id": 2, "from_peer_id": owner2, "to_peer_id": to}}));
    assert_eq!(status, 200, "{reply}");
    let (status, reply) =
        cluster_op(json!({"abort_transfer": {"shard_id": 2, "from_peer_id": owner2, "to_peer_id": to}}));
    assert_eq!(status, 200, "abort right after the start: {reply}");
    let p = placement(a, "r");
    assert_eq!(p[&2], BTreeMap::from([(owner2, "Active".to_string())]), "{p:?}");
    assert_eq!(count_of(a, "r"), before);
}

fn count_of(p: &Peer, name: &str) -> u64 {
    let r = p.ok(
        "POST",
        &format!("/collections/{name}/points/count"),
        Some(json!({"exact": true})),
    );
    r["count"].as_u64().unwrap()
}

/// RF=3 on 5 peers, two of a shard's replica holders down: with write_consistency_factor 2 a
/// write fails clearly (naming the shard) and changes nothing it acknowledged; with 1 it
/// succeeds, the unreachable replicas go Dead, and they recover when their peers return.
#[test]
fn rf3_write_consistency_factor_with_two_replicas_down() {
    let mut peers = start_cluster(5, &[]);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let entry = ids.iter().position(|id| *id == leader).unwrap();
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1,
        "replication_factor": 3, "write_consistency_factor": 2});
    assert_eq!(
        peers[entry].ok("PUT", "/collections/w?timeout=10", Some(create)),
        json!(true)
    );
    upsert_range(&peers[entry], "w", 0, 100);

    // Two replica holders that are neither the leader nor the entry peer go down.
    let holders: Vec<u64> = placement(&peers[entry], "w")[&0].keys().copied().collect();
    assert_eq!(holders.len(), 3, "{holders:?}");
    let down: Vec<usize> = holders
        .iter()
        .filter(|p| **p != leader)
        .take(2)
        .map(|p| ids.iter().position(|id| id == p).unwrap())
        .collect();
    assert_eq!(down.len(), 2);
    for i in &down {
        peers[*i].kill();
    }

    // WCF=2: one Active replica answers, two do not: a clear error naming the shard.
    let points = json!({"points": [{"id": 500, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"i": 500}}]});
    let t = Instant::now();
    let (status, body) = peers[entry].call("PUT", "/collections/w/points?wait=true", Some(points.clone()));
    assert!(status >= 500, "{status} {body}");
    let error = body["status"]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("shard 0") && error.contains("write_consistency_factor 2"),
        "{error}"
    );
    assert!(t.elapsed() < Duration::from_secs(15), "failed after {:?}", t.elapsed());

    // WCF=1: the write succeeds and the two unreachable replicas are marked Dead.
    let update = json!({"params": {"write_consistency_factor": 1}});
    assert_eq!(
        peers[entry].ok("PATCH", "/collections/w?timeout=10", Some(update)),
        json!(true)
    );
    let r = peers[entry].ok("PUT", "/collections/w/points?wait=true", Some(points));
    assert_eq!(r["status"], "completed", "{r}");
    let states = placement(&peers[entry], "w")[&0].clone();
    let dead = states.values().filter(|s| *s == "Dead").count();
    assert_eq!(dead, 2, "{states:?}");
    assert_eq!(count_of(&peers[entry], "w"), 101);

    // Back up: both recover and hold the same points.
    for i in &down {
        peers[*i].respawn();
    }
    for i in &down {
        peers[*i].wait_ready(Duration::from_secs(30));
    }
    eventually(Duration::from_secs(30), "all three replicas Active", || {
        let s = placement(&peers[entry], "w")[&0].clone();
        (s.values().all(|v| v == "Active") && s.len() == 3)
            .then_some(())
            .ok_or(format!("{s:?}"))
    });
    for i in &down {
        // The recovered peer applies its own activation a moment after the entry peer may.
        eventually(Duration::from_secs(10), "local replica Active and counted", || {
            let info = peers[*i].ok("GET", "/collections/w/cluster", None);
            let local = &info["local_shards"][0];
            (local["points_count"].as_u64() == Some(101) && local["state"] == "Active")
                .then_some(())
                .ok_or(info.to_string())
        });
    }
}

/// `?ordering=strong`: concurrent writes of the same points through different peers end with the
/// same values on every replica (they pass through one coordinating replica).
#[test]
fn strong_ordering_keeps_replicas_identical() {
    const ORDERING: &str = "strong";
    let peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2});
    assert_eq!(
        peers[0].ok("PUT", "/collections/o?timeout=10", Some(create)),
        json!(true)
    );
    let holders: Vec<u64> = placement(&peers[0], "o")[&0].keys().copied().collect();
    assert_eq!(holders.len(), 2);

    let (status, body) = peers[0].call(
        "PUT",
        "/collections/o/points?ordering=sideways",
        Some(json!({"points": [{"id": 1, "vector": [1.0, 0.0, 0.0, 0.0]}]})),
    );
    assert_eq!(status, 400, "{body}");

    let writers: Vec<_> = peers
        .iter()
        .enumerate()
        .map(|(w, p)| {
            let url = p.url.clone();
            std::thread::spawn(move || {
                for round in 0..150u32 {
                    let points: Vec<Value> = (0..4u64)
                        .map(|id| json!({"id": id, "vector": [w as f32, round as f32, id as f32, 1.0], "payload": {"w": w}}))
                        .collect();
                    let body = json!({"points": points}).to_string();
                    let (status, reply) = request(
                        "PUT",
                        &format!("{url}/collections/o/points?wait=true&ordering={}", ORDERING),
                        Some(body),
                        &[],
                    );
                    assert_eq!(status, 200, "{reply}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    // Reads are served by the local replica first: read through each holder.
    let mut views = Vec::new();
    for p in &peers {
        if holders.contains(&p.peer_id().unwrap()) {
            let r = p.ok(
                "POST",
                "/collections/o/points",
                Some(json!({"ids": (0..4).collect::<Vec<u64>>(), "with_vector": true, "with_payload": true})),
            );
            views.push(r);
        }
    }
    assert_eq!(views.len(), 2);
    assert_eq!(views[0], views[1], "the two replicas differ");
}

/// Qdrant's update leader: the replica with the highest peer id. While it is down, `strong`
/// writes fail with a service error (no other order may be taken), `medium` ones fall over to
/// the next live replica and `weak` ones go to the live replicas directly.
#[test]
fn strong_ordering_refuses_writes_without_its_leader() {
    let mut peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3});
    assert_eq!(
        peers[0].ok("PUT", "/collections/so?timeout=10", Some(create)),
        json!(true)
    );
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let highest = ids.iter().position(|id| *id == *ids.iter().max().unwrap()).unwrap();
    let writer = (highest + 1) % 3;
    let write = |p: &Peer, ordering: &str, id: u64| {
        p.call(
            "PUT",
            &format!("/collections/so/points?wait=true&ordering={ordering}"),
            Some(json!({"points": [{"id": id, "vector": [1.0, 0.0, 0.0, id as f32]}]})),
        )
    };
    for (n, ordering) in ["weak", "medium", "strong"].iter().enumerate() {
        let (status, body) = write(&peers[writer], ordering, n as u64);
        assert_eq!(status, 200, "{ordering} with every replica up: {body}");
    }

    peers[highest].kill();
    let (status, body) = write(&peers[writer], "strong", 10);
    assert!(status >= 500, "strong without its leader answered {status}: {body}");
    let error = body["status"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Strong ordering via leader peer"), "{body}");
    for (n, ordering) in ["medium", "weak"].iter().enumerate() {
        let (status, body) = write(&peers[writer], ordering, 20 + n as u64);
        assert_eq!(status, 200, "{ordering} without the highest replica: {body}");
    }
    let count = peers[writer].ok("POST", "/collections/so/points/count", Some(json!({"exact": true})));
    // The refused strong write may have reached no replica, or only some (not acknowledged).
    assert!(count["count"].as_u64().unwrap() >= 5, "{count}");
}

/// `?consistency=`: `all` reads every replica and needs them all; the default reads one and
/// fails over; bad values are 400.
#[test]
fn read_consistency_all_needs_every_replica() {
    let mut peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 2});
    assert_eq!(
        peers[0].ok("PUT", "/collections/rc?timeout=10", Some(create)),
        json!(true)
    );
    upsert_range(&peers[0], "rc", 0, 50);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let holders: Vec<u64> = placement(&peers[0], "rc")[&0].keys().copied().collect();
    let reader = ids.iter().position(|id| *id == leader).unwrap();

    let count_with = |p: &Peer, consistency: &str| {
        p.call(
            "POST",
            &format!("/collections/rc/points/count?consistency={consistency}"),
            Some(json!({"exact": true})),
        )
    };
    for c in ["all", "majority", "quorum", "2", "1"] {
        let (status, body) = count_with(&peers[reader], c);
        assert_eq!(
            (status, body["result"]["count"].as_u64()),
            (200, Some(50)),
            "{c}: {body}"
        );
    }
    let (status, body) = peers[reader].call(
        "POST",
        "/collections/rc/points/search?consistency=all",
        Some(json!({"vector": [1.0, 0.5, 0.25, 0.0], "limit": 5})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(5), "{body}");
    let (status, body) = count_with(&peers[reader], "most");
    assert_eq!(status, 400, "{body}");

    // A replica holder that is not the reader goes down: `all` cannot be served, one replica can.
    let victim = ids.iter().position(|id| holders.contains(id) && *id != leader).unwrap();
    peers[victim].kill();
    let (status, body) = count_with(&peers[reader], "all");
    assert!(status >= 500, "{status} {body}");
    let (status, body) = count_with(&peers[reader], "1");
    assert_eq!((status, body["result"]["count"].as_u64()), (200, Some(50)), "{body}");
}

/// Concurrent unordered writes of the same ids through every peer may leave the replicas
/// holding different versions of a point. Reads with `consistency=majority` / `all` resolve the
/// replicas' answers point by point (a version is returned only when enough replicas hold it
/// identically), so the same read answers the same through every peer.
/// Concurrent weak writes of the same points through every peer leave the replicas equal, point
/// by point and version by version (writes apply by version; a write older than what a replica
/// holds is stamped again). Then replicas are made to differ the only way left, a write applied
/// by one replica without a quorum, and consistent reads resolve it the same through every peer.
#[test]
fn concurrent_writes_converge_and_consistent_reads_resolve_the_same_through_every_peer() {
    let mut peers = start_cluster(3, &[("QDRANT__CLUSTER__ANTI_ENTROPY_INTERVAL_SEC", "0")]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3});
    assert_eq!(
        peers[0].ok("PUT", "/collections/rr?timeout=10", Some(create)),
        json!(true)
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Four writers per peer, each rewriting all 30 points one by one.
    let writers: Vec<_> = (0..12)
        .map(|w| {
            let (url, stop) = (peers[w % 3].url.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let id = (round as u64 * 7 + w as u64) % 30;
                    let points = vec![json!({"id": id, "vector": [w as f32, round as f32, id as f32, 1.0],
                                             "payload": {"writer": w, "round": round}})];
                    let body = json!({"points": points}).to_string();
                    request(
                        "PUT",
                        &format!("{url}/collections/rr/points?wait=false"),
                        Some(body),
                        &[],
                    );
                    round += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let ids: Vec<u64> = (0..30).collect();
    // Each peer's own replica (a consistency-1 read is served by it), versions included.
    let local_views = |peers: &[Peer]| -> Vec<Value> {
        peers
            .iter()
            .map(|p| {
                let hits = p.ok(
                    "POST",
                    "/collections/rr/points/query",
                    Some(json!({"query": [1.0, 1.0, 1.0, 1.0], "limit": 100, "with_vector": true,
                                "with_payload": true, "params": {"exact": true}})),
                );
                let mut points = hits["points"].as_array().unwrap().clone();
                points.sort_by_key(|p| p["id"].as_u64());
                Value::Array(points)
            })
            .collect()
    };
    eventually(Duration::from_secs(10), "the replicas hold the same points", || {
        let views = local_views(&peers);
        let sizes: Vec<usize> = views.iter().map(|v| v.as_array().unwrap().len()).collect();
        (sizes[0] == 30 && views[0] == views[1] && views[0] == views[2])
            .then_some(())
            .ok_or(format!(
                "points per replica {sizes:?}; equal: {} {}",
                views[0] == views[1],
                views[0] == views[2]
            ))
    });

    // A write refused for want of a quorum, yet applied by the one live replica. The survivor is
    // a follower: a leader would keep its failed attempts to mark the others Dead in its log and
    // commit them once they are back (then recover them from its own replica).
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let survivor = peers.iter().position(|p| p.peer_id() != Some(leader)).unwrap();
    let points: Vec<Value> = (0..10)
        .map(|id| json!({"id": id, "vector": [9.0, 9.0, 9.0, 9.0], "payload": {"writer": "lone"}}))
        .collect();
    write_without_quorum(&mut peers, survivor, "rr", json!({"points": points}));
    let all: Vec<&Peer> = peers.iter().collect();
    eventually(Duration::from_secs(30), "every replica is Active again", || {
        let r = replicas(&all, "rr")?;
        r.values()
            .all(|(s, _)| s == "Active")
            .then_some(())
            .ok_or(format!("{r:?}"))
    });
    let views = local_views(&peers);
    assert!(
        views[survivor] != views[(survivor + 1) % 3],
        "the lone write did not make the replicas differ"
    );

    let reads: Vec<(&str, &str, Value)> = vec![
        (
            "POST",
            "/collections/rr/points/scroll",
            json!({"limit": 100, "with_vector": true, "with_payload": true}),
        ),
        (
            "POST",
            "/collections/rr/points",
            json!({"ids": ids, "with_vector": true, "with_payload": true}),
        ),
        (
            "POST",
            "/collections/rr/points/search",
            json!({"vector": [1.0, 1.0, 1.0, 1.0], "limit": 10, "with_payload": true}),
        ),
        (
            "POST",
            "/collections/rr/points/query",
            json!({"query": [1.0, 0.5, 1.0, 1.0], "limit": 10, "with_payload": true}),
        ),
        ("POST", "/collections/rr/points/count", json!({"exact": true})),
    ];
    for consistency in ["majority", "all"] {
        for (method, path, body) in &reads {
            let answers: Vec<Value> = peers
                .iter()
                .map(|p| {
                    let mut r = p.ok(method, &format!("{path}?consistency={consistency}"), Some(body.clone()));
                    strip_versions(&mut r);
                    r
                })
                .collect();
            assert_eq!(
                answers[0], answers[1],
                "{path} ({consistency}) differs between peers 0 and 1"
            );
            assert_eq!(
                answers[0], answers[2],
                "{path} ({consistency}) differs between peers 0 and 2"
            );
        }
    }
}

/// Two of three peers stop while writes continue through the third: without a quorum the
/// writes fail (their replicas cannot be marked Dead), yet the live replica applied them. After
/// the restart every replica is Active although their contents differ; anti-entropy finds the
/// differing digest buckets, repairs them from the reference replica and says so on /metrics.
#[test]
fn anti_entropy_repairs_replicas_that_diverged_without_a_quorum() {
    let mut peers = start_cluster(3, &[("QDRANT__CLUSTER__ANTI_ENTROPY_INTERVAL_SEC", "1")]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3});
    assert_eq!(
        peers[0].ok("PUT", "/collections/ae?timeout=10", Some(create)),
        json!(true)
    );
    upsert_range(&peers[0], "ae", 0, 100);
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let survivor = peers.iter().position(|p| p.peer_id() == Some(leader)).unwrap();
    // Refused (no quorum to mark the stopped replicas Dead), but applied on the live replica.
    write_without_quorum(&mut peers, survivor, "ae", points_body(100, 30));
    let counts = |peers: &[Peer]| -> Vec<u64> {
        peers
            .iter()
            .map(|p| {
                p.ok("GET", "/collections/ae/cluster", None)["local_shards"][0]["points_count"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect()
    };
    let repaired = eventually(Duration::from_secs(60), "the replicas converge", || {
        let c = counts(&peers);
        let repairs: u64 = peers.iter().map(|p| metric(p, "anti_entropy_repairs_total")).sum();
        (c.iter().all(|n| *n == c[0]) && repairs > 0)
            .then_some(repairs)
            .ok_or(format!("points per replica {c:?}, repairs {repairs}"))
    });
    assert!(repaired >= 1);
    // Converged on the reference replica's contents: every acknowledged point is there, and
    // the replicas agree point by point.
    let ids: Vec<u64> = (0..100).collect();
    let all = peers[0].ok(
        "POST",
        "/collections/ae/points?consistency=all",
        Some(json!({"ids": ids, "with_vector": true, "with_payload": true})),
    );
    assert_eq!(all.as_array().map(Vec::len), Some(100), "{all}");
    let n = counts(&peers)[0];
    let scrolled = peers[1].ok(
        "POST",
        "/collections/ae/points/scroll?consistency=all",
        Some(json!({"limit": 1000})),
    );
    assert_eq!(
        scrolled["points"].as_array().map(|p| p.len() as u64),
        Some(n),
        "{scrolled}"
    );
    eventually(Duration::from_secs(10), "no divergent bucket left", || {
        let left: u64 = peers.iter().map(|p| metric(p, "anti_entropy_divergent_buckets")).sum();
        (left == 0).then_some(()).ok_or(format!("{left} buckets"))
    });
}

/// Stops every peer but `survivor`, upserts `body` into `name` through it (refused: there is no
/// quorum to mark the stopped replicas Dead, yet the live replica applied it), then restarts the
/// others and waits until every peer is ready.
fn write_without_quorum(peers: &mut [Peer], survivor: usize, name: &str, body: Value) {
    for (i, p) in peers.iter_mut().enumerate() {
        if i != survivor {
            p.kill();
        }
    }
    let (status, body) = peers[survivor]
        .call_within(
            "PUT",
            &format!("/collections/{name}/points?wait=true"),
            Some(body),
            Duration::from_secs(30),
        )
        .expect("a write without a quorum must answer, not hang");
    assert!(status >= 400, "a write without a quorum answered {status}: {body}");
    for (i, p) in peers.iter_mut().enumerate() {
        if i != survivor {
            p.respawn();
        }
    }
    for p in peers.iter_mut() {
        p.wait_ready(Duration::from_secs(30));
    }
}

/// The value of an unlabelled metric on `/metrics` (0 when absent).
fn metric(p: &Peer, name: &str) -> u64 {
    let (_, text) = p.call("GET", "/metrics", None);
    text.as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Drops the `version` of hits (the consistent-read test compares contents, as Qdrant's resolver).
fn strip_versions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("version");
            map.values_mut().for_each(strip_versions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_versions),
        _ => {}
    }
}

/// Replicas per peer, from `peer`'s view of the placement of `name`.
fn load_of(p: &Peer, name: &str, ids: &[u64]) -> BTreeMap<u64, usize> {
    let mut load: BTreeMap<u64, usize> = ids.iter().map(|id| (*id, 0)).collect();
    for replicas in placement(p, name).values() {
        for peer in replicas.keys() {
            *load.entry(*peer).or_default() += 1;
        }
    }
    load
}

/// The one-call operations: a new peer gets its share through `POST /cluster/rebalance`, then
/// `POST /cluster/peer/{id}/drain` empties it so that it can be removed; no point is lost.
#[test]
fn rebalance_onto_a_new_peer_then_drain_and_remove_it() {
    let mut peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 6});
    assert_eq!(
        peers[0].ok("PUT", "/collections/b?timeout=10", Some(create)),
        json!(true)
    );
    upsert_range(&peers[0], "b", 0, 600);

    let mut fresh = Peer::new(&[]);
    fresh.spawn_joiner(&peers[0].uri.clone());
    fresh.wait_ready(Duration::from_secs(30));
    peers.push(fresh);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let new_id = ids[3];
    eventually(Duration::from_secs(10), "4 peers known", || {
        let n = peers[0].cluster().unwrap()["peers"].as_object().map(|m| m.len());
        (n == Some(4)).then_some(()).ok_or(format!("{n:?}"))
    });
    assert_eq!(load_of(&peers[0], "b", &ids)[&new_id], 0);

    let r = peers[1].ok("POST", "/cluster/rebalance?timeout=60", None);
    let moves = r["moves"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert!(!moves.is_empty(), "{r}");
    let load = load_of(&peers[0], "b", &ids);
    let (min, max) = (load.values().min().unwrap(), load.values().max().unwrap());
    assert!(max - min <= 1 && load[&new_id] >= 1, "{load:?} after {r}");
    for p in &peers {
        assert_eq!(count_of(p, "b"), 600, "count via {}", p.uri);
    }
    assert_eq!(
        peers[0].ok("POST", "/cluster/rebalance", None)["moves"],
        json!([]),
        "already even"
    );

    let r = peers[0].ok("POST", &format!("/cluster/peer/{new_id}/drain?timeout=60"), None);
    assert!(!r["moves"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(load_of(&peers[0], "b", &ids)[&new_id], 0);
    let (status, body) = peers[0].call("DELETE", &format!("/cluster/peer/{new_id}?timeout=20"), None);
    assert_eq!(status, 200, "{body}");
    for p in &peers[..3] {
        assert_eq!(count_of(p, "b"), 600, "count via {}", p.uri);
    }
    let (status, body) = peers[0].call("POST", "/cluster/peer/12345/drain", None);
    assert_eq!(status, 404, "{body}");
}

/// Every point of the local replica of `p` (the only shard of `name`): id -> (tag, version).
fn local_contents(p: &Peer, name: &str) -> BTreeMap<u64, (Value, Value)> {
    // One shard, a replica on every peer: a consistency-1 read is served by the local replica.
    let hits = p.ok(
        "POST",
        &format!("/collections/{name}/points/query"),
        Some(
            json!({"query": [1.0, 0.0, 0.0, 0.0], "limit": 100_000, "with_payload": true,
                    "params": {"exact": true}}),
        ),
    );
    hits["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_u64().unwrap(),
                (h["payload"]["tag"].clone(), h["version"].clone()),
            )
        })
        .collect()
}

/// A Dead replica recovered by a transfer while writers keep changing the points it is copying
/// (through every peer, the recovering one included) ends equal to the others, point by point
/// and version by version, with anti-entropy off: the write fence and the versions make the
/// copy plus the queued writes complete, not a repair after the fact.
#[test]
fn a_replica_recovered_under_writes_holds_every_acknowledged_write() {
    let mut peers = start_cluster(3, &[("QDRANT__CLUSTER__ANTI_ENTROPY_INTERVAL_SEC", "0")]);
    let create = json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1,
        "replication_factor": 3, "write_consistency_factor": 1});
    assert_eq!(
        peers[0].ok("PUT", "/collections/fw?timeout=10", Some(create)),
        json!(true)
    );
    for from in (0..20_000).step_by(2_000) {
        upsert_range(&peers[0], "fw", from, 2_000);
    }
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let victim = peers.iter().position(|p| p.peer_id() != Some(leader)).unwrap();
    let victim_id = peers[victim].peer_id().unwrap();
    peers[victim].kill();

    // Writers rewrite the tag of random existing points (low ids too, which the copy reads
    // first), through every peer, until told to stop. Acknowledged: id -> last acked tag.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<std::sync::Mutex<BTreeMap<u64, Option<u64>>>> = Arc::default();
    let urls: Vec<String> = peers.iter().map(|p| p.url.clone()).collect();
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let (stop, acked, url) = (stop.clone(), acked.clone(), urls[w as usize % 3].clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Writer w owns the ids congruent to w mod 6, so acknowledgements are ordered.
                    let id = ((n * 7919 + w * 104_729) % 3_333) * 6 + w;
                    let tag = w * 1_000_000 + n;
                    let body = json!({"payload": {"tag": tag}, "points": [id]});
                    let status = common::try_request(
                        "POST",
                        &format!("{url}/collections/fw/points/payload?wait=true"),
                        Some(body.to_string()),
                        &[],
                    )
                    .map_or(0, |(status, _)| status);
                    // A failed write may have reached some replicas: its point is left unchecked.
                    let outcome = if status == 200 { Some(tag) } else { None };
                    acked.lock().unwrap().insert(id, outcome);
                    if status != 200 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    peers[victim].respawn();
    peers[victim].wait_ready(Duration::from_secs(30));
    let all: Vec<&Peer> = peers.iter().collect();
    eventually(Duration::from_secs(60), "the restarted replica is Active again", || {
        let r = replicas(&all, "fw")?;
        match r.get(&(0, victim_id)) {
            Some((state, _)) if state == "Active" && r.values().all(|(s, _)| s == "Active") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked: BTreeMap<u64, u64> = acked
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, t)| Some((*id, (*t)?)))
        .collect();
    assert!(
        acked.len() > 100,
        "too few writes acknowledged to tell: {}",
        acked.len()
    );
    let contents: Vec<_> = peers.iter().map(|p| local_contents(p, "fw")).collect();
    for (i, c) in contents.iter().enumerate() {
        assert_eq!(c.len(), 20_000, "peer {i} holds {} points", c.len());
        for (id, tag) in &acked {
            assert_eq!(
                c[id].0,
                json!(tag),
                "peer {i} (victim {victim}): point {id} lost its acknowledged tag"
            );
        }
    }
    for (i, c) in contents.iter().enumerate().skip(1) {
        let differing: Vec<_> = c
            .iter()
            .filter(|(id, v)| contents[0].get(id) != Some(v))
            .take(5)
            .collect();
        assert!(
            differing.is_empty(),
            "replica on peer {i} differs from peer 0: {differing:?}"
        );
    }
}
