//! Quantization: the `quantization_config` of a collection or of one vector, and the
//! `params.quantization` of a search, in Qdrant's JSON shapes.
//!
//! Configs are stored as the JSON the user sent (so they are reported back as given) and parsed
//! into `QuantizationConfig` wherever they are checked or acted on.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One quantization method with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuantizationConfig {
    /// `{"scalar": {"type": "int8", "quantile": 0.99}}`: one byte per dimension.
    Scalar { quantile: Option<f32> },
    /// `{"binary": {"encoding": ..., "query_encoding": ...}}`: 1, 1.5 or 2 bits per dimension.
    Binary {
        encoding: BinaryEncoding,
        query_encoding: BinaryQueryEncoding,
    },
    /// `{"product": {"compression": "x16"}}`.
    Product { compression: Compression },
    /// `{"turbo": {"bits": "bits2"}}`: TurboQuant (a random rotation, then a fixed codebook).
    Turbo { bits: TurboBits },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryEncoding {
    #[default]
    OneBit,
    TwoBits,
    OneAndHalfBits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryQueryEncoding {
    #[default]
    Default,
    Binary,
    Scalar4bits,
    Scalar8bits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    X4,
    X8,
    X16,
    X32,
    X64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurboBits {
    Bits1,
    Bits1_5,
    #[default]
    Bits2,
    Bits4,
}

// The JSON shapes, checked by serde with Qdrant's "Format error in JSON body" wording.

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    Scalar(ScalarParams),
    Binary(BinaryParams),
    Product(ProductParams),
    Turbo(TurboParams),
}

#[derive(Deserialize)]
#[allow(dead_code)] // placement fields are accepted; every quantized index is held in RAM
struct ScalarParams {
    r#type: ScalarType,
    #[serde(default)]
    quantile: Option<f32>,
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<Memory>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScalarType {
    Int8,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BinaryParams {
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<Memory>,
    #[serde(default)]
    encoding: Option<BinaryEncoding>,
    #[serde(default)]
    query_encoding: Option<BinaryQueryEncoding>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ProductParams {
    compression: Compression,
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<Memory>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TurboParams {
    #[serde(default)]
    always_ram: Option<bool>,
    #[serde(default)]
    memory: Option<Memory>,
    #[serde(default)]
    bits: Option<TurboBits>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Memory {
    Cold,
    Cached,
    Pinned,
}

impl QuantizationConfig {
    /// Parses a stored or submitted config; `label` names it in errors
    /// (e.g. `quantization_config`, `vectors.image.quantization_config`).
    pub fn parse(value: &Value, label: &str) -> Result<QuantizationConfig> {
        let method: Method = serde_json::from_value(value.clone())
            .map_err(|e| Error::bad_input(format!("Format error in JSON body: {label}: {e}")))?;
        Ok(match method {
            Method::Scalar(s) => {
                if let Some(q) = s.quantile {
                    if !(0.5..=1.0).contains(&q) {
                        return Err(Error::validation(format!(
                            "{label}.scalar.quantile: value {q} invalid, must be from 0.5 to 1"
                        )));
                    }
                }
                QuantizationConfig::Scalar { quantile: s.quantile }
            }
            Method::Binary(b) => QuantizationConfig::Binary {
                encoding: b.encoding.unwrap_or_default(),
                query_encoding: b.query_encoding.unwrap_or_default(),
            },
            Method::Product(p) => QuantizationConfig::Product {
                compression: p.compression,
            },
            Method::Turbo(t) => QuantizationConfig::Turbo {
                bits: t.bits.unwrap_or_default(),
            },
        })
    }

    /// Whether the codes of a stored config live in a mapped file rather than on the heap:
    /// Qdrant keeps quantized vectors in RAM when `always_ram` is true (or `memory` is
    /// `pinned`), in the page cache for the `cached` / `cold` tiers, and otherwise where the
    /// original vectors are (`on_disk`).
    pub fn codes_on_disk(value: &Value, vectors_on_disk: bool) -> bool {
        let params = value.as_object().and_then(|o| o.values().next());
        let field = |name: &str| params.and_then(|p| p.get(name));
        match field("memory").and_then(Value::as_str) {
            Some("pinned") => return false,
            Some("cached" | "cold") => return true,
            _ => {}
        }
        match field("always_ram").and_then(Value::as_bool) {
            Some(true) => false,
            _ => vectors_on_disk,
        }
    }

    /// Whether a search rescoring is left unset rescores with the original vectors: the coarse
    /// codes do (binary, TurboQuant below 4 bits), the fine ones do not (Qdrant's defaults).
    pub fn rescores_by_default(&self) -> bool {
        match self {
            QuantizationConfig::Scalar { .. } | QuantizationConfig::Product { .. } => false,
            QuantizationConfig::Binary { .. } => true,
            QuantizationConfig::Turbo { bits } => *bits != TurboBits::Bits4,
        }
    }
}

/// `params.quantization` of a search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct QuantizationSearchParams {
    /// Search the original vectors instead of the quantized ones.
    #[serde(default)]
    pub ignore: bool,
    /// Rescore the candidates with the original vectors (unset: the method's default).
    #[serde(default)]
    pub rescore: Option<bool>,
    /// Take `oversampling * limit` candidates from the quantized index before rescoring.
    #[serde(default)]
    pub oversampling: Option<f64>,
}

impl QuantizationSearchParams {
    pub fn parse(value: Option<&Value>) -> Result<QuantizationSearchParams> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(QuantizationSearchParams::default());
        };
        let params: QuantizationSearchParams = serde_json::from_value(value.clone())
            .map_err(|e| Error::bad_input(format!("Format error in JSON body: params.quantization: {e}")))?;
        if let Some(o) = params.oversampling {
            if o.is_nan() || o < 1.0 {
                return Err(Error::validation(format!(
                    "params.quantization.oversampling: value {o} invalid, must be 1.0 or larger"
                )));
            }
        }
        Ok(params)
    }

    /// How many candidates to take from the quantized index for `limit` results.
    pub fn candidates(&self, limit: usize) -> usize {
        match self.oversampling {
            Some(o) if o > 1.0 => ((o * limit as f64) as usize).max(limit),
            _ => limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_follow_the_vectors_unless_kept_in_ram() {
        let on_disk = |v: Value, vectors_on_disk| QuantizationConfig::codes_on_disk(&v, vectors_on_disk);
        assert!(!on_disk(json!({"scalar": {"type": "int8"}}), false));
        assert!(on_disk(json!({"scalar": {"type": "int8"}}), true));
        assert!(on_disk(json!({"binary": {"always_ram": false}}), true));
        assert!(!on_disk(json!({"binary": {"always_ram": true}}), true));
        assert!(!on_disk(
            json!({"product": {"compression": "x8", "memory": "pinned"}}),
            true
        ));
        assert!(on_disk(json!({"turbo": {"memory": "cached"}}), false));
        assert!(on_disk(
            json!({"scalar": {"type": "int8", "memory": "cold", "always_ram": true}}),
            false
        ));
    }

    #[test]
    fn parses_every_method_with_defaults() {
        let p = |v: Value| QuantizationConfig::parse(&v, "quantization_config");
        assert_eq!(
            p(json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}})).unwrap(),
            QuantizationConfig::Scalar { quantile: Some(0.99) }
        );
        assert_eq!(
            p(json!({"binary": {"always_ram": true}})).unwrap(),
            QuantizationConfig::Binary {
                encoding: BinaryEncoding::OneBit,
                query_encoding: BinaryQueryEncoding::Default
            }
        );
        assert_eq!(
            p(json!({"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar8bits"}})).unwrap(),
            QuantizationConfig::Binary {
                encoding: BinaryEncoding::OneAndHalfBits,
                query_encoding: BinaryQueryEncoding::Scalar8bits
            }
        );
        assert_eq!(
            p(json!({"product": {"compression": "x32", "memory": "pinned"}})).unwrap(),
            QuantizationConfig::Product {
                compression: Compression::X32
            }
        );
        assert_eq!(
            p(json!({"turbo": {"bits": "bits1_5"}})).unwrap(),
            QuantizationConfig::Turbo {
                bits: TurboBits::Bits1_5
            }
        );
        assert_eq!(
            p(json!({"turbo": {}})).unwrap(),
            QuantizationConfig::Turbo { bits: TurboBits::Bits2 }
        );
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let p = |v: Value| {
            QuantizationConfig::parse(&v, "quantization_config")
                .unwrap_err()
                .to_string()
        };
        assert!(p(json!({"scalar": {"type": "int4"}})).contains("unknown variant `int4`"));
        assert!(p(json!({"scalar": {"type": "int8", "quantile": 0.2}})).contains("must be from 0.5 to 1"));
        assert!(p(json!({"product": {}})).contains("missing field `compression`"));
        assert!(p(json!({"lossy": {}})).contains("unknown variant `lossy`"));
        assert!(p(json!({"turbo": {"bits": "bits3"}})).contains("unknown variant `bits3`"));
    }

    #[test]
    fn search_params_oversample_and_validate() {
        let q = QuantizationSearchParams::parse(Some(&json!({"rescore": true, "oversampling": 2.5}))).unwrap();
        assert_eq!((q.rescore, q.candidates(10)), (Some(true), 25));
        assert_eq!(QuantizationSearchParams::parse(None).unwrap().candidates(10), 10);
        assert!(QuantizationSearchParams::parse(Some(&json!({"oversampling": 0.5}))).is_err());
        assert!(QuantizationSearchParams::parse(Some(&json!({"ignore": "yes"}))).is_err());
    }

    #[test]
    fn rescoring_defaults_follow_the_method() {
        assert!(!QuantizationConfig::Scalar { quantile: None }.rescores_by_default());
        assert!(QuantizationConfig::Turbo { bits: TurboBits::Bits1 }.rescores_by_default());
        assert!(!QuantizationConfig::Turbo { bits: TurboBits::Bits4 }.rescores_by_default());
    }
}
