//! `unindexed_filtering_retrieve` / `unindexed_filtering_update`: which payload index each filter
//! condition (or formula variable, or `group_by` key) needs, and whether the collection has one
//! that can serve it. Qdrant's rules (`lib/collection/src/problems/unindexed_field.rs`,
//! `verification/mod.rs` `check_grouping_field`); docs/strict-mode-facts.md §6.

use std::collections::BTreeMap;

use crate::model::filter::{AnyVariants, Condition, FieldCondition, Filter, Match, RangeInterface, ValueVariant};
use crate::model::formula::{parse_variable, Expression, Variable};
use crate::model::payload::JsonPath;
use crate::storage::payload_index::{PayloadFieldSchema, PayloadSchemaType};

/// What an index can do for a condition (Qdrant's `FieldIndexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capability {
    IntMatch,
    IntRange,
    KeywordMatch,
    KeywordPrefix,
    FloatRange,
    Text,
    TextPhrase,
    BoolMatch,
    UuidMatch,
    UuidRange,
    DatetimeRange,
    Geo,
}

impl Capability {
    /// Every capability: what `is_empty`, `is_null` and `values_count` accept (any index).
    const ALL: [Capability; 12] = [
        Capability::IntMatch,
        Capability::IntRange,
        Capability::KeywordMatch,
        Capability::KeywordPrefix,
        Capability::FloatRange,
        Capability::Text,
        Capability::TextPhrase,
        Capability::BoolMatch,
        Capability::UuidMatch,
        Capability::UuidRange,
        Capability::DatetimeRange,
        Capability::Geo,
    ];

    /// The index to create for it, as Qdrant names it in the error message.
    fn schema_name(self) -> &'static str {
        match self {
            Capability::IntMatch | Capability::IntRange => "integer",
            Capability::KeywordMatch => "keyword",
            Capability::KeywordPrefix => "keyword (with prefix: true)",
            Capability::FloatRange => "float",
            Capability::Text => "text",
            Capability::TextPhrase => "text (with phrase_matching: true)",
            Capability::BoolMatch => "bool",
            Capability::UuidMatch | Capability::UuidRange => "uuid",
            Capability::DatetimeRange => "datetime",
            Capability::Geo => "geo",
        }
    }
}

fn bool_param(schema: &PayloadFieldSchema, name: &str) -> Option<bool> {
    schema.params().and_then(|p| p.get(name)).and_then(|v| v.as_bool())
}

/// What an existing index serves (Qdrant's `schema_capabilities`).
fn capabilities(schema: &PayloadFieldSchema) -> Vec<Capability> {
    use Capability::*;
    match schema.kind() {
        PayloadSchemaType::Keyword if bool_param(schema, "prefix") == Some(true) => vec![KeywordMatch, KeywordPrefix],
        PayloadSchemaType::Keyword => vec![KeywordMatch],
        PayloadSchemaType::Integer => {
            let mut caps = Vec::new();
            if bool_param(schema, "lookup").unwrap_or(true) {
                caps.push(IntMatch);
            }
            if bool_param(schema, "range").unwrap_or(true) {
                caps.push(IntRange);
            }
            caps
        }
        PayloadSchemaType::Uuid => vec![UuidMatch, UuidRange],
        PayloadSchemaType::Bool => vec![BoolMatch],
        PayloadSchemaType::Float => vec![FloatRange],
        PayloadSchemaType::Geo => vec![Geo],
        PayloadSchemaType::Text if bool_param(schema, "phrase_matching") == Some(true) => vec![Text, TextPhrase],
        PayloadSchemaType::Text => vec![Text],
        PayloadSchemaType::Datetime => vec![DatetimeRange],
    }
}

