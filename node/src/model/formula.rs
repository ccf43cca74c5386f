//! Score boosting formulas of the query API (`{"formula": ..., "defaults": {...}}`): the request
//! shape, and the checked form that shards evaluate (`ParsedFormula`, see `storage::formula`).
//!
//! Parsing follows Qdrant: a number is a constant (read as f32), a string is a variable (`$score`,
//! `$score[i]` or a payload key), a filter condition scores 1 or 0, and the named operator objects
//! nest. Parameters are checked once here (decay midpoints and scales, datetimes, variable
//! names), so evaluation only meets per-point problems.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::filter::{parse_datetime, Condition, GeoPoint};
use super::payload::JsonPath;
use super::Filter;
use crate::error::{Error, Result};

/// `{"formula": expression, "defaults": {variable: value}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormulaQuery {
    pub formula: Expression,
    #[serde(default)]
    pub defaults: Map<String, Value>,
}

/// One node of a formula, in Qdrant's JSON shapes (tried in this order).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expression {
    Constant(f32),
    Variable(String),
    Condition(Box<Condition>),
    GeoDistance { geo_distance: GeoDistance },
    Datetime { datetime: String },
    DatetimeKey { datetime_key: String },
    Mult { mult: Vec<Expression> },
    Sum { sum: Vec<Expression> },
    Neg { neg: Box<Expression> },
    Abs { abs: Box<Expression> },
    Div { div: DivParams },
    Sqrt { sqrt: Box<Expression> },
    Pow { pow: PowParams },
    Exp { exp: Box<Expression> },
    Log10 { log10: Box<Expression> },
    Ln { ln: Box<Expression> },
    LinDecay { lin_decay: DecayParams },
    ExpDecay { exp_decay: DecayParams },
    GaussDecay { gauss_decay: DecayParams },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeoDistance {
    pub origin: GeoPoint,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DivParams {
    pub left: Box<Expression>,
    pub right: Box<Expression>,
    #[serde(default)]
    pub by_zero_default: Option<f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowParams {
    pub base: Box<Expression>,
    pub exponent: Box<Expression>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecayParams {
    pub x: Box<Expression>,
    #[serde(default)]
    pub target: Option<Box<Expression>>,
    #[serde(default)]
    pub scale: Option<f32>,
    #[serde(default)]
    pub midpoint: Option<f32>,
}

/// Which curve a decay follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecayKind {
    Lin,
    Exp,
    Gauss,
}

/// What a variable names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Variable {
    /// The point's score in the i-th prefetch.
    Score(usize),
    /// A payload value.
    Payload(JsonPath),
}

/// A checked formula node, ready to evaluate per point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Const(f64),
    Var(Variable),
    /// 1 when the point matches, else 0.
    Condition(Box<Filter>),
    GeoDistance {
        origin: GeoPoint,
        to: JsonPath,
    },
    /// Seconds since the epoch.
    Datetime(f64),
    DatetimeKey(JsonPath),
    Mult(Vec<Expr>),
    Sum(Vec<Expr>),
    Neg(Box<Expr>),
    Abs(Box<Expr>),
    Div {
        left: Box<Expr>,
        right: Box<Expr>,
        by_zero: Option<f64>,
    },
    Sqrt(Box<Expr>),
    Pow {
        base: Box<Expr>,
        exponent: Box<Expr>,
    },
    Exp(Box<Expr>),
    Log10(Box<Expr>),
    Ln(Box<Expr>),
    /// `lambda` is computed from the midpoint and scale once.
    Decay {
        kind: DecayKind,
        x: Box<Expr>,
        target: Box<Expr>,
        lambda: f64,
    },
}

/// A formula as shards evaluate it: the expression and the defaults by variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedFormula {
    pub expr: Expr,
    pub defaults: Vec<(Variable, Value)>,
}

impl ParsedFormula {
    pub fn default_of(&self, var: &Variable) -> Option<&Value> {
        self.defaults.iter().find(|(v, _)| v == var).map(|(_, value)| value)
    }
}

fn validation_failed(msg: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("Validation failed: {msg}"))
}

