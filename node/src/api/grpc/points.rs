//! `qdrant.Points`: Points: writes, retrieval and every search form. Each call converts the request into
//! `model` types, calls the same `Node`/`Collection` method as REST, and converts the result.

use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant as grpc;
use tonic::{Request, Response, Status};

use super::convert::from_grpc::{collection_config, filter, groups, index, point, query, write};
use super::convert::to_grpc::point as out;
use super::elapsed;
use super::error::status;
use crate::api::{consensus_timeout, within};
use crate::error::Result;
use crate::model::facet::FacetRequest;
use crate::model::matrix::{Matrix, SearchMatrixRequest, DEFAULT_NEIGHBOURS, DEFAULT_SAMPLE};
use crate::model::operations::PointOperation;
use crate::model::payload::PayloadSelector;
use crate::model::query::ScrollRequest;
use crate::node::Node;

type Reply<T> = Result<Response<T>, Status>;

pub struct PointsService {
    node: Arc<Node>,
}

impl PointsService {
    pub fn new(node: Arc<Node>) -> Self {
        PointsService { node }
    }

    /// One write as REST's `write`: `wait` unset is false, `ordering` unset is weak.
    async fn write(
        &self,
        collection: &str,
        wait: Option<bool>,
        ordering: Option<grpc::WriteOrdering>,
        timeout: Option<u64>,
        op: Result<PointOperation>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let started = Instant::now();
        let result = within(timeout, async {
            let ordering = write::ordering(ordering)?;
            let op = op?;
            self.node
                .collection(collection)?
                .update_ordered(op, wait.unwrap_or(false), ordering, timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(operation_response(started, result))
    }
}

fn operation_response(
    started: Instant,
    result: crate::model::operations::UpdateResult,
) -> Response<grpc::PointsOperationResponse> {
    Response::new(grpc::PointsOperationResponse {
        result: Some(out::update_result(result)),
        time: elapsed(started),
        usage: None,
    })
}

/// A call this node has no implementation of (see convert-common: never a fake answer).
#[tonic::async_trait]
impl grpc::points_server::Points for PointsService {
    async fn upsert(&self, request: Request<grpc::UpsertPoints>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::upsert(r.points, r.update_filter, r.update_mode);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn delete(&self, request: Request<grpc::DeletePoints>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::delete(r.points);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn get(&self, request: Request<grpc::GetPoints>) -> Reply<grpc::GetResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let records = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let ids = point::point_ids(r.ids)?;
            let with_payload = point::with_payload(r.with_payload)?.unwrap_or(PayloadSelector::All);
            let with_vector = point::with_vectors(r.with_vectors).unwrap_or_default();
            self.node
                .collection(&r.collection_name)?
                .retrieve(ids, with_payload, with_vector, consistency, r.timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::GetResponse {
            result: out::records(records),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn update_vectors(&self, request: Request<grpc::UpdatePointVectors>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::update_vectors(r.points, r.update_filter);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn delete_vectors(&self, request: Request<grpc::DeletePointVectors>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::delete_vectors(r.points_selector, r.vectors);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn set_payload(&self, request: Request<grpc::SetPayloadPoints>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::set_payload(r.payload, r.points_selector, r.key);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn overwrite_payload(
        &self,
        request: Request<grpc::SetPayloadPoints>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::overwrite_payload(r.payload, r.points_selector, r.key);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn delete_payload(
        &self,
        request: Request<grpc::DeletePayloadPoints>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::delete_payload(r.keys, r.points_selector);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn clear_payload(&self, request: Request<grpc::ClearPayloadPoints>) -> Reply<grpc::PointsOperationResponse> {
        let r = request.into_inner();
        let op = write::clear_payload(r.points);
        self.write(&r.collection_name, r.wait, r.ordering, r.timeout, op).await
    }

    async fn create_field_index(
        &self,
        request: Request<grpc::CreateFieldIndexCollection>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = async {
            let schema = index::field_schema(r.field_type, r.field_index_params)?;
            self.node
                .create_payload_index(&r.collection_name, &r.field_name, schema, consensus_timeout(r.timeout))
                .await
        }
        .await
        .map_err(status)?;
        Ok(operation_response(started, result))
    }

    async fn delete_field_index(
        &self,
        request: Request<grpc::DeleteFieldIndexCollection>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self
            .node
            .delete_payload_index(&r.collection_name, &r.field_name, consensus_timeout(r.timeout))
            .await
            .map_err(status)?;
        Ok(operation_response(started, result))
    }

    async fn create_vector_name(
        &self,
        request: Request<grpc::CreateVectorNameRequest>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = async {
            let config = collection_config::vector_name_config(r.vector_config)?;
            self.node
                .create_vector_name(&r.collection_name, &r.vector_name, config, consensus_timeout(r.timeout))
                .await
        }
        .await
        .map_err(status)?;
        Ok(operation_response(started, result))
    }

    async fn delete_vector_name(
        &self,
        request: Request<grpc::DeleteVectorNameRequest>,
    ) -> Reply<grpc::PointsOperationResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self
            .node
            .delete_vector_name(&r.collection_name, &r.vector_name, consensus_timeout(r.timeout))
            .await
            .map_err(status)?;
        Ok(operation_response(started, result))
    }

    async fn search(&self, request: Request<grpc::SearchPoints>) -> Reply<grpc::SearchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let points = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let search = query::search(r, consistency)?;
            self.node.collection(&name)?.search(search, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::SearchResponse {
            result: out::scored_points(points),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn search_batch(&self, request: Request<grpc::SearchBatchPoints>) -> Reply<grpc::SearchBatchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let results = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let searches = r
                .search_points
                .into_iter()
                .map(|s| query::search(s, consistency))
                .collect::<Result<Vec<_>>>()?;
            let collection = self.node.collection(&r.collection_name)?;
            collection.search_batch(searches, r.timeout, true).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::SearchBatchResponse {
            result: results.into_iter().map(out::batch_result).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn search_groups(&self, request: Request<grpc::SearchPointGroups>) -> Reply<grpc::SearchGroupsResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let result = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let (request, params) = groups::search_groups(r, consistency)?;
            self.node.groups(&name, request, params, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::SearchGroupsResponse {
            result: Some(out::groups_result(result)),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn scroll(&self, request: Request<grpc::ScrollPoints>) -> Reply<grpc::ScrollResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let timeout = r.timeout;
        let page = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let request = ScrollRequest {
                offset: r.offset.map(point::point_id).transpose()?,
                limit: r.limit.map(|l| l as usize),
                filter: filter::optional(r.filter)?,
                with_payload: point::with_payload(r.with_payload)?,
                with_vector: point::with_vectors(r.with_vectors),
                order_by: r.order_by.map(query::order_by).transpose()?,
                shard_key: None,
            };
            self.node
                .collection(&r.collection_name)?
                .scroll_points(request, consistency, timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::ScrollResponse {
            next_page_offset: page.next_page_offset.map(out::point_id),
            result: out::records(page.points),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn recommend(&self, request: Request<grpc::RecommendPoints>) -> Reply<grpc::RecommendResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let points = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let recommend = query::recommend(r, consistency)?;
            self.node.recommend(&name, recommend, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::RecommendResponse {
            result: out::scored_points(points),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn recommend_batch(
        &self,
        request: Request<grpc::RecommendBatchPoints>,
    ) -> Reply<grpc::RecommendBatchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let results = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let requests = r
                .recommend_points
                .into_iter()
                .map(|q| query::recommend(q, consistency))
                .collect::<Result<Vec<_>>>()?;
            let collection = self.node.collection(&r.collection_name)?;
            collection
                .recommend_batch(requests, self.node.as_ref(), r.timeout, true)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::RecommendBatchResponse {
            result: results.into_iter().map(out::batch_result).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn recommend_groups(
        &self,
        request: Request<grpc::RecommendPointGroups>,
    ) -> Reply<grpc::RecommendGroupsResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let result = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let (request, params) = groups::recommend_groups(r, consistency)?;
            self.node.groups(&name, request, params, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::RecommendGroupsResponse {
            result: Some(out::groups_result(result)),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn discover(&self, request: Request<grpc::DiscoverPoints>) -> Reply<grpc::DiscoverResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let points = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let discover = query::discover(r, consistency)?;
            self.node.discover(&name, discover, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::DiscoverResponse {
            result: out::scored_points(points),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn discover_batch(&self, request: Request<grpc::DiscoverBatchPoints>) -> Reply<grpc::DiscoverBatchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let results = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let requests = r
                .discover_points
                .into_iter()
                .map(|q| query::discover(q, consistency))
                .collect::<Result<Vec<_>>>()?;
            let collection = self.node.collection(&r.collection_name)?;
            collection
                .discover_batch(requests, self.node.as_ref(), r.timeout, true)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::DiscoverBatchResponse {
            result: results.into_iter().map(out::batch_result).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn count(&self, request: Request<grpc::CountPoints>) -> Reply<grpc::CountResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        // Counts are always exact here; `exact: false` gets the exact count too, as on REST. Unset
        // `exact` is true (Qdrant), which strict mode's `search_allow_exact: false` refuses.
        let count = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let filter = filter::optional(r.filter)?;
            self.node
                .collection(&r.collection_name)?
                .count(filter, r.exact.unwrap_or(true), consistency, r.timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::CountResponse {
            result: Some(out::count_result(count)),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn update_batch(&self, request: Request<grpc::UpdateBatchPoints>) -> Reply<grpc::UpdateBatchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let results = within(r.timeout, async {
            let ordering = write::ordering(r.ordering)?;
            let ops = write::batch_operations(r.operations)?;
            self.node
                .collection(&r.collection_name)?
                .update_batch(ops, r.wait.unwrap_or(false), ordering, r.timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::UpdateBatchResponse {
            result: results.into_iter().map(out::update_result).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn query(&self, request: Request<grpc::QueryPoints>) -> Reply<grpc::QueryResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let points = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let q = query::query(r, consistency)?;
            self.node.query(&name, q, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::QueryResponse {
            result: out::scored_points(points),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn query_batch(&self, request: Request<grpc::QueryBatchPoints>) -> Reply<grpc::QueryBatchResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let results = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let queries = r
                .query_points
                .into_iter()
                .map(|q| query::query(q, consistency))
                .collect::<Result<Vec<_>>>()?;
            let collection = self.node.collection(&r.collection_name)?;
            collection
                .query_batch(queries, self.node.as_ref(), r.timeout, true)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::QueryBatchResponse {
            result: results.into_iter().map(out::batch_result).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn query_groups(&self, request: Request<grpc::QueryPointGroups>) -> Reply<grpc::QueryGroupsResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let name = r.collection_name.clone();
        let timeout = r.timeout;
        let result = within(timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let (request, params) = groups::query_groups(r, consistency)?;
            self.node.groups(&name, request, params, timeout).await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::QueryGroupsResponse {
            result: Some(out::groups_result(result)),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn facet(&self, request: Request<grpc::FacetCounts>) -> Reply<grpc::FacetResponse> {
        let started = Instant::now();
        let r = request.into_inner();
        let facet = within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            let request = FacetRequest {
                key: r.key,
                limit: r.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
                filter: filter::optional(r.filter)?,
                exact: r.exact,
            };
            self.node
                .collection(&r.collection_name)?
                .facet(request, consistency, r.timeout)
                .await
        })
        .await
        .map_err(status)?;
        Ok(Response::new(grpc::FacetResponse {
            hits: facet.hits.into_iter().filter_map(out::facet_hit).collect(),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn search_matrix_pairs(
        &self,
        request: Request<grpc::SearchMatrixPoints>,
    ) -> Reply<grpc::SearchMatrixPairsResponse> {
        let started = Instant::now();
        let matrix = self.matrix(request.into_inner()).await.map_err(status)?;
        Ok(Response::new(grpc::SearchMatrixPairsResponse {
            result: Some(out::matrix_pairs(matrix)),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn search_matrix_offsets(
        &self,
        request: Request<grpc::SearchMatrixPoints>,
    ) -> Reply<grpc::SearchMatrixOffsetsResponse> {
        let started = Instant::now();
        let matrix = self.matrix(request.into_inner()).await.map_err(status)?;
        Ok(Response::new(grpc::SearchMatrixOffsetsResponse {
            result: Some(out::matrix_offsets(matrix)),
            time: elapsed(started),
            usage: None,
        }))
    }
}

impl PointsService {
    /// The distance matrix both matrix calls answer from.
    async fn matrix(&self, r: grpc::SearchMatrixPoints) -> Result<Matrix> {
        within(r.timeout, async {
            let consistency = query::read_consistency(r.read_consistency)?;
            // Qdrant's gRPC request takes the defaults before strict mode sees it, so its limit
            // check multiplies them in (REST checks only what the request gives).
            let given = |n: Option<u64>, default| n.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let request = SearchMatrixRequest {
                filter: filter::optional(r.filter)?,
                sample: Some(given(r.sample, DEFAULT_SAMPLE)),
                limit: Some(given(r.limit, DEFAULT_NEIGHBOURS)),
                using: r.using,
            };
            self.node
                .collection(&r.collection_name)?
                .search_matrix(request, consistency, r.timeout)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consensus_timeout_is_at_least_a_second() {
        assert_eq!(consensus_timeout(Some(0)), Some(std::time::Duration::from_secs(1)));
    }
}
