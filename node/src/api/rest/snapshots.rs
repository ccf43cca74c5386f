//! Snapshot endpoints: collection, shard and full snapshots (create, list, download, delete),
//! and recovery from a location or an upload. Creation and recovery run on a task of their
//! own: a client that disconnects does not cancel them, and `?wait=false` answers 202 at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body as HttpBody;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::extract::{Body, Params};
use super::response::{accepted, ok};
use super::WriteParams;
use crate::cluster::ShardId;
use crate::error::{Error, Result};
use crate::model::snapshot::{SnapshotPriority, SnapshotRecover};
use crate::node::snapshots::{SnapshotScope, SnapshotSource};
use crate::node::Node;

type ApiResult = Result<Response, ApiError>;

#[derive(Debug, Default, Deserialize)]
pub struct UploadParams {
    pub wait: Option<bool>,
    pub priority: Option<String>,
    pub checksum: Option<String>,
    pub timeout: Option<u64>,
}

#[derive(Deserialize)]
pub struct CollectionPath {
    collection_name: String,
}

#[derive(Deserialize)]
pub struct CollectionSnapshotPath {
    collection_name: String,
    snapshot_name: String,
}

#[derive(Deserialize)]
pub struct ShardPath {
    collection_name: String,
    shard: ShardId,
}

#[derive(Deserialize)]
pub struct ShardSnapshotPath {
    collection_name: String,
    shard: ShardId,
    snapshot_name: String,
}

/// Runs `work` on its own task; answers with its result, or 202 at once without `wait`.
async fn run<T, F>(wait: Option<bool>, work: F) -> ApiResult
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let t = Instant::now();
    let task = tokio::spawn(async move {
        let result = work.await;
        if let Err(e) = &result {
            tracing::debug!(error = %e, "snapshot operation failed");
        }
        result
    });
    if !wait.unwrap_or(true) {
        return Ok(accepted(t));
    }
    let result = task.await.map_err(Error::internal)??;
    Ok(ok(t, result))
}

// ---- list, create, download, delete: one implementation per operation, three scopes ----

fn list(node: &Node, scope: SnapshotScope) -> ApiResult {
    let t = Instant::now();
    Ok(ok(t, node.list_snapshots(&scope)?))
}

async fn create(node: Arc<Node>, scope: SnapshotScope, wait: Option<bool>) -> ApiResult {
    run(wait, async move { node.create_snapshot(&scope).await }).await
}

async fn delete(node: Arc<Node>, scope: SnapshotScope, name: String, wait: Option<bool>) -> ApiResult {
    run(wait, async move { node.delete_snapshot(&scope, &name).await }).await
}

/// Streams the snapshot file (never read into memory whole), its sha256 in a header.
async fn download(node: &Node, scope: SnapshotScope, name: &str) -> ApiResult {
    let path = node.snapshot_file(&scope, name)?;
    let file = tokio::fs::File::open(&path).await.map_err(Error::from)?;
    let len = file.metadata().await.map_err(Error::from)?.len();
    let checksum = crate::snapshot::store::describe(&path)?.checksum;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""));
    if let Some(sum) = checksum {
        response = response.header("x-checksum-sha256", sum);
    }
    response
        .body(HttpBody::from_stream(stream))
        .map_err(|e| Error::internal(e).into())
}

async fn recover(node: Arc<Node>, scope: SnapshotScope, request: SnapshotRecover, p: WriteParams) -> ApiResult {
    run(p.wait, async move {
        node.recover_snapshot(&scope, SnapshotSource::Location(request), p.timeout())
            .await
    })
    .await
}

/// Streams the multipart field `snapshot` to a temporary file, then recovers from it.
async fn upload(
    node: Arc<Node>,
    scope: SnapshotScope,
    p: UploadParams,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let priority = SnapshotPriority::parse(p.priority.as_deref())?;
    let mut multipart =
        multipart.map_err(|e| Error::BadRequest(format!("expected a multipart form: {}", e.body_text())))?;
    let path = node.snapshot_upload_path()?;
    if let Err(e) = save_field(&mut multipart, &path).await {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e.into());
    }
    let source = SnapshotSource::Upload {
        path,
        priority,
        checksum: p.checksum,
    };
    run(p.wait, async move {
        node.recover_snapshot(&scope, source, crate::api::consensus_timeout(p.timeout))
            .await
    })
    .await
}