/// `$score`, `$score[i]` or a payload key.
pub fn parse_variable(s: &str) -> Result<Variable, String> {
    if let Some(reserved) = s.strip_prefix('$') {
        let path: JsonPath = reserved
            .parse()
            .map_err(|_| format!("Invalid reserved variable: {s}"))?;
        if path.first_key != "score" {
            return Err(format!("Invalid reserved word: {s}"));
        }
        return match path.rest.as_slice() {
            [] => Ok(Variable::Score(0)),
            [super::payload::JsonPathItem::Index(i)] => Ok(Variable::Score(*i)),
            _ => Err(format!("Invalid reserved variable: {s}")),
        };
    }
    s.parse::<JsonPath>()
        .map(Variable::Payload)
        .map_err(|_| format!("Invalid payload variable: {s}"))
}

fn variable(s: &str) -> Result<Variable> {
    parse_variable(s).map_err(|e| validation_failed(format!("failed to parse variable ID {s}: {e}")))
}

fn payload_key(s: &str) -> Result<JsonPath> {
    s.parse::<JsonPath>()
        .map_err(|e| Error::bad_input(format!("invalid payload key `{s}`: {e}")))
}

impl FormulaQuery {
    /// Checks the formula and its defaults and turns it into the evaluable form.
    pub fn parse(self) -> Result<ParsedFormula> {
        let mut defaults = Vec::with_capacity(self.defaults.len());
        for (key, value) in self.defaults {
            let var =
                parse_variable(&key).map_err(|e| Error::validation(format!("defaults: Invalid variable name: {e}")))?;
            if matches!(var, Variable::Score(_)) && !value.is_number() {
                return Err(Error::validation("defaults: Score default must be a number"));
            }
            defaults.push((var, value));
        }
        Ok(ParsedFormula {
            expr: self.formula.parse()?,
            defaults,
        })
    }
}

impl Expression {
    pub fn parse(self) -> Result<Expr> {
        let boxed = |e: Box<Expression>| -> Result<Box<Expr>> { Ok(Box::new(e.parse()?)) };
        let all = |list: Vec<Expression>| list.into_iter().map(Expression::parse).collect::<Result<Vec<_>>>();
        Ok(match self {
            Expression::Constant(c) => Expr::Const(f64::from(c)),
            Expression::Variable(s) => Expr::Var(variable(&s)?),
            Expression::Condition(c) => {
                c.validate()?;
                Expr::Condition(Box::new(Filter {
                    must: Some(vec![*c]),
                    ..Default::default()
                }))
            }
            Expression::GeoDistance { geo_distance } => Expr::GeoDistance {
                origin: geo_distance.origin,
                to: payload_key(&geo_distance.to)?,
            },
            Expression::Datetime { datetime } => {
                let dt = parse_datetime(&datetime)
                    .ok_or_else(|| validation_failed(format!("failed to parse date-time {datetime}")))?;
                Expr::Datetime(dt.timestamp_micros() as f64 / 1_000_000.0)
            }
            Expression::DatetimeKey { datetime_key } => Expr::DatetimeKey(payload_key(&datetime_key)?),
            Expression::Mult { mult } => Expr::Mult(all(mult)?),
            Expression::Sum { sum } => Expr::Sum(all(sum)?),
            Expression::Neg { neg } => Expr::Neg(boxed(neg)?),
            Expression::Abs { abs } => Expr::Abs(boxed(abs)?),
            Expression::Div { div } => Expr::Div {
                left: boxed(div.left)?,
                right: boxed(div.right)?,
                by_zero: div.by_zero_default.map(f64::from),
            },
            Expression::Sqrt { sqrt } => Expr::Sqrt(boxed(sqrt)?),
            Expression::Pow { pow } => Expr::Pow {
                base: boxed(pow.base)?,
                exponent: boxed(pow.exponent)?,
            },
            Expression::Exp { exp } => Expr::Exp(boxed(exp)?),
            Expression::Log10 { log10 } => Expr::Log10(boxed(log10)?),
            Expression::Ln { ln } => Expr::Ln(boxed(ln)?),
            Expression::LinDecay { lin_decay } => decay(DecayKind::Lin, lin_decay)?,
            Expression::ExpDecay { exp_decay } => decay(DecayKind::Exp, exp_decay)?,
            Expression::GaussDecay { gauss_decay } => decay(DecayKind::Gauss, gauss_decay)?,
        })
    }
}

