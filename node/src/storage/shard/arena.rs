//! The dense vectors of one name, `dim` floats per slot: what exact scans, rescoring and reads
//! use. Kept in RAM, or with `on_disk: true` in a flat file written with `pwrite` and read
//! through a shared read-only mapping, so the original vectors of a quantized index take page
//! cache (which the kernel may drop) instead of anonymous memory, and a rescoring read of a
//! cached page costs no system call. RocksDB stays the durable copy: the file is rewritten from
//! it whenever the shard opens.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::collection::{Datatype, VectorParams};
use crate::model::vector::Distance;

pub(crate) struct DenseArena {
    pub dim: usize,
    pub distance: Distance,
    /// Qdrant's `full_scan_threshold` (KB): filtered searches whose candidates are smaller
    /// than this are answered by an exact scan.
    pub full_scan_kb: usize,
    /// Not-yet-indexed vectors up to this size (KB) are still searched with `indexed_only`
    /// (Qdrant: the larger of `indexing_threshold` and `full_scan_threshold`).
    pub unindexed_search_kb: usize,
    store: Store,
    present: Vec<bool>,
    /// Cosine over uint8 vectors: the arena holds them normalised (what search compares) and
    /// keeps each norm here, so the integers written can be served back.
    norms: Option<Vec<f32>>,
}

enum Store {
    Ram(Vec<f32>),
    Disk(DiskVectors),
}

/// Slot `s` at byte `s * dim * 4`, f32 in native (little-endian) order. Writes go through the
/// file; the mapping sees them (one page cache). The file grows by doubling, and the mapping is
/// renewed when it does: `set` takes `&mut self`, so no read holds the old mapping then.
struct DiskVectors {
    file: File,
    map: Option<memmap2::Mmap>,
}

impl DiskVectors {
    fn mapped_len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    fn ensure_mapped(&mut self, end: usize) -> std::io::Result<()> {
        if end <= self.mapped_len() {
            return Ok(());
        }
        let len = end.max(self.mapped_len() * 2).max(1 << 20);
        self.file.set_len(len as u64)?;
        // SAFETY: the file is private to this arena (created truncated by it, in the shard's
        // own directory) and only ever grows while mapped.
        self.map = Some(unsafe { memmap2::Mmap::map(&self.file)? });
        Ok(())
    }

    fn read(&self, offset: usize, len: usize) -> Option<&[f32]> {
        let bytes = self.map.as_ref()?.get(offset..offset + len * 4)?;
        bytemuck::try_cast_slice(bytes).ok()
    }
}

impl DenseArena {
    pub fn new(dim: usize, distance: Distance, full_scan_kb: usize, unindexed_search_kb: usize) -> Self {
        DenseArena {
            dim,
            distance,
            full_scan_kb,
            unindexed_search_kb,
            store: Store::Ram(Vec::new()),
            present: Vec::new(),
            norms: None,
        }
    }

