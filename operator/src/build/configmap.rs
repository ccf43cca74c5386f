//! ConfigMap holding `config.yaml` and the list of peers pod 0 may re-join through.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::config::{render_config, BOOTSTRAP_PEERS_KEY, CONFIG_KEY};
use super::{child_meta, BuildError, BuildInputs, Names};
use crate::crd::QdrantCluster;

/// Builds the ConfigMap `<name>-config`.
pub fn build(qc: &QdrantCluster, names: &Names, inputs: &BuildInputs) -> Result<ConfigMap, BuildError> {
    let mut peers = inputs.bootstrap_peers.join("\n");
    if !peers.is_empty() {
        peers.push('\n');
    }
    Ok(ConfigMap {
        metadata: child_meta(qc, names, names.config_map())?,
        data: Some(BTreeMap::from([
            (CONFIG_KEY.to_string(), render_config(qc)?),
            (BOOTSTRAP_PEERS_KEY.to_string(), peers),
        ])),
        ..ConfigMap::default()
    })
}

/// The rendered `config.yaml` of a built ConfigMap (empty if absent).
pub fn config_yaml(config_map: &ConfigMap) -> &str {
    config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .map(String::as_str)
        .unwrap_or_default()
}
