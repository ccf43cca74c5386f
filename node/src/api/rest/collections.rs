//! Collection endpoints: list, create, get, update, delete, exists, payload indexes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{Body, Params};
use super::response::ok;
use super::WriteParams;
use crate::api::auth::Access;
use crate::model::collection::{CreateCollection, UpdateCollection};
use crate::node::Node;
use crate::storage::payload_index::PayloadFieldSchema;

type ApiResult = Result<Response, ApiError>;

pub async fn list(State(node): State<Arc<Node>>, Extension(access): Extension<Access>) -> ApiResult {
    let t = Instant::now();
    node.sync_view().await?;
    let collections: Vec<_> = node
        .collection_names()
        .into_iter()
        .filter(|name| access.sees(name))
        .map(|name| json!({"name": name}))
        .collect();
    Ok(ok(t, json!({"collections": collections})))
}

pub async fn create(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<CreateCollection>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.create_collection(&name, body, p.timeout()).await?))
}

pub async fn get(State(node): State<Arc<Node>>, Path(name): Path<String>) -> ApiResult {
    let t = Instant::now();
    node.sync_view().await?;
    Ok(ok(t, node.collection(&name)?.info().await?))
}

pub async fn update(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<UpdateCollection>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.update_collection(&name, body, p.timeout()).await?))
}

pub async fn delete(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.delete_collection(&name, p.timeout()).await?))
}

pub async fn exists(State(node): State<Arc<Node>>, Path(name): Path<String>) -> ApiResult {
    let t = Instant::now();
    node.sync_view().await?;
    Ok(ok(t, json!({"exists": node.collection(&name).is_ok()})))
}

#[derive(Deserialize)]
pub struct CreateIndex {
    field_name: String,
    #[serde(default)]
    field_schema: Option<PayloadFieldSchema>,
}

pub async fn create_index(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<CreateIndex>,
) -> ApiResult {
    let t = Instant::now();
    let schema = body.field_schema.ok_or_else(|| {
        ApiError::Node(crate::error::Error::bad_input(
            "field_schema is required to create a payload index",
        ))
    })?;
    Ok(ok(
        t,
        node.create_payload_index(&name, &body.field_name, schema, p.timeout())
            .await?,
    ))
}

pub async fn delete_index(
    State(node): State<Arc<Node>>,
    Path((name, field)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.delete_payload_index(&name, &field, p.timeout()).await?))
}

/// `PUT /collections/{c}/vectors/{vector_name}`: adds a dense or sparse vector.
pub async fn create_vector_name(
    State(node): State<Arc<Node>>,
    Path((name, vector)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
    Body(body): Body<crate::model::vector_name::VectorNameConfig>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.create_vector_name(&name, &vector, body, p.timeout()).await?))
}

/// `DELETE /collections/{c}/vectors/{vector_name}`: removes a vector and its data.
pub async fn delete_vector_name(
    State(node): State<Arc<Node>>,
    Path((name, vector)): Path<(String, String)>,
    Params(p): Params<WriteParams>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.delete_vector_name(&name, &vector, p.timeout()).await?))
}

/// `GET /collections/{c}/cluster`: where the collection's replicas are.
pub async fn cluster_info(State(node): State<Arc<Node>>, Path(name): Path<String>) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.collection_cluster_info(&name)?))
}

/// `POST /collections/{c}/cluster`: move/replicate a shard, abort a transfer, drop a replica.
pub async fn update_cluster(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<crate::model::cluster::ClusterOperation>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.update_collection_cluster(&name, body, p.timeout()).await?))
}

/// `GET /aliases`.
pub async fn list_aliases(State(node): State<Arc<Node>>, Extension(access): Extension<Access>) -> ApiResult {
    let t = Instant::now();
    let mut aliases = node.list_aliases();
    aliases.retain(|a| access.sees_alias(a));
    Ok(ok(t, json!({"aliases": aliases})))
}

/// `GET /collections/{c}/aliases`.
pub async fn collection_aliases(
    State(node): State<Arc<Node>>,
    Extension(access): Extension<Access>,
    Path(name): Path<String>,
) -> ApiResult {
    let t = Instant::now();
    let mut aliases = node.collection_aliases(&name)?;
    aliases.retain(|a| access.sees(&a.alias_name));
    Ok(ok(t, json!({"aliases": aliases})))
}

/// `POST /collections/aliases`: create, delete and rename aliases, all or nothing.
pub async fn update_aliases(
    State(node): State<Arc<Node>>,
    Params(p): Params<WriteParams>,
    Body(body): Body<crate::model::alias::ChangeAliases>,
) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.update_aliases(body, p.timeout()).await?))
}
