//! The gateway's one error type, and its mapping to GraphQL errors with a stable `extensions.code`.

use async_graphql::ErrorExtensions;

/// Everything a client can be told went wrong. Messages are safe to show: they never carry
/// credentials, SQL, or upstream internals (those go to the log instead).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// The request is wrong; the message says what to fix.
    #[error("{0}")]
    BadUserInput(String),
    /// DataSync does not know the execution.
    #[error("{0}")]
    NotFound(String),
    /// DataSync kept throttling the gateway after its retries.
    #[error("DataSync is throttling requests; retry later")]
    UpstreamThrottled,
    /// DataSync could not be reached or failed (timeout, 5xx, refused or dropped connection).
    #[error("DataSync is unavailable: {0}")]
    UpstreamUnavailable(&'static str),
    /// A call that changes something reached DataSync, and its answer was lost (a timeout, a
    /// dropped connection, a server error): it may or may not have taken effect. Not retryable
    /// as it is: a retry could do it twice.
    #[error("{0}")]
    UpstreamOutcomeUnknown(String),
    /// The caller sent more requests than `--rate-limit` allows; retry after that many seconds.
    #[error("too many requests from this caller; retry in {0} s")]
    RateLimited(u64),
    /// The request already caused as many DataSync calls as one request may.
    #[error("this request reached its limit of {0} DataSync calls; ask for fewer executions per request")]
    UpstreamCallLimit(usize),
    /// History was asked for, but the database cannot be reached or did not answer in time.
    #[error("execution history is unavailable: {0}")]
    HistoryUnavailable(&'static str),
    /// History was asked for, but no database is configured: retrying will not help.
    #[error("execution history is unavailable: no database is configured (--database-url)")]
    HistoryNotConfigured,
    /// A fault of the gateway's own; details are in the log, keyed by nothing the client sees.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// The closed set of codes clients may rely on.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadUserInput(_) => "BAD_USER_INPUT",
            GatewayError::NotFound(_) => "NOT_FOUND",
            GatewayError::UpstreamThrottled => "UPSTREAM_THROTTLED",
            GatewayError::UpstreamUnavailable(_) => "UPSTREAM_UNAVAILABLE",
            GatewayError::UpstreamOutcomeUnknown(_) => "UPSTREAM_OUTCOME_UNKNOWN",
            GatewayError::UpstreamCallLimit(_) => request_codes::UPSTREAM_CALL_LIMIT,
            GatewayError::RateLimited(_) => request_codes::RATE_LIMITED,
            GatewayError::HistoryUnavailable(_) | GatewayError::HistoryNotConfigured => "HISTORY_UNAVAILABLE",
            GatewayError::Internal => "INTERNAL",
        }
    }
}

impl GatewayError {
    /// For an error a retry may cure, the seconds to wait first: DataSync throttling or failing,
    /// the database down. Clients see `extensions.retryable` and `extensions.retryAfter`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::UpstreamThrottled | GatewayError::UpstreamUnavailable(_) => {
                Some(UPSTREAM_RETRY_SECONDS)
            }
            GatewayError::HistoryUnavailable(_) => Some(HISTORY_RETRY_SECONDS),
            GatewayError::RateLimited(seconds) => Some(*seconds),
            _ => None,
        }
    }
}

impl GatewayError {
    /// As a request-level GraphQL error, without a position (nothing in the document caused it).
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let error = self.extend();
        let mut server_error = async_graphql::ServerError::new(error.message, None);
        server_error.extensions = error.extensions;
        server_error
    }
}

/// DataSync throttles per second and recovers from most outages within seconds; the SDK has
/// already retried with backoff by the time a client sees either.
const UPSTREAM_RETRY_SECONDS: u64 = 5;
/// While the database fails, reads skip it for 5 s (`service::STORE_READ_PAUSE`); a retry after
/// twice that finds it again if it is back.
const HISTORY_RETRY_SECONDS: u64 = 10;

/// `error.extend()` turns it into a GraphQL error carrying `extensions.code`. (A plain `From`
/// is taken by async-graphql's blanket impl for every `Display` type, which would drop the code.)
impl ErrorExtensions for GatewayError {
    fn extend(&self) -> async_graphql::Error {
        let (code, retry_after) = (self.code(), self.retry_after());
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(seconds) = retry_after {
                extensions.set("retryable", true);
                extensions.set("retryAfter", seconds);
            }
        })
    }
}

/// Codes for errors raised by async-graphql itself, before any resolver ran.
pub mod request_codes {
    /// The document or its variables do not parse or validate (syntax, unknown field, wrong or
    /// missing variable, depth or complexity limit).
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// The request ran past the gateway's request time limit (HTTP 504).
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// The HTTP request is not a GraphQL request (malformed JSON, too large, wrong content type).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The request would cause more DataSync calls than one request may (counted up front from
    /// its ARN arguments, and while it runs).
    pub const UPSTREAM_CALL_LIMIT: &str = "UPSTREAM_CALL_LIMIT";
    /// An automatic persisted query's hash the gateway does not know: send it with its query.
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// The answer would be larger than `--max-response-bytes`.
    pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";
    /// The connection has `--max-subscriptions-per-connection` operations open already.
    pub const SUBSCRIPTION_LIMIT: &str = "SUBSCRIPTION_LIMIT";
    /// An event subscription's subscriber fell so far behind that events were skipped: it ends
    /// with this error instead of going on with a gap.
    pub const SUBSCRIPTION_LAGGED: &str = "SUBSCRIPTION_LAGGED";
    /// The process serves `--max-streaming-connections` WebSockets and event streams already (HTTP 503).
    pub const CONNECTION_LIMIT: &str = "CONNECTION_LIMIT";
    /// No credentials, or ones the gateway does not accept (HTTP 401; a WebSocket closes with
    /// 4401), or an EventBridge delivery without the right shared secret.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// The caller's role does not allow the operation (a reader sending a mutation).
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Over `--rate-limit`, or too many failed authentications from one address (HTTP 429 with
    /// `Retry-After`).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
}
