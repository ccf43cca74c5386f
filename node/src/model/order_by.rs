//! `order_by` (scroll and the query API): points ordered by the values of a payload key that
//! has a range index, one entry per value.

use serde::{Deserialize, Serialize};

use super::filter::parse_datetime;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// Where ordering starts: a number, or a datetime for datetime keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartFrom {
    Integer(i64),
    Float(f64),
    Datetime(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderByStruct {
    pub key: String,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub start_from: Option<StartFrom>,
}

/// `"key"` or `{key, direction, start_from}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrderByInterface {
    Key(String),
    Struct(OrderByStruct),
}

/// A checked `order_by`; datetimes are compared as microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderBy {
    pub key: String,
    pub direction: Direction,
    pub start_from: Option<f64>,
}

impl OrderByInterface {
    pub fn parse(self) -> Result<OrderBy> {
        let s = match self {
            OrderByInterface::Key(key) => OrderByStruct {
                key,
                direction: None,
                start_from: None,
            },
            OrderByInterface::Struct(s) => s,
        };
        let start_from = match s.start_from {
            None => None,
            Some(StartFrom::Integer(i)) => Some(i as f64),
            Some(StartFrom::Float(f)) => Some(f),
            Some(StartFrom::Datetime(text)) => {
                let dt = parse_datetime(&text)
                    .ok_or_else(|| Error::bad_input(format!("invalid datetime in order_by.start_from: {text}")))?;
                Some(dt.timestamp_micros() as f64)
            }
        };
        Ok(OrderBy {
            key: s.key,
            direction: s.direction.unwrap_or_default(),
            start_from,
        })
    }
}

impl OrderBy {
    /// Whether a value lies at or after `start_from` in this direction.
    pub fn starts_before(&self, value: f64) -> bool {
        match (self.start_from, self.direction) {
            (None, _) => true,
            (Some(s), Direction::Asc) => value >= s,
            (Some(s), Direction::Desc) => value <= s,
        }
    }

    /// Orders two (value, tie-breaker) pairs in this direction.
    pub fn cmp<T: Ord>(&self, a: (f64, T), b: (f64, T)) -> std::cmp::Ordering {
        let by_value = a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        match self.direction {
            Direction::Asc => by_value,
            Direction::Desc => by_value.reverse(),
        }
    }
}

/// The numeric order of an `order_value` as returned (a JSON number).
pub fn order_key(v: &Option<serde_json::Value>) -> f64 {
    v.as_ref().and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
}

/// Qdrant's refusal of an id `offset` together with `order_by`.
pub const OFFSET_WITH_ORDER_BY: &str = "Cannot use an `offset` when using `order_by`. The alternative for paging is to use `order_by.start_from` and a filter to exclude the IDs that you've already seen for the `order_by.start_from` value";
