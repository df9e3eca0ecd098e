//! Following executions live: the watcher's polls pushed to real WebSocket subscribers (both
//! protocols) and to server-sent events, one poll per execution whatever the audience,
//! EventBridge hints, and what a subscriber's bad input gets.

use std::time::Duration;

use datasync_gateway::config::Config;
use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

use crate::common::{graphql, node, node_clients, sdk_client, spawn_gateway, test_config, TEST_TICK};
use crate::ws_client::{connect, Event, Subscriber, LEGACY_WS, TRANSPORT_WS};

pub const FOLLOW: &str = "subscription($arn: ID!) {
    taskExecutionUpdated(arn: $arn) { taskExecutionArn status bytesWritten filesTransferred servedFrom fetchedAt }
}";

const WAIT: Duration = Duration::from_secs(20);

/// A simulator with `tick` and a gateway (no database) polling every `poll`, adjusted by `adjust`.
async fn gateway(
    tick: Duration,
    poll: Duration,
    adjust: impl FnOnce(&mut Config),
) -> (Simulator, std::net::SocketAddr) {
    let simulator =
        Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(tick)).await.unwrap();
    let mut config = test_config();
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    config.live.poll_interval = poll;
    adjust(&mut config);
    let (address, _) = spawn_gateway(config).await;
    (simulator, address)
}

/// Starts an execution of the quick task at the simulator; its ARN.
pub async fn start_quick(simulator: &Simulator) -> String {
    let client = sdk_client(&simulator.endpoint_url()).await;
    let started = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    started.task_execution_arn().unwrap().to_owned()
}

/// Every result of operation `id` until it completes.
pub async fn results_until_complete(subscriber: &mut Subscriber, id: &str) -> Vec<Value> {
    let mut results = Vec::new();
    loop {
        match subscriber.event_within(WAIT).await {
            Event::Next(of, payload) if of == id => results.push(payload),
            Event::Complete(of) if of == id => return results,
            other => panic!("unexpected {other:?} after {results:?}"),
        }
    }
}

