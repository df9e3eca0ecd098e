//! datasync-gateway: one typed GraphQL endpoint over AWS DataSync task executions.

pub mod datasync;
pub mod error;
pub mod model;
