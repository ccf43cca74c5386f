//! JWT role-based access (`service.jwt_rbac`) against the real binary: a matrix of tokens x
//! endpoint families through REST and gRPC, each with the outcome Qdrant gives (allowed, 401,
//! 403 and the message), `value_exists` revoked by deleting its point, listings filtered to the
//! caller's collections, lookups into other collections refused, and the same rules through a
//! follower of a 2-peer cluster.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cluster::{start_cluster, Peer};
use common::grpc::{connect, expect_code, run};
use common::Server;
use node::api::auth::jwt::encode;
use qdrant_client::qdrant::{
    CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance, FieldType, LookupLocationBuilder,
    PointStruct, QueryPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::Payload;
use serde_json::{json, Value};
use tonic::Code;

const KEY: &str = "jwt-secret";
const LIMIT: Duration = Duration::from_secs(120);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(claims: Value) -> String {
    encode(&claims, KEY.as_bytes())
}

/// What a call needs, as the RBAC matrix classes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Any authenticated caller (the answer is filtered).
    Any,
    Read,
    Write,
    ReadExtras,
    WriteExtras,
    GlobalRead,
    Manage,
    /// Reading a collection the collection-scoped tokens do not list.
    Other,
}

/// A caller: its credential and what it may do.
struct Caller {
    name: &'static str,
    header: Option<String>,
    allows: fn(Kind) -> bool,
    /// The refusal of a call it may not make: (status, message fragment).
    refusal: (u16, &'static str),
}

fn callers() -> Vec<Caller> {
    use Kind::*;
    let collection = |mode: &str| Some(token(json!({"access": [{"collection": "c", "access": mode}]})));
    vec![
        Caller {
            name: "no token",
            header: None,
            allows: |_| false,
            refusal: (401, "Must provide an API key or an Authorization bearer token"),
        },
        Caller {
            name: "wrong signature",
            header: Some(encode(&json!({"access": "m"}), b"not-the-key")),
            allows: |_| false,
            refusal: (403, "InvalidSignature"),
        },
        Caller {
            name: "expired",
            header: Some(token(json!({"access": "m", "exp": now() - 120}))),
            allows: |_| false,
            refusal: (403, "ExpiredSignature"),
        },
        Caller {
            name: "global read",
            header: Some(token(json!({"access": "r", "exp": now() + 3600}))),
            allows: |k| matches!(k, Any | Read | ReadExtras | GlobalRead | Other),
            refusal: (403, "Forbidden: Global manage access is required"),
        },
        Caller {
            name: "global manage",
            header: Some(token(json!({"access": "m"}))),
            allows: |_| true,
            refusal: (0, ""),
        },
        Caller {
            name: "collection read",
            header: collection("r"),
            allows: |k| matches!(k, Any | Read | ReadExtras),
            refusal: (403, "Forbidden: "),
        },
        Caller {
            name: "collection read-write",
            header: collection("rw"),
            allows: |k| matches!(k, Any | Read | Write | ReadExtras | WriteExtras),
            refusal: (403, "Forbidden: "),
        },
        Caller {
            name: "collection points read-write",
            header: collection("prw"),
            allows: |k| matches!(k, Any | Read | Write),
            refusal: (403, "Forbidden: "),
        },
        Caller {
            name: "value_exists (matching)",
            header: Some(token(json!({
                "access": [{"collection": "c", "access": "rw"}],
                "value_exists": {"collection": "users", "matches": [{"key": "user", "value": "alice"}]}
            }))),
            allows: |k| matches!(k, Any | Read | Write | ReadExtras | WriteExtras),
            refusal: (403, "Forbidden: "),
        },
        Caller {
            name: "value_exists (no match)",
            header: Some(token(json!({
                "access": "m",
                "value_exists": {"collection": "users", "matches": [{"key": "user", "value": "mallory"}]}
            }))),
            allows: |_| false,
            refusal: (401, "Invalid JWT, stateful validation failed"),
        },
    ]
}

/// The REST endpoint families: (kind, method, path, body).
fn rest_calls() -> Vec<(Kind, &'static str, &'static str, Value)> {
    use Kind::*;
    let point = json!({"points": [{"id": 7, "vector": [1.0, 0.0], "payload": {"k": "v"}}]});
    vec![
        (Any, "GET", "/collections", Value::Null),
        (Any, "GET", "/aliases", Value::Null),
        (Read, "GET", "/collections/c", Value::Null),
        (Read, "GET", "/collections/c/exists", Value::Null),
        (
            Read,
            "POST",
            "/collections/c/points/query",
            json!({"query": [1.0, 0.0], "limit": 1}),
        ),
        (Read, "POST", "/collections/c/points/scroll", json!({"limit": 1})),
        (Read, "POST", "/collections/c/points/count", json!({})),
        (Write, "PUT", "/collections/c/points?wait=true", point),
        (
            Write,
            "POST",
            "/collections/c/points/payload?wait=true",
            json!({"payload": {"x": 1}, "points": [7]}),
        ),
        (
            WriteExtras,
            "PUT",
            "/collections/c/index?wait=true",
            json!({"field_name": "k", "field_schema": "keyword"}),
        ),
        (ReadExtras, "GET", "/collections/c/snapshots", Value::Null),
        (ReadExtras, "GET", "/collections/c/cluster", Value::Null),
        (GlobalRead, "GET", "/snapshots", Value::Null),
        (GlobalRead, "GET", "/cluster", Value::Null),
        (GlobalRead, "GET", "/metrics", Value::Null),
        (
            Manage,
            "PUT",
            "/collections/made",
            json!({"vectors": {"size": 2, "distance": "Dot"}}),
        ),
        (Manage, "POST", "/collections/aliases", json!({"actions": []})),
        (Manage, "POST", "/snapshots", Value::Null),
        (Other, "GET", "/collections/other", Value::Null),
        (
            Other,
            "POST",
            "/collections/c/points/query",
            json!({"query": {"recommend": {"positive": [1]}}, "lookup_from": {"collection": "other"}, "limit": 1}),
        ),
    ]
}

fn seed(s: &Server) {
    let full = [("api-key", KEY)];
    for (name, payload) in [
        ("c", json!({})),
        ("other", json!({})),
        ("users", json!({"user": "alice"})),
    ] {
        let body = json!({"vectors": {"size": 2, "distance": "Dot"}}).to_string();
        assert_eq!(s.call_raw("PUT", &format!("/collections/{name}"), &body, &full).0, 200);
        let points = json!({"points": [{"id": 1, "vector": [1.0, 0.0], "payload": payload}]}).to_string();
        let path = format!("/collections/{name}/points?wait=true");
        assert_eq!(s.call_raw("PUT", &path, &points, &full).0, 200);
    }
}

fn start() -> Server {
    let s = Server::start_with(&[
        ("QDRANT__SERVICE__API_KEY", KEY),
        ("QDRANT__SERVICE__READ_ONLY_API_KEY", "ro-key"),
        ("QDRANT__SERVICE__JWT_RBAC", "true"),
    ]);
    seed(&s);
    s
}

fn rest_matrix(call: impl Fn(&str, &str, &str, &[(&str, &str)]) -> (u16, Value)) -> usize {
    let mut checked = 0;
    for caller in callers() {
        let auth = caller.header.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        for (kind, method, path, body) in rest_calls() {
            let body = if body.is_null() {
                String::new()
            } else {
                body.to_string()
            };
            let (status, answer) = call(method, path, &body, &headers);
            let what = format!("{} -> {method} {path} ({kind:?}): {status} {answer}", caller.name);
            if (caller.allows)(kind) {
                assert!(status != 401 && status != 403, "allowed, but refused: {what}");
            } else {
                assert_eq!(status, caller.refusal.0, "{what}");
                let text = answer["status"]["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| match &answer {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                assert!(text.contains(caller.refusal.1), "{what}");
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn rest_matrix_of_tokens_and_endpoints() {
    let s = start();
    let checked = rest_matrix(|m, p, b, h| s.call_raw(m, p, b, h));
    assert_eq!(checked, callers().len() * rest_calls().len());

    // Exact refusals, as Qdrant words them.
    let bearer = |claims: Value| format!("Bearer {}", token(claims));
    let read_only = bearer(json!({"access": [{"collection": "c", "access": "r"}]}));
    let (status, body) = s.call_raw(
        "PUT",
        "/collections/c/points",
        &json!({"points": []}).to_string(),
        &[("authorization", &read_only)],
    );
    assert_eq!(
        (status, body["status"]["error"].as_str()),
        (403, Some("Forbidden: Write access to collection c is required"))
    );
    let (_, body) = s.call_raw("GET", "/collections/other", "", &[("authorization", &read_only)]);
    assert_eq!(
        body["status"]["error"],
        "Forbidden: Access to collection other is required"
    );
    let (_, body) = s.call_raw("GET", "/cluster", "", &[("authorization", &read_only)]);
    assert_eq!(body["status"]["error"], "Forbidden: Global access is required");
    let points_only = bearer(json!({"access": [{"collection": "c", "access": "prw"}]}));
    let (_, body) = s.call_raw(
        "GET",
        "/collections/c/snapshots",
        "",
        &[("authorization", &points_only)],
    );
    assert_eq!(
        body["status"]["error"],
        "Forbidden: Only points access is allowed for collection c"
    );
    let duplicate =
        bearer(json!({"access": [{"collection": "c", "access": "r"}, {"collection": "c", "access": "rw"}]}));
    let (status, body) = s.call_raw("GET", "/collections", "", &[("authorization", &duplicate)]);
    assert_eq!(
        (status, body),
        (401, json!("access[1].collection: Collection name should be unique"))
    );

    // Listings show a collection-scoped caller its collections only.
    let (status, body) = s.call_raw("GET", "/collections", "", &[("authorization", &read_only)]);
    assert_eq!(status, 200);
    assert_eq!(body["result"]["collections"], json!([{"name": "c"}]));
    // Plain keys keep working beside tokens; the read-only key is global read.
    assert_eq!(s.call_raw("GET", "/collections", "", &[("api-key", "ro-key")]).0, 200);
    let (status, body) = s.call_raw("DELETE", "/collections/c", "", &[("api-key", "ro-key")]);
    assert_eq!(
        (status, body["status"]["error"].as_str()),
        (403, Some("Forbidden: Global manage access is required"))
    );

    // value_exists is checked on every request: deleting the point revokes the token.
    let alice =
        bearer(json!({"value_exists": {"collection": "users", "matches": [{"key": "user", "value": "alice"}]}}));
    assert_eq!(
        s.call_raw("GET", "/collections/c", "", &[("authorization", &alice)]).0,
        200
    );
    let delete = json!({"points": [1]}).to_string();
    assert_eq!(
        s.call_raw(
            "POST",
            "/collections/users/points/delete?wait=true",
            &delete,
            &[("api-key", KEY)]
        )
        .0,
        200
    );
    let (status, body) = s.call_raw("GET", "/collections/c", "", &[("authorization", &alice)]);
    assert_eq!((status, body), (401, json!("Invalid JWT, stateful validation failed")));
    // Probes need nothing, even with a bad token.
    assert_eq!(
        s.call_raw("GET", "/readyz", "", &[("authorization", "Bearer junk")]).0,
        200
    );
}

#[test]
fn grpc_tokens_have_the_same_rights() {
    let s = start();
    let url = s.grpc_url.clone();
    run(LIMIT, async move {
        let client = |claims: Value| {
            let url = url.clone();
            async move { connect(&url, Some(&token(claims))).await }
        };
        let read = client(json!({"access": [{"collection": "c", "access": "r"}]})).await;
        let rw = client(json!({"access": [{"collection": "c", "access": "rw"}]})).await;
        let prw = client(json!({"access": [{"collection": "c", "access": "prw"}]})).await;
        let global_read = client(json!({"access": "r"})).await;
        let expired = client(json!({"exp": now() - 120})).await;
        let forged = connect(&url, Some(&encode(&json!({"access": "m"}), b"nope"))).await;

        let listed = read.list_collections().await.expect("list");
        let names: Vec<_> = listed.collections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c"]);
        read.collection_info("c").await.expect("info with collection read");
        read.query(QueryPointsBuilder::new("c").query(vec![1.0, 0.0]).limit(1))
            .await
            .expect("query with collection read");
        let upsert =
            || UpsertPointsBuilder::new("c", vec![PointStruct::new(9, vec![0.0, 1.0], Payload::new())]).wait(true);
        let msg = expect_code(
            "upsert with collection read",
            read.upsert_points(upsert()).await,
            Code::PermissionDenied,
        );
        assert_eq!(msg, "Forbidden: Write access to collection c is required");
        rw.upsert_points(upsert()).await.expect("upsert with rw");
        prw.upsert_points(upsert()).await.expect("upsert with prw");
        let index = || CreateFieldIndexCollectionBuilder::new("c", "k", FieldType::Keyword).wait(true);
        rw.create_field_index(index()).await.expect("index with rw");
        let msg = expect_code(
            "index with prw",
            prw.create_field_index(index()).await,
            Code::PermissionDenied,
        );
        assert_eq!(msg, "Forbidden: Only points access is allowed for collection c");
        expect_code(
            "snapshots with prw",
            prw.list_snapshots("c").await,
            Code::PermissionDenied,
        );
        rw.list_snapshots("c").await.expect("snapshots with rw");
        let create = || CreateCollectionBuilder::new("made").vectors_config(VectorParamsBuilder::new(2, Distance::Dot));
        let msg = expect_code(
            "create with rw",
            rw.create_collection(create()).await,
            Code::PermissionDenied,
        );
        assert_eq!(msg, "Forbidden: Global access is required");
        let msg = expect_code(
            "create with global read",
            global_read.create_collection(create()).await,
            Code::PermissionDenied,
        );
        assert_eq!(msg, "Forbidden: Global manage access is required");
        global_read
            .list_full_snapshots()
            .await
            .expect("full snapshots with global read");
        expect_code(
            "full snapshots with rw",
            rw.list_full_snapshots().await,
            Code::PermissionDenied,
        );
        let msg = expect_code(
            "other collection",
            rw.collection_info("other").await,
            Code::PermissionDenied,
        );
        assert_eq!(msg, "Forbidden: Access to collection other is required");
        let lookup = QueryPointsBuilder::new("c")
            .query(
                qdrant_client::qdrant::RecommendInputBuilder::default()
                    .add_positive(qdrant_client::qdrant::PointId::from(1u64))
                    .build(),
            )
            .lookup_from(LookupLocationBuilder::new("other"))
            .limit(1);
        expect_code("lookup into other", rw.query(lookup).await, Code::PermissionDenied);
        let msg = expect_code("expired", expired.list_collections().await, Code::PermissionDenied);
        assert_eq!(msg, "ExpiredSignature");
        let msg = expect_code("forged", forged.list_collections().await, Code::PermissionDenied);
        assert_eq!(msg, "InvalidSignature");
        forged.health_check().await.expect("health needs no credential");
    });
}

#[test]
fn a_follower_applies_the_callers_rights() {
    let env = [("QDRANT__SERVICE__API_KEY", KEY), ("QDRANT__SERVICE__JWT_RBAC", "true")];
    let peers: Vec<Peer> = start_cluster(2, &env);
    let (leader, follower) = (&peers[0], &peers[1]);
    let full = format!("Bearer {KEY}");
    let h = |v: &str| vec![("authorization".to_string(), v.to_string())];
    let create = json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2, "replication_factor": 2});
    for name in ["c", "other"] {
        let (status, body) = follower.call_as(
            "PUT",
            &format!("/collections/{name}?timeout=30"),
            Some(create.clone()),
            &h(&full),
        );
        assert_eq!(status, 200, "{body}");
    }
    let rw = format!(
        "Bearer {}",
        token(json!({"access": [{"collection": "c", "access": "rw"}]}))
    );
    let points: Vec<Value> = (0..20).map(|i| json!({"id": i, "vector": [1.0, i as f64]})).collect();
    let body = json!({ "points": points });
    let (status, answer) = follower.call_as("PUT", "/collections/c/points?wait=true", Some(body.clone()), &h(&rw));
    assert_eq!(status, 200, "{answer}");
    let (status, _) = follower.call_as("PUT", "/collections/other/points?wait=true", Some(body), &h(&rw));
    assert_eq!(status, 403);
    let count = json!({"exact": true});
    let (status, answer) = leader.call_as("POST", "/collections/c/points/count", Some(count.clone()), &h(&rw));
    assert_eq!(
        (status, answer["result"]["count"].as_u64()),
        (200, Some(20)),
        "{answer}"
    );
    let (_, answer) = leader.call_as("POST", "/collections/other/points/count", Some(count), &h(&full));
    assert_eq!(
        answer["result"]["count"], 0,
        "nothing reached the collection the token does not list"
    );
    let (status, _) = follower.call_as("DELETE", "/collections/c?timeout=30", None, &h(&rw));
    assert_eq!(status, 403);
}
