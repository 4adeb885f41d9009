//! A fake Azure Batch service on loopback, for integration tests and benchmarks.
//!
//! It follows the documented wire contract of Add Task, Add Task Collection, Add Job, Get Task,
//! List Tasks, Get, Update and Delete Job and Delete Task (api-version 2025-06-01): status codes,
//! `{"value": [...]}` results, `odata.nextLink` pages, `$select`, OData error bodies, ids compared
//! case-insensitively, `RequestBodyTooLarge` over 100 tasks or 1 MB. Jobs have the service's
//! life: `dependsOn` only in a job created with `usesTaskDependencies`, a job sealed with
//! `onAllTasksComplete: terminatejob` completes when its tasks have (as tests mark them), a
//! completed job refuses tasks (`JobCompleted`), a deleted one is `deleting` for a while, and the
//! active-job quota can be set. It verifies Shared
//! Key signatures with its own implementation of the scheme (written apart from the client's
//! signer, so that the two cannot share a mistake) or accepts a configured bearer token, and it
//! records every request.
//!
//! Faults come two ways: scripted ([`Fault`]s served in order to the next requests: canned
//! answers, connection resets before or after the request took effect, hangs, stalls; per-task
//! server errors in collections) and drawn at random per request from a seeded [`FaultProfile`]
//! (503s, 429s with or without `Retry-After`, resets, hangs), on top of a fixed latency. It is
//! served with hyper directly, connection by connection, so that a fault can drop a connection
//! with a TCP reset instead of answering. Whatever happens to a request, the fake counts per id
//! how many requests carried it and how many times it was created ([`IdCount`]), so that a test
//! can tell a lost task from a duplicated one.
//!
//! Included with `#[path]`/`mod` by several test crates, so it holds no tests itself.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;

/// The api-version the fake serves.
pub const API_VERSION: &str = "2025-06-01";
/// Default account of the fake.
pub const ACCOUNT: &str = "fakebatch";
/// Default account key of the fake (base64 of 64 known bytes).
pub const KEY: &str =
    "ZmFrZS1iYXRjaC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OQ==";
/// Largest Add Task Collection body the service takes (1 MB).
pub const MAX_COLLECTION_BYTES: usize = 1024 * 1024;
/// Most tasks in one Add Task Collection.
pub const MAX_COLLECTION_TASKS: usize = 100;
/// Largest `ocp-date` skew the service tolerates.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

const ODATA_CONTENT_TYPE: &str = "application/json;odata=minimalmetadata";

/// How the fake is set up. `Default` gives Shared Key with [`ACCOUNT`]/[`KEY`], no jobs, no
/// latency, results in request order, requests recorded.
#[derive(Clone, Debug)]
pub struct FakeBatchConfig {
    pub account: String,
    /// Base64 account key; Shared Key requests are accepted (and verified) when set.
    pub key: Option<String>,
    /// Bearer token accepted as `Authorization: Bearer <token>` when set.
    pub bearer_token: Option<String>,
    /// Create unknown jobs on Add Task instead of answering `JobNotFound`.
    pub auto_create_jobs: bool,
    /// Jobs that exist from the start (on a pool called `pool`).
    pub jobs: Vec<String>,
    /// Added to every request before it is handled.
    pub latency: Duration,
    /// Answer Add Task Collection items in reverse order (the service does not keep the order).
    pub reverse_collection_results: bool,
    /// Keep a record of every request (turn off for long benchmarks).
    pub record_requests: bool,
    /// Random faults drawn per request (after the scripted ones run out).
    pub faults: Option<FaultProfile>,
    /// Tasks per page of List Tasks (the service's default is 1,000).
    pub list_page_size: usize,
    /// How long a deleted job stays in the state `deleting` before it is gone.
    pub delete_delay: Duration,
    /// Jobs that are not completed, at most (the account's active-job quota); `None`: no limit.
    pub max_active_jobs: Option<usize>,
}

impl Default for FakeBatchConfig {
    fn default() -> Self {
        FakeBatchConfig {
            account: ACCOUNT.to_string(),
            key: Some(KEY.to_string()),
            bearer_token: None,
            auto_create_jobs: false,
            jobs: Vec::new(),
            latency: Duration::ZERO,
            reverse_collection_results: false,
            record_requests: true,
            faults: None,
            list_page_size: 1000,
            delete_delay: Duration::ZERO,
            max_active_jobs: None,
        }
    }
}

impl FakeBatchConfig {
    pub fn with_job(mut self, job_id: &str) -> Self {
        self.jobs.push(job_id.to_string());
        self
    }
}

/// A response served instead of normal handling, in the order queued.
#[derive(Clone, Debug)]
pub struct CannedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (longer than the client's timeout simulates a hang).
    pub delay: Duration,
}