async fn save_field(multipart: &mut Multipart, path: &std::path::Path) -> Result<()> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        Error::BadRequest(format!("reading the upload: {}", e.body_text()))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if field.name() != Some("snapshot") {
            continue;
        }
        let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.into_inner().sync_all().await?;
        return Ok(());
    }
    Err(Error::BadRequest("the multipart form has no `snapshot` field".into()))
}

// ---- routes ----

pub async fn list_collection(State(node): State<Arc<Node>>, Path(p): Path<CollectionPath>) -> ApiResult {
    list(&node, SnapshotScope::Collection(p.collection_name))
}

pub async fn create_collection(
    State(node): State<Arc<Node>>,
    Path(p): Path<CollectionPath>,
    Params(q): Params<WriteParams>,
) -> ApiResult {
    create(node, SnapshotScope::Collection(p.collection_name), q.wait).await
}

pub async fn download_collection(State(node): State<Arc<Node>>, Path(p): Path<CollectionSnapshotPath>) -> ApiResult {
    download(&node, SnapshotScope::Collection(p.collection_name), &p.snapshot_name).await
}

pub async fn delete_collection(
    State(node): State<Arc<Node>>,
    Path(p): Path<CollectionSnapshotPath>,
    Params(q): Params<WriteParams>,
) -> ApiResult {
    delete(
        node,
        SnapshotScope::Collection(p.collection_name),
        p.snapshot_name,
        q.wait,
    )
    .await
}

pub async fn recover_collection(
    State(node): State<Arc<Node>>,
    Path(p): Path<CollectionPath>,
    Params(q): Params<WriteParams>,
    Body(request): Body<SnapshotRecover>,
) -> ApiResult {
    recover(node, SnapshotScope::Collection(p.collection_name), request, q).await
}

pub async fn upload_collection(
    State(node): State<Arc<Node>>,
    Path(p): Path<CollectionPath>,
    Params(q): Params<UploadParams>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> ApiResult {
    upload(node, SnapshotScope::Collection(p.collection_name), q, multipart).await
}

pub async fn list_shard(State(node): State<Arc<Node>>, Path(p): Path<ShardPath>) -> ApiResult {
    list(&node, SnapshotScope::Shard(p.collection_name, p.shard))
}

pub async fn create_shard(
    State(node): State<Arc<Node>>,
    Path(p): Path<ShardPath>,
    Params(q): Params<WriteParams>,
) -> ApiResult {
    create(node, SnapshotScope::Shard(p.collection_name, p.shard), q.wait).await
}

pub async fn download_shard(State(node): State<Arc<Node>>, Path(p): Path<ShardSnapshotPath>) -> ApiResult {
    download(
        &node,
        SnapshotScope::Shard(p.collection_name, p.shard),
        &p.snapshot_name,
    )
    .await
}

pub async fn delete_shard(
    State(node): State<Arc<Node>>,
    Path(p): Path<ShardSnapshotPath>,
    Params(q): Params<WriteParams>,
) -> ApiResult {
    delete(
        node,
        SnapshotScope::Shard(p.collection_name, p.shard),
        p.snapshot_name,
        q.wait,
    )
    .await
}

pub async fn recover_shard(
    State(node): State<Arc<Node>>,
    Path(p): Path<ShardPath>,
    Params(q): Params<WriteParams>,
    Body(request): Body<SnapshotRecover>,
) -> ApiResult {
    recover(node, SnapshotScope::Shard(p.collection_name, p.shard), request, q).await
}

pub async fn upload_shard(
    State(node): State<Arc<Node>>,
    Path(p): Path<ShardPath>,
    Params(q): Params<UploadParams>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> ApiResult {
    upload(node, SnapshotScope::Shard(p.collection_name, p.shard), q, multipart).await
}

pub async fn list_full(State(node): State<Arc<Node>>) -> ApiResult {
    list(&node, SnapshotScope::Full)
}

pub async fn create_full(State(node): State<Arc<Node>>, Params(q): Params<WriteParams>) -> ApiResult {
    create(node, SnapshotScope::Full, q.wait).await
}

pub async fn download_full(State(node): State<Arc<Node>>, Path(name): Path<String>) -> ApiResult {
    download(&node, SnapshotScope::Full, &name).await
}

pub async fn delete_full(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Params(q): Params<WriteParams>,
) -> ApiResult {
    delete(node, SnapshotScope::Full, name, q.wait).await
}
