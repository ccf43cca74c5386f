//! Failures with real processes: kill -9 the leader (a new one is elected, membership changes
//! resume, the old leader comes back with its id and catches up), then restart every peer in turn.
//! A sharded collection written before and after the failover loses no acknowledged point.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{eventually, start_cluster, tail, wait_agreed, wait_agreed_on, Agreement, Peer};
use serde_json::{json, Value};

/// Points per batch: ids `0..BATCH` before the failover, `BATCH..2 * BATCH` after it.
const BATCH: u64 = 600;
const SHARDS: u64 = 6;
/// How long a restarted peer may take to serve reads (its shards reload after `/readyz`).
const SERVE: Duration = Duration::from_secs(10);

fn all_agree(peers: &[&Peer], n: usize) -> u64 {
    wait_agreed(
        peers,
        Agreement {
            peers: n,
            voters: true,
            same_commit: true,
        },
        Duration::from_secs(60),
    )
}

#[test]
fn leader_failover_rejoin_and_rolling_restart() {
    let mut peers = start_cluster(3, &[]);
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    // A sharded collection with acknowledged points, before anything fails.
    assert_eq!(
        peers[0].ok(
            "PUT",
            "/collections/pts?timeout=10",
            Some(json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": SHARDS})),
        ),
        json!(true)
    );
    upsert(&peers[0], 0..BATCH);
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let li = ids.iter().position(|id| *id == leader).unwrap();
    let term_before = peers[0].cluster().unwrap()["raft_info"]["term"].as_u64().unwrap();
    // The leader holds some of those points itself, so killing it puts them at risk.
    let held = peers[li].ok("GET", "/collections/pts/cluster", None);
    let held_points: u64 = held["local_shards"]
        .as_array()
        .unwrap_or_else(|| panic!("{held}"))
        .iter()
        .map(|s| s["points_count"].as_u64().unwrap_or_else(|| panic!("{held}")))
        .sum();
    assert!(held_points > 0, "{held}");

    // kill -9 the leader: the two others elect a new one.
    peers[li].kill();
    let killed = Instant::now();
    let rest: Vec<&Peer> = except(&peers, li);
    let new_leader = wait_agreed_on(
        &rest,
        Agreement {
            peers: 3,
            voters: true,
            same_commit: false,
        },
        Duration::from_secs(30),
        |l| l != leader,
    );
    let failover = killed.elapsed();
    println!("new leader {new_leader} elected {failover:?} after killing leader {leader}");
    assert_ne!(new_leader, leader);
    assert!(failover < Duration::from_secs(10), "failover took {failover:?}");
    let s = rest[0].cluster().unwrap();
    assert!(s["raft_info"]["term"].as_u64().unwrap() > term_before);
    // The dead leader shows up in the send failures of the new leader.
    let new_leader_peer = rest.iter().find(|p| p.peer_id() == Some(new_leader)).unwrap();
    let failures = new_leader_peer.cluster().unwrap()["message_send_failures"].clone();
    assert!(failures.get(&peers[li].uri).is_some(), "{failures}");

    // Membership changes resume: a new peer joins through a follower.
    let follower_uri = rest
        .iter()
        .find(|p| p.peer_id() != Some(new_leader))
        .unwrap()
        .uri
        .clone();
    let mut fourth = Peer::new(&[]);
    fourth.spawn_joiner(&follower_uri);
    fourth.wait_ready(Duration::from_secs(30));
    {
        let mut live: Vec<&Peer> = rest.clone();
        live.push(&fourth);
        all_agree(&live, 4);
    }

    // The old leader restarts with the same id and catches up (including the fourth peer).
    peers[li].respawn();
    peers[li].wait_ready(Duration::from_secs(30));
    assert_eq!(peers[li].peer_id(), Some(leader));
    assert!(peers[li].log().contains("resuming membership"), "{}", peers[li].log());
    peers.push(fourth);
    let refs: Vec<&Peer> = peers.iter().collect();
    all_agree(&refs, 4);

    // No acknowledged point is lost: the points written before the kill are all there (through every
    // peer, once the restarted one has reloaded its shards), and writes after the failover land.
    for p in &peers {
        wait_count(p, BATCH);
    }
    upsert(&peers[3], BATCH..2 * BATCH);
    for p in &peers {
        wait_count(p, 2 * BATCH);
        check_scroll(p, 2 * BATCH);
    }

    // Restart every peer in turn (kill -9, same storage): ids stay, the cluster re-forms each time.
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    for i in 0..peers.len() {
        peers[i].kill();
        peers[i].respawn();
        peers[i].wait_ready(Duration::from_secs(30));
        let refs: Vec<&Peer> = peers.iter().collect();
        all_agree(&refs, 4);
        assert_eq!(peers[i].peer_id(), Some(ids[i]));
        wait_count(&peers[i], 2 * BATCH);
        check_retrieve(&peers[i], &[0, BATCH - 1, BATCH, 2 * BATCH - 1]);
    }
    for p in &peers {
        wait_count(p, 2 * BATCH);
        check_scroll(p, 2 * BATCH);
    }
}

/// Upserts the points `ids` (payload `{"i": id}`) through `p` with `wait=true`.
fn upsert(p: &Peer, ids: std::ops::Range<u64>) {
    let points: Vec<Value> = ids
        .map(|id| json!({"id": id, "vector": [1.0, id as f32 / 1000.0, 0.5, -0.25], "payload": {"i": id}}))
        .collect();
    let r = p.ok(
        "PUT",
        "/collections/pts/points?wait=true",
        Some(json!({"points": points})),
    );
    assert_eq!(r["status"], "completed", "upsert via {}: {r}", p.uri);
}

/// Waits (at most [`SERVE`]) until an exact count through `p` answers `want`.
fn wait_count(p: &Peer, want: u64) {
    let started = Instant::now();
    eventually(SERVE, &format!("count {want} via {}", p.uri), || {
        let (status, body) = p
            .call_within(
                "POST",
                "/collections/pts/points/count",
                Some(json!({"exact": true})),
                Duration::from_secs(3),
            )
            .map_err(|e| format!("{e}\n{}", common::cluster::tail(&p.log(), 30)))?;
        match body["result"]["count"].as_u64() {
            Some(n) if status == 200 && n == want => Ok(()),
            _ => Err(format!("{status} {body}\n{}", common::cluster::tail(&p.log(), 30))),
        }
    });
    let took = started.elapsed();
    if took > Duration::from_secs(1) {
        println!("count {want} via {} after {took:?}", p.uri);
    }
}

/// One scroll page through `p` holds exactly the ids `0..n`, in order, with payload `i == id`.
fn check_scroll(p: &Peer, n: u64) {
    let r = p.ok(
        "POST",
        "/collections/pts/points/scroll",
        Some(json!({"limit": 2000, "with_payload": true, "with_vector": false})),
    );
    assert!(
        r["next_page_offset"].is_null(),
        "scroll via {}: {}",
        p.uri,
        r["next_page_offset"]
    );
    let points = r["points"]
        .as_array()
        .unwrap_or_else(|| panic!("scroll via {}: {r}", p.uri));
    let got: Vec<u64> = points
        .iter()
        .map(|rec| rec["id"].as_u64().unwrap_or_else(|| panic!("no integer id in {rec}")))
        .collect();
    if got != (0..n).collect::<Vec<u64>>() {
        let missing: Vec<u64> = (0..n).filter(|id| !got.contains(id)).take(20).collect();
        panic!(
            "scroll via {}: {} ids, first missing {missing:?}, first {:?}",
            p.uri,
            got.len(),
            &got[..got.len().min(20)]
        );
    }
    for rec in points {
        assert_eq!(rec["payload"], json!({"i": rec["id"]}), "scroll via {}: {rec}", p.uri);
    }
}

/// Retrieving `ids` through `p` returns exactly those records, with payload `i == id`.
fn check_retrieve(p: &Peer, ids: &[u64]) {
    let r = p.ok(
        "POST",
        "/collections/pts/points",
        Some(json!({"ids": ids, "with_payload": true})),
    );
    let records = r.as_array().unwrap_or_else(|| panic!("retrieve via {}: {r}", p.uri));
    assert_eq!(records.len(), ids.len(), "retrieve via {}: {r}", p.uri);
    let mut got: Vec<u64> = records.iter().filter_map(|rec| rec["id"].as_u64()).collect();
    got.sort_unstable();
    assert_eq!(got, ids, "retrieve via {}: {r}", p.uri);
    for rec in records {
        assert_eq!(rec["payload"], json!({"i": rec["id"]}), "retrieve via {}: {rec}", p.uri);
    }
}

#[test]
fn removing_a_peer_shrinks_the_cluster() {
    let mut peers = start_cluster(3, &[]);
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let victim = peers.iter().position(|p| p.peer_id() != Some(leader)).unwrap();
    let victim_id = peers[victim].peer_id().unwrap();
    peers[victim].kill();
    // Ask a peer that is neither the leader nor the victim when there is one; any live peer works.
    let asker = peers
        .iter()
        .position(|p| p.is_running_now() && p.peer_id().is_some())
        .unwrap();
    let (status, body) = peers[asker].call("DELETE", &format!("/cluster/peer/{victim_id}?timeout=20"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], true);
    let rest: Vec<&Peer> = except(&peers, victim);
    all_agree(&rest, 2);
    let (status, _) = peers[asker].call("DELETE", &format!("/cluster/peer/{victim_id}"), None);
    assert_eq!(status, 404);
}

/// Every peer but the one at `skip`.
fn except(peers: &[Peer], skip: usize) -> Vec<&Peer> {
    peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, p)| p)
        .collect()
}

