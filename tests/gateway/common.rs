//! Starting the gateway and a simulator for a test, and talking to them.

use std::net::SocketAddr;
use std::time::Duration;

use datasync_gateway::app::Application;
use datasync_gateway::config::Config;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};

/// A simulator tick short enough for a new execution to finish in a couple of seconds.
pub const TEST_TICK: Duration = Duration::from_millis(50);

/// A gateway under test, and the simulator it talks to.
pub struct TestGateway {
    pub address: SocketAddr,
    /// The probes-only address, when the config asked for one.
    pub admin_address: Option<SocketAddr>,
    pub simulator: Simulator,
    pub http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

/// Defaults, on a free port, with retries fast enough for tests. `Config::defaults` reads the
/// environment as `serve` does, so what would change a test's meaning is reset here.
pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.datasync.simulator = false;
    config.datasync.regions =
        datasync_gateway::simulator::fleet::REGIONS.map(|region| region.parse().expect("a region")).to_vec();
    config.history.database_url = None;
    // Tests that want the discovery sync turn it on; the others count DataSync calls exactly.
    config.history.discovery = false;
    // As the sync: on where a test reads task reports (S3 calls are counted too).
    config.reports.report_ingestion = false;
    // On where a test sends webhooks; elsewhere its polling would only add to the database's load.
    config.webhooks.webhooks = false;
    config.datasync.fake_credentials = true;
    config.datasync.initial_backoff = Duration::from_millis(10);
    // The per-region call budget is tested on its own; elsewhere it would only slow tests down.
    config.datasync.calls_per_second = 10_000.0;
    // Every test client is 127.0.0.1; the rate limit is tested on its own.
    config.limits.rate_limit = 0;
    // A spool directory of its own: a test's shutdown must not feed another test's start.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    config.history.spool_dir =
        std::env::temp_dir().join(format!("gateway-test-spool-{}-{n}", std::process::id()));
    config
}

/// A simulator of its own for one test, on a free port.
pub async fn start_simulator() -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(TEST_TICK)).await.unwrap()
}

/// The gateway with `config`, serving on a free port until the test ends; its address.
pub async fn spawn_gateway(config: Config) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (address, _, server) = spawn_gateway_with_admin(config).await;
    (address, server)
}

/// As [`spawn_gateway`], with the admin address too.
async fn spawn_gateway_with_admin(
    config: Config,
) -> (SocketAddr, Option<SocketAddr>, tokio::task::JoinHandle<()>) {
    let app = Application::build(config).await.expect("the gateway starts");
    let (address, admin) = (app.local_addr(), app.admin_addr());
    let server = tokio::spawn(async move {
        app.run_until(std::future::pending()).await;
    });
    (address, admin, server)
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    /// The gateway with `config`, in front of a fresh simulator of its own.
    pub async fn start_with(config: Config) -> Self {
        Self::start_in_front_of(start_simulator().await, config).await
    }

    /// The gateway with `config`, in front of `simulator` (for DataSync, STS and Organizations).
    pub async fn start_in_front_of(simulator: Simulator, mut config: Config) -> Self {
        // RUST_LOG=debug scripts/test … shows the gateway's log beside a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
        config.accounts.sts_endpoint = Some(simulator.endpoint_url());
        config.accounts.organizations_endpoint = Some(simulator.endpoint_url());
        config.reports.s3_endpoint.get_or_insert_with(|| simulator.endpoint_url());
        let (address, admin_address, server) = spawn_gateway_with_admin(config).await;
        TestGateway { address, admin_address, simulator, http: reqwest::Client::new(), _server: server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// POSTs a GraphQL query; returns the whole JSON response.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        graphql(&self.url("/graphql"), query, variables).await
    }

    pub async fn post_json(&self, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self.http.post(self.url("/graphql")).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// DataSync calls the simulator has answered so far, of one operation.
    pub fn describe_calls(&self) -> u64 {
        self.simulator.calls("DescribeTaskExecution")
    }

    /// Sets the simulator's fault injection through its admin endpoint.
    pub async fn inject(&self, faults: Value) {
        let url = format!("{}/_simulator/faults", self.simulator.endpoint_url());
        let response = self.http.put(url).json(&faults).send().await.unwrap();
        assert!(response.status().is_success(), "{:?}", response.text().await);
    }
}

/// POSTs a GraphQL query to `url` (a gateway's `/graphql`); the whole JSON response.
pub async fn graphql(url: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    reqwest::Client::new().post(url).json(&body).send().await.unwrap().json().await.unwrap()
}

/// The `extensions.code` of each error, in order.
pub fn error_codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors.iter().map(|error| error["extensions"]["code"].as_str().unwrap_or("").to_owned()).collect()
        })
        .unwrap_or_default()
}

