//! NetworkPolicy: only this cluster's pods may reach the p2p port; REST and gRPC stay open.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, selector_labels, BuildError, Names};
use crate::crd::{QdrantCluster, GRPC_PORT, HTTP_PORT, P2P_PORT};

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_string()),
        ..NetworkPolicyPort::default()
    }
}

/// Builds the NetworkPolicy `<name>-p2p`, or `None` when disabled.
pub fn build(qc: &QdrantCluster, names: &Names) -> Result<Option<NetworkPolicy>, BuildError> {
    if !qc.spec.network_policy.enabled {
        return Ok(None);
    }
    let own_pods = LabelSelector {
        match_labels: Some(selector_labels(names)),
        ..LabelSelector::default()
    };
    Ok(Some(NetworkPolicy {
        metadata: child_meta(qc, names, names.network_policy())?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(own_pods.clone()),
            policy_types: Some(vec!["Ingress".to_string()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(own_pods),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![tcp(P2P_PORT)]),
                },
                NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(vec![tcp(HTTP_PORT), tcp(GRPC_PORT)]),
                },
            ]),
            ..NetworkPolicySpec::default()
        }),
    }))
}
