//! Grouping ranked points by a payload value: the best `group_size` points of each of the best
//! `limit` groups, groups ordered by their best point.
//!
//! The grouped request runs as a plain one for the top `n` points (payload included); walking
//! that ranking fills groups in order of their best point. If the first `limit` groups are not
//! all full and more points exist, `n` grows and the request runs again, so the answer is the one
//! an exhaustive ranking would give.

use std::collections::HashMap;
use std::future::Future;

use super::lookup::CollectionLookup;
use super::query::check_limit;
use super::Collection;
use crate::error::{Error, Result};
use crate::model::filter::{Condition, PayloadField};
use crate::model::groups::{GroupId, GroupParams, PointGroup, DEFAULT_GROUPS, DEFAULT_GROUP_SIZE};
use crate::model::payload::{flat_values_at, JsonPath, PayloadSelector};
use crate::model::query::{QueryRequest, ReadConsistency, RecommendRequest, ScoredPoint, SearchRequest};
use crate::model::Filter;

/// The most points one grouped request ranks before answering with what it has.
const MAX_RANKED: usize = 100_000;

/// A checked grouping.
pub struct Grouping {
    pub key: JsonPath,
    pub group_size: usize,
    pub groups: usize,
}

impl Grouping {
    pub fn new(p: &GroupParams) -> Result<Grouping> {
        let key = p
            .group_by
            .parse::<JsonPath>()
            .map_err(|e| Error::bad_input(format!("invalid group_by key `{}`: {e}", p.group_by)))?;
        Ok(Grouping {
            key,
            group_size: check_limit(p.group_size.unwrap_or(DEFAULT_GROUP_SIZE))?,
            groups: check_limit(p.limit.unwrap_or(DEFAULT_GROUPS))?,
        })
    }

    /// `filter` narrowed to points that have a value at the key.
    pub fn filter(&self, filter: Option<Filter>) -> Option<Filter> {
        let has_key = Condition::IsEmpty(PayloadField { key: self.key.clone() });
        let mut f = filter.unwrap_or_default();
        f.must_not.get_or_insert_with(Vec::new).push(has_key);
        Some(f)
    }

    /// Runs `ranked(n)` (the best `n` points, with payloads) with a growing `n` until the groups
    /// are settled, then groups; hits keep the payload `with_payload` selects.
    pub async fn run<F, Fut>(&self, with_payload: &PayloadSelector, ranked: F) -> Result<Vec<PointGroup>>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<Vec<ScoredPoint>>>,
    {
        let mut n = self.groups.saturating_mul(self.group_size).saturating_mul(2).max(16);
        loop {
            let points = ranked(n).await?;
            let exhausted = points.len() < n || n >= MAX_RANKED;
            let groups = self.group(points);
            let settled = groups.len() >= self.groups && groups.iter().all(|g| g.hits.len() >= self.group_size);
            if settled || exhausted {
                return Ok(groups
                    .into_iter()
                    .map(|mut g| {
                        for hit in &mut g.hits {
                            hit.payload = hit.payload.as_ref().and_then(|p| with_payload.apply(p));
                        }
                        g
                    })
                    .collect());
            }
            n = n.saturating_mul(4).min(MAX_RANKED);
        }
    }

    /// The first `groups` groups of a ranking, each with its best `group_size` points. A point
    /// with several values at the key belongs to each of their groups.
    fn group(&self, points: Vec<ScoredPoint>) -> Vec<PointGroup> {
        let mut at: HashMap<GroupId, usize> = HashMap::new();
        let mut groups: Vec<PointGroup> = Vec::new();
        for point in points {
            let ids: Vec<GroupId> = point
                .payload
                .as_ref()
                .map(|p| {
                    flat_values_at(p, &self.key)
                        .into_iter()
                        .filter_map(GroupId::from_value)
                        .collect()
                })
                .unwrap_or_default();
            let mut seen = Vec::new();
            for id in ids {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id.clone());
                match at.get(&id) {
                    Some(&i) if groups[i].hits.len() < self.group_size => groups[i].hits.push(point.clone()),
                    Some(_) => {}
                    None if groups.len() < self.groups => {
                        at.insert(id.clone(), groups.len());
                        groups.push(PointGroup {
                            hits: vec![point.clone()],
                            id,
                            lookup: None,
                        });
                    }
                    None => {}
                }
            }
        }
        groups
    }
}

impl Collection {
    /// `points/query/groups`, `points/search/groups`, `points/recommend/groups`: strict mode
    /// checks the grouped request (`timeout`: `?timeout=` seconds), then the request runs as
    /// usual, ranked as many times as grouping needs (each ranking is charged as a read).
    pub async fn groups(
        &self,
        request: GroupedRequest,
        params: &GroupParams,
        lookup: &dyn CollectionLookup,
        timeout: Option<u64>,
    ) -> Result<Vec<PointGroup>> {
        if let Some(s) = self.strict() {
            match &request {
                GroupedRequest::Query(r) => s.check_query_groups(r, params)?,
                GroupedRequest::Search(r) => s.check_search_groups(r, params)?,
                GroupedRequest::Recommend(r) => s.check_recommend_groups(r, params)?,
            }
            s.check_timeout(timeout)?;
        }
        let grouping = Grouping::new(params)?;
        match request {
            GroupedRequest::Query(mut r) => {
                let with_payload = r.with_payload.take().unwrap_or(PayloadSelector::None);
                r.filter = grouping.filter(r.filter.take());
                r.with_payload = Some(PayloadSelector::All);
                r.offset = None;
                grouping
                    .run(&with_payload, |n| {
                        let mut r = r.clone();
                        r.limit = Some(n);
                        self.run_query(r, lookup)
                    })
                    .await
            }
            GroupedRequest::Search(mut r) => {
                let with_payload = r.with_payload.take().unwrap_or(PayloadSelector::None);
                r.filter = grouping.filter(r.filter.take());
                r.with_payload = Some(PayloadSelector::All);
                r.offset = None;
                grouping
                    .run(&with_payload, |n| {
                        let mut r = r.clone();
                        r.limit = n;
                        self.run_search(r)
                    })
                    .await
            }
            GroupedRequest::Recommend(mut r) => {
                let with_payload = r.with_payload.take().unwrap_or(PayloadSelector::None);
                r.filter = grouping.filter(r.filter.take());
                r.with_payload = Some(PayloadSelector::All);
                r.offset = None;
                grouping
                    .run(&with_payload, |n| {
                        let mut r = r.clone();
                        r.limit = n;
                        self.run_recommend(r, lookup)
                    })
                    .await
            }
        }
    }

    /// Fills each group's `lookup` with the point of this collection named by the group id.
    pub async fn lookup_groups(
        &self,
        result: &mut [PointGroup],
        with_payload: PayloadSelector,
        with_vector: crate::model::vector::WithVector,
    ) -> Result<()> {
        let ids = result.iter().filter_map(|g| g.id.as_point_id()).collect();
        let records = self
            .read_points(ids, with_payload, with_vector, ReadConsistency::default())
            .await?;
        let mut by_id: HashMap<_, _> = records.into_iter().map(|r| (r.id, r)).collect();
        for g in result.iter_mut() {
            g.lookup = g.id.as_point_id().and_then(|id| by_id.remove(&id));
        }
        Ok(())
    }
}

/// The plain request a grouped one ranks with.
pub enum GroupedRequest {
    Query(QueryRequest),
    Search(SearchRequest),
    Recommend(RecommendRequest),
}
