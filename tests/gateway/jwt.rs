//! JWT bearer tokens against a JWKS served by the test itself (Ed25519 keys made here):
//! audience, issuer, expiry, roles, and key rotation at the identity provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use datasync_gateway::simulator::fleet::seeded;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use crate::common::{test_config, TestGateway, ONE};

const ISSUER: &str = "https://idp.example.internal/";
const AUDIENCE: &str = "datasync-gateway";

/// A signing key and its public JWK.
struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn signing_key(kid: &str) -> SigningKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" });
    SigningKey { kid: kid.to_owned(), pkcs8: pkcs8.as_ref().to_vec(), jwk }
}

fn token(key: &SigningKey, claims: Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    encode(&header, &claims, &EncodingKey::from_ed_der(&key.pkcs8)).unwrap()
}

fn claims(role: &str, audience: &str, issuer: &str, expires_in: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": "svc-42", "iss": issuer, "aud": audience, "exp": now + expires_in, "iat": now, "role": role })
}

/// Serves `{"keys": …}` from `published` on a free port; its URL.
async fn jwks_server(published: Arc<Mutex<Vec<Value>>>) -> String {
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let keys = published.lock().unwrap().clone();
            async move { axum::Json(json!({ "keys": keys })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/.well-known/jwks.json")
}

async fn post(gateway: &TestGateway, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(gateway.url("/graphql"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn jwts_are_checked_for_signature_audience_issuer_expiry_and_role_and_survive_key_rotation() {
    let first = signing_key("key-1");
    let published = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let mut config = test_config();
    config.auth.jwt.jwt_jwks_url = Some(jwks_server(published.clone()).await);
    config.auth.jwt.jwt_issuer = Some(ISSUER.into());
    config.auth.jwt.jwt_audience = Some(AUDIENCE.into());
    let gateway = TestGateway::start_with(config).await;
    let query = json!({ "query": ONE, "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    let mutation = json!({ "query": "mutation { cancelTaskExecution(arn: \"x\") { status } }" });

    let reader = token(&first, claims("reader", AUDIENCE, ISSUER, 3600));
    let (status, body) = post(&gateway, &reader, &query).await;
    assert_eq!((status, &body["data"]["taskExecution"]["status"]), (200, &json!("SUCCESS")), "{body}");
    let (_, body) = post(&gateway, &reader, &mutation).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let operator = token(&first, claims("operator", AUDIENCE, ISSUER, 3600));
    let (_, body) = post(&gateway, &operator, &mutation).await;
    assert_ne!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");

    let outsider = signing_key("key-1");
    for (bad, why) in [
        (token(&first, claims("reader", AUDIENCE, ISSUER, -600)), "expired"),
        (token(&first, claims("reader", "another-service", ISSUER, 3600)), "audience"),
        (token(&first, claims("reader", AUDIENCE, "https://evil.example/", 3600)), "issuer"),
        (token(&outsider, claims("operator", AUDIENCE, ISSUER, 3600)), "signature"),
    ] {
        let (status, body) = post(&gateway, &bad, &query).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{why}: {body}");
    }
    // Within the clock-skew leeway (60 s), an expired token still passes.
    let (status, _) = post(&gateway, &token(&first, claims("reader", AUDIENCE, ISSUER, -30)), &query).await;
    assert_eq!(status, 200);

    // The identity provider rotates: a new key, the old one withdrawn.
    let second = signing_key("key-2");
    *published.lock().unwrap() = vec![second.jwk.clone()];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = token(&second, claims("reader", AUDIENCE, ISSUER, 3600));
    let (status, body) = post(&gateway, &rotated, &query).await;
    assert_eq!(status, 200, "a token of the new key is taken after fetching the JWKS again: {body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = post(&gateway, &reader, &query).await;
    assert_eq!(status, 401, "the withdrawn key's tokens are refused: {body}");
}

#[tokio::test]
async fn a_token_sees_the_accounts_its_claim_names_and_one_without_the_claim_is_refused() {
    let key = signing_key("key-1");
    let published = Arc::new(Mutex::new(vec![key.jwk.clone()]));
    let mut config = test_config();
    config.auth.jwt.jwt_jwks_url = Some(jwks_server(published).await);
    config.auth.jwt.jwt_accounts_claim = Some("datasync_accounts".into());
    let gateway = TestGateway::start_with(config).await;
    let query = json!({ "query": ONE, "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    let with = |accounts: Value| {
        let mut claims = claims("reader", AUDIENCE, ISSUER, 3600);
        claims["datasync_accounts"] = accounts;
        token(&key, claims)
    };

    // The seeded execution's account, as a list, a string, or `*`: it is seen.
    for accounts in [json!(["111122223333"]), json!("444455556666 111122223333"), json!("*")] {
        let (status, body) = post(&gateway, &with(accounts.clone()), &query).await;
        assert_eq!(
            (status, &body["data"]["taskExecution"]["status"]),
            (200, &json!("SUCCESS")),
            "{accounts}: {body}"
        );
    }
    // Another account only: as if the execution did not exist.
    let (status, body) = post(&gateway, &with(json!(["444455556666"])), &query).await;
    assert_eq!(status, 200);
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    // No claim, or one that names no account: refused.
    for (token, why) in [
        (token(&key, claims("reader", AUDIENCE, ISSUER, 3600)), "missing"),
        (with(json!(["not-an-account"])), "12-digit"),
        (with(json!([])), "no account"),
    ] {
        let (status, body) = post(&gateway, &token, &query).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{why}: {body}");
    }
}
