//! Collection aliases at the node: standalone the table lives in `aliases.json` beside the
//! collections; in cluster mode it is part of the Raft-replicated cluster state. Either way every
//! name a request gives goes through `resolve_alias` (in `Node::collection`), and a change swaps
//! the whole table at once, so readers see the old aliases or the new ones, never a mix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{cluster_sync, Node, DEFAULT_META_TIMEOUT};
use crate::cluster::state::ClusterOp;
use crate::error::{Error, Result};
use crate::model::alias::{AliasDescription, AliasTable, ChangeAliases};

const ALIASES_FILE: &str = "aliases.json";

pub(super) fn load(path: &Path) -> Result<AliasTable> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("corrupt alias file {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AliasTable::default()),
        Err(e) => Err(e.into()),
    }
}

impl Node {
    pub(super) fn aliases_file(&self) -> PathBuf {
        self.settings.storage.storage_path.join(ALIASES_FILE)
    }

    /// Writes the table atomically (temp file, fsync, rename), then publishes it.
    pub(super) fn save_aliases(&self, table: AliasTable) -> Result<()> {
        let path = self.aliases_file();
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&table).map_err(Error::internal)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        *self.aliases.write() = table;
        Ok(())
    }

    /// The collection `name` is an alias of, if it is one.
    pub fn resolve_alias(&self, name: &str) -> Option<String> {
        match self.consensus() {
            Some(consensus) => consensus.resolve_alias(name),
            None => self.aliases.read().resolve(name).map(str::to_string),
        }
    }

    fn alias_table(&self) -> AliasTable {
        match self.consensus() {
            Some(consensus) => consensus.state().aliases,
            None => self.aliases.read().clone(),
        }
    }

    /// `POST /collections/aliases`: all actions or none.
    pub async fn update_aliases(&self, change: ChangeAliases, timeout: Option<Duration>) -> Result<bool> {
        if let Some(consensus) = self.consensus() {
            let op = ClusterOp::ChangeAliases {
                actions: change.actions,
            };
            cluster_sync::propose_and_sync(self, consensus, op, timeout.unwrap_or(DEFAULT_META_TIMEOUT)).await?;
            return Ok(true);
        }
        // Serialised with collection create/delete, so a checked collection cannot vanish.
        let _lifecycle = self.lifecycle.lock().await;
        let next = self.aliases.read().apply(&change.actions, &|name| self.exists(name))?;
        self.save_aliases(next)?;
        Ok(true)
    }

    /// `GET /aliases`.
    pub fn list_aliases(&self) -> Vec<AliasDescription> {
        self.alias_table().list()
    }

    /// `GET /collections/{c}/aliases` (`c` itself may be an alias).
    pub fn collection_aliases(&self, name: &str) -> Result<Vec<AliasDescription>> {
        let collection = self.collection(name)?;
        Ok(self.alias_table().of_collection(&collection.name))
    }
}
