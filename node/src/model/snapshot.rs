//! Snapshots as Qdrant's API shows them: the description of a snapshot file and the request to
//! recover a collection (or a shard) from one.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One snapshot file: `GET .../snapshots` lists these, `POST .../snapshots` returns one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDescription {
    pub name: String,
    /// When the file was written, UTC, as Qdrant prints it (`2022-08-04T10:49:10`).
    pub creation_time: Option<String>,
    pub size: u64,
    /// The sha256 of the file (hex), from the `.checksum` file beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// Which copy wins when a recovered shard has other replicas in the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPriority {
    /// Take the snapshot's data and leave the other replicas as they are.
    NoSync,
    /// The snapshot is the truth: the other replicas are refilled from it.
    #[default]
    Snapshot,
    /// The existing replicas are the truth: the recovered one is refilled from them.
    Replica,
}

impl SnapshotPriority {
    /// `?priority=` of the upload endpoints.
    pub fn parse(value: Option<&str>) -> Result<Option<SnapshotPriority>> {
        value
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.to_string())).map_err(|_| {
                    Error::bad_input(format!(
                        "unknown snapshot priority `{v}`: expected `no_sync`, `snapshot` or `replica`"
                    ))
                })
            })
            .transpose()
    }
}

/// `PUT /collections/{c}/snapshots/recover` (and the shard variant's body).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecover {
    /// `file:///...` inside the snapshots directory, or `http(s)://...`.
    pub location: String,
    #[serde(default)]
    pub priority: Option<SnapshotPriority>,
    /// The sha256 (hex) the file must have.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Sent as `api-key` when downloading from another node.
    #[serde(default)]
    pub api_key: Option<String>,
}

/// Checks that `checksum` is a sha256 in hex (Qdrant's validation of the field).
pub fn validate_checksum(checksum: Option<&str>) -> Result<()> {
    match checksum {
        Some(c) if c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()) => Err(Error::validation(format!(
            "checksum: invalid sha256 hash `{c}`: expected 64 hex digits"
        ))),
        _ => Ok(()),
    }
}

/// Two hex digests compared as Qdrant compares them: case and whitespace ignored.
pub fn same_checksum(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_as_qdrant_spells_them() {
        assert_eq!(
            SnapshotPriority::parse(Some("no_sync")).unwrap(),
            Some(SnapshotPriority::NoSync)
        );
        assert_eq!(SnapshotPriority::parse(None).unwrap(), None);
        assert!(SnapshotPriority::parse(Some("newest")).is_err());
    }

    #[test]
    fn checksums_are_validated_and_compared_loosely() {
        let c = "a".repeat(64);
        assert!(validate_checksum(Some(&c)).is_ok());
        assert!(validate_checksum(Some("abc")).is_err());
        assert!(same_checksum(&c, &c.to_uppercase()));
        assert!(!same_checksum(&c, &"b".repeat(64)));
    }
}
