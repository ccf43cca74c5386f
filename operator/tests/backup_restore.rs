//! Backup and restore against real node processes of this project on loopback ports: a
//! 3-peer cluster is backed up (shard snapshots into a directory store, and into an
//! S3-compatible server, `moto_server`, through the `operator backup-agent` binary), then
//! restored into fresh clusters of 2 and 3 peers, which must answer the same searches.
//!
//!   cargo test --release -p operator --test backup_restore
//!
//! `QDRANT_BIN` overrides the node binary (default: target/release/qdrant). The S3 test takes
//! `moto_server` from the project's virtualenv (`scripts/py-env.sh`, tests/requirements.txt).

#[path = "support/nodes.rs"]
mod nodes;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nodes::{free_port, rest, wait_for_cluster, Node, Proc};
use operator::backup::agent::AgentResult;
use operator::backup::node::NodeClient;
use operator::backup::run::{self, Cluster};
use operator::backup::s3::{S3Config, S3Store};
use operator::backup::sigv4::Credentials;
use operator::backup::{hex, BackupStore, DirStore};
use operator::cluster_api::Connection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A cluster of `size` node processes, formed (every peer agrees on a leader).
struct TestCluster {
    nodes: Vec<Node>,
    scratch: tempfile::TempDir,
}

impl TestCluster {
    async fn start(size: usize) -> TestCluster {
        let first = Node::start(None);
        let seed = first.p2p;
        let mut nodes = vec![first];
        wait_for_cluster(&[&nodes[0]], 1).await;
        for _ in 1..size {
            nodes.push(Node::start(Some(seed)));
        }
        wait_for_cluster(&nodes.iter().collect::<Vec<_>>(), size).await;
        TestCluster {
            nodes,
            scratch: tempfile::tempdir().expect("scratch"),
        }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    fn cluster(&self) -> Cluster {
        Cluster {
            client: NodeClient::new(&Connection::default()).expect("client"),
            nodes: self.urls(),
            scratch: self.scratch.path().to_path_buf(),
        }
    }
}

/// A deterministic pseudo-random vector.
fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..dim)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect()
}

const POINTS: u64 = 600;

/// Two collections (one sharded and replicated with a payload index, one small), an alias.
async fn seed(url: &str) {
    rest(
        reqwest::Method::PUT,
        format!("{url}/collections/docs"),
        json!({"vectors": {"size": 8, "distance": "Cosine"}, "shard_number": 4, "replication_factor": 2,
               "hnsw_config": {"m": 8}, "optimizers_config": {"indexing_threshold": 100}}),
    )
    .await;
    rest(
        reqwest::Method::PUT,
        format!("{url}/collections/docs/index?wait=true"),
        json!({"field_name": "group", "field_schema": "keyword"}),
    )
    .await;
    for chunk in (0..POINTS).collect::<Vec<_>>().chunks(200) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"id": i, "vector": vector(*i, 8), "payload": {"group": format!("g{}", i % 5), "n": i}}))
            .collect();
        rest(
            reqwest::Method::PUT,
            format!("{url}/collections/docs/points?wait=true"),
            json!({"points": points}),
        )
        .await;
    }
    rest(
        reqwest::Method::PUT,
        format!("{url}/collections/small"),
        json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1, "replication_factor": 1}),
    )
    .await;
    let points: Vec<Value> = (0..50u64)
        .map(|i| json!({"id": i, "vector": vector(1000 + i, 4)}))
        .collect();
    rest(
        reqwest::Method::PUT,
        format!("{url}/collections/small/points?wait=true"),
        json!({"points": points}),
    )
    .await;
    rest(
        reqwest::Method::POST,
        format!("{url}/collections/aliases"),
        json!({"actions": [{"create_alias": {"alias_name": "docs-live", "collection_name": "docs"}}]}),
    )
    .await;
}

