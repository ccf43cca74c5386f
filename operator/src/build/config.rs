//! The Qdrant configuration file: operator defaults with the user's overlay deep-merged on top.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::crd::{QdrantCluster, TlsSpec, GRPC_PORT, HTTP_PORT, P2P_PORT};

/// Where the operator's ConfigMap is mounted in the Qdrant container.
pub const CONFIG_DIR: &str = "/qdrant/operator";
/// ConfigMap key (and file name) of the Qdrant configuration.
pub const CONFIG_KEY: &str = "config.yaml";
/// ConfigMap key (and file name) listing, once the cluster is initialised, the p2p URIs pod 0
/// may join through when it starts with an empty volume. Deliberately not part of the config
/// checksum: changing it must not restart pods.
pub const BOOTSTRAP_PEERS_KEY: &str = "bootstrap-peers";
/// Data directory inside the container (the PVC mount).
pub const STORAGE_DIR: &str = "/qdrant/storage";
/// Snapshot directory inside the container (an emptyDir).
pub const SNAPSHOTS_DIR: &str = "/qdrant/snapshots";
/// TLS Secret mount inside the container.
pub const TLS_DIR: &str = "/qdrant/tls";

/// Config keys the operator owns: the overlay may repeat the operator's value but not change it.
pub const LOCKED_PATHS: &[&[&str]] = &[
    &["cluster", "enabled"],
    &["cluster", "p2p", "port"],
    &["cluster", "p2p", "enable_tls"],
    &["service", "host"],
    &["service", "http_port"],
    &["service", "grpc_port"],
    &["service", "enable_tls"],
    &["service", "api_key"],
    &["service", "read_only_api_key"],
    &["storage", "storage_path"],
    &["storage", "snapshots_path"],
    &["tls", "cert"],
    &["tls", "key"],
    &["tls", "ca_cert"],
];

/// The operator's defaults for a peer of `qc`.
pub fn operator_defaults(tls: Option<&TlsSpec>) -> Value {
    let mut config = json!({
        "log_level": "INFO",
        "storage": {
            "storage_path": STORAGE_DIR,
            "snapshots_path": SNAPSHOTS_DIR,
        },
        "service": {
            "host": "0.0.0.0",
            "http_port": HTTP_PORT,
            "grpc_port": GRPC_PORT,
            "enable_tls": tls.is_some(),
        },
        "cluster": {
            "enabled": true,
            "p2p": {
                "port": P2P_PORT,
                "enable_tls": tls.is_some_and(|t| t.p2p),
            },
            "consensus": {
                "tick_period_ms": 100,
            },
        },
    });
    if tls.is_some() {
        if let Some(root) = config.as_object_mut() {
            root.insert(
                "tls".to_string(),
                json!({
                    "cert": format!("{TLS_DIR}/tls.crt"),
                    "key": format!("{TLS_DIR}/tls.key"),
                    "ca_cert": format!("{TLS_DIR}/ca.crt"),
                }),
            );
        }
    }
    config
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything else (scalars, arrays,
/// null) replaces the base value.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// Overlay entries that would change a key the operator owns, as readable messages.
pub fn locked_violations(overlay: &Map<String, Value>, tls: Option<&TlsSpec>) -> Vec<String> {
    let defaults = operator_defaults(tls);
    let overlay = Value::Object(overlay.clone());
    LOCKED_PATHS
        .iter()
        .filter_map(|path| {
            let wanted = lookup(&overlay, path)?;
            let owned = lookup(&defaults, path);
            if owned == Some(wanted) {
                return None;
            }
            Some(format!(
                "config.{} is managed by the operator{}",
                path.join("."),
                match owned {
                    Some(v) => format!(" (must be {v})"),
                    None => " (use spec.apiKey / spec.tls instead)".to_string(),
                }
            ))
        })
        .collect()
}

/// The merged configuration of `qc`'s peers as a JSON value.
pub fn merged_config(qc: &QdrantCluster) -> Value {
    let mut config = operator_defaults(qc.spec.tls.as_ref());
    if let Some(overlay) = &qc.spec.config {
        deep_merge(&mut config, &Value::Object(overlay.clone()));
    }
    config
}

/// The merged configuration rendered as `config.yaml`.
pub fn render_config(qc: &QdrantCluster) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&merged_config(qc))
}

/// Hex SHA-256 over the given parts (each length-prefixed so boundaries matter).
pub fn checksum<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_merge_merges_objects_and_replaces_leaves() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        deep_merge(
            &mut base,
            &json!({"a": {"c": [3], "e": {"f": true}}, "d": null, "g": 5}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": [3], "e": {"f": true}}, "d": null, "g": 5})
        );
    }

    #[test]
    fn overlay_keeps_cluster_mode_and_adds_user_keys() {
        let qc: QdrantCluster = serde_json::from_value(json!({
            "apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
            "metadata": {"name": "a", "namespace": "b"},
            "spec": {"config": {"log_level": "DEBUG", "storage": {"optimizers": {"indexing_threshold_kb": 1}}}}
        }))
        .expect("cr");
        let merged = merged_config(&qc);
        assert_eq!(merged["cluster"]["enabled"], json!(true));
        assert_eq!(merged["log_level"], json!("DEBUG"));
        assert_eq!(merged["storage"]["storage_path"], json!(STORAGE_DIR));
        assert_eq!(merged["storage"]["optimizers"]["indexing_threshold_kb"], json!(1));
    }

    #[test]
    fn locked_keys_may_be_repeated_but_not_changed() {
        let same = json!({"cluster": {"enabled": true, "p2p": {"port": 6335}}});
        assert!(locked_violations(same.as_object().expect("object"), None).is_empty());
        let changed = json!({"cluster": {"enabled": false}, "service": {"api_key": "secret"}});
        let problems = locked_violations(changed.as_object().expect("object"), None);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("cluster.enabled"));
        assert!(problems[1].contains("service.api_key"));
    }

    #[test]
    fn checksum_depends_on_part_boundaries() {
        assert_ne!(
            checksum([b"ab".as_slice(), b"c".as_slice()]),
            checksum([b"a".as_slice(), b"bc".as_slice()])
        );
        assert_eq!(checksum([b"x".as_slice()]).len(), 64);
    }
}
