//! Discovery sync benchmark: one full sync of a simulated fleet with 10,000 listed executions
//! (AWS calls made, wall time), then the same sync when nothing has changed (goal: the List
//! calls, plus the executions still running). Run it with `scripts/bench sync`.
//!
//! Environment: BENCH_DATABASE_URL (a server where the bench may create `bench_sync`),
//! BENCH_SYNC_EXECUTIONS (default 10000).

use std::time::{Duration, Instant};

use datasync_gateway::app::Application;
use datasync_gateway::config::Config;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

const OPERATIONS: [&str; 5] =
    ["ListTasks", "ListTaskExecutions", "DescribeTaskExecution", "DescribeTask", "ListLocations"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (run scripts/bench sync)");
    let executions: usize =
        std::env::var("BENCH_SYNC_EXECUTIONS").ok().and_then(|value| value.parse().ok()).unwrap_or(10_000);
    let (server, _) = admin_url.rsplit_once('/').expect("a URL ending in /DATABASE");
    let mut admin = PgConnection::connect(&admin_url).await?;
    admin.execute("DROP DATABASE IF EXISTS bench_sync").await?;
    admin.execute("CREATE DATABASE bench_sync").await?;

    let simulator = Simulator::start(
        "127.0.0.1:0".parse()?,
        SimulatorConfig {
            extra_executions: executions,
            ..SimulatorConfig::with_tick(Duration::from_secs(2))
        },
    )
    .await?;
    let mut config = Config::defaults();
    // One load generator is one caller: the per-caller rate limit would be what is measured.
    config.limits.rate_limit = 0;
    config.listen = "127.0.0.1:0".parse()?;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    config.datasync.fake_credentials = true;
    config.datasync.regions =
        datasync_gateway::simulator::fleet::REGIONS.map(|region| region.parse().expect("a region")).to_vec();
    // The budget is not what is measured here.
    config.datasync.calls_per_second = 100_000.0;
    config.history.database_url = Some(format!("{server}/bench_sync"));
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(3600);

    println!("| sync | wall s | calls |\n| --- | --- | --- |");
    for run in ["first sync (empty index)", "next sync (nothing changed)"] {
        let before: Vec<u64> = OPERATIONS.iter().map(|operation| simulator.calls(operation)).collect();
        let started = Instant::now();
        // A gateway whose only sync is the one at start-up.
        let app = Application::build(config.clone()).await?;
        let base = format!("http://{}", app.local_addr());
        let server = tokio::spawn(app.run_until(std::future::pending()));
        let ready = synced(&base).await?;
        let wall = started.elapsed();
        server.abort();
        let calls: Vec<String> = OPERATIONS
            .iter()
            .zip(before)
            .map(|(operation, before)| (operation, simulator.calls(operation) - before))
            .filter(|(_, count)| *count > 0)
            .map(|(operation, count)| format!("{operation} {count}"))
            .collect();
        let listed: u64 = ready["discovery"]["regions"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r["listed"].as_u64().unwrap_or(0))
            .sum();
        println!("| {run}: {listed} executions listed | {:.2} | {} |", wall.as_secs_f64(), calls.join(", "));
    }
    Ok(())
}

/// Waits for the first sync of every region; the `/readyz` report.
async fn synced(base: &str) -> anyhow::Result<Value> {
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz")).await?.json().await?;
        let regions = ready["discovery"]["regions"].as_object().cloned().unwrap_or_default();
        if regions.len() == datasync_gateway::simulator::fleet::REGIONS.len()
            && regions.values().all(|region| region["runs"].as_u64() >= Some(1))
        {
            anyhow::ensure!(regions.values().all(|region| region["error"].is_null()), "sync failed: {ready}");
            return Ok(ready);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
