//! The Batch client and task runner against the fake Batch service: exact requests, signatures
//! verified by the fake, idempotent duplicates, retries inside the budget, job creation on first
//! use and collections (that no secret reaches the logs is in `no_secrets_in_logs.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fake_batch::{self, CannedResponse, FakeBatch, FakeBatchConfig, FaultProfile};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use blob2batch::account_key::AccountKey;
use blob2batch::batch::models::TaskState;
use blob2batch::batch::{
    BATCH_SCOPE, BatchClient, BatchClientOptions, BatchCredential, BatchErrorKind, BatchTaskRunner,
    RetryOptions,
};
use blob2batch::runner::{Accepted, JobRef, Submission, SubmitError, TaskLookup, TaskRunner};
use blob2batch::task_spec::{
    AutoUserScope, AutoUserSpecification, ContainerSettings, ContainerWorkingDirectory,
    ElevationLevel, IdentityReference, JobManagerTask, JobSpec, OnAllTasksComplete, OutputFile,
    OutputFileBlobContainerDestination, OutputFileDestination, OutputFileUploadOptions, PoolInfo,
    ResourceFile, TaskConstraints, TaskSpec, UploadCondition, UserIdentity,
};
use serde_json::json;

const JOB: &str = "wordcount";
const POOL: &str = "wordcount-pool";

/// The long-lived job the tasks go to.
fn job() -> JobRef {
    JobRef::new(JOB, POOL)
}

fn options(fake: &FakeBatch) -> BatchClientOptions {
    let mut options = BatchClientOptions::new(
        fake.url(),
        BatchCredential::shared_key(fake_batch::ACCOUNT, fake_key()),
    );
    // Short waits keep the retry tests fast; the budget logic is the same.
    options.retry.initial_delay = Duration::from_millis(20);
    options.retry.max_delay = Duration::from_millis(200);
    options
}

fn fake_key() -> AccountKey {
    AccountKey::from_base64(fake_batch::KEY).unwrap()
}

fn client(fake: &FakeBatch) -> BatchClient {
    BatchClient::new(options(fake)).unwrap()
}

async fn fake_with_job() -> FakeBatch {
    FakeBatch::start(FakeBatchConfig::default().with_job(JOB)).await
}

fn simple_task(id: &str) -> TaskSpec {
    TaskSpec::new(id, "/wordcount --output out/result.json input/data")
}

fn full_task(id: &str) -> TaskSpec {
    let identity = Some(IdentityReference {
        resource_id: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool".into(),
    });
    TaskSpec {
        display_name: Some("input/docs/a b.txt".into()),
        container_settings: Some(ContainerSettings {
            image_name: "example.azurecr.io/wordcount:1.0.0".into(),
            container_run_options: None,
            registry: None,
            working_directory: Some(ContainerWorkingDirectory::TaskWorkingDirectory),
        }),
        resource_files: vec![ResourceFile::blob(
            "https://acct.blob.core.windows.net/input/docs/a%20b.txt".into(),
            "input/data",
            identity.clone(),
        )],
        output_files: vec![OutputFile {
            file_pattern: "out/result.json".into(),
            destination: OutputFileDestination {
                container: OutputFileBlobContainerDestination {
                    container_url: "https://acct.blob.core.windows.net/output".into(),
                    path: Some("docs/a b.txt.wordcount.json".into()),
                    identity_reference: identity,
                    upload_headers: Vec::new(),
                },
            },
            upload_options: OutputFileUploadOptions {
                upload_condition: UploadCondition::TaskSuccess,
            },
        }],
        constraints: Some(TaskConstraints {
            max_wall_clock_time: Some("PT1H".into()),
            retention_time: Some("P1D".into()),
            max_task_retry_count: Some(2),
        }),
        user_identity: Some(UserIdentity {
            auto_user: Some(AutoUserSpecification {
                scope: AutoUserScope::Task,
                elevation_level: ElevationLevel::NonAdmin,
            }),
        }),
        ..simple_task(id)
    }
}