/// Whether group_by may use this index: it must serve `match` (Qdrant's `supports_match`, with
/// its quirk: a params-form integer index only with an explicit `"lookup": true`).
pub(super) fn supports_match(schema: &PayloadFieldSchema) -> bool {
    match (schema, schema.kind()) {
        (_, PayloadSchemaType::Keyword | PayloadSchemaType::Uuid | PayloadSchemaType::Bool) => true,
        (PayloadFieldSchema::FieldType(_), PayloadSchemaType::Integer) => true,
        (PayloadFieldSchema::FieldParams(_), PayloadSchemaType::Integer) => bool_param(schema, "lookup") == Some(true),
        _ => false,
    }
}

/// Qdrant's `{Kind:?}` of an index type, as the group_by message prints it.
pub(super) fn kind_debug_name(kind: PayloadSchemaType) -> &'static str {
    match kind {
        PayloadSchemaType::Keyword => "Keyword",
        PayloadSchemaType::Integer => "Integer",
        PayloadSchemaType::Float => "Float",
        PayloadSchemaType::Geo => "Geo",
        PayloadSchemaType::Text => "Text",
        PayloadSchemaType::Bool => "Bool",
        PayloadSchemaType::Datetime => "Datetime",
        PayloadSchemaType::Uuid => "Uuid",
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

fn for_any(values: &AnyVariants) -> Vec<Capability> {
    match values {
        // An empty list matches nothing (`any`) or excludes nothing (`except`): no index needed.
        v if v.is_empty() => Vec::new(),
        AnyVariants::Keywords(strings) if strings.iter().all(|s| is_uuid(s)) => {
            vec![Capability::UuidMatch, Capability::KeywordMatch]
        }
        AnyVariants::Keywords(_) => vec![Capability::KeywordMatch],
        AnyVariants::Integers(_) => vec![Capability::IntMatch],
    }
}

/// The capabilities any one of which serves `c` (Qdrant's `infer_index_from_field_condition`).
fn for_field(c: &FieldCondition) -> Vec<Capability> {
    let mut needed = Vec::new();
    if let Some(m) = &c.r#match {
        needed.extend(match m {
            Match::Value(ValueVariant::Keyword(s)) if is_uuid(s) => {
                vec![Capability::UuidMatch, Capability::KeywordMatch]
            }
            Match::Value(ValueVariant::Keyword(_)) => vec![Capability::KeywordMatch],
            Match::Value(ValueVariant::Integer(_)) => vec![Capability::IntMatch],
            Match::Value(ValueVariant::Bool(_)) => vec![Capability::BoolMatch],
            Match::Text(_) | Match::TextAny(_) => vec![Capability::Text],
            Match::Phrase(_) => vec![Capability::TextPhrase],
            Match::Prefix(_) => vec![Capability::KeywordPrefix],
            Match::Any(values) | Match::Except(values) => for_any(values),
        });
    }
    match &c.range {
        Some(RangeInterface::DateTime(_)) => needed.push(Capability::DatetimeRange),
        Some(RangeInterface::Float(_)) => needed.extend([Capability::FloatRange, Capability::IntRange]),
        None => {}
    }
    if c.geo_bounding_box.is_some() || c.geo_radius.is_some() || c.geo_polygon.is_some() {
        needed.push(Capability::Geo);
    }
    if c.values_count.is_some() || c.is_empty.is_some() || c.is_null.is_some() {
        needed.extend(Capability::ALL);
    }
    needed
}

/// A key with no index able to serve it, and the index types that would.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unindexed {
    pub key: JsonPath,
    needed: Vec<Capability>,
}

