//! A minimal Qdrant REST client: only the calls the benchmark needs (`ServerClient`), Qdrant's JSON shapes.
//! One `reqwest::Client` (a keep-alive connection pool) is shared by all workers.

use crate::client::{ClientError, QuantizationSearch, QueryParams, ServerClient};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{method} {url}: {source}")]
    Http {
        method: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: cannot decode response: {source}")]
    Decode { url: String, source: serde_json::Error },
    #[error("non-numeric point id {0} (the benchmark uploads integer ids)")]
    NonNumericId(String),
    #[error("cannot build HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Collection settings for `PUT /collections/{name}`.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionParams {
    pub dim: usize,
    /// Qdrant's distance name: "Euclid" or "Cosine".
    pub distance: String,
    pub m: usize,
    pub ef_construct: usize,
    pub shards: u32,
    pub replication: u32,
    pub indexing_threshold_kb: Option<u64>,
    pub default_segment_number: Option<u64>,
    /// Qdrant's `quantization_config` (a JSON object such as `{"scalar": {"type": "int8"}}`),
    /// sent as given.
    pub quantization: Option<serde_json::Value>,
    /// `vectors.on_disk`: the original vectors are kept on disk.
    pub on_disk: bool,
    /// `vectors.datatype` ("float32", "float16", "uint8"); the server's default when None.
    pub datatype: Option<String>,
}

impl CollectionParams {
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "vectors": { "size": self.dim, "distance": self.distance },
            "hnsw_config": { "m": self.m, "ef_construct": self.ef_construct },
            "shard_number": self.shards,
            "replication_factor": self.replication,
        });
        let mut opt = serde_json::Map::new();
        if let Some(t) = self.indexing_threshold_kb {
            opt.insert("indexing_threshold".into(), t.into());
        }
        if let Some(s) = self.default_segment_number {
            opt.insert("default_segment_number".into(), s.into());
        }
        if !opt.is_empty() {
            body["optimizers_config"] = serde_json::Value::Object(opt);
        }
        if let Some(q) = &self.quantization {
            body["quantization_config"] = q.clone();
        }
        if self.on_disk {
            body["vectors"]["on_disk"] = true.into();
        }
        if let Some(d) = &self.datatype {
            body["vectors"]["datatype"] = d.as_str().into();
        }
        body
    }
}

/// The parts of `GET /collections/{name}` the benchmark reads.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct CollectionInfo {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub points_count: Option<u64>,
    #[serde(default)]
    pub indexed_vectors_count: Option<u64>,
    #[serde(default)]
    pub segments_count: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

#[derive(Deserialize)]
struct QueryResult {
    points: Vec<ScoredPoint>,
}

#[derive(Deserialize)]
struct ScoredPoint {
    id: PointId,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PointId {
    Num(u64),
    Uuid(String),
}

/// JSON body of `PUT /collections/{c}/points`: `{"points":[{"id":..,"vector":[..]},..]}`.
pub fn upsert_body(first_id: u64, rows: &[f32], dim: usize, payload: bool) -> Bytes {
    #[derive(Serialize)]
    struct Payload {
        i: u64,
        group: String,
        text: String,
    }
    #[derive(Serialize)]
    struct Point<'a> {
        id: u64,
        vector: &'a [f32],
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<Payload>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        points: Vec<Point<'a>>,
    }
    let points = rows
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, vector)| {
            let id = first_id + i as u64;
            Point {
                id,
                vector,
                payload: payload.then(|| {
                    let (i, group, text) = crate::client::point_payload(id);
                    Payload { i, group, text }
                }),
            }
        })
        .collect();
    // Serialising plain structs of numbers and slices cannot fail.
    Bytes::from(serde_json::to_vec(&Body { points }).unwrap_or_default())
}

