//! Qdrant's filter JSON: `{must, should, must_not, min_should}` over conditions.
//!
//! Shapes (Qdrant's REST API):
//! * `Filter = {should?, min_should?: {conditions, min_count}, must?, must_not?}`; each of
//!   `should`/`must`/`must_not` is a condition, a list of conditions, or `null`. Unknown keys are
//!   rejected.
//! * a condition is a field condition `{key, match|range|geo_bounding_box|geo_radius|geo_polygon|
//!   values_count|is_empty: bool|is_null: bool}`, `{"is_empty": {"key"}}`, `{"is_null": {"key"}}`,
//!   `{"has_id": [ids]}`, `{"has_vector": "name"}`, `{"nested": {"key", "filter"}}` or a nested
//!   filter object.
//!
//! Conditions are parsed from a `serde_json::Value` so that every error names what was wrong;
//! filters therefore (de)serialize through self-describing formats (JSON) only.
//! Evaluation lives in `storage::filter`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::{self, DeserializeOwned};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::payload::JsonPath;
use crate::model::PointId;

const CONDITION_EXPECTING: &str = "Expected some form of condition, which can be a field \
     condition (like {\"key\": ..., \"match\": ... }), {\"is_empty\": {\"key\": ...}}, \
     {\"is_null\": {\"key\": ...}}, {\"has_id\": [...]}, {\"has_vector\": \"...\"}, \
     {\"nested\": {\"key\": ..., \"filter\": ...}} or a nested filter \
     ({\"must\": ..., \"should\": ..., \"must_not\": ..., \"min_should\": ...})";

fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("{what}: {e}"))
}

// ------------------------------------------------------------------------------------------------
// Filter

/// A boolean combination of conditions. All fields optional; `Filter::default()` matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// At least one of these must match (a present but empty list matches nothing).
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    pub should: Option<Vec<Condition>>,
    /// At least `min_count` of these must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_should: Option<MinShould>,
    /// All of these must match.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    pub must: Option<Vec<Condition>>,
    /// None of these may match.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    pub must_not: Option<Vec<Condition>>,
}

/// `min_should: {conditions: [...], min_count: n}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinShould {
    pub conditions: Vec<Condition>,
    pub min_count: usize,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Condition>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(Condition::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(de::Error::custom),
        Some(one) => Condition::from_json(one)
            .map(|c| Some(vec![c]))
            .map_err(de::Error::custom),
    }
}

impl Filter {
    pub fn new_must(condition: Condition) -> Self {
        Filter {
            must: Some(vec![condition]),
            ..Default::default()
        }
    }

    pub fn new_should(condition: Condition) -> Self {
        Filter {
            should: Some(vec![condition]),
            ..Default::default()
        }
    }

    pub fn new_must_not(condition: Condition) -> Self {
        Filter {
            must_not: Some(vec![condition]),
            ..Default::default()
        }
    }

    /// Every condition of this filter (not recursing into nested filters).
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.must
            .iter()
            .flatten()
            .chain(self.should.iter().flatten())
            .chain(self.must_not.iter().flatten())
            .chain(self.min_should.iter().flat_map(|m| &m.conditions))
    }

    /// Semantic checks Qdrant runs after parsing (HTTP 422 there): every field condition must
    /// carry at least one condition kind.
    pub fn validate(&self) -> Result<()> {
        self.conditions().try_for_each(Condition::validate)
    }
}

// ------------------------------------------------------------------------------------------------
// Conditions

/// One filter condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `{key, match|range|...}`
    Field(FieldCondition),
    /// `{"is_empty": {"key": k}}`: missing, `null`, or `[]`.
    IsEmpty(PayloadField),
    /// `{"is_null": {"key": k}}`: the value is `null` (or an array holding `null`).
    IsNull(PayloadField),
    /// `{"has_id": [ids]}`
    HasId(BTreeSet<PointId>),
    /// `{"has_vector": "name"}` (`""` is the default vector).
    HasVector(String),
    /// `{"nested": {"key", "filter"}}`
    Nested(Nested),
    /// A filter object used as a condition.
    Filter(Filter),
}

/// `{"key": "a.b"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadField {
    pub key: JsonPath,
}

/// `{"key": k, "filter": f}`: true when some element of the array at `k` matches `f` as a
/// whole (the element is the payload the inner filter sees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nested {
    pub key: JsonPath,
    pub filter: Filter,
}

