//! `MultiCode`: a graph over multivectors (ColBERT-style: several rows of `dim` values per
//! point), compared by MaxSim. The distance of a query `Q` to a stored multivector `D` is
//! `Σ_q min_d metric(q, d)`: for the inner product `|Q| - Σ_q max_d q·d`, for L2 the sum of
//! each query row's smallest squared distance; so ordering by it is ordering by MaxSim.
//!
//! Each row is kept in a row code `R`: f32, f16 or bytes (the collection's `datatype`), or a
//! quantized code (scalar, binary, product, TurboQuant) trained on a sample of rows; the
//! per-row distances are then `R`'s, exact or approximate, and callers rescore the best
//! candidates from the stored rows, as for a quantized plain graph.
//!
//! A multivector has as many rows as its point was given, so it does not fit a fixed-size
//! record: the record holds one word, a handle into the row store this code owns, and the
//! rows' codes live there (append-only, one boxed slice per record).
//!
//! Building compares stored multivectors with a symmetric form of the same distance: the mean
//! of both directions' per-row averages (a Chamfer distance). MaxSim summed over one side's
//! rows is not symmetric and grows with that side's row count, so the link heuristic, which
//! compares distances measured from different nodes, would judge a short multivector far from
//! every neighbour and prune the links into it: with concurrent inserts about one node in
//! fifteen ended up unreachable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::any::{ParamReader, ParamWriter, Quantization, StoredCode};
use super::Code;
use crate::kernels::Metric;
use crate::{Error, Result};

/// Multivectors of `dim`-value rows, each row kept in the code `R`, scored by MaxSim.
#[derive(Debug)]
pub struct MultiCode<R> {
    row: Arc<R>,
    /// The row codes of each record, by handle (a record's one word).
    rows: RwLock<Vec<Box<[u32]>>>,
    /// Bytes the row codes take.
    bytes: AtomicUsize,
}

impl<R: Code> MultiCode<R> {
    pub fn new(row: Arc<R>) -> Self {
        MultiCode {
            row,
            rows: RwLock::new(Vec::new()),
            bytes: AtomicUsize::new(0),
        }
    }

    /// The code each row is kept in.
    pub fn row_code(&self) -> &R {
        &self.row
    }

    pub(crate) fn row_arc(&self) -> Arc<R> {
        self.row.clone()
    }

    #[inline]
    fn row_words(&self) -> usize {
        self.row.words()
    }

    /// Σ over `queries` of the distance (`dist`) to their nearest row of `stored`.
    #[inline]
    fn sum_of_nearest<Q>(
        &self,
        queries: impl Iterator<Item = Q>,
        stored: &[u32],
        dist: impl Fn(&Q, &[u32]) -> f32,
    ) -> f32 {
        let w = self.row_words();
        queries
            .map(|q| {
                stored
                    .chunks_exact(w)
                    .map(|d| dist(&q, d))
                    .fold(f32::INFINITY, f32::min)
            })
            .sum()
    }

    /// Σ over the prepared query rows of the distance to their nearest stored row.
    #[inline]
    fn max_sim(&self, query: &[R::Query], stored: &[u32]) -> f32 {
        self.sum_of_nearest(query.iter(), stored, |q, d| self.row.distance(q, d))
    }

    /// Σ over `a`'s stored rows of the distance to their nearest row of `b`, between codes.
    #[inline]
    fn max_sim_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        self.sum_of_nearest(a.chunks_exact(self.row_words()), b, |q, d| {
            self.row.distance_codes(q, d)
        })
    }

    /// The symmetric distance between two stored multivectors that building uses.
    #[inline]
    fn chamfer(&self, a: &[u32], b: &[u32]) -> f32 {
        let w = self.row_words();
        let (ra, rb) = ((a.len() / w).max(1) as f32, (b.len() / w).max(1) as f32);
        0.5 * (self.max_sim_codes(a, b) / ra + self.max_sim_codes(b, a) / rb)
    }

    /// The row codes of `v` (whole rows of `dim` values).
    fn encode_rows(&self, v: &[f32]) -> Box<[u32]> {
        let (dim, w) = (self.row.dim(), self.row_words());
        let mut out = vec![0u32; v.len() / dim * w];
        for (row, code) in v.chunks_exact(dim).zip(out.chunks_exact_mut(w)) {
            self.row.encode(row, code);
        }
        out.into_boxed_slice()
    }

    fn push(&self, codes: Box<[u32]>) -> u32 {
        let mut rows = self.rows.write();
        self.bytes.fetch_add(codes.len() * 4, Ordering::Relaxed);
        rows.push(codes);
        (rows.len() - 1) as u32
    }
}

