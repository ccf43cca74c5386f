//! `qdrant.Collections`: Collections: lifecycle, aliases, cluster setup. Each call converts the request into
//! `model` types, calls the same `Node`/`Collection` method as REST, and converts the result.
//!
//! The `timeout` of collection operations bounds their wait for consensus, exactly as REST's
//! `?timeout=`: it is passed to the `Node` call rather than cancelling the call midway (a create
//! or delete cut off halfway would leave the lifecycle lock released while its work goes on).

use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

use super::access::{access_of, guard};
use super::convert::{from_grpc, to_grpc};
use super::elapsed;
use super::error::status;
use crate::api::auth::Need;
use crate::api::consensus_timeout;
use crate::node::Node;

pub struct CollectionsService {
    node: Arc<Node>,
}

impl CollectionsService {
    pub fn new(node: Arc<Node>) -> Self {
        CollectionsService { node }
    }

    /// `NotFound` for an unknown collection, as every REST collection route answers.
    fn existing(&self, name: &str) -> Result<(), Status> {
        self.node.collection(name).map(|_| ()).map_err(status)
    }
}

fn aliases_response(
    started: Instant,
    aliases: Vec<crate::model::alias::AliasDescription>,
) -> Response<grpc::ListAliasesResponse> {
    Response::new(grpc::ListAliasesResponse {
        aliases: aliases
            .into_iter()
            .map(|a| grpc::AliasDescription {
                alias_name: a.alias_name,
                collection_name: a.collection_name,
            })
            .collect(),
        time: elapsed(started),
    })
}

fn operation(started: Instant, result: bool) -> Response<grpc::CollectionOperationResponse> {
    Response::new(grpc::CollectionOperationResponse {
        result,
        time: elapsed(started),
    })
}

const SHARD_KEYS: &str = "shard keys (custom sharding) are not supported by this node yet";

#[tonic::async_trait]
impl grpc::collections_server::Collections for CollectionsService {
    async fn get(
        &self,
        request: Request<grpc::GetCollectionInfoRequest>,
    ) -> Result<Response<grpc::GetCollectionInfoResponse>, Status> {
        let started = Instant::now();
        guard(&request, Need::read(&request.get_ref().collection_name))?;
        let name = request.into_inner().collection_name;
        self.node.sync_view().await.map_err(status)?;
        let info = self
            .node
            .collection(&name)
            .map_err(status)?
            .info()
            .await
            .map_err(status)?;
        Ok(Response::new(grpc::GetCollectionInfoResponse {
            result: Some(to_grpc::collection::collection_info(info)),
            time: elapsed(started),
        }))
    }

    async fn list(
        &self,
        request: Request<grpc::ListCollectionsRequest>,
    ) -> Result<Response<grpc::ListCollectionsResponse>, Status> {
        let started = Instant::now();
        let access = access_of(&request)?;
        self.node.sync_view().await.map_err(status)?;
        let collections = self
            .node
            .collection_names()
            .into_iter()
            .filter(|name| access.sees(name))
            .map(|name| grpc::CollectionDescription { name })
            .collect();
        Ok(Response::new(grpc::ListCollectionsResponse {
            collections,
            time: elapsed(started),
        }))
    }

