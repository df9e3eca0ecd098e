//! The GraphQL schema: roots and object types, thin over [`crate::service`].

pub mod cache_hint;
mod execution;
mod history;
pub mod limits;
mod node;
mod query;
mod task;

use async_graphql::extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage};
use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub use execution::TaskExecutionNode;
pub use query::Query;

use crate::config::LimitsConfig;
use crate::history::HistoryService;
use crate::service::ExecutionService;
use crate::tasks::TaskService;

/// Documents kept for automatic persisted queries (least recently used go first).
const PERSISTED_QUERIES: usize = 1_000;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn build_schema(service: ExecutionService, tasks: TaskService, limits: &LimitsConfig) -> GatewaySchema {
    let mut schema = Schema::build(Query, EmptyMutation, EmptySubscription).data(tasks);
    if let Some(history) = service.history() {
        schema = schema.data(HistoryService::new(history.store.clone()));
    }
    // Depth is checked by `QueryLimits` (introspection apart from data), before async-graphql's
    // own checks, which expand fragments as they go.
    // Persisted queries run first, so the limits see the document a hash stands for.
    schema = schema
        .data(service)
        .extension(ApolloPersistedQueries::new(LruCacheStorage::new(PERSISTED_QUERIES)))
        .extension(limits::QueryLimits::new(limits))
        .limit_complexity(limits.max_query_complexity);
    if !limits.introspection {
        schema = schema.disable_introspection();
    }
    schema.finish()
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    // With `@specifiedBy`, as introspection reports it: the file and what clients see agree.
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    Schema::build(Query, EmptyMutation, EmptySubscription).finish().sdl_with_options(options)
}