impl CannedResponse {
    /// A Batch error: status, code and message in the service's OData error body.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        CannedResponse {
            status,
            headers: vec![("content-type".into(), ODATA_CONTENT_TYPE.into())],
            body: error_body("http://fake", code, message, "canned").to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A bare status with an empty body (what a gateway in front of the service might send).
    pub fn status(status: u16) -> Self {
        CannedResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the fake does with one request instead of answering it normally.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this instead of handling the request.
    Respond(CannedResponse),
    /// Reset the connection (TCP RST) without storing anything or answering.
    ResetBefore,
    /// Handle the request (store the tasks or the job it creates), then reset the connection
    /// instead of answering: the client cannot tell that it succeeded.
    ResetAfterCreate,
    /// Never answer (the request stays unanswered until the client closes the connection).
    Hang,
    /// Handle the request normally, but only after this long.
    Stall(Duration),
}

/// Faults drawn at random, one draw per request, from a seeded generator: the same seed gives
/// the same sequence of draws (which request gets which depends on arrival order). The
/// probabilities add up to at most 1; the rest of the requests are handled normally.
#[derive(Clone, Debug, Default)]
pub struct FaultProfile {
    pub seed: u64,
    /// `503 ServerBusy`.
    pub p_503: f64,
    /// `429 TooManyRequests`.
    pub p_429: f64,
    /// Sent as `Retry-After` (whole seconds, rounded up) with each 429 when set.
    pub retry_after_429: Option<Duration>,
    /// See [`Fault::ResetBefore`].
    pub p_reset_before: f64,
    /// See [`Fault::ResetAfterCreate`].
    pub p_reset_after_create: f64,
    /// See [`Fault::Hang`].
    pub p_hang: f64,
    /// Added to every request, on top of [`FakeBatchConfig::latency`].
    pub latency: Duration,
}

impl FaultProfile {
    /// The fault for a uniform draw `r` in `[0, 1)`, if any.
    fn pick(&self, r: f64) -> Option<Fault> {
        let mut edge = 0.0;
        let mut hit = |p: f64| {
            edge += p;
            r < edge
        };
        if hit(self.p_503) {
            Some(Fault::Respond(CannedResponse::error(
                503,
                "ServerBusy",
                "The server is currently unable to receive requests. Please retry your request.",
            )))
        } else if hit(self.p_429) {
            let mut response = CannedResponse::error(
                429,
                "TooManyRequests",
                "The server is throttling the account. Please retry your request later.",
            );
            if let Some(wait) = self.retry_after_429 {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                response = response.header("retry-after", &seconds.to_string());
            }
            Some(Fault::Respond(response))
        } else if hit(self.p_reset_before) {
            Some(Fault::ResetBefore)
        } else if hit(self.p_reset_after_create) {
            Some(Fault::ResetAfterCreate)
        } else if hit(self.p_hang) {
            Some(Fault::Hang)
        } else {
            None
        }
    }
}

/// What happened to requests carrying one id (lower-cased): how many requests (or collection
/// items) carried it, whatever became of them, and how many times it was created. Ids are unique
/// in a job, so `created` above 1 means the same id was created in two jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdCount {
    pub carried: u32,
    pub created: u32,
}

/// How many requests got each kind of fault, scripted or drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Canned answers, the drawn 503s and 429s included.
    pub responses: u64,
    pub status_503: u64,
    pub status_429: u64,
    pub reset_before: u64,
    pub reset_after_create: u64,
    pub hangs: u64,
    pub stalls: u64,
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<Value>,
    pub body_bytes: Vec<u8>,
    pub at: Instant,
    /// Whether the Authorization header was valid (signature, account, date skew, or token).
    pub authorized: bool,
    /// Status answered; 0 while the request is still being handled (or was abandoned).
    pub status: u16,
    /// The connection was reset instead of answering.
    pub reset: bool,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running fake; stops when dropped.
pub struct FakeBatch {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBatch {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it ends them all.
        self.server.abort();
    }
}

struct Shared {
    config: FakeBatchConfig,
    base_url: String,
    state: Mutex<FakeState>,
    /// Requests being handled now.
    in_flight: AtomicUsize,
}

#[derive(Default)]
struct FakeState {
    jobs: HashMap<String, Job>,
    scripted: VecDeque<Fault>,
    /// Lower-case task ids that get `servererror` in their next collection result(s).
    item_faults: HashMap<String, u32>,
    latency: Duration,
    profile: Option<FaultProfile>,
    rng: Option<fastrand::Rng>,
    requests: Vec<RecordedRequest>,
    request_count: u64,
    sequence: u64,
    task_counts: HashMap<String, IdCount>,
    job_counts: HashMap<String, IdCount>,
    fault_counts: FaultCounts,
}

struct Job {
    spec: Value,
    lifecycle: Lifecycle,
    /// `noaction` or `terminatejob`, as created or last updated.
    on_all_tasks_complete: String,
    task_ids: HashSet<String>,
    tasks: Vec<Value>,
    /// Lower-case task id -> fields Get Task answers with (state, executionInfo), set by tests.
    task_fields: HashMap<String, Value>,
    metadata: Vec<Value>,
}

/// One client connection; a fault may reset it.
struct Connection {
    /// A second handle on the socket (hyper owns the first), through which a fault sets a zero
    /// linger so that closing sends a reset.
    socket: Mutex<Option<socket2::Socket>>,
}

/// Returned to hyper to make it drop the connection without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault")
    }
}

impl std::error::Error for Dropped {}

impl Connection {
    /// Arms a reset: once hyper drops its handle too, the kernel sends RST instead of FIN.
    fn reset(&self) -> Dropped {
        if let Some(socket) = self.socket.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
        Dropped
    }
}