fn full_task_json(id: &str) -> serde_json::Value {
    json!({
        "id": id,
        "displayName": "input/docs/a b.txt",
        "commandLine": "/wordcount --output out/result.json input/data",
        "containerSettings": {
            "imageName": "example.azurecr.io/wordcount:1.0.0",
            "workingDirectory": "taskWorkingDirectory"
        },
        "resourceFiles": [{
            "httpUrl": "https://acct.blob.core.windows.net/input/docs/a%20b.txt",
            "filePath": "input/data",
            "identityReference": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool"}
        }],
        "outputFiles": [{
            "filePattern": "out/result.json",
            "destination": {"container": {
                "containerUrl": "https://acct.blob.core.windows.net/output",
                "path": "docs/a b.txt.wordcount.json",
                "identityReference": {"resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool"}
            }},
            "uploadOptions": {"uploadCondition": "tasksuccess"}
        }],
        "constraints": {"maxWallClockTime": "PT1H", "retentionTime": "P1D", "maxTaskRetryCount": 2},
        "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}}
    })
}

/// A token credential that hands out one fixed token and remembers the scopes asked for.
/// `Debug` is derived on purpose, token included: if the client ever printed its credential,
/// the log test would catch it.
#[derive(Debug)]
struct StaticToken {
    token: &'static str,
    scopes: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes
            .lock()
            .unwrap()
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            self.token,
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// The bearer path runs against the fake over plain http, which the client allows for a token
/// only with the explicit `danger_allow_token_over_http_on_loopback` option: that keeps the test
/// on the real request path (headers, retries, logging) instead of a separate header builder.
fn bearer_client(fake: &FakeBatch, credential: Arc<StaticToken>) -> BatchClient {
    let mut options = options(fake);
    options.credential = BatchCredential::Token(credential);
    options.danger_allow_token_over_http_on_loopback = true;
    BatchClient::new(options).unwrap()
}

#[tokio::test]
async fn add_task_sends_the_documented_request_and_a_valid_signature() {
    let fake = fake_with_job().await;
    let outcome = client(&fake).add_task(JOB, &full_task("wc-1")).await;
    assert_eq!(outcome, Ok(Accepted::Submitted));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/jobs/wordcount/tasks");
    assert_eq!(r.query.as_deref(), Some("api-version=2025-06-01"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; odata=minimalmetadata")
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body_bytes.len().to_string().as_str())
    );
    assert!(
        r.header("ocp-date").unwrap().ends_with(" GMT"),
        "{:?}",
        r.header("ocp-date")
    );
    uuid::Uuid::parse_str(r.header("client-request-id").unwrap()).unwrap();
    assert_eq!(r.header("return-client-request-id"), Some("true"));
    assert!(
        r.header("authorization")
            .unwrap()
            .starts_with("SharedKey fakebatch:")
    );
    assert!(r.authorized, "the fake must accept the signature");
    assert_eq!(r.status, 201);
    assert_eq!(r.body.as_ref().unwrap(), &full_task_json("wc-1"));
    assert_eq!(fake.tasks(JOB), vec![full_task_json("wc-1")]);
}

#[tokio::test]
async fn task_exists_is_a_duplicate_whatever_the_case_of_the_id() {
    let fake = fake_with_job().await;
    let client = client(&fake);
    assert_eq!(
        client.add_task(JOB, &simple_task("wc-abc")).await,
        Ok(Accepted::Submitted)
    );
    assert_eq!(
        client.add_task(JOB, &simple_task("WC-ABC")).await,
        Ok(Accepted::Duplicate)
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![201, 409]);
    assert_eq!(fake.tasks(JOB).len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_client_request_id() {
    let fake = fake_with_job().await;
    fake.push_response(CannedResponse::error(
        503,
        "ServerBusy",
        "The server is busy.",
    ));
    fake.push_response(CannedResponse::status(503));
    let outcome = client(&fake).add_task(JOB, &simple_task("wc-1")).await;
    assert_eq!(outcome, Ok(Accepted::Submitted));

    let requests = fake.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 201]);
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.header("client-request-id").unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(requests.iter().all(|r| r.authorized));
    assert!(
        requests
            .iter()
            .all(|r| r.body.as_ref() == requests[0].body.as_ref())
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = fake_with_job().await;
    fake.push_response(
        CannedResponse::error(429, "TooManyRequests", "Slow down.").header("Retry-After", "1"),
    );
    let outcome = client(&fake).add_task(JOB, &simple_task("wc-1")).await;
    assert_eq!(outcome, Ok(Accepted::Submitted));
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "second attempt after {gap:?}"
    );
}

#[tokio::test]
async fn a_wait_beyond_the_budget_ends_the_call_at_once() {
    let fake = fake_with_job().await;
    fake.push_response(
        CannedResponse::error(503, "ServerBusy", "The server is busy.").header("Retry-After", "30"),
    );
    let err = client(&fake)
        .add_task(JOB, &simple_task("wc-1"))
        .await
        .unwrap_err();
    // Had the client slept, the budget would have run out before a second attempt and the error
    // would carry no status.
    assert_eq!(err.kind, BatchErrorKind::Transient);
    assert_eq!(err.status, Some(503));
    assert_eq!(err.code.as_deref(), Some("ServerBusy"));
    assert_eq!(err.attempts, 1);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_hung_attempt_times_out_and_is_retried() {
    let fake = fake_with_job().await;
    fake.push_response(CannedResponse::status(201).delayed(Duration::from_secs(5)));
    let mut options = options(&fake);
    options.request_timeout = Duration::from_millis(300);
    let client = BatchClient::new(options).unwrap();
    let outcome = client.add_task(JOB, &simple_task("wc-1")).await;
    assert_eq!(outcome, Ok(Accepted::Submitted));
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.tasks(JOB).len(), 1);
}

#[tokio::test]
async fn a_lookup_asks_only_for_the_state_and_how_the_task_ended() {
    let fake = fake_with_job().await;
    let runner = BatchTaskRunner::new(client(&fake));
    runner
        .submit(&[Submission::task(&job(), full_task("wc-1"))])
        .await;
    fake.set_task_fields(
        JOB,
        "wc-1",
        json!({"state": "completed", "executionInfo": {"exitCode": 0, "result": "success", "retryCount": 1}}),
    );
    fake.clear_requests();
    let found = runner
        .lookup(&[
            Submission::task(&job(), simple_task("wc-1")),
            Submission::task(&job(), simple_task("wc-2")),
        ])
        .await;
    let status = found[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(status.state, blob2batch::runner::TaskState::Succeeded);
    assert_eq!((status.exit_code, status.retries), (Some(0), Some(1)));
    assert!(matches!(found[1], Ok(None)));
    let get = &fake.requests()[0];
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, "/jobs/wordcount/tasks/wc-1");
    assert_eq!(
        get.query.as_deref(),
        Some("api-version=2025-06-01&%24select=id%2Cstate%2CexecutionInfo")
    );
    assert!(get.authorized, "the signature covers $select");
    // What the fake answers, as the service does: the selected properties only, so none of the
    // rest of the task (its display name here; its resource files' SAS URLs) travels with them.
    let selected = client(&fake).get_task_state(JOB, "wc-1").await.unwrap();
    assert_eq!(selected.state, Some(TaskState::Completed));
    assert_eq!(selected.display_name, None);
    let full = client(&fake).get_task(JOB, "wc-1").await.unwrap();
    assert_eq!(full.display_name.as_deref(), Some("input/docs/a b.txt"));
}

#[tokio::test]
async fn once_a_lookup_has_failed_the_lookups_not_yet_started_fail_with_it() {
    let fake = fake_with_job().await;
    fake.set_fault_profile(Some(FaultProfile {
        p_503: 1.0,
        ..FaultProfile::default()
    }));
    let mut options = options(&fake);
    options.retry.budget = Duration::from_millis(300);
    let runner = BatchTaskRunner::new(BatchClient::new(options).unwrap());
    let items: Vec<Submission> = (0..200)
        .map(|i| Submission::task(&job(), simple_task(&format!("wc-{i:03}"))))
        .collect();
    let results = runner.lookup(&items).await;
    assert_eq!(results.len(), items.len());
    for result in &results {
        let shown = blob2batch::error_chain::error_chain(result.as_ref().unwrap_err());
        // 503 to every attempt; on a loaded machine the budget may run out first.
        assert!(
            shown.contains("ServerBusy")
                || shown.contains("no answer within")
                || shown.contains("retry budget exhausted"),
            "{shown}"
        );
    }
    // Only the reads already under way when the first one gave up reached the service (16 run
    // at once); every later item failed with that error without a request of its own.
    let asked: std::collections::BTreeSet<String> =
        fake.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !asked.is_empty() && asked.len() <= 16,
        "{} tasks asked for",
        asked.len()
    );
}

