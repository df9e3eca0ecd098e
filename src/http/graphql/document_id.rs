//! GraphQL over HTTP's `documentId` (its persisted documents appendix): a request that names a
//! trusted document instead of sending its text. async-graphql's `Request` has no field for it
//! and drops it, so it is read here, only from requests without a query (a request that has
//! one runs its text), and handed to the gate in the request's data.

use async_graphql::{BatchRequest, Request};
use serde::Deserialize;

use crate::graphql::DocumentId;

#[derive(Deserialize)]
struct Named {
    #[serde(rename = "documentId")]
    document_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NamedBatch {
    Single(Named),
    Batch(Vec<Named>),
}

/// The `documentId`s of a POST body, on the requests (of `batch`, read from `body`) without a
/// query. Reads the body a second time, which only requests by id pay for: they are small.
pub(super) fn from_body(body: &[u8], batch: &mut BatchRequest) {
    let without_query = match batch {
        BatchRequest::Single(request) => request.query.is_empty(),
        BatchRequest::Batch(requests) => requests.iter().any(|request| request.query.is_empty()),
    };
    if !without_query {
        return;
    }
    match (batch, serde_json::from_slice(body)) {
        (BatchRequest::Single(request), Ok(NamedBatch::Single(named))) => attach(request, named),
        (BatchRequest::Batch(requests), Ok(NamedBatch::Batch(named))) => {
            requests.iter_mut().zip(named).for_each(|(request, named)| attach(request, named))
        }
        _ => {}
    }
}

/// The `documentId` of a GET's query string, when it has no query.
pub(super) fn from_query_string(query_string: &str, request: &mut Request) {
    if request.query.is_empty() {
        if let Ok(named) = serde_urlencoded::from_str(query_string) {
            attach(request, named);
        }
    }
}

fn attach(request: &mut Request, named: Named) {
    if let (true, Some(id)) = (request.query.is_empty(), named.document_id) {
        request.data.insert(DocumentId(id));
    }
}
