//! The DataSync operations the simulator answers, on its fleet.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::fleet::{self, Fleet};

/// A modelled DataSync error: `kind` is the `__type` the SDK matches on.
pub struct OperationError {
    pub kind: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> OperationError {
    OperationError { kind: "InvalidRequestException", message: message.into() }
}

fn string<'a>(input: &'a Value, field: &str) -> Result<&'a str, OperationError> {
    input.get(field).and_then(Value::as_str).ok_or_else(|| invalid(format!("{field} is required")))
}

/// Who signed a request: the region it was signed for and the account its key belongs to.
/// DataSync answers from that account's region alone.
pub struct Signer<'a> {
    pub region: &'a str,
    pub account: &'a str,
}

impl Signer<'_> {
    /// Whether an ARN names a resource of this account and region (its fourth and fifth
    /// `:`-separated parts).
    fn sees(&self, arn: &str) -> bool {
        let mut parts = arn.split(':').skip(3);
        parts.next() == Some(self.region) && parts.next() == Some(self.account)
    }

    /// An ARN from the input, which must be in the region the request was signed for and
    /// belong to the signer's account (another account's is refused, as IAM refuses it).
    fn arn<'a>(&self, input: &'a Value, field: &str) -> Result<&'a str, OperationError> {
        let arn = string(input, field)?;
        if arn.split(':').nth(3) != Some(self.region) {
            return Err(invalid(format!("{arn} is not in {}", self.region)));
        }
        if !self.sees(arn) {
            return Err(OperationError {
                kind: "AccessDeniedException",
                message: format!("account {} is not authorized to access {arn}", self.account),
            });
        }
        Ok(arn)
    }
}

