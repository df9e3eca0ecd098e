//! Webhooks end to end: executions started in the simulator reach a real receiver
//! (`tests/clients/webhook-receiver.mjs`), which checks every signature with the published
//! Standard Webhooks library; retries, 410, a slow endpoint, rotation, URL policy, and
//! delivery across gateway processes that restart, run side by side or die mid-delivery.

use std::collections::HashMap;
use std::time::Duration;

use datasync_gateway::config::Config;
use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::common::{error_codes, graphql, history_config, node_clients, GatewayProcess, TestGateway};

/// The longest a test waits for deliveries it expects.
const WAIT: Duration = Duration::from_secs(60);
/// Retries quick enough for a test: eight attempts, as the default schedule has.
const SCHEDULE: &str = "0s,300ms,600ms,900ms,1s,1s,1s,1s";

const CREATE: &str = "mutation($input: CreateWebhookInput!) {
    createWebhook(input: $input) { secret webhook { id url enabled events } } }";
const START: &str = "mutation($task: ID!) { startTaskExecution(taskArn: $task) { taskExecutionArn } }";
const LOG: &str = "query($id: ID!) { webhook(id: $id) { enabled disabledReason failingSince
    deliveries(first: 100) { edges { node { id status nextAttemptAt
        event { id type executionArn body } attempts { at status durationMs error } } } } } }";

/// The test receiver, in a process of its own.
struct Receiver {
    _process: tokio::process::Child,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts the receiver on `port` (0: any free one); `None` (a loud skip) without the npm clients.
    async fn start(port: u16) -> Option<Receiver> {
        let dir = node_clients()?;
        let mut process = tokio::process::Command::new("node")
            .arg("webhook-receiver.mjs")
            .env("PORT", port.to_string())
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = process.stdout.take().unwrap();
        let mut line = String::new();
        tokio::io::BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let port = serde_json::from_str::<Value>(&line).expect("the receiver says its port")["port"].as_u64();
        Some(Receiver { _process: process, port: port.unwrap() as u16, http: reqwest::Client::new() })
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{name}", self.port)
    }