/// One execution by ARN, with the given selection.
pub const ONE: &str = "query($arn: ID!, $consistency: Consistency) {
    taskExecution(arn: $arn, consistency: $consistency) { taskExecutionArn status statusRaw servedFrom fetchedAt }
}";

/// Every field of `TaskExecution`, nested ones included.
pub const FULL: &str = "query($arn: ID!) { taskExecution(arn: $arn) {
    taskExecutionArn status statusRaw
    options { verifyMode overwriteMode atime mtime uid gid preserveDeletedFiles preserveDevices
              posixPermissions bytesPerSecond taskQueueing logLevel transferMode
              securityDescriptorCopyFlags objectTags }
    excludes { filterType value } includes { filterType value }
    manifestConfig { action format source { s3 { manifestObjectPath bucketAccessRoleArn s3BucketArn manifestObjectVersionId } } }
    startTime estimatedFilesToTransfer estimatedBytesToTransfer filesTransferred bytesWritten
    bytesTransferred bytesCompressed
    result { prepareDuration prepareStatus totalDuration transferDuration transferStatus
             verifyDuration verifyStatus errorCode errorDetail }
    taskReportConfig { destination { s3 { subdirectory s3BucketArn bucketAccessRoleArn } }
                       outputType reportLevel objectVersionIds
                       overrides { transferred { reportLevel } verified { reportLevel }
                                   deleted { reportLevel } skipped { reportLevel } } }
    filesDeleted filesSkipped filesVerified
    reportResult { status errorCode errorDetail }
    estimatedFilesToDelete taskMode taskModeRaw filesPrepared
    filesListed { atSource atDestinationForDelete }
    filesFailed { prepare transfer verify delete }
    launchTime endTime
    estimatedFoldersToTransfer estimatedFoldersToDelete foldersSkipped foldersPrepared
    foldersTransferred foldersVerified foldersDeleted
    foldersListed { atSource atDestinationForDelete }
    foldersFailed { list prepare transfer verify delete }
    taskArn executionId region accountId isTerminal
    progress { bytesPercent filesPercent foldersPercent bytesPerSecond elapsedMs estimatedRemainingMs }
    fetchedAt servedFrom
} }";

/// A plain SDK client for `endpoint` (the simulator or moto) in us-east-1, for setting up what a
/// test queries.
pub async fn sdk_client(endpoint: &str) -> aws_sdk_datasync::Client {
    sdk_client_in(endpoint, "us-east-1").await
}

pub async fn sdk_client_in(endpoint: &str, region: &str) -> aws_sdk_datasync::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_credential_types::Credentials::from_keys("AKIDTEST", "secret", None))
        .load()
        .await;
    aws_sdk_datasync::Client::new(&config)
}

