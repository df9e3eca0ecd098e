//! Cache hits against the HTTP floor. In one run, the gateway (release binary, a process of its
//! own, no database, in front of the simulator) and a bare axum handler serving the very bytes
//! the gateway answered (this benchmark re-run as a process of its own) are driven by the same
//! closed-loop load generator, query by query; the table gives each one's throughput and
//! latency and the gateway's share of the floor. Beside them, what each request cost the server
//! in CPU time: the throughput on two cores moves with the load generator's share of them, from
//! run to run, while a change to the gateway's own work shows in its CPU per request.
//!
//! Two gateways, each row labelled by what it measures: one as deployed, whose response cache
//! replays the stored bytes of an identical request ("response cache replay"), and one with
//! `--response-cache-bytes 0`, where every request is parsed, validated and executed and the
//! executions come from the execution cache ("execution path, execution cache hit"). Both
//! answer the same bytes, so one floor serves for both.
//!
//! Some rows send several requests in turn: one operation with its variable over 200 executions
//! (the execution path: one parsed document, new variables each time), or a distinct operation
//! each time (a fresh alias, never sent before: parsed and validated each time, on both
//! gateways). The floor answers those requests with the first one's answer.
//!
//! Every limit stays on: the per-caller rate limit is set far above what one load generator
//! reaches (one caller here), so that its check is paid on every request but never refuses.
//!
//! Run with `cargo bench --bench cache_hits`; figures go in BENCHMARKS.md. Environment:
//! HITS_CONNECTIONS (32, as `wrk -c32`), HITS_SECONDS (measured window per target, 10),
//! HITS_WARMUP_SECONDS (2), HITS_ROUNDS (1; the targets alternate within a round), HITS_ONLY
//! (run only the queries whose name contains it, e.g. to profile one: the gateway's pid is
//! printed).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::Duration;

use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

use common::env_or;
use common::fleet::finished_executions;
use common::load::{drive, post_json, Load};
use common::process::GatewayProcess;

/// Set in the floor's own process: the file holding the body it serves.
const FLOOR_BODY: &str = "HITS_FLOOR_BODY";
const FLOOR_LISTEN: &str = "HITS_FLOOR_LISTEN";

const ONE: &str = "query One($arn: ID!) { taskExecution(arn: $arn) {
    taskExecutionArn status bytesWritten options { verifyMode } result { totalDuration } } }";
/// Distinct operations made for the alias row: more than the generator sends in a run (warm-up
/// and window of both gateways), so that none is sent twice.
const DISTINCT: usize = 400_000;
const FIFTY: &str = "query Fifty($arns: [ID!]!) { taskExecutions(arns: $arns) {
    taskExecutionArn status bytesWritten options { verifyMode } result { totalDuration } } }";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    match (std::env::var(FLOOR_BODY), std::env::var(FLOOR_LISTEN)) {
        (Ok(body), Ok(listen)) => runtime.block_on(serve_floor(body, listen)),
        _ => runtime.block_on(compare()),
    }
}

/// The floor: one route answering the stored bytes, as a plain axum application.
async fn serve_floor(body_file: String, listen: String) -> anyhow::Result<()> {
    let body = bytes::Bytes::from(std::fs::read(body_file)?);
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    axum::serve(tokio::net::TcpListener::bind(listen).await?, app).await?;
    Ok(())
}

