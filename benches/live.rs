//! Live-read benchmark: what the cache buys. The gateway (release build) runs against the
//! simulator with a fixed added latency standing in for AWS; no database. Run it with
//! `cargo bench --bench live`; figures go in BENCHMARKS.md.
//!
//! Environment: LIVE_LATENCY_MS (simulated DataSync latency, default 30), LIVE_SAMPLES (default 300).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::Instant;

use datasync_gateway::app::Application;
use datasync_gateway::config::Config;
use datasync_gateway::simulator::fleet::seeded;
use futures::future::join_all;
use serde_json::{json, Value};

use common::{env_or, post, print_latencies, time};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let latency_ms: u64 = env_or("LIVE_LATENCY_MS", 30);
    let samples: usize = env_or("LIVE_SAMPLES", 300);

    let mut config = Config::defaults();
    // One load generator is one caller: the per-caller rate limit would be what is measured.
    config.limits.rate_limit = 0;
    config.listen = "127.0.0.1:0".parse()?;
    config.datasync.simulator = true;
    config.history.database_url = None;
    // What is measured is the cache, not the call budget.
    config.datasync.calls_per_second = 100_000.0;
    let app = Application::build(config).await?;
    let simulator_url = app.simulator().expect("simulator mode").endpoint_url();
    let url = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    let client = reqwest::Client::new();
    client
        .put(format!("{simulator_url}/_simulator/faults"))
        .json(&json!({ "latencyMs": latency_ms }))
        .send()
        .await?
        .error_for_status()?;
    let calls = || async {
        let calls: Value =
            client.get(format!("{simulator_url}/_simulator/calls")).send().await?.json().await?;
        anyhow::Ok(calls["DescribeTaskExecution"].as_u64().unwrap_or(0))
    };
    let query = |arn: &str, consistency: &str| {
        json!({ "query": "query($arn: ID!, $c: Consistency) { taskExecution(arn: $arn, consistency: $c) {
                    status bytesWritten progress { bytesPercent } servedFrom } }",
                "variables": { "arn": arn, "c": consistency } })
    };

    let mut rows = Vec::new();
    let strong = query(seeded::SUCCEEDED_BASIC, "STRONG");
    rows.push((
        "every read calls DataSync (STRONG)".to_owned(),
        time(&client, &url, &strong, samples).await?,
    ));
    let cached = query(seeded::SUCCEEDED_BASIC, "CACHED");
    rows.push((
        "cached read of a finished execution".to_owned(),
        time(&client, &url, &cached, samples).await?,
    ));

    println!("simulated DataSync latency: {latency_ms} ms\n");
    print_latencies("sequential reads", rows);

    // A crowd asking at once for an execution nobody has read yet (a different one per crowd).
    println!("\n| concurrent clients, one cold ARN | DataSync calls | wall ms |\n| --- | --- | --- |");
    for (crowd, arn) in [
        (10, seeded::FAILED),
        (100, seeded::SUCCEEDED_ENHANCED),
        (400, seeded::CANCELLED),
        (1000, seeded::UNKNOWN_STATUS),
    ] {
        let body = query(arn, "CACHED");
        let before = calls().await?;
        let started = Instant::now();
        let responses = join_all((0..crowd).map(|_| post(&client, &url, &body))).await;
        let wall = started.elapsed();
        for response in responses {
            response?;
        }
        println!("| {crowd} | {} | {:.1} |", calls().await? - before, wall.as_secs_f64() * 1000.0);
    }

    // Throughput of cached reads with many clients in flight.
    let body = query(seeded::SUCCEEDED_BASIC, "CACHED");
    let total = 5_000;
    let started = Instant::now();
    let in_flight = 64;
    let mut handles = Vec::new();
    for worker in 0..in_flight {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            for _ in (worker..total).step_by(in_flight) {
                post(&client, &url, &body).await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let elapsed = started.elapsed();
    println!(
        "\ncached reads, {in_flight} in flight: {total} in {:.2} s = {:.0} requests/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
