//! An S3-compatible bucket as a [`BackupStore`]: path-style URLs
//! (`<endpoint>/<bucket>/<prefix>/<key>`, as MinIO, Ceph RGW, moto and AWS accept), requests
//! signed with SigV4, objects streamed from and to files. A file larger than one part (64 MiB)
//! goes up as a multipart upload (S3 limits a single PUT to 5 GiB; 10 000 parts of 64 MiB reach
//! 625 GiB), aborted if any part fails.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::sigv4::{self, Credentials, EMPTY_SHA256};
use super::store::{check_key, BackupStore, StoreError};
use super::{hex, node::file_stream};

/// Where the bucket is.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix (no leading or trailing `/` needed).
    pub prefix: String,
    pub credentials: Credentials,
    /// Accept any TLS certificate (self-signed test endpoints).
    pub insecure: bool,
}

/// An S3 bucket (or a prefix of one).
#[derive(Clone, Debug)]
pub struct S3Store {
    config: S3Config,
    client: reqwest::Client,
    base: reqwest::Url,
    host: String,
    prefix: String,
    /// Files larger than this go up in parts of this size.
    part_size: u64,
}

/// The part size of multipart uploads.
pub const DEFAULT_PART_SIZE: u64 = 64 << 20;
/// S3's smallest part (but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

impl S3Store {
    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        let bad = |message: String| StoreError::S3 {
            operation: "configure",
            key: String::new(),
            message,
        };
        let base =
            reqwest::Url::parse(&config.endpoint).map_err(|e| bad(format!("endpoint {}: {e}", config.endpoint)))?;
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(bad(format!("endpoint {} has no host", config.endpoint))),
        };
        if config.bucket.is_empty() {
            return Err(bad("the bucket name is empty".to_string()));
        }
        let prefix = config.prefix.trim_matches('/').to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .danger_accept_invalid_certs(config.insecure)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(S3Store {
            config,
            client,
            base,
            host,
            prefix,
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Uploads files larger than `bytes` in parts of `bytes` (at least S3's 5 MiB).
    pub fn with_part_size(mut self, bytes: u64) -> S3Store {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// A multipart upload of `path` (`len` bytes) to `object`: initiate, upload each part with
    /// its own checksum, complete; aborted (best effort) when any step fails, so no parts are
    /// left behind to be billed.
    async fn put_multipart(&self, key: &str, object: &str, path: &Path, len: u64) -> Result<(), StoreError> {
        let object_path = self.bucket_path(Some(object));
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let request = self.signed(
            reqwest::Method::POST,
            &object_path,
            &query(&[("uploads", "")]),
            EMPTY_SHA256,
        )?;
        let answer = self.send("put", key, request).await?.text().await.unwrap_or_default();
        let Some(upload_id) = xml_values(&answer, "UploadId").into_iter().next() else {
            return Err(StoreError::S3 {
                operation: "put",
                key: key.to_string(),
                message: format!("no UploadId in the answer to a multipart upload: {answer}"),
            });
        };
        let completed = async {
            let etags = self.put_parts(key, &object_path, &upload_id, path, len).await?;
            let mut xml = String::from("<CompleteMultipartUpload>");
            for (i, etag) in etags.iter().enumerate() {
                xml.push_str(&format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
                    i + 1
                ));
            }
            xml.push_str("</CompleteMultipartUpload>");
            let sha = hex(&Sha256::digest(xml.as_bytes()));
            let query = query(&[("uploadId", &upload_id)]);
            let request = self
                .signed(reqwest::Method::POST, &object_path, &query, &sha)?
                .body(xml);
            // S3 may answer 200 with an error in the body.
            let body = self.send("put", key, request).await?.text().await.unwrap_or_default();
            if body.contains("<Error>") {
                return Err(StoreError::S3 {
                    operation: "put",
                    key: key.to_string(),
                    message: format!("completing the multipart upload failed: {body}"),
                });
            }
            Ok(())
        }
        .await;
        if completed.is_err() {
            if let Ok(abort) = self.signed(
                reqwest::Method::DELETE,
                &object_path,
                &query(&[("uploadId", &upload_id)]),
                EMPTY_SHA256,
            ) {
                let _ = self.send("delete", key, abort).await;
            }
        }
        completed
    }

    /// Uploads the parts of `path`; returns their ETags in order.
    async fn put_parts(
        &self,
        key: &str,
        object_path: &str,
        upload_id: &str,
        path: &Path,
        len: u64,
    ) -> Result<Vec<String>, StoreError> {
        use tokio::io::AsyncReadExt;
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut etags = Vec::new();
        let mut offset = 0;
        while offset < len {
            let size = self.part_size.min(len - offset) as usize;
            let mut part = vec![0u8; size];
            file.read_exact(&mut part).await.map_err(io)?;
            let sha = hex(&Sha256::digest(&part));
            let number = (etags.len() + 1).to_string();
            let query = vec![
                ("partNumber".to_string(), number),
                ("uploadId".to_string(), upload_id.to_string()),
            ];
            let request = self
                .signed(reqwest::Method::PUT, object_path, &query, &sha)?
                .header(reqwest::header::CONTENT_LENGTH, size)
                .body(part);
            let response = self.send("put", key, request).await?;
            let etag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| StoreError::S3 {
                    operation: "put",
                    key: key.to_string(),
                    message: format!("part {} was stored without an ETag", etags.len() + 1),
                })?;
            etags.push(etag);
            offset += size as u64;
        }
        Ok(etags)
    }

    /// The full object key of a store key.
    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn bucket_path(&self, object: Option<&str>) -> String {
        let base_path = self.base.path().trim_end_matches('/');
        match object {
            Some(o) => format!(
                "{base_path}/{}/{}",
                sigv4::uri_encode(&self.config.bucket, false),
                sigv4::uri_encode(o, true)
            ),
            None => format!("{base_path}/{}", sigv4::uri_encode(&self.config.bucket, false)),
        }
    }

    fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(String, String)],
        payload_sha256: &str,
    ) -> Result<reqwest::RequestBuilder, StoreError> {
        let mut url = self.base.clone();
        url.set_path(path);
        let q = sigv4::canonical_query(query);
        url.set_query(if q.is_empty() { None } else { Some(&q) });
        let amz_date = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let headers = sigv4::sign(
            &sigv4::Request {
                method: method.as_str(),
                host: &self.host,
                path,
                query,
                headers: &[],
                payload_sha256,
            },
            &self.config.credentials,
            &amz_date,
        );
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        Ok(request)
    }

    async fn send(
        &self,
        operation: &'static str,
        key: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StoreError> {
        let err = |message: String| StoreError::S3 {
            operation,
            key: key.to_string(),
            message,
        };
        let response = request.send().await.map_err(|e| err(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && operation == "get" {
            return Err(StoreError::NotFound(key.to_string()));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(err(format!("{status}: {}", body.chars().take(500).collect::<String>())));
        }
        Ok(response)
    }
}

/// The text of every `<tag>...</tag>` in `xml`, unescaped.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(
            rest[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[end + close.len()..];
    }
    out
}

async fn sha256_of(path: &Path) -> std::io::Result<(String, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let n = std::io::copy(&mut file, &mut hasher)?;
        Ok((hex(&hasher.finalize()), n))
    })
    .await
    .map_err(std::io::Error::other)?
}