#[tokio::test]
async fn unreachable_batch_is_a_transient_error_within_the_budget() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let budget = Duration::from_millis(1500);
    let mut options = BatchClientOptions::new(
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        BatchCredential::shared_key(fake_batch::ACCOUNT, fake_key()),
    );
    options.retry = RetryOptions {
        budget,
        ..RetryOptions::default()
    };
    let client = BatchClient::new(options).unwrap();
    let started = Instant::now();
    let err = client
        .add_task(JOB, &simple_task("wc-1"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind, BatchErrorKind::Transient);
    assert_eq!(err.status, None);
    assert!(err.attempts >= 1);
    let shown = blob2batch::error_chain::error_chain(&err);
    // Refused at once; on a loaded machine, the last attempt may run out of time first.
    assert!(
        shown.contains("Connection refused")
            || shown.contains("connect")
            || shown.contains("no answer within"),
        "{shown}"
    );
    assert!(!shown.contains("api-version"), "{shown}");
    assert!(
        elapsed < budget + Duration::from_secs(3),
        "took {elapsed:?}"
    );

    let runner = BatchTaskRunner::new(client);
    let results = runner
        .submit(&[Submission::task(&job(), simple_task("wc-1"))])
        .await;
    assert!(
        matches!(&results[..], [Err(SubmitError::Transient(_))]),
        "{results:?}"
    );
}

