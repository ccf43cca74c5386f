//! Names the collection of every successful `qdrant.Points` call for the request metrics
//! (`?per_collection=true` on `/metrics` and `/telemetry`), as Qdrant's telemetry wrappers do:
//! a wrapper around the service copies the request's `collection_name` into the response's
//! extensions, where the metrics layer (`auth.rs`) finds it. A failed call carries none.

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

/// The collection a gRPC call was about (a response extension).
#[derive(Debug, Clone)]
pub struct CollectionName(pub String);

/// A `qdrant.Points` service whose responses say which collection they are about.
pub struct Tagged<T>(pub T);

macro_rules! tag_collection {
    ($($method:ident($request:ident) -> $response:ident;)*) => {
        #[tonic::async_trait]
        impl<T: grpc::points_server::Points> grpc::points_server::Points for Tagged<T> {
            $(
                async fn $method(&self, request: Request<grpc::$request>) -> Result<Response<grpc::$response>, Status> {
                    let name = request.get_ref().collection_name.clone();
                    let mut response = self.0.$method(request).await?;
                    response.extensions_mut().insert(CollectionName(name));
                    Ok(response)
                }
            )*
        }
    };
}

tag_collection! {
    upsert(UpsertPoints) -> PointsOperationResponse;
    delete(DeletePoints) -> PointsOperationResponse;
    get(GetPoints) -> GetResponse;
    update_vectors(UpdatePointVectors) -> PointsOperationResponse;
    delete_vectors(DeletePointVectors) -> PointsOperationResponse;
    set_payload(SetPayloadPoints) -> PointsOperationResponse;
    overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
    delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
    clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
    create_field_index(CreateFieldIndexCollection) -> PointsOperationResponse;
    delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
    create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
    delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
    search(SearchPoints) -> SearchResponse;
    search_batch(SearchBatchPoints) -> SearchBatchResponse;
    search_groups(SearchPointGroups) -> SearchGroupsResponse;
    scroll(ScrollPoints) -> ScrollResponse;
    recommend(RecommendPoints) -> RecommendResponse;
    recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
    recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
    discover(DiscoverPoints) -> DiscoverResponse;
    discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
    count(CountPoints) -> CountResponse;
    update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
    query(QueryPoints) -> QueryResponse;
    query_batch(QueryBatchPoints) -> QueryBatchResponse;
    query_groups(QueryPointGroups) -> QueryGroupsResponse;
    facet(FacetCounts) -> FacetResponse;
    search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
    search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
}