/// JSON body of `POST /collections/{c}/points/query`.
pub fn query_body(vector: &[f32], limit: usize, params: &QueryParams) -> Bytes {
    #[derive(Serialize)]
    struct Params {
        #[serde(skip_serializing_if = "Option::is_none")]
        hnsw_ef: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        quantization: Option<QuantizationSearch>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        query: &'a [f32],
        limit: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<Params>,
        with_payload: bool,
    }
    let body = Body {
        query: vector,
        limit,
        params: (!params.is_empty()).then_some(Params {
            hnsw_ef: params.hnsw_ef,
            quantization: params.quantization,
        }),
        with_payload: false,
    };
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Parses a query response into point ids, best first.
pub fn parse_query_ids(url: &str, body: &[u8]) -> Result<Vec<u64>, RestError> {
    let env: Envelope<QueryResult> = serde_json::from_slice(body).map_err(|source| RestError::Decode {
        url: url.to_string(),
        source,
    })?;
    env.result
        .points
        .into_iter()
        .map(|p| match p.id {
            PointId::Num(n) => Ok(n),
            PointId::Uuid(s) => Err(RestError::NonNumericId(s)),
        })
        .collect()
}

#[derive(Clone)]
pub struct QdrantClient {
    http: reqwest::Client,
    base: String,
}

impl QdrantClient {
    /// `pool` = idle keep-alive connections kept per host (use the concurrency).
    pub fn new(base_url: &str, pool: usize, timeout: Duration) -> Result<Self, RestError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .map_err(RestError::Client)?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        })
    }

    async fn send(
        &self,
        method: &'static str,
        req: reqwest::RequestBuilder,
        url: &str,
        ok_404: bool,
    ) -> Result<Bytes, RestError> {
        let http = |source| RestError::Http {
            method,
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(http)?;
        if status.is_success() || (ok_404 && status.as_u16() == 404) {
            return Ok(body);
        }
        Err(RestError::Status {
            method,
            url: url.to_string(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
        })
    }

    fn json_post(&self, req: reqwest::RequestBuilder, body: Bytes) -> reqwest::RequestBuilder {
        req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body)
    }

    /// `PUT /collections/{name}` with any body (collections `CollectionParams` cannot describe).
    pub async fn create_collection_with(&self, name: &str, body: &serde_json::Value) -> Result<(), RestError> {
        let url = format!("{}/collections/{name}", self.base);
        let req = self.json_post(self.http.put(&url), Bytes::from(body.to_string()));
        self.send("PUT", req, &url, false).await?;
        Ok(())
    }

    /// Any HTTP answer from `GET /` counts as ready.
    pub async fn ready(&self) -> bool {
        self.http.get(format!("{}/", self.base)).send().await.is_ok()
    }
}

impl ServerClient for QdrantClient {
    type Query = Bytes;
    type Batch = Bytes;

    fn endpoint(&self) -> &str {
        &self.base
    }

    fn encode_query(&self, _collection: &str, vector: &[f32], limit: usize, params: &QueryParams) -> Bytes {
        query_body(vector, limit, params)
    }

    fn encode_batch(&self, _collection: &str, first_id: u64, rows: &[f32], dim: usize, payload: bool) -> Bytes {
        upsert_body(first_id, rows, dim, payload)
    }

    async fn query(&self, name: &str, body: &Bytes) -> Result<Vec<u64>, ClientError> {
        let url = format!("{}/collections/{name}/points/query", self.base);
        let req = self.json_post(self.http.post(&url), body.clone());
        let resp = self.send("POST", req, &url, false).await?;
        Ok(parse_query_ids(&url, &resp)?)
    }

