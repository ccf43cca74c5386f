//! Payloads: free-form JSON objects attached to points, the JSON paths Qdrant uses to address
//! values inside them (`a.b`, `arr[]`, `arr[].x`, `arr[0]`, `"quoted key"`), the set / delete
//! payload operations and the `with_payload` selector.
//!
//! Path semantics follow Qdrant: `a.b` descends into objects only; an array is entered only
//! through `[]` (every element) or `[n]` (one element). [`values_at`] returns the values a path
//! reaches *without* flattening a leaf array (so `is_empty` can tell `[]` from a missing key);
//! filter matching then treats a leaf array as its elements ([`flat_values_at`]).

use std::fmt;
use std::str::FromStr;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A point's payload: always a JSON object at the top level.
pub type Payload = Map<String, Value>;

/// One step of a [`JsonPath`] after its first key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JsonPathItem {
    /// `.key` (or `."quoted key"`)
    Key(String),
    /// `[n]`: one array element
    Index(usize),
    /// `[]`: every array element
    Wildcard,
}

/// A parsed payload key such as `country.cities[].name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath {
    pub first_key: String,
    pub rest: Vec<JsonPathItem>,
}

fn is_raw_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn key_needs_quoting(key: &str) -> bool {
    key.is_empty() || !key.chars().all(is_raw_key_char)
}

/// Parses a key at the start of `s`: a raw key (`[A-Za-z0-9_-]+`, Unicode alphanumerics too)
/// or a double-quoted one without `"` or `\` inside. Returns the key and the rest of `s`.
fn parse_key(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let end = quoted.find(['"', '\\'])?;
        if quoted[end..].starts_with('\\') {
            return None;
        }
        return Some((quoted[..end].to_string(), &quoted[end + 1..]));
    }
    let end = s.find(|c: char| !is_raw_key_char(c)).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].to_string(), &s[end..]))
}

impl FromStr for JsonPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("Invalid json path: '{s}'");
        let (first_key, mut input) = parse_key(s).ok_or_else(invalid)?;
        let mut rest = Vec::new();
        while !input.is_empty() {
            if let Some(after_dot) = input.strip_prefix('.') {
                let (key, tail) = parse_key(after_dot).ok_or_else(invalid)?;
                rest.push(JsonPathItem::Key(key));
                input = tail;
            } else if let Some(tail) = input.strip_prefix("[]") {
                rest.push(JsonPathItem::Wildcard);
                input = tail;
            } else if let Some(after_bracket) = input.strip_prefix('[') {
                let end = after_bracket.find(']').ok_or_else(invalid)?;
                let digits = &after_bracket[..end];
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid());
                }
                let index = digits.parse::<usize>().map_err(|_| invalid())?;
                rest.push(JsonPathItem::Index(index));
                input = &after_bracket[end + 1..];
            } else {
                return Err(invalid());
            }
        }
        Ok(JsonPath { first_key, rest })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let write_key = |f: &mut fmt::Formatter<'_>, key: &str| {
            if key_needs_quoting(key) {
                write!(f, "\"{key}\"")
            } else {
                f.write_str(key)
            }
        };
        write_key(f, &self.first_key)?;
        for item in &self.rest {
            match item {
                JsonPathItem::Key(key) => {
                    f.write_str(".")?;
                    write_key(f, key)?;
                }
                JsonPathItem::Index(i) => write!(f, "[{i}]")?,
                JsonPathItem::Wildcard => f.write_str("[]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonPath {
    /// A single-key path (no parsing: the key may contain any character).
    pub fn key(key: impl Into<String>) -> Self {
        JsonPath {
            first_key: key.into(),
            rest: Vec::new(),
        }
    }

    /// `self` followed by `other` (`a[]` + `b.c` = `a[].b.c`).
    pub fn extend(&self, other: &JsonPath) -> JsonPath {
        let mut rest = Vec::with_capacity(self.rest.len() + 1 + other.rest.len());
        rest.extend_from_slice(&self.rest);
        rest.push(JsonPathItem::Key(other.first_key.clone()));
        rest.extend_from_slice(&other.rest);
        JsonPath {
            first_key: self.first_key.clone(),
            rest,
        }
    }

    /// The path with `[]` appended unless it already ends with it (what `nested` iterates).
    pub fn array_key(&self) -> JsonPath {
        let mut path = self.clone();
        if path.rest.last() != Some(&JsonPathItem::Wildcard) {
            path.rest.push(JsonPathItem::Wildcard);
        }
        path
    }

    /// Include pattern: the path and the pattern agree on their common prefix.
    fn include_matches(pattern: &JsonPath, path: &JsonPath) -> bool {
        pattern.first_key == path.first_key && pattern.rest.iter().zip(&path.rest).all(|(a, b)| a == b)
    }

    /// Exclude pattern: the path is the pattern or lies below it.
    fn exclude_matches(pattern: &JsonPath, path: &JsonPath) -> bool {
        pattern.first_key == path.first_key && path.rest.starts_with(&pattern.rest)
    }
}

fn collect_values<'a>(path: &[JsonPathItem], value: &'a Value, out: &mut Vec<&'a Value>) {
    let Some((head, tail)) = path.split_first() else {
        out.push(value);
        return;
    };
    match (head, value) {
        (JsonPathItem::Key(key), Value::Object(map)) => {
            if let Some(v) = map.get(key) {
                collect_values(tail, v, out);
            }
        }
        (JsonPathItem::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                collect_values(tail, v, out);
            }
        }
        (JsonPathItem::Wildcard, Value::Array(items)) => {
            for v in items {
                collect_values(tail, v, out);
            }
        }
        _ => {}
    }
}

