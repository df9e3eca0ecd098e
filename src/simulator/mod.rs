//! A DataSync-compatible HTTP server (awsJson 1.1, `X-Amz-Target: FmrsService.<Operation>`)
//! for demos, local development and tests: the real SDK talks to it over HTTP.
//!
//! It serves a seeded fleet ([`fleet::seeded`]) whose executions progress with time, counts calls
//! per operation, and injects faults on request. Admin endpoints, outside DataSync's API:
//!
//! - `GET /_simulator/calls`: calls per operation, e.g. `{"DescribeTaskExecution": 3}`
//! - `PUT /_simulator/faults`: `{"failure": "throttle" | "server_error" | "drop" | "drop_answer" |
//!   "access_denied" | null, "count": N | null (every call), "latencyMs": N, "operations":
//!   ["StartTaskExecution", …] | null (every operation)}`
//! - `DELETE /_simulator/faults`: back to normal
//! - `POST /_simulator/accounts`: `{"id": "444455556666", "name": "new-team"}` joins the
//!   organisation, with its own copy of the fleet
//! - `DELETE /_simulator/accounts`: `{"id": "222200000001"}` leaves the organisation (its fleet
//!   stays, as a closed account's resources would)
//! - `PUT /_simulator/roles`: `{"denied": ["222200000002"]}`: those accounts' roles cannot be assumed
//! - `GET /_simulator/assumed`: `AssumeRole` calls granted per account
//! - `PUT /_simulator/buckets`: `{"denied": ["example-datasync-reports"]}`: every S3 request to
//!   those buckets is refused with 403 AccessDenied (`{"denied": []}` lifts it)
//! - `PUT /_simulator/objects`: `{"corrupt": ["reports/Detailed-Reports/…json"]}`: GetObject of
//!   those keys answers the first half of the body only, as a broken upload would leave it
//!
//! Executions whose task has a report config write task reports ([`reports`]) to their account's
//! bucket (`example-datasync-reports` for the seeded account), served over a minimal path-style
//! S3 on the same port (`s3.rs`): `GET /{bucket}?list-type=2&prefix=…` (ListObjectsV2) and
//! `GET /{bucket}/{key}` (GetObject), for requests signed for `s3` or shaped like those. Each
//! bucket answers only to its account's credentials. Calls are counted (`ListObjectsV2`,
//! `GetObject`) and faults injected (`"operations": ["GetObject"]`) as for DataSync.
//!
//! With several accounts ([`SimulatorConfig::accounts`]) it also answers STS `AssumeRole` and
//! Organizations' account listings, and binds credentials to accounts ([`accounts`]).

pub mod accounts;
pub mod fleet;
mod operations;
pub mod reports;
mod s3;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use accounts::Organisation;
use fleet::Fleet;

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// The unit of phase lengths: a new execution of the quick task takes 31 ticks.
    pub tick: Duration,
    /// Finished executions added to the seeded ones (spread over the tasks, one an hour back in
    /// time, every tenth failed), for paging and volume.
    pub extra_executions: usize,
    /// The quick task starts on its own every this many ticks (none: only when asked).
    pub schedule_ticks: Option<u32>,
    /// Accounts in the organisation, the seeded one included; each has a copy of the fleet.
    pub accounts: usize,
    /// Files a task report covers at most (a benchmark's million-record report).
    pub report_files: i64,
}

impl SimulatorConfig {
    /// A fleet that changes only when asked to (what tests count calls against).
    pub fn with_tick(tick: Duration) -> Self {
        SimulatorConfig {
            tick,
            extra_executions: 0,
            schedule_ticks: None,
            accounts: 1,
            report_files: reports::MAX_FILES,
        }
    }
}

/// A running simulator; it stops when dropped.
pub struct Simulator {
    address: SocketAddr,
    state: Arc<State>,
    accept_loop: JoinHandle<()>,
}

