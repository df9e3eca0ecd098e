//! Trusted documents: GraphQL Code Generator's manifest pushed with the real `documents push`,
//! Apollo Client running the generated operations by hash against an enforcing gateway, ad-hoc
//! operations refused except for operators and bypass keys, audit counting, a manifest edited
//! under a running gateway, and documents named by id over WebSocket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use datasync_gateway::config::{AuthMode, TrustedDocumentsMode};
use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::{
    create_key, error_codes, gateway_cli, node, node_clients, start_simulator, test_config, test_database,
    GatewayProcess, TestGateway,
};
use crate::metrics::{scrape, value};
use crate::ws_client::{connect, Event, Subscriber, LEGACY_WS, TRANSPORT_WS};

const STATUS: &str = "query Status($arn: ID!) { taskExecution(arn: $arn) { status } }";
const TASK: &str = "query Task($arn: ID!) { taskExecution(arn: $arn) { taskArn } }";
const AD_HOC: &str = "query AdHoc($arn: ID!) { taskExecution(arn: $arn) { status taskArn } }";

fn sha256(text: &str) -> String {
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("trusted-{name}-{}", std::process::id()))
}

/// A key's id, as `--trusted-documents-bypass-keys` names it.
fn key_id(key: &str) -> String {
    key.strip_prefix("dsg_").unwrap()[..12].to_owned()
}