/// Every value `path` reaches, in document order. A leaf array is returned as one value; arrays
/// on the way are entered only through `[]` / `[n]`. Missing keys yield nothing.
pub fn values_at<'a>(payload: &'a Payload, path: &JsonPath) -> Vec<&'a Value> {
    let mut out = Vec::new();
    if let Some(v) = payload.get(&path.first_key) {
        collect_values(&path.rest, v, &mut out);
    }
    out
}

/// [`values_at`] with each leaf array replaced by its elements (one level): the values a
/// `match`/`range`/`geo` condition or a payload index looks at.
pub fn flat_values_at<'a>(payload: &'a Payload, path: &JsonPath) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for v in values_at(payload, path) {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            other => out.push(other),
        }
    }
    out
}

/// Qdrant's merge: every key of `src` replaces the one in `dest`; a `null` in `src` removes it.
fn merge_into(dest: &mut Map<String, Value>, src: &Payload) {
    for (key, value) in src {
        if value.is_null() {
            dest.remove(key);
        } else {
            dest.insert(key.clone(), value.clone());
        }
    }
}

fn set_in_value(path: &[JsonPathItem], dest: &mut Value, src: &Payload) {
    let Some((head, rest)) = path.split_first() else {
        if !dest.is_object() {
            *dest = Value::Object(Map::new());
        }
        if let Value::Object(map) = dest {
            merge_into(map, src);
        }
        return;
    };
    match head {
        JsonPathItem::Key(key) => {
            if !dest.is_object() {
                *dest = Value::Object(Map::new());
            }
            if let Value::Object(map) = dest {
                set_in_map(key, rest, map, src);
            }
        }
        JsonPathItem::Index(i) => {
            if !dest.is_array() {
                *dest = Value::Array(Vec::new());
            }
            if let Some(v) = dest.as_array_mut().and_then(|items| items.get_mut(*i)) {
                set_in_value(rest, v, src);
            }
        }
        JsonPathItem::Wildcard => match dest {
            Value::Array(items) => {
                for v in items {
                    set_in_value(rest, v, src);
                }
            }
            other => *other = Value::Array(Vec::new()),
        },
    }
}

