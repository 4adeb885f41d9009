//! The Batch REST client: Add Task, Add Task Collection, Add Job and Get Task over one pooled
//! `reqwest::Client`, with Shared Key or Entra ID authorization and budgeted retries.
//!
//! Ids of tasks and jobs are deterministic, so a retry of a request that did arrive comes back as
//! `TaskExists`/`JobExists`, which the operations report as [`Accepted::Duplicate`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::debug;
use url::Url;

use super::collection::CollectionSend;
use super::credential::BatchCredential;
use super::error::{BatchConfigError, BatchError};
use super::models::BatchTask;
use super::retry::RetryOptions;
use super::shared_key::SharedKeySigner;
use super::transport::{Auth, Call, Reply, Transport};
use crate::headers::header_str;
use crate::http_client::{HttpClientOptions, http_client};
use crate::loopback::is_loopback_url;
use crate::runner::Accepted;
use crate::task_spec::{JobSpec, TaskSpec};

/// The Batch data-plane API version this client speaks.
pub const API_VERSION: &str = "2025-06-01";

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
    endpoint: Url,
    transport: Transport,
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
                Auth::SharedKey(SharedKeySigner::new(&account, key)?)
            }
            BatchCredential::Token(credential) => Auth::Token(credential),
        };
        let http = http_client(&HttpClientOptions {
            connect_timeout: Some(options.request_timeout),
            ..HttpClientOptions::default()
        })?;
        Ok(BatchClient {
            inner: Arc::new(Inner {
                endpoint,
                transport: Transport {
                    http,
                    auth,
                    retry: options.retry,
                    request_timeout: options.request_timeout,
                },
            }),
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// The deadline of a logical call starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.inner.transport.retry.budget
    }

    /// Add Task: 201 is [`Accepted::Submitted`], 409 `TaskExists` is [`Accepted::Duplicate`].
    pub async fn add_task(&self, job_id: &str, task: &TaskSpec) -> Result<Accepted, BatchError> {
        self.add_task_until(job_id, task, self.deadline()).await
    }

    /// Add Task Collection: one result per task, in the order given (see
    /// [`crate::batch::collection`] for chunking, retries and repeated ids).
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

    /// Get Task: the whole task, its resource files' URLs included.
    pub async fn get_task(&self, job_id: &str, task_id: &str) -> Result<BatchTask, BatchError> {
        self.get_task_selecting(job_id, task_id, None).await
    }

    /// Get Task with `$select=id,state,executionInfo`: where the task stands and how it ended,
    /// without the rest of its body (its resource files' SAS URLs among it).
    pub async fn get_task_state(
        &self,
        job_id: &str,
        task_id: &str,
    ) -> Result<BatchTask, BatchError> {
        self.get_task_selecting(job_id, task_id, Some("id,state,executionInfo"))
            .await
    }

    async fn get_task_selecting(
        &self,
        job_id: &str,
        task_id: &str,
        select: Option<&str>,
    ) -> Result<BatchTask, BatchError> {
        let mut url = self.url(&["jobs", job_id, "tasks", task_id]);
        if let Some(select) = select {
            url.query_pairs_mut().append_pair("$select", select);
        }
        let call = Call::new("get_task", Method::GET, url, None);
        let reply = self.transport().execute(&call, self.deadline()).await?;
        if reply.status != StatusCode::OK {
            return Err(call.refused(&reply));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            let mut error = call.failure(
                BatchError::permanent("InvalidResponse", "unreadable Get Task response")
                    .with_source(e),
                reply.attempt,
            );
            error.request_id = header_str(&reply.headers, "request-id").map(str::to_string);
            error
        })
    }

    /// The job's metadata (Get Job, `$select=metadata`), as name-value pairs.
    pub(crate) async fn get_job_metadata(
        &self,
        job_id: &str,
    ) -> Result<Vec<(String, String)>, BatchError> {
        let mut url = self.url(&["jobs", job_id]);
        url.query_pairs_mut().append_pair("$select", "metadata");
        let call = Call::new("get_job", Method::GET, url, None);
        let reply = self.transport().execute(&call, self.deadline()).await?;
        if reply.status != StatusCode::OK {
            return Err(call.refused(&reply));
        }
        let job: JobMetadata = serde_json::from_slice(&reply.body).map_err(|e| {
            call.failure(
                BatchError::permanent("InvalidResponse", "unreadable Get Job response")
                    .with_source(e),
                reply.attempt,
            )
        })?;
        Ok(job
            .metadata
            .into_iter()
            .map(|item| (item.name, item.value))
            .collect())
    }

    /// Replaces the job's metadata (Update Job's `PATCH`, which leaves every other property as
    /// it is).
    pub(crate) async fn set_job_metadata(
        &self,
        job_id: &str,
        items: &[(String, String)],
    ) -> Result<(), BatchError> {
        let body = JobMetadata {
            metadata: items
                .iter()
                .map(|(name, value)| MetadataItem {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| {
            BatchError::permanent("InvalidRequest", "cannot serialize the metadata").with_source(e)
        })?;
        let call = Call::new(
            "update_job",
            Method::PATCH,
            self.url(&["jobs", job_id]),
            Some(body),
        );
        let reply = self.transport().execute(&call, self.deadline()).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(call.refused(&reply))
        }
    }

    pub(crate) async fn add_task_until(
        &self,
        job_id: &str,
        task: &TaskSpec,
        deadline: Instant,
    ) -> Result<Accepted, BatchError> {
        let body = serde_json::to_vec(task).map_err(|e| {
            BatchError::permanent("InvalidRequest", "cannot serialize the task").with_source(e)
        })?;
        let call = Call::new(
            "add_task",
            Method::POST,
            self.url(&["jobs", job_id, "tasks"]),
            Some(body),
        );
        let reply = self.transport().execute(&call, deadline).await?;
        accepted_or_exists(&reply, &call, "TaskExists")
    }

    pub(crate) async fn add_job_until(
        &self,
        job: &JobSpec,
        deadline: Instant,
    ) -> Result<Accepted, BatchError> {
        let body = serde_json::to_vec(job).map_err(|e| {
            BatchError::permanent("InvalidRequest", "cannot serialize the job").with_source(e)
        })?;
        let call = Call::new("add_job", Method::POST, self.url(&["jobs"]), Some(body));
        let reply = self.transport().execute(&call, deadline).await?;
        accepted_or_exists(&reply, &call, "JobExists")
    }

    pub(crate) async fn add_task_collection_until(
        &self,
        job_id: &str,
        tasks: &[&TaskSpec],
        deadline: Instant,
    ) -> Vec<Result<Accepted, BatchError>> {
        let url = self.url(&["jobs", job_id, "addtaskcollection"]);
        CollectionSend::new(self.transport(), url, tasks, deadline)
            .run()
            .await
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.endpoint.clone();
        url.path_segments_mut()
            .expect("validated endpoints have a base")
            .pop_if_empty()
            .extend(segments);
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }
}

/// The metadata of a job, as Get Job returns it and Update Job takes it.
#[derive(serde::Serialize, serde::Deserialize)]
struct JobMetadata {
    #[serde(default)]
    metadata: Vec<MetadataItem>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MetadataItem {
    name: String,
    value: String,
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
pub(super) fn accepted_or_exists(
    reply: &Reply,
    call: &Call,
    exists_code: &str,
) -> Result<Accepted, BatchError> {
    if reply.status.is_success() {
        return Ok(Accepted::Submitted);
    }
    let err = call.refused(reply);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account_key::AccountKey;
    use azure_core::credentials::TokenCredential;

    fn shared_key() -> BatchCredential {
        BatchCredential::shared_key("acct", AccountKey::from_base64("a2V5").unwrap())
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
    fn budgets_beyond_the_maximum_are_refused() {
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
            BatchCredential::shared_key("acct", AccountKey::from_base64(key).unwrap()),
        );
        let printed = format!("{options:?}");
        assert!(!printed.contains(key), "{printed}");
        let client = BatchClient::new(options).unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains(key), "{printed}");
        assert!(printed.contains("acct"));
    }
}
