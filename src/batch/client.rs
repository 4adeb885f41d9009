//! The Batch REST client: Add Task, Add Task Collection, Add Job and Get Task over one pooled
//! `reqwest::Client`, with Shared Key or Entra ID authorization and budgeted retries.
//!
//! Every logical call gets one `client-request-id` that all its attempts share, so the service's
//! logs tie the attempts together; ids of tasks and jobs are deterministic, so a retry of a request
//! that did arrive comes back as `TaskExists`/`JobExists`, which callers treat as success.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
};
use reqwest::{Method, StatusCode};
use time::OffsetDateTime;

use crate::loopback::is_loopback_url;
use tokio::time::Instant;
use tracing::{Instrument, debug, warn};
use url::Url;

use super::credential::{BATCH_SCOPE, BatchCredential};
use super::error::{BatchConfigError, BatchError, BatchErrorKind, header_string};
use super::models::{BatchTask, JobSpec, TaskAddCollectionResult, TaskAddStatus, TaskSpec};
use super::retry::{RetryOptions, format_http_date, is_retryable_status, server_retry_after};
use super::shared_key::SharedKeySigner;
use crate::runner::Accepted;

/// The Batch data-plane API version this client speaks.
pub const API_VERSION: &str = "2025-06-01";

/// Content type of every request body, as the service documents it (and as Shared Key signs it).
pub const ODATA_JSON: &str = "application/json; odata=minimalmetadata";

/// Add Task Collection takes at most this many tasks per request.
pub const MAX_TASKS_PER_COLLECTION: usize = 100;

/// Add Task Collection bodies must stay under 1 MB; we keep a margin below 1 MiB.
pub const MAX_COLLECTION_BODY_BYTES: usize = 1_000_000;

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of [`BatchClient`], in the manner of the Azure SDK's client options.
#[derive(Clone, Debug)]
pub struct BatchClientOptions {
    /// Account endpoint, e.g. `https://acct.westeurope.batch.azure.com`. Plain `http://` only on a
    /// loopback host and only with Shared Key (local fakes), since a bearer token or a signature
    /// must not cross a network in clear text.
    pub endpoint: Url,
    pub credential: BatchCredential,
    pub retry: RetryOptions,
    /// Limit of one attempt (connect, send, read); never more than what is left of the budget.
    pub request_timeout: Duration,
    /// Lets a token credential talk plain `http://` to a loopback host. Only for tests against a
    /// local fake: tokens are bearer secrets and must otherwise travel over TLS.
    pub danger_allow_token_over_http_on_loopback: bool,
}

impl BatchClientOptions {
    pub fn new(endpoint: Url, credential: BatchCredential) -> Self {
        BatchClientOptions {
            endpoint,
            credential,
            retry: RetryOptions::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            danger_allow_token_over_http_on_loopback: false,
        }
    }
}

/// Client of one Batch account. Cheap to clone: clones share the connection pool.
#[derive(Clone, Debug)]
pub struct BatchClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    auth: Auth,
    retry: RetryOptions,
    request_timeout: Duration,
}

