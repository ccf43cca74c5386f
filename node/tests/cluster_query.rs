//! The Query API's prefetch and fusion on a sharded 3-peer cluster: every peer answers hybrid
//! (dense + sparse) RRF and DBSF queries, nested re-scoring and filtered prefetches exactly as the
//! brute-force answer over all points says (formulas, groups, facets, order_by and lookup_from too), whatever shard holds which point (a prefetch's
//! `limit` is a global top-k, not a per-shard one).

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::cluster::{eventually, start_cluster, Peer};
use common::vectors;
use serde_json::{json, Value};

const DIM: usize = 8;
const POINTS: usize = 3_000;
const SHARDS: u64 = 6;

struct Data {
    dense: Vec<Vec<f32>>,
    sparse: Vec<(Vec<u32>, Vec<f32>)>,
}

impl Data {
    fn new() -> Data {
        let dense = vectors(POINTS, DIM, 11);
        let values = vectors(POINTS, 3, 12);
        let sparse = (0..POINTS)
            .map(|i| {
                let indices = vec![(i % 37) as u32, 40 + (i % 41) as u32, 90 + (i % 43) as u32];
                (indices, values[i].iter().map(|v| v + 0.6).collect())
            })
            .collect();
        Data { dense, sparse }
    }

    /// Exact Dot ranking of the points passing `keep`, best first.
    fn dense_top(&self, q: &[f32], limit: usize, keep: &dyn Fn(usize) -> bool) -> Vec<(u64, f64)> {
        let scored = (0..POINTS)
            .filter(|i| keep(*i))
            .map(|i| (i as u64, dot(&self.dense[i], q)))
            .collect();
        top(scored, limit)
    }

    /// Sparse dot ranking (points sharing an index with the query only), best first.
    fn sparse_top(&self, q: &HashMap<u32, f32>, limit: usize, keep: &dyn Fn(usize) -> bool) -> Vec<(u64, f64)> {
        let scored = (0..POINTS)
            .filter(|i| keep(*i))
            .filter_map(|i| {
                let (idx, val) = &self.sparse[i];
                let shared: Vec<f64> = idx
                    .iter()
                    .zip(val)
                    .filter_map(|(k, v)| q.get(k).map(|w| f64::from(*w) * f64::from(*v)))
                    .collect();
                (!shared.is_empty()).then(|| (i as u64, shared.iter().sum()))
            })
            .collect();
        top(scored, limit)
    }

    fn upsert(&self, p: &Peer) {
        for start in (0..POINTS).step_by(500) {
            let points: Vec<Value> = (start..(start + 500).min(POINTS))
                .map(|i| {
                    json!({"id": i, "payload": {"n": i, "g": i % 13},
                           "vector": {"d": self.dense[i],
                                      "s": {"indices": self.sparse[i].0, "values": self.sparse[i].1}}})
                })
                .collect();
            let r = p.ok(
                "PUT",
                "/collections/h/points?wait=true",
                Some(json!({"points": points})),
            );
            assert_eq!(r["status"], "completed", "{r}");
        }
    }
}

/// A write through a peer other than the one that created the collection: that peer may apply
/// the creation a moment later (a refused write changed nothing, so it is retried).
/// Waits until every peer has applied the creation of `collection`.
fn known_everywhere(peers: &[Peer], collection: &str) {
    for p in peers {
        eventually(Duration::from_secs(10), "collection on every peer", || {
            let (code, r) = p.call("GET", &format!("/collections/{collection}"), None);
            (code == 200).then_some(()).ok_or(r.to_string())
        });
    }
}

fn write_when_known(p: &Peer, path: &str, body: Value) {
    eventually(Duration::from_secs(10), "write to a new collection", || {
        let (code, r) = p.call("PUT", path, Some(body.clone()));
        (code == 200).then_some(()).ok_or(r.to_string())
    });
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

fn top(mut scored: Vec<(u64, f64)>, limit: usize) -> Vec<(u64, f64)> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(limit);
    scored
}

