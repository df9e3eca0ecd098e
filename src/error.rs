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
    /// The gateway could not reach an account it serves: its role could not be assumed, or
    /// DataSync refused the role's credentials. The message names the account. Not retryable:
    /// an operator must fix the role or its trust policy.
    #[error("{0}")]
    UpstreamForbidden(String),
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
    /// The caller's role does not allow this (a reader asking for operators' data).
    #[error("{0}")]
    Forbidden(String),
    /// A fault of the gateway's own; details are in the log, keyed by nothing the client sees.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// Its code, from the closed set clients may rely on.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::BadUserInput(_) => ErrorCode::BadUserInput,
            GatewayError::NotFound(_) => ErrorCode::NotFound,
            GatewayError::UpstreamThrottled => ErrorCode::UpstreamThrottled,
            GatewayError::UpstreamUnavailable(_) => ErrorCode::UpstreamUnavailable,
            GatewayError::UpstreamOutcomeUnknown(_) => ErrorCode::UpstreamOutcomeUnknown,
            GatewayError::UpstreamForbidden(_) => ErrorCode::UpstreamForbidden,
            GatewayError::UpstreamCallLimit(_) => ErrorCode::UpstreamCallLimit,
            GatewayError::RateLimited(_) => ErrorCode::RateLimited,
            GatewayError::HistoryUnavailable(_) | GatewayError::HistoryNotConfigured => {
                ErrorCode::HistoryUnavailable
            }
            GatewayError::Forbidden(_) => ErrorCode::Forbidden,
            GatewayError::Internal => ErrorCode::Internal,
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
            extensions.set("code", code.as_str());
            if let Some(seconds) = retry_after {
                extensions.set("retryable", true);
                extensions.set("retryAfter", seconds);
            }
        })
    }
}

/// The closed set of `extensions.code`s clients may rely on: those of [`GatewayError`], of
/// the gate's refusals (async-graphql's validation, limits, persisted queries, trusted documents), and of the HTTP
/// layer's error bodies. `docs/errors.md` lists them in this order (a test checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument is wrong; nothing was sent to AWS.
    BadUserInput,
    /// DataSync has no such execution or task.
    NotFound,
    /// DataSync kept throttling after the retries.
    UpstreamThrottled,
    /// DataSync timed out, failed, could not be reached, or rejected the gateway's credentials.
    UpstreamUnavailable,
    /// A change reached DataSync and its answer was lost.
    UpstreamOutcomeUnknown,
    /// The database is not configured, down or too slow.
    HistoryUnavailable,
    /// A fault of the gateway's own.
    Internal,
    /// The document or its variables do not parse or validate (syntax, unknown field, wrong or
    /// missing variable, depth or complexity limit).
    GraphqlValidationFailed,
    /// The request would cause more DataSync calls than one request may (counted up front from
    /// its ARN arguments, and while it runs).
    UpstreamCallLimit,
    /// The answer would be larger than `--max-response-bytes`.
    ResponseTooLarge,
    /// An automatic persisted query's hash the gateway does not know: send it with its query.
    PersistedQueryNotFound,
    /// The HTTP request is not a GraphQL request (malformed JSON, too large, wrong content type).
    BadRequest,
    /// The request ran past the gateway's request time limit (HTTP 504).
    RequestTimeout,
    /// The connection has `--max-subscriptions-per-connection` operations open already.
    SubscriptionLimit,
    /// An event subscription's subscriber fell so far behind that events were skipped: it ends
    /// with this error instead of going on with a gap.
    SubscriptionLagged,
    /// The process serves `--max-streaming-connections` WebSockets and event streams already.
    ConnectionLimit,
    /// No credentials, or ones the gateway does not accept (HTTP 401; a WebSocket closes with
    /// 4401), or an EventBridge delivery without the right shared secret.
    Unauthenticated,
    /// The caller's role does not allow the operation (a reader sending a mutation).
    Forbidden,
    /// Over `--rate-limit`, or too many failed authentications from one address.
    RateLimited,
    /// An account the gateway serves could not be reached: its role could not be assumed or
    /// its credentials were refused. The message names the account; retrying will not help.
    UpstreamForbidden,
    /// Only trusted documents run (`--trusted-documents-mode enforce`), and this operation is
    /// not one: send a registered document by its id.
    PersistedQueryRequired,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::BadUserInput,
        ErrorCode::NotFound,
        ErrorCode::UpstreamThrottled,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::UpstreamOutcomeUnknown,
        ErrorCode::HistoryUnavailable,
        ErrorCode::Internal,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::UpstreamCallLimit,
        ErrorCode::ResponseTooLarge,
        ErrorCode::PersistedQueryNotFound,
        ErrorCode::BadRequest,
        ErrorCode::RequestTimeout,
        ErrorCode::SubscriptionLimit,
        ErrorCode::SubscriptionLagged,
        ErrorCode::ConnectionLimit,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::UpstreamForbidden,
        ErrorCode::PersistedQueryRequired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::UpstreamThrottled => "UPSTREAM_THROTTLED",
            ErrorCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            ErrorCode::UpstreamOutcomeUnknown => "UPSTREAM_OUTCOME_UNKNOWN",
            ErrorCode::HistoryUnavailable => "HISTORY_UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::UpstreamCallLimit => "UPSTREAM_CALL_LIMIT",
            ErrorCode::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::SubscriptionLimit => "SUBSCRIPTION_LIMIT",
            ErrorCode::SubscriptionLagged => "SUBSCRIPTION_LAGGED",
            ErrorCode::ConnectionLimit => "CONNECTION_LIMIT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::UpstreamForbidden => "UPSTREAM_FORBIDDEN",
            ErrorCode::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
        }
    }

    /// A request-level GraphQL error with this code, without a position.
    pub fn error(self, message: &str) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", self.as_str());
        error
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
