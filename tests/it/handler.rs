//! The handler as it runs in production, on a real port, against a fake Batch service on loopback
//! that verifies Shared Key signatures and records every request.

use std::time::{Duration, Instant};

use crate::support::app::spawn_handler;
use crate::support::events::{ACCOUNT_URL, BlobEvent, ETAG, invocation as host_invocation};
use crate::support::fake_batch::{CannedResponse, FakeBatch, FakeBatchConfig};
use blob2batch::plan::task_id;
use serde_json::{Value, json};

struct TestApp {
    address: String,
    client: reqwest::Client,
}

impl TestApp {
    async fn invoke(&self, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/BlobCreated", self.address))
            .header(
                "x-azure-functions-invocationid",
                "00000000-0000-0000-0000-000000000001",
            )
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn deliver(&self, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/api/events", self.address))
            .header("aeg-event-type", "Notification")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

/// Builds the app from settings exactly as `serve` does, on port 0.
async fn spawn_app(batch_url: &str, extra: &[(&str, &str)]) -> TestApp {
    TestApp {
        address: spawn_handler(batch_url, extra).await,
        client: reqwest::Client::new(),
    }
}

async fn fake() -> FakeBatch {
    FakeBatch::start(FakeBatchConfig::default().with_job("wordcount")).await
}

/// Blob `name` committed by a block list, its URL encoded as `encoded`.
fn blob_event(id: &str, name: &str, encoded: &str) -> Value {
    BlobEvent::new(name)
        .id(id)
        .api("PutBlockList")
        .content_length(5231)
        .url(&format!("{ACCOUNT_URL}/input/{encoded}"))
        .json()
}

fn expected_id(name: &str) -> String {
    task_id("acct", "input", name, ETAG)
}

fn task_posts(fake: &FakeBatch) -> Vec<crate::support::fake_batch::RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/jobs/"))
        .collect()
}

#[tokio::test]
async fn an_invocation_sends_the_exact_task_body_signed_with_shared_key() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let (status, body) = app
        .invoke(&host_invocation(&blob_event(
            "e-1",
            "docs/a b.txt",
            "docs/a%20b.txt",
        )))
        .await;
    assert_eq!(status, 200, "{body}");
    let id = expected_id("docs/a b.txt");
    assert_eq!(body["ReturnValue"]["events"][0]["taskId"], id.as_str());
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "submitted");

    let posts = task_posts(&fake);
    assert_eq!(posts.len(), 1);
    let request = &posts[0];
    assert!(
        request.authorized,
        "the fake verified the Shared Key signature"
    );
    assert_eq!(request.path, "/jobs/wordcount/tasks");
    assert_eq!(request.query.as_deref(), Some("api-version=2025-06-01"));
    assert_eq!(
        request.header("content-type"),
        Some("application/json; odata=minimalmetadata")
    );
    assert!(
        request
            .header("authorization")
            .unwrap()
            .starts_with("SharedKey fakebatch:")
    );
    let task = request.body.as_ref().unwrap();
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["displayName"], "input/docs/a b.txt");
    assert_eq!(task["commandLine"], "/wordcount input/data");
    assert_eq!(
        task["containerSettings"]["imageName"],
        "example.azurecr.io/wordcount:1.0.0"
    );
    assert_eq!(task["resourceFiles"][0]["filePath"], "input/data");
    let url = task["resourceFiles"][0]["httpUrl"].as_str().unwrap();
    assert!(url.starts_with("https://acct.blob.core.windows.net/input/docs/a%20b.txt?"));
    assert!(url.contains("sr=b") && url.contains("sp=r") && url.contains("sig="));
    assert_eq!(
        task["outputFiles"][0]["destination"]["container"]["path"],
        "docs/a b.txt.wordcount.json"
    );
    assert_eq!(
        task["outputFiles"][1]["destination"]["container"]["path"],
        format!("docs/a b.txt.wordcount.logs/{id}")
    );
    assert_eq!(
        task["environmentSettings"],
        json!([{"name": "WORDCOUNT_SOURCE", "value": "docs/a b.txt"}])
    );
    assert_eq!(fake.tasks("wordcount").len(), 1);
}

