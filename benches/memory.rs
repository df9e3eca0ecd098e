//! Memory per cached execution, read from outside. The gateway (release binary, a process of
//! its own, no database) reads simulator executions into its cache 100 at a time; its RSS is
//! printed at each step with the bytes each cached execution added over the idle process.
//! Then a spike: many connections at once, each asking for a different 100 executions, all
//! closed; RSS during and after says whether the memory comes back.
//!
//! Run with `cargo bench --bench memory`; figures go in BENCHMARKS.md. Environment:
//! MEM_EXECUTIONS (100000), MEM_STEPS (comma-separated counts to report, 10000,50000,100000),
//! MEM_SPIKE_CONNECTIONS (2000), MEM_ARGS (extra `serve` arguments, space-separated).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::Duration;

use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

use common::env_or;
use common::fleet::finished_executions;
use common::process::{rss_kib, GatewayProcess};

const READ: &str = "query Read($arns: [ID!]!) { taskExecutions(arns: $arns) { taskExecutionArn } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let executions: usize = env_or("MEM_EXECUTIONS", 100_000);
    let steps: Vec<usize> = env_or("MEM_STEPS", "10000,50000,100000".to_owned())
        .split(',')
        .filter_map(|step| step.trim().parse().ok())
        .collect();
    let spike: usize = env_or("MEM_SPIKE_CONNECTIONS", 2000);
    let extra_args: String = env_or("MEM_ARGS", String::new());

    let config = SimulatorConfig {
        extra_executions: executions + 100,
        ..SimulatorConfig::with_tick(Duration::from_millis(100))
    };
    let simulator = Simulator::start("127.0.0.1:0".parse()?, config).await?;
    let arns = finished_executions(&simulator, executions).await?;
    let mut args = vec![
        "--datasync-endpoint".to_owned(),
        simulator.endpoint_url(),
        "--regions".to_owned(),
        "us-east-1,eu-west-1".to_owned(),
        "--fake-credentials".to_owned(),
        "--rate-limit".to_owned(),
        "0".to_owned(),
        "--datasync-calls-per-second".to_owned(),
        "100000".to_owned(),
    ];
    args.extend(extra_args.split_whitespace().map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gateway = GatewayProcess::start(&args).await?;
    let (client, url) = (reqwest::Client::new(), gateway.url("/graphql"));
    read(&client, &url, &arns[..1]).await?;
    let idle = rss_kib(gateway.pid)?;
    println!("gateway {args:?}\n");
    println!(
        "| executions read | held by the cache | RSS MiB | bytes per held execution over idle ({:.1} MiB) |",
        idle as f64 / 1024.0
    );
    println!("| --- | --- | --- | --- |");
    let mut cached = 0;
    for step in steps.iter().copied().filter(|step| *step <= executions) {
        for batch in arns[cached..step].chunks(100) {
            read(&client, &url, batch).await?;
        }
        cached = step;
        // Let moka apply its pending inserts before reading RSS.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_kib(gateway.pid)?;
        let held = cached_executions(&gateway).await?;
        let per_entry = (rss.saturating_sub(idle) * 1024) as f64 / held.max(1) as f64;
        println!("| {step} | {held} | {:.1} | {per_entry:.0} |", rss as f64 / 1024.0);
    }

    // The spike: every connection at once, each a different question (no response replays),
    // each connection closed after its answer.
    drop(client);
    let spiking = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let before = rss_kib(gateway.pid)?;
    let mut peak = before;
    let requests = (0..spike).map(|i| {
        let start = (i * 37) % arns.len().saturating_sub(100).max(1);
        read(&spiking, &url, &arns[start..(start + 100).min(arns.len())])
    });
    let all = futures::future::join_all(requests);
    tokio::pin!(all);
    let results = loop {
        tokio::select! {
            results = &mut all => break results,
            () = tokio::time::sleep(Duration::from_millis(50)) => peak = peak.max(rss_kib(gateway.pid)?),
        }
    };
    let failed = results.iter().filter(|result| result.is_err()).count();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = rss_kib(gateway.pid)?;
    println!(
        "\nspike of {spike} concurrent requests ({failed} refused): RSS {:.1} MiB before, {:.1} peak, {:.1} thirty seconds after",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    Ok(())
}

async fn read(client: &reqwest::Client, url: &str, arns: &[String]) -> anyhow::Result<()> {
    let request = json!({ "query": READ, "variables": { "arns": arns } });
    let response: Value = client.post(url).json(&request).send().await?.json().await?;
    anyhow::ensure!(response["errors"].is_null(), "{response}");
    Ok(())
}

/// Executions the gateway's cache holds, from `/metrics`.
async fn cached_executions(gateway: &GatewayProcess) -> anyhow::Result<u64> {
    let text = reqwest::get(gateway.url("/metrics")).await?.text().await?;
    let line = text
        .lines()
        .find(|line| line.starts_with("datasync_gateway_cache_entries{name=\"executions\"}"))
        .ok_or_else(|| anyhow::anyhow!("no cache_entries for executions"))?;
    Ok(line.rsplit(' ').next().unwrap_or("0").parse::<f64>()? as u64)
}
