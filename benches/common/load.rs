//! A closed-loop HTTP/1.1 load generator, as `wrk -c N` drives a server: N keep-alive
//! connections, each sending the next request (one, or a list in turn) as soon as the previous answer is in,
//! every latency recorded, and a new connection opened when the server closes one (the
//! gateway does after `--max-requests-per-connection`), as wrk does. Requests are written
//! pre-encoded and answers parsed only as far as the status, `Content-Length` and
//! `Connection: close`, so that the generator's own cost stays small and the same for every
//! server it drives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The request bytes of `POST path` with a JSON body.
pub fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub struct Load {
    pub requests: usize,
    pub window: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    /// The CPU time the server's process ran for in the window, where the system reports it.
    server_cpu: Option<Duration>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }

    /// The latency at `quantile` (0.5, 0.99), in milliseconds.
    pub fn at(&self, quantile: f64) -> f64 {
        let index = ((self.latencies.len() - 1) as f64 * quantile).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }

    /// The server's CPU time per request answered in the window, in microseconds: what a request
    /// costs the server, whatever else the machine was doing (the throughput moves with the load
    /// generator's share of the cores; this moves less).
    pub fn server_cpu_per_request(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        Some(cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64)
    }
}

/// The time every thread of process `pid` has run on a CPU so far (Linux: `schedstat`, in
/// nanoseconds); `None` where that is not reported.
fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Drives `address` over `connections` connections, `warmup` unmeasured, then `window`
/// measured, with `requests` taken in turn (across connections, so that each is sent once
/// before any is sent again): each a request's bytes and the body length its answer must have,
/// with a 200. `server`: the process answering, whose CPU time in the window is measured.
pub async fn drive(
    address: SocketAddr,
    server: u32,
    requests: &[(Vec<u8>, usize)],
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Load> {
    let measure_from = Instant::now() + warmup;
    let until = measure_from + window;
    let requests = std::sync::Arc::new(requests.to_vec());
    let turn = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..connections).map(|_| {
        let (requests, turn) = (requests.clone(), turn.clone());
        tokio::spawn(async move {
            let mut stream = connect(address).await?;
            let mut buffer = Vec::with_capacity(64 * 1024);
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= until {
                    return anyhow::Ok(latencies);
                }
                let (request, body_len) =
                    &requests[turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % requests.len()];
                stream.write_all(request).await?;
                let (status, len, closing) = read_response(&mut stream, &mut buffer).await?;
                anyhow::ensure!(
                    status == 200 && len == *body_len,
                    "answer {status} with {len} bytes, not {body_len}"
                );
                if sent >= measure_from {
                    latencies.push(sent.elapsed());
                }
                if closing {
                    stream = connect(address).await?;
                }
            }
        })
    });
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = cpu_time(server);
        tokio::time::sleep_until(until.into()).await;
        Some(cpu_time(server)?.saturating_sub(before?))
    });
    let mut latencies = Vec::new();
    for worker in futures::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    latencies.sort();
    Ok(Load { requests: latencies.len(), window, latencies, server_cpu: cpu.await? })
}

async fn connect(address: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads one response; its status, body length and whether the server closes the connection
/// after it. `buffer` keeps nothing between calls (a closed loop has one answer in flight).
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<(u16, usize, bool)> {
    buffer.clear();
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        anyhow::ensure!(stream.read_buf(buffer).await? > 0, "the server closed the connection");
    };
    let head = std::str::from_utf8(&buffer[..header_end])?;
    let status: u16 = head.get(9..12).unwrap_or_default().parse()?;
    let header = |wanted: &str| {
        head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(wanted).then(|| value.trim())
        })
    };
    let len: usize = header("content-length")
        .and_then(|len| len.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("an answer without Content-Length"))?;
    let closing = header("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
    while buffer.len() < header_end + len {
        anyhow::ensure!(stream.read_buf(buffer).await? > 0, "the server closed the connection");
    }
    Ok((status, len, closing))
}