#[tokio::test]
async fn job_not_found_creates_the_job_then_adds_the_task() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let runner = BatchTaskRunner::new(client(&fake));
    let results = runner
        .submit(&[Submission::task(&job(), simple_task("wc-1"))])
        .await;
    assert_eq!(results, vec![Ok(Accepted::Submitted)]);

    let requests = fake.requests();
    let calls: Vec<(&str, &str, u16)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("POST", "/jobs/wordcount/tasks", 404),
            ("POST", "/jobs", 201),
            ("POST", "/jobs/wordcount/tasks", 201),
        ]
    );
    assert_eq!(
        requests[1].body.as_ref().unwrap(),
        &json!({"id": "wordcount", "poolInfo": {"poolId": "wordcount-pool"}, "onAllTasksComplete": "noaction"})
    );
    assert!(requests.iter().all(|r| r.authorized));
}

#[tokio::test]
async fn job_exists_while_creating_it_is_fine() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    // Another instance creates the job between our JobNotFound and our Add Job.
    fake.push_response(CannedResponse::error(
        404,
        "JobNotFound",
        "The specified job does not exist.",
    ));
    fake.create_job(JOB, POOL);
    let runner = BatchTaskRunner::new(client(&fake));
    let results = runner
        .submit(&[
            Submission::task(&job(), simple_task("wc-1")),
            Submission::task(&job(), simple_task("wc-2")),
        ])
        .await;
    assert_eq!(
        results,
        vec![Ok(Accepted::Submitted), Ok(Accepted::Submitted)]
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![404, 409, 200]);
}

