//! The schema, built twice, so that a document is validated by every rule once rather than on
//! every request. The same operation with other variables (a dashboard's poll, each page of
//! history) would otherwise spend a tenth of its time proving again what its text proved
//! already.
//!
//! A document's first run, under a schema, is validated by every rule (async-graphql's
//! `Strict` mode). Once it has run, its text has passed them under that schema: of those rules
//! only one looks at anything but the text and the schema, `ArgumentsOfCorrectType`, which
//! checks the variables' values against the arguments they fill. So later requests with the
//! same text run on the twin built with `Fast` validation, which keeps what depends on the
//! request (fragment cycles, complexity and depth against the schema's limits), and the
//! variables' values are checked here first, against the types the operation declares them
//! with: validation proved each declared type fits every argument its variable fills. A value
//! of a type this module has no check for, or one that does not fit, takes the full
//! validation, which answers with the error the spec asks for: nothing is skipped on a guess.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use async_graphql::parser::types::{BaseType, OperationDefinition, Type};
use async_graphql::{InputType, Request, Response, ScalarType, ValidationMode, Value, Variables, ID};
use chrono::{DateTime, Utc};

use super::parsed::Parsed;
use super::{operation_of, GatewaySchema};
use crate::graphql::webhook::WebhookDeliveryState;
use crate::model::{ExecutionOrder, Long, StatsDimension};
use crate::service::executions::Consistency;

/// Which pair of schemas a document passed every rule under, as [`Parsed`] records it.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone)]
pub struct Schemas {
    /// Every rule: a document's first run, and subscriptions.
    strict: GatewaySchema,
    /// The same schema for documents `strict` has run.
    fast: GatewaySchema,
    id: u64,
}

impl Schemas {
    /// The pair `build` makes, called once with each validation mode.
    pub fn new(build: impl Fn(ValidationMode) -> GatewaySchema) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Schemas { strict: build(ValidationMode::Strict), fast: build(ValidationMode::Fast), id }
    }

    /// The schema that validates every request: what subscriptions' streams run on.
    pub fn strict(&self) -> &GatewaySchema {
        &self.strict
    }

    /// Executes `request`, whose document is `parsed`: fully validated unless its text ran under
    /// these schemas before and its variables fit their declared types.
    pub async fn execute(&self, parsed: &Parsed, request: Request) -> Response {
        if parsed.ran_under() == self.id && variables_fit(parsed, &request) {
            return self.fast.execute(request).await;
        }
        let response = self.strict.execute(request).await;
        // A request refused by validation has errors without a path; one that executed has
        // data, and each of its errors names the field that raised it.
        if response.errors.iter().all(|error| !error.path.is_empty()) {
            parsed.ran(self.id);
        }
        response
    }
}

/// Whether every variable sent for the operation to run fits the type the operation declares
/// it with. A variable not sent is not checked by full validation either: it takes its default,
/// or the field that needs it fails.
fn variables_fit(parsed: &Parsed, request: &Request) -> bool {
    let Some((_, operation)) = operation_of(&parsed.document, request.operation_name.as_deref()) else {
        return false;
    };
    declared_fit(&operation.node, &request.variables)
}

fn declared_fit(operation: &OperationDefinition, variables: &Variables) -> bool {
    operation.variable_definitions.iter().all(|definition| {
        let definition = &definition.node;
        variables.get(&definition.name.node).is_none_or(|value| fits(&definition.var_type.node, value))
    })
}

/// As GraphQL's input coercion judges a value for `ty`: null only where nullable, a list item
/// by item, a single value where a list is expected as a list of one.
fn fits(ty: &Type, value: &Value) -> bool {
    match (&ty.base, value) {
        (_, Value::Null) => ty.nullable,
        (BaseType::List(item), Value::List(items)) => items.iter().all(|value| fits(item, value)),
        (BaseType::List(item), value) => fits(item, value),
        (BaseType::Named(name), value) => named_fits(name, value),
    }
}

/// A value's check for a type: as async-graphql's validation checks it.
type Check = fn(&Value) -> bool;

/// The scalars and enums the schema's arguments take, by their GraphQL names. Input objects are
/// not here: their parsing ignores fields the type lacks, which validation refuses, so a
/// variable of one always takes the full validation.
static CHECKS: LazyLock<HashMap<String, Check>> = LazyLock::new(|| {
    HashMap::from([
        scalar::<ID>(),
        scalar::<String>(),
        scalar::<i32>(),
        scalar::<f64>(),
        scalar::<bool>(),
        scalar::<Long>(),
        scalar::<DateTime<Utc>>(),
        enumerated::<Consistency>(),
        enumerated::<ExecutionOrder>(),
        enumerated::<StatsDimension>(),
        enumerated::<WebhookDeliveryState>(),
    ])
});

fn named_fits(name: &str, value: &Value) -> bool {
    CHECKS.get(name).is_some_and(|fits| fits(value))
}

/// What validation asks of a scalar (`is_valid`), and what the resolver will (`parse`).
fn scalar<T: ScalarType + InputType>() -> (String, Check) {
    (T::type_name().into_owned(), |value| {
        T::is_valid(value) && <T as ScalarType>::parse(value.clone()).is_ok()
    })
}

fn enumerated<T: InputType>() -> (String, Check) {
    (T::type_name().into_owned(), |value| T::parse(Some(value.clone())).is_ok())
}

#[cfg(test)]
mod tests {
    use async_graphql::{Request, Variables};
    use serde_json::json;

