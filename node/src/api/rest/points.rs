//! Point endpoints: writes (upsert, delete, payload, vectors, batch) and reads (retrieve,
//! scroll, count, search, query, recommend). Each parses, calls the collection, renders.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;

use super::error::ApiError;
use super::extract::{Body, Params};
use super::response::ok;
use super::{ReadParams, WriteParams};
use crate::collection::groups::GroupedRequest;
use crate::error::Error;
use crate::model::facet::FacetRequest;
use crate::model::groups::{GroupParams, Grouped};
use crate::model::matrix::SearchMatrixRequest;
use crate::model::operations::{
    BatchRequest, DeletePayloadRequest, DeleteVectorsRequest, PointOperation, PointsSelector, SetPayloadRequest,
    UpdateVectorsRequest, UpsertRequest, WriteOrdering,
};
use crate::model::payload::PayloadSelector;
use crate::model::query::{
    CountRequest, CountResult, DiscoverBatchRequest, DiscoverRequest, PointRequest, QueryBatchRequest, QueryRequest,
    QueryResponse, RecommendBatchRequest, RecommendRequest, ScrollRequest, SearchBatchRequest, SearchRequest,
};
use crate::model::vector::WithVector;
use crate::model::PointId;
use crate::node::Node;

type ApiResult = Result<Response, ApiError>;

async fn write(node: &Node, name: &str, params: &WriteParams, op: PointOperation) -> ApiResult {
    let t = Instant::now();
    let ordering = WriteOrdering::parse(params.ordering.as_deref())?;
    let collection = node.collection(name)?;
    Ok(ok(
        t,
        collection
            .update_ordered(op, params.wait.unwrap_or(false), ordering, params.timeout)
            .await?,
    ))
}

pub async fn upsert(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<UpsertRequest>,
) -> ApiResult {
    write(&node, &name, &p, body.into_operation()?).await
}

pub async fn delete(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<PointsSelector>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::Delete(body.into_selector())).await
}

pub async fn set_payload(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<SetPayloadRequest>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::set_payload(body)?).await
}

pub async fn overwrite_payload(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<SetPayloadRequest>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::overwrite_payload(body)?).await
}

pub async fn delete_payload(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<DeletePayloadRequest>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::delete_payload(body)?).await
}

pub async fn clear_payload(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<PointsSelector>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::ClearPayload(body.into_selector())).await
}

pub async fn update_vectors(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<UpdateVectorsRequest>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::update_vectors(body)).await
}

pub async fn delete_vectors(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<DeleteVectorsRequest>,
) -> ApiResult {
    write(&node, &name, &p, PointOperation::delete_vectors(body)?).await
}

pub async fn batch(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<WriteParams>,
    Body(body): Body<BatchRequest>,
) -> ApiResult {
    let t = Instant::now();
    let ordering = WriteOrdering::parse(p.ordering.as_deref())?;
    let collection = node.collection(&name)?;
    let ops = body
        .operations
        .into_iter()
        .map(PointOperation::from_batch)
        .collect::<Result<Vec<_>, Error>>()?;
    let results = collection
        .update_batch(ops, p.wait.unwrap_or(false), ordering, p.timeout)
        .await?;
    Ok(ok(t, results))
}

pub async fn get_point(
    State(node): State<Arc<Node>>,
    Path((name, id)): Path<(String, String)>,
    Params(p): Params<ReadParams>,
) -> ApiResult {
    let t = Instant::now();
    let id: PointId = id
        .parse()
        .map_err(|_: String| ApiError::Node(Error::bad_input(format!("Can not recognize \"{id}\" as point id"))))?;
    let consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    let mut found = collection
        .retrieve(
            vec![id],
            PayloadSelector::All,
            WithVector::All(true),
            consistency,
            p.timeout,
        )
        .await?;
    match found.pop() {
        Some(record) => Ok(ok(t, record)),
        None => Err(Error::not_found(format!("Point with id {id} does not exists!")).into()),
    }
}

pub async fn get_points(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<PointRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    let records = collection
        .retrieve(
            body.ids,
            body.with_payload.unwrap_or(PayloadSelector::All),
            body.with_vector.unwrap_or_default(),
            consistency,
            p.timeout,
        )
        .await?;
    Ok(ok(t, records))
}

pub async fn scroll(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<ScrollRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    Ok(ok(t, collection.scroll_points(body, consistency, p.timeout).await?))
}

