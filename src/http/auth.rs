//! Who a request is from: its `Authorization` (or `X-API-Key`) header, checked by the
//! [`Authenticator`](crate::auth::Authenticator); a missing or bad credential is a 401.

use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::errors::error_response;
use super::AppState;
use crate::auth::{Identity, Unauthenticated};
use crate::error::request_codes::UNAUTHENTICATED;

const API_KEY: &str = "x-api-key";

/// The credential a request carries, if any.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).or_else(|| headers.get(API_KEY)).and_then(|value| value.to_str().ok())
}

/// The request's identity, or the 401 to answer.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Identity, Box<axum::response::Response>> {
    state.auth.authenticate(credential(headers)).await.map_err(|refusal| Box::new(unauthorized(&refusal)))
}

pub fn unauthorized(refusal: &Unauthenticated) -> axum::response::Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, &refusal.0, UNAUTHENTICATED);
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
