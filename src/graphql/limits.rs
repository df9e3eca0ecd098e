//! Query limits, checked on the parsed document before async-graphql validates or runs it.
//!
//! async-graphql's own depth, complexity and directive checks walk the document with every
//! fragment spread expanded in place, so a 1.6 KB document of fragments that each spread the
//! previous one twice costs 2^30 steps before any limit can refuse it. Here each fragment is
//! measured once (memoised), which keeps the check linear in the document's size; once the
//! expanded size is known to be within the limit, every later walk (ours, async-graphql's
//! validation, execution) is bounded by it.
//!
//! Introspection is measured apart from data: graphql-js's standard introspection query nests
//! `ofType` deeper than any data query needs, while its cost is bounded by how many of
//! introspection's list fields (`types`, `fields`, `args`, …) nest, which is capped instead.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Request, Response, ServerError, ValidationResult, Value, Variables};

use super::{GatewaySchema, RequestText};
use crate::config::LimitsConfig;
use crate::error::ErrorCode;

/// Introspection fields that return lists: each one nested in another multiplies the answer by
/// the schema's size.
const INTROSPECTION_LISTS: [&str; 8] =
    ["types", "fields", "inputFields", "interfaces", "possibleTypes", "enumValues", "args", "directives"];
/// graphql-js's standard query nests three of them (`types { fields { args } }`).
const MAX_INTROSPECTION_LISTS: u32 = 3;
/// graphql-js's standard query is 13 deep (`__schema types fields args type` and 8 `ofType`s);
/// a little room for other clients' variants.
const MAX_INTROSPECTION_DEPTH: u32 = 16;
/// Fragments spreading fragments this deep are refused before measuring them (recursion bound).
const MAX_FRAGMENT_NESTING: usize = 64;

/// Root fields that may cost one DataSync call each, and those that may cost one per item of
/// their list argument.
const ONE_CALL_FIELDS: [&str; 2] = ["taskExecution", "node"];
const LIST_CALL_FIELDS: [(&str, &str); 2] = [("taskExecutions", "arns"), ("nodes", "ids")];

/// The limits. Every transport checks a request with [`QueryLimits::check_request`] before
/// executing it (not an async-graphql extension: any extension puts async-graphql on its slow
/// path for every field).
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_selections: u64,
    pub max_depth: u32,
    pub max_aliases: u64,
    pub max_upstream_calls: usize,
    /// Checked by async-graphql's validation (which knows each list field's multiplier); kept
    /// here to explain its refusals.
    pub max_complexity: usize,
}

