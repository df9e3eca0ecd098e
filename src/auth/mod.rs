//! Who is calling: API keys ([`keys`]) and JWT bearer tokens ([`jwt`]), mapped to a role.
//!
//! - `reader`: queries and subscriptions; `operator`: mutations too.
//! - Credentials come as `Authorization: Bearer <key or token>` (or `X-API-Key: <key>`); on a
//!   WebSocket, in `connection_init`'s payload (`{"Authorization": "Bearer …"}`), since browsers
//!   cannot set headers on one.
//! - With authentication off (`--auth=none`, or the zero-config loopback default), every
//!   caller is an anonymous operator, as before identities existed.
//!
//! Produces a [`crate::request::Identity`]. May import: `request`, `store` (the keys table),
//! `model`, `config`, `error`, `metrics`.

mod failures;
pub mod jwt;
pub mod keys;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use failures::FailedAuthentications;
use keys::{KeyRecord, KeyStore, VERIFIED_FOR};

use crate::config::{AuthMode, Config};
use crate::metrics::{CacheLookups, Metrics};
use crate::request::{AccountScope, Identity, Role};
use crate::store::keys::KeyTable;

/// Why a caller was not let in; the message is safe to show (it never echoes the credential).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthenticated(pub String);

/// Authenticates credentials, remembering recent answers.
#[derive(Clone)]
pub struct Authenticator {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    keys: Option<KeyStore>,
    jwt: Option<jwt::JwtVerifier>,
    /// By SHA-256 of the credential: who it was (or that it was refused) a moment ago.
    recent: moka::sync::Cache<[u8; 32], Result<Identity, Unauthenticated>>,
    /// Key records by id, as looked up (`None`: no such id), for `VERIFIED_FOR`: a known id
    /// with a wrong secret, or an unknown id tried again, costs no query.
    records: moka::sync::Cache<String, Option<KeyRecord>>,
    failures: FailedAuthentications,
    /// Counts key-record lookups as the `api_keys` cache's misses: each is a query.
    lookups: CacheLookups,
}

/// The key-record cache's name in `/metrics`.
const KEY_RECORDS: &str = "api_keys";

/// Why a request's credential was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, malformed, unknown, expired or revoked: 401.
    Unauthenticated(Unauthenticated),
    /// This address failed too often lately, and nothing was looked up: 429, retry in so many
    /// seconds.
    TooManyFailures(u64),
}

impl From<Unauthenticated> for Refusal {
    fn from(refusal: Unauthenticated) -> Self {
        Refusal::Unauthenticated(refusal)
    }
}

/// How long a refused credential is remembered, so a flood of bad keys costs no queries.
const REFUSED_FOR: Duration = Duration::from_secs(5);

impl Authenticator {
    /// Everyone is an anonymous operator.
    pub fn open() -> Self {
        Authenticator { inner: None }
    }

    /// Credentials required: API keys checked against `keys`, JWTs by `jwt`.
    pub fn required(keys: Option<KeyStore>, jwt: Option<jwt::JwtVerifier>, metrics: Metrics) -> Self {
        let recent = moka::sync::Cache::builder().max_capacity(10_000).expire_after(RecentExpiry).build();
        let records = moka::sync::Cache::builder().max_capacity(10_000).time_to_live(VERIFIED_FOR).build();
        let failures = FailedAuthentications::default();
        metrics.cache_created(KEY_RECORDS);
        let lookups = metrics.cache_lookups(KEY_RECORDS);
        Authenticator { inner: Some(Arc::new(Inner { keys, jwt, recent, records, failures, lookups })) }
    }

    pub fn is_required(&self) -> bool {
        self.inner.is_some()
    }