trait Running {
    fn is_running_now(&self) -> bool;
}

impl Running for Peer {
    fn is_running_now(&self) -> bool {
        self.cluster().is_some()
    }
}

/// A peer removed while it runs cannot come back with its old data (it says why), and a new
/// peer can take its place (same address, fresh storage).
#[test]
fn a_removed_peer_stays_out_and_a_new_one_takes_its_place() {
    let mut peers = start_cluster(3, &[]);
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let victim = peers.iter().position(|p| p.peer_id() != Some(leader)).unwrap();
    let victim_id = peers[victim].peer_id().unwrap();
    let asker = (victim + 1) % 3;
    let (status, body) = peers[asker].call("DELETE", &format!("/cluster/peer/{victim_id}?timeout=20"), None);
    assert_eq!(status, 200, "{body}");
    let rest: Vec<&Peer> = except(&peers, victim);
    all_agree(&rest, 2);

    // Restarted with its old data: it refuses to start, or (if it never learnt of its removal)
    // the members refuse its vote requests and it logs why. Either way the cluster is unharmed.
    peers[victim].kill();
    peers[victim].respawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = peers[victim].log();
        if log.contains("was removed from the cluster") || log.contains("not a member of this cluster") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed peer does not say it was removed:\n{}",
            tail(&log, 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rest: Vec<&Peer> = except(&peers, victim);
    let term_before = rest[0].cluster().unwrap()["raft_info"]["term"].as_u64().unwrap();
    all_agree(&rest, 2);
    drop(rest);
    peers[victim].kill();

    // A new peer at the same address with empty storage joins.
    let mut fresh = Peer::new(&[]);
    fresh.http_port = peers[victim].http_port;
    fresh.p2p_port = peers[victim].p2p_port;
    fresh.url = peers[victim].url.clone();
    fresh.uri = peers[victim].uri.clone();
    let first = peers[asker].uri.clone();
    fresh.spawn_joiner(&first);
    let mut all: Vec<&Peer> = except(&peers, victim);
    all.push(&fresh);
    all_agree(&all, 3);
    assert_ne!(fresh.peer_id(), Some(victim_id), "a new peer id");
    let term_after = all[0].cluster().unwrap()["raft_info"]["term"].as_u64().unwrap();
    assert_eq!(
        term_before, term_after,
        "the removed peer must not have forced elections"
    );
}