impl QueryLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        QueryLimits {
            max_selections: config.max_query_selections,
            max_depth: config.max_query_depth,
            max_aliases: config.max_query_aliases,
            max_upstream_calls: config.max_upstream_calls,
            max_complexity: config.max_query_complexity,
        }
    }

    /// Checks `document`, whose [`measure`] is `measure`, and `variables` against these limits;
    /// the error names the limit it breaks. A measure depends on the document alone and is kept
    /// with it ([`super::parsed::ParsedDocuments`]); the limits are each gate's own.
    pub fn judge(
        &self,
        measure: &Measure,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<(), ServerError> {
        let checked = self.judged(measure, document, variables);
        if let Err(refusal) = &checked {
            // Logged, so that abuse shows up somewhere other than the client's screen.
            tracing::info!(reason = %refusal.message, "query refused before validation");
        }
        checked
    }

    fn judged(
        &self,
        total: &Measure,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<(), ServerError> {
        if total.selections > self.max_selections {
            return Err(refused(format!(
                "the query selects {} fields once its fragments are expanded; the limit is {} \
                 (--max-query-selections): select fewer fields, or split the query",
                total.selections, self.max_selections
            )));
        }
        if total.aliases > self.max_aliases {
            return Err(refused(format!(
                "the query uses {} aliases; the limit is {} (--max-query-aliases): read many \
                 executions with one taskExecutions(arns:) instead of aliases",
                total.aliases, self.max_aliases
            )));
        }
        if total.depth > self.max_depth {
            return Err(refused(format!(
                "the query is nested {} fields deep; the limit is {} (--max-query-depth)",
                total.depth, self.max_depth
            )));
        }
        if total.introspection_depth > MAX_INTROSPECTION_DEPTH
            || total.introspection_lists > MAX_INTROSPECTION_LISTS
        {
            return Err(refused(format!(
                "introspection nested {} levels deep with {} nested lists (types, fields, args, …); \
                 the limits are {MAX_INTROSPECTION_DEPTH} and {MAX_INTROSPECTION_LISTS}, which the \
                 standard introspection query fits: use it",
                total.introspection_depth, total.introspection_lists
            )));
        }
        // The expanded document is within `max_selections` now, so walking it is bounded.
        let calls = upstream_calls(document, variables);
        if calls > self.max_upstream_calls {
            let message = format!(
                "the query may cause {calls} DataSync calls (distinct execution ARNs across all \
                 fields); the limit is {} per request (--max-upstream-calls): split it into \
                 several requests",
                self.max_upstream_calls
            );
            return Err(ErrorCode::UpstreamCallLimit.error(&message));
        }
        Ok(())
    }
}

impl QueryLimits {
    /// async-graphql refuses a query over the complexity limit with "Query is too complex."
    /// and nothing else. The refusal is rare, so it is measured again here, with a schema that
    /// reports the complexity its validation computed, and the message says the value, the
    /// limit and what to change.
    pub fn explain_complexity(&self, response: &mut Response, request: &RequestText) {
        let Some(refusal) = response
            .errors
            .iter_mut()
            .find(|error| error.path.is_empty() && error.message == ASYNC_GRAPHQL_TOO_COMPLEX)
        else {
            return;
        };
        let complexity = complexity_of(request)
            .map_or_else(|| "over the limit".to_owned(), |complexity| complexity.to_string());
        refusal.message = format!(
            "the query's complexity is {complexity}; the limit is {} (--max-query-complexity). \
             Each field counts 1, multiplied by the size of every list around it: ask for smaller \
             pages (`first`/`last`), fewer ARNs, or fewer fields inside lists",
            self.max_complexity
        );
    }
}

const ASYNC_GRAPHQL_TOO_COMPLEX: &str = "Query is too complex.";

/// The complexity async-graphql's validation computes for `request` (with its variables, which
/// size lists through `first`), read by validating it on a schema that stops after validation.
fn complexity_of(request: &RequestText) -> Option<usize> {
    static MEASURING: LazyLock<GatewaySchema> =
        LazyLock::new(|| super::schema().extension(ReportComplexity).finish());
    let mut measured = Request::new(request.query.clone()).variables(request.variables.clone());
    if let Some(name) = &request.operation_name {
        measured = measured.operation_name(name.clone());
    }
    // Validation only: nothing in it waits, so the future is ready on its first poll.
    let response = futures::executor::block_on(MEASURING.execute(measured));
    let error = response.errors.first()?;
    match error.extensions.as_ref()?.get(COMPLEXITY) {
        Some(Value::Number(complexity)) => complexity.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

const COMPLEXITY: &str = "complexity";

/// Ends every request after validation with an error that carries the computed complexity.
struct ReportComplexity;

impl ExtensionFactory for ReportComplexity {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ReportComplexity)
    }
}

#[async_trait::async_trait]
impl Extension for ReportComplexity {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validated = next.run(ctx).await?;
        let mut report = ServerError::new("measured", None);
        report.extensions.get_or_insert_with(Default::default).set(COMPLEXITY, validated.complexity);
        Err(vec![report])
    }
}

fn refused(message: String) -> ServerError {
    ErrorCode::GraphqlValidationFailed.error(&message)
}

