//! `schema.graphql` is the contract with clients: the code must serve exactly it.
//!
//! Two checks: the SDL the code prints equals the file (text), and what a running gateway
//! answers to the standard introspection query describes the same schema as the file
//! (structurally: every type, field, argument with its default, enum value, interface, union
//! member, input field, description, deprecation and directive, compared by name). The second
//! sees what clients see, so a difference between building the schema for printing and for
//! serving (a type registered only in one, an option set in one) fails it.

use std::collections::BTreeMap;

use async_graphql::parser::types::{
    ConstDirective, DirectiveLocation, FieldDefinition, InputValueDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql::Positioned;
use serde_json::{json, Value};

use crate::common::TestGateway;

#[test]
fn the_committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql is committed");
    let served = datasync_gateway::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql differs from the schema the code serves. If the change is intended, run\n  \
         cargo run -- print-schema > schema.graphql\nand explain any breaking change in the commit."
    );
}

fn committed(file: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The standard introspection query (graphql-js's, as GraphiQL and code generators send it)
/// against a running gateway; its `__schema`.
async fn introspect(gateway: &TestGateway) -> Value {
    let query = committed("tests/clients/introspection-query.graphql");
    let response = gateway.query(&query, json!({})).await;
    assert_eq!(response["errors"], Value::Null, "introspection failed: {response:.600}");
    response["data"]["__schema"].clone()
}

#[tokio::test]
async fn the_served_schema_is_the_committed_one() {
    let gateway = TestGateway::start().await;
    let served = from_introspection(&introspect(&gateway).await);
    let file = from_sdl(&committed("schema.graphql"));
    assert!(served.len() > 500, "a whole schema was read: {} facts", served.len());
    let differences = differences(&file, &served);
    assert!(
        differences.is_empty(),
        "the schema the gateway serves differs from schema.graphql (left: the file, right: served):\n{}",
        differences.join("\n")
    );
}

#[tokio::test]
async fn the_served_federation_sdl_is_the_committed_one() {
    let gateway = TestGateway::start().await;
    let response = gateway.query("{ _service { sdl } }", json!({})).await;
    let served = response["data"]["_service"]["sdl"].as_str().unwrap_or_else(|| panic!("{response:.600}"));
    let file = committed("schema.federation.graphql");
    if served != file {
        let (served, file): (Vec<&str>, Vec<&str>) = (served.lines().collect(), file.lines().collect());
        let line = served.iter().zip(&file).position(|(a, b)| a != b).unwrap_or(served.len().min(file.len()));
        panic!(
            "_service {{ sdl }} differs from schema.federation.graphql from line {}:\n  file:   {:?}\n  served: {:?}",
            line + 1,
            file.get(line),
            served.get(line)
        );
    }
}

/// The comparison finds what it is for: each change to a copy of the file is reported, by
/// the type and member it touches.
#[test]
fn the_comparison_reports_each_kind_of_change_by_name() {
    let sdl = committed("schema.graphql");
    let original = from_sdl(&sdl);
    assert!(differences(&original, &from_sdl(&sdl)).is_empty());
    let changed = |from: &str, to: &str| {
        assert!(sdl.contains(from), "the schema no longer has {from:?}: pick another example");
        differences(&original, &from_sdl(&sdl.replacen(from, to, 1)))
    };
    let reported = |differences: Vec<String>, expected: &str| {
        assert!(
            differences.iter().any(|difference| difference.contains(expected)),
            "expected a difference naming {expected:?}, got {differences:#?}"
        );
    };
    // A field removed, with its description.
    let field = "\tstatus: TaskExecutionStatus!\n";
    let at = sdl.find(field).expect("TaskExecution.status");
    let description_end = sdl[..at].rfind("\t\"\"\"\n").unwrap();
    let description_start = sdl[..description_end].rfind("\t\"\"\"\n").unwrap();
    reported(changed(&sdl[description_start..at + field.len()], ""), "TaskExecution.status: type");
    // An argument's default.
    reported(
        changed(
            "consistency: Consistency = CACHED): TaskExecution",
            "consistency: Consistency = STRONG): TaskExecution",
        ),
        "Query.taskExecution(consistency) default",
    );
    // A type made non-null.
    reported(
        changed(
            "taskExecution(arn: ID!, consistency: Consistency = CACHED): TaskExecution\n",
            "taskExecution(arn: ID!, consistency: Consistency = CACHED): TaskExecution!\n",
        ),
        "Query.taskExecution: type",
    );
    // An enum value.
    reported(changed("\tBEST_EFFORT\n", "\tBEST_GUESS\n"), "Atime.BEST_EFFORT");
    // A union member.
    reported(
        changed("union _Entity = Task | TaskExecution", "union _Entity = Task"),
        "_Entity member TaskExecution",
    );
    // An interface no longer implemented.
    let implements =
        sdl.lines().find(|line| line.starts_with("type ") && line.contains(" implements Node")).unwrap();
    let type_name = implements.split_whitespace().nth(1).unwrap().to_owned();
    reported(changed(implements, &format!("type {type_name} {{")), &format!("{type_name} implements Node"));
    // A description.
    reported(changed("Ignore access times.", "Ignore access times!"), "Atime.NONE description");
    // A directive's definition.
    reported(changed("directive @skip(if: Boolean!)", "directive @skip(unless: Boolean!)"), "@skip(if)");
    // A scalar's @specifiedBy.
    reported(changed("doc/html/rfc3339", "doc/html/rfc3339x"), "DateTime specifiedBy");
    // A deprecation.
    reported(
        changed("\tBEST_EFFORT\n", "\tBEST_EFFORT @deprecated(reason: \"no\")\n"),
        "Atime.BEST_EFFORT deprecated",
    );
    // A root operation type.
    reported(changed("\tsubscription: Subscription\n", ""), "schema subscription");
}

// ------------------------------------------------------------------------------------------
// A schema as a set of facts, "where → what" (`TaskExecution.status: type` → `TaskExecution
// Status!`), built from the SDL or from introspection, and compared fact by fact.

type Facts = BTreeMap<String, String>;

/// What is in one and not the other, or differs; empty when they agree. A specified directive
/// (`@skip`, …) defined on one side only is not a difference (see [`SPECIFIED_DIRECTIVES`]);
/// defined on both, its definitions must agree but for descriptions: the spec gives those, and
/// async-graphql serves its arguments' but leaves them out of the SDL it prints.
fn differences(file: &Facts, served: &Facts) -> Vec<String> {
    let one_sided = |key: &str| {
        let Some(directive) = key.strip_prefix('@') else { return false };
        let name = directive.split([' ', '(']).next().unwrap_or_default();
        let defined = format!("@{name}");
        SPECIFIED_DIRECTIVES.contains(&name)
            && (!file.contains_key(&defined)
                || !served.contains_key(&defined)
                || key.ends_with(" description"))
    };
    let mut differences = Vec::new();
    for (key, value) in file {
        if one_sided(key) {
            continue;
        }
        match served.get(key) {
            None => differences.push(format!("  {key}: {value:?} | (missing)")),
            Some(other) if other != value => differences.push(format!("  {key}: {value:?} | {other:?}")),
            Some(_) => {}
        }
    }
    for (key, value) in served {
        if !file.contains_key(key) && !one_sided(key) {
            differences.push(format!("  {key}: (missing) | {value:?}"));
        }
    }
    differences
}

/// The scalars and directives every GraphQL schema has: graphql-js (what the Node check and
/// most clients use) adds them to a schema that does not define them, so neither side need
/// list them. The introspection types (`__*`) likewise.
const BUILT_IN_SCALARS: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];
const SPECIFIED_DIRECTIVES: [&str; 5] = ["include", "skip", "deprecated", "specifiedBy", "oneOf"];

fn is_built_in_type(name: &str) -> bool {
    name.starts_with("__") || BUILT_IN_SCALARS.contains(&name)
}

/// A default value in one spelling (GraphQL's, as async-graphql prints a constant), whether it
/// came from the SDL or as introspection's `defaultValue` text.
fn normalised_default(text: &str) -> String {
    let document = async_graphql::parser::parse_query(format!("{{ f(a: {text}) }}"))
        .unwrap_or_else(|error| panic!("default value {text:?} does not parse: {error}"));
    let async_graphql::parser::types::DocumentOperations::Single(operation) = document.operations else {
        unreachable!()
    };
    let selection = &operation.node.selection_set.node.items[0].node;
    let async_graphql::parser::types::Selection::Field(field) = selection else { unreachable!() };
    let value = field.node.arguments[0].1.node.clone();
    value.into_const().expect("a default value has no variables").to_string()
}

/// `(CamelCase Debug name)` → `SCREAMING_SNAKE`, as introspection names directive locations.
fn location_name(location: &DirectiveLocation) -> String {
    let mut name = String::new();
    for (i, c) in format!("{location:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

fn description(facts: &mut Facts, at: &str, description: Option<&str>) {
    if let Some(description) = description.filter(|description| !description.is_empty()) {
        facts.insert(format!("{at} description"), description.to_owned());
    }
}

fn deprecation(facts: &mut Facts, at: &str, reason: Option<String>) {
    if let Some(reason) = reason {
        facts.insert(format!("{at} deprecated"), reason);
    }
}

/// One argument or input field, at `at` (`Query.taskExecution(arn)`, `ExecutionFilter.status`).
fn input_value(facts: &mut Facts, at: &str, ty: String, default: Option<String>, desc: Option<&str>) {
    facts.insert(format!("{at}: type"), ty);
    if let Some(default) = default {
        facts.insert(format!("{at} default"), normalised_default(&default));
    }
    description(facts, at, desc);
}

// ---- From the SDL -------------------------------------------------------------------------

/// `@deprecated`'s reason (the spec's default when it gives none), and every directive the
/// facts cannot otherwise say, as a fact of its own: introspection cannot show those, so one in
/// the file is reported as missing from what is served rather than passed over.
fn sdl_directives(facts: &mut Facts, at: &str, directives: &[Positioned<ConstDirective>]) {
    for directive in directives {
        let directive = &directive.node;
        match directive.name.node.as_str() {
            "deprecated" => {
                let reason = directive.get_argument("reason").map(|reason| match &reason.node {
                    async_graphql::Value::String(reason) => reason.clone(),
                    other => other.to_string(),
                });
                deprecation(facts, at, Some(reason.unwrap_or_else(|| "No longer supported".to_owned())));
            }
            "specifiedBy" => {
                let url = directive.get_argument("url").map(|url| match &url.node {
                    async_graphql::Value::String(url) => url.clone(),
                    other => other.to_string(),
                });
                facts.insert(format!("{at} specifiedBy"), url.unwrap_or_default());
            }
            "oneOf" => {
                facts.insert(format!("{at} oneOf"), "true".into());
            }
            other => {
                let arguments: Vec<String> = directive
                    .arguments
                    .iter()
                    .map(|(name, value)| format!("{}: {}", name.node, value.node))
                    .collect();
                facts.insert(format!("{at} @{other}"), arguments.join(", "));
            }
        }
    }
}

fn sdl_input_value(facts: &mut Facts, at: &str, value: &InputValueDefinition) {
    let default = value.default_value.as_ref().map(|default| default.node.to_string());
    input_value(
        facts,
        at,
        value.ty.node.to_string(),
        default,
        value.description.as_ref().map(|d| d.node.as_str()),
    );
    sdl_directives(facts, at, &value.directives);
}

fn sdl_fields(facts: &mut Facts, type_name: &str, fields: &[Positioned<FieldDefinition>]) {
    for field in fields {
        let field = &field.node;
        let at = format!("{type_name}.{}", field.name.node);
        facts.insert(format!("{at}: type"), field.ty.node.to_string());
        description(facts, &at, field.description.as_ref().map(|d| d.node.as_str()));
        sdl_directives(facts, &at, &field.directives);
        for argument in &field.arguments {
            sdl_input_value(facts, &format!("{at}({})", argument.node.name.node), &argument.node);
        }
    }
}

/// Whether the file declares `@name` repeatable. From the text: async-graphql-parser 7.2.1
/// reads every directive definition as repeatable (its grammar's `repeatable` rule matches the
/// empty string, so the rule is always "present").
fn declared_repeatable(sdl: &str, name: &str) -> bool {
    let start = sdl.find(&format!("directive @{name}")).expect("the directive is defined");
    let definition = &sdl[start..];
    let end = definition.find(" on ").expect("a directive definition has locations");
    definition[..end].split_whitespace().any(|word| word == "repeatable")
}

fn from_sdl(sdl: &str) -> Facts {
    let document = async_graphql::parser::parse_schema(sdl).expect("the SDL parses");
    let mut facts = Facts::new();
    for definition in document.definitions {
        match definition {
            TypeSystemDefinition::Schema(schema) => {
                let schema = schema.node;
                for (operation, name) in [
                    ("query", schema.query),
                    ("mutation", schema.mutation),
                    ("subscription", schema.subscription),
                ] {
                    if let Some(name) = name {
                        facts.insert(format!("schema {operation}"), name.node.to_string());
                    }
                }
            }
            TypeSystemDefinition::Type(definition) => {
                let definition = definition.node;
                let name = definition.name.node.to_string();
                assert!(!definition.extend, "{name}: an extension in schema.graphql is not compared");
                if is_built_in_type(&name) {
                    continue;
                }
                let kind = match &definition.kind {
                    TypeKind::Scalar => "SCALAR",
                    TypeKind::Object(_) => "OBJECT",
                    TypeKind::Interface(_) => "INTERFACE",
                    TypeKind::Union(_) => "UNION",
                    TypeKind::Enum(_) => "ENUM",
                    TypeKind::InputObject(_) => "INPUT_OBJECT",
                };
                facts.insert(format!("type {name}"), kind.into());
                description(&mut facts, &name, definition.description.as_ref().map(|d| d.node.as_str()));
                sdl_directives(&mut facts, &name, &definition.directives);
                match &definition.kind {
                    TypeKind::Scalar => {}
                    TypeKind::Object(object) => {
                        for interface in &object.implements {
                            facts.insert(format!("{name} implements {}", interface.node), String::new());
                        }
                        sdl_fields(&mut facts, &name, &object.fields);
                    }
                    TypeKind::Interface(interface) => {
                        for other in &interface.implements {
                            facts.insert(format!("{name} implements {}", other.node), String::new());
                        }
                        sdl_fields(&mut facts, &name, &interface.fields);
                    }
                    TypeKind::Union(union) => {
                        for member in &union.members {
                            facts.insert(format!("{name} member {}", member.node), String::new());
                        }
                    }
                    TypeKind::Enum(enumeration) => {
                        for value in &enumeration.values {
                            let at = format!("{name}.{}", value.node.value.node);
                            facts.insert(at.clone(), "enum value".into());
                            description(
                                &mut facts,
                                &at,
                                value.node.description.as_ref().map(|d| d.node.as_str()),
                            );
                            sdl_directives(&mut facts, &at, &value.node.directives);
                        }
                    }
                    TypeKind::InputObject(input) => {
                        for field in &input.fields {
                            sdl_input_value(
                                &mut facts,
                                &format!("{name}.{}", field.node.name.node),
                                &field.node,
                            );
                        }
                    }
                }
            }
            TypeSystemDefinition::Directive(directive) => {
                let directive = directive.node;
                let name = directive.name.node.to_string();
                let mut locations: Vec<String> =
                    directive.locations.iter().map(|location| location_name(&location.node)).collect();
                locations.sort();
                facts.insert(format!("@{name}"), locations.join(" | "));
                facts.insert(format!("@{name} repeatable"), declared_repeatable(sdl, &name).to_string());
                description(
                    &mut facts,
                    &format!("@{name}"),
                    directive.description.as_ref().map(|d| d.node.as_str()),
                );
                for argument in &directive.arguments {
                    sdl_input_value(
                        &mut facts,
                        &format!("@{name}({})", argument.node.name.node),
                        &argument.node,
                    );
                }
            }
        }
    }
    facts
}

// ---- From introspection -------------------------------------------------------------------

/// A type reference as SDL writes it: `[ID!]!`.
fn type_ref(ty: &Value) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&ty["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or_else(|| panic!("a named type: {ty}")).to_owned(),
    }
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn introspected_deprecation(facts: &mut Facts, at: &str, item: &Value) {
    if item["isDeprecated"] == true {
        let reason = item["deprecationReason"].as_str().unwrap_or("No longer supported");
        deprecation(facts, at, Some(reason.to_owned()));
    }
}

fn introspected_input_value(facts: &mut Facts, at: &str, value: &Value) {
    let default = value["defaultValue"].as_str().map(str::to_owned);
    input_value(facts, at, type_ref(&value["type"]), default, value["description"].as_str());
    introspected_deprecation(facts, at, value);
}

fn from_introspection(schema: &Value) -> Facts {
    let mut facts = Facts::new();
    for operation in ["query", "mutation", "subscription"] {
        if let Some(name) = schema[format!("{operation}Type")]["name"].as_str() {
            facts.insert(format!("schema {operation}"), name.to_owned());
        }
    }
    for ty in items(&schema["types"]) {
        let name = ty["name"].as_str().expect("a type has a name").to_owned();
        if is_built_in_type(&name) {
            continue;
        }
        let kind = ty["kind"].as_str().expect("a type has a kind");
        facts.insert(format!("type {name}"), kind.to_owned());
        description(&mut facts, &name, ty["description"].as_str());
        if let Some(url) = ty["specifiedByURL"].as_str() {
            facts.insert(format!("{name} specifiedBy"), url.to_owned());
        }
        if ty["isOneOf"] == true {
            facts.insert(format!("{name} oneOf"), "true".into());
        }
        for interface in items(&ty["interfaces"]) {
            facts.insert(format!("{name} implements {}", type_ref(interface)), String::new());
        }
        if kind == "UNION" {
            for member in items(&ty["possibleTypes"]) {
                facts.insert(format!("{name} member {}", type_ref(member)), String::new());
            }
        }
        for field in items(&ty["fields"]) {
            let at = format!("{name}.{}", field["name"].as_str().unwrap());
            facts.insert(format!("{at}: type"), type_ref(&field["type"]));
            description(&mut facts, &at, field["description"].as_str());
            introspected_deprecation(&mut facts, &at, field);
            for argument in items(&field["args"]) {
                introspected_input_value(
                    &mut facts,
                    &format!("{at}({})", argument["name"].as_str().unwrap()),
                    argument,
                );
            }
        }
        for field in items(&ty["inputFields"]) {
            introspected_input_value(
                &mut facts,
                &format!("{name}.{}", field["name"].as_str().unwrap()),
                field,
            );
        }
        for value in items(&ty["enumValues"]) {
            let at = format!("{name}.{}", value["name"].as_str().unwrap());
            facts.insert(at.clone(), "enum value".into());
            description(&mut facts, &at, value["description"].as_str());
            introspected_deprecation(&mut facts, &at, value);
        }
    }
    for directive in items(&schema["directives"]) {
        let name = directive["name"].as_str().expect("a directive has a name").to_owned();
        let mut locations: Vec<String> = items(&directive["locations"])
            .iter()
            .map(|location| location.as_str().unwrap().to_owned())
            .collect();
        locations.sort();
        facts.insert(format!("@{name}"), locations.join(" | "));
        facts.insert(format!("@{name} repeatable"), (directive["isRepeatable"] == true).to_string());
        description(&mut facts, &format!("@{name}"), directive["description"].as_str());
        for argument in items(&directive["args"]) {
            introspected_input_value(
                &mut facts,
                &format!("@{name}({})", argument["name"].as_str().unwrap()),
                argument,
            );
        }
    }
    facts
}
