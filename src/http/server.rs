//! The accept loop: hyper's HTTP/1.1 server with the connection limits `axum::serve` does not
//! expose. A client that opens connections and never finishes a request, never sends another,
//! or stops reading, is cut off; beyond `max_connections` new connections are closed at once,
//! so file descriptors and memory stay bounded whatever clients do.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection::ConnectionIo;
use super::head_deadline::HeadDeadlines;
use super::watchdog;
use super::Entry;
use crate::config::LimitsConfig;

/// Largest request line and headers; hyper refuses URLs over 64 KiB anyway.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a shutdown waits for open connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The kernel's send buffer per connection (Linux doubles it for its own bookkeeping). Enough
/// for a fast client at LAN round trips; small enough that a client that reads nothing makes
/// a write wait within minutes, which `--write-timeout` then ends.
const SEND_BUFFER_BYTES: usize = 128 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_requests_per_connection: u64,
}

impl ConnectionLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        ConnectionLimits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.connection_idle_timeout,
            write_timeout: config.write_timeout,
            max_requests_per_connection: config.max_requests_per_connection,
        }
    }
}

/// Serves `entry` on `listener` until `shutdown` resolves, then lets open requests finish.
/// Connections may be upgraded (WebSocket); an upgraded one leaves this loop's count and
/// limits, and is closed by its handler at shutdown.
pub async fn serve(
    listener: TcpListener,
    entry: Entry,
    limits: ConnectionLimits,
    open_connections: Gauge,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(HeadDeadlines)
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let shed = AtomicU64::new(0);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, mostly: wait for connections to close.
                Err(error) => {
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let count = shed.fetch_add(1, Ordering::Relaxed) + 1;
            if count.is_power_of_two() {
                tracing::warn!(%peer, shed = count, max = limits.max_connections, "connection limit reached; closing new connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        // A bounded kernel buffer: Linux grows it to 4 MiB otherwise, which a client that stopped
        // reading an event stream would fill for an hour before a write ever waited.
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER_BYTES);
        let io = ConnectionIo::new(stream);
        let activity = io.activity();
        let service =
            per_connection(entry.clone(), peer, limits.max_requests_per_connection, activity.clone());
        let connection =
            http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).with_upgrades();
        let stopping = stopping.clone();
        let open_connections = open_connections.clone();
        open_connections.inc();
        tokio::spawn(async move {
            let drain = |connection: Pin<&mut _>| {
                hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(connection)
            };
            watchdog::drive(connection, drain, activity, limits, stopping, peer).await;
            open_connections.dec();
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// A request's answer, as the connection's service gives it.
type Answer = Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

/// The entry as one connection sees it: each request is handed the peer's address, and after
/// `max_requests` the connection is closed (`connection: close` on the last answer).
fn per_connection(
    entry: Entry,
    peer: SocketAddr,
    max_requests: u64,
    activity: super::connection::Activity,
) -> impl tower::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = Answer,
> + Clone {
    let served = Arc::new(AtomicU64::new(0));
    // The connection's own: a request clones this, not the entry's handles, whose reference
    // counts every connection's requests would otherwise write, from every worker.
    let entry = Arc::new(entry);
    tower::service_fn(move |request: Request<Incoming>| {
        let entry = entry.clone();
        let handling = activity.handling();
        let last = served.fetch_add(1, Ordering::Relaxed) + 1 >= max_requests;
        // Boxed: hyper and its service adapter move the future they are handed into place, twice
        // per request; the box is what they move instead.
        Box::pin(async move {
            let mut response = entry.call(request, peer).await;
            drop(handling);
            if last {
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        }) as Answer
    })
}
