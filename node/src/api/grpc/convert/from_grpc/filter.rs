//! Filters: the gRPC `Filter`/`Condition` tree into `model::filter::Filter`, built directly from
//! the model types. Semantic checks (a field condition needs a kind) stay in `Filter::validate`,
//! which every read and write runs, so both APIs report them the same way.

use chrono::{DateTime, Utc};
use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::condition::ConditionOneOf;
use qdrant_client::qdrant::r#match::MatchValue;

use super::point::{point_ids, required};
use crate::error::{Error, Result};
use crate::model::filter::{
    AnyVariants, Condition, FieldCondition, GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon, GeoRadius, Match,
    MinShould, Nested, PayloadField, Range, RangeInterface, ValueVariant, ValuesCount,
};
use crate::model::payload::JsonPath;
use crate::model::Filter;

/// A filter. Empty condition lists are unset ones (protobuf cannot tell them apart).
pub fn filter(f: grpc::Filter) -> Result<Filter> {
    Ok(Filter {
        should: conditions(f.should)?,
        min_should: f
            .min_should
            .map(|m| {
                Ok::<_, Error>(MinShould {
                    conditions: conditions(m.conditions)?.unwrap_or_default(),
                    min_count: usize::try_from(m.min_count).unwrap_or(usize::MAX),
                })
            })
            .transpose()?,
        must: conditions(f.must)?,
        must_not: conditions(f.must_not)?,
    })
}

/// An optional filter field of a request.
pub fn optional(f: Option<grpc::Filter>) -> Result<Option<Filter>> {
    f.map(filter).transpose()
}

fn conditions(list: Vec<grpc::Condition>) -> Result<Option<Vec<Condition>>> {
    if list.is_empty() {
        return Ok(None);
    }
    list.into_iter().map(condition).collect::<Result<Vec<_>>>().map(Some)
}

fn key(k: &str) -> Result<JsonPath> {
    k.parse().map_err(Error::bad_input)
}

pub(super) fn condition(c: grpc::Condition) -> Result<Condition> {
    match required(c.condition_one_of, "condition")? {
        ConditionOneOf::Field(f) => field_condition(f).map(Condition::Field),
        ConditionOneOf::IsEmpty(c) => Ok(Condition::IsEmpty(PayloadField { key: key(&c.key)? })),
        ConditionOneOf::IsNull(c) => Ok(Condition::IsNull(PayloadField { key: key(&c.key)? })),
        ConditionOneOf::HasId(h) => Ok(Condition::HasId(point_ids(h.has_id)?.into_iter().collect())),
        ConditionOneOf::HasVector(h) => Ok(Condition::HasVector(h.has_vector)),
        ConditionOneOf::Nested(n) => Ok(Condition::Nested(Nested {
            key: key(&n.key)?,
            filter: filter(required(n.filter, "filter of a nested condition")?)?,
        })),
        ConditionOneOf::Filter(f) => filter(f).map(Condition::Filter),
        ConditionOneOf::Slice(_) => Err(Error::bad_input("slice condition is not supported by this node")),
    }
}

fn field_condition(f: grpc::FieldCondition) -> Result<FieldCondition> {
    let range = match (f.range, f.datetime_range) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_input(format!(
                "field condition on `{}` takes `range` or `datetime_range`, not both",
                f.key
            )))
        }
        (Some(r), None) => Some(RangeInterface::Float(Range {
            lt: r.lt,
            gt: r.gt,
            gte: r.gte,
            lte: r.lte,
        })),
        (None, Some(r)) => Some(RangeInterface::DateTime(Range {
            lt: r.lt.map(|t| datetime(t.seconds, t.nanos)).transpose()?,
            gt: r.gt.map(|t| datetime(t.seconds, t.nanos)).transpose()?,
            gte: r.gte.map(|t| datetime(t.seconds, t.nanos)).transpose()?,
            lte: r.lte.map(|t| datetime(t.seconds, t.nanos)).transpose()?,
        })),
        (None, None) => None,
    };
    Ok(FieldCondition {
        key: key(&f.key)?,
        r#match: f.r#match.map(match_value).transpose()?,
        range,
        geo_bounding_box: f.geo_bounding_box.map(bounding_box).transpose()?,
        geo_radius: f.geo_radius.map(radius).transpose()?,
        geo_polygon: f.geo_polygon.map(polygon).transpose()?,
        values_count: f.values_count.map(values_count),
        is_empty: f.is_empty,
        is_null: f.is_null,
    })
}