/// What a document's operations select with their fragments expanded: what the limits are
/// checked against. It depends on the document alone (not on the limits, the variables or the
/// schema). Refused, without a measure, when fragments nest too deep or spread themselves.
pub fn measure(document: &ExecutableDocument) -> Result<Measure, ServerError> {
    let mut measurer = Measurer { document, memo: HashMap::new(), in_progress: HashSet::new() };
    let mut total = Measure::default();
    for (_, operation) in document.operations.iter() {
        total.add(measurer.selection_set(&operation.node.selection_set.node, false, 0)?);
    }
    Ok(total)
}

/// A selection set's size with its fragments expanded; depths relative to where it stands.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measure {
    selections: u64,
    aliases: u64,
    depth: u32,
    introspection_depth: u32,
    introspection_lists: u32,
}

impl Measure {
    /// Siblings: sizes add up, depths take the deepest.
    fn add(&mut self, other: Measure) {
        self.selections = self.selections.saturating_add(other.selections);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.depth = self.depth.max(other.depth);
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
        self.introspection_lists = self.introspection_lists.max(other.introspection_lists);
    }
}

struct Measurer<'a> {
    document: &'a ExecutableDocument,
    /// Each fragment measured once, by name and whether it is used inside introspection.
    memo: HashMap<(&'a str, bool), Measure>,
    in_progress: HashSet<&'a str>,
}

impl<'a> Measurer<'a> {
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        introspection: bool,
        nesting: usize,
    ) -> Result<Measure, ServerError> {
        let mut measure = Measure::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let enters_introspection = matches!(name, "__schema" | "__type");
                    let inside = introspection || enters_introspection;
                    let child = self.selection_set(&field.selection_set.node, inside, nesting)?;
                    let mut own = Measure {
                        selections: child.selections.saturating_add(1),
                        aliases: child.aliases.saturating_add(u64::from(field.alias.is_some())),
                        ..Measure::default()
                    };
                    if inside {
                        own.introspection_depth = child.introspection_depth + 1;
                        own.introspection_lists =
                            child.introspection_lists + u32::from(INTROSPECTION_LISTS.contains(&name));
                        // The root field itself counts as one level of data depth.
                        own.depth = u32::from(enters_introspection);
                    } else {
                        own.depth = child.depth + 1;
                    }
                    measure.add(own);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    measure.add(self.fragment(name, introspection, nesting + 1)?);
                }
                Selection::InlineFragment(inline) => {
                    measure.add(self.selection_set(
                        &inline.node.selection_set.node,
                        introspection,
                        nesting,
                    )?);
                }
            }
        }
        Ok(measure)
    }

    fn fragment(
        &mut self,
        name: &'a str,
        introspection: bool,
        nesting: usize,
    ) -> Result<Measure, ServerError> {
        if let Some(measure) = self.memo.get(&(name, introspection)) {
            return Ok(*measure);
        }
        // An unknown fragment is left to validation, which names it.
        let Some((key, fragment)) = self.document.fragments.get_key_value(name) else {
            return Ok(Measure::default());
        };
        if nesting > MAX_FRAGMENT_NESTING {
            return Err(refused(format!("fragments spread fragments more than {MAX_FRAGMENT_NESTING} deep")));
        }
        if !self.in_progress.insert(key.as_str()) {
            return Err(refused(format!("fragment `{name}` spreads itself")));
        }
        let measure = self.selection_set(&fragment.node.selection_set.node, introspection, nesting)?;
        self.in_progress.remove(key.as_str());
        self.memo.insert((key.as_str(), introspection), measure);
        Ok(measure)
    }
}