enum Auth {
    SharedKey(SharedKeySigner),
    Token(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::SharedKey(signer) => signer.fmt(f),
            Auth::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// One logical request; its attempts differ only in `ocp-date` and the authorization.
struct Call {
    operation: &'static str,
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    client_request_id: String,
}

impl Call {
    fn new(operation: &'static str, method: Method, url: Url, body: Option<Vec<u8>>) -> Self {
        Call {
            operation,
            method,
            url,
            body,
            client_request_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Which attempt of its logical call produced this reply.
    attempt: u32,
}

enum AttemptError {
    Http(reqwest::Error),
    Credential(String),
}

impl BatchClient {
    pub fn new(options: BatchClientOptions) -> Result<Self, BatchConfigError> {
        options.retry.validate()?;
        if options.request_timeout.is_zero() {
            return Err(BatchConfigError::InvalidRetryOptions(
                "request_timeout must be positive".into(),
            ));
        }
        let endpoint = validate_endpoint(
            &options.endpoint,
            &options.credential,
            options.danger_allow_token_over_http_on_loopback,
        )?;
        let auth = match options.credential {
            BatchCredential::SharedKey { account, key } => {
                Auth::SharedKey(SharedKeySigner::new(&account, &key)?)
            }
            BatchCredential::Token(credential) => Auth::Token(credential),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("blob2batch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.request_timeout)
            .build()
            .map_err(|e| BatchConfigError::HttpClient(error_chain(&e)))?;
        Ok(BatchClient {
            inner: Arc::new(Inner {
                http,
                endpoint,
                auth,
                retry: options.retry,
                request_timeout: options.request_timeout,
            }),
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    pub fn retry_options(&self) -> &RetryOptions {
        &self.inner.retry
    }

    /// The deadline of a logical call starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.inner.retry.budget
    }

    /// Add Task: 201 is [`Accepted::Submitted`], 409 `TaskExists` is [`Accepted::Duplicate`].
    pub async fn add_task(&self, job_id: &str, task: &TaskSpec) -> Result<Accepted, BatchError> {
        self.add_task_until(job_id, task, self.deadline()).await
    }

    /// Add Task Collection: one result per task, in the order given. Sends chunks of at most
    /// [`MAX_TASKS_PER_COLLECTION`] tasks and [`MAX_COLLECTION_BODY_BYTES`]; retries only the
    /// items the service failed with `servererror`; halves a chunk the service finds too large.
    /// Tasks repeating an id (case-insensitively) are sent once; the copies are duplicates.
    pub async fn add_task_collection(
        &self,
        job_id: &str,
        tasks: &[TaskSpec],
    ) -> Vec<Result<Accepted, BatchError>> {
        let refs: Vec<&TaskSpec> = tasks.iter().collect();
        self.add_task_collection_until(job_id, &refs, self.deadline())
            .await
    }

    /// Add Job: 201 is [`Accepted::Submitted`], 409 `JobExists` is [`Accepted::Duplicate`].
    pub async fn add_job(&self, job: &JobSpec) -> Result<Accepted, BatchError> {
        self.add_job_until(job, self.deadline()).await
    }

    /// Get Task.
    pub async fn get_task(&self, job_id: &str, task_id: &str) -> Result<BatchTask, BatchError> {
        let call = Call::new(
            "get_task",
            Method::GET,
            self.url(&["jobs", job_id, "tasks", task_id]),
            None,
        );
        let reply = self.execute(&call, self.deadline()).await?;
        if reply.status != StatusCode::OK {
            return Err(error_from_reply(&reply, &call));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            let mut err = BatchError::permanent(
                "InvalidResponse",
                format!("unreadable Get Task response: {e}"),
            );
            err.request_id = header_string(&reply.headers, "request-id");
            err.client_request_id = Some(call.client_request_id.clone());
            err
        })
    }

    pub(crate) async fn add_task_until(
        &self,
        job_id: &str,
        task: &TaskSpec,
        deadline: Instant,
    ) -> Result<Accepted, BatchError> {
        let body = serde_json::to_vec(task).map_err(|e| {
            BatchError::permanent("InvalidRequest", format!("cannot serialize the task: {e}"))
        })?;
        let call = Call::new(
            "add_task",
            Method::POST,
            self.url(&["jobs", job_id, "tasks"]),
            Some(body),
        );
        let reply = self.execute(&call, deadline).await?;
        accepted_or_exists(&reply, &call, "TaskExists")
    }

    pub(crate) async fn add_job_until(
        &self,
        job: &JobSpec,
        deadline: Instant,
    ) -> Result<Accepted, BatchError> {
        let body = serde_json::to_vec(job).map_err(|e| {
            BatchError::permanent("InvalidRequest", format!("cannot serialize the job: {e}"))
        })?;
        let call = Call::new("add_job", Method::POST, self.url(&["jobs"]), Some(body));
        let reply = self.execute(&call, deadline).await?;
        accepted_or_exists(&reply, &call, "JobExists")
    }

    pub(crate) async fn add_task_collection_until(
        &self,
        job_id: &str,
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        let mut results: Vec<Option<Result<Accepted, BatchError>>> = vec![None; tasks.len()];

        // The service would refuse two ids differing only by case in one job; send each once.
        let mut first_by_id: HashMap<String, usize> = HashMap::with_capacity(tasks.len());
        let mut copies: Vec<(usize, usize)> = Vec::new();
        let mut unique: Vec<usize> = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            match first_by_id.entry(task.id.to_ascii_lowercase()) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    copies.push((i, *first.get()))
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                    unique.push(i);
                }
            }
        }

        let mut serialized: Vec<Vec<u8>> = vec![Vec::new(); tasks.len()];
        let mut sendable = Vec::with_capacity(unique.len());
        for i in unique {
            match serde_json::to_vec(tasks[i]) {
                Ok(bytes) => {
                    serialized[i] = bytes;
                    sendable.push(i);
                }
                Err(e) => {
                    results[i] = Some(Err(BatchError::permanent(
                        "InvalidRequest",
                        format!("cannot serialize the task: {e}"),
                    )))
                }
            }
        }

        let sizes: Vec<usize> = sendable.iter().map(|&i| serialized[i].len()).collect();
        let mut work: VecDeque<Vec<usize>> =
            plan_chunks(&sizes, MAX_TASKS_PER_COLLECTION, MAX_COLLECTION_BODY_BYTES)
                .into_iter()
                .map(|chunk| chunk.into_iter().map(|k| sendable[k]).collect())
                .collect();
        let url = self.url(&["jobs", job_id, "addtaskcollection"]);
        while let Some(chunk) = work.pop_front() {
            self.send_chunk(
                &url,
                tasks,
                &serialized,
                chunk,
                &mut results,
                &mut work,
                deadline,
            )
            .await;
        }

        for (copy, first) in copies {
            results[copy] = Some(match &results[first] {
                Some(Ok(_)) => Ok(Accepted::Duplicate),
                Some(Err(e)) => Err(e.clone()),
                None => Err(BatchError::transient("no result for this task")),
            });
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BatchError::transient("no result for this task"))))
            .collect()
    }

    /// Sends one chunk until every item has an outcome: server errors of single items are retried
    /// alone, with the same task ids, for as long as the budget allows.
    #[allow(clippy::too_many_arguments)]
    async fn send_chunk(
        &self,
        url: &Url,
        tasks: &[&TaskSpec],
        serialized: &[Vec<u8>],
        chunk: Vec<usize>,
        results: &mut [Option<Result<Accepted, BatchError>>],
        work: &mut VecDeque<Vec<usize>>,
        deadline: Instant,
    ) {
        let mut pending = chunk;
        let mut round: u32 = 0;
        loop {
            round += 1;
            let call = Call::new(
                "add_task_collection",
                Method::POST,
                url.clone(),
                Some(collection_body(&pending, serialized)),
            );
            let reply = match self.execute(&call, deadline).await {
                Ok(reply) => reply,
                Err(e) => {
                    for &i in &pending {
                        results[i] = Some(Err(e.clone()));
                    }
                    return;
                }
            };
            if !reply.status.is_success() {
                let err = error_from_reply(&reply, &call);
                if reply.status == StatusCode::PAYLOAD_TOO_LARGE
                    && err.has_code("RequestBodyTooLarge")
                    && pending.len() > 1
                {
                    let second = pending.split_off(pending.len() / 2);
                    debug!(
                        first = pending.len(),
                        second = second.len(),
                        "Batch found the task collection too large; splitting it"
                    );
                    work.push_front(second);
                    work.push_front(pending);
                } else {
                    for &i in &pending {
                        results[i] = Some(Err(err.clone()));
                    }
                }
                return;
            }

            let request_id = header_string(&reply.headers, "request-id");
            let mut by_id: HashMap<String, _> =
                serde_json::from_slice::<TaskAddCollectionResult>(&reply.body)
                    .map(|r| r.value)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| (item.task_id.to_ascii_lowercase(), item))
                    .collect();
            let mut retry: Vec<(usize, BatchError)> = Vec::new();
            for &i in &pending {
                let item_error = |kind, body: Option<super::models::BatchErrorBody>| BatchError {
                    kind,
                    status: None,
                    code: body.as_ref().and_then(|b| b.code.clone()),
                    message: body
                        .and_then(|b| b.message.and_then(|m| m.value))
                        .unwrap_or_else(|| "no error detail".to_string()),
                    request_id: request_id.clone(),
                    client_request_id: Some(call.client_request_id.clone()),
                    attempts: round,
                };
                match by_id.remove(&tasks[i].id.to_ascii_lowercase()) {
                    Some(item) => match item.status {
                        TaskAddStatus::Success => results[i] = Some(Ok(Accepted::Submitted)),
                        TaskAddStatus::ClientError => {
                            let err = item_error(BatchErrorKind::Permanent, item.error);
                            results[i] = Some(if err.has_code("TaskExists") {
                                Ok(Accepted::Duplicate)
                            } else {
                                Err(err)
                            });
                        }
                        TaskAddStatus::ServerError => {
                            retry.push((i, item_error(BatchErrorKind::Transient, item.error)))
                        }
                    },
                    None => {
                        let mut err = item_error(BatchErrorKind::Transient, None);
                        err.message = "the service returned no result for this task".into();
                        retry.push((i, err));
                    }
                }
            }
            if retry.is_empty() {
                return;
            }
            let wait = self.inner.retry.backoff(round);
            if Instant::now() + wait >= deadline {
                warn!(
                    tasks = retry.len(),
                    round, "Batch task collection: retry budget exhausted with server errors left"
                );
                for (i, err) in retry {
                    results[i] = Some(Err(err));
                }
                return;
            }
            warn!(
                tasks = retry.len(),
                round,
                code = retry[0].1.code.as_deref(),
                delay_ms = wait.as_millis() as u64,
                "Batch task collection: retrying the items that failed with server errors"
            );
            tokio::time::sleep(wait).await;
            pending = retry.into_iter().map(|(i, _)| i).collect();
        }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.endpoint.clone();
        url.path_segments_mut()
            .expect("validated endpoints have a base")
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    /// Runs the attempts of one logical call: returns the first answer that is not worth a retry
    /// (success or a permanent refusal), or the last transient failure once the next wait would
    /// leave the budget.
    async fn execute(&self, call: &Call, deadline: Instant) -> Result<Reply, BatchError> {
        let span = tracing::debug_span!(
            "batch_call",
            operation = call.operation,
            client_request_id = %call.client_request_id,
        );
        self.execute_attempts(call, deadline).instrument(span).await
    }

    async fn execute_attempts(&self, call: &Call, deadline: Instant) -> Result<Reply, BatchError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let mut err = BatchError::transient("retry budget exhausted before sending");
                err.client_request_id = Some(call.client_request_id.clone());
                err.attempts = attempt - 1;
                return Err(err);
            }
            let timeout = self.inner.request_timeout.min(remaining);
            let started = Instant::now();
            let outcome = tokio::time::timeout(timeout, self.attempt(call)).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            let path = call.url.path();
            let (mut err, server_wait) = match outcome {
                Ok(Ok(mut reply)) => {
                    reply.attempt = attempt;
                    let request_id = header_string(&reply.headers, "request-id");
                    debug!(
                        method = %call.method,
                        path,
                        status = reply.status.as_u16(),
                        request_id = request_id.as_deref(),
                        attempt,
                        latency_ms,
                        "Batch HTTP call"
                    );
                    if !is_retryable_status(reply.status) {
                        return Ok(reply);
                    }
                    let wait = server_retry_after(&reply.headers, OffsetDateTime::now_utc());
                    (error_from_reply(&reply, call), wait)
                }
                Ok(Err(AttemptError::Credential(message))) => {
                    // The credential retries on its own; a failure here is already final.
                    let mut err =
                        BatchError::transient(format!("cannot get an Entra ID token: {message}"));
                    err.code = Some("CredentialUnavailable".into());
                    err.client_request_id = Some(call.client_request_id.clone());
                    err.attempts = attempt;
                    warn!(attempt, error = %err, "Batch call failed: no token");
                    return Err(err);
                }
                Ok(Err(AttemptError::Http(e))) => {
                    let message = error_chain(&e);
                    debug!(
                        method = %call.method, path, attempt, latency_ms,
                        error = %message, "Batch HTTP call failed"
                    );
                    if e.is_builder() {
                        let mut err = BatchError::permanent("InvalidRequest", message);
                        err.client_request_id = Some(call.client_request_id.clone());
                        err.attempts = attempt;
                        return Err(err);
                    }
                    (BatchError::transient(message), None)
                }
                Err(_elapsed) => {
                    debug!(
                        method = %call.method, path, attempt, latency_ms,
                        "Batch HTTP call timed out"
                    );
                    (
                        BatchError::transient(format!(
                            "no answer within {} ms",
                            timeout.as_millis()
                        )),
                        None,
                    )
                }
            };
            err.client_request_id = Some(call.client_request_id.clone());
            err.attempts = attempt;
            let wait = server_wait.unwrap_or_else(|| self.inner.retry.backoff(attempt));
            if Instant::now() + wait >= deadline {
                warn!(
                    operation = call.operation,
                    attempt,
                    status = err.status,
                    code = err.code.as_deref(),
                    wait_ms = wait.as_millis() as u64,
                    "Batch call gives up: the next wait would exceed the retry budget"
                );
                return Err(err);
            }
            warn!(
                operation = call.operation,
                attempt,
                status = err.status,
                code = err.code.as_deref(),
                delay_ms = wait.as_millis() as u64,
                error = %err.message,
                "retrying Batch call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Reply, AttemptError> {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            HeaderName::from_static("ocp-date"),
            HeaderValue::try_from(format_http_date(OffsetDateTime::now_utc()))
                .expect("dates are header text"),
        );
        headers.insert(
            HeaderName::from_static("client-request-id"),
            HeaderValue::try_from(call.client_request_id.as_str()).expect("uuids are header text"),
        );
        headers.insert(
            HeaderName::from_static("return-client-request-id"),
            HeaderValue::from_static("true"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = &call.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let authorization = match &self.inner.auth {
            Auth::SharedKey(signer) => signer.authorization(&call.method, &call.url, &headers),
            Auth::Token(credential) => {
                let token = credential
                    .get_token(&[BATCH_SCOPE], None)
                    .await
                    .map_err(|e| AttemptError::Credential(e.to_string()))?;
                let mut value = HeaderValue::try_from(format!("Bearer {}", token.token.secret()))
                    .map_err(|_| {
                    AttemptError::Credential("the token is not valid header text".into())
                })?;
                value.set_sensitive(true);
                value
            }
        };
        headers.insert(AUTHORIZATION, authorization);

        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await.map_err(AttemptError::Http)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = response.bytes().await.map_err(AttemptError::Http)?.to_vec();
        Ok(Reply {
            status,
            headers,
            body,
            attempt: 0,
        })
    }
}

fn validate_endpoint(
    endpoint: &Url,
    credential: &BatchCredential,
    allow_token_over_http: bool,
) -> Result<Url, BatchConfigError> {
    let invalid = |why: &str| BatchConfigError::InvalidEndpoint(format!("{endpoint}: {why}"));
    if endpoint.cannot_be_a_base() || endpoint.host().is_none() {
        return Err(invalid("not an absolute http(s) URL"));
    }
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        return Err(BatchConfigError::InvalidEndpoint(
            "the URL must not carry credentials".into(),
        ));
    }
    if endpoint.query().is_some() || endpoint.fragment().is_some() {
        return Err(invalid("no query or fragment expected"));
    }
    if endpoint.path() != "/" && !endpoint.path().is_empty() {
        return Err(invalid("no path expected"));
    }
    match endpoint.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback_url(endpoint) {
                return Err(invalid("plain http is allowed only on a loopback host"));
            }
            if matches!(credential, BatchCredential::Token(_)) && !allow_token_over_http {
                return Err(invalid("plain http is allowed only with Shared Key"));
            }
        }
        _ => return Err(invalid("the scheme must be https")),
    }
    let mut url = endpoint.clone();
    url.set_path("");
    Ok(url)
}

