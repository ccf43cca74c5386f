//! Payload indexes of one shard: per-field inverted / ordered indexes over internal point offsets.
//!
//! They serve two purposes:
//! * [`PayloadIndexes::candidates`] narrows a filter to a *superset* of the offsets that can
//!   match, from the `must` (and `should` / `min_should` / `nested`) conditions the indexes
//!   understand. The caller re-checks every candidate with [`PayloadIndexes::matches`].
//! * [`PayloadIndexes::matches`] evaluates a filter with index-dependent semantics (a text index
//!   tokenises `match: {text | text_any | phrase}` its own way; see [`crate::storage::text`]).
//!
//! Values are extracted exactly as the filter evaluation sees them (the values at the key, leaf
//! arrays expanded one level), so a candidate set never misses a match.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use roaring::RoaringBitmap;
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::filter::{
    parse_datetime, AnyVariants, Condition, FieldCondition, Filter, GeoPoint, Match, RangeInterface, ValueVariant,
};
use crate::model::payload::{flat_values_at, JsonPath, Payload};
use crate::storage::filter::{self, FieldIndexes, PointRef};
use crate::storage::text::{TextIndexParams, TextQuery, Tokenizer, TokenizerType};

// ------------------------------------------------------------------------------------------------
// Field schema (the `field_schema` of `PUT /collections/{c}/index`)

/// The index types Qdrant knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSchemaType {
    Keyword,
    Integer,
    Float,
    Geo,
    Text,
    Bool,
    Datetime,
    Uuid,
}

impl PayloadSchemaType {
    pub const ALL: [PayloadSchemaType; 8] = [
        PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer,
        PayloadSchemaType::Float,
        PayloadSchemaType::Geo,
        PayloadSchemaType::Text,
        PayloadSchemaType::Bool,
        PayloadSchemaType::Datetime,
        PayloadSchemaType::Uuid,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            PayloadSchemaType::Keyword => "keyword",
            PayloadSchemaType::Integer => "integer",
            PayloadSchemaType::Float => "float",
            PayloadSchemaType::Geo => "geo",
            PayloadSchemaType::Text => "text",
            PayloadSchemaType::Bool => "bool",
            PayloadSchemaType::Datetime => "datetime",
            PayloadSchemaType::Uuid => "uuid",
        }
    }

    fn parse(name: &str) -> std::result::Result<PayloadSchemaType, String> {
        Self::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| {
            format!(
                "unknown payload index type `{name}`, expected one of keyword, integer, float, geo, \
                 text, bool, datetime, uuid"
            )
        })
    }

    /// Parameter names this type accepts, with the JSON type each must have.
    fn known_params(&self) -> &'static [(&'static str, ParamKind)] {
        use ParamKind::*;
        match self {
            PayloadSchemaType::Keyword => &[
                ("is_tenant", Bool),
                ("on_disk", Bool),
                ("memory", Memory),
                ("enable_hnsw", Bool),
                ("prefix", Bool),
            ],
            PayloadSchemaType::Uuid => &[
                ("is_tenant", Bool),
                ("on_disk", Bool),
                ("memory", Memory),
                ("enable_hnsw", Bool),
            ],
            PayloadSchemaType::Integer => &[
                ("lookup", Bool),
                ("range", Bool),
                ("is_principal", Bool),
                ("on_disk", Bool),
                ("memory", Memory),
                ("enable_hnsw", Bool),
            ],
            PayloadSchemaType::Float | PayloadSchemaType::Datetime => &[
                ("is_principal", Bool),
                ("on_disk", Bool),
                ("memory", Memory),
                ("enable_hnsw", Bool),
            ],
            PayloadSchemaType::Geo | PayloadSchemaType::Bool => {
                &[("on_disk", Bool), ("memory", Memory), ("enable_hnsw", Bool)]
            }
            // `stopwords` and `stemmer` are checked (and normalised) by `TextIndexParams`.
            PayloadSchemaType::Text => &[
                ("tokenizer", Tokenizer),
                ("lowercase", Bool),
                ("min_token_len", UInt),
                ("max_token_len", UInt),
                ("on_disk", Bool),
                ("memory", Memory),
                ("phrase_matching", Bool),
                ("ascii_folding", Bool),
                ("enable_hnsw", Bool),
                ("stopwords", Any),
                ("stemmer", Any),
            ],
        }
    }
}

impl fmt::Display for PayloadSchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy)]
enum ParamKind {
    Bool,
    UInt,
    Tokenizer,
    /// `cold`, `cached` or `pinned` (Qdrant 1.19's storage placement; accepted and reported).
    Memory,
    Any,
}

/// A params object: `{"type": "text", "tokenizer": "word", ...}`. Known parameters are
/// type-checked and kept (in `params`, together with `type`); unknown ones are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadSchemaParams {
    kind: PayloadSchemaType,
    params: Map<String, Value>,
}

impl PayloadSchemaParams {
    pub fn kind(&self) -> PayloadSchemaType {
        self.kind
    }

    /// A known parameter (never `type`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|_| name != "type")
    }

    fn bool_param(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    fn from_json(value: Value) -> std::result::Result<PayloadSchemaParams, String> {
        let Value::Object(map) = value else {
            return Err("field_schema params must be an object".to_string());
        };
        let kind = match map.get("type") {
            Some(Value::String(t)) => PayloadSchemaType::parse(t)?,
            _ => {
                return Err(
                    "field_schema params need a `type` (keyword, integer, float, geo, text, bool, datetime, uuid)"
                        .to_string(),
                )
            }
        };
        let mut params = Map::new();
        params.insert("type".to_string(), Value::String(kind.name().to_string()));
        for (name, kind_of) in kind.known_params() {
            let Some(v) = map.get(*name).filter(|v| !v.is_null()) else {
                continue;
            };
            let ok = match kind_of {
                ParamKind::Bool => v.is_boolean(),
                ParamKind::UInt => v.as_u64().is_some(),
                ParamKind::Tokenizer => v.as_str().is_some_and(|t| TokenizerType::parse(t).is_some()),
                ParamKind::Memory => v.as_str().is_some_and(|m| ["cold", "cached", "pinned"].contains(&m)),
                ParamKind::Any => true,
            };
            if !ok {
                let expected = match kind_of {
                    ParamKind::Bool => "a boolean",
                    ParamKind::UInt => "a non-negative integer",
                    ParamKind::Tokenizer => "one of prefix, whitespace, word, multilingual",
                    ParamKind::Memory => "one of cold, cached, pinned",
                    ParamKind::Any => "any value",
                };
                return Err(format!(
                    "{} index parameter `{name}` must be {expected}, got {v}",
                    kind.name()
                ));
            }
            params.insert(name.to_string(), v.clone());
        }
        if kind == PayloadSchemaType::Text {
            TextIndexParams::normalize(&mut params)?;
        }
        let schema = PayloadSchemaParams { kind, params };
        if kind == PayloadSchemaType::Integer
            && schema.bool_param("lookup") == Some(false)
            && schema.bool_param("range") == Some(false)
        {
            return Err("the 'lookup' and 'range' capabilities can't be both disabled".to_string());
        }
        Ok(schema)
    }
}

