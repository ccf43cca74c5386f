//! Resolving the answers of several replicas of one shard into one (reads with a consistency
//! above one replica), as Qdrant does: a point (or facet value) is returned only when enough of
//! the answers hold it *identically* (same vector, payload, score, order value); counts take
//! the smallest (all) or the median (majority) answer. The answers are put in peer order first,
//! so the same replicas give the same result through whichever peer the request came.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::shard_request::{expect_response, ShardResponse};
use crate::error::{Error, Result};
use crate::model::facet::FacetHit;
use crate::model::payload::Payload;
use crate::model::query::{Record, ScoredPoint};

/// How many of the answers must agree on an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveCondition {
    /// Every answer.
    All,
    /// More than half of them.
    Majority,
}

impl ResolveCondition {
    fn needed(self, answers: usize) -> usize {
        match self {
            ResolveCondition::All => answers,
            ResolveCondition::Majority => answers / 2 + 1,
        }
    }

    /// The count the answers agree on.
    fn count(self, mut counts: Vec<usize>) -> usize {
        counts.sort_unstable();
        match self {
            ResolveCondition::All => counts.first().copied().unwrap_or(0),
            ResolveCondition::Majority => counts.get(counts.len() / 2).copied().unwrap_or(0),
        }
    }
}

/// Resolves the answers of several replicas (in peer order) to one request.
pub fn resolve(answers: Vec<ShardResponse>, condition: ResolveCondition) -> Result<ShardResponse> {
    let Some(first) = answers.first() else {
        return Err(Error::internal("no replica answered"));
    };
    let needed = condition.needed(answers.len());
    Ok(match first {
        ShardResponse::Records(_) => {
            let lists = all_of(answers, |a| expect_response!(a, Records))?;
            ShardResponse::Records(agreed(lists, |r| r.id, same_record, needed))
        }
        ShardResponse::Hits(_) => {
            let lists = all_of(answers, |a| expect_response!(a, Hits))?;
            ShardResponse::Hits(agreed(lists, |h| h.id, same_hit, needed))
        }
        ShardResponse::Count(_) => {
            let counts = all_of(answers, |a| expect_response!(a, Count))?;
            ShardResponse::Count(condition.count(counts))
        }
        ShardResponse::Facet(_) => {
            let lists = all_of(answers, |a| expect_response!(a, Facet))?;
            ShardResponse::Facet(facet(lists, condition, needed))
        }
        _ => answers.into_iter().next().expect("checked above"),
    })
}

fn all_of<T>(answers: Vec<ShardResponse>, take: impl Fn(ShardResponse) -> Result<T>) -> Result<Vec<T>> {
    answers.into_iter().map(take).collect()
}

/// An absent payload and an empty one are the same (a replica may omit an empty payload).
fn same_payload(a: &Option<Payload>, b: &Option<Payload>) -> bool {
    match (a, b) {
        (Some(p), None) | (None, Some(p)) => p.is_empty(),
        (a, b) => a == b,
    }
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.id == b.id && a.vector == b.vector && a.order_value == b.order_value && same_payload(&a.payload, &b.payload)
}

/// `version` is left out, as Qdrant does (replicas agreeing on the content agree on the answer).
fn same_hit(a: &ScoredPoint, b: &ScoredPoint) -> bool {
    a.id == b.id
        && a.score == b.score
        && a.vector == b.vector
        && a.order_value == b.order_value
        && same_payload(&a.payload, &b.payload)
}

/// (list, index) of an item among the answers.
type At = (usize, usize);

/// The items of which at least `needed` lists hold an identical copy, in the lists' order.
fn agreed<T, K>(lists: Vec<Vec<T>>, key: impl Fn(&T) -> K, same: impl Fn(&T, &T) -> bool, needed: usize) -> Vec<T>
where
    K: Eq + Hash + Copy,
{
    // For every key, its distinct versions: where the first copy is and how many agree.
    let mut versions: HashMap<K, Vec<(At, usize)>> = HashMap::new();
    for (row, list) in lists.iter().enumerate() {
        for (index, item) in list.iter().enumerate() {
            let seen = versions.entry(key(item)).or_default();
            match seen.iter_mut().find(|((r, i), _)| same(&lists[*r][*i], item)) {
                Some((_, count)) => *count += 1,
                None => seen.push(((row, index), 1)),
            }
        }
    }
    let accepted: HashMap<K, At> = versions
        .into_iter()
        .filter_map(|(k, seen)| seen.into_iter().find(|(_, n)| *n >= needed).map(|(at, _)| (k, at)))
        .collect();
    if accepted.len() == lists[0].len() && lists.iter().all(|l| l.len() == lists[0].len()) {
        // Every list holds the same items.
        return lists.into_iter().next().unwrap_or_default();
    }
    merge_in_order(lists, &key, &accepted)
}