impl Unindexed {
    /// `bool, datetime, ...`: the index types, sorted and deduplicated as Qdrant lists them.
    pub fn types(&self) -> String {
        let mut names: Vec<&str> = self.needed.iter().map(|c| c.schema_name()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    }
}

impl Unindexed {
    /// The index types the unindexed-field issue suggests: the kinds that would serve the key,
    /// plain (Qdrant maps each capability to its kind) and without `uuid`, sorted.
    pub fn suggested_types(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&str> = self
            .needed
            .iter()
            .filter_map(|c| match c {
                Capability::IntMatch | Capability::IntRange => Some("integer"),
                Capability::KeywordMatch | Capability::KeywordPrefix => Some("keyword"),
                Capability::FloatRange => Some("float"),
                Capability::Text | Capability::TextPhrase => Some("text"),
                Capability::BoolMatch => Some("bool"),
                Capability::UuidMatch | Capability::UuidRange => None,
                Capability::DatetimeRange => Some("datetime"),
                Capability::Geo => Some("geo"),
            })
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }
}

/// The collection's payload indexes by key, checked against what filters need.
pub(super) struct Indexes {
    by_key: BTreeMap<JsonPath, PayloadFieldSchema>,
}

impl Indexes {
    pub fn new(indexes: &BTreeMap<String, PayloadFieldSchema>) -> Indexes {
        let by_key = indexes
            .iter()
            .filter_map(|(field, schema)| Some((field.parse::<JsonPath>().ok()?, schema.clone())))
            .collect();
        Indexes { by_key }
    }

    pub fn get(&self, key: &JsonPath) -> Option<&PayloadFieldSchema> {
        self.by_key.get(key)
    }

    /// Whether `key` has no index serving any of `needed`.
    fn lacks(&self, key: &JsonPath, needed: &[Capability]) -> bool {
        match self.by_key.get(key) {
            Some(schema) => {
                let caps = capabilities(schema);
                !needed.iter().any(|n| caps.contains(n))
            }
            None => true,
        }
    }

    /// The first key of `filter` whose condition no index serves (conditions in Qdrant's order:
    /// must, must_not, should, min_should; every key of a sub-filter counts as one condition).
    pub fn first_unindexed(&self, filter: &Filter) -> Option<Unindexed> {
        let mut found = Found::default();
        for c in all_conditions(filter) {
            self.condition(None, c, &mut found);
            if !found.0.is_empty() {
                break;
            }
        }
        found.first()
    }

    /// Every key of `filter` that no index serves, each with all it was asked for (Qdrant's
    /// eager extractor, which the unindexed-field issue uses).
    pub fn all_unindexed(&self, filter: &Filter) -> Vec<Unindexed> {
        let mut found = Found::default();
        self.filter(None, filter, &mut found);
        found
            .0
            .into_iter()
            .map(|(key, needed)| Unindexed { key, needed })
            .collect()
    }

    /// The first key a formula reads that no suitable index serves.
    pub fn first_unindexed_in_formula(&self, formula: &Expression) -> Option<Unindexed> {
        let mut found = Found::default();
        self.expression(formula, &mut found);
        found.first()
    }

    fn filter(&self, prefix: Option<&JsonPath>, filter: &Filter, found: &mut Found) {
        for c in all_conditions(filter) {
            self.condition(prefix, c, found);
        }
    }

    fn condition(&self, prefix: Option<&JsonPath>, c: &Condition, found: &mut Found) {
        let (key, needed) = match c {
            Condition::Field(f) => (&f.key, for_field(f)),
            Condition::Filter(f) => return self.filter(prefix, f, found),
            Condition::Nested(n) => {
                let inner = extend(prefix, &n.key.array_key());
                return self.filter(Some(&inner), &n.filter, found);
            }
            Condition::IsEmpty(p) | Condition::IsNull(p) => (&p.key, Capability::ALL.to_vec()),
            Condition::HasId(_) | Condition::HasVector(_) => return,
        };
        if needed.is_empty() {
            return;
        }
        let key = extend(prefix, key);
        if self.lacks(&key, &needed) {
            found.add(key, needed);
        }
    }