/// The most DataSync calls the query's operations can cause: distinct ARNs asked for by root
/// fields that read executions (repeated ARNs are fetched once). Arguments held in variables
/// are counted from the variables; an argument that cannot be counted here is bounded while
/// executing instead.
fn upstream_calls(document: &ExecutableDocument, variables: &Variables) -> usize {
    let mut arns: HashSet<String> = HashSet::new();
    let mut uncounted = 0usize;
    for (_, operation) in document.operations.iter() {
        if operation.node.ty != OperationType::Query {
            continue;
        }
        let mut add = |value: Value| match value {
            Value::String(arn) => {
                arns.insert(arn);
            }
            _ => uncounted += 1,
        };
        for_each_root_field(document, &operation.node.selection_set.node, &mut |field| {
            let name = field.name.node.as_str();
            let argument = |argument: &str| {
                field.get_argument(argument).and_then(|value| {
                    value
                        .node
                        .clone()
                        .into_const_with(|name: Name| variables.get(&name).cloned().ok_or(()))
                        .ok()
                })
            };
            if ONE_CALL_FIELDS.contains(&name) {
                add(argument(if name == "node" { "id" } else { "arn" }).unwrap_or(Value::Null));
            } else if let Some((_, list)) = LIST_CALL_FIELDS.iter().find(|(field, _)| *field == name) {
                match argument(list) {
                    Some(Value::List(items)) => items.into_iter().for_each(&mut add),
                    other => add(other.unwrap_or(Value::Null)),
                }
            }
        });
    }
    arns.len() + uncounted
}

/// Calls `visit` for every field of a root selection set, fragments expanded.
fn for_each_root_field<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    visit: &mut dyn FnMut(&'a async_graphql::parser::types::Field),
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => visit(&field.node),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    for_each_root_field(document, &fragment.node.selection_set.node, visit);
                }
            }
            Selection::InlineFragment(inline) => {
                for_each_root_field(document, &inline.node.selection_set.node, visit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits {
            max_selections: 2_000,
            max_depth: 12,
            max_aliases: 30,
            max_upstream_calls: 100,
            max_complexity: 20_000,
        }
    }

    fn check(query: &str, variables: serde_json::Value) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        measure(&document)
            .and_then(|measure| limits().judge(&measure, &document, &variables))
            .map_err(|error| error.message)
    }

    /// Fragments F0…F{n}, each spreading the previous one twice.
    fn fragment_bomb(n: usize) -> String {
        let mut query = String::from("query { taskExecution(arn: \"a\") { ...F0 } }\n");
        query.push_str("fragment F1 on TaskExecution { status }\n");
        query = query.replace("...F0", &format!("...F{n}"));
        for i in 2..=n {
            query.push_str(&format!("fragment F{i} on TaskExecution {{ ...F{p} ...F{p} }}\n", p = i - 1));
        }
        query
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        let error = check(&fragment_bomb(60), serde_json::json!({})).unwrap_err();
        assert!(
            error.contains("selects 576460752303423489 fields") && error.contains("limit is 2000"),
            "{error}"
        );
        assert!(check(&fragment_bomb(10), serde_json::json!({})).is_ok());
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let error = check(
            "{ taskExecution(arn: \"a\") { ...A } } fragment A on TaskExecution { ...B } fragment B on TaskExecution { ...A }",
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(error.contains("spreads itself"), "{error}");
    }

    #[test]
    fn distinct_arns_are_counted_across_aliases_and_variables() {
        let arns: Vec<String> = (0..60).map(|i| format!("arn-{i}")).collect();
        let query = "query($a: [ID!]!, $b: [ID!]!) { x: taskExecutions(arns: $a) { status } y: taskExecutions(arns: $b) { status } z: taskExecution(arn: \"arn-0\") { status } }";
        let same = check(query, serde_json::json!({ "a": arns, "b": arns }));
        assert!(same.is_ok(), "60 distinct ARNs: {same:?}");
        let more: Vec<String> = (60..120).map(|i| format!("arn-{i}")).collect();
        let error = check(query, serde_json::json!({ "a": arns, "b": more })).unwrap_err();
        assert!(error.contains("120 DataSync calls"), "{error}");
    }

    #[test]
    fn introspection_is_measured_apart_from_data() {
        let deep_type_ref = "ofType { ".repeat(9) + "name" + &" }".repeat(9);
        let standard_like =
            format!("{{ __schema {{ types {{ fields {{ args {{ type {{ {deep_type_ref} }} }} }} }} }} }}");
        assert!(check(&standard_like, serde_json::json!({})).is_ok());
        let abusive = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert!(check(abusive, serde_json::json!({})).unwrap_err().contains("introspection"));
    }
}