    async fn upsert(&self, name: &str, body: Bytes, wait: bool) -> Result<(), ClientError> {
        let url = format!("{}/collections/{name}/points?wait={wait}", self.base);
        let req = self.json_post(self.http.put(&url), body);
        self.send("PUT", req, &url, false).await?;
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<(), ClientError> {
        let url = format!("{}/collections/{name}", self.base);
        self.send("DELETE", self.http.delete(&url), &url, true).await?;
        Ok(())
    }

    async fn create_collection(&self, name: &str, params: &CollectionParams) -> Result<(), ClientError> {
        let url = format!("{}/collections/{name}", self.base);
        let body = Bytes::from(params.body().to_string());
        let req = self.json_post(self.http.put(&url), body);
        self.send("PUT", req, &url, false).await?;
        Ok(())
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, ClientError> {
        let url = format!("{}/collections/{name}", self.base);
        let body = self.send("GET", self.http.get(&url), &url, false).await?;
        let env: Envelope<CollectionInfo> =
            serde_json::from_slice(&body).map_err(|source| RestError::Decode { url, source })?;
        Ok(env.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_body_shape() {
        let ef = |hnsw_ef| QueryParams {
            hnsw_ef,
            quantization: None,
        };
        let b = query_body(&[0.5, -1.0], 10, &ef(Some(64)));
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"query": [0.5, -1.0], "limit": 10, "params": {"hnsw_ef": 64}, "with_payload": false})
        );
        let v: serde_json::Value = serde_json::from_slice(&query_body(&[1.0], 3, &ef(None))).expect("json");
        assert!(v.get("params").is_none());
    }

    #[test]
    fn query_body_carries_quantization_params() {
        let q = QuantizationSearch::parse(r#"{"ignore": false, "rescore": true, "oversampling": 2.0}"#).expect("parse");
        let p = QueryParams {
            hnsw_ef: Some(64),
            quantization: Some(q),
        };
        let v: serde_json::Value = serde_json::from_slice(&query_body(&[1.0], 3, &p)).expect("json");
        assert_eq!(
            v["params"],
            serde_json::json!({"hnsw_ef": 64, "quantization": {"ignore": false, "rescore": true, "oversampling": 2.0}})
        );
        // Without hnsw_ef, and the oversampling sweep turns rescoring on.
        let p = QueryParams {
            hnsw_ef: None,
            quantization: Some(QuantizationSearch::default().with_oversampling(4.0)),
        };
        let v: serde_json::Value = serde_json::from_slice(&query_body(&[1.0], 3, &p)).expect("json");
        assert_eq!(
            v["params"],
            serde_json::json!({"quantization": {"rescore": true, "oversampling": 4.0}})
        );
        assert!(QuantizationSearch::parse(r#"{"oversample": 2}"#).is_err());
    }

    #[test]
    fn upsert_body_shape_and_float_round_trip() {
        let rows = [0.1f32, 1e-7, 3.0, -2.5];
        let b = upsert_body(7, &rows, 2, false);
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["points"][1]["id"], 8);
        let back: Vec<f32> = serde_json::from_value(v["points"][0]["vector"].clone()).expect("floats");
        assert_eq!(back, vec![0.1f32, 1e-7]);
    }

    #[test]
    fn parses_query_response() {
        let body = br#"{"result":{"points":[{"id":3,"version":0,"score":0.5},{"id":1,"score":0.7}]},"status":"ok","time":0.001}"#;
        assert_eq!(parse_query_ids("u", body).expect("ids"), vec![3, 1]);
        let uuid = br#"{"result":{"points":[{"id":"a-b","score":1.0}]}}"#;
        assert!(matches!(parse_query_ids("u", uuid), Err(RestError::NonNumericId(_))));
        assert!(parse_query_ids("u", b"{}").is_err());
    }

    #[test]
    fn collection_body_includes_optional_optimizer_settings() {
        let mut p = CollectionParams {
            dim: 128,
            distance: "Euclid".into(),
            m: 16,
            ef_construct: 100,
            shards: 3,
            replication: 1,
            indexing_threshold_kb: None,
            default_segment_number: None,
            quantization: None,
            on_disk: false,
            datatype: None,
        };
        assert!(p.body().get("optimizers_config").is_none());
        assert!(p.body().get("quantization_config").is_none());
        assert!(p.body()["vectors"].get("on_disk").is_none());
        p.indexing_threshold_kb = Some(1);
        let b = p.body();
        assert_eq!(b["optimizers_config"]["indexing_threshold"], 1);
        assert_eq!(b["shard_number"], 3);
        assert_eq!(b["hnsw_config"]["m"], 16);
        let q = serde_json::json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}});
        p.quantization = Some(q.clone());
        p.on_disk = true;
        let b = p.body();
        assert_eq!(b["quantization_config"], q);
        assert_eq!(
            b["vectors"],
            serde_json::json!({"size": 128, "distance": "Euclid", "on_disk": true})
        );
    }

    #[test]
    fn parses_collection_info() {
        let body = br#"{"result":{"status":"green","optimizer_status":"ok","indexed_vectors_count":10,"points_count":12,"segments_count":2,"config":{}},"status":"ok"}"#;
        let env: Envelope<CollectionInfo> = serde_json::from_slice(body).expect("info");
        assert_eq!(env.result.indexed_vectors_count, Some(10));
        assert_eq!(env.result.status.as_deref(), Some("green"));
    }
}
