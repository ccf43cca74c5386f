//! Drain, peer removal and re-balance driven by the operator's planner and its real HTTP
//! `ClusterApi` against real node processes of this project on loopback ports.
//!
//! They start the node binary built by the workspace build (`cargo build --release`):
//!   cargo test --release -p operator --test real_nodes
//! `QDRANT_BIN` overrides the binary (default: target/release/qdrant).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use operator::cluster_api::{ClusterApi, Connection, HttpClusterApi};
use operator::planner::{plan, ClusterAction, PlanInput, PodView, Step, StsView};
use operator::snapshot::{observe_cluster, Topology};
use serde_json::{json, Value};

/// A port nothing listens on, never the same twice in this process: the tests run in parallel
/// and a port released by one probe must not be handed to two nodes.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn qdrant_bin() -> PathBuf {
    std::env::var_os("QDRANT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/qdrant"))
}

/// One node process; killed on drop.
struct Node {
    child: Option<Child>,
    http: u16,
    p2p: u16,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(bootstrap_p2p: Option<u16>) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, grpc, p2p) = (free_port(), free_port(), free_port());
        let mut cmd = Command::new(qdrant_bin());
        cmd.current_dir(dir.path())
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", http.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", grpc.to_string())
            .env("QDRANT__CLUSTER__ENABLED", "true")
            .env("QDRANT__CLUSTER__P2P__PORT", p2p.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", dir.path().join("storage"))
            .env("QDRANT__STORAGE__SNAPSHOTS_PATH", dir.path().join("snapshots"))
            .arg("--uri")
            .arg(format!("http://127.0.0.1:{p2p}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(seed) = bootstrap_p2p {
            cmd.arg("--bootstrap").arg(format!("http://127.0.0.1:{seed}"));
        }
        let child = cmd
            .spawn()
            .expect("start the node (build it with cargo build --release -p node)");
        Node {
            child: Some(child),
            http,
            p2p,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ordinal k = the k-th node; peers are recognised by their p2p port.
struct Loopback {
    ports: Vec<(u16, u16)>,
}

impl Topology for Loopback {
    fn rest_endpoint(&self, ordinal: u32) -> String {
        format!("http://127.0.0.1:{}", self.ports[ordinal as usize].0)
    }
    fn ordinal_of(&self, uri: &str) -> Option<u32> {
        let port: u16 = uri.trim_end_matches('/').rsplit(':').next()?.parse().ok()?;
        self.ports.iter().position(|(_, p2p)| *p2p == port).map(|i| i as u32)
    }
}

async fn wait_for_cluster(api: &HttpClusterApi, nodes: &[&Node], peers: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut leaders = Vec::new();
        for n in nodes {
            match api.cluster_info(&n.url()).await {
                Ok(info) if info.peers.len() == peers => leaders.push(info.leader()),
                _ => leaders.push(None),
            }
        }
        if leaders.iter().all(|l| l.is_some() && *l == leaders[0]) {
            return;
        }
        assert!(Instant::now() < deadline, "cluster of {peers} did not form");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rest(method: reqwest::Method, url: String, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, &url)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let value: Value = response.json().await.expect("json");
    assert!(status.is_success(), "{url}: {status} {value}");
    value
}

async fn seed_collection(node: &Node, shards: u32, points: u64) {
    rest(
        reqwest::Method::PUT,
        format!("{}/collections/c", node.url()),
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": shards, "replication_factor": 1}),
    )
    .await;
    let batch: Vec<Value> = (0..points)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0, 0.5, 0.25]}))
        .collect();
    rest(
        reqwest::Method::PUT,
        format!("{}/collections/c/points?wait=true", node.url()),
        json!({"points": batch}),
    )
    .await;
}

async fn count(node: &Node) -> u64 {
    let v = rest(
        reqwest::Method::POST,
        format!("{}/collections/c/points/count", node.url()),
        json!({"exact": true}),
    )
    .await;
    v["result"]["count"].as_u64().expect("count")
}

