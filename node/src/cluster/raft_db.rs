//! The consensus RocksDB at `<storage_path>/raft`, separate from the collections' data. Column
//! families: `log` (index -> entry), `meta` (vote, committed, purged, peer id) and `sm` (the
//! applied state machine and the current snapshot). Values are JSON.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub const CF_LOG: &str = "log";
pub const CF_META: &str = "meta";
pub const CF_SM: &str = "sm";

const KEY_PEER_ID: &[u8] = b"peer_id";

#[derive(Clone)]
pub struct RaftDb {
    db: Arc<DB>,
}

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_write_buffer_size(4 << 20);
    o.set_max_background_jobs(1);
    o.set_keep_log_file_num(2);
    o
}

impl RaftDb {
    pub fn open(path: &Path) -> Result<RaftDb> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::internal(format!("cannot create raft directory {}: {e}", path.display())))?;
        let db = DB::open_cf_descriptors(
            &options(),
            path,
            [CF_LOG, CF_META, CF_SM].map(|n| ColumnFamilyDescriptor::new(n, Options::default())),
        )
        .map_err(|e| Error::internal(format!("cannot open raft storage at {}: {e}", path.display())))?;
        Ok(RaftDb { db: Arc::new(db) })
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // The three families are created on open; a missing one is a programming error.
        self.db.cf_handle(name).expect("raft column family exists")
    }

    pub fn get_json<T: DeserializeOwned>(&self, cf: &str, key: &[u8]) -> Result<Option<T>> {
        match self.db.get_cf(self.cf(cf), key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::internal(format!(
                    "corrupt raft record {cf}/{}: {e}",
                    String::from_utf8_lossy(key)
                ))
            }),
        }
    }

    pub fn put_json<T: Serialize>(&self, batch: &mut WriteBatch, cf: &str, key: &[u8], value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
        batch.put_cf(self.cf(cf), key, bytes);
        Ok(())
    }

    /// Writes a batch; `sync` = fsync the WAL before returning (votes and log entries).
    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// The peer id this storage belongs to, once chosen.
    pub fn peer_id(&self) -> Result<Option<u64>> {
        match self.db.get_cf(self.cf(CF_META), KEY_PEER_ID)? {
            None => Ok(None),
            Some(b) => {
                let bytes: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::internal("corrupt peer id in raft storage"))?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    pub fn set_peer_id(&self, id: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), KEY_PEER_ID, id.to_be_bytes());
        self.write(batch, true)
    }
}

/// Runs blocking RocksDB work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("raft storage task failed: {e}")))?
}
