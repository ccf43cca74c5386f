//! Reads that may involve other collections — example points taken from one (`lookup_from`), or
//! group heads looked up in one (`with_lookup`): one entry point each for REST and gRPC.

use std::sync::Arc;

use super::Node;
use crate::collection::groups::GroupedRequest;
use crate::collection::lookup::CollectionLookup;
use crate::collection::Collection;
use crate::error::Result;
use crate::model::groups::{GroupParams, GroupsResult};
use crate::model::query::{DiscoverRequest, QueryRequest, RecommendRequest, ScoredPoint};

impl CollectionLookup for Node {
    fn lookup_collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.collection(name)
    }
}

impl Node {
    /// `points/query` (`timeout`: the request's `?timeout=`, seconds, checked by strict mode).
    pub async fn query(
        &self,
        collection: &str,
        request: QueryRequest,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.collection(collection)?.query(request, self, timeout).await
    }

    pub async fn recommend(
        &self,
        collection: &str,
        request: RecommendRequest,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.collection(collection)?.recommend(request, self, timeout).await
    }

    pub async fn discover(
        &self,
        collection: &str,
        request: DiscoverRequest,
        timeout: Option<u64>,
    ) -> Result<Vec<ScoredPoint>> {
        self.collection(collection)?.discover(request, self, timeout).await
    }

    pub async fn groups(
        &self,
        collection: &str,
        request: GroupedRequest,
        params: GroupParams,
        timeout: Option<u64>,
    ) -> Result<GroupsResult> {
        // A missing lookup collection fails before any search runs.
        let lookup = match params.with_lookup.clone() {
            Some(l) => {
                let (name, with_payload, with_vector) = l.resolve();
                Some((self.collection(&name)?, with_payload, with_vector))
            }
            None => None,
        };
        let mut groups = self
            .collection(collection)?
            .groups(request, &params, self, timeout)
            .await?;
        if let Some((lookup, with_payload, with_vector)) = lookup {
            lookup.lookup_groups(&mut groups, with_payload, with_vector).await?;
        }
        Ok(GroupsResult { groups })
    }
}