impl Simulator {
    pub async fn start(listen: SocketAddr, config: SimulatorConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let organisation = Organisation::new(config.accounts);
        let state = Arc::new(State {
            fleet: Mutex::new({
                let now = Utc::now();
                let mut fleet = Fleet::seeded(now, config.tick, config.extra_executions);
                fleet.report_files = config.report_files;
                for member in organisation.accounts.iter().skip(1) {
                    fleet.add_account(&member.id);
                }
                if let Some(ticks) = config.schedule_ticks {
                    fleet.schedule_every(ticks, now);
                }
                fleet
            }),
            organisation: Mutex::new(organisation),
            faults: Mutex::new(Faults::default()),
            calls: Mutex::new(BTreeMap::new()),
            described: Mutex::new(BTreeMap::new()),
            denied_buckets: Mutex::new(Default::default()),
            corrupt_objects: Mutex::new(Default::default()),
        });
        let accept_loop = tokio::spawn(accept(listener, state.clone()));
        tracing::info!(%address, "DataSync simulator listening; seeded ARNs:");
        for (what, arn) in fleet::seeded::ALL {
            tracing::info!("  {arn}  ({what})");
        }
        let members: Vec<String> = (lock(&state.organisation).accounts.iter().skip(1))
            .map(|member| format!("{} ({})", member.id, member.name))
            .collect();
        if !members.is_empty() {
            tracing::info!(
                "the same executions in the organisation's other accounts, under their ids: {}",
                members.join(", ")
            );
        }
        Ok(Simulator { address, state, accept_loop })
    }

    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Calls received per DataSync operation (the admin endpoint's figures).
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.state.calls).get(operation).copied().unwrap_or(0)
    }

    /// DescribeTaskExecution calls received for one execution.
    pub fn described(&self, arn: &str) -> u64 {
        lock(&self.state.described)
            .iter()
            .filter(|((described, _), _)| described == arn)
            .map(|(_, n)| n)
            .sum()
    }

    /// DescribeTaskExecution calls received for one execution, signed with `access_key`.
    pub fn described_by(&self, arn: &str, access_key: &str) -> u64 {
        lock(&self.state.described).get(&(arn.to_owned(), access_key.to_owned())).copied().unwrap_or(0)
    }

    /// DescribeTaskExecution calls received for one execution, signed with any key of `account`.
    pub fn described_in(&self, arn: &str, account: &str) -> u64 {
        lock(&self.state.described)
            .iter()
            .filter(|((described, key), _)| described == arn && Organisation::account_of_key(key) == account)
            .map(|(_, n)| n)
            .sum()
    }

    /// `AssumeRole` calls granted for `account`.
    pub fn assumed(&self, account: &str) -> u64 {
        lock(&self.state.organisation).assumed.get(account).copied().unwrap_or(0)
    }

    /// Runs until the task is aborted (for the `simulate` command).
    pub async fn wait(self) {
        let _ = (&mut { self }.accept_loop).await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

struct State {
    fleet: Mutex<Fleet>,
    organisation: Mutex<Organisation>,
    faults: Mutex<Faults>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// DescribeTaskExecution calls per execution ARN and access key (which tells replicas apart).
    described: Mutex<BTreeMap<(String, String), u64>>,
    /// S3 buckets every request to is refused (`PUT /_simulator/buckets`).
    denied_buckets: Mutex<std::collections::BTreeSet<String>>,
    /// S3 keys whose body is cut in half (`PUT /_simulator/objects`).
    corrupt_objects: Mutex<std::collections::BTreeSet<String>>,
}

/// A poisoned lock only means another request panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Failure {
    /// 400 ThrottlingException, which the SDK retries with backoff.
    Throttle,
    /// 500 InternalException.
    ServerError,
    /// Close the connection without answering.
    Drop,
    /// Do what was asked, then close the connection without answering: the answer is lost.
    DropAnswer,
    /// 400 AccessDeniedException: the caller's credentials lack permission.
    AccessDenied,
    #[default]
    #[serde(skip)]
    None,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    failure: Option<Failure>,
    /// How many calls fail; `None` means every call.
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    latency_ms: u64,
    /// The operations that fail; `None` means all.
    #[serde(default)]
    operations: Option<Vec<String>>,
}

