//! Grouped requests: each is its plain request (converted by `query`) plus the grouping.

use qdrant_client::qdrant as grpc;

use super::point::{with_payload, with_vectors};
use super::query;
use crate::collection::groups::GroupedRequest;
use crate::error::Result;
use crate::model::groups::{GroupParams, WithLookup, WithLookupInterface};
use crate::model::query::ReadConsistency;

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn lookup(l: Option<grpc::WithLookup>) -> Result<Option<WithLookupInterface>> {
    l.map(|l| {
        Ok(WithLookupInterface::WithLookup(WithLookup {
            collection: l.collection,
            with_payload: with_payload(l.with_payload)?,
            with_vectors: with_vectors(l.with_vectors),
        }))
    })
    .transpose()
}

fn params(
    group_by: String,
    size: Option<u64>,
    groups: Option<u64>,
    l: Option<grpc::WithLookup>,
) -> Result<GroupParams> {
    Ok(GroupParams {
        group_by,
        group_size: size.map(to_usize),
        limit: groups.map(to_usize),
        with_lookup: lookup(l)?,
    })
}

pub fn query_groups(g: grpc::QueryPointGroups, consistency: ReadConsistency) -> Result<(GroupedRequest, GroupParams)> {
    let params = params(g.group_by, g.group_size, g.limit, g.with_lookup)?;
    let plain = grpc::QueryPoints {
        collection_name: g.collection_name,
        prefetch: g.prefetch,
        query: g.query,
        using: g.using,
        filter: g.filter,
        params: g.params,
        score_threshold: g.score_threshold,
        with_vectors: g.with_vectors,
        with_payload: g.with_payload,
        lookup_from: g.lookup_from,
        ..Default::default()
    };
    Ok((GroupedRequest::Query(query::query(plain, consistency)?), params))
}

pub fn search_groups(
    g: grpc::SearchPointGroups,
    consistency: ReadConsistency,
) -> Result<(GroupedRequest, GroupParams)> {
    let params = params(
        g.group_by,
        Some(u64::from(g.group_size)),
        Some(u64::from(g.limit)),
        g.with_lookup,
    )?;
    let plain = grpc::SearchPoints {
        collection_name: g.collection_name,
        vector: g.vector,
        filter: g.filter,
        limit: u64::from(g.limit),
        with_payload: g.with_payload,
        params: g.params,
        score_threshold: g.score_threshold,
        vector_name: g.vector_name,
        with_vectors: g.with_vectors,
        sparse_indices: g.sparse_indices,
        ..Default::default()
    };
    Ok((GroupedRequest::Search(query::search(plain, consistency)?), params))
}

pub fn recommend_groups(
    g: grpc::RecommendPointGroups,
    consistency: ReadConsistency,
) -> Result<(GroupedRequest, GroupParams)> {
    let params = params(
        g.group_by,
        Some(u64::from(g.group_size)),
        Some(u64::from(g.limit)),
        g.with_lookup,
    )?;
    let plain = grpc::RecommendPoints {
        collection_name: g.collection_name,
        positive: g.positive,
        negative: g.negative,
        filter: g.filter,
        limit: u64::from(g.limit),
        with_payload: g.with_payload,
        params: g.params,
        score_threshold: g.score_threshold,
        using: g.using,
        with_vectors: g.with_vectors,
        lookup_from: g.lookup_from,
        strategy: g.strategy,
        positive_vectors: g.positive_vectors,
        negative_vectors: g.negative_vectors,
        ..Default::default()
    };
    Ok((GroupedRequest::Recommend(query::recommend(plain, consistency)?), params))
}
