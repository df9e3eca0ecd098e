//! The GraphQL schema: roots and object types, thin over [`crate::service`].

pub mod cache_hint;
mod execution;
mod history;
pub mod limits;
mod node;
mod persisted;
mod query;
mod task;

use async_graphql::{EmptyMutation, EmptySubscription, Request, Schema, ServerError};

pub use execution::TaskExecutionNode;
pub use query::Query;

use crate::config::LimitsConfig;
use crate::history::HistoryService;
use crate::service::ExecutionService;
use crate::tasks::TaskService;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn build_schema(service: ExecutionService, tasks: TaskService, limits: &LimitsConfig) -> GatewaySchema {
    let mut schema = Schema::build(Query, EmptyMutation, EmptySubscription).data(tasks);
    if let Some(history) = service.history() {
        schema = schema.data(HistoryService::new(history.store.clone()));
    }
    // Depth is checked by `QueryLimits` (introspection apart from data), before async-graphql's
    // own checks, which expand fragments as they go.
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

    pub fn admit(&self, request: &mut Request) -> Result<(), ServerError> {
        self.persisted.resolve(request)?;
        self.limits.check_request(request)
    }
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    // With `@specifiedBy`, as introspection reports it: the file and what clients see agree.
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    Schema::build(Query, EmptyMutation, EmptySubscription).finish().sdl_with_options(options)
}
