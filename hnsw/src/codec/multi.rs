//! `MultiCode`: a graph over multivectors (ColBERT-style: several rows of `dim` values per
//! point), compared by MaxSim. The distance of a query `Q` to a stored multivector `D` is
//! `Σ_q min_d metric(q, d)`: for the inner product `|Q| - Σ_q max_d q·d`, for L2 the sum of
//! each query row's smallest squared distance; so ordering by it is ordering by MaxSim.
//!
//! A multivector has as many rows as its point was given, so it does not fit a fixed-size
//! record: the record holds one word, a handle into the row store this code owns, and the
//! rows live there (append-only, one boxed slice per record). Building compares stored
//! multivectors with each other the same way (the query side is the new node's rows).

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use super::any::{ParamReader, Quantization, StoredCode};
use super::Code;
use crate::kernels::{Kernel, Metric};
use crate::{Error, Result};

/// Multivectors of `dim`-value rows, scored by MaxSim; the rows kept as f32.
#[derive(Debug)]
pub struct MultiCode {
    dim: usize,
    metric: Metric,
    kernel: Kernel,
    /// The rows of each record, by handle (a record's one word).
    rows: RwLock<Vec<Box<[f32]>>>,
    /// Bytes the rows take.
    bytes: AtomicUsize,
}

impl MultiCode {
    pub fn new(dim: usize, metric: Metric) -> Self {
        MultiCode {
            dim,
            metric,
            kernel: metric.kernel(),
            rows: RwLock::new(Vec::new()),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Σ over the query's rows of its nearest stored row's distance.
    #[inline]
    fn max_sim(&self, query: &[f32], stored: &[f32]) -> f32 {
        let kernel = self.kernel;
        query
            .chunks_exact(self.dim)
            .map(|q| {
                stored
                    .chunks_exact(self.dim)
                    .map(|d| kernel(q, d))
                    .fold(f32::INFINITY, f32::min)
            })
            .sum()
    }

    fn push(&self, v: &[f32]) -> u32 {
        let mut rows = self.rows.write();
        rows.push(v.into());
        self.bytes.fetch_add(std::mem::size_of_val(v), Ordering::Relaxed);
        (rows.len() - 1) as u32
    }
}

impl Code for MultiCode {
    type Query = Vec<f32>;
    const QUERY_IS_CODE: bool = true;

    fn dim(&self) -> usize {
        self.dim
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn words(&self) -> usize {
        1
    }

    /// Any positive number of whole rows.
    fn accepts(&self, len: usize) -> bool {
        len > 0 && len % self.dim == 0
    }

    /// Stores the rows and writes their handle.
    fn encode(&self, v: &[f32], out: &mut [u32]) {
        out[0] = self.push(v);
    }

    fn prepare(&self, q: &[f32]) -> Vec<f32> {
        q.to_vec()
    }

    fn distance(&self, q: &Vec<f32>, code: &[u32]) -> f32 {
        let rows = self.rows.read();
        self.max_sim(q, &rows[code[0] as usize])
    }

    fn distance_codes(&self, a: &[u32], b: &[u32]) -> f32 {
        let rows = self.rows.read();
        self.max_sim(&rows[a[0] as usize], &rows[b[0] as usize])
    }

    fn decode(&self, code: &[u32]) -> Vec<f32> {
        self.rows.read()[code[0] as usize].to_vec()
    }

    /// Compares the rows themselves (encoding would store them again).
    fn same(&self, v: &[f32], code: &[u32]) -> bool {
        self.rows.read().get(code[0] as usize).is_some_and(|r| **r == *v)
    }

    fn params_memory(&self) -> usize {
        self.bytes.load(Ordering::Relaxed) + self.rows.read().capacity() * std::mem::size_of::<Box<[f32]>>()
    }
}

impl StoredCode for MultiCode {
    const KIND: u8 = 7;

    fn quantization(&self) -> Option<Quantization> {
        None
    }

    /// The row store: the number of records, then per record its row count and values.
    fn write_params(&self, out: &mut Vec<u8>) {
        let rows = self.rows.read();
        out.reserve(4 + rows.len() * 4 + self.bytes.load(Ordering::Relaxed));
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for r in rows.iter() {
            out.extend_from_slice(&((r.len() / self.dim) as u32).to_le_bytes());
            for x in r.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }

    fn read_params(dim: usize, metric: Metric, bytes: &[u8]) -> Result<Self> {
        let code = MultiCode::new(dim, metric);
        let mut r = ParamReader::new(bytes);
        let records = r.u32()? as usize;
        // Each record takes at least its count: a length beyond the bytes is damage.
        if records > bytes.len() / 4 {
            return Err(Error::Format("the multivector store is cut short".into()));
        }
        let mut values = Vec::new();
        for _ in 0..records {
            let count = r.u32()? as usize;
            if count == 0 || count.saturating_mul(dim) > bytes.len() / 4 {
                return Err(Error::Format("a stored multivector has a bad row count".into()));
            }
            values.clear();
            for _ in 0..count * dim {
                values.push(r.f32()?);
            }
            code.push(&values);
        }
        r.finish()?;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(metric: Metric) -> MultiCode {
        MultiCode::new(2, metric)
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
        assert_eq!(c.distance_codes(&a, &b), 1.0);
        assert_eq!(c.distance_codes(&b, &a), 1.0 + 50.0 + 162.0);
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
        let back = MultiCode::read_params(2, Metric::InnerProduct, &bytes).unwrap();
        assert_eq!(back.decode(&[0]), vec![0.5, 0.5]);
        assert_eq!(back.decode(&[1]), vec![1.0, 0.0, 0.0, 1.0]);
        assert!(MultiCode::read_params(2, Metric::InnerProduct, &bytes[..bytes.len() - 1]).is_err());
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(MultiCode::read_params(2, Metric::InnerProduct, &huge).is_err());
    }
}
