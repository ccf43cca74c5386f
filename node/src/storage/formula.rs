//! Evaluates a checked score formula (`model::formula`) for one point of a shard, with Qdrant's
//! semantics: f64 arithmetic, `$score[i]` from the i-th prefetch (else its default, else 0),
//! payload numbers (one value; else the default; else an error), conditions as 1/0, and an error
//! for any non-finite intermediate or final value.

use std::collections::HashMap;

use serde_json::Value;

use super::shard::ShardState;
use crate::error::{Error, Result};
use crate::model::filter::{parse_datetime, GeoPoint};
use crate::model::formula::{DecayKind, Expr, ParsedFormula, Variable};
use crate::model::payload::{flat_values_at, values_at, JsonPath, JsonPathItem};
use crate::model::{Payload, PointId};

/// Score a prefetch-less point gets for `$score[i]` when neither the prefetch nor the defaults
/// name it.
const DEFAULT_SCORE: f64 = 0.0;

/// The formula and everything it reads, for the points of one shard.
pub(crate) struct FormulaScorer<'a> {
    formula: &'a ParsedFormula,
    /// Per prefetch: each returned point's score.
    scores: Vec<HashMap<PointId, f32>>,
    state: &'a ShardState,
}

fn non_finite(expr: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("The expression {expr} produced a non-finite number"))
}

/// `value` unless it is NaN or infinite.
fn finite(value: f64, expr: impl FnOnce() -> String) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(non_finite(expr()))
    }
}

fn type_error(kind: &str, key: &JsonPath, why: &str) -> Error {
    Error::bad_input(format!(
        "Expected {kind} value for {key} in the payload and/or in the formula defaults. Error: {why}"
    ))
}

impl<'a> FormulaScorer<'a> {
    pub fn new(formula: &'a ParsedFormula, scores: &[Vec<(PointId, f32)>], state: &'a ShardState) -> Self {
        FormulaScorer {
            formula,
            scores: scores.iter().map(|list| list.iter().copied().collect()).collect(),
            state,
        }
    }

    /// The formula's value for the point in `slot`, as the f32 score it is returned as.
    pub fn score(&self, slot: u32) -> Result<f32> {
        let Some(point) = self.state.live(slot) else {
            return Err(Error::internal(format!("formula scored a free slot {slot}")));
        };
        let point = Point {
            id: point.id,
            slot,
            payload: &point.payload,
        };
        let value = self.eval(&self.formula.expr, &point)?;
        let score = value as f32;
        if !score.is_finite() {
            return Err(non_finite(format!("{value} as f32 = {score}")));
        }
        Ok(score)
    }

