//! A wrapper around the `qdrant.Points` service that, per call, checks the caller's access to
//! the request's collection (and to the collections it looks up), and names the collection of
//! every successful call for the request metrics (`?per_collection=true` on `/metrics` and
//! `/telemetry`), as Qdrant's telemetry wrappers do: the request's `collection_name` goes into
//! the response's extensions, where the metrics layer (`auth.rs`) finds it. A failed call
//! carries none.

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

use super::access::{guard, guard_lookups};
use crate::api::auth::Need;

/// The collection a gRPC call was about (a response extension).
#[derive(Debug, Clone)]
pub struct CollectionName(pub String);

/// A `qdrant.Points` service whose responses say which collection they are about.
pub struct Tagged<T>(pub T);

macro_rules! tag_collection {
    ($($method:ident($request:ident) -> $response:ident: $need:ident;)*) => {
        #[tonic::async_trait]
        impl<T: grpc::points_server::Points> grpc::points_server::Points for Tagged<T> {
            $(
                async fn $method(&self, request: Request<grpc::$request>) -> Result<Response<grpc::$response>, Status> {
                    let name = request.get_ref().collection_name.clone();
                    guard(&request, Need::$need(name.as_str()))?;
                    guard_lookups(&request)?;
                    let mut response = self.0.$method(request).await?;
                    response.extensions_mut().insert(CollectionName(name));
                    Ok(response)
                }
            )*
        }
    };
}

tag_collection! {
    upsert(UpsertPoints) -> PointsOperationResponse: write;
    delete(DeletePoints) -> PointsOperationResponse: write;
    get(GetPoints) -> GetResponse: read;
    update_vectors(UpdatePointVectors) -> PointsOperationResponse: write;
    delete_vectors(DeletePointVectors) -> PointsOperationResponse: write;
    set_payload(SetPayloadPoints) -> PointsOperationResponse: write;
    overwrite_payload(SetPayloadPoints) -> PointsOperationResponse: write;
    delete_payload(DeletePayloadPoints) -> PointsOperationResponse: write;
    clear_payload(ClearPayloadPoints) -> PointsOperationResponse: write;
    create_field_index(CreateFieldIndexCollection) -> PointsOperationResponse: write_extras;
    delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse: write_extras;
    create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse: write_extras;
    delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse: write_extras;
    search(SearchPoints) -> SearchResponse: read;
    search_batch(SearchBatchPoints) -> SearchBatchResponse: read;
    search_groups(SearchPointGroups) -> SearchGroupsResponse: read;
    scroll(ScrollPoints) -> ScrollResponse: read;
    recommend(RecommendPoints) -> RecommendResponse: read;
    recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse: read;
    recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse: read;
    discover(DiscoverPoints) -> DiscoverResponse: read;
    discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse: read;
    count(CountPoints) -> CountResponse: read;
    update_batch(UpdateBatchPoints) -> UpdateBatchResponse: write;
    query(QueryPoints) -> QueryResponse: read;
    query_batch(QueryBatchPoints) -> QueryBatchResponse: read;
    query_groups(QueryPointGroups) -> QueryGroupsResponse: read;
    facet(FacetCounts) -> FacetResponse: read;
    search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse: read;
    search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse: read;
}
