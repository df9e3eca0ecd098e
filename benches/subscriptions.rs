//! Subscription benchmark: 10,000 WebSocket subscribers spread over 100 running executions, on
//! one gateway process (release build, no database) in front of the simulator.
//!
//! The gateway runs as a process of its own so that its RSS and CPU are read from outside
//! (/proc); the simulator and the subscribers run here. Each push's delay is measured from the
//! poll that saw the change (the execution's `fetchedAt`, stamped by the gateway when DataSync
//! answered) to its arrival at the subscriber. AWS calls are counted at the simulator.
//! Run with `cargo bench --bench subscriptions`; figures go in BENCHMARKS.md.
//!
//! Environment: SUB_EXECUTIONS (100), SUB_PER_EXECUTION (100), SUB_POLL_MS (1000),
//! SUB_SECONDS (measured window, 30).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use common::env_or;
use common::process::{cpu_ticks, rss_kib, GatewayProcess, TICKS_PER_SECOND};

/// A task whose executions transfer for 3,600 ticks (six minutes at the tick used here).
const LONG_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001";
const FOLLOW: &str = "subscription($arn: ID!) { taskExecutionUpdated(arn: $arn) { taskExecutionArn status bytesWritten fetchedAt } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let executions: usize = env_or("SUB_EXECUTIONS", 100);
    let per_execution: usize = env_or("SUB_PER_EXECUTION", 100);
    let poll = Duration::from_millis(env_or("SUB_POLL_MS", 1000));
    let window = Duration::from_secs(env_or("SUB_SECONDS", 30));

    let simulator =
        Simulator::start("127.0.0.1:0".parse()?, SimulatorConfig::with_tick(Duration::from_millis(100)))
            .await?;
    let sdk = aws_sdk_datasync::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(simulator.endpoint_url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::from_keys("AKIDBENCH", "secret", None))
            .load()
            .await,
    );
    let mut arns = Vec::with_capacity(executions);
    for _ in 0..executions {
        let started = sdk.start_task_execution().task_arn(LONG_TASK).send().await?;
        arns.push(started.task_execution_arn().unwrap_or_default().to_owned());
    }

    let poll_interval = format!("{}ms", poll.as_millis());
    let max_subscriptions = executions.to_string();
    let gateway = GatewayProcess::start(&[
        "--datasync-endpoint",
        &simulator.endpoint_url(),
        "--regions",
        "us-east-1",
        "--fake-credentials",
        "--poll-interval",
        &poll_interval,
        "--datasync-calls-per-second",
        "1000",
        "--max-streaming-connections",
        "4096",
        "--max-subscriptions-per-connection",
        &max_subscriptions,
    ])
    .await?;
    let (pid, port) = (gateway.pid, gateway.address.port());
    let rss_idle = rss_kib(pid)?;

    // One socket per subscriber group, each following every execution once.
    let (delays_tx, mut delays_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, f64)>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..per_execution {
        let (arns, delays, ready) = (arns.clone(), delays_tx.clone(), ready_tx.clone());
        let mut request = format!("ws://127.0.0.1:{port}/graphql/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        tokio::spawn(async move {
            let send = |message: Value| Message::Text(message.to_string().into());
            socket.send(send(json!({ "type": "connection_init" }))).await.ok()?;
            for (id, arn) in arns.iter().enumerate() {
                let payload = json!({ "query": FOLLOW, "variables": { "arn": arn } });
                socket
                    .send(send(json!({ "id": id.to_string(), "type": "subscribe", "payload": payload })))
                    .await
                    .ok()?;
            }
            let mut first = 0;
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let received = Utc::now();
                let message: Value = serde_json::from_str(&text).ok()?;
                if message["type"] != "next" {
                    continue;
                }
                first += 1;
                if first == arns.len() {
                    ready.send(()).ok()?;
                }
                let fetched = message["payload"]["data"]["taskExecutionUpdated"]["fetchedAt"].as_str()?;
                let fetched: DateTime<Utc> = fetched.parse().ok()?;
                let delay = (received - fetched).num_microseconds()? as f64 / 1000.0;
                delays.send((Instant::now(), delay)).ok()?;
            }
            Some(())
        });
    }
    for _ in 0..per_execution {
        ready_rx.recv().await;
    }
    // Every subscriber has its first description; one poll interval to settle, then measure.
    let rss_subscribed = rss_kib(pid)?;
    tokio::time::sleep(poll * 2).await;
    while delays_rx.try_recv().is_ok() {}
    let (cpu_before, calls_before, started) =
        (cpu_ticks(pid)?, simulator.calls("DescribeTaskExecution"), Instant::now());
    let mut delays = Vec::new();
    while started.elapsed() < window {
        if let Ok(Some((at, delay))) =
            tokio::time::timeout(Duration::from_millis(100), delays_rx.recv()).await
        {
            if at >= started {
                delays.push(delay);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / TICKS_PER_SECOND / elapsed * 100.0;
    let calls = simulator.calls("DescribeTaskExecution") - calls_before;
    let rss = rss_kib(pid)?;
    drop(gateway);

    delays.sort_by(f64::total_cmp);
    let at = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    let expected = executions as f64 * 60.0 / poll.as_secs_f64();
    println!("| subscribers | executions | poll | pushes | delay p50 ms | p99 ms | max ms | RSS idle → subscribed → after MiB | gateway CPU % of a core | DescribeTaskExecution / min (expected) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | {executions} | {:?} | {} | {:.1} | {:.1} | {:.1} | {:.1} → {:.1} → {:.1} | {cpu:.0} | {:.0} ({expected:.0}) |",
        executions * per_execution,
        poll,
        delays.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        rss_idle as f64 / 1024.0,
        rss_subscribed as f64 / 1024.0,
        rss as f64 / 1024.0,
        calls as f64 * 60.0 / elapsed,
    );
    Ok(())
}