fn set_in_map(key: &str, rest: &[JsonPathItem], map: &mut Map<String, Value>, src: &Payload) {
    if let Some(v) = map.get_mut(key) {
        set_in_value(rest, v, src);
    } else {
        let mut v = Value::Null;
        set_in_value(rest, &mut v, src);
        map.insert(key.to_string(), v);
    }
}

/// Qdrant's "set payload": without `key`, merges `new` into the top level of `payload`; with
/// `key`, merges it into the object(s) at that path, creating objects along the way and replacing
/// non-objects (`[]` applies to every element of an existing array; `[n]` to an existing element).
/// A `null` value in `new` removes that key.
pub fn set_payload(payload: &mut Payload, new: &Payload, key: Option<&JsonPath>) {
    match key {
        None => merge_into(payload, new),
        Some(path) => set_in_map(&path.first_key, &path.rest, payload, new),
    }
}

fn remove_in_value(head: &JsonPathItem, rest: &[JsonPathItem], value: &mut Value) {
    if let Some((next, tail)) = rest.split_first() {
        match (head, value) {
            (JsonPathItem::Key(k), Value::Object(map)) => {
                if let Some(v) = map.get_mut(k) {
                    remove_in_value(next, tail, v);
                }
            }
            (JsonPathItem::Index(i), Value::Array(items)) => {
                if let Some(v) = items.get_mut(*i) {
                    remove_in_value(next, tail, v);
                }
            }
            (JsonPathItem::Wildcard, Value::Array(items)) => {
                for v in items {
                    remove_in_value(next, tail, v);
                }
            }
            _ => {}
        }
    } else {
        match (head, value) {
            (JsonPathItem::Key(k), Value::Object(map)) => {
                map.remove(k);
            }
            // Removing one array element is not idempotent; Qdrant ignores it too.
            (JsonPathItem::Index(_), Value::Array(_)) => {}
            (JsonPathItem::Wildcard, Value::Array(items)) => items.clear(),
            _ => {}
        }
    }
}

/// Qdrant's "delete payload keys": removes each path (`a.b` removes `b` inside `a`; `arr[].x`
/// removes `x` from every element; `arr[]` empties the array). Missing paths are ignored.
pub fn delete_keys(payload: &mut Payload, keys: &[JsonPath]) {
    for path in keys {
        match path.rest.split_first() {
            None => {
                payload.remove(&path.first_key);
            }
            Some((head, tail)) => {
                if let Some(v) = payload.get_mut(&path.first_key) {
                    remove_in_value(head, tail, v);
                }
            }
        }
    }
}

/// `with_payload`: `true` | `false` | `["f1", "a.b"]` | `{"include": [...]}` | `{"exclude": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadSelector {
    /// `true`: the whole payload.
    All,
    /// `false`: no payload.
    None,
    /// A list of keys or `{"include": [...]}`: only those keys (nested paths keep the enclosing
    /// objects, trimmed to the selected children).
    Include(Vec<JsonPath>),
    /// `{"exclude": [...]}`: everything but those keys.
    Exclude(Vec<JsonPath>),
}

impl PayloadSelector {
    /// Whether any payload is returned at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, PayloadSelector::None)
    }

    /// The payload to return, or `None` when payload was not requested.
    pub fn apply(&self, payload: &Payload) -> Option<Payload> {
        match self {
            PayloadSelector::All => Some(payload.clone()),
            PayloadSelector::None => None,
            PayloadSelector::Include(patterns) => Some(filter_payload(payload, &|path| {
                patterns.iter().any(|p| JsonPath::include_matches(p, path))
            })),
            PayloadSelector::Exclude(patterns) => Some(filter_payload(payload, &|path| {
                !patterns.iter().any(|p| JsonPath::exclude_matches(p, path))
            })),
        }
    }
}

