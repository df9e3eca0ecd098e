//! The documentation's examples run: every ```graphql block and every `curl` command of a ```sh
//! block in README.md and docs/*.md, against a gateway on the built-in simulator with a
//! database and the discovery sync (what `scripts/run` serves). Each answers without errors,
//! unless the line before its fence says `<!-- example: expect CODE -->`; a block of SDL says
//! `<!-- example: sdl -->`. The configuration reference lists exactly the flags of `serve`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::common::{error_codes, history_config, skip, TestGateway};

/// The address the documentation's curl commands use, replaced by the test gateway's.
const DOCUMENTED_ADDRESS: &str = "http://127.0.0.1:8080";

#[derive(Debug)]
struct Example {
    /// `file:line` of the fence, for failure messages.
    place: String,
    language: String,
    marker: Option<String>,
    text: String,
}

/// What the line before an example's fence says about it.
enum Expect {
    Answer,
    Error(String),
    NotRun,
}

impl Example {
    fn expect(&self) -> Expect {
        match self.marker.as_deref().map(str::split_whitespace).map(Iterator::collect::<Vec<_>>).as_deref() {
            None => Expect::Answer,
            Some(["expect", code]) => Expect::Error((*code).to_owned()),
            Some(["sdl"]) => Expect::NotRun,
            Some(other) => panic!("{}: unknown example marker {other:?}", self.place),
        }
    }
}

fn documents() -> Vec<PathBuf> {
    let root = std::env::current_dir().unwrap();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is there")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn examples(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut examples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let Some(language) = lines[index].trim_start().strip_prefix("```").filter(|l| !l.is_empty()) else {
            index += 1;
            continue;
        };
        let marker = index
            .checked_sub(1)
            .and_then(|before| lines[before].trim().strip_prefix("<!-- example:"))
            .and_then(|marker| marker.strip_suffix("-->"))
            .map(|marker| marker.trim().to_owned());
        let start = index;
        index += 1;
        let mut body = Vec::new();
        while index < lines.len() && !lines[index].trim_start().starts_with("```") {
            body.push(lines[index]);
            index += 1;
        }
        index += 1;
        examples.push(Example {
            place: format!("{name}:{}", start + 1),
            language: language.trim().to_owned(),
            marker,
            text: body.join("\n"),
        });
    }
    examples
}

/// The operations of a GraphQL document: `(kind, name)`; one unnamed for an anonymous one.
fn operations(document: &str) -> Vec<(String, Option<String>)> {
    let parsed =
        async_graphql::parser::parse_query(document).unwrap_or_else(|error| panic!("{error}: {document}"));
    parsed
        .operations
        .iter()
        .map(|(name, operation)| (operation.node.ty.to_string(), name.map(|name| name.to_string())))
        .collect()
}

/// The first result of a subscription over server-sent events.
async fn first_event(gateway: &TestGateway, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(gateway.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(data) = first_data(&text) {
            return data;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no event within 20 s: {text}"))
            .unwrap_or_else(|| panic!("the stream ended without an event: {text}"))
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The `data` of the first whole `event: next` in an event stream's text.
fn first_data(text: &str) -> Option<Value> {
    let event = text
        .split("\n\n")
        .take_while(|_| text.contains("\n\n"))
        .find(|event| event.contains("event: next"))?;
    let data = event.lines().find_map(|line| line.strip_prefix("data: "))?;
    Some(serde_json::from_str(data).unwrap())
}

fn check(example: &Example, what: &str, response: &Value) {
    match example.expect() {
        Expect::Answer => {
            assert!(
                response.get("errors").is_none() && response.get("data").is_some_and(|data| !data.is_null()),
                "{} ({what}) answered with errors: {response}",
                example.place
            );
        }
        Expect::Error(code) => {
            assert!(
                error_codes(response).contains(&code),
                "{} ({what}) should fail with {code}: {response}",
                example.place
            );
        }
        Expect::NotRun => unreachable!(),
    }
}

async fn run_graphql(gateway: &TestGateway, example: &Example) -> usize {
    let mut ran = 0;
    for (kind, name) in operations(&example.text) {
        let body = json!({ "query": example.text, "operationName": name });
        let response = if kind == "subscription" {
            first_event(gateway, body).await
        } else {
            gateway.post_json(body).await.1
        };
        check(example, name.as_deref().unwrap_or(&kind), &response);
        ran += 1;
    }
    ran
}

/// Each `curl` command of a shell block (with its `\` continuations), as written.
fn curl_commands(block: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = block.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("curl ") {
            continue;
        }
        let mut command = line.to_owned();
        while command.ends_with('\\') {
            command.pop();
            command.push_str(lines.next().unwrap_or_default());
        }
        commands.push(command);
    }
    commands
}

async fn run_curl(gateway: &TestGateway, example: &Example) -> usize {
    let commands = curl_commands(&example.text);
    for command in &commands {
        assert!(
            command.contains(DOCUMENTED_ADDRESS),
            "{}: curl examples use {DOCUMENTED_ADDRESS}",
            example.place
        );
        // A stream (SSE) is cut after a few seconds; its first event is what is checked.
        let command = format!("{} --max-time 5", command.replace(DOCUMENTED_ADDRESS, &gateway.url("")));
        let output =
            tokio::process::Command::new("bash").arg("-c").arg(&command).output().await.expect("bash runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let response = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}: {text}", example.place))
        } else {
            first_data(&text)
                .unwrap_or_else(|| panic!("{}: neither JSON nor an event: {text}", example.place))
        };
        check(example, &command, &response);
    }
    commands.len()
}