impl Serialize for PayloadSchemaParams {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.params.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PayloadSchemaParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        PayloadSchemaParams::from_json(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// `field_schema`: a type name (`"keyword"`) or a params object (`{"type": "keyword", ...}`).
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadFieldSchema {
    FieldType(PayloadSchemaType),
    FieldParams(PayloadSchemaParams),
}

impl PayloadFieldSchema {
    pub fn kind(&self) -> PayloadSchemaType {
        match self {
            PayloadFieldSchema::FieldType(t) => *t,
            PayloadFieldSchema::FieldParams(p) => p.kind,
        }
    }

    pub fn params(&self) -> Option<&PayloadSchemaParams> {
        match self {
            PayloadFieldSchema::FieldType(_) => None,
            PayloadFieldSchema::FieldParams(p) => Some(p),
        }
    }

    /// `is_tenant: true` (keyword / uuid) or `is_principal: true` (integer / float / datetime).
    pub fn is_tenant(&self) -> bool {
        self.params()
            .is_some_and(|p| p.bool_param("is_tenant") == Some(true) || p.bool_param("is_principal") == Some(true))
    }

    /// The tokenizer settings of a text index (`None` for other types).
    pub fn text_params(&self) -> Option<TextIndexParams> {
        if self.kind() != PayloadSchemaType::Text {
            return None;
        }
        // Parameters were checked when the schema was parsed.
        Some(
            self.params()
                .and_then(|p| TextIndexParams::from_json(&p.params).ok())
                .unwrap_or_default(),
        )
    }
}

impl Serialize for PayloadFieldSchema {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            PayloadFieldSchema::FieldType(t) => t.serialize(s),
            PayloadFieldSchema::FieldParams(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PayloadFieldSchema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(name) => PayloadSchemaType::parse(&name)
                .map(PayloadFieldSchema::FieldType)
                .map_err(de::Error::custom),
            obj @ Value::Object(_) => PayloadSchemaParams::from_json(obj)
                .map(PayloadFieldSchema::FieldParams)
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "field_schema must be a type name like \"keyword\" or an object like \
                 {{\"type\": \"text\", ...}}, got {other}"
            ))),
        }
    }
}

impl From<PayloadSchemaType> for PayloadFieldSchema {
    fn from(t: PayloadSchemaType) -> Self {
        PayloadFieldSchema::FieldType(t)
    }
}

/// One entry of `CollectionInfo.payload_schema`: `{"data_type", "params"?, "points"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadIndexInfo {
    pub data_type: PayloadSchemaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<PayloadSchemaParams>,
    pub points: usize,
}

// ------------------------------------------------------------------------------------------------
// Index data

/// A totally ordered `f64` key (`-0.0` folded into `0.0`, so the order agrees with `==`).
#[derive(Debug, Clone, Copy)]
struct NumKey(f64);

impl NumKey {
    fn new(v: f64) -> NumKey {
        NumKey(if v == 0.0 { 0.0 } else { v })
    }
}

impl PartialEq for NumKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for NumKey {}
impl PartialOrd for NumKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NumKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug)]
struct Postings<K: Ord>(BTreeMap<K, RoaringBitmap>);

impl<K: Ord> Default for Postings<K> {
    fn default() -> Self {
        Postings(BTreeMap::new())
    }
}

impl<K: Ord> Postings<K> {
    fn add(&mut self, key: K, offset: u32) {
        self.0.entry(key).or_default().insert(offset);
    }

    fn remove(&mut self, key: K, offset: u32) {
        if let Some(b) = self.0.get_mut(&key) {
            b.remove(offset);
            if b.is_empty() {
                self.0.remove(&key);
            }
        }
    }

    fn get(&self, key: &K) -> RoaringBitmap {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// Union over `[lo, hi]`; empty when `lo > hi`.
    fn range(&self, lo: Option<K>, hi: Option<K>) -> RoaringBitmap {
        if let (Some(lo), Some(hi)) = (&lo, &hi) {
            if lo > hi {
                return RoaringBitmap::new();
            }
        }
        let lo = lo.map_or(Bound::Unbounded, Bound::Included);
        let hi = hi.map_or(Bound::Unbounded, Bound::Included);
        let mut out = RoaringBitmap::new();
        for (_, b) in self.0.range((lo, hi)) {
            out |= b;
        }
        out
    }
}

#[derive(Debug)]
enum IndexData {
    /// keyword and uuid: every string value.
    Strings(Postings<String>),
    /// integer: `as_i64` values for `match`, every number (as f64) for `range`.
    Integer {
        ints: Postings<i64>,
        nums: Postings<NumKey>,
    },
    /// float: every number as f64.
    Float(Postings<NumKey>),
    Bool {
        yes: RoaringBitmap,
        no: RoaringBitmap,
    },
    /// datetime: strings that parse, as microseconds since the epoch.
    Datetime(Postings<i64>),
    /// text: document tokens (no positions: phrases are checked on the candidates' texts).
    Text {
        tokenizer: Box<Tokenizer>,
        tokens: Postings<String>,
    },
    /// geo: the points of each offset (scanned).
    Geo(BTreeMap<u32, Vec<GeoPoint>>),
}

#[derive(Debug)]
struct FieldIndex {
    schema: PayloadFieldSchema,
    path: JsonPath,
    data: IndexData,
    /// Offsets with at least one value of the index's type.
    points: RoaringBitmap,
}

impl FieldIndex {
    fn new(path: JsonPath, schema: PayloadFieldSchema) -> FieldIndex {
        let data = match schema.kind() {
            PayloadSchemaType::Keyword | PayloadSchemaType::Uuid => IndexData::Strings(Postings::default()),
            PayloadSchemaType::Integer => IndexData::Integer {
                ints: Postings::default(),
                nums: Postings::default(),
            },
            PayloadSchemaType::Float => IndexData::Float(Postings::default()),
            PayloadSchemaType::Bool => IndexData::Bool {
                yes: RoaringBitmap::new(),
                no: RoaringBitmap::new(),
            },
            PayloadSchemaType::Datetime => IndexData::Datetime(Postings::default()),
            PayloadSchemaType::Text => IndexData::Text {
                tokenizer: Box::new(Tokenizer::new(schema.text_params().unwrap_or_default())),
                tokens: Postings::default(),
            },
            PayloadSchemaType::Geo => IndexData::Geo(BTreeMap::new()),
        };
        FieldIndex {
            schema,
            path,
            data,
            points: RoaringBitmap::new(),
        }
    }

