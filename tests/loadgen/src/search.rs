//! `qbench search`: closed-loop runs at fixed concurrency and open-loop runs at a fixed rate.
//!
//! Open loop: request i is scheduled at `start + i / rate` and its latency is measured from
//! that scheduled time, whether or not the client managed to send it on time, so a slow
//! server cannot hide its queueing delay (no coordinated omission). The time between the
//! schedule and the actual send is reported separately as `dispatch_lag`.

use crate::client::{ClientError, QueryParams, ServerClient};
use crate::procstat::{self, ServerUsage};
use crate::stats::{recall_at_k, LatencyHist, LatencySummary, Mean};
use crate::vecio::Matrix;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The queries of one sweep point: pre-encoded requests (not timed) and their ground truth.
pub struct Workload<C: ServerClient> {
    pub collection: String,
    pub bodies: Arc<Vec<C::Query>>,
    pub gt: Arc<Matrix<u32>>,
    pub k: usize,
}

// Not derived: a derive would require `C::Query: Clone`, but only the `Arc`s are cloned.
impl<C: ServerClient> Clone for Workload<C> {
    fn clone(&self) -> Self {
        Self {
            collection: self.collection.clone(),
            bodies: self.bodies.clone(),
            gt: self.gt.clone(),
            k: self.k,
        }
    }
}

impl<C: ServerClient> Workload<C> {
    pub fn new(
        client: &C,
        collection: &str,
        queries: &Matrix<f32>,
        gt: Arc<Matrix<u32>>,
        k: usize,
        params: &QueryParams,
    ) -> Self {
        let bodies = (0..queries.rows)
            .map(|i| client.encode_query(collection, queries.row(i), k, params))
            .collect();
        Self {
            collection: collection.to_string(),
            bodies: Arc::new(bodies),
            gt,
            k,
        }
    }

    fn len(&self) -> usize {
        self.bodies.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum LoadShape {
    Closed { concurrency: usize },
    Open { rate: f64, max_inflight: usize },
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    #[serde(flatten)]
    pub shape: LoadShape,
    pub requests: usize,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub wall_s: f64,
    /// Completed requests per wall second.
    pub qps: f64,
    pub recall: Option<f64>,
    pub latency: LatencySummary,
    /// Open loop only: how late the client sent requests relative to their schedule.
    pub dispatch_lag: Option<LatencySummary>,
    pub server: Option<ServerUsage>,
    pub q_per_server_cpu_s: Option<f64>,
    pub client_cpu_s: f64,
}

#[derive(Default)]
struct Tally {
    hist: LatencyHist,
    recall: Mean,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn record<C: ServerClient>(
        &mut self,
        w: &Workload<C>,
        qi: usize,
        latency: Duration,
        res: Result<Vec<u64>, ClientError>,
    ) {
        match res {
            Ok(ids) => {
                self.ok += 1;
                self.hist.record(latency);
                self.recall.add(recall_at_k(&ids, w.gt.row(qi), w.k));
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
    }

    fn merge(&mut self, o: Tally) {
        self.hist.merge(&o.hist);
        self.recall.merge(o.recall);
        self.ok += o.ok;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

/// `requests` queries from `concurrency` workers, each sending its next query as soon as the
/// previous one returned. Queries cycle through the set starting at `offset`.
pub async fn closed_loop<C: ServerClient>(
    client: &C,
    w: &Workload<C>,
    concurrency: usize,
    requests: usize,
    offset: usize,
    server_pids: &[u32],
) -> anyhow::Result<RunResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let s0 = procstat::sample_all(server_pids)?;
    let c0 = procstat::process_cpu_seconds();
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, w, next) = (client.clone(), w.clone(), next.clone());
        set.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return tally;
                }
                let qi = (offset + i) % w.len();
                let t = Instant::now();
                let res = client.query(&w.collection, &w.bodies[qi]).await;
                tally.record(&w, qi, t.elapsed(), res);
            }
        });
    }
    let mut tally = Tally::default();
    while let Some(t) = set.join_next().await {
        tally.merge(t?);
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let s1 = procstat::sample_all(server_pids)?;
    Ok(finish(
        LoadShape::Closed { concurrency },
        requests,
        tally,
        None,
        wall_s,
        procstat::usage_between(s0, s1),
        procstat::process_cpu_seconds() - c0,
    ))
}

/// `requests` queries at a fixed `rate` per second; at most `max_inflight` are sent at once
/// (the rest queue in the client, still timed from their scheduled start).
pub async fn open_loop<C: ServerClient>(
    client: &C,
    w: &Workload<C>,
    rate: f64,
    max_inflight: usize,
    requests: usize,
    offset: usize,
    server_pids: &[u32],
) -> anyhow::Result<RunResult> {
    anyhow::ensure!(rate > 0.0, "rate must be > 0");
    let sem = Arc::new(tokio::sync::Semaphore::new(max_inflight.max(1)));
    let s0 = procstat::sample_all(server_pids)?;
    let c0 = procstat::process_cpu_seconds();
    let start = Instant::now() + Duration::from_millis(5);
    // A plain OS thread paces the sends: its sleep is precise to tens of microseconds,
    // where the async timer rounds to whole milliseconds.
    let handle = tokio::runtime::Handle::current();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (client2, w2) = (client.clone(), w.clone());
    let dispatcher = std::thread::spawn(move || {
        for i in 0..requests {
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let (client, w, sem) = (client2.clone(), w2.clone(), sem.clone());
            let qi = (offset + i) % w.len();
            let task = handle.spawn(async move {
                let mut tally = Tally::default();
                let permit = sem.acquire_owned().await;
                let sent = Instant::now();
                let res = client.query(&w.collection, &w.bodies[qi]).await;
                drop(permit);
                tally.record(&w, qi, scheduled.elapsed(), res);
                (tally, sent.saturating_duration_since(scheduled))
            });
            if tx.send(task).is_err() {
                return;
            }
        }
    });
    let mut tally = Tally::default();
    let mut lag = LatencyHist::new();
    while let Some(task) = rx.recv().await {
        let (t, l) = task.await?;
        tally.merge(t);
        lag.record(l);
    }
    dispatcher
        .join()
        .map_err(|_| anyhow::anyhow!("open-loop dispatcher panicked"))?;
    let wall_s = start.elapsed().as_secs_f64();
    let s1 = procstat::sample_all(server_pids)?;
    Ok(finish(
        LoadShape::Open { rate, max_inflight },
        requests,
        tally,
        Some(lag.summary()),
        wall_s,
        procstat::usage_between(s0, s1),
        procstat::process_cpu_seconds() - c0,
    ))
}

fn finish(
    shape: LoadShape,
    requests: usize,
    tally: Tally,
    dispatch_lag: Option<LatencySummary>,
    wall_s: f64,
    server: Option<ServerUsage>,
    client_cpu_s: f64,
) -> RunResult {
    RunResult {
        shape,
        requests,
        ok: tally.ok,
        errors: tally.errors,
        first_error: tally.first_error,
        wall_s,
        qps: tally.ok as f64 / wall_s,
        recall: tally.recall.get(),
        latency: tally.hist.summary(),
        dispatch_lag,
        q_per_server_cpu_s: server.filter(|s| s.cpu_s > 0.0).map(|s| tally.ok as f64 / s.cpu_s),
        server,
        client_cpu_s,
    }
}