impl FakeBatch {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(config: FakeBatchConfig) -> FakeBatch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Batch service");
        let addr = listener.local_addr().expect("local address");
        let base_url = format!("http://{addr}");
        let mut state = FakeState {
            latency: config.latency,
            ..FakeState::default()
        };
        if let Some(profile) = &config.faults {
            state.rng = Some(fastrand::Rng::with_seed(profile.seed));
            state.profile = Some(profile.clone());
        }
        for id in &config.jobs {
            state.jobs.insert(
                id.to_ascii_lowercase(),
                Job::new(json!({"id": id, "poolInfo": {"poolId": "pool"}})),
            );
        }
        let shared = Arc::new(Shared {
            config,
            base_url,
            state: Mutex::new(state),
            in_flight: AtomicUsize::new(0),
        });
        let server = tokio::spawn(accept_loop(listener, shared.clone()));
        FakeBatch {
            addr,
            shared,
            server,
        }
    }

    /// The account endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.shared.base_url).expect("valid URL")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn account(&self) -> &str {
        &self.shared.config.account
    }

    /// Serves `response` (instead of normal handling) to the next request not already served a
    /// scripted fault.
    pub fn push_response(&self, response: CannedResponse) {
        self.push_fault(Fault::Respond(response));
    }

    /// Applies `fault` to the next request not already given a scripted fault.
    pub fn push_fault(&self, fault: Fault) {
        self.state().scripted.push_back(fault);
    }

    /// Draws random faults from `profile` (a fresh generator from its seed) from now on; `None`
    /// stops them.
    pub fn set_fault_profile(&self, profile: Option<FaultProfile>) {
        let mut state = self.state();
        state.rng = profile.as_ref().map(|p| fastrand::Rng::with_seed(p.seed));
        state.profile = profile;
    }

    /// The next `times` collection results for `task_id` are `servererror` (nothing is stored).
    pub fn fail_task_in_collection(&self, task_id: &str, times: u32) {
        self.state()
            .item_faults
            .insert(task_id.to_ascii_lowercase(), times);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    pub fn create_job(&self, job_id: &str, pool_id: &str) {
        self.state().jobs.insert(
            job_id.to_ascii_lowercase(),
            Job::new(json!({"id": job_id, "poolInfo": {"poolId": pool_id}})),
        );
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Waits until no request is being handled and none has arrived for a moment (10 s at most).
    /// A client whose deadline cut an attempt short may have sent it all the same: without this,
    /// such a request could be recorded after the caller cleared the requests, as if the next
    /// call had sent it.
    pub async fn settle(&self) {
        const QUIET: Duration = Duration::from_millis(300);
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut seen = self.request_count();
        loop {
            tokio::time::sleep(QUIET).await;
            let now = self.request_count();
            let idle = now == seen && self.shared.in_flight.load(Ordering::SeqCst) == 0;
            if idle || Instant::now() >= give_up {
                return;
            }
            seen = now;
        }
    }

    /// How many requests arrived, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.state().request_count
    }

    /// Per task id (lower-cased): how many Add Task requests and collection items carried it,
    /// and how many times it was created.
    pub fn task_counts(&self) -> HashMap<String, IdCount> {
        self.state().task_counts.clone()
    }

    /// The counts of one task id.
    pub fn task_count(&self, task_id: &str) -> IdCount {
        self.state()
            .task_counts
            .get(&task_id.to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }

    /// Per job id (lower-cased): how many Add Job requests carried it, how many times created.
    pub fn job_counts(&self) -> HashMap<String, IdCount> {
        self.state().job_counts.clone()
    }

    /// How many requests each kind of fault hit so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.state().fault_counts
    }

    /// The job's body as added, if the job exists.
    pub fn job(&self, job_id: &str) -> Option<Value> {
        self.state()
            .jobs
            .get(&job_id.to_ascii_lowercase())
            .map(|j| j.spec.clone())
    }

    pub fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .state()
            .jobs
            .values()
            .filter_map(|j| j.spec["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    }

    /// What Get Task reports for a task besides its body: `state` and `executionInfo`, e.g.
    /// `{"state": "completed", "executionInfo": {"exitCode": 0, "result": "success"}}`.
    /// (A task without fields is `active`.)
    pub fn set_task_fields(&self, job_id: &str, task_id: &str, fields: Value) {
        let mut state = self.state();
        let job = state
            .jobs
            .get_mut(&job_id.to_ascii_lowercase())
            .expect("the job exists");
        job.task_fields.insert(task_id.to_ascii_lowercase(), fields);
        job.settle();
    }

    /// Ends a job as the service would (e.g. `TaskFailed` when a task failed in a job whose
    /// `onTaskFailure` is `performexitoptionsjobaction`).
    pub fn complete_job(&self, job_id: &str, reason: &str) {
        let mut state = self.state();
        let job = state
            .jobs
            .get_mut(&job_id.to_ascii_lowercase())
            .expect("the job exists");
        job.lifecycle = Lifecycle::Completed(reason.to_string());
    }

    /// The job's state (`active`, `completed`, `deleting`) and `onAllTasksComplete`, if it exists.
    pub fn job_state(&self, job_id: &str) -> Option<(String, String)> {
        self.state()
            .jobs
            .get(&job_id.to_ascii_lowercase())
            .map(|job| {
                (
                    job.state_name().to_string(),
                    job.on_all_tasks_complete.clone(),
                )
            })
    }

    /// The job's metadata as Update Job last set it.
    pub fn job_metadata(&self, job_id: &str) -> Vec<Value> {
        self.state()
            .jobs
            .get(&job_id.to_ascii_lowercase())
            .map(|j| j.metadata.clone())
            .unwrap_or_default()
    }

    /// Every task id of a job (lower case), sorted.
    pub fn task_ids(&self, job_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .state()
            .jobs
            .get(&job_id.to_ascii_lowercase())
            .map(|j| j.task_ids.iter().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The tasks of a job as added (request bodies), in the order they were stored.
    pub fn tasks(&self, job_id: &str) -> Vec<Value> {
        self.state()
            .jobs
            .get(&job_id.to_ascii_lowercase())
            .map(|j| j.tasks.clone())
            .unwrap_or_default()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a job stands: the service's `active`, `completed` (with its terminate reason) and
/// `deleting` states.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lifecycle {
    Active,
    Completed(String),
    /// Gone once the instant has passed.
    Deleting(Instant),
}

impl Job {
    fn new(spec: Value) -> Self {
        Job {
            metadata: spec["metadata"].as_array().cloned().unwrap_or_default(),
            lifecycle: Lifecycle::Active,
            on_all_tasks_complete: spec["onAllTasksComplete"]
                .as_str()
                .unwrap_or("noaction")
                .to_string(),
            spec,
            task_ids: HashSet::new(),
            tasks: Vec::new(),
            task_fields: HashMap::new(),
        }
    }

    fn state_name(&self) -> &'static str {
        match self.lifecycle {
            Lifecycle::Active => "active",
            Lifecycle::Completed(_) => "completed",
            Lifecycle::Deleting(_) => "deleting",
        }
    }

    /// Whether every task has completed (as tests set their fields).
    fn all_tasks_completed(&self) -> bool {
        self.tasks.iter().all(|task| {
            let key = task["id"].as_str().unwrap_or_default().to_ascii_lowercase();
            self.task_fields
                .get(&key)
                .is_some_and(|f| f["state"] == "completed")
        })
    }

    /// A sealed job whose tasks have all completed completes, as the service does.
    fn settle(&mut self) {
        if self.lifecycle == Lifecycle::Active
            && self.on_all_tasks_complete == "terminatejob"
            && self.all_tasks_completed()
        {
            self.lifecycle = Lifecycle::Completed("AllTasksComplete".into());
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_connection(stream, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let connection = Arc::new(Connection {
        socket: Mutex::new(socket2::SockRef::from(&stream).try_clone().ok()),
    });
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        let connection = connection.clone();
        async move { handle(&shared, &connection, request).await }
    });
    // An error here is a reset on purpose, or a client that went away: nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Which ids a request carries, by what it asks for: `(tasks, jobs)`.
fn carried_ids(method: &Method, path: &str, body: Option<&Value>) -> (Vec<String>, Vec<String>) {
    let id = |v: &Value| v["id"].as_str().map(str::to_ascii_lowercase);
    let (Some(body), true) = (body, *method == Method::POST) else {
        return (Vec::new(), Vec::new());
    };
    if path.ends_with("/addtaskcollection") {
        let tasks = body["value"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        (tasks.iter().filter_map(id).collect(), Vec::new())
    } else if path.ends_with("/tasks") {
        (id(body).into_iter().collect(), Vec::new())
    } else if path.trim_end_matches('/') == "/jobs" {
        (Vec::new(), id(body).into_iter().collect())
    } else {
        (Vec::new(), Vec::new())
    }
}

/// Counts a request as being handled for as long as it lives, however its handling ends.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    shared: &Shared,
    connection: &Connection,
    request: Request<Incoming>,
) -> Result<Response, Dropped> {
    let _in_flight = InFlight::enter(&shared.in_flight);
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body_bytes = match Limited::new(body, 16 * 1024 * 1024).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body_bytes).ok();
    let authorized = authorize(&shared.config, &parts.method, &parts.uri, &parts.headers);

    let (request_id, latency, fault, record_index) = {
        let mut state = shared.state();
        state.sequence += 1;
        state.request_count += 1;
        let request_id = format!("00000000-fa6e-4000-8000-{:012x}", state.sequence);
        let (tasks, jobs) = carried_ids(&parts.method, parts.uri.path(), parsed.as_ref());
        for id in tasks {
            state.task_counts.entry(id).or_default().carried += 1;
        }
        for id in jobs {
            state.job_counts.entry(id).or_default().carried += 1;
        }
        let record_index = if shared.config.record_requests {
            state.requests.push(RecordedRequest {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers.clone(),
                body: parsed.clone(),
                body_bytes: body_bytes.clone(),
                at,
                authorized,
                status: 0,
                reset: false,
            });
            Some(state.requests.len() - 1)
        } else {
            None
        };
        let fault = match state.scripted.pop_front() {
            Some(fault) => Some(fault),
            None => {
                let state = &mut *state;
                match (&state.profile, &mut state.rng) {
                    (Some(profile), Some(rng)) => profile.pick(rng.f64()),
                    _ => None,
                }
            }
        };
        let counts = &mut state.fault_counts;
        match &fault {
            Some(Fault::Respond(canned)) => {
                counts.responses += 1;
                match canned.status {
                    503 => counts.status_503 += 1,
                    429 => counts.status_429 += 1,
                    _ => {}
                }
            }
            Some(Fault::ResetBefore) => counts.reset_before += 1,
            Some(Fault::ResetAfterCreate) => counts.reset_after_create += 1,
            Some(Fault::Hang) => counts.hangs += 1,
            Some(Fault::Stall(_)) => counts.stalls += 1,
            None => {}
        }
        let latency = state.latency + state.profile.as_ref().map_or(Duration::ZERO, |p| p.latency);
        (request_id, latency, fault, record_index)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let ctx = Ctx {
        shared,
        request_id: &request_id,
    };
    let handle_normally = || {
        if !authorized {
            ctx.error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            )
        } else {
            ctx.route(
                &parts.method,
                parts.uri.path(),
                parts.uri.query(),
                &parts.headers,
                &body_bytes,
            )
        }
    };
    let mark_reset = || {
        if let Some(i) = record_index
            && let Some(record) = shared.state().requests.get_mut(i)
        {
            record.reset = true;
        }
    };
    let mut response = match fault {
        None => handle_normally(),
        Some(Fault::Respond(canned)) => {
            if !canned.delay.is_zero() {
                tokio::time::sleep(canned.delay).await;
            }
            let mut builder = Response::builder().status(canned.status);
            for (name, value) in &canned.headers {
                builder = builder.header(name, value);
            }
            builder
                .body(Body::from(canned.body))
                .expect("canned response")
        }
        Some(Fault::ResetBefore) => {
            mark_reset();
            return Err(connection.reset());
        }
        Some(Fault::ResetAfterCreate) => {
            let _ = handle_normally();
            mark_reset();
            return Err(connection.reset());
        }
        // hyper drops this future when the client closes the connection, and the fake's drop
        // ends the connection otherwise.
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::Stall(stall)) => {
            tokio::time::sleep(stall).await;
            handle_normally()
        }
    };

    let headers = response.headers_mut();
    headers.insert(
        "request-id",
        HeaderValue::from_str(&request_id).expect("header text"),
    );
    if parts
        .headers
        .get("return-client-request-id")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        && let Some(id) = parts.headers.get("client-request-id")
    {
        headers.insert("client-request-id", id.clone());
    }
    if let Some(i) = record_index {
        let status = response.status().as_u16();
        if let Some(record) = shared.state().requests.get_mut(i) {
            record.status = status;
        }
    }
    Ok(response)
}

/// `$select`, as the service applies it: only the properties named are kept (and the answer's
/// `odata.metadata`).
fn selected(body: Value, query: Option<&str>) -> Value {
    let Some((_, names)) = query_params(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "$select")
    else {
        return body;
    };
    let names: Vec<&str> = names.split(',').map(str::trim).collect();
    match body {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(name, _)| name == "odata.metadata" || names.contains(&name.as_str()))
                .collect(),
        ),
        other => other,
    }
}

struct Ctx<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Ctx<'_> {
    fn route(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let versions: Vec<String> = query_params(query.unwrap_or(""))
            .into_iter()
            .filter(|(k, _)| k == "api-version")
            .map(|(_, v)| v)
            .collect();
        if versions.len() != 1 || versions[0] != API_VERSION {
            return self.error(
                400,
                "UnsupportedRequestVersion",
                "The specified Request Version is not supported.",
            );
        }
        if *method == Method::POST || *method == Method::PATCH {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mut parts = content_type
                .split(';')
                .map(|p| p.trim().to_ascii_lowercase());
            let media = parts.next().unwrap_or_default();
            let odata = parts.any(|p| p.starts_with("odata="));
            if media != "application/json" || !odata {
                return self.error(
                    400,
                    "InvalidHeaderValue",
                    "The value for one of the HTTP headers is not in the correct format.",
                );
            }
        }
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        self.purge_deleted_jobs();
        match (method, segments.as_slice()) {
            (&Method::POST, ["jobs"]) => self.add_job(body),
            (&Method::GET, ["jobs", job, "tasks"]) => self.list_tasks(job, query),
            (&Method::DELETE, ["jobs", job]) => self.delete_job(job),
            (&Method::DELETE, ["jobs", job, "tasks", task]) => self.delete_task(job, task),
            (&Method::POST, ["jobs", job, "tasks"]) => self.add_task(job, body),
            (&Method::POST, ["jobs", job, "addtaskcollection"]) => {
                self.add_task_collection(job, body)
            }
            (&Method::GET, ["jobs", job, "tasks", task]) => self.get_task(job, task, query),
            (&Method::GET, ["jobs", job]) => self.get_job(job, query),
            (&Method::PATCH, ["jobs", job]) => self.patch_job(job, body),
            _ => self.error(
                404,
                "ResourceNotFound",
                "The specified resource does not exist.",
            ),
        }
    }

    fn add_job(&self, body: &[u8]) -> Response {
        let Some(spec) = parse_object(body) else {
            return self.invalid_body();
        };
        let Some(id) = valid_id(&spec["id"]) else {
            return self.invalid_property("id");
        };
        if !spec["poolInfo"].is_object() {
            return self.missing_property("poolInfo");
        }
        let mut state = self.shared.state();
        let key = id.to_ascii_lowercase();
        match state.jobs.get(&key).map(|job| &job.lifecycle) {
            Some(Lifecycle::Deleting(_)) => {
                return self.error(
                    409,
                    "JobBeingDeleted",
                    "The specified job is being deleted.",
                );
            }
            Some(_) => return self.error(409, "JobExists", "The specified job already exists."),
            None => {}
        }
        let active = state
            .jobs
            .values()
            .filter(|job| !matches!(job.lifecycle, Lifecycle::Completed(_)))
            .count();
        if self
            .shared
            .config
            .max_active_jobs
            .is_some_and(|max| active >= max)
        {
            return self.error(
                409,
                "ActiveJobAndScheduleQuotaReached",
                "The account has reached its quota of active jobs and job schedules.",
            );
        }
        state.jobs.insert(key.clone(), Job::new(spec.clone()));
        state.job_counts.entry(key).or_default().created += 1;
        drop(state);
        self.created(&format!("jobs/{id}"))
    }

    fn add_task(&self, job_id: &str, body: &[u8]) -> Response {
        let Some(task) = parse_object(body) else {
            return self.invalid_body();
        };
        if let Err((code, property)) = check_task(&task) {
            return self.property_error(code, property);
        }
        let id = task["id"].as_str().unwrap_or_default().to_string();
        let mut state = self.shared.state();
        let Some(job) = self.job_mut(&mut state, job_id) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        if let Some(refused) = self.refuses_tasks(job) {
            return refused;
        }
        if let Some((code, message)) = dependency_error(job, &task) {
            // 400 in Batch's table of error codes.
            return self.error(400, code, message);
        }
        let key = id.to_ascii_lowercase();
        if !job.task_ids.insert(key.clone()) {
            return self.error(409, "TaskExists", "The specified task already exists.");
        }
        job.tasks.push(task);
        state.task_counts.entry(key).or_default().created += 1;
        drop(state);
        self.created(&format!("jobs/{job_id}/tasks/{id}"))
    }

    fn add_task_collection(&self, job_id: &str, body: &[u8]) -> Response {
        if body.len() > MAX_COLLECTION_BYTES {
            return self.too_large();
        }
        let Some(group) = parse_object(body) else {
            return self.invalid_body();
        };
        let Some(tasks) = group["value"].as_array() else {
            return self.missing_property("value");
        };
        if tasks.len() > MAX_COLLECTION_TASKS {
            return self.too_large();
        }
        let mut state = self.shared.state();
        let state = &mut *state;
        let Some(job) = self.job_mut_in(&mut state.jobs, job_id) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        if let Some(refused) = self.refuses_tasks(job) {
            return refused;
        }
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            let id = task["id"].as_str().unwrap_or_default().to_string();
            let key = id.to_ascii_lowercase();
            if let Err((code, property)) = check_task(task) {
                results.push(json!({
                    "status": "clienterror", "taskId": id,
                    "error": self.error_json(code, &format!("The value provided for {property} is invalid.")),
                }));
                continue;
            }
            if let Some((code, message)) = dependency_error(job, task) {
                results.push(json!({
                    "status": "clienterror", "taskId": id,
                    "error": self.error_json(code, message),
                }));
                continue;
            }
            if let Some(left) = state.item_faults.get_mut(&key)
                && *left > 0
            {
                *left -= 1;
                results.push(json!({
                    "status": "servererror", "taskId": id,
                    "error": self.error_json("InternalError", "Server encountered an internal error. Please try again after some time."),
                }));
                continue;
            }
            if !job.task_ids.insert(key.clone()) {
                results.push(json!({
                    "status": "clienterror", "taskId": id,
                    "error": self.error_json("TaskExists", "The specified task already exists."),
                }));
                continue;
            }
            job.tasks.push(task.clone());
            state.task_counts.entry(key).or_default().created += 1;
            results.push(json!({
                "status": "success", "taskId": id, "eTag": "0x8DE0000FA6E0001",
                "lastModified": "2026-03-14T09:31:09.0000000Z",
                "location": format!("{}/jobs/{job_id}/tasks/{id}", self.shared.base_url),
            }));
        }
        if self.shared.config.reverse_collection_results {
            results.reverse();
        }
        let body = json!({
            "odata.metadata": format!("{}/$metadata#taskaddresult", self.shared.base_url),
            "value": results,
        });
        json_response(200, &body)
    }

    fn get_task(&self, job_id: &str, task_id: &str, query: Option<&str>) -> Response {
        let mut state = self.shared.state();
        let Some(job) = state.jobs.get_mut(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        let Some(task) = job
            .tasks
            .iter()
            .find(|t| {
                t["id"]
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(task_id))
            })
            .cloned()
        else {
            return self.error(404, "TaskNotFound", "The specified task does not exist.");
        };
        let fields = job.task_fields.get(&task_id.to_ascii_lowercase()).cloned();
        drop(state);
        let mut body = task;
        let id = body["id"].as_str().unwrap_or_default().to_string();
        body["odata.metadata"] =
            json!(format!("{}/$metadata#tasks/@Element", self.shared.base_url));
        body["url"] = json!(format!("{}/jobs/{job_id}/tasks/{id}", self.shared.base_url));
        body["eTag"] = json!("0x8DE0000FA6E0001");
        body["creationTime"] = json!("2026-03-14T09:31:09.0000000Z");
        body["state"] = json!("active");
        body["stateTransitionTime"] = json!("2026-03-14T09:31:09.0000000Z");
        if let Some(Value::Object(fields)) = fields {
            for (name, value) in fields {
                body[name] = value;
            }
        }
        json_response(200, &selected(body, query))
    }

    fn get_job(&self, job_id: &str, query: Option<&str>) -> Response {
        let state = self.shared.state();
        let Some(job) = state.jobs.get(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        let mut body = job.spec.clone();
        body["metadata"] = Value::Array(job.metadata.clone());
        body["state"] = json!(job.state_name());
        body["onAllTasksComplete"] = json!(job.on_all_tasks_complete);
        if let Lifecycle::Completed(reason) = &job.lifecycle {
            body["executionInfo"] = json!({"terminateReason": reason});
        }
        body["odata.metadata"] = json!(format!("{}/$metadata#jobs/@Element", self.shared.base_url));
        drop(state);
        json_response(200, &selected(body, query))
    }

    /// Update Job: only the properties given change; only `metadata` is modelled.
    fn patch_job(&self, job_id: &str, body: &[u8]) -> Response {
        let Some(patch) = parse_object(body) else {
            return self.invalid_body();
        };
        let mut state = self.shared.state();
        let Some(job) = state.jobs.get_mut(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        if matches!(job.lifecycle, Lifecycle::Completed(_)) {
            return self.error(
                409,
                "JobCompleted",
                "The specified job is already in a completed state.",
            );
        }
        if let Some(metadata) = patch.get("metadata") {
            let Some(items) = metadata.as_array() else {
                return self.invalid_property("metadata");
            };
            job.metadata = items.clone();
        }
        match patch.get("onAllTasksComplete").and_then(Value::as_str) {
            Some("noaction") if job.on_all_tasks_complete == "terminatejob" => {
                return self.invalid_property("onAllTasksComplete");
            }
            Some(value @ ("noaction" | "terminatejob")) => {
                job.on_all_tasks_complete = value.to_string();
                job.settle();
            }
            Some(_) => return self.invalid_property("onAllTasksComplete"),
            None => {}
        }
        drop(state);
        Response::builder()
            .status(200)
            .header("etag", "0x8DE0000FA6E0002")
            .header("last-modified", "Sat, 14 Mar 2026 09:31:10 GMT")
            .header(
                "dataserviceid",
                format!("{}/jobs/{job_id}", self.shared.base_url),
            )
            .body(Body::empty())
            .expect("patch response")
    }

    /// Adding to a job that has ended or is being deleted is refused, as the service does.
    fn refuses_tasks(&self, job: &Job) -> Option<Response> {
        match job.lifecycle {
            Lifecycle::Active => None,
            Lifecycle::Completed(_) => Some(self.error(
                409,
                "JobCompleted",
                "The specified job is already in a completed state.",
            )),
            Lifecycle::Deleting(_) => Some(self.error(
                409,
                "JobBeingDeleted",
                "The specified job is being deleted.",
            )),
        }
    }

    /// List Tasks: every task as Get Task answers it (`$select` applied), a page at a time;
    /// `odata.nextLink` carries the `$skiptoken` of the next page.
    fn list_tasks(&self, job_id: &str, query: Option<&str>) -> Response {
        let state = self.shared.state();
        let Some(job) = state.jobs.get(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        let params = query_params(query.unwrap_or(""));
        let skip: usize = params
            .iter()
            .find(|(k, _)| k == "$skiptoken")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let page_size = self.shared.config.list_page_size.max(1);
        let page: Vec<Value> = job
            .tasks
            .iter()
            .skip(skip)
            .take(page_size)
            .map(|task| {
                let id = task["id"].as_str().unwrap_or_default();
                selected(
                    task_view(task, job.task_fields.get(&id.to_ascii_lowercase())),
                    query,
                )
            })
            .collect();
        let mut body = json!({
            "odata.metadata": format!("{}/$metadata#tasks", self.shared.base_url),
            "value": page,
        });
        if skip + page_size < job.tasks.len() {
            let mut next =
                url::Url::parse(&format!("{}/jobs/{job_id}/tasks", self.shared.base_url))
                    .expect("the fake's own URL");
            for (name, value) in params.iter().filter(|(k, _)| k != "$skiptoken") {
                next.query_pairs_mut().append_pair(name, value);
            }
            next.query_pairs_mut()
                .append_pair("$skiptoken", &(skip + page_size).to_string());
            body["odata.nextLink"] = json!(next.as_str());
        }
        json_response(200, &body)
    }

    /// Delete Job: `deleting` for [`FakeBatchConfig::delete_delay`], then gone.
    fn delete_job(&self, job_id: &str) -> Response {
        let mut state = self.shared.state();
        let Some(job) = state.jobs.get_mut(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        if !matches!(job.lifecycle, Lifecycle::Deleting(_)) {
            job.lifecycle = Lifecycle::Deleting(Instant::now() + self.shared.config.delete_delay);
        }
        drop(state);
        Response::builder()
            .status(202)
            .body(Body::empty())
            .expect("delete response")
    }

    fn delete_task(&self, job_id: &str, task_id: &str) -> Response {
        let mut state = self.shared.state();
        let Some(job) = state.jobs.get_mut(&job_id.to_ascii_lowercase()) else {
            return self.error(404, "JobNotFound", "The specified job does not exist.");
        };
        let key = task_id.to_ascii_lowercase();
        if !job.task_ids.remove(&key) {
            return self.error(404, "TaskNotFound", "The specified task does not exist.");
        }
        job.tasks.retain(|t| {
            !t["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(task_id))
        });
        job.task_fields.remove(&key);
        drop(state);
        Response::builder()
            .status(200)
            .body(Body::empty())
            .expect("delete response")
    }

    fn purge_deleted_jobs(&self) {
        let now = Instant::now();
        self.shared
            .state()
            .jobs
            .retain(|_, job| !matches!(job.lifecycle, Lifecycle::Deleting(until) if until <= now));
    }

    fn job_mut<'s>(&self, state: &'s mut FakeState, job_id: &str) -> Option<&'s mut Job> {
        self.job_mut_in(&mut state.jobs, job_id)
    }

    fn job_mut_in<'s>(
        &self,
        jobs: &'s mut HashMap<String, Job>,
        job_id: &str,
    ) -> Option<&'s mut Job> {
        let key = job_id.to_ascii_lowercase();
        if self.shared.config.auto_create_jobs && !jobs.contains_key(&key) {
            jobs.insert(
                key.clone(),
                Job::new(json!({"id": job_id, "poolInfo": {"poolId": "pool"}})),
            );
        }
        jobs.get_mut(&key)
    }

    fn created(&self, relative: &str) -> Response {
        let location = format!("{}/{relative}", self.shared.base_url);
        Response::builder()
            .status(201)
            .header("etag", "0x8DE0000FA6E0001")
            .header("last-modified", "Sat, 14 Mar 2026 09:31:09 GMT")
            .header("dataserviceid", &location)
            .header("location", &location)
            .header("dataserviceversion", "3.0")
            .body(Body::empty())
            .expect("created response")
    }

    fn error_json(&self, code: &str, message: &str) -> Value {
        json!({
            "code": code,
            "message": {"lang": "en-US", "value": format!("{message}\nRequestId:{}\nTime:2026-03-14T09:31:09.0000000Z", self.request_id)},
        })
    }

    fn error(&self, status: u16, code: &str, message: &str) -> Response {
        json_response(
            status,
            &error_body(&self.shared.base_url, code, message, self.request_id),
        )
    }

    fn invalid_body(&self) -> Response {
        self.error(
            400,
            "InvalidRequestBody",
            "The specified Request Body is not syntactically valid.",
        )
    }

    fn missing_property(&self, property: &str) -> Response {
        self.property_error("MissingRequiredProperty", property)
    }

    fn invalid_property(&self, property: &str) -> Response {
        self.property_error("InvalidPropertyValue", property)
    }

    fn property_error(&self, code: &str, property: &str) -> Response {
        let mut body = error_body(
            &self.shared.base_url,
            code,
            "A property of the request body is missing or invalid.",
            self.request_id,
        );
        body["values"] = json!([{"key": "PropertyName", "value": property}]);
        json_response(400, &body)
    }

    fn too_large(&self) -> Response {
        self.error(
            413,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
    }
}

fn error_body(base_url: &str, code: &str, message: &str, request_id: &str) -> Value {
    json!({
        "odata.metadata": format!("{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"),
        "code": code,
        "message": {
            "lang": "en-US",
            "value": format!("{message}\nRequestId:{request_id}\nTime:2026-03-14T09:31:09.0000000Z"),
        },
    })
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("valid status"))
        .header("content-type", ODATA_CONTENT_TYPE)
        .header("dataserviceversion", "3.0")
        .body(Body::from(body.to_string()))
        .expect("json response")
}

fn parse_object(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// Letters, digits, `-` and `_`, 1 to 64 characters.
fn valid_id(value: &Value) -> Option<&str> {
    let id = value.as_str()?;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id)
}

/// A task may depend on others only in a job created with `usesTaskDependencies`.
fn dependency_error(job: &Job, task: &Value) -> Option<(&'static str, &'static str)> {
    let depends = task.get("dependsOn").is_some_and(|d| !d.is_null());
    (depends && job.spec["usesTaskDependencies"] != json!(true)).then_some((
        "TaskDependenciesNotSpecifiedOnJob",
        "The job does not allow task dependencies.",
    ))
}

/// A task as Get Task and List Tasks show it: its body, the service's own properties, and the
/// state and execution information a test set (`active` otherwise).
fn task_view(task: &Value, fields: Option<&Value>) -> Value {
    let mut body = task.clone();
    body["state"] = json!("active");
    if let Some(Value::Object(fields)) = fields {
        for (name, value) in fields {
            body[name] = value.clone();
        }
    }
    body
}

fn check_task(task: &Value) -> Result<(), (&'static str, &'static str)> {
    if task.get("id").is_none() {
        return Err(("MissingRequiredProperty", "id"));
    }
    if valid_id(&task["id"]).is_none() {
        return Err(("InvalidPropertyValue", "id"));
    }
    match task.get("commandLine") {
        None => Err(("MissingRequiredProperty", "commandLine")),
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(_) => Err(("InvalidPropertyValue", "commandLine")),
    }
}

/// `(lower-cased name, decoded value)` pairs of a raw query string.
fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(name).to_ascii_lowercase(), decode(value))
        })
        .collect()
}

