//! Integer formats in the CRDs' schemas that Kubernetes knows. schemars names Rust's unsigned
//! integers `uint32` / `uint64` (and `uint8`, `uint16`), which `kubectl apply` warns about
//! (`unrecognized format "uint64"`): Kubernetes' OpenAPI formats for integers are `int32` and
//! `int64`. Unsigned values keep their `minimum: 0`; `uint32` needs `int64` to hold its range.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The format Kubernetes knows for a schemars integer format, if it needs another name.
fn known_format(format: &str) -> Option<&'static str> {
    match format {
        "uint8" | "uint16" => Some("int32"),
        "uint32" | "uint64" | "uint" => Some("int64"),
        _ => None,
    }
}

/// Renames the integer formats in every `format` of `schema`, recursively.
fn normalise(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("format") {
                if let Some(known) = known_format(f) {
                    map.insert("format".into(), Value::String(known.into()));
                }
            }
            map.values_mut().for_each(normalise);
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// `crd` with the integer formats of its versions' schemas renamed (see the module note).
pub fn with_known_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises");
    if let Some(versions) = value.pointer_mut("/spec/versions") {
        normalise(versions);
    }
    serde_json::from_value(value).expect("renaming formats keeps a valid CRD")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd_backup::QdrantBackup;
    use crate::QdrantCluster;
    use kube::CustomResourceExt;

    /// Every `format` in a schema.
    fn formats(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(f)) = map.get("format") {
                    out.push(f.clone());
                }
                map.values().for_each(|v| formats(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_crds_use_only_formats_kubernetes_knows() {
        for (raw, name) in [
            (QdrantCluster::crd(), "QdrantCluster"),
            (QdrantBackup::crd(), "QdrantBackup"),
        ] {
            let mut before = Vec::new();
            formats(&serde_json::to_value(&raw).unwrap(), &mut before);
            assert!(
                before.iter().any(|f| f.starts_with("uint")),
                "{name}: nothing to rename"
            );
            let fixed = with_known_formats(raw.clone());
            let mut after = Vec::new();
            formats(&serde_json::to_value(&fixed).unwrap(), &mut after);
            // kube-openapi's known formats for the types the CRDs use.
            let known = ["int32", "int64", "double", "float", "date-time", "byte"];
            assert!(after.iter().all(|f| known.contains(&f.as_str())), "{name}: {after:?}");
            assert_eq!(before.len(), after.len());
            // Only formats changed: names, versions and the rest are as generated.
            assert_eq!(fixed.metadata.name, raw.metadata.name);
            assert_eq!(fixed.spec.names, raw.spec.names);
        }
    }
}
