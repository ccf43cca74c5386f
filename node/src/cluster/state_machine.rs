//! openraft's state machine (storage-v2 `RaftStateMachine`): applies committed entries to the
//! [`ClusterState`], persists the result in the raft RocksDB after every batch, and publishes it
//! on a watch channel. Snapshots are the serialized state machine.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::raft_db::{blocking, RaftDb, CF_SM};
use super::state::{AppliedState, ClusterState};
use super::types::{ApplyOutcome, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use super::wire::WireError;
use crate::error::Error;

const KEY_DATA: &[u8] = b"data";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
/// How many applied proposal ids are remembered for exactly-once retries.
const RECENT_PROPOSALS: usize = 1024;

/// Everything the state machine persists (and a snapshot carries).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmData {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub state: ClusterState,
    /// Outcomes of the most recently applied proposals, by proposal id.
    #[serde(default)]
    pub recent: VecDeque<(uuid::Uuid, ApplyOutcome)>,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

pub struct StateMachineStore {
    db: RaftDb,
    data: SmData,
    state_tx: Arc<watch::Sender<Arc<AppliedState>>>,
}

fn applied_view(data: &SmData) -> AppliedState {
    AppliedState {
        index: data.last_applied.map(|l| l.index).unwrap_or(0),
        state: data.state.clone(),
    }
}

fn sm_write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&Error::internal(e)).into()
}

fn sm_read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&Error::internal(e)).into()
}

impl StateMachineStore {
    /// Loads the persisted state machine (empty on a fresh store).
    pub fn open(db: RaftDb) -> crate::error::Result<StateMachineStore> {
        let data: SmData = db.get_json(CF_SM, KEY_DATA)?.unwrap_or_default();
        let (state_tx, _) = watch::channel(Arc::new(applied_view(&data)));
        Ok(StateMachineStore {
            db,
            data,
            state_tx: Arc::new(state_tx),
        })
    }

    /// The channel on which every applied state is published.
    pub fn state_sender(&self) -> Arc<watch::Sender<Arc<AppliedState>>> {
        self.state_tx.clone()
    }

    async fn persist(&self) -> Result<(), StorageError> {
        let db = self.db.clone();
        let bytes = serde_json::to_vec(&self.data).map_err(sm_write_err)?;
        blocking(move || {
            let mut batch = WriteBatch::default();
            batch.put_cf(db.cf(CF_SM), KEY_DATA, bytes);
            db.write(batch, false)
        })
        .await
        .map_err(sm_write_err)
    }

    fn publish(&self) {
        self.state_tx.send_replace(Arc::new(applied_view(&self.data)));
    }

    fn apply_one(&mut self, entry: &Entry) -> ApplyOutcome {
        self.data.last_applied = Some(entry.log_id);
        match &entry.payload {
            EntryPayload::Blank => ApplyOutcome::default(),
            EntryPayload::Membership(m) => {
                self.data.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                ApplyOutcome::default()
            }
            EntryPayload::Normal(proposal) => {
                if let Some((_, done)) = self.data.recent.iter().find(|(id, _)| *id == proposal.id) {
                    tracing::debug!(%proposal, "proposal already applied; returning its outcome");
                    return done.clone();
                }
                let outcome = match self.data.state.apply_at(&proposal.op, entry.log_id.index) {
                    Ok(()) => ApplyOutcome::default(),
                    Err(e) => {
                        tracing::debug!(%proposal, error = %e, "cluster operation refused");
                        ApplyOutcome {
                            error: Some(WireError::from(&e)),
                        }
                    }
                };
                self.data.recent.push_back((proposal.id, outcome.clone()));
                while self.data.recent.len() > RECENT_PROPOSALS {
                    self.data.recent.pop_front();
                }
                outcome
            }
        }
    }
}

pub struct SnapshotBuilder {
    db: RaftDb,
    data: SmData,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let bytes = serde_json::to_vec(&self.data).map_err(sm_read_err)?;
        let snapshot_id = match &self.data.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, uuid::Uuid::new_v4().simple()),
            None => format!("empty-{}", uuid::Uuid::new_v4().simple()),
        };
        let meta = SnapshotMeta {
            last_log_id: self.data.last_applied,
            last_membership: self.data.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes.clone(),
        };
        let db = self.db.clone();
        blocking(move || {
            let mut batch = WriteBatch::default();
            db.put_json(&mut batch, CF_SM, KEY_SNAPSHOT, &stored)?;
            db.write(batch, false)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        tracing::info!(snapshot = %meta.snapshot_id, "built raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.data.last_applied, self.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let outcomes: Vec<ApplyOutcome> = entries.into_iter().map(|e| self.apply_one(&e)).collect();
        self.persist().await?;
        self.publish();
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            data: self.data.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let mut data: SmData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &Error::internal(e)))?;
        data.last_applied = meta.last_log_id;
        data.membership = meta.last_membership.clone();
        self.data = data;
        self.persist().await?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        let db = self.db.clone();
        blocking(move || {
            let mut batch = WriteBatch::default();
            db.put_json(&mut batch, CF_SM, KEY_SNAPSHOT, &stored)?;
            db.write(batch, false)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(snapshot = %meta.snapshot_id, "installed raft snapshot from the leader");
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored: Option<StoredSnapshot> = self
            .db
            .get_json(CF_SM, KEY_SNAPSHOT)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