#[derive(Deserialize)]
struct HasIdShape {
    has_id: Vec<PointId>,
}

#[derive(Deserialize)]
struct HasVectorShape {
    has_vector: String,
}

#[derive(Deserialize)]
struct IsEmptyShape {
    is_empty: PayloadField,
}

#[derive(Deserialize)]
struct IsNullShape {
    is_null: PayloadField,
}

#[derive(Deserialize)]
struct NestedShape {
    nested: Nested,
}

impl Condition {
    /// Parses one condition, dispatching on its distinguishing key the way Qdrant's untagged
    /// enum does (`key` first, then `is_empty`, `is_null`, `has_id`, `has_vector`, `nested`, and
    /// finally a filter object).
    pub fn from_json(value: Value) -> Result<Condition, String> {
        let Value::Object(map) = &value else {
            return Err(format!("{CONDITION_EXPECTING}; got {value}"));
        };
        if map.contains_key("key") {
            return from_value(value, "field condition").map(Condition::Field);
        }
        if map.contains_key("is_empty") {
            return from_value::<IsEmptyShape>(value, "is_empty condition").map(|s| Condition::IsEmpty(s.is_empty));
        }
        if map.contains_key("is_null") {
            return from_value::<IsNullShape>(value, "is_null condition").map(|s| Condition::IsNull(s.is_null));
        }
        if map.contains_key("has_id") {
            return from_value::<HasIdShape>(value, "has_id condition")
                .map(|s| Condition::HasId(s.has_id.into_iter().collect()));
        }
        if map.contains_key("has_vector") {
            return from_value::<HasVectorShape>(value, "has_vector condition")
                .map(|s| Condition::HasVector(s.has_vector));
        }
        if map.contains_key("nested") {
            return from_value::<NestedShape>(value, "nested condition").map(|s| Condition::Nested(s.nested));
        }
        const FILTER_KEYS: [&str; 4] = ["must", "should", "must_not", "min_should"];
        if let Some(unknown) = map.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(format!("{CONDITION_EXPECTING}; unknown key `{unknown}`"));
        }
        from_value(value, "filter").map(Condition::Filter)
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Condition::Field(f) => f.validate(),
            Condition::Nested(n) => n.filter.validate(),
            Condition::Filter(f) => f.validate(),
            Condition::IsEmpty(_) | Condition::IsNull(_) | Condition::HasId(_) | Condition::HasVector(_) => Ok(()),
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Condition::from_json(value).map_err(de::Error::custom)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Condition::Field(f) => f.serialize(s),
            Condition::Filter(f) => f.serialize(s),
            Condition::IsEmpty(field) => single_entry(s, "is_empty", field),
            Condition::IsNull(field) => single_entry(s, "is_null", field),
            Condition::HasId(ids) => single_entry(s, "has_id", ids),
            Condition::HasVector(name) => single_entry(s, "has_vector", name),
            Condition::Nested(n) => single_entry(s, "nested", n),
        }
    }
}

fn single_entry<S: Serializer, T: Serialize + ?Sized>(s: S, key: &str, v: &T) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(key, v)?;
    m.end()
}

/// A condition on the values at `key`. When several kinds are given they are OR-ed, except that
/// `values_count`, then `is_empty`, then `is_null` take precedence over the others (Qdrant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCondition {
    pub key: JsonPath,
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_bounding_box: Option<GeoBoundingBox>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_radius: Option<GeoRadius>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_polygon: Option<GeoPolygon>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_count: Option<ValuesCount>,
    /// `is_empty: true|false` (alternative syntax of the `is_empty` condition, per value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_empty: Option<bool>,
    /// `is_null: true|false` (alternative syntax of the `is_null` condition, per value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_null: Option<bool>,
}

impl FieldCondition {
    /// A field condition with only `key` set; fill in one kind.
    pub fn new(key: JsonPath) -> Self {
        FieldCondition {
            key,
            r#match: None,
            range: None,
            geo_bounding_box: None,
            geo_radius: None,
            geo_polygon: None,
            values_count: None,
            is_empty: None,
            is_null: None,
        }
    }

    pub fn new_match(key: JsonPath, m: Match) -> Self {
        FieldCondition {
            r#match: Some(m),
            ..Self::new(key)
        }
    }

