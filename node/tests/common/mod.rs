//! Test harness: starts the real `qdrant` binary on free ports in a temp directory.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_qdrant");

/// A port nothing listens on, never the same twice in this process: tests run in parallel and a
/// port released by one probe must not be handed to two servers.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    /// Public gRPC port and its URL (what `qdrant_client::Qdrant::from_url` takes).
    pub grpc_port: u16,
    pub grpc_url: String,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let grpc_port = free_port();
        let mut s = Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            grpc_url: format!("http://127.0.0.1:{grpc_port}"),
            grpc_port,
            dir,
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            child: None,
        };
        s.spawn();
        s
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

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", self.port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", self.storage())
            .env("QDRANT__LOG_LEVEL", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start qdrant"));
        self.wait_ready(Duration::from_secs(60));
    }

    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = ureq_get(&format!("{}/readyz", self.url)) {
                if r.0 == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("qdrant exited with {status} during start-up:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "qdrant not ready in {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` and start again on the same storage and port.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn();
    }

    /// SIGTERM (graceful) and start again.
    pub fn stop_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_sigterm(c.id());
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "no graceful exit:\n{}", self.log());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.spawn();
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        request(
            method,
            &format!("{}{}", self.url, path),
            body.map(|b| b.to_string()),
            &[],
        )
    }

    pub fn call_raw(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        request(
            method,
            &format!("{}{}", self.url, path),
            Some(body.to_string()),
            headers,
        )
    }

    /// Calls and asserts a 200, returning `result`.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        assert_eq!(v["status"], "ok", "{v}");
        v["result"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn ureq_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let r = client().get(url).timeout(Duration::from_secs(2)).send()?;
    Ok((r.status().as_u16(), r.text()?))
}

pub fn request(method: &str, url: &str, body: Option<String>, headers: &[(&str, &str)]) -> (u16, Value) {
    try_request(method, url, body, headers).expect("request")
}

/// [`request`] that reports a connection failure (a server that is down) instead of panicking.
pub fn try_request(
    method: &str,
    url: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send()?;
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// Deterministic pseudo-random vectors.
pub fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

pub fn run_binary(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub mod cluster;
pub mod grpc;