    async fn create(
        &self,
        request: Request<grpc::CreateCollection>,
    ) -> Result<Response<grpc::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let (name, wait) = (request.collection_name.clone(), consensus_timeout(request.timeout));
        let body = from_grpc::collection::create_collection(request).map_err(status)?;
        let created = self.node.create_collection(&name, body, wait).await.map_err(status)?;
        Ok(operation(started, created))
    }

    async fn update(
        &self,
        request: Request<grpc::UpdateCollection>,
    ) -> Result<Response<grpc::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let (name, wait) = (request.collection_name.clone(), consensus_timeout(request.timeout));
        let body = from_grpc::collection::update_collection(request).map_err(status)?;
        let updated = self.node.update_collection(&name, body, wait).await.map_err(status)?;
        Ok(operation(started, updated))
    }

    async fn delete(
        &self,
        request: Request<grpc::DeleteCollection>,
    ) -> Result<Response<grpc::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let deleted = self
            .node
            .delete_collection(&request.collection_name, consensus_timeout(request.timeout))
            .await
            .map_err(status)?;
        Ok(operation(started, deleted))
    }

    async fn update_aliases(
        &self,
        request: Request<grpc::ChangeAliases>,
    ) -> Result<Response<grpc::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let timeout = consensus_timeout(request.timeout);
        let change = from_grpc::collection::change_aliases(request).map_err(status)?;
        let done = self.node.update_aliases(change, timeout).await.map_err(status)?;
        Ok(operation(started, done))
    }

    async fn list_collection_aliases(
        &self,
        request: Request<grpc::ListCollectionAliasesRequest>,
    ) -> Result<Response<grpc::ListAliasesResponse>, Status> {
        let started = Instant::now();
        guard(&request, Need::read(&request.get_ref().collection_name))?;
        let access = access_of(&request)?.clone();
        let mut aliases = self
            .node
            .collection_aliases(&request.into_inner().collection_name)
            .map_err(status)?;
        aliases.retain(|a| access.sees(&a.alias_name));
        Ok(aliases_response(started, aliases))
    }

    async fn list_aliases(
        &self,
        request: Request<grpc::ListAliasesRequest>,
    ) -> Result<Response<grpc::ListAliasesResponse>, Status> {
        let started = Instant::now();
        let access = access_of(&request)?;
        let mut aliases = self.node.list_aliases();
        aliases.retain(|a| access.sees_alias(a));
        Ok(aliases_response(started, aliases))
    }

    async fn collection_cluster_info(
        &self,
        request: Request<grpc::CollectionClusterInfoRequest>,
    ) -> Result<Response<grpc::CollectionClusterInfoResponse>, Status> {
        let started = Instant::now();
        guard(&request, Need::read_extras(&request.get_ref().collection_name))?;
        let info = self
            .node
            .collection_cluster_info(&request.into_inner().collection_name)
            .map_err(status)?;
        Ok(Response::new(grpc::CollectionClusterInfoResponse {
            time: elapsed(started),
            ..to_grpc::cluster::cluster_info(info)
        }))
    }

    async fn collection_exists(
        &self,
        request: Request<grpc::CollectionExistsRequest>,
    ) -> Result<Response<grpc::CollectionExistsResponse>, Status> {
        let started = Instant::now();
        guard(&request, Need::read(&request.get_ref().collection_name))?;
        self.node.sync_view().await.map_err(status)?;
        let exists = self.node.collection(&request.into_inner().collection_name).is_ok();
        Ok(Response::new(grpc::CollectionExistsResponse {
            result: Some(grpc::CollectionExists { exists }),
            time: elapsed(started),
        }))
    }

    async fn update_collection_cluster_setup(
        &self,
        request: Request<grpc::UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<grpc::UpdateCollectionClusterSetupResponse>, Status> {
        let started = Instant::now();
        let need = Need::Collection {
            name: request.get_ref().collection_name.clone(),
            write: true,
            manage: true,
            extras: true,
        };
        guard(&request, need)?;
        let request = request.into_inner();
        let op = from_grpc::cluster::cluster_operation(request.operation)?;
        let result = self
            .node
            .update_collection_cluster(&request.collection_name, op, consensus_timeout(request.timeout))
            .await
            .map_err(status)?;
        Ok(Response::new(grpc::UpdateCollectionClusterSetupResponse {
            result,
            time: elapsed(started),
        }))
    }

    async fn create_shard_key(
        &self,
        request: Request<grpc::CreateShardKeyRequest>,
    ) -> Result<Response<grpc::CreateShardKeyResponse>, Status> {
        self.existing(&request.into_inner().collection_name)?;
        Err(Status::unimplemented(SHARD_KEYS))
    }

    async fn delete_shard_key(
        &self,
        request: Request<grpc::DeleteShardKeyRequest>,
    ) -> Result<Response<grpc::DeleteShardKeyResponse>, Status> {
        self.existing(&request.into_inner().collection_name)?;
        Err(Status::unimplemented(SHARD_KEYS))
    }

    async fn list_shard_keys(
        &self,
        request: Request<grpc::ListShardKeysRequest>,
    ) -> Result<Response<grpc::ListShardKeysResponse>, Status> {
        guard(&request, Need::read(&request.get_ref().collection_name))?;
        self.existing(&request.into_inner().collection_name)?;
        Err(Status::unimplemented(SHARD_KEYS))
    }
}
