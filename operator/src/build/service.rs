//! The headless Service (peer DNS, p2p port) and the client Service (REST and gRPC only).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, selector_labels, BuildError, Names};
use crate::crd::{QdrantCluster, GRPC_PORT, HTTP_PORT, P2P_PORT};

fn port(name: &str, port: i32, app_protocol: Option<&str>) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        app_protocol: app_protocol.map(str::to_string),
        ..ServicePort::default()
    }
}

/// Headless Service `<name>-headless`: gives every pod the stable DNS name its peers use.
/// Not-ready pods are published too, because peers must find each other before `/readyz` passes.
pub fn build_headless(qc: &QdrantCluster, names: &Names) -> Result<Service, BuildError> {
    Ok(Service {
        metadata: child_meta(qc, names, names.headless_service())?,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(names)),
            ports: Some(vec![port("p2p", P2P_PORT, None)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// Client Service `<name>`: REST 6333 and gRPC 6334. The p2p port is never exposed here.
pub fn build_client(qc: &QdrantCluster, names: &Names) -> Result<Service, BuildError> {
    let mut metadata = child_meta(qc, names, names.client_service())?;
    if !qc.spec.service.annotations.is_empty() {
        metadata.annotations = Some(qc.spec.service.annotations.clone());
    }
    Ok(Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(qc.spec.service.type_.as_str().to_string()),
            selector: Some(selector_labels(names)),
            ports: Some(vec![
                port("http", HTTP_PORT, None),
                port("grpc", GRPC_PORT, Some("grpc")),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}