/// Runs the planner against the live nodes until Idle, executing cluster actions over HTTP and
/// stopping the node of a shrunk ordinal.
async fn converge(api: &HttpClusterApi, nodes: &mut [Node], size: i32, mut replicas: i32) -> Vec<Step> {
    let topology = Loopback {
        ports: nodes.iter().map(|n| (n.http, n.p2p)).collect(),
    };
    let mut steps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let pods: Vec<PodView> = (0..replicas as u32)
            .map(|k| PodView {
                ordinal: k,
                ready: true,
                updated: true,
                terminating: false,
            })
            .collect();
        let ready: Vec<u32> = pods.iter().map(|p| p.ordinal).collect();
        let snapshot = observe_cluster(api, &topology, &ready).await.map_err(|e| e.to_string());
        let pvcs: Vec<u32> = (0..replicas as u32).collect();
        let p = plan(&PlanInput {
            size,
            suspend: false,
            rebalance: true,
            sts: Some(StsView {
                replicas,
                settled: true,
            }),
            pods: &pods,
            pvcs: &pvcs,
            cluster: snapshot.as_ref().map_err(Clone::clone),
            known_members: replicas as usize,
            initialized: true,
        });
        match &p.step {
            Step::Idle => return steps,
            Step::Blocked { reason, message } => panic!("blocked: {reason}: {message}"),
            Step::Cluster { action, coordinator } => {
                let node = topology.rest_endpoint(*coordinator);
                match action {
                    ClusterAction::Shard {
                        collection, operation, ..
                    } => api
                        .update_collection_cluster(&node, collection, operation)
                        .await
                        .expect("shard operation"),
                    ClusterAction::RemovePeer { peer, .. } => api.remove_peer(&node, *peer).await.expect("remove peer"),
                }
            }
            Step::Shrink { to, .. } => nodes[*to as usize].stop(),
            _ => {}
        }
        replicas = p.replicas;
        steps.push(p.step);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("no convergence; steps: {steps:#?}");
}

#[tokio::test]
async fn drain_and_remove_the_highest_peer_without_losing_points() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    let third = Node::start(Some(first.p2p));
    let mut nodes = vec![first, second, third];
    wait_for_cluster(&api, &nodes.iter().collect::<Vec<_>>(), 3).await;
    seed_collection(&nodes[0], 6, 300).await;
    assert_eq!(count(&nodes[0]).await, 300);

    let steps = converge(&api, &mut nodes, 2, 3).await;
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::Cluster {
            action: ClusterAction::RemovePeer { .. },
            ..
        }
    )));
    assert!(steps.iter().any(|s| matches!(s, Step::Shrink { from: 3, to: 2 })));
    let info = api.cluster_info(&nodes[0].url()).await.expect("cluster");
    assert_eq!(info.peers.len(), 2);
    assert_eq!(count(&nodes[0]).await, 300, "no point lost");
    assert_eq!(count(&nodes[1]).await, 300);
}

#[tokio::test]
async fn rebalance_onto_a_new_peer() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    wait_for_cluster(&api, &[&first, &second], 2).await;
    seed_collection(&first, 6, 200).await;
    let third = Node::start(Some(first.p2p));
    let mut nodes = vec![first, second, third];
    wait_for_cluster(&api, &nodes.iter().collect::<Vec<_>>(), 3).await;
    converge(&api, &mut nodes, 3, 3).await;
    let c = api.collection_cluster(&nodes[2].url(), "c").await.expect("collection");
    assert_eq!(c.local_shards.len(), 2, "the new peer holds its share: {c:?}");
    assert_eq!(count(&nodes[0]).await, 200);
}

#[tokio::test]
async fn peer_removal_is_refused_while_it_holds_shards() {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let first = Node::start(None);
    let second = Node::start(Some(first.p2p));
    wait_for_cluster(&api, &[&first, &second], 2).await;
    seed_collection(&first, 4, 50).await;
    let info = api.cluster_info(&second.url()).await.expect("cluster");
    let second_id = info.peer_id.expect("peer id");
    let err = api
        .remove_peer(&first.url(), second_id)
        .await
        .expect_err("a peer with shards must not be removed without force");
    assert!(err.to_string().contains("shards"), "{err}");
}