    /// Adds (`add = true`) or removes the offset under every key of `payload`'s values.
    fn update(&mut self, offset: u32, payload: &Payload, add: bool) {
        let values = flat_values_at(payload, &self.path);
        let mut typed = false;
        let is_uuid = self.schema.kind() == PayloadSchemaType::Uuid;
        match &mut self.data {
            IndexData::Strings(map) => {
                for s in values.iter().filter_map(|v| v.as_str()) {
                    typed |= !is_uuid || uuid::Uuid::parse_str(s).is_ok();
                    if add {
                        map.add(s.to_string(), offset)
                    } else {
                        map.remove(s.to_string(), offset)
                    }
                }
            }
            IndexData::Integer { ints, nums } => {
                for v in values.iter().filter(|v| v.is_number()) {
                    if let Some(i) = v.as_i64() {
                        typed = true;
                        if add {
                            ints.add(i, offset)
                        } else {
                            ints.remove(i, offset)
                        }
                    }
                    if let Some(f) = v.as_f64() {
                        if add {
                            nums.add(NumKey::new(f), offset)
                        } else {
                            nums.remove(NumKey::new(f), offset)
                        }
                    }
                }
            }
            IndexData::Float(nums) => {
                for f in values.iter().filter(|v| v.is_number()).filter_map(|v| v.as_f64()) {
                    typed = true;
                    if add {
                        nums.add(NumKey::new(f), offset)
                    } else {
                        nums.remove(NumKey::new(f), offset)
                    }
                }
            }
            IndexData::Bool { yes, no } => {
                for b in values.iter().filter_map(|v| v.as_bool()) {
                    typed = true;
                    let set = if b { &mut *yes } else { &mut *no };
                    if add {
                        set.insert(offset);
                    } else {
                        set.remove(offset);
                    }
                }
            }
            IndexData::Datetime(map) => {
                for dt in values.iter().filter_map(|v| v.as_str()).filter_map(parse_datetime) {
                    typed = true;
                    if add {
                        map.add(dt.timestamp_micros(), offset)
                    } else {
                        map.remove(dt.timestamp_micros(), offset)
                    }
                }
            }
            IndexData::Text { tokenizer, tokens } => {
                for s in values.iter().filter_map(|v| v.as_str()) {
                    typed = true;
                    for token in tokenizer.doc_tokens(s) {
                        if add {
                            tokens.add(token, offset)
                        } else {
                            tokens.remove(token, offset)
                        }
                    }
                }
            }
            IndexData::Geo(points) => {
                if add {
                    let geo: Vec<GeoPoint> = values.iter().filter_map(|v| GeoPoint::from_payload(v)).collect();
                    typed = !geo.is_empty();
                    if typed {
                        points.entry(offset).or_default().extend(geo);
                    }
                } else {
                    points.remove(&offset);
                }
            }
        }
        if !add {
            self.points.remove(offset);
        } else if typed {
            self.points.insert(offset);
        }
    }

    /// Offsets that may satisfy the `match` part of a condition; `None` = cannot tell.
    fn match_candidates(&self, m: &Match) -> Option<RoaringBitmap> {
        let union = |keys: &mut dyn Iterator<Item = RoaringBitmap>| {
            let mut out = RoaringBitmap::new();
            for b in keys {
                out |= b;
            }
            out
        };
        match (&self.data, m) {
            (IndexData::Strings(map), Match::Value(ValueVariant::Keyword(k))) => Some(map.get(k)),
            (IndexData::Strings(map), Match::Any(AnyVariants::Keywords(list))) => {
                Some(union(&mut list.iter().map(|k| map.get(k))))
            }
            (IndexData::Strings(map), Match::Prefix(p)) => Some(union(
                &mut map
                    .0
                    .range::<String, _>((Bound::Included(p.clone()), Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(p.as_str()))
                    .map(|(_, b)| b.clone()),
            )),
            (IndexData::Integer { ints, .. }, Match::Value(ValueVariant::Integer(i))) => Some(ints.get(i)),
            (IndexData::Integer { ints, .. }, Match::Any(AnyVariants::Integers(list))) => {
                Some(union(&mut list.iter().map(|i| ints.get(i))))
            }
            // `as_i64() == i` implies `as_f64() == i as f64`: the float postings hold it.
            (IndexData::Float(nums), Match::Value(ValueVariant::Integer(i))) => Some(nums.get(&NumKey::new(*i as f64))),
            (IndexData::Float(nums), Match::Any(AnyVariants::Integers(list))) => {
                Some(union(&mut list.iter().map(|i| nums.get(&NumKey::new(*i as f64)))))
            }
            (IndexData::Bool { yes, no }, Match::Value(ValueVariant::Bool(b))) => {
                Some(if *b { yes.clone() } else { no.clone() })
            }
            (IndexData::Text { tokenizer, tokens }, m) => match TextQuery::parse(tokenizer, m)? {
                // A phrase's points hold all its tokens; order is checked on each candidate.
                TextQuery::All(query) | TextQuery::Phrase(query) => {
                    let mut it = query.iter();
                    let first = tokens.get(it.next()?);
                    Some(it.fold(first, |acc, t| acc & tokens.get(t)))
                }
                TextQuery::Any(query) => Some(union(&mut query.iter().map(|t| tokens.get(t)))),
                TextQuery::Nothing => Some(RoaringBitmap::new()),
            },
            _ => None,
        }
    }

    fn range_candidates(&self, r: &RangeInterface) -> Option<RoaringBitmap> {
        fn bounds<T: Copy + PartialOrd>(r: &crate::model::filter::Range<T>) -> (Option<T>, Option<T>) {
            let max = |a: Option<T>, b: Option<T>| match (a, b) {
                (Some(x), Some(y)) => Some(if y > x { y } else { x }),
                (x, None) | (None, x) => x,
            };
            let min = |a: Option<T>, b: Option<T>| match (a, b) {
                (Some(x), Some(y)) => Some(if y < x { y } else { x }),
                (x, None) | (None, x) => x,
            };
            (max(r.gt, r.gte), min(r.lt, r.lte))
        }
        match (&self.data, r) {
            (IndexData::Integer { nums, .. } | IndexData::Float(nums), RangeInterface::Float(range)) => {
                if [range.gt, range.gte, range.lt, range.lte]
                    .iter()
                    .flatten()
                    .any(|b| b.is_nan())
                {
                    return Some(RoaringBitmap::new());
                }
                let (lo, hi) = bounds(range);
                Some(nums.range(lo.map(NumKey::new), hi.map(NumKey::new)))
            }
            (IndexData::Datetime(map), RangeInterface::DateTime(range)) => {
                // Micros truncate monotonically, so inclusive micro bounds are a superset.
                let (lo, hi) = bounds(range);
                Some(map.range(lo.map(|d| d.timestamp_micros()), hi.map(|d| d.timestamp_micros())))
            }
            _ => None,
        }
    }

    fn geo_candidates(&self, check: impl Fn(&GeoPoint) -> bool) -> Option<RoaringBitmap> {
        let IndexData::Geo(points) = &self.data else {
            return None;
        };
        Some(
            points
                .iter()
                .filter(|(_, pts)| pts.iter().any(&check))
                .map(|(offset, _)| *offset)
                .collect(),
        )
    }
}

// ------------------------------------------------------------------------------------------------
// PayloadIndexes

/// All payload indexes of one shard, keyed by normalised field path.
#[derive(Debug, Default)]
pub struct PayloadIndexes {
    fields: BTreeMap<String, FieldIndex>,
}

fn parse_field(field: &str) -> Result<JsonPath> {
    field.parse::<JsonPath>().map_err(Error::BadInput)
}

impl PayloadIndexes {
    /// Creates (or replaces) the index of `field` and fills it from `points`.
    pub fn create_index<'p>(
        &mut self,
        field: &str,
        schema: PayloadFieldSchema,
        points: impl Iterator<Item = (u32, &'p Payload)>,
    ) -> Result<()> {
        let path = parse_field(field)?;
        let mut index = FieldIndex::new(path.clone(), schema);
        for (offset, payload) in points {
            index.update(offset, payload, true);
        }
        self.fields.insert(path.to_string(), index);
        Ok(())
    }