impl<R: Code> Code for MultiCode<R> {
    type Query = Vec<R::Query>;

    fn dim(&self) -> usize {
        self.row.dim()
    }

    fn metric(&self) -> Metric {
        self.row.metric()
    }

    fn words(&self) -> usize {
        1
    }

    /// Any positive number of whole rows.
    fn accepts(&self, len: usize) -> bool {
        len > 0 && len % self.dim() == 0
    }

    /// Stores the rows' codes and writes their handle.
    fn encode(&self, v: &[f32], out: &mut [u32]) {
        out[0] = self.push(self.encode_rows(v));
    }

    fn prepare(&self, q: &[f32]) -> Vec<R::Query> {
        q.chunks_exact(self.dim()).map(|row| self.row.prepare(row)).collect()
    }

    fn distance(&self, q: &Vec<R::Query>, code: &[u32]) -> f32 {
        let rows = self.rows.read();
        self.max_sim(q, &rows[code[0] as usize])
    }

    /// Symmetric, unlike `distance` (see the module's note): used only while building.
    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        let rows = self.rows.read();
        self.chamfer(&rows[a[0] as usize], &rows[b[0] as usize])
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        let rows = self.rows.read();
        rows[code[0] as usize]
            .chunks_exact(self.row_words())
            .flat_map(|r| self.row.decode(r))
            .collect()
    }

    /// Copies the record's row codes into this store (no decoding: quantized rows stay as
    /// they were encoded).
    fn copy_from(&self, from: &Self, code: &[u32], out: &mut [u32]) {
        let rows = from.rows.read()[code[0] as usize].clone();
        out[0] = self.push(rows);
    }

    /// Compares the rows' codes (encoding into the store would keep them again).
    fn same(&self, v: &[f32], code: &[u32]) -> bool {
        let mine = self.encode_rows(v);
        self.rows.read().get(code[0] as usize).is_some_and(|r| *r == mine)
    }

    fn params_memory(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
            + self.rows.read().capacity() * std::mem::size_of::<Box<[u32]>>()
            + self.row.params_memory()
    }
}

impl<R: StoredCode> StoredCode for MultiCode<R> {
    /// 16 + the row code's kind (kind 7, f32 rows without a row-code block, is no longer read:
    /// such a graph is rebuilt).
    const KIND: u8 = 16 + R::KIND;

    fn quantization(&self) -> Option<Quantization> {
        self.row.quantization()
    }

