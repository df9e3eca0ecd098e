//! The simulator's other operations, through the real SDK: what makes it usable as a DataSync
//! endpoint for demos and for other services' tests.

use std::time::Duration;

use datasync_gateway::datasync::task_report::{read_part, ReportPart};
use datasync_gateway::model::ReportKind;
use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};

use crate::common::{s3_client, sdk_client, sdk_client_in};

async fn simulator() -> (Simulator, aws_sdk_datasync::Client) {
    let tick = Duration::from_secs(1);
    let simulator =
        Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(tick)).await.unwrap();
    let client = sdk_client(&simulator.endpoint_url()).await;
    (simulator, client)
}

#[tokio::test]
async fn tasks_can_be_listed_by_region_and_described() {
    let (simulator, client) = simulator().await;
    for region in ["us-east-1", "eu-west-1"] {
        let regional = sdk_client_in(&simulator.endpoint_url(), region).await;
        let tasks = regional.list_tasks().send().await.unwrap();
        let arns: Vec<_> = tasks.tasks().iter().filter_map(|task| task.task_arn()).collect();
        assert!(!arns.is_empty(), "tasks in {region}");
        assert!(arns.iter().all(|arn| arn.split(':').nth(3) == Some(region)), "{arns:?}");
    }
    let eu_task = "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002";
    let wrong_region = client.describe_task().task_arn(eu_task).send().await.unwrap_err();
    assert!(wrong_region.into_service_error().is_invalid_request_exception());

    let task = client.describe_task().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    assert_eq!(task.name(), Some("demo-quick-copy"));
    let missing = client
        .describe_task()
        .task_arn("arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(missing.into_service_error().is_invalid_request_exception());
}

#[tokio::test]
async fn executions_can_be_listed_by_task_page_by_page() {
    let (_simulator, client) = simulator().await;
    let task = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001";
    let first = client.list_task_executions().task_arn(task).max_results(2).send().await.unwrap();
    assert_eq!(first.task_executions().len(), 2);
    let token = first.next_token().expect("more pages");
    let rest = client.list_task_executions().task_arn(task).next_token(token).send().await.unwrap();
    assert_eq!(rest.task_executions().len(), 2);
    assert_eq!(rest.next_token(), None);
    let all: Vec<_> = first.task_executions().iter().chain(rest.task_executions()).collect();
    assert!(all.iter().all(|e| e.task_execution_arn().unwrap().starts_with(task)));
    let statuses: Vec<_> = all.iter().map(|e| e.status().unwrap().as_str()).collect();
    assert_eq!(statuses, ["SUCCESS", "ERROR", "TRANSFERRING", "QUEUED"]);
}

#[tokio::test]
async fn a_started_execution_can_be_cancelled_once() {
    let (_simulator, client) = simulator().await;
    let started = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    let arn = started.task_execution_arn().unwrap();

    let described = client.describe_task_execution().task_execution_arn(arn).send().await.unwrap();
    assert_eq!(described.status().unwrap().as_str(), "QUEUED");
    client.cancel_task_execution().task_execution_arn(arn).send().await.unwrap();
    let cancelling = client.describe_task_execution().task_execution_arn(arn).send().await.unwrap();
    assert_eq!(cancelling.status().unwrap().as_str(), "CANCELLING");
    let again = client.cancel_task_execution().task_execution_arn(arn).send().await.unwrap_err();
    assert!(again.into_service_error().is_invalid_request_exception());
}

#[tokio::test]
async fn a_scheduled_task_starts_executions_on_its_own() {
    let tick = Duration::from_millis(20);
    let config = SimulatorConfig { schedule_ticks: Some(5), ..SimulatorConfig::with_tick(tick) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let client = sdk_client(&simulator.endpoint_url()).await;
    let quick = |listed: &aws_sdk_datasync::operation::list_task_executions::ListTaskExecutionsOutput| {
        listed.task_executions().len()
    };
    let before = quick(&client.list_task_executions().task_arn(seeded::QUICK_TASK).send().await.unwrap());
    tokio::time::sleep(tick * 12).await;
    let after = quick(&client.list_task_executions().task_arn(seeded::QUICK_TASK).send().await.unwrap());
    assert!(after >= before + 2, "two scheduled starts in 12 ticks: {before} -> {after}");
}

/// Every key and size under `prefix`, listed `page_size` keys a page; and the pages.
async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    page_size: i32,
) -> (Vec<(String, i64)>, usize) {
    let mut pages =
        s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().page_size(page_size).send();
    let (mut keys, mut n) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        n += 1;
        assert!(page.contents().len() <= page_size as usize);
        keys.extend(
            page.contents().iter().map(|object| (object.key().unwrap().to_owned(), object.size().unwrap())),
        );
    }
    (keys, n)
}

