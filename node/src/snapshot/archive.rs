//! Writing a staged directory into a snapshot archive and unpacking one with every file checked.
//! Both stream: no file is ever held in memory whole.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{corrupt, not_ours, FileEntry, Manifest, MANIFEST_FILE};
use crate::error::{Error, Result};

/// The largest manifest read (a manifest lists files, it is never near this).
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 (hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<FileEntry> {
    let mut hashing = Hashing {
        inner: io::sink(),
        hasher: Sha256::new(),
        written: 0,
    };
    io::copy(&mut BufReader::with_capacity(1 << 20, File::open(path)?), &mut hashing)?;
    Ok(FileEntry {
        size: hashing.written,
        sha256: hex(hashing.hasher.finalize()),
    })
}

/// Every regular file under `root`, as sorted `/`-separated relative paths.
fn files_under(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                let name = child
                    .to_str()
                    .ok_or_else(|| Error::internal(format!("file name is not UTF-8: {}", child.display())))?;
                out.push(name.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the files staged under `staging` into the archive `out`, `manifest` (completed with
/// their sizes and checksums) first. Returns the sha256 and size of the archive.
pub fn pack(staging: &Path, manifest: &mut Manifest, out: &Path) -> Result<FileEntry> {
    let files = files_under(staging)?;
    for rel in &files {
        manifest.files.insert(rel.clone(), hash_file(&staging.join(rel))?);
    }
    let manifest_bytes = serde_json::to_vec_pretty(manifest).map_err(Error::internal)?;

    let file = File::create(out)?;
    let mut builder = tar::Builder::new(Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        written: 0,
    });
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append_data(&mut header, MANIFEST_FILE, manifest_bytes.as_slice())?;
    for rel in &files {
        let mut f = File::open(staging.join(rel))?;
        builder.append_file(rel, &mut f)?;
    }
    let mut hashing = builder.into_inner()?;
    hashing.flush()?;
    let Hashing { inner, hasher, written } = hashing;
    inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(FileEntry {
        size: written,
        sha256: hex(hasher.finalize()),
    })
}

/// A path from an archive as a relative path of plain components (no `..`, no root).
fn safe_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return Err(corrupt(format!("entry `{}` escapes the archive", path.display()))),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(corrupt("an entry has an empty path"));
    }
    Ok(out)
}

/// Unpacks the archive at `archive` into `dest` (which must be empty or absent), checking that
/// it is a snapshot of this database, that it holds exactly the files its manifest lists, and
/// that each has the size and sha256 the manifest gives.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Manifest> {
    let reader = BufReader::with_capacity(1 << 20, File::open(archive)?);
    let mut tar = tar::Archive::new(reader);
    let mut entries = tar.entries().map_err(|e| not_ours(format!("not a tar archive: {e}")))?;
    let manifest = {
        let mut first = entries
            .next()
            .ok_or_else(|| not_ours("the archive is empty"))?
            .map_err(|e| not_ours(format!("not a tar archive: {e}")))?;
        let path = first.path().map_err(|e| not_ours(e.to_string()))?.into_owned();
        if path != Path::new(MANIFEST_FILE) {
            return Err(not_ours(format!(
                "its first entry is `{}`, not {MANIFEST_FILE}",
                path.display()
            )));
        }
        if first.size() > MAX_MANIFEST_BYTES {
            return Err(corrupt(format!("{MANIFEST_FILE} is {} bytes", first.size())));
        }
        let mut bytes = Vec::with_capacity(first.size() as usize);
        first.read_to_end(&mut bytes)?;
        Manifest::parse(&bytes)?
    };
    std::fs::create_dir_all(dest)?;
    let mut seen = BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("truncated or damaged archive: {e}")))?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            other => return Err(corrupt(format!("unexpected entry of type {other:?}"))),
        }
        let path = entry.path().map_err(|e| corrupt(e.to_string()))?.into_owned();
        let rel = safe_relative(&path)?;
        let key = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
        let expected = manifest
            .files
            .get(&key)
            .ok_or_else(|| corrupt(format!("`{key}` is not listed in the manifest")))?;
        if !seen.insert(key.clone()) {
            return Err(corrupt(format!("`{key}` appears twice")));
        }
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut hashing = Hashing {
            inner: BufWriter::new(File::create(&target)?),
            hasher: Sha256::new(),
            written: 0,
        };
        io::copy(&mut entry, &mut hashing).map_err(|e| corrupt(format!("reading `{key}`: {e}")))?;
        hashing.flush()?;
        let got = FileEntry {
            size: hashing.written,
            sha256: hex(hashing.hasher.finalize()),
        };
        if &got != expected {
            return Err(corrupt(format!(
                "`{key}` has {} bytes with sha256 {}, the manifest says {} bytes with sha256 {}",
                got.size, got.sha256, expected.size, expected.sha256
            )));
        }
    }
    if let Some(missing) = manifest.files.keys().find(|k| !seen.contains(*k)) {
        return Err(corrupt(format!("`{missing}` is missing (truncated archive?)")));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotKind;

    fn staged() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("collections/c/0/db")).unwrap();
        std::fs::write(dir.path().join("collections/c/0/db/CURRENT"), b"MANIFEST-1\n").unwrap();
        std::fs::write(dir.path().join("collections/c/0/graph"), vec![7u8; 100_000]).unwrap();
        dir
    }

    #[test]
    fn packs_and_unpacks_with_every_file_checked() {
        let staging = staged();
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("a.snapshot");
        let mut manifest = Manifest::new(SnapshotKind::Collection);
        let sum = pack(staging.path(), &mut manifest, &archive).unwrap();
        assert_eq!(sum, hash_file(&archive).unwrap());
        assert_eq!(manifest.files.len(), 2);

        let dest = out.path().join("x");
        let back = unpack(&archive, &dest).unwrap();
        assert_eq!(back.files, manifest.files);
        assert_eq!(
            std::fs::read(dest.join("collections/c/0/graph")).unwrap(),
            vec![7u8; 100_000]
        );
    }

    #[test]
    fn refuses_a_damaged_a_truncated_and_a_foreign_archive() {
        let staging = staged();
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("a.snapshot");
        pack(staging.path(), &mut Manifest::new(SnapshotKind::Collection), &archive).unwrap();
        let bytes = std::fs::read(&archive).unwrap();

        // A flipped byte inside the graph file's data.
        let at = bytes.windows(4).rposition(|w| w == [7, 7, 7, 7]).unwrap();
        let mut damaged = bytes.clone();
        damaged[at] = 8;
        std::fs::write(&archive, &damaged).unwrap();
        let err = unpack(&archive, &out.path().join("d")).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("graph"), "{err}");

        std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
        let err = unpack(&archive, &out.path().join("t")).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");

        // A tar without our manifest (as a Qdrant snapshot is), and not a tar at all.
        let mut foreign = tar::Builder::new(Vec::new());
        foreign
            .append_path_with_name(staging.path().join("collections/c/0/graph"), "config.json")
            .unwrap();
        std::fs::write(&archive, foreign.into_inner().unwrap()).unwrap();
        let err = unpack(&archive, &out.path().join("f")).unwrap_err().to_string();
        assert!(err.contains("not a snapshot of this database"), "{err}");
        std::fs::write(&archive, b"hello").unwrap();
        assert!(unpack(&archive, &out.path().join("g")).is_err());
    }

    #[test]
    fn refuses_entries_that_escape_the_destination() {
        assert!(safe_relative(Path::new("../etc/passwd")).is_err());
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
        assert_eq!(safe_relative(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
    }
}
