//! Checks of a QdrantCluster that the CRD schema cannot express (or that an outdated CRD in the
//! cluster might not enforce). An invalid spec is reported (Degraded, Event) and nothing is
//! applied or deleted.

use crate::build::config::locked_violations;
use crate::crd::{QdrantCluster, MAX_NAME_LEN};

/// Everything wrong with `qc`, as readable messages (empty when valid).
pub fn validate(qc: &QdrantCluster) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &qc.spec;
    let name = qc.name_str();
    if !is_dns1035_label(name) || name.len() > MAX_NAME_LEN {
        problems.push(format!(
            "metadata.name {name:?} must be a DNS-1035 label of at most {MAX_NAME_LEN} characters"
        ));
    }
    if qc.metadata.namespace.is_none() {
        problems.push("the QdrantCluster has no namespace".to_string());
    }
    if !(1..=100).contains(&spec.size) {
        problems.push(format!("size must be between 1 and 100, got {}", spec.size));
    }
    if spec.image.trim().is_empty() {
        problems.push("image must not be empty".to_string());
    }
    if spec.version.trim().is_empty() {
        problems.push("version must not be empty".to_string());
    }
    if spec.termination_grace_period_seconds < 0 {
        problems.push("terminationGracePeriodSeconds must not be negative".to_string());
    }
    if !is_quantity(&spec.storage.size.0) {
        problems.push(format!(
            "storage.size {:?} is not a Kubernetes quantity",
            spec.storage.size.0
        ));
    }
    if spec.pod_disruption_budget.max_unavailable.is_some() && spec.pod_disruption_budget.min_available.is_some() {
        problems.push("podDisruptionBudget: set at most one of maxUnavailable and minAvailable".to_string());
    }
    for (field, selector) in [("apiKey", &spec.api_key), ("readOnlyApiKey", &spec.read_only_api_key)] {
        if let Some(s) = selector {
            if s.name.is_empty() || s.key.is_empty() {
                problems.push(format!("{field} needs both name and key"));
            }
        }
    }
    if let Some(overlay) = &spec.config {
        problems.extend(locked_violations(overlay, spec.tls.as_ref()));
    }
    // The CRD's own CEL rules, evaluated here too in case the installed CRD is older.
    if let Err(errors) = kube::core::cel::validate_cel(qc) {
        let text = errors.to_string();
        if !problems.iter().any(|p| text.contains(p.as_str())) {
            problems.push(text);
        }
    }
    problems
}

fn is_dns1035_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-')
}

/// Kubernetes quantity syntax: a decimal number with an optional binary/decimal suffix or
/// exponent.
fn is_quantity(s: &str) -> bool {
    let s = s.trim();
    let number_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let valid_number = !digits.is_empty()
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let valid_suffix = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
    ) || (suffix.len() > 1
        && (suffix.starts_with('e') || suffix.starts_with('E'))
        && suffix[1..]
            .trim_start_matches(['+', '-'])
            .chars()
            .all(|c| c.is_ascii_digit())
        && !suffix[1..].trim_start_matches(['+', '-']).is_empty());
    valid_number && valid_suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(name: &str, spec: serde_json::Value) -> QdrantCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
            "metadata": {"name": name, "namespace": "db"},
            "spec": spec,
        }))
        .expect("cr")
    }

    #[test]
    fn a_default_cluster_is_valid() {
        assert_eq!(validate(&cr("demo", serde_json::json!({}))), Vec::<String>::new());
    }

    #[test]
    fn reports_every_problem() {
        let qc = cr(
            "Bad_Name",
            serde_json::json!({
                "size": 0,
                "image": " ",
                "storage": {"size": "lots"},
                "config": {"cluster": {"enabled": false}, "service": {"http_port": 7000}},
            }),
        );
        let problems = validate(&qc);
        let text = problems.join("\n");
        for needle in [
            "metadata.name",
            "size must be between 1 and 100",
            "image must not be empty",
            "storage.size",
            "config.cluster.enabled is managed by the operator",
            "config.service.http_port is managed by the operator",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["10Gi", "1", "1.5G", "500M", "1e3", "100m"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "ten", "1.2.3Gi", "10GB", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