#[tokio::test]
async fn ten_redeliveries_give_one_task() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let invocation = host_invocation(&blob_event("e-1", "a.txt", "a.txt"));
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let (status, body) = app.invoke(&invocation).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["ReturnValue"]["events"][0]["taskId"],
            expected_id("a.txt").as_str()
        );
        outcomes.push(
            body["ReturnValue"]["events"][0]["outcome"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(outcomes[0], "submitted");
    assert!(
        outcomes[1..].iter().all(|o| o == "duplicate"),
        "{outcomes:?}"
    );
    assert_eq!(fake.tasks("wordcount").len(), 1);
    assert_eq!(task_posts(&fake).len(), 10);
}

#[tokio::test]
async fn an_overwrite_gives_a_new_task() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let first = blob_event("e-1", "a.txt", "a.txt");
    let mut second = first.clone();
    second["data"]["eTag"] = json!("0x8DE62A1B3C4D5E8");
    for event in [&first, &second] {
        let (status, body) = app.invoke(&host_invocation(event)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "submitted");
    }
    assert_eq!(fake.tasks("wordcount").len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let fake = fake().await;
    fake.push_response(CannedResponse::error(503, "ServerBusy", "busy"));
    fake.push_response(CannedResponse::error(503, "ServerBusy", "busy"));
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let (status, body) = app
        .invoke(&host_invocation(&blob_event("e", "a", "a")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "submitted");
    let posts = task_posts(&fake);
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 503, 201]
    );
    let ids: Vec<_> = posts
        .iter()
        .map(|r| r.header("client-request-id").unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "one logical request keeps its id: {ids:?}"
    );
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let fake = fake().await;
    fake.push_response(
        CannedResponse::error(429, "TooManyRequests", "slow down").header("Retry-After", "1"),
    );
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let (status, _) = app
        .invoke(&host_invocation(&blob_event("e", "a", "a")))
        .await;
    assert_eq!(status, 200);
    let posts = task_posts(&fake);
    assert_eq!(posts.len(), 2);
    assert!(posts[1].at - posts[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn unreachable_batch_answers_503_within_the_budget() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app(
        &format!("http://127.0.0.1:{port}"),
        &[("BATCH_RETRY_BUDGET", "PT2S")],
    )
    .await;
    let started = Instant::now();
    let (status, body) = app
        .invoke(&host_invocation(&blob_event("e", "a", "a")))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ReturnValue"]["events"][0]["transient"], true);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn permanent_batch_errors_answer_500_with_the_code_logged() {
    let fake = fake().await;
    fake.push_response(CannedResponse::error(
        409,
        "JobCompleted",
        "The specified job is already in a completed state.",
    ));
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let (status, body) = app
        .invoke(&host_invocation(&blob_event("e", "a", "a")))
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(body["Logs"][0].as_str().unwrap().contains("JobCompleted"));
    assert_eq!(
        task_posts(&fake).len(),
        1,
        "a permanent error is not retried"
    );
}

#[tokio::test]
async fn a_missing_job_is_created_on_first_use() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let app = spawn_app(
        fake.url().as_str(),
        &[("BATCH_JOB_ID", "blobjob"), ("BATCH_POOL_ID", "blobpool")],
    )
    .await;
    let (status, body) = app
        .invoke(&host_invocation(&blob_event("e", "a", "a")))
        .await;
    assert_eq!(status, 200, "{body}");
    let job = fake.job("blobjob").expect("job created");
    assert_eq!(job["poolInfo"]["poolId"], "blobpool");
    assert_eq!(job["onAllTasksComplete"], "noaction");
    assert_eq!(fake.tasks("blobjob").len(), 1);
}

#[tokio::test]
async fn awkward_names_become_well_formed_tasks() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let long = "l".repeat(1024);
    let cases = [
        ("a b.txt", "a%20b.txt"),
        ("résumé.txt", "r%C3%A9sum%C3%A9.txt"),
        ("#1.txt", "%231.txt"),
        ("100%.txt", "100%25.txt"),
        ("why?.txt", "why%3F.txt"),
        ("a;b.txt", "a%3Bb.txt"),
        ("$(reboot).txt", "%24(reboot).txt"),
        ("../escape.txt", "../escape.txt"),
        ("🎉/party.txt", "%F0%9F%8E%89/party.txt"),
        (long.as_str(), long.as_str()),
    ];
    for (i, (name, encoded)) in cases.iter().enumerate() {
        let (status, body) = app
            .invoke(&host_invocation(&blob_event(
                &format!("e-{i}"),
                name,
                encoded,
            )))
            .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body["ReturnValue"]["events"][0]["taskId"],
            expected_id(name).as_str(),
            "{name}"
        );
    }
    let tasks = fake.tasks("wordcount");
    assert_eq!(tasks.len(), cases.len());
    for (name, encoded) in cases {
        let task = tasks
            .iter()
            .find(|t| t["id"] == expected_id(name).as_str())
            .unwrap();
        assert_eq!(task["commandLine"], "/wordcount input/data");
        assert_eq!(task["resourceFiles"][0]["filePath"], "input/data");
        let url = task["resourceFiles"][0]["httpUrl"].as_str().unwrap();
        let verbatim = format!("https://acct.blob.core.windows.net/input/{encoded}?");
        assert!(
            url.starts_with(&verbatim),
            "{name}: the URL is used verbatim: {url}"
        );
        assert_eq!(task["environmentSettings"][0]["value"], name);
    }
}

