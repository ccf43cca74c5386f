//! In-process tests of the consensus layer: several `Consensus` instances in one runtime talking
//! over real gRPC on loopback. Covers what is awkward to reach from the REST API: forwarding of
//! proposals and their errors, snapshot install on a late joiner, and the no-quorum timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bootstrap::{start_with, Compaction};
use super::{placement, ClusterOp, Consensus};
use crate::error::Error;
use crate::model::collection::{CollectionConfig, CreateCollection};
use crate::settings::Settings;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(port: u16) -> Settings {
    let mut s = Settings::default();
    s.service.host = "127.0.0.1".into();
    s.cluster.enabled = true;
    s.cluster.p2p.port = port;
    s.cluster.consensus.tick_period_ms = 50;
    s.cluster.consensus.bootstrap_timeout_sec = 20;
    s.cluster.grpc_timeout_ms = 2_000;
    s
}

fn config(shards: u32) -> CollectionConfig {
    let req: CreateCollection =
        serde_json::from_value(serde_json::json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": shards}))
            .unwrap();
    req.into_config(&Settings::default(), 1).unwrap()
}

struct TestPeer {
    consensus: Arc<Consensus>,
    uri: String,
    _dir: tempfile::TempDir,
}

async fn start(bootstrap: Option<&str>, compaction: Compaction) -> TestPeer {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let consensus = start_with(
        &settings(port),
        Some(uri.clone()),
        bootstrap.map(str::to_string),
        dir.path(),
        tonic::service::Routes::default(),
        compaction,
    )
    .await
    .unwrap();
    TestPeer {
        consensus,
        uri,
        _dir: dir,
    }
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn create(c: &Consensus, name: &str, shards: u32) -> ClusterOp {
    ClusterOp::CreateCollection {
        name: name.into(),
        config: config(shards),
        placement: placement(&c.state().peer_ids(), shards, 1),
        init_state: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_snapshots_and_errors() {
    let tiny = Compaction {
        snapshot_every: 5,
        keep_entries: 2,
    };
    let a = start(None, tiny).await;
    assert!(a.consensus.is_leader());
    assert_eq!(a.consensus.state().peers.len(), 1);

    let t = Duration::from_secs(10);
    for i in 0..30 {
        let op = create(&a.consensus, &format!("c{i}"), 1);
        a.consensus.propose(op, t).await.unwrap();
    }
    // Applied on return.
    assert_eq!(a.consensus.state().collections.len(), 30);
    let dup = create(&a.consensus, "c0", 1);
    assert!(matches!(
        a.consensus.propose(dup, t).await,
        Err(Error::AlreadyExists(_))
    ));
    wait_for("a compacted log", Duration::from_secs(10), || {
        a.consensus.raft().metrics().borrow().purged.is_some()
    })
    .await;

    // A late joiner gets the state by snapshot (the log before it was purged).
    let b = start(Some(&a.uri), tiny).await;
    wait_for("b catches up", Duration::from_secs(20), || {
        b.consensus.state() == a.consensus.state()
    })
    .await;
    assert!(
        b.consensus.raft().metrics().borrow().snapshot.is_some(),
        "b installed a snapshot"
    );
    // Ready once it has applied the leader's commit index as of its first readiness check (the
    // leader may have committed more than b had applied when their states first matched).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.consensus.is_ready().await {
        assert!(Instant::now() < deadline, "b never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Proposals from a follower are forwarded; errors keep their kind; the result is applied on
    // the follower when the call returns.
    let op = create(&b.consensus, "from_b", 2);
    b.consensus.propose(op, t).await.unwrap();
    assert!(b.consensus.state().collections.contains_key("from_b"));
    let dup = create(&b.consensus, "from_b", 2);
    assert!(matches!(
        b.consensus.propose(dup, t).await,
        Err(Error::AlreadyExists(_))
    ));
    let missing = ClusterOp::DeleteCollection { name: "nope".into() };
    assert!(matches!(b.consensus.propose(missing, t).await, Err(Error::NotFound(_))));
    assert!(matches!(
        b.consensus.remove_peer(424242, false, t).await,
        Err(Error::NotFound(_))
    ));

    // b gets promoted; then a 2-voter cluster without b has no quorum: bounded failure.
    let b_id = b.consensus.peer_id();
    wait_for("b promoted", Duration::from_secs(20), || {
        a.consensus
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == b_id)
    })
    .await;
    // b learns of its promotion when it applies the membership entry, a moment after a.
    wait_for("b sees itself a voter", Duration::from_secs(20), || {
        b.consensus.metrics().voter
    })
    .await;
    assert_eq!(a.consensus.metrics().peers_total, 2);
    b.consensus.shutdown().await;
    let started = Instant::now();
    let op = create(&a.consensus, "no_quorum", 1);
    let err = a.consensus.propose(op, Duration::from_secs(1)).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(err.to_string().contains("not committed"), "{err}");
    a.consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_id_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let open = |bootstrap: Option<String>| {
        let s = settings(port);
        let uri = uri.clone();
        let path = dir.path().to_path_buf();
        async move {
            start_with(
                &s,
                Some(uri),
                bootstrap,
                Path::new(&path),
                tonic::service::Routes::default(),
                Compaction::default(),
            )
            .await
        }
    };
    let c = open(None).await.unwrap();
    let id = c.peer_id();
    c.propose(create(&c, "kept", 3), Duration::from_secs(5)).await.unwrap();
    c.shutdown().await;
    drop(c);
    // The port is released once the server task is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Restarted with a --bootstrap that would make it a joiner: ignored, it resumes.
    let c = open(Some("http://127.0.0.1:1".into())).await.unwrap();
    assert_eq!(c.peer_id(), id);
    wait_for("leader again", Duration::from_secs(10), || c.is_leader()).await;
    assert!(c.state().collections.contains_key("kept"));
    assert_eq!(c.state().collections["kept"].shards.len(), 3);
    c.shutdown().await;
}
