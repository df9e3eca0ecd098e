//! A POST to `/graphql` whose body came with its headers (what every client sends for a query)
//! is answered by the handler's own code without going through the router. It gets what the
//! router's layers would give it: its span (and a server error logged as one), the time
//! limit, the JSON shape of every error. It skips what they cost each request: the boxed
//! services, the matched path, the body's limit wrapper, the header map copied for an
//! extractor, a timer armed for an answer that is ready at once. On this path those cost as
//! much as replaying a stored response. Anything else (GET, a body still arriving, a CORS
//! request, another route) goes to the router.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, ORIGIN};
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};
use tower_http::classify::ServerErrorsFailureClass;
use tracing::Instrument;

use crate::http::errors::{as_json, describe, error_response};
use crate::http::{request_span, AppState};

/// Bodies up to this size are taken here: they come in one read with their headers.
const MAX_DIRECT_BYTES: usize = 64 * 1024;

/// `request`'s response, or the request (its body as read so far, then the rest) for the router.
pub(in crate::http) async fn post(
    state: &AppState,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<axum::response::Response, Request<Body>> {
    if !may_take(state, &request) {
        return Err(request.map(Body::new));
    }
    let span = request_span::make(&request);
    let (parts, body) = request.into_parts();
    let body = match arrived(body) {
        Ok(body) => body,
        Err(partly_read) => return Err(Request::from_parts(parts, partly_read)),
    };
    let started = Instant::now();
    // Boxed: the answer's future is over a kilobyte, which the time limit, the span and every
    // future above would otherwise each move into place, for every request.
    let answer = Box::pin(super::answer_post(state, peer, &parts.headers, body, started));
    let response = within(state.limits.request_timeout, answer).instrument(span.clone()).await;
    let response = as_json(response).await;
    request_span::finished(&response, Duration::ZERO, &span);
    if response.status().is_server_error() {
        let class = ServerErrorsFailureClass::StatusCode(response.status());
        request_span::failed(class, started.elapsed(), &span);
    }
    Ok(response)
}

/// A POST to `/graphql` with a small body of known length and no CORS to answer.
fn may_take(state: &AppState, request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    let small = headers
        .get(CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length <= MAX_DIRECT_BYTES.min(state.limits.max_body_bytes));
    request.method() == Method::POST
        && request.uri().path() == "/graphql"
        && small
        && (state.limits.cors_allow_origins.is_empty() || !headers.contains_key(ORIGIN))
}

/// The whole body when it has arrived already, as a small request's has with its headers (hyper
/// hands the bytes it read over before the service runs). Otherwise a body that yields what
/// was read, then the rest as it comes.
fn arrived(mut body: Incoming) -> Result<Bytes, Body> {
    let mut read = Vec::new();
    let rest = loop {
        let next = body.frame().now_or_never();
        match next {
            Some(Some(Ok(frame))) => read.extend(frame.into_data().ok()),
            Some(None) => {
                return Ok(if read.len() == 1 { read.swap_remove(0) } else { read.concat().into() })
            }
            Some(Some(Err(error))) => break futures::stream::once(async { Err(error) }).left_stream(),
            None => break BodyStream::new(body).right_stream(),
        }
    };
    let read = futures::stream::iter(read.into_iter().map(|data| Ok(Frame::data(data))));
    Err(Body::new(StreamBody::new(read.chain(rest))))
}

/// `answer`, or a 504 once it has waited `limit`. The timer is armed when the answer first has
/// to wait: one ready at once (a replay, a read from the cache) costs none.
async fn within(
    limit: Duration,
    answer: impl Future<Output = axum::response::Response>,
) -> axum::response::Response {
    let mut answer = pin!(answer);
    let mut deadline = pin!(None);
    poll_fn(|cx| {
        if let Poll::Ready(response) = answer.as_mut().poll(cx) {
            return Poll::Ready(response);
        }
        if deadline.is_none() {
            deadline.set(Some(tokio::time::sleep(limit)));
        }
        let Some(deadline) = deadline.as_mut().as_pin_mut() else { return Poll::Pending };
        deadline.poll(cx).map(|()| {
            let (message, code) = describe(StatusCode::GATEWAY_TIMEOUT);
            error_response(StatusCode::GATEWAY_TIMEOUT, message, code)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_limit_holds_for_an_answer_that_waits_and_costs_nothing_for_one_ready_at_once() {
        let ready = within(Duration::from_secs(1), async { StatusCode::OK.into_response() }).await;
        assert_eq!(ready.status(), StatusCode::OK);

        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        };
        let cut = within(Duration::from_secs(1), slow).await;
        assert_eq!(cut.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = axum::body::to_bytes(cut.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "REQUEST_TIMEOUT");

        let waits_less = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            StatusCode::OK.into_response()
        };
        assert_eq!(within(Duration::from_secs(1), waits_less).await.status(), StatusCode::OK);
    }
}
