//! `operator backup-agent backup|restore`: what a backup or restore Job runs. It reads the
//! target and the cluster's connection from its environment, does the work with [`super::run`]
//! and writes a compact JSON [`AgentResult`] to its termination message, where the controller
//! reads it.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::manifest::{Manifest, MANIFEST};
use super::node::NodeClient;
use super::retention::{parse_age, Retention};
use super::run::{self, Cluster};
use super::s3::{S3Config, S3Store};
use super::sigv4::Credentials;
use super::{hex, BackupError, BackupStore, DirStore, StoreError};
use crate::cluster_api::Connection;
use crate::crd_backup::{BackupRecord, CollectionRecord};

/// Kubernetes keeps at most this many bytes of a termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// The agent's command line.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
    /// REST base URLs of the cluster's peers, comma-separated.
    #[arg(long, env = "QDRANT_NODES", value_delimiter = ',', global = true)]
    pub nodes: Vec<String>,
    /// API key of the cluster.
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// PEM CA certificate of the cluster's HTTPS API.
    #[arg(long, env = "QDRANT_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Directory target (a mounted PersistentVolumeClaim).
    #[arg(long, env = "BACKUP_DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// S3 endpoint (`http(s)://host:port`); the bucket and credentials come from
    /// S3_BUCKET, S3_PREFIX, S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "S3_PREFIX", default_value = "", global = true)]
    pub s3_prefix: String,
    #[arg(long, env = "S3_REGION", default_value = "us-east-1", global = true)]
    pub s3_region: String,
    #[arg(long, env = "S3_INSECURE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub s3_insecure: bool,
    /// Where the record says the backup is (`pvc://claim/path`, `s3://bucket/prefix`).
    #[arg(long, env = "BACKUP_LOCATION", default_value = "", global = true)]
    pub location: String,
    /// Scratch directory (holds one shard snapshot at a time).
    #[arg(long, env = "SCRATCH_DIR", default_value = "/tmp/qdrant-backup", global = true)]
    pub scratch: PathBuf,
    /// Where to write the result (the container's termination message file).
    #[arg(long, env = "RESULT_FILE", default_value = "/dev/termination-log", global = true)]
    pub result_file: PathBuf,
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Back up every collection, then prune by retention.
    Backup {
        #[arg(long, env = "RETENTION_COUNT")]
        retention_count: Option<u32>,
        #[arg(long, env = "RETENTION_MAX_AGE")]
        retention_max_age: Option<String>,
    },
    /// Restore one backup (default: the newest complete one).
    Restore {
        #[arg(long, env = "BACKUP_ID")]
        id: Option<String>,
    },
}

/// The agent's result, as its termination message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRecord>,
    /// Backup ids pruned after the backup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
    /// The backup id restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AgentResult {
    /// Compact JSON within `limit` bytes: per-shard checksums are dropped first, then the
    /// per-collection details, then the pruned list (the manifest in the store keeps all).
    pub fn to_message(&self, limit: usize) -> String {
        let render = |r: &AgentResult| serde_json::to_string(r).unwrap_or_default();
        let mut result = self.clone();
        let mut text = render(&result);
        if text.len() <= limit {
            return text;
        }
        if let Some(b) = &mut result.backup {
            b.collections.iter_mut().for_each(|c| c.checksums.clear());
        }
        text = render(&result);
        if text.len() <= limit {
            return text;
        }
        if let Some(b) = &mut result.backup {
            b.collections.clear();
        }
        result.pruned.truncate(20);
        if let Some(e) = &mut result.error {
            *e = e.chars().take(1000).collect();
        }
        render(&result)
    }
}

/// The record of a backup, for the QdrantBackup status.
pub fn record(manifest: &Manifest, location: &str, manifest_sha256: String) -> BackupRecord {
    BackupRecord {
        id: manifest.id.clone(),
        started_at: manifest.started_at.clone(),
        completed_at: manifest.completed_at.clone(),
        size_bytes: manifest.size_bytes(),
        location: if location.is_empty() {
            manifest.id.clone()
        } else {
            format!("{}/{}", location.trim_end_matches('/'), manifest.id)
        },
        manifest_sha256,
        collections: manifest
            .collections
            .iter()
            .map(|c| CollectionRecord {
                name: c.name.clone(),
                shards: c.shards.len() as u32,
                size_bytes: c.size_bytes(),
                points: c.points(),
                checksums: c.shards.iter().map(|s| s.sha256.clone()).collect(),
            })
            .collect(),
    }
}

/// A directory or an S3 bucket.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Dir(DirStore),
    S3(Box<S3Store>),
}

impl BackupStore for AnyStore {
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        match self {
            AnyStore::Dir(s) => s.put_file(key, path).await,
            AnyStore::S3(s) => s.put_file(key, path).await,
        }
    }
    async fn get_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        match self {
            AnyStore::Dir(s) => s.get_file(key, path).await,
            AnyStore::S3(s) => s.get_file(key, path).await,
        }
    }
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self {
            AnyStore::Dir(s) => s.put_bytes(key, bytes).await,
            AnyStore::S3(s) => s.put_bytes(key, bytes).await,
        }
    }
    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            AnyStore::Dir(s) => s.get_bytes(key).await,
            AnyStore::S3(s) => s.get_bytes(key).await,
        }
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            AnyStore::Dir(s) => s.list(prefix).await,
            AnyStore::S3(s) => s.list(prefix).await,
        }
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Dir(s) => s.delete(key).await,
            AnyStore::S3(s) => s.delete(key).await,
        }
    }
}

