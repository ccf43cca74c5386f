//! `qdrant.Snapshots`: collection and full snapshots, the same node operations REST calls.

use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

use super::access::guard;
use super::elapsed;
use super::error::status;
use crate::api::auth::Need;
use crate::model::snapshot::SnapshotDescription;
use crate::node::snapshots::SnapshotScope;
use crate::node::Node;

pub struct SnapshotsService {
    node: Arc<Node>,
}

impl SnapshotsService {
    pub fn new(node: Arc<Node>) -> Self {
        SnapshotsService { node }
    }
}

fn description(d: SnapshotDescription) -> grpc::SnapshotDescription {
    let creation_time = d
        .creation_time
        .as_deref()
        .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| prost_types::Timestamp {
            seconds: t.and_utc().timestamp(),
            nanos: 0,
        });
    grpc::SnapshotDescription {
        name: d.name,
        creation_time,
        size: d.size as i64,
        checksum: d.checksum,
    }
}

impl SnapshotsService {
    async fn create_in(&self, scope: SnapshotScope) -> Result<Response<grpc::CreateSnapshotResponse>, Status> {
        let t = Instant::now();
        let node = self.node.clone();
        // Its own task, as on REST: a client that goes away does not cancel the snapshot.
        let created = tokio::spawn(async move { node.create_snapshot(&scope).await })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        Ok(Response::new(grpc::CreateSnapshotResponse {
            snapshot_description: Some(description(created)),
            time: elapsed(t),
        }))
    }

    fn list_in(&self, scope: SnapshotScope) -> Result<Response<grpc::ListSnapshotsResponse>, Status> {
        let t = Instant::now();
        let listed = self.node.list_snapshots(&scope).map_err(status)?;
        Ok(Response::new(grpc::ListSnapshotsResponse {
            snapshot_descriptions: listed.into_iter().map(description).collect(),
            time: elapsed(t),
        }))
    }

    async fn delete_in(
        &self,
        scope: SnapshotScope,
        name: &str,
    ) -> Result<Response<grpc::DeleteSnapshotResponse>, Status> {
        let t = Instant::now();
        self.node.delete_snapshot(&scope, name).await.map_err(status)?;
        Ok(Response::new(grpc::DeleteSnapshotResponse { time: elapsed(t) }))
    }
}

#[tonic::async_trait]
impl grpc::snapshots_server::Snapshots for SnapshotsService {
    async fn create(
        &self,
        request: Request<grpc::CreateSnapshotRequest>,
    ) -> Result<Response<grpc::CreateSnapshotResponse>, Status> {
        guard(&request, Need::write_extras(&request.get_ref().collection_name))?;
        let r = request.into_inner();
        self.create_in(SnapshotScope::Collection(r.collection_name)).await
    }

    async fn list(
        &self,
        request: Request<grpc::ListSnapshotsRequest>,
    ) -> Result<Response<grpc::ListSnapshotsResponse>, Status> {
        guard(&request, Need::read_extras(&request.get_ref().collection_name))?;
        self.list_in(SnapshotScope::Collection(request.into_inner().collection_name))
    }

    async fn delete(
        &self,
        request: Request<grpc::DeleteSnapshotRequest>,
    ) -> Result<Response<grpc::DeleteSnapshotResponse>, Status> {
        guard(&request, Need::write_extras(&request.get_ref().collection_name))?;
        let r = request.into_inner();
        self.delete_in(SnapshotScope::Collection(r.collection_name), &r.snapshot_name)
            .await
    }

    async fn create_full(
        &self,
        _request: Request<grpc::CreateFullSnapshotRequest>,
    ) -> Result<Response<grpc::CreateSnapshotResponse>, Status> {
        self.create_in(SnapshotScope::Full).await
    }

    async fn list_full(
        &self,
        _request: Request<grpc::ListFullSnapshotsRequest>,
    ) -> Result<Response<grpc::ListSnapshotsResponse>, Status> {
        self.list_in(SnapshotScope::Full)
    }

    async fn delete_full(
        &self,
        request: Request<grpc::DeleteFullSnapshotRequest>,
    ) -> Result<Response<grpc::DeleteSnapshotResponse>, Status> {
        self.delete_in(SnapshotScope::Full, &request.into_inner().snapshot_name)
            .await
    }
}
