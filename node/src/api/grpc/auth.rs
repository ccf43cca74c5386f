//! A tower layer in front of every gRPC service: authenticates the call (`api-key` metadata or
//! `authorization: Bearer`, a key or a JWT) with the same rules as REST, checks what its method
//! needs when the path says (see `access.rs`), and records each call in the metrics.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::access::{method_need, MethodNeed};
use super::per_collection::CollectionName;
use crate::api::auth::jwt::ValueExists;
use crate::api::auth::{self, Access, Refusal};
use crate::error::Error;
use crate::node::Node;

fn refusal_status(refusal: &Refusal) -> Status {
    let code = if refusal.is_forbidden() {
        Code::PermissionDenied
    } else {
        Code::Unauthenticated
    };
    Status::new(code, refusal.message())
}

#[derive(Clone)]
pub struct AuthLayer {
    node: Arc<Node>,
}

impl AuthLayer {
    pub fn new(node: Arc<Node>) -> Self {
        AuthLayer { node }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            node: self.node.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    node: Arc<Node>,
}

impl<S, B> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let path = req.uri().path().to_string();
        let verdict = self.authorize(&mut req, &path);
        let node = self.node.clone();
        // The readied service takes this call; a clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let refused = match verdict {
                Ok(Some(condition)) => auth::check_value_exists(&node, &condition)
                    .await
                    .err()
                    .map(|r| refusal_status(&r)),
                Ok(None) => None,
                Err(status) => Some(status),
            };
            let response = match refused {
                None => inner.call(req).await?,
                Some(status) => status.into_http(),
            };
            // A failed call answers with its status in the headers (trailers-only response);
            // a successful one puts `grpc-status: 0` in the trailers. As Qdrant: the header's
            // code, else 0 for an HTTP success and 2 (UNKNOWN) otherwise.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|s| s.to_str().ok()?.parse::<i32>().ok())
                .unwrap_or(if response.status().is_success() { 0 } else { 2 });
            let collection = response.extensions().get::<CollectionName>().map(|c| c.0.as_str());
            node.metrics
                .observe_grpc(&path, code, collection, started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

impl<S> Authenticated<S> {
    /// Authenticates the call and checks what its method needs, if that is known from the path;
    /// leaves the caller's access in the request for the per-collection checks. Returns a
    /// JWT's `value_exists` condition, still to be checked.
    fn authorize<B>(&self, req: &mut http::Request<B>, path: &str) -> Result<Option<ValueExists>, Status> {
        let service = &self.node.settings.service;
        let need = method_need(path);
        if need == MethodNeed::Public || !auth::keys_configured(service) {
            req.extensions_mut().insert(Access::FULL);
            return Ok(None);
        }
        let credential = auth::authenticate_headers(service, req.headers()).map_err(|r| refusal_status(&r))?;
        if let MethodNeed::Global(need) = need {
            credential
                .access
                .check(&need)
                .map_err(|why| super::error::status(Error::Forbidden(why)))?;
        }
        req.extensions_mut().insert(credential.access);
        Ok(credential.value_exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes() {
        assert_eq!(refusal_status(&Refusal::Expired).code(), Code::PermissionDenied);
        assert_eq!(refusal_status(&Refusal::Missing).code(), Code::Unauthenticated);
        assert_eq!(refusal_status(&Refusal::Invalid).code(), Code::Unauthenticated);
    }
}
