//! Searching a quantized HNSW: the graph walks the codes, so a search takes more candidates
//! than it returns (`oversampling`) and rescores them with the original vectors, as Qdrant does.

use crate::model::quantization::{QuantizationConfig, QuantizationSearchParams};

/// How one graph search uses a quantized index: how many candidates it takes from the codes,
/// with what breadth, and whether they are rescored with the original vectors.
pub(crate) struct QuantizedSearch {
    pub candidates: usize,
    pub ef: usize,
    pub rescore: bool,
}

impl QuantizedSearch {
    /// The plan for a graph of `points`: asking for more candidates, or a wider search, than
    /// the graph holds gains nothing (and a huge `hnsw_ef` or `oversampling` would size the
    /// search's buffers by it).
    pub fn within(self, points: usize) -> QuantizedSearch {
        let most = points.max(1);
        QuantizedSearch {
            candidates: self.candidates.min(most),
            ef: self.ef.min(most),
            rescore: self.rescore,
        }
    }

    pub fn plan(
        quantization: Option<QuantizationConfig>,
        params: &QuantizationSearchParams,
        limit: usize,
        ef: usize,
    ) -> QuantizedSearch {
        match quantization {
            None => QuantizedSearch {
                candidates: limit,
                ef,
                rescore: false,
            },
            // The graph holds only codes: "ignore the quantization" scores a full `ef` of
            // candidates with the original vectors.
            Some(_) if params.ignore => QuantizedSearch {
                candidates: ef,
                ef,
                rescore: true,
            },
            Some(q) => {
                let candidates = params.candidates(limit);
                QuantizedSearch {
                    candidates,
                    ef: ef.max(candidates),
                    rescore: params.rescore.unwrap_or(q.rescores_by_default()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quantization::TurboBits;

    #[test]
    fn plans_follow_qdrant_defaults_and_oversampling() {
        let params = |json: serde_json::Value| QuantizationSearchParams::parse(Some(&json)).unwrap();
        let scalar = Some(QuantizationConfig::Scalar { quantile: None });
        let plain = QuantizedSearch::plan(None, &params(serde_json::json!({"oversampling": 3.0})), 10, 64);
        assert_eq!((plain.candidates, plain.ef, plain.rescore), (10, 64, false));
        let s = QuantizedSearch::plan(scalar, &params(serde_json::json!({})), 10, 64);
        assert_eq!((s.candidates, s.ef, s.rescore), (10, 64, false));
        let s = QuantizedSearch::plan(
            scalar,
            &params(serde_json::json!({"rescore": true, "oversampling": 10.0})),
            10,
            64,
        );
        assert_eq!((s.candidates, s.ef, s.rescore), (100, 100, true));
        let t = QuantizedSearch::plan(
            Some(QuantizationConfig::Turbo { bits: TurboBits::Bits1 }),
            &params(serde_json::json!({})),
            10,
            64,
        );
        assert!(t.rescore);
        let i = QuantizedSearch::plan(scalar, &params(serde_json::json!({"ignore": true})), 10, 64);
        assert_eq!((i.candidates, i.rescore), (64, true));
    }
}
