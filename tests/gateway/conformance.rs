//! The schema against DataSync's own service model: every member of `DescribeTaskExecution`'s
//! and `DescribeTask`'s output, recursively, has a field in the served schema, camelCased. The
//! model is botocore's (installed with moto, `botocore/data/datasync/*/service-2.json`): the day
//! the pinned models gain a member, this test says which.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::common::{skip, TestGateway};

/// (operation, the GraphQL type its output is served as).
const OPERATIONS: [(&str, &str); 2] = [("DescribeTaskExecution", "TaskExecution"), ("DescribeTask", "Task")];

/// Every member path of each operation's output, from the service model.
async fn model_members() -> Option<HashMap<String, Vec<String>>> {
    let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/datasync_members.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .args(OPERATIONS.map(|(operation, _)| operation))
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => Some(serde_json::from_slice(&output.stdout).unwrap()),
        Ok(output) => skip(&format!(
            "botocore's DataSync model cannot be read with {python}: {}",
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(error) => skip(&format!("{python} cannot run: {error}")),
    }
}

/// DataSync's member name as the schema spells it: `TaskExecutionArn` → `taskExecutionArn`,
/// `S3BucketArn` → `s3BucketArn`.
fn camel_case(member: &str) -> String {
    let mut chars = member.chars();
    chars.next().map(|first| first.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// The named type of a field's type reference (through NON_NULL and LIST).
fn named(reference: &Value) -> &str {
    match reference["name"].as_str() {
        Some(name) => name,
        None => named(&reference["ofType"]),
    }
}

#[tokio::test]
async fn every_member_of_datasyncs_describe_outputs_has_a_field() {
    let Some(members) = model_members().await else { return };
    let gateway = TestGateway::start().await;
    let introspection = gateway
        .query(
            "{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }",
            json!({}),
        )
        .await;
    // type name → field name → the field's named type
    let types: HashMap<&str, HashMap<&str, &str>> = introspection["data"]["__schema"]["types"]
        .as_array()
        .unwrap_or_else(|| panic!("{introspection}"))
        .iter()
        .map(|ty| {
            let fields = ty["fields"].as_array().map_or_else(HashMap::new, |fields| {
                fields.iter().map(|field| (field["name"].as_str().unwrap(), named(&field["type"]))).collect()
            });
            (ty["name"].as_str().unwrap(), fields)
        })
        .collect();

    let mut missing = Vec::new();
    let mut checked = 0;
    for (operation, root) in OPERATIONS {
        let paths = members.get(operation).unwrap_or_else(|| panic!("the model has no {operation}"));
        assert!(paths.len() > 20, "{operation}: only {} members read from the model", paths.len());
        for path in paths {
            let mut ty = root;
            for member in path.split('.') {
                match types.get(ty).and_then(|fields| fields.get(camel_case(member).as_str())) {
                    Some(next) => ty = next,
                    None => {
                        missing
                            .push(format!("{operation}.{path}: no field `{}` on `{ty}`", camel_case(member)));
                        break;
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {checked} members have no field:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn member_names_are_camel_cased_as_the_schema_spells_them() {
    assert_eq!(camel_case("TaskExecutionArn"), "taskExecutionArn");
    assert_eq!(camel_case("S3BucketArn"), "s3BucketArn");
    assert_eq!(camel_case("S3"), "s3");
}
