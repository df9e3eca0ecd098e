//! Subscriptions (and queries) over WebSocket at `/graphql/ws`, speaking `graphql-transport-ws`
//! and the legacy `graphql-ws` (subscriptions-transport-ws) protocol, as the client asks in
//! `Sec-WebSocket-Protocol`.
//!
//! async-graphql runs the protocol; this loop owns the socket around it. It reads every frame
//! itself, so that each violation gets the close code its protocol names: RFC 6455's 1002, 1007
//! and 1009 for frames, graphql-transport-ws's 4400 (not JSON), 4401 (no `connection_init`
//! first), 4408 (none within `--connection-init-timeout`, auth on or off), 4409 (an id in use) and
//! 4429 (a second `connection_init`). A ping every keep-alive interval (and a `ka` message for
//! legacy clients, which expect one); a client that answers nothing for two intervals, or does
//! not take a message for as long, is cut off; at shutdown every socket is closed with 1001
//! (going away) so clients reconnect elsewhere. A socket holds a place (see `stream_slots`)
//! from the upgrade to its close; what it held (subscriptions, their channels) is dropped with
//! it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, StatusCode};
use futures::{SinkExt, StreamExt};
use tokio::time::Instant;

use super::errors::error_response;
use super::stream_slots::StreamSlot;
use super::AppState;
use crate::auth::{Authenticator, Refusal};
use crate::error::ErrorCode;
use crate::graphql::{DocumentId, StreamingExecutor};
use crate::request::Identity;

const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];
// graphql-transport-ws's close codes (used for the legacy protocol too).
/// A message that is not JSON, or not one of the protocol's.
const CLOSE_INVALID_MESSAGE: u16 = 4400;
/// Missing or refused credentials, or an operation before `connection_init`.
const CLOSE_UNAUTHORIZED: u16 = 4401;
/// No `connection_init` within `--connection-init-timeout`.
const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// A client that stopped answering pings (the same code: it went silent).
const CLOSE_UNRESPONSIVE: u16 = 4408;
/// An operation id already in use.
const CLOSE_DUPLICATE_ID: u16 = 4409;
/// A second `connection_init`, too many failed authentications from the address, or a caller
/// over its share of sockets.
const CLOSE_TOO_MANY: u16 = 4429;

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
        return error_response(StatusCode::BAD_REQUEST, &message, ErrorCode::BadRequest);
    };
    let slot = match state.streaming_slots.take(peer.ip(), false) {
        Ok(slot) => slot,
        Err(refusal) => return *refusal,
    };
    let executor = state.streaming_executor(peer, "websocket");
    // Credentials on the upgrade request (service clients), else in `connection_init`
    // (browsers cannot set headers on a WebSocket); with authentication off, anonymous now.
    let (identity, pending_auth) = if super::auth::credential(&headers).is_some() || !state.auth.is_required()
    {
        match super::auth::identify(&state, &headers, peer.ip()).await {
            Ok(identity) => (Some(identity), None),
            Err(refusal) => return *refusal,
        }
    } else {
        (None, Some(state.auth.clone()))
    };
    let connection = Connection {
        executor,
        protocol,
        identity,
        pending_auth,
        peer: peer.ip(),
        keepalive: state.live_config.keepalive_interval,
        init_timeout: state.live_config.connection_init_timeout,
        shutdown: state.shutdown.clone(),
    };
    let max_message = state.limits.max_body_bytes;
    upgrade
        .protocols(PROTOCOLS)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(socket, connection, slot))
}

