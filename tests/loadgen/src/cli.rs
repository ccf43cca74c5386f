//! Command-line interface (clap).

use crate::client::Transport;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "qbench",
    version,
    about = "Datasets, Qdrant REST/gRPC load and in-process ANN baselines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate (or reuse) a latent-mixture dataset with exact ground truth; prints its directory.
    Gen(GenArgs),
    /// Create a collection, upload the base set, time until fully indexed.
    Upload(UploadArgs),
    /// Closed-loop and open-loop search over an hnsw_ef sweep, with recall.
    Search(SearchArgs),
    /// The same data through in-process indexes (usearch variants, exact scan).
    Baseline(BaselineArgs),
    /// Hybrid search: a dense and a sparse prefetch fused with RRF, beside each prefetch alone
    /// (REST). Uploads the dataset with generated sparse vectors first unless --no-upload.
    Hybrid(HybridArgs),
}

/// Which dataset: generated from these parameters into the cache, or an existing directory.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Use this dataset directory (written by `qbench gen`) instead of the parameters below.
    #[arg(long, env = "QBENCH_DATA")]
    pub data: Option<PathBuf>,
    /// Cache directory for generated datasets.
    #[arg(long, env = "QBENCH_CACHE", default_value = ".cache/qbench")]
    pub cache_dir: PathBuf,
    /// Base vectors (10k .. 1M).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    pub nq: usize,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    #[arg(long, default_value_t = 48)]
    pub latent: usize,
    #[arg(long, default_value_t = 1024)]
    pub clusters: usize,
    #[arg(long, default_value_t = 0.1)]
    pub noise: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Ground-truth depth.
    #[arg(long, default_value_t = 100)]
    pub gt_k: usize,
    /// L2-normalised vectors (for a Cosine collection).
    #[arg(long)]
    pub cosine: bool,
    /// Threads for generation and ground truth.
    #[arg(long, default_value_t = 2)]
    pub gen_threads: usize,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the Qdrant-compatible server's REST API.
    #[arg(long, env = "QDRANT_URL", default_value = "http://127.0.0.1:6333")]
    pub url: String,
    /// Protocol of every call to the server (create, upload, index wait, search): `rest` talks
    /// to --url, `grpc` to --grpc-url. The workload is the same either way.
    #[arg(long, value_enum, default_value_t = Transport::Rest)]
    pub transport: Transport,
    /// gRPC endpoint for `--transport grpc` [default: the host of --url, port 6334].
    #[arg(long, env = "QDRANT_GRPC_URL")]
    pub grpc_url: Option<String>,
    /// `--transport grpc`: HTTP/2 connections, shared round-robin by all workers.
    #[arg(long, default_value_t = 1)]
    pub grpc_channels: usize,
    #[arg(long, default_value = "bench")]
    pub collection: String,
    /// Server process id(s) for CPU seconds and RSS from /proc (repeat for a cluster).
    #[arg(long = "server-pid")]
    pub server_pids: Vec<u32>,
    /// Name of the engine under test, copied into the JSON lines.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Append the JSON lines to this file too.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Client runtime threads.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    #[arg(long, default_value_t = 100)]
    pub ef_construct: usize,
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    #[arg(long, default_value_t = 1)]
    pub replication: u32,
    /// Qdrant `optimizers_config.indexing_threshold` (KB); unset = server default.
    #[arg(long)]
    pub indexing_threshold_kb: Option<u64>,
    /// Qdrant `optimizers_config.default_segment_number`; unset = server default.
    #[arg(long)]
    pub default_segment_number: Option<u64>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// `?wait=` of each upsert.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// Give every point a small payload (an integer, a keyword, a short text).
    #[arg(long)]
    pub payload: bool,
    /// Qdrant `quantization_config` of the collection, a JSON object sent as given over REST
    /// (e.g. `{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}`,
    /// `{"binary": {"always_ram": true, "encoding": "one_bit"}}`, `{"product": {"compression": "x16"}}`,
    /// `{"turbo": {"bits": "bits2"}}`) and converted to the same `QuantizationConfig` over gRPC.
    #[arg(long, value_name = "JSON")]
    pub quantization: Option<String>,
    /// Keep the original vectors on disk (`vectors.on_disk: true`).
    #[arg(long)]
    pub on_disk: bool,
    /// The element type vectors are stored in (`vectors.datatype`): float32, float16 or uint8
    /// (uint8 wants a dataset of whole numbers 0..=255).
    #[arg(long, value_name = "TYPE")]
    pub datatype: Option<String>,
    /// Upload into the existing collection instead of deleting and creating it.
    #[arg(long)]
    pub no_recreate: bool,
    /// Give up waiting for `indexed_vectors_count` after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub index_timeout_s: u64,
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// hnsw_ef values to sweep (0 = leave `hnsw_ef` out: server default).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// `params.quantization` of every query, a JSON object
    /// (e.g. `{"ignore": false, "rescore": true, "oversampling": 2.0}`).
    #[arg(long, value_name = "JSON")]
    pub quantization: Option<String>,
    /// Oversampling values to sweep (inside each ef): each sets `oversampling` and
    /// `rescore: true` in `params.quantization` (on top of --quantization). Empty = no sweep.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub oversampling: Vec<f64>,
    /// Closed-loop concurrencies (empty to skip).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub concurrency: Vec<usize>,
    /// Open-loop rates in requests/s (empty = none).
    #[arg(long, value_delimiter = ',')]
    pub rate: Vec<f64>,
    /// Open loop: requests sent at once at most (the rest wait, timed from their schedule).
    #[arg(long, default_value_t = 256)]
    pub max_inflight: usize,
    /// Requests per measured run.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Unmeasured requests before each ef.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Results per query (recall@k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Indexes to run: `usearch`, `usearch:quant=f16:rescore=2`, `usearch:m=24:efc=200`, `flat`.
    #[arg(long = "index", default_value = "usearch")]
    pub indexes: Vec<String>,
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    #[arg(long, default_value_t = 100)]
    pub ef_construct: usize,
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef: Vec<usize>,
    /// Threads for the build and for the multi-thread search pass.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed passes over the query set per ef.
    #[arg(long, default_value_t = 2)]
    pub passes: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HybridArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Query the existing collection (uploaded by an earlier run) instead of recreating it.
    #[arg(long)]
    pub no_upload: bool,
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    #[arg(long, default_value_t = 100)]
    pub ef_construct: usize,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 2)]
    pub upload_concurrency: usize,
    /// Give up waiting for the collection to be indexed after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub index_timeout_s: u64,
    /// Sparse vocabulary size.
    #[arg(long, default_value_t = 30_000)]
    pub vocab: u32,
    /// Term draws per document (duplicates merge, so slightly fewer non-zeros).
    #[arg(long, default_value_t = 32)]
    pub doc_terms: usize,
    /// Term draws per query.
    #[arg(long, default_value_t = 8)]
    pub query_terms: usize,
    /// `limit` of each prefetch (and of each prefetch run alone).
    #[arg(long, default_value_t = 50)]
    pub prefetch_limit: usize,
    /// `limit` of the fused result (recall@k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// hnsw_ef of the dense prefetch (0 = server default).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Closed-loop concurrencies.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub concurrency: Vec<usize>,
    /// Query shapes to run (the ratio needs all three).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dense,sparse,hybrid")]
    pub shapes: Vec<crate::hybrid::Shape>,
    /// Requests per measured run.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Unmeasured requests before each shape.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
}
