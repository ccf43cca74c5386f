//! PodDisruptionBudget of the cluster's pods.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, selector_labels, BuildError, Names};
use crate::crd::QdrantCluster;

/// Builds the PodDisruptionBudget, or `None` when disabled. Default: one pod may be disrupted.
pub fn build(qc: &QdrantCluster, names: &Names) -> Result<Option<PodDisruptionBudget>, BuildError> {
    let spec = &qc.spec.pod_disruption_budget;
    if !spec.enabled {
        return Ok(None);
    }
    let (max_unavailable, min_available) = match (&spec.max_unavailable, &spec.min_available) {
        (None, None) => (Some(IntOrString::Int(1)), None),
        (max, min) => (max.clone(), min.clone()),
    };
    Ok(Some(PodDisruptionBudget {
        metadata: child_meta(qc, names, names.pod_disruption_budget())?,
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            }),
            max_unavailable,
            min_available,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }))
}
