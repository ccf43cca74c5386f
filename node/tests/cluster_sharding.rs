//! Collections through Raft and sharded point routing with real processes: a collection created on
//! one peer exists on every peer at once with its shards spread over the cluster; points written
//! through one peer are counted, scrolled, retrieved and searched identically through every peer;
//! payload indexes, updates and deletion reach every peer; without a quorum, creation fails cleanly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{eventually, start_cluster, Peer};
use common::vectors;
use serde_json::{json, Value};

const DIM: usize = 8;
const POINTS: usize = 10_000;
const SHARDS: u64 = 6;

fn normalized(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    v.iter().map(|x| f64::from(*x) / n).collect()
}

/// Brute-force cosine ranking of `data` (already normalized) against `q`: `(id, score)`, best first.
fn ranking(data: &[Vec<f64>], q: &[f32], n: usize) -> Vec<(u64, f64)> {
    let q = normalized(q);
    let mut all: Vec<(u64, f64)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v.iter().zip(&q).map(|(a, b)| a * b).sum::<f64>()))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(n);
    all
}

fn ids(records: &Value) -> Vec<u64> {
    records
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {records}"))
        .iter()
        .map(|r| r["id"].as_u64().unwrap_or_else(|| panic!("no integer id in {r}")))
        .collect()
}

fn assert_hits(what: &str, hits: &Value, want: &[(u64, f64)]) {
    let got = ids(hits);
    let want_ids: Vec<u64> = want.iter().map(|w| w.0).collect();
    assert_eq!(got, want_ids, "{what}: {hits}");
    for (h, (_, score)) in hits.as_array().unwrap().iter().zip(want) {
        let s = h["score"].as_f64().unwrap_or_else(|| panic!("{what}: no score in {h}"));
        assert!((s - score).abs() < 1e-4, "{what}: score {s} vs {score} in {h}");
    }
}

fn error_of(body: &Value) -> String {
    body["status"]["error"].as_str().unwrap_or_default().to_string()
}

fn count(p: &Peer, name: &str, filter: Option<Value>) -> u64 {
    let mut body = json!({"exact": true});
    if let Some(f) = filter {
        body["filter"] = f;
    }
    let r = p.ok("POST", &format!("/collections/{name}/points/count"), Some(body));
    r["count"].as_u64().unwrap_or_else(|| panic!("count: {r}"))
}

fn upsert(p: &Peer, name: &str, from: usize, vecs: &[Vec<f32>]) {
    let points: Vec<Value> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"id": from + i, "vector": v, "payload": {"n": from + i, "even": (from + i) % 2 == 0}}))
        .collect();
    let r = p.ok(
        "PUT",
        &format!("/collections/{name}/points?wait=true"),
        Some(json!({"points": points})),
    );
    assert_eq!(r["status"], "completed", "{r}");
}

fn get_status(p: &Peer, path: &str) -> (u16, Value) {
    p.call("GET", path, None)
}

/// Checks `/collections/{name}/cluster` on every peer for `shards` shards spread evenly with one
/// replica each. Returns shard id -> owning peer id.
fn check_placement(peers: &[Peer], peer_ids: &[u64], name: &str, shards: u64) -> BTreeMap<u64, u64> {
    // The creating peer answered once every replica was Active; the others apply the entries
    // that say so a moment later.
    for p in peers {
        eventually(
            Duration::from_secs(5),
            &format!("all replicas Active on {}", p.uri),
            || {
                let info = p.ok("GET", &format!("/collections/{name}/cluster"), None);
                let all = info["local_shards"]
                    .as_array()
                    .into_iter()
                    .chain(info["remote_shards"].as_array())
                    .flatten()
                    .all(|s| s["state"] == "Active");
                all.then_some(()).ok_or(info.to_string())
            },
        );
    }
    let per_peer = shards as usize / peers.len();
    let all_ids: BTreeSet<u64> = (0..shards).collect();
    let mut owners = BTreeMap::new();
    let mut infos = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let info = p.ok("GET", &format!("/collections/{name}/cluster"), None);
        assert_eq!(info["peer_id"].as_u64(), Some(peer_ids[i]), "{info}");
        assert_eq!(info["shard_count"].as_u64(), Some(shards), "{info}");
        assert_eq!(info["shard_transfers"], json!([]), "{info}");
        let local = info["local_shards"].as_array().unwrap_or_else(|| panic!("{info}"));
        assert_eq!(local.len(), per_peer, "local shards of peer {}: {info}", peer_ids[i]);
        let mut seen = BTreeSet::new();
        for s in local {
            assert_eq!(s["state"], "Active", "{info}");
            let sid = s["shard_id"].as_u64().unwrap_or_else(|| panic!("{info}"));
            assert!(seen.insert(sid), "{info}");
            let before = owners.insert(sid, peer_ids[i]);
            assert!(before.is_none(), "shard {sid} local on {before:?} and {}", peer_ids[i]);
        }
        let remote = info["remote_shards"].as_array().unwrap_or_else(|| panic!("{info}"));
        assert_eq!(remote.len(), shards as usize - per_peer, "{info}");
        let mut remote_peers = BTreeSet::new();
        for s in remote {
            assert_eq!(s["state"], "Active", "{info}");
            let sid = s["shard_id"].as_u64().unwrap_or_else(|| panic!("{info}"));
            assert!(seen.insert(sid), "shard {sid} listed twice: {info}");
            let pid = s["peer_id"].as_u64().unwrap_or_else(|| panic!("{info}"));
            assert_ne!(pid, peer_ids[i], "{info}");
            remote_peers.insert(pid);
        }
        let others: BTreeSet<u64> = peer_ids.iter().copied().filter(|id| *id != peer_ids[i]).collect();
        assert_eq!(remote_peers, others, "{info}");
        assert_eq!(seen, all_ids, "{info}");
        infos.push(info);
    }
    assert_eq!(owners.keys().copied().collect::<BTreeSet<_>>(), all_ids, "{infos:#?}");
    // Every peer agrees on who holds each remote shard.
    for info in &infos {
        for s in info["remote_shards"].as_array().unwrap() {
            let sid = s["shard_id"].as_u64().unwrap();
            assert_eq!(s["peer_id"].as_u64(), owners.get(&sid).copied(), "{infos:#?}");
        }
    }
    owners
}

