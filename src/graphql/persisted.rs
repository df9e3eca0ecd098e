//! Automatic persisted queries (Apollo's protocol): a client sends the SHA-256 of its query, and
//! the query itself only the first time, so a repeated query fits in a cacheable GET URL. The
//! same extension names a trusted document by its hash; the [`Gate`](super::Gate) looks there
//! first.
//!
//! Done here rather than with async-graphql's extension: any extension makes async-graphql
//! take its slow path for every field of every query (measured: cached reads with 64 in flight
//! fell from ~19,000 to ~8,400 requests a second).

use std::sync::Arc;

use async_graphql::{Request, ServerError};

use crate::error::ErrorCode;
use crate::service::documents::manifest::{document_id, sha256_hex};

/// Bytes of queries kept, least recently used dropped first: a count alone let 1,000 documents
/// of up to `--max-body-bytes` each take 64 MiB that nothing counted.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;
/// What one entry weighs beside its hash and text (the cache's node, the `Arc`).
const ENTRY_BYTES: usize = 256;

#[derive(Clone)]
pub struct PersistedQueries {
    queries: moka::sync::Cache<String, Arc<str>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: i64,
    sha256_hash: String,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        let queries = moka::sync::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|hash: &String, query: &Arc<str>| {
                u32::try_from(hash.len() + query.len() + ENTRY_BYTES).unwrap_or(u32::MAX)
            })
            .build();
        PersistedQueries { queries }
    }
}

/// What a request's `persistedQuery` extension asked for.
pub struct Requested {
    /// The SHA-256 of the query, in hex, without a `sha256:` prefix.
    pub hash: String,
    /// Whether the query came with it (to be kept under its hash once admitted), or is to be
    /// found by the hash.
    pub with_query: bool,
}

/// Takes the `persistedQuery` extension off `request`: `None` for a request without one; a
/// hash sent with a query must be the query's.
pub fn requested(request: &mut Request) -> Result<Option<Requested>, ServerError> {
    let Some(extension) = request.extensions.remove("persistedQuery") else { return Ok(None) };
    let persisted: PersistedQuery =
        extension.into_json().ok().and_then(|json| serde_json::from_value(json).ok()).ok_or_else(|| {
            ErrorCode::GraphqlValidationFailed
                .error("extensions.persistedQuery must be {version, sha256Hash}")
        })?;
    if persisted.version != 1 {
        return Err(
            ErrorCode::GraphqlValidationFailed.error("only version 1 of persisted queries is supported")
        );
    }
    let hash = document_id(&persisted.sha256_hash).to_owned();
    let with_query = !request.query.is_empty();
    if with_query && sha256_hex(&request.query) != hash {
        return Err(ErrorCode::GraphqlValidationFailed.error("provided sha does not match query"));
    }
    Ok(Some(Requested { hash, with_query }))
}

impl PersistedQueries {
    /// Documents kept, and what they weigh in bytes, for `/metrics`.
    pub fn size(&self) -> (u64, u64) {
        self.queries.run_pending_tasks();
        (self.queries.entry_count(), self.queries.weighted_size())
    }

    /// The query a hash stands for, if a client sent it with its hash before.
    pub fn get(&self, hash: &str) -> Result<Arc<str>, ServerError> {
        self.queries
            .get(hash)
            .ok_or_else(|| ErrorCode::PersistedQueryNotFound.error("PersistedQueryNotFound"))
    }

    /// Keeps `query` under its hash, for the requests that will send only the hash.
    pub fn remember(&self, hash: String, query: &str) {
        self.queries.insert(hash, query.into());
    }
}