/// Rebuilds `payload` keeping only the paths `keep` accepts; arrays are walked as `[]`.
fn filter_payload(payload: &Payload, keep: &dyn Fn(&JsonPath) -> bool) -> Payload {
    fn walk(path: &mut JsonPath, value: &Value, keep: &dyn Fn(&JsonPath) -> bool) -> Value {
        match value {
            Value::Array(items) => {
                path.rest.push(JsonPathItem::Wildcard);
                // Every element has the same path (`...[]`): kept or dropped together.
                let kept = if keep(path) {
                    items.iter().map(|v| walk(path, v, keep)).collect()
                } else {
                    Vec::new()
                };
                path.rest.pop();
                Value::Array(kept)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    path.rest.push(JsonPathItem::Key(k.clone()));
                    if keep(path) {
                        out.insert(k.clone(), walk(path, v, keep));
                    }
                    path.rest.pop();
                }
                Value::Object(out)
            }
            scalar => scalar.clone(),
        }
    }

    let mut out = Map::new();
    for (key, value) in payload {
        let mut path = JsonPath::key(key.clone());
        if keep(&path) {
            out.insert(key.clone(), walk(&mut path, value, keep));
        }
    }
    out
}

const SELECTOR_EXPECTING: &str = "Expected a boolean, an array of strings, or an object with an include/exclude field";

fn parse_paths(value: Value) -> Result<Vec<JsonPath>, String> {
    let Value::Array(items) = value else {
        return Err(SELECTOR_EXPECTING.to_string());
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => s.parse::<JsonPath>(),
            _ => Err(SELECTOR_EXPECTING.to_string()),
        })
        .collect()
}

impl<'de> Deserialize<'de> for PayloadSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let selector = match value {
            Value::Bool(true) => Ok(PayloadSelector::All),
            Value::Bool(false) => Ok(PayloadSelector::None),
            list @ Value::Array(_) => parse_paths(list).map(PayloadSelector::Include),
            Value::Object(mut map) if map.len() == 1 => {
                if let Some(v) = map.remove("include") {
                    parse_paths(v).map(PayloadSelector::Include)
                } else if let Some(v) = map.remove("exclude") {
                    parse_paths(v).map(PayloadSelector::Exclude)
                } else {
                    Err(SELECTOR_EXPECTING.to_string())
                }
            }
            _ => Err(SELECTOR_EXPECTING.to_string()),
        };
        selector.map_err(de::Error::custom)
    }
}

