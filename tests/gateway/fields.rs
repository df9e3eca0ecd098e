//! Every field group of `TaskExecution`, for each kind of execution the simulator seeds.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::json;

use crate::common::{TestGateway, FULL};

async fn full(gateway: &TestGateway, arn: &str) -> serde_json::Value {
    let response = gateway.query(FULL, json!({ "arn": arn })).await;
    assert!(response["errors"].is_null(), "{response:#}");
    response["data"]["taskExecution"].clone()
}

#[tokio::test]
async fn a_finished_basic_execution_has_every_option_filter_and_report_field() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::SUCCEEDED_BASIC).await;

    assert_eq!(e["taskExecutionArn"], seeded::SUCCEEDED_BASIC);
    assert_eq!(e["status"], "SUCCESS");
    assert_eq!(e["statusRaw"], "SUCCESS");
    assert_eq!(e["taskMode"], "BASIC");
    assert_eq!(
        e["options"],
        json!({
            "verifyMode": "ONLY_FILES_TRANSFERRED", "overwriteMode": "ALWAYS", "atime": "BEST_EFFORT",
            "mtime": "PRESERVE", "uid": "INT_VALUE", "gid": "INT_VALUE", "preserveDeletedFiles": "PRESERVE",
            "preserveDevices": "NONE", "posixPermissions": "PRESERVE", "bytesPerSecond": -1,
            "taskQueueing": "ENABLED", "logLevel": "TRANSFER", "transferMode": "CHANGED",
            "securityDescriptorCopyFlags": "NONE", "objectTags": "PRESERVE"
        })
    );
    assert_eq!(e["excludes"], json!([{ "filterType": "SIMPLE_PATTERN", "value": "*/.snapshot|*.tmp" }]));
    assert_eq!(e["includes"], json!([{ "filterType": "SIMPLE_PATTERN", "value": "/projects|/home" }]));
    assert_eq!(e["manifestConfig"], json!(null));

    // Counters beyond 32 bits come through as exact JSON numbers.
    assert_eq!(e["estimatedBytesToTransfer"], json!(912_384_000_000_i64));
    assert_eq!(e["bytesWritten"], json!(912_384_000_000_i64));
    assert_eq!(e["estimatedFilesToTransfer"], 48_210);
    assert_eq!(e["filesTransferred"], 48_210);
    assert_eq!(e["filesVerified"], 48_210);
    assert_eq!(e["bytesCompressed"], json!(912_384_000_000_i64 * 3 / 5));

    let result = &e["result"];
    assert_eq!(result["prepareStatus"], "SUCCESS");
    assert_eq!(result["transferStatus"], "SUCCESS");
    assert_eq!(result["verifyStatus"], "SUCCESS");
    assert_eq!(result["errorCode"], json!(null));
    let phases =
        ["prepareDuration", "transferDuration", "verifyDuration"].map(|p| result[p].as_i64().unwrap());
    assert!(phases.iter().all(|ms| *ms > 0), "{result}");
    assert!(result["totalDuration"].as_i64().unwrap() >= phases.iter().sum::<i64>());

    let report = &e["taskReportConfig"];
    assert_eq!(report["destination"]["s3"]["s3BucketArn"], "arn:aws:s3:::example-datasync-reports");
    assert_eq!(report["destination"]["s3"]["subdirectory"], "reports/");
    assert_eq!(report["outputType"], "STANDARD");
    assert_eq!(report["reportLevel"], "ERRORS_ONLY");
    assert_eq!(report["objectVersionIds"], "INCLUDE");
    assert_eq!(report["overrides"]["transferred"]["reportLevel"], "SUCCESSES_AND_ERRORS");
    assert_eq!(report["overrides"]["skipped"]["reportLevel"], "ERRORS_ONLY");
    assert_eq!(e["reportResult"]["status"], "SUCCESS");

    // Enhanced-only fields are null in Basic mode (present in the response, as the spec wants).
    let folders = [
        "filesListed",
        "filesFailed",
        "estimatedFoldersToTransfer",
        "estimatedFoldersToDelete",
        "foldersSkipped",
        "foldersPrepared",
        "foldersTransferred",
        "foldersVerified",
        "foldersDeleted",
        "foldersListed",
        "foldersFailed",
    ];
    for field in folders {
        assert_eq!(e.get(field), Some(&json!(null)), "{field}");
    }
    // Not queued: it launched as it started; it ended when its total duration says.
    let time = |field: &str| chrono::DateTime::parse_from_rfc3339(e[field].as_str().unwrap()).unwrap();
    assert_eq!(time("launchTime"), time("startTime"));
    let total = chrono::Duration::milliseconds(result["totalDuration"].as_i64().unwrap());
    assert_eq!(time("endTime"), time("startTime") + total);

    // Derived fields.
    assert_eq!(e["taskArn"], "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001");
    assert_eq!(e["executionId"], "exec-0a1b2c3d4e5f60101");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(e["accountId"], "111122223333");
    assert_eq!(e["isTerminal"], true);
    assert_eq!(e["progress"]["bytesPercent"], 100.0);
    assert_eq!(e["progress"]["filesPercent"], 100.0);
    assert_eq!(e["progress"]["estimatedRemainingMs"], 0);
    assert_eq!(e["progress"]["elapsedMs"], result["totalDuration"]);
    // AWS's formula for a finished Basic execution: bytes written over TRANSFERRING's duration.
    let rate = 912_384_000_000_f64 / (result["transferDuration"].as_f64().unwrap() / 1000.0);
    assert!((e["progress"]["bytesPerSecond"].as_f64().unwrap() - rate).abs() < 1e-6 * rate, "{e}");
    assert_eq!(
        e["progress"].get("foldersPercent"),
        Some(&json!(null)),
        "no directory counters in Basic mode"
    );
    assert_eq!(e["servedFrom"], "UPSTREAM");
    assert!(e["startTime"].as_str().unwrap() < e["fetchedAt"].as_str().unwrap());
}

