//! How operations on a long-lived connection (WebSocket, server-sent events) run: each through
//! the same [`Gate`] as over HTTP, with its own caller and call budget, its errors coded the same
//! way, and at most so many subscriptions open per connection. Identical subscriptions, from any
//! connection, share one execution ([`Fanout`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures::stream::BoxStream;
use futures::StreamExt;

use super::cache_hint::CacheHint;
use super::fanout::{Fanout, FanoutKey};
use super::subscription::replays_latest;
use super::{coded_error, tag_errors, Gate, GatewaySchema};
use crate::caller::Caller;
use crate::error::request_codes::SUBSCRIPTION_LIMIT;
use crate::rate_limit::RateLimits;

#[derive(Clone)]
pub struct StreamingExecutor {
    schema: GatewaySchema,
    gate: Gate,
    fanout: Fanout,
    rate_limits: RateLimits,
    peer: IpAddr,
    max_upstream_calls: usize,
    max_subscriptions: usize,
    open: Arc<AtomicUsize>,
}

impl StreamingExecutor {
    /// For one connection from `peer`.
    pub fn new(
        schema: GatewaySchema,
        gate: Gate,
        fanout: Fanout,
        rate_limits: RateLimits,
        peer: IpAddr,
        max_upstream_calls: usize,
        max_subscriptions: usize,
    ) -> Self {
        StreamingExecutor {
            schema,
            gate,
            fanout,
            rate_limits,
            peer,
            max_upstream_calls,
            max_subscriptions,
            open: Arc::default(),
        }
    }

    /// The request, admitted, with what resolvers expect in its data; and its hint, whose
    /// warnings go into the responses.
    fn admit(&self, mut request: Request) -> Result<(Request, CacheHint), ServerError> {
        let caller = Caller::client(self.peer, self.max_upstream_calls);
        self.rate_limits.check(&caller).map_err(|limited| limited.to_server_error())?;
        self.gate.admit(&mut request)?;
        let hint = CacheHint::default();
        Ok((request.data(caller).data(hint.clone()), hint))
    }
}

impl Executor for StreamingExecutor {
    async fn execute(&self, request: Request) -> Response {
        match self.admit(request) {
            Ok((request, hint)) => finished(self.schema.execute(request).await, &hint),
            Err(refusal) => Response::from_errors(vec![refusal]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let (request, hint) = match self.admit(request) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return futures::stream::once(async { Response::from_errors(vec![refusal]) }).boxed()
            }
        };
        let slot = OpenSubscription(self.open.clone());
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_subscriptions {
            let message = format!(
                "this connection has {} operations open already; complete one or open another connection",
                self.max_subscriptions
            );
            let refusal = Response::from_errors(vec![coded_error(&message, SUBSCRIPTION_LIMIT)]);
            return futures::stream::once(async { refusal }).boxed();
        }
        let mut request = request;
        let shared = replays_latest(&mut request).map(|replay| {
            (FanoutKey::new(&request.query, request.operation_name.as_deref(), &request.variables), replay)
        });
        let schema = self.schema.clone();
        let start = move || {
            schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                .map(move |response| finished(response, &hint))
                .boxed()
        };
        let results = match shared {
            Some((key, replay)) => self.fanout.subscribe(key, replay, start),
            None => start(),
        };
        results
            .map(move |response| {
                let _open = &slot;
                response
            })
            .boxed()
    }
}

/// Counts an operation open on the connection while it lives.
struct OpenSubscription(Arc<AtomicUsize>);

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Codes on every error, and the warnings gathered so far.
fn finished(mut response: Response, hint: &CacheHint) -> Response {
    tag_errors(&mut response);
    hint.attach_warnings(&mut response);
    response
}
