//! Against moto, an independent DataSync implementation: it reports a status the SDK does not
//! know (INITIALIZING) and advances an execution one status on every DescribeTaskExecution call,
//! which makes each call the gateway makes visible.

use serde_json::{json, Value};

use crate::common::{error_codes, graphql, sdk_client, spawn_gateway, test_config, ONE};

pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT_URL").expect("MOTO_ENDPOINT_URL is not set: run the tests with scripts/test")
}

async fn gateway_for_moto() -> String {
    let mut config = test_config();
    config.datasync.datasync_endpoint = Some(moto_endpoint());
    let (address, _) = spawn_gateway(config).await;
    format!("http://{address}/graphql")
}

async fn query(url: &str, arn: &str, consistency: &str) -> Value {
    graphql(url, ONE, json!({ "arn": arn, "consistency": consistency })).await
}

/// A new task in moto, between two new S3 locations in `buckets`; its ARN.
pub async fn create_task(buckets: [&str; 2]) -> String {
    let moto = sdk_client(&moto_endpoint()).await;
    let mut locations = Vec::new();
    for bucket in buckets {
        let location = moto
            .create_location_s3()
            .s3_bucket_arn(format!("arn:aws:s3:::{bucket}"))
            .s3_config(
                aws_sdk_datasync::types::S3Config::builder()
                    .bucket_access_role_arn("arn:aws:iam::123456789012:role/datasync")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("moto creates an S3 location");
        locations.push(location.location_arn().unwrap().to_owned());
    }
    let task = moto
        .create_task()
        .source_location_arn(&locations[0])
        .destination_location_arn(&locations[1])
        .send()
        .await
        .expect("moto creates a task");
    task.task_arn().unwrap().to_owned()
}

/// A new execution in moto, of a new task between two new S3 locations.
async fn start_execution() -> String {
    let task = create_task(["gateway-test-source", "gateway-test-destination"]).await;
    let moto = sdk_client(&moto_endpoint()).await;
    let execution = moto.start_task_execution().task_arn(task).send().await.unwrap();
    execution.task_execution_arn().unwrap().to_owned()
}

#[tokio::test]
async fn an_execution_in_moto_is_followed_from_initializing_to_success() {
    let url = gateway_for_moto().await;
    let arn = start_execution().await;

    let first = query(&url, &arn, "CACHED").await;
    let e = &first["data"]["taskExecution"];
    assert_eq!(e["status"], "UNKNOWN", "{first}");
    assert_eq!(e["statusRaw"], "INITIALIZING");
    assert_eq!(e["servedFrom"], "UPSTREAM");

    // Served from the cache: moto is not called, so its execution does not advance.
    let cached = query(&url, &arn, "CACHED").await;
    assert_eq!(cached["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(cached["data"]["taskExecution"]["statusRaw"], "INITIALIZING");

    let mut raw = Vec::new();
    for _ in 0..4 {
        let strong = query(&url, &arn, "STRONG").await;
        assert_eq!(strong["data"]["taskExecution"]["servedFrom"], "UPSTREAM", "{strong}");
        raw.push(strong["data"]["taskExecution"]["statusRaw"].as_str().unwrap().to_owned());
    }
    assert_eq!(raw, ["PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]);

    let last = query(&url, &arn, "CACHED").await;
    assert_eq!(last["data"]["taskExecution"]["status"], "SUCCESS");
    // moto sends only the ARN and status: every member it leaves out is present and null.
    let fields =
        "launchTime endTime estimatedFoldersToTransfer foldersTransferred foldersListed { atSource } \
                  foldersFailed { list } progress { foldersPercent }";
    let sparse = graphql(
        &url,
        &format!("query($arn: ID!) {{ taskExecution(arn: $arn) {{ {fields} }} }}"),
        json!({ "arn": arn }),
    )
    .await;
    let e = &sparse["data"]["taskExecution"];
    for field in [
        "launchTime",
        "endTime",
        "estimatedFoldersToTransfer",
        "foldersTransferred",
        "foldersListed",
        "foldersFailed",
    ] {
        assert_eq!(e.get(field), Some(&json!(null)), "{field}: {sparse}");
    }
    assert_eq!(e["progress"].get("foldersPercent"), Some(&json!(null)), "{sparse}");
    assert_eq!(last["data"]["taskExecution"]["servedFrom"], "CACHE");
}

#[tokio::test]
async fn an_execution_moto_does_not_have_is_not_found() {
    let url = gateway_for_moto().await;
    let arn = "arn:aws:datasync:us-east-1:123456789012:task/task-00000000000000999/execution/exec-00000000000000999";
    let response = query(&url, arn, "CACHED").await;
    assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
}

#[tokio::test]
async fn a_task_created_in_moto_is_listed_and_its_execution_reaches_the_index() {
    let mut config = crate::common::history_config().await;
    config.datasync.datasync_endpoint = Some(moto_endpoint());
    config.history.discovery = true;
    config.history.discovery_interval = std::time::Duration::from_secs(1);
    let (address, _server) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    let arn = start_execution().await;
    let task_arn = arn.split("/execution/").next().unwrap().to_owned();

    // Tasks are listed live (ListTasks), cached until the sync lists them again (every second
    // here): the new one shows by the next sync at the latest.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let tasks = graphql(&url, "{ tasks { edges { node { taskArn } } } }", json!({})).await;
        let listed = tasks["data"]["tasks"]["edges"].as_array().expect("a task page");
        if listed.iter().any(|edge| edge["node"]["taskArn"] == task_arn.as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the new task was never listed: {tasks}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // moto's ListTaskExecutions fails (HTTP 500): the execution reaches the index when it is
    // read to its end, as any finished execution is recorded.
    for _ in 0..10 {
        if query(&url, &arn, "STRONG").await["data"]["taskExecution"]["status"] == "SUCCESS" {
            break;
        }
    }
    let page = "query($f: ExecutionFilter) { executions(filter: $f) { edges { node { taskExecutionArn status } } } }";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = graphql(&url, page, json!({ "f": { "taskArns": [task_arn] } })).await;
        let edges = response["data"]["executions"]["edges"].as_array().cloned().unwrap_or_default();
        if edges.iter().any(|edge| {
            edge["node"]["taskExecutionArn"] == arn.as_str() && edge["node"]["status"] == "SUCCESS"
        }) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never indexed: {response}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// moto as the organisation: a gateway lists its accounts with moto's Organizations, assumes a
/// role in each with moto's STS, and lists each account's tasks with that role's credentials
/// (moto keeps DataSync's resources per account). moto has no ListTaskExecutions, so the sync
/// itself fails after listing the tasks; that is not what is checked here.
#[tokio::test]
async fn the_organisation_is_listed_and_each_member_read_with_its_own_role_through_moto() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::from_keys("AKIDGATEWAYTEST", "secret", None))
        .load()
        .await;
    let organizations = aws_sdk_organizations::Client::new(&sdk);
    let created = organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;
    // Another run against the same moto made it already.
    if let Err(error) = created {
        let code =
            aws_sdk_organizations::error::ProvideErrorMetadata::code(&error).unwrap_or_default().to_owned();
        assert_eq!(code, "AlreadyInOrganizationException", "{error:?}");
    }
    let mut members = Vec::new();
    for n in 0..2 {
        let name = format!("gateway-test-{}-{n}", std::process::id());
        let status = organizations
            .create_account()
            .account_name(&name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("moto creates an account");
        members.push(
            status.create_account_status().and_then(|s| s.account_id()).expect("an account id").to_owned(),
        );
    }
    // A task that exists only in the first member account: made with a role assumed there.
    let role = format!("arn:aws:iam::{}:role/Reader", members[0]);
    let assumed =
        aws_config::sts::AssumeRoleProvider::builder(role).session_name("test").configure(&sdk).build().await;
    let member_sdk = sdk
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(assumed))
        .build();
    let member = aws_sdk_datasync::Client::new(&member_sdk);
    let mut locations = Vec::new();
    for bucket in ["member-source", "member-destination"] {
        let s3 = aws_sdk_datasync::types::S3Config::builder()
            .bucket_access_role_arn("arn:aws:iam::123456789012:role/datasync")
            .build()
            .unwrap();
        let location = member
            .create_location_s3()
            .s3_bucket_arn(format!("arn:aws:s3:::{bucket}"))
            .s3_config(s3)
            .send()
            .await
            .unwrap();
        locations.push(location.location_arn().unwrap().to_owned());
    }
    let task_name = format!("only-in-{}", members[0]);
    member
        .create_task()
        .name(&task_name)
        .source_location_arn(&locations[0])
        .destination_location_arn(&locations[1])
        .send()
        .await
        .expect("moto creates the member's task");

    let mut config = crate::common::history_config().await;
    config.datasync.datasync_endpoint = Some(moto_endpoint());
    config.accounts.sts_endpoint = Some(moto_endpoint());
    config.accounts.organizations_endpoint = Some(moto_endpoint());
    config.accounts.organization_role_name = Some("Reader".into());
    config.history.discovery = true;
    config.history.discovery_interval = std::time::Duration::from_secs(1);
    let (address, _server) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");

    let listed = graphql(&url, "{ accounts { id status roleArn credentialsError } }", json!({})).await;
    let accounts = listed["data"]["accounts"].as_array().cloned().unwrap_or_default();
    for id in &members {
        let account = accounts
            .iter()
            .find(|account| account["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
        assert_eq!(account["status"], "SERVED");
        assert_eq!(account["roleArn"], format!("arn:aws:iam::{id}:role/Reader"));
    }
    // The member's task is listed (its account read with its own role), and no role was refused.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let tasks = graphql(&url, "{ tasks { edges { node { name } } } }", json!({})).await;
        let names = tasks["data"]["tasks"]["edges"].as_array().cloned().unwrap_or_default();
        if names.iter().any(|edge| edge["node"]["name"] == task_name.as_str()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the member's task was never listed: {tasks}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let listed = graphql(&url, "{ accounts { id credentialsError } }", json!({})).await;
    for account in listed["data"]["accounts"].as_array().unwrap() {
        assert!(account.get("credentialsError").is_some_and(Value::is_null), "{listed}");
    }
}
