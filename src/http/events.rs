//! Operations as server-sent events, for clients that cannot open a WebSocket (an
//! `EventSource`, a proxy that refuses upgrades): `/graphql` with `Accept: text/event-stream`,
//! by GET or POST, in the GraphQL over SSE protocol's distinct-connections mode. Each result is
//! an `event: next` with the response as `data`, then `event: complete`; a comment line every
//! keep-alive interval keeps proxies from closing a quiet stream.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::StreamExt;

use super::stream_slots::StreamSlot;
use super::AppState;
use crate::error::ErrorCode;
use crate::request::Identity;
use async_graphql::Executor;

/// The results of one streamed operation, and the place it holds among the open streams
/// (released when the stream is dropped).
type Opened = (StreamSlot, futures::stream::BoxStream<'static, async_graphql::Response>);

/// Takes a place among the open streams for `identity` at `peer`, then runs `request` as
/// `transport` does (the same gate, limits and per-caller counting as every streaming
/// transport); the refusal to send otherwise.
pub(super) fn open(
    state: &AppState,
    peer: SocketAddr,
    identity: Identity,
    request: async_graphql::Request,
    transport: &'static str,
) -> Result<Opened, Box<axum::response::Response>> {
    let mut slot = state.streaming_slots.take(peer.ip(), true)?;
    if let Err(refusal) = slot.introduced(&identity) {
        return Err(Box::new(super::errors::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &refusal,
            ErrorCode::ConnectionLimit,
        )));
    }
    let executor = state.streaming_executor(peer, transport).counted_by_transport();
    executor.identify(identity);
    Ok((slot, executor.execute_stream(request, None)))
}

/// Whether the client asked for an event stream.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Runs one operation and streams its results.
pub fn stream(
    state: &AppState,
    peer: SocketAddr,
    identity: Identity,
    request: async_graphql::Request,
) -> axum::response::Response {
    let (slot, results) = match open(state, peer, identity, request, "sse") {
        Ok(opened) => opened,
        Err(refusal) => return *refusal,
    };
    let events = results
        .map(move |response| {
            let _open = &slot;
            let data = String::from_utf8(super::wire::to_vec(&response)).expect("JSON is UTF-8");
            Ok::<_, Infallible>(Event::default().event("next").data(data))
        })
        .chain(futures::stream::once(async { Ok(Event::default().event("complete").data("")) }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.live_config.keepalive_interval))
        .into_response()
}
