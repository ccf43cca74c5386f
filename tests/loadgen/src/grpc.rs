//! The gRPC side of [`ServerClient`]: Qdrant's public gRPC API (port 6334) through the
//! tonic clients generated in `qdrant-client`, over plain HTTP/2 channels.
//!
//! Workers share `channels` connections round-robin: HTTP/2 multiplexes concurrent calls on
//! one connection, and a few more can spread the client's work over its runtime threads.
//! Each connection is a plain hyper HTTP/2 connection ([`H2`]) rather than a tonic `Channel`:
//! a `Channel` passes every call through a tower `Buffer` task, an extra hand-off per request
//! that costs the client (which shares the machine with the server) measurable CPU.

use crate::client::{ClientError, QueryParams, ServerClient};
use crate::rest::{CollectionInfo, CollectionParams};
use qdrant_client::qdrant::collections_client::CollectionsClient;
use qdrant_client::qdrant::points_client::PointsClient;
use qdrant_client::qdrant::{
    binary_quantization_query_encoding, point_id, quantization_config, query, vectors, vectors_config,
    with_payload_selector, BinaryQuantization, BinaryQuantizationEncoding, BinaryQuantizationQueryEncoding,
    CollectionStatus, CompressionRatio, CreateCollection, DeleteCollection, DenseVector, Distance,
    GetCollectionInfoRequest, HnswConfigDiff, Memory, OptimizersConfigDiff, PointId, PointStruct, ProductQuantization,
    QuantizationConfig, QuantizationSearchParams, QuantizationType, Query, QueryPoints, ScalarQuantization,
    ScoredPoint, SearchParams, TurboQuantBitSize, TurboQuantization, UpsertPoints, Vector, VectorInput, VectorParams,
    Vectors, VectorsConfig, WithPayloadSelector,
};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Qdrant's default gRPC port, used when only the REST URL is given.
pub const DEFAULT_GRPC_PORT: u16 = 6334;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("{call} {url} (collection {collection}): gRPC {code:?}: {message}")]
    Status {
        call: &'static str,
        url: String,
        collection: String,
        code: tonic::Code,
        message: String,
    },
    #[error("cannot connect to gRPC {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{call} {url} (collection {collection}): the server answered `false`")]
    Refused {
        call: &'static str,
        url: String,
        collection: String,
    },
    #[error("non-numeric point id {0} (the benchmark uploads integer ids)")]
    NonNumericId(String),
    #[error("a scored point without an id")]
    MissingId,
    #[error("distance {0:?} has no gRPC equivalent")]
    Distance(String),
    #[error("quantization_config {json}: {reason}")]
    Quantization { json: String, reason: String },
    #[error("datatype {0:?} is none of float32, float16, uint8")]
    Datatype(String),
}

/// The gRPC URL on the same host as `rest_url`, port 6334 (`http://h:6333/x` -> `http://h:6334`).
pub fn default_grpc_url(rest_url: &str) -> String {
    let (scheme, rest) = rest_url.split_once("://").unwrap_or(("http", rest_url));
    let authority = rest.split('/').next().unwrap_or_default();
    // `[v6]:port` keeps its brackets; otherwise the port is whatever follows the last ':'.
    let host = match authority.find(']') {
        Some(end) => &authority[..=end],
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    format!("{scheme}://{host}:{DEFAULT_GRPC_PORT}")
}

/// One HTTP/2 connection as the service the generated clients call; every call is bounded by
/// `timeout`.
#[derive(Clone)]
pub struct H2 {
    send: SendRequest<tonic::body::Body>,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.send.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.send.send_request(req);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, response).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(format!("no answer within {timeout:?}").into()),
            }
        })
    }
}

#[derive(Clone)]
pub struct GrpcClient {
    url: String,
    origin: http::Uri,
    channels: Arc<[H2]>,
    next: Arc<AtomicUsize>,
}

