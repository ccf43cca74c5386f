//! `qdrant.Qdrant`: the version check clients make on connect.

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

use crate::api::rest::service::QDRANT_API_VERSION;

pub struct QdrantService;

#[tonic::async_trait]
impl grpc::qdrant_server::Qdrant for QdrantService {
    async fn health_check(
        &self,
        _request: Request<grpc::HealthCheckRequest>,
    ) -> Result<Response<grpc::HealthCheckReply>, Status> {
        Ok(Response::new(grpc::HealthCheckReply {
            title: "qdrant - vector search engine".into(),
            version: QDRANT_API_VERSION.into(),
            commit: None,
        }))
    }
}