fn exec_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn task_reports_are_listed_page_by_page_and_read_with_the_real_s3_sdk() {
    use datasync_gateway::simulator::reports::BUCKET;
    let (simulator, datasync) = simulator().await;
    let described =
        datasync.describe_task_execution().task_execution_arn(seeded::FAILED).send().await.unwrap();
    let report_result = described.report_result().unwrap().status().unwrap().as_str().to_owned();
    assert_eq!(report_result, "SUCCESS");
    let s3 = s3_client(&simulator.endpoint_url(), "AKIDTEST");
    let failed = exec_id(seeded::FAILED);
    let prefix = format!("reports/Detailed-Reports/task-0a1b2c3d4e5f60001/{failed}/");

    let (keys, pages) = list(&s3, BUCKET, &prefix, 2).await;
    assert!(keys.len() >= 6, "several parts: {keys:?}");
    assert_eq!(pages, keys.len().div_ceil(2));
    assert!(keys.windows(2).all(|pair| pair[0].0 < pair[1].0), "in key order, once each");
    assert_eq!(simulator.calls("ListObjectsV2"), pages as u64);

    let (mut transferred, mut failed_paths, mut mismatched) = (0, Vec::new(), 0);
    for (key, size) in &keys {
        assert!(key.starts_with(&format!("{prefix}{failed}.files-")), "{key}");
        let object = s3.get_object().bucket(BUCKET).key(key).send().await.unwrap();
        assert_eq!(object.content_length(), Some(*size));
        assert_eq!(object.content_type(), Some("application/json"));
        assert!(object.last_modified().is_some() && object.e_tag().is_some());
        let body = object.body.collect().await.unwrap().into_bytes();
        let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(report["TaskExecutionId"], failed);
        // The gateway's own reader of report parts takes what the simulator writes.
        let part = ReportPart::parse(key).unwrap_or_else(|| panic!("a report part: {key}"));
        let (mut read, mut errors) = (0, 0);
        let parsed = read_part(&body[..], part.kind, &mut |record| {
            read += 1;
            errors += usize::from(record.is_error());
            Ok(())
        })
        .unwrap();
        assert_eq!(parsed.execution_id.as_deref(), Some(failed));
        assert_eq!(parsed.records, read as u64);
        if key.contains(".files-transferred-v1-") {
            let records = report["Transferred"].as_array().unwrap();
            assert!(!records.is_empty() && records.len() <= 1_000, "{key}: {}", records.len());
            assert_eq!((part.kind, read), (ReportKind::Transferred, records.len()));
            let failures = records.iter().filter(|record| record["TransferStatus"] == "FAILED").count();
            assert_eq!(errors, failures, "{key}");
            transferred += records.len();
            for record in records.iter().filter(|record| record["TransferStatus"] == "FAILED") {
                assert!(record["FailureReason"].is_string() && record["FailureCode"].is_u64(), "{record}");
                failed_paths.push(record["RelativePath"].as_str().unwrap().to_owned());
            }
        } else {
            assert!(key.contains(".files-verified-v1-"), "{key}");
            let records = report["Verified"].as_array().unwrap();
            assert!(records.iter().all(|record| record["VerifyStatus"] == "FAILED"));
            assert_eq!((part.kind, read, errors), (ReportKind::Verified, records.len(), records.len()));
            mismatched += records.len();
        }
    }
    assert!(failed_paths.len() >= 100, "a few hundred failed transfers: {}", failed_paths.len());
    assert!(failed_paths.iter().all(|path| path.starts_with("/dir-") && path.ends_with(".dat")));
    assert!(mismatched > 0);
    assert_eq!(simulator.calls("GetObject"), keys.len() as u64);

    // The summary's totals are what the parts hold.
    let summary_key =
        format!("reports/Summary-Reports/task-0a1b2c3d4e5f60001/{failed}/{failed}.summary-v1.json");
    let summary = s3.get_object().bucket(BUCKET).key(&summary_key).send().await.unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&summary.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(summary["Transferred"]["Error"], failed_paths.len());
    let successes = summary["Transferred"]["Success"].as_u64().unwrap() as usize;
    assert_eq!(successes + failed_paths.len(), transferred);
    assert_eq!(summary["Verified"]["Error"], mismatched);

    // The same bytes on every GET.
    let first = &keys[0].0;
    let again = |s3: aws_sdk_s3::Client| async move {
        s3.get_object()
            .bucket(BUCKET)
            .key(first)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
    };
    assert_eq!(again(s3.clone()).await, again(s3.clone()).await);

    // An execution still running has written nothing; nor one whose report is PENDING.
    let running =
        format!("reports/Detailed-Reports/task-0a1b2c3d4e5f60001/{}/", exec_id(seeded::TRANSFERRING));
    assert_eq!(list(&s3, BUCKET, &running, 1000).await.0, Vec::new());
    let pending =
        format!("reports/Detailed-Reports/task-0a1b2c3d4e5f60002/{}/", exec_id(seeded::REPORT_PENDING));
    assert_eq!(list(&s3, BUCKET, &pending, 1000).await.0, Vec::new());
    let missing =
        s3.get_object().bucket(BUCKET).key(format!("{running}nothing.json")).send().await.unwrap_err();
    assert!(missing.into_service_error().is_no_such_key());
}

