//! Memory of the response cache, read from outside: the gateway (release binary, a process of
//! its own, no database) stores answers to 100,000 distinct questions under
//! `--response-cache-bytes` (32 MiB), and its RSS over the idle process is compared with that
//! cap and with what the cache says it weighs (`cache_weighed_bytes` in /metrics).
//!
//! Run with `cargo bench --bench response_memory`; figures go in BENCHMARKS.md. Environment:
//! RESP_QUESTIONS (100000), RESP_CAP_BYTES (33554432), RESP_CONCURRENCY (16).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use futures::StreamExt;
use serde_json::{json, Value};

use common::env_or;
use common::process::{rss_kib, GatewayProcess};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let questions: usize = env_or("RESP_QUESTIONS", 100_000);
    let cap: u64 = env_or("RESP_CAP_BYTES", 32 * 1024 * 1024);
    let concurrency: usize = env_or("RESP_CONCURRENCY", 16);

    let simulator =
        Simulator::start("127.0.0.1:0".parse()?, SimulatorConfig::with_tick(Duration::from_millis(100)))
            .await?;
    let cap_arg = cap.to_string();
    let endpoint = simulator.endpoint_url();
    let args = [
        "--datasync-endpoint",
        &endpoint,
        "--regions",
        "us-east-1,eu-west-1",
        "--fake-credentials",
        "--rate-limit",
        "0",
        "--datasync-calls-per-second",
        "100000",
        "--response-cache-bytes",
        &cap_arg,
    ];
    let gateway = GatewayProcess::start(&args).await?;
    let (client, url) = (reqwest::Client::new(), gateway.url("/graphql"));
    // Each question is told apart by its alias; every answer reads one cached execution.
    let question = |n: usize| json!({ "query": format!("{{ a{n}: taskExecution(arn: \"{}\") {{ status bytesWritten }} }}", seeded::FAILED) });
    for n in 0..100 {
        ask(&client, &url, &question(n)).await?;
    }
    let idle = rss_kib(gateway.pid)?;
    let started = std::time::Instant::now();
    let answered = futures::stream::iter(100..100 + questions)
        .map(|n| {
            let (client, url, body) = (client.clone(), url.clone(), question(n));
            async move { ask(&client, &url, &body).await }
        })
        .buffer_unordered(concurrency)
        .filter(|result| std::future::ready(result.is_ok()))
        .count()
        .await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(gateway.pid)?;
    let metrics = reqwest::get(gateway.url("/metrics")).await?.text().await?;
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(&format!("datasync_gateway_{name}{{name=\"responses\"}}")))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let (stored, weighed) = (sample("cache_entries"), sample("cache_weighed_bytes"));
    let grown = rss.saturating_sub(idle) as f64 * 1024.0;
    println!("gateway {args:?}\n");
    println!("| distinct questions answered | stored | weighed MiB (cap {:.0}) | RSS idle MiB | RSS after MiB | grown MiB | grown / cap | real bytes per stored answer | weighed bytes per stored answer |", cap as f64 / 1048576.0);
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {answered} in {:.1} s | {stored} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
        elapsed.as_secs_f64(),
        weighed / 1048576.0,
        idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        grown / 1048576.0,
        grown / cap as f64,
        grown / stored.max(1.0),
        weighed / stored.max(1.0),
    );
    Ok(())
}

async fn ask(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let response: Value = client.post(url).json(body).send().await?.json().await?;
    anyhow::ensure!(response["errors"].is_null(), "{response}");
    Ok(())
}
