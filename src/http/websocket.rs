//! Subscriptions (and queries) over WebSocket at `/graphql/ws`, speaking `graphql-transport-ws`
//! and the legacy `graphql-ws` (subscriptions-transport-ws) protocol, as the client asks in
//! `Sec-WebSocket-Protocol`.
//!
//! async-graphql runs the protocol; this loop owns the socket around it: a ping every
//! keep-alive interval (and a `ka` message for legacy clients, which expect one), a client that
//! answers nothing for two intervals is cut off, and at shutdown every socket is closed with
//! 1001 (going away) so clients reconnect elsewhere. A socket counts against
//! `--max-streaming-connections` from the upgrade to its close; what it held (subscriptions,
//! their channels) is dropped with it.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, StatusCode};
use futures::{SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::errors::error_response;
use super::AppState;
use crate::auth::{Authenticator, Identity};
use crate::error::request_codes::BAD_REQUEST;
use crate::graphql::StreamingExecutor;

const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];
/// Close code for a client that stopped answering pings.
const CLOSE_UNRESPONSIVE: u16 = 4408;
/// Close code for missing or refused credentials (graphql-transport-ws's "Unauthorized").
const CLOSE_UNAUTHORIZED: u16 = 4401;

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    let asked = headers.get(SEC_WEBSOCKET_PROTOCOL).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let Some(protocol) = asked.split(',').find_map(|name| WebSocketProtocols::from_str(name.trim()).ok())
    else {
        let message = format!("Sec-WebSocket-Protocol must name one of: {}", PROTOCOLS.join(", "));
        return error_response(StatusCode::BAD_REQUEST, &message, BAD_REQUEST);
    };
    let slot = match state.streaming_slot() {
        Ok(slot) => slot,
        Err(refusal) => return *refusal,
    };
    let executor = state.streaming_executor(peer, "websocket");
    // Credentials on the upgrade request (service clients), else in `connection_init`
    // (browsers cannot set headers on a WebSocket); with authentication off, anonymous now.
    let pending_auth = if super::auth::credential(&headers).is_some() || !state.auth.is_required() {
        match super::auth::identify(&state, &headers).await {
            Ok(identity) => executor.identify(identity),
            Err(refusal) => return *refusal,
        }
        None
    } else {
        Some(state.auth.clone())
    };
    let keepalive = state.live_config.keepalive_interval;
    let shutdown = state.shutdown.clone();
    let max_message = state.limits.max_body_bytes;
    upgrade
        .protocols(PROTOCOLS)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, executor, protocol, pending_auth, keepalive, shutdown, slot))
}

/// Serves one socket; `pending_auth`: the connection must authenticate in `connection_init`.
async fn serve(
    socket: WebSocket,
    executor: StreamingExecutor,
    protocol: WebSocketProtocols,
    pending_auth: Option<Authenticator>,
    keepalive: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let (mut sink, mut stream) = socket.split();
    let close = |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    let mut init = None;
    if let Some(auth) = pending_auth {
        match authenticate_init(&auth, &mut stream, keepalive).await {
            Ok((identity, message)) => {
                executor.identify(identity);
                init = Some(message);
            }
            Err(refusal) => {
                // graphql-transport-ws's code for an unauthorised connection.
                let _ = sink.send(close(CLOSE_UNAUTHORIZED, &refusal)).await;
                return;
            }
        }
    }
    let heard = Arc::new(std::sync::Mutex::new(Instant::now()));
    let heard_by_input = heard.clone();
    let rest = stream.take_while(|message| std::future::ready(message.is_ok())).filter_map(move |message| {
        *heard_by_input.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        std::future::ready(match message {
            Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
            Ok(Message::Binary(bytes)) => Some(bytes),
            _ => None,
        })
    });
    let input = futures::stream::iter(init).chain(rest);
    let mut protocol_messages = async_graphql::http::WebSocket::new(executor, input, protocol);
    let mut pings = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    loop {
        let outgoing = tokio::select! {
            message = protocol_messages.next() => match message {
                Some(WsMessage::Text(text)) => Message::Text(text.into()),
                Some(WsMessage::Close(code, reason)) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break;
                }
                None => break,
            },
            _ = pings.tick() => {
                let silent = heard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).elapsed();
                if silent > keepalive * 2 {
                    let _ = sink.send(close(CLOSE_UNRESPONSIVE, "no answer to pings")).await;
                    break;
                }
                if protocol == WebSocketProtocols::SubscriptionsTransportWS
                    && sink.send(Message::Text(r#"{"type":"ka"}"#.into())).await.is_err()
                {
                    break;
                }
                Message::Ping(axum::body::Bytes::new())
            }
            () = &mut stopping => {
                let _ = sink.send(close(1001, "server shutting down")).await;
                break;
            }
        };
        if sink.send(outgoing).await.is_err() {
            break;
        }
    }
}

/// The identity `connection_init` carries, and the message itself to hand on to the protocol;
/// or why not. The credential is the payload's `Authorization`, `X-API-Key`, `apiKey` or `token`,
/// the names matched in any case: clients put their HTTP headers there as they are (GraphiQL its
/// Headers tab).
async fn authenticate_init(
    auth: &Authenticator,
    stream: &mut futures::stream::SplitStream<WebSocket>,
    within: Duration,
) -> Result<(Identity, axum::body::Bytes), String> {
    let first = tokio::time::timeout(within, stream.next()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return Err("send connection_init with credentials first".into());
    };
    let message: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if message["type"] != "connection_init" {
        return Err("send connection_init with credentials first".into());
    }
    let payload = message["payload"].as_object();
    let credential = ["authorization", "x-api-key", "apikey", "token"].iter().find_map(|wanted| {
        let mut fields = payload.into_iter().flatten();
        fields.find(|(name, _)| name.eq_ignore_ascii_case(wanted)).and_then(|(_, value)| value.as_str())
    });
    let identity = auth.authenticate(credential).await.map_err(|refusal| refusal.0)?;
    Ok((identity, axum::body::Bytes::from(text)))
}
