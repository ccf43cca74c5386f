//! `read_rate_limit` / `write_rate_limit`: Qdrant's token buckets
//! (`lib/common/common/src/rate_limiting.rs`) and the cost of each request
//! (`lib/shard/src/operation_rate_cost.rs`, `local_shard/shard_ops.rs`). docs/strict-mode-facts.md §7.
//!
//! Each collection keeps one read and one write bucket on the peer that receives the requests
//! (Qdrant keeps a pair per local shard replica; for reads that reach every shard the two are
//! the same, see the facts sheet).

use std::time::Instant;

use parking_lot::Mutex;

use super::super::prefetch::{Scoring, Stage};
use crate::error::{Error, Result};
use crate::model::filter::Filter;
use crate::model::query::ShardQueryKind;

use super::conditions_count;

/// Sparse dimensions that cost as much as one dense vector (Qdrant's `SPARSE_DIMS_COST_UNIT`).
const SPARSE_DIMS_PER_UNIT: usize = 64;

/// A token bucket for `limit` requests per minute: holds at most `limit` tokens, starts full,
/// refills `limit / 60` tokens per second.
#[derive(Debug)]
pub(super) struct TokenBucket {
    capacity: u64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

/// Why a bucket refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Refusal {
    /// More than the bucket ever holds.
    OverCapacity,
    /// Not enough tokens now: `available`, and the seconds until `cost` tokens are there.
    Wait { available: f64, seconds: f64 },
}

impl TokenBucket {
    pub fn per_minute(limit: usize) -> TokenBucket {
        TokenBucket {
            capacity: limit as u64,
            per_second: limit as f64 / 60.0,
            tokens: limit as f64,
            last: Instant::now(),
        }
    }

    pub fn try_consume(&mut self, cost: f64) -> std::result::Result<(), Refusal> {
        self.try_consume_at(cost, Instant::now())
    }

    fn try_consume_at(&mut self, cost: f64, now: Instant) -> std::result::Result<(), Refusal> {
        if cost > self.capacity as f64 {
            return Err(Refusal::OverCapacity);
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + self.per_second * elapsed).min(self.capacity as f64);
        if self.tokens >= cost {
            self.tokens -= cost;
            return Ok(());
        }
        Err(Refusal::Wait {
            available: self.tokens,
            seconds: (cost - self.tokens) / self.per_second,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Read,
    Write,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Read => "Read",
            Kind::Write => "Write",
        }
    }
}

/// Qdrant's error for a refusal (`CollectionError::rate_limit_error`).
pub(super) fn refused(kind: Kind, cost: usize, refusal: Refusal) -> Error {
    let name = kind.name();
    match refusal {
        Refusal::OverCapacity => Error::RateLimited {
            message: format!(
                "{name} rate limit exceeded, request larger than rate limiter capacity, please try to split your request"
            ),
            retry_after: None,
        },
        Refusal::Wait { available, seconds } => {
            // Qdrant rounds the wait up to whole seconds, in f32.
            let secs = (seconds as f32).ceil().max(0.0) as u64;
            Error::RateLimited {
                message: format!(
                    "{name} rate limit exceeded: Operation requires {cost} tokens but only {available:.1} were available. Retry after {secs}s"
                ),
                retry_after: Some(secs),
            }
        }
    }
}

/// The read and write buckets of one collection, each for the limit it was made for: a bucket
/// is made (full) when a limit first applies or changes, and dropped when it no longer applies.
#[derive(Debug, Default)]
pub struct RateLimiters {
    read: Mutex<Option<(usize, TokenBucket)>>,
    write: Mutex<Option<(usize, TokenBucket)>>,
}

impl RateLimiters {
    /// Charges `cost()` (computed only when a limit applies) to the bucket of `kind`.
    pub(super) fn charge(&self, kind: Kind, limit: Option<usize>, cost: impl FnOnce() -> usize) -> Result<()> {
        let slot = match kind {
            Kind::Read => &self.read,
            Kind::Write => &self.write,
        };
        let mut slot = slot.lock();
        let Some(limit) = limit else {
            *slot = None;
            return Ok(());
        };
        let bucket = match slot.as_mut() {
            Some((made_for, bucket)) if *made_for == limit => bucket,
            _ => &mut slot.insert((limit, TokenBucket::per_minute(limit))).1,
        };
        let cost = cost();
        bucket
            .try_consume(cost as f64)
            .map_err(|refusal| refused(kind, cost, refusal))
    }