fn match_value(m: grpc::Match) -> Result<Match> {
    Ok(match required(m.match_value, "match value")? {
        MatchValue::Keyword(s) => Match::Value(ValueVariant::Keyword(s)),
        MatchValue::Integer(i) => Match::Value(ValueVariant::Integer(i)),
        MatchValue::Boolean(b) => Match::Value(ValueVariant::Bool(b)),
        MatchValue::Text(s) => Match::Text(s),
        MatchValue::TextAny(s) => Match::TextAny(s),
        MatchValue::Phrase(s) => Match::Phrase(s),
        MatchValue::Prefix(s) => Match::Prefix(s),
        MatchValue::Keywords(k) => Match::Any(AnyVariants::Keywords(k.strings)),
        MatchValue::Integers(i) => Match::Any(AnyVariants::Integers(i.integers)),
        MatchValue::ExceptKeywords(k) => Match::Except(AnyVariants::Keywords(k.strings)),
        MatchValue::ExceptIntegers(i) => Match::Except(AnyVariants::Integers(i.integers)),
        MatchValue::Substring(_) => return Err(Error::bad_input("match substring is not supported by this node")),
    })
}

/// A protobuf `Timestamp` (seconds and nanos since the epoch) as a UTC datetime.
fn datetime(seconds: i64, nanos: i32) -> Result<DateTime<Utc>> {
    u32::try_from(nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
        .ok_or_else(|| {
            Error::bad_input(format!(
                "datetime_range: timestamp {seconds}s {nanos}ns is out of range"
            ))
        })
}

pub(super) fn geo_point(p: grpc::GeoPoint) -> Result<GeoPoint> {
    // The model's message already starts with "Wrong input:"; keep one.
    GeoPoint::new(p.lon, p.lat).map_err(|e| Error::bad_input(e.trim_start_matches("Wrong input: ")))
}

fn bounding_box(b: grpc::GeoBoundingBox) -> Result<GeoBoundingBox> {
    Ok(GeoBoundingBox {
        top_left: geo_point(required(b.top_left, "geo_bounding_box top_left")?)?,
        bottom_right: geo_point(required(b.bottom_right, "geo_bounding_box bottom_right")?)?,
    })
}

fn radius(r: grpc::GeoRadius) -> Result<GeoRadius> {
    Ok(GeoRadius {
        center: geo_point(required(r.center, "geo_radius center")?)?,
        radius: f64::from(r.radius),
    })
}

fn line(l: grpc::GeoLineString) -> Result<GeoLineString> {
    Ok(GeoLineString {
        points: l.points.into_iter().map(geo_point).collect::<Result<_>>()?,
    })
}

fn polygon(p: grpc::GeoPolygon) -> Result<GeoPolygon> {
    let exterior = line(required(p.exterior, "geo_polygon exterior")?)?;
    let interiors = if p.interiors.is_empty() {
        None
    } else {
        Some(p.interiors.into_iter().map(line).collect::<Result<_>>()?)
    };
    GeoPolygon::new(exterior, interiors).map_err(Error::bad_input)
}

fn values_count(v: grpc::ValuesCount) -> ValuesCount {
    let size = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    ValuesCount {
        lt: size(v.lt),
        gt: size(v.gt),
        gte: size(v.gte),
        lte: size(v.lte),
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::{Condition as C, Filter as F};
    use serde_json::json;

    use super::*;
    use crate::model::filter::filter_from_json;

    fn geo(lon: f64, lat: f64) -> grpc::GeoPoint {
        grpc::GeoPoint { lon, lat }
    }

    /// Every condition kind converts to exactly what REST parses from the same filter in JSON.
    #[test]
    fn matches_the_rest_parse_of_the_same_filter() {
        let mut dates = grpc::DatetimeRange {
            gte: Some(Default::default()),
            ..Default::default()
        };
        if let Some(t) = dates.gte.as_mut() {
            t.seconds = 1_675_853_340; // 2023-02-08T10:49:00Z
        }
        let ring = grpc::GeoLineString {
            points: vec![geo(0.0, 0.0), geo(1.0, 0.0), geo(1.0, 1.0), geo(0.0, 0.0)],
        };
        let nested = F::must([C::matches("a", 1i64)]);
        let g = F {
            must: vec![
                C::matches("city", "London".to_string()),
                C::matches("n", 5i64),
                C::matches("b", true),
                C::matches("c", vec!["a".to_string(), "b".to_string()]),
                C::matches("c", vec![1i64, 2]),
                C::matches("c", !MatchValue::from(vec!["x".to_string()])),
                C::matches("c", !MatchValue::from(vec![3i64])),
                C::matches_text("t", "hello"),
                C::matches_text_any("t", "hello world"),
                C::matches_phrase("t", "hello world"),
                C::matches_prefix("t", "hel"),
                C::range(
                    "r",
                    grpc::Range {
                        gte: Some(1.0),
                        lt: Some(2.5),
                        ..Default::default()
                    },
                ),
                C::datetime_range("d", dates),
                C::geo_radius(
                    "g",
                    grpc::GeoRadius {
                        center: Some(geo(13.5, 52.5)),
                        radius: 1000.0,
                    },
                ),
                C::geo_bounding_box(
                    "g",
                    grpc::GeoBoundingBox {
                        top_left: Some(geo(1.0, 2.0)),
                        bottom_right: Some(geo(2.0, 1.0)),
                    },
                ),
                C::geo_polygon(
                    "g",
                    grpc::GeoPolygon {
                        exterior: Some(ring),
                        interiors: vec![],
                    },
                ),
                C::values_count(
                    "arr",
                    grpc::ValuesCount {
                        gt: Some(1),
                        ..Default::default()
                    },
                ),
                C::is_empty("x"),
                C::is_null("x"),
                C::has_id([1u64]),
                C::has_vector("image"),
                C::nested("items[]", nested),
                F::should([C::matches("a", 1i64)]).into(),
            ],
            must_not: vec![C::matches("z", "no".to_string())],
            min_should: Some(grpc::MinShould {
                conditions: vec![C::has_vector("v")],
                min_count: 1,
            }),
            should: vec![],
        };
        let rest = filter_from_json(json!({
            "must": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "n", "match": {"value": 5}},
                {"key": "b", "match": {"value": true}},
                {"key": "c", "match": {"any": ["a", "b"]}},
                {"key": "c", "match": {"any": [1, 2]}},
                {"key": "c", "match": {"except": ["x"]}},
                {"key": "c", "match": {"except": [3]}},
                {"key": "t", "match": {"text": "hello"}},
                {"key": "t", "match": {"text_any": "hello world"}},
                {"key": "t", "match": {"phrase": "hello world"}},
                {"key": "t", "match": {"prefix": "hel"}},
                {"key": "r", "range": {"gte": 1, "lt": 2.5}},
                {"key": "d", "range": {"gte": "2023-02-08T10:49:00Z"}},
                {"key": "g", "geo_radius": {"center": {"lon": 13.5, "lat": 52.5}, "radius": 1000.0}},
                {"key": "g", "geo_bounding_box": {"top_left": {"lon": 1, "lat": 2}, "bottom_right": {"lon": 2, "lat": 1}}},
                {"key": "g", "geo_polygon": {"exterior": {"points": [
                    {"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 0}]}}},
                {"key": "arr", "values_count": {"gt": 1}},
                {"is_empty": {"key": "x"}},
                {"is_null": {"key": "x"}},
                {"has_id": [1]},
                {"has_vector": "image"},
                {"nested": {"key": "items[]", "filter": {"must": [{"key": "a", "match": {"value": 1}}]}}},
                {"should": [{"key": "a", "match": {"value": 1}}]},
            ],
            "must_not": [{"key": "z", "match": {"value": "no"}}],
            "min_should": {"conditions": [{"has_vector": "v"}], "min_count": 1},
        }))
        .unwrap();
        assert_eq!(filter(g).unwrap(), rest);
    }

    #[test]
    fn field_condition_flags_and_empty_lists() {
        let flags = grpc::FieldCondition {
            key: "x".into(),
            is_empty: Some(true),
            is_null: Some(false),
            ..Default::default()
        };
        let f = filter(F::must([flags.into()])).unwrap();
        assert_eq!(
            f,
            filter_from_json(json!({"must": [{"key": "x", "is_empty": true, "is_null": false}]})).unwrap()
        );
        // An empty gRPC filter matches everything, like `{}` on REST.
        assert_eq!(filter(F::default()).unwrap(), Filter::default());
        // No kind at all: converts, then fails validation as on REST.
        let bare = filter(F::must([grpc::FieldCondition {
            key: "x".into(),
            ..Default::default()
        }
        .into()]))
        .unwrap();
        assert!(matches!(bare.validate(), Err(Error::Validation(_))));
    }

    #[test]
    fn malformed_conditions_are_bad_input() {
        let cases: Vec<(F, &str)> = vec![
            (F::must([C { condition_one_of: None }]), "condition is required"),
            (F::must([C::matches("a..b", 1i64)]), "Invalid json path"),
            (
                F::must([C::geo_radius(
                    "g",
                    grpc::GeoRadius {
                        center: Some(geo(0.0, 91.0)),
                        radius: 1.0,
                    },
                )]),
                "Latitude",
            ),
            (
                F::must([C::geo_polygon(
                    "g",
                    grpc::GeoPolygon {
                        exterior: Some(grpc::GeoLineString {
                            points: vec![geo(0.0, 0.0)],
                        }),
                        interiors: vec![],
                    },
                )]),
                "at least 4",
            ),
            (
                F::must([grpc::NestedCondition {
                    key: "a".into(),
                    filter: None,
                }
                .into()]),
                "filter of a nested condition",
            ),
            (F::must([C::has_id(["nope"])]), "not a valid UUID"),
            (F::must([C::slice(2, 0)]), "slice"),
            (F::must([C::matches_substring("t", "x")]), "substring"),
            (
                F::must([grpc::FieldCondition {
                    key: "r".into(),
                    range: Some(grpc::Range::default()),
                    datetime_range: Some(grpc::DatetimeRange::default()),
                    ..Default::default()
                }
                .into()]),
                "not both",
            ),
        ];
        for (f, needle) in cases {
            let err = filter(f.clone()).unwrap_err();
            assert!(matches!(err, Error::BadInput(_)), "{f:?}: {err}");
            assert!(err.to_string().contains(needle), "{f:?}: {err}");
            assert!(!err.to_string().contains("Wrong input: Wrong input"), "{err}");
        }
    }
}