#[tokio::test]
async fn an_enhanced_execution_has_manifest_listing_and_failure_counters() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::SUCCEEDED_ENHANCED).await;

    assert_eq!(e["taskMode"], "ENHANCED");
    assert_eq!(e["taskModeRaw"], "ENHANCED");
    assert_eq!(e["region"], "eu-west-1");
    assert_eq!(e["estimatedBytesToTransfer"], json!(5_400_000_000_000_i64));
    assert_eq!(e["bytesCompressed"], 0);
    assert_eq!(e["options"]["bytesPerSecond"], json!(null));
    assert_eq!(
        e["manifestConfig"],
        json!({
            "action": "TRANSFER", "format": "CSV",
            "source": { "s3": {
                "manifestObjectPath": "manifests/archive-2026-11.csv",
                "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/datasync-manifest-reader",
                "s3BucketArn": "arn:aws:s3:::example-manifests",
                "manifestObjectVersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
            } }
        })
    );
    assert_eq!(e["filesPrepared"], 2_500_000);
    assert_eq!(e["filesListed"], json!({ "atSource": 2_525_000, "atDestinationForDelete": 0 }));
    assert_eq!(e["filesFailed"], json!({ "prepare": 0, "transfer": 0, "verify": 0, "delete": 0 }));
    // Directories, counted apart from files: the simulator has one for every 50 files.
    assert_eq!(e["estimatedFoldersToTransfer"], 50_000);
    assert_eq!(e["estimatedFoldersToDelete"], 0);
    assert_eq!(e["foldersTransferred"], 50_000);
    assert_eq!(e["foldersVerified"], 50_000);
    assert_eq!(e["foldersSkipped"], 500);
    assert_eq!(e["foldersPrepared"], 50_000);
    assert_eq!(e["foldersDeleted"], 0);
    assert_eq!(e["foldersListed"], json!({ "atSource": 50_500, "atDestinationForDelete": 0 }));
    assert_eq!(
        e["foldersFailed"],
        json!({ "list": 0, "prepare": 0, "transfer": 0, "verify": 0, "delete": 0 })
    );
    assert!(e["endTime"].is_string() && e["launchTime"].is_string(), "{e}");
    assert_eq!(e["progress"]["foldersPercent"], 100.0);
    // Enhanced mode reports no phase durations: AWS divides by the whole run's.
    let rate = 5_400_000_000_000_f64 / (e["result"]["totalDuration"].as_f64().unwrap() / 1000.0);
    assert!((e["progress"]["bytesPerSecond"].as_f64().unwrap() - rate).abs() < 1e-6 * rate, "{e}");
    assert_eq!(e["result"]["transferDuration"], 0, "Enhanced mode reports no phase durations");
    assert_eq!(e["taskReportConfig"], json!(null));
    assert_eq!(e["reportResult"], json!(null));
}