    pub fn new_range(key: JsonPath, r: RangeInterface) -> Self {
        FieldCondition {
            range: Some(r),
            ..Self::new(key)
        }
    }

    fn has_any_kind(&self) -> bool {
        self.r#match.is_some()
            || self.range.is_some()
            || self.geo_bounding_box.is_some()
            || self.geo_radius.is_some()
            || self.geo_polygon.is_some()
            || self.values_count.is_some()
            || self.is_empty.is_some()
            || self.is_null.is_some()
    }

    pub fn validate(&self) -> Result<()> {
        if !self.has_any_kind() {
            return Err(Error::validation(format!(
                "At least one field condition must be specified (key `{}`)",
                self.key
            )));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------------
// match

/// `match: {value: string|int|bool}`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValueVariant {
    Keyword(String),
    Integer(i64),
    Bool(bool),
}

/// The list of `match: {any}` / `match: {except}`: all strings or all integers (`[]` is strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyVariants {
    Keywords(Vec<String>),
    Integers(Vec<i64>),
}

impl AnyVariants {
    pub fn len(&self) -> usize {
        match self {
            AnyVariants::Keywords(v) => v.len(),
            AnyVariants::Integers(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            AnyVariants::Keywords(v) => v.is_empty(),
            AnyVariants::Integers(v) => v.is_empty(),
        }
    }
}

/// `match: {value} | {any} | {except} | {text} | {text_any} | {phrase} | {prefix}`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Value(ValueVariant),
    /// Full text: all tokens (text index) or substring (no index).
    Text(String),
    /// Full text: at least one token (text index) or one whitespace-separated word as substring.
    TextAny(String),
    /// Full text: the tokens in sequence (text index) or substring (no index).
    Phrase(String),
    /// String starts with the prefix.
    Prefix(String),
    /// Equals one of the values (`IN`).
    Any(AnyVariants),
    /// Equals none of the values (`NOT IN`).
    Except(AnyVariants),
}

fn value_variant(v: Value) -> Result<ValueVariant, String> {
    match v {
        Value::String(s) => Ok(ValueVariant::Keyword(s)),
        Value::Bool(b) => Ok(ValueVariant::Bool(b)),
        Value::Number(n) => n.as_i64().map(ValueVariant::Integer).ok_or_else(|| {
            format!("match value must be a string, an integer or a boolean, got {n} (use `range` for floats)")
        }),
        other => Err(format!(
            "match value must be a string, an integer or a boolean, got {other}"
        )),
    }
}

fn any_variants(v: Value, what: &str) -> Result<AnyVariants, String> {
    let Value::Array(items) = v else {
        return Err(format!("match {what} must be a list of strings or a list of integers"));
    };
    if items.iter().all(Value::is_string) {
        return Ok(AnyVariants::Keywords(
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ));
    }
    items
        .iter()
        .map(Value::as_i64)
        .collect::<Option<Vec<_>>>()
        .map(AnyVariants::Integers)
        .ok_or_else(|| format!("match {what} must be a list of strings or a list of integers"))
}

fn text_of(v: Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!("match {what} must be a string, got {other}")),
    }
}

impl Match {
    pub fn from_json(value: Value) -> Result<Match, String> {
        let Value::Object(mut map) = value else {
            return Err(format!("match must be an object, got {value}"));
        };
        if let Some(v) = map.remove("value") {
            return value_variant(v).map(Match::Value);
        }
        if let Some(v) = map.remove("text") {
            return text_of(v, "text").map(Match::Text);
        }
        if let Some(v) = map.remove("text_any") {
            return text_of(v, "text_any").map(Match::TextAny);
        }
        if let Some(v) = map.remove("phrase") {
            return text_of(v, "phrase").map(Match::Phrase);
        }
        if let Some(v) = map.remove("prefix") {
            return text_of(v, "prefix").map(Match::Prefix);
        }
        if let Some(v) = map.remove("any") {
            return any_variants(v, "any").map(Match::Any);
        }
        if let Some(v) = map.remove("except") {
            return any_variants(v, "except").map(Match::Except);
        }
        Err(
            "match must be one of {\"value\": ...}, {\"any\": [...]}, {\"except\": [...]}, \
             {\"text\": ...}, {\"text_any\": ...}, {\"phrase\": ...}, {\"prefix\": ...}"
                .to_string(),
        )
    }
}

