//! The handler against a fake Batch service that misbehaves on purpose: throttling with and
//! without `Retry-After`, server errors, connections reset before the answer and after the task
//! was created, and requests that never get an answer. Each case asserts every event's outcome
//! and what the fake holds: exactly one task per blob version, none missing.
//!
//! The faults are scripted, so each case is deterministic; random fault profiles under load are
//! the business of `benches/faults.rs`.

use std::time::{Duration, Instant};

use crate::support::app::spawn_handler;
use crate::support::events::BlobEvent;
use crate::support::fake_batch::{
    CannedResponse, FakeBatch, FakeBatchConfig, Fault, FaultProfile, IdCount, RecordedRequest,
};
use blob2batch::plan::task_id;
use serde_json::{Value, json};

const ETAG: &str = "0x8DE62A1B3C4D5E7";

struct App {
    address: String,
    http: reqwest::Client,
}

async fn spawn_app(fake: &FakeBatch, extra: &[(&str, &str)]) -> App {
    App {
        address: spawn_handler(fake.url().as_str(), extra).await,
        http: reqwest::Client::new(),
    }
}

async fn fake() -> FakeBatch {
    FakeBatch::start(FakeBatchConfig::default().with_job("wordcount")).await
}

fn event(name: &str) -> Value {
    BlobEvent::new(name).etag(ETAG).json()
}

fn id(name: &str) -> String {
    task_id("acct", "input", name, ETAG)
}

impl App {
    /// One host invocation for blob `name`: the status and the event's outcome.
    async fn invoke(&self, name: &str) -> (u16, String) {
        let body = json!({"Data": {"event": Value::String(event(name).to_string()).to_string()}, "Metadata": {}});
        let response = self
            .http
            .post(format!("{}/BlobCreated", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let report = &body["ReturnValue"]["events"][0];
        assert_eq!(report["taskId"], id(name).as_str(), "{body}");
        (status, report["outcome"].as_str().unwrap().to_owned())
    }

    /// One direct Event Grid delivery of several events: the status and each outcome.
    async fn deliver(&self, names: &[&str]) -> (u16, Vec<String>) {
        let events: Vec<Value> = names.iter().map(|n| event(n)).collect();
        let response = self
            .http
            .post(format!("{}/api/events", self.address))
            .header("aeg-event-type", "Notification")
            .json(&events)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let outcomes = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap().to_owned())
            .collect();
        (status, outcomes)
    }
}

/// Each blob has exactly one task, created once, and the fake holds nothing else.
fn assert_one_task_each(fake: &FakeBatch, names: &[&str]) {
    for name in names {
        assert_eq!(fake.task_count(&id(name)).created, 1, "{name}");
    }
    assert_eq!(fake.tasks("wordcount").len(), names.len());
}

fn carried(fake: &FakeBatch, name: &str) -> u32 {
    fake.task_count(&id(name)).carried
}

/// `(path, status, reset)` of every request, in arrival order.
fn calls(fake: &FakeBatch) -> Vec<(String, u16, bool)> {
    fake.requests()
        .iter()
        .map(|r: &RecordedRequest| (r.path.clone(), r.status, r.reset))
        .collect()
}

const ADD_TASK: &str = "/jobs/wordcount/tasks";

fn add_task(status: u16) -> (String, u16, bool) {
    (ADD_TASK.to_owned(), status, false)
}

fn add_task_reset() -> (String, u16, bool) {
    (ADD_TASK.to_owned(), 0, true)
}

/// Three blobs, one after the other; the first request meets `fault`.
async fn three_in_a_row(fault: Fault, extra: &[(&str, &str)]) -> (FakeBatch, Vec<(u16, String)>) {
    let fake = fake().await;
    fake.push_fault(fault);
    let app = spawn_app(&fake, extra).await;
    let mut answers = Vec::new();
    for name in ["a.txt", "b.txt", "c.txt"] {
        answers.push(app.invoke(name).await);
    }
    (fake, answers)
}

fn submitted() -> (u16, String) {
    (200, "submitted".to_owned())
}

#[tokio::test]
async fn throttling_with_retry_after_waits_as_told() {
    let throttled =
        CannedResponse::error(429, "TooManyRequests", "Slow down.").header("Retry-After", "1");
    let (fake, answers) = three_in_a_row(Fault::Respond(throttled), &[]).await;
    assert_eq!(answers, vec![submitted(), submitted(), submitted()]);
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![add_task(429), add_task(201), add_task(201), add_task(201)]
    );
    let requests = fake.requests();
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(1));
    assert_eq!(carried(&fake, "a.txt"), 2);
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off_and_retries() {
    let throttled = CannedResponse::error(429, "TooManyRequests", "Slow down.");
    let (fake, answers) = three_in_a_row(Fault::Respond(throttled), &[]).await;
    assert_eq!(answers, vec![submitted(), submitted(), submitted()]);
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![add_task(429), add_task(201), add_task(201), add_task(201)]
    );
}