#[tokio::test]
async fn a_failed_execution_carries_datasyncs_error() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::FAILED).await;

    assert_eq!(e["status"], "ERROR");
    assert_eq!(e["isTerminal"], true);
    assert_eq!(e["result"]["transferStatus"], "ERROR");
    assert_eq!(e["result"]["verifyStatus"], "PENDING");
    assert_eq!(e["result"]["errorCode"], "ErrorCodeS3AccessDenied");
    assert!(e["result"]["errorDetail"].as_str().unwrap().contains("access denied"));
    assert_eq!(e["progress"]["bytesPercent"], 50.0);
    assert_eq!(e["progress"]["estimatedRemainingMs"], 0);
}

#[tokio::test]
async fn a_running_execution_reports_partial_progress() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::TRANSFERRING).await;

    assert_eq!(e["status"], "TRANSFERRING");
    assert_eq!(e["isTerminal"], false);
    assert_eq!(e["result"]["transferStatus"], "PENDING");
    let written = e["bytesWritten"].as_i64().unwrap();
    let estimated = e["estimatedBytesToTransfer"].as_i64().unwrap();
    assert!(0 < written && written < estimated, "{written} of {estimated}");
    let percent = e["progress"]["bytesPercent"].as_f64().unwrap();
    assert!((percent - written as f64 * 100.0 / estimated as f64).abs() < 1e-9);
    assert!(e["progress"]["bytesPerSecond"].as_f64().unwrap() > 0.0);
    assert!(e["progress"]["elapsedMs"].as_i64().unwrap() > 0);
    assert!(e["progress"]["estimatedRemainingMs"].as_i64().unwrap() > 0);
    assert!(e["launchTime"].is_string(), "launched: {e}");
    assert_eq!(e.get("endTime"), Some(&json!(null)), "running: no end yet");
}

#[tokio::test]
async fn a_queued_execution_has_no_estimates_yet() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::QUEUED).await;

    assert_eq!(e["status"], "QUEUED");
    assert_eq!(e.get("launchTime"), Some(&json!(null)), "still waiting for the task's earlier executions");
    assert_eq!(e["estimatedBytesToTransfer"], 0);
    assert_eq!(e["progress"]["bytesPercent"], json!(null));
    assert_eq!(e["progress"]["filesPercent"], json!(null));
    assert_eq!(e["progress"]["estimatedRemainingMs"], json!(null));
}

#[tokio::test]
async fn a_finished_execution_with_a_pending_report_is_terminal() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::REPORT_PENDING).await;

    assert_eq!(e["status"], "SUCCESS");
    assert_eq!(e["isTerminal"], true);
    assert_eq!(e["reportResult"]["status"], "PENDING");
}

#[tokio::test]
async fn a_status_datasync_has_not_published_is_unknown_with_the_raw_string() {
    let gateway = TestGateway::start().await;
    let e = full(&gateway, seeded::UNKNOWN_STATUS).await;

    assert_eq!(e["status"], "UNKNOWN");
    assert_eq!(e["statusRaw"], "RECONCILING");
    assert_eq!(e["isTerminal"], false);
}

#[tokio::test]
async fn every_status_in_the_seeded_fleet_comes_through() {
    let gateway = TestGateway::start().await;
    let expected = [
        (seeded::QUEUED, "QUEUED"),
        (seeded::LAUNCHING, "LAUNCHING"),
        (seeded::PREPARING, "PREPARING"),
        (seeded::TRANSFERRING, "TRANSFERRING"),
        (seeded::VERIFYING, "VERIFYING"),
        (seeded::SUCCEEDED_BASIC, "SUCCESS"),
        (seeded::FAILED, "ERROR"),
        (seeded::CANCELLED, "ERROR"),
    ];
    for (arn, status) in expected {
        let e = full(&gateway, arn).await;
        assert_eq!(e["status"], status, "{arn}");
        assert_eq!(e["isTerminal"], matches!(status, "SUCCESS" | "ERROR"), "{arn}");
    }
    let verifying = full(&gateway, seeded::VERIFYING).await;
    assert_eq!(verifying["result"]["transferStatus"], "SUCCESS");
    assert_eq!(verifying["progress"]["bytesPercent"], 100.0);
    let cancelled = full(&gateway, seeded::CANCELLED).await;
    assert_eq!(cancelled["result"]["errorCode"], "OpCancelled");
    assert_eq!(cancelled["progress"]["bytesPercent"], 50.0);
}
