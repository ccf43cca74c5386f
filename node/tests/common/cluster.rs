//! Multi-process cluster harness: peers of the real `qdrant` binary on free ports in temp dirs,
//! started with `--uri`/`--bootstrap` and `QDRANT__CLUSTER__ENABLED=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, request, try_request, ureq_get, BIN};

pub struct Peer {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub p2p_port: u16,
    /// Public gRPC port and its URL (what `qdrant_client::Qdrant::from_url` takes).
    pub grpc_port: u16,
    pub grpc_url: String,
    /// REST base URL.
    pub url: String,
    /// p2p URI (what `--uri` says).
    pub uri: String,
    /// Command-line arguments of the last spawn.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Peer {
    /// A peer with its own ports and directory, not started yet.
    pub fn new(env: &[(&str, &str)]) -> Peer {
        // free_port never hands out the same port twice in this process.
        let (http_port, p2p_port, grpc_port) = (free_port(), free_port(), free_port());
        let peer_tls = env
            .iter()
            .any(|(k, v)| *k == "QDRANT__CLUSTER__P2P__ENABLE_TLS" && *v == "true");
        let scheme = if peer_tls { "https" } else { "http" };
        Peer {
            dir: tempfile::tempdir().unwrap(),
            http_port,
            p2p_port,
            grpc_port,
            grpc_url: format!("http://127.0.0.1:{grpc_port}"),
            url: format!("http://127.0.0.1:{http_port}"),
            uri: format!("{scheme}://127.0.0.1:{p2p_port}"),
            args: Vec::new(),
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            child: None,
        }
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process with `args` (does not wait for anything).
    pub fn spawn(&mut self, args: &[String]) {
        assert!(self.child.is_none(), "peer already running");
        self.args = args.to_vec();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("QDRANT__CLUSTER__ENABLED", "true")
            .env("QDRANT__CLUSTER__P2P__PORT", self.p2p_port.to_string())
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", self.http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", self.storage())
            .env("QDRANT__LOG_LEVEL", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start qdrant"));
    }

    /// First peer of a new cluster.
    pub fn spawn_first(&mut self) {
        let args = vec!["--uri".to_string(), self.uri.clone()];
        self.spawn(&args);
    }

    /// Joins through `bootstrap` (a p2p URI), announcing its own `--uri`.
    pub fn spawn_joiner(&mut self, bootstrap: &str) {
        let args = vec![
            "--bootstrap".to_string(),
            bootstrap.to_string(),
            "--uri".to_string(),
            self.uri.clone(),
        ];
        self.spawn(&args);
    }

    /// Same arguments as the last spawn.
    pub fn respawn(&mut self) {
        let args = self.args.clone();
        self.spawn(&args);
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().ok().flatten().is_none(),
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = ureq_get(&format!("{}/readyz", self.url)) {
                return;
            }
            if !self.is_running() {
                panic!("peer {} exited during start-up:\n{}", self.uri, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "peer {} not ready in {timeout:?}:\n{}",
                self.uri,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        request(
            method,
            &format!("{}{}", self.url, path),
            body.map(|b| b.to_string()),
            &[],
        )
    }

    /// Calls and asserts a 200 with `"status": "ok"`, returning `result`.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {} {path}: {v}", self.uri);
        assert_eq!(v["status"], "ok", "{method} {} {path}: {v}", self.uri);
        v["result"].clone()
    }

    /// Like [`Peer::call`] with a client-side deadline: `Err` if the peer does not answer within
    /// `timeout` (or the connection fails).
    pub fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = client.request(method, format!("{}{}", self.url, path));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let text = resp.text().map_err(|e| e.to_string())?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// `GET /cluster`'s result, if the peer answers.
    pub fn cluster(&self) -> Option<Value> {
        let key = self
            .env
            .iter()
            .find(|(k, _)| k == "QDRANT__SERVICE__API_KEY")
            .map(|(_, v)| v.as_str());
        let headers: Vec<(&str, &str)> = key.map(|k| ("api-key", k)).into_iter().collect();
        let (status, v) = try_request("GET", &format!("{}/cluster", self.url), None, &headers).ok()?;
        if status != 200 {
            return None;
        }
        Some(v["result"].clone())
    }

    /// [`Peer::call`] with extra headers (credentials).
    pub fn call_as(&self, method: &str, path: &str, body: Option<Value>, headers: &[(String, String)]) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        request(
            method,
            &format!("{}{}", self.url, path),
            body.map(|b| b.to_string()),
            &headers,
        )
    }

    pub fn peer_id(&self) -> Option<u64> {
        self.cluster()?["peer_id"].as_u64()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What every peer must agree on for the cluster to count as up.
#[derive(Debug, Clone, Copy)]
pub struct Agreement {
    pub peers: usize,
    pub voters: bool,
    pub same_commit: bool,
}

/// Waits until every peer in `peers` answers `GET /cluster` with the same leader and `n` peers
/// (and, if asked, all voters and equal commits). Returns the leader id.
pub fn wait_agreed(peers: &[&Peer], want: Agreement, timeout: Duration) -> u64 {
    wait_agreed_on(peers, want, timeout, |_| true)
}

/// Like [`wait_agreed`], also requiring `accept(leader)` (e.g. a leader other than a dead one).
pub fn wait_agreed_on(peers: &[&Peer], want: Agreement, timeout: Duration, accept: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let last = peers.iter().map(|p| p.cluster()).collect::<Vec<_>>();
        if let Some(leader) = agreed(&last, want).filter(|l| accept(*l)) {
            return leader;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = peers
                .iter()
                .map(|p| format!("--- {} ---\n{}", p.uri, tail(&p.log(), 40)))
                .collect();
            panic!("no agreement within {timeout:?}: {last:#?}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The agreed leader, if the statuses agree.
pub fn agreed(statuses: &[Option<Value>], want: Agreement) -> Option<u64> {
    let mut leaders = BTreeSet::new();
    let mut commits = BTreeSet::new();
    for s in statuses {
        let s = s.as_ref()?;
        if s["status"] != "enabled" {
            return None;
        }
        leaders.insert(s["raft_info"]["leader"].as_u64()?);
        commits.insert(s["raft_info"]["commit"].as_u64()?);
        if s["peers"].as_object()?.len() != want.peers {
            return None;
        }
        if want.voters && s["raft_info"]["is_voter"] != true {
            return None;
        }
    }
    if leaders.len() != 1 || (want.same_commit && commits.len() != 1) {
        return None;
    }
    leaders.into_iter().next()
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts `n` peers (the first initialises, the others join through it, all spawned at once) and
/// waits until all agree with every peer a voter.
pub fn start_cluster(n: usize, env: &[(&str, &str)]) -> Vec<Peer> {
    let mut peers: Vec<Peer> = (0..n).map(|_| Peer::new(env)).collect();
    let first_uri = peers[0].uri.clone();
    peers[0].spawn_first();
    for p in peers.iter_mut().skip(1) {
        p.spawn_joiner(&first_uri);
    }
    let refs: Vec<&Peer> = peers.iter().collect();
    wait_agreed(
        &refs,
        Agreement {
            peers: n,
            voters: true,
            same_commit: true,
        },
        Duration::from_secs(60),
    );
    peers
}

/// Polls `check` every 25 ms until it returns `Ok`, panicking with the last `Err` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: not within {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

/// shard -> peer -> replica state, as `p` sees collection `name`.
pub fn placement(p: &Peer, name: &str) -> BTreeMap<u64, BTreeMap<u64, String>> {
    let info = p.ok("GET", &format!("/collections/{name}/cluster"), None);
    let me = info["peer_id"].as_u64().unwrap();
    let mut out: BTreeMap<u64, BTreeMap<u64, String>> = BTreeMap::new();
    for s in info["local_shards"].as_array().unwrap() {
        let state = s["state"].as_str().unwrap().to_string();
        out.entry(s["shard_id"].as_u64().unwrap())
            .or_default()
            .insert(me, state);
    }
    for s in info["remote_shards"].as_array().unwrap() {
        let state = s["state"].as_str().unwrap().to_string();
        out.entry(s["shard_id"].as_u64().unwrap())
            .or_default()
            .insert(s["peer_id"].as_u64().unwrap(), state);
    }
    out
}