/// The floor for `body`, as a process of its own; killed when dropped.
struct Floor {
    child: std::process::Child,
    address: std::net::SocketAddr,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Floor {
    async fn start(body: &[u8]) -> anyhow::Result<Floor> {
        let file = std::env::temp_dir().join(format!("cache-hits-floor-{}.json", std::process::id()));
        std::fs::write(&file, body)?;
        let address: std::net::SocketAddr =
            format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
                .parse()?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .env(FLOOR_BODY, &file)
            .env(FLOOR_LISTEN, address.to_string())
            .spawn()?;
        let floor = Floor { child, address };
        while tokio::net::TcpStream::connect(address).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(floor)
    }
}

async fn compare() -> anyhow::Result<()> {
    let connections: usize = env_or("HITS_CONNECTIONS", 32);
    let window = Duration::from_secs(env_or("HITS_SECONDS", 10));
    let warmup = Duration::from_secs(env_or("HITS_WARMUP_SECONDS", 2));
    let rounds: usize = env_or("HITS_ROUNDS", 1);
    let only: String = env_or("HITS_ONLY", String::new());

    let config =
        SimulatorConfig { extra_executions: 400, ..SimulatorConfig::with_tick(Duration::from_millis(100)) };
    let simulator = Simulator::start("127.0.0.1:0".parse()?, config).await?;
    let arns = finished_executions(&simulator, 200).await?;
    let endpoint = simulator.endpoint_url();
    let args = [
        "--datasync-endpoint",
        endpoint.as_str(),
        "--regions",
        "us-east-1,eu-west-1",
        "--fake-credentials",
        "--rate-limit",
        "1000000000",
    ];
    let replaying = GatewayProcess::start(&args).await?;
    let executing = GatewayProcess::start(&[&args[..], &["--response-cache-bytes", "0"]].concat()).await?;

    // What is sent (one request, or several in turn), and what the gateway without a response
    // cache does for it.
    let hit = "execution path, execution cache hit";
    let one = |arn: &String| json!({ "query": ONE, "variables": { "arn": arn } });
    let varying: Vec<Value> = arns.iter().map(one).collect();
    let distinct: Vec<Value> = (0..DISTINCT)
        .map(|n| {
            let query = ONE.replacen("taskExecution(", &format!("a{n:07}: taskExecution("), 1);
            json!({ "query": query, "variables": { "arn": arns[0] } })
        })
        .collect();
    let workloads = [
        (
            "`{ __typename }`",
            "execution path, no execution read",
            vec![json!({ "query": "{ __typename }" })],
            false,
        ),
        ("one execution, 8 fields", hit, vec![one(&arns[0])], false),
        ("one execution, 8 fields, variables over 200 executions", hit, varying, false),
        (
            "one execution, 8 fields, a distinct operation each time (alias)",
            "execution path, parsed and validated each time",
            distinct,
            true,
        ),
        (
            "50 executions, 8 fields each",
            hit,
            vec![json!({ "query": FIFTY, "variables": { "arns": arns[..50] } })],
            false,
        ),
    ];
    println!(
        "{connections} connections, {warmup:?} warm-up, {window:?} measured per target and round; gateway pids: \
         response cache on {}, off {}\n",
        replaying.pid, executing.pid
    );
    println!("| what is measured: query | target | requests/s | p50 ms | p99 ms | gateway ÷ floor (throughput, p99) | server CPU µs/request |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, execution_path, bodies, distinct) in
        workloads.into_iter().filter(|(name, ..)| name.contains(&only))
    {
        let client = reqwest::Client::new();
        // Each distinct operation is new to the gateway: only the first is sent ahead, which
        // caches the execution it reads. Otherwise every request is sent ahead twice: the first
        // fills the caches (one DataSync call per execution), the second is a hit (and, with the
        // response cache on, is stored for replay).
        let ahead = if distinct { 1 } else { bodies.len() };
        let mut requests: Vec<(Vec<u8>, usize)> = Vec::with_capacity(bodies.len());
        let mut first_answer = bytes::Bytes::new();
        for (i, body) in bodies.iter().enumerate() {
            let encoded = post_json("/graphql", &body.to_string());
            if i >= ahead {
                // Fixed-width aliases: every answer is as long as the first.
                let len = requests[0].1;
                requests.push((encoded, len));
                continue;
            }
            let mut answers = Vec::new();
            for gateway in [&replaying, &executing] {
                for _ in 0..2 {
                    client.post(gateway.url("/graphql")).json(body).send().await?;
                }
                let answer = client.post(gateway.url("/graphql")).json(body).send().await?.bytes().await?;
                let parsed: Value = serde_json::from_slice(&answer)?;
                anyhow::ensure!(parsed["errors"].is_null(), "{name}: {parsed}");
                answers.push(answer);
            }
            anyhow::ensure!(answers[0] == answers[1], "{name}: the two gateways answer different bytes");
            if i == 0 {
                first_answer = answers[0].clone();
            }
            requests.push((encoded, answers[0].len()));
        }
        let floor = Floor::start(&first_answer).await?;
        let at_floor_requests: Vec<_> =
            requests.iter().map(|(request, _)| (request.clone(), first_answer.len())).collect();
        let targets = [
            ("response cache replay", "gateway", &replaying),
            (execution_path, "gateway, --response-cache-bytes 0", &executing),
        ];
        for _ in 0..rounds {
            let at_floor =
                drive(floor.address, floor.child.id(), &at_floor_requests, connections, warmup, window)
                    .await?;
            row(&format!("bare HTTP floor: {name}"), "floor (bare axum)", &at_floor, None);
            for (what, target, gateway) in targets {
                // A request never sent before cannot be a replay, whatever the gateway.
                let what = if distinct { execution_path } else { what };
                let at_gateway =
                    drive(gateway.address, gateway.pid, &requests, connections, warmup, window).await?;
                row(&format!("{what}: {name}"), target, &at_gateway, Some(&at_floor));
            }
        }
    }
    Ok(())
}

fn row(query: &str, target: &str, load: &Load, floor: Option<&Load>) {
    let ratio = floor
        .map(|floor| {
            format!("{:.2}, {:.2}", load.per_second() / floor.per_second(), load.at(0.99) / floor.at(0.99))
        })
        .unwrap_or_default();
    println!(
        "| {query} | {target} | {:.0} | {:.3} | {:.3} | {ratio} | {} |",
        load.per_second(),
        load.at(0.5),
        load.at(0.99),
        load.server_cpu_per_request().map_or_else(|| "n/a".into(), |micros| format!("{micros:.1}"))
    );
}