impl<'de> Deserialize<'de> for Match {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Match::from_json(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Serialize for ValueVariant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValueVariant::Keyword(k) => s.serialize_str(k),
            ValueVariant::Integer(i) => s.serialize_i64(*i),
            ValueVariant::Bool(b) => s.serialize_bool(*b),
        }
    }
}

impl Serialize for AnyVariants {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AnyVariants::Keywords(v) => v.serialize(s),
            AnyVariants::Integers(v) => v.serialize(s),
        }
    }
}

impl Serialize for Match {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Match::Value(v) => single_entry(s, "value", v),
            Match::Text(t) => single_entry(s, "text", t),
            Match::TextAny(t) => single_entry(s, "text_any", t),
            Match::Phrase(t) => single_entry(s, "phrase", t),
            Match::Prefix(t) => single_entry(s, "prefix", t),
            Match::Any(v) => single_entry(s, "any", v),
            Match::Except(v) => single_entry(s, "except", v),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// range

/// `{gt?, gte?, lt?, lte?}`; missing bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range<T> {
    pub lt: Option<T>,
    pub gt: Option<T>,
    pub gte: Option<T>,
    pub lte: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    pub fn check(&self, v: T) -> bool {
        self.lt.is_none_or(|b| v < b)
            && self.gt.is_none_or(|b| v > b)
            && self.lte.is_none_or(|b| v <= b)
            && self.gte.is_none_or(|b| v >= b)
    }
}

/// A numeric range (all bounds numbers, or none) or a datetime range (all bounds strings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeInterface {
    Float(Range<f64>),
    DateTime(Range<DateTime<Utc>>),
}

/// Parses a datetime the way Qdrant accepts them in payloads and filters: RFC 3339
/// (`2023-02-08T10:49:00Z`, `+01:00` offsets), offsets without colon or minutes, a space instead
/// of `T`, fractional seconds, no offset (UTC assumed), no seconds (`2023-02-08 10:49`), and a
/// bare date (midnight UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    const WITH_OFFSET: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"];
    for fmt in WITH_OFFSET {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    for fmt in NAIVE {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

const RANGE_KEYS: [&str; 4] = ["lt", "gt", "gte", "lte"];

fn set_bound<T>(range: &mut Range<T>, key: &str, v: T) {
    match key {
        "lt" => range.lt = Some(v),
        "gt" => range.gt = Some(v),
        "gte" => range.gte = Some(v),
        _ => range.lte = Some(v),
    }
}

impl RangeInterface {
    pub fn from_json(value: Value) -> Result<RangeInterface, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "range must be an object like {{\"gte\": ..., \"lt\": ...}}, got {value}"
            ));
        };
        let bounds: Vec<(&str, &Value)> = RANGE_KEYS
            .iter()
            .filter_map(|k| map.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
            .collect();
        if bounds.iter().all(|(_, v)| v.is_number()) {
            let mut range = Range::default();
            for (key, v) in bounds {
                let n = v.as_f64().ok_or_else(|| format!("range `{key}` is not a number"))?;
                set_bound(&mut range, key, n);
            }
            return Ok(RangeInterface::Float(range));
        }
        if bounds.iter().all(|(_, v)| v.is_string()) {
            let mut range = Range::default();
            for (key, v) in bounds {
                let text = v.as_str().unwrap_or_default();
                let dt = parse_datetime(text).ok_or_else(|| {
                    format!(
                        "range `{key}`: '{text}' is not a valid datetime; expected RFC 3339 \
                         like 2023-02-08T10:49:00Z, 2023-02-08 10:49:00 or 2023-02-08"
                    )
                })?;
                set_bound(&mut range, key, dt);
            }
            return Ok(RangeInterface::DateTime(range));
        }
        Err("range bounds must be all numbers or all datetime strings".to_string())
    }
}

