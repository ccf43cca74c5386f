//! The subcommands: wiring between the CLI, the dataset, the load and the reports.

use crate::baseline::runner::{self, MemoryStats, SweepConfig};
use crate::baseline::{BuildParams, IndexSpec};
use crate::cli::{BaselineArgs, Cli, Command, DataArgs, HybridArgs, SearchArgs, ServerArgs, UploadArgs};
use crate::client::{QuantizationSearch, QueryParams, ServerClient, Transport};
use crate::dataset::{self, Dataset, DatasetSpec};
use crate::gen::LatentMixtureSpec;
use crate::grpc::{self, GrpcClient};
use crate::hybrid::{self, Shape, SparseSpec};
use crate::report::{opt, table, unix_time, Reporter};
use crate::rest::{CollectionParams, QdrantClient};
use crate::search::{self, LoadShape, RunResult, Workload};
use crate::upload::{self, UploadConfig};
use crate::{procstat, vecio::Matrix};
use anyhow::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gen(a) => gen(&a.data),
        Command::Upload(a) => upload(&a),
        Command::Search(a) => search(&a),
        Command::Baseline(a) => baseline(&a),
        Command::Hybrid(a) => hybrid(&a),
    }
}

fn spec_of(d: &DataArgs) -> DatasetSpec {
    let mut g = LatentMixtureSpec::new(d.dim, d.latent, d.clusters, d.noise, d.seed);
    g.normalize = d.cosine;
    DatasetSpec {
        generator: g,
        n: d.n,
        nq: d.nq,
        gt_k: d.gt_k,
    }
}

fn load(d: &DataArgs) -> anyhow::Result<Dataset> {
    let dir = match &d.data {
        Some(dir) => dir.clone(),
        None => dataset::ensure(&spec_of(d), &d.cache_dir, d.gen_threads)?.0,
    };
    let ds = dataset::load(&dir).with_context(|| format!("load dataset {}", dir.display()))?;
    eprintln!(
        "qbench: dataset {} ({} x {}, {} queries)",
        ds.meta.name, ds.base.rows, ds.base.cols, ds.queries.rows
    );
    Ok(ds)
}

