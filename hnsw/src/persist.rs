//! Saving and loading an index: a small header, the code (its kind and parameters), then every
//! node's key, level, flags, level-0 record and upper links, little-endian, and a checksum of
//! everything before it. Loading checks the checksum, every link and count, and the code's
//! parameters, so a damaged file is an error, never a bad graph.
//!
//! Version 1 files (no code, no checksum: f32 records) still load, as f32 graphs.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::codec::{AnyCode, Precision};
use crate::graph::{zeroed_u32, Hnsw, Params, MAX_LEVEL};
use crate::kernels::Metric;
use crate::{Error, Result};

const MAGIC_V1: &[u8; 8] = b"QHNSW001";
const MAGIC: &[u8; 8] = b"QHNSW002";
/// A code's parameter block is at most this long (a product code's codebooks are the largest).
const MAX_PARAMS: u32 = 1 << 30;

/// FNV-1a, 64 bits: a checksum of the bytes written or read through it.
struct Checksum<T> {
    inner: T,
    hash: u64,
}

impl<T> Checksum<T> {
    fn new(inner: T) -> Self {
        Checksum {
            inner,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl<W: Write> Write for Checksum<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Checksum<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.add(&buf[..n]);
        Ok(n)
    }
}

fn put_u32(w: &mut impl Write, v: u32) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn get_u32(r: &mut impl Read) -> Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_u8(r: &mut impl Read) -> Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u64(r: &mut impl Read) -> Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

impl Hnsw {
    /// Writes the index to `path` (through a temporary file, renamed into place). Inserts must
    /// not run meanwhile.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let mut params = Vec::new();
        self.code.write_params(&mut params);
        // A multivector graph's rows are its code's parameters: they may outgrow the block.
        if params.len() > MAX_PARAMS as usize {
            return Err(Error::Params(format!(
                "the index's code parameters ({} bytes) are too large to save",
                params.len()
            )));
        }
        {
            let mut w = Checksum::new(BufWriter::new(std::fs::File::create(&tmp)?));
            let p = self.params;
            w.write_all(MAGIC)?;
            for v in [p.dim, p.m, p.ef_construct] {
                put_u32(&mut w, v as u32)?;
            }
            w.write_all(&[p.metric.code()])?;
            w.write_all(&[self.code.kind()])?;
            put_u32(&mut w, params.len() as u32)?;
            w.write_all(&params)?;
            self.write_nodes(&mut w)?;
            let sum = w.hash;
            w.write_all(&sum.to_le_bytes())?;
            w.flush()?;
            w.inner.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    fn write_nodes(&self, w: &mut impl Write) -> Result<()> {
        let allocated = self.allocated() as u32;
        put_u32(w, allocated)?;
        w.write_all(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        for id in 0..allocated {
            let i = id as usize;
            put_u32(w, self.keys[i].load(Ordering::Acquire))?;
            w.write_all(&[
                self.levels[i].load(Ordering::Acquire),
                self.flags[i].load(Ordering::Acquire),
            ])?;
            let record = &self.level0[i * self.stride..(i + 1) * self.stride];
            for word in record {
                put_u32(w, word.load(Ordering::Acquire))?;
            }
            if let Some(upper) = self.upper[i].get() {
                for word in upper.iter() {
                    put_u32(w, word.load(Ordering::Acquire))?;
                }
            }
        }
        Ok(())
    }

    /// Reads an index written by `save` (or a version-1 file), with room for `extra` more nodes.
    pub fn load(path: &Path, extra: usize) -> Result<Self> {
        let file = std::fs::File::open(path)?;
        let file_len = file.metadata()?.len();
        let mut r = Checksum::new(BufReader::new(file));
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        let v1 = match &magic {
            m if m == MAGIC => false,
            m if m == MAGIC_V1 => true,
            _ => return Err(Error::Format("not an index file of a known version".into())),
        };
        let dim = get_u32(&mut r)? as usize;
        let m = get_u32(&mut r)? as usize;
        let ef_construct = get_u32(&mut r)? as usize;
        let metric = Metric::from_code(get_u8(&mut r)?).ok_or_else(|| Error::Format("unknown metric".into()))?;
        let params = Params {
            dim,
            m,
            ef_construct,
            metric,
        };
        params.validate().map_err(|e| Error::Format(e.to_string()))?;
        let code = if v1 {
            AnyCode::whole(dim, metric, Precision::F32)
        } else {
            let kind = get_u8(&mut r)?;
            let len = get_u32(&mut r)?;
            if len > MAX_PARAMS || len as u64 > file_len {
                return Err(Error::Format("the code's parameters are too long".into()));
            }
            let mut bytes = vec![0u8; len as usize];
            r.read_exact(&mut bytes)?;
            AnyCode::read(kind, dim, metric, &bytes)?
        };
        let allocated = get_u32(&mut r)?;
        // Every node takes at least its key, level, flags and record: refuse a count the file
        // cannot hold before allocating for it.
        let node_bytes = 6 + 4 * (1 + 2 * m + code.words()) as u64;
        if allocated as u64 * node_bytes > file_len {
            return Err(Error::Format(format!("{allocated} nodes do not fit in the file")));
        }
        let entry = get_u64(&mut r)?;
        let index = Hnsw::with_code(params, allocated as usize + extra.max(1), code)?;
        index.read_nodes(&mut r, allocated, entry)?;
        if !v1 {
            let sum = r.hash;
            if get_u64(&mut r)? != sum {
                return Err(Error::Format("checksum mismatch".into()));
            }
        }
        let mut rest = [0u8; 1];
        if r.read(&mut rest)? != 0 {
            return Err(Error::Format("trailing bytes".into()));
        }
        Ok(index)
    }

    fn read_nodes(&self, r: &mut impl Read, allocated: u32, entry: u64) -> Result<()> {
        let bad = |what: String| Error::Format(what);
        let m = self.params.m;
        let mut keys = self.key_map.write();
        let mut deleted = 0;
        for id in 0..allocated {
            let i = id as usize;
            let key = get_u32(r)?;
            let level = get_u8(r)? as usize;
            let flags = get_u8(r)?;
            if level > MAX_LEVEL {
                return Err(bad(format!("node {id} has level {level}")));
            }
            self.keys[i].store(key, Ordering::Relaxed);
            self.levels[i].store(level as u8, Ordering::Relaxed);
            self.flags[i].store(flags, Ordering::Relaxed);
            for word in &self.level0[i * self.stride..(i + 1) * self.stride] {
                word.store(get_u32(r)?, Ordering::Relaxed);
            }
            if level > 0 {
                let upper = zeroed_u32(level * (1 + m));
                for word in upper.iter() {
                    word.store(get_u32(r)?, Ordering::Relaxed);
                }
                let _ = self.upper[i].set(upper);
            }
            if flags & 1 == 0 {
                if let Some(old) = keys.insert(key, id) {
                    return Err(bad(format!("key {key} is held by nodes {old} and {id}")));
                }
            } else {
                deleted += 1;
            }
        }
        drop(keys);
        // Every link must name an allocated node, every count fit its list.
        for id in 0..allocated {
            for level in 0..=self.levels[id as usize].load(Ordering::Relaxed) as usize {
                let list = self.link_list(id, level);
                let Some(count) = list.first() else {
                    return Err(bad(format!("node {id} lacks level {level}")));
                };
                let n = count.load(Ordering::Relaxed) as usize;
                if n >= list.len() || list[1..=n].iter().any(|l| l.load(Ordering::Relaxed) >= allocated) {
                    return Err(bad(format!("node {id} has a broken link list on level {level}")));
                }
            }
        }
        if allocated > 0 {
            let (eid, elevel) = (entry as u32, (entry >> 32) as usize);
            if eid >= allocated || self.levels[eid as usize].load(Ordering::Relaxed) as usize != elevel {
                return Err(bad("entry point does not match its node".into()));
            }
            self.entry.store(entry, Ordering::Release);
        }
        self.allocated.store(allocated, Ordering::Release);
        self.deleted.store(deleted, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_index_loads_with_the_same_answers_and_damage_is_an_error() {
        let params = Params {
            dim: 8,
            m: 8,
            ef_construct: 50,
            metric: Metric::InnerProduct,
        };
        let index = Hnsw::new(params, 500).unwrap();
        let mut state = 9u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let data: Vec<Vec<f32>> = (0..500).map(|_| (0..8).map(|_| next()).collect()).collect();
        for (i, v) in data.iter().enumerate() {
            index.add(i as u32 * 10, v).unwrap();
        }
        index.remove(30);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph.hnsw");
        index.save(&path).unwrap();
        let loaded = Hnsw::load(&path, 100).unwrap();
        assert_eq!(loaded.params(), params);
        assert_eq!((loaded.len(), loaded.tombstones()), (499, 1));
        assert!(loaded.capacity() >= 600);
        assert_eq!(loaded.get(40).unwrap(), data[4]);
        for q in data.iter().take(20) {
            assert_eq!(
                loaded.search(q, 5, 32, None).unwrap(),
                index.search(q, 5, 32, None).unwrap()
            );
        }
        loaded.add(7, &data[0]).unwrap();
        assert!(loaded.contains(7));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Hnsw::load(&path, 0).is_err());
        let mut broken = bytes.clone();
        // The first link of node 0 (header 8+13, code kind 1, params length 4 (no params for
        // f32), allocated 4, entry 8; then key 4, level+flags 2, count 4).
        let at = 8 + 13 + 1 + 4 + 4 + 8 + 4 + 2 + 4;
        broken[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &broken).unwrap();
        assert!(matches!(Hnsw::load(&path, 0), Err(Error::Format(_))));
        // The same damage under a matching checksum is caught by the link checks.
        let n = broken.len() - 8;
        let sum = fnv(&broken[..n]);
        broken[n..].copy_from_slice(&sum.to_le_bytes());
        std::fs::write(&path, &broken).unwrap();
        match Hnsw::load(&path, 0) {
            Err(Error::Format(what)) => assert!(what.contains("broken link list"), "{what}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Any flipped bit, in a vector too, fails the checksum.
        for at in [30, bytes.len() / 2, bytes.len() - 9] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            std::fs::write(&path, &flipped).unwrap();
            assert!(matches!(Hnsw::load(&path, 0), Err(Error::Format(_))), "byte {at}");
        }
        std::fs::write(&path, b"nonsense").unwrap();
        assert!(Hnsw::load(&path, 0).is_err());
    }

    fn fnv(bytes: &[u8]) -> u64 {
        let mut c = Checksum::new(());
        c.add(bytes);
        c.hash
    }

    /// Writes `index` (an f32 graph) in the version-1 format: no code block, no checksum.
    fn save_v1(index: &Hnsw, path: &Path) {
        let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
        let p = index.params;
        w.write_all(MAGIC_V1).unwrap();
        for v in [p.dim, p.m, p.ef_construct] {
            put_u32(&mut w, v as u32).unwrap();
        }
        w.write_all(&[p.metric.code()]).unwrap();
        index.write_nodes(&mut w).unwrap();
        w.flush().unwrap();
    }

    #[test]
    fn version_1_files_load_as_f32_graphs() {
        let params = Params {
            dim: 12,
            m: 6,
            ef_construct: 40,
            metric: Metric::L2sq,
        };
        let index = Hnsw::new(params, 300).unwrap();
        let data: Vec<Vec<f32>> = (0..300)
            .map(|i| (0..12).map(|j| ((i * 31 + j * 17) % 97) as f32 / 97.0).collect())
            .collect();
        for (i, v) in data.iter().enumerate() {
            index.add(i as u32, v).unwrap();
        }
        index.remove(5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.hnsw");
        save_v1(&index, &path);
        let loaded = Hnsw::load(&path, 10).unwrap();
        assert_eq!(loaded.quantization(), None);
        assert_eq!((loaded.params(), loaded.len(), loaded.tombstones()), (params, 299, 1));
        assert_eq!(loaded.get(7).unwrap(), data[7]);
        assert!(loaded.holds(7, &data[7]));
        for q in data.iter().step_by(15) {
            assert_eq!(
                loaded.search(q, 5, 32, None).unwrap(),
                index.search(q, 5, 32, None).unwrap()
            );
        }
        // Saved again, it is a version-2 file with the same answers.
        let v2 = dir.path().join("v2.hnsw");
        loaded.save(&v2).unwrap();
        assert_eq!(&std::fs::read(&v2).unwrap()[..8], MAGIC);
        let again = Hnsw::load(&v2, 0).unwrap();
        assert_eq!(
            again.search(&data[3], 5, 32, None).unwrap(),
            index.search(&data[3], 5, 32, None).unwrap()
        );
        // Damage to a version-1 file (no checksum) is still caught by the structure checks.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = 8 + 13 + 4 + 8 + 4 + 2 + 4;
        bytes[at..at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Hnsw::load(&path, 0), Err(Error::Format(_))));
    }
}
