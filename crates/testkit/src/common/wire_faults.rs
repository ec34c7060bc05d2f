//! Faults on the wire: the token endpoint processes the grant normally,
//! then the response is damaged in transit (reset mid-body, a slow body, a
//! stall before the headers). A middleware takes such a fault off the queue
//! before the handler runs, and the handler then sees no fault.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use http::{header, HeaderValue, StatusCode};

use super::faults::Fault;
use super::server::Shared;

tokio::task_local! {
    /// Set while a handler runs for a request whose wire fault was taken.
    static WIRE_FAULT_TAKEN: ();
}

/// True inside a handler whose request already consumed a (wire) fault.
pub(crate) fn taken_for_this_request() -> bool {
    WIRE_FAULT_TAKEN.try_with(|_| ()).is_ok()
}

/// The middleware: runs the handler, then damages its response as the
/// fault says.
pub(crate) async fn apply(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(fault) = shared.pop_wire_fault(request.uri().path()) else {
        return next.run(request).await;
    };
    tracing::debug!(?fault, "mock: applying wire fault");
    let response = WIRE_FAULT_TAKEN.scope((), next.run(request)).await;
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match fault {
        Fault::ResetMidBody => {
            let half = body.slice(..body.len() / 2);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "mock: connection reset mid-body",
                )),
            ];
            with_length(parts, body.len(), Body::from_stream(stream::iter(chunks)))
        }
        Fault::SlowBody(total) => {
            let len = body.len();
            with_length(parts, len, Body::from_stream(trickle(body, total)))
        }
        Fault::StallAfterProcessing(stall) => {
            tokio::time::sleep(stall).await;
            Response::from_parts(parts, Body::from(body))
        }
        _ => Response::from_parts(parts, Body::from(body)),
    }
}

/// `parts` with a body whose `Content-Length` is announced up front.
fn with_length(mut parts: http::response::Parts, len: usize, body: Body) -> Response {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, body)
}

/// `body` in 16 pieces, one every `total / 16`.
fn trickle(
    body: Bytes,
    total: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    const PIECES: usize = 16;
    let piece = body.len().div_ceil(PIECES).max(1);
    let pause = total / PIECES as u32;
    stream::unfold(body, move |rest| async move {
        if rest.is_empty() {
            return None;
        }
        tokio::time::sleep(pause).await;
        let mut rest = rest;
        let head = rest.split_to(piece.min(rest.len()));
        Some((Ok(head), rest))
    })
}
