//! The watcher with a database: executions nobody asked about followed from the index, and
//! several gateway processes sharing the polling through leases, with changes reaching
//! subscribers on every replica through NOTIFY.

use std::collections::HashMap;
use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{history_config, spawn_gateway, test_database, GatewayProcess};
use crate::live::{results_until_complete, start_quick, FOLLOW};
use crate::ws_client::{connect, Event, TRANSPORT_WS};

const EVENTS: &str = "subscription($filter: ExecutionFilter) {
    executionEvents(filter: $filter) { kind previousStatus execution { taskExecutionArn status servedFrom } }
}";

const WAIT: Duration = Duration::from_secs(30);

async fn simulator(tick: Duration) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(tick)).await.unwrap()
}

/// A gateway in front of `simulator` on a database of its own, syncing every second and
/// polling every 100 ms; its address and database.
async fn syncing_gateway(simulator: &Simulator) -> (std::net::SocketAddr, String) {
    let mut config = history_config().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(1);
    config.live.poll_interval = Duration::from_millis(100);
    let database_url = config.history.database_url.clone().unwrap();
    let (address, _) = spawn_gateway(config).await;
    (address, database_url)
}

#[tokio::test]
async fn an_execution_nobody_asked_about_is_indexed_followed_recorded_and_announced() {
    // Executions of about 12 s: polled every 100 ms, it is polled five times over even when a
    // loaded machine keeps the watcher to a fraction of its pace (with 6 s, a full-suite run on
    // 2 cores once saw 4).
    let simulator = simulator(Duration::from_millis(400)).await;
    let (address, database_url) = syncing_gateway(&simulator).await;

    let mut feed = connect(address, TRANSPORT_WS).await;
    feed.subscribe("feed", EVENTS, json!({ "filter": { "taskArns": [seeded::QUICK_TASK] } })).await;
    // The feed is open before the execution starts: nothing is pushed until something happens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let arn = start_quick(&simulator).await;

    let mut kinds = Vec::new();
    while kinds.last() != Some(&"FINISHED".to_owned()) {
        match feed.event_within(WAIT).await {
            // The task's other executions (a seeded one that never ends) have events too.
            Event::Next(_, payload) => {
                let event = &payload["data"]["executionEvents"];
                if event["execution"]["taskExecutionArn"] == arn.as_str() {
                    kinds.push(event["kind"].as_str().unwrap().to_owned());
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("STARTED"), "{kinds:?}");
    assert!(kinds.contains(&"STATUS_CHANGED".to_owned()), "{kinds:?}");
    assert!(simulator.described(&arn) >= 5, "followed by polls while it ran: {}", simulator.described(&arn));

    let pool = PgPool::connect(&database_url).await.unwrap();
    let (status, first_seen_terminal): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT status, first_seen_terminal FROM execution_snapshots WHERE execution_arn = $1",
    )
    .bind(&arn)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "SUCCESS");
    assert!(first_seen_terminal.is_some(), "recorded as finished");
    pool.close().await;
}

#[tokio::test]
async fn a_client_told_finished_reads_finished_from_the_index_at_once() {
    const RUNS: usize = 200;
    let simulator = simulator(Duration::from_millis(100)).await;
    let (address, database_url) = syncing_gateway(&simulator).await;
    let url = format!("http://{address}/graphql");

    // Writes to the index are held back 400 ms at a time, with short gaps (well within the
    // gateway's 10 s store limit), as a loaded database would: the watcher's cycles then mostly
    // begin while writes are held, and an event sent before its row is written is read as the
    // old status, rather than by chance.
    let pool = PgPool::connect(&database_url).await.unwrap();
    let stalls = tokio::spawn(async move {
        loop {
            let mut transaction = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE execution_snapshots IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *transaction)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            transaction.commit().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    // Only the finishes, and the starts spread out, so that this client, which reads the index
    // after each event before taking the next, keeps up with the feed.
    let mut feed = connect(address, TRANSPORT_WS).await;
    let filter = json!({ "taskArns": [seeded::QUICK_TASK], "statuses": ["SUCCESS"] });
    feed.subscribe("feed", EVENTS, json!({ "filter": filter })).await;
    let client = crate::common::sdk_client(&simulator.endpoint_url()).await;
    let mut started = std::collections::HashSet::new();
    for _ in 0..RUNS {
        let run = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
        started.insert(run.task_execution_arn().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

    let index = "query($task: ID!) { executions(filter: { taskArns: [$task] }, first: 500) {
        edges { node { taskExecutionArn status } } } }";
    let mut finished = 0;
    while finished < RUNS {
        let event = tokio::time::timeout(WAIT, feed.event()).await;
        let Ok(Event::Next(_, payload)) = event else {
            panic!("{finished} of {RUNS} finished, then {event:?}")
        };
        let event = &payload["data"]["executionEvents"];
        let arn = event["execution"]["taskExecutionArn"].as_str().unwrap().to_owned();
        if event["kind"] != "FINISHED" || !started.contains(&arn) {
            continue;
        }
        finished += 1;
        // Right after the event, with nothing in between: the index must already say so.
        let page = crate::common::graphql(&url, index, json!({ "task": seeded::QUICK_TASK })).await;
        let edges = page["data"]["executions"]["edges"].as_array().unwrap_or_else(|| panic!("{page}"));
        let indexed = edges.iter().find(|edge| edge["node"]["taskExecutionArn"] == arn.as_str());
        assert_eq!(
            indexed.map(|edge| &edge["node"]["status"]),
            Some(&event["execution"]["status"]),
            "{arn} announced as {} but the index says otherwise",
            event["execution"]["status"]
        );
    }
    stalls.abort();
}

/// A gateway process of its own, told apart at the simulator by its access key.
struct Replica {
    gateway: GatewayProcess,
    access_key: &'static str,
}

impl Replica {
    /// Starts `datasync-gateway serve` on `database_url`, signing its DataSync calls with
    /// `access_key` (which is how the simulator tells the replicas apart).
    async fn start(simulator: &Simulator, database_url: &str, access_key: &'static str) -> Replica {
        Replica::with_lease(simulator, database_url, access_key, "1s").await
    }

    /// As [`Replica::start`], with `--lease-duration lease`.
    async fn with_lease(
        simulator: &Simulator,
        database_url: &str,
        access_key: &'static str,
        lease: &str,
    ) -> Replica {
        let spool = std::env::temp_dir().join(format!("gateway-replica-{}-{access_key}", std::process::id()));
        let args = [
            "--discovery",
            "on",
            "--discovery-interval",
            "1s",
            "--poll-interval",
            "100ms",
            "--lease-duration",
            lease,
            "--datasync-calls-per-second",
            "10000",
            "--spool-dir",
            spool.to_str().unwrap(),
        ];
        let envs = [("AWS_ACCESS_KEY_ID", access_key)];
        let gateway = GatewayProcess::start(access_key, simulator, database_url, &args, &envs).await;
        Replica { gateway, access_key }
    }

    async fn name(&self) -> String {
        let ready: Value = reqwest::get(format!("http://{}/readyz", self.gateway.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["live"]["watcher"]["replica"].as_str().unwrap().to_owned()
    }
}

/// Who holds the lease on each of `arns`, once every one is held.
async fn owners(pool: &PgPool, arns: &[String]) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT execution_arn, poll_owner FROM execution_snapshots WHERE execution_arn = ANY($1)",
        )
        .bind(arns)
        .fetch_all(pool)
        .await
        .unwrap();
        let held: HashMap<String, String> =
            rows.into_iter().filter_map(|(arn, owner)| Some((arn, owner?))).collect();
        if held.len() == arns.len() {
            return held;
        }
        assert!(tokio::time::Instant::now() < deadline, "leases never all taken: {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_replicas_poll_each_execution_once_and_the_survivor_of_a_kill_finishes_them() {
    let simulator = simulator(Duration::from_millis(250)).await;
    let database_url = test_database().await;
    let a = Replica::start(&simulator, &database_url, "AKIDREPLICAA").await;
    let b = Replica::start(&simulator, &database_url, "AKIDREPLICAB").await;
    let names = HashMap::from([(a.name().await, "a"), (b.name().await, "b")]);
    let mut arns = Vec::new();
    for _ in 0..4 {
        arns.push(start_quick(&simulator).await);
    }
    let pool = PgPool::connect(&database_url).await.unwrap();
    let held = owners(&pool, &arns).await;

    // A subscriber on the replica that does not poll an execution.
    let (holder, other) = if names[&held[&arns[0]]] == "a" { (a, b) } else { (b, a) };
    let mut subscriber = connect(other.gateway.address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": arns[0] })).await;
    assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)));

    // While both run, each execution's polls come from one replica only.
    let counts = |arn: &str| {
        (simulator.described_by(arn, holder.access_key), simulator.described_by(arn, other.access_key))
    };
    let before: Vec<(u64, u64)> = arns.iter().map(|arn| counts(arn)).collect();
    let mut pushed = Vec::new();
    let window = tokio::time::Instant::now();
    while window.elapsed() < Duration::from_secs(1) {
        if let Ok(Event::Next(_, payload)) =
            tokio::time::timeout(Duration::from_millis(100), subscriber.event()).await
        {
            pushed.push(payload["data"]["taskExecutionUpdated"]["bytesWritten"].as_i64().unwrap());
        }
    }
    let held = owners(&pool, &arns).await;
    for (arn, (holder_before, other_before)) in arns.iter().zip(before) {
        let (holder_after, other_after) = counts(arn);
        let polled_by = [(holder_after > holder_before), (other_after > other_before)];
        assert_eq!(
            polled_by.iter().filter(|polled| **polled).count(),
            1,
            "{arn}: polled by {polled_by:?}, lease {held:?}"
        );
    }
    assert!(pushed.len() >= 2, "the other replica's subscriber saw the holder's polls: {pushed:?}");

    // kill -9 the holder: within two lease periods the other takes its executions over and
    // follows them to the end.
    let holder_name = &held[&arns[0]];
    let held_by_holder: Vec<&String> = arns.iter().filter(|arn| &held[*arn] == holder_name).collect();
    let mut holder = holder;
    holder.gateway.kill();
    let results = results_until_complete(&mut subscriber, "1").await;
    assert_eq!(results.last().unwrap()["data"]["taskExecutionUpdated"]["status"], "SUCCESS");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let finished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM execution_snapshots WHERE execution_arn = ANY($1) AND status = 'SUCCESS'",
        )
        .bind(&arns)
        .fetch_one(&pool)
        .await
        .unwrap();
        if finished == arns.len() as i64 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the survivor never finished them: {finished}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for arn in held_by_holder {
        assert!(simulator.described_by(arn, other.access_key) > 1, "{arn} was taken over");
    }
    pool.close().await;
}

#[tokio::test]
async fn after_a_kill_9_the_survivor_takes_over_by_heartbeat_not_after_the_whole_lease() {
    let simulator = simulator(Duration::from_millis(250)).await;
    let database_url = test_database().await;
    // Leases of 30 s (the default): taking over only when they run out left subscribers
    // without news for 36-40 s.
    let a = Replica::with_lease(&simulator, &database_url, "AKIDHEARTA", "30s").await;
    let b = Replica::with_lease(&simulator, &database_url, "AKIDHEARTB", "30s").await;
    let names = HashMap::from([(a.name().await, "a"), (b.name().await, "b")]);
    let pool = PgPool::connect(&database_url).await.unwrap();
    let arn = seeded::TRANSFERRING.to_owned();
    let held = owners(&pool, std::slice::from_ref(&arn)).await;
    let (mut holder, survivor) = if names[&held[&arn]] == "a" { (a, b) } else { (b, a) };
    let mut subscriber = connect(survivor.gateway.address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": arn })).await;
    for _ in 0..2 {
        assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)), "pushes through NOTIFY");
    }

    holder.gateway.kill();
    let killed = tokio::time::Instant::now();
    // Drain what was already on its way, then wait for the survivor's own polls.
    while tokio::time::timeout(Duration::from_millis(300), subscriber.event()).await.is_ok() {}
    // Generous against the 6 s three heartbeats take, and below the 20 s at least that the lease
    // alone would take (renewed every 10 s, it runs out 20-30 s after the kill).
    let next = tokio::time::timeout(Duration::from_secs(15), subscriber.event()).await;
    assert!(matches!(next, Ok(Event::Next(..))), "no push within 15 s of the kill: {next:?}");
    let gap = killed.elapsed();
    eprintln!("pushes resumed {gap:?} after kill -9 of the lease holder");
    assert!(simulator.described_by(&arn, survivor.access_key) > 0, "the survivor polls it now");
    pool.close().await;
}