impl Faults {
    /// The failure for the next call of `operation`, using one up.
    fn take(&mut self, operation: &str) -> Failure {
        let Some(failure) = self.failure else { return Failure::None };
        if self.operations.as_ref().is_some_and(|operations| !operations.iter().any(|o| o == operation)) {
            return Failure::None;
        }
        match &mut self.count {
            Some(0) => Failure::None,
            Some(left) => {
                *left -= 1;
                failure
            }
            None => failure,
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "simulator: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
            // An error here is a dropped connection, deliberate (fault injection) or not.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type HttpResponse = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, 1024 * 1024).collect().await.map(|collected| collected.to_bytes())
    else {
        return Ok(json_response(StatusCode::PAYLOAD_TOO_LARGE, &json!({ "message": "body too large" })));
    };
    if parts.uri.path().starts_with("/_simulator/") {
        return Ok(admin(&state, &parts.method, parts.uri.path(), &body));
    }

    let authorization = parts.headers.get("authorization").and_then(|value| value.to_str().ok());
    // S3 (the task reports): signed for `s3`, or a GET shaped like one of its operations
    // (DataSync, STS and Organizations are POSTs to `/`).
    let s3_operation = s3::operation(&parts.method, parts.uri.path(), parts.uri.query());
    if authorization.and_then(|authorization| signed_scope(authorization, 3)) == Some("s3")
        || (s3_operation.is_some() && !parts.headers.contains_key("x-amz-target"))
    {
        let account = (authorization.and_then(|authorization| signed_scope(authorization, 0)))
            .map(Organisation::account_of_key);
        return s3_request(&state, s3_operation, &parts, account).await;
    }

    // Like DataSync, each region has its own executions: the region is the one the request was
    // signed for (SigV4 `Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
    let Some(region) = authorization.and_then(|authorization| signed_scope(authorization, 2)) else {
        return Ok(aws_error(
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            "Missing or unreadable SigV4 Authorization header",
        ));
    };
    let key = authorization.and_then(|authorization| signed_scope(authorization, 0)).unwrap_or_default();
    let account = Organisation::account_of_key(key);
    if authorization.and_then(|authorization| signed_scope(authorization, 3)) == Some("sts") {
        *lock(&state.calls).entry("AssumeRole".to_owned()).or_default() += 1;
        let (status, xml) = lock(&state.organisation).assume_role(&body, Utc::now());
        let mut response = Response::new(Full::new(Bytes::from(xml)));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        response.headers_mut().insert("content-type", "text/xml".parse().expect("valid header"));
        return Ok(response);
    }
    let target = parts.headers.get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if let Some(operation) = target.strip_prefix("AWSOrganizationsV20161128.") {
        *lock(&state.calls).entry(operation.to_owned()).or_default() += 1;
        let input: Value = serde_json::from_slice(&body).unwrap_or_default();
        let answer = lock(&state.organisation).organizations(account, operation, &input, Utc::now());
        return Ok(match answer {
            Ok(output) => json_response(StatusCode::OK, &output),
            Err((kind, message)) => aws_error(StatusCode::BAD_REQUEST, kind, &message),
        });
    }
    let Some(operation) = target.strip_prefix("FmrsService.") else {
        return Ok(aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "missing or unknown X-Amz-Target",
        ));
    };
    *lock(&state.calls).entry(operation.to_owned()).or_default() += 1;
    if operation == "DescribeTaskExecution" {
        let arn = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|input| input.get("TaskExecutionArn")?.as_str().map(str::to_owned));
        if let Some(arn) = arn {
            *lock(&state.described).entry((arn, key.to_owned())).or_default() += 1;
        }
    }

    let (failure, latency) = {
        let mut faults = lock(&state.faults);
        (faults.take(operation), Duration::from_millis(faults.latency_ms))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match failure {
        Failure::Throttle => {
            return Ok(aws_error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"));
        }
        Failure::ServerError => {
            return Ok(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalException",
                "simulated failure",
            ));
        }
        Failure::Drop => return Err(DropConnection),
        Failure::AccessDenied => {
            return Ok(aws_error(StatusCode::BAD_REQUEST, "AccessDeniedException", "not authorized"));
        }
        Failure::DropAnswer | Failure::None => {}
    }

    let input: Value = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(_) => {
            return Ok(aws_error(StatusCode::BAD_REQUEST, "SerializationException", "body is not JSON"))
        }
    };
    let mut fleet = lock(&state.fleet);
    let now = Utc::now();
    fleet.run_schedule(now);
    let answer =
        operations::call(&mut fleet, &operations::Signer { region, account }, operation, &input, now);
    if failure == Failure::DropAnswer {
        return Err(DropConnection);
    }
    Ok(match answer {
        Ok(output) => json_response(StatusCode::OK, &output),
        Err(operations::OperationError { kind, message }) => {
            aws_error(StatusCode::BAD_REQUEST, kind, &message)
        }
    })
}