impl BackupStore for S3Store {
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        check_key(key)?;
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        let object = self.object_key(key);
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        if size > self.part_size {
            return self.put_multipart(key, &object, path, size).await;
        }
        let (sha, len) = sha256_of(path).await.map_err(io)?;
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let request = self
            .signed(reqwest::Method::PUT, &self.bucket_path(Some(&object)), &[], &sha)?
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(file_stream(file)));
        self.send("put", key, request).await?;
        Ok(())
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        check_key(key)?;
        let object = self.object_key(key);
        let request = self.signed(
            reqwest::Method::GET,
            &self.bucket_path(Some(&object)),
            &[],
            EMPTY_SHA256,
        )?;
        let response = self.send("get", key, request).await?;
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await.map_err(io)?);
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::S3 {
                operation: "get",
                key: key.to_string(),
                message: e.to_string(),
            })?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(size)
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        check_key(key)?;
        let sha = hex(&Sha256::digest(&bytes));
        let object = self.object_key(key);
        let request = self
            .signed(reqwest::Method::PUT, &self.bucket_path(Some(&object)), &[], &sha)?
            .body(bytes);
        self.send("put", key, request).await?;
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        check_key(key)?;
        let object = self.object_key(key);
        let request = self.signed(
            reqwest::Method::GET,
            &self.bucket_path(Some(&object)),
            &[],
            EMPTY_SHA256,
        )?;
        let response = self.send("get", key, request).await?;
        let bytes = response.bytes().await.map_err(|e| StoreError::S3 {
            operation: "get",
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok(bytes.to_vec())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), full_prefix.clone()),
            ];
            if let Some(t) = &token {
                query.push(("continuation-token".to_string(), t.clone()));
            }
            let request = self.signed(reqwest::Method::GET, &self.bucket_path(None), &query, EMPTY_SHA256)?;
            let response = self.send("list", prefix, request).await?;
            let xml = response.text().await.map_err(|e| StoreError::S3 {
                operation: "list",
                key: prefix.to_string(),
                message: e.to_string(),
            })?;
            for key in xml_values(&xml, "Key") {
                if let Some(k) = key.strip_prefix(&strip) {
                    keys.push(k.to_string());
                }
            }
            let truncated = xml_values(&xml, "IsTruncated").first().is_some_and(|t| t == "true");
            token = xml_values(&xml, "NextContinuationToken").into_iter().next();
            if !truncated || token.is_none() {
                break;
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let object = self.object_key(key);
        let request = self.signed(
            reqwest::Method::DELETE,
            &self.bucket_path(Some(&object)),
            &[],
            EMPTY_SHA256,
        )?;
        match self.send("delete", key, request).await {
            Ok(_) => Ok(()),
            Err(StoreError::S3 { message, .. }) if message.starts_with("404") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_answers() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/a&amp;b</Key></Contents>\
                   <Contents><Key>p/c</Key></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_values(xml, "Key"), ["p/a&b", "p/c"]);
        assert_eq!(xml_values(xml, "IsTruncated"), ["true"]);
        assert_eq!(xml_values(xml, "NextContinuationToken"), ["t1"]);
    }

    #[test]
    fn paths_are_path_style_and_encoded() {
        let store = S3Store::new(S3Config {
            endpoint: "http://127.0.0.1:9000".to_string(),
            bucket: "backups".to_string(),
            prefix: "/team/db/".to_string(),
            credentials: Credentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
                region: "us-east-1".into(),
            },
            insecure: false,
        })
        .expect("store");
        assert_eq!(store.host, "127.0.0.1:9000");
        let object = store.object_key("20261207T000000Z/c0-s1.snapshot");
        assert_eq!(object, "team/db/20261207T000000Z/c0-s1.snapshot");
        assert_eq!(store.bucket_path(Some("a b/c")), "/backups/a%20b/c");
    }
}
