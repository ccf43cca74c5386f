//! The real HTTP client of the node's cluster API against a local stand-in that answers like
//! Qdrant (envelopes, error messages) and records what it received.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};
use operator::cluster_api::{
    ClusterApi, ClusterApiError, Connection, DropReplicaRequest, HttpClusterApi, ReplicaState, ShardOperation,
    ShardTransferRequest,
};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    fn push(&self, line: String) {
        if let Ok(mut r) = self.requests.lock() {
            r.push(line);
        }
    }
    fn all(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn ok(result: Value) -> Json<Value> {
    Json(json!({"result": result, "status": "ok", "time": 0.001}))
}

async fn start() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/cluster",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                seen.push(format!(
                    "GET /cluster api-key={}",
                    headers.get("api-key").and_then(|v| v.to_str().ok()).unwrap_or("-")
                ));
                ok(json!({
                    "status": "enabled", "peer_id": 1,
                    "peers": {"1": {"uri": "http://demo-0.demo-headless.db:6335/"},
                              "2": {"uri": "http://demo-1.demo-headless.db:6335/"}},
                    "raft_info": {"term": 3, "commit": 40, "pending_operations": 0, "leader": 2,
                                  "role": "Follower", "is_voter": true},
                    "consensus_thread_status": {"consensus_thread_status": "working",
                                                "last_update": "2026-01-01T00:00:00Z"},
                    "message_send_failures": {}
                }))
            }),
        )
        .route(
            "/collections",
            get(|| async { ok(json!({"collections": [{"name": "a b"}, {"name": "c"}]})) }),
        )
        .route(
            "/collections/{name}/cluster",
            get(|Path(name): Path<String>, State(seen): State<Seen>| async move {
                seen.push(format!("GET /collections/{name}/cluster"));
                ok(json!({
                    "peer_id": 1, "shard_count": 2,
                    "local_shards": [{"shard_id": 0, "points_count": 10, "state": "Active"}],
                    "remote_shards": [{"shard_id": 1, "peer_id": 2, "state": "Partial"}],
                    "shard_transfers": [{"shard_id": 1, "from": 1, "to": 2, "sync": false,
                                         "method": "stream_records"}]
                }))
            })
            .post(
                |Path(name): Path<String>,
                 RawQuery(query): RawQuery,
                 State(seen): State<Seen>,
                 Json(body): Json<Value>| async move {
                    seen.push(format!(
                        "POST /collections/{name}/cluster?{} {body}",
                        query.unwrap_or_default()
                    ));
                    if body.get("drop_replica").is_some() {
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"status": {"error": "Bad request: cannot drop the last replica"},
                                        "time": 0.0})),
                        );
                    }
                    (StatusCode::OK, ok(json!(true)))
                },
            ),
        )
        .route(
            "/cluster/peer/{id}",
            delete(
                |Path(id): Path<u64>, RawQuery(query): RawQuery, State(seen): State<Seen>| async move {
                    seen.push(format!("DELETE /cluster/peer/{id}?{}", query.unwrap_or_default()));
                    ok(json!(true))
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn reads_cluster_and_collection_state() {
    let (node, seen) = start().await;
    let api = HttpClusterApi::new(&Connection {
        api_key: Some("k3y".to_string()),
        ca_pem: None,
    })
    .expect("client");
    let info = api.cluster_info(&node).await.expect("cluster");
    assert_eq!(info.leader(), Some(2));
    assert_eq!(info.peer_ids().len(), 2);
    assert_eq!(api.list_collections(&node).await.expect("collections"), ["a b", "c"]);
    let c = api.collection_cluster(&node, "a b").await.expect("collection");
    assert_eq!(c.local_shards[0].state, ReplicaState::Active);
    assert_eq!(c.remote_shards[0].state, ReplicaState::Partial);
    assert_eq!(c.shard_transfers.len(), 1);
    let seen = seen.all();
    assert_eq!(seen[0], "GET /cluster api-key=k3y");
    assert_eq!(seen[1], "GET /collections/a b/cluster");
}

#[tokio::test]
async fn sends_shard_operations_and_peer_removal_without_force() {
    let (node, seen) = start().await;
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    api.update_collection_cluster(
        &node,
        "c",
        &ShardOperation::MoveShard(ShardTransferRequest {
            shard_id: 3,
            from_peer_id: 1,
            to_peer_id: 2,
        }),
    )
    .await
    .expect("move");
    api.remove_peer(&node, 7).await.expect("remove");
    let seen = seen.all();
    let (line, body) = seen[0].split_once(' ').expect("line");
    assert_eq!(line, "POST");
    let (target, body) = body.split_once(' ').expect("body");
    assert_eq!(target, "/collections/c/cluster?timeout=30");
    assert_eq!(
        serde_json::from_str::<Value>(body).expect("json"),
        json!({"move_shard": {"shard_id": 3, "from_peer_id": 1, "to_peer_id": 2}})
    );
    assert_eq!(seen[1], "DELETE /cluster/peer/7?force=false&timeout=30");
}

#[tokio::test]
async fn reports_qdrant_errors_with_their_message() {
    let (node, _) = start().await;
    let api = HttpClusterApi::new(&Connection::default()).expect("client");
    let err = api
        .update_collection_cluster(
            &node,
            "c",
            &ShardOperation::DropReplica(DropReplicaRequest {
                shard_id: 0,
                peer_id: 1,
            }),
        )
        .await
        .expect_err("refused");
    match err {
        ClusterApiError::Status { status, message, .. } => {
            assert_eq!(status, 400);
            assert_eq!(message, "Bad request: cannot drop the last replica");
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = api
        .collection_cluster(&format!("{node}/elsewhere"), "x")
        .await
        .expect_err("404 from the router");
    assert!(matches!(err, ClusterApiError::Status { status: 404, .. }), "{err}");
    let bad_ca = HttpClusterApi::new(&Connection {
        api_key: None,
        ca_pem: Some(b"not a certificate".to_vec()),
    });
    assert!(matches!(bad_ca, Err(ClusterApiError::Config(_))));
}