#[tokio::test]
async fn every_example_in_the_readme_and_docs_runs() {
    if which("curl").is_none() {
        let _: Option<()> = skip("curl is not installed");
        return;
    }
    let mut config = history_config().await;
    config.history.discovery = true;
    // The webhook examples' receiver is on this machine, over http, as docs/webhooks.md says.
    config.webhooks.webhooks_allow_http = true;
    config.webhooks.webhooks_allow_private = true;
    let gateway = TestGateway::start_with(config).await;
    // The fleet view's examples read the index: wait for the first sync to fill it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let indexed = gateway.query("{ executions(first: 1) { totalCount } }", json!({})).await;
        if indexed["data"]["executions"]["totalCount"].as_u64() > Some(0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the index stayed empty: {indexed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (mut operations_run, mut curls_run) = (0, 0);
    for file in documents() {
        for example in examples(&file) {
            if matches!(example.expect(), Expect::NotRun) {
                continue;
            }
            match example.language.as_str() {
                "graphql" => operations_run += run_graphql(&gateway, &example).await,
                "sh" | "bash" | "shell" => curls_run += run_curl(&gateway, &example).await,
                _ => {}
            }
        }
    }
    // The walk found the examples (a change of fence style would otherwise pass vacuously).
    assert!(operations_run >= 10 && curls_run >= 4, "{operations_run} operations, {curls_run} curl commands");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
    })
}

/// The configuration reference's table rows: the flag in the first column, in backticks.
fn documented_flags() -> Vec<String> {
    let text =
        std::fs::read_to_string(std::env::current_dir().unwrap().join("docs/configuration.md")).unwrap();
    let mut flags: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("| `--"))
        .filter_map(|rest| rest.split('`').next())
        .map(|flag| format!("--{flag}"))
        .collect();
    flags.sort();
    flags
}

#[test]
fn the_configuration_reference_lists_exactly_the_flags_of_serve() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_datasync-gateway"))
        .args(["serve", "--help"])
        .output()
        .expect("the gateway binary runs");
    let help = String::from_utf8(help.stdout).unwrap();
    let mut flags: Vec<String> = help
        .lines()
        // A flag's own line is indented at most 6 spaces (`  -h, --help`, `      --listen <ADDR>`);
        // descriptions, which may name other flags, are indented further.
        .filter(|line| line.len() - line.trim_start().len() <= 6 && line.trim_start().starts_with('-'))
        .filter_map(|line| line.split_whitespace().find(|word| word.starts_with("--")))
        .map(|flag| flag.trim_end_matches(',').split(['=', '[', '<']).next().unwrap().to_owned())
        .filter(|flag| flag != "--help")
        .collect();
    flags.sort();
    flags.dedup();
    assert!(flags.len() > 40, "read the flags of serve --help: {flags:?}");
    assert_eq!(documented_flags(), flags, "docs/configuration.md and `serve --help` disagree");
}

/// The codes `docs/errors.md`'s table lists, in its order.
fn documented_codes() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap();
    let table = text.split("## Error codes").nth(1).expect("docs/errors.md has an Error codes section");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| code |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| line.split('`').nth(1).expect("a code in backquotes").to_owned())
        .collect()
}

#[test]
fn the_error_reference_lists_exactly_the_codes_the_gateway_sends() {
    let sent: Vec<&str> = datasync_gateway::error::ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(documented_codes(), sent, "docs/errors.md's table and ErrorCode::ALL disagree");
}