/// An S3 request, after the same fault injection as DataSync's operations (S3's codes: 503
/// SlowDown for throttling, 500 InternalError, 403 AccessDenied).
async fn s3_request(
    state: &State,
    operation: Option<&'static str>,
    parts: &hyper::http::request::Parts,
    account: Option<&str>,
) -> Result<HttpResponse, DropConnection> {
    let path = parts.uri.path();
    let Some(operation) = operation else {
        *lock(&state.calls).entry("S3NotImplemented".to_owned()).or_default() += 1;
        let message = format!("the simulator's S3 does not implement {} {path}", parts.method);
        return Ok(s3::error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", &message, path));
    };
    *lock(&state.calls).entry(operation.to_owned()).or_default() += 1;
    let (failure, latency) = {
        let mut faults = lock(&state.faults);
        (faults.take(operation), Duration::from_millis(faults.latency_ms))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (status, code, message) = match failure {
        Failure::Throttle => {
            (StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.")
        }
        Failure::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "simulated failure"),
        Failure::AccessDenied => (StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"),
        Failure::Drop | Failure::DropAnswer => return Err(DropConnection),
        Failure::None => {
            return Ok(s3::handle(state, operation, path, parts.uri.query(), account, Utc::now()));
        }
    };
    Ok(s3::error(status, code, message, path))
}

/// Part `n` of a SigV4 credential scope, `KEY/DATE/REGION/SERVICE/aws4_request`.
fn signed_scope(authorization: &str, n: usize) -> Option<&str> {
    authorization.split("Credential=").nth(1)?.split(['/', ',']).nth(n)
}

fn admin(state: &State, method: &Method, path: &str, body: &[u8]) -> HttpResponse {
    match (method, path) {
        (&Method::GET, "/_simulator/calls") => json_response(StatusCode::OK, &json!(*lock(&state.calls))),
        (&Method::PUT, "/_simulator/faults") => match serde_json::from_slice::<Faults>(body) {
            Ok(faults) => {
                *lock(&state.faults) = faults;
                json_response(StatusCode::OK, &json!({}))
            }
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": error.to_string() })),
        },
        (&Method::DELETE, "/_simulator/faults") => {
            *lock(&state.faults) = Faults::default();
            json_response(StatusCode::OK, &json!({}))
        }
        (&Method::POST, "/_simulator/accounts") => match serde_json::from_slice::<NewAccount>(body) {
            Ok(NewAccount { id, name }) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => {
                let mut organisation = lock(&state.organisation);
                if !organisation.accounts.iter().any(|member| member.id == id) {
                    lock(&state.fleet).add_account(&id);
                    organisation.accounts.push(accounts::Account { id, name });
                }
                json_response(StatusCode::OK, &json!({}))
            }
            _ => json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "message": "expected {\"id\": 12 digits, \"name\"}" }),
            ),
        },
        (&Method::DELETE, "/_simulator/accounts") => match serde_json::from_slice::<LeavingAccount>(body) {
            Ok(LeavingAccount { id }) => {
                lock(&state.organisation).accounts.retain(|member| member.id != id);
                json_response(StatusCode::OK, &json!({}))
            }
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": error.to_string() })),
        },
        (&Method::PUT, "/_simulator/roles") => match serde_json::from_slice::<DeniedRoles>(body) {
            Ok(DeniedRoles { denied }) => {
                lock(&state.organisation).denied = denied;
                json_response(StatusCode::OK, &json!({}))
            }
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": error.to_string() })),
        },
        (&Method::PUT, "/_simulator/buckets") => match serde_json::from_slice::<DeniedBuckets>(body) {
            Ok(DeniedBuckets { denied }) => {
                *lock(&state.denied_buckets) = denied;
                json_response(StatusCode::OK, &json!({}))
            }
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": error.to_string() })),
        },
        (&Method::PUT, "/_simulator/objects") => match serde_json::from_slice::<CorruptObjects>(body) {
            Ok(CorruptObjects { corrupt }) => {
                *lock(&state.corrupt_objects) = corrupt;
                json_response(StatusCode::OK, &json!({}))
            }
            Err(error) => json_response(StatusCode::BAD_REQUEST, &json!({ "message": error.to_string() })),
        },
        (&Method::GET, "/_simulator/assumed") => {
            json_response(StatusCode::OK, &json!(lock(&state.organisation).assumed))
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({ "message": "no such admin endpoint" })),
    }
}

#[derive(Deserialize)]
struct NewAccount {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeavingAccount {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeniedRoles {
    denied: std::collections::BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeniedBuckets {
    denied: std::collections::BTreeSet<String>,
}

#[derive(Deserialize)]
struct CorruptObjects {
    corrupt: std::collections::BTreeSet<String>,
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1".parse().expect("valid header"));
    response
}

/// An awsJson 1.1 error: the SDK reads the code from `__type`.
fn aws_error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    let mut response = json_response(status, &json!({ "__type": kind, "message": message }));
    response.headers_mut().insert("x-amzn-errortype", kind.parse().expect("valid header"));
    response
}
