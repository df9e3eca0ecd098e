//! Webhooks under load. Run it with `scripts/bench webhooks`.
//!
//! A gateway process (release build) sends to BENCH_WEBHOOK_ENDPOINTS endpoints (default 100),
//! each filtering on a task of its own, served by a receiver in this process. Events are made
//! the way the watcher makes them: executions written through the index's upsert (the same
//! statement and transaction that append to the outbox), each first as TRANSFERRING
//! (`execution.started`) and a second later as SUCCESS (`execution.finished`), spread evenly over
//! the tasks, BENCH_WEBHOOK_EVENTS events a minute (default 10,000) for BENCH_WEBHOOK_MINUTES
//! (default 5). Two phases of that: every endpoint healthy; then the same with one more
//! endpoint on the first task that refuses every connection (down throughout).
//!
//! Per phase: event→delivery latency (from the upsert's commit to the receiver's arrival) of the
//! healthy endpoints, p50/p99/max, and of the first task's endpoint alone; events delivered;
//! the time the backlog took to drain after the load stopped; the gateway's CPU. Then the
//! outbox's and the delivery log's size, and what pruning them takes.
//!
//! Environment: BENCH_DATABASE_URL (a server where the bench may create `bench_webhooks`).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::Utc;
use common::process::{cpu_ticks, GatewayProcess};
use common::{database, env_or, post};
use datasync_gateway::model::TaskExecution;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use datasync_gateway::store::webhooks::outbox::event_id;
use datasync_gateway::store::Database;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

const TICK: Duration = Duration::from_millis(100);
/// How long an execution runs between its two events.
const RUNNING: Duration = Duration::from_secs(1);

