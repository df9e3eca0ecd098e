//! The call budget shared in turn: one client floods a region's budget with cold reads at
//! 95 a second (past the default 10 calls a second), and another client, from another address,
//! makes a `STRONG` read (always a DataSync call) once a second; its latencies say how long a
//! caller waits behind a flood. The gateway is the release binary, a process of its own, in
//! front of the simulator, with the default budget.
//!
//! Run with `cargo bench --bench budget_fairness`; figures go in BENCHMARKS.md. Environment:
//! FAIR_SECONDS (20), FAIR_FLOOD_PER_SECOND (95).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

use common::env_or;
use common::process::GatewayProcess;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("FAIR_SECONDS", 20);
    let per_second: u64 = env_or("FAIR_FLOOD_PER_SECOND", 95);
    let simulator =
        Simulator::start("127.0.0.1:0".parse()?, SimulatorConfig::with_tick(Duration::from_millis(100)))
            .await?;
    let endpoint = simulator.endpoint_url();
    let args = ["--datasync-endpoint", &endpoint, "--regions", "us-east-1,eu-west-1", "--fake-credentials"];
    let gateway = GatewayProcess::start(&args).await?;
    let url = gateway.url("/graphql");

    // The flood: cold ARNs (each a DataSync call), paced, from 127.0.0.1; never waited for.
    let flood = {
        let (url, client) = (url.clone(), reqwest::Client::new());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
            for n in 0..seconds * per_second {
                ticks.tick().await;
                let arn =
                    format!("{}/execution/exec-{:017x}", seeded::QUICK_TASK, 0xd000_0000_0000_0000_u64 + n);
                let body = json!({ "query": format!("{{ taskExecution(arn: \"{arn}\") {{ status }} }}") });
                let request = client.post(&url).json(&body).send();
                tokio::spawn(request);
            }
        })
    };
    let bystander = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build()?;
    let strong = json!({ "query": format!(
        "{{ taskExecution(arn: \"{}\", consistency: STRONG) {{ status servedFrom }} }}", seeded::TRANSFERRING) });
    let mut latencies = Vec::new();
    let mut served_from = std::collections::BTreeMap::<String, usize>::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 2..seconds {
        let started = Instant::now();
        let answer: Value = bystander.post(&url).json(&strong).send().await?.json().await?;
        latencies.push(started.elapsed());
        let from = answer["data"]["taskExecution"]["servedFrom"].as_str().unwrap_or("error").to_owned();
        *served_from.entry(from).or_default() += 1;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
    }
    flood.await?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!("gateway {args:?}, flood {per_second}/s of cold reads from 127.0.0.1 for {seconds} s\n");
    println!("| another address's STRONG reads | p50 ms | max ms | served from |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {} | {:.0} | {:.0} | {served_from:?} |",
        latencies.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0
    );
    Ok(())
}
