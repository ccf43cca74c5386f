//! Who may call what over REST: authenticates every request but the probes (API key, read-only
//! key, JWT), checks the [`Need`] of its route against the caller's [`Access`], and leaves the
//! access in the request's extensions for the handlers that filter what they list.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::collection_param;
use super::error::ApiError;
use crate::api::auth::{self, Access, Need};
use crate::error::Error;
use crate::node::Node;

/// Paths Qdrant serves without a key: the root (version check) and the health probes.
fn is_public(path: &str) -> bool {
    path == "/" || path == "/healthz" || path.starts_with("/readyz") || path.starts_with("/livez")
}

/// With keys configured, every request but the probes needs `api-key: KEY` or
/// `Authorization: Bearer KEY` (a key or, with `jwt_rbac`, a JWT); then the route's need is
/// checked against what the credential grants.
pub async fn authorize(
    State(node): State<Arc<Node>>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|n| n.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    match admit(&node, params, req).await {
        Ok(req) => next.run(req).await,
        Err(mut refused) => {
            // Refused before its body was read (an upload is never spooled for a caller who
            // may not make it): the connection cannot carry another request, and saying so
            // keeps the client from sending its next one on a connection about to close.
            if has_body {
                refused
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            refused
        }
    }
}

/// The request, with the caller's access in its extensions, or the refusal.
async fn admit(
    node: &Node,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut req: Request,
) -> Result<Request, Response> {
    let service = &node.settings.service;
    if !auth::keys_configured(service) || is_public(req.uri().path()) {
        req.extensions_mut().insert(Access::FULL);
        return Ok(req);
    }
    let refused = |refusal| ApiError::Refused(refusal).into_response();
    let credential = auth::authenticate_headers(service, req.headers()).map_err(refused)?;
    if let Some(condition) = &credential.value_exists {
        auth::check_value_exists(node, condition).await.map_err(refused)?;
    }
    let access = credential.access;
    let collection = collection_param(params);
    let pattern = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    if let Some(pattern) = pattern.as_deref() {
        access
            .check(&need_of(req.method(), pattern, collection))
            .map_err(forbidden)?;
    }
    if !access.is_global() && reads_other_collections(req.method(), pattern.as_deref()) {
        req = check_lookups(&access, req).await.map_err(|response| *response)?;
    }
    req.extensions_mut().insert(access);
    Ok(req)
}

fn forbidden(why: String) -> Response {
    ApiError::Node(Error::Forbidden(why)).into_response()
}

/// What a route needs, by its pattern (Qdrant's RBAC matrix).
pub fn need_of(method: &Method, pattern: &str, collection: Option<String>) -> Need {
    let write = method != Method::GET && method != Method::HEAD;
    let Some(rest) = pattern.strip_prefix("/collections/{collection_name}") else {
        return match (pattern, write) {
            ("/collections" | "/aliases", _) => Need::Nothing,
            ("/metrics" | "/telemetry" | "/issues" | "/cluster", false) => Need::GlobalRead,
            ("/snapshots" | "/snapshots/{snapshot_name}", false) => Need::GlobalRead,
            _ => Need::GlobalManage,
        };
    };
    let name = collection.unwrap_or_default();
    match rest {
        // Creating, changing and deleting collections, and recovering snapshots: global manage.
        "" if write => Need::GlobalManage,
        "/snapshots/recover" | "/snapshots/upload" => Need::GlobalManage,
        "/shards/{shard}/snapshots/recover" | "/shards/{shard}/snapshots/upload" => Need::GlobalManage,
        // Cluster setup: as a collection operation that also needs manage rights.
        "/cluster" if write => Need::Collection {
            name,
            write: true,
            manage: true,
            extras: true,
        },
        "/cluster" => Need::read_extras(name),
        r if r.starts_with("/snapshots") || r.starts_with("/shards/") => {
            if write {
                Need::write_extras(name)
            } else {
                Need::read_extras(name)
            }
        }
        r if r.starts_with("/index") || r.starts_with("/vectors/") => Need::write_extras(name),
        "/points" if method == Method::POST => Need::read(name),
        r if is_point_read(r) => Need::read(name),
        _ if write => Need::write(name),
        _ => Need::read(name),
    }
}

/// Point routes that are POSTs but only read.
fn is_point_read(rest: &str) -> bool {
    rest == "/facet"
        || [
            "/points/scroll",
            "/points/count",
            "/points/search",
            "/points/query",
            "/points/recommend",
            "/points/discover",
        ]
        .iter()
        .any(|p| rest.starts_with(p))
}

/// Reads whose body may name other collections (`lookup_from`, `with_lookup`).
fn reads_other_collections(method: &Method, pattern: Option<&str>) -> bool {
    method == Method::POST
        && pattern.is_some_and(|p| {
            [
                "/points/search/groups",
                "/points/query",
                "/points/recommend",
                "/points/discover",
            ]
            .iter()
            .any(|r| p.contains(r))
        })
}

/// Refuses a read whose body looks up vectors or payloads in a collection the caller may not
/// read. The body is buffered (it is bounded by the body limit) and handed on unchanged.
async fn check_lookups(access: &Access, req: Request) -> Result<Request, Box<Response>> {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let e = ApiError::Format(format!("cannot read the request body: {e}"));
            return Err(Box::new(e.into_response()));
        }
    };
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        let mut names = Vec::new();
        lookup_collections(&value, &mut names);
        for name in names {
            access
                .check(&Need::read(name))
                .map_err(|why| Box::new(forbidden(why)))?;
        }
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The collections named by `lookup_from.collection` and `with_lookup` anywhere in `value`
/// (prefetches and batches nest them).
fn lookup_collections(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("lookup_from", Value::Object(l)) => {
                        if let Some(Value::String(c)) = l.get("collection") {
                            out.push(c.clone());
                        }
                    }
                    ("with_lookup", Value::String(c)) => out.push(c.clone()),
                    ("with_lookup", Value::Object(l)) => {
                        if let Some(Value::String(c)) = l.get("collection") {
                            out.push(c.clone());
                        }
                    }
                    _ => lookup_collections(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| lookup_collections(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const C: &str = "/collections/{collection_name}";

    fn need(method: Method, rest: &str) -> Need {
        need_of(&method, &format!("{C}{rest}"), Some("c".into()))
    }

    #[test]
    fn routes_need_what_qdrant_asks() {
        assert_eq!(need(Method::GET, ""), Need::read("c"));
        assert_eq!(need(Method::PUT, ""), Need::GlobalManage);
        assert_eq!(need(Method::DELETE, ""), Need::GlobalManage);
        assert_eq!(need(Method::GET, "/exists"), Need::read("c"));
        assert_eq!(need(Method::PUT, "/points"), Need::write("c"));
        assert_eq!(need(Method::POST, "/points"), Need::read("c"));
        assert_eq!(need(Method::POST, "/points/query/batch"), Need::read("c"));
        assert_eq!(need(Method::POST, "/points/search/matrix/pairs"), Need::read("c"));
        assert_eq!(need(Method::POST, "/facet"), Need::read("c"));
        assert_eq!(need(Method::POST, "/points/delete"), Need::write("c"));
        assert_eq!(need(Method::POST, "/points/payload"), Need::write("c"));
        assert_eq!(need(Method::PUT, "/index"), Need::write_extras("c"));
        assert_eq!(need(Method::DELETE, "/vectors/{vector_name}"), Need::write_extras("c"));
        assert_eq!(need(Method::GET, "/snapshots"), Need::read_extras("c"));
        assert_eq!(need(Method::POST, "/snapshots"), Need::write_extras("c"));
        assert_eq!(need(Method::PUT, "/snapshots/recover"), Need::GlobalManage);
        assert_eq!(
            need(Method::POST, "/shards/{shard}/snapshots/upload"),
            Need::GlobalManage
        );
        assert_eq!(need(Method::GET, "/shards/{shard}/snapshots"), Need::read_extras("c"));
        assert_eq!(need(Method::GET, "/cluster"), Need::read_extras("c"));
        assert!(matches!(
            need(Method::POST, "/cluster"),
            Need::Collection { manage: true, .. }
        ));
        let global = |m: Method, p: &str| need_of(&m, p, None);
        assert_eq!(global(Method::GET, "/collections"), Need::Nothing);
        assert_eq!(global(Method::GET, "/aliases"), Need::Nothing);
        assert_eq!(global(Method::POST, "/collections/aliases"), Need::GlobalManage);
        assert_eq!(global(Method::GET, "/metrics"), Need::GlobalRead);
        assert_eq!(global(Method::GET, "/cluster"), Need::GlobalRead);
        assert_eq!(global(Method::DELETE, "/cluster/peer/{peer_id}"), Need::GlobalManage);
        assert_eq!(global(Method::GET, "/snapshots/{snapshot_name}"), Need::GlobalRead);
        assert_eq!(global(Method::POST, "/snapshots"), Need::GlobalManage);
        assert_eq!(global(Method::DELETE, "/issues"), Need::GlobalManage);
    }

    #[test]
    fn lookups_anywhere_in_the_body() {
        let body = json!({"searches": [{"prefetch": [{"lookup_from": {"collection": "a"}}]}],
                          "with_lookup": "b", "groups": {"with_lookup": {"collection": "c"}}});
        let mut names = Vec::new();
        lookup_collections(&body, &mut names);
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