    fn expression(&self, e: &Expression, found: &mut Found) {
        let (key, needed) = match e {
            Expression::Constant(_) | Expression::Datetime { .. } => return,
            Expression::Variable(name) => match parse_variable(name) {
                Ok(Variable::Payload(key)) => (
                    key,
                    vec![Capability::IntMatch, Capability::IntRange, Capability::FloatRange],
                ),
                // `$score`, or a name the formula's own checks reject.
                _ => return,
            },
            Expression::Condition(c) => return self.condition(None, c, found),
            Expression::GeoDistance { geo_distance } => match geo_distance.to.parse::<JsonPath>() {
                Ok(key) => (key, vec![Capability::Geo]),
                Err(_) => return,
            },
            Expression::DatetimeKey { datetime_key } => match datetime_key.parse::<JsonPath>() {
                Ok(key) => (key, vec![Capability::DatetimeRange]),
                Err(_) => return,
            },
            Expression::Mult { mult: list } | Expression::Sum { sum: list } => {
                return list.iter().for_each(|e| self.expression(e, found));
            }
            Expression::Neg { neg: e }
            | Expression::Abs { abs: e }
            | Expression::Sqrt { sqrt: e }
            | Expression::Exp { exp: e }
            | Expression::Log10 { log10: e }
            | Expression::Ln { ln: e } => return self.expression(e, found),
            Expression::Div { div } => {
                self.expression(&div.left, found);
                return self.expression(&div.right, found);
            }
            Expression::Pow { pow } => {
                self.expression(&pow.base, found);
                return self.expression(&pow.exponent, found);
            }
            Expression::LinDecay { lin_decay: d }
            | Expression::ExpDecay { exp_decay: d }
            | Expression::GaussDecay { gauss_decay: d } => {
                self.expression(&d.x, found);
                if let Some(t) = &d.target {
                    self.expression(t, found);
                }
                return;
            }
        };
        if self.lacks(&key, &needed) {
            found.add(key, needed);
        }
    }
}

/// Unindexed keys in the order they were met, each with every capability asked of it.
#[derive(Default)]
struct Found(Vec<(JsonPath, Vec<Capability>)>);

impl Found {
    fn add(&mut self, key: JsonPath, needed: Vec<Capability>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, all)) => all.extend(needed),
            None => self.0.push((key, needed)),
        }
    }

    fn first(self) -> Option<Unindexed> {
        self.0.into_iter().next().map(|(key, needed)| Unindexed { key, needed })
    }
}

fn extend(prefix: Option<&JsonPath>, key: &JsonPath) -> JsonPath {
    match prefix {
        Some(p) => p.extend(key),
        None => key.clone(),
    }
}

