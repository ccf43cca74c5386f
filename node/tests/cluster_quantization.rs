//! Quantized search on a sharded, replicated 3-peer cluster: every peer's answer, rescored with
//! the original vectors, has the exact scores and the recall of an f32 search; a collection
//! update that changes the quantization reaches every replica and rebuilds its indexes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::cluster::{eventually, start_cluster, Peer};
use common::vectors;
use serde_json::{json, Value};

const DIM: usize = 64;
const POINTS: usize = 6_000;
const QUERIES: usize = 30;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn exact_top(data: &[Vec<f32>], q: &[f32], k: usize) -> Vec<u64> {
    let mut scored: Vec<(u64, f32)> = data.iter().enumerate().map(|(i, v)| (i as u64, dot(v, q))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(k).map(|s| s.0).collect()
}

/// Waits until every peer reports the collection fully indexed with `quantization`.
fn indexed_everywhere(peers: &[Peer], quantization: &Value) {
    for p in peers {
        eventually(Duration::from_secs(120), "indexed on every peer", || {
            let (code, r) = p.call("GET", "/collections/q", None);
            let info = &r["result"];
            let done = code == 200
                && info["config"]["quantization_config"] == *quantization
                && info["points_count"] == json!(POINTS)
                && info["indexed_vectors_count"].as_u64().unwrap_or(0) >= POINTS as u64;
            done.then_some(()).ok_or(format!("{code} {info}"))
        });
    }
}

fn recall_and_scores(p: &Peer, data: &[Vec<f32>], queries: &[Vec<f32>], params: Value) -> (f64, f32) {
    let (mut found, mut worst) = (0usize, 0f32);
    for q in queries {
        let r = p.ok(
            "POST",
            "/collections/q/points/query",
            Some(json!({"query": q, "limit": 10, "params": params.clone()})),
        );
        let hits = r["points"].as_array().expect("points").clone();
        assert_eq!(hits.len(), 10, "via {}: {r}", p.url);
        let want: HashSet<u64> = exact_top(data, q, 10).into_iter().collect();
        for h in &hits {
            let id = h["id"].as_u64().unwrap();
            found += usize::from(want.contains(&id));
            let score = h["score"].as_f64().unwrap() as f32;
            worst = worst.max((score - dot(&data[id as usize], q)).abs());
        }
    }
    (found as f64 / (10 * queries.len()) as f64, worst)
}

#[test]
fn quantized_search_on_a_replicated_cluster() {
    let peers = start_cluster(3, &[]);
    let scalar = json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}});
    let create = json!({"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": 2,
                        "replication_factor": 2, "quantization_config": scalar});
    assert_eq!(
        peers[0].ok("PUT", "/collections/q?timeout=10", Some(create)),
        json!(true)
    );
    let data = vectors(POINTS, DIM, 5);
    let queries = vectors(QUERIES, DIM, 6);
    for start in (0..POINTS).step_by(1000) {
        let points: Vec<Value> = (start..start + 1000)
            .map(|i| json!({"id": i, "vector": data[i]}))
            .collect();
        eventually(Duration::from_secs(10), "upsert", || {
            let (code, r) = peers[start / 1000 % 3].call(
                "PUT",
                "/collections/q/points?wait=true",
                Some(json!({"points": points})),
            );
            (code == 200).then_some(()).ok_or(r.to_string())
        });
    }
    indexed_everywhere(&peers, &scalar);
    let rescored = json!({"quantization": {"rescore": true, "oversampling": 3.0}});
    for p in &peers {
        let (recall, worst) = recall_and_scores(p, &data, &queries, rescored.clone());
        assert!(recall >= 0.95, "via {}: recall {recall}", p.url);
        assert!(worst < 1e-4, "via {}: rescored scores off by {worst}", p.url);
        // Without rescoring the scores are int8 approximations.
        let (_, worst) = recall_and_scores(p, &data, &queries[..3], json!({"quantization": {"rescore": false}}));
        assert!(worst > 1e-6 && worst < 0.05, "via {}: unrescored error {worst}", p.url);
    }

    // Switch to binary through one peer: every replica rebuilds with the new code.
    let binary = json!({"binary": {"always_ram": true}});
    assert_eq!(
        peers[2].ok(
            "PATCH",
            "/collections/q?timeout=10",
            Some(json!({"quantization_config": binary}))
        ),
        json!(true)
    );
    indexed_everywhere(&peers, &binary);
    for p in &peers {
        // Binary rescores by default. One bit per dimension of uniform random data keeps little
        // of the ranking (a numpy simulation: 0.62 of the top 10 within 80 candidates, 0.96
        // within 640), so take many candidates.
        let (recall, worst) = recall_and_scores(p, &data, &queries, json!({"quantization": {"oversampling": 64.0}}));
        assert!(recall >= 0.9, "via {}: binary recall {recall}", p.url);
        assert!(worst < 1e-4, "via {}: binary rescored scores off by {worst}", p.url);
    }
}