    /// Who `credential` (the value of `Authorization`, or a bare key) from `peer` is. An
    /// address that failed too often lately is refused before anything is looked up (an answer
    /// remembered for the very credential still counts).
    pub async fn authenticate(&self, credential: Option<&str>, peer: IpAddr) -> Result<Identity, Refusal> {
        let Some(inner) = &self.inner else { return Ok(Identity::anonymous()) };
        let Some(credential) = credential.map(bearer).filter(|credential| !credential.is_empty()) else {
            return Err(Unauthenticated(
                "authentication required: send `Authorization: Bearer <API key or JWT>`".into(),
            )
            .into());
        };
        // A JWT is checked each time (a signature, no I/O once its keys are known), so that its
        // expiry is never outlived by a remembered answer; API keys cost a lookup, remembered.
        let jwt = inner.jwt.as_ref().filter(|_| jwt::JwtVerifier::looks_like_jwt(credential));
        let digest: Option<[u8; 32]> = jwt.is_none().then(|| Sha256::digest(credential.as_bytes()).into());
        if let Some(known) = digest.and_then(|digest| inner.recent.get(&digest)) {
            return known.map_err(Refusal::from);
        }
        if let Some(seconds) = inner.failures.refused_for(peer) {
            return Err(Refusal::TooManyFailures(seconds));
        }
        // Boxed: a key's lookup (a query) and a JWT's check (which may fetch its keys) are large
        // futures that every request's future would otherwise carry, a replay's too.
        let (answer, cacheable) = match jwt {
            Some(jwt) => (Box::pin(jwt.verify(credential)).await, false),
            None => Box::pin(inner.check(credential)).await,
        };
        if let Some(digest) = digest.filter(|_| cacheable) {
            inner.recent.insert(digest, answer.clone());
        }
        // A refusal for the credential itself counts; "cannot be checked right now" does not.
        if answer.is_err() && (cacheable || jwt.is_some()) {
            inner.failures.failed(peer);
        }
        answer.map_err(Refusal::from)
    }
}

/// The authenticator `config` asks for. Secure by default: a gateway reachable from other
/// hosts refuses to start without a way to check credentials, unless `--auth=none` says so.
pub fn from_config(
    config: &Config,
    table: Option<KeyTable>,
    metrics: &Metrics,
) -> anyhow::Result<Authenticator> {
    let keys = match (&config.auth.api_keys_file, table) {
        (Some(path), _) => Some(KeyStore::File(path.clone())),
        (None, Some(table)) => Some(KeyStore::Database(table)),
        (None, None) => None,
    };
    let jwt = config.auth.jwt.jwt_jwks_url.as_deref().map(|url| jwt::JwtVerifier::new(&config.auth.jwt, url));
    let private = config.listen.ip().is_loopback() || config.datasync.simulator;
    let required = match config.auth.mode {
        Some(AuthMode::None) => false,
        Some(AuthMode::Required) => true,
        None if private => config.auth.api_keys_file.is_some() || jwt.is_some(),
        None => true,
    };
    if !required {
        if !private {
            tracing::warn!(listen = %config.listen, "--auth=none: anyone who can reach this address is an operator");
        }
        return Ok(Authenticator::open());
    }
    if keys.is_none() && jwt.is_none() {
        anyhow::bail!(
            "serving on {} needs authentication, and there is no way to check credentials: give \
             --database-url or --api-keys-file for API keys, or --jwt-jwks-url for JWTs, or pass \
             --auth=none on purpose",
            config.listen
        );
    }
    Ok(Authenticator::required(keys, jwt, metrics.clone()))
}

impl Inner {
    /// The answer, and whether it may be remembered (not when the keys could not be read).
    async fn check(&self, credential: &str) -> (Result<Identity, Unauthenticated>, bool) {
        let refuse = |message: &str| Err(Unauthenticated(message.into()));
        if let Some(id) = keys::key_id(credential) {
            let Some(keys) = &self.keys else {
                return (refuse("API keys are not configured on this gateway"), true);
            };
            let cached = self.records.get(id);
            self.lookups.count(if cached.is_some() { "hit" } else { "miss" });
            let record = match cached {
                Some(record) => record,
                None => match keys.record(id).await {
                    Ok(record) => {
                        self.records.insert(id.to_owned(), record.clone());
                        record
                    }
                    Err(error) => {
                        tracing::warn!(%error, "API keys could not be read");
                        return (refuse("API keys cannot be checked right now; retry later"), false);
                    }
                },
            };
            return match record.filter(|record| record.is_live_key(credential)) {
                Some(record) => {
                    let accounts = AccountScope::only(record.accounts.clone());
                    (
                        Ok(Identity {
                            subject: format!("key:{}", record.id).into(),
                            role: record.role,
                            accounts,
                        }),
                        true,
                    )
                }
                None => (refuse("unknown or revoked API key"), true),
            };
        }
        (refuse("not an API key (dsg_…) or a JWT this gateway accepts"), true)
    }
}

/// `Bearer <x>` → `<x>`; anything else as it is (a bare key in `X-API-Key`).
fn bearer(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    }
}

/// Verified identities are trusted for `VERIFIED_FOR`, refusals for `REFUSED_FOR`.
struct RecentExpiry;

impl moka::Expiry<[u8; 32], Result<Identity, Unauthenticated>> for RecentExpiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        value: &Result<Identity, Unauthenticated>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.is_ok() { VERIFIED_FOR } else { REFUSED_FOR })
    }
}
