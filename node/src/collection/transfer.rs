//! The copy of a shard transfer, while writes to the shard are queued on the target (see
//! `LocalShard::begin_buffering`): either every point of the source replica in pages
//! (`stream_records`), or, when the target already holds most of it (a shard snapshot of the
//! source, or what a replica that was down still has), only the digest buckets that differ.
//! Used to recover Dead replicas.

use std::sync::Arc;

use super::remote::Routing;
use super::shard_request::{expect_response, ShardRequest, ShardResponse};
use super::{blocking, Collection};
use crate::cluster::{PeerId, ShardId};
use crate::error::{Error, Result};
use crate::model::cluster::TransferMethod;
use crate::storage::shard::LocalShard;

/// How far the transfer into one local replica is.
pub struct TransferProgress {
    pub method: TransferMethod,
    /// Points copied (`stream_records`) or buckets caught up.
    pub copied: usize,
    /// Points of the source replica when the copy started, if it said (or buckets to catch up).
    pub total: Option<usize>,
    pub started: std::time::Instant,
}

/// Points per page of a transfer.
const PAGE: usize = 512;

/// Digest buckets of a catch-up: finer than anti-entropy's, so that a bucket written since the
/// snapshot (or the downtime) drags few unchanged points along.
const CATCH_UP_BUCKETS: u32 = 1024;

/// Differing buckets fetched per request of a catch-up.
const BUCKETS_PER_REQUEST: usize = 8;

impl Collection {
    /// Copies every point of `shard` from the replica on `source` into the local replica.
    /// Returns how many points were copied.
    ///
    /// `fence` is the consensus index at which the local replica started receiving the shard's
    /// writes (turned Partial). The source serves pages only once it routes by that state, and
    /// then refuses writes routed by older ones (the write fence); every write routed by an older
    /// state was applied there before (under the routing lock). So each write reaches this
    /// replica through the copy or through its queue: the copy is complete when this returns.
    pub async fn pull_shard(&self, shard: ShardId, source: PeerId, fence: u64) -> Result<usize> {
        let (routing, uri) = self.transfer_source(source)?;
        let local = self.transfer_target(shard)?;
        let total = self.remote_count(shard, source).await.ok();
        let progress = TransferProgress {
            method: TransferMethod::StreamRecords,
            copied: 0,
            total,
            started: std::time::Instant::now(),
        };
        self.transfers.lock().insert(shard, progress);
        let result = self.copy_pages(shard, source, &uri, &routing, &local, fence).await;
        self.transfers.lock().remove(&shard);
        result
    }

    /// Brings the local replica of `shard`, which already holds most of what the replica on
    /// `source` holds, up to it: compares their digests and takes the source's contents of
    /// every bucket that differs (`LocalShard::take_buckets`). Served under the transfer's
    /// `fence` like [`Collection::pull_shard`]'s pages, so it is as complete. `method` is what
    /// the progress reports. Returns how many buckets differed.
    pub async fn catch_up_shard(
        &self,
        shard: ShardId,
        source: PeerId,
        fence: u64,
        method: TransferMethod,
    ) -> Result<usize> {
        let (routing, uri) = self.transfer_source(source)?;
        let local = self.transfer_target(shard)?;
        let call = |request: ShardRequest| {
            let (routing, uri) = (routing.clone(), uri.clone());
            async move { routing.remote.call(source, &uri, &self.name, shard, &request).await }
        };
        let theirs = expect_response!(
            call(ShardRequest::Digest {
                buckets: CATCH_UP_BUCKETS,
                fence: Some(fence),
            })
            .await?,
            Digest
        )?;
        let l = local.clone();
        let mine = blocking(move || Ok(l.digest(CATCH_UP_BUCKETS))).await?;
        if mine.len() != theirs.len() {
            return Err(Error::internal(format!(
                "transfer source peer {source} answered a digest of {} buckets, not {}",
                theirs.len(),
                mine.len()
            )));
        }
        let differing: Vec<u32> = (0..CATCH_UP_BUCKETS)
            .filter(|b| mine[*b as usize] != theirs[*b as usize])
            .collect();
        self.transfers.lock().insert(
            shard,
            TransferProgress {
                method,
                copied: 0,
                total: Some(differing.len()),
                started: std::time::Instant::now(),
            },
        );
        let result = async {
            let mut done = 0;
            for wanted in differing.chunks(BUCKETS_PER_REQUEST) {
                let request = ShardRequest::BucketPoints {
                    wanted: wanted.to_vec(),
                    buckets: CATCH_UP_BUCKETS,
                    fence: Some(fence),
                };
                let contents = expect_response!(call(request).await?, Bucket)?;
                if let Some(newest) = contents
                    .points
                    .iter()
                    .map(|p| p.version)
                    .chain(contents.tombstones.iter().map(|(_, v)| *v))
                    .max()
                {
                    self.observe_version(newest);
                }
                let (l, w) = (local.clone(), wanted.to_vec());
                blocking(move || l.take_buckets(&contents, &w, CATCH_UP_BUCKETS)).await?;
                done += wanted.len();
                if let Some(p) = self.transfers.lock().get_mut(&shard) {
                    p.copied = done;
                }
            }
            Ok(differing.len())
        }
        .await;
        self.transfers.lock().remove(&shard);
        result
    }

