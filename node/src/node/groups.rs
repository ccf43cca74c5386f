//! Grouped search with its optional lookup in another collection: one entry point for REST and
//! gRPC.

use super::Node;
use crate::collection::groups::GroupedRequest;
use crate::error::Result;
use crate::model::groups::{GroupParams, GroupsResult};

impl Node {
    pub async fn groups(&self, collection: &str, request: GroupedRequest, params: GroupParams) -> Result<GroupsResult> {
        // A missing lookup collection fails before any search runs.
        let lookup = match params.with_lookup.clone() {
            Some(l) => {
                let (name, with_payload, with_vector) = l.resolve();
                Some((self.collection(&name)?, with_payload, with_vector))
            }
            None => None,
        };
        let mut groups = self.collection(collection)?.groups(request, &params).await?;
        if let Some((lookup, with_payload, with_vector)) = lookup {
            lookup.lookup_groups(&mut groups, with_payload, with_vector).await?;
        }
        Ok(GroupsResult { groups })
    }
}
