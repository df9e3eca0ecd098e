//! Many accounts: 200 simulated accounts × 2 regions (400 sites), each with the seeded fleet (4
//! tasks, 11 executions). Run it with `scripts/bench accounts`.
//!
//! - Memory: one gateway process serving every account with all 400 SDK clients built (one
//!   read in each site), against one serving a single account (its 2 clients built).
//! - Sharing: three processes on one empty database sync the organisation; the time until every
//!   execution is indexed, the DataSync calls per site per interval, `AssumeRole` calls per
//!   account, and each process's memory.
//!
//! Environment: BENCH_DATABASE_URL (a server where the bench may create `bench_accounts`),
//! BENCH_ACCOUNTS (default 200), BENCH_SYNC_INTERVAL seconds (default 10).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::{Duration, Instant};

use common::env_or;
use common::process::{rss_kib, GatewayProcess};
use datasync_gateway::simulator::accounts::account_id;
use datasync_gateway::simulator::fleet::{self, seeded};
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

const OPERATIONS: [&str; 5] =
    ["ListTasks", "ListTaskExecutions", "DescribeTaskExecution", "DescribeTask", "ListLocations"];

/// Seeded executions in each account's copy of the fleet.
const PER_ACCOUNT: usize = seeded::ALL.len() - 1;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url =
        std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (run scripts/bench accounts)");
    let accounts: usize = env_or("BENCH_ACCOUNTS", 200);
    let interval: u64 = env_or("BENCH_SYNC_INTERVAL", 10);
    let sites = accounts * fleet::REGIONS.len();
    let config = SimulatorConfig { accounts, ..SimulatorConfig::with_tick(Duration::from_secs(2)) };
    let simulator = Simulator::start("127.0.0.1:0".parse()?, config).await?;
    let url = simulator.endpoint_url();
    let base = [
        "--datasync-endpoint",
        &url,
        "--sts-endpoint",
        &url,
        "--organizations-endpoint",
        &url,
        "--fake-credentials",
        "--regions",
        "us-east-1,eu-west-1",
        "--rate-limit",
        "0",
    ];
    let organisation = ["--organization-role-name", "Reader"];

    // Memory: every site's client built, against one account's two.
    let one = GatewayProcess::start(&base).await?;
    read_each_site(&one, 1).await?;
    let one_kib = rss_kib(one.pid)?;
    drop(one);
    let all = GatewayProcess::start(&[&base[..], &organisation[..]].concat()).await?;
    read_each_site(&all, 1).await?;
    let listed_kib = rss_kib(all.pid)?;
    read_each_site(&all, accounts).await?;
    let all_kib = rss_kib(all.pid)?;
    drop(all);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| one process | RSS MiB | more than one account |\n| --- | --- | --- |");
    println!("| one account, 2 clients built | {:.1} | |", mib(one_kib));
    println!(
        "| {accounts} accounts listed, 2 clients built | {:.1} | {:.1} |",
        mib(listed_kib),
        mib(listed_kib) - mib(one_kib)
    );
    println!(
        "| {accounts} accounts, {sites} clients built | {:.1} | {:.1} |\n",
        mib(all_kib),
        mib(all_kib) - mib(one_kib)
    );
    if std::env::var_os("BENCH_MEMORY_ONLY").is_some() {
        return Ok(());
    }

    // Three processes share the sync of an empty index.
    let (server, _) = admin_url.rsplit_once('/').expect("a URL ending in /DATABASE");
    let mut admin = PgConnection::connect(&admin_url).await?;
    admin.execute("DROP DATABASE IF EXISTS bench_accounts").await?;
    admin.execute("CREATE DATABASE bench_accounts").await?;
    let database_url = format!("{server}/bench_accounts");
    let interval_text = format!("{interval}s");
    let shared = [
        "--database-url",
        &database_url,
        "--discovery",
        "on",
        "--discovery-interval",
        &interval_text,
        "--lease-duration",
        "10s",
    ];
    let args = [&base[..], &organisation[..], &shared[..]].concat();
    let started = Instant::now();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(GatewayProcess::start(&args).await?);
    }
    let mut database = PgConnection::connect(&database_url).await?;
    let expected = (accounts * PER_ACCOUNT) as i64;
    loop {
        let indexed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM execution_snapshots").fetch_one(&mut database).await?;
        let synced: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE error IS NULL")
            .fetch_one(&mut database)
            .await
            .unwrap_or(0);
        if indexed == expected && synced == sites as i64 {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "not indexed: {indexed} of {expected}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let to_index = started.elapsed();

    // Steady state: calls over three intervals.
    let before: Vec<u64> = OPERATIONS.iter().map(|operation| simulator.calls(operation)).collect();
    let window = Duration::from_secs(3 * interval);
    tokio::time::sleep(window).await;
    let calls: Vec<(&str, u64)> = OPERATIONS
        .iter()
        .zip(before)
        .map(|(operation, before)| (*operation, simulator.calls(operation) - before))
        .collect();
    let per_site_interval = |count: u64| count as f64 / sites as f64 / 3.0;
    let total: u64 = calls.iter().map(|(_, count)| count).sum();
    let runners: Vec<(String, i64)> =
        sqlx::query_as("SELECT replica, count(*) FROM sync_runs GROUP BY replica ORDER BY replica")
            .fetch_all(&mut database)
            .await?;
    let assumed: Vec<u64> = (0..accounts).map(|n| simulator.assumed(&account_id(n))).collect();
    let rss: Vec<String> = replicas
        .iter()
        .map(|replica| rss_kib(replica.pid).map(|kib| format!("{:.1}", kib as f64 / 1024.0)))
        .collect::<anyhow::Result<_>>()?;

    println!("| three processes, one database | |\n| --- | --- |");
    println!("| sites ({accounts} accounts × {} regions) | {sites} |", fleet::REGIONS.len());
    println!("| executions indexed from empty | {expected} in {:.1} s |", to_index.as_secs_f64());
    println!(
        "| sites synced by each process | {} |",
        runners.iter().map(|(_, count)| count.to_string()).collect::<Vec<_>>().join(" / ")
    );
    for (operation, count) in &calls {
        println!("| {operation} per site per {interval} s interval | {:.2} |", per_site_interval(*count));
    }
    println!(
        "| all DataSync calls per site per interval (budget: {} a site per interval) | {:.2} |",
        10 * interval,
        per_site_interval(total)
    );
    println!(
        "| AssumeRole per account in {:.0} s, 3 processes (max / mean) | {} / {:.2} |",
        started.elapsed().as_secs_f64(),
        assumed.iter().max().unwrap_or(&0),
        assumed.iter().sum::<u64>() as f64 / accounts as f64
    );
    println!("| RSS per process, MiB | {} |", rss.join(" / "));
    Ok(())
}

/// Reads one execution of each site of the first `accounts` accounts (the transferring one in
/// us-east-1, the Enhanced one in eu-west-1), so that every site's SDK client is built.
async fn read_each_site(gateway: &GatewayProcess, accounts: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let query = "query($arn: ID!) { taskExecution(arn: $arn) { status } }";
    for n in 0..accounts {
        for arn in [seeded::TRANSFERRING, seeded::SUCCEEDED_ENHANCED] {
            let arn = arn.replacen(&format!(":{}:", fleet::ACCOUNT), &format!(":{}:", account_id(n)), 1);
            let body = json!({ "query": query, "variables": { "arn": arn } });
            let answer: Value = client.post(gateway.url("/graphql")).json(&body).send().await?.json().await?;
            anyhow::ensure!(answer.get("errors").is_none(), "{arn}: {answer}");
        }
    }
    Ok(())
}
