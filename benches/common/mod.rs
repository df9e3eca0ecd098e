//! What the benchmarks share: settings from the environment, timed GraphQL requests and the
//! latency table they print, the gateway as a process of its own, and a load generator.

pub mod fleet;
pub mod load;
pub mod process;

use std::fmt::Display;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// POSTs a GraphQL request; fails on any GraphQL error.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response: Value = client.post(url).json(body).send().await?.json().await?;
    anyhow::ensure!(response["errors"].is_null(), "query failed: {response}");
    Ok(response)
}

/// Latencies of `samples` sequential requests, after 10 to warm up.
pub async fn time(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples + 10 {
        let started = Instant::now();
        post(client, url, body).await?;
        if i >= 10 {
            times.push(started.elapsed());
        }
    }
    Ok(times)
}

/// A markdown table of p50 and p95 per row, headed `heading`.
pub fn print_latencies(heading: &str, rows: Vec<(impl Display, Vec<Duration>)>) {
    println!("| {heading} | samples | p50 ms | p95 ms |\n| --- | --- | --- | --- |");
    for (name, mut times) in rows {
        times.sort();
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        println!("| {name} | {} | {:.2} | {:.2} |", times.len(), at(0.5), at(0.95));
    }
}

/// A fresh database `name` on the bench's server (`admin_url`'s); its URL.
pub async fn database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    let (server, _) = admin_url.rsplit_once('/').expect("a database URL ends with /DATABASE");
    Ok(format!("{server}/{name}"))
}
