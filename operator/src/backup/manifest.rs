//! `manifest.json`: what one backup holds. Written last; its presence marks a complete backup.

use serde::{Deserialize, Serialize};

/// File name of the manifest inside a backup's directory.
pub const MANIFEST: &str = "manifest.json";
/// Format version written into every manifest.
pub const FORMAT: u32 = 1;

/// One complete backup of a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    /// The backup's id (its directory name): `YYYYMMDDTHHMMSSZ` of its start.
    pub id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub completed_at: String,
    pub collections: Vec<CollectionBackup>,
    /// `(alias, collection)`.
    #[serde(default)]
    pub aliases: Vec<AliasBackup>,
}

impl Manifest {
    /// Bytes of every shard snapshot.
    pub fn size_bytes(&self) -> u64 {
        self.collections.iter().map(CollectionBackup::size_bytes).sum()
    }
}

/// One collection: its configuration as the node reported it, its payload indexes and one
/// snapshot per shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionBackup {
    pub name: String,
    /// `config` of `GET /collections/{name}` (params, hnsw, optimizer, wal, quantization...).
    pub config: serde_json::Value,
    /// `payload_schema` of `GET /collections/{name}`.
    #[serde(default)]
    pub payload_schema: serde_json::Map<String, serde_json::Value>,
    pub shards: Vec<ShardBackup>,
}

impl CollectionBackup {
    pub fn size_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.size_bytes).sum()
    }

    /// Points of the collection, when every shard's count is known.
    pub fn points(&self) -> Option<u64> {
        self.shards.iter().map(|s| s.points).sum()
    }
}

/// One shard snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardBackup {
    pub id: u32,
    /// Store key of the snapshot file, relative to the backup's directory.
    pub file: String,
    pub size_bytes: u64,
    /// sha256 (hex) of the file.
    pub sha256: String,
    /// Points of the replica, when it did not change while the snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<u64>,
    /// Peer the snapshot was taken on.
    pub peer_id: u64,
}

/// One alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasBackup {
    pub alias: String,
    pub collection: String,
}

/// The id of a backup started at `at` (sortable, a valid file name and label value).
pub fn backup_id(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The start time encoded in a backup id.
pub fn parse_backup_id(id: &str) -> Option<jiff::Timestamp> {
    let stem = id.strip_suffix('Z')?;
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", stem).ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let t: jiff::Timestamp = "2026-12-07T11:30:05Z".parse().expect("ts");
        let id = backup_id(t);
        assert_eq!(id, "20261207T113005Z");
        assert_eq!(parse_backup_id(&id), Some(t));
        assert!(backup_id(t) < backup_id(t + jiff::SignedDuration::from_secs(3600 * 24 * 40)));
        assert_eq!(parse_backup_id("garbage"), None);
    }
}
