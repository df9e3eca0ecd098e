//! The GraphQL schema: roots and object types, thin over [`crate::service`].

mod execution;
mod history;
pub mod limits;
mod query;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub use execution::TaskExecutionNode;
pub use query::Query;

use crate::config::LimitsConfig;
use crate::history::HistoryService;
use crate::service::ExecutionService;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn build_schema(service: ExecutionService, limits: &LimitsConfig) -> GatewaySchema {
    let mut schema = Schema::build(Query, EmptyMutation, EmptySubscription);
    if let Some(history) = service.history() {
        schema = schema.data(HistoryService::new(history.store.clone()));
    }
    // Depth is checked by `QueryLimits` (introspection apart from data), before async-graphql's
    // own checks, which expand fragments as they go.
    schema
        .data(service)
        .extension(limits::QueryLimits::new(limits))
        .limit_complexity(limits.max_query_complexity)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    Schema::build(Query, EmptyMutation, EmptySubscription).finish().sdl()
}
