//! Typed settings. Layers, later wins: built-in defaults < `config/config.yaml` in the working
//! directory (if present) < the `--config-path` file < `QDRANT__SECTION__KEY` environment variables.
//!
//! Layers are merged as JSON trees and deserialized once, so an error names the offending key
//! (`service.http_port: invalid type ...`) whichever layer it came from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::storage::index::IndexEngine;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    pub log_level: String,
    pub service: ServiceConfig,
    pub storage: StorageConfig,
    pub cluster: ClusterConfig,
    pub tls: TlsConfig,
    pub telemetry_disabled: bool,
}

/// `Debug` redacts the keys (see below): settings may end up in logs or panic messages.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ServiceConfig {
    pub host: String,
    pub http_port: u16,
    /// Qdrant's public gRPC API; `null` disables it.
    pub grpc_port: Option<u16>,
    #[serde(deserialize_with = "lenient_string")]
    pub api_key: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub read_only_api_key: Option<String>,
    /// A second full-access key (and JWT secret), for rotating `api_key`.
    #[serde(deserialize_with = "lenient_string")]
    pub alt_api_key: Option<String>,
    /// Accept JWTs signed (HS256) with `api_key`/`alt_api_key` that carry their own access rights.
    pub jwt_rbac: bool,
    pub max_request_size_mb: usize,
    pub enable_cors: bool,
    /// Serve the public APIs over TLS with `tls.cert`/`tls.key`.
    pub enable_tls: bool,
    /// With TLS, require client certificates signed by `tls.ca_cert` (mutual TLS).
    pub verify_https_client_certificate: bool,
    /// A search or query slower than this (seconds; default 1.2) reports the unindexed
    /// payload keys of its filters on `/issues`.
    pub slow_query_secs: Option<f32>,
    /// Put in front of every metric name on `/metrics`.
    pub metrics_prefix: Option<String>,
    /// Allow recovering snapshots from `http(s)://` locations.
    pub enable_snapshot_url_recovery: bool,
    /// REST: a connection that has not sent a whole request head within this many seconds is
    /// closed (a trickled head, or an idle keep-alive connection).
    pub header_timeout_sec: u64,
    /// REST: a request body that sends nothing for this many seconds, or after them arrives
    /// slower than 1 KiB/s on average, is refused and its connection closed.
    pub body_timeout_sec: u64,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |key: &Option<String>| key.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServiceConfig")
            .field("host", &self.host)
            .field("http_port", &self.http_port)
            .field("grpc_port", &self.grpc_port)
            .field("api_key", &secret(&self.api_key))
            .field("read_only_api_key", &secret(&self.read_only_api_key))
            .field("alt_api_key", &secret(&self.alt_api_key))
            .field("jwt_rbac", &self.jwt_rbac)
            .field("enable_tls", &self.enable_tls)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// `slow_query_secs` (Qdrant's default when unset or not a positive number).
    pub fn slow_query(&self) -> std::time::Duration {
        let secs = self
            .slow_query_secs
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(crate::issues::DEFAULT_SLOW_QUERY_SECS);
        std::time::Duration::from_secs_f32(secs)
    }

    /// The REST server's client timeouts (at least a second each).
    pub fn client_timeouts(&self) -> crate::api::rest::serve::ClientTimeouts {
        crate::api::rest::serve::ClientTimeouts {
            header: std::time::Duration::from_secs(self.header_timeout_sec.max(1)),
            body: std::time::Duration::from_secs(self.body_timeout_sec.max(1)),
        }
    }
}