    /// How many points the replica of `shard` on `source` holds.
    pub async fn remote_count(&self, shard: ShardId, source: PeerId) -> Result<usize> {
        let (routing, uri) = self.transfer_source(source)?;
        let response = routing
            .remote
            .call(source, &uri, &self.name, shard, &ShardRequest::Count { filter: None })
            .await?;
        expect_response!(response, Count)
    }

    /// Where a transfer reads from: the cluster routing and the URI of the `source` peer.
    fn transfer_source(&self, source: PeerId) -> Result<(Arc<Routing>, String)> {
        let routing = self
            .routing
            .read()
            .clone()
            .ok_or_else(|| Error::internal("a transfer needs cluster mode"))?;
        let uri = routing.uri(source)?.to_string();
        Ok((routing, uri))
    }

    /// The local replica of `shard` a transfer fills.
    fn transfer_target(&self, shard: ShardId) -> Result<Arc<LocalShard>> {
        self.local_shard(shard)
            .ok_or_else(|| Error::internal(format!("shard {shard} has no local replica to fill")))
    }

    /// The method of the transfer filling the local replica of `shard`, if one runs.
    pub fn running_transfer(&self, shard: ShardId) -> Option<TransferMethod> {
        self.transfers.lock().get(&shard).map(|p| p.method)
    }

    async fn copy_pages(
        &self,
        shard: ShardId,
        source: PeerId,
        uri: &str,
        routing: &Routing,
        local: &Arc<LocalShard>,
        fence: u64,
    ) -> Result<usize> {
        let mut offset = None;
        let mut copied = 0;
        loop {
            let request = ShardRequest::Export {
                offset,
                limit: PAGE + 1,
                fence,
            };
            let response = routing.remote.call(source, uri, &self.name, shard, &request).await?;
            let ShardResponse::Page {
                points: mut page,
                routing_index,
                tombstones,
            } = response
            else {
                return Err(Error::internal("a transfer source answered something else than a page"));
            };
            // The guarantee the copy rests on, checked rather than assumed.
            if routing_index < fence {
                return Err(Error::internal(format!(
                    "transfer source peer {source} served a page under cluster state {routing_index}, \
                     before the transfer's start {fence}"
                )));
            }
            let next = page.get(PAGE).map(|p| p.point.id);
            page.truncate(PAGE);
            copied += page.len();
            if let Some(p) = self.transfers.lock().get_mut(&shard) {
                p.copied = copied;
            }
            if let Some(newest) = page.iter().map(|p| p.version).max() {
                self.observe_version(newest);
            }
            if let Some(newest) = tombstones.iter().map(|(_, v)| *v).max() {
                self.observe_version(newest);
            }
            if !page.is_empty() || !tombstones.is_empty() {
                // Points written meanwhile (queued on this replica) keep their newer version.
                let local = local.clone();
                let copy = crate::model::operations::ReplicaPoints {
                    points: page,
                    tombstones,
                };
                blocking(move || local.merge(&copy, false, false)).await?;
            }
            match next {
                Some(id) => offset = Some(id),
                None => return Ok(copied),
            }
        }
    }

    /// Progress of the transfer filling the local replica of `shard`, as Qdrant's `comment`.
    pub fn transfer_comment(&self, shard: ShardId) -> Option<String> {
        let transfers = self.transfers.lock();
        let p = transfers.get(&shard)?;
        let total = p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
        let what = match p.method {
            TransferMethod::StreamRecords => "Transferring records",
            _ => "Catching up differing buckets",
        };
        Some(format!(
            "{what} ({}/{total}), started {}s ago",
            p.copied,
            p.started.elapsed().as_secs()
        ))
    }

    /// Empties the local replica of `shard` (dropped and created again), before a transfer.
    pub fn reset_local_shard(&self, shard: ShardId) -> Result<()> {
        self.remove_local_shard(shard)?;
        self.add_local_shard(shard)
    }
}
