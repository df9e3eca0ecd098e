//! Apollo Federation 2: the gateway as a subgraph owning `TaskExecution` and `Task`, each keyed
//! by `id` (its ARN). Another subgraph can extend them; a federation gateway resolves the
//! references through `_entities`, where this module's loader gathers the executions one
//! request asks for and reads them together (each distinct ARN once, concurrently, through the
//! cache and the call budget of that request).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Request;

use crate::error::GatewayError;
use crate::model::ExecutionArn;
use crate::request::Caller;
use crate::service::executions::{Consistency, ExecutionService, Fetched};

/// The executions one request's `_entities` refers to.
pub struct ExecutionEntities {
    service: ExecutionService,
    caller: Caller,
}

impl Loader<ExecutionArn> for ExecutionEntities {
    type Value = Fetched;
    type Error = GatewayError;

    async fn load(&self, arns: &[ExecutionArn]) -> Result<HashMap<ExecutionArn, Fetched>, GatewayError> {
        let results = self.service.get_many(arns, Consistency::Cached, &self.caller).await?;
        // A representation that cannot be read is left out: its entity resolves to an error.
        Ok(arns.iter().cloned().zip(results).filter_map(|(arn, result)| Some((arn, result.ok()?))).collect())
    }
}

/// Gives a request that resolves entities its loader (one per request: it carries the
/// request's caller and call budget). Others get nothing, and pay nothing.
pub fn with_entity_loader(request: Request, service: &ExecutionService, caller: &Caller) -> Request {
    if !request.query.contains("_entities") {
        return request;
    }
    let loader = ExecutionEntities { service: service.clone(), caller: caller.clone() };
    request.data(DataLoader::new(loader, tokio::spawn))
}
