//! openraft's log storage (storage-v2 `RaftLogStorage`) over the raft RocksDB: entries keyed by
//! big-endian index, votes and purge marks in `meta`. Votes and appends are fsynced before they
//! are acknowledged, as Raft requires.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::raft_db::{blocking, RaftDb, CF_LOG, CF_META};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::error::{Error, Result};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"last_purged";

#[derive(Clone)]
pub struct LogStore {
    db: RaftDb,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn index_of(k: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = k.try_into().map_err(|_| Error::internal("corrupt raft log key"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn read_err(e: Error) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    pub fn new(db: RaftDb) -> LogStore {
        LogStore { db }
    }

    fn last_entry(&self) -> Result<Option<Entry>> {
        let mut it = self.db.db().iterator_cf(self.db.cf(CF_LOG), IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(item) => {
                let (_, v) = item?;
                serde_json::from_slice(&v)
                    .map(Some)
                    .map_err(|e| Error::internal(format!("corrupt raft log entry: {e}")))
            }
        }
    }

    fn entries(&self, start: u64, end: Bound<u64>) -> Result<Vec<Entry>> {
        let from = key(start);
        let it = self
            .db
            .db()
            .iterator_cf(self.db.cf(CF_LOG), IteratorMode::From(&from, Direction::Forward));
        let mut out = Vec::new();
        for item in it {
            let (k, v) = item?;
            let index = index_of(&k)?;
            let past_end = match end {
                Bound::Included(e) => index > e,
                Bound::Excluded(e) => index >= e,
                Bound::Unbounded => false,
            };
            if past_end {
                break;
            }
            let entry: Entry = serde_json::from_slice(&v)
                .map_err(|e| Error::internal(format!("corrupt raft log entry {index}: {e}")))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = range.end_bound().cloned();
        self.entries(start, end).map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.db.get_json(CF_META, KEY_PURGED).map_err(read_err)?;
        let last = self.last_entry().map_err(read_err)?.map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let db = self.db.clone();
        let vote = *vote;
        blocking(move || {
            let mut batch = WriteBatch::default();
            db.put_json(&mut batch, CF_META, KEY_VOTE, &vote)?;
            db.write(batch, true)
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.db
            .get_json(CF_META, KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let mut batch = WriteBatch::default();
            db.put_json(&mut batch, CF_META, KEY_COMMITTED, &committed)?;
            db.write(batch, false)
        })
        .await
        .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self.db.get_json(CF_META, KEY_COMMITTED).map_err(read_err)?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| write_err(Error::internal(e)))?;
            batch.put_cf(self.db.cf(CF_LOG), key(entry.log_id.index), bytes);
        }
        let db = self.db.clone();
        let result = blocking(move || db.write(batch, true)).await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating raft log");
        let db = self.db.clone();
        blocking(move || {
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(db.cf(CF_LOG), key(log_id.index), key(u64::MAX));
            // delete_range excludes its end: drop the last possible key too.
            batch.delete_cf(db.cf(CF_LOG), key(u64::MAX));
            db.write(batch, true)
        })
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging raft log");
        let db = self.db.clone();
        blocking(move || {
            let mut batch = WriteBatch::default();
            db.put_json(&mut batch, CF_META, KEY_PURGED, &log_id)?;
            batch.delete_range_cf(db.cf(CF_LOG), key(0), key(log_id.index.saturating_add(1)));
            db.write(batch, true)
        })
        .await
        .map_err(write_err)
    }
}
