//! Identity and roles: API keys made with the CLI, each way in refused with its code, roles,
//! WebSocket credentials in `connection_init`, and secure-by-default start-up. The gateway runs
//! as its own process here so that its log can be searched for keys.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use datasync_gateway::app::Application;
use datasync_gateway::config::AuthMode;
use datasync_gateway::simulator::fleet::seeded;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{start_simulator, test_config, test_database, ONE};

const GATEWAY: &str = env!("CARGO_BIN_EXE_datasync-gateway");

/// `datasync-gateway keys …` against `database_url`; its standard output.
async fn keys(database_url: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(GATEWAY)
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// POSTs `body` with `credential` in `Authorization`; status and JSON.
async fn post(
    address: SocketAddr,
    credential: Option<&str>,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().post(format!("http://{address}/graphql")).json(&body);
    if let Some(credential) = credential {
        request = request.header("authorization", credential);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, response.json().await.unwrap_or_default(), headers)
}

#[tokio::test]
async fn api_keys_from_the_cli_admit_by_role_and_every_other_way_in_is_refused_with_a_code() {
    let simulator = start_simulator().await;
    let database_url = test_database().await;
    // Migrated by the first `keys` call.
    let reader = keys(&database_url, &["create", "--role", "reader", "--name", "billing-service"])
        .await
        .trim()
        .to_owned();
    let operator = keys(&database_url, &["create", "--role", "operator", "--name", "ops-console"])
        .await
        .trim()
        .to_owned();
    let revoked =
        keys(&database_url, &["create", "--role", "reader", "--name", "old-service"]).await.trim().to_owned();
    let revoked_id = revoked.split('_').nth(1).unwrap().to_owned();
    keys(&database_url, &["revoke", &revoked_id]).await;
    let listed = keys(&database_url, &["list"]).await;
    for name in ["billing-service", "ops-console", "old-service"] {
        assert!(listed.contains(name), "{listed}");
    }
    for key in [&reader, &operator, &revoked] {
        assert!(!listed.contains(key.as_str()), "list never shows a key");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log_path = std::env::temp_dir().join(format!("gateway-auth-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut gateway = tokio::process::Command::new(GATEWAY)
        .args(["--log-format", "json", "serve", "--listen", &address.to_string(), "--auth", "required"])
        .args(["--discovery", "off"])
        .args([
            "--datasync-endpoint",
            &simulator.endpoint_url(),
            "--regions",
            "us-east-1,eu-west-1",
            "--fake-credentials",
        ])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("http://{address}/healthz")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the gateway never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let query = json!({ "query": ONE, "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    let wrong = format!("{}x", &reader[..reader.len() - 1]);
    for (credential, why) in [
        (None, "authentication required"),
        (Some(format!("Bearer {wrong}")), "unknown or revoked"),
        (Some(format!("Bearer {revoked}")), "unknown or revoked"),
        (Some("Bearer not-a-key".to_owned()), "not an API key"),
    ] {
        let (status, body, headers) = post(address, credential.as_deref(), query.clone()).await;
        assert_eq!(status, 401, "{credential:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{body}");
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    let (status, body, _) = post(address, Some(&format!("Bearer {reader}")), query.clone()).await;
    assert_eq!((status, &body["data"]["taskExecution"]["status"]), (200, &json!("SUCCESS")), "{body}");
    let mutation = json!({ "query": "mutation { cancelTaskExecution(arn: \"x\") { status } }" });
    let (_, body, _) = post(address, Some(&format!("Bearer {reader}")), mutation.clone()).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let (_, body, _) = post(address, Some(&format!("Bearer {operator}")), mutation).await;
    assert_ne!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "an operator passes the role check: {body}"
    );
    let with_header = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .header("x-api-key", &reader)
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), 200, "X-API-Key works too");

    for probe in ["/healthz", "/readyz", "/metrics", "/graphiql"] {
        let status = reqwest::get(format!("http://{address}{probe}")).await.unwrap().status();
        assert_eq!(status, 200, "{probe} needs no credentials");
    }

    // WebSocket: credentials in connection_init, or a 4401 close.
    let socket = |_: ()| async move {
        let mut request = format!("ws://{address}/graphql/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        tokio_tungstenite::connect_async(request).await.unwrap().0
    };
    let mut anonymous = socket(()).await;
    anonymous.send(Message::Text(json!({ "type": "connection_init" }).to_string().into())).await.unwrap();
    match anonymous.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4401, "{frame:?}"),
        other => panic!("expected a 4401 close, got {other:?}"),
    }
    let mut authenticated = socket(()).await;
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {reader}") } });
    authenticated.send(Message::Text(init.to_string().into())).await.unwrap();
    let ack: Value = match authenticated.next().await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected the ack, got {other:?}"),
    };
    assert_eq!(ack["type"], "connection_ack");

    gateway.kill().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("--log-format json: {line}")))
        .collect();
    assert!(lines.len() > 10, "the debug log was written: {} lines", lines.len());
    assert!(
        lines.iter().all(|line| line["level"].is_string() && line["fields"].is_object()),
        "{:?}",
        lines[0]
    );
    for key in [&reader, &operator, &revoked, &wrong] {
        // dsg_<id>_<secret>; the secret (base64url) may itself hold '_'.
        let secret = key.splitn(3, '_').nth(2).unwrap();
        assert!(secret.len() >= 40, "{secret}");
        assert!(!log.contains(secret), "a key's secret appears in the log");
    }
}

#[tokio::test]
async fn reachable_from_other_hosts_it_will_not_start_open_unless_told_to() {
    let mut config = test_config();
    config.listen = "0.0.0.0:0".parse().unwrap();
    let refused = Application::build(config.clone()).await.err().expect("refuses to start");
    assert!(refused.to_string().contains("--auth=none"), "{refused}");

    config.auth.mode = Some(AuthMode::None);
    assert!(Application::build(config).await.is_ok(), "--auth=none on purpose");
}