#[tokio::test]
async fn a_report_bucket_answers_only_its_account_and_a_denied_one_nobody() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use datasync_gateway::simulator::reports::{bucket, BUCKET};
    let config = SimulatorConfig { accounts: 2, ..SimulatorConfig::with_tick(Duration::from_secs(1)) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let member = datasync_gateway::simulator::accounts::account_id(1);
    let ours = s3_client(&simulator.endpoint_url(), "AKIDTEST");
    let theirs = s3_client(&simulator.endpoint_url(), &format!("ASIA{member}0001"));
    let prefix = format!("reports/Detailed-Reports/task-0a1b2c3d4e5f60001/{}/", exec_id(seeded::FAILED));

    let (own, _) = list(&theirs, &bucket(&member), &prefix, 1000).await;
    assert!(!own.is_empty(), "the member account's copy of the execution wrote its own report");
    let code = |error: &dyn ProvideErrorMetadata| error.code().map(str::to_owned);
    let other = theirs.list_objects_v2().bucket(BUCKET).prefix(&prefix).send().await.unwrap_err();
    assert_eq!(code(&other), Some("AccessDenied".into()));
    let nowhere = ours.list_objects_v2().bucket("no-such-bucket").send().await.unwrap_err();
    assert!(nowhere.into_service_error().is_no_such_bucket());

    let url = format!("{}/_simulator/buckets", simulator.endpoint_url());
    let denied = reqwest::Client::new()
        .put(&url)
        .json(&serde_json::json!({ "denied": [BUCKET] }))
        .send()
        .await
        .unwrap();
    assert!(denied.status().is_success());
    let before = (simulator.calls("ListObjectsV2"), simulator.calls("GetObject"));
    let listed = ours.list_objects_v2().bucket(BUCKET).prefix(&prefix).send().await.unwrap_err();
    assert_eq!(code(&listed), Some("AccessDenied".into()));
    let got = ours.get_object().bucket(BUCKET).key(&own[0].0).send().await.unwrap_err();
    assert_eq!(code(&got), Some("AccessDenied".into()));
    let after = (simulator.calls("ListObjectsV2"), simulator.calls("GetObject"));
    assert_eq!(after, (before.0 + 1, before.1 + 1), "AccessDenied is not retried");

    reqwest::Client::new().put(&url).json(&serde_json::json!({ "denied": [] })).send().await.unwrap();
    assert!(!list(&ours, BUCKET, &prefix, 1000).await.0.is_empty());
}