#[tokio::test]
async fn foreign_accounts_are_rejected_without_a_batch_call() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let mut event = blob_event("e", "a", "a");
    event["data"]["url"] = json!("https://attacker.blob.core.windows.net/input/a");
    let (status, body) = app.invoke(&host_invocation(&event)).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.deliver(&json!([event])).await;
    assert_eq!(status, 400);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_batched_delivery_becomes_one_add_task_collection() {
    let fake = fake().await;
    let app = spawn_app(fake.url().as_str(), &[]).await;
    let events: Vec<Value> = (0..150)
        .map(|i| {
            blob_event(
                &format!("e-{i}"),
                &format!("f{i}.txt"),
                &format!("f{i}.txt"),
            )
        })
        .collect();
    let (status, body) = app.deliver(&Value::Array(events)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 150);
    let posts = task_posts(&fake);
    assert_eq!(posts.len(), 2, "150 tasks: two calls of at most 100");
    assert!(
        posts
            .iter()
            .all(|r| r.path == "/jobs/wordcount/addtaskcollection")
    );
    assert_eq!(
        posts[0].body.as_ref().unwrap()["value"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(fake.tasks("wordcount").len(), 150);
}

#[tokio::test]
async fn job_per_blob_mode_creates_one_job_with_an_auto_pool() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let app = spawn_app(fake.url().as_str(), &[("BATCH_SUBMIT_MODE", "job")]).await;
    let invocation = host_invocation(&blob_event("e", "a.txt", "a.txt"));
    let (status, first) = app.invoke(&invocation).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = app.invoke(&invocation).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["ReturnValue"]["events"][0]["outcome"], "duplicate");
    let jobs = fake.job_ids();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].starts_with("wcj-"));
    let job = fake.job(&jobs[0]).unwrap();
    assert_eq!(
        job["poolInfo"]["autoPoolSpecification"]["poolLifetimeOption"],
        "job"
    );
    assert_eq!(job["jobManagerTask"]["killJobOnCompletion"], true);
}
