//! The GraphQL schema: roots and object types, thin over [`crate::service`], and the gate every
//! transport passes a request through (persisted queries, limits, field-error completion).
//! Resolvers take what they need of a request from `context`; none imports another.
//!
//! May import: `service`, `request`, `model`, `config`, `error`, `metrics`. Never `store` or
//! `datasync`: those are the services' to use.

pub mod cache_hint;
mod completion;
mod context;
mod doorkeeper;
mod execution;
mod fanout;
pub mod federation;
mod index;
pub mod limits;
mod mutation;
mod node;
mod parsed;
mod parser;
mod persisted;
mod query;
mod report;
pub mod response_cache;
mod schemas;
mod streaming;
mod subscription;
mod task;
mod trusted;
mod webhook;

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType};
use async_graphql::{Positioned, Request, Response, Schema, SchemaBuilder, ServerError};

use cache_hint::CacheHint;

pub use completion::RequestText;
pub use execution::TaskExecutionNode;
pub use fanout::Fanout;
pub use parsed::Parsed;
pub use query::Query;
pub use schemas::Schemas;
pub use streaming::{Streaming, StreamingExecutor};
pub use subscription::Subscription;
pub use trusted::{DocumentId, TrustPolicy};

use crate::config::LimitsConfig;
use crate::error::ErrorCode;
use crate::metrics::Metrics;
use crate::request::Caller;
use crate::request::Role;
use crate::service;
use crate::service::accounts::AccountService;
use crate::service::control::ControlService;
use crate::service::documents::manifest::sha256_hex;
use crate::service::executions::ExecutionService;
use crate::service::live::Live;
use crate::service::reports::ReportService;
use crate::service::tasks::TaskService;
use crate::service::webhooks::WebhookService;

pub use mutation::Mutation;

pub type GatewaySchema = Schema<Query, Mutation, Subscription>;

/// The one schema builder: the schema served, the SDL printed (`schema.graphql`, the federation
/// subgraph's) and the one complexity is measured with all start here, so they cannot differ in
/// their types.
fn schema() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
}

/// What the resolvers call.
pub struct Services {
    pub executions: ExecutionService,
    pub tasks: TaskService,
    pub live: Live,
    pub control: ControlService,
    pub accounts: AccountService,
    /// Stored task reports (none without a database).
    pub reports: Option<ReportService>,
    pub webhooks: WebhookService,
}

pub fn build_schemas(services: Services, limits: &LimitsConfig) -> Schemas {
    Schemas::new(|mode| {
        let mut schema = schema()
            .validation_mode(mode)
            .data(services.tasks.clone())
            .data(services.live.clone())
            .data(services.control.clone())
            .data(services.accounts.clone())
            .data(services.webhooks.clone());
        if let Some(index) = services.executions.index() {
            schema = schema.data(index.clone());
        }
        if let Some(reports) = &services.reports {
            schema = schema.data(reports.clone());
        }
        // Depth and size are checked by the transport's `Gate` before async-graphql sees the
        // request; complexity (list sizes multiplied) by async-graphql's validation after it.
        schema = schema.data(services.executions.clone()).limit_complexity(limits.max_query_complexity);
        if !limits.introspection {
            schema = schema.disable_introspection();
        }
        schema.finish()
    })
}

/// What every transport does with a request before executing it: turn it into its document
/// (named by `documentId`, by a persisted query's hash, or sent), decide whether that document
/// may run ([`TrustPolicy`]), then check the limits on the parsed document (kept by its hash
/// for the next request that sends it, and given to the request for execution).
#[derive(Clone)]
pub struct Gate {
    persisted: persisted::PersistedQueries,
    trusted: TrustPolicy,
    parsed: parsed::ParsedDocuments,
    limits: limits::QueryLimits,
}

/// The document a request turned out to hold.
struct Found {
    /// The trusted document it named, if it named one.
    trusted: Option<std::sync::Arc<service::documents::Document>>,
    /// The text's SHA-256 when it is known already (a trusted document's, a persisted query's).
    sha256: Option<String>,
    /// A persisted query sent with its hash: kept under it once admitted.
    remember: bool,
}

impl Gate {
    pub fn new(limits: &LimitsConfig, trusted: TrustPolicy) -> Self {
        let limits = limits::QueryLimits::new(limits);
        Gate { persisted: Default::default(), trusted, parsed: Default::default(), limits }
    }

