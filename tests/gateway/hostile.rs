//! Hostile and careless traffic: every case answers quickly with a clear code, and none costs
//! the gateway a core, a connection slot for long, or DataSync calls it should not make.
//!
//! `BATTERY` is the table of raw requests and what each must get; the tests after it cover what
//! a table cannot (concurrency, connections held open, fairness, shutdown).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{error_codes, history_config, start_simulator, test_config, TestGateway, FULL};

/// Sends raw bytes on a new connection and reads the answer until the server closes it.
async fn raw(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    // The server may answer (and close) before it has read everything: ignore write errors.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .ok();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|status| status.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

fn post(content_type: Option<&str>, body: &str) -> Vec<u8> {
    let content_type = content_type.map(|value| format!("content-type: {value}\r\n")).unwrap_or_default();
    format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{content_type}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn graphql(query: &str) -> Vec<u8> {
    post(Some("application/json"), &json!({ "query": query }).to_string())
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes()
}

/// Fragments F1…F{n}, each spreading the previous one twice: 2^n fields once expanded.
fn fragment_bomb(n: usize) -> String {
    let mut query = format!("query {{ taskExecution(arn: \"{}\") {{ ...F{n} }} }}\n", seeded::FAILED);
    query.push_str("fragment F1 on TaskExecution { status }\n");
    for i in 2..=n {
        query.push_str(&format!("fragment F{i} on TaskExecution {{ ...F{p} ...F{p} }}\n", p = i - 1));
    }
    query
}

/// `count` aliases of `taskExecutions`, each with `per_alias` distinct cold ARNs.
fn alias_amplification(count: usize, per_alias: usize) -> String {
    let aliases: String = (0..count)
        .map(|alias| {
            let arns: Vec<String> =
                (0..per_alias).map(|i| format!("\"{}\"", cold_arn(alias * per_alias + i))).collect();
            format!("a{alias}: taskExecutions(arns: [{}]) {{ status }} ", arns.join(","))
        })
        .collect();
    format!("{{ {aliases} }}")
}

fn cold_arn(i: usize) -> String {
    format!("arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-{i:017x}")
}

fn chunked_post(size: usize) -> Vec<u8> {
    let mut request = b"POST /graphql HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b' '; 8192];
    for _ in 0..size / chunk.len() {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// A request, the HTTP status it must get, and the `extensions.code` of its first error.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn battery() -> Vec<Case> {
    let case = |name, request, status, code| Case { name, request, status, code };
    let deep = format!(
        "{{ taskExecution(arn: \"{}\") {{ {} }} }}",
        seeded::FAILED,
        "progress { ".repeat(12) + "bytesPercent" + &" }".repeat(12)
    );
    let many_aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let twice_full = format!(
        "{{ a: taskExecutions(arns: [{arns}]) {{ ...Full }} b: taskExecutions(arns: [{arns}]) {{ ...Full }} }} fragment Full on TaskExecution {full}",
        arns = vec![format!("\"{}\"", seeded::FAILED); 100].join(","),
        full = FULL.split_once("taskExecution(arn: $arn)").unwrap().1.trim_end().trim_end_matches('}'),
    );
    vec![
        case("fragment bomb (2^40 fields)", graphql(&fragment_bomb(40)), 200, "GRAPHQL_VALIDATION_FAILED"),
        case(
            "fragment cycle",
            graphql("{ __typename ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            200,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        case("13 levels deep", graphql(&deep), 200, "GRAPHQL_VALIDATION_FAILED"),
        case("31 aliases", graphql(&format!("{{ {many_aliases} }}")), 200, "GRAPHQL_VALIDATION_FAILED"),
        case(
            "complexity: 2 × 100 items × every field",
            graphql(&twice_full),
            200,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        case(
            "abusive introspection",
            graphql("{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"),
            200,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        case(
            "120 cold ARNs across 4 aliases",
            graphql(&alias_amplification(4, 30)),
            200,
            "UPSTREAM_CALL_LIMIT",
        ),
        case("unknown route", get("/nope"), 404, "BAD_REQUEST"),
        case(
            "wrong method",
            b"DELETE /graphql HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
            405,
            "BAD_REQUEST",
        ),
        case(
            "text/plain POST (CSRF)",
            post(Some("text/plain"), "{\"query\":\"{ __typename }\"}"),
            415,
            "BAD_REQUEST",
        ),
        case("POST without content type", post(None, "{\"query\":\"{ __typename }\"}"), 415, "BAD_REQUEST"),
        case("form POST", post(Some("application/x-www-form-urlencoded"), "query=x"), 415, "BAD_REQUEST"),
        case("malformed JSON", post(Some("application/json"), "{\"query\":"), 400, "BAD_REQUEST"),
        case("empty batch", post(Some("application/json"), "[]"), 400, "BAD_REQUEST"),
        case(
            "11-operation batch",
            post(Some("application/json"), &json!(vec![json!({"query": "{ __typename }"}); 11]).to_string()),
            400,
            "BAD_REQUEST",
        ),
        case("100 KB body", post(Some("application/json"), &" ".repeat(100 * 1024)), 413, "BAD_REQUEST"),
        case("10 MB chunked body", chunked_post(10 * 1024 * 1024), 413, "BAD_REQUEST"),
        case("100 KB URL", get(&format!("/graphql?query={}", "a".repeat(100 * 1024))), 431, "BAD_REQUEST"),
        case(
            "40 KB URL (over the body limit)",
            get(&format!("/graphql?query={}", "a".repeat(40 * 1024))),
            414,
            "BAD_REQUEST",
        ),
        case(
            "mutation over GET",
            get("/graphql?query=mutation%20%7B%20__typename%20%7D"),
            405,
            "BAD_REQUEST",
        ),
        case(
            "100 KB header",
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(100 * 1024))
                .into_bytes(),
            431,
            "BAD_REQUEST",
        ),
        case("not HTTP", b"HELLO\r\n\r\n".to_vec(), 400, "BAD_REQUEST"),
    ]
}

#[tokio::test]
async fn the_hostile_input_battery_gets_clear_codes_and_costs_datasync_nothing() {
    let mut config = test_config();
    config.limits.max_body_bytes = 32 * 1024;
    let gateway = TestGateway::start_with(config).await;
    for case in battery() {
        let (status, body) = raw(gateway.address, &case.request).await;
        assert_eq!(status, case.status, "{}: {body:.300}", case.name);
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{}: not JSON: {body:.300}", case.name));
        assert_eq!(error_codes(&body).first().map(String::as_str), Some(case.code), "{}: {body}", case.name);
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.is_empty() && message.len() < 400, "{}: {message}", case.name);
    }
    assert_eq!(gateway.describe_calls(), 0, "nothing in the battery reached DataSync");
    let health = gateway.get("/healthz").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_while_the_server_keeps_answering() {
    let gateway = TestGateway::start().await;
    let bombs: Vec<_> =
        (0..4).map(|_| tokio::spawn(raw(gateway.address, graphql(&fragment_bomb(60)).leak()))).collect();
    let health = gateway.get("/healthz").await;
    assert_eq!(health.status(), 200);
    for bomb in bombs {
        let (status, body) = bomb.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("fields once its fragments are expanded"), "{body}");
    }
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_and_probes_stay_up() {
    let mut config = test_config();
    config.limits.header_read_timeout = Duration::from_millis(300);
    config.limits.max_connections = 8;
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let gateway = TestGateway::start_with(config).await;

    // Fill every connection slot with a request that never ends.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(gateway.address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(stream);
    }
    // Beyond the limit a connection is closed at once; the admin address still answers.
    let (status, _) = raw(gateway.address, &get("/healthz")).await;
    assert_eq!(status, 0, "a connection over the limit is closed without an answer");
    let admin = gateway.admin_address.expect("an admin address");
    let (status, body) = raw(admin, &get("/readyz")).await;
    assert_eq!((status, body.contains("ready")), (200, true), "{body}");

    // The slow ones are closed by the server once their header time is up…
    for stream in slow {
        closed_by_the_server(stream).await;
    }
    // …which frees their slots.
    let (status, _) = raw(gateway.address, &get("/healthz")).await;
    assert_eq!(status, 200);
}

/// One request answered on a kept-alive connection; then the connection, for the server to close.
async fn kept_alive(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    stream
}

/// Waits (20 s at most) for the server to close `stream`, reading nothing more on it.
async fn closed_by_the_server(mut stream: TcpStream) {
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed by the server: {read:?}");
}

#[tokio::test]
async fn a_kept_alive_connection_where_nothing_moves_is_closed_at_the_idle_timeout() {
    let mut config = test_config();
    // Only the idle timeout can close it: the wait for a next request's head is allowed longer.
    config.limits.header_read_timeout = Duration::from_secs(120);
    config.limits.connection_idle_timeout = Duration::from_millis(300);
    let gateway = TestGateway::start_with(config).await;
    closed_by_the_server(kept_alive(gateway.address).await).await;
}

#[tokio::test]
async fn a_shutdown_closes_kept_alive_connections_and_ends_the_server() {
    let mut config = test_config();
    // Nothing but the shutdown can close the connection within the test's patience.
    config.limits.header_read_timeout = Duration::from_secs(120);
    config.limits.connection_idle_timeout = Duration::from_secs(120);
    let simulator = start_simulator().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    let app = datasync_gateway::app::Application::build(config).await.unwrap();
    let address = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let stream = kept_alive(address).await;
    stop.send(()).unwrap();
    closed_by_the_server(stream).await;
    tokio::time::timeout(Duration::from_secs(20), server).await.expect("the server ends").unwrap();
}

/// A small POST is answered without the router when its body came with its headers
/// (`src/http/graphql/direct.rs`); one whose body is still arriving is handed on with what was
/// read of it. Either way the answer is the same.
#[tokio::test]
async fn a_post_whose_body_arrives_in_pieces_is_answered_as_one_sent_whole() {
    let gateway = TestGateway::start().await;
    let body = json!({ "query": format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", seeded::FAILED) })
        .to_string();
    let request = post(Some("application/json"), &body);
    let (status, whole) = raw(gateway.address, &request).await;
    assert_eq!(status, 200, "{whole}");
    assert!(whole.contains("\"status\":\"ERROR\""), "{whole}");

    // The headers with half the body, then the rest a moment later: the half read first goes
    // on ahead of the rest.
    let headers_end = request.windows(4).position(|window| window == b"\r\n\r\n").unwrap() + 4;
    let half = headers_end + body.len() / 2;
    let mut stream = TcpStream::connect(gateway.address).await.unwrap();
    for piece in [&request[..half], &request[half..]] {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.split_once("\r\n\r\n").map(|(_, body)| body), Some(whole.as_str()));
}

#[tokio::test]
async fn a_connection_is_closed_after_its_request_allowance() {
    let mut config = test_config();
    config.limits.max_requests_per_connection = 2;
    let gateway = TestGateway::start_with(config).await;
    let mut stream = TcpStream::connect(gateway.address).await.unwrap();
    let twice = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    stream.write_all(twice).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
}

/// 60 cold ARNs asked for at once from 127.0.0.1, then, once `started` DataSync calls were made,
/// one cold read from 127.0.0.2 (loopback has all of 127/8): the calls made by the time the
/// bystander was answered, and the crowd's request, still running or done.
async fn crowd_then_bystander(
    gateway: &TestGateway,
    started: u64,
) -> (u64, tokio::task::JoinHandle<reqwest::Response>) {
    let crowd_query = alias_amplification(1, 60);
    let crowd = {
        let url = gateway.url("/graphql");
        tokio::spawn(async move {
            reqwest::Client::new().post(url).json(&json!({ "query": crowd_query })).send().await.unwrap()
        })
    };
    while gateway.describe_calls() < started {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let bystander = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let response: Value = bystander
        .post(gateway.url("/graphql"))
        .json(&json!({ "query": format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", seeded::FAILED) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["data"]["taskExecution"]["status"], "ERROR", "{response}");
    (gateway.describe_calls(), crowd)
}

#[tokio::test]
async fn a_lone_client_is_served_while_another_client_s_crowd_waits() {
    let mut config = test_config();
    config.datasync.max_concurrency = 2;
    let gateway = TestGateway::start_with(config).await;
    gateway.inject(json!({ "latencyMs": 100 })).await;

    // 30 rounds of 2 calls at 100 ms each for the crowd.
    let (calls_by_then, crowd) = crowd_then_bystander(&gateway, 2).await;
    assert!(calls_by_then <= 8, "the bystander waited for the crowd: {calls_by_then} calls were made first");
    assert!(!crowd.is_finished(), "the crowd is still being served");
    let crowd: Value = crowd.await.unwrap().json().await.unwrap();
    assert_eq!(crowd["data"]["a0"].as_array().unwrap().len(), 60);
    assert_eq!(gateway.describe_calls(), 61);
}

#[tokio::test]
async fn a_lone_client_is_served_in_turn_while_another_floods_the_region_s_call_budget() {
    // The budget, not the slots, is what is short: 5 calls a second (a burst of 25), every slot free.
    let mut config = test_config();
    config.datasync.calls_per_second = 5.0;
    let gateway = TestGateway::start_with(config).await;

    // Past the burst, 35 of the crowd's calls wait for the budget; in turn, the bystander's
    // call comes within a couple of refills, not after them.
    let (calls_by_then, crowd) = crowd_then_bystander(&gateway, 25).await;
    assert!(
        calls_by_then <= 25 + 3,
        "the bystander waited for the crowd: {calls_by_then} calls were made first"
    );
    let crowd: Value = crowd.await.unwrap().json().await.unwrap();
    assert_eq!(crowd["data"]["a0"].as_array().unwrap().len(), 60);
}

#[tokio::test]
async fn the_call_budget_is_enforced_while_executing_when_it_cannot_be_counted_up_front() {
    let mut config = test_config();
    config.limits.max_upstream_calls = 3;
    let gateway = TestGateway::start_with(config).await;
    // Four operations in one batch, each within the limit; together over it.
    let batch: Vec<Value> = (0..4)
        .map(|i| json!({ "query": format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", cold_arn(i)) }))
        .collect();
    let (status, body) = gateway.post_json(json!(batch)).await;
    assert_eq!(status, 200);
    let codes: Vec<String> = body.as_array().unwrap().iter().flat_map(error_codes).collect();
    assert_eq!(codes.iter().filter(|code| *code == "UPSTREAM_CALL_LIMIT").count(), 1, "{body}");
    assert_eq!(gateway.describe_calls(), 3);
}

#[tokio::test]
async fn an_answer_over_the_response_size_limit_is_refused() {
    let mut config = test_config();
    config.limits.max_response_bytes = 2_000;
    let gateway = TestGateway::start_with(config).await;
    let response = gateway.query(FULL, json!({ "arn": seeded::SUCCEEDED_ENHANCED })).await;
    assert_eq!(error_codes(&response), ["RESPONSE_TOO_LARGE"], "{response}");
    let small = gateway
        .query(
            "query($arn: ID!) { taskExecution(arn: $arn) { status } }",
            json!({ "arn": seeded::SUCCEEDED_ENHANCED }),
        )
        .await;
    assert_eq!(small["data"]["taskExecution"]["status"], "SUCCESS");
}

#[tokio::test]
async fn client_mistakes_in_history_filters_are_bad_input_not_a_database_outage() {
    let gateway = TestGateway::start_with(history_config().await).await;
    let query = "query($filter: ExecutionFilter) { executionHistory(filter: $filter) { edges { cursor } } }";
    let filters = [
        json!({ "errorCode": "a\u{0}b" }),
        json!({ "startedBefore": "-4713-01-01T00:00:00Z" }),
        json!({ "startedAfter": "+10000-01-01T00:00:00Z" }),
        json!({ "errorCode": "x".repeat(300) }),
        json!({ "region": "us-east-1\u{0}" }),
        json!({ "accountId": "1".repeat(10_000) }),
    ];
    for filter in filters {
        let response = gateway.query(query, json!({ "filter": filter })).await;
        let codes = error_codes(&response);
        assert!(
            codes == ["BAD_USER_INPUT"] || codes == ["GRAPHQL_VALIDATION_FAILED"],
            "{filter:.80}: {response:.400}"
        );
    }
    let ready: Value = gateway.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["history"]["writer"]["healthy"], true);
}

#[tokio::test]
async fn a_caller_over_its_rate_gets_429_with_retry_after_while_other_callers_are_served() {
    let mut config = test_config();
    config.limits.rate_limit = 2; // a burst of 4
    let gateway = TestGateway::start_with(config).await;
    let from =
        |address: [u8; 4]| reqwest::Client::builder().local_address(IpAddr::from(address)).build().unwrap();
    let (greedy, other) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let body = json!({ "query": "{ __typename }" });
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let response = greedy.post(gateway.url("/graphql")).json(&body).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after = response.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
            refused = Some((retry_after, response.json::<Value>().await.unwrap()));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    let (retry_after, body429) = refused.unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let extensions = &body429["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "RATE_LIMITED", "{body429}");
    assert_eq!(
        (extensions["retryable"].as_bool(), extensions["retryAfter"].as_u64()),
        (Some(true), Some(retry_after))
    );

    let served = other.post(gateway.url("/graphql")).json(&body).send().await.unwrap();
    assert_eq!(served.status(), 200, "another caller is not limited by the first one's flood");
    assert_eq!(gateway.get("/healthz").await.status(), 200, "probes do not count");
    // Operations on a socket count too.
    let mut socket = crate::ws_client::connect(gateway.address, crate::ws_client::TRANSPORT_WS).await;
    socket.subscribe("1", "subscription { executionEvents { kind } }", json!({})).await;
    let errors = match socket.event_within(Duration::from_secs(10)).await {
        crate::ws_client::Event::Error(_, errors) => errors,
        crate::ws_client::Event::Next(_, result) => result["errors"].clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{errors}");
    // The rate comes back.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(greedy.post(gateway.url("/graphql")).json(&body).send().await.unwrap().status(), 200);
}
