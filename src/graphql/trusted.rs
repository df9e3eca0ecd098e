//! The gate's rule for trusted documents (`--trusted-documents-mode`): which operations may run
//! that are not among the documents frontends registered, and what is counted and logged.
//!
//! - `off`: every operation runs; trusted documents are counted when a request names one.
//! - `audit`: every operation runs; one that is not trusted is counted and logged with its hash,
//!   so that an operator can see what enforcing would refuse before doing it.
//! - `enforce`: one that is not trusted is refused (`PERSISTED_QUERY_REQUIRED`), unless its
//!   caller is an authenticated operator or listed in `--trusted-documents-bypass-keys`
//!   (GraphiQL for the on-call). Without authentication nobody bypasses: an anonymous caller is
//!   an operator only because nobody could be told apart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, ServerError};

use crate::config::{TrustedDocumentsConfig, TrustedDocumentsMode};
use crate::error::ErrorCode;
use crate::metrics::Metrics;
use crate::request::{Caller, Role};
use crate::service::documents::{Document, TrustedDocuments};

/// An unknown operation's hash is logged at most once in this time: an audit of a busy
/// gateway must not write a line per request.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Hashes remembered as reported; beyond, some are reported again sooner.
const REPORTED_CAPACITY: u64 = 10_000;

/// GraphQL over HTTP's `documentId`, which async-graphql's `Request` has no field for: the
/// transport that read it puts it in the request's data, and the gate resolves it.
#[derive(Clone, Debug)]
pub struct DocumentId(pub String);

impl DocumentId {
    /// The extension a WebSocket operation's `documentId` is carried in through async-graphql's
    /// protocol, which would drop it from the payload (`http::websocket`).
    pub const EXTENSION: &'static str = "documentId";

    /// Moves a `documentId` carried in `request`'s extensions into its data, for the gate, when
    /// the request has no query (one that has runs its text, as over HTTP).
    pub fn from_extensions(request: &mut Request) {
        if !request.query.is_empty() {
            return;
        }
        if let Some(async_graphql::Value::String(id)) = request.extensions.remove(Self::EXTENSION) {
            request.data.insert(DocumentId(id));
        }
    }
}

#[derive(Clone)]
pub struct TrustPolicy {
    documents: TrustedDocuments,
    mode: TrustedDocumentsMode,
    /// Callers' keys (`key:<id>`, `jwt:…`) that bypass enforcement.
    bypass: Arc<HashSet<String>>,
    metrics: Metrics,
    reported: moka::sync::Cache<String, ()>,
}

impl TrustPolicy {
    pub fn new(documents: TrustedDocuments, config: &TrustedDocumentsConfig, metrics: Metrics) -> Self {
        let bypass = config
            .bypass_keys
            .iter()
            .map(|key| if key.contains(':') { key.clone() } else { format!("key:{key}") })
            .collect();
        let reported =
            moka::sync::Cache::builder().max_capacity(REPORTED_CAPACITY).time_to_live(REPORT_EVERY).build();
        TrustPolicy { documents, mode: config.mode, bypass: Arc::new(bypass), metrics, reported }
    }

    /// The trusted document `id` names (with or without `sha256:`), or whose text's SHA-256 it is.
    pub fn get(&self, id: &str) -> Option<Arc<Document>> {
        self.documents.get(id)
    }

    /// Decides whether the operation `text` (whose SHA-256, in hex, is `sha256`) runs for
    /// `caller`: `known` is the trusted document the request named, if it named one.
    pub fn admit(
        &self,
        known: Option<&Document>,
        text: &str,
        sha256: &str,
        caller: &Caller,
    ) -> Result<(), ServerError> {
        if let Some(document) = known {
            self.metrics.trusted_document(&document.id, document.name.as_deref());
            return Ok(());
        }
        if self.mode == TrustedDocumentsMode::Off {
            return Ok(());
        }
        if let Some(document) = self.documents.with_text(sha256, text) {
            self.metrics.trusted_document(&document.id, document.name.as_deref());
            return Ok(());
        }
        let outcome = match self.mode {
            TrustedDocumentsMode::Enforce if !self.bypasses(caller) => "refused",
            TrustedDocumentsMode::Enforce => "bypassed",
            _ => "audited",
        };
        self.metrics.untrusted_operation(outcome);
        if !self.reported.contains_key(sha256) {
            self.reported.insert(sha256.to_owned(), ());
            tracing::warn!(
                sha256,
                caller = %caller.key(),
                outcome,
                "an operation that is not a trusted document (reported once a minute per hash)"
            );
        }
        if outcome != "refused" {
            return Ok(());
        }
        let message = format!(
            "only trusted documents run here: send a registered operation by its id (documentId, or \
             extensions.persistedQuery.sha256Hash) or its exact text; this operation's SHA-256 is {sha256}"
        );
        Err(ErrorCode::PersistedQueryRequired.error(&message))
    }

    /// What a stored response's key must hold of the trust rule for a replay to `caller` to
    /// answer only what the gate would let run: with enforcement, the documents served (their
    /// generation, which every reload moves) and whether the caller bypasses them; nothing
    /// otherwise, where everything runs.
    pub fn replay_scope(&self, caller: &Caller) -> u64 {
        if self.mode != TrustedDocumentsMode::Enforce {
            return 0;
        }
        (self.documents.generation() << 1) | u64::from(self.bypasses(caller))
    }

    fn bypasses(&self, caller: &Caller) -> bool {
        !caller.is_anonymous() && (caller.role() >= Role::Operator || self.bypass.contains(&**caller.key()))
    }
}
