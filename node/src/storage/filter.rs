//! Filter evaluation against one point, with Qdrant's semantics.
//!
//! * `must`: all match; `should` (when present, even empty): at least one matches;
//!   `min_should`: at least `min_count` match; `must_not`: none matches.
//! * A field condition looks at the values its key reaches ([`values_at`]); it holds when any of
//!   them satisfies it. A leaf array is matched element by element (`match`/`range`/`geo`),
//!   counted as a whole (`values_count`), or inspected as a whole (`is_empty`/`is_null`).
//!   A key with no value satisfies only `is_empty: true` / `is_null: false`.
//! * `match: {text|text_any|phrase}` is token-based ([`crate::storage::text`]): with the key's
//!   text index (see [`FieldIndexes`]) over the point's values together, as Qdrant's index does
//!   (`text` finds tokens spread over an array's values; a phrase without `phrase_matching`
//!   finds nothing); without an index value by value with the default tokenizer (word,
//!   lowercase, phrases allowed), as Qdrant does since 1.19.1.
//! * `values_count` counts a missing key as 0 values (Qdrant 1.19).
//! * `nested` checks each object element of the array at `key` as a payload of its own (`has_id`
//!   and `has_vector` never hold inside it).

use serde_json::Value;

use crate::model::filter::parse_datetime;
use crate::model::filter::{
    AnyVariants, Condition, FieldCondition, Filter, GeoPoint, Match, RangeInterface, ValueVariant,
};
use crate::model::payload::{values_at, JsonPath, Payload};
use crate::model::PointId;
use crate::storage::text::{self, TextQuery, Tokenizer};

/// What a filter is evaluated against.
pub struct PointRef<'a> {
    pub id: PointId,
    pub payload: &'a Payload,
    /// Whether the point has the named vector (`""` = the default unnamed vector).
    pub has_vector: &'a dyn Fn(&str) -> bool,
}

/// The indexes that change evaluation results: today only text indexes (tokenised matching).
pub trait FieldIndexes {
    /// The text index tokenizer of `key` (a normalised [`JsonPath`] string), if it has one.
    fn text_index(&self, key: &str) -> Option<&Tokenizer>;
}

/// No payload indexes: full-text matches use the default tokenizer.
pub struct NoIndexes;

impl FieldIndexes for NoIndexes {
    fn text_index(&self, _key: &str) -> Option<&Tokenizer> {
        None
    }
}

/// Evaluates `filter` on `point` as if no field had a payload index.
pub fn check(filter: &Filter, point: &PointRef<'_>) -> bool {
    check_with(filter, point, &NoIndexes)
}

/// Evaluates `filter` on `point`, using `indexes` for index-dependent semantics.
pub fn check_with(filter: &Filter, point: &PointRef<'_>, indexes: &dyn FieldIndexes) -> bool {
    let ctx = Ctx {
        id: Some(point.id),
        payload: point.payload,
        has_vector: Some(point.has_vector),
        indexes,
        prefix: None,
    };
    ctx.filter(filter)
}

struct Ctx<'a> {
    id: Option<PointId>,
    payload: &'a Payload,
    has_vector: Option<&'a dyn Fn(&str) -> bool>,
    indexes: &'a dyn FieldIndexes,
    /// Inside `nested`: the array path the current payload is an element of (for index lookups).
    prefix: Option<JsonPath>,
}

