//! Operations as a `multipart/mixed` stream: Apollo Client's protocol for subscriptions over
//! plain HTTP (`Accept: multipart/mixed;boundary="graphql";subscriptionSpec=1.0`), which its
//! `HttpLink` speaks without a WebSocket library or an SSE link. Each result is a part
//! `{"payload": <response>}`; an empty `{}` part every [`HEARTBEAT`] keeps proxies from closing a
//! quiet stream; the closing boundary ends it. Same gate, limits, authentication and stream
//! places as WebSockets and server-sent events ([`super::events::open`]).
//!
//! Protocol: <https://www.apollographql.com/docs/graphos/routing/operations/subscriptions/multipart-protocol>

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::StreamExt;

use super::AppState;
use crate::request::Identity;

/// How often a quiet stream sends an empty part: the protocol's five seconds.
const HEARTBEAT: Duration = Duration::from_secs(5);

const CONTENT: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"";
const PART: &[u8] = b"--graphql\r\nContent-Type: application/json\r\n\r\n";
const END: &[u8] = b"--graphql--\r\n";

/// Whether the client asked for Apollo's multipart protocol (and prefers it to plain JSON).
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(async_graphql::http::is_accept_multipart_mixed)
}

/// Runs one operation and streams its results as parts.
pub fn stream(
    state: &AppState,
    peer: SocketAddr,
    identity: Identity,
    request: async_graphql::Request,
) -> axum::response::Response {
    let (slot, results) = match super::events::open(state, peer, identity, request, "multipart") {
        Ok(opened) => opened,
        Err(refusal) => return *refusal,
    };
    let parts = futures::stream::unfold(
        (
            results.fuse(),
            Some(slot),
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
        ),
        |(mut results, slot, mut heartbeat)| async move {
            // Ended: the closing boundary has been sent.
            let slot = slot?;
            let part = tokio::select! {
                response = results.next() => match response {
                    Some(response) => {
                        let mut part = PART.to_vec();
                        part.extend_from_slice(b"{\"payload\":");
                        part.extend_from_slice(&super::wire::to_vec(&response));
                        part.extend_from_slice(b"}\r\n");
                        heartbeat.reset();
                        Some(part)
                    }
                    None => None,
                },
                _ = heartbeat.tick() => Some([PART, b"{}\r\n"].concat()),
            };
            Some(match part {
                Some(part) => {
                    (Ok::<_, std::convert::Infallible>(Bytes::from(part)), (results, Some(slot), heartbeat))
                }
                None => (Ok(Bytes::from_static(END)), (results, None, heartbeat)),
            })
        },
    );
    ([(CONTENT_TYPE, CONTENT), (CACHE_CONTROL, "no-store")], Body::from_stream(parts)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apollo_clients_accept_header_asks_for_it_and_plain_json_does_not() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, accept.parse().unwrap());
            wanted(&headers)
        };
        assert!(with("multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"));
        assert!(with("multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\""));
        assert!(!with("application/json"));
        assert!(!with("application/graphql-response+json,application/json;q=0.9"));
        assert!(!with("multipart/mixed;boundary=\"other\";subscriptionSpec=1.0"));
    }
}
