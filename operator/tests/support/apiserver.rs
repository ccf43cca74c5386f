//! A mocked Kubernetes API server behind kube's `tower_test::mock` pair (the pattern of
//! kube-rs/controller-rs), backed by an in-memory object store instead of a scripted request
//! list: it answers GET/LIST (label selectors), POST, PUT (resourceVersion checked), PATCH
//! (server-side apply, merge patch) and DELETE like the apiserver, and records every request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Recorded {
    /// `METHOD path` (no query).
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
pub struct Store {
    /// (collection path, name) -> object.
    pub objects: BTreeMap<(String, String), Value>,
    pub log: Vec<Recorded>,
    resource_version: u64,
    uid: u64,
    /// Requests to these collection paths answer 500 (fault injection).
    pub failing: Vec<String>,
    /// The next this-many PUTs answer 409 Conflict (a concurrent writer won).
    pub conflicting_puts: u32,
    /// Namespaces that do not exist: creating anything in them answers 404, as the API does.
    pub missing_namespaces: Vec<String>,
}

/// The mocked API server.
#[derive(Clone, Default)]
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
}

/// A request path split into the collection path and the object name / subresource.
struct Target {
    collection: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]] or apis/{g}/{v}/namespaces/...
    let prefix_len = match *parts.first()? {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    let rest = &parts[prefix_len..];
    let (collection_len, tail) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (prefix_len + 3, &rest[3..])
    } else {
        (prefix_len + 1, &rest[1..])
    };
    Some(Target {
        collection: parts[..collection_len].join("/"),
        name: tail.first().map(|s| s.to_string()),
        subresource: tail.get(1).map(|s| s.to_string()),
    })
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
                .replace('+', " ")
        })
    })
}