/// 2xx is created; 409 with `exists_code` is a duplicate; anything else is an error.
fn accepted_or_exists(
    reply: &Reply,
    call: &Call,
    exists_code: &str,
) -> Result<Accepted, BatchError> {
    if reply.status.is_success() {
        return Ok(Accepted::Submitted);
    }
    let err = error_from_reply(reply, call);
    if reply.status == StatusCode::CONFLICT && err.has_code(exists_code) {
        debug!(
            operation = call.operation,
            code = exists_code,
            "already there: duplicate"
        );
        return Ok(Accepted::Duplicate);
    }
    Err(err)
}

fn error_from_reply(reply: &Reply, call: &Call) -> BatchError {
    let mut err = BatchError::from_response(reply.status, &reply.headers, &reply.body);
    err.client_request_id = Some(call.client_request_id.clone());
    err.attempts = reply.attempt;
    err
}

/// `{"value":[...]}` from already serialized tasks.
fn collection_body(indices: &[usize], serialized: &[Vec<u8>]) -> Vec<u8> {
    let len = collection_body_len(indices.iter().map(|&i| serialized[i].len()));
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(b"{\"value\":[");
    for (n, &i) in indices.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&serialized[i]);
    }
    body.extend_from_slice(b"]}");
    body
}

fn collection_body_len(sizes: impl Iterator<Item = usize>) -> usize {
    let (count, total): (usize, usize) = sizes.fold((0, 0), |(c, t), s| (c + 1, t + s));
    b"{\"value\":[]}".len() + total + count.saturating_sub(1)
}

