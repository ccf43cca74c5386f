//! Helpers for driving the public gRPC API with the official Rust SDK (`qdrant_client::Qdrant`).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vector_output::Vector as VectorKind;
use qdrant_client::qdrant::{PointId, ScoredPoint, Value, VectorOutput, VectorsOutput};
use qdrant_client::{Qdrant, QdrantError};

/// Runs `body` on a fresh multi-threaded runtime, failing the test after `limit`. Servers are
/// started before (their harness uses blocking HTTP, which must not run inside a runtime).
pub fn run<F: Future>(limit: Duration, body: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        tokio::time::timeout(limit, body)
            .await
            .unwrap_or_else(|_| panic!("test body did not finish within {limit:?}"))
    })
}

/// An SDK client the way users build one: URL, optional API key, timeout.
pub fn client(url: &str, api_key: Option<&str>) -> Qdrant {
    Qdrant::from_url(url)
        .api_key(api_key.map(str::to_string))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build client")
}

/// Waits until the gRPC port answers `HealthCheck` (it may open a moment after REST's readyz),
/// then returns a client.
pub async fn connect(url: &str, api_key: Option<&str>) -> Qdrant {
    let c = client(url, api_key);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.health_check().await {
            Ok(_) => return c,
            Err(e) if Instant::now() > deadline => panic!("gRPC at {url} not answering: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The gRPC status of a failed call; panics (naming `what`) if it succeeded or failed otherwise.
pub fn status_of<T: std::fmt::Debug>(what: &str, r: Result<T, QdrantError>) -> tonic::Status {
    match r {
        Err(QdrantError::ResponseError { status }) => status,
        Err(e) => panic!("{what}: expected a response error, got {e}"),
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
    }
}

/// Asserts that `r` failed with `code`, returning the status message.
pub fn expect_code<T: std::fmt::Debug>(what: &str, r: Result<T, QdrantError>, code: tonic::Code) -> String {
    let status = status_of(what, r);
    assert_eq!(
        status.code(),
        code,
        "{what}: wrong code, message: {:?}",
        status.message()
    );
    status.message().to_string()
}

pub fn num_id(id: &Option<PointId>) -> u64 {
    match id.as_ref().and_then(|p| p.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => *n,
        other => panic!("not a numeric point id: {other:?}"),
    }
}

pub fn ids_of(points: &[ScoredPoint]) -> Vec<u64> {
    points.iter().map(|p| num_id(&p.id)).collect()
}

/// A dense output vector's values (old `data` field or new `vector` oneof).
pub fn dense(v: &VectorOutput) -> Vec<f32> {
    match v.clone().into_vector() {
        VectorKind::Dense(d) => d.data,
        other => panic!("not a dense vector: {other:?}"),
    }
}

/// A sparse output vector as (indices, values).
pub fn sparse(v: &VectorOutput) -> (Vec<u32>, Vec<f32>) {
    match v.clone().into_vector() {
        VectorKind::Sparse(s) => (s.indices, s.values),
        other => panic!("not a sparse vector: {other:?}"),
    }
}

/// The unnamed vector of a point's output.
pub fn default_vector(v: &Option<VectorsOutput>) -> Vec<f32> {
    use qdrant_client::qdrant::vectors_output::VectorsOptions;
    match v.as_ref().and_then(|v| v.vectors_options.as_ref()) {
        Some(VectorsOptions::Vector(v)) => dense(v),
        other => panic!("no unnamed vector: {other:?}"),
    }
}

/// The named vectors of a point's output.
pub fn named_vectors(v: &Option<VectorsOutput>) -> HashMap<String, VectorOutput> {
    use qdrant_client::qdrant::vectors_output::VectorsOptions;
    match v.as_ref().and_then(|v| v.vectors_options.as_ref()) {
        Some(VectorsOptions::Vectors(n)) => n.vectors.clone(),
        other => panic!("no named vectors: {other:?}"),
    }
}

pub fn int(v: &Value) -> Option<i64> {
    match v.kind {
        Some(Kind::IntegerValue(i)) => Some(i),
        _ => None,
    }
}

pub fn string(v: &Value) -> Option<&str> {
    match &v.kind {
        Some(Kind::StringValue(s)) => Some(s),
        _ => None,
    }
}

pub fn normalized(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    v.iter().map(|x| f64::from(*x) / n).collect()
}

/// Which similarity the brute force computes, the way Qdrant scores it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    Cosine,
    Euclid,
}

/// Brute-force score of `v` against `q` (Cosine: dot of normalised vectors, Euclid: distance).
pub fn score(metric: Metric, v: &[f32], q: &[f32]) -> f64 {
    match metric {
        Metric::Cosine => normalized(v).iter().zip(normalized(q)).map(|(a, b)| a * b).sum(),
        Metric::Euclid => v
            .iter()
            .zip(q)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            .sqrt(),
    }
}

/// Brute-force ranking of `data` (id = index) for `q`, best first, all points.
pub fn ranking(metric: Metric, data: &[Vec<f32>], q: &[f32]) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, score(metric, v, q)))
        .collect();
    match metric {
        Metric::Cosine => all.sort_by(|a, b| b.1.total_cmp(&a.1)),
        Metric::Euclid => all.sort_by(|a, b| a.1.total_cmp(&b.1)),
    }
    all
}

/// Asserts that `hits` are exactly the first `hits.len()` of `want` (a full ranking) with scores
/// within 1e-4. Two points whose exact scores differ by less than 1e-6 may come in either order
/// (f32 on the server, f64 here); any other difference fails.
pub fn assert_ranking(what: &str, hits: &[ScoredPoint], want: &[(u64, f64)], k: usize) {
    assert_eq!(
        hits.len(),
        k,
        "{what}: {} hits, want {k}: {:?}",
        hits.len(),
        ids_of(hits)
    );
    let exact: HashMap<u64, f64> = want.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    for (i, h) in hits.iter().enumerate() {
        let id = num_id(&h.id);
        assert!(seen.insert(id), "{what}: id {id} twice in {:?}", ids_of(hits));
        let (want_id, want_score) = want[i];
        let got_exact = *exact.get(&id).unwrap_or_else(|| panic!("{what}: unknown id {id}"));
        assert!(
            id == want_id || (got_exact - want_score).abs() < 1e-6,
            "{what}: rank {i} is {id} (score {got_exact}), want {want_id} (score {want_score}); got {:?}, want {:?}",
            ids_of(hits),
            &want[..k].iter().map(|w| w.0).collect::<Vec<_>>()
        );
        assert!(
            (f64::from(h.score) - want_score).abs() < 1e-4,
            "{what}: rank {i} id {id} score {} vs {want_score}",
            h.score
        );
    }
}

/// Polls `check` every 50 ms until it returns `Ok`, panicking with the last `Err` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: not within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A client of the standard `grpc.health.v1.Health` service at `url`, without credentials.
pub async fn health_client(url: &str) -> tonic_health::pb::health_client::HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .expect("health URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tonic_health::pb::health_client::HealthClient::new(channel)
}
