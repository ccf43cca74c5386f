//! `qdrant.Formula` into the model's `FormulaQuery` (checked later, as REST's is).

use qdrant_client::qdrant as grpc;
use qdrant_client::qdrant::expression::Variant;

use super::filter::{condition, geo_point};
use super::value::json;
use crate::error::{Error, Result};
use crate::model::formula::{DecayParams, DivParams, Expression, FormulaQuery, GeoDistance, PowParams};

fn missing(field: &str) -> Error {
    Error::bad_input(format!("missing field: {field}"))
}

pub fn formula(f: grpc::Formula) -> Result<FormulaQuery> {
    Ok(FormulaQuery {
        formula: expression(f.expression.ok_or_else(|| missing("expression"))?)?,
        defaults: f.defaults.into_iter().map(|(k, v)| (k, json(v))).collect(),
    })
}

fn boxed(e: Option<Box<grpc::Expression>>, field: &str) -> Result<Box<Expression>> {
    Ok(Box::new(expression(*e.ok_or_else(|| missing(field))?)?))
}

fn decay(d: grpc::DecayParamsExpression) -> Result<DecayParams> {
    Ok(DecayParams {
        x: boxed(d.x, "x")?,
        target: d.target.map(|t| expression(*t).map(Box::new)).transpose()?,
        scale: d.scale,
        midpoint: d.midpoint,
    })
}

fn expression(e: grpc::Expression) -> Result<Expression> {
    let all = |list: Vec<grpc::Expression>| list.into_iter().map(expression).collect::<Result<Vec<_>>>();
    let one = |e: Box<grpc::Expression>| expression(*e).map(Box::new);
    Ok(match e.variant.ok_or_else(|| missing("variant"))? {
        Variant::Constant(c) => Expression::Constant(c),
        Variant::Variable(v) => Expression::Variable(v),
        Variant::Condition(c) => Expression::Condition(Box::new(condition(c)?)),
        Variant::GeoDistance(g) => Expression::GeoDistance {
            geo_distance: GeoDistance {
                origin: geo_point(g.origin.ok_or_else(|| missing("origin"))?)?,
                to: g.to,
            },
        },
        Variant::Datetime(datetime) => Expression::Datetime { datetime },
        Variant::DatetimeKey(datetime_key) => Expression::DatetimeKey { datetime_key },
        Variant::Mult(m) => Expression::Mult { mult: all(m.mult)? },
        Variant::Sum(s) => Expression::Sum { sum: all(s.sum)? },
        Variant::Div(d) => Expression::Div {
            div: DivParams {
                left: boxed(d.left, "left")?,
                right: boxed(d.right, "right")?,
                by_zero_default: d.by_zero_default,
            },
        },
        Variant::Neg(e) => Expression::Neg { neg: one(e)? },
        Variant::Abs(e) => Expression::Abs { abs: one(e)? },
        Variant::Sqrt(e) => Expression::Sqrt { sqrt: one(e)? },
        Variant::Pow(p) => Expression::Pow {
            pow: PowParams {
                base: boxed(p.base, "base")?,
                exponent: boxed(p.exponent, "exponent")?,
            },
        },
        Variant::Exp(e) => Expression::Exp { exp: one(e)? },
        Variant::Log10(e) => Expression::Log10 { log10: one(e)? },
        Variant::Ln(e) => Expression::Ln { ln: one(e)? },
        Variant::ExpDecay(d) => Expression::ExpDecay { exp_decay: decay(*d)? },
        Variant::GaussDecay(d) => Expression::GaussDecay {
            gauss_decay: decay(*d)?,
        },
        Variant::LinDecay(d) => Expression::LinDecay { lin_decay: decay(*d)? },
        // Newer than Qdrant 1.19, whose API this node serves.
        Variant::Acosh(_) | Variant::Max(_) | Variant::Min(_) => {
            return Err(Error::bad_input(
                "formula expressions acosh, max and min are not supported by this node",
            ))
        }
    })
}
