//! End-to-end tests of the single-node REST API against the real binary.

mod common;

use common::{run_binary, vectors, Server};
use serde_json::{json, Value};

fn create(server: &Server, name: &str, body: Value) {
    assert_eq!(
        server.ok("PUT", &format!("/collections/{name}"), Some(body)),
        json!(true)
    );
}

fn upsert(server: &Server, name: &str, from: usize, vecs: &[Vec<f32>]) {
    let points: Vec<Value> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"id": from + i, "vector": v, "payload": {"n": from + i, "even": (from + i) % 2 == 0}}))
        .collect();
    let r = server.ok(
        "PUT",
        &format!("/collections/{name}/points?wait=true"),
        Some(json!({"points": points})),
    );
    assert_eq!(r["status"], "completed");
}

#[test]
fn collection_lifecycle_and_errors() {
    let s = Server::start();
    create(&s, "c", json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let (status, body) = s.call(
        "PUT",
        "/collections/c",
        Some(json!({"vectors": {"size": 4, "distance": "Dot"}})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body["status"]["error"].as_str().unwrap().contains("already exists"));
    let (status, body) = s.call("GET", "/collections/missing", None);
    assert_eq!(status, 404);
    assert_eq!(
        body["status"]["error"],
        "Not found: Collection `missing` doesn't exist!"
    );
    let (status, _) = s.call(
        "PUT",
        "/collections/z",
        Some(json!({"vectors": {"size": 0, "distance": "Dot"}})),
    );
    assert_eq!(status, 422);
    let (status, body) = s.call_raw("PUT", "/collections/z", "{not json", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body["status"]["error"]
        .as_str()
        .unwrap()
        .starts_with("Format error in JSON body"));
    // Trailing slashes are normalised away, as in Qdrant.
    assert_eq!(s.ok("GET", "/collections/c/exists/", None), json!({"exists": true}));
    assert_eq!(s.ok("DELETE", "/collections/c", None), json!(true));
    assert_eq!(s.ok("DELETE", "/collections/c", None), json!(false));
    assert_eq!(s.ok("GET", "/collections", None), json!({"collections": []}));
}

#[test]
fn writes_are_visible_at_once_and_search_matches_brute_force() {
    let s = Server::start();
    create(
        &s,
        "v",
        json!({"vectors": {"size": 16, "distance": "Euclid"}, "shard_number": 3}),
    );
    let data = vectors(3000, 16, 1);
    for (i, chunk) in data.chunks(500).enumerate() {
        upsert(&s, "v", i * 500, chunk);
    }
    assert_eq!(
        s.ok("POST", "/collections/v/points/count", Some(json!({})))["count"],
        3000
    );
    let q = &vectors(1, 16, 99)[0];
    let mut exact: Vec<(usize, f32)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt()))
        .collect();
    exact.sort_by(|a, b| a.1.total_cmp(&b.1));
    let hits = s.ok(
        "POST",
        "/collections/v/points/query",
        Some(json!({"query": q, "limit": 10, "params": {"exact": true}})),
    );
    let ids: Vec<u64> = hits["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = exact.iter().take(10).map(|e| e.0 as u64).collect();
    assert_eq!(ids, want);
    // The same through the HNSW path once indexed (and immediately, via the exact fallback).
    let hits = s.ok(
        "POST",
        "/collections/v/points/search",
        Some(json!({"vector": q, "limit": 10})),
    );
    let approx: Vec<u64> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    let overlap = approx.iter().filter(|i| want.contains(i)).count();
    assert!(overlap >= 8, "recall too low: {approx:?} vs {want:?}");
    // Filtered by payload.
    let hits = s.ok(
        "POST",
        "/collections/v/points/query",
        Some(
            json!({"query": q, "limit": 5, "filter": {"must": [{"key": "even", "match": {"value": true}}]},
                    "with_payload": true}),
        ),
    );
    for h in hits["points"].as_array().unwrap() {
        assert_eq!(h["payload"]["even"], true);
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write_and_restart_reloads_the_index() {
    let mut s = Server::start();
    create(&s, "d", json!({"vectors": {"size": 8, "distance": "Cosine"}}));
    s.ok(
        "PUT",
        "/collections/d/index?wait=true",
        Some(json!({"field_name": "n", "field_schema": "integer"})),
    );
    let data = vectors(2000, 8, 5);
    upsert(&s, "d", 0, &data[..1000]);
    // Let the indexer finish and save, then write more that only the RocksDB WAL holds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.ok("GET", "/collections/d", None)["status"] != "green" {
        assert!(std::time::Instant::now() < deadline, "indexing did not finish");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(6));
    upsert(&s, "d", 1000, &data[1000..]);
    s.ok(
        "POST",
        "/collections/d/points/delete?wait=true",
        Some(json!({"points": [0, 1, 2]})),
    );
    s.ok(
        "POST",
        "/collections/d/points/payload?wait=true",
        Some(json!({"payload": {"tag": "x"}, "points": [10, 1500]})),
    );
    s.crash_and_restart();
    let info = s.ok("GET", "/collections/d", None);
    assert_eq!(info["points_count"], 1997);
    assert_eq!(info["payload_schema"]["n"]["data_type"], "integer");
    assert!(s.log().contains("storage loaded"));
    let p = s.ok("GET", "/collections/d/points/1500", None);
    assert_eq!(p["payload"]["tag"], "x");
    assert_eq!(p["payload"]["n"], 1500);
    let (status, _) = s.call("GET", "/collections/d/points/1", None);
    assert_eq!(status, 404);
    // Search still finds exact neighbours after the restart.
    let hits = s.ok(
        "POST",
        "/collections/d/points/query",
        Some(json!({"query": 1200, "limit": 1})),
    );
    assert_eq!(hits["points"].as_array().unwrap().len(), 1);
    let count = s.ok(
        "POST",
        "/collections/d/points/count",
        Some(json!({"filter": {"must": [{"key": "n", "range": {"gte": 1000}}]}})),
    );
    assert_eq!(count["count"], 1000);
    // A graceful restart too.
    s.stop_and_restart();
    assert_eq!(s.ok("GET", "/collections/d", None)["points_count"], 1997);
}

/// `wait=false` writes are acknowledged once they are in the shard's write-ahead log (RocksDB's,
/// written before the answer): a `kill -9` while writers are busy loses none of them.
#[test]
fn kill_9_loses_no_write_acknowledged_without_waiting() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let mut s = Server::start();
    create(&s, "nw", json!({"vectors": {"size": 4, "distance": "Dot"}}));
    // Per id, every tag written in order, with whether it was acknowledged.
    type History = BTreeMap<u64, Vec<(String, bool)>>;
    let history: Arc<Mutex<History>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (url, history, stop) = (s.url.clone(), history.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let id = w * 1_000_000 + i;
                    // An upsert of a new point, and now and then a payload change of an older one.
                    let (target, tag, path, body) = if i % 4 == 3 {
                        let target = id - 2;
                        let tag = format!("set-{w}-{i}");
                        let body = json!({"payload": {"tag": tag}, "points": [target]});
                        (target, tag, "/collections/nw/points/payload?wait=false", body)
                    } else {
                        let tag = format!("up-{w}-{i}");
                        let body = json!({"points": [{"id": id, "vector": [1.0, 2.0, 3.0, i as f32],
                                                       "payload": {"tag": tag}}]});
                        (id, tag, "/collections/nw/points?wait=false", body)
                    };
                    let method = if i % 4 == 3 { "POST" } else { "PUT" };
                    history.lock().unwrap().entry(target).or_default().push((tag, false));
                    let status = common::try_request(method, &format!("{url}{path}"), Some(body.to_string()), &[])
                        .map_or(0, |(status, _)| status);
                    if status != 200 {
                        return; // the server is gone
                    }
                    let mut h = history.lock().unwrap();
                    let writes = h.get_mut(&target).unwrap();
                    writes.last_mut().unwrap().1 = true;
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.crash_and_restart();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let history = history.lock().unwrap();
    let acked: usize = history.values().flatten().filter(|(_, ok)| *ok).count();
    assert!(acked > 100, "the writers got too little done to tell: {acked}");
    let points = s.ok(
        "POST",
        "/collections/nw/points/scroll",
        Some(json!({"limit": 1_000_000, "with_payload": true})),
    );
    let found: BTreeMap<u64, String> = points["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["payload"]["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (id, writes) in history.iter() {
        let Some(last_acked) = writes.iter().rposition(|(_, ok)| *ok) else {
            continue;
        };
        // The last acknowledged write, or one after it that was in flight at the crash.
        let allowed: Vec<&String> = writes[last_acked..].iter().map(|(t, _)| t).collect();
        match found.get(id) {
            Some(tag) => assert!(
                allowed.contains(&tag),
                "point {id}: {tag} after acknowledged {allowed:?}"
            ),
            None => panic!("point {id} lost; acknowledged writes: {writes:?}"),
        }
    }
}

#[test]
fn api_key_guards_everything_but_probes() {
    let s = Server::start_with(&[("QDRANT__SERVICE__API_KEY", "secret")]);
    let (status, _) = s.call("GET", "/collections", None);
    assert_eq!(status, 401);
    let (status, _) = s.call_raw("GET", "/collections", "", &[("api-key", "wrong")]);
    assert_eq!(status, 401);
    let (status, _) = s.call_raw("GET", "/collections", "", &[("api-key", "secret")]);
    assert_eq!(status, 200);
    let (status, _) = s.call_raw("GET", "/collections", "", &[("authorization", "Bearer secret")]);
    assert_eq!(status, 200);
    for probe in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(s.call("GET", probe, None).0, 200);
    }
}

#[test]
fn oversized_bodies_are_rejected_with_json() {
    let s = Server::start_with(&[("QDRANT__SERVICE__MAX_REQUEST_SIZE_MB", "1")]);
    create(&s, "b", json!({"vectors": {"size": 4, "distance": "Dot"}}));
    let big = format!(
        "{{\"points\": [{{\"id\": 1, \"vector\": [1,2,3,4], \"payload\": {{\"x\": \"{}\"}}}}]}}",
        "a".repeat(2 << 20)
    );
    let (status, body) = s.call_raw("PUT", "/collections/b/points", &big, &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body["status"]["error"]
        .as_str()
        .unwrap()
        .contains("larger than allowed"));
}

#[test]
fn metrics_and_service_endpoints() {
    let s = Server::start();
    create(&s, "m", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    upsert(&s, "m", 0, &vectors(3, 2, 1));
    let (status, text) = s.call("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("collections_total 1"), "{text}");
    assert!(text.contains("collection_points{id=\"m\"} 3"), "{text}");
    assert!(
        text.contains(
            "rest_responses_total{method=\"PUT\",endpoint=\"/collections/{collection_name}/points\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("rest_responses_duration_seconds_bucket"));
    let root = s.call("GET", "/", None).1;
    assert_eq!(root["title"], "qdrant - vector search engine");
    assert_eq!(s.ok("GET", "/cluster", None), json!({"status": "disabled"}));
    let t = s.ok("GET", "/telemetry", None);
    assert_eq!(t["app"]["name"], "qdrant");
    assert_eq!(t["collections"]["number_of_collections"], 1);
}

#[test]
fn telemetry_levels_and_metrics_families() {
    let s = Server::start();
    create(&s, "t", json!({"vectors": {"a": {"size": 2, "distance": "Dot"}}}));
    upsert_named(&s, "t", "a", 5);
    let level = |n: usize| s.ok("GET", &format!("/telemetry?details_level={n}"), None);
    let l0 = level(0);
    assert_eq!(l0["collections"], json!({"number_of_collections": 1}));
    assert!(l0.get("memory").is_none() && l0["app"].get("features").is_none());
    let upserts = &l0["requests"]["rest"]["responses"]["PUT /collections/{collection_name}/points"]["200"];
    assert!(
        upserts["count"].as_u64() >= Some(1) && upserts.get("min_duration_micros").is_none(),
        "{upserts}"
    );
    let l1 = level(1);
    assert_eq!(l1["collections"]["collections"][0]["vectors"], 5);
    assert!(l1["memory"]["resident_bytes"].as_u64() > Some(0));
    assert!(
        l1["requests"]["rest"]["responses"]["PUT /collections/{collection_name}/points"]["200"]["max_duration_micros"]
            .is_number()
    );
    let l2 = level(2);
    assert_eq!(l2["collections"]["collections"][0]["id"], "t");
    assert!(l2["collections"]["collections"][0].get("shards").is_none());
    let l3 = level(3);
    let shard = &l3["collections"]["collections"][0]["shards"][0];
    assert_eq!(shard["local"]["num_points"], 5);
    assert_eq!(shard["local"]["num_vectors_by_name"], json!({"a": 5}));
    assert_eq!(shard["replicate_states"], json!({"0": "Active"}));

    let (_, text) = s.call("GET", "/metrics", None);
    let text = text.as_str().unwrap().to_string();
    for line in [
        "# TYPE cluster_enabled gauge",
        "collection_points{id=\"t\"} 5",
        "collection_vectors{collection=\"t\",vector=\"a\"} 5",
        "collections_vector_total 5",
        "# TYPE rest_responses_avg_duration_seconds gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE memory_allocated_bytes gauge",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    let (_, anonymized) = s.call("GET", "/metrics?anonymize=true", None);
    assert!(!anonymized.as_str().unwrap().contains("id=\"t\""));
}

#[test]
fn unindexed_fields_of_slow_queries_are_issues() {
    let s = Server::start_with(&[("QDRANT__SERVICE__SLOW_QUERY_SECS", "0.000001")]);
    create(&s, "i", json!({"vectors": {"size": 2, "distance": "Dot"}}));
    assert_eq!(s.ok("GET", "/issues", None), json!({"issues": []}));
    let filter = json!({"must": [{"key": "city", "match": {"value": "x"}}]});
    s.ok(
        "POST",
        "/collections/i/points/query",
        Some(json!({"query": [1.0, 0.0], "filter": filter})),
    );
    let issues = s.ok("GET", "/issues", None)["issues"].clone();
    assert_eq!(issues[0]["id"], "UNINDEXED_FIELD/i/city", "{issues}");
    assert_eq!(
        issues[0]["solution"]["immediate"]["action"]["body"],
        json!({"field_name": "city", "field_schema": "keyword"})
    );
    s.ok(
        "PUT",
        "/collections/i/index?wait=true",
        Some(json!({"field_name": "city", "field_schema": "keyword"})),
    );
    assert_eq!(s.ok("GET", "/issues", None), json!({"issues": []}));
    s.ok(
        "POST",
        "/collections/i/points/search",
        Some(json!({"vector": [1.0, 0.0], "limit": 1, "filter":
        {"must": [{"key": "n", "range": {"gt": 1}}]}})),
    );
    assert_eq!(s.ok("GET", "/issues", None)["issues"].as_array().unwrap().len(), 1);
    assert_eq!(s.ok("DELETE", "/issues", None), json!(true));
    assert_eq!(s.ok("GET", "/issues", None), json!({"issues": []}));
}

fn upsert_named(server: &Server, name: &str, vector: &str, n: usize) {
    let points: Vec<Value> = (0..n)
        .map(|i| json!({"id": i, "vector": {vector: [1.0, i as f32]}}))
        .collect();
    server.ok(
        "PUT",
        &format!("/collections/{name}/points?wait=true"),
        Some(json!({"points": points})),
    );
}

#[test]
fn bad_configuration_fails_start_up_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(dir.path(), &[], &[("QDRANT__SERVICE__HTTP_PORT", "not-a-port")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("service.http_port"), "{err}");
    let out = run_binary(dir.path(), &["--uri", "not a uri"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid URI"));
    let out = run_binary(dir.path(), &["--bootstrap", "ftp://x:1"], &[]);
    assert!(!out.status.success());
    std::fs::write(dir.path().join("bad.yaml"), "service: [").unwrap();
    let out = run_binary(dir.path(), &["--config-path", "bad.yaml"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid YAML"));
}
