//! Where a recovery reads its snapshot from: a `file://` location inside the snapshots
//! directory (Qdrant refuses any other local path), or an `http(s)://` one downloaded to a
//! temporary file, streamed, never held in memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// A snapshot file ready to be unpacked.
pub struct Fetched {
    pub path: PathBuf,
    /// Downloaded into the temporary directory: to be removed once recovered.
    pub temporary: bool,
}

impl Fetched {
    /// Removes the file if it was downloaded for this recovery.
    pub fn discard(self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a download may use besides the URL.
pub struct Download<'a> {
    pub temp_dir: &'a Path,
    /// Sent as `api-key` (a snapshot served by another node).
    pub api_key: Option<&'a str>,
    /// `tls.ca_cert`: trusted besides the public roots (nodes with their own CA).
    pub ca_cert: Option<&'a Path>,
    /// `service.enable_snapshot_url_recovery`.
    pub allow_remote: bool,
}

pub async fn fetch(location: &str, snapshots_root: &Path, download: Download<'_>) -> Result<Fetched> {
    let url =
        Url::parse(location).map_err(|e| Error::bad_input(format!("location: `{location}` is not a URL: {e}")))?;
    match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|_| {
                Error::BadRequest("Invalid snapshot URI, file path must be absolute or on localhost".into())
            })?;
            // Containment first, so that a refusal says nothing about files outside.
            let root = std::fs::canonicalize(snapshots_root).unwrap_or_else(|_| snapshots_root.to_path_buf());
            let inside = match std::fs::canonicalize(&path) {
                Ok(file) => file.starts_with(&root),
                Err(_) => lexically_normal(&path).starts_with(&root),
            };
            if !inside {
                return Err(Error::BadRequest(format!(
                    "Snapshot file {path:?} is outside of the snapshots directory {snapshots_root:?}"
                )));
            }
            if !path.is_file() {
                return Err(Error::BadRequest(format!("Snapshot file {path:?} does not exist")));
            }
            Ok(Fetched { path, temporary: false })
        }
        "http" | "https" => {
            if !download.allow_remote {
                return Err(Error::BadRequest(
                    "Snapshot recovery from remote URLs is disabled in the configuration".into(),
                ));
            }
            let path = download
                .temp_dir
                .join(format!("download-{}.snapshot.partial", uuid::Uuid::new_v4()));
            match download_to(&url, &path, &download).await {
                Ok(()) => Ok(Fetched { path, temporary: true }),
                Err(e) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    Err(e)
                }
            }
        }
        other => Err(Error::BadRequest(format!(
            "URL {url} with scheme {other} is not supported"
        ))),
    }
}

/// `path` with its `.` and `..` components resolved without the file system.
fn lexically_normal(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

async fn download_to(url: &Url, path: &Path, download: &Download<'_>) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| Error::BadRequest(format!("Failed to download snapshot from {url}: {e}"));
    let mut client = reqwest::Client::builder().connect_timeout(Duration::from_secs(30));
    if let Some(ca) = download.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| Error::internal(format!("tls.ca_cert {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::internal(format!("tls.ca_cert: {e}")))?;
        client = client.add_root_certificate(cert);
    }
    let client = client.build().map_err(Error::internal)?;
    let mut request = client.get(url.clone());
    if let Some(key) = download.api_key {
        request = request.header("api-key", key);
    }
    let mut response = request.send().await.map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(failed(&format!("status {}", response.status())));
    }
    tokio::fs::create_dir_all(download.temp_dir).await?;
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.into_inner().sync_all().await?;
    Ok(())
}
