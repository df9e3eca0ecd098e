//! JWT bearer tokens, validated against a JWKS URL: signature by the key the token's `kid`
//! names, `iss`, `aud`, `exp`/`nbf` with a clock-skew leeway; the role from a claim. Keys are
//! fetched at the first token, kept for ten minutes, and fetched again at once when a token
//! names a `kid` not known yet (an identity provider rotating its keys), at most once a second.
//! With `--jwt-accounts-claim`, a token's accounts come from that claim; a token without it is
//! refused, so that an identity provider that forgets the claim grants nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;

use super::{Identity, Role, Unauthenticated};
use crate::config::JwtConfig;
use crate::model::AccountId;
use crate::request::AccountScope;

const KEYS_FOR: Duration = Duration::from_secs(600);
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct JwtVerifier {
    jwks_url: String,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    role_claim: String,
    accounts_claim: Option<String>,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig, jwks_url: &str) -> Self {
        JwtVerifier {
            jwks_url: jwks_url.to_owned(),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway: config.jwt_leeway,
            role_claim: config.jwt_role_claim.clone(),
            accounts_claim: config.jwt_accounts_claim.clone(),
            http: reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default(),
            keys: Mutex::default(),
        }
    }

    /// Whether `credential` has the shape of a JWT (three base64url parts).
    pub fn looks_like_jwt(credential: &str) -> bool {
        credential.split('.').count() == 3
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, Unauthenticated> {
        let refuse = |message: &str| Unauthenticated(message.into());
        let header = decode_header(token).map_err(|_| refuse("not a valid JWT"))?;
        let kid = header.kid.ok_or_else(|| refuse("the JWT has no `kid`"))?;
        let (key, algorithm) = self.key(&kid).await?;
        if header.alg != algorithm {
            return Err(refuse("the JWT's algorithm is not its key's"));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|error| {
                refuse(match error.kind() {
                    ErrorKind::ExpiredSignature => "the JWT has expired",
                    ErrorKind::ImmatureSignature => "the JWT is not valid yet",
                    ErrorKind::InvalidAudience => "the JWT is not for this audience",
                    ErrorKind::InvalidIssuer => "the JWT is not from the expected issuer",
                    ErrorKind::InvalidSignature => "the JWT's signature does not verify",
                    ErrorKind::MissingRequiredClaim(_) => "the JWT lacks a required claim (exp, sub)",
                    _ => "the JWT is not valid",
                })
            })?
            .claims;
        let subject = claims["sub"].as_str().unwrap_or_default();
        let issuer = claims["iss"].as_str().unwrap_or("-");
        let accounts = match &self.accounts_claim {
            None => AccountScope::All,
            Some(name) => accounts(claims.get(name))
                .map_err(|why| refuse(&format!("the JWT's `{name}` claim {why}")))?,
        };
        Ok(Identity {
            subject: format!("jwt:{issuer}/{subject}").into(),
            role: self.role(&claims[&self.role_claim]),
            accounts,
        })
    }

    /// `operator` if the claim is, or lists, "operator"; otherwise `reader`.
    fn role(&self, claim: &serde_json::Value) -> Role {
        let values: Vec<&str> = match claim {
            serde_json::Value::String(value) => value.split(' ').collect(),
            serde_json::Value::Array(values) => values.iter().filter_map(serde_json::Value::as_str).collect(),
            _ => Vec::new(),
        };
        if values.contains(&"operator") {
            Role::Operator
        } else {
            Role::Reader
        }
    }

    /// The key `kid` names, fetching the JWKS when it is unknown or old.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), Unauthenticated> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched_at.is_none_or(|at| at.elapsed() > KEYS_FOR);
        let may_refetch = keys.fetched_at.is_none_or(|at| at.elapsed() >= REFETCH_AT_MOST_EVERY);
        if stale || (!keys.by_kid.contains_key(kid) && may_refetch) {
            match self.fetch().await {
                Ok(by_kid) => *keys = Keys { by_kid, fetched_at: Some(Instant::now()) },
                Err(error) => {
                    tracing::warn!(url = %self.jwks_url, %error, "could not fetch the JWKS");
                    if keys.by_kid.is_empty() {
                        return Err(Unauthenticated(
                            "the token's keys cannot be fetched right now; retry later".into(),
                        ));
                    }
                }
            }
        }
        keys.by_kid.get(kid).cloned().ok_or_else(|| Unauthenticated("the JWT's key (kid) is unknown".into()))
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, reqwest::Error> {
        let set: JwkSet = self.http.get(&self.jwks_url).send().await?.error_for_status()?.json().await?;
        Ok(set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, decoding_key(jwk)?))).collect())
    }
}

/// A JWK the gateway can verify with, and its algorithm (named by the key, or implied by it).
fn decoding_key(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    let algorithm = match (jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(algorithm), _) => algorithm.to_string().parse().ok()?,
        (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
        (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
        _ => return None,
    };
    Some((DecodingKey::from_jwk(jwk).ok()?, algorithm))
}

/// The accounts an accounts claim grants: `*` for every account, else 12-digit ids, as a list
/// or one string separated by spaces or commas.
fn accounts(claim: Option<&serde_json::Value>) -> Result<AccountScope, &'static str> {
    let values: Vec<&str> = match claim {
        None => return Err("is missing (it names the accounts the token may see, or `*`)"),
        Some(serde_json::Value::String(value)) => value.split([' ', ',']).filter(|v| !v.is_empty()).collect(),
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .map(|value| value.as_str().ok_or("lists something other than strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("is neither a string nor a list"),
    };
    if values == ["*"] {
        return Ok(AccountScope::All);
    }
    let accounts: Vec<AccountId> = values
        .iter()
        .map(|value| AccountId::parse(value))
        .collect::<Result<_, _>>()
        .map_err(|_| "names something other than a 12-digit account id")?;
    if accounts.is_empty() {
        return Err("names no account");
    }
    Ok(AccountScope::only(accounts))
}