impl<'de> Deserialize<'de> for RangeInterface {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RangeInterface::from_json(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Serialize for RangeInterface {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn entries<T, S: Serializer>(s: S, r: &Range<T>, f: impl Fn(&T) -> Value) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            for (key, bound) in [("lt", &r.lt), ("gt", &r.gt), ("gte", &r.gte), ("lte", &r.lte)] {
                if let Some(b) = bound {
                    m.serialize_entry(key, &f(b))?;
                }
            }
            m.end()
        }
        match self {
            RangeInterface::Float(r) => entries(s, r, |v| serde_json::json!(v)),
            RangeInterface::DateTime(r) => entries(s, r, |v| {
                Value::String(v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }),
        }
    }
}

/// `values_count: {gt?, gte?, lt?, lte?}` on the number of values (array length; a scalar
/// counts 1, `null` counts 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValuesCount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<usize>,
}

impl ValuesCount {
    pub fn check_count(&self, count: usize) -> bool {
        self.lt.is_none_or(|b| count < b)
            && self.gt.is_none_or(|b| count > b)
            && self.lte.is_none_or(|b| count <= b)
            && self.gte.is_none_or(|b| count >= b)
    }

    /// The count of one stored value.
    pub fn check_value(&self, value: &Value) -> bool {
        let count = match value {
            Value::Null => 0,
            Value::Array(items) => items.len(),
            _ => 1,
        };
        self.check_count(count)
    }
}

// ------------------------------------------------------------------------------------------------
// geo

/// `{lon, lat}` in degrees; validated on parse.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GeoPoint {
    pub lon: f64,
    pub lat: f64,
}

impl GeoPoint {
    pub fn new(lon: f64, lat: f64) -> Result<GeoPoint, String> {
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!(
                "Wrong input: Longitude must be in range [-180, 180], got {lon}"
            ));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!("Wrong input: Latitude must be in range [-90, 90], got {lat}"));
        }
        Ok(GeoPoint { lon, lat })
    }

    /// A stored geo value: an object with numeric `lon` and `lat` (not range-checked, as Qdrant
    /// does when matching).
    pub fn from_payload(value: &Value) -> Option<GeoPoint> {
        let obj = value.as_object()?;
        Some(GeoPoint {
            lon: obj.get("lon")?.as_f64()?,
            lat: obj.get("lat")?.as_f64()?,
        })
    }

    /// Great-circle distance in meters (haversine, mean Earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
    }
}

impl<'de> Deserialize<'de> for GeoPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            lon: f64,
            lat: f64,
        }
        let raw = Raw::deserialize(d)?;
        GeoPoint::new(raw.lon, raw.lat).map_err(de::Error::custom)
    }
}

/// `geo_bounding_box: {top_left, bottom_right}` (boundaries excluded; crosses the antimeridian
/// when `top_left.lon > bottom_right.lon`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoBoundingBox {
    pub top_left: GeoPoint,
    pub bottom_right: GeoPoint,
}

impl GeoBoundingBox {
    pub fn check_point(&self, p: &GeoPoint) -> bool {
        let lon_ok = if self.top_left.lon > self.bottom_right.lon {
            p.lon > self.top_left.lon || p.lon < self.bottom_right.lon
        } else {
            self.top_left.lon < p.lon && p.lon < self.bottom_right.lon
        };
        lon_ok && self.bottom_right.lat < p.lat && p.lat < self.top_left.lat
    }
}

/// `geo_radius: {center, radius}` (meters; the boundary is excluded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoRadius {
    pub center: GeoPoint,
    pub radius: f64,
}

impl GeoRadius {
    pub fn check_point(&self, p: &GeoPoint) -> bool {
        self.center.distance_m(p) < self.radius
    }
}

/// `{"points": [GeoPoint...]}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoLineString {
    pub points: Vec<GeoPoint>,
}

impl GeoLineString {
    fn validate(&self) -> Result<(), String> {
        if self.points.len() < 4 {
            return Err(format!(
                "polygon invalid, the size must be at least 4, got {}",
                self.points.len()
            ));
        }
        if let (Some(first), Some(last)) = (self.points.first(), self.points.last()) {
            if (first.lat - last.lat).abs() > f64::EPSILON || (first.lon - last.lon).abs() > f64::EPSILON {
                return Err("polygon invalid, the first and the last points should be the same to \
                            form a closed line"
                    .to_string());
            }
        }
        Ok(())
    }

    /// Even-odd ray casting in the lon/lat plane.
    fn contains(&self, p: &GeoPoint) -> bool {
        let pts = &self.points;
        let mut inside = false;
        let mut j = pts.len().saturating_sub(1);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a.lat > p.lat) != (b.lat > p.lat) {
                let x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
                if p.lon < x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }
}