/// Walks the lists together, taking at each step the accepted key most list heads show (the
/// first list breaks ties), so the merged order follows every list's own order.
fn merge_in_order<T, K>(lists: Vec<Vec<T>>, key: &impl Fn(&T) -> K, accepted: &HashMap<K, At>) -> Vec<T>
where
    K: Eq + Hash + Copy,
{
    let mut slots: Vec<Vec<Option<T>>> = lists.into_iter().map(|l| l.into_iter().map(Some).collect()).collect();
    let mut heads = vec![0usize; slots.len()];
    let mut taken: HashSet<K> = HashSet::new();
    let mut out = Vec::with_capacity(accepted.len());
    loop {
        // Skip what is not accepted or already taken.
        for (row, head) in heads.iter_mut().enumerate() {
            while let Some(slot) = slots[row].get(*head) {
                match slot.as_ref().map(key) {
                    Some(k) if accepted.contains_key(&k) && !taken.contains(&k) => break,
                    _ => *head += 1,
                }
            }
        }
        let mut votes: Vec<(K, usize, usize)> = Vec::new(); // key, heads showing it, first row
        for (row, head) in heads.iter().enumerate() {
            if let Some(Some(item)) = slots[row].get(*head) {
                let k = key(item);
                match votes.iter_mut().find(|(v, _, _)| *v == k) {
                    Some((_, n, _)) => *n += 1,
                    None => votes.push((k, 1, row)),
                }
            }
        }
        let Some(&(k, _, _)) = votes.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2))) else {
            return out;
        };
        let (row, index) = accepted[&k];
        if let Some(item) = slots[row][index].take() {
            out.push(item);
        }
        taken.insert(k);
    }
}

/// Facet values at least `needed` answers hold, with the count they agree on.
fn facet(lists: Vec<Vec<FacetHit>>, condition: ResolveCondition, needed: usize) -> Vec<FacetHit> {
    let mut counts: Vec<(serde_json::Value, Vec<usize>)> = Vec::new();
    for hit in lists.into_iter().flatten() {
        match counts.iter_mut().find(|(v, _)| *v == hit.value) {
            Some((_, c)) => c.push(hit.count),
            None => counts.push((hit.value, vec![hit.count])),
        }
    }
    counts
        .into_iter()
        .filter(|(_, c)| c.len() >= needed)
        .map(|(value, c)| FacetHit {
            value,
            count: condition.count(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::point_id::PointId;

    fn rec(id: u64, tag: &str) -> Record {
        let mut payload = Payload::new();
        payload.insert("tag".into(), serde_json::json!(tag));
        Record {
            id: PointId::Num(id),
            payload: Some(payload),
            vector: None,
            shard_key: None,
            order_value: None,
        }
    }

    fn ids(r: &ShardResponse) -> Vec<(u64, String)> {
        match r {
            ShardResponse::Records(list) => list
                .iter()
                .map(|r| {
                    let PointId::Num(n) = r.id else { panic!() };
                    (n, r.payload.as_ref().unwrap()["tag"].as_str().unwrap().to_string())
                })
                .collect(),
            _ => panic!("not records"),
        }
    }

    #[test]
    fn majority_takes_the_version_most_replicas_hold() {
        let answers = vec![
            ShardResponse::Records(vec![rec(1, "a"), rec(2, "x"), rec(3, "c")]),
            ShardResponse::Records(vec![rec(1, "a"), rec(2, "b"), rec(3, "c")]),
            ShardResponse::Records(vec![rec(1, "a"), rec(2, "b")]),
        ];
        let out = resolve(answers.clone(), ResolveCondition::Majority).unwrap();
        assert_eq!(ids(&out), vec![(1, "a".into()), (2, "b".into()), (3, "c".into())]);
        // All: only what every replica holds identically.
        let out = resolve(answers.clone(), ResolveCondition::All).unwrap();
        assert_eq!(ids(&out), vec![(1, "a".into())]);
        // The order of the answers does not change the result.
        let mut reversed = answers;
        reversed.reverse();
        let out = resolve(reversed, ResolveCondition::Majority).unwrap();
        assert_eq!(ids(&out), vec![(1, "a".into()), (2, "b".into()), (3, "c".into())]);
    }

    #[test]
    fn merged_order_follows_the_lists() {
        let answers = vec![
            ShardResponse::Records(vec![rec(10, "a"), rec(4, "b"), rec(3, "c")]),
            ShardResponse::Records(vec![rec(10, "a"), rec(4, "b"), rec(3, "c")]),
            ShardResponse::Records(vec![rec(4, "b"), rec(3, "c"), rec(2, "d")]),
        ];
        let out = resolve(answers, ResolveCondition::Majority).unwrap();
        assert_eq!(ids(&out), vec![(10, "a".into()), (4, "b".into()), (3, "c".into())]);
    }

    #[test]
    fn counts_and_facets() {
        let counts = || {
            vec![
                ShardResponse::Count(5),
                ShardResponse::Count(3),
                ShardResponse::Count(4),
            ]
        };
        assert!(matches!(
            resolve(counts(), ResolveCondition::All).unwrap(),
            ShardResponse::Count(3)
        ));
        assert!(matches!(
            resolve(counts(), ResolveCondition::Majority).unwrap(),
            ShardResponse::Count(4)
        ));
        let hit = |v: &str, count| FacetHit {
            value: serde_json::json!(v),
            count,
        };
        let answers = vec![
            ShardResponse::Facet(vec![hit("a", 20), hit("b", 15)]),
            ShardResponse::Facet(vec![hit("a", 21), hit("b", 13), hit("c", 1)]),
        ];
        let ShardResponse::Facet(out) = resolve(answers, ResolveCondition::All).unwrap() else {
            panic!()
        };
        assert_eq!(out, vec![hit("a", 20), hit("b", 13)]);
    }
}
