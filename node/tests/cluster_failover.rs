//! Failures with real processes: kill -9 the leader (a new one is elected, membership changes
//! resume, the old leader comes back with its id and catches up), then restart every peer in turn.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{start_cluster, wait_agreed, wait_agreed_on, Agreement, Peer};

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
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    let li = ids.iter().position(|id| *id == leader).unwrap();
    let term_before = peers[0].cluster().unwrap()["raft_info"]["term"].as_u64().unwrap();

    // kill -9 the leader: the two others elect a new one.
    peers[li].kill();
    let killed = Instant::now();
    let rest: Vec<&Peer> = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != li)
        .map(|(_, p)| p)
        .collect();
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

    // Restart every peer in turn (kill -9, same storage): ids stay, the cluster re-forms each time.
    let ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    for i in 0..peers.len() {
        peers[i].kill();
        peers[i].respawn();
        peers[i].wait_ready(Duration::from_secs(30));
        let refs: Vec<&Peer> = peers.iter().collect();
        all_agree(&refs, 4);
        assert_eq!(peers[i].peer_id(), Some(ids[i]));
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
    let rest: Vec<&Peer> = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, p)| p)
        .collect();
    all_agree(&rest, 2);
    let (status, _) = peers[asker].call("DELETE", &format!("/cluster/peer/{victim_id}"), None);
    assert_eq!(status, 404);
}

trait Running {
    fn is_running_now(&self) -> bool;
}

impl Running for Peer {
    fn is_running_now(&self) -> bool {
        self.cluster().is_some()
    }
}