fn rrf(lists: &[Vec<(u64, f64)>], k: f64) -> HashMap<u64, f64> {
    let mut fused = HashMap::new();
    for list in lists {
        for (pos, (id, _)) in list.iter().enumerate() {
            *fused.entry(*id).or_insert(0.0) += 1.0 / (pos as f64 + k);
        }
    }
    fused
}

fn dbsf(lists: &[Vec<(u64, f64)>]) -> HashMap<u64, f64> {
    let mut fused = HashMap::new();
    for list in lists {
        let n = list.len() as f64;
        let mean = list.iter().map(|p| p.1).sum::<f64>() / n;
        let sigma = (list.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let (low, high) = (mean - 3.0 * sigma, mean + 3.0 * sigma);
        for (id, s) in list {
            *fused.entry(*id).or_insert(0.0) += (s - low) / (high - low);
        }
    }
    fused
}

/// `hits` are the best `limit` of `want` (ties at the cut either way), best first, scores matching.
fn assert_fused(what: &str, hits: &Value, want: &HashMap<u64, f64>, limit: usize) {
    let hits = hits.as_array().unwrap_or_else(|| panic!("{what}: {hits}"));
    assert_eq!(hits.len(), limit.min(want.len()), "{what}: {hits:?}");
    let mut got = HashSet::new();
    let mut last = f64::INFINITY;
    for h in hits {
        let id = h["id"].as_u64().unwrap();
        let score = h["score"].as_f64().unwrap();
        let expected = want.get(&id).unwrap_or_else(|| panic!("{what}: {id} not a candidate"));
        assert!(
            (score - expected).abs() < 1e-4,
            "{what}: {id} scored {score}, want {expected}"
        );
        assert!(score <= last + 1e-9, "{what}: not sorted: {hits:?}");
        last = score;
        got.insert(id);
    }
    for (id, s) in want {
        assert!(
            got.contains(id) || *s <= last + 1e-4,
            "{what}: {id} ({s}) left out, cut {last}"
        );
    }
}

fn assert_ranked(what: &str, hits: &Value, want: &[(u64, f64)]) {
    let hits = hits.as_array().unwrap_or_else(|| panic!("{what}: {hits}"));
    let got: Vec<u64> = hits.iter().map(|h| h["id"].as_u64().unwrap()).collect();
    let ids: Vec<u64> = want.iter().map(|w| w.0).collect();
    assert_eq!(got, ids, "{what}");
    for (h, (_, s)) in hits.iter().zip(want) {
        assert!((h["score"].as_f64().unwrap() - s).abs() < 1e-4, "{what}: {h} vs {s}");
    }
}

#[test]
fn hybrid_queries_on_a_sharded_cluster() {
    let started = Instant::now();
    let peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"d": {"size": DIM, "distance": "Dot"}},
                        "sparse_vectors": {"s": {}}, "shard_number": SHARDS});
    assert_eq!(
        peers[0].ok("PUT", "/collections/h?timeout=10", Some(create)),
        json!(true)
    );
    let data = Data::new();
    data.upsert(&peers[1]);
    let index = json!({"field_name": "g", "field_schema": "integer"});
    peers[2].ok("PUT", "/collections/h/index?wait=true", Some(index));
    let index = json!({"field_name": "n", "field_schema": "integer"});
    peers[0].ok("PUT", "/collections/h/index?wait=true", Some(index));

    let dq = vectors(1, DIM, 99).remove(0);
    let sq: HashMap<u32, f32> = [(3, 1.0), (17, 0.5), (45, 0.8), (60, 1.2), (95, 0.7), (120, 0.9)].into();
    let (sq_idx, sq_val): (Vec<u32>, Vec<f32>) = sq.iter().map(|(k, v)| (*k, *v)).unzip();
    let sparse_q = json!({"indices": sq_idx, "values": sq_val});
    let all = |_: usize| true;
    let dense_pf = |limit: usize, filter: Value| json!({"query": dq, "using": "d", "limit": limit, "params": {"exact": true}, "filter": filter});
    let sparse_pf =
        |limit: usize, filter: Value| json!({"query": sparse_q, "using": "s", "limit": limit, "filter": filter});

    let lists = [data.dense_top(&dq, 30, &all), data.sparse_top(&sq, 30, &all)];
    assert_eq!(lists[1].len(), 30);
    let rrf_want = rrf(&lists, 2.0);
    let dbsf_want = dbsf(&lists);
    let rescored = {
        let candidates: HashSet<u64> = data.sparse_top(&sq, 100, &all).iter().map(|p| p.0).collect();
        data.dense_top(&dq, 7, &|i| candidates.contains(&(i as u64)))
    };
    let small = |i: usize| i < 1000;
    let filtered = [data.dense_top(&dq, 30, &small), data.sparse_top(&sq, 30, &small)];

    // lookup_from: example ids name points of another sharded collection and another vector.
    let lib = json!({"vectors": {"img": {"size": DIM, "distance": "Dot"}}, "shard_number": 3});
    assert_eq!(
        peers[1].ok("PUT", "/collections/lib?timeout=10", Some(lib)),
        json!(true)
    );
    let lib_vectors = vectors(5, DIM, 77);
    let points: Vec<Value> = (0..5)
        .map(|i| json!({"id": i, "vector": {"img": lib_vectors[i]}}))
        .collect();
    write_when_known(
        &peers[2],
        "/collections/lib/points?wait=true",
        json!({"points": points}),
    );
    known_everywhere(&peers, "lib");
    let looked_up = data.dense_top(&lib_vectors[4], 10, &all);

    for p in &peers {
        let query = |body: Value| p.ok("POST", "/collections/h/points/query", Some(body))["points"].clone();
        let hits = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                "query": {"fusion": "rrf"}, "limit": 20}),
        );
        assert_fused(&format!("rrf via {}", p.url), &hits, &rrf_want, 20);

        let hits = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                "query": {"rrf": {"k": 60}}, "limit": 20}),
        );
        assert_fused(&format!("rrf k=60 via {}", p.url), &hits, &rrf(&lists, 60.0), 20);

        let hits = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                "query": {"fusion": "dbsf"}, "limit": 20}),
        );
        assert_fused(&format!("dbsf via {}", p.url), &hits, &dbsf_want, 20);

        let hits = query(json!({"query": 4, "using": "d", "limit": 10, "params": {"exact": true},
                                "lookup_from": {"collection": "lib", "vector": "img"}}));
        assert_ranked(&format!("lookup_from via {}", p.url), &hits, &looked_up);

        let hits = query(json!({"prefetch": sparse_pf(100, Value::Null), "query": dq, "using": "d", "limit": 7}));
        assert_ranked(&format!("re-scored via {}", p.url), &hits, &rescored);

        let filter = json!({"must": [{"key": "n", "range": {"lt": 1000}}]});
        let hits = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                "query": {"fusion": "rrf"}, "filter": filter, "limit": 20}),
        );
        assert_fused(&format!("filtered rrf via {}", p.url), &hits, &rrf(&filtered, 2.0), 20);

        // A formula over the union of both prefetches: dense score + half the sparse score.
        let hits = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                "query": {"formula": {"sum": ["$score[0]", {"mult": [0.5, "$score[1]"]}]}},
                                "limit": 20}),
        );
        let mut formula_want: HashMap<u64, f64> = HashMap::new();
        for (i, weight) in [(0, 1.0), (1, 0.5)] {
            for (id, s) in &lists[i] {
                *formula_want.entry(*id).or_insert(0.0) += weight * s;
            }
        }
        assert_fused(&format!("formula via {}", p.url), &hits, &formula_want, 20);

        // Groups: the best 5 groups by `g`, 3 points each, from the exact dense ranking.
        let r = p.ok(
            "POST",
            "/collections/h/points/query/groups",
            Some(
                json!({"query": dq, "using": "d", "params": {"exact": true}, "group_by": "g",
                        "limit": 5, "group_size": 3}),
            ),
        );
        let mut want: Vec<(u64, Vec<u64>)> = Vec::new();
        for (id, _) in data.dense_top(&dq, POINTS, &all) {
            let g = id % 13;
            match want.iter().position(|(k, _)| *k == g) {
                Some(i) if want[i].1.len() < 3 => want[i].1.push(id),
                Some(_) => {}
                None if want.len() < 5 => want.push((g, vec![id])),
                None => {}
            }
        }
        let got: Vec<(u64, Vec<u64>)> = r["groups"]
            .as_array()
            .unwrap_or_else(|| panic!("groups via {}: {r}", p.url))
            .iter()
            .map(|g| {
                let hits = g["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].as_u64().unwrap())
                    .collect();
                (g["id"].as_u64().unwrap(), hits)
            })
            .collect();
        assert_eq!(got, want, "groups via {}", p.url);

        // Facets: every value of `g` with its count, summed over the shards.
        let r = eventually(Duration::from_secs(5), "index on every peer", || {
            let (code, body) = p.call("POST", "/collections/h/facet", Some(json!({"key": "g", "limit": 20})));
            if code == 200 {
                Ok(body)
            } else {
                Err(body.to_string())
            }
        });
        let mut counts: Vec<(u64, u64)> = (0..13u64)
            .map(|g| (g, (0..POINTS as u64).filter(|i| i % 13 == g).count() as u64))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let got: Vec<(u64, u64)> = r["result"]["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("facet via {}: {r}", p.url))
            .iter()
            .map(|h| (h["value"].as_u64().unwrap(), h["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(got, counts, "facet via {}", p.url);

        // order_by across shards: scroll and query merge the shards' orderings.
        let r = eventually(Duration::from_secs(5), "index on every peer", || {
            let body = json!({"order_by": {"key": "n", "direction": "desc", "start_from": 2000}, "limit": 15});
            let (code, body) = p.call("POST", "/collections/h/points/scroll", Some(body));
            if code == 200 {
                Ok(body)
            } else {
                Err(body.to_string())
            }
        });
        let ids: Vec<u64> = r["result"]["points"]
            .as_array()
            .unwrap_or_else(|| panic!("order_by via {}: {r}", p.url))
            .iter()
            .map(|h| h["order_value"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            (1986..=2000).rev().collect::<Vec<u64>>(),
            "scroll order_by via {}",
            p.url
        );
        let hits = query(json!({"query": {"order_by": "n"}, "limit": 5}));
        let ids: Vec<u64> = hits
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4], "query order_by via {}", p.url);

        // Nested: the fusion of two prefetches re-scored by dense, through the batch endpoint.
        let nested = json!({"prefetch": {"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                         "query": {"fusion": "rrf"}, "limit": 10},
                            "query": dq, "using": "d", "limit": 10});
        let r = p.ok(
            "POST",
            "/collections/h/points/query/batch",
            Some(json!({"searches": [nested]})),
        );
        let fused_top: HashSet<u64> = query(
            json!({"prefetch": [dense_pf(30, Value::Null), sparse_pf(30, Value::Null)],
                                                   "query": {"fusion": "rrf"}, "limit": 10}),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
        let want = data.dense_top(&dq, 10, &|i| fused_top.contains(&(i as u64)));
        assert_ranked(&format!("nested via {}", p.url), &r[0]["points"], &want);
    }

    // Aliases go through Raft: made on one peer, every peer resolves them; a switch is one entry.
    let actions = json!({"actions": [{"create_alias": {"collection_name": "lib", "alias_name": "current"}}]});
    assert_eq!(peers[1].ok("POST", "/collections/aliases", Some(actions)), json!(true));
    let switch = json!({"actions": [{"delete_alias": {"alias_name": "current"}},
                                    {"create_alias": {"collection_name": "h", "alias_name": "current"}}]});
    assert_eq!(peers[0].ok("POST", "/collections/aliases", Some(switch)), json!(true));
    let lookup = json!({"query": dq, "using": "d", "limit": 10, "params": {"exact": true}});
    let want = data.dense_top(&dq, 10, &all);
    for p in &peers {
        eventually(Duration::from_secs(5), "alias on every peer", || {
            let (code, body) = p.call("GET", "/aliases", None);
            (code == 200 && body["result"]["aliases"] == json!([{"alias_name": "current", "collection_name": "h"}]))
                .then_some(())
                .ok_or(body.to_string())
        });
        let hits = p.ok("POST", "/collections/current/points/query", Some(lookup.clone()))["points"].clone();
        assert_ranked(&format!("query through an alias via {}", p.url), &hits, &want);
    }
    // A collection cannot take an alias's name; deleting the collection drops the alias.
    let (code, body) = peers[2].call(
        "PUT",
        "/collections/current",
        Some(json!({"vectors": {"size": 2, "distance": "Dot"}})),
    );
    assert_eq!(code, 400, "{body}");
    peers[2].ok("DELETE", "/collections/h", None);
    for p in &peers {
        eventually(Duration::from_secs(5), "alias dropped on every peer", || {
            let (code, body) = p.call("GET", "/aliases", None);
            (code == 200 && body["result"]["aliases"] == json!([]))
                .then_some(())
                .ok_or(body.to_string())
        });
    }

    // Conditional writes are resolved by every replica against its own copy: with 3 replicas,
    // each peer reads its local one and all agree.
    let create = json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2, "replication_factor": 3});
    assert_eq!(
        peers[0].ok("PUT", "/collections/cond?timeout=10", Some(create)),
        json!(true)
    );
    let seed = json!({"points": [{"id": 1, "vector": [1, 0], "payload": {"locked": false}},
                                 {"id": 2, "vector": [0, 1], "payload": {"locked": true}}]});
    known_everywhere(&peers, "cond");
    write_when_known(&peers[1], "/collections/cond/points?wait=true", seed);
    let points = |v: i64| {
        json!([{"id": 1, "vector": [1, 1], "payload": {"v": v}},
                                 {"id": 2, "vector": [1, 1], "payload": {"v": v}},
                                 {"id": 3, "vector": [1, 1], "payload": {"v": v}}])
    };
    let unlocked = json!({"must": [{"key": "locked", "match": {"value": false}}]});
    write_when_known(
        &peers[2],
        "/collections/cond/points?wait=true",
        json!({"points": points(1), "update_filter": unlocked}),
    );
    peers[0].ok(
        "PUT",
        "/collections/cond/points?wait=true",
        Some(json!({"points": points(2), "update_mode": "insert_only"})),
    );
    for p in &peers {
        let r = p.ok(
            "POST",
            "/collections/cond/points",
            Some(json!({"ids": [1, 2, 3], "with_payload": true})),
        );
        let got: Vec<Value> = r.as_array().unwrap().iter().map(|p| p["payload"].clone()).collect();
        assert_eq!(
            got,
            vec![json!({"v": 1}), json!({"locked": true}), json!({"v": 1})],
            "via {}",
            p.url
        );
    }
    println!("hybrid queries checked on 3 peers in {:?}", started.elapsed());
}

/// Strict mode in a cluster: configured through one peer, enforced by whichever peer receives a
/// request (limits, unindexed filters, batch sizes), with Qdrant's errors; read rate limits are
/// kept by each receiving peer.
#[test]
fn strict_mode_on_a_sharded_cluster() {
    let peers = start_cluster(3, &[]);
    let create = json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 3});
    assert_eq!(
        peers[0].ok("PUT", "/collections/sm?timeout=10", Some(create)),
        json!(true)
    );
    known_everywhere(&peers, "sm");
    let points = |ids: std::ops::Range<u64>| -> Value {
        let list: Vec<Value> = ids
            .map(|i| json!({"id": i, "vector": [1.0, i as f32], "payload": {"n": i}}))
            .collect();
        json!({ "points": list })
    };
    write_when_known(&peers[1], "/collections/sm/points?wait=true", points(0..30));
    let strict = json!({"strict_mode_config": {"enabled": true, "unindexed_filtering_retrieve": false,
                                               "upsert_max_batchsize": 10, "max_query_limit": 5}});
    assert_eq!(
        peers[2].ok("PATCH", "/collections/sm?timeout=10", Some(strict)),
        json!(true)
    );
    let count = json!({"filter": {"must": [{"key": "n", "range": {"lt": 10}}]}, "exact": true});
    let unindexed = "Bad request: Index required but not found for \"n\" of one of the following types: \
                     [float, integer]. Help: Create an index for this key or use a different filter.";
    for p in &peers {
        eventually(Duration::from_secs(10), "strict mode on every peer", || {
            let (code, body) = p.call("POST", "/collections/sm/points/count", Some(count.clone()));
            (code == 400 && body["status"]["error"] == unindexed)
                .then_some(())
                .ok_or(format!("{code} {body}"))
        });
        let (code, body) = p.call(
            "POST",
            "/collections/sm/points/query",
            Some(json!({"query": [1.0, 0.0], "limit": 6})),
        );
        assert_eq!(code, 400, "via {}: {body}", p.url);
        assert_eq!(
            body["status"]["error"],
            "Bad request: Limit exceeded 6 > 5 for \"limit\". Help: Reduce the \"limit\" parameter to or below 5.",
            "via {}",
            p.url
        );
        let (code, body) = p.call("PUT", "/collections/sm/points?wait=true", Some(points(100..111)));
        assert_eq!(code, 400, "via {}: {body}", p.url);
        assert!(
            body["status"]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Limit exceeded 11 > 10 for \"upsert limit\""),
            "via {}: {body}",
            p.url
        );
    }
    peers[0].ok(
        "PUT",
        "/collections/sm/index?wait=true",
        Some(json!({"field_name": "n", "field_schema": "integer"})),
    );
    for p in &peers {
        let counted = eventually(Duration::from_secs(10), "index on every peer", || {
            let (code, body) = p.call("POST", "/collections/sm/points/count", Some(count.clone()));
            (code == 200)
                .then(|| body["result"]["count"].clone())
                .ok_or(format!("{code} {body}"))
        });
        assert_eq!(counted, json!(10), "via {}", p.url);
    }
    assert_eq!(
        peers[1].ok(
            "PATCH",
            "/collections/sm?timeout=10",
            Some(json!({"strict_mode_config": {"read_rate_limit": 2}}))
        ),
        json!(true)
    );
    let query = json!({"query": [1.0, 0.0], "limit": 3});
    for p in &peers {
        eventually(Duration::from_secs(10), "rate limit on every peer", || {
            let info = p.ok("GET", "/collections/sm", None);
            (info["config"]["strict_mode_config"]["read_rate_limit"] == json!(2))
                .then_some(())
                .ok_or(info.to_string())
        });
        p.ok("POST", "/collections/sm/points/query", Some(query.clone()));
        p.ok("POST", "/collections/sm/points/query", Some(query.clone()));
        let (code, body) = p.call("POST", "/collections/sm/points/query", Some(query.clone()));
        assert_eq!(code, 429, "via {}: {body}", p.url);
        let error = body["status"]["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(
                "Rate limiting exceeded: Read rate limit exceeded: Operation requires 1 tokens but only 0."
            ),
            "via {}: {body}",
            p.url
        );
    }
}
