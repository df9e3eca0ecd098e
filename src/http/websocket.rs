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
use crate::error::request_codes::BAD_REQUEST;
use crate::graphql::StreamingExecutor;

const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];
/// Close code for a client that stopped answering pings.
const CLOSE_UNRESPONSIVE: u16 = 4408;

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
    let keepalive = state.live_config.keepalive_interval;
    let shutdown = state.shutdown.clone();
    let max_message = state.limits.max_body_bytes;
    upgrade
        .protocols(PROTOCOLS)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, executor, protocol, keepalive, shutdown, slot))
}

async fn serve(
    socket: WebSocket,
    executor: StreamingExecutor,
    protocol: WebSocketProtocols,
    keepalive: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let (mut sink, stream) = socket.split();
    let heard = Arc::new(std::sync::Mutex::new(Instant::now()));
    let heard_by_input = heard.clone();
    let input = stream.take_while(|message| std::future::ready(message.is_ok())).filter_map(move |message| {
        *heard_by_input.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        std::future::ready(match message {
            Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
            Ok(Message::Binary(bytes)) => Some(bytes),
            _ => None,
        })
    });
    let mut protocol_messages = async_graphql::http::WebSocket::new(executor, input, protocol);
    let mut pings = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    let close = |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
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