    /// Drops the index of `field`; `false` when there was none (or the name is not a valid path).
    pub fn drop_index(&mut self, field: &str) -> bool {
        match parse_field(field) {
            Ok(path) => self.fields.remove(&path.to_string()).is_some(),
            Err(_) => false,
        }
    }

    /// Indexes a new point. On update call [`remove`](Self::remove) with the old payload first
    /// (or use [`update`](Self::update)).
    pub fn insert(&mut self, offset: u32, payload: &Payload) {
        for index in self.fields.values_mut() {
            index.update(offset, payload, true);
        }
    }

    /// Un-indexes a point; `payload` must be the payload it was indexed with.
    pub fn remove(&mut self, offset: u32, payload: &Payload) {
        for index in self.fields.values_mut() {
            index.update(offset, payload, false);
        }
    }

    /// `remove(offset, old)` then `insert(offset, new)`.
    pub fn update(&mut self, offset: u32, old: &Payload, new: &Payload) {
        self.remove(offset, old);
        self.insert(offset, new);
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The schema of an indexed field.
    pub fn get(&self, field: &str) -> Option<&PayloadFieldSchema> {
        let path = parse_field(field).ok()?;
        self.fields.get(&path.to_string()).map(|f| &f.schema)
    }

    /// `CollectionInfo.payload_schema`.
    pub fn schema(&self) -> BTreeMap<String, PayloadIndexInfo> {
        self.fields
            .iter()
            .map(|(name, index)| {
                let info = PayloadIndexInfo {
                    data_type: index.schema.kind(),
                    params: index.schema.params().cloned(),
                    points: index.points.len() as usize,
                };
                (name.clone(), info)
            })
            .collect()
    }

    /// Every index definition, for persisting and re-creating them.
    pub fn definitions(&self) -> Vec<(String, PayloadFieldSchema)> {
        self.fields
            .iter()
            .map(|(name, f)| (name.clone(), f.schema.clone()))
            .collect()
    }

    /// A superset of the offsets that can match `filter`, or `None` when the indexes cannot
    /// narrow it (then every point must be checked). `has_id` is left to the caller.
    pub fn candidates(&self, filter: &Filter) -> Option<RoaringBitmap> {
        self.filter_candidates(filter, None)
    }

    /// Evaluates `filter` on one point with index-aware semantics (text indexes).
    pub fn matches(&self, filter: &Filter, point: &PointRef<'_>) -> bool {
        filter::check_with(filter, point, self)
    }

    fn filter_candidates(&self, f: &Filter, prefix: Option<&JsonPath>) -> Option<RoaringBitmap> {
        let mut acc: Option<RoaringBitmap> = None;
        let mut intersect = |b: RoaringBitmap| {
            acc = Some(match acc.take() {
                Some(a) => a & b,
                None => b,
            });
        };
        for c in f.must.iter().flatten() {
            if let Some(b) = self.condition_candidates(c, prefix) {
                intersect(b);
            }
        }
        if let Some(should) = &f.should {
            if let Some(b) = self.union_candidates(should, prefix) {
                intersect(b);
            }
        }
        if let Some(ms) = &f.min_should {
            if ms.min_count > ms.conditions.len() {
                intersect(RoaringBitmap::new());
            } else if ms.min_count > 0 {
                if let Some(b) = self.union_candidates(&ms.conditions, prefix) {
                    intersect(b);
                }
            }
        }
        acc
    }

    /// At least one of `conds` holds: the union, if every condition can be narrowed.
    fn union_candidates(&self, conds: &[Condition], prefix: Option<&JsonPath>) -> Option<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for c in conds {
            out |= self.condition_candidates(c, prefix)?;
        }
        Some(out)
    }

    fn condition_candidates(&self, c: &Condition, prefix: Option<&JsonPath>) -> Option<RoaringBitmap> {
        match c {
            Condition::Field(fc) => self.field_candidates(fc, prefix),
            Condition::Filter(f) => self.filter_candidates(f, prefix),
            Condition::Nested(n) => {
                // An element matching the inner filter contributes its values to the root
                // payload's `key[].x`, so the inner conditions narrow through those indexes.
                let array_key = n.key.array_key();
                let inner = match prefix {
                    Some(p) => p.extend(&array_key),
                    None => array_key,
                };
                self.filter_candidates(&n.filter, Some(&inner))
            }
            Condition::IsEmpty(_) | Condition::IsNull(_) | Condition::HasId(_) | Condition::HasVector(_) => None,
        }
    }

