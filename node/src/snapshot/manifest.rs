//! `manifest.json`, the first entry of every snapshot archive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collection::CollectionMeta;
use crate::error::{Error, Result};

/// Names archives of this database (a Qdrant snapshot or any other tar lacks it).
pub const FORMAT: &str = "qdrant-rs-snapshot";
/// Bumped when the layout changes in a way older nodes cannot read.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// The local shards of one collection.
    Collection,
    /// One shard of one collection.
    Shard,
    /// Every collection of the node, and the aliases.
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The version of the node that wrote it.
    pub node_version: String,
    pub kind: SnapshotKind,
    /// UTC, RFC 3339.
    pub created_at: String,
    pub collections: Vec<CollectionEntry>,
    /// Full snapshots: alias -> collection.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Every file of the archive but the manifest, by path.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionEntry {
    pub name: String,
    /// Config and payload indexes (no cluster placement: that belongs to the cluster restored into).
    pub meta: CollectionMeta,
    pub shards: Vec<ShardEntry>,
}

/// One shard as it was when its checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub id: u32,
    pub points: usize,
    /// The shard's operation number at the checkpoint.
    pub last_seq: u64,
    pub max_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn new(kind: SnapshotKind) -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            node_version: env!("CARGO_PKG_VERSION").to_string(),
            kind,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            collections: Vec::new(),
            aliases: BTreeMap::new(),
            files: BTreeMap::new(),
        }
    }

    /// Parses a manifest, refusing what this node cannot restore.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| not_ours(format!("{MANIFEST_FILE}: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_ours(format!("{MANIFEST_FILE} does not name the format `{FORMAT}`")));
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| corrupt(format!("{MANIFEST_FILE}: {e}")))?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(Error::BadRequest(format!(
                "snapshot format version {} was written by a newer node ({}); this node reads up to version {FORMAT_VERSION}",
                manifest.format_version, manifest.node_version
            )));
        }
        Ok(manifest)
    }

    /// The collection a recovery into `target` takes: the one of a collection or shard snapshot,
    /// or the one named `target` of a full snapshot.
    pub fn collection_for(&self, target: &str) -> Result<&CollectionEntry> {
        match (self.kind, self.collections.as_slice()) {
            (SnapshotKind::Full, all) => all.iter().find(|c| c.name == target).ok_or_else(|| {
                Error::BadRequest(format!(
                    "the full snapshot holds no collection `{target}` (it holds: {})",
                    all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
            }),
            (_, [one]) => Ok(one),
            (kind, all) => Err(corrupt(format!("a {kind:?} snapshot of {} collections", all.len()))),
        }
    }
}

/// An archive that is not a snapshot of this database.
pub fn not_ours(why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!(
        "not a snapshot of this database ({why}); snapshots are made by POST /collections/{{name}}/snapshots"
    ))
}

/// A snapshot of this database that is damaged.
pub fn corrupt(why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("snapshot is corrupt: {why}"))
}