    /// What endpoint `name` verifies with and answers.
    async fn configure(&self, name: &str, secrets: &[&str], responses: Value) {
        let url = format!("http://127.0.0.1:{}/_config/{name}", self.port);
        let response = self
            .http
            .put(url)
            .json(&json!({ "secrets": secrets, "responses": responses }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{:?}", response.text().await);
    }

    /// Every delivery endpoint `name` got, in arrival order.
    async fn received(&self, name: &str) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/_received/{name}", self.port);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Waits until `done` holds of what endpoint `name` got; that.
    async fn wait_for(&self, name: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let received = self.received(name).await;
            if done(&received) {
                return received;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} never got {what}: {received:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether `received` holds the FINISHED event of each of `arns`.
fn finished_all(received: &[Value], arns: &[String]) -> bool {
    arns.iter().all(|arn| {
        received.iter().any(|entry| {
            entry["body"]["type"] == "execution.finished"
                && entry["body"]["data"]["execution"]["taskExecutionArn"] == *arn
        })
    })
}

/// A gateway that sends webhooks to loopback over http, retrying on [`SCHEDULE`], following
/// executions closely.
async fn webhook_config() -> Config {
    let mut config = history_config().await;
    config.webhooks.webhooks = true;
    config.webhooks.webhooks_allow_http = true;
    config.webhooks.webhooks_allow_private = true;
    config.webhooks.webhook_retry_schedule =
        SCHEDULE.split(',').map(|wait| humantime::parse_duration(wait).unwrap()).collect();
    config.webhooks.webhook_poll_interval = Duration::from_millis(50);
    config.live.poll_interval = Duration::from_millis(100);
    config
}

/// The arguments that make a gateway process as [`webhook_config`] does.
const PROCESS_ARGS: [&str; 12] = [
    "--webhooks-allow-http",
    "--webhooks-allow-private",
    "--webhook-retry-schedule",
    SCHEDULE,
    "--webhook-poll-interval",
    "50ms",
    "--poll-interval",
    "100ms",
    "--lease-duration",
    "1s",
    "--discovery",
    "off",
];

/// Creates an endpoint for `url` over `url` (a GraphQL endpoint); (id, secret).
async fn create(graphql_url: &str, url: &str, events: Option<&[&str]>) -> (String, String) {
    let mut input = json!({ "url": url, "filter": { "taskArns": [seeded::QUICK_TASK] } });
    if let Some(events) = events {
        input["events"] = json!(events);
    }
    let created = graphql(graphql_url, CREATE, json!({ "input": input })).await;
    let webhook = &created["data"]["createWebhook"];
    let (id, secret) = (webhook["webhook"]["id"].as_str(), webhook["secret"].as_str());
    let (Some(id), Some(secret)) = (id, secret) else { panic!("{created}") };
    assert!(secret.starts_with("whsec_"), "{secret}");
    (id.to_owned(), secret.to_owned())
}

/// Creates endpoint `name` of `receiver` (for `events`, all by default) through `graphql_url`,
/// and has the receiver verify it with its secret and answer with `responses`; (id, secret).
async fn endpoint(
    graphql_url: &str,
    receiver: &Receiver,
    name: &str,
    events: Option<&[&str]>,
    responses: Value,
) -> (String, String) {
    let (id, secret) = create(graphql_url, &receiver.url(name), events).await;
    receiver.configure(name, &[&secret], responses).await;
    (id, secret)
}

/// A receiver and a gateway sending webhooks with `config`, and its GraphQL URL; `None` (a loud
/// skip) without the npm clients.
async fn receiver_and_gateway(config: Config) -> Option<(Receiver, TestGateway, String)> {
    let receiver = Receiver::start(0).await?;
    let gateway = TestGateway::start_with(config).await;
    let url = gateway.url("/graphql");
    Some((receiver, gateway, url))
}

/// Starts an execution of the quick task through `graphql_url`; its ARN.
async fn start(graphql_url: &str) -> String {
    let started = graphql(graphql_url, START, json!({ "task": seeded::QUICK_TASK })).await;
    started["data"]["startTaskExecution"]["taskExecutionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned()
}

/// The delivery log of endpoint `id`, oldest first.
async fn log(graphql_url: &str, id: &str) -> (Value, Vec<Value>) {
    let answer = graphql(graphql_url, LOG, json!({ "id": id })).await;
    let webhook = answer["data"]["webhook"].clone();
    let edges = webhook["deliveries"]["edges"].as_array().unwrap_or_else(|| panic!("{answer}"));
    let mut deliveries: Vec<Value> = edges.iter().map(|edge| edge["node"].clone()).collect();
    deliveries.reverse();
    (webhook, deliveries)
}

/// Waits until `done` holds of endpoint `id`'s log (read through `graphql_url`); that log.
async fn log_when(
    graphql_url: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value, &[Value]) -> bool,
) -> (Value, Vec<Value>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (webhook, deliveries) = log(graphql_url, id).await;
        if done(&webhook, &deliveries) {
            return (webhook, deliveries);
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never happened: {webhook:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deliveries per event id.
fn per_event(received: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in received {
        *counts.entry(entry["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn an_execution_reaches_the_receiver_started_to_finished_in_order_and_signed() {
    let Some((receiver, _gateway, url)) = receiver_and_gateway(webhook_config().await).await else { return };
    let (id, _) = endpoint(&url, &receiver, "a", None, json!([])).await;

    let arn = start(&url).await;
    let received = receiver
        .wait_for("a", "FINISHED", |received| finished_all(received, std::slice::from_ref(&arn)))
        .await;

    let mine: Vec<&Value> = received
        .iter()
        .filter(|entry| entry["body"]["data"]["execution"]["taskExecutionArn"] == arn.as_str())
        .collect();
    let types: Vec<&str> = mine.iter().map(|entry| entry["body"]["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"execution.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"execution.finished"), "{types:?}");
    assert!(types[1..types.len() - 1].iter().all(|kind| *kind == "execution.status_changed"), "{types:?}");
    for entry in &mine {
        assert_eq!(entry["verifiedWith"], json!([0]), "not signed with the endpoint's secret: {entry:#}");
        assert_eq!(entry["id"], entry["body"]["id"], "webhook-id is the event's id");
        assert!(entry["timestamp"].as_str().unwrap().bytes().all(|byte| byte.is_ascii_digit()), "{entry}");
        let body = entry["body"].as_object().unwrap();
        for key in ["type", "id", "timestamp", "data"] {
            assert!(body.contains_key(key), "the envelope has no {key}: {entry}");
        }
    }
    let finished = mine.last().unwrap();
    assert_eq!(finished["body"]["data"]["execution"]["status"], "SUCCESS");
    assert_eq!(finished["body"]["data"]["kind"], "FINISHED");
    assert!(per_event(&received).values().all(|count| *count == 1), "sent twice: {received:#?}");

    let (webhook, deliveries) = log(&url, &id).await;
    assert_eq!(webhook["enabled"], true);
    assert_eq!(webhook.get("failingSince"), Some(&Value::Null), "{webhook}");
    assert_eq!(deliveries.len(), received.len(), "{deliveries:#?}");
    for (delivery, entry) in deliveries.iter().zip(&received) {
        assert_eq!(delivery["status"], "DELIVERED");
        assert_eq!(delivery["event"]["id"], entry["id"]);
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(delivery["attempts"][0]["status"], 200);
        assert_eq!(
            serde_json::from_str::<Value>(delivery["event"]["body"].as_str().unwrap()).unwrap(),
            entry["body"]
        );
    }
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_on_the_schedule_until_it_answers() {
    let Some((receiver, gateway, url)) = receiver_and_gateway(webhook_config().await).await else { return };
    let failing = json!([{ "status": 500 }, { "status": 500 }, { "status": 503 }]);
    let (id, _) = endpoint(&url, &receiver, "flaky", Some(&["FINISHED"]), failing).await;

    let arn = start(&url).await;
    let received = receiver.wait_for("flaky", "a 2xx answer", |received| received.len() >= 4).await;

    assert!(
        received.iter().all(|entry| entry["id"] == received[0]["id"]),
        "one event, sent again: {received:#?}"
    );
    assert_eq!(received[0]["body"]["data"]["execution"]["taskExecutionArn"], arn.as_str());
    let statuses: Vec<&Value> = received.iter().map(|entry| &entry["status"]).collect();
    assert_eq!(statuses, [500, 500, 503, 200]);
    // The waits of the schedule after attempts 1, 2 and 3, less the 10 % jitter.
    let at: Vec<i64> = received.iter().map(|entry| entry["receivedAtMs"].as_i64().unwrap()).collect();
    for (gap, wait) in at.windows(2).map(|pair| pair[1] - pair[0]).zip([300, 600, 900]) {
        assert!(gap >= wait * 9 / 10, "{gap} ms between attempts; the schedule says {wait} ms: {at:?}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received("flaky").await.len(), 4, "delivered, so not sent again");

    let (webhook, deliveries) = log(&url, &id).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    let attempts: Vec<&Value> =
        deliveries[0]["attempts"].as_array().unwrap().iter().map(|a| &a["status"]).collect();
    assert_eq!(attempts, [500, 500, 503, 200]);
    assert_eq!(deliveries[0]["status"], "DELIVERED");
    assert_eq!(
        deliveries[0].get("nextAttemptAt"),
        Some(&Value::Null),
        "not to be tried again: {deliveries:#?}"
    );
    assert_eq!(
        webhook.get("failingSince"),
        Some(&Value::Null),
        "a success ends the failing streak: {webhook}"
    );
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    for line in [
        "datasync_gateway_webhook_deliveries_total{outcome=\"retry\"} 3",
        "datasync_gateway_webhook_deliveries_total{outcome=\"delivered\"} 1",
        "datasync_gateway_webhook_delivery_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|metric| metric == line), "no {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn gone_disables_the_endpoint_with_the_reason() {
    let Some((receiver, _gateway, url)) = receiver_and_gateway(webhook_config().await).await else { return };
    let (id, _) = endpoint(&url, &receiver, "gone", Some(&["FINISHED"]), json!([{ "status": 410 }])).await;

    start(&url).await;
    receiver.wait_for("gone", "a delivery", |received| !received.is_empty()).await;
    let (webhook, deliveries) =
        log_when(&url, &id, "disabling", |webhook, _| webhook["enabled"] == false).await;
    assert!(webhook["disabledReason"].as_str().unwrap().contains("410 Gone"), "{webhook}");
    assert_eq!(deliveries[0]["status"], "FAILED");

    // Nothing more is sent to it.
    start(&url).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received("gone").await.len(), 1);
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_a_fast_one() {
    let mut config = webhook_config().await;
    config.webhooks.webhook_timeout = Duration::from_secs(30);
    let Some((receiver, _gateway, url)) = receiver_and_gateway(config).await else { return };
    endpoint(&url, &receiver, "slow", None, json!([{ "status": 200, "delayMs": 20_000 }])).await;
    endpoint(&url, &receiver, "fast", None, json!([])).await;

    let arn = start(&url).await;
    let fast = receiver
        .wait_for("fast", "FINISHED", |received| finished_all(received, std::slice::from_ref(&arn)))
        .await;
    assert!(fast.len() >= 2);
    let slow = receiver.received("slow").await;
    assert_eq!(slow.len(), 1, "the slow endpoint is still on its first event: {slow:#?}");
    assert!(!slow[0].as_object().unwrap().contains_key("answeredAtMs"), "{slow:#?}");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one() {
    let Some((receiver, _gateway, url)) = receiver_and_gateway(webhook_config().await).await else { return };
    let (id, old) = create(&url, &receiver.url("rotating"), Some(&["FINISHED"])).await;
    let rotate =
        "mutation($id: ID!, $overlap: Int) { rotateWebhookSecret(id: $id, overlapSeconds: $overlap) {
        secret webhook { previousSecretExpiresAt } } }";

    let rotated = graphql(&url, rotate, json!({ "id": id, "overlap": 3600 })).await;
    let new =
        rotated["data"]["rotateWebhookSecret"]["secret"].as_str().unwrap_or_else(|| panic!("{rotated}"));
    assert_ne!(new, old);
    assert!(
        rotated["data"]["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].is_string(),
        "{rotated}"
    );
    receiver.configure("rotating", &[&old, new], json!([])).await;
    let first = start(&url).await;
    let received = receiver
        .wait_for("rotating", "FINISHED", |received| finished_all(received, std::slice::from_ref(&first)))
        .await;
    assert_eq!(received[0]["verifiedWith"], json!([0, 1]), "both secrets verify during the overlap");

    let rotated = graphql(&url, rotate, json!({ "id": id, "overlap": 0 })).await;
    let newest =
        rotated["data"]["rotateWebhookSecret"]["secret"].as_str().unwrap_or_else(|| panic!("{rotated}"));
    receiver.configure("rotating", &[&old, new, newest], json!([])).await;
    let second = start(&url).await;
    let received = receiver
        .wait_for("rotating", "FINISHED", |received| finished_all(received, std::slice::from_ref(&second)))
        .await;
    assert_eq!(
        received.last().unwrap()["verifiedWith"],
        json!([2]),
        "without an overlap, only the new secret"
    );
}

#[tokio::test]
async fn urls_on_this_machine_or_private_networks_or_plain_http_are_refused_without_the_flags() {
    let gateway = TestGateway::start_with(history_config().await).await;
    let url = gateway.url("/graphql");
    for (target, says) in [
        ("https://127.0.0.1:9000/hook", "--webhooks-allow-private"),
        ("https://169.254.169.254/latest/meta-data/", "--webhooks-allow-private"),
        ("https://[::1]/hook", "--webhooks-allow-private"),
        ("https://localhost/hook", "--webhooks-allow-private"),
        ("https://10.0.0.8/hook", "--webhooks-allow-private"),
        ("http://hooks.example.com/hook", "--webhooks-allow-http"),
        ("file:///etc/passwd", "must be https"),
        ("https://hooks.invalid/hook", "does not resolve"),
    ] {
        let answer = graphql(&url, CREATE, json!({ "input": { "url": target } })).await;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{target}: {answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{target}: {message}");
        assert_eq!(answer.get("data"), Some(&Value::Null), "{answer}");
    }
    let timed = json!({ "input": { "url": "https://203.0.113.9/", "filter": { "startedAfter": "2026-01-01T00:00:00Z" } } });
    assert_eq!(error_codes(&graphql(&url, CREATE, timed).await), ["BAD_USER_INPUT"]);
    let none = graphql(&url, "{ webhooks { id } }", json!({})).await;
    assert_eq!(none["data"]["webhooks"], json!([]), "nothing was created: {none}");
}

#[tokio::test]
async fn webhooks_need_a_database_and_unknown_ids_are_not_found() {
    let gateway = TestGateway::start().await;
    let answer = gateway.query("{ webhooks { id } }", json!({})).await;
    assert_eq!(error_codes(&answer), ["HISTORY_UNAVAILABLE"], "{answer}");

    let gateway = TestGateway::start_with(history_config().await).await;
    let missing = gateway.query("{ webhook(id: \"wh_nope\") { id } }", json!({})).await;
    assert!(
        missing["data"].as_object().unwrap().contains_key("webhook") && missing["data"]["webhook"].is_null()
    );
    for mutation in [
        "mutation { deleteWebhook(id: \"wh_nope\") }",
        "mutation { updateWebhook(id: \"wh_nope\", input: { enabled: false }) { id } }",
        "mutation { rotateWebhookSecret(id: \"wh_nope\") { secret } }",
        "mutation { redeliverWebhookEvent(id: \"12\") { id } }",
        "mutation { redeliverWebhookEvent(id: \"twelve\") { id } }",
    ] {
        assert_eq!(error_codes(&gateway.query(mutation, json!({})).await), ["NOT_FOUND"], "{mutation}");
    }
}

#[tokio::test]
async fn two_gateway_processes_send_each_event_once() {
    let Some(receiver) = Receiver::start(0).await else { return };
    let simulator = crate::common::start_simulator().await;
    let database_url = crate::common::test_database().await;
    let first = GatewayProcess::start("webhooks-a", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let second = GatewayProcess::start("webhooks-b", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let urls = [format!("http://{}/graphql", first.address), format!("http://{}/graphql", second.address)];
    endpoint(&urls[0], &receiver, "shared", None, json!([])).await;

    let mut arns = Vec::new();
    for i in 0..6 {
        arns.push(start(&urls[i % 2]).await);
    }
    receiver.wait_for("shared", "every FINISHED", |received| finished_all(received, &arns)).await;
    // Time for a second sender, if there were one, to send too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = receiver.received("shared").await;
    let twice: Vec<_> = per_event(&all).into_iter().filter(|(_, count)| *count > 1).collect();
    assert!(twice.is_empty(), "sent more than once with no failure: {twice:?}");
    assert!(all.iter().all(|entry| entry["verifiedWith"] == json!([0])));
}

#[tokio::test]
async fn a_gateway_killed_mid_delivery_has_it_resent_once_by_the_next() {
    let Some(receiver) = Receiver::start(0).await else { return };
    let simulator = crate::common::start_simulator().await;
    let database_url = crate::common::test_database().await;
    let mut first =
        GatewayProcess::start("webhooks-killed", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let url = format!("http://{}/graphql", first.address);
    let held = json!([{ "status": 200, "delayMs": 5000 }]);
    let (id, _) = endpoint(&url, &receiver, "held", Some(&["FINISHED"]), held).await;

    start(&url).await;
    receiver.wait_for("held", "the delivery", |received| !received.is_empty()).await;
    first.kill();
    let second = GatewayProcess::start("webhooks-next", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let received = receiver.wait_for("held", "the delivery again", |received| received.len() >= 2).await;
    assert_eq!(received[0]["id"], received[1]["id"], "{received:#?}");
    let url = format!("http://{}/graphql", second.address);
    let delivered =
        |_: &Value, deliveries: &[Value]| deliveries.first().is_some_and(|d| d["status"] == "DELIVERED");
    log_when(&url, &id, "a recorded delivery", delivered).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received("held").await.len(), 2, "resent once, not again");
}

#[tokio::test]
async fn events_while_the_receiver_is_down_and_the_gateway_restarts_arrive_once_it_is_back() {
    if node_clients().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let simulator = crate::common::start_simulator().await;
    let database_url = crate::common::test_database().await;
    let mut first =
        GatewayProcess::start("webhooks-restart-a", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let url = format!("http://{}/graphql", first.address);
    let (id, secret) = create(&url, &format!("http://127.0.0.1:{port}/hooks/down"), None).await;
    let mut arns = Vec::new();
    for _ in 0..3 {
        arns.push(start(&url).await);
    }
    // Attempts fail (connection refused) while the executions run.
    log_when(&url, &id, "a failed attempt", |webhook, _| webhook["failingSince"].is_string()).await;
    assert!(first.terminate().await.success());
    let second =
        GatewayProcess::start("webhooks-restart-b", &simulator, &database_url, &PROCESS_ARGS, &[]).await;
    let receiver = Receiver::start(port).await.unwrap();
    receiver.configure("down", &[&secret], json!([])).await;

    let received =
        receiver.wait_for("down", "every FINISHED", |received| finished_all(received, &arns)).await;
    let counts = per_event(&received);
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    for arn in &arns {
        let kinds: Vec<&str> = received
            .iter()
            .filter(|entry| entry["body"]["data"]["execution"]["taskExecutionArn"] == arn.as_str())
            .map(|entry| entry["body"]["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"execution.started"), "{arn}: {kinds:?}");
        assert_eq!(kinds.last(), Some(&"execution.finished"), "{arn}: {kinds:?}");
    }
    let url = format!("http://{}/graphql", second.address);
    let (_, deliveries) = log(&url, &id).await;
    assert!(deliveries.iter().any(|delivery| delivery["attempts"].as_array().unwrap().len() > 1));
}

#[tokio::test]
async fn readers_cannot_see_or_change_webhooks() {
    let (mut config, key) = crate::common::config_with_a_reader_key("webhooks");
    config.history.database_url = Some(crate::common::test_database().await);
    let gateway = TestGateway::start_with(config).await;
    let post = |query: &str| {
        let request =
            gateway.http.post(gateway.url("/graphql")).bearer_auth(&key).json(&json!({ "query": query }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(error_codes(&post("{ webhooks { id url } }").await), ["FORBIDDEN"]);
    let create = "mutation { createWebhook(input: { url: \"https://203.0.113.9/\" }) { secret } }";
    assert_eq!(error_codes(&post(create).await), ["FORBIDDEN"]);
}

#[tokio::test]
async fn a_stored_task_report_is_announced_report_ready() {
    let mut config = webhook_config().await;
    config.reports.report_ingestion = true;
    config.reports.report_interval = Duration::from_millis(100);
    config.reports.report_calls_per_second = 10_000.0;
    let Some((receiver, _gateway, url)) = receiver_and_gateway(config).await else { return };
    // No filter: the seeded failed execution is not the quick task's.
    let input = json!({ "url": receiver.url("reports"), "events": ["REPORT_READY"] });
    let created = graphql(&url, CREATE, json!({ "input": input })).await;
    let secret = created["data"]["createWebhook"]["secret"].as_str().unwrap_or_else(|| panic!("{created}"));
    receiver.configure("reports", &[secret], json!([])).await;

    // A read records the finished execution in the index, which queues its report.
    let read = graphql(
        &url,
        "query($arn: ID!) { taskExecution(arn: $arn) { status } }",
        json!({ "arn": seeded::FAILED }),
    )
    .await;
    assert_eq!(read["data"]["taskExecution"]["status"], "ERROR", "{read}");
    let received = receiver.wait_for("reports", "report.ready", |received| !received.is_empty()).await;
    let event = &received[0];
    assert_eq!(event["verifiedWith"], json!([0]));
    assert_eq!(event["body"]["type"], "report.ready");
    assert_eq!(event["body"]["data"]["kind"], "REPORT_READY");
    assert_eq!(event["body"]["data"]["execution"]["taskExecutionArn"], seeded::FAILED);
    assert_eq!(event["body"]["data"]["ingestion"]["state"], "COMPLETE", "{event:#}");
    assert!(event["body"]["data"]["ingestion"]["recordsKept"].as_i64() > Some(0), "{event:#}");
    let stored =
        "query($arn: ID!) { taskExecution(arn: $arn) { report { ingestion { state recordsKept } } } }";
    let stored = graphql(&url, stored, json!({ "arn": seeded::FAILED })).await;
    let ingestion = &stored["data"]["taskExecution"]["report"]["ingestion"];
    assert_eq!(ingestion["recordsKept"], event["body"]["data"]["ingestion"]["recordsKept"], "{stored}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received("reports").await.len(), 1, "only the kinds asked for");
}