impl Ctx<'_> {
    fn filter(&self, f: &Filter) -> bool {
        if let Some(should) = &f.should {
            if !should.iter().any(|c| self.condition(c)) {
                return false;
            }
        }
        if let Some(ms) = &f.min_should {
            if ms.min_count > 0 {
                let mut matched = 0;
                let enough = ms.conditions.iter().any(|c| {
                    if self.condition(c) {
                        matched += 1;
                    }
                    matched >= ms.min_count
                });
                if !enough {
                    return false;
                }
            }
        }
        if let Some(must) = &f.must {
            if !must.iter().all(|c| self.condition(c)) {
                return false;
            }
        }
        if let Some(must_not) = &f.must_not {
            if must_not.iter().any(|c| self.condition(c)) {
                return false;
            }
        }
        true
    }

    fn condition(&self, c: &Condition) -> bool {
        match c {
            Condition::Field(fc) => self.field(fc),
            Condition::IsEmpty(field) => values_at(self.payload, &field.key).into_iter().all(is_empty_value),
            Condition::IsNull(field) => values_at(self.payload, &field.key).into_iter().any(is_null_value),
            Condition::HasId(ids) => self.id.is_some_and(|id| ids.contains(&id)),
            Condition::HasVector(name) => self.has_vector.is_some_and(|f| f(name)),
            Condition::Nested(nested) => {
                let array_key = nested.key.array_key();
                let prefix = match &self.prefix {
                    Some(p) => p.extend(&array_key),
                    None => array_key.clone(),
                };
                values_at(self.payload, &array_key)
                    .into_iter()
                    .filter_map(Value::as_object)
                    .any(|element| {
                        let inner = Ctx {
                            id: None,
                            payload: element,
                            has_vector: None,
                            indexes: self.indexes,
                            prefix: Some(prefix.clone()),
                        };
                        inner.filter(&nested.filter)
                    })
            }
            Condition::Filter(f) => self.filter(f),
        }
    }

    fn text_index(&self, key: &JsonPath) -> Option<&Tokenizer> {
        let full = match &self.prefix {
            Some(p) => p.extend(key).to_string(),
            None => key.to_string(),
        };
        self.indexes.text_index(&full)
    }

    fn field(&self, fc: &FieldCondition) -> bool {
        let values = values_at(self.payload, &fc.key);
        if values.is_empty() {
            // Only "emptiness" conditions (and a count of zero) can hold for a missing key.
            if let Some(vc) = &fc.values_count {
                return vc.check_count(0);
            }
            if let Some(is_empty) = fc.is_empty {
                return is_empty;
            }
            if let Some(is_null) = fc.is_null {
                return !is_null;
            }
            return false;
        }
        if let Some(vc) = &fc.values_count {
            return values.into_iter().any(|v| vc.check_value(v));
        }
        if let Some(is_empty) = fc.is_empty {
            return values.into_iter().any(|v| is_empty_value(v) == is_empty);
        }
        if let Some(is_null) = fc.is_null {
            return values.into_iter().any(|v| is_null_value(v) == is_null);
        }
        // Leaf arrays are matched element by element.
        let flat = || {
            values.iter().flat_map(|v| match v {
                Value::Array(items) => items.as_slice(),
                other => std::slice::from_ref(*other),
            })
        };
        if flat().any(|v| check_value(fc, v)) {
            return true;
        }
        let Some(m) = &fc.r#match else {
            return false;
        };
        let strings = || flat().filter_map(Value::as_str);
        match self.text_index(&fc.key) {
            Some(tokenizer) => TextQuery::parse(tokenizer, m).is_some_and(|q| q.matches(tokenizer, strings())),
            None => {
                let tokenizer = text::unindexed_tokenizer();
                TextQuery::parse(tokenizer, m)
                    .is_some_and(|q| strings().any(|s| q.matches(tokenizer, std::iter::once(s))))
            }
        }
    }
}

/// Missing, `null` or `[]` (a value-level check; a missing key is handled by the caller).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// `null`, or an array holding a `null`.
fn is_null_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().any(Value::is_null),
        _ => false,
    }
}

/// One (non-array-expanded) stored value against the match / range / geo parts (OR-ed); the
/// full-text matches are checked by the caller.
fn check_value(fc: &FieldCondition, v: &Value) -> bool {
    fc.r#match.as_ref().is_some_and(|m| check_match(m, v))
        || fc.range.as_ref().is_some_and(|r| check_range(r, v))
        || geo_check(v, |p| fc.geo_bounding_box.as_ref().is_some_and(|b| b.check_point(p)))
        || geo_check(v, |p| fc.geo_radius.as_ref().is_some_and(|r| r.check_point(p)))
        || geo_check(v, |p| fc.geo_polygon.as_ref().is_some_and(|g| g.check_point(p)))
}

