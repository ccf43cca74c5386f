//! Qdrant's success envelope: `{"result": ..., "status": "ok", "time": seconds}`.

use std::time::Instant;

use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
    status: &'static str,
    time: f64,
}

pub fn ok<T: Serialize>(started: Instant, result: T) -> Response {
    axum::Json(Envelope {
        result,
        status: "ok",
        time: started.elapsed().as_secs_f64(),
    })
    .into_response()
}

/// `202 Accepted` with `{"result": null, "status": "accepted", ...}`: the operation goes on in the
/// background (`?wait=false` of snapshot operations, as Qdrant answers them).
pub fn accepted(started: Instant) -> Response {
    let body = axum::Json(Envelope {
        result: (),
        status: "accepted",
        time: started.elapsed().as_secs_f64(),
    });
    (axum::http::StatusCode::ACCEPTED, body).into_response()
}