/// `geo_polygon: {exterior, interiors?}`: inside the exterior ring and outside every interior
/// ring (hole). Rings need at least 4 points and must be closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeoPolygon {
    pub exterior: GeoLineString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interiors: Option<Vec<GeoLineString>>,
}

impl GeoPolygon {
    /// A polygon whose rings are checked (at least 4 points, closed).
    pub fn new(exterior: GeoLineString, interiors: Option<Vec<GeoLineString>>) -> Result<GeoPolygon, String> {
        exterior.validate()?;
        for ring in interiors.iter().flatten() {
            ring.validate()?;
        }
        Ok(GeoPolygon { exterior, interiors })
    }

    pub fn check_point(&self, p: &GeoPoint) -> bool {
        self.exterior.contains(p) && !self.interiors.iter().flatten().any(|hole| hole.contains(p))
    }
}

impl<'de> Deserialize<'de> for GeoPolygon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            exterior: GeoLineString,
            #[serde(default)]
            interiors: Option<Vec<GeoLineString>>,
        }
        let raw = Raw::deserialize(d)?;
        GeoPolygon::new(raw.exterior, raw.interiors).map_err(de::Error::custom)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("<filter>"),
        }
    }
}

/// Parses a filter from JSON text (convenience for tests and callers holding raw bodies).
pub fn filter_from_json(value: Value) -> Result<Filter> {
    let filter: Filter = serde_json::from_value(value).map_err(|e| Error::bad_input(e.to_string()))?;
    filter.validate()?;
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    fn parse_err(v: Value) -> String {
        serde_json::from_value::<Filter>(v).unwrap_err().to_string()
    }

    #[test]
    fn filter_shapes_one_or_many_and_null() {
        let f = parse(json!({"must": {"key": "a", "match": {"value": 1}}}));
        assert_eq!(f.must.as_ref().unwrap().len(), 1);
        let f = parse(json!({"must": [{"key": "a", "match": {"value": 1}}, {"has_id": [1, 2]}], "should": null}));
        assert_eq!(f.must.as_ref().unwrap().len(), 2);
        assert!(f.should.is_none());
        let f = parse(json!({"should": []}));
        assert_eq!(f.should, Some(vec![]));
        let f = parse(json!({}));
        assert_eq!(f, Filter::default());
        let f = parse(json!({"min_should": {"conditions": [{"has_vector": "v"}], "min_count": 1}}));
        assert_eq!(f.min_should.as_ref().unwrap().min_count, 1);
        assert!(parse_err(json!({"musts": []})).contains("unknown field"));
        assert!(parse_err(json!({"min_should": {"conditions": []}})).contains("min_count"));
    }

    #[test]
    fn filter_condition_kinds() {
        let f = parse(json!({"must": [
            {"key": "city", "match": {"value": "London"}},
            {"key": "n", "match": {"value": 5}},
            {"key": "b", "match": {"value": true}},
            {"key": "c", "match": {"any": ["a", "b"]}},
            {"key": "c", "match": {"any": [1, 2]}},
            {"key": "c", "match": {"any": []}},
            {"key": "c", "match": {"except": [3]}},
            {"key": "t", "match": {"text": "hello"}},
            {"key": "t", "match": {"text_any": "hello world"}},
            {"key": "t", "match": {"phrase": "hello world"}},
            {"key": "t", "match": {"prefix": "hel"}},
            {"key": "r", "range": {"gte": 1, "lt": 2.5}},
            {"key": "d", "range": {"gte": "2023-02-08T10:49:00Z", "lt": "2023-02-09"}},
            {"key": "g", "geo_radius": {"center": {"lon": 13.4, "lat": 52.5}, "radius": 1000.0}},
            {"key": "g", "geo_bounding_box": {"top_left": {"lon": 1, "lat": 2}, "bottom_right": {"lon": 2, "lat": 1}}},
            {"key": "g", "geo_polygon": {"exterior": {"points": [
                {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]}}},
            {"key": "arr", "values_count": {"gt": 1}},
            {"key": "x", "is_empty": true},
            {"key": "x", "is_null": false},
            {"is_empty": {"key": "x"}},
            {"is_null": {"key": "x"}},
            {"has_id": [1, "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"]},
            {"has_vector": "image"},
            {"nested": {"key": "items", "filter": {"must": {"key": "a", "match": {"value": 1}}}}},
            {"should": [{"key": "a", "match": {"value": 1}}]},
            {},
        ]}));
        let must = f.must.clone().unwrap();
        assert!(
            matches!(&must[0], Condition::Field(fc) if fc.r#match == Some(Match::Value(ValueVariant::Keyword("London".into()))))
        );
        assert!(matches!(&must[1], Condition::Field(fc) if fc.r#match == Some(Match::Value(ValueVariant::Integer(5)))));
        assert!(matches!(&must[2], Condition::Field(fc) if fc.r#match == Some(Match::Value(ValueVariant::Bool(true)))));
        assert!(
            matches!(&must[4], Condition::Field(fc) if fc.r#match == Some(Match::Any(AnyVariants::Integers(vec![1, 2]))))
        );
        assert!(
            matches!(&must[5], Condition::Field(fc) if fc.r#match == Some(Match::Any(AnyVariants::Keywords(vec![]))))
        );
        assert!(
            matches!(&must[11], Condition::Field(fc) if matches!(fc.range, Some(RangeInterface::Float(r)) if r.gte == Some(1.0) && r.lt == Some(2.5)))
        );
        assert!(matches!(&must[12], Condition::Field(fc) if matches!(fc.range, Some(RangeInterface::DateTime(_)))));
        assert!(matches!(&must[21], Condition::HasId(ids) if ids.len() == 2));
        assert!(matches!(&must[22], Condition::HasVector(v) if v == "image"));
        assert!(matches!(&must[23], Condition::Nested(n) if n.key.to_string() == "items"));
        assert!(matches!(&must[24], Condition::Filter(_)));
        assert!(matches!(&must[25], Condition::Filter(inner) if *inner == Filter::default()));
        f.validate().unwrap();

        // Round trip through JSON keeps the meaning.
        let text = serde_json::to_value(&f).unwrap();
        let again: Filter = serde_json::from_value(text).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn filter_bad_shapes_fail_with_clear_messages() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"must": [{"foo": 1}]}), "unknown key `foo`"),
            (json!({"must": [5]}), "Expected some form of condition"),
            (json!({"must": [{"key": "a", "match": {"value": 1.5}}]}), "range"),
            (json!({"must": [{"key": "a", "match": {"value": null}}]}), "match value"),
            (
                json!({"must": [{"key": "a", "match": {"any": [1, "a"]}}]}),
                "list of strings",
            ),
            (
                json!({"must": [{"key": "a", "match": {"foo": 1}}]}),
                "match must be one of",
            ),
            (
                json!({"must": [{"key": "a", "match": {"text": 1}}]}),
                "must be a string",
            ),
            (
                json!({"must": [{"key": "a", "range": {"gt": 1, "lt": "2020-01-01"}}]}),
                "all numbers",
            ),
            (
                json!({"must": [{"key": "a", "range": {"gt": "yesterday"}}]}),
                "not a valid datetime",
            ),
            (
                json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
                "Invalid json path",
            ),
            (json!({"must": [{"has_id": [-1]}]}), "has_id"),
            (json!({"must": [{"has_id": "x"}]}), "has_id"),
            (json!({"must": [{"nested": {"key": "a"}}]}), "filter"),
            (
                json!({"must": [{"key": "g", "geo_radius": {"center": {"lon": 0, "lat": 91}, "radius": 1}}]}),
                "Latitude",
            ),
            (
                json!({"must": [{"key": "g", "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}]}}}]}),
                "at least 4",
            ),
            (
                json!({"must": [{"key": "g", "geo_polygon": {"exterior": {"points": [
                {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}]}}}]}),
                "closed",
            ),
            (
                json!({"must": [{"key": "a", "values_count": {"gt": -1}}]}),
                "expected usize",
            ),
            (json!({"must": [{"must": [], "bogus": 1}]}), "unknown key `bogus`"),
        ];
        for (v, needle) in cases {
            let err = parse_err(v.clone());
            assert!(err.contains(needle), "{v}: {err}");
        }
    }

    #[test]
    fn filter_validate_rejects_empty_field_condition() {
        let f = parse(json!({"must": [{"key": "a"}]}));
        assert!(matches!(f.validate(), Err(Error::Validation(_))));
        let f = parse(json!({"should": {"nested": {"key": "x", "filter": {"must": {"key": "a", "unknown": 1}}}}}));
        assert!(matches!(f.validate(), Err(Error::Validation(_))));
        assert!(filter_from_json(json!({"must": [{"key": "a"}]})).is_err());
        assert!(filter_from_json(json!({"must": [{"nope": 1}]})).is_err());
        assert!(filter_from_json(json!({"must": [{"key": "a", "range": {}}]})).is_ok());
    }

    #[test]
    fn filter_datetime_formats() {
        let expect = Utc.with_ymd_and_hms(2023, 2, 8, 10, 49, 0).unwrap();
        for s in [
            "2023-02-08T10:49:00Z",
            "2023-02-08T11:49:00+01:00",
            "2023-02-08T11:49:00+0100",
            "2023-02-08 11:49:00+01",
            "2023-02-08 10:49:00Z",
            "2023-02-08T10:49:00",
            "2023-02-08 10:49:00",
            "2023-02-08T10:49",
            "2023-02-08 10:49",
        ] {
            assert_eq!(parse_datetime(s), Some(expect), "{s}");
        }
        assert_eq!(
            parse_datetime("2023-02-08T10:49:00.123456Z").map(|d| d.timestamp_micros()),
            Some(expect.timestamp_micros() + 123_456)
        );
        assert_eq!(
            parse_datetime("2023-02-08 10:49:00.5").map(|d| d.timestamp_millis()),
            Some(expect.timestamp_millis() + 500)
        );
        assert_eq!(
            parse_datetime("2023-02-08"),
            Some(Utc.with_ymd_and_hms(2023, 2, 8, 0, 0, 0).unwrap())
        );
        for bad in [
            "",
            "2023",
            "2023-13-01",
            "yesterday",
            "2023-02-08T25:00:00Z",
            "1675853340",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn filter_geo_math() {
        let berlin = GeoPoint::new(13.404954, 52.520008).unwrap();
        let near = GeoRadius {
            center: GeoPoint::new(13.423637, 52.511).unwrap(),
            radius: 2000.0,
        };
        let far = GeoRadius {
            center: GeoPoint::new(20.423637, 52.511).unwrap(),
            radius: 2000.0,
        };
        assert!(near.check_point(&berlin));
        assert!(!far.check_point(&berlin));
        // London - Paris is about 344 km.
        let london = GeoPoint::new(-0.1278, 51.5074).unwrap();
        let paris = GeoPoint::new(2.3522, 48.8566).unwrap();
        let d = london.distance_m(&paris);
        assert!((340_000.0..350_000.0).contains(&d), "{d}");

        let bbox = GeoBoundingBox {
            top_left: GeoPoint::new(13.08835, 52.67551).unwrap(),
            bottom_right: GeoPoint::new(13.76116, 52.33826).unwrap(),
        };
        assert!(bbox.check_point(&berlin));
        assert!(!bbox.check_point(&paris));
        let across = GeoBoundingBox {
            top_left: GeoPoint::new(170.0, 10.0).unwrap(),
            bottom_right: GeoPoint::new(-170.0, -10.0).unwrap(),
        };
        assert!(across.check_point(&GeoPoint { lon: 179.0, lat: 0.0 }));
        assert!(across.check_point(&GeoPoint { lon: -179.0, lat: 0.0 }));
        assert!(!across.check_point(&GeoPoint { lon: 0.0, lat: 0.0 }));

        let ring = |pts: &[(f64, f64)]| GeoLineString {
            points: pts.iter().map(|&(lon, lat)| GeoPoint { lon, lat }).collect(),
        };
        let poly = GeoPolygon {
            exterior: ring(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]),
            interiors: Some(vec![ring(&[
                (4.0, 4.0),
                (6.0, 4.0),
                (6.0, 6.0),
                (4.0, 6.0),
                (4.0, 4.0),
            ])]),
        };
        assert!(poly.check_point(&GeoPoint { lon: 2.0, lat: 2.0 }));
        assert!(!poly.check_point(&GeoPoint { lon: 5.0, lat: 5.0 }));
        assert!(!poly.check_point(&GeoPoint { lon: 11.0, lat: 5.0 }));
    }
}