    /// The request's document, parsed and given to the request, once it may run. Every refusal
    /// carries a code (a document that does not parse gets its validation code).
    pub fn admit(&self, request: &mut Request, caller: &Caller) -> Result<Arc<Parsed>, ServerError> {
        let found = self.document(request)?;
        // Hashed once: the trust rule, the persisted queries and the parsed documents share it.
        let sha256 = found.sha256.unwrap_or_else(|| sha256_hex(&request.query));
        self.trusted.admit(found.trusted.as_deref(), &request.query, &sha256, caller)?;
        if found.remember {
            self.persisted.remember(sha256.clone(), &request.query);
        }
        let parsed = self.parsed.get(&sha256, &request.query).map_err(|mut refusal| {
            tracing::info!(reason = %refusal.message, "query refused before validation");
            ensure_code(&mut refusal);
            refusal
        })?;
        self.limits.judge(&parsed.measure, &parsed.document, &request.variables)?;
        request.set_parsed_query(parsed.document.clone());
        Ok(parsed)
    }

    /// The one place a request becomes its document: `request.query` holds its text after.
    fn document(&self, request: &mut Request) -> Result<Found, ServerError> {
        let named = request
            .data
            .get(&std::any::TypeId::of::<DocumentId>())
            .and_then(|id| id.downcast_ref::<DocumentId>())
            .map(|DocumentId(id)| id.clone());
        if let Some(id) = named {
            let document = self.trusted.get(&id).ok_or_else(|| {
                ErrorCode::PersistedQueryNotFound.error(&format!("no trusted document has the id {id}"))
            })?;
            return Ok(filled(request, document));
        }
        let Some(requested) = persisted::requested(request)? else {
            return Ok(Found { trusted: None, sha256: None, remember: false });
        };
        if !requested.with_query {
            if let Some(document) = self.trusted.get(&requested.hash) {
                return Ok(filled(request, document));
            }
            request.query = self.persisted.get(&requested.hash)?.to_string();
        }
        Ok(Found { trusted: None, sha256: Some(requested.hash), remember: requested.with_query })
    }

    /// What `caller` may run, as far as a stored response's replay is concerned
    /// ([`TrustPolicy::replay_scope`]).
    pub fn replay_scope(&self, caller: &Caller) -> u64 {
        self.trusted.replay_scope(caller)
    }

    /// Persisted documents kept, and what they weigh in bytes.
    pub fn persisted_size(&self) -> (u64, u64) {
        self.persisted.size()
    }

    /// Parsed documents kept, and what they weigh in bytes.
    pub fn parsed_size(&self) -> (u64, u64) {
        self.parsed.size()
    }

    /// What every transport does to a response after executing `request`: field errors
    /// completed by the spec, and a complexity refusal explained (value, limit, what to change).
    pub fn mend(&self, response: &mut Response, request: &RequestText) {
        completion::complete_field_errors(response, request);
        self.limits.explain_complexity(response, request);
    }
}

/// `request` holding the text of the trusted `document` it named.
fn filled(request: &mut Request, document: std::sync::Arc<service::documents::Document>) -> Found {
    request.query = document.text.to_string();
    Found { sha256: Some(document.sha256.clone()), trusted: Some(document), remember: false }
}

/// The schema in SDL, as committed in `schema.graphql`. It does not depend on configuration.
pub fn sdl() -> String {
    // With `@specifiedBy`, as introspection reports it: the file and what clients see agree.
    let options = async_graphql::SDLExportOptions::new().include_specified_by();
    schema().finish().sdl_with_options(options)
}

/// The subgraph SDL a federation gateway composes (what `_service { sdl }` answers), as
/// committed in `schema.federation.graphql`.
pub fn federation_sdl() -> String {
    let options = async_graphql::SDLExportOptions::new().federation().compose_directive();
    schema().finish().sdl_with_options(options)
}

/// The operation a request would run (the one its `operationName` names, else the first) and
/// its name, from the parsed document the request keeps, so this costs no second parse; `None`
/// for a document that does not parse (execution reports it).
pub fn chosen_operation(request: &mut Request) -> Option<(Option<&str>, &Positioned<OperationDefinition>)> {
    let wanted = request.operation_name.clone();
    operation_of(request.parsed_query().ok()?, wanted.as_deref())
}

/// The operation of `document` that `wanted` names, else its first.
fn operation_of<'d>(
    document: &'d ExecutableDocument,
    wanted: Option<&str>,
) -> Option<(Option<&'d str>, &'d Positioned<OperationDefinition>)> {
    document
        .operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted)
        .map(|(name, operation)| (name.map(|n| n.as_str()), operation))
}

