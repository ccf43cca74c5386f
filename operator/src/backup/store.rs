//! Where backups are kept: a key/object store. Keys are `/`-separated relative paths
//! (`<id>/manifest.json`). Large objects move as files (streamed, never read whole into
//! memory); the manifest moves as bytes.

use std::future::Future;
use std::path::{Path, PathBuf};

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} does not exist")]
    NotFound(String),
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    #[error("I/O on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("S3 {operation} {key}: {message}")]
    S3 {
        operation: &'static str,
        key: String,
        message: String,
    },
}

/// A place to keep backups (a directory, an S3 bucket).
pub trait BackupStore: Send + Sync {
    /// Stores the file at `path` as `key` (replacing it).
    fn put_file(&self, key: &str, path: &Path) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Writes object `key` to the file at `path`; returns its size.
    fn get_file(&self, key: &str, path: &Path) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Stores `bytes` as `key`.
    fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Reads object `key`.
    fn get_bytes(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// Every key under `prefix` (`""`: all), sorted.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Deletes object `key` (absent: no error).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` component.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = key.is_empty()
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\\') || c.contains('\0'));
    if bad {
        return Err(StoreError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// A directory (e.g. a mounted PersistentVolumeClaim). Objects are files; a file is written
/// as `<name>.partial` and renamed, so a reader never sees half an object.
#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<DirStore, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            key: root.display().to_string(),
            source,
        })?;
        Ok(DirStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn write_with<F, Fut>(&self, key: &str, write: F) -> Result<(), StoreError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = std::io::Result<()>>,
    {
        let path = self.path(key)?;
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let partial = path.with_file_name(format!(
            "{}.partial",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("object")
        ));
        let written = async {
            write(partial.clone()).await?;
            tokio::fs::File::open(&partial).await?.sync_all().await?;
            tokio::fs::rename(&partial, &path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written.map_err(io)
    }
}

fn not_found_or(key: &str, source: std::io::Error) -> StoreError {
    if source.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(key.to_string())
    } else {
        StoreError::Io {
            key: key.to_string(),
            source,
        }
    }
}

impl BackupStore for DirStore {
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let source = path.to_path_buf();
        self.write_with(key, |partial| async move {
            tokio::fs::copy(&source, &partial).await.map(|_| ())
        })
        .await
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        let from = self.path(key)?;
        tokio::fs::copy(&from, path).await.map_err(|e| not_found_or(key, e))
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.write_with(key, |partial| async move { tokio::fs::write(&partial, &bytes).await })
            .await
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        tokio::fs::read(&path).await.map_err(|e| not_found_or(key, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let listed = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(relative) = path.strip_prefix(&root) else {
                        continue;
                    };
                    let key = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if !key.ends_with(".partial") && key.starts_with(&prefix) {
                        keys.push(key);
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        listed.map_err(|source| StoreError::Io {
            key: format!("(listing {})", self.root.display()),
            source,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StoreError::Io {
                    key: key.to_string(),
                    source,
                })
            }
        }
        // Remove directories left empty, up to the root.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_relative_and_clean() {
        assert!(check_key("a/b.snapshot").is_ok());
        for bad in ["", "/a", "a//b", "../a", "a/./b", "a/", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn directory_store_round_trip_list_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::new(dir.path().join("root")).expect("store");
        store.put_bytes("b1/manifest.json", b"{}".to_vec()).await.expect("put");
        let source = dir.path().join("src");
        std::fs::write(&source, vec![7u8; 100_000]).expect("write");
        store.put_file("b1/c0/s1.snapshot", &source).await.expect("put file");
        store.put_bytes("b2/x", b"x".to_vec()).await.expect("put");
        assert_eq!(
            store.list("").await.expect("list"),
            ["b1/c0/s1.snapshot", "b1/manifest.json", "b2/x"]
        );
        assert_eq!(store.list("b1/").await.expect("list").len(), 2);
        let out = dir.path().join("out");
        assert_eq!(store.get_file("b1/c0/s1.snapshot", &out).await.expect("get"), 100_000);
        assert_eq!(std::fs::read(&out).expect("read"), vec![7u8; 100_000]);
        assert_eq!(store.get_bytes("b1/manifest.json").await.expect("get"), b"{}");
        assert!(matches!(store.get_bytes("nope").await, Err(StoreError::NotFound(_))));
        store.delete("b1/c0/s1.snapshot").await.expect("delete");
        store.delete("b1/c0/s1.snapshot").await.expect("absent is fine");
        assert!(!dir.path().join("root/b1/c0").exists(), "empty directories go too");
        assert!(store.put_bytes("../escape", vec![]).await.is_err());
    }
}