fn matches_selector(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let Some((k, v)) = term.split_once('=') else {
            return true;
        };
        object["metadata"]["labels"][k].as_str() == Some(v)
    })
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl ApiServer {
    /// A kube `Client` talking to a fresh mocked API server.
    pub fn start() -> (Client, ApiServer) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = ApiServer::default();
        let serving = server.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = serving.handle(request).await;
                send.send_response(response);
            }
        });
        (Client::new(service, "default"), server)
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Inserts or replaces an object directly (as another client would).
    pub fn put(&self, collection: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().expect("name").to_string();
        let mut store = self.store();
        store.resource_version += 1;
        let rv = store.resource_version;
        store.uid += 1;
        let uid = format!("uid-{}", store.uid);
        let mut object = object;
        let meta = object["metadata"].as_object_mut().expect("metadata");
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("uid").or_insert(json!(uid));
        meta.entry("generation").or_insert(json!(1));
        meta.entry("creationTimestamp").or_insert(json!("2026-01-01T00:00:00Z"));
        store.objects.insert((collection.to_string(), name), object);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.store()
            .objects
            .get(&(collection.to_string(), name.to_string()))
            .cloned()
    }

    pub fn list(&self, collection: &str) -> Vec<Value> {
        self.store()
            .objects
            .iter()
            .filter(|((c, _), _)| c == collection)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn remove(&self, collection: &str, name: &str) -> Option<Value> {
        self.store().objects.remove(&(collection.to_string(), name.to_string()))
    }

    /// Changes an object in place (bumping resourceVersion, and generation if `spec` changed).
    pub fn modify(&self, collection: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut store = self.store();
        store.resource_version += 1;
        let rv = store.resource_version;
        let key = (collection.to_string(), name.to_string());
        let object = store.objects.get_mut(&key).expect("object to modify");
        let spec_before = object["spec"].clone();
        f(object);
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object["spec"] != spec_before {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
    }

    /// The recorded requests.
    pub fn log(&self) -> Vec<Recorded> {
        self.store().log.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_log(&self) {
        self.store().log.clear();
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        let method = parts.method.to_string();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (code, value) = {
            let mut store = self.store();
            store.log.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                body: body.clone(),
            });
            Self::respond(&mut store, &method, &path, &query, &content_type, body)
        };
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&value).unwrap_or_default()))
            .expect("response")
    }

    fn respond(
        store: &mut Store,
        method: &str,
        path: &str,
        query: &str,
        content_type: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let Some(target) = parse_path(path) else {
            return status(404, "NotFound", "unknown path");
        };
        if store.failing.contains(&target.collection) {
            return status(500, "InternalError", "injected failure");
        }
        if method == "POST" {
            if let Some(ns) = store
                .missing_namespaces
                .iter()
                .find(|ns| target.collection.contains(&format!("namespaces/{ns}/")))
            {
                return status(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
            }
        }
        store.resource_version += 1;
        let rv = store.resource_version;
        match (method, target.name) {
            ("GET", None) => {
                let selector = query_param(query, "labelSelector").unwrap_or_default();
                let items: Vec<Value> = store
                    .objects
                    .iter()
                    .filter(|((c, _), v)| *c == target.collection && matches_selector(v, &selector))
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List",
                           "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
                )
            }
            ("GET", Some(name)) => match store.objects.get(&(target.collection, name.clone())) {
                Some(v) => (200, v.clone()),
                None => status(404, "NotFound", &format!("{name} not found")),
            },
            ("POST", None) => {
                let Some(mut object) = body else {
                    return status(400, "BadRequest", "no body");
                };
                let name = match object["metadata"]["name"].as_str() {
                    Some(n) => n.to_string(),
                    None => {
                        let prefix = object["metadata"]["generateName"].as_str().unwrap_or("obj-");
                        format!("{prefix}{rv}")
                    }
                };
                let key = (target.collection, name.clone());
                if store.objects.contains_key(&key) {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                store.uid += 1;
                object["metadata"]["name"] = json!(name);
                object["metadata"]["uid"] = json!(format!("uid-{}", store.uid));
                object["metadata"]["resourceVersion"] = json!(rv.to_string());
                object["metadata"]["generation"] = json!(1);
                store.objects.insert(key, object.clone());
                (201, object)
            }
            ("PUT", Some(name)) => {
                let Some(mut object) = body else {
                    return status(400, "BadRequest", "no body");
                };
                let key = (target.collection, name.clone());
                if store.conflicting_puts > 0 {
                    store.conflicting_puts -= 1;
                    return status(409, "Conflict", "the object has been modified");
                }
                let Some(existing) = store.objects.get(&key) else {
                    return status(404, "NotFound", &format!("{name} not found"));
                };
                if object["metadata"]["resourceVersion"] != existing["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", "the object has been modified");
                }
                let uid = existing["metadata"]["uid"].clone();
                object["metadata"]["resourceVersion"] = json!(rv.to_string());
                object["metadata"]["uid"] = uid;
                store.objects.insert(key, object.clone());
                (200, object)
            }
            ("PATCH", Some(name)) => {
                let Some(patch) = body else {
                    return status(400, "BadRequest", "no body");
                };
                let key = (target.collection, name.clone());
                let existing = store.objects.get(&key).cloned();
                let object = if content_type.contains("apply-patch") {
                    if !query.contains("fieldManager=") {
                        return status(400, "BadRequest", "apply needs a fieldManager");
                    }
                    match (existing, target.subresource.as_deref()) {
                        (Some(mut existing), Some("status")) => {
                            existing["status"] = patch["status"].clone();
                            existing
                        }
                        (None, Some(_)) => return status(404, "NotFound", &format!("{name} not found")),
                        (Some(existing), _) => {
                            let mut object = patch.clone();
                            if object.get("status").is_none() {
                                if let Some(s) = existing.get("status") {
                                    object["status"] = s.clone();
                                }
                            }
                            for key in ["uid", "creationTimestamp", "deletionTimestamp"] {
                                if let Some(v) = existing["metadata"].get(key) {
                                    object["metadata"][key] = v.clone();
                                }
                            }
                            let mut generation = existing["metadata"]["generation"].as_i64().unwrap_or(1);
                            if object["spec"] != existing["spec"] {
                                generation += 1;
                            }
                            object["metadata"]["generation"] = json!(generation);
                            object
                        }
                        (None, None) => {
                            store.uid += 1;
                            let mut object = patch.clone();
                            object["metadata"]["uid"] = json!(format!("uid-{}", store.uid));
                            object["metadata"]["generation"] = json!(1);
                            object
                        }
                    }
                } else {
                    let Some(mut existing) = existing else {
                        return status(404, "NotFound", &format!("{name} not found"));
                    };
                    merge_patch(&mut existing, &patch);
                    existing
                };
                let mut object = object;
                object["metadata"]["resourceVersion"] = json!(rv.to_string());
                store.objects.insert(key, object.clone());
                (200, object)
            }
            ("DELETE", Some(name)) => match store.objects.remove(&(target.collection, name.clone())) {
                Some(v) => (200, v),
                None => status(404, "NotFound", &format!("{name} not found")),
            },
            _ => status(405, "MethodNotAllowed", "unsupported"),
        }
    }
}
