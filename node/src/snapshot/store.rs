//! Snapshot files on disk: naming, listing, describing, deleting, and the cleanup at start.
//!
//! A snapshot is written as `<name>.partial` and renamed when complete, its sha256 going to
//! `<name>.checksum` just before; a crash leaves only `.partial` files, removed at start.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::snapshot::SnapshotDescription;

pub const EXTENSION: &str = "snapshot";
const PARTIAL: &str = ".partial";
const CHECKSUM: &str = ".checksum";

/// `<path>.checksum`, where the archive's sha256 is kept.
pub fn checksum_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(CHECKSUM);
    p.into()
}

/// `<path>.partial`, where an archive is written until complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(PARTIAL);
    p.into()
}

/// Qdrant's naming: `<prefix>-<peer id>-<YYYY-MM-DD-HH-MM-SS>.snapshot`.
pub fn new_name(prefix: &str, peer_id: u64) -> String {
    format!(
        "{prefix}-{peer_id}-{}.{EXTENSION}",
        chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S")
    )
}

/// `name`, or, when a snapshot of that name exists already in `dir` (two in one second), the
/// first free `<stem>-<n>.snapshot`.
pub fn unused_name(dir: &Path, name: String) -> String {
    let taken = |n: &str| dir.join(n).exists() || dir.join(format!("{n}{PARTIAL}")).exists();
    if !taken(&name) {
        return name;
    }
    let stem = name.strip_suffix(&format!(".{EXTENSION}")).unwrap_or(&name).to_string();
    (1..)
        .map(|n| format!("{stem}-{n}.{EXTENSION}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// The file of snapshot `name` in `dir`; a name that is not a plain file name, or no such
/// file, is 404 (as Qdrant answers).
pub fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.ends_with(PARTIAL)
        && !name.ends_with(CHECKSUM);
    let path = dir.join(name);
    if !plain || !path.is_file() {
        return Err(Error::not_found(format!("Snapshot {name} not found")));
    }
    Ok(path)
}

fn is_snapshot(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == EXTENSION)
}

pub fn describe(path: &Path) -> Result<SnapshotDescription> {
    let meta = std::fs::metadata(path)?;
    let creation_time = meta.modified().ok().map(|t| {
        chrono::DateTime::<chrono::Utc>::from(t)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    });
    let checksum = std::fs::read_to_string(checksum_path(path))
        .ok()
        .map(|c| c.trim().to_string());
    Ok(SnapshotDescription {
        name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        creation_time,
        size: meta.len(),
        checksum,
    })
}

/// The snapshots in `dir`, oldest first (none when `dir` does not exist).
pub fn list(dir: &Path) -> Result<Vec<SnapshotDescription>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if is_snapshot(&path) {
            out.push(describe(&path)?);
        }
    }
    out.sort_by(|a, b| (&a.creation_time, &a.name).cmp(&(&b.creation_time, &b.name)));
    Ok(out)
}

/// Deletes snapshot `name` of `dir` and its checksum file.
pub fn delete(dir: &Path, name: &str) -> Result<()> {
    let path = existing(dir, name)?;
    std::fs::remove_file(&path)?;
    let _ = std::fs::remove_file(checksum_path(&path));
    Ok(())
}

/// Moves a complete archive written at `partial` to `path`, its checksum beside it.
pub fn publish(partial: &Path, path: &Path, sha256: &str) -> Result<()> {
    let checksum = checksum_path(path);
    let tmp = partial_path(&checksum);
    std::fs::write(&tmp, sha256)?;
    std::fs::rename(&tmp, &checksum)?;
    std::fs::rename(partial, path)?;
    Ok(())
}

/// Moves directory `from` to `to` (which must not exist): a rename, or a copy and delete when
/// they are on different file systems (`storage.temp_path` elsewhere).
pub fn move_dir(from: &Path, to: &Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_dir(from, to)?;
    std::fs::remove_dir_all(from)?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Removes what interrupted snapshots left under `root`: `.partial` files and directories
/// (archives being written, staging and download areas), and checksum files whose snapshot is
/// gone. Returns how many were removed.
pub fn clean(root: &Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = path.is_dir();
            let leftover = name.ends_with(PARTIAL)
                || name
                    .strip_suffix(CHECKSUM)
                    .is_some_and(|snapshot| !dir.join(snapshot).exists());
            if leftover {
                let gone = if is_dir {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed += usize::from(gone.is_ok());
            } else if is_dir {
                stack.push(path);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_snapshot_in_the_same_second_gets_a_name_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let name = "c-0-2026-12-07-10-00-00.snapshot".to_string();
        assert_eq!(unused_name(dir.path(), name.clone()), name);
        std::fs::write(dir.path().join(&name), b"x").unwrap();
        assert_eq!(
            unused_name(dir.path(), name.clone()),
            "c-0-2026-12-07-10-00-00-1.snapshot"
        );
        std::fs::write(dir.path().join("c-0-2026-12-07-10-00-00-1.snapshot.partial"), b"x").unwrap();
        assert_eq!(unused_name(dir.path(), name), "c-0-2026-12-07-10-00-00-2.snapshot");
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.snapshot"), b"x").unwrap();
        assert!(existing(dir.path(), "a.snapshot").is_ok());
        for bad in [
            "",
            "../a.snapshot",
            "x/../a.snapshot",
            ".hidden",
            "a.snapshot.checksum",
            "b.snapshot",
        ] {
            assert!(matches!(existing(dir.path(), bad), Err(Error::NotFound(_))), "{bad}");
        }
    }

    #[test]
    fn publish_list_delete_and_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-0-2026-01-01-00-00-00.snapshot");
        let partial = partial_path(&path);
        std::fs::write(&partial, b"archive").unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        publish(&partial, &path, "abc").unwrap();
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, 7);
        assert_eq!(listed[0].checksum.as_deref(), Some("abc"));

        std::fs::write(dir.path().join("d.snapshot.partial"), b"half").unwrap();
        std::fs::write(dir.path().join("gone.snapshot.checksum"), b"abc").unwrap();
        std::fs::create_dir_all(dir.path().join("staging.partial/db")).unwrap();
        assert_eq!(clean(dir.path()), 3);
        assert!(path.exists() && checksum_path(&path).exists());

        delete(dir.path(), &listed[0].name).unwrap();
        assert!(!path.exists() && !checksum_path(&path).exists());
        assert!(list(&dir.path().join("none")).unwrap().is_empty());
    }
}