/// What the receiver saw: event id → arrival, and deliveries per endpoint.
#[derive(Default)]
struct Received {
    arrivals: HashMap<String, (usize, Instant)>,
    repeats: usize,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(State(received): State<Shared>, Path(endpoint): Path<usize>, headers: HeaderMap) {
    let now = Instant::now();
    let id = headers.get("webhook-id").and_then(|id| id.to_str().ok()).unwrap_or_default().to_owned();
    let mut received = received.lock().unwrap();
    if received.arrivals.insert(id, (endpoint, now)).is_some() {
        received.repeats += 1;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url =
        std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (run scripts/bench webhooks)");
    let endpoints: usize = env_or("BENCH_WEBHOOK_ENDPOINTS", 100);
    let per_minute: f64 = env_or("BENCH_WEBHOOK_EVENTS", 10_000.0);
    let minutes: f64 = env_or("BENCH_WEBHOOK_MINUTES", 5.0);
    let url = database(&admin_url, "bench_webhooks").await?;

    let simulator =
        Simulator::start("127.0.0.1:0".parse()?, SimulatorConfig::with_tick(Duration::from_secs(3600)))
            .await?;
    let endpoint = simulator.endpoint_url();
    let gateway = GatewayProcess::start(&[
        "--database-url",
        &url,
        "--datasync-endpoint",
        &endpoint,
        "--fake-credentials",
        "--regions",
        "us-east-1,eu-west-1",
        "--discovery",
        "off",
        "--report-ingestion",
        "off",
        "--webhooks-allow-http",
        "--webhooks-allow-private",
    ])
    .await?;
    let graphql = gateway.url("/graphql");
    let client = reqwest::Client::new();

    let received: Shared = Default::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_address = receiver.local_addr()?;
    let app = axum::Router::new()
        .route("/hooks/{endpoint}", axum::routing::post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let create = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }";
    for n in 0..endpoints {
        let input = json!({
            "url": format!("http://{receiver_address}/hooks/{n}"),
            "filter": { "taskArns": [task_arn(n)] },
        });
        post(&client, &graphql, &json!({ "query": create, "variables": { "input": input } })).await?;
    }
    let store = Database::connect_lazy(&url, 4)?.index();

    println!(
        "{endpoints} endpoints, one task each; {per_minute:.0} events a minute for {minutes} min a phase\n"
    );
    println!("| phase | events | delivered | p50 ms | p99 ms | max ms | first task's endpoint p99 ms | drained after load, s | gateway CPU, cores |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut next_execution = 0;
    for phase in ["all healthy", "one more endpoint down throughout"] {
        if phase != "all healthy" {
            // A closed port: every attempt is a refused connection, retried on the schedule.
            let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let input = json!({ "url": format!("http://127.0.0.1:{closed}/down"), "filter": { "taskArns": [task_arn(0)] } });
            post(&client, &graphql, &json!({ "query": create, "variables": { "input": input } })).await?;
        }
        received.lock().unwrap().arrivals.clear();
        let cpu_before = cpu_ticks(gateway.pid)?;
        let started = Instant::now();
        let written = load(&store, endpoints, per_minute, minutes, &mut next_execution).await?;
        let load_ended = Instant::now();
        let drained = loop {
            let delivered = received.lock().unwrap().arrivals.len();
            if delivered >= written.len() || load_ended.elapsed() > Duration::from_secs(120) {
                break load_ended.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let cores = (cpu_ticks(gateway.pid)? - cpu_before) as f64 / 100.0 / started.elapsed().as_secs_f64();
        let received = received.lock().unwrap();
        let mut all = Vec::new();
        let mut first_task = Vec::new();
        for (id, (endpoint, arrived)) in &received.arrivals {
            if let Some(committed) = written.get(id) {
                let latency = arrived.saturating_duration_since(*committed).as_secs_f64() * 1000.0;
                all.push(latency);
                if *endpoint == 0 {
                    first_task.push(latency);
                }
            }
        }
        all.sort_by(f64::total_cmp);
        first_task.sort_by(f64::total_cmp);
        let at = |sorted: &[f64], p: f64| {
            sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
        };
        println!(
            "| {phase} | {} | {} (repeats {}) | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {cores:.2} |",
            written.len(),
            all.len(),
            received.repeats,
            at(&all, 0.5),
            at(&all, 0.99),
            at(&all, 1.0),
            at(&first_task, 0.99),
            drained.as_secs_f64(),
        );
    }

    let mut connection = PgConnection::connect(&url).await?;
    let sizes = "SELECT (SELECT count(*) FROM webhook_events), pg_total_relation_size('webhook_events'), \
                 (SELECT count(*) FROM webhook_deliveries), pg_total_relation_size('webhook_deliveries')";
    let (events, events_bytes, deliveries, deliveries_bytes): (i64, i64, i64, i64) =
        sqlx::query_as(sizes).fetch_one(&mut connection).await?;
    println!(
        "\nOutbox: {events} events, {:.1} MiB ({:.0} bytes an event); delivery log: {deliveries} deliveries, {:.1} MiB ({:.0} bytes a delivery), indexes included.",
        events_bytes as f64 / 1048576.0,
        events_bytes as f64 / events.max(1) as f64,
        deliveries_bytes as f64 / 1048576.0,
        deliveries_bytes as f64 / deliveries.max(1) as f64,
    );
    let pruning = Instant::now();
    let pruned = Database::connect_lazy(&url, 1)?.webhooks().prune(Utc::now()).await?;
    let took = pruning.elapsed();
    connection.execute("VACUUM webhook_events, webhook_deliveries").await?;
    let (_, events_bytes, _, deliveries_bytes): (i64, i64, i64, i64) =
        sqlx::query_as(sizes).fetch_one(&mut connection).await?;
    println!(
        "Pruning every event (`--webhook-retention` reached): {pruned} events and their deliveries deleted in {:.2} s; after VACUUM {:.1} MiB left (free space kept for reuse).",
        took.as_secs_f64(),
        (events_bytes + deliveries_bytes) as f64 / 1048576.0
    );
    drop(simulator);
    Ok(())
}

/// Writes executions through the index's upsert for `minutes` at `per_minute` events; the
/// commit time of each event, by its webhook id.
async fn load(
    store: &datasync_gateway::store::index::IndexStore,
    tasks: usize,
    per_minute: f64,
    minutes: f64,
    next: &mut usize,
) -> anyhow::Result<HashMap<String, Instant>> {
    let mut written = HashMap::new();
    let mut running: Vec<(Instant, TaskExecution)> = Vec::new();
    let per_tick = per_minute / 2.0 / 60.0 * TICK.as_secs_f64();
    let ticks = (minutes * 60.0 / TICK.as_secs_f64()) as usize;
    let mut owed = 0.0;
    let mut clock = tokio::time::interval(TICK);
    for tick in 0..ticks + (RUNNING.as_millis() / TICK.as_millis()) as usize {
        clock.tick().await;
        let mut batch = Vec::new();
        if tick < ticks {
            owed += per_tick;
            while owed >= 1.0 {
                owed -= 1.0;
                let execution = execution(*next % tasks, *next, "TRANSFERRING");
                *next += 1;
                running.push((Instant::now() + RUNNING, execution.clone()));
                batch.push(execution);
            }
        }
        let now = Instant::now();
        while running.first().is_some_and(|(due, _)| *due <= now) {
            let (_, mut execution) = running.remove(0);
            execution = finished(execution);
            batch.push(execution);
        }
        if batch.is_empty() {
            continue;
        }
        let batch: Vec<Arc<TaskExecution>> = batch.into_iter().map(Arc::new).collect();
        store.upsert(&batch).await?;
        let committed = Instant::now();
        for execution in &batch {
            written
                .insert(event_id(execution.task_execution_arn.as_str(), execution.status.raw()), committed);
        }
    }
    Ok(written)
}

fn task_arn(task: usize) -> String {
    format!("arn:aws:datasync:us-east-1:111122223333:task/task-{task:017x}")
}

fn execution(task: usize, n: usize, status: &str) -> TaskExecution {
    let now = Utc::now();
    serde_json::from_value(json!({
        "taskExecutionArn": format!("{}/execution/exec-{n:017x}", task_arn(task)),
        "status": status, "options": null, "excludes": [], "includes": [], "startTime": now,
        "estimatedFilesToTransfer": 10, "estimatedBytesToTransfer": 1000, "filesTransferred": 5,
        "bytesWritten": 500, "bytesTransferred": 500, "bytesCompressed": 0, "result": null,
        "filesDeleted": 0, "filesSkipped": 0, "filesVerified": 0, "estimatedFilesToDelete": 0,
        "taskMode": "BASIC", "filesPrepared": 0, "fetchedAt": now,
    }))
    .expect("a well-formed execution")
}

fn finished(execution: TaskExecution) -> TaskExecution {
    let mut document: Value = serde_json::to_value(&execution).expect("it serialises");
    let now = Utc::now();
    document["status"] = json!("SUCCESS");
    document["filesTransferred"] = json!(10);
    document["result"] = json!({ "totalDuration": 1000, "transferDuration": 900 });
    document["endTime"] = json!(now);
    document["fetchedAt"] = json!(now);
    serde_json::from_value(document).expect("a well-formed execution")
}
