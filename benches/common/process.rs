//! The gateway as a process of its own (the release binary, as deployed), so that its CPU and
//! memory are read from outside (/proc) and the load generator does not share its runtime.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct GatewayProcess {
    child: Child,
    pub pid: u32,
    pub address: std::net::SocketAddr,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// `datasync-gateway serve` on a free port with `args`, no database, logging at `RUST_LOG`
    /// (default warn); returns once `/healthz` answers.
    pub async fn start(args: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let child = Command::new(env!("CARGO_BIN_EXE_datasync-gateway"))
            .args(["serve", "--listen", &address.to_string()])
            .args(args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .spawn()?;
        let gateway = GatewayProcess { pid: child.id(), child, address };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://{address}/healthz")).await.is_err() {
            anyhow::ensure!(std::time::Instant::now() < deadline, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(gateway)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line =
        status.lines().find(|line| line.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

/// User and system CPU time of `pid`, in clock ticks ([`TICKS_PER_SECOND`]).
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// Linux's USER_HZ, the unit of /proc/<pid>/stat times: 100 on every architecture it runs on.
pub const TICKS_PER_SECOND: f64 = 100.0;