    /// Keeps the vectors in a new (truncated) file at `path` instead of RAM.
    pub fn on_disk(mut self, path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::internal(format!("opening vector file {}: {e}", path.display())))?;
        self.store = Store::Disk(DiskVectors { file, map: None });
        Ok(self)
    }

    /// Makes the arena normalise what it is given and remember the norms (uint8 + Cosine).
    pub fn keeping_norms(mut self) -> Self {
        self.norms = Some(Vec::new());
        self
    }

    /// Bytes of vectors the arena holds in RAM.
    pub fn ram_bytes(&self) -> usize {
        let data = match &self.store {
            Store::Ram(v) => v.capacity() * 4,
            Store::Disk(_) => 0,
        };
        data + self.present.capacity() + self.norms.as_ref().map_or(0, |n| n.capacity() * 4)
    }

    /// The vector of `slot` as it was written (differs from `get` only when norms are kept).
    pub fn output(&self, slot: u32) -> Option<Vec<f32>> {
        let v = self.get(slot)?;
        Some(match &self.norms {
            Some(norms) => restore_norm(&v, norms[slot as usize]),
            None => v.into_owned(),
        })
    }

    pub fn has(&self, slot: u32) -> bool {
        self.present.get(slot as usize).copied().unwrap_or(false)
    }

    pub fn get(&self, slot: u32) -> Option<Cow<'_, [f32]>> {
        if !self.has(slot) {
            return None;
        }
        let s = slot as usize;
        match &self.store {
            Store::Ram(data) => Some(Cow::Borrowed(&data[s * self.dim..(s + 1) * self.dim])),
            Store::Disk(disk) => {
                let v = disk.read(s * self.dim * 4, self.dim);
                if v.is_none() {
                    tracing::error!(slot, "a vector is missing from its file");
                }
                v.map(Cow::Borrowed)
            }
        }
    }

    pub fn set(&mut self, slot: u32, v: &[f32]) -> Result<()> {
        let s = slot as usize;
        if self.present.len() <= s {
            self.present.resize(s + 1, false);
        }
        let mut owned;
        let v = match &mut self.norms {
            Some(norms) => {
                if norms.len() <= s {
                    norms.resize(s + 1, 0.0);
                }
                owned = v.to_vec();
                norms[s] = normalize_keeping_norm(&mut owned);
                &owned[..]
            }
            None => v,
        };
        match &mut self.store {
            Store::Ram(data) => {
                if data.len() < (s + 1) * self.dim {
                    data.resize((s + 1) * self.dim, 0.0);
                }
                data[s * self.dim..(s + 1) * self.dim].copy_from_slice(v);
            }
            Store::Disk(disk) => {
                let offset = s * self.dim * 4;
                disk.ensure_mapped(offset + self.dim * 4)
                    .and_then(|()| disk.file.write_all_at(bytemuck::cast_slice(v), offset as u64))
                    .map_err(|e| Error::internal(format!("writing a vector to its file: {e}")))?;
            }
        }
        self.present[s] = true;
        Ok(())
    }

    pub fn clear(&mut self, slot: u32) {
        if let Some(p) = self.present.get_mut(slot as usize) {
            *p = false;
        }
    }
}

/// Whether vectors of `params` arrive unnormalised for a Cosine space (uint8, as in Qdrant).
pub(crate) fn keeps_norms(params: &VectorParams) -> bool {
    params.distance == Distance::Cosine && params.datatype() == Datatype::Uint8
}

/// Normalises `v` in place and returns its former norm.
pub(crate) fn normalize_keeping_norm(v: &mut [f32]) -> f32 {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// The integers a normalised uint8 vector was made from.
pub(crate) fn restore_norm(v: &[f32], norm: f32) -> Vec<f32> {
    let scale = if norm > f32::EPSILON { norm } else { 1.0 };
    v.iter().map(|x| (x * scale).round()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_and_ram_arenas_hold_the_same_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let ram = DenseArena::new(3, Distance::Dot, 10, 10);
        let disk = DenseArena::new(3, Distance::Dot, 10, 10)
            .on_disk(&dir.path().join("v.f32"))
            .unwrap();
        for mut arena in [ram, disk] {
            arena.set(4, &[1.0, 2.0, 3.0]).unwrap();
            arena.set(1, &[-1.5, 0.0, 7.25]).unwrap();
            assert_eq!(arena.get(4).unwrap().as_ref(), &[1.0, 2.0, 3.0]);
            assert_eq!(arena.get(1).unwrap().as_ref(), &[-1.5, 0.0, 7.25]);
            assert!(arena.get(0).is_none() && arena.get(9).is_none());
            arena.set(4, &[0.0, 0.5, 0.0]).unwrap();
            assert_eq!(arena.output(4).unwrap(), vec![0.0, 0.5, 0.0]);
            arena.clear(1);
            assert!(arena.get(1).is_none());
        }
    }

    #[test]
    fn a_disk_arena_keeps_its_vectors_out_of_ram() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = DenseArena::new(512, Distance::Dot, 10, 10)
            .on_disk(&dir.path().join("v.f32"))
            .unwrap();
        let mut ram = DenseArena::new(512, Distance::Dot, 10, 10);
        for slot in 0..1000 {
            disk.set(slot, &[slot as f32; 512]).unwrap();
            ram.set(slot, &[slot as f32; 512]).unwrap();
        }
        assert!(
            disk.ram_bytes() * 20 < ram.ram_bytes(),
            "{} vs {}",
            disk.ram_bytes(),
            ram.ram_bytes()
        );
        // 2 MB of vectors: the file grew and was mapped again on the way; all of them read back.
        for slot in 0..1000 {
            assert_eq!(disk.get(slot).unwrap().as_ref(), ram.get(slot).unwrap().as_ref());
        }
    }
}
