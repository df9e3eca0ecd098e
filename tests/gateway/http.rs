//! The HTTP surface around GraphQL: GET queries, GraphiQL, probes.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::Value;

use crate::common::TestGateway;

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
async fn graphiql_and_the_probes_answer() {
    let gateway = TestGateway::start().await;
    // What the page does is proven in a browser (front_door.rs); here, that it is served with
    // the headers that keep it to its own origin.
    let graphiql = gateway.get("/graphiql").await;
    assert_eq!(graphiql.status(), 200);
    let headers = graphiql.headers();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{headers:?}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let health = gateway.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["history"]["configured"], false, "no database: {ready}");
    assert_eq!(gateway.describe_calls(), 0, "probes do not call DataSync");
}