impl GrpcClient {
    /// Opens `channels` HTTP/2 connections to `url` (`http://host:port`); `timeout` bounds every
    /// call.
    pub async fn connect(url: &str, channels: usize, timeout: Duration) -> Result<Self, GrpcError> {
        let url = url.trim_end_matches('/').to_string();
        let connect_err = |reason: String| GrpcError::Connect {
            url: url.clone(),
            reason,
        };
        let origin: http::Uri = url.parse().map_err(|e| connect_err(format!("{e}")))?;
        if origin.scheme_str() != Some("http") {
            return Err(connect_err("only http:// URLs are supported".into()));
        }
        let authority = origin
            .authority()
            .ok_or_else(|| connect_err("no host".into()))?
            .to_string();
        let mut open = Vec::with_capacity(channels.max(1));
        for _ in 0..channels.max(1) {
            let tcp = tokio::time::timeout(
                timeout.min(Duration::from_secs(10)),
                tokio::net::TcpStream::connect(&authority),
            )
            .await
            .map_err(|_| connect_err("connect timed out".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
            tcp.set_nodelay(true).map_err(|e| connect_err(e.to_string()))?;
            let (send, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            tokio::spawn(connection);
            open.push(H2 { send, timeout });
        }
        Ok(Self {
            url,
            origin,
            channels: open.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn channel(&self) -> H2 {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }

    fn points(&self) -> PointsClient<H2> {
        PointsClient::with_origin(self.channel(), self.origin.clone())
    }

    fn collections(&self) -> CollectionsClient<H2> {
        CollectionsClient::with_origin(self.channel(), self.origin.clone())
    }

    fn status_err(&self, call: &'static str, collection: &str, s: tonic::Status) -> GrpcError {
        GrpcError::Status {
            call,
            url: self.url.clone(),
            collection: collection.to_string(),
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

// Qdrant's REST spelling of `quantization_config`, read strictly (an unknown field is an error
// rather than a setting silently lost on the way to gRPC).

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum QuantJson {
    Scalar(ScalarJson),
    Binary(BinaryJson),
    Product(ProductJson),
    Turbo(TurboJson),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalarJson {
    r#type: ScalarTypeJson,
    #[serde(default)]
    quantile: Option<f32>,
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<MemoryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScalarTypeJson {
    Int8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BinaryJson {
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    encoding: Option<BinaryEncodingJson>,
    #[serde(default)]
    query_encoding: Option<QueryEncodingJson>,
    #[serde(default)]
    memory: Option<MemoryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum BinaryEncodingJson {
    OneBit,
    TwoBits,
    OneAndHalfBits,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum QueryEncodingJson {
    Default,
    Binary,
    Scalar4bits,
    Scalar8bits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductJson {
    compression: CompressionJson,
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<MemoryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CompressionJson {
    X4,
    X8,
    X16,
    X32,
    X64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurboJson {
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    bits: Option<TurboBitsJson>,
    #[serde(default)]
    memory: Option<MemoryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TurboBitsJson {
    Bits1,
    #[serde(rename = "bits1_5")]
    Bits15,
    Bits2,
    Bits4,
    Bits8,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum MemoryJson {
    Cold,
    Cached,
    Pinned,
}

fn memory(m: Option<MemoryJson>) -> Option<i32> {
    m.map(|m| {
        match m {
            MemoryJson::Cold => Memory::Cold,
            MemoryJson::Cached => Memory::Cached,
            MemoryJson::Pinned => Memory::Pinned,
        }
        .into()
    })
}

/// The gRPC `Datatype` of a REST datatype name.
fn datatype(name: &str) -> Result<i32, GrpcError> {
    let d = match name {
        "float32" => qdrant_client::qdrant::Datatype::Float32,
        "float16" => qdrant_client::qdrant::Datatype::Float16,
        "uint8" => qdrant_client::qdrant::Datatype::Uint8,
        other => return Err(GrpcError::Datatype(other.into())),
    };
    Ok(d.into())
}

/// The gRPC `QuantizationConfig` of a REST `quantization_config` object: scalar, binary,
/// product and turbo (`TurboQuantization`, present in qdrant-client 1.20). `always_ram` is
/// carried in the deprecated field that Qdrant 1.19 reads, `memory` in its own.
#[allow(deprecated)]
pub fn quantization_from_json(json: &serde_json::Value) -> Result<QuantizationConfig, GrpcError> {
    let q: QuantJson = serde_json::from_value(json.clone()).map_err(|e| GrpcError::Quantization {
        json: json.to_string(),
        reason: e.to_string(),
    })?;
    let method = match q {
        QuantJson::Scalar(s) => quantization_config::Quantization::Scalar(ScalarQuantization {
            r#type: match s.r#type {
                ScalarTypeJson::Int8 => QuantizationType::Int8.into(),
            },
            quantile: s.quantile,
            always_ram: s.always_ram,
            memory: memory(s.memory),
        }),
        QuantJson::Binary(b) => quantization_config::Quantization::Binary(BinaryQuantization {
            always_ram: b.always_ram,
            encoding: b.encoding.map(|e| {
                match e {
                    BinaryEncodingJson::OneBit => BinaryQuantizationEncoding::OneBit,
                    BinaryEncodingJson::TwoBits => BinaryQuantizationEncoding::TwoBits,
                    BinaryEncodingJson::OneAndHalfBits => BinaryQuantizationEncoding::OneAndHalfBits,
                }
                .into()
            }),
            query_encoding: b.query_encoding.map(|e| {
                use binary_quantization_query_encoding::Setting;
                let setting = match e {
                    QueryEncodingJson::Default => Setting::Default,
                    QueryEncodingJson::Binary => Setting::Binary,
                    QueryEncodingJson::Scalar4bits => Setting::Scalar4Bits,
                    QueryEncodingJson::Scalar8bits => Setting::Scalar8Bits,
                };
                BinaryQuantizationQueryEncoding {
                    variant: Some(binary_quantization_query_encoding::Variant::Setting(setting.into())),
                }
            }),
            memory: memory(b.memory),
        }),
        QuantJson::Product(p) => quantization_config::Quantization::Product(ProductQuantization {
            compression: match p.compression {
                CompressionJson::X4 => CompressionRatio::X4,
                CompressionJson::X8 => CompressionRatio::X8,
                CompressionJson::X16 => CompressionRatio::X16,
                CompressionJson::X32 => CompressionRatio::X32,
                CompressionJson::X64 => CompressionRatio::X64,
            }
            .into(),
            always_ram: p.always_ram,
            memory: memory(p.memory),
        }),
        QuantJson::Turbo(t) => quantization_config::Quantization::Turboquant(TurboQuantization {
            always_ram: t.always_ram,
            bits: t.bits.map(|b| {
                match b {
                    TurboBitsJson::Bits1 => TurboQuantBitSize::Bits1,
                    TurboBitsJson::Bits15 => TurboQuantBitSize::Bits15,
                    TurboBitsJson::Bits2 => TurboQuantBitSize::Bits2,
                    TurboBitsJson::Bits4 => TurboQuantBitSize::Bits4,
                    TurboBitsJson::Bits8 => TurboQuantBitSize::Bits8,
                }
                .into()
            }),
            memory: memory(t.memory),
        }),
    };
    Ok(QuantizationConfig {
        quantization: Some(method),
    })
}

/// `CreateCollection` with the same settings as the REST body of [`CollectionParams::body`].
pub fn create_request(name: &str, p: &CollectionParams) -> Result<CreateCollection, GrpcError> {
    let distance = Distance::from_str_name(&p.distance).ok_or_else(|| GrpcError::Distance(p.distance.clone()))?;
    // `on_disk` is deprecated in favour of `memory`, but it is the field Qdrant 1.19 reads.
    #[allow(deprecated)]
    let params = VectorParams {
        size: p.dim as u64,
        distance: distance.into(),
        on_disk: p.on_disk.then_some(true),
        datatype: p.datatype.as_deref().map(datatype).transpose()?,
        ..Default::default()
    };
    let quantization = p.quantization.as_ref().map(quantization_from_json).transpose()?;
    let optimizers =
        (p.indexing_threshold_kb.is_some() || p.default_segment_number.is_some()).then(|| OptimizersConfigDiff {
            indexing_threshold: p.indexing_threshold_kb,
            default_segment_number: p.default_segment_number,
            ..Default::default()
        });
    Ok(CreateCollection {
        collection_name: name.to_string(),
        vectors_config: Some(VectorsConfig {
            config: Some(vectors_config::Config::Params(params)),
        }),
        hnsw_config: Some(HnswConfigDiff {
            m: Some(p.m as u64),
            ef_construct: Some(p.ef_construct as u64),
            ..Default::default()
        }),
        optimizers_config: optimizers,
        quantization_config: quantization,
        shard_number: Some(p.shards),
        replication_factor: Some(p.replication),
        ..Default::default()
    })
}

/// `QueryPoints` equal to the REST `points/query` body of [`crate::rest::query_body`].
pub fn query_request(collection: &str, vector: &[f32], limit: usize, params: &QueryParams) -> QueryPoints {
    QueryPoints {
        collection_name: collection.to_string(),
        query: Some(Query {
            variant: Some(query::Variant::Nearest(VectorInput::new_dense(vector.to_vec()))),
        }),
        limit: Some(limit as u64),
        params: (!params.is_empty()).then(|| SearchParams {
            hnsw_ef: params.hnsw_ef.map(|ef| ef as u64),
            quantization: params.quantization.map(|q| QuantizationSearchParams {
                ignore: q.ignore,
                rescore: q.rescore,
                oversampling: q.oversampling,
            }),
            ..Default::default()
        }),
        with_payload: Some(WithPayloadSelector {
            selector_options: Some(with_payload_selector::SelectorOptions::Enable(false)),
        }),
        ..Default::default()
    }
}

/// `UpsertPoints` of the points `first_id..` (as [`crate::rest::upsert_body`]); `wait` set at send.
pub fn upsert_request(collection: &str, first_id: u64, rows: &[f32], dim: usize, payload: bool) -> UpsertPoints {
    let points = rows
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| PointStruct {
            id: Some(PointId {
                point_id_options: Some(point_id::PointIdOptions::Num(first_id + i as u64)),
            }),
            vectors: Some(Vectors {
                vectors_options: Some(vectors::VectorsOptions::Vector(Vector::from(DenseVector {
                    data: v.to_vec(),
                }))),
            }),
            payload: if payload {
                let (i, group, text) = crate::client::point_payload(first_id + i as u64);
                [
                    ("i".to_string(), (i as i64).into()),
                    ("group".to_string(), group.into()),
                    ("text".to_string(), text.into()),
                ]
                .into_iter()
                .collect()
            } else {
                Default::default()
            },
        })
        .collect();
    UpsertPoints {
        collection_name: collection.to_string(),
        points,
        ..Default::default()
    }
}

/// The ids of a query answer, best first.
pub fn scored_ids(points: &[ScoredPoint]) -> Result<Vec<u64>, GrpcError> {
    points
        .iter()
        .map(|p| match p.id.as_ref().and_then(|id| id.point_id_options.as_ref()) {
            Some(point_id::PointIdOptions::Num(n)) => Ok(*n),
            Some(point_id::PointIdOptions::Uuid(u)) => Err(GrpcError::NonNumericId(u.clone())),
            None => Err(GrpcError::MissingId),
        })
        .collect()
}

/// The REST view of a gRPC `CollectionInfo`; the status in REST's lower-case spelling.
pub fn info_from_grpc(info: &qdrant_client::qdrant::CollectionInfo) -> CollectionInfo {
    let status = CollectionStatus::try_from(info.status)
        .ok()
        .filter(|s| *s != CollectionStatus::UnknownCollectionStatus)
        .map(|s| s.as_str_name().to_ascii_lowercase());
    CollectionInfo {
        status,
        points_count: info.points_count,
        indexed_vectors_count: info.indexed_vectors_count,
        segments_count: Some(info.segments_count),
    }
}

impl ServerClient for GrpcClient {
    type Query = QueryPoints;
    type Batch = UpsertPoints;

    fn endpoint(&self) -> &str {
        &self.url
    }

    fn encode_query(&self, collection: &str, vector: &[f32], limit: usize, params: &QueryParams) -> QueryPoints {
        query_request(collection, vector, limit, params)
    }

    fn encode_batch(&self, collection: &str, first_id: u64, rows: &[f32], dim: usize, payload: bool) -> UpsertPoints {
        upsert_request(collection, first_id, rows, dim, payload)
    }

    async fn query(&self, collection: &str, q: &QueryPoints) -> Result<Vec<u64>, ClientError> {
        let resp = self
            .points()
            .query(q.clone())
            .await
            .map_err(|s| self.status_err("Points/Query", collection, s))?;
        Ok(scored_ids(&resp.get_ref().result)?)
    }

    async fn upsert(&self, collection: &str, mut b: UpsertPoints, wait: bool) -> Result<(), ClientError> {
        b.wait = Some(wait);
        self.points()
            .upsert(b)
            .await
            .map_err(|s| self.status_err("Points/Upsert", collection, s))?;
        Ok(())
    }

    async fn delete_collection(&self, name: &str) -> Result<(), ClientError> {
        let req = DeleteCollection {
            collection_name: name.to_string(),
            timeout: None,
        };
        match self.collections().delete(req).await {
            // `false` or NotFound: there was nothing to delete.
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(self.status_err("Collections/Delete", name, s).into()),
        }
    }

    async fn create_collection(&self, name: &str, params: &CollectionParams) -> Result<(), ClientError> {
        let req = create_request(name, params)?;
        let resp = self
            .collections()
            .create(req)
            .await
            .map_err(|s| self.status_err("Collections/Create", name, s))?;
        if !resp.get_ref().result {
            return Err(GrpcError::Refused {
                call: "Collections/Create",
                url: self.url.clone(),
                collection: name.to_string(),
            }
            .into());
        }
        Ok(())
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo, ClientError> {
        let req = GetCollectionInfoRequest {
            collection_name: name.to_string(),
        };
        let resp = self
            .collections()
            .get(req)
            .await
            .map_err(|s| self.status_err("Collections/Get", name, s))?;
        Ok(resp.get_ref().result.as_ref().map(info_from_grpc).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_client::qdrant::{vector, vector_input};

    fn params() -> CollectionParams {
        CollectionParams {
            dim: 4,
            distance: "Cosine".into(),
            m: 16,
            ef_construct: 100,
            shards: 2,
            replication: 1,
            indexing_threshold_kb: None,
            default_segment_number: None,
            quantization: None,
            on_disk: false,
            datatype: None,
        }
    }

    fn ef(hnsw_ef: Option<usize>) -> QueryParams {
        QueryParams {
            hnsw_ef,
            quantization: None,
        }
    }

    #[test]
    fn grpc_url_follows_the_rest_host() {
        assert_eq!(default_grpc_url("http://127.0.0.1:6333"), "http://127.0.0.1:6334");
        assert_eq!(default_grpc_url("http://localhost:7000/"), "http://localhost:6334");
        assert_eq!(
            default_grpc_url("https://db.example:443/prefix"),
            "https://db.example:6334"
        );
        assert_eq!(default_grpc_url("http://[::1]:6333"), "http://[::1]:6334");
        assert_eq!(default_grpc_url("http://[::1]"), "http://[::1]:6334");
        assert_eq!(default_grpc_url("node-1"), "http://node-1:6334");
    }

    #[test]
    fn query_matches_the_rest_body() {
        let q = query_request("c", &[0.5, -1.0], 10, &ef(Some(64)));
        assert_eq!(q.collection_name, "c");
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.params.as_ref().and_then(|p| p.hnsw_ef), Some(64));
        let Some(query::Variant::Nearest(VectorInput {
            variant: Some(vector_input::Variant::Dense(d)),
        })) = q.query.and_then(|q| q.variant)
        else {
            panic!("not a dense nearest query");
        };
        assert_eq!(d.data, vec![0.5, -1.0]);
        assert_eq!(
            q.with_payload.and_then(|w| w.selector_options),
            Some(with_payload_selector::SelectorOptions::Enable(false))
        );
        assert!(query_request("c", &[1.0], 3, &ef(None)).params.is_none());
    }

    #[test]
    fn query_carries_quantization_params() {
        let p = QueryParams {
            hnsw_ef: None,
            quantization: Some(
                crate::client::QuantizationSearch {
                    ignore: Some(false),
                    ..Default::default()
                }
                .with_oversampling(2.0),
            ),
        };
        let sp = query_request("c", &[1.0], 3, &p).params.expect("params");
        assert_eq!(sp.hnsw_ef, None);
        assert_eq!(
            sp.quantization,
            Some(QuantizationSearchParams {
                ignore: Some(false),
                rescore: Some(true),
                oversampling: Some(2.0),
            })
        );
    }

    #[test]
    #[allow(deprecated)]
    fn quantization_json_to_grpc() {
        use quantization_config::Quantization as Q;
        let conv = |s: &str| {
            quantization_from_json(&serde_json::from_str(s).expect("json")).map(|q| q.quantization.expect("method"))
        };
        let Q::Scalar(s) =
            conv(r#"{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}"#).expect("scalar")
        else {
            panic!("not scalar");
        };
        assert_eq!(
            (s.r#type, s.quantile, s.always_ram, s.memory),
            (QuantizationType::Int8 as i32, Some(0.99), Some(true), None)
        );
        let Q::Binary(b) = conv(r#"{"binary": {"always_ram": true, "encoding": "one_bit"}}"#).expect("binary") else {
            panic!("not binary");
        };
        assert_eq!(
            (b.always_ram, b.encoding, b.query_encoding),
            (Some(true), Some(BinaryQuantizationEncoding::OneBit as i32), None)
        );
        let Q::Binary(b) =
            conv(r#"{"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar8bits"}}"#).expect("binary")
        else {
            panic!("not binary");
        };
        assert_eq!(b.encoding, Some(BinaryQuantizationEncoding::OneAndHalfBits as i32));
        assert_eq!(
            b.query_encoding.and_then(|e| e.variant),
            Some(binary_quantization_query_encoding::Variant::Setting(
                binary_quantization_query_encoding::Setting::Scalar8Bits as i32
            ))
        );
        let Q::Product(p) = conv(r#"{"product": {"compression": "x16"}}"#).expect("product") else {
            panic!("not product");
        };
        assert_eq!((p.compression, p.always_ram), (CompressionRatio::X16 as i32, None));
        let Q::Turboquant(t) = conv(r#"{"turbo": {"bits": "bits2", "memory": "pinned"}}"#).expect("turbo") else {
            panic!("not turbo");
        };
        assert_eq!(
            (t.bits, t.memory),
            (Some(TurboQuantBitSize::Bits2 as i32), Some(Memory::Pinned as i32))
        );
        let Q::Turboquant(t) = conv(r#"{"turbo": {"bits": "bits1_5"}}"#).expect("turbo") else {
            panic!("not turbo");
        };
        assert_eq!(t.bits, Some(TurboQuantBitSize::Bits15 as i32));
        for bad in [
            r#"{"scalar": {"type": "int4"}}"#,
            r#"{"scalar": {"type": "int8", "quantil": 0.9}}"#,
            r#"{"product": {}}"#,
            r#"{"lattice": {}}"#,
            r#"{"scalar": {"type": "int8"}, "binary": {}}"#,
        ] {
            assert!(
                matches!(conv(bad), Err(GrpcError::Quantization { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn upsert_numbers_points_from_first_id() {
        let u = upsert_request("c", 7, &[0.1, 1e-7, 3.0, -2.5], 2, false);
        assert_eq!(u.points.len(), 2);
        let ids: Vec<_> = u
            .points
            .iter()
            .map(|p| p.id.clone().and_then(|i| i.point_id_options))
            .collect();
        assert_eq!(
            ids,
            vec![
                Some(point_id::PointIdOptions::Num(7)),
                Some(point_id::PointIdOptions::Num(8))
            ]
        );
        let Some(vectors::VectorsOptions::Vector(Vector {
            vector: Some(vector::Vector::Dense(d)),
            ..
        })) = u.points[1].vectors.clone().and_then(|v| v.vectors_options)
        else {
            panic!("not a dense vector");
        };
        assert_eq!(d.data, vec![3.0, -2.5]);
        assert_eq!(u.wait, None);
    }

    #[test]
    fn create_carries_the_rest_settings() {
        let mut p = params();
        let c = create_request("c", &p).expect("request");
        let Some(vectors_config::Config::Params(v)) = c.vectors_config.and_then(|v| v.config) else {
            panic!("no vector params");
        };
        assert_eq!((v.size, v.distance), (4, Distance::Cosine as i32));
        assert_eq!(c.hnsw_config.and_then(|h| h.m), Some(16));
        assert_eq!((c.shard_number, c.replication_factor), (Some(2), Some(1)));
        assert!(c.optimizers_config.is_none());
        p.indexing_threshold_kb = Some(1);
        p.distance = "Euclid".into();
        let c = create_request("c", &p).expect("request");
        assert_eq!(c.optimizers_config.and_then(|o| o.indexing_threshold), Some(1));
        assert!(c.quantization_config.is_none());
        p.quantization = Some(serde_json::json!({"binary": {"always_ram": true}}));
        p.on_disk = true;
        let c = create_request("c", &p).expect("request");
        assert!(matches!(
            c.quantization_config.and_then(|q| q.quantization),
            Some(quantization_config::Quantization::Binary(_))
        ));
        let Some(vectors_config::Config::Params(v)) = c.vectors_config.and_then(|v| v.config) else {
            panic!("no vector params");
        };
        #[allow(deprecated)]
        let on_disk = v.on_disk;
        assert_eq!(on_disk, Some(true));
        p.quantization = None;
        p.on_disk = false;
        p.distance = "L7".into();
        assert!(matches!(create_request("c", &p), Err(GrpcError::Distance(_))));
    }

    #[test]
    fn reads_ids_and_info() {
        let point = |id| ScoredPoint {
            id: Some(PointId { point_id_options: id }),
            ..Default::default()
        };
        let ok = [
            point(Some(point_id::PointIdOptions::Num(3))),
            point(Some(point_id::PointIdOptions::Num(1))),
        ];
        assert_eq!(scored_ids(&ok).expect("ids"), vec![3, 1]);
        let uuid = [point(Some(point_id::PointIdOptions::Uuid("a-b".into())))];
        assert!(matches!(scored_ids(&uuid), Err(GrpcError::NonNumericId(_))));
        assert!(matches!(scored_ids(&[point(None)]), Err(GrpcError::MissingId)));

        let info = qdrant_client::qdrant::CollectionInfo {
            status: CollectionStatus::Green as i32,
            points_count: Some(12),
            indexed_vectors_count: Some(10),
            segments_count: 2,
            ..Default::default()
        };
        let got = info_from_grpc(&info);
        assert_eq!(got.status.as_deref(), Some("green"));
        assert_eq!(
            (got.points_count, got.indexed_vectors_count, got.segments_count),
            (Some(12), Some(10), Some(2))
        );
        let unknown = qdrant_client::qdrant::CollectionInfo::default();
        assert_eq!(info_from_grpc(&unknown).status, None);
    }
}
