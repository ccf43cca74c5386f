//! The backup data path (`backup::run`) against an in-memory fake of the node REST API (a few
//! axum servers sharing one cluster state): which peer each shard snapshot is taken on, that it
//! is deleted on the node afterwards, the manifest, and a restore into a cluster of another
//! size uploading every shard (multipart) to a peer holding a replica, with indexes, aliases
//! and counts. The real-node counterpart is `backup_restore.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use operator::backup::node::NodeClient;
use operator::backup::run::{self, Cluster};
use operator::backup::{hex, DirStore};
use operator::cluster_api::Connection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Collection {
    config: Value,
    schema: serde_json::Map<String, Value>,
    /// shard -> peers holding a replica.
    replicas: BTreeMap<u32, Vec<u64>>,
    /// shard -> points.
    points: BTreeMap<u32, u64>,
}

#[derive(Default)]
struct World {
    peers: Vec<u64>,
    collections: BTreeMap<String, Collection>,
    aliases: Vec<(String, String)>,
    /// (peer, name) -> bytes of snapshots on the nodes.
    snapshots: BTreeMap<(u64, String), Vec<u8>>,
    /// (peer, collection, shard) of every upload.
    uploads: Vec<(u64, String, u32)>,
    /// (peer, collection, shard) of every snapshot taken.
    taken: Vec<(u64, String, u32)>,
}

type Shared = Arc<Mutex<World>>;

#[derive(Clone)]
struct Peer {
    id: u64,
    world: Shared,
}

fn ok(result: Value) -> Json<Value> {
    Json(json!({"result": result, "status": "ok", "time": 0.0}))
}

/// The snapshot "file" of a shard: its collection, shard and point count.
fn snapshot_bytes(collection: &str, shard: u32, points: u64) -> Vec<u8> {
    format!("snapshot {collection} {shard} {points} {}", "x".repeat(3000)).into_bytes()
}

