//! Shard transfer methods with real processes, under writes: `snapshot` (the target installs a
//! snapshot of the source's shard, then catches up on the writes since by digest) and the
//! delta catch-up of a replica back from downtime (`wal_delta`, from `storage.shard_transfer_method`). In
//! both, once the copy is Active the source replica is dropped and the copy alone must hold
//! every acknowledged write: upserts, overwrites and deletes made while it was filled.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::cluster::{eventually, placement, start_cluster, Peer};
use common::{request, vectors};
use serde_json::{json, Value};

const DIM: usize = 8;

/// Point id -> the payload tag it must have (`None`: deleted); a write that failed may or may
/// not have been applied, so the ids it touched are `Uncertain` and not checked.
type Expected = BTreeMap<u64, Expectation>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expectation {
    Tag(u64),
    Deleted,
    Uncertain,
}

fn upsert(url: &str, ids: std::ops::Range<u64>, tag: u64) -> (u16, Value) {
    let points: Vec<Value> = ids
        .clone()
        .zip(vectors(ids.clone().count(), DIM, ids.start + tag * 7919))
        .map(|(id, v)| json!({"id": id, "vector": v, "payload": {"id": id, "tag": tag}}))
        .collect();
    let body = json!({ "points": points }).to_string();
    request("PUT", &format!("{url}/collections/t/points?wait=true"), Some(body), &[])
}

fn load(p: &Peer, n: u64, expected: &mut Expected) {
    for from in (0..n).step_by(1000) {
        let (status, reply) = upsert(&p.url, from..from + 1000, 0);
        assert_eq!(status, 200, "{reply}");
        (from..from + 1000).for_each(|id| {
            expected.insert(id, Expectation::Tag(0));
        });
    }
}

/// Writes through `url` until stopped: new points, overwrites of old ones (tag 1) and deletes,
/// each recorded once acknowledged.
fn writer(url: String, base: u64, stop: Arc<AtomicBool>) -> JoinHandle<Expected> {
    std::thread::spawn(move || {
        let mut acked = Expected::new();
        let mut record = |ids: std::ops::Range<u64>, ok: bool, then: Expectation| {
            ids.for_each(|id| {
                acked.insert(id, if ok { then } else { Expectation::Uncertain });
            })
        };
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let fresh = 1_000_000 + round * 10;
            let ok = upsert(&url, fresh..fresh + 10, 2).0 == 200;
            record(fresh..fresh + 10, ok, Expectation::Tag(2));
            let old = base + (round * 37) % 5_000;
            let ok = upsert(&url, old..old + 5, 1).0 == 200;
            record(old..old + 5, ok, Expectation::Tag(1));
            let gone = base + 5_000 + round * 3;
            let body = json!({"points": [gone, gone + 1, gone + 2]}).to_string();
            let (status, _) = request(
                "POST",
                &format!("{url}/collections/t/points/delete?wait=true"),
                Some(body),
                &[],
            );
            record(gone..gone + 3, status == 200, Expectation::Deleted);
            round += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        acked
    })
}

/// Every point id -> payload tag, read through `p`.
fn contents(p: &Peer) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    let mut offset = Value::Null;
    loop {
        let r = p.ok(
            "POST",
            "/collections/t/points/scroll",
            Some(json!({"limit": 5000, "offset": offset, "with_payload": true})),
        );
        for pt in r["points"].as_array().unwrap() {
            out.insert(pt["id"].as_u64().unwrap(), pt["payload"]["tag"].as_u64().unwrap());
        }
        offset = r["next_page_offset"].clone();
        if offset.is_null() {
            return out;
        }
    }
}

fn check(p: &Peer, expected: &Expected) {
    let held = contents(p);
    let mut live = 0;
    for (id, want) in expected {
        match want {
            Expectation::Tag(tag) => {
                live += 1;
                assert_eq!(held.get(id), Some(tag), "point {id} read through {}", p.url);
            }
            Expectation::Deleted => assert_eq!(held.get(id), None, "deleted point {id} read through {}", p.url),
            Expectation::Uncertain => {}
        }
    }
    let uncertain_held = expected
        .iter()
        .filter(|(id, e)| **e == Expectation::Uncertain && held.contains_key(id))
        .count();
    assert_eq!(held.len() - uncertain_held, live, "points read through {}", p.url);
}

fn peer_by_id(peers: &[Peer], id: u64) -> &Peer {
    peers.iter().find(|p| p.peer_id() == Some(id)).unwrap()
}

fn cluster_op(p: &Peer, body: Value) {
    let (status, reply) = p.call("POST", "/collections/t/cluster", Some(body.clone()));
    assert_eq!(
        (status, reply["result"].clone()),
        (200, json!(true)),
        "{body} -> {reply}"
    );
}

