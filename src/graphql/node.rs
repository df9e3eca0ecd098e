//! Object identity for normalising client caches (Apollo's InMemoryCache, Relay's Global Object
//! Identification): every object with an identity implements `Node`.

use async_graphql::{Interface, ID};

use super::task::TaskNode;
use super::TaskExecutionNode;

/// An object with a globally unique `id`, which `Query.node` reads back.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Globally unique and stable: for AWS resources, the ARN (already unique across accounts and regions)."
))]
pub enum Node {
    TaskExecution(TaskExecutionNode),
    Task(TaskNode),
}