/// Certificate files (PEM), as Qdrant names them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_cert: Option<PathBuf>,
    /// Read `cert`/`key` again once the loaded ones are this many seconds old (`null`: never).
    pub cert_ttl: Option<u64>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: "./tls/cert.pem".into(),
            key: "./tls/key.pem".into(),
            ca_cert: None,
            cert_ttl: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    pub storage_path: PathBuf,
    pub snapshots_path: PathBuf,
    /// Where snapshots are staged and downloads land; `null`: `<storage_path>/snapshots_temp`.
    pub temp_path: Option<PathBuf>,
    pub on_disk_payload: bool,
    pub hnsw_index: HnswIndexDefaults,
    pub performance: PerformanceConfig,
    pub collection: CollectionDefaults,
    /// The transfer method of transfers that name none (`null`: chosen per transfer).
    pub shard_transfer_method: Option<crate::model::cluster::TransferMethod>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HnswIndexDefaults {
    pub m: usize,
    pub ef_construct: usize,
    pub full_scan_threshold: usize,
    pub max_indexing_threads: usize,
    pub on_disk: bool,
    /// Ours: which HNSW implementation builds the indexes (`native` or `usearch`).
    pub engine: IndexEngine,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PerformanceConfig {
    /// Threads for searches; 0 = number of CPUs.
    pub max_search_threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CollectionDefaults {
    pub replication_factor: u32,
    pub write_consistency_factor: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub peer_id: Option<u64>,
    pub p2p: P2pConfig,
    pub consensus: ConsensusConfig,
    pub grpc_timeout_ms: u64,
    pub connection_timeout_ms: u64,
    /// Seconds between anti-entropy checks of the replicas this peer is the reference of
    /// (0 turns them off).
    pub anti_entropy_interval_sec: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct P2pConfig {
    pub port: u16,
    /// Peers talk TLS with `tls.cert`/`tls.key`, verifying each other against `tls.ca_cert`
    /// (their URIs are `https://`).
    pub enable_tls: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConsensusConfig {
    pub tick_period_ms: u64,
    pub bootstrap_timeout_sec: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            log_level: "INFO".into(),
            service: ServiceConfig::default(),
            storage: StorageConfig::default(),
            cluster: ClusterConfig::default(),
            tls: TlsConfig::default(),
            telemetry_disabled: false,
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            host: "0.0.0.0".into(),
            http_port: 6333,
            grpc_port: Some(6334),
            api_key: None,
            read_only_api_key: None,
            alt_api_key: None,
            jwt_rbac: false,
            max_request_size_mb: 32,
            enable_cors: true,
            enable_tls: false,
            verify_https_client_certificate: false,
            slow_query_secs: None,
            metrics_prefix: None,
            enable_snapshot_url_recovery: true,
            header_timeout_sec: 30,
            body_timeout_sec: 30,
        }
    }
}

impl StorageConfig {
    /// `temp_path`, or Qdrant's default beside the storage.
    pub fn temp_dir(&self) -> PathBuf {
        self.temp_path
            .clone()
            .unwrap_or_else(|| self.storage_path.join("snapshots_temp"))
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            storage_path: "./storage".into(),
            snapshots_path: "./snapshots".into(),
            temp_path: None,
            on_disk_payload: true,
            hnsw_index: HnswIndexDefaults::default(),
            performance: PerformanceConfig::default(),
            collection: CollectionDefaults::default(),
            shard_transfer_method: None,
        }
    }
}

impl Default for HnswIndexDefaults {
    fn default() -> Self {
        HnswIndexDefaults {
            m: 16,
            ef_construct: 100,
            full_scan_threshold: 10_000,
            max_indexing_threads: 0,
            on_disk: false,
            engine: IndexEngine::default(),
        }
    }
}

impl Default for CollectionDefaults {
    fn default() -> Self {
        CollectionDefaults {
            replication_factor: 1,
            write_consistency_factor: 1,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            peer_id: None,
            p2p: P2pConfig::default(),
            consensus: ConsensusConfig::default(),
            grpc_timeout_ms: 5_000,
            connection_timeout_ms: 2_000,
            anti_entropy_interval_sec: 30,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            port: 6335,
            enable_tls: false,
        }
    }
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            tick_period_ms: 100,
            bootstrap_timeout_sec: 15,
        }
    }
}

