//! `qdrant.Qdrant` (the version check clients make on connect) and `qdrant.Snapshots`, which
//! answers `Unimplemented` until this node has snapshots.

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

pub struct SnapshotsService;

fn no_snapshots<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("Snapshots are not supported by this node yet"))
}

#[tonic::async_trait]
impl grpc::snapshots_server::Snapshots for SnapshotsService {
    async fn create(
        &self,
        _request: Request<grpc::CreateSnapshotRequest>,
    ) -> Result<Response<grpc::CreateSnapshotResponse>, Status> {
        no_snapshots()
    }

    async fn list(
        &self,
        _request: Request<grpc::ListSnapshotsRequest>,
    ) -> Result<Response<grpc::ListSnapshotsResponse>, Status> {
        no_snapshots()
    }

    async fn delete(
        &self,
        _request: Request<grpc::DeleteSnapshotRequest>,
    ) -> Result<Response<grpc::DeleteSnapshotResponse>, Status> {
        no_snapshots()
    }

    async fn create_full(
        &self,
        _request: Request<grpc::CreateFullSnapshotRequest>,
    ) -> Result<Response<grpc::CreateSnapshotResponse>, Status> {
        no_snapshots()
    }

    async fn list_full(
        &self,
        _request: Request<grpc::ListFullSnapshotsRequest>,
    ) -> Result<Response<grpc::ListSnapshotsResponse>, Status> {
        no_snapshots()
    }

    async fn delete_full(
        &self,
        _request: Request<grpc::DeleteFullSnapshotRequest>,
    ) -> Result<Response<grpc::DeleteSnapshotResponse>, Status> {
        no_snapshots()
    }
}
