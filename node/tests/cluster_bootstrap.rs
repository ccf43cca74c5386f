//! Cluster bootstrap with real processes: 3 and 5 peers agree on a leader and the peer list, joiners
//! become voters through promotion, bad bootstrap input fails clearly, peer removal errors.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{agreed, start_cluster, tail, wait_agreed, Agreement, Peer};
use serde_json::Value;

fn uris(status: &Value) -> Vec<String> {
    let mut v: Vec<String> = status["peers"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["uri"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn three_peers_agree_and_report_qdrant_shape() {
    let spawned = Instant::now();
    let peers = start_cluster(3, &[]);
    let agreed_after = spawned.elapsed();
    println!("3 peers: spawn -> agreed leader with all voters in {agreed_after:?}");

    let statuses: Vec<Value> = peers.iter().map(|p| p.cluster().unwrap()).collect();
    let leader = statuses[0]["raft_info"]["leader"].as_u64().unwrap();
    let mut expected: Vec<String> = peers.iter().map(|p| p.uri.clone()).collect();
    expected.sort();
    let mut leaders = 0;
    for s in &statuses {
        assert_eq!(s["status"], "enabled");
        assert!(s["peer_id"].as_u64().unwrap() > 0);
        assert!(s["peer_id"].as_u64().unwrap() < 1u64 << 53);
        assert_eq!(uris(s), expected, "every peer knows every peer: {s}");
        let raft = &s["raft_info"];
        for key in ["term", "commit", "pending_operations"] {
            assert!(raft[key].is_u64(), "{key} in {s}");
        }
        assert_eq!(raft["leader"].as_u64(), Some(leader));
        assert_eq!(raft["is_voter"], true);
        let role = raft["role"].as_str().unwrap();
        assert!(role == "Leader" || role == "Follower", "{role}");
        if role == "Leader" {
            leaders += 1;
            assert_eq!(s["peer_id"].as_u64(), Some(leader));
        }
        assert_eq!(s["consensus_thread_status"]["consensus_thread_status"], "working");
        assert!(chrono_like(
            s["consensus_thread_status"]["last_update"].as_str().unwrap()
        ));
        assert!(s["message_send_failures"].is_object());
    }
    assert_eq!(leaders, 1);

    // Joiners went through promotion: the first peer (the leader) promoted both.
    let leader_log = peers[0].log();
    assert_eq!(
        leader_log.matches("learner promoted to voter").count(),
        2,
        "{}",
        tail(&leader_log, 60)
    );
    for p in &peers[1..] {
        assert!(p.log().contains("admitted as a learner"), "{}", p.log());
    }

    // /readyz and metrics.
    for p in &peers {
        let (status, _) = p.call("GET", "/readyz", None);
        assert_eq!(status, 200);
        let (status, metrics) = p.call("GET", "/metrics", None);
        assert_eq!(status, 200);
        let text = metrics.as_str().unwrap_or_default().to_string();
        for m in [
            "cluster_enabled 1",
            "cluster_peers_total 3",
            "cluster_voter 1",
            "cluster_term ",
            "cluster_commit{peer_id=",
        ] {
            assert!(text.contains(m), "missing {m} in:\n{text}");
        }
    }

    // Removing an unknown peer: 404, from any peer (followers forward to the leader).
    for p in &peers {
        let (status, body) = p.call("DELETE", "/cluster/peer/12345", None);
        assert_eq!(status, 404, "{body}");
        assert!(body["status"]["error"].as_str().unwrap().contains("12345"), "{body}");
    }
    let (status, _) = peers[1].call("DELETE", "/cluster/peer/not-a-number", None);
    assert!(status == 400 || status == 404, "{status}");
}

fn chrono_like(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T')
}

#[test]
fn five_peers_agree() {
    let peers = start_cluster(5, &[]);
    let refs: Vec<&Peer> = peers.iter().collect();
    let leader = wait_agreed(
        &refs,
        Agreement {
            peers: 5,
            voters: true,
            same_commit: true,
        },
        Duration::from_secs(30),
    );
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    assert!(ids.contains(&leader));
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "peer ids are distinct: {ids:?}");
}

#[test]
fn joiner_without_uri_gets_one_derived_from_its_address() {
    let mut first = Peer::new(&[]);
    first.spawn_first();
    let mut joiner = Peer::new(&[]);
    joiner.spawn(&["--bootstrap".to_string(), first.uri.clone()]);
    wait_agreed(
        &[&first, &joiner],
        Agreement {
            peers: 2,
            voters: true,
            same_commit: false,
        },
        Duration::from_secs(30),
    );
    let status = first.cluster().unwrap();
    let joiner_id = joiner.peer_id().unwrap().to_string();
    assert_eq!(status["peers"][&joiner_id]["uri"], joiner.uri, "{status}");
}

#[test]
fn unreachable_bootstrap_fails_after_the_timeout() {
    let mut p = Peer::new(&[("QDRANT__CLUSTER__CONSENSUS__BOOTSTRAP_TIMEOUT_SEC", "2")]);
    let nobody = format!("http://127.0.0.1:{}", common::free_port());
    let started = Instant::now();
    p.spawn_joiner(&nobody);
    let status = p.wait_exit(Duration::from_secs(30)).expect("peer should give up");
    let took = started.elapsed();
    assert!(!status.success(), "exit status {status}");
    assert!(took >= Duration::from_secs(2), "gave up too early: {took:?}");
    let log = p.log();
    assert!(log.contains("could not join the cluster through"), "{log}");
    assert!(log.contains(&nobody), "{log}");
}

#[test]
fn malformed_uris_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("QDRANT__CLUSTER__ENABLED", "true")];
    for args in [
        vec!["--uri", "127.0.0.1:6335"],
        vec!["--uri", "http://:6335"],
        vec!["--uri", "ftp://127.0.0.1:6335"],
        vec!["--uri", "http://127.0.0.1"],
        vec!["--bootstrap", "not a uri"],
        vec!["--bootstrap", "http://127.0.0.1"],
    ] {
        let out = common::run_binary(dir.path(), &args, &env);
        assert!(!out.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--uri") || stderr.contains("--bootstrap"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_uri_held_by_a_live_peer_is_refused() {
    let mut first = Peer::new(&[]);
    first.spawn_first();
    first.wait_ready(Duration::from_secs(30));
    // A second process claiming the first peer's URI (on its own port, so it can start). It
    // reaches the first peer as `localhost` (with the same spelling as its --uri it would count
    // as a first peer itself, as in Qdrant).
    let mut impostor = Peer::new(&[("QDRANT__CLUSTER__CONSENSUS__BOOTSTRAP_TIMEOUT_SEC", "5")]);
    let args = vec![
        "--bootstrap".to_string(),
        first.uri.replace("127.0.0.1", "localhost"),
        "--uri".to_string(),
        first.uri.clone(),
    ];
    impostor.spawn(&args);
    let status = impostor.wait_exit(Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}:\n{}", impostor.log());
    let log = impostor.log();
    assert!(log.contains("already used by live peer"), "{log}");
}

/// Bootstrap speed: from spawning 3 processes at once to all 3 reporting the same leader (and 3
/// peers), then to all voters. Printed; the bound is loose because the machine is shared.
#[test]
fn bootstrap_timing() {
    let mut leader_times = Vec::new();
    let mut voter_times = Vec::new();
    for _ in 0..3 {
        let mut peers: Vec<Peer> = (0..3).map(|_| Peer::new(&[])).collect();
        let first = peers[0].uri.clone();
        let started = Instant::now();
        peers[0].spawn_first();
        for p in peers.iter_mut().skip(1) {
            p.spawn_joiner(&first);
        }
        let refs: Vec<&Peer> = peers.iter().collect();
        let mut leader_at = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let statuses: Vec<Option<Value>> = refs.iter().map(|p| p.cluster()).collect();
            let any = Agreement {
                peers: 3,
                voters: false,
                same_commit: false,
            };
            if leader_at.is_none() && agreed(&statuses, any).is_some() {
                leader_at = Some(started.elapsed());
            }
            if agreed(&statuses, Agreement { voters: true, ..any }).is_some() {
                voter_times.push(started.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "no agreement: {statuses:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        leader_times.push(leader_at.unwrap_or_default());
    }
    println!("3 peers, spawn -> same leader on all: {leader_times:?}; -> all voters: {voter_times:?}");
    leader_times.sort();
    assert!(leader_times[1] < Duration::from_secs(10), "{leader_times:?}");
}