fn router(peer: Peer) -> Router {
    Router::new()
        .route(
            "/cluster",
            get(|State(p): State<Peer>| async move {
                let w = p.world.lock().unwrap();
                let peers: serde_json::Map<String, Value> = w
                    .peers
                    .iter()
                    .map(|id| (id.to_string(), json!({"uri": format!("http://peer-{id}:6335")})))
                    .collect();
                ok(json!({"status": "enabled", "peer_id": p.id, "peers": peers,
                          "raft_info": {"term": 1, "commit": 1, "leader": w.peers[0]}}))
            }),
        )
        .route(
            "/collections",
            get(|State(p): State<Peer>| async move {
                let w = p.world.lock().unwrap();
                let names: Vec<Value> = w.collections.keys().map(|n| json!({"name": n})).collect();
                ok(json!({"collections": names}))
            }),
        )
        .route(
            "/collections/{c}",
            get(|State(p): State<Peer>, Path(c): Path<String>| async move {
                let w = p.world.lock().unwrap();
                let col = &w.collections[&c];
                ok(json!({"config": col.config, "payload_schema": col.schema}))
            })
            .put(|State(p): State<Peer>, Path(c): Path<String>, Json(body): Json<Value>| async move {
                let mut w = p.world.lock().unwrap();
                let shards = body["shard_number"].as_u64().unwrap_or(1) as u32;
                let rf = body["replication_factor"].as_u64().unwrap_or(1) as usize;
                let peers = w.peers.clone();
                let mut params = body.clone();
                for k in ["hnsw_config", "optimizers_config", "wal_config"] {
                    params.as_object_mut().unwrap().remove(k);
                }
                let config = json!({"params": params, "hnsw_config": body["hnsw_config"],
                    "optimizer_config": body["optimizers_config"], "wal_config": body["wal_config"]});
                let replicas = (0..shards)
                    .map(|s| {
                        let holders = (0..rf.min(peers.len()))
                            .map(|k| peers[(s as usize + k) % peers.len()])
                            .collect();
                        (s, holders)
                    })
                    .collect();
                w.collections.insert(
                    c,
                    Collection {
                        config,
                        replicas,
                        ..Collection::default()
                    },
                );
                ok(json!(true))
            }),
        )
        .route(
            "/collections/{c}/index",
            put(|State(p): State<Peer>, Path(c): Path<String>, Json(body): Json<Value>| async move {
                let mut w = p.world.lock().unwrap();
                let field = body["field_name"].as_str().unwrap().to_string();
                let schema = &body["field_schema"];
                let data_type = schema.get("type").unwrap_or(schema).clone();
                w.collections
                    .get_mut(&c)
                    .unwrap()
                    .schema
                    .insert(field, json!({"data_type": data_type, "points": 0}));
                ok(json!(true))
            }),
        )
        .route(
            "/collections/{c}/cluster",
            get(|State(p): State<Peer>, Path(c): Path<String>| async move {
                let w = p.world.lock().unwrap();
                let col = &w.collections[&c];
                let local: Vec<Value> = col
                    .replicas
                    .iter()
                    .filter(|(_, holders)| holders.contains(&p.id))
                    .map(|(s, _)| json!({"shard_id": s, "points_count": col.points.get(s).copied().unwrap_or(0), "state": "Active"}))
                    .collect();
                ok(json!({"peer_id": p.id, "shard_count": col.replicas.len(), "local_shards": local,
                          "remote_shards": [], "shard_transfers": []}))
            }),
        )
        .route(
            "/collections/{c}/shards/{s}/snapshots",
            post(|State(p): State<Peer>, Path((c, s)): Path<(String, u32)>| async move {
                let mut w = p.world.lock().unwrap();
                let col = &w.collections[&c];
                assert!(col.replicas[&s].contains(&p.id), "snapshot of shard {s} asked on peer {} without it", p.id);
                let bytes = snapshot_bytes(&c, s, col.points.get(&s).copied().unwrap_or(0));
                let name = format!("{c}-shard-{s}-{}.snapshot", p.id);
                let checksum = hex(&Sha256::digest(&bytes));
                let size = bytes.len();
                w.snapshots.insert((p.id, name.clone()), bytes);
                w.taken.push((p.id, c, s));
                ok(json!({"name": name, "size": size, "checksum": checksum}))
            }),
        )
        .route(
            "/collections/{c}/shards/{s}/snapshots/{name}",
            get(|State(p): State<Peer>, Path((_c, _s, name)): Path<(String, u32, String)>| async move {
                let w = p.world.lock().unwrap();
                Bytes::from(w.snapshots[&(p.id, name)].clone())
            })
            .delete(|State(p): State<Peer>, Path((_c, _s, name)): Path<(String, u32, String)>| async move {
                p.world.lock().unwrap().snapshots.remove(&(p.id, name));
                ok(json!(true))
            }),
        )
        .route(
            "/collections/{c}/shards/{s}/snapshots/upload",
            post(
                |State(p): State<Peer>,
                 Path((c, s)): Path<(String, u32)>,
                 Query(q): Query<BTreeMap<String, String>>,
                 body: Bytes| async move {
                    assert_eq!(q.get("priority").map(String::as_str), Some("snapshot"));
                    let text = String::from_utf8_lossy(&body);
                    assert!(text.contains("name=\"snapshot\""), "multipart field `snapshot`");
                    let start = text.find("snapshot ").expect("snapshot content");
                    let content: Vec<&str> = text[start..].split(' ').take(4).collect();
                    let file = content[..4].join(" ");
                    let expected = snapshot_bytes(content[1], content[2].parse().unwrap(), content[3].parse().unwrap());
                    assert!(
                        text[start..].starts_with(&String::from_utf8_lossy(&expected).to_string()),
                        "the whole file arrives: {file}"
                    );
                    assert_eq!(q.get("checksum"), Some(&hex(&Sha256::digest(&expected))));
                    let mut w = p.world.lock().unwrap();
                    let col = w.collections.get_mut(&c).unwrap();
                    assert!(col.replicas[&s].contains(&p.id), "upload of shard {s} to peer {} without it", p.id);
                    col.points.insert(s, content[3].parse().unwrap());
                    w.uploads.push((p.id, c, s));
                    ok(json!(true))
                },
            ),
        )
        .route(
            "/aliases",
            get(|State(p): State<Peer>| async move {
                let w = p.world.lock().unwrap();
                let list: Vec<Value> = w
                    .aliases
                    .iter()
                    .map(|(a, c)| json!({"alias_name": a, "collection_name": c}))
                    .collect();
                ok(json!({"aliases": list}))
            }),
        )
        .route(
            "/collections/aliases",
            post(|State(p): State<Peer>, Json(body): Json<Value>| async move {
                let mut w = p.world.lock().unwrap();
                for action in body["actions"].as_array().unwrap() {
                    let a = &action["create_alias"];
                    w.aliases.push((
                        a["alias_name"].as_str().unwrap().to_string(),
                        a["collection_name"].as_str().unwrap().to_string(),
                    ));
                }
                ok(json!(true))
            }),
        )
        .route(
            "/collections/{c}/points/count",
            post(|State(p): State<Peer>, Path(c): Path<String>| async move {
                let w = p.world.lock().unwrap();
                ok(json!({"count": w.collections[&c].points.values().sum::<u64>()}))
            }),
        )
        .with_state(peer)
}