/// Qdrant's `iter_conditions`: must, must_not, should, min_should.
pub(super) fn all_conditions(f: &Filter) -> impl Iterator<Item = &Condition> {
    f.must
        .iter()
        .flatten()
        .chain(f.must_not.iter().flatten())
        .chain(f.should.iter().flatten())
        .chain(f.min_should.iter().flat_map(|m| m.conditions.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indexes(v: serde_json::Value) -> Indexes {
        let map: BTreeMap<String, PayloadFieldSchema> = serde_json::from_value(v).unwrap();
        Indexes::new(&map)
    }

    fn first(ix: &Indexes, f: serde_json::Value) -> Option<(String, String)> {
        let f: Filter = serde_json::from_value(f).unwrap();
        ix.first_unindexed(&f).map(|u| (u.key.to_string(), u.types()))
    }

    #[test]
    fn conditions_need_their_index_types() {
        let none = indexes(json!({}));
        let want = |f, k: &str, t: &str| assert_eq!(first(&none, f), Some((k.to_string(), t.to_string())));
        want(json!({"must": [{"key": "a", "match": {"value": "x"}}]}), "a", "keyword");
        want(
            json!({"must": [{"key": "a", "match": {"value": "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"}}]}),
            "a",
            "keyword, uuid",
        );
        want(
            json!({"must": [{"key": "a", "range": {"gt": 1}}]}),
            "a",
            "float, integer",
        );
        want(
            json!({"must": [{"key": "a", "match": {"phrase": "x y"}}]}),
            "a",
            "text (with phrase_matching: true)",
        );
        want(
            json!({"must_not": [{"is_null": {"key": "a"}}]}),
            "a",
            "bool, datetime, float, geo, integer, keyword, keyword (with prefix: true), text, \
             text (with phrase_matching: true), uuid",
        );
        want(
            json!({"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "b", "match": {"value": 1}}]}}}]}),
            "arr[].b",
            "integer",
        );
        assert_eq!(
            first(
                &none,
                json!({"must": [{"has_id": [1]}, {"key": "a", "match": {"any": []}}]})
            ),
            None
        );
    }

    #[test]
    fn index_capabilities_decide() {
        let ix = indexes(json!({
            "i": {"type": "integer", "lookup": false},
            "k": {"type": "keyword", "prefix": true},
            "t": "text",
            "u": "uuid"
        }));
        assert_eq!(first(&ix, json!({"must": [{"key": "i", "range": {"gt": 1}}]})), None);
        assert_eq!(
            first(&ix, json!({"must": [{"key": "i", "match": {"value": 1}}]})),
            Some(("i".into(), "integer".into()))
        );
        assert_eq!(
            first(&ix, json!({"must": [{"key": "k", "match": {"prefix": "a"}}]})),
            None
        );
        assert_eq!(
            first(&ix, json!({"must": [{"key": "t", "match": {"phrase": "a b"}}]})),
            Some(("t".into(), "text (with phrase_matching: true)".into()))
        );
        assert_eq!(
            first(&ix, json!({"must": [{"key": "u", "match": {"value": "plain"}}]})),
            Some(("u".into(), "keyword".into()))
        );
        // the first offending top-level condition is reported, in must, must_not, should order
        assert_eq!(
            first(
                &ix,
                json!({"should": [{"key": "x", "match": {"value": 1}}], "must_not": [{"key": "y", "match": {"value": 1}}]})
            ),
            Some(("y".into(), "integer".into()))
        );
    }

    #[test]
    fn every_unindexed_key_with_the_index_types_to_suggest() {
        let ix = indexes(json!({"k": "keyword"}));
        let f: Filter = serde_json::from_value(json!({
            "must": [{"key": "k", "match": {"value": "x"}}, {"key": "city", "match": {"any": ["a", "b"]}}],
            "should": [{"key": "price", "range": {"gt": 1}}, {"is_null": {"key": "n"}},
                       {"key": "id", "match": {"value": "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"}}]
        }))
        .unwrap();
        let all: Vec<(String, Vec<&str>)> = ix
            .all_unindexed(&f)
            .into_iter()
            .map(|u| (u.key.to_string(), u.suggested_types()))
            .collect();
        assert_eq!(
            all,
            vec![
                ("city".to_string(), vec!["keyword"]),
                ("price".to_string(), vec!["float", "integer"]),
                (
                    "n".to_string(),
                    vec!["bool", "datetime", "float", "geo", "integer", "keyword", "text"]
                ),
                ("id".to_string(), vec!["keyword"]),
            ]
        );
    }

    #[test]
    fn formulas_need_numeric_geo_and_datetime_indexes() {
        let ix = indexes(json!({"p": {"type": "integer", "lookup": true, "range": false}}));
        let expr: Expression = serde_json::from_value(json!({"sum": ["p", "$score", {"mult": ["q", 2]}]})).unwrap();
        let u = ix.first_unindexed_in_formula(&expr).unwrap();
        assert_eq!((u.key.to_string(), u.types()), ("q".into(), "float, integer".into()));
        let expr: Expression = serde_json::from_value(json!({"datetime_key": "d"})).unwrap();
        assert_eq!(ix.first_unindexed_in_formula(&expr).unwrap().types(), "datetime");
    }

    #[test]
    fn group_by_needs_match() {
        let s = |v| serde_json::from_value::<PayloadFieldSchema>(v).unwrap();
        assert!(supports_match(&s(json!("integer"))));
        assert!(!supports_match(&s(json!({"type": "integer", "range": true}))));
        assert!(supports_match(&s(json!({"type": "integer", "lookup": true}))));
        assert!(!supports_match(&s(json!("float"))));
        assert!(supports_match(&s(json!("keyword"))));
    }
}