async fn follows_an_execution_through_every_status(protocol: &'static str) {
    // Each phase of the quick task lasts at least one 250 ms tick; polls come every 50 ms.
    let (simulator, address) = gateway(Duration::from_millis(250), Duration::from_millis(50), |_| {}).await;
    let arn = start_quick(&simulator).await;
    let mut subscriber = connect(address, protocol).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": arn })).await;
    let results = results_until_complete(&mut subscriber, "1").await;

    let executions: Vec<&Value> =
        results.iter().map(|result| &result["data"]["taskExecutionUpdated"]).collect();
    let mut statuses: Vec<&str> =
        executions.iter().map(|execution| execution["status"].as_str().unwrap()).collect();
    statuses.dedup();
    assert_eq!(
        statuses,
        ["QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"],
        "{protocol}"
    );
    let written: Vec<i64> =
        executions.iter().map(|execution| execution["bytesWritten"].as_i64().unwrap()).collect();
    assert!(written.windows(2).all(|pair| pair[0] <= pair[1]), "counters never go back: {written:?}");
    let distinct = written.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert!(distinct >= 5, "bytesWritten grew step by step while transferring: {written:?}");
    assert_eq!(written.last(), Some(&3_000_000_000));
    assert_eq!(executions[0]["servedFrom"], "UPSTREAM", "the first, read for the subscription");
    assert!(
        executions[1..].iter().all(|execution| execution["servedFrom"] == "LIVE"),
        "then pushed: {executions:?}"
    );
    // The socket stays open for more.
    subscriber.subscribe("2", FOLLOW, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(
        results_until_complete(&mut subscriber, "2").await.len(),
        1,
        "a finished execution: once, then complete"
    );
}

#[tokio::test]
async fn a_graphql_transport_ws_subscriber_sees_every_status_in_order_and_the_counters_grow() {
    follows_an_execution_through_every_status(TRANSPORT_WS).await;
}

#[tokio::test]
async fn a_legacy_graphql_ws_subscriber_sees_every_status_in_order_and_the_counters_grow() {
    follows_an_execution_through_every_status(LEGACY_WS).await;
}

#[tokio::test]
async fn a_thousand_subscribers_cost_one_poll_per_interval() {
    let poll = Duration::from_millis(300);
    let (simulator, address) = gateway(TEST_TICK, poll, |_| {}).await;
    let arn = seeded::TRANSFERRING;
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut subscriber = connect(address, TRANSPORT_WS).await;
        for id in 0..100 {
            subscriber.subscribe(&id.to_string(), FOLLOW, json!({ "arn": arn })).await;
        }
        sockets.push(subscriber);
    }
    // Everyone has the first description, then the count starts.
    for subscriber in &mut sockets {
        let mut first = std::collections::HashSet::new();
        while first.len() < 100 {
            match subscriber.event_within(WAIT).await {
                Event::Next(id, payload) => {
                    assert!(payload["errors"].is_null(), "{payload}");
                    first.insert(id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let before = simulator.described(arn);
    let started = tokio::time::Instant::now();
    let mut pushed = 0;
    while started.elapsed() < poll * 10 {
        for subscriber in &mut sockets {
            while let Ok(event) = tokio::time::timeout(Duration::from_millis(1), subscriber.event()).await {
                assert!(matches!(event, Event::Next(..)), "{event:?}");
                pushed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let polls = simulator.described(arn) - before;
    let intervals = (started.elapsed().as_millis() / poll.as_millis()) as u64;
    assert!(
        polls <= intervals + 1,
        "{polls} DescribeTaskExecution calls in {intervals} poll intervals for 1,000 subscribers"
    );
    assert!(polls >= intervals / 2, "the watcher kept polling: {polls} polls in {intervals} intervals");
    assert!(
        pushed >= 1_000 * (polls - 1),
        "each poll's change reached all 1,000 subscribers: {pushed} pushes for {polls} polls"
    );
}

#[tokio::test]
async fn bad_input_gets_coded_errors_and_the_socket_stays_up() {
    let (_simulator, address) = gateway(TEST_TICK, Duration::from_millis(100), |config| {
        config.live.max_subscriptions_per_connection = 2;
    })
    .await;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut subscriber = connect(address, protocol).await;
        subscriber.subscribe("bad", FOLLOW, json!({ "arn": "arn:aws:datasync:nowhere" })).await;
        let (id, errors) = error_of(&mut subscriber).await;
        assert_eq!((id.as_str(), codes(&errors)), ("bad", vec!["BAD_USER_INPUT".to_owned()]), "{protocol}");

        let unknown = seeded::TRANSFERRING.replace("exec-0a1b2c3d4e5f60103", "exec-0a1b2c3d4e5f6ffff");
        subscriber.subscribe("unknown", FOLLOW, json!({ "arn": unknown })).await;
        let (_, errors) = error_of(&mut subscriber).await;
        assert_eq!(codes(&errors), ["NOT_FOUND"], "{protocol}");

        subscriber.subscribe("syntax", "subscription { taskExecutionUpdated(", json!({})).await;
        let (_, errors) = error_of(&mut subscriber).await;
        assert_eq!(codes(&errors), ["GRAPHQL_VALIDATION_FAILED"], "{protocol}");

        // Two open at most; the third is refused, the two go on.
        subscriber.subscribe("a", FOLLOW, json!({ "arn": seeded::TRANSFERRING })).await;
        subscriber.subscribe("b", FOLLOW, json!({ "arn": seeded::VERIFYING })).await;
        subscriber.subscribe("c", FOLLOW, json!({ "arn": seeded::PREPARING })).await;
        let mut refused = None;
        let mut answered = std::collections::HashSet::new();
        while refused.is_none() || answered.len() < 2 {
            match error_or_next(&mut subscriber).await {
                (id, Some(errors)) => refused = Some((id, codes(&errors))),
                (id, None) => {
                    answered.insert(id);
                }
            }
        }
        assert_eq!(refused, Some(("c".to_owned(), vec!["SUBSCRIPTION_LIMIT".to_owned()])), "{protocol}");
        assert_eq!(answered, ["a".to_owned(), "b".to_owned()].into(), "{protocol}");
        // Completing one frees its place (a result already on its way may still arrive).
        subscriber.complete("a").await;
        subscriber.subscribe("c", FOLLOW, json!({ "arn": seeded::PREPARING })).await;
        loop {
            match error_or_next(&mut subscriber).await {
                (id, errors) if id == "c" => {
                    assert_eq!(errors, None, "{protocol}");
                    break;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn a_vanished_client_frees_what_it_held_and_the_process_limit_answers_503() {
    let (_simulator, address) = gateway(TEST_TICK, Duration::from_millis(100), |config| {
        config.live.max_streaming_connections = 1;
    })
    .await;
    let mut subscriber = connect(address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": seeded::TRANSFERRING })).await;
    assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)));
    let live = readyz(address).await;
    assert_eq!(
        (live["streamingConnections"].as_u64(), live["watcher"]["subscribers"].as_u64()),
        (Some(1), Some(1))
    );

    let refused = reqwest::Client::new()
        .get(format!("http://{address}/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", TRANSPORT_WS)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONNECTION_LIMIT");

    drop(subscriber);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = readyz(address).await;
        if live["streamingConnections"] == 0
            && live["watcher"]["subscribers"] == 0
            && live["watcher"]["following"] == 0
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never freed: {live}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    connect(address, TRANSPORT_WS).await;
}

/// POSTs `body` asking for server-sent events; the whole stream, once it completes.
async fn event_stream(address: std::net::SocketAddr, body: &Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .header("accept", "text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    tokio::time::timeout(WAIT, response.text()).await.expect("the stream completes").unwrap()
}

#[tokio::test]
async fn server_sent_events_stream_a_subscription_to_its_end() {
    let (simulator, address) = gateway(TEST_TICK, Duration::from_millis(50), |_| {}).await;
    let arn = start_quick(&simulator).await;
    let text = event_stream(address, &json!({ "query": FOLLOW, "variables": { "arn": arn } })).await;
    let events: Vec<(&str, &str)> = text
        .split("\n\n")
        .filter(|event| !event.trim().is_empty() && !event.starts_with(':'))
        .map(|event| {
            let field =
                |name: &str| event.lines().find_map(|line| line.strip_prefix(name)).unwrap_or_default();
            (field("event: "), field("data: "))
        })
        .collect();
    assert_eq!(events.last().map(|(kind, _)| *kind), Some("complete"), "{text}");
    let statuses: Vec<String> = events[..events.len() - 1]
        .iter()
        .map(|(kind, data)| {
            assert_eq!(*kind, "next");
            let data: Value = serde_json::from_str(data).unwrap();
            data["data"]["taskExecutionUpdated"]["status"].as_str().unwrap().to_owned()
        })
        .collect();
    // The state when the stream opened (whichever phase a slow machine reached by then), then
    // each change (counters move within a phase) in the order DataSync goes through them.
    let lifecycle = ["QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"];
    let phases: Vec<usize> = statuses
        .iter()
        .map(|status| lifecycle.iter().position(|phase| phase == status).expect("a lifecycle status"))
        .collect();
    assert!(phases.windows(2).all(|pair| pair[0] <= pair[1]), "in the order they happen: {statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("SUCCESS"));

    // Over plain HTTP, a subscription says where to go.
    let response = graphql(&format!("http://{address}/graphql"), FOLLOW, json!({ "arn": arn })).await;
    assert_eq!(response["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{response}");
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("/graphql/ws"));
}

#[tokio::test]
async fn throttled_polls_back_off_and_the_subscription_goes_on() {
    let (simulator, address) = gateway(TEST_TICK, Duration::from_millis(50), |config| {
        config.datasync.max_attempts = 1;
    })
    .await;
    let mut subscriber = connect(address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": seeded::TRANSFERRING })).await;
    assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)));
    let faults = format!("{}/_simulator/faults", simulator.endpoint_url());
    let client = reqwest::Client::new();
    client.put(&faults).json(&json!({ "failure": "throttle", "count": 5 })).send().await.unwrap();
    // Past the throttling, changes arrive again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let live = readyz(address).await;
        if live["watcher"]["failedPolls"].as_u64() >= Some(5) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "polls never failed: {live}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while tokio::time::timeout(Duration::from_millis(10), subscriber.event()).await.is_ok() {}
    match subscriber.event_within(WAIT).await {
        Event::Next(_, payload) => {
            assert_eq!(payload["data"]["taskExecutionUpdated"]["status"], "TRANSFERRING")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_eventbridge_event_pushes_a_finish_at_once_and_only_once() {
    let (simulator, address) = gateway(TEST_TICK, Duration::from_secs(60), |config| {
        config.live.eventbridge_secret = Some("s3cret-for-tests".into());
    })
    .await;
    let arn = start_quick(&simulator).await;
    let mut subscriber = connect(address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": arn })).await;
    assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)));
    // It finishes at the simulator; the next poll is a minute away.
    tokio::time::sleep(TEST_TICK * 40).await;
    let polled = simulator.described(&arn);

    let event = json!({
        "version": "0", "id": "7f0c9d1e", "detail-type": "DataSync Task Execution State Change",
        "source": "aws.datasync", "account": "111122223333", "time": "2026-11-26T00:00:00Z",
        "region": "us-east-1", "resources": [arn], "detail": { "State": "SUCCESS" }
    });
    let post = |secret: &'static str, body: Value| {
        reqwest::Client::new()
            .post(format!("http://{address}/events/eventbridge"))
            .header("x-eventbridge-secret", secret)
            .json(&body)
            .send()
    };
    let refused = post("wrong", event.clone()).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    for (malformed, why) in [
        (
            json!({ "source": "aws.s3", "detail-type": "Object Created", "resources": [arn] }),
            "unsupported event",
        ),
        (
            json!({ "source": "aws.datasync", "detail-type": "DataSync Task Execution State Change", "resources": [] }),
            "no task execution ARN",
        ),
        (json!([1, 2]), "not an EventBridge event"),
    ] {
        let response = post("s3cret-for-tests", malformed).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{body}");
    }
    assert_eq!(simulator.described(&arn), polled, "refused events poll nothing");

    let sent = tokio::time::Instant::now();
    let accepted = post("s3cret-for-tests", event.clone()).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let results = results_until_complete(&mut subscriber, "1").await;
    let delay = sent.elapsed();
    assert_eq!(results.last().unwrap()["data"]["taskExecutionUpdated"]["status"], "SUCCESS");
    assert!(
        delay < Duration::from_secs(30),
        "pushed by the hint, not by the next poll a minute later: {delay:?}"
    );

    let again = post("s3cret-for-tests", event).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap()["polling"], false, "a duplicate is known already");
    assert_eq!(simulator.described(&arn), polled + 1, "one poll for the two deliveries");
}

async fn readyz(address: std::net::SocketAddr) -> Value {
    let ready: Value = reqwest::get(format!("http://{address}/readyz")).await.unwrap().json().await.unwrap();
    ready["live"].clone()
}

fn codes(errors: &Value) -> Vec<String> {
    errors
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["extensions"]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The errors of the next failed operation; skips results of others.
async fn error_of(subscriber: &mut Subscriber) -> (String, Value) {
    loop {
        if let (id, Some(errors)) = error_or_next(subscriber).await {
            return (id, errors);
        }
    }
}

/// The next event's operation, and its errors if it failed (an `error` message, or a result
/// with errors and no data, as the legacy protocol sends them). Completions are skipped.
async fn error_or_next(subscriber: &mut Subscriber) -> (String, Option<Value>) {
    loop {
        match subscriber.event_within(WAIT).await {
            Event::Error(id, errors) => return (id, Some(errors)),
            Event::Next(id, payload) if payload["errors"].is_array() => {
                return (id, Some(payload["errors"].clone()))
            }
            Event::Next(id, _) => return (id, None),
            Event::Complete(_) => continue,
            Event::Closed(code) => panic!("the socket closed ({code:?})"),
        }
    }
}

#[tokio::test]
async fn graphql_ws_graphql_sse_and_apollo_clients_http_link_follow_an_execution_to_its_end() {
    let Some(dir) = node_clients() else { return };
    // Executions of about 6 s: a client library's start-up (Apollo Client's takes a second or
    // more) must not outlast the execution it follows.
    let (simulator, address) = gateway(Duration::from_millis(200), Duration::from_millis(50), |_| {}).await;
    for (transport, url) in [
        ("ws", format!("ws://{address}/graphql/ws")),
        ("sse", format!("http://{address}/graphql")),
        ("multipart", format!("http://{address}/graphql")),
    ] {
        let arn = start_quick(&simulator).await;
        let variables = json!({ "arn": arn }).to_string();
        let output = node(&dir, &["subscribe.mjs", transport, &url, FOLLOW, &variables], &[]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{transport}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.last(), Some(&json!({ "complete": true })), "{transport}: {stdout}");
        let statuses: Vec<&str> = lines[..lines.len() - 1]
            .iter()
            .map(|line| line["data"]["taskExecutionUpdated"]["status"].as_str().unwrap())
            .collect();
        // Node takes a moment to start: the execution is under way by then.
        assert!(statuses.len() >= 3, "{transport}: the current state, changes, the end: {stdout}");
        assert_eq!(statuses.last(), Some(&"SUCCESS"), "{transport}: {stdout}");
    }
}

/// Apollo Client's `Accept` header for a subscription over HTTP.
const MULTIPART: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";

#[tokio::test]
async fn apollo_multipart_subscriptions_send_payload_parts_heartbeats_and_a_closing_boundary() {
    let (simulator, address) = gateway(TEST_TICK, Duration::from_millis(50), |_| {}).await;
    let url = format!("http://{address}/graphql");
    let post = |body: Value| reqwest::Client::new().post(&url).header("accept", MULTIPART).json(&body).send();

    // A subscription to an execution, to its end: each result a part holding `payload`, then
    // the closing boundary.
    let arn = start_quick(&simulator).await;
    let response = post(json!({ "query": FOLLOW, "variables": { "arn": arn } })).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("multipart/mixed") && content_type.contains("boundary=\"graphql\""),
        "{content_type}"
    );
    let text = tokio::time::timeout(WAIT, response.text()).await.expect("the stream ends").unwrap();
    assert!(text.ends_with("--graphql--\r\n"), "{text}");
    let parts: Vec<Value> = text
        .trim_end_matches("--graphql--\r\n")
        .split("--graphql\r\nContent-Type: application/json\r\n\r\n")
        .filter(|part| !part.is_empty())
        .map(|part| serde_json::from_str(part.trim_end()).unwrap_or_else(|_| panic!("a JSON part: {part:?}")))
        .collect();
    let statuses: Vec<&str> = parts
        .iter()
        .filter(|part| part.get("payload").is_some())
        .map(|part| part["payload"]["data"]["taskExecutionUpdated"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&"SUCCESS"), "{text}");

    // A quiet subscription gets an empty part every five seconds.
    let mut quiet = post(json!({ "query": "subscription { executionEvents { kind } }" })).await.unwrap();
    let mut seen = String::new();
    let heartbeat = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = quiet.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\r\n\r\n{}\r\n") {
                return;
            }
        }
        panic!("the stream ended: {seen}");
    })
    .await;
    assert!(heartbeat.is_ok(), "no heartbeat within 20 s: {seen:?}");

    // What no subscription may do, neither may this: an invalid operation is an error part.
    let invalid = post(json!({ "query": "subscription { noSuchField }" })).await.unwrap();
    let text = tokio::time::timeout(WAIT, invalid.text()).await.unwrap().unwrap();
    assert!(text.contains("GRAPHQL_VALIDATION_FAILED") && text.ends_with("--graphql--\r\n"), "{text}");
}

#[tokio::test]
async fn an_event_stream_counts_once_against_the_callers_rate() {
    // A rate of 1 a second is a burst of 2: two streams, each counted once, both run.
    let (_simulator, address) = gateway(TEST_TICK, Duration::from_millis(50), |config| {
        config.limits.rate_limit = 1;
    })
    .await;
    let body = json!({ "query": FOLLOW, "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    for attempt in 0..2 {
        let text = event_stream(address, &body).await;
        assert!(text.contains("\"SUCCESS\"") && !text.contains("RATE_LIMITED"), "stream {attempt}: {text}");
    }
}

#[tokio::test]
async fn a_flood_of_hints_is_bounded_and_does_not_hold_back_the_regular_polls() {
    const HINTS: u64 = 3_000;
    let (_simulator, address) = gateway(TEST_TICK, Duration::from_millis(200), |config| {
        config.live.eventbridge_secret = Some("s3cret-for-tests".into());
        // The budget is what is short: hints and regular polls compete for it.
        config.datasync.calls_per_second = 20.0;
    })
    .await;
    let mut subscriber = connect(address, TRANSPORT_WS).await;
    subscriber.subscribe("1", FOLLOW, json!({ "arn": seeded::TRANSFERRING })).await;
    assert!(matches!(subscriber.event_within(WAIT).await, Event::Next(..)));

    // 3,000 distinct executions said to have changed: three times what the queue holds, so that
    // however slowly this machine posts (the queue drains meanwhile), some go past the bound.
    let client = reqwest::Client::new();
    for n in 0..HINTS {
        let arn = format!("{}/execution/exec-{:017x}", seeded::QUICK_TASK, 0xe000_0000_0000_0000_u64 + n);
        let event = json!({
            "version": "0", "id": format!("hint-{n}"), "detail-type": "DataSync Task Execution State Change",
            "source": "aws.datasync", "account": "111122223333", "time": "2026-11-26T00:00:00Z",
            "region": "us-east-1", "resources": [arn], "detail": { "State": "SUCCESS" }
        });
        let posted = client
            .post(format!("http://{address}/events/eventbridge"))
            .header("x-eventbridge-secret", "s3cret-for-tests")
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 202);
    }
    let hints = readyz(address).await["hints"].clone();
    // The queue holds 1,000. How many were taken to be polled meanwhile (in batches, at 20
    // calls a second) depends on how fast this machine posts: what is certain is the bound, and
    // that what went past it was counted.
    let (queued, dropped) = (hints["queued"].as_u64().unwrap(), hints["dropped"].as_u64().unwrap());
    assert!(queued <= 1_000, "the queue is bounded: {hints}");
    assert!(
        dropped > 0 && queued + dropped <= HINTS,
        "past the bound, hints are dropped and counted: {hints}"
    );

    // While the hints wait, the followed execution's changes keep coming, every poll.
    for _ in 0..5 {
        match subscriber.event_within(WAIT).await {
            Event::Next(_, payload) => {
                assert_eq!(payload["data"]["taskExecutionUpdated"]["status"], "TRANSFERRING")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let hints = readyz(address).await["hints"].clone();
    assert!(hints["queued"].as_u64() > Some(0), "the pushes came while hints were still queued: {hints}");
}

/// A watcher with nothing to follow sleeps, with a database or without: it wakes to claim
/// leases and say it is alive, a few times a second at most. (Without a database, a heartbeat
/// left due once woke it again at once, forever: a core spent idle.)
#[tokio::test]
async fn an_idle_watcher_sleeps_with_or_without_a_database() {
    for config in [crate::common::test_config(), crate::common::history_config().await] {
        let with_database = config.history.database_url.is_some();
        let gateway = crate::common::TestGateway::start_with(config).await;
        let cycles = || async {
            let ready: Value = gateway.get("/readyz").await.json().await.unwrap();
            ready["live"]["watcher"]["cycles"].as_u64().unwrap_or_else(|| panic!("{ready}"))
        };
        let before = cycles().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let woke = cycles().await - before;
        // Every third of the 30 s lease, and every 2 s heartbeat: 0 or 1 in a second. A loop
        // that does not sleep wakes hundreds of thousands of times.
        assert!(woke <= 20, "the watcher woke {woke} times in a second idle (database: {with_database})");
    }
}