/// Answers of a fixed set of searches: `(id, score)` lists.
async fn searches(url: &str) -> Vec<Vec<(u64, f64)>> {
    let mut out = Vec::new();
    for q in 0..6u64 {
        let mut body = json!({"vector": vector(5000 + q, 8), "limit": 10, "params": {"exact": true}});
        if q % 2 == 1 {
            // Groups are g0..g4.
            body["filter"] = json!({"must": [{"key": "group", "match": {"value": format!("g{}", q % 5)}}]});
        }
        // Through the alias for half of them.
        let collection = if q < 3 { "docs" } else { "docs-live" };
        let v = rest(
            reqwest::Method::POST,
            format!("{url}/collections/{collection}/points/search"),
            body,
        )
        .await;
        let hits = v["result"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| (h["id"].as_u64().expect("id"), h["score"].as_f64().expect("score")))
            .collect();
        out.push(hits);
    }
    let v = rest(
        reqwest::Method::POST,
        format!("{url}/collections/small/points/search"),
        json!({"vector": vector(7, 4), "limit": 5, "params": {"exact": true}}),
    )
    .await;
    out.push(
        v["result"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| (h["id"].as_u64().expect("id"), h["score"].as_f64().expect("score")))
            .collect(),
    );
    out
}

fn assert_same_answers(expected: &[Vec<(u64, f64)>], actual: &[Vec<(u64, f64)>], what: &str) {
    assert_eq!(expected.len(), actual.len());
    for (q, (e, a)) in expected.iter().zip(actual).enumerate() {
        let ids = |hits: &[(u64, f64)]| hits.iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(ids(e), ids(a), "{what}: search {q} returned other ids");
        for ((_, se), (_, sa)) in e.iter().zip(a) {
            assert!((se - sa).abs() < 1e-5, "{what}: search {q}: score {sa} instead of {se}");
        }
        assert!(!e.is_empty(), "search {q} found nothing");
    }
}

async fn count(url: &str, collection: &str) -> u64 {
    let v = rest(
        reqwest::Method::POST,
        format!("{url}/collections/{collection}/points/count"),
        json!({"exact": true}),
    )
    .await;
    v["result"]["count"].as_u64().expect("count")
}

/// Restored collections have the source's config, payload index and alias.
async fn check_restored(url: &str, expected: &[Vec<(u64, f64)>], what: &str) {
    assert_eq!(count(url, "docs").await, POINTS, "{what}");
    assert_eq!(count(url, "small").await, 50, "{what}");
    let info = rest(reqwest::Method::GET, format!("{url}/collections/docs"), json!({})).await;
    let params = &info["result"]["config"]["params"];
    assert_eq!(params["shard_number"], 4, "{what}: {params}");
    assert_eq!(params["replication_factor"], 2, "{what}");
    assert_eq!(info["result"]["config"]["hnsw_config"]["m"], 8, "{what}");
    assert_eq!(
        info["result"]["config"]["optimizer_config"]["indexing_threshold"], 100,
        "{what}"
    );
    assert_eq!(
        info["result"]["payload_schema"]["group"]["data_type"], "keyword",
        "{what}: {}",
        info["result"]["payload_schema"]
    );
    let aliases = rest(reqwest::Method::GET, format!("{url}/aliases"), json!({})).await;
    assert!(
        aliases["result"]["aliases"]
            .as_array()
            .expect("aliases")
            .iter()
            .any(|a| a["alias_name"] == "docs-live" && a["collection_name"] == "docs"),
        "{what}: {aliases}"
    );
    assert_same_answers(expected, &searches(url).await, what);
}

async fn sha256_of(path: &Path) -> String {
    hex(&Sha256::digest(tokio::fs::read(path).await.expect("read")))
}

