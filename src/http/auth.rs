//! Who a request is from: its `Authorization` (or `X-API-Key`) header, checked by the
//! [`Authenticator`](crate::auth::Authenticator); a missing or bad credential is a 401, and an
//! address that failed too often lately gets 429 without anything being looked up.

use std::net::IpAddr;

use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::errors::error_response;
use super::AppState;
use crate::auth::Refusal;
use crate::error::ErrorCode;
use crate::request::Identity;

const API_KEY: &str = "x-api-key";

/// The credential a request carries, if any.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).or_else(|| headers.get(API_KEY)).and_then(|value| value.to_str().ok())
}

/// The identity of a request from `peer`, or the 401 (429 after too many failures) to answer.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
) -> Result<Identity, Box<axum::response::Response>> {
    state.auth.authenticate(credential(headers), peer).await.map_err(|refusal| Box::new(refused(&refusal)))
}

pub fn refused(refusal: &Refusal) -> axum::response::Response {
    match refusal {
        Refusal::Unauthenticated(refusal) => {
            let mut response =
                error_response(StatusCode::UNAUTHORIZED, &refusal.0, ErrorCode::Unauthenticated);
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Refusal::TooManyFailures(seconds) => {
            let message = format!(
                "too many failed authentications from this address; nothing is checked for {seconds} s"
            );
            let mut response =
                error_response(StatusCode::TOO_MANY_REQUESTS, &message, ErrorCode::RateLimited);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*seconds));
            response
        }
    }
}