/// POSTs `body` to the gateway's `/graphql` as `key`; the JSON answer.
async fn post_as(gateway: &TestGateway, key: Option<&str>, body: Value) -> Value {
    let mut request = gateway.http.post(gateway.url("/graphql")).json(&body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Writes `contents` to `path` in one step (a rename), as deployment tools replace files, so
/// that the gateway never reads half a manifest.
fn replace_file(path: &Path, contents: &str) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, contents).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

#[tokio::test]
async fn codegens_documents_pushed_then_enforced_run_by_hash_from_apollo_client_and_ad_hoc_ones_do_not() {
    let Some(dir) = node_clients() else { return };
    // The client preset with `persistedDocuments: true` over the repo's operations: typed
    // documents carrying their hashes, and the manifest a frontend's CI pushes.
    let generated = temp_path("codegen");
    let schema = std::env::current_dir().unwrap().join("schema.graphql");
    let codegen = node(
        &dir,
        &["node_modules/.bin/graphql-codegen", "--config", "codegen.ts"],
        &[("CODEGEN_SCHEMA", schema.to_str().unwrap()), ("CODEGEN_OUTPUT", generated.to_str().unwrap())],
    )
    .await;
    assert!(codegen.status.success(), "{}", String::from_utf8_lossy(&codegen.stderr));
    let manifest = generated.join("persisted-documents.json");
    let listed: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert!(listed.len() >= 2 && listed.keys().all(|id| id.starts_with("sha256:")), "{listed:?}");

    let database = test_database().await;
    let push = ["documents", "push", manifest.to_str().unwrap(), "--database-url", &database];
    let added = gateway_cli(&push);
    assert_eq!(added.trim(), format!("{} documents added, 0 already there", listed.len()));
    let again = gateway_cli(&push);
    assert_eq!(again.trim(), format!("0 documents added, {} already there", listed.len()), "idempotent");

    let keys = temp_path("keys.json");
    let frontend = create_key(&keys, "reader", "frontend", &[]);
    let oncall = create_key(&keys, "operator", "oncall", &[]);
    let graphiql = create_key(&keys, "reader", "graphiql", &[]);
    let mut config = test_config();
    config.history.database_url = Some(database);
    config.auth.mode = Some(AuthMode::Required);
    config.auth.api_keys_file = Some(keys);
    config.documents.mode = TrustedDocumentsMode::Enforce;
    config.documents.bypass_keys = vec![key_id(&graphiql)];
    let gateway = TestGateway::start_with(config).await;

    // Apollo Client, as the frontend: every generated operation by its hash alone.
    let variables = json!({ "TaskExecutionStatus": { "arn": seeded::FAILED } }).to_string();
    let args = [
        "trusted-documents.mjs",
        &gateway.url("/graphql"),
        generated.to_str().unwrap(),
        &variables,
        &frontend,
    ];
    let output = node(&dir, &args, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), listed.len(), "{report}");
    for result in results {
        assert_eq!(result["error"], Value::Null, "{report}");
        assert!(result["data"].is_object(), "{report}");
    }
    let status = results.iter().find(|result| result["name"] == "TaskExecutionStatus").unwrap();
    assert_eq!(status["data"]["taskExecution"]["status"], "ERROR", "{report}");
    for body in report["sent"].as_array().unwrap() {
        assert!(body.get("query").is_none_or(|query| query.as_str() == Some("")), "text was sent: {body}");
        assert!(body["extensions"]["persistedQuery"]["sha256Hash"].is_string(), "{body}");
    }

    // An operation that is not a trusted document: refused for the frontend's key, with no
    // data; run for the operator and for the key listed as a bypass.
    let ad_hoc = json!({ "query": AD_HOC, "variables": { "arn": seeded::FAILED } });
    let refused = post_as(&gateway, Some(&frontend), ad_hoc.clone()).await;
    assert_eq!(error_codes(&refused), ["PERSISTED_QUERY_REQUIRED"], "{refused}");
    assert!(refused.get("data").is_none(), "{refused}");
    assert!(refused["errors"][0]["message"].as_str().unwrap().contains(&sha256(AD_HOC)), "{refused}");
    // Other executions each: an identical request would be answered from the response cache,
    // which counts no operation again.
    for (bypassing, arn) in [(&oncall, seeded::SUCCEEDED_BASIC), (&graphiql, seeded::CANCELLED)] {
        let ad_hoc = json!({ "query": AD_HOC, "variables": { "arn": arn } });
        let ran = post_as(&gateway, Some(bypassing), ad_hoc).await;
        assert!(ran["data"]["taskExecution"]["status"].is_string(), "{ran}");
    }

    // GraphQL over HTTP's documentId, with and without `sha256:`, by POST and GET; a generated
    // document's exact text runs too.
    let (id, text) =
        listed.iter().find(|(_, text)| text.as_str().unwrap().contains("TaskExecutionStatus")).unwrap();
    let arn = json!({ "arn": seeded::FAILED });
    for body in [
        json!({ "documentId": id, "variables": arn }),
        json!({ "documentId": id.strip_prefix("sha256:").unwrap(), "variables": arn }),
        json!({ "query": text, "variables": arn }),
    ] {
        let ran = post_as(&gateway, Some(&frontend), body).await;
        assert_eq!(ran["data"]["taskExecution"]["status"], "ERROR", "{ran}");
    }
    let url = format!("/graphql?documentId={}&variables={}", urlencode(id), urlencode(&arn.to_string()));
    let by_get: Value = gateway
        .http
        .get(gateway.url(&url))
        .header("x-api-key", &frontend)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_get["data"]["taskExecution"]["status"], "ERROR", "{by_get}");
    let unknown = post_as(&gateway, Some(&frontend), json!({ "documentId": "sha256:0000" })).await;
    assert_eq!(error_codes(&unknown), ["PERSISTED_QUERY_NOT_FOUND"], "{unknown}");

    let metrics = scrape(&gateway).await;
    let requested = |operation| {
        value(&metrics, "datasync_gateway_trusted_documents_requested_total", &[("operation", operation)])
    };
    assert!(requested("TaskExecutionStatus") >= 5.0, "Apollo Client, 3 POSTs and a GET");
    assert!(requested("ExecutionHistoryPage") >= 1.0);
    let untrusted =
        |outcome| value(&metrics, "datasync_gateway_untrusted_operations_total", &[("outcome", outcome)]);
    assert_eq!((untrusted("refused"), untrusted("bypassed"), untrusted("audited")), (1.0, 2.0, 0.0));
    let _ = std::fs::remove_dir_all(&generated);
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).unwrap().trim_start_matches('=').to_owned()
}

#[tokio::test]
async fn audit_mode_runs_operations_that_are_not_trusted_and_counts_them() {
    // Apollo's manifest format, from a file.
    let manifest = temp_path("apollo.json");
    let operations = json!([{ "id": sha256(STATUS), "name": "Status", "type": "query", "body": STATUS }]);
    let apollo =
        json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations });
    std::fs::write(&manifest, apollo.to_string()).unwrap();
    let mut config = test_config();
    config.documents.path = Some(manifest.clone());
    config.documents.mode = TrustedDocumentsMode::Audit;
    let gateway = TestGateway::start_with(config).await;

    let arn = json!({ "arn": seeded::FAILED });
    let trusted = gateway.query(STATUS, arn.clone()).await;
    assert_eq!(trusted["data"]["taskExecution"]["status"], "ERROR", "{trusted}");
    // Two executions: the same request twice would be replayed from the response cache, which
    // counts no operation again.
    for arn in [seeded::FAILED, seeded::SUCCEEDED_BASIC] {
        let ad_hoc = gateway.query(AD_HOC, json!({ "arn": arn })).await;
        assert!(ad_hoc["data"]["taskExecution"]["status"].is_string(), "audit refuses nothing: {ad_hoc}");
    }

    let metrics = scrape(&gateway).await;
    let document = [("document", sha256(STATUS)), ("operation", "Status".to_owned())];
    let labels: Vec<(&str, &str)> = document.iter().map(|(key, value)| (*key, value.as_str())).collect();
    assert_eq!(value(&metrics, "datasync_gateway_trusted_documents_requested_total", &labels), 1.0);
    let audited = [("outcome", "audited")];
    assert_eq!(value(&metrics, "datasync_gateway_untrusted_operations_total", &audited), 2.0);
    let _ = std::fs::remove_file(manifest);
}