/// The operation's name and `query`, `mutation` or `subscription`, for metrics (`unknown`
/// when the document does not parse).
pub fn operation_label(request: &mut Request) -> (Option<String>, &'static str) {
    match chosen_operation(request) {
        Some((name, operation)) => {
            let kind = match operation.node.ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            (name.map(str::to_owned), kind)
        }
        None => (None, "unknown"),
    }
}

/// Codes on every error (counted by code), and the warnings gathered while resolving: what
/// every transport does to a response before sending it.
pub fn finish_response(response: &mut Response, hint: &CacheHint, metrics: &Metrics) {
    tag_errors(response);
    for error in &response.errors {
        if let Some(async_graphql::Value::String(code)) =
            error.extensions.as_ref().and_then(|e| e.get("code"))
        {
            metrics.error(code);
        }
    }
    hint.attach_warnings(response);
}

/// Whether `caller`'s role allows the operation: mutations need an operator.
pub fn authorize(request: &mut Request, caller: &Caller) -> Result<(), ServerError> {
    let mutation =
        chosen_operation(request).is_some_and(|(_, operation)| operation.node.ty == OperationType::Mutation);
    if mutation && caller.role() < Role::Operator {
        let message =
            format!("mutations need the operator role; this caller is a {}", caller.role().as_str());
        return Err(ErrorCode::Forbidden.error(&message));
    }
    Ok(())
}

/// Gives a code to every error without one: resolver errors carry theirs already; the rest come
/// from async-graphql rejecting the document or its variables (syntax, unknown fields, wrong or
/// missing variables, complexity). Every transport's responses pass through here.
fn tag_errors(response: &mut Response) {
    response.errors.iter_mut().for_each(ensure_code);
}

/// async-graphql's own messages for an argument or variable that is missing or does not fit
/// its type, found only when the field runs (`InputValueError`, a variable not sent): the
/// request's fault, as a validation failure is, though it carries the field's path.
const INPUT_VALUE_ERRORS: [&str; 4] =
    ["Failed to parse \"", "Expected input type \"", "Invalid value for argument \"", "Variable "];

fn ensure_code(error: &mut ServerError) {
    if error.extensions.as_ref().and_then(|extensions| extensions.get("code")).is_some() {
        return;
    }
    let input_value = INPUT_VALUE_ERRORS.iter().any(|prefix| error.message.starts_with(prefix));
    let code = if error.path.is_empty() || input_value {
        ErrorCode::GraphqlValidationFailed
    } else {
        // A resolver failed without saying how: a fault of the gateway's own, never the client's.
        tracing::error!(path = ?error.path, message = %error.message, "a resolver error without a code");
        error.message = "internal error".into();
        ErrorCode::Internal
    };
    error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
}

#[cfg(test)]
mod tests {
    use async_graphql::{PathSegment, ServerError};

    use super::ensure_code;

    fn code_of(mut error: ServerError) -> (String, String) {
        ensure_code(&mut error);
        let code = error.extensions.as_ref().and_then(|extensions| extensions.get("code")).cloned();
        (code.map(|code| code.to_string()).unwrap_or_default(), error.message)
    }

    #[test]
    fn an_error_without_a_code_is_internal_when_a_field_raised_it_and_a_validation_failure_otherwise() {
        let mut from_a_field = ServerError::new("connection reset by peer at 10.0.0.7", None);
        from_a_field.path = vec![PathSegment::Field("taskExecution".into())];
        assert_eq!(
            code_of(from_a_field),
            ("\"INTERNAL\"".into(), "internal error".into()),
            "no detail leaks"
        );

        let mut bad_argument = ServerError::new(r#"Failed to parse "Long": expected a whole number"#, None);
        bad_argument.path = vec![PathSegment::Field("executions".into())];
        assert_eq!(code_of(bad_argument).0, "\"GRAPHQL_VALIDATION_FAILED\"");

        let mut missing_variable = ServerError::new("Variable arn is not defined.", None);
        missing_variable.path = vec![PathSegment::Field("taskExecution".into())];
        assert_eq!(code_of(missing_variable).0, "\"GRAPHQL_VALIDATION_FAILED\"");

        let unknown_field = ServerError::new(r#"Unknown field "nope" on type "Query"."#, None);
        assert_eq!(code_of(unknown_field).0, "\"GRAPHQL_VALIDATION_FAILED\"");

        let mut coded = ServerError::new("DataSync has no task execution", None);
        coded.extensions.get_or_insert_with(Default::default).set("code", "NOT_FOUND");
        coded.path = vec![PathSegment::Field("taskExecution".into())];
        assert_eq!(code_of(coded).0, "\"NOT_FOUND\"", "a code given is kept");
    }
}