impl AgentArgs {
    /// The store the arguments name.
    pub fn store(&self) -> Result<AnyStore, BackupError> {
        match (&self.dir, &self.s3_endpoint) {
            (Some(dir), None) => Ok(AnyStore::Dir(DirStore::new(dir)?)),
            (None, Some(endpoint)) => {
                let env =
                    |name: &str| std::env::var(name).map_err(|_| BackupError::Config(format!("{name} is not set")));
                Ok(AnyStore::S3(Box::new(S3Store::new(S3Config {
                    endpoint: endpoint.clone(),
                    bucket: self
                        .s3_bucket
                        .clone()
                        .ok_or_else(|| BackupError::Config("S3_BUCKET is not set".to_string()))?,
                    prefix: self.s3_prefix.clone(),
                    credentials: Credentials {
                        access_key_id: env("AWS_ACCESS_KEY_ID")?,
                        secret_access_key: env("AWS_SECRET_ACCESS_KEY")?,
                        region: self.s3_region.clone(),
                    },
                    insecure: self.s3_insecure,
                })?)))
            }
            _ => Err(BackupError::Config(
                "set exactly one target: BACKUP_DIR or S3_ENDPOINT".to_string(),
            )),
        }
    }

    /// The cluster the arguments name.
    pub fn cluster(&self) -> Result<Cluster, BackupError> {
        if self.nodes.is_empty() {
            return Err(BackupError::Config("QDRANT_NODES is empty".to_string()));
        }
        let ca_pem = match &self.ca_file {
            Some(path) => Some(std::fs::read(path)?),
            None => None,
        };
        let client = NodeClient::new(&Connection {
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            ca_pem,
        })?;
        Ok(Cluster {
            client,
            nodes: self.nodes.clone(),
            scratch: self.scratch.clone(),
        })
    }
}

async fn execute(args: &AgentArgs) -> Result<AgentResult, BackupError> {
    let store = args.store()?;
    let cluster = args.cluster()?;
    match &args.command {
        AgentCommand::Backup {
            retention_count,
            retention_max_age,
        } => {
            let retention = Retention {
                count: *retention_count,
                max_age: retention_max_age
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(parse_age)
                    .transpose()
                    .map_err(BackupError::Config)?,
            };
            let now = jiff::Timestamp::now();
            let manifest = run::backup(&cluster, &store, now).await?;
            let stored = store.get_bytes(&format!("{}/{MANIFEST}", manifest.id)).await?;
            let record = record(&manifest, &args.location, hex(&Sha256::digest(&stored)));
            let pruned = run::prune(&store, retention, jiff::Timestamp::now(), Some(&manifest.id)).await?;
            Ok(AgentResult {
                backup: Some(record),
                pruned,
                ..AgentResult::default()
            })
        }
        AgentCommand::Restore { id } => {
            let report = run::restore(&cluster, &store, id.as_deref().filter(|i| !i.is_empty())).await?;
            Ok(AgentResult {
                restored: Some(report.id),
                ..AgentResult::default()
            })
        }
    }
}

/// Runs the agent; the result (or the error) goes to the result file and stdout.
pub async fn run_agent(args: AgentArgs) -> std::process::ExitCode {
    let outcome = execute(&args).await;
    let (result, code) = match outcome {
        Ok(result) => (result, std::process::ExitCode::SUCCESS),
        Err(e) => (
            AgentResult {
                error: Some(e.to_string()),
                ..AgentResult::default()
            },
            std::process::ExitCode::FAILURE,
        ),
    };
    let message = result.to_message(TERMINATION_MESSAGE_LIMIT);
    println!("{message}");
    if let Err(e) = std::fs::write(&args.result_file, &message) {
        eprintln!("cannot write {}: {e}", args.result_file.display());
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_result(collections: usize) -> AgentResult {
        AgentResult {
            backup: Some(BackupRecord {
                id: "20261207T000000Z".into(),
                started_at: "2026-12-07T00:00:00Z".into(),
                completed_at: "2026-12-07T00:01:00Z".into(),
                size_bytes: 1,
                location: "s3://b/p/20261207T000000Z".into(),
                manifest_sha256: "0".repeat(64),
                collections: (0..collections)
                    .map(|i| CollectionRecord {
                        name: format!("collection-{i}"),
                        shards: 6,
                        size_bytes: 10,
                        points: Some(5),
                        checksums: vec!["a".repeat(64); 6],
                    })
                    .collect(),
            }),
            pruned: vec!["20261201T000000Z".into()],
            ..AgentResult::default()
        }
    }

    #[test]
    fn termination_message_fits_and_degrades_in_steps() {
        let small = big_result(2);
        let text = small.to_message(TERMINATION_MESSAGE_LIMIT);
        let back: AgentResult = serde_json::from_str(&text).expect("json");
        assert_eq!(back, small, "a small result is kept whole");
        let medium = big_result(20);
        let back: AgentResult = serde_json::from_str(&medium.to_message(TERMINATION_MESSAGE_LIMIT)).expect("json");
        let b = back.backup.expect("backup");
        assert_eq!(b.collections.len(), 20, "collections kept");
        assert!(
            b.collections.iter().all(|c| c.checksums.is_empty()),
            "checksums dropped"
        );
        let huge = big_result(500);
        let text = huge.to_message(TERMINATION_MESSAGE_LIMIT);
        assert!(text.len() <= TERMINATION_MESSAGE_LIMIT, "{}", text.len());
        let back: AgentResult = serde_json::from_str(&text).expect("json");
        assert_eq!(back.backup.expect("backup").id, "20261207T000000Z");
    }
}