#[tokio::test]
async fn with_postgresql_down_polling_and_subscriptions_go_on_from_memory() {
    let simulator = simulator(crate::common::TEST_TICK).await;
    let mut config = history_config().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    config.live.poll_interval = Duration::from_millis(100);
    config.live.lease_duration = Duration::from_secs(1);
    let database_url = config.history.database_url.clone().unwrap();
    let (address, _) = spawn_gateway(config).await;
    let mut subscriber = connect(address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": seeded::TRANSFERRING })).await;
    let watcher = || async {
        let ready: Value =
            reqwest::get(format!("http://{address}/readyz")).await.unwrap().json().await.unwrap();
        ready["live"]["watcher"].clone()
    };
    let wait_for = |leases_ok: bool| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        while watcher().await["leasesOk"] != leases_ok || watcher().await["leased"] != u64::from(leases_ok) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "leasesOk never {leases_ok}: {}",
                watcher().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_for(true).await;

    // The gateway's database stops taking connections, and loses those it had.
    let (server, name) = database_url.rsplit_once('/').unwrap();
    let admin = PgPool::connect(&format!("{server}/postgres")).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(name)
        .execute(&admin)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while watcher().await["leasesOk"] != false {
        assert!(tokio::time::Instant::now() < deadline, "the outage went unnoticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while tokio::time::timeout(Duration::from_millis(10), subscriber.event()).await.is_ok() {}
    let mut written = Vec::new();
    while written.len() < 3 {
        match subscriber.event_within(WAIT).await {
            Event::Next(_, payload) => {
                written.push(payload["data"]["taskExecutionUpdated"]["bytesWritten"].as_i64().unwrap())
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(written.windows(2).all(|pair| pair[0] < pair[1]), "still polled and pushed: {written:?}");

    // Back: the lease is held again.
    sqlx::query(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).execute(&admin).await.unwrap();
    admin.close().await;
    wait_for(true).await;
}