fn geo_check(v: &Value, f: impl Fn(&GeoPoint) -> bool) -> bool {
    GeoPoint::from_payload(v).is_some_and(|p| f(&p))
}

fn check_range(r: &RangeInterface, v: &Value) -> bool {
    match r {
        RangeInterface::Float(range) => v.is_number() && v.as_f64().is_some_and(|n| range.check(n)),
        RangeInterface::DateTime(range) => v.as_str().and_then(parse_datetime).is_some_and(|d| range.check(d)),
    }
}

fn check_match(m: &Match, v: &Value) -> bool {
    match m {
        Match::Value(ValueVariant::Keyword(k)) => v.as_str() == Some(k.as_str()),
        Match::Value(ValueVariant::Integer(i)) => v.is_number() && v.as_i64() == Some(*i),
        Match::Value(ValueVariant::Bool(b)) => v.as_bool() == Some(*b),
        Match::Text(_) | Match::TextAny(_) | Match::Phrase(_) => false,
        Match::Prefix(q) => v.as_str().is_some_and(|s| s.starts_with(q.as_str())),
        Match::Any(AnyVariants::Keywords(list)) => v.as_str().is_some_and(|s| list.iter().any(|k| k == s)),
        Match::Any(AnyVariants::Integers(list)) => v.is_number() && v.as_i64().is_some_and(|i| list.contains(&i)),
        // Qdrant: `null` never matches `except`; a value of another type always does.
        Match::Except(AnyVariants::Keywords(list)) => match v {
            Value::String(s) => !list.iter().any(|k| k == s),
            Value::Null => false,
            _ => true,
        },
        Match::Except(AnyVariants::Integers(list)) => match v {
            Value::Number(n) => n.as_i64().is_none_or(|i| !list.contains(&i)),
            Value::Null => false,
            _ => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::model::filter::filter_from_json;
    use crate::storage::payload_index::PayloadFieldSchema;

    fn payload(v: Value) -> Payload {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn matches_id(f: Value, id: u64, pl: &Value) -> bool {
        let filter = filter_from_json(f).unwrap();
        let pl = payload(pl.clone());
        let has_vector = |name: &str| name.is_empty() || name == "image";
        check(
            &filter,
            &PointRef {
                id: PointId::Num(id),
                payload: &pl,
                has_vector: &has_vector,
            },
        )
    }

    fn matches(f: Value, pl: &Value) -> bool {
        matches_id(f, 1, pl)
    }

    fn must(cond: Value) -> Value {
        json!({ "must": [cond] })
    }

    #[test]
    fn filter_eval_clauses() {
        let pts = [
            json!({"city": "London", "color": "green"}),
            json!({"city": "London", "color": "red"}),
            json!({"city": "London", "color": "blue"}),
            json!({"city": "Berlin", "color": "red"}),
            json!({"city": "Moscow", "color": "green"}),
            json!({"city": "Moscow", "color": "blue"}),
        ];
        let london = json!({"key": "city", "match": {"value": "London"}});
        let red = json!({"key": "color", "match": {"value": "red"}});
        let ids = |f: Value| -> Vec<usize> {
            pts.iter()
                .enumerate()
                .filter(|(_, p)| matches(f.clone(), p))
                .map(|(i, _)| i + 1)
                .collect()
        };
        assert_eq!(ids(json!({"must": [london, red]})), vec![2]);
        assert_eq!(ids(json!({"should": [london, red]})), vec![1, 2, 3, 4]);
        assert_eq!(ids(json!({"must_not": [london, red]})), vec![5, 6]);
        assert_eq!(ids(json!({"must": [london], "must_not": [red]})), vec![1, 3]);
        assert_eq!(ids(json!({"must_not": [{"must": [london, red]}]})), vec![1, 3, 4, 5, 6]);
        assert_eq!(ids(json!({})), vec![1, 2, 3, 4, 5, 6]);
        // A present but empty `should` matches nothing (Qdrant #554, wontfix).
        assert_eq!(ids(json!({"should": []})), Vec::<usize>::new());
        assert_eq!(ids(json!({"must": []})), vec![1, 2, 3, 4, 5, 6]);
        // min_should: at least min_count.
        let green = json!({"key": "color", "match": {"value": "green"}});
        let ms = |n: usize| json!({"min_should": {"conditions": [london, red, green], "min_count": n}});
        assert_eq!(ids(ms(2)), vec![1, 2]);
        assert_eq!(ids(ms(1)), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(ms(0)), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(ids(ms(4)), Vec::<usize>::new());
        assert_eq!(
            ids(json!({"min_should": {"conditions": [], "min_count": 1}})),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn filter_eval_match_value_and_arrays() {
        let pl = json!({"s": "red", "n": 10, "f": 10.0, "b": true, "arr": ["a", "b"], "nums": [1, 2, 3],
                        "mixed": [1, "1", true, null, [5]], "big": 18446744073709551615u64});
        let m = |key: &str, v: Value| must(json!({"key": key, "match": {"value": v}}));
        assert!(matches(m("s", json!("red")), &pl));
        assert!(!matches(m("s", json!("Red")), &pl));
        assert!(matches(m("n", json!(10)), &pl));
        assert!(!matches(m("f", json!(10)), &pl), "10.0 is a float, not the integer 10");
        assert!(!matches(m("n", json!("10")), &pl));
        assert!(matches(m("b", json!(true)), &pl));
        assert!(!matches(m("b", json!(false)), &pl));
        assert!(matches(m("arr", json!("b")), &pl));
        assert!(matches(m("nums", json!(3)), &pl));
        assert!(!matches(m("nums", json!(4)), &pl));
        assert!(matches(m("mixed", json!("1")), &pl));
        assert!(matches(m("mixed", json!(1)), &pl));
        assert!(
            !matches(m("mixed", json!(5)), &pl),
            "arrays inside arrays are not flattened"
        );
        assert!(!matches(m("big", json!(-1)), &pl));
        assert!(!matches(m("missing", json!("red")), &pl));
        assert!(!matches(m("s.sub", json!("red")), &pl));
    }

    #[test]
    fn filter_eval_match_any_except() {
        let pl = json!({"c": "black", "arr": ["black", "green"], "n": 3, "nul": null, "e": [], "o": {"a": 1}});
        let any = |key: &str, v: Value| must(json!({"key": key, "match": {"any": v}}));
        let except = |key: &str, v: Value| must(json!({"key": key, "match": {"except": v}}));
        assert!(matches(any("c", json!(["black", "yellow"])), &pl));
        assert!(!matches(any("c", json!(["white"])), &pl));
        assert!(matches(any("arr", json!(["green"])), &pl));
        assert!(matches(any("n", json!([1, 3])), &pl));
        assert!(!matches(any("n", json!(["3"])), &pl));
        assert!(!matches(any("c", json!([])), &pl), "any [] matches nothing");
        assert!(!matches(except("c", json!(["black", "yellow"])), &pl));
        assert!(matches(except("c", json!(["white"])), &pl));
        // Array: at least one element not in the list.
        assert!(matches(except("arr", json!(["black", "yellow"])), &pl));
        assert!(!matches(except("arr", json!(["black", "green"])), &pl));
        assert!(!matches(except("n", json!([3])), &pl));
        assert!(matches(except("n", json!([4])), &pl));
        // Other types always pass `except`; null, [] and missing keys never do.
        assert!(matches(except("n", json!(["x"])), &pl));
        assert!(matches(except("c", json!([1])), &pl));
        assert!(matches(except("o", json!(["x"])), &pl));
        assert!(!matches(except("nul", json!(["x"])), &pl));
        assert!(!matches(except("e", json!(["x"])), &pl));
        assert!(!matches(except("missing", json!(["x"])), &pl));
        assert!(matches(except("c", json!([])), &pl));
        // must_not + except: the usual "has a value other than" negation.
        assert!(matches(
            json!({"must_not": [{"key": "missing", "match": {"except": ["x"]}}]}),
            &pl
        ));
    }

    #[test]
    fn filter_eval_text_without_index_uses_default_tokens() {
        let pl = json!({"t": "Hello wonderful world", "arr": ["abc", "xyz"], "n": 5});
        let m = |k: &str, q: Value| must(json!({"key": k, "match": q}));
        assert!(
            !matches(m("t", json!({"text": "wonder"})), &pl),
            "tokens, not substrings"
        );
        assert!(
            matches(m("t", json!({"text": "world hello"})), &pl),
            "any order, lowercased"
        );
        assert!(
            !matches(m("t", json!({"text": "hello there"})), &pl),
            "every token needed"
        );
        assert!(matches(m("t", json!({"text_any": "nothing world"})), &pl));
        assert!(!matches(m("t", json!({"text_any": "nothing else"})), &pl));
        assert!(matches(m("t", json!({"phrase": "wonderful world"})), &pl));
        assert!(!matches(m("t", json!({"phrase": "world wonderful"})), &pl));
        assert!(matches(m("t", json!({"prefix": "Hell"})), &pl));
        assert!(!matches(m("t", json!({"prefix": "wonder"})), &pl));
        assert!(matches(m("arr", json!({"text": "xyz"})), &pl));
        assert!(!matches(m("n", json!({"text": "5"})), &pl));
    }

    struct TextIdx(HashMap<String, Tokenizer>);

    impl FieldIndexes for TextIdx {
        fn text_index(&self, key: &str) -> Option<&Tokenizer> {
            self.0.get(key)
        }
    }

    fn text_params(v: Value) -> Tokenizer {
        let schema: PayloadFieldSchema = serde_json::from_value(v).unwrap();
        Tokenizer::new(schema.text_params().unwrap())
    }

    #[test]
    fn filter_eval_text_with_index_is_token_based() {
        let idx = TextIdx(HashMap::from([
            (
                "t".to_string(),
                text_params(json!({"type": "text", "phrase_matching": true})),
            ),
            ("plain".to_string(), text_params(json!("text"))),
            (
                "items[].title".to_string(),
                text_params(json!({"type": "text", "tokenizer": "word", "lowercase": true})),
            ),
            (
                "w".to_string(),
                text_params(json!({"type": "text", "tokenizer": "whitespace", "lowercase": false})),
            ),
            (
                "p".to_string(),
                text_params(json!({"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 5})),
            ),
        ]));
        let pl = payload(json!({
            "t": "Hello, wonderful World!",
            "plain": ["Hello, wonderful", "World!"],
            "items": [{"title": "goodness only"}, {"title": "cheap hardware"}],
            "w": "Foo-bar baz",
            "p": "Elephant",
        }));
        let has_vector = |_: &str| false;
        let point = PointRef {
            id: PointId::Num(1),
            payload: &pl,
            has_vector: &has_vector,
        };
        let ok = |f: Value| check_with(&filter_from_json(f).unwrap(), &point, &idx);
        let m = |k: &str, q: Value| must(json!({"key": k, "match": q}));
        assert!(ok(m("t", json!({"text": "world hello"}))));
        assert!(!ok(m("t", json!({"text": "wonder"}))), "tokens, not substrings");
        assert!(!ok(m("t", json!({"text": "hello there"}))));
        assert!(ok(m("t", json!({"text_any": "there WORLD"}))));
        assert!(!ok(m("t", json!({"text_any": "there wonder"}))));
        assert!(ok(m("t", json!({"phrase": "hello wonderful"}))));
        assert!(!ok(m("t", json!({"phrase": "world hello"}))));
        // An index sees the values of an array together for `text`, not for phrases; and
        // without `phrase_matching` it finds no phrase at all (Qdrant: no positions kept).
        assert!(ok(m("plain", json!({"text": "hello world"}))));
        assert!(ok(m("plain", json!({"text_any": "nope world"}))));
        assert!(!ok(m("plain", json!({"phrase": "hello"}))));
        assert!(
            !check(
                &filter_from_json(m("plain", json!({"text": "hello world"}))).unwrap(),
                &point
            ),
            "without an index, value by value"
        );
        assert!(
            check(
                &filter_from_json(m("plain", json!({"phrase": "hello wonderful"}))).unwrap(),
                &point
            ),
            "without an index, phrases work"
        );
        assert!(!ok(m("t", json!({"text": ""}))), "no query tokens: nothing");
        assert!(!check(&filter_from_json(m("t", json!({"text": ""}))).unwrap(), &point));
        assert!(ok(m("w", json!({"text": "Foo-bar"}))));
        assert!(!ok(m("w", json!({"text": "foo-bar"}))), "lowercase: false keeps case");
        assert!(
            ok(m("p", json!({"text": "ele"}))),
            "prefix tokenizer matches word prefixes"
        );
        assert!(
            ok(m("p", json!({"text": "elephants"}))),
            "query tokens are cut to max_token_len"
        );
        assert!(!ok(m("p", json!({"text": "lep"}))));
        // Inside `nested`, the index of `items[].title` applies to `title`.
        let nested = |q: &str| json!({"must": {"nested": {"key": "items", "filter": {"must": {"key": "title", "match": {"text_any": q}}}}}});
        assert!(!ok(nested("good")), "'good' is not a token of 'goodness'");
        assert!(ok(nested("good cheap")));
        // Without the index the default tokenizer gives the same answer.
        assert!(!check(&filter_from_json(nested("good")).unwrap(), &point));
        assert!(check(&filter_from_json(nested("good cheap")).unwrap(), &point));
    }

    #[test]
    fn filter_eval_range_numbers_and_datetimes() {
        let pl = json!({"price": 499.9, "n": 10, "ratings": [3, 7, 9], "s": "5",
                        "d": "2020-02-15T00:00:00Z", "d2": "2020-02-15 10:00:00", "d3": "2020-02-15",
                        "ds": ["2019-01-01", "2021-06-01T12:00:00+02:00"], "bad": "not a date"});
        let r = |k: &str, v: Value| must(json!({"key": k, "range": v}));
        assert!(matches(r("price", json!({"gte": 400, "lt": 500})), &pl));
        assert!(!matches(r("price", json!({"gt": 499.9})), &pl));
        assert!(matches(r("price", json!({"gte": 499.9})), &pl));
        assert!(matches(r("n", json!({"lte": 10, "gt": 9.5})), &pl));
        assert!(matches(r("ratings", json!({"lte": 5})), &pl));
        assert!(!matches(r("ratings", json!({"gt": 9})), &pl));
        assert!(!matches(r("s", json!({"gte": 0})), &pl), "strings are not numbers");
        assert!(matches(r("n", json!({})), &pl), "no bounds: any number");
        assert!(!matches(r("s", json!({})), &pl));
        assert!(!matches(r("missing", json!({"gte": 0})), &pl));
        let feb = json!({"gte": "2020-02-01T00:00:00Z", "lt": "2020-03-01"});
        for k in ["d", "d2", "d3"] {
            assert!(matches(r(k, feb.clone()), &pl), "{k}");
        }
        assert!(!matches(r("d", json!({"gte": "2020-03-01T00:00:00Z"})), &pl));
        assert!(matches(
            r(
                "d2",
                json!({"gt": "2020-02-15 09:59:59", "lte": "2020-02-15T10:00:00Z"})
            ),
            &pl
        ));
        assert!(!matches(r("d2", json!({"gt": "2020-02-15T10:00:00+00:00"})), &pl));
        assert!(
            matches(r("d2", json!({"gt": "2020-02-15T11:00:00+02:00"})), &pl),
            "offsets are honoured"
        );
        assert!(matches(
            r(
                "ds",
                json!({"gte": "2021-06-01T10:00:00Z", "lte": "2021-06-01T10:00:00Z"})
            ),
            &pl
        ));
        assert!(!matches(r("bad", json!({"gte": "1970-01-01"})), &pl));
        assert!(
            !matches(r("n", json!({"gte": "1970-01-01"})), &pl),
            "numbers are not datetimes"
        );
    }

    #[test]
    fn filter_eval_empty_null_and_values_count() {
        let pl = json!({"price": 1.5, "parts": [], "packaging": null, "not_null": [true],
                        "null_array": [null, 1], "nested": {"x": null}, "arr": [{"b": 1}, {"b": []}],
                        "rating": [3, 7, 9, 9]});
        let is_empty = |k: &str| must(json!({"is_empty": {"key": k}}));
        let is_null = |k: &str| must(json!({"is_null": {"key": k}}));
        assert!(!matches(is_empty("price"), &pl));
        assert!(matches(is_empty("something_new"), &pl));
        assert!(matches(is_empty("parts"), &pl));
        assert!(matches(is_empty("packaging"), &pl));
        assert!(!matches(is_empty("not_null"), &pl));
        assert!(matches(is_empty("nested.x"), &pl));
        assert!(!matches(is_empty("arr[].b"), &pl), "all values must be empty");
        assert!(matches(is_empty("arr[].c"), &pl));
        assert!(!matches(is_null("price"), &pl));
        assert!(!matches(is_null("parts"), &pl));
        assert!(!matches(is_null("something_else"), &pl), "missing is not null");
        assert!(matches(is_null("packaging"), &pl));
        assert!(!matches(is_null("not_null"), &pl));
        assert!(matches(is_null("null_array"), &pl));
        assert!(matches(is_null("nested.x"), &pl));
        // Field-level forms: per value, missing key only satisfies is_empty:true / is_null:false.
        let fe = |k: &str, b: bool| must(json!({"key": k, "is_empty": b}));
        let fnull = |k: &str, b: bool| must(json!({"key": k, "is_null": b}));
        assert!(matches(fe("parts", true), &pl));
        assert!(!matches(fe("parts", false), &pl));
        assert!(matches(fe("missing", true), &pl));
        assert!(!matches(fe("missing", false), &pl));
        assert!(matches(fe("price", false), &pl));
        assert!(matches(fe("arr[].b", true), &pl), "any value empty (field form)");
        assert!(matches(fnull("packaging", true), &pl));
        assert!(!matches(fnull("missing", true), &pl));
        assert!(matches(fnull("missing", false), &pl));
        assert!(matches(fnull("null_array", true), &pl));
        assert!(!matches(fnull("null_array", false), &pl));
        // values_count.
        let vc = |k: &str, v: Value| must(json!({"key": k, "values_count": v}));
        assert!(!matches(vc("rating", json!({"gte": 10})), &pl));
        assert!(matches(vc("rating", json!({"lt": 5, "gt": 3})), &pl));
        assert!(
            matches(vc("price", json!({"lte": 1, "gte": 1})), &pl),
            "a scalar counts 1"
        );
        assert!(matches(vc("packaging", json!({"lt": 1})), &pl), "null counts 0");
        assert!(matches(vc("parts", json!({"lt": 1})), &pl));
        assert!(
            matches(vc("missing", json!({"lt": 1})), &pl),
            "a missing key counts 0 (Qdrant 1.19, qdrant#9607)"
        );
        assert!(matches(vc("missing", json!({"lte": 0, "gte": 0})), &pl));
        assert!(!matches(vc("missing", json!({"gte": 1})), &pl));
    }

    #[test]
    fn filter_eval_has_id_has_vector() {
        let pl = json!({});
        let f = json!({"must": [{"has_id": [1, 2, "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"]}]});
        assert!(matches_id(f.clone(), 2, &pl));
        assert!(!matches_id(f.clone(), 3, &pl));
        let f = json!({"must_not": [{"has_id": [1, 2, 3]}]});
        assert!(!matches_id(f.clone(), 2, &pl));
        assert!(matches_id(f, 10, &pl));
        let uuid_pl = payload(pl.clone());
        let id: PointId = "a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8".parse().unwrap();
        let hv = |_: &str| true;
        let filter = filter_from_json(json!({"must": {"has_id": ["A1A2A3A4-B1B2-C1C2-D1D2-D3D4D5D6D7D8"]}})).unwrap();
        assert!(check(
            &filter,
            &PointRef {
                id,
                payload: &uuid_pl,
                has_vector: &hv
            }
        ));
        assert!(matches(must(json!({"has_vector": "image"})), &pl));
        assert!(matches(must(json!({"has_vector": ""})), &pl));
        assert!(!matches(must(json!({"has_vector": "text"})), &pl));
    }

    #[test]
    fn filter_eval_nested() {
        let pl = json!({"country": {"name": "Germany", "cities": [
            {"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]},
            {"name": "Munich", "population": 1.5, "sightseeing": ["Marienplatz", "Olympiapark"]},
        ]}, "diet": [{"food": "meat", "likes": false}, {"food": "leaves", "likes": true}], "not_array": {"food": "meat"}});
        assert!(matches(
            must(json!({"key": "country.name", "match": {"value": "Germany"}})),
            &pl
        ));
        assert!(matches(
            must(json!({"key": "country.cities[].population", "range": {"gte": 3.0}})),
            &pl
        ));
        assert!(matches(
            must(json!({"key": "country.cities[].sightseeing", "match": {"value": "Reichstag"}})),
            &pl
        ));
        // Array projection mixes elements; nested keeps them apart.
        let projected = json!({"must": [
            {"key": "diet[].food", "match": {"value": "meat"}},
            {"key": "diet[].likes", "match": {"value": true}}]});
        assert!(matches(projected, &pl));
        let nested = |inner: Value| must(json!({"nested": {"key": "diet", "filter": inner}}));
        assert!(!matches(
            nested(json!({"must": [
            {"key": "food", "match": {"value": "meat"}},
            {"key": "likes", "match": {"value": true}}]})),
            &pl
        ));
        assert!(matches(
            nested(json!({"must": [
            {"key": "food", "match": {"value": "leaves"}},
            {"key": "likes", "match": {"value": true}}]})),
            &pl
        ));
        assert!(matches(
            must(json!({"nested": {"key": "diet[]", "filter": {"must": {"key": "food", "match": {"value": "meat"}}}}})),
            &pl
        ));
        assert!(
            !matches(must(json!({"nested": {"key": "not_array", "filter": {}}})), &pl),
            "nested needs an array"
        );
        assert!(
            !matches(nested(json!({"must": {"has_id": [1]}})), &pl),
            "has_id is never true inside nested"
        );
        assert!(matches(
            must(json!({"nested": {"key": "country.cities", "filter": {"must": [
            {"key": "name", "match": {"value": "Munich"}},
            {"key": "sightseeing", "match": {"any": ["Marienplatz"]}}]}}})),
            &pl
        ));
    }

    #[test]
    fn filter_eval_geo() {
        let pl = json!({"location": {"lon": 13.404954, "lat": 52.520008},
                        "many": [{"lon": 13.4136, "lat": 52.5219}, {"lon": 37.6213, "lat": 55.7536}],
                        "bad": {"lon": "x", "lat": 1}});
        let berlin_box =
            json!({"top_left": {"lon": 13.08835, "lat": 52.67551}, "bottom_right": {"lon": 13.76116, "lat": 52.33826}});
        let moscow_box =
            json!({"top_left": {"lon": 37.0366, "lat": 56.1859}, "bottom_right": {"lon": 38.2532, "lat": 55.317}});
        let g = |k: &str, kind: &str, v: Value| must(json!({"key": k, kind: v}));
        assert!(matches(g("location", "geo_bounding_box", berlin_box.clone()), &pl));
        assert!(!matches(g("location", "geo_bounding_box", moscow_box.clone()), &pl));
        assert!(matches(g("many", "geo_bounding_box", moscow_box), &pl));
        assert!(!matches(g("bad", "geo_bounding_box", berlin_box), &pl));
        let radius = |lon: f64, lat: f64, r: f64| json!({"center": {"lon": lon, "lat": lat}, "radius": r});
        assert!(matches(g("location", "geo_radius", radius(13.42, 52.51, 2000.0)), &pl));
        assert!(!matches(g("location", "geo_radius", radius(20.42, 52.51, 2000.0)), &pl));
        let poly = json!({"exterior": {"points": [
            {"lon": 13.0, "lat": 52.0}, {"lon": 14.0, "lat": 52.0}, {"lon": 14.0, "lat": 53.0},
            {"lon": 13.0, "lat": 53.0}, {"lon": 13.0, "lat": 52.0}]}});
        assert!(matches(g("location", "geo_polygon", poly), &pl));
    }
}
