//! Real node processes of this project on loopback ports, for the tests that drive a cluster
//! (`real_nodes`, `backup_restore`). Included with `#[path]`: these tests need none of the
//! mocked API server in `support/mod.rs`.
//!
//! They start the node binary built by the workspace build (`cargo build --release`);
//! `QDRANT_BIN` overrides it (default: target/release/qdrant).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use operator::cluster_api::{ClusterApi, Connection, HttpClusterApi};
use serde_json::Value;

/// A port nothing listens on, never the same twice in this process: the tests run in parallel
/// and a port released by one probe must not be handed to two nodes.
pub fn free_port() -> u16 {
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

pub fn qdrant_bin() -> PathBuf {
    std::env::var_os("QDRANT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/qdrant"))
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One node process in cluster mode; killed on drop (or by `stop`).
pub struct Node {
    proc: Option<Proc>,
    pub http: u16,
    pub p2p: u16,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The first peer (`bootstrap_p2p` None) or one joining the peer on that p2p port.
    pub fn start(bootstrap_p2p: Option<u16>) -> Node {
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
            proc: Some(Proc(child)),
            http,
            p2p,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Kills the process (its data directory stays until drop).
    pub fn stop(&mut self) {
        self.proc.take();
    }
}

/// A REST call that must succeed; returns the response JSON.
pub async fn rest(method: reqwest::Method, url: String, body: Value) -> Value {
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

/// Waits (at most 60 s) until every node reports `peers` peers and all agree on one leader.
pub async fn wait_for_cluster(nodes: &[&Node], peers: usize) {
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
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