pub async fn count(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<CountRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    let count = collection
        .count(body.filter, body.exact, consistency, p.timeout)
        .await?;
    Ok(ok(t, CountResult { count }))
}

pub async fn facet(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<FacetRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    Ok(ok(t, collection.facet(body, consistency, p.timeout).await?))
}

pub async fn matrix_pairs(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<SearchMatrixRequest>,
) -> ApiResult {
    let t = Instant::now();
    let matrix = node
        .collection(&name)?
        .search_matrix(body, p.consistency()?, p.timeout)
        .await?;
    Ok(ok(t, matrix.pairs()))
}

pub async fn matrix_offsets(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(body): Body<SearchMatrixRequest>,
) -> ApiResult {
    let t = Instant::now();
    let matrix = node
        .collection(&name)?
        .search_matrix(body, p.consistency()?, p.timeout)
        .await?;
    Ok(ok(t, matrix.offsets()))
}

pub async fn search(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<SearchRequest>,
) -> ApiResult {
    let t = Instant::now();
    body.consistency = p.consistency()?;
    let collection = node.collection(&name)?;
    Ok(ok(t, collection.search(body, p.timeout).await?))
}

pub async fn search_batch(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<SearchBatchRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    body.searches.iter_mut().for_each(|r| r.consistency = consistency);
    let collection = node.collection(&name)?;
    Ok(ok(t, collection.search_batch(body.searches, p.timeout, true).await?))
}

pub async fn query(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<QueryRequest>,
) -> ApiResult {
    let t = Instant::now();
    body.consistency = p.consistency()?;
    Ok(ok(
        t,
        QueryResponse {
            points: node.query(&name, body, p.timeout).await?,
        },
    ))
}

pub async fn query_batch(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<QueryBatchRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    body.searches.iter_mut().for_each(|r| r.consistency = consistency);
    let collection = node.collection(&name)?;
    let results = collection
        .query_batch(body.searches, node.as_ref(), p.timeout, true)
        .await?;
    let results: Vec<QueryResponse> = results.into_iter().map(|points| QueryResponse { points }).collect();
    Ok(ok(t, results))
}

pub async fn recommend(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<RecommendRequest>,
) -> ApiResult {
    let t = Instant::now();
    body.consistency = p.consistency()?;
    Ok(ok(t, node.recommend(&name, body, p.timeout).await?))
}

pub async fn discover(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<DiscoverRequest>,
) -> ApiResult {
    let t = Instant::now();
    body.consistency = p.consistency()?;
    Ok(ok(t, node.discover(&name, body, p.timeout).await?))
}

pub async fn discover_batch(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<DiscoverBatchRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    body.searches.iter_mut().for_each(|r| r.consistency = consistency);
    let collection = node.collection(&name)?;
    let results = collection
        .discover_batch(body.searches, node.as_ref(), p.timeout, true)
        .await?;
    Ok(ok(t, results))
}

/// `points/{query,search,recommend}/groups`: the plain request plus `group_by`.
async fn groups(node: &Node, name: &str, request: GroupedRequest, params: GroupParams, p: &ReadParams) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.groups(name, request, params, p.timeout).await?))
}

pub async fn query_groups(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<Grouped<QueryRequest>>,
) -> ApiResult {
    body.request.consistency = p.consistency()?;
    groups(&node, &name, GroupedRequest::Query(body.request), body.groups, &p).await
}

pub async fn search_groups(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<Grouped<SearchRequest>>,
) -> ApiResult {
    body.request.consistency = p.consistency()?;
    groups(&node, &name, GroupedRequest::Search(body.request), body.groups, &p).await
}

pub async fn recommend_groups(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<Grouped<RecommendRequest>>,
) -> ApiResult {
    body.request.consistency = p.consistency()?;
    groups(&node, &name, GroupedRequest::Recommend(body.request), body.groups, &p).await
}

pub async fn recommend_batch(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(p): Params<ReadParams>,
    Body(mut body): Body<RecommendBatchRequest>,
) -> ApiResult {
    let t = Instant::now();
    let consistency = p.consistency()?;
    body.searches.iter_mut().for_each(|r| r.consistency = consistency);
    let collection = node.collection(&name)?;
    let results = collection
        .recommend_batch(body.searches, node.as_ref(), p.timeout, true)
        .await?;
    Ok(ok(t, results))
}
