//! The on-disk form of a point: a small binary header with the vectors, then the payload JSON.
//!
//! Layout (little-endian): `u8 format` `u64 version` `u32 slot` `u16 vector_count`, then per vector
//! `u16 name_len` `name` `u8 kind` `u32 len` and `len` f32 (dense) or `len` u32 + `len` f32
//! (sparse) or `len` rows as `u32 dim` + `len * dim` f32 (multivector); the rest is the payload as
//! JSON (empty for an empty payload).

use crate::error::{Error, Result};
use crate::model::vector::{NamedVectors, SparseVector, Vector};
use crate::model::Payload;

const FORMAT: u8 = 1;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const MULTI: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    pub version: u64,
    /// The shard-internal slot the point's vectors live in (also its key in the HNSW indexes),
    /// persisted so a saved index can be matched to the points after a restart.
    pub slot: u32,
    pub vectors: NamedVectors,
    pub payload: Payload,
}

pub fn encode(point: &StoredPoint) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + point.vectors.values().map(vector_bytes).sum::<usize>());
    out.push(FORMAT);
    out.extend_from_slice(&point.version.to_le_bytes());
    out.extend_from_slice(&point.slot.to_le_bytes());
    let count = u16::try_from(point.vectors.len()).map_err(|_| Error::bad_input("too many named vectors"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for (name, vector) in &point.vectors {
        let name_len = u16::try_from(name.len()).map_err(|_| Error::bad_input("vector name too long"))?;
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        match vector {
            Vector::Dense(v) => {
                out.push(DENSE);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            Vector::Sparse(s) => {
                out.push(SPARSE);
                out.extend_from_slice(&(s.indices.len() as u32).to_le_bytes());
                s.indices.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                s.values.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            Vector::MultiDense(rows) => {
                let dim = rows.first().map_or(0, Vec::len);
                if rows.iter().any(|r| r.len() != dim) {
                    return Err(Error::bad_input("multivector rows must all have one size"));
                }
                out.push(MULTI);
                out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
                out.extend_from_slice(&(dim as u32).to_le_bytes());
                rows.iter()
                    .flatten()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
    }
    if !point.payload.is_empty() {
        serde_json::to_writer(&mut out, &point.payload).map_err(Error::internal)?;
    }
    Ok(out)
}

fn vector_bytes(v: &Vector) -> usize {
    match v {
        Vector::Dense(d) => 16 + d.len() * 4,
        Vector::Sparse(s) => 16 + s.indices.len() * 8,
        Vector::MultiDense(rows) => 20 + rows.iter().map(|r| r.len() * 4).sum::<usize>(),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| Error::internal("corrupt point record: truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(Error::internal)?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(Error::internal)?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(Error::internal)?))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| Error::internal("corrupt record"))?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| Error::internal("corrupt record"))?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

pub fn decode(buf: &[u8]) -> Result<StoredPoint> {
    let mut r = Reader { buf, pos: 0 };
    let format = r.u8()?;
    if format != FORMAT {
        return Err(Error::internal(format!("unknown point record format {format}")));
    }
    let version = r.u64()?;
    let slot = r.u32()?;
    let count = r.u16()?;
    let mut vectors = NamedVectors::new();
    for _ in 0..count {
        let name_len = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(name_len)?)
            .map_err(Error::internal)?
            .to_string();
        let kind = r.u8()?;
        let len = r.u32()? as usize;
        let vector = match kind {
            DENSE => Vector::Dense(r.f32s(len)?),
            SPARSE => {
                let indices = r.u32s(len)?;
                let values = r.f32s(len)?;
                Vector::Sparse(SparseVector { indices, values })
            }
            MULTI => {
                let dim = r.u32()? as usize;
                let total = len.checked_mul(dim).ok_or_else(|| Error::internal("corrupt record"))?;
                let flat = r.f32s(total)?;
                Vector::MultiDense(flat.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
            }
            other => return Err(Error::internal(format!("unknown vector kind {other}"))),
        };
        vectors.insert(name, vector);
    }
    let rest = &buf[r.pos..];
    let payload = if rest.is_empty() {
        Payload::new()
    } else {
        serde_json::from_slice(rest).map_err(Error::internal)?
    };
    Ok(StoredPoint {
        version,
        slot,
        vectors,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut payload = Payload::new();
        payload.insert("city".into(), serde_json::json!(["Berlin", {"x": 1}]));
        let p = StoredPoint {
            version: 42,
            slot: 7,
            vectors: NamedVectors::from([
                ("".to_string(), Vector::Dense(vec![1.0, -2.5, 3.25])),
                (
                    "s".to_string(),
                    Vector::Sparse(SparseVector {
                        indices: vec![1, 9],
                        values: vec![0.5, 0.25],
                    }),
                ),
                (
                    "m".to_string(),
                    Vector::MultiDense(vec![vec![1.0, 2.0], vec![-3.0, 0.5], vec![0.0, 9.0]]),
                ),
            ]),
            payload,
        };
        let bytes = encode(&p).unwrap();
        assert_eq!(decode(&bytes).unwrap(), p);
        let empty = StoredPoint {
            version: 1,
            slot: 0,
            vectors: NamedVectors::new(),
            payload: Payload::new(),
        };
        assert_eq!(decode(&encode(&empty).unwrap()).unwrap(), empty);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let p = StoredPoint {
            version: 1,
            slot: 3,
            vectors: NamedVectors::from([("".to_string(), Vector::Dense(vec![1.0; 8]))]),
            payload: Payload::new(),
        };
        let bytes = encode(&p).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        assert!(decode(&[9, 0, 0]).is_err());
    }
}