pub fn call(
    fleet: &mut Fleet,
    signer: &Signer,
    operation: &str,
    input: &Value,
    now: DateTime<Utc>,
) -> Result<Value, OperationError> {
    match operation {
        "DescribeTaskExecution" => {
            let arn = signer.arn(input, "TaskExecutionArn")?;
            let execution =
                fleet.execution(arn).ok_or_else(|| invalid(format!("Task execution {arn} not found")))?;
            Ok(fleet.describe(execution, now))
        }
        "ListTaskExecutions" => {
            let task_arn = input.get("TaskArn").and_then(Value::as_str);
            let (start, max) = page(input)?;
            let matching: Vec<_> = fleet
                .executions
                .iter()
                .filter(|execution| signer.sees(&execution.arn))
                .filter(|execution| task_arn.is_none_or(|task| execution.task_arn == task))
                .collect();
            let items: Vec<Value> = matching
                .iter()
                .skip(start)
                .take(max)
                .map(|execution| {
                    json!({
                        "TaskExecutionArn": execution.arn,
                        "Status": fleet.status(execution, now),
                        "TaskMode": fleet::execution_mode(execution),
                    })
                })
                .collect();
            Ok(with_next_token(json!({ "TaskExecutions": items }), start.saturating_add(max), matching.len()))
        }
        "ListTasks" => {
            let (start, max) = page(input)?;
            let tasks: Vec<_> = fleet.tasks.iter().filter(|task| signer.sees(&task.arn)).collect();
            let items: Vec<Value> = tasks
                .iter()
                .skip(start)
                .take(max)
                .map(|task| {
                    json!({ "TaskArn": task.arn, "Status": "AVAILABLE", "Name": task.name, "TaskMode": fleet::task_mode(task) })
                })
                .collect();
            Ok(with_next_token(json!({ "Tasks": items }), start.saturating_add(max), tasks.len()))
        }
        "DescribeTask" => {
            let arn = signer.arn(input, "TaskArn")?;
            let task = fleet.task(arn).ok_or_else(|| invalid(format!("Task {arn} not found")))?;
            let current = fleet.executions.iter().rev().find(|execution| {
                execution.task_arn == arn && !matches!(fleet.status(execution, now), "SUCCESS" | "ERROR")
            });
            let mut output = json!({
                "TaskArn": task.arn,
                "Status": if current.is_some() { "RUNNING" } else { "AVAILABLE" },
                "Name": task.name,
                "TaskMode": fleet::task_mode(task),
                "SourceLocationArn": fleet::location_arn(task, fleet::End::Source),
                "DestinationLocationArn": fleet::location_arn(task, fleet::End::Destination),
                "CreationTime": fleet::epoch_seconds(now - chrono::Duration::days(30)),
                // The elastic network interfaces DataSync creates for its traffic, one per end.
                "SourceNetworkInterfaceArns": [fleet::network_interface_arn(task, fleet::End::Source)],
                "DestinationNetworkInterfaceArns": [fleet::network_interface_arn(task, fleet::End::Destination)],
            });
            if let Some(current) = current {
                output["CurrentTaskExecutionArn"] = json!(current.arn);
            }
            Ok(output)
        }
        "ListLocations" => {
            let (start, max) = page(input)?;
            let locations: Vec<Value> = fleet
                .tasks
                .iter()
                .filter(|task| signer.sees(&task.arn))
                .flat_map(|task| {
                    [fleet::End::Source, fleet::End::Destination].map(|end| {
                        json!({ "LocationArn": fleet::location_arn(task, end), "LocationUri": fleet::location_uri(task, end) })
                    })
                })
                .collect();
            let total = locations.len();
            let items: Vec<Value> = locations.into_iter().skip(start).take(max).collect();
            Ok(with_next_token(json!({ "Locations": items }), start.saturating_add(max), total))
        }
        "StartTaskExecution" => {
            let arn = signer.arn(input, "TaskArn")?;
            let task = fleet.task(arn).ok_or_else(|| invalid(format!("Task {arn} not found")))?;
            // A bandwidth limit given at the start is the execution's first limit.
            let rate = match &input["OverrideOptions"]["BytesPerSecond"] {
                Value::Null => None,
                rate => Some(rate.as_i64().filter(|rate| *rate == -1 || *rate > 0).ok_or_else(|| {
                    invalid("OverrideOptions.BytesPerSecond must be -1 or a positive number")
                })?),
            };
            if rate.is_some() && fleet::task_mode(task) == "ENHANCED" {
                return Err(invalid("BytesPerSecond is not applicable to Enhanced mode tasks"));
            }
            let execution = fleet.start(arn, now).ok_or_else(|| invalid(format!("Task {arn} not found")))?;
            if let Some(rate) = rate {
                fleet.update(&execution, rate, now);
            }
            if let Some(report) = input.get("TaskReportConfig").filter(|report| report.is_object()) {
                fleet.set_report(&execution, report.clone());
            }
            Ok(json!({ "TaskExecutionArn": execution }))
        }
        "CancelTaskExecution" => {
            let arn = signer.arn(input, "TaskExecutionArn")?;
            match fleet.cancel(arn, now) {
                None => Err(invalid(format!("Task execution {arn} not found"))),
                Some(false) => Err(invalid(format!("Task execution {arn} is not running"))),
                Some(true) => Ok(json!({})),
            }
        }
        "UpdateTaskExecution" => {
            let arn = signer.arn(input, "TaskExecutionArn")?;
            let rate = input["Options"]["BytesPerSecond"]
                .as_i64()
                .filter(|rate| *rate == -1 || *rate > 0)
                .ok_or_else(|| invalid("Options.BytesPerSecond must be -1 or a positive number"))?;
            match fleet.update(arn, rate, now) {
                None => Err(invalid(format!("Task execution {arn} not found"))),
                Some(Err(reason)) => Err(invalid(reason)),
                Some(Ok(())) => Ok(json!({})),
            }
        }
        _ => Err(OperationError {
            kind: "UnknownOperationException",
            message: format!("the simulator does not implement {operation}"),
        }),
    }
}

/// Where a page starts (`NextToken` is an offset) and how long it is (`MaxResults`, ≤ 100).
fn page(input: &Value) -> Result<(usize, usize), OperationError> {
    let start = match input.get("NextToken").and_then(Value::as_str) {
        Some(token) => token.parse().map_err(|_| invalid("NextToken is not valid"))?,
        None => 0,
    };
    let max = match input.get("MaxResults").and_then(Value::as_u64) {
        Some(max @ 0..=100) => max as usize,
        Some(_) => return Err(invalid("MaxResults must be between 0 and 100")),
        None => 100,
    };
    Ok((start, max))
}

fn with_next_token(mut output: Value, next: usize, total: usize) -> Value {
    if next < total {
        output["NextToken"] = json!(next.to_string());
    }
    output
}
