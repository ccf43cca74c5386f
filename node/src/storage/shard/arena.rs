//! The dense vectors of one name, `dim` values per slot in the collection's `datatype` (f32,
//! f16 or bytes: a float16 collection takes half the memory, a uint8 one a quarter): what exact
//! scans, rescoring and reads use. Kept in RAM, or with `on_disk: true` in a flat file written with `pwrite` and read
//! through a shared read-only mapping, so the original vectors of a quantized index take page
//! cache (which the kernel may drop) instead of anonymous memory, and a rescoring read of a
//! cached page costs no system call. RocksDB stays the durable copy: the file is rewritten from
//! it whenever the shard opens.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

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
    /// The element type values are kept in (`datatype`): 4, 2 or 1 bytes each.
    element: Datatype,
    /// uint8 under Cosine: the integers are kept as written and normalised when read (what
    /// search compares), so they can be served back.
    normalise_on_read: bool,
    store: Store,
    present: Vec<bool>,
}

enum Store {
    Ram(Values),
    Disk(DiskVectors),
}

/// Vectors held in RAM, `dim` values per slot, in the arena's element type.
enum Values {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    U8(Vec<u8>),
}

/// One vector's values as stored.
enum Raw<'a> {
    F32(&'a [f32]),
    F16(&'a [half::f16]),
    U8(&'a [u8]),
}

/// Slot `s` at byte `s * dim * width`, values in native (little-endian) order. Writes go
/// through the file; the mapping sees them (one page cache). The file grows by doubling, and
/// the mapping is renewed when it does: `set` takes `&mut self`, so no read holds the old
/// mapping then.
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

    fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.map.as_ref()?.get(offset..offset + len)
    }
}

fn width(element: Datatype) -> usize {
    match element {
        Datatype::Float32 => 4,
        Datatype::Float16 => 2,
        Datatype::Uint8 => 1,
    }
}

impl DenseArena {
    pub fn new(
        dim: usize,
        distance: Distance,
        element: Datatype,
        full_scan_kb: usize,
        unindexed_search_kb: usize,
    ) -> Self {
        let values = match element {
            Datatype::Float32 => Values::F32(Vec::new()),
            Datatype::Float16 => Values::F16(Vec::new()),
            Datatype::Uint8 => Values::U8(Vec::new()),
        };
        DenseArena {
            dim,
            distance,
            full_scan_kb,
            unindexed_search_kb,
            element,
            normalise_on_read: element == Datatype::Uint8 && distance == Distance::Cosine,
            store: Store::Ram(values),
            present: Vec::new(),
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

    /// KB that `vectors` vectors take in this arena's element type (what Qdrant's
    /// `full_scan_threshold` and `indexing_threshold` measure).
    pub fn kb_of(&self, vectors: usize) -> usize {
        vectors * self.dim * width(self.element) / 1024
    }

    /// Bytes of vectors the arena holds in RAM.
    pub fn ram_bytes(&self) -> usize {
        let data = match &self.store {
            Store::Ram(Values::F32(v)) => v.capacity() * 4,
            Store::Ram(Values::F16(v)) => v.capacity() * 2,
            Store::Ram(Values::U8(v)) => v.capacity(),
            Store::Disk(_) => 0,
        };
        data + self.present.capacity()
    }

    pub fn has(&self, slot: u32) -> bool {
        self.present.get(slot as usize).copied().unwrap_or(false)
    }

    /// The stored values of `slot`, if present.
    fn raw(&self, slot: u32) -> Option<Raw<'_>> {
        if !self.has(slot) {
            return None;
        }
        let (s, dim) = (slot as usize, self.dim);
        let raw = match &self.store {
            Store::Ram(Values::F32(v)) => Raw::F32(&v[s * dim..(s + 1) * dim]),
            Store::Ram(Values::F16(v)) => Raw::F16(&v[s * dim..(s + 1) * dim]),
            Store::Ram(Values::U8(v)) => Raw::U8(&v[s * dim..(s + 1) * dim]),
            Store::Disk(disk) => {
                let w = width(self.element);
                // The mapping is page-aligned and slots are whole multiples of the width, so
                // the casts below cannot fail for alignment.
                let raw = disk.bytes(s * dim * w, dim * w).and_then(|b| match self.element {
                    Datatype::Float32 => bytemuck::try_cast_slice(b).ok().map(Raw::F32),
                    Datatype::Float16 => bytemuck::try_cast_slice::<u8, u16>(b)
                        .ok()
                        .map(|h| Raw::F16(h.reinterpret_cast())),
                    Datatype::Uint8 => Some(Raw::U8(b)),
                });
                if raw.is_none() {
                    tracing::error!(slot, "a vector is missing from its file");
                }
                raw?
            }
        };
        Some(raw)
    }

    /// The vector of `slot` as search compares it (uint8 under Cosine: normalised).
    pub fn get(&self, slot: u32) -> Option<Cow<'_, [f32]>> {
        Some(match self.raw(slot)? {
            Raw::F32(v) => Cow::Borrowed(v),
            Raw::F16(v) => {
                let mut out = vec![0.0; v.len()];
                v.convert_to_f32_slice(&mut out);
                Cow::Owned(out)
            }
            Raw::U8(v) => {
                let mut out: Vec<f32> = v.iter().map(|b| f32::from(*b)).collect();
                if self.normalise_on_read {
                    normalize_keeping_norm(&mut out);
                }
                Cow::Owned(out)
            }
        })
    }

