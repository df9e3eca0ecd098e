//! Every account of an organisation: roles assumed per account, each account's calls signed
//! with its own credentials, one account failing alone, accounts joining, and the sync's jobs
//! shared between replicas. Against the simulator's organisation (STS AssumeRole, Organizations
//! ListAccounts, credentials bound to their account: a call with the wrong account's client is
//! refused).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use datasync_gateway::config::Config;
use datasync_gateway::simulator::accounts::account_id;
use datasync_gateway::simulator::fleet::{self, seeded};
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

use crate::common::{
    create_key, error_codes, history_config, test_config, GatewayProcess, TestGateway, TEST_TICK,
};

const WAIT: Duration = Duration::from_secs(30);

/// Seeded executions in each account's copy of the fleet.
const PER_ACCOUNT: usize = seeded::ALL.len() - 1;

const ACCOUNTS: &str = "{ accounts { id name status regions roleArn credentialsError
    sync { region lastRunAt ok error replica listed described runs } } }";

/// A simulator whose organisation has `accounts` accounts.
async fn organisation(accounts: usize) -> Simulator {
    let config = SimulatorConfig { accounts, ..SimulatorConfig::with_tick(TEST_TICK) };
    Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

/// `config` serving the simulator's organisation, by assuming `Reader` in each account.
fn organisation_config(mut config: Config) -> Config {
    config.accounts.organization_role_name = Some("Reader".into());
    config
}

/// `arn` (a seeded ARN of the first account) in account `n`'s copy of the fleet.
fn in_account(arn: &str, n: usize) -> String {
    arn.replacen(&format!(":{}:", fleet::ACCOUNT), &format!(":{}:", account_id(n)), 1)
}

async fn accounts(gateway: &TestGateway) -> Vec<Value> {
    let response = gateway.query(ACCOUNTS, json!({})).await;
    assert!(response.get("errors").is_none(), "{response}");
    response["data"]["accounts"].as_array().unwrap().clone()
}

/// Waits until `done` holds of the `accounts` answer.
async fn accounts_until(gateway: &TestGateway, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let accounts = accounts(gateway).await;
        if done(&accounts) {
            return accounts;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reached: {accounts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn execution(gateway: &TestGateway, arn: &str) -> Value {
    let query = "query($arn: ID!) { taskExecution(arn: $arn, consistency: STRONG) { taskExecutionArn status accountId } }";
    gateway.query(query, json!({ "arn": arn })).await
}

#[tokio::test]
async fn every_account_and_region_is_indexed_and_each_read_is_signed_by_its_own_account() {
    let simulator = organisation(3).await;
    let mut config = organisation_config(history_config().await);
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(1);
    let gateway = TestGateway::start_in_front_of(simulator, config).await;

    // Every site (3 accounts × 2 regions) synced, each by its own credentials.
    let listed = accounts_until(&gateway, |accounts| {
        accounts.iter().all(|account| {
            let sync = account["sync"].as_array().unwrap();
            sync.len() == 2 && sync.iter().all(|site| site["ok"] == true)
        })
    })
    .await;
    let ids: Vec<&str> = listed.iter().map(|account| account["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [account_id(0), account_id(1), account_id(2)], "{listed:?}");
    for account in &listed {
        assert_eq!(account["status"], "SERVED");
        assert_eq!(account["regions"], json!(["us-east-1", "eu-west-1"]));
        assert_eq!(
            account["roleArn"],
            format!("arn:aws:iam::{}:role/Reader", account["id"].as_str().unwrap())
        );
        assert!(account.get("credentialsError").is_some_and(Value::is_null), "{account}");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = gateway.query("{ executions(first: 1) { totalCount } }", json!({})).await;
        if page["data"]["executions"]["totalCount"] == 3 * PER_ACCOUNT {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every account indexed: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A read of each account's running execution is made with that account's assumed
    // credentials: the simulator refuses any other (AccessDenied), and counts which account signed.
    // The sync may describe the running execution in the same moment: at least the read's call.
    for n in 0..3 {
        let arn = in_account(seeded::TRANSFERRING, n);
        let before = gateway.simulator.described_in(&arn, &account_id(n));
        let read = execution(&gateway, &arn).await;
        assert_eq!(read["data"]["taskExecution"]["status"], "TRANSFERRING", "{read}");
        assert_eq!(read["data"]["taskExecution"]["accountId"], account_id(n));
        let after = gateway.simulator.described_in(&arn, &account_id(n));
        assert!(after > before, "the read was a call signed by account {n}: {before} then {after}");
    }
    // One AssumeRole per account for both regions and every call so far (a session lasts an hour).
    for n in 0..3 {
        assert_eq!(gateway.simulator.assumed(&account_id(n)), 1, "account {n}");
    }
}

#[tokio::test]
async fn an_account_the_gateway_does_not_serve_is_refused_before_any_call() {
    let gateway =
        TestGateway::start_in_front_of(organisation(2).await, organisation_config(test_config())).await;
    let outsider = seeded::SUCCEEDED_BASIC.replacen(fleet::ACCOUNT, "999988887777", 1);
    let response = execution(&gateway, &outsider).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("999988887777 is not an account this gateway serves"), "{message}");
    assert_eq!(gateway.describe_calls(), 0);

    let task = outsider.split("/execution/").next().unwrap();
    let response =
        gateway.query("query($arn: ID!) { task(arn: $arn) { name } }", json!({ "arn": task })).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(gateway.simulator.calls("DescribeTask"), 0);
}

#[tokio::test]
async fn an_account_whose_role_is_refused_fails_alone() {
    let simulator = organisation(3).await;
    let broken = account_id(2);
    let url = format!("{}/_simulator/roles", simulator.endpoint_url());
    let denied = reqwest::Client::new().put(url).json(&json!({ "denied": [broken] })).send().await.unwrap();
    assert!(denied.status().is_success());
    let mut config = organisation_config(history_config().await);
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(1);
    let gateway = TestGateway::start_in_front_of(simulator, config).await;

    let response = execution(&gateway, &in_account(seeded::SUCCEEDED_BASIC, 2)).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_FORBIDDEN"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&broken), "names the account: {message}");
    assert!(!message.contains("Not authorized"), "STS's message stays in the log: {message}");
    assert!(response["errors"][0]["extensions"].get("retryable").is_none(), "{response}");

    // The other accounts read and sync as usual; the broken one's sync says why it failed.
    let fine = execution(&gateway, &in_account(seeded::SUCCEEDED_BASIC, 1)).await;
    assert_eq!(fine["data"]["taskExecution"]["status"], "SUCCESS", "{fine}");
    let listed = accounts_until(&gateway, |accounts| {
        accounts.iter().all(|account| account["sync"].as_array().unwrap().len() == 2)
    })
    .await;
    for account in &listed {
        let sync = account["sync"].as_array().unwrap();
        if account["id"] == broken.as_str() {
            assert_eq!(account["credentialsError"], "STS refused AssumeRole: AccessDenied", "{account}");
            assert!(sync.iter().all(|site| site["ok"] == false && site["error"].is_string()), "{account}");
        } else {
            assert!(account["credentialsError"].is_null(), "{account}");
            assert!(sync.iter().all(|site| site["ok"] == true), "{account}");
        }
    }

    // A refusal is remembered: reading the broken account again costs STS nothing more.
    let attempts = gateway.simulator.calls("AssumeRole");
    for _ in 0..5 {
        let response = execution(&gateway, &in_account(seeded::FAILED, 2)).await;
        assert_eq!(error_codes(&response), ["UPSTREAM_FORBIDDEN"], "{response}");
    }
    assert_eq!(gateway.simulator.calls("AssumeRole"), attempts);

    // The task listing leaves the broken account out and lists the others.
    let tasks = gateway.query("{ tasks { edges { node { accountId } } } }", json!({})).await;
    assert!(tasks.get("errors").is_none(), "{tasks}");
    let owners: BTreeSet<&str> = tasks["data"]["tasks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(owners, BTreeSet::from([&*account_id(0), &*account_id(1)]), "{tasks}");

    let ready: Value = gateway.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "one account down leaves the gateway ready: {ready}");
    assert_eq!(ready["accounts"]["unreachable"], json!([broken]), "{ready}");
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("datasync_accounts{status=\"unreachable\"} 1"), "{metrics}");
}

#[tokio::test]
async fn an_account_that_joins_the_organisation_is_served_after_the_next_listing() {
    let simulator = organisation(2).await;
    let mut config = organisation_config(test_config());
    config.accounts.accounts_refresh = Duration::from_millis(300);
    let gateway = TestGateway::start_in_front_of(simulator, config).await;
    let newcomer = "444455556666";
    let arn = seeded::SUCCEEDED_BASIC.replacen(fleet::ACCOUNT, newcomer, 1);
    let response = execution(&gateway, &arn).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "not yet a member: {response}");

    let url = format!("{}/_simulator/accounts", gateway.simulator.endpoint_url());
    let joined = reqwest::Client::new().post(url).json(&json!({ "id": newcomer, "name": "new-team" }));
    assert!(joined.send().await.unwrap().status().is_success());
    let listed =
        accounts_until(&gateway, |accounts| accounts.iter().any(|account| account["id"] == newcomer)).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let read = execution(&gateway, &arn).await;
    assert_eq!(read["data"]["taskExecution"]["status"], "SUCCESS", "{read}");
    assert_eq!(gateway.simulator.described_in(&arn, newcomer), 1);

    // An account that leaves is listed as LEFT, and its ARNs are refused, saying why.
    let leaver = account_id(1);
    let url = format!("{}/_simulator/accounts", gateway.simulator.endpoint_url());
    let left = reqwest::Client::new().delete(url).json(&json!({ "id": leaver }));
    assert!(left.send().await.unwrap().status().is_success());
    accounts_until(&gateway, |accounts| {
        accounts.iter().any(|account| account["id"] == leaver.as_str() && account["status"] == "LEFT")
    })
    .await;
    let response = execution(&gateway, &in_account(seeded::SUCCEEDED_BASIC, 1)).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert!(
        response["errors"][0]["message"].as_str().unwrap().contains("left the organisation"),
        "{response}"
    );
}

#[tokio::test]
async fn an_accounts_file_names_each_account_its_role_and_regions() {
    let simulator = organisation(3).await;
    let file = std::env::temp_dir().join(format!("accounts-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "[[account]]\nid = \"{}\"\nname = \"own\"\n\n\
             [[account]]\nid = \"{}\"\nname = \"team\"\nrole_arn = \"arn:aws:iam::{}:role/Reader\"\n\
             external_id = \"shared-secret\"\nregions = [\"eu-west-1\"]\n",
            account_id(0),
            account_id(2),
            account_id(2),
        ),
    )
    .unwrap();
    let mut config = test_config();
    config.accounts.accounts_file = Some(file.clone());
    let gateway = TestGateway::start_in_front_of(simulator, config).await;

    let listed = accounts(&gateway).await;
    let by_id: BTreeMap<&str, &Value> = listed.iter().map(|a| (a["id"].as_str().unwrap(), a)).collect();
    assert_eq!(
        by_id.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([&*account_id(0), &*account_id(2)])
    );
    assert!(by_id[&*account_id(0)]["roleArn"].is_null(), "its own credentials: {listed:?}");
    assert_eq!(by_id[&*account_id(2)]["regions"], json!(["eu-west-1"]));

    // The gateway's own account is read with its own keys, the other with the role's.
    let own = execution(&gateway, seeded::SUCCEEDED_ENHANCED).await;
    assert_eq!(own["data"]["taskExecution"]["status"], "SUCCESS", "{own}");
    let team = in_account(seeded::SUCCEEDED_ENHANCED, 2);
    let read = execution(&gateway, &team).await;
    assert_eq!(read["data"]["taskExecution"]["status"], "SUCCESS", "{read}");
    assert_eq!(gateway.simulator.described_in(&team, &account_id(2)), 1);
    assert_eq!(gateway.simulator.assumed(&account_id(0)), 0);

    // A region the file does not give the account is refused, naming the account.
    let response = execution(&gateway, &in_account(seeded::SUCCEEDED_BASIC, 2)).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("us-east-1") && message.contains(&account_id(2)), "{message}");
    // Account 1 is in the organisation but not in the file.
    let response = execution(&gateway, &in_account(seeded::SUCCEEDED_BASIC, 1)).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    let _ = std::fs::remove_file(file);
}

/// Which replica ran each site's last sync, once every site has run `runs` times.
async fn site_runners(pool: &sqlx::PgPool, sites: usize, runs: i64) -> BTreeMap<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT site, replica, runs FROM sync_runs").fetch_all(pool).await.unwrap();
        if rows.len() == sites && rows.iter().all(|(_, _, n)| *n >= runs) {
            return rows.into_iter().map(|(site, replica, _)| (site, replica)).collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "sites never all synced {runs} times: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Who holds each site's job lease.
async fn job_holders(pool: &sqlx::PgPool) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, owner FROM job_leases WHERE name LIKE 'discovery:%' AND expires_at > now()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn two_replicas_split_twelve_site_jobs_and_the_survivor_of_a_kill_takes_them_all() {
    let simulator = organisation(6).await;
    let database_url = crate::common::test_database().await;
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let url = simulator.endpoint_url();
    let args = [
        "--organization-role-name",
        "Reader",
        "--sts-endpoint",
        &url,
        "--organizations-endpoint",
        &url,
        "--discovery",
        "on",
        "--discovery-interval",
        "1s",
        "--lease-duration",
        "1s",
    ];
    let mut a = GatewayProcess::start("accounts-replica-a", &simulator, &database_url, &args, &[]).await;
    let _b = GatewayProcess::start("accounts-replica-b", &simulator, &database_url, &args, &[]).await;
    // A third replica does not run the sync: it has a heartbeat, and must be given no site.
    let quiet_args: Vec<&str> = args.iter().map(|arg| if *arg == "on" { "off" } else { arg }).collect();
    let quiet =
        GatewayProcess::start("accounts-replica-c", &simulator, &database_url, &quiet_args, &[]).await;
    let quiet_name: String = {
        let ready: Value =
            reqwest::get(format!("http://{}/readyz", quiet.address)).await.unwrap().json().await.unwrap();
        ready["live"]["watcher"]["replica"].as_str().unwrap().to_owned()
    };

    // Both replicas alive: each site's job is held by one of them, and both hold some.
    let deadline = tokio::time::Instant::now() + WAIT;
    let holders = loop {
        let holders = job_holders(&pool).await;
        let replicas: BTreeSet<&String> = holders.values().collect();
        if holders.len() == 12 && replicas.len() == 2 {
            assert!(!replicas.contains(&quiet_name), "a replica without the sync holds a site: {holders:?}");
            break holders;
        }
        assert!(tokio::time::Instant::now() < deadline, "the jobs were never split: {holders:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each site is synced by the replica holding its job, and only by it.
    let runners = site_runners(&pool, 12, 3).await;
    for (site, replica) in &runners {
        assert_eq!(
            Some(replica),
            holders.get(&format!("discovery:{site}")),
            "{site}: {runners:?} {holders:?}"
        );
    }
    let calls = simulator.calls("ListTaskExecutions");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_interval = (simulator.calls("ListTaskExecutions") - calls) as f64 / 3.0;
    assert!(per_interval <= 12.0 * 1.5, "about one listing per site per interval, not two: {per_interval}");

    // kill -9 one: once its heartbeat runs out, the other holds and syncs every site.
    let killed: String = {
        let ready: Value =
            reqwest::get(format!("http://{}/readyz", a.address)).await.unwrap().json().await.unwrap();
        ready["live"]["watcher"]["replica"].as_str().unwrap().to_owned()
    };
    a.kill();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let holders = job_holders(&pool).await;
        if holders.len() == 12 && holders.values().all(|owner| *owner != killed) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the survivor never took the jobs: {holders:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before: BTreeMap<String, i64> = sqlx::query_as("SELECT site, runs FROM sync_runs")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT site, runs, replica FROM sync_runs").fetch_all(&pool).await.unwrap();
        if now.iter().all(|(site, runs, replica)| *runs > before[site] && *replica != killed) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every site synced by the survivor: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first event of a server-sent event stream, as JSON.
async fn first_event(mut events: reqwest::Response) -> Value {
    let mut text = String::new();
    let read = async {
        loop {
            let chunk = events.chunk().await.unwrap().expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text.lines().find_map(|line| line.strip_prefix("data: ")) {
                return serde_json::from_str::<Value>(data).unwrap();
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("an event")
}

/// POSTs a query with `key`.
async fn as_key(gateway: &TestGateway, key: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let response =
        gateway.http.post(gateway.url("/graphql")).bearer_auth(key).json(&body).send().await.unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_key_scoped_to_one_account_sees_nothing_of_another() {
    let simulator = organisation(2).await;
    let keys = std::env::temp_dir().join(format!("scoped-keys-{}.json", std::process::id()));
    let (mine, theirs) = (account_id(1), account_id(0));
    let everything = create_key(&keys, "operator", "everything", &[]);
    let scoped = create_key(&keys, "operator", "scoped", std::slice::from_ref(&mine));
    let mut config = organisation_config(history_config().await);
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(1);
    config.auth.mode = Some(datasync_gateway::config::AuthMode::Required);
    config.auth.api_keys_file = Some(keys.clone());
    let gateway = TestGateway::start_in_front_of(simulator, config).await;

    let count = "query($f: ExecutionFilter) { executions(filter: $f, first: 100) { totalCount edges { node { accountId } } } }";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = as_key(&gateway, &everything, count, json!({})).await;
        if page["data"]["executions"]["totalCount"] == 2 * PER_ACCOUNT {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every account indexed: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pages and counts: only its account, in SQL; asking for the other finds nothing. The same
    // request just answered to the unscoped key is not replayed to the scoped one.
    let page = as_key(&gateway, &scoped, count, json!({})).await;
    assert_eq!(page["data"]["executions"]["totalCount"], PER_ACCOUNT, "{page}");
    let edges = page["data"]["executions"]["edges"].as_array().unwrap();
    assert!(edges.iter().all(|edge| edge["node"]["accountId"] == mine.as_str()), "{page}");
    let other = as_key(&gateway, &scoped, count, json!({ "f": { "accountIds": [theirs] } })).await;
    assert_eq!(other["data"]["executions"]["totalCount"], 0, "{other}");
    let history = as_key(&gateway, &scoped, "{ executionHistory(first: 1) { totalCount } }", json!({})).await;
    let all_history =
        as_key(&gateway, &everything, "{ executionHistory(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(
        history["data"]["executionHistory"]["totalCount"].as_u64().unwrap() * 2,
        all_history["data"]["executionHistory"]["totalCount"].as_u64().unwrap(),
        "{history} {all_history}"
    );

    // Statistics by account: one group, its own.
    let stats = "{ executionStats(groupBy: [ACCOUNT]) { accountId count } }";
    let all = as_key(&gateway, &everything, stats, json!({})).await;
    assert_eq!(all["data"]["executionStats"].as_array().unwrap().len(), 2, "{all}");
    let own = as_key(&gateway, &scoped, stats, json!({})).await;
    assert_eq!(
        own["data"]["executionStats"],
        json!([{ "accountId": mine, "count": own["data"]["executionStats"][0]["count"] }])
    );

    // One execution, a node, a task, a start: NOT_FOUND, worded as for one that does not exist,
    // with no DataSync call.
    let hidden = in_account(seeded::TRANSFERRING, 0);
    let unknown = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f6dead";
    let (missing, hidden_unknown) = (in_account(unknown, 1), in_account(unknown, 0));
    let one = "query($arn: ID!) { taskExecution(arn: $arn) { status } }";
    let hidden_answer = as_key(&gateway, &scoped, one, json!({ "arn": hidden })).await;
    let missing_answer = as_key(&gateway, &scoped, one, json!({ "arn": missing })).await;
    assert_eq!(error_codes(&hidden_answer), ["NOT_FOUND"], "{hidden_answer}");
    assert_eq!(error_codes(&missing_answer), ["NOT_FOUND"], "{missing_answer}");
    let message =
        |answer: &Value, arn: &str| answer["errors"][0]["message"].as_str().unwrap().replace(arn, "ARN");
    assert_eq!(message(&hidden_answer, &hidden), message(&missing_answer, &missing));
    let unknown_answer = as_key(&gateway, &scoped, one, json!({ "arn": hidden_unknown })).await;
    assert_eq!(error_codes(&unknown_answer), ["NOT_FOUND"], "{unknown_answer}");
    assert_eq!(gateway.simulator.described(&hidden_unknown), 0, "refused before any call");
    assert_eq!(gateway.simulator.described(&missing), 1, "its own account's is asked for");
    let node =
        as_key(&gateway, &scoped, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": hidden })).await;
    assert_eq!(error_codes(&node), ["NOT_FOUND"], "{node}");
    let task = hidden.split("/execution/").next().unwrap();
    let described =
        as_key(&gateway, &scoped, "query($arn: ID!) { task(arn: $arn) { name } }", json!({ "arn": task }))
            .await;
    assert_eq!(error_codes(&described), ["NOT_FOUND"], "{described}");
    let start = "mutation($task: ID!) { startTaskExecution(taskArn: $task) { taskExecutionArn } }";
    let started = as_key(&gateway, &scoped, start, json!({ "task": task })).await;
    assert_eq!(error_codes(&started), ["NOT_FOUND"], "{started}");
    assert_eq!(gateway.simulator.calls("StartTaskExecution"), 0);

    // Tasks and accounts: its own only.
    let tasks = as_key(&gateway, &scoped, "{ tasks { edges { node { accountId } } } }", json!({})).await;
    let tasks = tasks["data"]["tasks"]["edges"].as_array().unwrap().clone();
    assert!(
        !tasks.is_empty() && tasks.iter().all(|edge| edge["node"]["accountId"] == mine.as_str()),
        "{tasks:?}"
    );
    let listed = as_key(&gateway, &scoped, "{ accounts { id } }", json!({})).await;
    assert_eq!(listed["data"]["accounts"], json!([{ "id": mine }]));
    let filtered = as_key(
        &gateway,
        &everything,
        "query($a: [String!]) { tasks(filter: { accountIds: $a }) { edges { node { accountId } } } }",
        json!({ "a": [theirs] }),
    )
    .await;
    let filtered = filtered["data"]["tasks"]["edges"].as_array().unwrap().clone();
    assert!(
        !filtered.is_empty() && filtered.iter().all(|edge| edge["node"]["accountId"] == theirs.as_str()),
        "{filtered:?}"
    );
    // A shared cache must keep one answer per credential.
    let response = gateway
        .http
        .get(gateway.url("/graphql?query=%7B%20accounts%20%7B%20id%20%7D%20%7D"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["vary"], "Authorization, X-API-Key");

    // Events: an execution started in each account, the other's first; the scoped stream's
    // first event is its own account's (an event of the other would have come before it). An
    // unscoped caller subscribed first with the very same operation: a shared subscription runs
    // as its first subscriber, and the scoped one must not join it.
    let subscribe = |key: String| {
        gateway
            .http
            .post(gateway.url("/graphql"))
            .bearer_auth(key)
            .header("accept", "text/event-stream")
            .json(&json!({ "query": "subscription { executionEvents { kind execution { taskExecutionArn accountId } } }" }))
            .send()
    };
    let unscoped_events = subscribe(everything.clone()).await.unwrap();
    let events = subscribe(scoped.clone()).await.unwrap();
    assert_eq!(events.status(), 200);
    let theirs_started =
        as_key(&gateway, &everything, start, json!({ "task": in_account(seeded::QUICK_TASK, 0) })).await;
    assert!(theirs_started.get("errors").is_none(), "{theirs_started}");
    let mine_started =
        as_key(&gateway, &everything, start, json!({ "task": in_account(seeded::QUICK_TASK, 1) })).await;
    let mine_arn =
        mine_started["data"]["startTaskExecution"]["taskExecutionArn"].as_str().unwrap().to_owned();
    let first = first_event(events).await;
    let execution = &first["data"]["executionEvents"]["execution"];
    assert_eq!(execution["taskExecutionArn"], mine_arn.as_str(), "{first}");
    assert_eq!(execution["accountId"], mine.as_str());
    let unscoped_first = first_event(unscoped_events).await;
    assert_eq!(
        unscoped_first["data"]["executionEvents"]["execution"]["accountId"],
        theirs.as_str(),
        "{unscoped_first}"
    );

    // Following the other account's execution: NOT_FOUND.
    let follow = gateway
        .http
        .post(gateway.url("/graphql"))
        .bearer_auth(&scoped)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "subscription($arn: ID!) { taskExecutionUpdated(arn: $arn) { status } }", "variables": { "arn": hidden } }))
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(WAIT, follow.text()).await.unwrap().unwrap();
    assert!(text.contains("NOT_FOUND"), "{text}");
    let _ = std::fs::remove_file(keys);
}
