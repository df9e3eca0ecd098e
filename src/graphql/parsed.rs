//! Parsed documents, kept by the SHA-256 of their text (the hash trusted documents and persisted
//! queries are named by, computed once per request by the [`Gate`](super::Gate)): the same
//! operation with other variables (a dashboard's poll, each page of history, a trusted document)
//! skips parsing and the limits' measure of its fragments. Each request gets a copy of the
//! document, which async-graphql takes and consumes when it executes.
//!
//! Only what depends on the text alone is kept: the document, its [`Measure`], and which
//! schemas it has run under (so passed every validation rule of: [`Schemas`](super::Schemas)).
//! The limits are judged on every request by the gate that admits it (its own limits, the
//! request's variables).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::ServerError;

use super::doorkeeper::Doorkeeper;
use super::limits::{measure, Measure};
use super::parser::parse_query;

/// Memory for kept documents, least used dropped first.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;
/// A parsed document's nodes (a position, a name's `Arc`, vectors of arguments, directives and
/// selections) take several times its text: each field of 10 to 20 bytes of text becomes a
/// node of about 200.
const BYTES_PER_TEXT_BYTE: usize = 16;
/// What an entry weighs beside that: its hash, the cache's node, the `Arc`s.
const ENTRY_BYTES: usize = 512;

/// A document as parsed and measured.
pub struct Parsed {
    pub document: ExecutableDocument,
    pub measure: Measure,
    /// The text's length, which the entry is weighed by.
    text_bytes: usize,
    /// The id of the [`Schemas`](super::Schemas) it last ran under (0: none yet).
    ran_under: AtomicU64,
}

impl Parsed {
    pub fn ran_under(&self) -> u64 {
        self.ran_under.load(Ordering::Relaxed)
    }

    pub fn ran(&self, schemas: u64) {
        self.ran_under.store(schemas, Ordering::Relaxed);
    }
}

/// Texts remembered as seen lately, by a fingerprint of their hash.
const SEEN_SLOTS: usize = 64 * 1024;

#[derive(Clone)]
pub struct ParsedDocuments {
    documents: moka::sync::Cache<String, Arc<Parsed>, foldhash::fast::RandomState>,
    /// A text is kept from its second request on.
    seen: Doorkeeper,
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        let documents = moka::sync::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|sha256: &String, parsed: &Arc<Parsed>| {
                let bytes = sha256.len() + parsed.text_bytes * BYTES_PER_TEXT_BYTE + ENTRY_BYTES;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        ParsedDocuments { documents, seen: Doorkeeper::new(SEEN_SLOTS) }
    }
}

impl ParsedDocuments {
    /// `text` (whose SHA-256, in hex, is `sha256`) parsed and measured: kept from an earlier
    /// request, or done now (and kept if the text was seen before). A text that does not parse,
    /// or whose fragments nest too deep or spread themselves, is refused and not kept.
    pub fn get(&self, sha256: &str, text: &str) -> Result<Arc<Parsed>, ServerError> {
        if let Some(parsed) = self.documents.get(sha256) {
            return Ok(parsed);
        }
        let document = parse_query(text)?;
        let measure = measure(&document)?;
        let parsed =
            Arc::new(Parsed { document, measure, text_bytes: text.len(), ran_under: AtomicU64::new(0) });
        if self.seen_before(sha256) {
            self.documents.insert(sha256.to_owned(), parsed.clone());
        }
        Ok(parsed)
    }

    /// Whether the text hashed to `sha256` was seen lately; remembers it as seen if not.
    fn seen_before(&self, sha256: &str) -> bool {
        let fingerprint = sha256.get(..16).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0);
        self.seen.count(fingerprint)
    }

    /// Documents kept, and what they weigh in bytes, for `/metrics`.
    pub fn size(&self) -> (u64, u64) {
        self.documents.run_pending_tasks();
        (self.documents.entry_count(), self.documents.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Request, Variables};

    use super::*;
    use crate::graphql::limits::QueryLimits;
    use crate::service::documents::manifest::sha256_hex;

    const ALIASED: &str = "{ __schema { queryType { name } } a: __typename b: __typename }";

    fn limits(max_aliases: u64) -> QueryLimits {
        QueryLimits {
            max_selections: 2_000,
            max_depth: 12,
            max_aliases,
            max_upstream_calls: 100,
            max_complexity: 20_000,
        }
    }

    #[tokio::test]
    async fn a_kept_document_is_judged_by_each_gates_limits_and_validated_by_each_schema() {
        let documents = ParsedDocuments::default();
        let once = documents.get(&sha256_hex(ALIASED), ALIASED).unwrap();
        assert_eq!(documents.size().0, 0, "a text seen once is not kept");
        let first = documents.get(&sha256_hex(ALIASED), ALIASED).unwrap();
        let again = documents.get(&sha256_hex(ALIASED), ALIASED).unwrap();
        assert!(!Arc::ptr_eq(&once, &first) && Arc::ptr_eq(&first, &again), "kept from its second request");

        // What is kept is the measure; the limits it is held against are the gate's.
        let no_variables = Variables::default();
        assert!(limits(30).judge(&again.measure, &again.document, &no_variables).is_ok());
        let refusal = limits(1).judge(&again.measure, &again.document, &no_variables).unwrap_err();
        assert!(refusal.message.contains("2 aliases; the limit is 1"), "{}", refusal.message);

        // Nothing of a schema's validation is kept: each schema validates the kept document
        // itself, here against its own depth limit (the document is 3 deep).
        for (limit, runs) in [(3, true), (2, false)] {
            let schema = crate::graphql::schema().limit_depth(limit).finish();
            let mut request = Request::new(ALIASED);
            request.set_parsed_query(again.document.clone());
            let response = schema.execute(request).await;
            assert_eq!(response.errors.is_empty(), runs, "limit {limit}: {:?}", response.errors);
        }
    }

    #[test]
    fn a_text_refused_when_parsed_or_measured_is_not_kept() {
        let documents = ParsedDocuments::default();
        let broken = "{ taskExecution(";
        for _ in 0..2 {
            assert!(documents.get(&sha256_hex(broken), broken).is_err());
        }
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        for _ in 0..2 {
            let refusal = documents.get(&sha256_hex(cycle), cycle).err().map(|refusal| refusal.message);
            assert!(refusal.is_some_and(|message| message.contains("spreads itself")));
        }
        assert_eq!(documents.size().0, 0);
    }
}
