//! The stream of a shard transfer: the target replica pulls every point of a shard from a
//! source replica in pages (while writes to the shard are queued on the target, see
//! `LocalShard::begin_buffering`). Used to recover Dead replicas.

use super::shard_request::{expect_response, ShardRequest, ShardResponse};
use super::{blocking, Collection};
use crate::cluster::{PeerId, ShardId};
use crate::error::{Error, Result};

/// How far the transfer into one local replica is.
pub struct TransferProgress {
    pub copied: usize,
    /// Points of the source replica when the copy started, if it said.
    pub total: Option<usize>,
    pub started: std::time::Instant,
}

/// Points per page of a transfer.
const PAGE: usize = 512;

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
        let routing = self
            .routing
            .read()
            .clone()
            .ok_or_else(|| Error::internal("a transfer needs cluster mode"))?;
        let local = self
            .local_shard(shard)
            .ok_or_else(|| Error::internal(format!("shard {shard} has no local replica to fill")))?;
        let uri = routing.uri(source)?.to_string();
        let total = match routing
            .remote
            .call(source, &uri, &self.name, shard, &ShardRequest::Count { filter: None })
            .await
        {
            Ok(response) => expect_response!(response, Count).ok(),
            Err(_) => None,
        };
        let progress = TransferProgress {
            copied: 0,
            total,
            started: std::time::Instant::now(),
        };
        self.transfers.lock().insert(shard, progress);
        let result = self.copy_pages(shard, source, &uri, &routing, &local, fence).await;
        self.transfers.lock().remove(&shard);
        result
    }

    async fn copy_pages(
        &self,
        shard: ShardId,
        source: PeerId,
        uri: &str,
        routing: &super::remote::Routing,
        local: &std::sync::Arc<crate::storage::shard::LocalShard>,
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
        Some(format!(
            "Transferring records ({}/{total}), started {}s ago",
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
