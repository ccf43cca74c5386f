//! The node REST calls of the backup data path: collection info, shard snapshots (create,
//! download, delete, upload), collection creation, payload indexes, aliases and counts.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::hex;
use crate::cluster_api::{ClusterApiError, ClusterInfo, CollectionClusterInfo, Connection};

/// Timeout of short calls.
const SHORT: Duration = Duration::from_secs(30);
/// Timeout of snapshot creation, download and upload (large shards take long).
const LONG: Duration = Duration::from_secs(6 * 3600);

/// A REST client for the nodes of one cluster.
#[derive(Clone, Debug)]
pub struct NodeClient {
    client: reqwest::Client,
    api_key: Option<String>,
}

/// `POST .../snapshots` answer.
#[derive(Clone, Debug, Deserialize)]
pub struct SnapshotDescription {
    pub name: String,
    pub size: u64,
    #[serde(default)]
    pub checksum: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    status: Value,
}

impl NodeClient {
    /// A client for `connection` (HTTPS trusts only its CA when set).
    pub fn new(connection: &Connection) -> Result<NodeClient, ClusterApiError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tls_built_in_root_certs(false);
        if let Some(pem) = &connection.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClusterApiError::Config(format!("invalid CA certificate: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(NodeClient {
            client: builder.build().map_err(|e| ClusterApiError::Config(e.to_string()))?,
            api_key: connection.api_key.clone(),
        })
    }

    fn url(node: &str, segments: &[&str]) -> Result<reqwest::Url, ClusterApiError> {
        let mut url =
            reqwest::Url::parse(node).map_err(|e| ClusterApiError::Config(format!("bad node URL {node}: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| ClusterApiError::Config(format!("bad node URL {node}")))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url, timeout: Duration) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url).timeout(timeout);
        match &self.api_key {
            Some(key) => request.header("api-key", key),
            None => request,
        }
    }

    async fn call(&self, node: &str, request: reqwest::RequestBuilder) -> Result<Value, ClusterApiError> {
        let unreachable = |e: reqwest::Error| ClusterApiError::Unreachable {
            node: node.to_string(),
            message: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        let envelope: Result<Envelope, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let message = envelope
                .ok()
                .and_then(|e| e.status.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(500).collect());
            return Err(ClusterApiError::Status {
                node: node.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        envelope.map(|e| e.result).map_err(|e| ClusterApiError::Decode {
            node: node.to_string(),
            message: e.to_string(),
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(node: &str, value: Value) -> Result<T, ClusterApiError> {
        serde_json::from_value(value).map_err(|e| ClusterApiError::Decode {
            node: node.to_string(),
            message: e.to_string(),
        })
    }

    /// `GET /cluster`.
    pub async fn cluster_info(&self, node: &str) -> Result<ClusterInfo, ClusterApiError> {
        let url = Self::url(node, &["cluster"])?;
        let v = self.call(node, self.request(reqwest::Method::GET, url, SHORT)).await?;
        Self::decode(node, v)
    }

    /// `GET /collections`: the names.
    pub async fn list_collections(&self, node: &str) -> Result<Vec<String>, ClusterApiError> {
        let url = Self::url(node, &["collections"])?;
        let v = self.call(node, self.request(reqwest::Method::GET, url, SHORT)).await?;
        Ok(v["collections"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `GET /collections/{c}`: the collection info (config, payload_schema, points_count...).
    pub async fn collection_info(&self, node: &str, collection: &str) -> Result<Value, ClusterApiError> {
        let url = Self::url(node, &["collections", collection])?;
        self.call(node, self.request(reqwest::Method::GET, url, SHORT)).await
    }

    /// `GET /collections/{c}/cluster`.
    pub async fn collection_cluster(
        &self,
        node: &str,
        collection: &str,
    ) -> Result<CollectionClusterInfo, ClusterApiError> {
        let url = Self::url(node, &["collections", collection, "cluster"])?;
        let v = self.call(node, self.request(reqwest::Method::GET, url, SHORT)).await?;
        Self::decode(node, v)
    }

    /// `GET /aliases`: `(alias, collection)`.
    pub async fn aliases(&self, node: &str) -> Result<Vec<(String, String)>, ClusterApiError> {
        let url = Self::url(node, &["aliases"])?;
        let v = self.call(node, self.request(reqwest::Method::GET, url, SHORT)).await?;
        Ok(v["aliases"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|a| {
                        Some((
                            a["alias_name"].as_str()?.to_string(),
                            a["collection_name"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST /collections/{c}/shards/{s}/snapshots?wait=true`.
    pub async fn create_shard_snapshot(
        &self,
        node: &str,
        collection: &str,
        shard: u32,
    ) -> Result<SnapshotDescription, ClusterApiError> {
        let mut url = Self::url(
            node,
            &["collections", collection, "shards", &shard.to_string(), "snapshots"],
        )?;
        url.query_pairs_mut().append_pair("wait", "true");
        let v = self.call(node, self.request(reqwest::Method::POST, url, LONG)).await?;
        Self::decode(node, v)
    }

    /// `DELETE /collections/{c}/shards/{s}/snapshots/{name}?wait=true`.
    pub async fn delete_shard_snapshot(
        &self,
        node: &str,
        collection: &str,
        shard: u32,
        name: &str,
    ) -> Result<(), ClusterApiError> {
        let mut url = Self::url(
            node,
            &[
                "collections",
                collection,
                "shards",
                &shard.to_string(),
                "snapshots",
                name,
            ],
        )?;
        url.query_pairs_mut().append_pair("wait", "true");
        self.call(node, self.request(reqwest::Method::DELETE, url, SHORT))
            .await?;
        Ok(())
    }

    /// Streams `GET /collections/{c}/shards/{s}/snapshots/{name}` into `path`; returns the
    /// size and the sha256 (hex) of what was written.
    pub async fn download_shard_snapshot(
        &self,
        node: &str,
        collection: &str,
        shard: u32,
        name: &str,
        path: &Path,
    ) -> Result<(u64, String), ClusterApiError> {
        let url = Self::url(
            node,
            &[
                "collections",
                collection,
                "shards",
                &shard.to_string(),
                "snapshots",
                name,
            ],
        )?;
        let unreachable = |message: String| ClusterApiError::Unreachable {
            node: node.to_string(),
            message,
        };
        let response = self
            .request(reqwest::Method::GET, url, LONG)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClusterApiError::Status {
                node: node.to_string(),
                status: status.as_u16(),
                message: body.chars().take(500).collect(),
            });
        }
        let mut file = tokio::io::BufWriter::new(
            tokio::fs::File::create(path)
                .await
                .map_err(|e| unreachable(format!("cannot create {}: {e}", path.display())))?,
        );
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| unreachable(e.to_string()))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| unreachable(format!("writing {}: {e}", path.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| unreachable(format!("writing {}: {e}", path.display())))?;
        Ok((size, hex(&hasher.finalize())))
    }

    /// Uploads the shard snapshot at `path` (multipart field `snapshot`, streamed) with
    /// `priority=snapshot`: this replica wins, the node refills the others from it.
    pub async fn upload_shard_snapshot(
        &self,
        node: &str,
        collection: &str,
        shard: u32,
        path: &Path,
        sha256: &str,
    ) -> Result<(), ClusterApiError> {
        let mut url = Self::url(
            node,
            &[
                "collections",
                collection,
                "shards",
                &shard.to_string(),
                "snapshots",
                "upload",
            ],
        )?;
        url.query_pairs_mut()
            .append_pair("priority", "snapshot")
            .append_pair("wait", "true")
            .append_pair("checksum", sha256);
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClusterApiError::Config(format!("cannot open {}: {e}", path.display())))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| ClusterApiError::Config(e.to_string()))?
            .len();
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(file_stream(file)), len)
            .file_name(format!("shard-{shard}.snapshot"))
            .mime_str("application/octet-stream")
            .map_err(|e| ClusterApiError::Config(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        self.call(node, self.request(reqwest::Method::POST, url, LONG).multipart(form))
            .await?;
        Ok(())
    }

    /// `PUT /collections/{c}` with `body`.
    pub async fn create_collection(&self, node: &str, collection: &str, body: &Value) -> Result<(), ClusterApiError> {
        let mut url = Self::url(node, &["collections", collection])?;
        url.query_pairs_mut().append_pair("timeout", "60");
        self.call(node, self.request(reqwest::Method::PUT, url, SHORT * 3).json(body))
            .await?;
        Ok(())
    }

    /// `PUT /collections/{c}/index?wait=true`.
    pub async fn create_payload_index(
        &self,
        node: &str,
        collection: &str,
        field: &str,
        schema: &Value,
    ) -> Result<(), ClusterApiError> {
        let mut url = Self::url(node, &["collections", collection, "index"])?;
        url.query_pairs_mut().append_pair("wait", "true");
        let body = serde_json::json!({"field_name": field, "field_schema": schema});
        self.call(node, self.request(reqwest::Method::PUT, url, SHORT * 3).json(&body))
            .await?;
        Ok(())
    }

    /// `POST /collections/aliases` with `create_alias` actions.
    pub async fn create_aliases(&self, node: &str, aliases: &[(String, String)]) -> Result<(), ClusterApiError> {
        if aliases.is_empty() {
            return Ok(());
        }
        let url = Self::url(node, &["collections", "aliases"])?;
        let actions: Vec<Value> = aliases
            .iter()
            .map(|(alias, collection)| {
                serde_json::json!({"create_alias": {"alias_name": alias, "collection_name": collection}})
            })
            .collect();
        self.call(
            node,
            self.request(reqwest::Method::POST, url, SHORT * 3)
                .json(&serde_json::json!({"actions": actions})),
        )
        .await?;
        Ok(())
    }

    /// `POST /collections/{c}/points/count` (exact).
    pub async fn count(&self, node: &str, collection: &str) -> Result<u64, ClusterApiError> {
        let url = Self::url(node, &["collections", collection, "points", "count"])?;
        let v = self
            .call(
                node,
                self.request(reqwest::Method::POST, url, SHORT)
                    .json(&serde_json::json!({"exact": true})),
            )
            .await?;
        v["count"].as_u64().ok_or_else(|| ClusterApiError::Decode {
            node: node.to_string(),
            message: "count has no number".to_string(),
        })
    }
}

/// A file as a stream of 1 MiB chunks.
pub fn file_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), file)))
    })
}