#[tokio::test]
async fn backup_then_restore_into_fresh_clusters_of_2_and_3_peers() {
    let source = TestCluster::start(3).await;
    seed(&source.nodes[0].url()).await;
    let expected = searches(&source.nodes[0].url()).await;

    let store_dir = tempfile::tempdir().expect("store");
    let store = DirStore::new(store_dir.path()).expect("store");
    let now = jiff::Timestamp::now();
    let manifest = run::backup(&source.cluster(), &store, now).await.expect("backup");

    // What the backup recorded.
    let names: Vec<&str> = manifest.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["docs", "small"]);
    let docs = &manifest.collections[0];
    assert_eq!(docs.shards.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(docs.points(), Some(POINTS), "per-shard counts add up");
    assert_eq!(manifest.collections[1].points(), Some(50));
    assert_eq!(manifest.aliases.len(), 1);
    assert!(docs.payload_schema.contains_key("group"));
    for shard in &docs.shards {
        let file = store_dir.path().join(&manifest.id).join(&shard.file);
        assert_eq!(sha256_of(&file).await, shard.sha256, "stored file matches its checksum");
        assert_eq!(std::fs::metadata(&file).expect("file").len(), shard.size_bytes);
    }
    assert!(store_dir.path().join(&manifest.id).join("manifest.json").exists());
    // Nothing left on the nodes: the shard snapshots were deleted after the download.
    for url in source.urls() {
        for shard in 0..4 {
            let listed = reqwest::get(format!("{url}/collections/docs/shards/{shard}/snapshots"))
                .await
                .expect("list");
            if listed.status().is_success() {
                let v: Value = listed.json().await.expect("json");
                assert_eq!(v["result"], json!([]), "{url} shard {shard}: {v}");
            }
        }
    }
    drop(source);

    // Into 2 peers (fewer than the source).
    let two = TestCluster::start(2).await;
    let report = run::restore(&two.cluster(), &store, None)
        .await
        .expect("restore into 2 peers");
    assert_eq!(report.id, manifest.id);
    assert_eq!(
        report.collections,
        [("docs".to_string(), POINTS), ("small".to_string(), 50)]
    );
    for node in &two.nodes {
        check_restored(&node.url(), &expected, "2-peer cluster").await;
    }
    drop(two);

    // Into a fresh 3-peer cluster, by id; then again (a retried restore is harmless).
    let three = TestCluster::start(3).await;
    run::restore(&three.cluster(), &store, Some(&manifest.id))
        .await
        .expect("restore into 3 peers");
    check_restored(&three.nodes[2].url(), &expected, "3-peer cluster").await;
    run::restore(&three.cluster(), &store, Some(&manifest.id))
        .await
        .expect("restore again");
    check_restored(&three.nodes[1].url(), &expected, "3-peer cluster, restored twice").await;

    // A backup that does not exist, or is incomplete, is refused.
    store
        .put_bytes("20200101T000000Z/c0-s0.snapshot", vec![1, 2, 3])
        .await
        .expect("put");
    let err = run::restore(&three.cluster(), &store, Some("20200101T000000Z"))
        .await
        .expect_err("incomplete backup");
    assert!(err.to_string().contains("incomplete"), "{err}");
}

#[tokio::test]
async fn a_corrupted_shard_snapshot_is_refused_on_restore() {
    let source = TestCluster::start(2).await;
    seed(&source.nodes[0].url()).await;
    let store_dir = tempfile::tempdir().expect("store");
    let store = DirStore::new(store_dir.path()).expect("store");
    let manifest = run::backup(&source.cluster(), &store, jiff::Timestamp::now())
        .await
        .expect("backup");
    let file = store_dir
        .path()
        .join(&manifest.id)
        .join(&manifest.collections[0].shards[1].file);
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, bytes).expect("write");
    let target = TestCluster::start(2).await;
    let err = run::restore(&target.cluster(), &store, None)
        .await
        .expect_err("corrupted snapshot");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

/// `moto_server` from the project's virtualenv on a free loopback port.
struct Moto {
    _proc: Proc,
    endpoint: String,
}