impl Serialize for PayloadSelector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            PayloadSelector::All => s.serialize_bool(true),
            PayloadSelector::None => s.serialize_bool(false),
            PayloadSelector::Include(paths) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("include", paths)?;
                m.end()
            }
            PayloadSelector::Exclude(paths) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("exclude", paths)?;
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(s: &str) -> JsonPath {
        s.parse().unwrap()
    }

    fn payload(v: Value) -> Payload {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn payload_path_parse_and_display() {
        let path = p("foo[1][50].bar-baz[].\"qux[.]quux\"");
        assert_eq!(path.first_key, "foo");
        assert_eq!(
            path.rest,
            vec![
                JsonPathItem::Index(1),
                JsonPathItem::Index(50),
                JsonPathItem::Key("bar-baz".into()),
                JsonPathItem::Wildcard,
                JsonPathItem::Key("qux[.]quux".into()),
            ]
        );
        assert_eq!(path.to_string(), "foo[1][50].bar-baz[].\"qux[.]quux\"");
        assert_eq!(p("a.b").to_string(), "a.b");
        assert_eq!(p("\"a b\".c").first_key, "a b");
        assert_eq!(p("ключ.значение").rest, vec![JsonPathItem::Key("значение".into())]);
        for bad in [
            "",
            ".",
            "a.",
            "a..b",
            "[]",
            "a[",
            "a[x]",
            "a]",
            "a b",
            "\"a",
            "a.\"b\\\"\"",
            "a[-1]",
        ] {
            assert!(bad.parse::<JsonPath>().is_err(), "{bad:?} should not parse");
        }
        let json: JsonPath = serde_json::from_str("\"a[].b\"").unwrap();
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"a[].b\"");
        assert!(serde_json::from_str::<JsonPath>("\"a..b\"").is_err());
        assert_eq!(p("a").array_key().to_string(), "a[]");
        assert_eq!(p("a[]").array_key().to_string(), "a[]");
        assert_eq!(p("a[]").extend(&p("b.c")).to_string(), "a[].b.c");
    }

    #[test]
    fn payload_values_at_follows_qdrant_paths() {
        let pl = payload(json!({
            "a": {"b": [{"c": 1}, {"c": 2}, {"d": {"e": 3}}]},
            "f": 3,
            "g": ["g0", "g1", "g2"],
            "arr": [{"a": [1, 2, 3]}, {"a": 4}, {"b": 5}],
        }));
        assert_eq!(values_at(&pl, &p("f")), vec![&json!(3)]);
        assert_eq!(values_at(&pl, &p("g")), vec![&json!(["g0", "g1", "g2"])]);
        assert_eq!(flat_values_at(&pl, &p("g")).len(), 3);
        assert_eq!(values_at(&pl, &p("g[2]")), vec![&json!("g2")]);
        assert_eq!(values_at(&pl, &p("a.b[].c")), vec![&json!(1), &json!(2)]);
        assert_eq!(values_at(&pl, &p("a.b[1].c")), vec![&json!(2)]);
        assert!(values_at(&pl, &p("a.b[3]")).is_empty());
        // An array is not entered without `[]`.
        assert!(values_at(&pl, &p("a.b.c")).is_empty());
        assert_eq!(values_at(&pl, &p("arr[].a")), vec![&json!([1, 2, 3]), &json!(4)]);
        assert_eq!(values_at(&pl, &p("arr[].a[]")), vec![&json!(1), &json!(2), &json!(3)]);
        assert_eq!(flat_values_at(&pl, &p("arr[].a")).len(), 4);
        assert!(values_at(&pl, &p("missing.x")).is_empty());
        assert!(values_at(&pl, &p("f.x")).is_empty());
    }

    #[test]
    fn payload_set_without_key_merges_top_level() {
        let mut pl = payload(json!({"a": 1, "b": {"x": 1}, "c": 3}));
        set_payload(&mut pl, &payload(json!({"b": {"y": 2}, "c": null, "d": [1]})), None);
        assert_eq!(Value::Object(pl), json!({"a": 1, "b": {"y": 2}, "d": [1]}));
    }

    #[test]
    fn payload_set_with_nested_key() {
        let mut pl = payload(json!({"a": {"b": {"x": 1}}, "k": 5}));
        set_payload(&mut pl, &payload(json!({"y": 2})), Some(&p("a.b")));
        assert_eq!(Value::Object(pl.clone()), json!({"a": {"b": {"x": 1, "y": 2}}, "k": 5}));
        // Missing objects are created, scalars on the way replaced.
        set_payload(&mut pl, &payload(json!({"z": true})), Some(&p("k.new")));
        assert_eq!(pl["k"], json!({"new": {"z": true}}));
        set_payload(&mut pl, &payload(json!({"q": 1})), Some(&p("fresh")));
        assert_eq!(pl["fresh"], json!({"q": 1}));
        // `[]` applies to every element, `[n]` to one existing element.
        let mut pl = payload(json!({"arr": [{"a": 1}, {"a": 2}, 7]}));
        set_payload(&mut pl, &payload(json!({"b": 0})), Some(&p("arr[]")));
        assert_eq!(pl["arr"], json!([{"a": 1, "b": 0}, {"a": 2, "b": 0}, {"b": 0}]));
        set_payload(&mut pl, &payload(json!({"c": 9})), Some(&p("arr[1]")));
        assert_eq!(pl["arr"][1], json!({"a": 2, "b": 0, "c": 9}));
        set_payload(&mut pl, &payload(json!({"c": 9})), Some(&p("arr[10]")));
        assert_eq!(pl["arr"].as_array().unwrap().len(), 3);
        // A null removes the key inside the nested object too.
        set_payload(&mut pl, &payload(json!({"c": null})), Some(&p("arr[1]")));
        assert_eq!(pl["arr"][1], json!({"a": 2, "b": 0}));
    }

    #[test]
    fn payload_delete_nested_keys() {
        let mut pl = payload(json!({
            "a": {"b": 1, "c": 2},
            "arr": [{"x": 1, "y": 2}, {"x": 3}, 5],
            "list": [1, 2],
            "keep": 1,
        }));
        delete_keys(
            &mut pl,
            &[p("a.b"), p("arr[].x"), p("missing.deep"), p("keep.not_object")],
        );
        assert_eq!(pl["a"], json!({"c": 2}));
        assert_eq!(pl["arr"], json!([{"y": 2}, {}, 5]));
        delete_keys(&mut pl, &[p("list[0]")]);
        assert_eq!(pl["list"], json!([1, 2]), "index deletion is ignored, like Qdrant");
        delete_keys(&mut pl, &[p("list[]"), p("keep")]);
        assert_eq!(pl["list"], json!([]));
        assert!(!pl.contains_key("keep"));
    }

    #[test]
    fn payload_selector_serde() {
        let s: PayloadSelector = serde_json::from_str("true").unwrap();
        assert_eq!(s, PayloadSelector::All);
        let s: PayloadSelector = serde_json::from_str("false").unwrap();
        assert_eq!(s, PayloadSelector::None);
        let s: PayloadSelector = serde_json::from_str(r#"["a", "b.c"]"#).unwrap();
        assert_eq!(s, PayloadSelector::Include(vec![p("a"), p("b.c")]));
        let s: PayloadSelector = serde_json::from_str(r#"{"include": ["a"]}"#).unwrap();
        assert_eq!(s, PayloadSelector::Include(vec![p("a")]));
        let s: PayloadSelector = serde_json::from_str(r#"{"exclude": ["a[].b"]}"#).unwrap();
        assert_eq!(s, PayloadSelector::Exclude(vec![p("a[].b")]));
        for bad in [
            r#"{}"#,
            r#"{"include": ["a"], "x": 1}"#,
            r#"{"other": []}"#,
            "1",
            r#"[1]"#,
            r#"["a.."]"#,
            "null",
        ] {
            assert!(serde_json::from_str::<PayloadSelector>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<PayloadSelector>("{}").unwrap_err().to_string();
        assert!(err.contains("include/exclude"), "{err}");
        assert_eq!(
            serde_json::to_string(&PayloadSelector::Exclude(vec![p("x")])).unwrap(),
            r#"{"exclude":["x"]}"#
        );
    }

    #[test]
    fn payload_selector_apply() {
        let pl = payload(json!({
            "a": {"b": 1, "c": 2},
            "arr": [{"x": 1, "y": 2}, 3],
            "z": 0,
        }));
        assert_eq!(PayloadSelector::All.apply(&pl), Some(pl.clone()));
        assert_eq!(PayloadSelector::None.apply(&pl), None);
        let inc = PayloadSelector::Include(vec![p("a.b"), p("z")]).apply(&pl).unwrap();
        assert_eq!(Value::Object(inc), json!({"a": {"b": 1}, "z": 0}));
        let inc = PayloadSelector::Include(vec![p("arr[].x")]).apply(&pl).unwrap();
        assert_eq!(Value::Object(inc), json!({"arr": [{"x": 1}, 3]}));
        let inc = PayloadSelector::Include(vec![p("a")]).apply(&pl).unwrap();
        assert_eq!(Value::Object(inc), json!({"a": {"b": 1, "c": 2}}));
        let inc = PayloadSelector::Include(vec![p("missing")]).apply(&pl).unwrap();
        assert!(inc.is_empty());
        let exc = PayloadSelector::Exclude(vec![p("a.b"), p("arr[].y")])
            .apply(&pl)
            .unwrap();
        assert_eq!(Value::Object(exc), json!({"a": {"c": 2}, "arr": [{"x": 1}, 3], "z": 0}));
        let exc = PayloadSelector::Exclude(vec![p("a")]).apply(&pl).unwrap();
        assert_eq!(Value::Object(exc), json!({"arr": [{"x": 1, "y": 2}, 3], "z": 0}));
    }
}
