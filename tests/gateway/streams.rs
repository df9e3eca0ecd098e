//! The stream-abuse battery: WebSockets and event streams that misbehave or flood, and what the
//! server does about each (closed, with which code; refused; counted). Frames are written by
//! hand, so that what a library would never send can be sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{gateway_cli, history_config, test_config, TestGateway};
use crate::metrics::{scrape, value};

const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket spoken frame by frame.
struct RawSocket {
    tcp: TcpStream,
}

impl RawSocket {
    /// The upgrade, answered 101; or the HTTP status line of the refusal.
    async fn open(address: SocketAddr, headers: &str) -> Result<RawSocket, String> {
        let mut tcp = TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET /graphql/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: graphql-transport-ws\r\n{headers}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            if tcp.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.lines().next().unwrap_or_default().to_owned();
        if status.contains(" 101 ") {
            Ok(RawSocket { tcp })
        } else {
            Err(status)
        }
    }

    /// One frame: `first` is FIN, RSV and opcode; masked as a client must, unless `masked` is false.
    async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut frame = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            len @ 0..=125 => frame.push(mask_bit | len as u8),
            len @ 126..=65535 => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let key = [0x12, 0x34, 0x56, 0x78];
        if masked {
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ key[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        // The server may close before taking it all: what matters is what it answers.
        let _ = self.tcp.write_all(&frame).await;
    }

    async fn text(&mut self, text: &str) {
        self.frame(0x81, text.as_bytes(), true).await;
    }

    /// The code of the close frame the server sends next (text frames before it are skipped);
    /// `None` when the connection ends without one.
    async fn close_code(&mut self) -> Option<u16> {
        tokio::time::timeout(WAIT, async {
            loop {
                let mut head = [0u8; 2];
                self.tcp.read_exact(&mut head).await.ok()?;
                let mut len = u64::from(head[1] & 0x7f);
                if len == 126 {
                    let mut bytes = [0u8; 2];
                    self.tcp.read_exact(&mut bytes).await.ok()?;
                    len = u64::from(u16::from_be_bytes(bytes));
                } else if len == 127 {
                    let mut bytes = [0u8; 8];
                    self.tcp.read_exact(&mut bytes).await.ok()?;
                    len = u64::from_be_bytes(bytes);
                }
                let mut payload = vec![0u8; len as usize];
                self.tcp.read_exact(&mut payload).await.ok()?;
                if head[0] & 0x0f == 0x8 {
                    return payload.get(..2).map(|code| u16::from_be_bytes([code[0], code[1]]));
                }
            }
        })
        .await
        .expect("the server answered in time")
    }

    /// `connection_init`, and its `connection_ack` read.
    async fn introduce(&mut self) {
        self.text(r#"{"type":"connection_init"}"#).await;
        let mut head = [0u8; 2];
        self.tcp.read_exact(&mut head).await.unwrap();
        let mut ack = vec![0u8; usize::from(head[1] & 0x7f)];
        self.tcp.read_exact(&mut ack).await.unwrap();
        assert!(String::from_utf8_lossy(&ack).contains("connection_ack"));
    }
}

const SUBSCRIBE: &str =
    r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { executionEvents { kind } }"}}"#;

#[tokio::test]
async fn every_protocol_violation_gets_the_close_code_its_protocol_names() {
    let mut config = test_config();
    config.live.connection_init_timeout = Duration::from_millis(500);
    let gateway = TestGateway::start_with(config).await;
    let oversized = "x".repeat(gateway_max_message() + 1);
    let violation = |case, introduce, first, payload: &[u8], masked, expected| Violation {
        case,
        introduce,
        first,
        payload: payload.to_vec(),
        masked,
        expected,
    };
    let cases = [
        violation("text that is not UTF-8", false, 0x81, &[0xff, 0xfe, 0xfd], true, 1007),
        violation("a message over the size limit", false, 0x81, oversized.as_bytes(), true, 1009),
        violation("a reserved opcode", false, 0x83, b"?", true, 1002),
        violation("an unmasked client frame", false, 0x81, b"{}", false, 1002),
        violation("a message that is not JSON", true, 0x81, b"{not json", true, 4400),
        violation("subscribe before connection_init", false, 0x81, SUBSCRIBE.as_bytes(), true, 4401),
        violation("a second connection_init", true, 0x81, br#"{"type":"connection_init"}"#, true, 4429),
        violation("nothing at all (auth off)", false, 0x81, b"", true, 4408),
        violation("after init, a frame that is not UTF-8", true, 0x81, &[0xc3, 0x28], true, 1007),
    ];
    for Violation { case, introduce, first, payload, masked, expected } in cases {
        let mut socket = RawSocket::open(gateway.address, "").await.unwrap();
        if introduce {
            socket.introduce().await;
        }
        if !payload.is_empty() {
            socket.frame(first, &payload, masked).await;
        }
        assert_eq!(socket.close_code().await, Some(expected), "{case}");
    }

    // A subscribe id still in use.
    let mut socket = RawSocket::open(gateway.address, "").await.unwrap();
    socket.introduce().await;
    socket.text(SUBSCRIBE).await;
    socket.text(SUBSCRIBE).await;
    assert_eq!(socket.close_code().await, Some(4409), "a duplicate subscribe id");
}

/// One row of the table: what is sent (after `connection_init` when `introduce`), as a frame
/// whose first byte is `first`, and the close code it must get.
struct Violation {
    case: &'static str,
    introduce: bool,
    first: u8,
    payload: Vec<u8>,
    masked: bool,
    expected: u16,
}

/// `--max-body-bytes`' default, which bounds WebSocket messages too.
fn gateway_max_message() -> usize {
    test_config().limits.max_body_bytes
}

#[tokio::test]
async fn silent_sockets_are_closed_and_cannot_take_every_place() {
    let mut config = test_config();
    config.live.connection_init_timeout = Duration::from_millis(500);
    // An eighth of 64 (8) may wait for connection_init; one address may hold 4.
    config.live.max_streaming_connections = 64;
    config.live.max_streams_per_address = 4;
    let gateway = TestGateway::start_with(config).await;

    // One address holds at most its share; the fifth is refused before upgrading.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(RawSocket::open(gateway.address, "").await.unwrap());
    }
    let refused = RawSocket::open(gateway.address, "").await.err().unwrap();
    assert!(refused.contains(" 429 "), "{refused}");
    // Another address still gets in (127.0.0.2 is loopback too).
    let other = connect_from("127.0.0.2".parse().unwrap(), gateway.address).await;
    assert!(other.is_ok(), "{other:?}");
    // Silent sockets are closed at the init timeout, and their places come back.
    for mut socket in held {
        assert_eq!(socket.close_code().await, Some(4408));
    }
    let again = RawSocket::open(gateway.address, "").await;
    assert!(again.is_ok(), "{:?}", again.err());
}

/// An upgrade from `local` (a loopback address of this host's) to `address`.
async fn connect_from(local: IpAddr, address: SocketAddr) -> Result<(), String> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let mut tcp = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    let status = String::from_utf8_lossy(&head).into_owned();
    if status.ends_with("101") {
        Ok(())
    } else {
        Err(status)
    }
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_dropped() {
    let mut config = test_config();
    config.live.keepalive_interval = Duration::from_millis(300);
    let gateway = TestGateway::start_with(config).await;
    let mut socket = RawSocket::open(gateway.address, "").await.unwrap();
    socket.introduce().await;
    // From now on the client reads nothing and answers no ping.
    let ready = |gateway: &TestGateway| {
        let url = gateway.url("/readyz");
        async move {
            let ready: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            ready["live"]["streamingConnections"].as_u64().unwrap()
        }
    };
    assert_eq!(ready(&gateway).await, 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    while ready(&gateway).await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the silent socket kept its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(socket);
}

/// How many times the gateway looked an API key up in PostgreSQL: the key-record cache's
/// misses. (PostgreSQL's own table statistics reach its views up to 10 s late.)
async fn key_lookups(gateway: &TestGateway) -> f64 {
    let scrape = scrape(gateway).await;
    value(&scrape, "datasync_gateway_cache_lookups_total", &[("cache", "api_keys"), ("result", "miss")])
}

#[tokio::test]
async fn a_flood_of_bad_keys_costs_almost_no_lookups_and_a_valid_caller_is_served() {
    const FLOOD: usize = 2_000;
    let mut config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let key = gateway_cli(&[
        "keys",
        "--database-url",
        &database_url,
        "create",
        "--role",
        "reader",
        "--name",
        "flood-test",
    ]);
    config.auth.mode = Some(datasync_gateway::config::AuthMode::Required);
    let gateway = TestGateway::start_with(config).await;
    let client = reqwest::Client::new();
    let ask = |key: String| {
        let request = client
            .post(gateway.url("/graphql"))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({ "query": "{ __typename }" }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ask(key.clone()).await, 200, "the valid key works");
    assert_eq!(key_lookups(&gateway).await, 1.0, "its record was looked up once");

    let before = key_lookups(&gateway).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..FLOOD {
        // Well-formed keys with distinct, unknown ids: each would cost a lookup.
        let bad = format!("dsg_{n:012x}_{}", "A".repeat(43));
        *statuses.entry(ask(bad).await).or_default() += 1;
    }
    let lookups = key_lookups(&gateway).await - before;
    eprintln!("{FLOOD} bad keys: {lookups} lookups, statuses {statuses:?}");
    assert!(lookups <= 100.0, "{lookups} lookups for {FLOOD} bad keys ({statuses:?})");
    assert!(statuses.get(&429).copied().unwrap_or(0) > FLOOD / 2, "refused before looking up: {statuses:?}");
    // The valid caller, from the same address, is still served (its answer is remembered).
    assert_eq!(ask(key.clone()).await, 200);
    // A known key id with a wrong secret is compared without a query.
    let wrong_secret = format!("{}{}", &key[..key.len() - 4], "AAAA");
    let before = key_lookups(&gateway).await;
    let from_elsewhere =
        reqwest::Client::builder().local_address("127.0.0.3".parse::<IpAddr>().unwrap()).build().unwrap();
    for _ in 0..5 {
        let status = from_elsewhere
            .post(gateway.url("/graphql"))
            .header("authorization", format!("Bearer {wrong_secret}"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    assert_eq!(key_lookups(&gateway).await - before, 0.0, "the key's record was remembered");
}

#[tokio::test]
async fn an_event_stream_nobody_reads_is_closed_at_the_write_timeout() {
    let mut config = test_config();
    config.limits.write_timeout = Duration::from_millis(500);
    config.live.poll_interval = Duration::from_millis(20);
    let gateway = TestGateway::start_with(config).await;
    let open = || async {
        let ready: Value = reqwest::get(gateway.url("/readyz")).await.unwrap().json().await.unwrap();
        ready["live"]["streamingConnections"].as_u64().unwrap()
    };
    // A client with a small receive window that asks for a stream of large results, and
    // reads none of them.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(gateway.address).await.unwrap();
    // 28 aliases: within the default limit of 30.
    let fields: String = (0..14).map(|n| format!(" b{n}: bytesWritten f{n}: filesTransferred")).collect();
    let query = format!(
        "subscription {{ taskExecutionUpdated(arn: \"{}\") {{ status{fields} }} }}",
        datasync_gateway::simulator::fleet::seeded::TRANSFERRING
    );
    let body = json!({ "query": query }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n\
         Content-Length: {}\r\n\r\n{body}",
        gateway.address,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while open().await != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the stream never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its results fill the client's window and the gateway's send buffer; then a write waits,
    // and at the write timeout the connection is closed and its place given back.
    while open().await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the unread stream kept its place");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(tcp);
}

#[tokio::test]
async fn one_authenticated_caller_gets_its_share_of_sockets() {
    let (mut config, key) = crate::common::config_with_a_reader_key("per-caller");
    config.live.max_streams_per_caller = 2;
    let gateway = TestGateway::start_with(config).await;
    let credentials = format!("Authorization: Bearer {key}\r\n");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut socket = RawSocket::open(gateway.address, &credentials).await.unwrap();
        socket.introduce().await;
        held.push(socket);
    }
    let mut third = RawSocket::open(gateway.address, &credentials).await.unwrap();
    third.text(r#"{"type":"connection_init"}"#).await;
    assert_eq!(third.close_code().await, Some(4429), "over the caller's share");
    drop(held);
}
