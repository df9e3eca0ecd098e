//! A WebSocket client speaking either GraphQL subscription protocol by its own messages, over
//! tokio-tungstenite: what the tests use to be a real subscriber.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// `graphql-transport-ws` (the graphql-ws library's protocol).
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy `graphql-ws` (subscriptions-transport-ws).
pub const LEGACY_WS: &str = "graphql-ws";

pub struct Subscriber {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    pub protocol: &'static str,
}

/// One message of an operation, in either protocol's terms.
#[derive(Debug)]
pub enum Event {
    /// A result (`next`, or legacy `data`): the GraphQL response.
    Next(String, Value),
    /// An operation-level error (`error`): the errors.
    Error(String, Value),
    Complete(String),
    /// The server closed the socket, with its close code.
    Closed(Option<u16>),
}

/// Opens `/graphql/ws` at `address`, and initialises the connection.
pub async fn connect(address: std::net::SocketAddr, protocol: &'static str) -> Subscriber {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("the WebSocket opens");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    let mut subscriber = Subscriber { socket, protocol };
    subscriber.send(json!({ "type": "connection_init", "payload": {} })).await;
    let ack = subscriber.receive().await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    subscriber
}

impl Subscriber {
    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.start(id, json!({ "query": query, "variables": variables })).await;
    }

    /// Starts operation `id` with `payload` as it is (a trusted document's `documentId`, say).
    pub async fn start(&mut self, id: &str, payload: Value) {
        let kind = if self.protocol == TRANSPORT_WS { "subscribe" } else { "start" };
        self.send(json!({ "id": id, "type": kind, "payload": payload })).await;
    }

    /// Stops operation `id`.
    pub async fn complete(&mut self, id: &str) {
        let kind = if self.protocol == TRANSPORT_WS { "complete" } else { "stop" };
        self.send(json!({ "id": id, "type": kind })).await;
    }

    /// The next event of any operation, within `within`.
    pub async fn event_within(&mut self, within: Duration) -> Event {
        tokio::time::timeout(within, self.event()).await.expect("an event in time")
    }

    /// The next event of any operation (keep-alives skipped).
    pub async fn event(&mut self) -> Event {
        loop {
            let message = match self.socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(_)) | None => return Event::Closed(None),
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => return Event::Closed(frame.map(|frame| frame.code.into())),
                _ => continue,
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            let id = message["id"].as_str().unwrap_or_default().to_owned();
            match message["type"].as_str().unwrap() {
                "next" | "data" => return Event::Next(id, message["payload"].clone()),
                "error" => return Event::Error(id, message["payload"].clone()),
                "complete" => return Event::Complete(id),
                "ka" | "ping" | "pong" => continue,
                other => panic!("unexpected message {other}: {message}"),
            }
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.unwrap();
    }

    async fn receive(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .unwrap();
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "ka" {
                    return value;
                }
            }
        }
    }
}
