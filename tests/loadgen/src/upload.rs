//! `qbench upload`: create the collection, upload in batches from `concurrency` workers,
//! then poll until every vector is indexed.

use crate::client::ServerClient;
use crate::procstat::{self, ServerUsage};
use crate::rest::{CollectionInfo, CollectionParams};
use crate::stats::{LatencyHist, LatencySummary};
use crate::vecio::Matrix;
use anyhow::{bail, Context};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After the index is complete, how long to keep waiting for status "green".
const GREEN_GRACE_S: f64 = 30.0;

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub collection: String,
    pub params: CollectionParams,
    /// Delete and create the collection first (otherwise it must exist).
    pub recreate: bool,
    pub batch: usize,
    pub concurrency: usize,
    pub wait: bool,
    /// Give every point a small payload (`client::point_payload`).
    pub payload: bool,
    pub index_timeout: Duration,
    pub poll: Duration,
    pub server_pids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub points: usize,
    pub batches: usize,
    pub upload_s: f64,
    /// Acknowledged points per second over the whole upload.
    pub points_per_s: f64,
    pub batch_latency: LatencySummary,
    /// Seconds from the first request until `indexed_vectors_count >= points` (None: timed out).
    pub to_indexed_s: Option<f64>,
    /// Seconds from the first request until status "green" with all points counted.
    pub to_green_s: Option<f64>,
    pub final_info: CollectionInfo,
    /// Server CPU and memory during the upload alone, and until indexed.
    pub server_upload: Option<ServerUsage>,
    pub server_total: Option<ServerUsage>,
    pub client_cpu_s: f64,
}

pub async fn run<C: ServerClient>(
    client: &C,
    base: Arc<Matrix<f32>>,
    cfg: &UploadConfig,
) -> anyhow::Result<UploadReport> {
    if cfg.batch == 0 || cfg.concurrency == 0 {
        bail!("batch and concurrency must be > 0");
    }
    if cfg.recreate {
        client.delete_collection(&cfg.collection).await?;
        client
            .create_collection(&cfg.collection, &cfg.params)
            .await
            .context("create collection")?;
    }
    let n = base.rows;
    let batches = n.div_ceil(cfg.batch);
    let next = Arc::new(AtomicUsize::new(0));
    let server0 = procstat::sample_all(&cfg.server_pids)?;
    let client0 = procstat::process_cpu_seconds();
    let t0 = Instant::now();

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..cfg.concurrency {
        let (client, base, next, cfg) = (client.clone(), base.clone(), next.clone(), cfg.clone());
        workers.spawn(async move {
            let mut hist = LatencyHist::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, anyhow::Error>(hist);
                }
                let lo = b * cfg.batch;
                let hi = (lo + cfg.batch).min(base.rows);
                let rows = &base.data[lo * base.cols..hi * base.cols];
                let body = client.encode_batch(&cfg.collection, lo as u64, rows, base.cols, cfg.payload);
                let t = Instant::now();
                client
                    .upsert(&cfg.collection, body, cfg.wait)
                    .await
                    .with_context(|| format!("batch {b} (points {lo}..{hi})"))?;
                hist.record(t.elapsed());
            }
        });
    }
    let mut hist = LatencyHist::new();
    while let Some(res) = workers.join_next().await {
        hist.merge(&res??);
    }
    let upload_s = t0.elapsed().as_secs_f64();
    let server_up = procstat::sample_all(&cfg.server_pids)?;
    eprintln!("qbench upload: {n} points in {upload_s:.2}s, waiting for indexing");

    let (mut to_indexed_s, mut to_green_s) = (None, None);
    let mut info;
    loop {
        info = client.collection_info(&cfg.collection).await?;
        let now = t0.elapsed().as_secs_f64();
        let counted = info.points_count.unwrap_or(0) >= n as u64;
        if counted && to_green_s.is_none() && info.status.as_deref() == Some("green") {
            to_green_s = Some(now);
        }
        if counted && to_indexed_s.is_none() && info.indexed_vectors_count.unwrap_or(0) >= n as u64 {
            to_indexed_s = Some(now);
        }
        // Done when indexed and green; a server that never turns green gets a grace period.
        let green_grace_over = to_indexed_s.is_some_and(|t| now - t > GREEN_GRACE_S);
        if to_indexed_s.is_some() && (to_green_s.is_some() || info.status.is_none() || green_grace_over) {
            break;
        }
        if now - upload_s > cfg.index_timeout.as_secs_f64() {
            eprintln!("qbench upload: index wait timed out: {info:?}");
            break;
        }
        tokio::time::sleep(cfg.poll).await;
    }
    let server_end = procstat::sample_all(&cfg.server_pids)?;
    Ok(UploadReport {
        points: n,
        batches,
        upload_s,
        points_per_s: n as f64 / upload_s,
        batch_latency: hist.summary(),
        to_indexed_s,
        to_green_s,
        final_info: info,
        server_upload: procstat::usage_between(server0, server_up),
        server_total: procstat::usage_between(server0, server_end),
        client_cpu_s: procstat::process_cpu_seconds() - client0,
    })
}