/// Serves one socket; `pending_auth`: the connection must authenticate in `connection_init`.
async fn serve(socket: WebSocket, connection: Connection, mut slot: StreamSlot) {
    let Connection {
        executor,
        protocol,
        identity,
        pending_auth,
        peer,
        keepalive,
        init_timeout,
        mut shutdown,
    } = connection;
    let (mut sink, mut stream) = socket.split();
    let close = |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    let introduced = introduction(&mut stream, init_timeout, pending_auth.as_ref(), peer).await.and_then(
        |(init, from_init)| {
            let identity = from_init.or(identity).unwrap_or_else(Identity::anonymous);
            slot.introduced(&identity).map_err(|refusal| Closing::new(CLOSE_TOO_MANY, refusal))?;
            executor.identify(identity);
            Ok(init)
        },
    );
    let init = match introduced {
        Ok(init) => init,
        Err(Closing(code, reason)) => {
            let _ = sink.send(close(code, &reason)).await;
            return;
        }
    };
    // async-graphql runs the protocol on what this loop hands it, once checked. The socket is
    // read only while the protocol has room for another message: a client that sends faster
    // than its operations start waits in its own TCP window.
    let (to_protocol, input) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let _ = to_protocol.try_send(init);
    let input =
        futures::stream::unfold(input, |mut input| async move { Some((input.recv().await?, input)) }).boxed();
    let mut protocol_messages = async_graphql::http::WebSocket::new(executor, input, protocol);
    let mut operations = Operations::default();
    let mut heard = Instant::now();
    let mut pings = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    loop {
        let outgoing = tokio::select! {
            message = stream.next(), if to_protocol.capacity() > 0 => {
                heard = Instant::now();
                let text = match message {
                    Some(Ok(Message::Text(text))) => axum::body::Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        if let Some(Closing(code, reason)) = protocol_error(error) {
                            let _ = sink.send(close(code, &reason)).await;
                        }
                        break;
                    }
                };
                if let Err(Closing(code, reason)) = operations.client_sent(&text) {
                    let _ = sink.send(close(code, &reason)).await;
                    break;
                }
                if to_protocol.try_send(carry_document_id(text)).is_err() {
                    break;
                }
                continue;
            }
            message = protocol_messages.next() => match message {
                Some(WsMessage::Text(text)) => {
                    operations.server_sent(&text);
                    Message::Text(text.into())
                }
                Some(WsMessage::Close(code, reason)) => {
                    let _ = sink.send(close(code, &reason)).await;
                    break;
                }
                None => break,
            },
            _ = pings.tick() => {
                if heard.elapsed() > keepalive * 2 {
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
        // A client that stopped reading: its socket is dropped once a send has waited as long as
        // an unanswered ping would be tolerated, instead of holding its place for good.
        match tokio::time::timeout(keepalive * 2, sink.send(outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
}

/// A `subscribe` (or `start`) whose payload names a trusted document by `documentId`, GraphQL
/// over HTTP's field, with no query: async-graphql's protocol would drop the id with the rest
/// of what its `Request` has no field for, so it is moved into the payload's extensions, where
/// the executor takes it back ([`DocumentId::from_extensions`]). Any other message is passed on
/// as it came, unread beyond a search for the field's name.
fn carry_document_id(message: axum::body::Bytes) -> axum::body::Bytes {
    const FIELD: &[u8] = br#""documentId""#;
    if !message.windows(FIELD.len()).any(|window| window == FIELD) {
        return message;
    }
    let Ok(mut parsed) = serde_json::from_slice::<serde_json::Value>(&message) else { return message };
    let Some(payload) = parsed.get_mut("payload").and_then(serde_json::Value::as_object_mut) else {
        return message;
    };
    if payload.get("query").and_then(serde_json::Value::as_str).is_some_and(|query| !query.is_empty()) {
        return message;
    }
    let Some(id) = payload.remove("documentId") else { return message };
    let extensions = payload.entry("extensions").or_insert_with(|| serde_json::json!({}));
    let Some(extensions) = extensions.as_object_mut() else { return message };
    extensions.insert(DocumentId::EXTENSION.to_owned(), id);
    serde_json::to_vec(&parsed).map_or(message, axum::body::Bytes::from)
}

/// What a socket is served with.
struct Connection {
    executor: StreamingExecutor,
    protocol: WebSocketProtocols,
    /// Who the upgrade's credentials (or, authentication off, nobody in particular) say it is.
    identity: Option<Identity>,
    pending_auth: Option<Authenticator>,
    peer: IpAddr,
    keepalive: Duration,
    init_timeout: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A close code and its reason.
struct Closing(u16, String);

impl Closing {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Closing(code, reason.into())
    }
}

/// The client's `connection_init` within `within` (any other first message is refused, as
/// graphql-transport-ws says), and the identity its payload carries when the connection must
/// authenticate there. The credential is the payload's `Authorization`, `X-API-Key`, `apiKey` or
/// `token`, the names matched in any case: clients put their HTTP headers there as they are
/// (GraphiQL its Headers tab).
async fn introduction(
    stream: &mut futures::stream::SplitStream<WebSocket>,
    within: Duration,
    auth: Option<&Authenticator>,
    peer: IpAddr,
) -> Result<(axum::body::Bytes, Option<Identity>), Closing> {
    let first = loop {
        match tokio::time::timeout(within, stream.next()).await {
            Err(_) => return Err(Closing::new(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout")),
            Ok(None | Some(Ok(Message::Close(_)))) => return Err(Closing::new(1000, "")),
            Ok(Some(Err(error))) => {
                return Err(protocol_error(error).unwrap_or_else(|| Closing::new(1000, "")));
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Text(text)))) => break axum::body::Bytes::from(text),
            Ok(Some(Ok(Message::Binary(bytes)))) => break bytes,
        }
    };
    let message: serde_json::Value = serde_json::from_slice(&first)
        .map_err(|_| Closing::new(CLOSE_INVALID_MESSAGE, "Invalid message received: not JSON"))?;
    if message["type"] != "connection_init" {
        return Err(Closing::new(CLOSE_UNAUTHORIZED, "Unauthorized: send connection_init first"));
    }
    let Some(auth) = auth else { return Ok((first, None)) };
    let payload = message["payload"].as_object();
    let credential = ["authorization", "x-api-key", "apikey", "token"].iter().find_map(|wanted| {
        let mut fields = payload.into_iter().flatten();
        fields.find(|(name, _)| name.eq_ignore_ascii_case(wanted)).and_then(|(_, value)| value.as_str())
    });
    match auth.authenticate(credential, peer).await {
        Ok(identity) => Ok((first, Some(identity))),
        Err(Refusal::Unauthenticated(refusal)) => Err(Closing::new(CLOSE_UNAUTHORIZED, refusal.0)),
        Err(Refusal::TooManyFailures(seconds)) => Err(Closing::new(
            CLOSE_TOO_MANY,
            format!("too many failed authentications from this address; retry in {seconds} s"),
        )),
    }
}

/// The close frame RFC 6455 asks for after a frame the socket could not take; `None` when the
/// connection itself failed (nothing can be sent).
fn protocol_error(error: axum::Error) -> Option<Closing> {
    let error = error.into_inner();
    match error.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Utf8(_) => Some(Closing::new(1007, "text frame is not UTF-8")),
        tungstenite::Error::Capacity(_) => Some(Closing::new(1009, "message too big")),
        tungstenite::Error::Protocol(reason) => Some(Closing::new(1002, reason.to_string())),
        _ => None,
    }
}

/// The operations the client has open on the socket, by id: kept to refuse what the protocol
/// forbids (a second `connection_init`, an id already in use, a message that is not JSON).
#[derive(Default)]
struct Operations {
    open: HashSet<String>,
}

#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

impl Operations {
    fn client_sent(&mut self, message: &[u8]) -> Result<(), Closing> {
        let envelope: Envelope = serde_json::from_slice(message)
            .map_err(|_| Closing::new(CLOSE_INVALID_MESSAGE, "Invalid message received"))?;
        match (envelope.kind.as_str(), envelope.id) {
            ("connection_init", _) => Err(Closing::new(CLOSE_TOO_MANY, "Too many initialisation requests")),
            // `subscribe` (graphql-transport-ws) or `start` (graphql-ws).
            ("subscribe" | "start", Some(id)) => {
                if self.open.contains(&id) {
                    return Err(Closing::new(
                        CLOSE_DUPLICATE_ID,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                self.open.insert(id);
                Ok(())
            }
            ("complete" | "stop", Some(id)) => {
                self.open.remove(&id);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An operation the server ended (`complete`, `error`) frees its id. Only those messages
    /// are parsed: each begins with its type, as async-graphql writes them.
    fn server_sent(&mut self, message: &str) {
        if !(message.starts_with(r#"{"type":"complete""#) || message.starts_with(r#"{"type":"error""#)) {
            return;
        }
        if let Ok(Envelope { id: Some(id), .. }) = serde_json::from_str(message) {
            self.open.remove(&id);
        }
    }
}
