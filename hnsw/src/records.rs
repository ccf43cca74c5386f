//! Where a graph's level-0 records (links and vector codes) live: on the heap, or in a file
//! mapped into memory, whose pages the kernel may write back and evict under memory pressure
//! (Qdrant's quantized vectors kept "on disk": not `always_ram`, or the `cached` / `cold`
//! memory tiers). Searches read both the same way, as a slice of atomic words.
//!
//! The file is a working copy (the index is saved elsewhere), created under a unique name and
//! unlinked at once: it lives as long as its mapping, never collides with another graph's
//! (an old and a new copy of a shard may be open at once), and leaves nothing behind after a
//! crash.

use std::fs::{File, OpenOptions};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapMut;

use crate::Result;

pub(crate) enum Records {
    Heap(Box<[AtomicU32]>),
    Mapped {
        map: MmapMut,
        /// Kept open (its name is gone) so the mapping can grow (`grow`).
        file: File,
        /// Where it was asked to live: the graph's identity for `Hnsw::map_records`.
        path: PathBuf,
        words: usize,
    },
}

/// A new file named after `path`, opened and then unlinked.
fn anonymous_file(path: &Path) -> std::io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(
            ".{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new().read(true).write(true).create_new(true).open(&name) {
            Ok(file) => {
                std::fs::remove_file(&name)?;
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `n` zeroed words on the heap.
pub(crate) fn zeroed_u32(n: usize) -> Box<[AtomicU32]> {
    let plain = vec![0u32; n].into_boxed_slice();
    // SAFETY: AtomicU32 has the same size, alignment and bit validity as u32. Zeroed memory comes
    // from calloc, so untouched capacity costs no resident pages.
    unsafe { Box::from_raw(Box::into_raw(plain) as *mut [AtomicU32]) }
}

impl Records {
    pub fn heap(words: usize) -> Records {
        Records::Heap(zeroed_u32(words))
    }

    /// A mapping of a new file beside `path` holding `words` words: `from`'s, then zeroes.
    pub fn mapped(path: &Path, words: usize, from: &[AtomicU32]) -> Result<Records> {
        let file = anonymous_file(path)?;
        file.set_len((words.max(1) * 4) as u64)?;
        // SAFETY: the file is this graph's own, created just now and already unlinked: nothing
        // else can map or write it.
        let map = unsafe { MmapMut::map_mut(&file)? };
        let records = Records::Mapped {
            map,
            file,
            path: path.to_path_buf(),
            words,
        };
        for (d, s) in records.iter().zip(from) {
            d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Ok(records)
    }

    /// The mapped file's path, if the records are mapped.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Records::Heap(_) => None,
            Records::Mapped { path, .. } => Some(path),
        }
    }

    /// Makes room for `words` words (more than now), zeroed past the old ones.
    pub fn grow(&mut self, words: usize) -> Result<()> {
        match self {
            Records::Heap(old) => {
                let new = zeroed_u32(words);
                for (d, s) in new.iter().zip(old.iter()) {
                    d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                *old = new;
            }
            Records::Mapped {
                map, file, words: w, ..
            } => {
                // The file grows with zeroes; its old words stay where they were.
                file.set_len((words * 4) as u64)?;
                // SAFETY: as in `mapped`: the graph's own file; the old mapping is replaced
                // (and unmapped) under `&mut self`, so nobody reads it any more.
                *map = unsafe { MmapMut::map_mut(&*file)? };
                *w = words;
            }
        }
        Ok(())
    }

    /// Bytes held on the heap (a mapping's pages belong to the page cache).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Records::Heap(b) => b.len() * 4,
            Records::Mapped { .. } => 0,
        }
    }

    /// Bytes of the mapped file (none on the heap).
    pub fn mapped_bytes(&self) -> usize {
        match self {
            Records::Heap(_) => 0,
            Records::Mapped { words, .. } => words * 4,
        }
    }
}

impl Deref for Records {
    type Target = [AtomicU32];

    #[inline(always)]
    fn deref(&self) -> &[AtomicU32] {
        match self {
            Records::Heap(b) => b,
            Records::Mapped { map, words, .. } => {
                // SAFETY: the mapping is page-aligned, at least `words * 4` bytes long and
                // lives as long as `self`; AtomicU32 accepts every bit pattern, and all access
                // to the words goes through atomics.
                unsafe { std::slice::from_raw_parts(map.as_ptr() as *const AtomicU32, *words) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quantized_tests::uniform;
    use crate::{Hnsw, Metric, Params, Quantization};

    #[test]
    fn mapped_records_answer_like_heap_records_grow_save_and_leave_no_file() {
        let dim = 24;
        let data = uniform(3000, dim, 4);
        let params = Params {
            dim,
            m: 12,
            ef_construct: 64,
            metric: Metric::L2sq,
        };
        let sample: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let mut index = Hnsw::quantized(params, 1000, &Quantization::Scalar { quantile: None }, &sample).unwrap();
        for (i, v) in data[..1000].iter().enumerate() {
            index.add(i as u32, v).unwrap();
        }
        let before: Vec<_> = data[..20]
            .iter()
            .map(|q| index.search(q, 10, 64, None).unwrap())
            .collect();
        let heap = index.memory_usage();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records");
        index.map_records(&path).unwrap();
        index.map_records(&path).unwrap(); // mapping again where it is mapped changes nothing
        assert_eq!(index.records_path(), Some(path.as_path()));
        assert!(index.mapped_memory() > 0 && index.memory_usage() + index.mapped_memory() <= heap + 64);
        for (q, want) in data[..20].iter().zip(&before) {
            assert_eq!(&index.search(q, 10, 64, None).unwrap(), want);
        }
        // Growing a mapped graph grows its file; inserts and searches go on as before.
        index.reserve(3000).unwrap();
        assert_eq!(index.mapped_memory(), index.capacity() * index.stride * 4);
        for (i, v) in data.iter().enumerate().skip(1000) {
            index.add(i as u32, v).unwrap();
        }
        assert_eq!(index.search(&data[2500], 1, 64, None).unwrap()[0].0, 2500);
        // Saved from the mapping, loaded onto the heap: the same graph.
        let saved = dir.path().join("g.hnsw");
        index.save(&saved).unwrap();
        let loaded = Hnsw::load(&saved, 0).unwrap();
        assert_eq!(loaded.records_path(), None);
        let answers = |g: &Hnsw| -> Vec<_> { data[..20].iter().map(|q| g.search(q, 10, 64, None).unwrap()).collect() };
        assert_eq!(answers(&loaded), answers(&index));
        index.unmap_records();
        assert!(index.records_path().is_none() && index.mapped_memory() == 0);
        assert_eq!(answers(&loaded), answers(&index));
        // The working files never show in the directory: unlinked as soon as they are mapped.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("g.hnsw")]);
    }
}
