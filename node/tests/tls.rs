//! TLS on the public APIs: REST and gRPC over TLS with a CA the test makes (openssl), mutual TLS
//! refusing clients without a certificate, plain requests to a TLS port failing cleanly, a
//! certificate rotated on disk served without a restart (`tls.cert_ttl`; the peer client
//! certificate too), and a bad certificate path failing the start with a clear message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, run_binary, BIN};
use qdrant_client::qdrant::collections_client::CollectionsClient;
use qdrant_client::qdrant::qdrant_client::QdrantClient as HealthClient;
use qdrant_client::qdrant::{HealthCheckRequest, ListCollectionsRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        std::fs::write(pki.path("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        pki.issue("server");
        pki.issue("client");
        pki
    }

    /// `name.pem`/`name.key`: a certificate for 127.0.0.1/localhost with CN `name`, signed by the CA.
    fn issue(&self, name: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// Runs `openssl args` in the PKI's directory.
    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn pem(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }
}

/// A node with TLS on; killed on drop.
struct TlsNode {
    _dir: tempfile::TempDir,
    http: u16,
    grpc: u16,
    child: Child,
}

impl TlsNode {
    fn env(pki: &Pki, dir: &Path, http: u16, grpc: u16, mutual: bool) -> Vec<(String, String)> {
        let s = |p: PathBuf| p.display().to_string();
        vec![
            ("QDRANT__SERVICE__HOST".into(), "127.0.0.1".into()),
            ("QDRANT__SERVICE__HTTP_PORT".into(), http.to_string()),
            ("QDRANT__SERVICE__GRPC_PORT".into(), grpc.to_string()),
            ("QDRANT__STORAGE__STORAGE_PATH".into(), s(dir.join("storage"))),
            ("QDRANT__SERVICE__ENABLE_TLS".into(), "true".into()),
            (
                "QDRANT__SERVICE__VERIFY_HTTPS_CLIENT_CERTIFICATE".into(),
                mutual.to_string(),
            ),
            ("QDRANT__TLS__CERT".into(), s(pki.path("server.pem"))),
            ("QDRANT__TLS__KEY".into(), s(pki.path("server.key"))),
            ("QDRANT__TLS__CA_CERT".into(), s(pki.path("ca.pem"))),
        ]
    }

    fn start(pki: &Pki, mutual: bool) -> TlsNode {
        Self::start_with(pki, mutual, &[])
    }

    fn start_with(pki: &Pki, mutual: bool, extra: &[(&str, &str)]) -> TlsNode {
        let dir = tempfile::tempdir().unwrap();
        let (http, grpc) = (free_port(), free_port());
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let child = Command::new(BIN)
            .current_dir(dir.path())
            .envs(Self::env(pki, dir.path(), http, grpc, mutual))
            .envs(extra.iter().copied())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let node = TlsNode {
            _dir: dir,
            http,
            grpc,
            child,
        };
        let client = rest_client(pki, mutual);
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.get(node.url("/readyz")).send().map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(Instant::now() < deadline, "TLS node not ready:\n{}", node.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.http)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("node.log")).unwrap_or_default()
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rest_client(pki: &Pki, with_identity: bool) -> reqwest::blocking::Client {
    let mut b = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.pem("ca.pem")).unwrap());
    if with_identity {
        let mut pem = pki.pem("client.pem");
        pem.extend(pki.pem("client.key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn grpc_channel(pki: &Pki, port: u16, with_identity: bool) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.pem("ca.pem")))
        .domain_name("localhost");
    if with_identity {
        tls = tls.identity(Identity::from_pem(pki.pem("client.pem"), pki.pem("client.key")));
    }
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)?
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rest_and_grpc_over_tls() {
    let pki = Pki::new();
    let node = TlsNode::start(&pki, false);
    let client = rest_client(&pki, false);
    let r = client
        .put(node.url("/collections/tls_c"))
        .json(&serde_json::json!({"vectors": {"size": 2, "distance": "Dot"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());

    // Plain HTTP to the TLS port gets no HTTP answer, and the node keeps serving.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(plain
        .get(format!("http://127.0.0.1:{}/collections", node.http))
        .send()
        .is_err());

    runtime().block_on(async {
        let channel = grpc_channel(&pki, node.grpc, false).await.expect("TLS gRPC channel");
        let reply = HealthClient::new(channel.clone())
            .health_check(HealthCheckRequest {})
            .await
            .unwrap();
        assert_eq!(reply.into_inner().title, "qdrant - vector search engine");
        let list = CollectionsClient::new(channel)
            .list(ListCollectionsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(list.collections.iter().any(|c| c.name == "tls_c"), "{list:?}");
        // A plain-text gRPC client fails instead of hanging.
        let plain = Channel::from_shared(format!("http://127.0.0.1:{}", node.grpc))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect()
            .await;
        if let Ok(plain) = plain {
            assert!(HealthClient::new(plain)
                .health_check(HealthCheckRequest {})
                .await
                .is_err());
        }
    });
    assert_eq!(client.get(node.url("/collections")).send().unwrap().status(), 200);
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate() {
    let pki = Pki::new();
    let node = TlsNode::start(&pki, true);
    assert_eq!(
        rest_client(&pki, true)
            .get(node.url("/collections"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert!(rest_client(&pki, false).get(node.url("/collections")).send().is_err());
    runtime().block_on(async {
        let with = grpc_channel(&pki, node.grpc, true).await.unwrap();
        assert!(HealthClient::new(with)
            .health_check(HealthCheckRequest {})
            .await
            .is_ok());
        // Without a certificate the handshake fails, at connect or at the first call.
        if let Ok(without) = grpc_channel(&pki, node.grpc, false).await {
            assert!(HealthClient::new(without)
                .health_check(HealthCheckRequest {})
                .await
                .is_err());
        }
    });
}

#[test]
fn unreadable_certificate_fails_the_start() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let mut env = TlsNode::env(&pki, dir.path(), free_port(), free_port(), false);
    env.retain(|(k, _)| k != "QDRANT__TLS__CERT");
    env.push(("QDRANT__TLS__CERT".into(), "/nonexistent/cert.pem".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_binary(dir.path(), &[], &env);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls.cert"), "{stderr}");
}

/// The subject of the certificate a TLS port serves (as `openssl s_client` prints it).
fn served_subject(port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no certificate served on {port}: {text}"))
        .to_string()
}

#[test]
fn a_certificate_rotated_on_disk_is_served_without_a_restart() {
    let pki = Pki::new();
    pki.issue("rotated");
    let node = TlsNode::start_with(&pki, false, &[("QDRANT__TLS__CERT_TTL", "1")]);
    assert!(served_subject(node.http).contains("server"));
    // Rotated as cert-manager does: new files at the same paths.
    std::fs::copy(pki.path("rotated.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("rotated.pem"), pki.path("server.pem")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for port in [node.http, node.grpc] {
        while !served_subject(port).contains("rotated") {
            assert!(
                Instant::now() < deadline,
                "port {port} still serves the old certificate:\n{}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Clients that trust the CA keep working; a half-written rotation keeps the last good one.
    let client = rest_client(&pki, false);
    assert_eq!(client.get(node.url("/collections")).send().unwrap().status(), 200);
    std::fs::write(pki.path("server.pem"), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(served_subject(node.http).contains("rotated"));
    assert_eq!(client.get(node.url("/collections")).send().unwrap().status(), 200);
    assert!(node.log().contains("TLS certificate reload failed"), "{}", node.log());
}

#[test]
fn a_cluster_with_peer_tls_forms_replicates_and_survives_a_restart() {
    use common::cluster::{start_cluster, wait_agreed, Agreement};
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.path("server.pem").display().to_string(),
        pki.path("server.key").display().to_string(),
        pki.path("ca.pem").display().to_string(),
    );
    let env = [
        ("QDRANT__CLUSTER__P2P__ENABLE_TLS", "true"),
        ("QDRANT__TLS__CERT", cert.as_str()),
        ("QDRANT__TLS__KEY", key.as_str()),
        ("QDRANT__TLS__CA_CERT", ca.as_str()),
    ];
    let mut peers = start_cluster(3, &env);
    assert!(peers.iter().all(|p| p.uri.starts_with("https://")));
    let create =
        serde_json::json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2});
    peers[0].ok("PUT", "/collections/p2p?timeout=30", Some(create));
    let points: Vec<_> = (0..60)
        .map(|i| serde_json::json!({"id": i, "vector": [1.0, i as f32]}))
        .collect();
    peers[1].ok(
        "PUT",
        "/collections/p2p/points?wait=true",
        Some(serde_json::json!({ "points": points })),
    );
    let count = serde_json::json!({"exact": true});
    for p in &peers {
        let n = p.ok(
            "POST",
            "/collections/p2p/points/count?consistency=all",
            Some(count.clone()),
        );
        assert_eq!(n["count"], 60, "{}", p.log());
    }
    // The peer port refuses plain gRPC and TLS clients without a certificate of the CA.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(plain
        .get(format!("http://127.0.0.1:{}/", peers[2].p2p_port))
        .send()
        .is_err());
    let stranger = rest_client(&pki, false);
    assert!(stranger
        .get(format!("https://127.0.0.1:{}/", peers[2].p2p_port))
        .send()
        .is_err());
    // A restarted peer rejoins over TLS and catches up.
    peers[2].kill();
    peers[0].ok(
        "PUT",
        "/collections/p2p/points?wait=true",
        Some(serde_json::json!({"points": [{"id": 100, "vector": [0.5, 0.5]}]})),
    );
    peers[2].respawn();
    peers[2].wait_ready(Duration::from_secs(60));
    let refs: Vec<&common::cluster::Peer> = peers.iter().collect();
    wait_agreed(
        &refs,
        Agreement {
            peers: 3,
            voters: true,
            same_commit: true,
        },
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = peers[2].call(
            "POST",
            "/collections/p2p/points/count?consistency=all",
            Some(count.clone()),
        );
        if status == 200 && body["result"]["count"] == 61 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted peer did not catch up: {status} {body}\n{}",
            peers[2].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_peer_client_certificate_is_read_again_after_its_ttl() {
    let pki = Pki::new();
    pki.issue("rotated");
    let mut settings = node::settings::Settings::default();
    settings.cluster.p2p.enable_tls = true;
    settings.tls.cert = pki.path("client.pem");
    settings.tls.key = pki.path("client.key");
    settings.tls.ca_cert = Some(pki.path("ca.pem"));
    settings.tls.cert_ttl = Some(1);
    let tls = node::api::tls::PeerClientTls::load(&settings)
        .unwrap()
        .expect("peer TLS is on");
    assert!(!tls.rotated(), "nothing changed yet");
    // Rotated on disk: after the TTL the next connection's configuration is the new one, once.
    std::fs::copy(pki.path("rotated.key"), pki.path("client.key")).unwrap();
    std::fs::copy(pki.path("rotated.pem"), pki.path("client.pem")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(tls.rotated(), "the rotated certificate was not picked up");
    assert!(!tls.rotated());
    // A half-written rotation keeps the last good files.
    std::fs::write(pki.path("ca.pem"), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!tls.rotated());
    // Without peer TLS there is nothing to load; without a CA it cannot start.
    settings.tls.ca_cert = None;
    let err = node::api::tls::PeerClientTls::load(&settings).unwrap_err();
    assert!(err.to_string().contains("needs tls.ca_cert"), "{err}");
    settings.cluster.p2p.enable_tls = false;
    assert!(node::api::tls::PeerClientTls::load(&settings).unwrap().is_none());
}
