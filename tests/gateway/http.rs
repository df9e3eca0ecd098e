//! The HTTP surface around GraphQL: GET queries, GraphiQL, probes.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{graphql, TestGateway};

#[tokio::test]
async fn queries_can_be_sent_with_get() {
    let gateway = TestGateway::start().await;
    let query = format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", seeded::FAILED);
    let response =
        reqwest::Client::new().get(gateway.url("/graphql")).query(&[("query", query)]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["taskExecution"]["status"], "ERROR");
}

#[tokio::test]
async fn the_probes_answer() {
    let gateway = TestGateway::start().await;
    let health = gateway.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["history"]["configured"], false, "no database: {ready}");
    assert_eq!(gateway.describe_calls(), 0, "probes do not call DataSync");
}

/// The page without its `<!-- … -->` comments (the template's describes its elements).
fn without_comments(page: &str) -> String {
    let mut rest = page;
    let mut kept = String::new();
    while let Some(start) = rest.find("<!--") {
        kept.push_str(&rest[..start]);
        let end = rest[start..].find("-->").expect("a comment is closed");
        rest = &rest[start + end + 3..];
    }
    kept + rest
}

/// The JSON object of the page's `<script type="application/json" id="graphiql-config">`.
fn graphiql_config(page: &str) -> Value {
    let page = without_comments(page);
    let open = r#"<script type="application/json" id="graphiql-config">"#;
    let start = page.find(open).unwrap_or_else(|| panic!("no config element in {page}")) + open.len();
    let end = start + page[start..].find("</script>").expect("the config element is closed");
    serde_json::from_str(&page[start..end]).unwrap_or_else(|error| panic!("{error}: {}", &page[start..end]))
}

/// Every `<script …>` opening tag of the page.
fn script_tags(page: &str) -> Vec<&str> {
    page.match_indices("<script").map(|(at, _)| &page[at..at + page[at..].find('>').unwrap() + 1]).collect()
}

/// What GraphiQL is told to talk to answers there: the page's settings name the GraphQL
/// endpoint and the WebSocket endpoint that this gateway serves, every script and style it
/// names is served (200, its content type, the vendored bytes), and the page runs under its
/// Content-Security-Policy: no script of the page is inline, none comes from elsewhere.
#[tokio::test]
async fn graphiql_is_served_with_settings_and_assets_that_work_here() {
    let gateway = TestGateway::start().await;
    let response = gateway.get("/graphiql").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap().to_owned();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'self'"), "{csp}");
    assert!(directives.contains(&"script-src 'self'"), "scripts from this origin only, none inline: {csp}");
    assert!(directives.contains(&"connect-src 'self'"), "{csp}");
    let page = without_comments(&response.text().await.unwrap());
    assert!(!page.contains("{{CONFIG_JSON}}"), "the template's placeholder was filled");

    // Under `script-src 'self'` an inline script would not run: each <script> is a same-origin
    // file, or the settings (data, not code).
    let tags = script_tags(&page);
    assert!(tags.len() >= 6, "{tags:?}");
    for tag in &tags {
        assert!(
            tag.contains(r#" src="/graphiql/assets/"#) || tag.contains(r#"type="application/json""#),
            "a script the policy would block: {tag}"
        );
    }

    // The settings: this gateway has no built-in simulator, so no example query.
    let config = graphiql_config(&page);
    assert_eq!(
        config.get("defaultQuery"),
        Some(&Value::Null),
        "present, and null without the simulator: {config}"
    );
    let endpoint = config["endpoint"].as_str().unwrap_or_else(|| panic!("{config}"));
    let query = format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", seeded::FAILED);
    let answer = graphql(&gateway.url(endpoint), &query, json!({})).await;
    assert_eq!(
        answer["data"]["taskExecution"]["status"], "ERROR",
        "the page's endpoint {endpoint}: {answer}"
    );
    let subscriptions = config["subscriptionEndpoint"].as_str().unwrap_or_else(|| panic!("{config}"));
    subscription_endpoint_acknowledges(&gateway, subscriptions).await;

    // Every asset the page names, as the browser would ask for it.
    let assets: Vec<&str> = page
        .match_indices("/graphiql/assets/")
        .map(|(at, _)| &page[at..at + page[at..].find('"').unwrap()])
        .collect();
    assert!(assets.len() >= 6, "{assets:?}");
    for asset in assets {
        let response = gateway.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if asset.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(content_type, expected, "{asset}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{asset}");
        let file = asset.trim_start_matches("/graphiql/assets/");
        let vendored =
            std::fs::read(format!("{}/assets/graphiql/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(response.bytes().await.unwrap() == vendored, "{asset} is the vendored file");
    }
    assert_eq!(gateway.get("/graphiql/assets/index.html").await.status(), 404, "only the listed assets");
}

/// `graphql-transport-ws` at `path` (what GraphiQL's graphql-ws client speaks) accepts a
/// connection.
async fn subscription_endpoint_acknowledges(gateway: &TestGateway, path: &str) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let mut request = format!("ws://{}{path}", gateway.address).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .unwrap_or_else(|error| panic!("the page's subscription endpoint {path}: {error}"));
    socket.send(Message::Text(json!({ "type": "connection_init" }).to_string().into())).await.unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.unwrap();
    let ack: Value = serde_json::from_str(ack.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ack["type"], "connection_ack", "{path}: {ack}");
}

/// With the built-in simulator, the editor opens on its example query, as the settings say.
#[tokio::test]
async fn graphiql_opens_on_the_simulator_s_example_query_when_there_is_one() {
    let mut config = crate::common::test_config();
    config.datasync.simulator = true;
    let (address, _server) = crate::common::spawn_gateway(config).await;
    let page = reqwest::get(format!("http://{address}/graphiql")).await.unwrap().text().await.unwrap();
    let config = graphiql_config(&page);
    assert_eq!(config["defaultQuery"], datasync_gateway::simulator::fleet::EXAMPLE_QUERY, "{config}");
}