#[tokio::test]
async fn a_server_error_then_success() {
    let busy = CannedResponse::error(503, "ServerBusy", "The server is busy.");
    let (fake, answers) = three_in_a_row(Fault::Respond(busy), &[]).await;
    assert_eq!(answers, vec![submitted(), submitted(), submitted()]);
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![add_task(503), add_task(201), add_task(201), add_task(201)]
    );
    let counts = fake.fault_counts();
    assert_eq!((counts.responses, counts.status_503), (1, 1));
}

#[tokio::test]
async fn a_reset_before_the_answer_is_retried_and_submits() {
    let (fake, answers) = three_in_a_row(Fault::ResetBefore, &[]).await;
    // Nothing was stored before the reset, so the retry creates the task.
    assert_eq!(answers, vec![submitted(), submitted(), submitted()]);
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![
            add_task_reset(),
            add_task(201),
            add_task(201),
            add_task(201)
        ]
    );
    assert_eq!(
        fake.task_count(&id("a.txt")),
        IdCount {
            carried: 2,
            created: 1
        }
    );
}

#[tokio::test]
async fn a_reset_after_the_task_was_created_ends_as_a_duplicate() {
    let (fake, answers) = three_in_a_row(Fault::ResetAfterCreate, &[]).await;
    assert_eq!(
        answers,
        vec![(200, "duplicate".to_owned()), submitted(), submitted()]
    );
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![
            add_task_reset(),
            add_task(409),
            add_task(201),
            add_task(201)
        ]
    );
    assert_eq!(
        fake.task_count(&id("a.txt")),
        IdCount {
            carried: 2,
            created: 1
        }
    );
}

#[tokio::test]
async fn a_reset_after_a_collection_was_stored_ends_as_duplicates() {
    let fake = fake().await;
    fake.push_fault(Fault::ResetAfterCreate);
    let app = spawn_app(&fake, &[]).await;
    let names = ["a.txt", "b.txt", "c.txt"];
    let (status, outcomes) = app.deliver(&names).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes, vec!["duplicate"; 3]);
    assert_one_task_each(&fake, &names);
    let collection = "/jobs/wordcount/addtaskcollection".to_owned();
    assert_eq!(
        calls(&fake),
        vec![(collection.clone(), 0, true), (collection, 200, false)]
    );
    for name in names {
        assert_eq!(carried(&fake, name), 2, "{name}");
    }
}

#[tokio::test]
async fn a_hang_shorter_than_the_budget_is_retried_while_others_queue_behind_it() {
    let fake = fake().await;
    fake.push_fault(Fault::Hang);
    // A budget of 4 s gives each attempt 2 s; one call at a time makes the queue visible.
    let app = spawn_app(
        &fake,
        &[("BATCH_RETRY_BUDGET", "PT4S"), ("BATCH_MAX_IN_FLIGHT", "1")],
    )
    .await;
    let first = tokio::spawn({
        let app = App {
            address: app.address.clone(),
            http: app.http.clone(),
        };
        async move { app.invoke("a.txt").await }
    });
    while fake.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Both arrive while the only call hangs: they wait, then leave together.
    let (b, c) = tokio::join!(app.invoke("b.txt"), app.invoke("c.txt"));
    assert_eq!(first.await.unwrap(), submitted());
    assert_eq!((b, c), (submitted(), submitted()));
    assert_one_task_each(&fake, &["a.txt", "b.txt", "c.txt"]);
    assert_eq!(
        calls(&fake),
        vec![
            add_task(0),
            add_task(201),
            ("/jobs/wordcount/addtaskcollection".to_owned(), 200, false)
        ]
    );
    assert_eq!(fake.fault_counts().hangs, 1);
}

#[tokio::test]
async fn a_hang_longer_than_the_budget_answers_503_within_the_budget() {
    let fake = FakeBatch::start(FakeBatchConfig {
        faults: Some(FaultProfile {
            p_hang: 1.0,
            ..FaultProfile::default()
        }),
        ..FakeBatchConfig::default().with_job("wordcount")
    })
    .await;
    let app = spawn_app(&fake, &[("BATCH_RETRY_BUDGET", "PT2S")]).await;
    let started = Instant::now();
    let (status, outcome) = app.invoke("a.txt").await;
    let elapsed = started.elapsed();
    assert_eq!((status, outcome.as_str()), (503, "failed"));
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert!(fake.tasks("wordcount").is_empty());
    let attempts = carried(&fake, "a.txt");
    assert!(
        attempts >= 2,
        "one attempt may take half the budget: {attempts}"
    );
    assert_eq!(fake.fault_counts().hangs, u64::from(attempts));
}

#[tokio::test]
async fn a_seeded_profile_draws_the_same_faults_again() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let fake = FakeBatch::start(FakeBatchConfig {
            faults: Some(FaultProfile {
                seed,
                p_503: 0.3,
                p_429: 0.3,
                ..FaultProfile::default()
            }),
            ..FakeBatchConfig::default().with_job("wordcount")
        })
        .await;
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = http.get(fake.url()).send().await.unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    }
    let first = statuses(7).await;
    assert_eq!(first, statuses(7).await);
    assert_ne!(first, statuses(8).await);
    for status in [429, 503] {
        assert!(first.contains(&status), "{first:?}");
    }
    // The rest is handled normally: an unsigned GET is refused.
    assert!(first.contains(&403), "{first:?}");
}