/// Every read path through `p` sees exactly the `POINTS` points written.
fn check_reads(p: &Peer, data: &[Vec<f64>], queries: &[Vec<f32>]) {
    let who = &p.uri;
    assert_eq!(count(p, "c", None), POINTS as u64, "count via {who}");
    let even = json!({"must": [{"key": "even", "match": {"value": true}}]});
    assert_eq!(count(p, "c", Some(even)), POINTS as u64 / 2, "filtered count via {who}");
    let info = p.ok("GET", "/collections/c", None);
    assert_eq!(info["points_count"].as_u64(), Some(POINTS as u64), "via {who}: {info}");

    // Scroll in pages of 1000 following next_page_offset.
    let mut seen = Vec::with_capacity(POINTS);
    let mut offset = Value::Null;
    for page in 0.. {
        assert!(page <= POINTS / 1000, "scroll via {who} does not end");
        let mut body = json!({"limit": 1000, "with_payload": false, "with_vector": false});
        if !offset.is_null() {
            body["offset"] = offset.clone();
        }
        let r = p.ok("POST", "/collections/c/points/scroll", Some(body));
        seen.extend(ids(&r["points"]));
        offset = r["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    let want: Vec<u64> = (0..POINTS as u64).collect();
    assert!(
        seen == want,
        "scroll via {who}: {} ids, first {:?}",
        seen.len(),
        &seen[..seen.len().min(20)]
    );

    // Retrieve by ids (one missing) and a single point.
    let r = p.ok(
        "POST",
        "/collections/c/points",
        Some(json!({"ids": [0, 1, 9999, 123456], "with_payload": true})),
    );
    let mut got = ids(&r);
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 9999], "retrieve via {who}: {r}");
    for rec in r.as_array().unwrap() {
        assert_eq!(rec["payload"]["n"], rec["id"], "{rec}");
    }
    let (status, body) = get_status(p, "/collections/c/points/9999");
    assert_eq!(status, 200, "via {who}: {body}");
    assert_eq!(body["result"]["id"], 9999, "{body}");
    assert_eq!(body["result"]["payload"], json!({"n": 9999, "even": false}), "{body}");
    let (status, body) = get_status(p, "/collections/c/points/123456");
    assert_eq!(status, 404, "via {who}: {body}");

    // Exact search and query (with an offset) match the brute-force ranking.
    for (qi, q) in queries.iter().enumerate() {
        let want = ranking(data, q, 15);
        let hits = p.ok(
            "POST",
            "/collections/c/points/search",
            Some(json!({"vector": q, "limit": 10, "params": {"exact": true}})),
        );
        assert_hits(&format!("search {qi} via {who}"), &hits, &want[..10]);
        let r = p.ok(
            "POST",
            "/collections/c/points/query",
            Some(json!({"query": q, "limit": 10, "offset": 5, "params": {"exact": true}})),
        );
        assert_hits(&format!("query {qi} via {who}"), &r["points"], &want[5..15]);
    }
}

