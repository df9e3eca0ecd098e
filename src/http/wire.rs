//! A GraphQL response as it is written on the wire (the spec's Response section): a request
//! that failed before execution began (it did not parse or validate, exceeded a limit, or was
//! refused) has no `data` entry at all, so that a client can tell it from an execution whose
//! `data` became `null`.

use async_graphql::{BatchResponse, Response};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Whether `response` is the answer to a request that never ran: no data, and only errors that
/// belong to no field (a field's error always has a path).
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// One response, serialised by [`is_request_error`]'s rule.
pub struct Wire<'a>(pub &'a Response);

/// One response or a batch, each serialised as [`Wire`].
pub struct WireBatch<'a>(pub &'a BatchResponse);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.0;
        if !is_request_error(response) {
            return response.serialize(serializer);
        }
        let with_extensions = !response.extensions.is_empty();
        let mut map = serializer.serialize_map(Some(1 + usize::from(with_extensions)))?;
        map.serialize_entry("errors", &response.errors)?;
        if with_extensions {
            map.serialize_entry("extensions", &response.extensions)?;
        }
        map.end()
    }
}

impl Serialize for WireBatch<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            BatchResponse::Single(response) => Wire(response).serialize(serializer),
            BatchResponse::Batch(responses) => {
                let mut seq = serializer.serialize_seq(Some(responses.len()))?;
                for response in responses {
                    seq.serialize_element(&Wire(response))?;
                }
                seq.end()
            }
        }
    }
}

/// `response` as JSON bytes.
pub fn to_vec(response: &Response) -> Vec<u8> {
    serde_json::to_vec(&Wire(response)).expect("a GraphQL response serialises")
}