/// Accepts `api_key: 12345` from YAML/env as the string "12345".
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml { path: PathBuf, source: serde_yaml::Error },
    #[error("config file {path} must be a YAML mapping at the top level")]
    NotAMapping { path: PathBuf },
    #[error("bad value for config key `{key}`: {message}")]
    BadValue { key: String, message: String },
}

/// Where the layers come from; `load` reads the real process environment.
pub struct Sources<'a> {
    pub working_dir: &'a Path,
    pub config_path: Option<&'a Path>,
    pub env: Vec<(String, String)>,
}

/// The result of loading: the settings and the keys that were present but unknown.
pub struct Loaded {
    pub settings: Settings,
    pub unknown_keys: Vec<String>,
    pub files: Vec<PathBuf>,
    /// A `--config-path` that does not exist: logged as an error, not fatal (as in Qdrant).
    pub missing: Vec<PathBuf>,
}

impl Settings {
    pub fn load(config_path: Option<&Path>) -> Result<Loaded, SettingsError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::load_from(Sources {
            working_dir: &cwd,
            config_path,
            env: std::env::vars().collect(),
        })
    }

    pub fn load_from(sources: Sources<'_>) -> Result<Loaded, SettingsError> {
        let defaults = serde_json::to_value(Settings::default()).expect("defaults serialize");
        let mut tree = defaults.clone();
        let mut files = Vec::new();

        let local = sources.working_dir.join("config").join("config.yaml");
        if local.is_file() {
            merge(&mut tree, read_yaml(&local)?);
            files.push(local);
        }
        let mut missing = Vec::new();
        if let Some(path) = sources.config_path {
            if path.exists() {
                merge(&mut tree, read_yaml(path)?);
                files.push(path.to_path_buf());
            } else {
                missing.push(path.to_path_buf());
            }
        }
        for (name, raw) in &sources.env {
            let Some(rest) = name.strip_prefix("QDRANT__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                continue;
            }
            let typed = coerce(raw, lookup(&defaults, &path));
            set_path(&mut tree, &path, typed);
        }

        let settings: Settings = serde_path_to_error::deserialize(&tree).map_err(|e| SettingsError::BadValue {
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        let mut unknown_keys = Vec::new();
        collect_unknown(&tree, &defaults, "", &mut unknown_keys);
        Ok(Loaded {
            settings,
            unknown_keys,
            files,
            missing,
        })
    }
}

fn read_yaml(path: &Path) -> Result<Value, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_yaml::from_str(&text).map_err(|source| SettingsError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(SettingsError::NotAMapping {
            path: path.to_path_buf(),
        }),
    }
}

/// Deep-merges `over` into `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn lookup<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, key| node.get(key))
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for key in &path[..path.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node
            .as_object_mut()
            .expect("just made an object")
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut()
        .expect("just made an object")
        .insert(path[path.len() - 1].clone(), value);
}

/// Environment values are strings; give them the type the default has at that key, or guess
/// (bool, integer, float, string) for keys without a typed default.
fn coerce(raw: &str, default: Option<&Value>) -> Value {
    match default {
        Some(Value::String(_)) => Value::String(raw.to_string()),
        _ => {
            let t = raw.trim();
            if t.eq_ignore_ascii_case("true") {
                Value::Bool(true)
            } else if t.eq_ignore_ascii_case("false") {
                Value::Bool(false)
            } else if t.eq_ignore_ascii_case("null") {
                Value::Null
            } else if let Ok(n) = t.parse::<u64>() {
                Value::from(n)
            } else if let Ok(n) = t.parse::<i64>() {
                Value::from(n)
            } else if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(raw.to_string())
            }
        }
    }
}