fn authorize(
    config: &FakeBatchConfig,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> bool {
    let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if let Some(token) = authorization.strip_prefix("Bearer ") {
        return config.bearer_token.as_deref() == Some(token);
    }
    let (Some(key), Some(credentials)) = (&config.key, authorization.strip_prefix("SharedKey "))
    else {
        return false;
    };
    let Some((account, signature)) = credentials.split_once(':') else {
        return false;
    };
    if account != config.account || !date_within_skew(headers) {
        return false;
    }
    let Ok(key) = BASE64.decode(key) else {
        return false;
    };
    let Ok(given) = BASE64.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(expected_string_to_sign(&config.account, method, uri, headers).as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// The StringToSign as the service documents it, computed from what arrived.
fn expected_string_to_sign(
    account: &str,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> String {
    let value = |name: &str| -> String {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",")
    };
    let date = if headers.contains_key("ocp-date") {
        String::new()
    } else {
        value("date")
    };
    let lines = [
        method.as_str().to_ascii_uppercase(),
        value("content-encoding"),
        value("content-language"),
        value("content-length"),
        value("content-md5"),
        value("content-type"),
        date,
        value("if-modified-since"),
        value("if-match"),
        value("if-none-match"),
        value("if-unmodified-since"),
        value("range"),
    ];
    let mut ocp: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, v) in headers {
        let name = name.as_str().to_ascii_lowercase();
        if name.starts_with("ocp-") {
            ocp.entry(name)
                .or_default()
                .push(String::from_utf8_lossy(v.as_bytes()).trim().to_string());
        }
    }
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, v) in query_params(uri.query().unwrap_or("")) {
        params.entry(name).or_default().push(v);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    for (name, values) in ocp {
        out += &format!("{name}:{}\n", values.join(","));
    }
    out += &format!("/{account}{}", uri.path());
    for (name, mut values) in params {
        values.sort();
        out += &format!("\n{name}:{}", values.join(","));
    }
    out
}

fn date_within_skew(headers: &HeaderMap) -> bool {
    let raw = headers
        .get("ocp-date")
        .or_else(|| headers.get("date"))
        .and_then(|v| v.to_str().ok());
    let Some(at) = raw.and_then(parse_rfc1123) else {
        return false;
    };
    let skew = (time::OffsetDateTime::now_utc() - at).unsigned_abs();
    skew <= MAX_CLOCK_SKEW
}

fn parse_rfc1123(value: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|t| t.assume_utc())
}