fn gen(d: &DataArgs) -> anyhow::Result<()> {
    let (dir, fresh) = dataset::ensure(&spec_of(d), &d.cache_dir, d.gen_threads)?;
    let ds = dataset::load(&dir)?;
    println!("{}", dir.display());
    Reporter::default().emit(&json!({
        "kind": "gen", "dir": dir, "fresh": fresh, "meta": ds.meta,
    }))
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn rest_client(s: &ServerArgs, pool: usize) -> anyhow::Result<QdrantClient> {
    Ok(QdrantClient::new(&s.url, pool, Duration::from_secs(s.timeout_s))?)
}

/// The gRPC URL: `--grpc-url`, else the host of `--url` on port 6334.
fn grpc_url(s: &ServerArgs) -> String {
    s.grpc_url.clone().unwrap_or_else(|| grpc::default_grpc_url(&s.url))
}

fn grpc_client(rt: &tokio::runtime::Runtime, s: &ServerArgs) -> anyhow::Result<GrpcClient> {
    let url = grpc_url(s);
    eprintln!("qbench: gRPC {url} ({} channel(s))", s.grpc_channels.max(1));
    Ok(rt.block_on(GrpcClient::connect(
        &url,
        s.grpc_channels,
        Duration::from_secs(s.timeout_s),
    ))?)
}

/// `url` is the endpoint actually driven (the gRPC one for `--transport grpc`).
fn context(s: &ServerArgs, ds: &Dataset) -> Value {
    let url = match s.transport {
        Transport::Rest => s.url.clone(),
        Transport::Grpc => grpc_url(s),
    };
    json!({
        "label": s.label, "url": url, "transport": s.transport.as_str(), "collection": s.collection,
        "dataset": ds.meta.name, "n": ds.base.rows, "dim": ds.base.cols, "timestamp": unix_time(),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn distance_name(ds: &Dataset) -> &'static str {
    if ds.meta.distance == "cosine" {
        "Cosine"
    } else {
        "Euclid"
    }
}

/// `--quantization` of `qbench upload`: a JSON object (Qdrant's `quantization_config`).
fn quantization_config(arg: Option<&str>) -> anyhow::Result<Option<Value>> {
    let Some(s) = arg else { return Ok(None) };
    let v: Value = serde_json::from_str(s).with_context(|| format!("--quantization {s}: not JSON"))?;
    anyhow::ensure!(
        v.is_object(),
        "--quantization {s}: expected a JSON object such as {{\"scalar\": {{\"type\": \"int8\"}}}}"
    );
    Ok(Some(v))
}

/// A short name of a `quantization_config` for tables: its method (`scalar`, `binary`, ...).
fn quantization_name(q: Option<&Value>) -> String {
    q.and_then(Value::as_object)
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_else(|| "-".into())
}

fn upload(a: &UploadArgs) -> anyhow::Result<()> {
    let ds = load(&a.data)?;
    let quantization = quantization_config(a.quantization.as_deref())?;
    let params = CollectionParams {
        dim: ds.base.cols,
        distance: distance_name(&ds).into(),
        m: a.m,
        ef_construct: a.ef_construct,
        shards: a.shards,
        replication: a.replication,
        indexing_threshold_kb: a.indexing_threshold_kb,
        default_segment_number: a.default_segment_number,
        quantization: quantization.clone(),
        on_disk: a.on_disk,
        datatype: a.datatype.clone(),
    };
    let cfg = UploadConfig {
        collection: a.server.collection.clone(),
        params: params.clone(),
        recreate: !a.no_recreate,
        batch: a.batch,
        concurrency: a.concurrency,
        wait: a.wait,
        payload: a.payload,
        index_timeout: Duration::from_secs(a.index_timeout_s),
        poll: Duration::from_millis(a.poll_ms),
        server_pids: a.server.server_pids.clone(),
    };
    let rt = runtime(a.server.client_threads)?;
    let base = Arc::new(ds.base.clone());
    let r = match a.server.transport {
        Transport::Rest => rt.block_on(upload::run(&rest_client(&a.server, a.concurrency)?, base, &cfg))?,
        Transport::Grpc => rt.block_on(upload::run(&grpc_client(&rt, &a.server)?, base, &cfg))?,
    };
    let l = &r.batch_latency;
    println!(
        "{}",
        table(
            &[
                "points",
                "quant",
                "on_disk",
                "batch",
                "conc",
                "wait",
                "upload s",
                "pts/s",
                "p50 ms",
                "p99 ms",
                "indexed s",
                "green s",
                "srv CPU s",
                "srv RSS MiB",
                "peak MiB"
            ],
            &[vec![
                r.points.to_string(),
                quantization_name(quantization.as_ref()),
                a.on_disk.to_string(),
                a.batch.to_string(),
                a.concurrency.to_string(),
                a.wait.to_string(),
                format!("{:.2}", r.upload_s),
                format!("{:.0}", r.points_per_s),
                format!("{:.2}", l.p50_ms),
                format!("{:.2}", l.p99_ms),
                opt(r.to_indexed_s, 2),
                opt(r.to_green_s, 2),
                opt(r.server_total.map(|s| s.cpu_s), 1),
                opt(r.server_total.map(|s| s.rss_bytes as f64 / 1048576.0), 0),
                opt(r.server_total.map(|s| s.hwm_bytes as f64 / 1048576.0), 0),
            ]],
        )
    );
    let record = merge(
        json!({"kind": "upload"}),
        merge(
            context(&a.server, &ds),
            merge(
                json!({
                    "m": a.m, "ef_construct": a.ef_construct, "shards": a.shards,
                    "replication": a.replication, "batch": a.batch, "concurrency": a.concurrency,
                    "wait": a.wait, "payload": a.payload, "quantization": quantization, "on_disk": a.on_disk,
                    "datatype": a.datatype,
                }),
                serde_json::to_value(&r)?,
            ),
        ),
    );
    Reporter {
        json_out: a.server.json_out.clone(),
    }
    .emit(&record)?;
    if r.to_indexed_s.is_none() {
        anyhow::bail!("collection was not fully indexed within {} s", a.index_timeout_s);
    }
    Ok(())
}

/// Columns of `search_row`.
const SEARCH_COLUMNS: &[&str] = &[
    "ef",
    "os",
    "load",
    "recall@k",
    "QPS",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "p99.9 ms",
    "errors",
    "q/srv-CPU-s",
    "srv RSS MiB",
    "peak MiB",
];

/// One table row of a run at `ef` (0 = server default) and oversampling `os` (None: not swept).
fn search_row(ef: usize, os: Option<f64>, r: &RunResult) -> Vec<String> {
    let load = match r.shape {
        LoadShape::Closed { concurrency } => format!("c={concurrency}"),
        LoadShape::Open { rate, .. } => format!("r={rate:.0}/s"),
    };
    vec![
        if ef == 0 { "default".into() } else { ef.to_string() },
        os.map_or_else(|| "-".into(), |o| format!("{o}")),
        load,
        opt(r.recall, 4),
        format!("{:.0}", r.qps),
        format!("{:.2}", r.latency.p50_ms),
        format!("{:.2}", r.latency.p95_ms),
        format!("{:.2}", r.latency.p99_ms),
        format!("{:.2}", r.latency.p999_ms),
        r.errors.to_string(),
        opt(r.q_per_server_cpu_s, 0),
        opt(r.server.map(|s| s.rss_bytes as f64 / 1048576.0), 0),
        opt(r.server.map(|s| s.hwm_bytes as f64 / 1048576.0), 0),
    ]
}

fn search(a: &SearchArgs) -> anyhow::Result<()> {
    let ds = load(&a.data)?;
    anyhow::ensure!(
        a.k <= ds.gt.cols,
        "k={} exceeds the ground truth depth {}",
        a.k,
        ds.gt.cols
    );
    let max_conc = a.concurrency.iter().copied().max().unwrap_or(1).max(1);
    let rt = runtime(a.server.client_threads)?;
    match a.server.transport {
        Transport::Rest => {
            let c = rest_client(&a.server, max_conc.max(a.max_inflight.min(64)))?;
            search_with(a, &ds, &rt, &c)
        }
        Transport::Grpc => search_with(a, &ds, &rt, &grpc_client(&rt, &a.server)?),
    }
}

/// The ef sweep of `search` through one client.
fn search_with<C: ServerClient>(
    a: &SearchArgs,
    ds: &Dataset,
    rt: &tokio::runtime::Runtime,
    c: &C,
) -> anyhow::Result<()> {
    let max_conc = a.concurrency.iter().copied().max().unwrap_or(1).max(1);
    let info = rt.block_on(c.collection_info(&a.server.collection))?;
    if info.points_count != Some(ds.base.rows as u64) {
        eprintln!(
            "qbench search: warning: collection has {:?} points, dataset {} (recall will be off)",
            info.points_count, ds.base.rows
        );
    }
    let gt: Arc<Matrix<u32>> = Arc::new(ds.gt.clone());
    let reporter = Reporter {
        json_out: a.server.json_out.clone(),
    };
    let ctx = context(&a.server, ds);
    let base_quant = a
        .quantization
        .as_deref()
        .map(|s| QuantizationSearch::parse(s).with_context(|| format!("--quantization {s}")))
        .transpose()?;
    // The oversampling sweep, inside each ef; `None`: the --quantization params as given.
    let sweep: Vec<Option<f64>> = if a.oversampling.is_empty() {
        vec![None]
    } else {
        a.oversampling.iter().map(|&o| Some(o)).collect()
    };
    let mut rows = Vec::new();
    for (&ef, &os) in a.ef.iter().flat_map(|ef| sweep.iter().map(move |os| (ef, os))) {
        let quantization = match os {
            Some(o) => Some(base_quant.unwrap_or_default().with_oversampling(o)),
            None => base_quant,
        };
        let params = QueryParams {
            hnsw_ef: (ef > 0).then_some(ef),
            quantization,
        };
        let w = Workload::new(c, &a.server.collection, &ds.queries, gt.clone(), a.k, &params);
        if a.warmup > 0 {
            rt.block_on(search::closed_loop(c, &w, max_conc, a.warmup, 0, &[]))?;
        }
        let mut runs = Vec::new();
        for &conc in &a.concurrency {
            runs.push(rt.block_on(search::closed_loop(c, &w, conc, a.requests, 0, &a.server.server_pids))?);
        }
        for &rate in &a.rate {
            runs.push(rt.block_on(search::open_loop(
                c,
                &w,
                rate,
                a.max_inflight,
                a.requests,
                0,
                &a.server.server_pids,
            ))?);
        }
        for r in runs {
            eprintln!("{}", search_row(ef, os, &r).join("  "));
            rows.push(search_row(ef, os, &r));
            let record = merge(
                merge(
                    json!({
                        "kind": "search", "ef": ef, "k": a.k, "quantization": quantization, "oversampling": os,
                    }),
                    ctx.clone(),
                ),
                serde_json::to_value(&r)?,
            );
            reporter.emit(&record)?;
            if r.ok == 0 {
                anyhow::bail!("every request failed: {}", r.first_error.unwrap_or_default());
            }
        }
    }
    println!("{}", table(SEARCH_COLUMNS, &rows));
    Ok(())
}

fn baseline(a: &BaselineArgs) -> anyhow::Result<()> {
    let ds = load(&a.data)?;
    anyhow::ensure!(
        a.k <= ds.gt.cols,
        "k={} exceeds the ground truth depth {}",
        a.k,
        ds.gt.cols
    );
    let specs: Vec<IndexSpec> = a.indexes.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    let base = Arc::new(ds.base.clone());
    let params = BuildParams {
        dim: ds.base.cols,
        capacity: ds.base.rows,
        m: a.m,
        ef_construct: a.ef_construct,
        threads: a.threads,
    };
    let cfg = SweepConfig {
        efs: a.ef.clone(),
        k: a.k,
        threads: a.threads,
        passes: a.passes,
    };
    let reporter = Reporter {
        json_out: a.json_out.clone(),
    };
    // Build every index first, then sweep them all with interleaved passes.
    let mut indexes = Vec::new();
    let mut builds = Vec::new();
    for spec in &specs {
        let rss0 = procstat::sample("self")?.rss_bytes;
        let index = spec.make(&params, base.clone())?;
        let build = runner::build(index.as_ref(), &base, a.threads)?;
        let rss_delta = procstat::sample("self")?.rss_bytes as i64 - rss0 as i64;
        let n = base.rows as f64;
        let index_bytes = index.memory_bytes();
        let memory = MemoryStats {
            index_bytes,
            rss_delta_bytes: rss_delta,
            index_bytes_per_vector: index_bytes.map(|b| b as f64 / n),
            rss_bytes_per_vector: rss_delta as f64 / n,
        };
        eprintln!(
            "qbench baseline: {} built in {:.1}s ({:.0} adds/s, {:.0} adds/CPU-s)",
            index.name(),
            build.wall_s,
            build.adds_per_s,
            build.adds_per_cpu_s
        );
        indexes.push(index);
        builds.push((build, memory));
    }
    let sweeps = runner::sweep(&mut indexes, &ds.queries, &ds.gt, &cfg)?;
    let mut rows = Vec::new();
    for (((spec, index), (build, memory)), sweep) in specs.iter().zip(&indexes).zip(builds).zip(sweeps) {
        for p in &sweep {
            rows.push(vec![
                index.name(),
                p.ef.to_string(),
                format!("{:.4}", p.recall),
                format!("{:.0}", p.q_per_cpu_s),
                format!("{:.0}", p.q_per_cpu_s_best),
                format!("{:.0}", p.qps_1t),
                opt(p.qps_mt, 0),
                format!("{:.3}", p.latency_1t.p50_ms),
                format!("{:.3}", p.latency_1t.p99_ms),
                format!("{:.0}", build.adds_per_cpu_s),
                opt(memory.index_bytes_per_vector, 0),
            ]);
        }
        let (m, efc) = spec.effective(&params);
        reporter.emit(&json!({
            "kind": "baseline", "engine": index.name(), "spec": spec.raw, "dataset": ds.meta.name,
            "n": ds.base.rows, "nq": ds.queries.rows, "dim": ds.base.cols, "m": m, "ef_construct": efc,
            "threads": a.threads, "k": a.k, "passes": a.passes, "timestamp": unix_time(),
            "build": build, "memory": memory, "sweep": sweep,
        }))?;
    }
    println!(
        "{}",
        table(
            &[
                "index",
                "ef",
                "recall@k",
                "q/CPU-s",
                "best",
                "QPS 1t",
                "QPS mt",
                "p50 ms",
                "p99 ms",
                "adds/CPU-s",
                "B/vec"
            ],
            &rows
        )
    );
    Ok(())
}

/// Creates the hybrid collection and uploads dense + sparse points, then waits until every
/// point is counted and the collection is green (indexing done).
async fn hybrid_upload(a: &HybridArgs, ds: &Dataset, spec: &SparseSpec, c: &QdrantClient) -> anyhow::Result<f64> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let name = &a.server.collection;
    c.delete_collection(name).await?;
    let body = hybrid::collection_body(ds.base.cols, distance_name(ds), a.m, a.ef_construct);
    c.create_collection_with(name, &body)
        .await
        .context("create collection")?;
    let t0 = std::time::Instant::now();
    let dim = ds.base.cols;
    let batches: Vec<usize> = (0..ds.base.rows).step_by(a.batch.max(1)).collect();
    stream::iter(batches)
        .map(|lo| async move {
            let hi = (lo + a.batch).min(ds.base.rows);
            let rows = &ds.base.data[lo * dim..hi * dim];
            let body = hybrid::upsert_body(lo, rows, dim, spec);
            c.upsert(name, bytes::Bytes::from(body.to_string()), true)
                .await
                .with_context(|| format!("points {lo}..{hi}"))
        })
        .buffer_unordered(a.upload_concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let deadline = t0 + Duration::from_secs(a.index_timeout_s);
    loop {
        let info = c.collection_info(name).await?;
        if info.points_count == Some(ds.base.rows as u64) && info.status.as_deref() == Some("green") {
            return Ok(t0.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "collection not indexed within {} s: {info:?}",
            a.index_timeout_s
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `qbench hybrid`: dense, sparse and the two fused with RRF, per concurrency, and the hybrid
/// query's latency relative to the slower of its prefetches run alone.
fn hybrid(a: &HybridArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.server.transport == Transport::Rest,
        "qbench hybrid speaks REST only (--transport rest)"
    );
    let ds = load(&a.data)?;
    anyhow::ensure!(
        a.prefetch_limit <= ds.gt.cols && a.k <= a.prefetch_limit,
        "need k ({}) <= prefetch limit ({}) <= ground truth depth ({})",
        a.k,
        a.prefetch_limit,
        ds.gt.cols
    );
    let spec = SparseSpec {
        vocab: a.vocab,
        doc_terms: a.doc_terms,
        query_terms: a.query_terms,
        seed: a.data.seed,
    };
    let max_conc = a.concurrency.iter().copied().max().unwrap_or(1).max(1);
    let rt = runtime(a.server.client_threads)?;
    let c = rest_client(&a.server, max_conc.max(a.upload_concurrency))?;
    let reporter = Reporter {
        json_out: a.server.json_out.clone(),
    };
    let ctx = merge(
        context(&a.server, &ds),
        json!({"sparse": spec, "prefetch_limit": a.prefetch_limit, "k": a.k, "ef": a.ef}),
    );
    if !a.no_upload {
        let s = rt.block_on(hybrid_upload(a, &ds, &spec, &c))?;
        eprintln!(
            "qbench hybrid: uploaded and indexed {} points in {s:.1} s",
            ds.base.rows
        );
        reporter.emit(&merge(json!({"kind": "hybrid_upload", "indexed_s": s}), ctx.clone()))?;
    }

    // Exact ground truth of each shape.
    let nq = ds.queries.rows;
    let sparse_queries: Vec<_> = (0..nq).map(|i| spec.query(i)).collect();
    let docs: Vec<_> = (0..ds.base.rows).map(|i| spec.doc(i)).collect();
    let sparse_gt = hybrid::sparse_ground_truth(&docs, &sparse_queries, a.prefetch_limit);
    drop(docs);
    let dense_gt: Vec<Vec<u32>> = (0..nq).map(|i| ds.gt.row(i)[..a.prefetch_limit].to_vec()).collect();
    let fused_gt: Vec<Vec<u32>> = (0..nq)
        .map(|i| hybrid::rrf(&[&dense_gt[i], &sparse_gt[i]], a.k))
        .collect();
    let truth = |shape: Shape| {
        Arc::new(match shape {
            Shape::Dense => hybrid::to_matrix(&dense_gt, a.k),
            Shape::Sparse => hybrid::to_matrix(&sparse_gt, a.k),
            Shape::Hybrid => hybrid::to_matrix(&fused_gt, a.k),
        })
    };
    let ef = (a.ef > 0).then_some(a.ef);
    let workloads: Vec<(Shape, Workload<QdrantClient>)> = a
        .shapes
        .iter()
        .map(|&shape| {
            let bodies = (0..nq)
                .map(|i| {
                    let body =
                        hybrid::query_body(shape, ds.queries.row(i), &sparse_queries[i], a.prefetch_limit, a.k, ef);
                    bytes::Bytes::from(body.to_string())
                })
                .collect();
            let w = Workload {
                collection: a.server.collection.clone(),
                bodies: Arc::new(bodies),
                gt: truth(shape),
                k: a.k,
            };
            (shape, w)
        })
        .collect();

    let mut rows = Vec::new();
    for &conc in &a.concurrency {
        let mut by_shape = Vec::new();
        for (shape, w) in &workloads {
            if a.warmup > 0 {
                rt.block_on(search::closed_loop(&c, w, conc, a.warmup, 0, &[]))?;
            }
            let r = rt.block_on(search::closed_loop(&c, w, conc, a.requests, 0, &a.server.server_pids))?;
            if r.ok == 0 {
                anyhow::bail!(
                    "every {} request failed: {}",
                    shape.name(),
                    r.first_error.unwrap_or_default()
                );
            }
            let mut row = search_row(a.ef, None, &r);
            row.insert(0, shape.name().to_string());
            eprintln!("{}", row.join("  "));
            rows.push(row);
            reporter.emit(&merge(
                merge(json!({"kind": "hybrid", "shape": shape}), ctx.clone()),
                serde_json::to_value(&r)?,
            ))?;
            by_shape.push((*shape, r));
        }
        let get = |s: Shape| by_shape.iter().find(|(x, _)| *x == s).map(|(_, r)| r);
        if let (Some(d), Some(sp), Some(h)) = (get(Shape::Dense), get(Shape::Sparse), get(Shape::Hybrid)) {
            let p50 = h.latency.p50_ms / d.latency.p50_ms.max(sp.latency.p50_ms);
            let p99 = h.latency.p99_ms / d.latency.p99_ms.max(sp.latency.p99_ms);
            eprintln!("qbench hybrid: c={conc}: hybrid / slower prefetch alone: p50 {p50:.2}x, p99 {p99:.2}x");
            reporter.emit(&merge(
                json!({"kind": "hybrid_ratio", "concurrency": conc, "p50_ratio": p50, "p99_ratio": p99, "hybrid_qps": h.qps}),
                ctx.clone(),
            ))?;
        }
    }
    println!("{}", table(&[&["shape"], SEARCH_COLUMNS].concat(), &rows));
    Ok(())
}