#[tokio::test]
async fn collection_results_are_matched_on_task_id_and_only_server_errors_retried() {
    let fake = FakeBatch::start(FakeBatchConfig {
        reverse_collection_results: true,
        ..FakeBatchConfig::default().with_job(JOB)
    })
    .await;
    let client = client(&fake);
    assert_eq!(
        client.add_task(JOB, &simple_task("t3")).await,
        Ok(Accepted::Submitted)
    );
    fake.fail_task_in_collection("t2", 1);
    fake.clear_requests();

    let tasks: Vec<TaskSpec> = ["t1", "t2", "t3", "t4"]
        .iter()
        .map(|id| simple_task(id))
        .collect();
    let results = client.add_task_collection(JOB, &tasks).await;
    assert_eq!(
        results,
        vec![
            Ok(Accepted::Submitted),
            Ok(Accepted::Submitted),
            Ok(Accepted::Duplicate),
            Ok(Accepted::Submitted),
        ]
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/jobs/wordcount/addtaskcollection" && r.authorized)
    );
    let ids = |i: usize| -> Vec<String> {
        requests[i].body.as_ref().unwrap()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(0), vec!["t1", "t2", "t3", "t4"]);
    assert_eq!(ids(1), vec!["t2"]);
    assert_eq!(
        requests[0].body.as_ref().unwrap()["value"][0],
        serde_json::to_value(simple_task("t1")).unwrap()
    );
    assert_eq!(fake.tasks(JOB).len(), 4);
}