    /// The vector of `slot` as it was written (differs from `get` only for uint8 + Cosine).
    pub fn output(&self, slot: u32) -> Option<Vec<f32>> {
        match self.raw(slot)? {
            Raw::U8(v) => Some(v.iter().map(|b| f32::from(*b)).collect()),
            _ => self.get(slot).map(Cow::into_owned),
        }
    }

    /// Stores `v` (already rounded to the element type; uint8 as written, not normalised).
    pub fn set(&mut self, slot: u32, v: &[f32]) -> Result<()> {
        let (s, dim) = (slot as usize, self.dim);
        if self.present.len() <= s {
            self.present.resize(s + 1, false);
        }
        let range = s * dim..(s + 1) * dim;
        match &mut self.store {
            Store::Ram(Values::F32(data)) => {
                grow(data, range.end);
                data[range].copy_from_slice(v);
            }
            Store::Ram(Values::F16(data)) => {
                grow(data, range.end);
                data[range].convert_from_f32_slice(v);
            }
            Store::Ram(Values::U8(data)) => {
                grow(data, range.end);
                data[range].iter_mut().zip(v).for_each(|(b, x)| *b = to_u8(*x));
            }
            Store::Disk(disk) => {
                // f32 values are written as they are; the compact types are encoded first.
                let bytes: Cow<'_, [u8]> = match self.element {
                    Datatype::Float32 => Cow::Borrowed(bytemuck::cast_slice(v)),
                    Datatype::Float16 => v
                        .iter()
                        .flat_map(|x| half::f16::from_f32(*x).to_bits().to_ne_bytes())
                        .collect(),
                    Datatype::Uint8 => v.iter().map(|x| to_u8(*x)).collect(),
                };
                let offset = s * dim * width(self.element);
                disk.ensure_mapped(offset + bytes.len())
                    .and_then(|()| disk.file.write_all_at(&bytes, offset as u64))
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

fn grow<T: Copy + Default>(data: &mut Vec<T>, len: usize) {
    if data.len() < len {
        data.resize(len, T::default());
    }
}

/// A uint8 value (validation has made it a whole number 0..=255 already).
fn to_u8(x: f32) -> u8 {
    x.round().clamp(0.0, 255.0) as u8
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
        let ram = DenseArena::new(3, Distance::Dot, Datatype::Float32, 10, 10);
        let disk = DenseArena::new(3, Distance::Dot, Datatype::Float32, 10, 10)
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
    fn compact_element_types_keep_their_values_in_ram_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        for on_disk in [false, true] {
            let arena = |distance, element| {
                let a = DenseArena::new(4, distance, element, 10, 10);
                if on_disk {
                    a.on_disk(&dir.path().join(format!("{element:?}{distance:?}"))).unwrap()
                } else {
                    a
                }
            };
            let mut f16 = arena(Distance::Dot, Datatype::Float16);
            let v = [0.1f32, -2.5, 1000.25, 3.0e-5];
            f16.set(2, &v).unwrap();
            let want: Vec<f32> = v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect();
            assert_eq!(f16.get(2).unwrap().as_ref(), &want[..]);
            assert_eq!(f16.output(2).unwrap(), want);

            let mut dot = arena(Distance::Dot, Datatype::Uint8);
            dot.set(0, &[0.0, 7.0, 255.0, 1.0]).unwrap();
            assert_eq!(dot.get(0).unwrap().as_ref(), &[0.0, 7.0, 255.0, 1.0]);
            // Cosine compares the normalised vector and serves back the integers written.
            let mut cos = arena(Distance::Cosine, Datatype::Uint8);
            cos.set(1, &[3.0, 0.0, 4.0, 0.0]).unwrap();
            assert_eq!(cos.get(1).unwrap().as_ref(), &[0.6, 0.0, 0.8, 0.0]);
            assert_eq!(cos.output(1).unwrap(), vec![3.0, 0.0, 4.0, 0.0]);
            assert!(cos.get(0).is_none());
        }
        // In RAM: 2 and 1 bytes a value against f32's 4.
        let [f32_bytes, f16_bytes, u8_bytes] = [Datatype::Float32, Datatype::Float16, Datatype::Uint8].map(|element| {
            let mut a = DenseArena::new(256, Distance::Dot, element, 10, 10);
            for slot in 0..100 {
                a.set(slot, &[1.0; 256]).unwrap();
            }
            a.ram_bytes() - a.present.capacity()
        });
        assert!(u8_bytes >= 100 * 256);
        assert_eq!((f32_bytes, f16_bytes), (4 * u8_bytes, 2 * u8_bytes));
    }

    #[test]
    fn a_disk_arena_keeps_its_vectors_out_of_ram() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = DenseArena::new(512, Distance::Dot, Datatype::Float32, 10, 10)
            .on_disk(&dir.path().join("v.f32"))
            .unwrap();
        let mut ram = DenseArena::new(512, Distance::Dot, Datatype::Float32, 10, 10);
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