#[test]
fn sharded_collection_through_every_peer() {
    let started = Instant::now();
    let peers = start_cluster(3, &[]);
    let peer_ids: Vec<u64> = peers.iter().map(|p| p.peer_id().unwrap()).collect();
    let (a, b, c) = (&peers[0], &peers[1], &peers[2]);
    let create = json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": SHARDS});

    // Created through A: every peer knows it at once, shards spread two per peer.
    assert_eq!(
        a.ok("PUT", "/collections/c?timeout=10", Some(create.clone())),
        json!(true)
    );
    for p in &peers {
        let info = p.ok("GET", "/collections/c", None);
        assert_eq!(
            info["config"]["params"]["shard_number"].as_u64(),
            Some(SHARDS),
            "{info}"
        );
    }
    let owners = check_placement(&peers, &peer_ids, "c", SHARDS);
    println!("shard owners: {owners:?}");

    // 10 000 points through A.
    let raw = vectors(POINTS, DIM, 7);
    let data: Vec<Vec<f64>> = raw.iter().map(|v| normalized(v)).collect();
    let queries = vectors(5, DIM, 1234);
    // The data is chosen so that the top ranks are well separated (no near-ties).
    for q in &queries {
        let r = ranking(&data, q, 16);
        assert!(r.windows(2).all(|w| w[0].1 - w[1].1 > 1e-5), "near-tie in {r:?}");
    }
    let write = Instant::now();
    for (i, chunk) in raw.chunks(500).enumerate() {
        upsert(a, "c", i * 500, chunk);
    }
    println!("{POINTS} points upserted through one peer in {:?}", write.elapsed());

    for p in &peers {
        check_reads(p, &data, &queries);
    }
    let mut total = 0;
    for p in &peers {
        let info = p.ok("GET", "/collections/c/cluster", None);
        for s in info["local_shards"].as_array().unwrap() {
            let n = s["points_count"].as_u64().unwrap_or_else(|| panic!("{info}"));
            assert!(n > 0, "empty shard: {info}");
            total += n;
        }
    }
    assert_eq!(total, POINTS as u64);

    // Deleting through B is visible through C.
    let r = b.ok(
        "POST",
        "/collections/c/points/delete?wait=true",
        Some(json!({"points": [0, 1, 2]})),
    );
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(count(c, "c", None), POINTS as u64 - 3);
    assert_eq!(get_status(a, "/collections/c/points/1").0, 404);

    // A payload index created through C: C shows it at once, the others shortly.
    c.ok(
        "PUT",
        "/collections/c/index?wait=true",
        Some(json!({"field_name": "n", "field_schema": "integer"})),
    );
    let schema = c.ok("GET", "/collections/c", None)["payload_schema"].clone();
    assert_eq!(schema["n"]["data_type"], "integer", "{schema}");
    for p in [a, b] {
        eventually(Duration::from_secs(5), &format!("index on {}", p.uri), || {
            let schema = p.ok("GET", "/collections/c", None)["payload_schema"].clone();
            (schema["n"]["data_type"] == "integer")
                .then_some(())
                .ok_or(schema.to_string())
        });
    }
    let range = json!({"must": [{"key": "n", "range": {"gte": 100, "lt": 200}}]});
    assert_eq!(count(a, "c", Some(range)), 100);

    // Updating parameters through B (20 000: the default is 10 000, so the change is visible).
    let threshold =
        |p: &Peer| p.ok("GET", "/collections/c", None)["config"]["optimizer_config"]["indexing_threshold"].clone();
    assert_eq!(
        b.ok(
            "PATCH",
            "/collections/c?timeout=10",
            Some(json!({"optimizers_config": {"indexing_threshold": 20000}})),
        ),
        json!(true)
    );
    assert_eq!(threshold(b), 20000);
    for p in [a, c] {
        eventually(Duration::from_secs(5), &format!("update on {}", p.uri), || {
            let t = threshold(p);
            (t == 20000).then_some(()).ok_or(t.to_string())
        });
    }

    // A second collection without shard_number: one shard per peer.
    let plain = json!({"vectors": {"size": DIM, "distance": "Cosine"}});
    assert_eq!(
        a.ok("PUT", "/collections/c2?timeout=10", Some(plain.clone())),
        json!(true)
    );
    for p in &peers {
        let info = p.ok("GET", "/collections/c2", None);
        assert_eq!(info["config"]["params"]["shard_number"].as_u64(), Some(3), "{info}");
    }
    check_placement(&peers, &peer_ids, "c2", 3);

    // Duplicates (through another peer) and shard_number 0 are refused with Qdrant's error JSON.
    let (status, body) = c.call("PUT", "/collections/c2?timeout=10", Some(plain));
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("already exists"), "{body}");
    let (status, body) = b.call(
        "PUT",
        "/collections/zero?timeout=10",
        Some(json!({"vectors": {"size": DIM, "distance": "Cosine"}, "shard_number": 0})),
    );
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(!error_of(&body).is_empty(), "{body}");
    for p in &peers {
        let (status, body) = get_status(p, "/collections/zero");
        assert_eq!(status, 404, "{body}");
    }

    // Deleting through B: gone on B at once, on the others shortly; then it can be created again.
    assert_eq!(b.ok("DELETE", "/collections/c?timeout=10", None), json!(true));
    let (status, body) = get_status(b, "/collections/c");
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_of(&body), "Not found: Collection `c` doesn't exist!");
    for p in [a, c] {
        eventually(Duration::from_secs(5), &format!("deletion on {}", p.uri), || {
            let (status, body) = get_status(p, "/collections/c");
            (status == 404).then_some(()).ok_or(format!("{status} {body}"))
        });
    }
    assert_eq!(c.ok("PUT", "/collections/c?timeout=10", Some(create)), json!(true));
    for p in &peers {
        let info = p.ok("GET", "/collections/c", None);
        assert_eq!(info["points_count"].as_u64(), Some(0), "{info}");
        assert_eq!(count(p, "c", None), 0);
    }
    check_placement(&peers, &peer_ids, "c", SHARDS);
    println!("sharded_collection_through_every_peer took {:?}", started.elapsed());
}

