//! `/graphql` and `/graphiql`.
//!
//! The handler is async-graphql-axum's extractor and response with two additions: a malformed
//! request gets a JSON error with a code (not plain text), and errors async-graphql raises
//! itself (syntax, validation, limits) get a code too, so every error a client sees has one.

use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse, ParseRequestError, Response, ServerError};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::Json;

use super::AppState;
use crate::error::request_codes::{BAD_REQUEST, GRAPHQL_VALIDATION_FAILED, REQUEST_TIMEOUT};

pub async fn execute(
    State(state): State<AppState>,
    request: GraphQLBatchRequest<BadRequest>,
) -> axum::response::Response {
    let request = request.into_inner();
    if let BatchRequest::Batch(operations) = &request {
        if operations.len() > state.max_batch_operations {
            return BadRequest(format!(
                "at most {} operations per batch; got {}",
                state.max_batch_operations,
                operations.len()
            ))
            .into_response();
        }
    }
    let mut response = state.schema.execute_batch(request).await;
    match &mut response {
        BatchResponse::Single(response) => tag_errors(response),
        BatchResponse::Batch(responses) => responses.iter_mut().for_each(tag_errors),
    }
    GraphQLResponse::from(response).into_response()
}

pub async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").title("datasync-gateway").finish())
}

/// Resolver errors carry a code already; the rest come from async-graphql rejecting the
/// document or its variables (syntax, unknown fields, wrong or missing variables, limits).
fn tag_errors(response: &mut Response) {
    for error in &mut response.errors {
        if error.extensions.as_ref().and_then(|extensions| extensions.get("code")).is_none() {
            error.extensions.get_or_insert_with(Default::default).set("code", GRAPHQL_VALIDATION_FAILED);
        }
    }
}

/// The body-size and time limits answer before any handler, in plain text; clients get the same
/// GraphQL-shaped JSON with a code as for every other error.
pub async fn limit_errors_as_json(response: axum::response::Response) -> axum::response::Response {
    let (status, message, code) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large", BAD_REQUEST)
        }
        StatusCode::GATEWAY_TIMEOUT => {
            (StatusCode::GATEWAY_TIMEOUT, "the request took too long", REQUEST_TIMEOUT)
        }
        _ => return response,
    };
    error_response(status, message.into(), code)
}

fn error_response(status: StatusCode, message: String, code: &str) -> axum::response::Response {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code);
    (status, Json(Response::from_errors(vec![error]))).into_response()
}

/// A request that is not GraphQL at all: 400, with a GraphQL-shaped JSON body.
pub struct BadRequest(String);

impl From<ParseRequestError> for BadRequest {
    fn from(error: ParseRequestError) -> Self {
        BadRequest(format!("not a valid GraphQL request: {error}"))
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> axum::response::Response {
        error_response(StatusCode::BAD_REQUEST, self.0, BAD_REQUEST)
    }
}
