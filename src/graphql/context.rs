//! What every resolver takes from a request's context: who is asking, the request's cache
//! hint, the services, and the typed identifiers its text arguments parse into. The roots and
//! object types all read through here, so none of them imports another for a helper.

use async_graphql::{Context, ErrorExtensions, Result};
use tracing::Instrument;

use super::cache_hint::CacheHint;
use super::TaskExecutionNode;
use crate::error::GatewayError;
use crate::model::{ExecutionArn, TaskArn};
use crate::request::Caller;
use crate::service::executions::{Consistency, ExecutionService};
use crate::service::index::{IndexService, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::service::tasks::TaskService;

/// A service's answer as a GraphQL result, its error carrying `extensions.code`. (A plain `?`
/// would take async-graphql's blanket conversion of every `Display` type, dropping the code.)
pub(super) trait Coded<T> {
    fn coded(self) -> Result<T>;
}

impl<T> Coded<T> for Result<T, GatewayError> {
    fn coded(self) -> Result<T> {
        self.map_err(|error| error.extend())
    }
}

/// An execution ARN sent as text: parsed here, once, for everything below.
pub(super) fn execution_arn(text: &str) -> Result<ExecutionArn, GatewayError> {
    ExecutionArn::parse(text).map_err(|invalid| GatewayError::BadUserInput(invalid.to_string()))
}

/// A task ARN sent as text, parsed as [`execution_arn`] is.
pub(super) fn task_arn(text: &str) -> Result<TaskArn, GatewayError> {
    TaskArn::parse(text).map_err(|invalid| GatewayError::BadUserInput(invalid.to_string()))
}

/// Who sent the request: every transport puts a [`Caller`] in the request's data.
pub(super) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    ctx.data_opt::<Caller>().ok_or_else(|| {
        tracing::error!("a GraphQL request arrived without its caller");
        GatewayError::Internal.extend()
    })
}

/// The request's cache hint; one that the transport did not provide is simply not read.
pub(super) fn cache_hint(ctx: &Context<'_>) -> CacheHint {
    ctx.data_opt::<CacheHint>().cloned().unwrap_or_default()
}

pub(super) fn executions<'a>(ctx: &Context<'a>) -> &'a ExecutionService {
    ctx.data_unchecked::<ExecutionService>()
}

/// The task service, for a read: every read of tasks and locations comes through here, so that
/// the request's cache hint knows of it (the response cache does not replay such answers).
pub(super) fn tasks<'a>(ctx: &Context<'a>) -> &'a TaskService {
    cache_hint(ctx).served_other();
    ctx.data_unchecked::<TaskService>()
}

/// The index service; without a database, the error every index field answers.
pub(super) fn index<'a>(ctx: &Context<'a>) -> Result<&'a IndexService> {
    ctx.data_opt::<IndexService>().ok_or_else(|| GatewayError::HistoryNotConfigured.extend())
}

/// One execution, read as `taskExecution` reads it.
pub(super) async fn read_execution(
    ctx: &Context<'_>,
    arn: &ExecutionArn,
    consistency: Consistency,
) -> Result<TaskExecutionNode> {
    let fetched = executions(ctx).get(arn, consistency, caller(ctx)?).instrument(resolver_span(ctx)).await;
    let fetched = fetched.coded()?;
    cache_hint(ctx).served(&fetched);
    Ok(fetched.into())
}

/// A history or index page's complexity: its selection's, times the page size asked for.
pub(super) fn page_complexity(size: Option<i32>, child_complexity: usize) -> usize {
    sized_complexity(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, child_complexity)
}

/// A list's complexity: its selection's, times the size asked for (`default` when none, at
/// most `max`).
pub(super) fn sized_complexity(
    size: Option<i32>,
    default: usize,
    max: usize,
    child_complexity: usize,
) -> usize {
    let size = size.map_or(default, |size| usize::try_from(size).unwrap_or(0).min(max));
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// The span of a resolver that reads or writes elsewhere (DataSync, PostgreSQL): its part of a
/// request's trace, named by the field and its path in the response. DEBUG: traces only.
pub(super) fn resolver_span(ctx: &Context<'_>) -> tracing::Span {
    // Field values are evaluated only when the span is enabled: without an exporter, not at all.
    let field = &ctx.item.node.name.node;
    tracing::debug_span!(
        "resolve",
        otel.name = %format_args!("resolve {field}"),
        graphql.field.name = %field,
        graphql.field.path = %ctx.path_node.as_ref().map(ToString::to_string).unwrap_or_default(),
    )
}