#[test]
fn snapshot_transfer_under_writes_keeps_every_acknowledged_write() {
    let peers = start_cluster(2, &[]);
    let a = &peers[0];
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 1});
    assert_eq!(a.ok("PUT", "/collections/t?timeout=10", Some(create)), json!(true));
    let mut expected = Expected::new();
    load(a, 12_000, &mut expected);
    let source = *placement(a, "t")[&0].keys().next().unwrap();
    let target = peers
        .iter()
        .filter_map(|p| p.peer_id())
        .find(|id| *id != source)
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(a.url.clone(), 0, stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    cluster_op(
        a,
        json!({"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target, "method": "snapshot"}}),
    );
    let listed = eventually(Duration::from_secs(10), "the transfer listed", || {
        let info = a.ok("GET", "/collections/t/cluster", None);
        match info["shard_transfers"].as_array().and_then(|t| t.first().cloned()) {
            Some(t) => Ok(t),
            None if placement(a, "t")[&0].len() == 2 => Ok(json!({"method": "snapshot", "finished": true})),
            None => Err(info.to_string()),
        }
    });
    assert_eq!(listed["method"], "snapshot", "{listed}");
    eventually(Duration::from_secs(60), "the copy Active", || {
        let p = placement(a, "t");
        (p[&0].get(&target).map(String::as_str) == Some("Active"))
            .then_some(())
            .ok_or(format!("{p:?}"))
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    expected.extend(writes.join().unwrap());

    let copy = peer_by_id(&peers, target);
    let log = copy.log();
    assert!(
        log.contains("shard snapshot installed"),
        "target log:\n{}",
        common::cluster::tail(&log, 30)
    );
    // The copy alone: every acknowledged write is in it.
    cluster_op(a, json!({"drop_replica": {"shard_id": 0, "peer_id": source}}));
    eventually(Duration::from_secs(10), "the source replica dropped", || {
        let p = placement(a, "t");
        (p[&0].len() == 1).then_some(()).ok_or(format!("{p:?}"))
    });
    check(copy, &expected);
    check(a, &expected);
}

#[test]
fn a_replica_back_from_downtime_catches_up_on_what_it_missed() {
    let mut peers = start_cluster(3, &[("QDRANT__STORAGE__SHARD_TRANSFER_METHOD", "wal_delta")]);
    let entry = 0;
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 1, "replication_factor": 2});
    assert_eq!(
        peers[entry].ok("PUT", "/collections/t?timeout=10", Some(create)),
        json!(true)
    );
    let mut expected = Expected::new();
    load(&peers[entry], 6_000, &mut expected);
    let holders: Vec<u64> = placement(&peers[entry], "t")[&0].keys().copied().collect();
    // The replica that goes down is on a peer other than the entry peer.
    let entry_id = peers[entry].peer_id().unwrap();
    let down_id = *holders.iter().find(|id| **id != entry_id).unwrap();
    let kept_id = *holders.iter().find(|id| **id != down_id).unwrap();
    let down = peers.iter().position(|p| p.peer_id() == Some(down_id)).unwrap();
    peers[down].kill();

    let stop = Arc::new(AtomicBool::new(false));
    let writes = writer(peers[entry].url.clone(), 0, stop.clone());
    eventually(Duration::from_secs(30), "the down replica marked Dead", || {
        let p = placement(&peers[entry], "t");
        (p[&0].get(&down_id).map(String::as_str) == Some("Dead"))
            .then_some(())
            .ok_or(format!("{p:?}"))
    });
    std::thread::sleep(Duration::from_secs(1));
    peers[down].respawn();
    peers[down].wait_ready(Duration::from_secs(30));
    eventually(Duration::from_secs(60), "the replica Active again", || {
        let p = placement(&peers[entry], "t");
        (p[&0].get(&down_id).map(String::as_str) == Some("Active"))
            .then_some(())
            .ok_or(format!("{p:?}"))
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    expected.extend(writes.join().unwrap());

    let log = peers[down].log();
    assert!(
        log.lines()
            .any(|l| l.contains("recovering a replica") && l.contains("wal_delta")),
        "the restarted peer catches up rather than copying everything:\n{}",
        common::cluster::tail(&log, 30)
    );
    // The caught-up replica alone holds every acknowledged write.
    let kept = peer_by_id(&peers, kept_id);
    let entry_peer = if kept_id == entry_id { &peers[entry] } else { kept };
    cluster_op(entry_peer, json!({"drop_replica": {"shard_id": 0, "peer_id": kept_id}}));
    eventually(Duration::from_secs(10), "the other replica dropped", || {
        let p = placement(&peers[down], "t");
        (p[&0].len() == 1).then_some(()).ok_or(format!("{p:?}"))
    });
    check(&peers[down], &expected);
}
