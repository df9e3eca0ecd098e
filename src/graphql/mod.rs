//! The GraphQL schema: roots and object types, thin over [`crate::service`].

pub mod cache_hint;
mod execution;
mod fanout;
mod history;
pub mod limits;
mod node;
mod persisted;
mod query;
mod streaming;
mod subscription;
mod task;

use async_graphql::{EmptyMutation, Request, Response, Schema, ServerError};

pub use execution::TaskExecutionNode;
pub use fanout::Fanout;
pub use query::Query;
pub use streaming::StreamingExecutor;
pub use subscription::SubscriptionRoot;

use crate::config::LimitsConfig;
use crate::error::request_codes::GRAPHQL_VALIDATION_FAILED;
use crate::history::HistoryService;
use crate::live::Live;
use crate::service::ExecutionService;
use crate::tasks::TaskService;

pub type GatewaySchema = Schema<Query, EmptyMutation, SubscriptionRoot>;

pub fn build_schema(
    service: ExecutionService,
    tasks: TaskService,
    live: Live,
    limits: &LimitsConfig,
) -> GatewaySchema {
    let mut schema = Schema::build(Query, EmptyMutation, SubscriptionRoot).data(tasks).data(live);
    if let Some(history) = service.history() {
        schema = schema.data(HistoryService::new(history.store.clone()));
    }
    // Depth and size are checked by the transport's `Gate` before async-graphql sees the
    // request; complexity (list sizes multiplied) by async-graphql's validation after it.
    schema = schema.data(service).limit_complexity(limits.max_query_complexity);
    if !limits.introspection {
        schema = schema.disable_introspection();
    }
    schema.finish()
}

/// What every transport does with a request before executing it: fill in a persisted query,
/// then check the limits on the parsed document (which is kept for execution).
#[derive(Clone)]
pub struct Gate {
    persisted: persisted::PersistedQueries,
    limits: limits::QueryLimits,
}

impl Gate {
    pub fn new(limits: &LimitsConfig) -> Self {
        Gate { persisted: Default::default(), limits: limits::QueryLimits::new(limits) }
    }

    /// Every refusal carries a code (a document that does not parse gets its validation code).
    pub fn admit(&self, request: &mut Request) -> Result<(), ServerError> {
        self.persisted.resolve(request)?;
        self.limits.check_request(request).map_err(|mut refusal| {
            ensure_code(&mut refusal);
            refusal
        })
    }
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    // With `@specifiedBy`, as introspection reports it: the file and what clients see agree.
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    Schema::build(Query, EmptyMutation, SubscriptionRoot).finish().sdl_with_options(options)
}

/// An error refusing a request, with its `extensions.code`.
pub(crate) fn coded_error(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code);
    error
}

/// Gives a code to every error without one: resolver errors carry theirs already; the rest come
/// from async-graphql rejecting the document or its variables (syntax, unknown fields, wrong or
/// missing variables, complexity). Every transport's responses pass through here.
pub fn tag_errors(response: &mut Response) {
    response.errors.iter_mut().for_each(ensure_code);
}

fn ensure_code(error: &mut ServerError) {
    if error.extensions.as_ref().and_then(|extensions| extensions.get("code")).is_none() {
        error.extensions.get_or_insert_with(Default::default).set("code", GRAPHQL_VALIDATION_FAILED);
    }
}