/// Until `request` answers as `expected` says, within 10 s: the gateway reloads on its own time.
async fn eventually(what: &str, mut request: impl AsyncFnMut() -> Value, expected: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = request().await;
        if expected(&answer) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: still {answer}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_document_removed_from_its_manifest_stops_running_once_the_gateway_reloads_it() {
    // Relay's format ({id: text}), in a directory of manifests; no authentication, under which
    // nobody may bypass enforcement (every caller is anonymous).
    let dir = temp_path("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("persisted_queries.json");
    replace_file(&manifest, &json!({ "status-v1": STATUS, "task-v1": TASK }).to_string());
    let mut config = test_config();
    config.documents.path = Some(dir.clone());
    config.documents.mode = TrustedDocumentsMode::Enforce;
    config.documents.reload_interval = Duration::from_millis(50);
    let gateway = TestGateway::start_with(config).await;

    let arn = json!({ "arn": seeded::FAILED });
    let status = json!({ "documentId": "status-v1", "variables": arn });
    let ran = post_as(&gateway, None, status.clone()).await;
    assert_eq!(ran["data"]["taskExecution"]["status"], "ERROR", "{ran}");
    let ad_hoc = post_as(&gateway, None, json!({ "query": AD_HOC, "variables": arn })).await;
    assert_eq!(error_codes(&ad_hoc), ["PERSISTED_QUERY_REQUIRED"], "an anonymous operator bypasses nothing");

    // Every transport passes the same gate: a multipart subscription that is not trusted ends
    // with the refusal.
    let subscription = json!({ "query": format!("subscription {{ taskExecutionUpdated(arn: \"{}\") {{ status }} }}", seeded::FAILED) });
    let multipart = gateway
        .http
        .post(gateway.url("/graphql"))
        .header("accept", "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0")
        .json(&subscription)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(multipart.contains("PERSISTED_QUERY_REQUIRED"), "{multipart}");

    replace_file(&manifest, &json!({ "task-v1": TASK }).to_string());
    eventually(
        "status-v1 after its removal",
        async || post_as(&gateway, None, status.clone()).await,
        |answer| error_codes(answer) == ["PERSISTED_QUERY_NOT_FOUND"],
    )
    .await;
    let by_text = gateway.query(STATUS, arn.clone()).await;
    assert_eq!(error_codes(&by_text), ["PERSISTED_QUERY_REQUIRED"], "{by_text}");
    let task = post_as(&gateway, None, json!({ "documentId": "task-v1", "variables": arn })).await;
    assert!(task["data"]["taskExecution"]["taskArn"].is_string(), "the other document still runs: {task}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sighup_makes_the_real_binary_read_its_manifests_again_at_once() {
    let manifest = temp_path("sighup.json");
    replace_file(&manifest, &json!({ "status-v1": STATUS }).to_string());
    let simulator = start_simulator().await;
    let database = test_database().await;
    // An hour between checks: only the signal can make this reload happen within the test.
    let args = [
        "--trusted-documents",
        manifest.to_str().unwrap(),
        "--trusted-documents-mode",
        "enforce",
        "--trusted-documents-reload-interval",
        "1h",
    ];
    let gateway = GatewayProcess::start("trusted-sighup", &simulator, &database, &args, &[]).await;
    let url = format!("http://{}/graphql", gateway.address);
    let status = json!({ "documentId": "status-v1", "variables": { "arn": seeded::FAILED } });
    let run = async || -> Value {
        reqwest::Client::new().post(&url).json(&status).send().await.unwrap().json().await.unwrap()
    };
    let ran = run().await;
    assert_eq!(ran["data"]["taskExecution"]["status"], "ERROR", "{ran}");

    replace_file(&manifest, &json!({ "task-v1": TASK }).to_string());
    gateway.signal("HUP");
    eventually("status-v1 after SIGHUP", run, |answer| error_codes(answer) == ["PERSISTED_QUERY_NOT_FOUND"])
        .await;
    let _ = std::fs::remove_file(manifest);
}

#[tokio::test]
async fn an_operators_ad_hoc_answer_is_never_replayed_to_a_caller_that_may_not_run_it() {
    let manifest = temp_path("replay.json");
    replace_file(&manifest, &json!({ "status-v1": STATUS }).to_string());
    let keys = temp_path("replay-keys.json");
    let reader = create_key(&keys, "reader", "frontend", &[]);
    let operator = create_key(&keys, "operator", "oncall", &[]);
    let mut config = test_config();
    config.auth.mode = Some(AuthMode::Required);
    config.auth.api_keys_file = Some(keys);
    config.documents.path = Some(manifest.clone());
    config.documents.mode = TrustedDocumentsMode::Enforce;
    let gateway = TestGateway::start_with(config).await;

    // The operator's answer is stored once read from the cache, then replayed to the operator.
    let ad_hoc = json!({ "query": AD_HOC, "variables": { "arn": seeded::FAILED } });
    for _ in 0..3 {
        let ran = post_as(&gateway, Some(&operator), ad_hoc.clone()).await;
        assert_eq!(ran["data"]["taskExecution"]["status"], "ERROR", "{ran}");
    }
    let replays = [("cache", "responses"), ("result", "hit")];
    assert!(value(&scrape(&gateway).await, "datasync_gateway_cache_lookups_total", &replays) >= 1.0);

    // The same bytes from a caller that may not run them: refused, not replayed.
    let refused = post_as(&gateway, Some(&reader), ad_hoc).await;
    assert_eq!(error_codes(&refused), ["PERSISTED_QUERY_REQUIRED"], "{refused}");
    let _ = std::fs::remove_file(manifest);
}

/// Over WebSocket, in both protocols, an operation names its trusted document by `documentId`
/// as over HTTP (async-graphql's protocol drops the field; the gateway carries it through), and
/// an ad-hoc one is refused as over HTTP.
#[tokio::test]
async fn websocket_operations_run_trusted_documents_by_document_id() {
    let manifest = temp_path("websocket.json");
    replace_file(&manifest, &json!({ "status-v1": STATUS }).to_string());
    let mut config = test_config();
    config.documents.path = Some(manifest.clone());
    config.documents.mode = TrustedDocumentsMode::Enforce;
    let gateway = TestGateway::start_with(config).await;
    let arn = json!({ "arn": seeded::FAILED });
    let within = Duration::from_secs(10);

    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut socket = connect(gateway.address, protocol).await;
        // By name without a query, as GraphQL over HTTP has it; by hash with an empty query, as
        // the graphql-ws client sends it (it refuses a payload whose query is not a string).
        let by_hash = format!("sha256:{}", sha256(STATUS));
        for (operation, payload) in [
            ("named", json!({ "documentId": "status-v1", "variables": arn })),
            ("hashed", json!({ "query": "", "documentId": by_hash, "variables": arn })),
        ] {
            socket.start(operation, payload).await;
            match socket.event_within(within).await {
                Event::Next(from, payload) => {
                    assert_eq!(from, operation);
                    assert_eq!(payload["data"]["taskExecution"]["status"], "ERROR", "{protocol}: {payload}");
                }
                other => panic!("{protocol}, {operation}: {other:?}"),
            }
            assert!(matches!(socket.event_within(within).await, Event::Complete(from) if from == operation));
        }

        socket.start("unknown", json!({ "documentId": "sha256:0000", "variables": arn })).await;
        let unknown = errors_of(&mut socket, "unknown").await;
        assert_eq!(unknown[0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{protocol}: {unknown}");
        socket.subscribe("ad-hoc", AD_HOC, arn.clone()).await;
        let refused = errors_of(&mut socket, "ad-hoc").await;
        assert_eq!(refused[0]["extensions"]["code"], "PERSISTED_QUERY_REQUIRED", "{protocol}: {refused}");
    }
    let _ = std::fs::remove_file(manifest);
}

/// The errors operation `id` answered with (as an `error` message, or a result with errors),
/// what other operations sent before skipped.
async fn errors_of(socket: &mut Subscriber, id: &str) -> Value {
    loop {
        match socket.event_within(Duration::from_secs(10)).await {
            Event::Error(from, errors) if from == id => return errors,
            Event::Next(from, payload) if from == id => return payload["errors"].clone(),
            Event::Closed(code) => panic!("closed ({code:?}) before {id} answered"),
            _ => {}
        }
    }
}
