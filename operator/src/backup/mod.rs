//! Backups and restores of a whole cluster, usable without Kubernetes.
//!
//! Layout: `store` (the [`BackupStore`] trait and its directory implementation, which is what a
//! PersistentVolumeClaim mount is), `s3` and `sigv4` (an S3-compatible bucket, path-style
//! requests signed with AWS Signature V4), `manifest` (what one backup holds), `node` (the
//! node REST calls of the data path), `run` (backup and restore of one cluster), `retention`
//! (pure pruning decision), `schedule` (5-field cron), `plan` (pure decision of the
//! QdrantBackup controller), `agent` (the `operator backup-agent` subcommand a Job runs).
//!
//! A backup is a directory `<id>/` of the store: one shard snapshot per shard of every
//! collection (taken on a peer holding an Active replica) and `manifest.json`, written last.
//! A backup without a manifest is incomplete: never restored, removed by the next pruning.
//! Shard snapshots (rather than per-peer collection snapshots) let a backup be restored into a
//! cluster of any size: the collection is recreated with its shard count and each shard is
//! uploaded to one peer holding a replica, the node re-syncs the other replicas.

pub mod agent;
pub mod manifest;
pub mod node;
pub mod plan;

pub mod retention;
pub mod run;
pub mod s3;
pub mod schedule;
pub mod sigv4;
pub mod store;

pub use manifest::Manifest;
pub use store::{BackupStore, DirStore, StoreError};

use crate::cluster_api::ClusterApiError;

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Node(#[from] ClusterApiError),
    #[error("no node answered: {0}")]
    NoNode(String),
    #[error("collection {collection}: shard {shard} has no Active replica on a reachable peer")]
    NoActiveReplica { collection: String, shard: u32 },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("backup {0} is incomplete or does not exist (no manifest)")]
    NoManifest(String),
    #[error("backup manifest: {0}")]
    Manifest(String),
    #[error("restore check failed: {0}")]
    Verify(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
