//! One client connection's socket, as the server hands it to hyper: it notes when bytes last
//! moved (for the idle timeout), and it turns hyper's own answers to unparseable requests
//! (400, 414 for a URL over 64 KiB, 431), which hyper writes with an empty body before any
//! handler runs, into the gateway's JSON error shape.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::errors::{describe, error_body};

/// Whether a connection moved bytes lately, and how many of its requests are being handled.
#[derive(Clone)]
pub struct Activity(Arc<ActivityState>);

struct ActivityState {
    start: Instant,
    /// Whether a byte moved (or a request ended) since the idle watchdog last looked: a flag,
    /// not a timestamp, so that moving bytes reads no clock.
    moved: AtomicBool,
    handling: AtomicUsize,
    /// Since when (ms after `start`, plus one; 0: not) a write has been waiting for the client
    /// to take bytes.
    write_blocked_ms: AtomicU64,
}

/// Marks a request as being handled while it lives.
pub struct Handling(Activity);

impl Activity {
    fn new() -> Self {
        Activity(Arc::new(ActivityState {
            start: Instant::now(),
            moved: AtomicBool::new(false),
            handling: AtomicUsize::new(0),
            write_blocked_ms: AtomicU64::new(0),
        }))
    }

    fn now_ms(&self) -> u64 {
        self.0.start.elapsed().as_millis() as u64
    }

    /// Notes how a write went: blocked (from the first time on), or done (bytes taken).
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Pending => {
                let _ = self.0.write_blocked_ms.compare_exchange(
                    0,
                    self.now_ms() + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(done) => {
                self.0.write_blocked_ms.store(0, Ordering::Relaxed);
                if matches!(done, Ok(n) if *n > 0) {
                    self.touch();
                }
            }
        }
    }

    /// Resolves once a write has waited `timeout` without the client taking a byte: it stopped
    /// reading (a request being handled, such as an event stream, does not hold this off).
    pub async fn write_stalled_for(&self, timeout: Duration) {
        loop {
            let since = self.0.write_blocked_ms.load(Ordering::Relaxed);
            let waited = if since == 0 { 0 } else { self.now_ms().saturating_sub(since - 1) };
            let waited = Duration::from_millis(waited);
            if since != 0 && waited >= timeout {
                return;
            }
            // Not blocked: look again a quarter of the timeout later (as `idle_for` does), so
            // a block that begins meanwhile is caught within 1.25 timeouts, not two.
            tokio::time::sleep(if since == 0 { timeout / 4 } else { timeout - waited }).await;
        }
    }

    fn touch(&self) {
        self.0.moved.store(true, Ordering::Relaxed);
    }

    pub fn handling(&self) -> Handling {
        self.0.handling.fetch_add(1, Ordering::Relaxed);
        Handling(self.clone())
    }

    /// Resolves once no byte has moved for `timeout` while no request was being handled. It
    /// looks every quarter `timeout`, so a connection goes within 1.25 timeouts of its last byte.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut quiet_since = Instant::now();
        loop {
            tokio::time::sleep(timeout / 4).await;
            let now = Instant::now();
            if self.0.moved.swap(false, Ordering::Relaxed) || self.0.handling.load(Ordering::Relaxed) > 0 {
                quiet_since = now;
            } else if now >= quiet_since + timeout {
                return;
            }
        }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0 .0.handling.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

pub struct ConnectionIo {
    stream: TcpStream,
    activity: Activity,
    /// A JSON answer being written in place of hyper's empty one, how much of it is written,
    /// and how many bytes of hyper's to report as written once it is.
    replacement: Option<(Vec<u8>, usize, usize)>,
}

impl ConnectionIo {
    pub fn new(stream: TcpStream) -> Self {
        let activity = Activity::new();
        activity.touch();
        ConnectionIo { stream, activity, replacement: None }
    }

    pub fn activity(&self) -> Activity {
        self.activity.clone()
    }
}

impl AsyncRead for ConnectionIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        result
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_none() {
            if let Some(json) = automatic_answer_as_json(buf) {
                this.replacement = Some((json, 0, buf.len()));
            }
        }
        if let Some((json, written, consumed)) = &mut this.replacement {
            while *written < json.len() {
                match Pin::new(&mut this.stream).poll_write(cx, &json[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let consumed = *consumed;
            this.replacement = None;
            this.activity.touch();
            return Poll::Ready(Ok(consumed));
        }
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.activity.wrote(&result);
        result
    }

    // hyper writes head and body with one vectored write when the socket supports it (otherwise
    // it copies the body behind the head first). Its bare error heads come alone, so checking
    // the first buffer is enough.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|buf| !buf.is_empty()).map_or(&[][..], |buf| &buf[..]);
        if self.replacement.is_some() || automatic_answer_as_json(first).is_some() {
            return self.poll_write(cx, first);
        }
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.activity.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// hyper's automatic answer to a request it could not parse is a bare head: a 400, 414 or 431
/// status and `content-length: 0`. The gateway itself never answers an error without a body.
fn automatic_answer_as_json(buf: &[u8]) -> Option<Vec<u8>> {
    let status = match buf.strip_prefix(b"HTTP/1.1 ")?.get(..4)? {
        b"400 " => StatusCode::BAD_REQUEST,
        b"414 " => StatusCode::URI_TOO_LONG,
        b"431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let head = std::str::from_utf8(buf).ok()?.strip_suffix("\r\n\r\n")?;
    if !head.to_ascii_lowercase().split("\r\n").any(|line| line == "content-length: 0") {
        return None;
    }
    let (message, code) = describe(status);
    let body = error_body(message, code);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_bodiless_error_heads_are_replaced() {
        let hyper_head =
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Wed, 25 Nov 2026 22:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(automatic_answer_as_json(hyper_head).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with(r#""extensions":{"code":"BAD_REQUEST"}}]}"#), "{answer}");

        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n";
        assert!(automatic_answer_as_json(with_body).is_none());
        assert!(automatic_answer_as_json(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