    fn field_candidates(&self, fc: &FieldCondition, prefix: Option<&JsonPath>) -> Option<RoaringBitmap> {
        // These take precedence over the other kinds and can hold for missing keys.
        if fc.values_count.is_some() || fc.is_empty.is_some() || fc.is_null.is_some() {
            return None;
        }
        let key = match prefix {
            Some(p) => p.extend(&fc.key).to_string(),
            None => fc.key.to_string(),
        };
        let index = self.fields.get(&key);
        let mut out = RoaringBitmap::new();
        let mut any_part = false;
        if let Some(m) = &fc.r#match {
            any_part = true;
            let part = match m {
                Match::Any(list) if list.is_empty() => Some(RoaringBitmap::new()),
                _ => index.and_then(|i| i.match_candidates(m)),
            };
            out |= part?;
        }
        if let Some(r) = &fc.range {
            any_part = true;
            out |= index?.range_candidates(r)?;
        }
        if let Some(b) = &fc.geo_bounding_box {
            any_part = true;
            out |= index?.geo_candidates(|p| b.check_point(p))?;
        }
        if let Some(r) = &fc.geo_radius {
            any_part = true;
            out |= index?.geo_candidates(|p| r.check_point(p))?;
        }
        if let Some(g) = &fc.geo_polygon {
            any_part = true;
            out |= index?.geo_candidates(|p| g.check_point(p))?;
        }
        any_part.then_some(out)
    }
}

impl FieldIndexes for PayloadIndexes {
    fn text_index(&self, key: &str) -> Option<&Tokenizer> {
        match &self.fields.get(key)?.data {
            IndexData::Text { tokenizer, .. } => Some(tokenizer),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;
    use crate::model::filter::filter_from_json;
    use crate::model::PointId;

    fn payload(v: Value) -> Payload {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn schema(v: Value) -> PayloadFieldSchema {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn payload_index_schema_serde() {
        assert_eq!(
            schema(json!("keyword")),
            PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)
        );
        for t in PayloadSchemaType::ALL {
            let s = schema(json!(t.name()));
            assert_eq!(s.kind(), t);
            assert_eq!(serde_json::to_value(&s).unwrap(), json!(t.name()));
        }
        let s = schema(
            json!({"type": "text", "tokenizer": "word", "lowercase": true, "min_token_len": 2,
                               "max_token_len": 20, "future_param": [1], "on_disk": null}),
        );
        assert_eq!(s.kind(), PayloadSchemaType::Text);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "text", "tokenizer": "word", "lowercase": true, "min_token_len": 2, "max_token_len": 20})
        );
        assert_eq!(s.text_params().unwrap().min_token_len, Some(2));
        let s = schema(
            json!({"type": "text", "stopwords": {"languages": ["en"], "custom": ["b", "a", "b"]},
                              "stemmer": {"type": "snowball", "language": "en"}, "memory": "cold"}),
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "text", "tokenizer": "word", "memory": "cold",
                   "stopwords": {"languages": ["english"], "custom": ["a", "b"]},
                   "stemmer": {"type": "snowball", "language": "english"}}),
            "normalised as Qdrant reports it"
        );
        assert!(s.text_params().unwrap().stemmer.is_some());
        assert_eq!(schema(json!("text")).text_params(), Some(TextIndexParams::default()));
        let s = schema(json!({"type": "keyword", "is_tenant": true, "on_disk": true}));
        assert!(s.is_tenant());
        assert_eq!(s.params().unwrap().get("on_disk"), Some(&json!(true)));
        let s = schema(json!({"type": "float", "is_principal": true}));
        assert!(s.is_tenant());
        let s = schema(json!({"type": "integer", "lookup": true, "range": false}));
        assert_eq!(s.params().unwrap().get("range"), Some(&json!(false)));
        for bad in [
            json!("keywords"),
            json!(5),
            json!({"tokenizer": "word"}),
            json!({"type": "nope"}),
            json!({"type": "text", "tokenizer": "bpe"}),
            json!({"type": "text", "min_token_len": -1}),
            json!({"type": "keyword", "is_tenant": "yes"}),
            json!({"type": "integer", "lookup": false, "range": false}),
            json!({"type": "text", "stopwords": "klingon"}),
            json!({"type": "text", "stemmer": {"type": "porter"}}),
            json!({"type": "keyword", "memory": "hot"}),
        ] {
            assert!(
                serde_json::from_value::<PayloadFieldSchema>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let err = serde_json::from_value::<PayloadFieldSchema>(json!("keywords"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown payload index type"), "{err}");
    }

    #[test]
    fn payload_index_info_and_points() {
        let pls = [
            payload(json!({"city": "London", "n": 1, "tags": ["a", "b"]})),
            payload(json!({"city": ["Berlin", "Paris"], "n": 2.5})),
            payload(json!({"n": "x", "city": 5})),
        ];
        let mut idx = PayloadIndexes::default();
        idx.create_index(
            "city",
            schema(json!("keyword")),
            pls.iter().enumerate().map(|(i, p)| (i as u32, p)),
        )
        .unwrap();
        idx.create_index(
            "n",
            schema(json!({"type": "integer", "range": true})),
            pls.iter().enumerate().map(|(i, p)| (i as u32, p)),
        )
        .unwrap();
        idx.create_index("geo.loc", schema(json!("geo")), std::iter::empty())
            .unwrap();
        assert!(idx
            .create_index("a..b", schema(json!("keyword")), std::iter::empty())
            .is_err());
        let info = serde_json::to_value(idx.schema()).unwrap();
        assert_eq!(
            info,
            json!({
                "city": {"data_type": "keyword", "points": 2},
                "geo.loc": {"data_type": "geo", "points": 0},
                "n": {"data_type": "integer", "params": {"type": "integer", "range": true}, "points": 1},
            })
        );
        assert_eq!(idx.definitions().len(), 3);
        assert!(idx.get("city").is_some());
        idx.remove(0, &pls[0]);
        assert_eq!(idx.schema()["city"].points, 1);
        idx.insert(0, &pls[0]);
        assert_eq!(idx.schema()["city"].points, 2);
        assert!(idx.drop_index("geo.loc"));
        assert!(!idx.drop_index("geo.loc"));
        assert!(!idx.drop_index("a..b"));
        assert_eq!(idx.schema().len(), 2);
    }

    fn ids(b: &RoaringBitmap) -> Vec<u32> {
        b.iter().collect()
    }

    #[test]
    fn payload_index_candidates_basic() {
        let pls: Vec<Payload> = vec![
            payload(
                json!({"k": "a", "i": 1, "f": 1.5, "b": true, "d": "2020-01-01", "t": "hello world", "g": {"lon": 1.0, "lat": 1.0}}),
            ),
            payload(
                json!({"k": ["b", "c"], "i": [2, 3], "f": 2, "b": false, "d": "2021-01-01T00:00:00Z", "t": "other words", "g": [{"lon": 50.0, "lat": 50.0}]}),
            ),
            payload(json!({"k": 1, "i": 2.5, "f": -0.0, "d": 5, "t": ["hello", "there"]})),
            payload(json!({"items": [{"k": "a", "n": 1}, {"k": "z", "n": 2}]})),
        ];
        let mut idx = PayloadIndexes::default();
        let all = || pls.iter().enumerate().map(|(i, p)| (i as u32, p));
        for (field, s) in [
            ("k", "keyword"),
            ("i", "integer"),
            ("f", "float"),
            ("b", "bool"),
            ("d", "datetime"),
            ("t", "text"),
            ("g", "geo"),
            ("items[].k", "keyword"),
            ("items[].n", "integer"),
        ] {
            idx.create_index(field, schema(json!(s)), all()).unwrap();
        }
        let cand = |f: Value| idx.candidates(&filter_from_json(f).unwrap()).map(|b| ids(&b));
        let m = |k: &str, v: Value| json!({"must": {"key": k, "match": v}});
        assert_eq!(cand(m("k", json!({"value": "a"}))), Some(vec![0]));
        assert_eq!(cand(m("k", json!({"any": ["c", "x"]}))), Some(vec![1]));
        assert_eq!(
            cand(m("k", json!({"value": 1}))),
            None,
            "keyword index knows no integers"
        );
        assert_eq!(cand(m("k", json!({"except": ["a"]}))), None);
        assert_eq!(cand(m("k", json!({"any": []}))), Some(vec![]));
        assert_eq!(cand(m("unindexed", json!({"any": []}))), Some(vec![]));
        assert_eq!(cand(m("unindexed", json!({"value": 1}))), None);
        assert_eq!(cand(m("i", json!({"value": 2}))), Some(vec![1]));
        assert_eq!(cand(m("i", json!({"any": [1, 3]}))), Some(vec![0, 1]));
        assert_eq!(cand(m("f", json!({"value": 2}))), Some(vec![1]));
        assert_eq!(cand(m("b", json!({"value": false}))), Some(vec![1]));
        assert_eq!(cand(m("t", json!({"text": "hello"}))), Some(vec![0, 2]));
        assert_eq!(cand(m("t", json!({"text": "hello world"}))), Some(vec![0]));
        assert_eq!(cand(m("t", json!({"text_any": "world there"}))), Some(vec![0, 2]));
        assert_eq!(cand(m("t", json!({"text": ""}))), Some(vec![]), "no tokens: nothing");
        assert_eq!(
            cand(m("t", json!({"phrase": "hello"}))),
            Some(vec![]),
            "no phrase_matching: nothing"
        );
        let r = |k: &str, v: Value| json!({"must": {"key": k, "range": v}});
        assert_eq!(
            cand(r("i", json!({"gte": 2}))),
            Some(vec![1, 2]),
            "integer index ranges see floats too"
        );
        assert_eq!(cand(r("f", json!({"gte": 0, "lte": 0}))), Some(vec![2]), "-0.0 == 0");
        assert_eq!(cand(r("f", json!({"gt": 5, "lt": 1}))), Some(vec![]));
        assert_eq!(cand(r("d", json!({"gte": "2020-06-01"}))), Some(vec![1]));
        assert_eq!(cand(r("d", json!({"gte": 0}))), None);
        assert_eq!(cand(r("k", json!({"gte": 0}))), None);
        let g = json!({"must": {"key": "g", "geo_radius": {"center": {"lon": 50.0, "lat": 50.0}, "radius": 1000.0}}});
        assert_eq!(cand(g), Some(vec![1]));
        // Combinations.
        let a = json!({"key": "k", "match": {"value": "a"}});
        let b2 = json!({"key": "i", "match": {"value": 2}});
        assert_eq!(cand(json!({"must": [a, b2]})), Some(vec![]));
        assert_eq!(cand(json!({"should": [a, b2]})), Some(vec![0, 1]));
        assert_eq!(cand(json!({"should": [a, {"is_empty": {"key": "k"}}]})), None);
        assert_eq!(cand(json!({"must_not": [a]})), None);
        assert_eq!(cand(json!({"should": []})), Some(vec![]));
        assert_eq!(
            cand(json!({"must": [{"should": [a, b2]}, {"has_id": [1]}]})),
            Some(vec![0, 1])
        );
        assert_eq!(
            cand(json!({"min_should": {"conditions": [a, b2], "min_count": 1}})),
            Some(vec![0, 1])
        );
        assert_eq!(
            cand(json!({"min_should": {"conditions": [a, b2], "min_count": 3}})),
            Some(vec![])
        );
        assert_eq!(
            cand(json!({"min_should": {"conditions": [a, b2], "min_count": 0}})),
            None
        );
        assert_eq!(
            cand(json!({"must": {"key": "k", "match": {"value": "a"}, "is_empty": true}})),
            None
        );
        // Nested narrows through `items[].x` indexes.
        let nested = json!({"must": {"nested": {"key": "items", "filter": {"must": [
            {"key": "k", "match": {"value": "a"}}, {"key": "n", "match": {"value": 2}}]}}}});
        assert_eq!(cand(nested), Some(vec![3]));
    }

    #[test]
    fn payload_index_matches_uses_text_index() {
        let pl = payload(json!({"t": "goodness gracious"}));
        let mut idx = PayloadIndexes::default();
        let f = filter_from_json(json!({"must": {"key": "t", "match": {"text": "good"}}})).unwrap();
        let hv = |_: &str| false;
        let point = PointRef {
            id: PointId::Num(0),
            payload: &pl,
            has_vector: &hv,
        };
        assert!(!idx.matches(&f, &point), "default word tokens without an index");
        idx.create_index("t", schema(json!("text")), std::iter::once((0, &pl)))
            .unwrap();
        assert!(!idx.matches(&f, &point), "word tokens with the index");
        assert_eq!(idx.candidates(&f).map(|b| ids(&b)), Some(vec![]));
        // The index's own tokenizer decides: prefix tokens make "good" match "goodness".
        let mut prefix = PayloadIndexes::default();
        let params = json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 10});
        prefix
            .create_index("t", schema(params), std::iter::once((0, &pl)))
            .unwrap();
        assert!(prefix.matches(&f, &point), "prefix tokens with the index");
    }

    // --------------------------------------------------------------------------------------------
    // Property check: candidates never miss a match.

    const KEYS: [&str; 4] = ["a", "b", "c", "d"];

    fn random_scalar(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..9) {
            0 => Value::Null,
            1 => json!(rng.gen_bool(0.5)),
            2 | 3 => json!(rng.gen_range(-3i64..4)),
            4 => {
                let frac = [0.0, 0.5, -0.0][rng.gen_range(0..3)];
                json!(rng.gen_range(-3i64..4) as f64 + frac)
            }
            5 => json!(["x", "y", "z", "X"][rng.gen_range(0..4)].to_string()),
            6 => json!([
                "hello world",
                "Hello there",
                "world peace",
                "the end",
                "Running the café",
                "runners run to the CAFE"
            ][rng.gen_range(0..6)]
            .to_string()),
            7 => json!(
                ["2020-01-01", "2020-06-01T12:00:00Z", "2021-01-01 00:00:00", "bad"][rng.gen_range(0..4)].to_string()
            ),
            _ => json!({"lon": rng.gen_range(-2.0..2.0), "lat": rng.gen_range(-2.0..2.0)}),
        }
    }

    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.gen_range(0..10) {
            0..=4 => random_scalar(rng),
            5 | 6 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_scalar(rng)).collect()),
            _ if depth == 0 => random_scalar(rng),
            7 => Value::Object(random_object(rng, depth - 1)),
            _ => Value::Array(
                (0..rng.gen_range(0..4))
                    .map(|_| Value::Object(random_object(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    fn random_object(rng: &mut StdRng, depth: u32) -> Map<String, Value> {
        let mut m = Map::new();
        for k in KEYS {
            if rng.gen_bool(0.6) {
                m.insert(k.to_string(), random_value(rng, depth));
            }
        }
        m
    }

    fn random_key(rng: &mut StdRng) -> String {
        let k = KEYS[rng.gen_range(0..4)];
        match rng.gen_range(0..6) {
            0 => format!("{k}.{}", KEYS[rng.gen_range(0..4)]),
            1 => format!("{k}[].{}", KEYS[rng.gen_range(0..4)]),
            _ => k.to_string(),
        }
    }

    fn random_field_condition(rng: &mut StdRng, key: String) -> Value {
        let strs = ["x", "y", "z", "X", "hello world", "2020-01-01"];
        match rng.gen_range(0..14) {
            0 => json!({"key": key, "match": {"value": strs[rng.gen_range(0..strs.len())]}}),
            1 => json!({"key": key, "match": {"value": rng.gen_range(-3i64..4)}}),
            2 => json!({"key": key, "match": {"value": rng.gen_bool(0.5)}}),
            3 => json!({"key": key, "match": {"any": [strs[rng.gen_range(0..strs.len())], "y"]}}),
            4 => json!({"key": key, "match": {"any": [rng.gen_range(-3i64..4), 0]}}),
            5 => json!({"key": key, "match": {"except": ["x"]}}),
            6 => {
                let kind = ["text", "text_any", "phrase"][rng.gen_range(0..3)];
                let q = [
                    "hello",
                    "world",
                    "hello world",
                    "there the",
                    "ell",
                    "run",
                    "cafe",
                    "running café",
                    "the",
                ][rng.gen_range(0..9)];
                let mut m = Map::new();
                m.insert(kind.to_string(), json!(q));
                json!({"key": key, "match": m})
            }
            7 => {
                // Half-steps hit stored values exactly, so boundary handling is exercised.
                let lo = rng.gen_range(-6i64..7) as f64 / 2.0;
                let hi = rng.gen_range(-6i64..9) as f64 / 2.0;
                match rng.gen_range(0..3) {
                    0 => json!({"key": key, "range": {"gte": lo, "lte": hi}}),
                    1 => json!({"key": key, "range": {"gt": lo, "lt": hi}}),
                    _ => json!({"key": key, "range": {"gte": lo}}),
                }
            }
            8 => json!({"key": key, "range": {"gt": rng.gen_range(-3i64..3)}}),
            9 => {
                let hi = ["2020-06-01T12:00:00Z", "2022-01-01"][rng.gen_range(0..2)];
                json!({"key": key, "range": {"gte": "2020-03-01", "lte": hi}})
            }
            10 => {
                json!({"key": key, "geo_radius": {"center": {"lon": rng.gen_range(-2.0..2.0), "lat": rng.gen_range(-2.0..2.0)}, "radius": rng.gen_range(1000.0..200000.0)}})
            }
            11 => {
                json!({"key": key, "geo_bounding_box": {"top_left": {"lon": -1.0, "lat": 1.5}, "bottom_right": {"lon": 1.0, "lat": -1.0}}})
            }
            12 => json!({"key": key, "match": {"any": []}}),
            _ => {
                let prefix = ["x", "he", "wor"][rng.gen_range(0..3)];
                json!({"key": key, "match": {"prefix": prefix}})
            }
        }
    }

    fn random_condition(rng: &mut StdRng, depth: u32) -> Value {
        match rng.gen_range(0..13) {
            0 if depth > 0 => random_filter(rng, depth - 1),
            1 | 2 if depth > 0 => {
                json!({"nested": {"key": KEYS[rng.gen_range(0..4)], "filter": random_filter(rng, depth - 1)}})
            }
            3 => json!({"is_empty": {"key": random_key(rng)}}),
            4 => json!({"is_null": {"key": random_key(rng)}}),
            5 => json!({"key": random_key(rng), "values_count": {"gt": rng.gen_range(0..2)}}),
            6 => json!({"has_id": [rng.gen_range(0u64..50)]}),
            _ => {
                let key = random_key(rng);
                random_field_condition(rng, key)
            }
        }
    }

    fn random_list(rng: &mut StdRng, depth: u32, max: usize) -> Value {
        Value::Array(
            (0..rng.gen_range(0..=max))
                .map(|_| random_condition(rng, depth))
                .collect(),
        )
    }

    fn random_filter(rng: &mut StdRng, depth: u32) -> Value {
        let mut f = Map::new();
        if rng.gen_bool(0.8) {
            f.insert("must".into(), random_list(rng, depth, 3));
        }
        if rng.gen_bool(0.3) {
            f.insert("should".into(), random_list(rng, depth, 3));
        }
        if rng.gen_bool(0.2) {
            f.insert("must_not".into(), random_list(rng, depth, 2));
        }
        if rng.gen_bool(0.15) {
            let conditions = random_list(rng, depth, 3);
            f.insert(
                "min_should".into(),
                json!({"conditions": conditions, "min_count": rng.gen_range(0..3)}),
            );
        }
        Value::Object(f)
    }

    #[test]
    fn payload_index_nested_candidates_never_miss_a_match() {
        let mut rng = StdRng::seed_from_u64(7);
        let words = ["red", "green", "blue", "dark red"];
        let item = |rng: &mut StdRng| {
            let mut m = Map::new();
            if rng.gen_bool(0.8) {
                m.insert("k".into(), json!(words[rng.gen_range(0..4)].to_string()));
            }
            if rng.gen_bool(0.8) {
                let n = rng.gen_range(0i64..5);
                m.insert("n".into(), if rng.gen_bool(0.2) { json!([n, n + 1]) } else { json!(n) });
            }
            if rng.gen_bool(0.5) {
                m.insert("inner".into(), json!([{"k": words[rng.gen_range(0..4)].to_string()}]));
            }
            Value::Object(m)
        };
        let payloads: Vec<Payload> = (0..300)
            .map(|_| {
                let items: Vec<Value> = (0..rng.gen_range(0..4)).map(|_| item(&mut rng)).collect();
                payload(json!({"items": items, "k": words[rng.gen_range(0..4)]}))
            })
            .collect();
        let mut idx = PayloadIndexes::default();
        let all = || payloads.iter().enumerate().map(|(i, p)| (i as u32, p));
        idx.create_index("items[].k", schema(json!("keyword")), all()).unwrap();
        idx.create_index("items[].n", schema(json!("integer")), all()).unwrap();
        idx.create_index("items[].inner[].k", schema(json!("text")), all())
            .unwrap();
        idx.create_index("k", schema(json!("keyword")), all()).unwrap();
        let cond = |rng: &mut StdRng| -> Value {
            match rng.gen_range(0..5) {
                0 => json!({"key": "k", "match": {"value": words[rng.gen_range(0..4)]}}),
                1 => json!({"key": "k", "match": {"any": [words[rng.gen_range(0..4)], "blue"]}}),
                2 => json!({"key": "n", "match": {"value": rng.gen_range(0i64..6)}}),
                3 => {
                    json!({"key": "n", "range": {"gte": rng.gen_range(0i64..6), "lte": rng.gen_range(0i64..6)}})
                }
                _ => {
                    json!({"nested": {"key": "inner", "filter": {"must": {"key": "k", "match": {"text": "red"}}}}})
                }
            }
        };
        let mut checked = 0;
        let hv = |_: &str| false;
        for _ in 0..400 {
            let inner = match rng.gen_range(0..3) {
                0 => json!({"must": [cond(&mut rng), cond(&mut rng)]}),
                1 => json!({"should": [cond(&mut rng), cond(&mut rng)]}),
                _ => {
                    json!({"min_should": {"conditions": [cond(&mut rng), cond(&mut rng)], "min_count": 1}})
                }
            };
            let fjson = json!({"must": [{"nested": {"key": "items", "filter": inner}}]});
            let filter = filter_from_json(fjson.clone()).unwrap();
            let cands = idx
                .candidates(&filter)
                .expect("nested filters over indexed keys narrow");
            for (i, p) in payloads.iter().enumerate() {
                let point = PointRef {
                    id: PointId::Num(i as u64),
                    payload: p,
                    has_vector: &hv,
                };
                if idx.matches(&filter, &point) {
                    checked += 1;
                    assert!(
                        cands.contains(i as u32),
                        "point {i} {p:?} matches {fjson} but is not a candidate"
                    );
                }
            }
        }
        assert!(checked > 1000, "only {checked} matches");
    }

    fn random_text_params(rng: &mut StdRng) -> Value {
        let tokenizer = ["prefix", "whitespace", "word", "multilingual"][rng.gen_range(0..4)];
        let mut p = json!({"type": "text", "tokenizer": tokenizer, "lowercase": rng.gen_bool(0.5),
                           "phrase_matching": rng.gen_bool(0.5), "ascii_folding": rng.gen_bool(0.5)});
        if rng.gen_bool(0.4) {
            p["stopwords"] = if rng.gen_bool(0.5) {
                json!("english")
            } else {
                json!({"custom": ["the", "Hello"]})
            };
        }
        if rng.gen_bool(0.4) {
            p["stemmer"] = json!({"type": "snowball", "language": "english"});
        }
        if rng.gen_bool(0.3) {
            p["min_token_len"] = json!(rng.gen_range(1..4));
            p["max_token_len"] = json!(rng.gen_range(3..8));
        }
        p
    }

    /// `text` / `text_any` candidates are exactly the matching points; phrase candidates hold them.
    #[test]
    fn payload_index_text_candidates_are_exact() {
        let mut rng = StdRng::seed_from_u64(11);
        let words = [
            "Running", "run", "café", "CAFE", "the", "runners", "hello", "Über", "über", "今天", "星期",
        ];
        let text = |rng: &mut StdRng| -> String {
            (0..rng.gen_range(0..6))
                .map(|_| words[rng.gen_range(0..words.len())])
                .collect::<Vec<_>>()
                .join([" ", ", ", "-"][rng.gen_range(0..3)])
        };
        let payloads: Vec<Payload> = (0..200)
            .map(|_| {
                let v = if rng.gen_bool(0.3) {
                    json!([text(&mut rng), text(&mut rng)])
                } else {
                    json!(text(&mut rng))
                };
                payload(json!({ "t": v }))
            })
            .collect();
        let hv = |_: &str| false;
        for _ in 0..40 {
            let mut idx = PayloadIndexes::default();
            let params = random_text_params(&mut rng);
            let all = payloads.iter().enumerate().map(|(i, p)| (i as u32, p));
            idx.create_index("t", schema(params.clone()), all).unwrap();
            for _ in 0..20 {
                let kind = ["text", "text_any", "phrase"][rng.gen_range(0..3)];
                let q = text(&mut rng);
                let mut m = Map::new();
                m.insert(kind.to_string(), json!(q));
                let f = filter_from_json(json!({"must": {"key": "t", "match": m}})).unwrap();
                let cands = idx.candidates(&f).expect("a text index narrows full-text matches");
                let matching: RoaringBitmap = (0..payloads.len() as u32)
                    .filter(|&i| {
                        let point = PointRef {
                            id: PointId::Num(i as u64),
                            payload: &payloads[i as usize],
                            has_vector: &hv,
                        };
                        idx.matches(&f, &point)
                    })
                    .collect();
                if kind == "phrase" {
                    assert!(matching.is_subset(&cands), "{params} {kind} {q:?}");
                } else {
                    assert_eq!(ids(&cands), ids(&matching), "{params} {kind} {q:?}");
                }
            }
        }
    }

    #[test]
    fn payload_index_candidates_never_miss_a_match() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let payloads: Vec<Payload> = (0..400).map(|_| random_object(&mut rng, 1)).collect();
        let mut idx = PayloadIndexes::default();
        let kinds = ["keyword", "integer", "float", "bool", "datetime", "text", "geo", "uuid"];
        let mut fields: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        for k in KEYS {
            for sub in KEYS {
                fields.push(format!("{k}[].{sub}"));
                fields.push(format!("{k}.{sub}"));
            }
        }
        for field in &fields {
            if rng.gen_bool(0.7) {
                let kind = kinds[rng.gen_range(0..kinds.len())];
                let s = if kind == "text" && rng.gen_bool(0.7) {
                    random_text_params(&mut rng)
                } else {
                    json!(kind)
                };
                idx.create_index(field, schema(s), std::iter::empty()).unwrap();
            }
        }
        // Insert, then churn some points through update/remove to exercise un-indexing.
        for (i, p) in payloads.iter().enumerate() {
            idx.insert(i as u32, p);
        }
        let mut payloads = payloads;
        for i in (0..payloads.len()).step_by(7) {
            let new = random_object(&mut rng, 1);
            idx.update(i as u32, &payloads[i], &new);
            payloads[i] = new;
        }
        let removed: Vec<usize> = (3..payloads.len()).step_by(11).collect();
        for &i in &removed {
            idx.remove(i as u32, &payloads[i]);
        }
        let hv = |_: &str| true;
        let mut narrowed = 0;
        let mut total_matches = 0;
        let mut nested_matches = 0;
        for _ in 0..600 {
            let fjson = random_filter(&mut rng, 2);
            let Ok(filter) = filter_from_json(fjson.clone()) else {
                continue;
            };
            let cands = idx.candidates(&filter);
            if cands.is_some() {
                narrowed += 1;
            }
            for (i, p) in payloads.iter().enumerate() {
                if removed.contains(&i) {
                    continue;
                }
                let point = PointRef {
                    id: PointId::Num(i as u64),
                    payload: p,
                    has_vector: &hv,
                };
                if idx.matches(&filter, &point) {
                    total_matches += 1;
                    if fjson.to_string().contains("nested") {
                        nested_matches += 1;
                    }
                    if let Some(c) = &cands {
                        assert!(
                            c.contains(i as u32),
                            "point {i} {p:?} matches {fjson} but is not a candidate"
                        );
                    }
                }
            }
        }
        assert!(narrowed > 100, "only {narrowed} filters narrowed");
        assert!(total_matches > 1000, "only {total_matches} matches");
        assert!(nested_matches > 50, "only {nested_matches} nested matches");
    }
}