/// A new, empty database on the test PostgreSQL; its URL.
pub async fn test_database() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let admin = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL is not set: run the tests with scripts/test");
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("gateway_test_{}_{n}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.expect("the test PostgreSQL accepts connections");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.unwrap();
    pool.close().await;
    let (server, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL ends with /DATABASE");
    format!("{server}/{name}")
}

/// The test config with a fresh history database.
pub async fn history_config() -> Config {
    let mut config = test_config();
    config.history.database_url = Some(test_database().await);
    config
}

impl TestGateway {
    /// Waits until the history writer has written `at_least` snapshots and has nothing queued.
    pub async fn history_settled(&self, at_least: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready: Value = self.get("/readyz").await.json().await.unwrap();
            let writer = &ready["history"]["writer"];
            if writer["backlog"] == 0 && writer["written"].as_u64().unwrap() >= at_least {
                return ready;
            }
            assert!(tokio::time::Instant::now() < deadline, "history never settled: {ready}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The npm test clients' folder, or a loud skip.
pub fn node_clients() -> Option<std::path::PathBuf> {
    match std::env::var_os("NODE_CLIENTS_DIR") {
        Some(dir) => Some(std::path::PathBuf::from(dir)),
        None => {
            skip("NODE_CLIENTS_DIR is not set (npm clients not installed); run the tests with scripts/test")
        }
    }
}

/// A test whose real client is missing here says so and skips, except under CI (`CI` set),
/// where a skip would pass a check that never ran.
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(std::env::var_os("CI").is_none(), "CI must run this test, but {why}");
    eprintln!("SKIPPED: {why}");
    None
}

pub async fn node(dir: &std::path::PathBuf, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new("node")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .await
        .expect("node runs")
}

/// A gateway in a process of its own (the real binary, as deployed), killed when dropped.
pub struct GatewayProcess {
    process: std::process::Child,
    pub address: SocketAddr,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl GatewayProcess {
    /// `datasync-gateway serve` on a free port, in front of `simulator` (both of its regions) and
    /// on `database_url`, with more `args` and the environment `envs` (on top of fake AWS
    /// credentials); its log goes to `<label>-<pid>.log` in the temp directory.
    pub async fn start(
        label: &str,
        simulator: &Simulator,
        database_url: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log_path = std::env::temp_dir().join(format!("{label}-{}.log", std::process::id()));
        let log = std::fs::File::create(log_path).unwrap();
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_datasync-gateway"))
            .args(["serve", "--listen", &address.to_string()])
            .args(["--datasync-endpoint", &simulator.endpoint_url(), "--regions", "us-east-1,eu-west-1"])
            .args(["--database-url", database_url])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the gateway binary starts");
        let gateway = GatewayProcess { process, address };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://{address}/healthz")).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "gateway {label} never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gateway
    }

    /// Ends the process at once (SIGKILL: no graceful shutdown).
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Sends the process `signal` (`HUP`, `TERM`, …) as `kill -<signal>` does.
    pub fn signal(&self, signal: &str) {
        let pid = self.process.id().to_string();
        let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Asks the process to stop as `docker stop` does (SIGTERM) and waits for it to exit,
    /// without blocking the test's runtime (which may serve what the process talks to).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.process.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs the gateway's CLI with `args`; its standard output, trimmed, after checking it succeeded.
pub fn gateway_cli(args: &[&str]) -> String {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_datasync-gateway")).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A new API key of `role`, named `name`, in the keys file `keys` (made with the CLI), limited to
/// `accounts` when some are given.
pub fn create_key(keys: &std::path::Path, role: &str, name: &str, accounts: &[String]) -> String {
    let accounts = accounts.join(",");
    let keys = keys.to_str().unwrap();
    let mut args = vec!["keys", "--api-keys-file", keys, "create", "--role", role, "--name", name];
    if !accounts.is_empty() {
        args.extend(["--accounts", &accounts]);
    }
    gateway_cli(&args)
}

/// The test config with authentication required, and a reader API key it accepts (in a keys
/// file of its own named after `label`).
pub fn config_with_a_reader_key(label: &str) -> (Config, String) {
    let keys = std::env::temp_dir().join(format!("{label}-keys-{}.json", std::process::id()));
    let key = create_key(&keys, "reader", label, &[]);
    let mut config = test_config();
    config.auth.mode = Some(datasync_gateway::config::AuthMode::Required);
    config.auth.api_keys_file = Some(keys);
    (config, key)
}

/// The real aws-sdk-s3 against `endpoint` (the simulator's S3, or moto's), path-style, signing
/// with `key` (whose account the simulator reads from it: `ASIA{account}…` for a member
/// account, else the seeded one).
pub fn s3_client(endpoint: &str, key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, "secret", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
