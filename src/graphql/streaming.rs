//! How operations on a long-lived connection (WebSocket, server-sent events) run: each through
//! the same [`Gate`] as over HTTP, with its own caller and call budget, its errors coded the same
//! way, and at most so many subscriptions open per connection. Identical subscriptions, from any
//! connection, share one execution ([`Fanout`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures::stream::BoxStream;
use futures::StreamExt;

use super::cache_hint::CacheHint;
use super::fanout::{Fanout, FanoutKey};
use super::subscription::replays_latest;
use super::{authorize, finish_response, operation_label, DocumentId, Gate, Parsed, RequestText, Schemas};
use crate::error::ErrorCode;
use crate::metrics::Metrics;
use crate::request::rate_limit::RateLimits;
use crate::request::Caller;
use crate::request::Identity;

/// What every long-lived connection shares.
#[derive(Clone)]
pub struct Streaming {
    pub schemas: Schemas,
    pub gate: Gate,
    pub fanout: Fanout,
    pub rate_limits: RateLimits,
    pub metrics: Metrics,
    pub max_upstream_calls: usize,
    pub max_subscriptions: usize,
    /// Subscriptions open in this process, one per client operation (identical ones from many
    /// clients share one execution, but each counts here).
    pub operations_open: Arc<AtomicUsize>,
}

impl Streaming {
    /// Client operations open now (subscriptions and their streams), for `/metrics`.
    pub fn operations_open(&self) -> usize {
        self.operations_open.load(Ordering::Relaxed)
    }
}

/// One connection's executor.
#[derive(Clone)]
pub struct StreamingExecutor {
    shared: Streaming,
    peer: IpAddr,
    /// `websocket` or `sse`, for metrics.
    transport: &'static str,
    /// Who the connection is: known from the request's headers, or from `connection_init`.
    identity: Arc<OnceLock<Identity>>,
    /// Whether each operation counts against the caller's rate here (a WebSocket's do); an
    /// event stream's one operation was counted with the HTTP request that carried it.
    count_operations: bool,
    open: Arc<AtomicUsize>,
}

impl StreamingExecutor {
    /// For one connection from `peer`.
    pub fn new(shared: Streaming, peer: IpAddr, transport: &'static str) -> Self {
        let (identity, open) = (Arc::default(), Arc::default());
        StreamingExecutor { shared, peer, transport, identity, count_operations: true, open }
    }

    /// For an operation whose HTTP request was counted against the caller's rate already.
    pub fn counted_by_transport(self) -> Self {
        StreamingExecutor { count_operations: false, ..self }
    }

    /// Says who the connection is, once; operations before that are refused.
    pub fn identify(&self, identity: Identity) {
        let _ = self.identity.set(identity);
    }

    /// The request, admitted, with what resolvers expect in its data; its hint, whose warnings go
    /// into the responses; and its parsed document.
    fn admit(&self, mut request: Request) -> Result<(Request, CacheHint, Arc<Parsed>), ServerError> {
        let Some(identity) = self.identity.get() else {
            return Err(ErrorCode::Unauthenticated.error("authenticate in connection_init first"));
        };
        let caller = Caller::identified(identity, self.peer, self.shared.max_upstream_calls);
        if self.count_operations {
            self.shared.rate_limits.check(&caller).map_err(|limited| limited.to_server_error())?;
        }
        DocumentId::from_extensions(&mut request);
        let parsed = self.shared.gate.admit(&mut request, &caller)?;
        authorize(&mut request, &caller)?;
        let hint = CacheHint::default();
        Ok((request.data(caller).data(hint.clone()), hint, parsed))
    }
}

impl Executor for StreamingExecutor {
    async fn execute(&self, request: Request) -> Response {
        let started = Instant::now();
        let (mut response, hint) = match self.admit(request) {
            Ok((mut request, hint, parsed)) => {
                let (name, kind) = operation_label(&mut request);
                let text = RequestText::take_from(&mut request);
                let mut response = self.shared.schemas.execute(&parsed, request).await;
                self.shared.gate.mend(&mut response, &text);
                self.shared.metrics.operation(name.as_deref(), kind, self.transport, started.elapsed());
                (response, hint)
            }
            Err(refusal) => (Response::from_errors(vec![refusal]), CacheHint::default()),
        };
        finish_response(&mut response, &hint, &self.shared.metrics);
        response
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let started = Instant::now();
        let (mut request, hint) = match self.admit(request) {
            Ok((request, hint, _)) => (request, hint),
            Err(refusal) => return self.refused(refusal),
        };
        let slot = OpenSubscription::new(self.open.clone(), self.shared.operations_open.clone());
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.shared.max_subscriptions {
            let message = format!(
                "this connection has {} operations open already (--max-subscriptions-per-connection); \
                 complete one or open another connection",
                self.shared.max_subscriptions
            );
            return self.refused(ErrorCode::SubscriptionLimit.error(&message));
        }
        let (name, kind) = operation_label(&mut request);
        let accounts = self.identity.get().map(|identity| identity.accounts.clone()).unwrap_or_default();
        let shared = replays_latest(&mut request).map(|replay| {
            let key = FanoutKey::new(
                &request.query,
                request.operation_name.as_deref(),
                &request.variables,
                &accounts,
            );
            (key, replay)
        });
        let (schema, metrics, gate) =
            (self.shared.schemas.strict().clone(), self.shared.metrics.clone(), self.shared.gate.clone());
        let text = RequestText::copied_from(&request);
        let start = move || {
            schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                .map(move |mut response| {
                    gate.mend(&mut response, &text);
                    finish_response(&mut response, &hint, &metrics);
                    response
                })
                .boxed()
        };
        let results = match shared {
            Some((key, replay)) => self.shared.fanout.subscribe(key, replay, start),
            None => start(),
        };
        // Timed to the first result; the connection's count holds while the stream lives.
        let (metrics, transport) = (self.shared.metrics.clone(), self.transport);
        let mut first = Some(started);
        results
            .map(move |response| {
                let _open = &slot;
                if let Some(started) = first.take() {
                    metrics.operation(name.as_deref(), kind, transport, started.elapsed());
                }
                response
            })
            .boxed()
    }
}

impl StreamingExecutor {
    /// A refusal, as the one result of the operation.
    fn refused(&self, refusal: ServerError) -> BoxStream<'static, Response> {
        let mut response = Response::from_errors(vec![refusal]);
        finish_response(&mut response, &CacheHint::default(), &self.shared.metrics);
        futures::stream::once(async { response }).boxed()
    }
}

/// Counts an operation open in the process while it lives; on the connection, once the caller
/// has counted it there (the count decides whether it may open).
struct OpenSubscription {
    connection: Arc<AtomicUsize>,
    process: Arc<AtomicUsize>,
}

impl OpenSubscription {
    fn new(connection: Arc<AtomicUsize>, process: Arc<AtomicUsize>) -> Self {
        process.fetch_add(1, Ordering::Relaxed);
        OpenSubscription { connection, process }
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.connection.fetch_sub(1, Ordering::Relaxed);
        self.process.fetch_sub(1, Ordering::Relaxed);
    }
}