    /// The row code's parameters (their length, then the block), the number of records, then
    /// per record its row count and its rows' code words.
    fn write_params(&self, out: &mut Vec<u8>) {
        let mut row_params = Vec::new();
        self.row.write_params(&mut row_params);
        let rows = self.rows.read();
        out.reserve(8 + row_params.len() + rows.len() * 4 + self.bytes.load(Ordering::Relaxed));
        ParamWriter(out).u32(row_params.len() as u32);
        out.extend_from_slice(&row_params);
        ParamWriter(out).u32(rows.len() as u32);
        let w = self.row_words();
        for r in rows.iter() {
            ParamWriter(out).u32((r.len() / w) as u32);
            for x in r.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        let mut r = ParamReader::new(bytes);
        let row_len = r.u32()? as usize;
        let row = R::read_params(dim, metric, r.bytes(row_len)?)?;
        if row.dim() != dim || row.metric() != metric || row.words() == 0 {
            return Err(Error::Format(
                "the multivector row code does not match the index".into(),
            ));
        }
        let code = MultiCode::new(Arc::new(row));
        let w = code.row_words();
        let records = r.u32()? as usize;
        // Each record takes at least its count: a length beyond the bytes is damage.
        if records > bytes.len() / 4 {
            return Err(Error::Format("the multivector store is cut short".into()));
        }
        for _ in 0..records {
            let count = r.u32()? as usize;
            if count == 0 || count.saturating_mul(w) > bytes.len() / 4 {
                return Err(Error::Format("a stored multivector has a bad row count".into()));
            }
            let words: Vec<u32> = (0..count * w).map(|_| r.u32()).collect::<Result<_>>()?;
            code.push(words.into_boxed_slice());
        }
        r.finish()?;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::f32::F32Code;

    fn code(metric: Metric) -> MultiCode<F32Code> {
        MultiCode::new(Arc::new(F32Code::new(2, metric)))
    }

    #[test]
    fn distance_is_the_sum_of_each_query_rows_nearest_row() {
        let c = code(Metric::InnerProduct);
        let mut h = [0u32];
        c.encode(&[1.0, 0.0, 0.0, 1.0], &mut h);
        // Query rows (1,0) and (0.6,0.8): best dots 1 and 0.8 -> (1-1) + (1-0.8).
        let q = c.prepare(&[1.0, 0.0, 0.6, 0.8]);
        assert!((c.distance(&q, &h) - 0.2).abs() < 1e-6);
        let l2 = code(Metric::L2sq);
        l2.encode(&[0.0, 0.0, 3.0, 4.0, 10.0, 10.0], &mut h);
        // (3,3): nearest (3,4) at 1; (0,1): nearest (0,0) at 1.
        let q = l2.prepare(&[3.0, 3.0, 0.0, 1.0]);
        assert_eq!(l2.distance(&q, &h), 2.0);
    }

    #[test]
    fn records_of_any_row_count_and_their_distances() {
        let c = code(Metric::L2sq);
        let (mut a, mut b) = ([0u32], [0u32]);
        c.encode(&[0.0, 0.0], &mut a);
        c.encode(&[1.0, 0.0, 5.0, 5.0, 9.0, 9.0], &mut b);
        assert_eq!((a[0], b[0]), (0, 1));
        // MaxSim one way: 1; the other way: 1 + 50 + 162, averaged over its 3 rows.
        let want = 0.5 * (1.0 + (1.0 + 50.0 + 162.0) / 3.0);
        assert_eq!(c.distance_codes(&a, &b), want);
        assert_eq!(c.distance_codes(&b, &a), want);
        assert_eq!(c.decode(&b), vec![1.0, 0.0, 5.0, 5.0, 9.0, 9.0]);
        assert!(c.same(&[0.0, 0.0], &a) && !c.same(&[0.0, 1.0], &a));
        assert!(c.accepts(6) && !c.accepts(5) && !c.accepts(0));
    }

    #[test]
    fn the_row_store_round_trips_and_damage_is_refused() {
        let c = code(Metric::InnerProduct);
        let mut h = [0u32];
        c.encode(&[0.5, 0.5], &mut h);
        c.encode(&[1.0, 0.0, 0.0, 1.0], &mut h);
        let mut bytes = Vec::new();
        c.write_params(&mut bytes);
        let back = MultiCode::<F32Code>::read_params(2, Metric::InnerProduct, &bytes).unwrap();
        assert_eq!(back.decode(&[0]), vec![0.5, 0.5]);
        assert_eq!(back.decode(&[1]), vec![1.0, 0.0, 0.0, 1.0]);
        assert!(MultiCode::<F32Code>::read_params(2, Metric::InnerProduct, &bytes[..bytes.len() - 1]).is_err());
        let mut huge = bytes.clone();
        // The record count follows the (empty) row-code block's length.
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(MultiCode::<F32Code>::read_params(2, Metric::InnerProduct, &huge).is_err());
    }
}