fn collect_unknown(tree: &Value, known: &Value, prefix: &str, out: &mut Vec<String>) {
    let (Value::Object(t), Value::Object(k)) = (tree, known) else {
        return;
    };
    for (key, value) in t {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match k.get(key) {
            None => out.push(path),
            Some(known_child) => collect_unknown(value, known_child, &path, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, file: Option<&Path>, env: &[(&str, &str)]) -> Result<Loaded, SettingsError> {
        Settings::load_from(Sources {
            working_dir: dir,
            config_path: file,
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        })
    }

    #[test]
    fn defaults_match_qdrant() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(dir.path(), None, &[]).unwrap().settings;
        assert_eq!(s.service.http_port, 6333);
        assert_eq!(s.service.grpc_port, Some(6334));
        assert_eq!(s.cluster.p2p.port, 6335);
        assert_eq!(s.cluster.consensus.tick_period_ms, 100);
        assert_eq!(s.storage.storage_path, PathBuf::from("./storage"));
        assert!(!s.cluster.enabled);
        assert_eq!(s.service.max_request_size_mb, 32);
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::write(
            dir.path().join("config/config.yaml"),
            "service:\n  http_port: 7000\n  host: 127.0.0.1\nlog_level: DEBUG\n",
        )
        .unwrap();
        let extra = dir.path().join("extra.yaml");
        std::fs::write(&extra, "service:\n  http_port: 7001\ncluster:\n  enabled: true\n").unwrap();
        let s = load(
            dir.path(),
            Some(&extra),
            &[
                ("QDRANT__SERVICE__HTTP_PORT", "7002"),
                ("QDRANT__CLUSTER__P2P__PORT", "7003"),
            ],
        )
        .unwrap()
        .settings;
        assert_eq!(s.service.http_port, 7002);
        assert_eq!(s.service.host, "127.0.0.1");
        assert_eq!(s.log_level, "DEBUG");
        assert!(s.cluster.enabled);
        assert_eq!(s.cluster.p2p.port, 7003);
    }

    #[test]
    fn env_values_are_coerced_by_default_type() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(
            dir.path(),
            None,
            &[
                ("QDRANT__CLUSTER__ENABLED", "TRUE"),
                ("QDRANT__LOG_LEVEL", "123"),
                ("QDRANT__SERVICE__API_KEY", "12345"),
                ("QDRANT__STORAGE__STORAGE_PATH", "/data"),
            ],
        )
        .unwrap()
        .settings;
        assert!(s.cluster.enabled);
        assert_eq!(s.log_level, "123");
        assert_eq!(s.service.api_key.as_deref(), Some("12345"));
        assert!(!format!("{s:?}").contains("12345"), "keys are redacted from Debug");
        assert_eq!(s.storage.storage_path, PathBuf::from("/data"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), None, &[("QDRANT__SERVICE__HTTP_PORT", "abc")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("service.http_port"), "{err}");
        let err = load(dir.path(), None, &[("QDRANT__SERVICE__HTTP_PORT", "70000")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("service.http_port"), "{err}");
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(
            dir.path(),
            None,
            &[("QDRANT__SERVICE__HARDWARE_REPORTING", "true"), ("QDRANT__FOO", "1")],
        )
        .unwrap();
        assert!(loaded.unknown_keys.contains(&"service.hardware_reporting".to_string()));
        assert!(loaded.unknown_keys.contains(&"foo".to_string()));
    }

    #[test]
    fn shipped_config_file_equals_the_built_in_defaults() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let loaded = load(&repo, None, &[]).unwrap();
        assert_eq!(loaded.files.len(), 1, "config/config.yaml should be found");
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    }

    #[test]
    fn missing_config_path_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(dir.path(), Some(&dir.path().join("nope.yaml")), &[]).unwrap();
        assert_eq!(loaded.missing.len(), 1);
    }

    #[test]
    fn bad_yaml_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.yaml");
        std::fs::write(&f, "service: [unclosed").unwrap();
        let err = load(dir.path(), Some(&f), &[]).err().unwrap().to_string();
        assert!(err.contains("not valid YAML"), "{err}");
    }
}