impl Moto {
    async fn start() -> Moto {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new("bash")
            .arg(root.join("scripts/py-env.sh"))
            .current_dir(&root)
            .output()
            .expect("run scripts/py-env.sh");
        assert!(
            out.status.success(),
            "scripts/py-env.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        let port = free_port();
        let child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(&endpoint).await.is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Moto {
            _proc: Proc(child),
            endpoint,
        }
    }
}

/// Runs `operator backup-agent <args>` with `env`; returns its result file.
fn agent(env: &[(&str, String)], args: &[&str]) -> (bool, AgentResult) {
    let result = tempfile::NamedTempFile::new().expect("result file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_operator"));
    cmd.arg("backup-agent").args(args).env("RESULT_FILE", result.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the agent");
    let text = std::fs::read_to_string(result.path()).expect("result");
    let parsed: AgentResult = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(text.len() <= 4096);
    (out.status.success(), parsed)
}

#[tokio::test]
async fn s3_backup_prune_and_restore_through_the_agent() {
    let moto = Moto::start().await;
    // Create the bucket (moto accepts any credentials).
    let created = reqwest::Client::new()
        .put(format!("{}/backups", moto.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(created.status().is_success(), "{}", created.status());

    let source = TestCluster::start(3).await;
    seed(&source.nodes[0].url()).await;
    let expected = searches(&source.nodes[0].url()).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let env = |nodes: Vec<String>| {
        vec![
            ("QDRANT_NODES", nodes.join(",")),
            ("S3_ENDPOINT", moto.endpoint.clone()),
            ("S3_BUCKET", "backups".to_string()),
            ("S3_PREFIX", "team/db/nightly".to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("BACKUP_LOCATION", "s3://backups/team/db/nightly".to_string()),
            ("SCRATCH_DIR", scratch.path().display().to_string()),
            ("RETENTION_COUNT", "1".to_string()),
        ]
    };
    let (ok, first) = agent(&env(source.urls()), &["backup"]);
    assert!(ok, "{first:?}");
    let first = first.backup.expect("record");
    assert_eq!(first.collections.len(), 2);
    assert_eq!(first.collections[0].points, Some(POINTS));
    assert_eq!(first.collections[0].checksums.len(), 4);
    assert!(first.size_bytes > 0);
    assert!(first.location.starts_with("s3://backups/team/db/nightly/"));
    // Ids have a one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, second) = agent(&env(source.urls()), &["backup"]);
    assert!(ok, "{second:?}");
    assert_eq!(second.pruned, vec![first.id], "retention count 1 prunes the first");
    let second = second.backup.expect("record");

    let store = S3Store::new(S3Config {
        endpoint: moto.endpoint.clone(),
        bucket: "backups".to_string(),
        prefix: "team/db/nightly".to_string(),
        credentials: Credentials {
            access_key_id: "testing".to_string(),
            secret_access_key: "testing".to_string(),
            region: "us-east-1".to_string(),
        },
        insecure: false,
    })
    .expect("store");
    let listed = run::list_backups(&store).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, second.id);
    let manifest_bytes = store
        .get_bytes(&format!("{}/manifest.json", second.id))
        .await
        .expect("manifest");
    assert_eq!(hex(&Sha256::digest(&manifest_bytes)), second.manifest_sha256);
    drop(source);

    let two = TestCluster::start(2).await;
    let (ok, restored) = agent(&env(two.urls()), &["restore"]);
    assert!(ok, "{restored:?}");
    assert_eq!(restored.restored.as_deref(), Some(second.id.as_str()));
    check_restored(&two.nodes[1].url(), &expected, "2-peer cluster from S3").await;

    // A failure is reported as the agent's error.
    let (ok, failed) = agent(&env(two.urls()), &["restore", "--id", "20200101T000000Z"]);
    assert!(!ok);
    assert!(failed.error.is_some_and(|e| e.contains("no manifest")));
}

/// The S3 store alone (no node needed): objects streamed up and down, listing under a prefix
/// across pages, deletion, and pruning by retention, against `moto_server`.
#[tokio::test]
async fn s3_store_round_trip_list_and_prune_against_moto() {
    let moto = Moto::start().await;
    let created = reqwest::Client::new()
        .put(format!("{}/store-test", moto.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(created.status().is_success(), "{}", created.status());
    let store = S3Store::new(S3Config {
        endpoint: moto.endpoint.clone(),
        bucket: "store-test".to_string(),
        prefix: "/p/q/".to_string(),
        credentials: Credentials {
            access_key_id: "testing".to_string(),
            secret_access_key: "testing".to_string(),
            region: "us-east-1".to_string(),
        },
        insecure: false,
    })
    .expect("store");
    let dir = tempfile::tempdir().expect("tempdir");
    // 3 MiB and a bit: several chunks of the upload stream.
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let source = dir.path().join("big");
    std::fs::write(&source, &big).expect("write");
    store
        .put_file("20261201T000000Z/c0-s0.snapshot", &source)
        .await
        .expect("put file");
    let back = dir.path().join("back");
    let n = store
        .get_file("20261201T000000Z/c0-s0.snapshot", &back)
        .await
        .expect("get file");
    assert_eq!(n, big.len() as u64);
    assert_eq!(sha256_of(&back).await, hex(&Sha256::digest(&big)));
    // Larger than a part: a multipart upload (parts of S3's minimum, 5 MiB; the last shorter).
    let parted = store.clone().with_part_size(5 << 20);
    let huge: Vec<u8> = (0..11 * 1024 * 1024 + 5).map(|i| (i % 253) as u8).collect();
    let source = dir.path().join("huge");
    std::fs::write(&source, &huge).expect("write");
    parted
        .put_file("20261201T000000Z/c1-s0.snapshot", &source)
        .await
        .expect("multipart put");
    let n = store
        .get_file("20261201T000000Z/c1-s0.snapshot", &back)
        .await
        .expect("get multipart object");
    assert_eq!(n, huge.len() as u64);
    assert_eq!(sha256_of(&back).await, hex(&Sha256::digest(&huge)));
    // Keys with characters that need encoding.
    store
        .put_bytes("odd dir/a+b=c&d.json", b"{}".to_vec())
        .await
        .expect("put odd key");
    assert_eq!(store.get_bytes("odd dir/a+b=c&d.json").await.expect("get odd"), b"{}");
    assert!(matches!(
        store.get_bytes("nothing/here").await,
        Err(operator::backup::StoreError::NotFound(_))
    ));
    // Listing under the prefix (a few keys: one page; continuation tokens are not exercised).
    for id in ["20261202T000000Z", "20261203T000000Z"] {
        store
            .put_bytes(&format!("{id}/manifest.json"), b"{}".to_vec())
            .await
            .expect("put");
    }
    store
        .put_bytes("20261201T000000Z/manifest.json", b"{}".to_vec())
        .await
        .expect("put");
    let keys = store.list("").await.expect("list");
    assert!(
        keys.iter().all(|k| !k.starts_with("p/")),
        "the prefix is stripped: {keys:?}"
    );
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(store.list("2026120").await.expect("list").len(), 5);
    let now: jiff::Timestamp = "2026-12-05T00:00:00Z".parse().expect("ts");
    let pruned = run::prune(
        &store,
        operator::backup::retention::Retention {
            count: Some(1),
            max_age: None,
        },
        now,
        None,
    )
    .await
    .expect("prune");
    assert_eq!(pruned, ["20261201T000000Z", "20261202T000000Z"]);
    let left = run::list_backups(&store).await.expect("list backups");
    let ids: Vec<&str> = left.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["20261203T000000Z", "odd dir"]);
    store.delete("odd dir/a+b=c&d.json").await.expect("delete");
    store.delete("odd dir/a+b=c&d.json").await.expect("absent is fine");
    assert_eq!(store.list("").await.expect("list"), ["20261203T000000Z/manifest.json"]);
}

/// The agent binary without any node: configuration errors and unreachable clusters end up in
/// its result file (the termination message) and its exit status.
#[test]
fn agent_reports_failures_in_its_result() {
    let store = tempfile::tempdir().expect("store");
    let (ok, result) = agent(
        &[("QDRANT_NODES", format!("http://127.0.0.1:{}", free_port()))],
        &["backup"],
    );
    assert!(!ok);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("BACKUP_DIR or S3_ENDPOINT")),
        "{result:?}"
    );
    let env = [
        ("QDRANT_NODES", format!("http://127.0.0.1:{}", free_port())),
        ("BACKUP_DIR", store.path().display().to_string()),
        ("RETENTION_MAX_AGE", "7x".to_string()),
    ];
    let (ok, result) = agent(&env, &["backup"]);
    assert!(!ok);
    assert!(
        result.error.as_deref().is_some_and(|e| e.contains("invalid age")),
        "{result:?}"
    );
    let (ok, result) = agent(&env[..2], &["backup"]);
    assert!(!ok);
    assert!(
        result.error.as_deref().is_some_and(|e| e.contains("no node answered")),
        "{result:?}"
    );
    assert!(result.backup.is_none());
    let (ok, result) = agent(&env[..2], &["restore"]);
    assert!(!ok);
    assert!(
        result
            .error
            .as_deref()
            .is_some_and(|e| e.contains("incomplete or does not exist")),
        "{result:?}"
    );
}