#[test]
fn create_fails_without_quorum() {
    let mut peers = start_cluster(3, &[]);
    let leader = peers[0].cluster().unwrap()["raft_info"]["leader"].as_u64().unwrap();
    assert_eq!(
        peers[0].ok(
            "PUT",
            "/collections/keep?timeout=10",
            Some(json!({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3})),
        ),
        json!(true)
    );
    let points: Vec<Value> = vectors(30, 4, 3)
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"id": i, "vector": v}))
        .collect();
    let r = peers[0].ok(
        "PUT",
        "/collections/keep/points?wait=true",
        Some(json!({"points": points})),
    );
    assert_eq!(r["status"], "completed", "{r}");

    // The survivor is a follower; the leader and the other follower die.
    let survivor = peers.iter().position(|p| p.peer_id() != Some(leader)).unwrap();
    let local_before = peers[survivor].ok("GET", "/collections/keep/cluster", None);
    let local_points: u64 = local_before["local_shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["points_count"].as_u64().unwrap())
        .sum();
    assert!(local_points > 0, "{local_before}");
    for (i, p) in peers.iter_mut().enumerate() {
        if i != survivor {
            p.kill();
        }
    }
    let s = &peers[survivor];

    // Creating a collection cannot commit: an error within the timeout (plus slack), no trace left.
    let asked = Instant::now();
    let answer = s.call_within(
        "PUT",
        "/collections/x?timeout=2",
        Some(json!({"vectors": {"size": 4, "distance": "Dot"}})),
        Duration::from_secs(5),
    );
    let took = asked.elapsed();
    let (status, body) = answer.unwrap_or_else(|e| panic!("no answer after {took:?}: {e}\n{}", s.log()));
    println!("create without quorum: {status} after {took:?}: {body}");
    assert!(status >= 400, "{status} {body}");
    let error = error_of(&body);
    assert!(!error.is_empty(), "{body}");
    let lower = error.to_lowercase();
    if !["consensus", "quorum", "leader", "timeout", "timed out"]
        .iter()
        .any(|w| lower.contains(w))
    {
        println!("note: error does not mention consensus/quorum/leader/timeout: {error}");
    }
    // Without a quorum a peer cannot tell whether its view of the collections is current, so it
    // refuses to answer about them (503) rather than risk a stale answer.
    let (status, body) = get_status(s, "/collections/x");
    assert_eq!(status, 503, "{body}");

    // The survivor still serves what it holds.
    let info = s.ok("GET", "/collections/keep/cluster", None);
    assert_eq!(info["local_shards"], local_before["local_shards"], "{info}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    for id in 0..30u64 {
        if Instant::now() > deadline {
            break;
        }
        if let Ok((200, body)) = s.call_within(
            "GET",
            &format!("/collections/keep/points/{id}"),
            None,
            Duration::from_secs(3),
        ) {
            assert_eq!(body["result"]["id"], id, "{body}");
            found.push(id);
        }
    }
    println!("readable on the survivor without quorum: {found:?} (local points: {local_points})");
    assert!(!found.is_empty(), "no local point readable:\n{}", s.log());
    assert!(found.len() as u64 <= local_points, "{found:?} vs {local_points}");
}