/// Checks a decay's midpoint and scale (Qdrant's ranges and messages) and computes its lambda:
/// the curve is 1 at the target and `midpoint` at `scale` away from it.
fn decay(kind: DecayKind, p: DecayParams) -> Result<Expr> {
    let midpoint = f64::from(p.midpoint.unwrap_or(0.5));
    let scale = f64::from(p.scale.unwrap_or(1.0));
    match kind {
        DecayKind::Lin if !(0.0..=1.0).contains(&midpoint) => {
            return Err(validation_failed(format!(
                "Linear decay midpoint should be in the range [0.0, 1.0], got {midpoint}."
            )));
        }
        DecayKind::Exp | DecayKind::Gauss if midpoint.is_nan() || midpoint <= 0.0 || midpoint >= 1.0 => {
            return Err(validation_failed(format!(
                "Decay midpoint should be in the range (0.0, 1.0), got {midpoint}."
            )));
        }
        _ => {}
    }
    if scale.is_nan() || scale <= 0.0 {
        return Err(validation_failed(format!(
            "Decay scale should be non-zero positive, got {scale}."
        )));
    }
    let lambda = match kind {
        DecayKind::Lin => (1.0 - midpoint) / scale,
        DecayKind::Exp => midpoint.ln() / scale,
        DecayKind::Gauss => midpoint.ln() / (scale * scale),
    };
    Ok(Expr::Decay {
        kind,
        x: Box::new(p.x.parse()?),
        target: Box::new(match p.target {
            Some(t) => t.parse()?,
            None => Expr::Const(0.0),
        }),
        lambda,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ParsedFormula> {
        serde_json::from_value::<FormulaQuery>(v).unwrap().parse()
    }

    #[test]
    fn shapes_parse_in_qdrant_order() {
        let f = parse(json!({"formula": {"sum": ["$score", {"mult": [0.5, "price"]},
            {"key": "tag", "match": {"value": "a"}}, {}, "$score[2]"]}}))
        .unwrap();
        let Expr::Sum(terms) = f.expr else {
            panic!("{:?}", f.expr)
        };
        assert!(matches!(terms[0], Expr::Var(Variable::Score(0))));
        assert!(matches!(&terms[1], Expr::Mult(m) if matches!(m[0], Expr::Const(c) if c == f64::from(0.5f32))));
        assert!(matches!(terms[2], Expr::Condition(_)));
        assert!(matches!(terms[3], Expr::Condition(_)), "{{}} is an empty filter");
        assert!(matches!(terms[4], Expr::Var(Variable::Score(2))));
    }

    #[test]
    fn variables() {
        assert_eq!(parse_variable("$score[3]"), Ok(Variable::Score(3)));
        assert_eq!(parse_variable("a.b[]"), Ok(Variable::Payload("a.b[]".parse().unwrap())));
        assert_eq!(parse_variable("$foo"), Err("Invalid reserved word: $foo".into()));
        assert_eq!(
            parse_variable("$score.x"),
            Err("Invalid reserved variable: $score.x".into())
        );
        let err = parse(json!({"formula": "$foo"})).unwrap_err().to_string();
        assert_eq!(
            err,
            "Wrong input: Validation failed: failed to parse variable ID $foo: Invalid reserved word: $foo"
        );
        let err = parse(json!({"formula": 1, "defaults": {"$score": "x"}})).unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err}");
    }

    #[test]
    fn decay_checks_and_lambda() {
        let err = |v| parse(v).unwrap_err().to_string();
        assert!(err(json!({"formula": {"exp_decay": {"x": 1, "midpoint": 1.0}}}))
            .ends_with("Decay midpoint should be in the range (0.0, 1.0), got 1."));
        assert!(err(json!({"formula": {"lin_decay": {"x": 1, "midpoint": 1.5}}}))
            .ends_with("Linear decay midpoint should be in the range [0.0, 1.0], got 1.5."));
        assert!(err(json!({"formula": {"gauss_decay": {"x": 1, "scale": 0}}}))
            .ends_with("Decay scale should be non-zero positive, got 0."));
        let f = parse(json!({"formula": {"lin_decay": {"x": 5, "scale": 10}}})).unwrap();
        assert!(matches!(f.expr, Expr::Decay { lambda, .. } if (lambda - 0.05).abs() < 1e-12));
        let f = parse(json!({"formula": {"datetime": "2025-03-18"}})).unwrap();
        assert!(matches!(f.expr, Expr::Datetime(s) if s == 1_742_256_000.0));
        assert!(err(json!({"formula": {"datetime": "abc"}})).contains("failed to parse date-time abc"));
    }
}