    use super::*;
    use crate::graphql::parsed::ParsedDocuments;
    use crate::service::documents::manifest::sha256_hex;

    /// A pair of bare schemas (no services: the fields used here resolve without them), with
    /// `max_complexity`.
    fn schemas(max_complexity: usize) -> Schemas {
        Schemas::new(|mode| {
            crate::graphql::schema().validation_mode(mode).limit_complexity(max_complexity).finish()
        })
    }

    const TYPES: &str = "query Types($name: String!, $include: Boolean!) {
        __type(name: $name) { name fields(includeDeprecated: $include) { name } } }";

    fn request(variables: serde_json::Value, parsed: &Parsed) -> Request {
        let mut request = Request::new(TYPES).variables(Variables::from_json(variables));
        request.set_parsed_query(parsed.document.clone());
        request
    }

    #[tokio::test]
    async fn a_document_skips_the_rules_only_under_the_schemas_it_passed_them_under() {
        let documents = ParsedDocuments::default();
        let parsed = documents.get(&sha256_hex(TYPES), TYPES).unwrap();
        let (first, other) = (schemas(1_000), schemas(1_000));
        let fine = json!({ "name": "Query", "include": true });

        let response = first.execute(&parsed, request(fine.clone(), &parsed)).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(parsed.ran_under(), first.id, "ran: its text passed every rule under `first`");
        assert!(variables_fit(&parsed, &request(fine.clone(), &parsed)));

        // The next request runs on the fast twin: shown by a pair whose twin alone has a
        // complexity limit the document is over.
        let telling = Schemas::new(|mode| {
            let limit = match mode {
                ValidationMode::Strict => 1_000,
                ValidationMode::Fast => 2,
            };
            crate::graphql::schema().validation_mode(mode).limit_complexity(limit).finish()
        });
        let strict = telling.execute(&parsed, request(fine.clone(), &parsed)).await;
        assert!(strict.errors.is_empty(), "the first run is strict: {:?}", strict.errors);
        let fast = telling.execute(&parsed, request(fine.clone(), &parsed)).await;
        assert_eq!(fast.errors[0].message, "Query is too complex.", "the second runs on the twin");

        // Another pair of schemas validates it again, then owns the record.
        assert_ne!(other.id, first.id);
        let again = other.execute(&parsed, request(fine, &parsed)).await;
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        assert_eq!(parsed.ran_under(), other.id);
    }

    #[tokio::test]
    async fn variables_that_do_not_fit_get_the_full_validations_answer() {
        let documents = ParsedDocuments::default();
        let parsed = documents.get(&sha256_hex(TYPES), TYPES).unwrap();
        let schemas = schemas(1_000);
        let fine = json!({ "name": "Query", "include": true });
        schemas.execute(&parsed, request(fine, &parsed)).await;
        assert_eq!(parsed.ran_under(), schemas.id);

        for (variables, expected) in [
            (json!({ "name": 7, "include": true }), "Invalid value for argument \"name\""),
            (
                json!({ "name": "Query", "include": "yes" }),
                "Invalid value for argument \"includeDeprecated\"",
            ),
            (json!({ "name": null, "include": true }), "Invalid value for argument \"name\""),
        ] {
            assert!(!variables_fit(&parsed, &request(variables.clone(), &parsed)), "{variables}");
            let refused = schemas.execute(&parsed, request(variables.clone(), &parsed)).await;
            // Refused by validation, as the document's first run would be: no data at all.
            assert_eq!(refused.data, async_graphql::Value::Null, "{variables}");
            assert!(refused.errors[0].message.starts_with(expected), "{variables}: {:?}", refused.errors);
            assert!(refused.errors[0].path.is_empty());
        }
        // An unknown type name is never judged here.
        assert!(!named_fits("ExecutionFilter", &Value::from_json(json!({})).unwrap()));
        // Lists and nulls as coercion has them.
        let ids = Type::new("[ID!]").unwrap();
        assert!(fits(&ids, &Value::from_json(json!(["a", 1])).unwrap()));
        assert!(fits(&ids, &Value::from_json(json!("a")).unwrap()), "one value for a list");
        assert!(fits(&ids, &Value::Null));
        assert!(!fits(&ids, &Value::from_json(json!(["a", null])).unwrap()));
        assert!(!fits(&ids, &Value::from_json(json!([true])).unwrap()));
    }

    #[tokio::test]
    async fn the_limits_hold_on_every_request_of_a_document_that_passed_the_rules() {
        let documents = ParsedDocuments::default();
        let parsed = documents.get(&sha256_hex(TYPES), TYPES).unwrap();
        let fine = json!({ "name": "Query", "include": true });
        let roomy = schemas(1_000);
        roomy.execute(&parsed, request(fine.clone(), &parsed)).await;
        assert_eq!(parsed.ran_under(), roomy.id);
        // The same text under schemas with a lower complexity limit: refused, and the document
        // keeps no record of having run under them.
        let tight = schemas(2);
        let refused = tight.execute(&parsed, request(fine.clone(), &parsed)).await;
        assert_eq!(refused.errors[0].message, "Query is too complex.");
        assert_eq!(parsed.ran_under(), roomy.id);
        // And a request that skips the rules is still held to the limit of the schema it runs on.
        let refused_fast = tight.fast.execute(request(fine, &parsed)).await;
        assert_eq!(refused_fast.errors[0].message, "Query is too complex.");
    }
}
