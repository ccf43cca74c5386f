//! The node's issue report (`GET /issues`, `DELETE /issues`), as Qdrant keeps it
//! (`lib/common/issues`): a set of active issues, each known by an id
//! `"{CODE}/{instance}"`, with a description, an actionable solution and the time it was first
//! raised. Raising an active issue again changes nothing; it goes away when solved or cleared.
//!
//! Qdrant 1.19 raises one kind, `UNINDEXED_FIELD`: after a search or query on a collection took
//! longer than `service.slow_query_secs` (default 1.2 s), every payload key its filters use that
//! no suitable payload index serves becomes an issue, whose solution is the
//! `PUT /collections/{c}/index` request creating one. Creating an index on the key solves it;
//! deleting the collection solves all of its issues. (Qdrant also defines
//! `TOO_MANY_COLLECTIONS` but never raises it.)
//!
//! One registry per node (`Node::issues`); collections report slow reads to it
//! (`Collection::report_issues_to`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};

/// Qdrant's default `service.slow_query_secs`.
pub const DEFAULT_SLOW_QUERY_SECS: f32 = 1.2;

const UNINDEXED_FIELD: &str = "UNINDEXED_FIELD";

/// One active issue in Qdrant's JSON shape (`IssueRecord`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueRecord {
    pub id: String,
    pub description: String,
    pub solution: Value,
    pub timestamp: String,
    pub related_collection: Option<String>,
}

#[derive(Debug, Clone)]
struct Active {
    record: IssueRecord,
    raised: DateTime<Utc>,
    /// For an unindexed field: (collection, field).
    unindexed: Option<(String, String)>,
}

#[derive(Debug)]
pub struct Issues {
    slow_query: Duration,
    active: Mutex<BTreeMap<String, Active>>,
}

impl Issues {
    /// A registry raising unindexed-field issues for reads slower than `slow_query`.
    pub fn new(slow_query: Duration) -> Issues {
        Issues {
            slow_query,
            active: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads slower than this report their unindexed filter keys.
    pub fn slow_query(&self) -> Duration {
        self.slow_query
    }

    /// Raises `UNINDEXED_FIELD/{collection}/{field}` unless it is active; `types` are the index
    /// types that would serve the field's conditions. Returns whether it was new.
    pub fn unindexed_field(&self, collection: &str, field: &str, types: &[&str]) -> bool {
        if types.is_empty() {
            return false; // no index would help: no solution to offer
        }
        let id = unindexed_id(collection, field);
        let mut active = self.active.lock();
        if active.contains_key(&id) {
            return false;
        }
        let raised = Utc::now();
        let record = IssueRecord {
            id: id.clone(),
            description: format!(
                "Unindexed field '{field}' might be slowing queries down in collection '{collection}'"
            ),
            solution: index_solution(collection, field, types),
            timestamp: raised.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            related_collection: Some(collection.to_string()),
        };
        active.insert(
            id,
            Active {
                record,
                raised,
                unindexed: Some((collection.to_string(), field.to_string())),
            },
        );
        true
    }

    /// Every active issue, oldest first.
    pub fn all(&self) -> Vec<IssueRecord> {
        let mut all: Vec<Active> = self.active.lock().values().cloned().collect();
        all.sort_by(|a, b| a.raised.cmp(&b.raised).then_with(|| a.record.id.cmp(&b.record.id)));
        all.into_iter().map(|a| a.record).collect()
    }

    /// `DELETE /issues`.
    pub fn clear(&self) {
        self.active.lock().clear();
    }

    /// An index on `field` was created: its unindexed-field issue is solved.
    pub fn index_created(&self, collection: &str, field: &str) {
        let field = normalize_key(field);
        self.active.lock().remove(&unindexed_id(collection, &field));
    }

    /// The collection is gone: so are its unindexed-field issues.
    pub fn collection_deleted(&self, collection: &str) {
        self.active
            .lock()
            .retain(|_, a| a.unindexed.as_ref().is_none_or(|(c, _)| c != collection));
    }
}

fn unindexed_id(collection: &str, field: &str) -> String {
    format!("{UNINDEXED_FIELD}/{collection}/{field}")
}

/// A payload key as issues name it (`a.b[].c`), so `"a.b"` and its parsed form agree.
fn normalize_key(field: &str) -> String {
    field
        .parse::<crate::model::payload::JsonPath>()
        .map_or_else(|_| field.to_string(), |p| p.to_string())
}

/// Qdrant's `Solution`: `{"immediate": {...}}` for one index type, `{"immediate_choice": [...]}`
/// for several; each the `PUT /collections/{c}/index` request that creates it.
fn index_solution(collection: &str, field: &str, types: &[&str]) -> Value {
    let uri = format!("/collections/{}/index", percent_encode(collection));
    let mut choices: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "message": format!(
                    "Create an index on field '{field}' of schema {} in collection '{collection}'. Check the documentation for more details: https://qdrant.tech/documentation/concepts/indexing/#payload-index",
                    Value::String(t.to_string())
                ),
                "action": {
                    "method": "PUT",
                    "uri": uri,
                    "headers": {"content-type": "application/json"},
                    "body": {"field_name": field, "field_schema": t},
                },
            })
        })
        .collect();
    if choices.len() == 1 {
        json!({"immediate": choices.pop()})
    } else {
        json!({"immediate_choice": choices})
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters (as Qdrant's `urlencoding`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_once_and_solves_by_index_or_collection() {
        let issues = Issues::new(Duration::from_millis(1));
        assert!(issues.unindexed_field("c", "city", &["keyword"]));
        let first = issues.all();
        assert!(!issues.unindexed_field("c", "city", &["keyword"]), "already active");
        assert_eq!(issues.all(), first, "the timestamp stays the first one");
        let r = &first[0];
        assert_eq!(r.id, "UNINDEXED_FIELD/c/city");
        assert_eq!(r.related_collection.as_deref(), Some("c"));
        assert_eq!(
            r.description,
            "Unindexed field 'city' might be slowing queries down in collection 'c'"
        );
        assert_eq!(
            r.solution["immediate"]["action"],
            json!({"method": "PUT", "uri": "/collections/c/index",
                   "headers": {"content-type": "application/json"},
                   "body": {"field_name": "city", "field_schema": "keyword"}})
        );
        assert!(r.solution["immediate"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Create an index on field 'city' of schema \"keyword\" in collection 'c'."));

        assert!(!issues.unindexed_field("c", "x", &[]), "nothing to suggest");
        issues.unindexed_field("c", "price", &["float", "integer"]);
        issues.unindexed_field("other c", "a.b", &["bool"]);
        assert_eq!(issues.all().len(), 3);
        assert_eq!(
            issues.all()[1].solution["immediate_choice"].as_array().unwrap().len(),
            2
        );
        assert_eq!(
            issues.all()[2].solution["immediate"]["action"]["uri"],
            "/collections/other%20c/index"
        );

        issues.index_created("c", "city");
        assert_eq!(issues.all().len(), 2);
        issues.collection_deleted("c");
        assert_eq!(
            issues.all().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["UNINDEXED_FIELD/other c/a.b"]
        );
        issues.clear();
        assert!(issues.all().is_empty());
    }
}