    fn eval(&self, expr: &Expr, p: &Point<'_>) -> Result<f64> {
        Ok(match expr {
            Expr::Const(c) => *c,
            Expr::Var(Variable::Score(i)) => self.prefetch_score(*i, p.id),
            Expr::Var(Variable::Payload(key)) => {
                let value = self.payload_value(p, key, "number")?;
                value
                    .as_f64()
                    .ok_or_else(|| type_error("number", key, "Value is not a number"))?
            }
            Expr::Condition(filter) => {
                if self.state.matches(p.slot, Some(filter)) {
                    1.0
                } else {
                    0.0
                }
            }
            Expr::GeoDistance { origin, to } => {
                let value = self.payload_value(p, to, "geo point")?;
                let point = serde_json::from_value::<GeoPoint>(value)
                    .map_err(|e| type_error("geo point", to, &e.to_string()))?;
                origin.distance_m(&point)
            }
            Expr::Datetime(seconds) => *seconds,
            Expr::DatetimeKey(key) => {
                let value = self.payload_value(p, key, "datetime")?;
                let text = value
                    .as_str()
                    .ok_or_else(|| type_error("datetime", key, "Value is not a string"))?;
                let dt = parse_datetime(text)
                    .ok_or_else(|| type_error("datetime", key, &format!("invalid datetime `{text}`")))?;
                dt.timestamp_micros() as f64 / 1_000_000.0
            }
            Expr::Mult(factors) => {
                let mut product = 1.0;
                for f in factors {
                    let v = self.eval(f, p)?;
                    // A zero factor decides the product; the rest is not evaluated.
                    if v == 0.0 {
                        return Ok(0.0);
                    }
                    product *= v;
                }
                product
            }
            Expr::Sum(terms) => {
                let mut sum = 0.0;
                for t in terms {
                    sum += self.eval(t, p)?;
                }
                sum
            }
            Expr::Neg(e) => -self.eval(e, p)?,
            Expr::Abs(e) => self.eval(e, p)?.abs(),
            Expr::Div { left, right, by_zero } => {
                let l = self.eval(left, p)?;
                if l == 0.0 {
                    return Ok(0.0);
                }
                let r = self.eval(right, p)?;
                if r == 0.0 {
                    if let Some(d) = by_zero {
                        return Ok(*d);
                    }
                }
                let q = l / r;
                finite(q, || format!("{l}/{r} = {q}"))?
            }
            Expr::Sqrt(e) => {
                let v = self.eval(e, p)?;
                let r = v.sqrt();
                finite(r, || format!("√{v} = {r}"))?
            }
            Expr::Pow { base, exponent } => {
                let (b, e) = (self.eval(base, p)?, self.eval(exponent, p)?);
                let r = b.powf(e);
                finite(r, || format!("{b}^{e} = {r}"))?
            }
            Expr::Exp(e) => {
                let v = self.eval(e, p)?;
                let r = v.exp();
                finite(r, || format!("exp({v}) = {r}"))?
            }
            Expr::Log10(e) => {
                let v = self.eval(e, p)?;
                let r = v.log10();
                finite(r, || format!("log10({v}) = {r}"))?
            }
            Expr::Ln(e) => {
                let v = self.eval(e, p)?;
                let r = v.ln();
                finite(r, || format!("ln({v}) = {r}"))?
            }
            Expr::Decay {
                kind,
                x,
                target,
                lambda,
            } => {
                let d = self.eval(x, p)? - self.eval(target, p)?;
                decay(*kind, *lambda, d)
            }
        })
    }

    fn prefetch_score(&self, i: usize, id: PointId) -> f64 {
        if let Some(s) = self.scores.get(i).and_then(|m| m.get(&id)) {
            return f64::from(*s);
        }
        self.formula
            .default_of(&Variable::Score(i))
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_SCORE)
    }

    /// The single value at `key` (several values are returned as an array, which no caller
    /// accepts), else its default, else an error naming the `kind` of value expected.
    fn payload_value(&self, p: &Point<'_>, key: &JsonPath, kind: &str) -> Result<Value> {
        let values = if matches!(key.rest.last(), Some(JsonPathItem::Wildcard)) {
            values_at(p.payload, key)
        } else {
            flat_values_at(p.payload, key)
        };
        match values.as_slice() {
            [one] => Ok((*one).clone()),
            [] => self
                .formula
                .default_of(&Variable::Payload(key.clone()))
                .cloned()
                .ok_or_else(|| type_error(kind, key, "No value found in a payload nor defaults")),
            many => Ok(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
        }
    }
}

/// 1 at distance 0 from the target, falling with |d| (`lambda` < 0 for exp/gauss).
fn decay(kind: DecayKind, lambda: f64, d: f64) -> f64 {
    match kind {
        DecayKind::Lin => (1.0 - lambda * d.abs()).max(0.0),
        DecayKind::Exp => (lambda * d.abs()).exp(),
        DecayKind::Gauss => (lambda * d * d).exp(),
    }
}

struct Point<'a> {
    id: PointId,
    slot: u32,
    payload: &'a Payload,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_curves() {
        // x = 5, target 0, scale 10, midpoint 0.5 (Qdrant's worked numbers).
        assert!((decay(DecayKind::Lin, 0.05, 5.0) - 0.75).abs() < 1e-12);
        assert!((decay(DecayKind::Exp, 0.5f64.ln() / 10.0, -5.0) - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((decay(DecayKind::Gauss, 0.5f64.ln() / 100.0, 5.0) - 0.5f64.powf(0.25)).abs() < 1e-12);
        assert_eq!(decay(DecayKind::Lin, 0.5, 3.0), 0.0);
    }
}