/// A fake cluster of `n` peers (ids 10, 11, ...), each on its own loopback port.
async fn fake_cluster(n: u64) -> (Shared, Vec<String>) {
    let world: Shared = Arc::new(Mutex::new(World {
        peers: (10..10 + n).collect(),
        ..World::default()
    }));
    let mut urls = Vec::new();
    for id in 10..10 + n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        urls.push(format!("http://{}", listener.local_addr().expect("addr")));
        let app = router(Peer {
            id,
            world: world.clone(),
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    (world, urls)
}

fn cluster(urls: Vec<String>, scratch: &std::path::Path) -> Cluster {
    Cluster {
        client: NodeClient::new(&Connection::default()).expect("client"),
        nodes: urls,
        scratch: scratch.to_path_buf(),
    }
}

#[tokio::test]
async fn backup_and_restore_into_a_fake_cluster_of_another_size() {
    let (source, urls) = fake_cluster(3).await;
    let client = reqwest::Client::new();
    client
        .put(format!("{}/collections/docs", urls[0]))
        .json(
            &json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 4, "replication_factor": 2,
                      "hnsw_config": {"m": 8}, "optimizers_config": {"indexing_threshold": 100}}),
        )
        .send()
        .await
        .expect("create");
    client
        .put(format!("{}/collections/docs/index", urls[0]))
        .json(&json!({"field_name": "group", "field_schema": "keyword"}))
        .send()
        .await
        .expect("index");
    {
        let mut w = source.lock().unwrap();
        let docs = w.collections.get_mut("docs").unwrap();
        docs.points = BTreeMap::from([(0, 10), (1, 20), (2, 30), (3, 40)]);
        w.aliases.push(("live".to_string(), "docs".to_string()));
    }
    let scratch = tempfile::tempdir().expect("scratch");
    let store_dir = tempfile::tempdir().expect("store");
    let store = DirStore::new(store_dir.path()).expect("store");
    let manifest = run::backup(&cluster(urls, scratch.path()), &store, jiff::Timestamp::now())
        .await
        .expect("backup");
    let docs = &manifest.collections[0];
    assert_eq!(docs.points(), Some(100));
    assert_eq!(docs.shards.len(), 4);
    {
        let w = source.lock().unwrap();
        assert!(
            w.snapshots.is_empty(),
            "snapshots are deleted on the nodes: {:?}",
            w.snapshots.keys()
        );
        assert_eq!(
            w.taken.len(),
            4,
            "one snapshot per shard, not per replica: {:?}",
            w.taken
        );
        for (peer, _, shard) in &w.taken {
            assert!(w.collections["docs"].replicas[shard].contains(peer));
        }
    }
    for shard in &docs.shards {
        let bytes = std::fs::read(store_dir.path().join(&manifest.id).join(&shard.file)).expect("stored");
        assert_eq!(hex(&Sha256::digest(&bytes)), shard.sha256);
        assert_eq!(bytes.len() as u64, shard.size_bytes);
    }
    assert!(
        std::fs::read_dir(scratch.path()).expect("scratch").next().is_none(),
        "scratch is cleaned"
    );

    let (target, urls) = fake_cluster(2).await;
    let report = run::restore(&cluster(urls, scratch.path()), &store, None)
        .await
        .expect("restore");
    assert_eq!(report.collections, [("docs".to_string(), 100)]);
    let w = target.lock().unwrap();
    let docs = &w.collections["docs"];
    assert_eq!(docs.config["params"]["shard_number"], 4);
    assert_eq!(docs.config["hnsw_config"]["m"], 8);
    assert_eq!(docs.config["optimizer_config"]["indexing_threshold"], 100);
    assert_eq!(docs.schema["group"]["data_type"], "keyword");
    assert_eq!(w.aliases, [("live".to_string(), "docs".to_string())]);
    let mut shards: Vec<u32> = w.uploads.iter().map(|u| u.2).collect();
    shards.sort_unstable();
    assert_eq!(shards, [0, 1, 2, 3], "each shard uploaded once");
    assert_eq!(docs.points, BTreeMap::from([(0, 10), (1, 20), (2, 30), (3, 40)]));
}