    /// Full buckets again (every update of the strict mode config does this in Qdrant).
    pub fn reset(&self) {
        *self.read.lock() = None;
        *self.write.lock() = None;
    }
}

/// Read tokens of one vector query: what it compares against each point (a dense vector 1, a
/// multivector its rows, a sparse vector one per 64 dimensions, examples and pairs each of theirs).
pub(super) fn query_cost(kind: &ShardQueryKind) -> usize {
    match kind {
        ShardQueryKind::Dense(_) => 1,
        ShardQueryKind::MultiDense(rows) => rows.len(),
        ShardQueryKind::Sparse(s) => s.indices.len().div_ceil(SPARSE_DIMS_PER_UNIT),
        ShardQueryKind::Recommend {
            positives, negatives, ..
        } => positives.len() + negatives.len(),
        ShardQueryKind::Discover { pairs, .. } => 1 + 2 * pairs.len(),
        ShardQueryKind::Context { pairs } => 2 * pairs.len(),
        ShardQueryKind::Feedback { pairs, .. } => {
            // The target and each distinct feedback example.
            let mut examples: Vec<&Vec<f32>> = Vec::new();
            for (better, worse, _) in pairs {
                for v in [better, worse] {
                    if !examples.contains(&v) {
                        examples.push(v);
                    }
                }
            }
            1 + examples.len()
        }
        _ => 0,
    }
}

/// A search: its query vectors, its filter's conditions, and the `has_id` exclusion of example
/// points Qdrant adds to it.
pub(in crate::collection) fn search_cost(kind: &ShardQueryKind, filter: Option<&Filter>, excludes: bool) -> usize {
    query_cost(kind) + filter.map_or(0, conditions_count) + usize::from(excludes)
}

/// A scroll, count or facet: 1 plus its filter's conditions.
pub(in crate::collection) fn scroll_cost(filter: Option<&Filter>) -> usize {
    1 + filter.map_or(0, conditions_count)
}

impl Stage {
    /// Read tokens of the searches a planned query tree makes over the shards: each leaf is a
    /// vector search (its query vectors, filter, and the exclusion of example points when there
    /// are some) or a scroll (no query, `sample`, `order_by`); re-scoring and fusing prefetched
    /// points costs nothing (Qdrant's `query_batch` charges the same).
    pub(in crate::collection) fn read_cost(&self, excludes: bool) -> usize {
        if !self.prefetches.is_empty() {
            return self.prefetches.iter().map(|p| p.read_cost(excludes)).sum();
        }
        let filter = self.filter.as_ref();
        match &self.scoring {
            Scoring::Vector(kind) => search_cost(kind, filter, excludes),
            Scoring::Mmr { .. } => search_cost(&ShardQueryKind::Dense(Vec::new()), filter, excludes),
            _ => scroll_cost(filter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_per_minute() {
        let start = Instant::now();
        let mut b = TokenBucket::per_minute(2);
        b.last = start;
        assert!(b.try_consume_at(1.0, start).is_ok());
        assert!(b.try_consume_at(1.0, start).is_ok());
        match b.try_consume_at(1.0, start) {
            Err(Refusal::Wait { available, seconds }) => {
                assert_eq!(available, 0.0);
                assert!((seconds - 30.0).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        // 15 s later half a token is back; 30 s later one
        assert!(b.try_consume_at(1.0, start + Duration::from_secs(15)).is_err());
        assert!(b.try_consume_at(1.0, start + Duration::from_secs(30)).is_ok());
        assert_eq!(b.try_consume_at(3.0, start), Err(Refusal::OverCapacity));
        // never more than the capacity
        assert!(b.try_consume_at(2.0, start + Duration::from_secs(3600)).is_ok());
        assert!(b.try_consume_at(1.0, start + Duration::from_secs(3600)).is_err());
    }

    #[test]
    fn messages_are_qdrants() {
        let e = refused(
            Kind::Read,
            7,
            Refusal::Wait {
                available: 3.04,
                seconds: 23.2,
            },
        );
        assert_eq!(
            e.to_string(),
            "Rate limiting exceeded: Read rate limit exceeded: Operation requires 7 tokens but only 3.0 were available. Retry after 24s"
        );
        assert!(matches!(
            e,
            Error::RateLimited {
                retry_after: Some(24),
                ..
            }
        ));
        let e = refused(Kind::Write, 11, Refusal::OverCapacity);
        assert_eq!(
            e.to_string(),
            "Rate limiting exceeded: Write rate limit exceeded, request larger than rate limiter capacity, please try to split your request"
        );
        assert!(matches!(e, Error::RateLimited { retry_after: None, .. }));
    }

    #[test]
    fn limiters_follow_the_limit() {
        let l = RateLimiters::default();
        assert!(l.charge(Kind::Read, Some(2), || 2).is_ok());
        assert!(l.charge(Kind::Read, Some(2), || 1).is_err());
        // writes have their own bucket
        assert!(l.charge(Kind::Write, Some(1), || 1).is_ok());
        // a new limit starts a full bucket; no limit charges nothing
        assert!(l.charge(Kind::Read, Some(3), || 3).is_ok());
        assert!(l.charge(Kind::Read, None, || unreachable!()).is_ok());
        assert!(l.charge(Kind::Read, Some(3), || 3).is_ok());
        l.reset();
        assert!(l.charge(Kind::Write, Some(1), || 1).is_ok());
    }

    #[test]
    fn query_costs() {
        let sparse = crate::model::vector::SparseVector {
            indices: (0..65).collect(),
            values: vec![1.0; 65],
        };
        assert_eq!(query_cost(&ShardQueryKind::Sparse(sparse)), 2);
        assert_eq!(query_cost(&ShardQueryKind::MultiDense(vec![vec![1.0]; 3])), 3);
        assert_eq!(search_cost(&ShardQueryKind::Dense(vec![1.0]), None, true), 2);
    }
}