#[tokio::test]
async fn collections_over_100_tasks_are_sent_in_chunks() {
    let fake = fake_with_job().await;
    let tasks: Vec<TaskSpec> = (0..250).map(|i| full_task(&format!("wc-{i:03}"))).collect();
    let results = client(&fake).add_task_collection(JOB, &tasks).await;
    assert_eq!(results.len(), 250);
    assert!(results.iter().all(|r| *r == Ok(Accepted::Submitted)));
    let sizes: Vec<usize> = fake
        .requests()
        .iter()
        .map(|r| r.body.as_ref().unwrap()["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(fake.tasks(JOB).len(), 250);
}

#[tokio::test]
async fn a_collection_the_service_finds_too_large_is_split() {
    let fake = fake_with_job().await;
    fake.push_response(CannedResponse::error(
        413,
        "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit.",
    ));
    let tasks: Vec<TaskSpec> = (0..10).map(|i| simple_task(&format!("wc-{i}"))).collect();
    let results = client(&fake).add_task_collection(JOB, &tasks).await;
    assert!(results.iter().all(|r| *r == Ok(Accepted::Submitted)));
    let sizes: Vec<(u16, usize)> = fake
        .requests()
        .iter()
        .map(|r| {
            (
                r.status,
                r.body.as_ref().unwrap()["value"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(sizes, vec![(413, 10), (200, 5), (200, 5)]);
}

#[tokio::test]
async fn repeated_ids_in_one_collection_are_sent_once() {
    let fake = fake_with_job().await;
    let tasks = vec![
        simple_task("wc-a"),
        simple_task("wc-b"),
        simple_task("WC-A"),
    ];
    let results = client(&fake).add_task_collection(JOB, &tasks).await;
    assert_eq!(
        results,
        vec![
            Ok(Accepted::Submitted),
            Ok(Accepted::Submitted),
            Ok(Accepted::Duplicate)
        ]
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.tasks(JOB).len(), 2);
}

#[tokio::test]
async fn other_client_errors_are_permanent_with_code_and_message() {
    let fake = fake_with_job().await;
    let err = client(&fake)
        .add_task(JOB, &simple_task("not a valid id!"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, BatchErrorKind::Permanent);
    assert_eq!(err.status, Some(400));
    assert_eq!(err.code.as_deref(), Some("InvalidPropertyValue"));
    assert!(err.message.contains("PropertyName=id"), "{}", err.message);
    assert!(err.request_id.is_some());
    assert_eq!(err.attempts, 1);

    fake.push_response(CannedResponse::error(
        409,
        "JobCompleted",
        "The specified job is already in a completed state.",
    ));
    let runner = BatchTaskRunner::new(client(&fake));
    let results = runner
        .submit(&[Submission::task(&job(), simple_task("wc-1"))])
        .await;
    match &results[..] {
        [Err(error @ SubmitError::Rejected { code, .. })] => {
            assert_eq!(code, "JobCompleted");
            assert!(
                error
                    .reason()
                    .contains("JobCompleted: The specified job is already in a completed state."),
                "{}",
                error.reason()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_by_the_fake_and_not_retried() {
    let fake = fake_with_job().await;
    let mut options = options(&fake);
    options.credential = BatchCredential::shared_key(
        fake_batch::ACCOUNT,
        AccountKey::from_base64("d3Jvbmcta2V5").unwrap(),
    );
    let err = BatchClient::new(options)
        .unwrap()
        .add_task(JOB, &simple_task("wc-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, BatchErrorKind::Permanent);
    assert_eq!(err.status, Some(403));
    assert_eq!(err.code.as_deref(), Some("AuthenticationFailed"));
    assert_eq!(fake.requests().len(), 1);
    assert!(!fake.requests()[0].authorized);
}

#[tokio::test]
async fn bearer_tokens_come_from_the_credential_with_the_batch_scope() {
    let fake = FakeBatch::start(FakeBatchConfig {
        key: None,
        bearer_token: Some("fake-bearer-token-5b1d".into()),
        ..FakeBatchConfig::default().with_job(JOB)
    })
    .await;
    let credential = Arc::new(StaticToken {
        token: "fake-bearer-token-5b1d",
        scopes: Mutex::new(Vec::new()),
    });
    fake.push_response(CannedResponse::status(500));
    let client = bearer_client(&fake, credential.clone());
    assert_eq!(
        client.add_task(JOB, &simple_task("wc-1")).await,
        Ok(Accepted::Submitted)
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer fake-bearer-token-5b1d")
        );
        assert!(r.authorized);
    }
    // One token request per attempt; caching is the credential's business.
    assert_eq!(
        *credential.scopes.lock().unwrap(),
        vec![BATCH_SCOPE.to_string(), BATCH_SCOPE.to_string()]
    );
    assert_eq!(BATCH_SCOPE, "https://batch.core.windows.net//.default");
}

#[tokio::test]
async fn job_per_blob_submissions_add_jobs() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let job = JobSpec {
        id: "wc-job-1".into(),
        display_name: Some("input/a.txt".into()),
        pool_info: PoolInfo {
            pool_id: None,
            auto_pool_specification: Some(json!({
                "poolLifetimeOption": "job",
                "pool": {"vmSize": "standard_d2s_v3"}
            })),
        },
        on_all_tasks_complete: None,
        on_task_failure: None,
        uses_task_dependencies: None,
        job_manager_task: Some(JobManagerTask {
            task: simple_task("wc-1"),
            kill_job_on_completion: true,
        }),
    };
    let runner = BatchTaskRunner::new(client(&fake));
    let items = vec![
        Submission::Job(job.clone()),
        Submission::Job(JobSpec {
            id: "wc-job-2".into(),
            ..job.clone()
        }),
    ];
    assert_eq!(
        runner.submit(&items).await,
        vec![Ok(Accepted::Submitted), Ok(Accepted::Submitted)]
    );
    assert_eq!(
        runner.submit(&items[..1]).await,
        vec![Ok(Accepted::Duplicate)]
    );
    assert_eq!(
        fake.job("wc-job-1").unwrap(),
        json!({
            "id": "wc-job-1",
            "displayName": "input/a.txt",
            "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job", "pool": {"vmSize": "standard_d2s_v3"}}},
            "jobManagerTask": {
                "id": "wc-1",
                "commandLine": "/wordcount --output out/result.json input/data",
                "killJobOnCompletion": true
            }
        })
    );
    assert_eq!(fake.job_ids(), vec!["wc-job-1", "wc-job-2"]);
}

#[tokio::test]
async fn mixed_submissions_keep_their_order() {
    let fake = fake_with_job().await;
    let client = client(&fake);
    client.add_task(JOB, &simple_task("wc-b")).await.unwrap();
    let own_job = JobSpec {
        id: "wc-job".into(),
        display_name: None,
        pool_info: PoolInfo {
            pool_id: Some(POOL.into()),
            auto_pool_specification: None,
        },
        on_all_tasks_complete: Some(OnAllTasksComplete::TerminateJob),
        on_task_failure: None,
        uses_task_dependencies: None,
        job_manager_task: None,
    };
    let runner = BatchTaskRunner::new(client);
    let results = runner
        .submit(&[
            Submission::task(&job(), simple_task("wc-a")),
            Submission::Job(own_job),
            Submission::task(&job(), simple_task("wc-b")),
            Submission::task(&job(), simple_task("bad id")),
        ])
        .await;
    assert_eq!(results[0], Ok(Accepted::Submitted));
    assert_eq!(results[1], Ok(Accepted::Submitted));
    assert_eq!(results[2], Ok(Accepted::Duplicate));
    assert!(
        matches!(&results[3], Err(SubmitError::Rejected { code, .. }) if code == "InvalidPropertyValue"),
        "{:?}",
        results[3]
    );
}

#[tokio::test]
async fn get_task_reads_the_task() {
    let fake = fake_with_job().await;
    let client = client(&fake);
    client.add_task(JOB, &full_task("wc-1")).await.unwrap();
    let task = client.get_task(JOB, "wc-1").await.unwrap();
    assert_eq!(task.id, "wc-1");
    assert_eq!(task.display_name.as_deref(), Some("input/docs/a b.txt"));
    assert_eq!(task.state, Some(TaskState::Active));
    let get = fake.requests().pop().unwrap();
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, "/jobs/wordcount/tasks/wc-1");
    assert_eq!(get.header("content-type"), None);
    assert!(get.authorized);

    let missing = client.get_task(JOB, "wc-2").await.unwrap_err();
    assert_eq!(missing.code.as_deref(), Some("TaskNotFound"));
    assert_eq!(missing.kind, BatchErrorKind::Permanent);
}

/// Signs a body-less GET the way the documentation describes, to probe the fake's own checks.
fn signed_get(
    fake: &FakeBatch,
    path: &str,
    api_version: &str,
    date: &str,
) -> reqwest::RequestBuilder {
    use base64::Engine as _;
    use hmac::Mac as _;
    let string_to_sign = format!(
        "GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:{date}\n/{}{path}\napi-version:{api_version}",
        fake_batch::ACCOUNT
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(fake_batch::KEY)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    reqwest::Client::new()
        .get(format!(
            "{}{}?api-version={api_version}",
            fake.url().as_str().trim_end_matches('/'),
            path
        ))
        .header("ocp-date", date)
        .header(
            "authorization",
            format!("SharedKey {}:{signature}", fake_batch::ACCOUNT),
        )
}

#[tokio::test]
async fn the_fake_checks_dates_and_api_versions_like_the_service() {
    let fake = fake_with_job().await;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let now = time::OffsetDateTime::now_utc();
    let fresh = now.format(format).unwrap();
    let stale = (now - time::Duration::minutes(16)).format(format).unwrap();
    let path = "/jobs/wordcount/tasks/missing";

    let status = |r: reqwest::Response| r.status().as_u16();
    let ok = signed_get(&fake, path, "2025-06-01", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(status(ok), 404, "a valid request reaches the handler");
    let old = signed_get(&fake, path, "2025-06-01", &stale)
        .send()
        .await
        .unwrap();
    assert_eq!(status(old), 403);
    let version = signed_get(&fake, path, "2024-07-01.20.0", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(version.status().as_u16(), 400);
    let body: serde_json::Value = version.json().await.unwrap();
    assert_eq!(body["code"], "UnsupportedRequestVersion");
    assert_eq!(body["message"]["lang"], "en-US");
    assert!(body["odata.metadata"].is_string());
}
