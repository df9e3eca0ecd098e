//! The GraphQL schema: roots and object types, thin over [`crate::service`].

mod execution;
mod query;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub use execution::TaskExecutionNode;
pub use query::Query;

use crate::config::LimitsConfig;
use crate::service::ExecutionService;

pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn build_schema(service: ExecutionService, limits: &LimitsConfig) -> GatewaySchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(service)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    Schema::build(Query, EmptyMutation, EmptySubscription).finish().sdl()
}