/// Greedy chunks of consecutive items (given their serialized sizes), each with at most
/// `max_tasks` items and a body of at most `max_bytes`. An item too large on its own still gets
/// a chunk of its own, so that the service's answer names the problem.
fn plan_chunks(sizes: &[usize], max_tasks: usize, max_bytes: usize) -> Vec<Vec<usize>> {
    let mut chunks = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_len = collection_body_len(std::iter::empty());
    for (i, &size) in sizes.iter().enumerate() {
        let added = size + usize::from(!current.is_empty());
        if !current.is_empty() && (current.len() == max_tasks || current_len + added > max_bytes) {
            chunks.push(std::mem::take(&mut current));
            current_len = collection_body_len(std::iter::empty());
        }
        current_len += size + usize::from(!current.is_empty());
        current.push(i);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// A reqwest error and its causes, without the URL (ours carry no secrets, but a log line has no
/// use for them either).
fn error_chain(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(url) = error.url() {
        message = message.replace(&format!(" for url ({url})"), "");
        message = message.replace(url.as_str(), url.path());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_key() -> BatchCredential {
        BatchCredential::shared_key("acct", "a2V5")
    }

    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "none",
            ))
        }
    }

    fn client(
        endpoint: &str,
        credential: BatchCredential,
    ) -> Result<BatchClient, BatchConfigError> {
        BatchClient::new(BatchClientOptions::new(
            Url::parse(endpoint).unwrap(),
            credential,
        ))
    }

    #[test]
    fn endpoints_https_anywhere_http_only_on_loopback_with_shared_key() {
        assert!(client("https://acct.westeurope.batch.azure.com", shared_key()).is_ok());
        assert!(client("https://acct.westeurope.batch.azure.com/", shared_key()).is_ok());
        assert!(client("http://127.0.0.1:8080", shared_key()).is_ok());
        assert!(client("http://[::1]:8080", shared_key()).is_ok());
        assert!(client("http://localhost:8080", shared_key()).is_ok());
        assert!(client("http://acct.westeurope.batch.azure.com", shared_key()).is_err());
        assert!(client("http://10.0.0.1:8080", shared_key()).is_err());
        assert!(client("ftp://127.0.0.1", shared_key()).is_err());
        assert!(client("https://acct.batch.azure.com/jobs", shared_key()).is_err());
        assert!(client("https://acct.batch.azure.com/?sig=x", shared_key()).is_err());
        let token = || BatchCredential::Token(Arc::new(NoToken));
        assert!(client("https://acct.westeurope.batch.azure.com", token()).is_ok());
        assert!(client("http://127.0.0.1:8080", token()).is_err());
        let mut options =
            BatchClientOptions::new(Url::parse("http://127.0.0.1:8080").unwrap(), token());
        options.danger_allow_token_over_http_on_loopback = true;
        assert!(BatchClient::new(options).is_ok());
    }

    #[test]
    fn bad_keys_and_budgets_are_refused() {
        assert!(matches!(
            client(
                "https://a.b.batch.azure.com",
                BatchCredential::shared_key("acct", "%%%")
            ),
            Err(BatchConfigError::InvalidAccountKey)
        ));
        let mut options = BatchClientOptions::new(
            Url::parse("https://a.b.batch.azure.com").unwrap(),
            shared_key(),
        );
        options.retry.budget = Duration::from_secs(60);
        assert!(matches!(
            BatchClient::new(options),
            Err(BatchConfigError::RetryBudgetTooLong { .. })
        ));
    }

    #[test]
    fn urls_carry_the_api_version_and_encode_segments() {
        let c = client("https://acct.westeurope.batch.azure.com/", shared_key()).unwrap();
        assert_eq!(
            c.url(&["jobs", "wordcount", "tasks"]).as_str(),
            "https://acct.westeurope.batch.azure.com/jobs/wordcount/tasks?api-version=2025-06-01"
        );
        assert_eq!(c.url(&["jobs", "a/b c"]).path(), "/jobs/a%2Fb%20c");
    }

    #[test]
    fn debug_of_options_and_client_hides_the_key() {
        let key = "c2VjcmV0LWtleS1ieXRlcw==";
        let options = BatchClientOptions::new(
            Url::parse("https://a.b.batch.azure.com").unwrap(),
            BatchCredential::shared_key("acct", key),
        );
        let printed = format!("{options:?}");
        assert!(!printed.contains(key), "{printed}");
        let client = BatchClient::new(options).unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains(key), "{printed}");
        assert!(printed.contains("acct"));
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let sizes = vec![10; 250];
        let chunks = plan_chunks(&sizes, 100, 1_000_000);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(chunks[1][0], 100);

        // 12 bytes of envelope + 3 * 30 + 2 commas = 104 > 100: the third goes to a new chunk.
        let chunks = plan_chunks(&[30, 30, 30, 30], 100, 100);
        assert_eq!(chunks, vec![vec![0, 1], vec![2, 3]]);
        for chunk in &chunks {
            assert!(collection_body_len(chunk.iter().map(|&i| [30, 30, 30, 30][i])) <= 100);
        }

        let chunks = plan_chunks(&[500, 10], 100, 100);
        assert_eq!(chunks, vec![vec![0], vec![1]]);
        assert!(plan_chunks(&[], 100, 100).is_empty());
    }

    #[test]
    fn collection_body_is_a_task_group() {
        let serialized = vec![b"{\"id\":\"a\"}".to_vec(), b"{\"id\":\"b\"}".to_vec()];
        let body = collection_body(&[1, 0], &serialized);
        assert_eq!(body, br#"{"value":[{"id":"b"},{"id":"a"}]}"#);
        assert_eq!(body.len(), collection_body_len([10, 10].into_iter()));
    }
}
