//! The operations commands as an operator runs them: the real `blob2batch` binary against a real
//! Azurite and the fake Batch service. Each test has containers of its own.

use std::time::{Duration, Instant};

use crate::support::dev::{CliRun, Serve, run_cli};
use crate::support::events::BlobEvent;
use crate::support::fake_batch::{self, FakeBatch, FakeBatchConfig};
use crate::support::storage::fresh_container;
use blob2batch::plan::task_id;
use blob2batch::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};
use blob2batch::storage::{BlobHttpHeaders, ContainerClient};
use serde_json::{Value, json};

const JOB: &str = "wordcount";

/// Settings of a Batch-backed run over containers `{name}-in`, `{name}-out`, `{name}-dead`.
fn env(batch_url: &str, name: &str) -> Vec<(String, String)> {
    let azurite = crate::support::azurite::azurite();
    vec![
        ("STORAGE_ACCOUNT_URL".into(), azurite.url.clone()),
        ("STORAGE_ACCOUNT_KEY".into(), WELL_KNOWN_KEY.into()),
        ("INPUT_CONTAINER".into(), format!("{name}-in")),
        ("OUTPUT_CONTAINER".into(), format!("{name}-out")),
        ("DEADLETTER_CONTAINER".into(), format!("{name}-dead")),
        ("BATCH_ACCOUNT_URL".into(), batch_url.into()),
        ("BATCH_ACCOUNT_NAME".into(), fake_batch::ACCOUNT.into()),
        ("BATCH_ACCOUNT_KEY".into(), fake_batch::KEY.into()),
        ("BATCH_RETRY_BUDGET".into(), "PT2S".into()),
        (
            "WORDCOUNT_IMAGE".into(),
            "example.azurecr.io/wordcount:1".into(),
        ),
    ]
}

async fn cli(env: &[(String, String)], args: &[&str]) -> CliRun {
    run_cli(env, args).await
}

async fn container(name: &str) -> ContainerClient {
    fresh_container(name).await
}

async fn upload(container: &ContainerClient, blob: &str, content: &str) -> String {
    container
        .upload_bytes(
            blob,
            content.as_bytes().to_vec(),
            &BlobHttpHeaders::content_type("text/plain"),
        )
        .await
        .unwrap()
        .etag
        .unwrap()
}

/// A result blob as Batch uploads it: the document and the version it came from.
async fn put_result(out: &ContainerClient, blob: &str, source_etag: &str, task: &str) {
    let mut headers = BlobHttpHeaders::content_type("application/json");
    headers
        .metadata
        .insert("source_etag".into(), source_etag.into());
    headers.metadata.insert("task_id".into(), task.into());
    out.upload_bytes(
        &format!("{blob}.wordcount.json"),
        br#"{"source":"x","words":1}"#.to_vec(),
        &headers,
    )
    .await
    .unwrap();
}

fn id(container: &str, blob: &str, etag: &str) -> String {
    task_id(WELL_KNOWN_ACCOUNT, container, blob, etag)
}

async fn fake() -> FakeBatch {
    FakeBatch::start(FakeBatchConfig::default().with_job(JOB)).await
}

#[tokio::test]
async fn reconcile_submits_what_no_event_brought_exactly_once() {
    let fake = fake().await;
    let env = env(fake.url().as_str(), "rec");
    let input = container("rec-in").await;
    let out = container("rec-out").await;
    let a = upload(&input, "a.txt", "alpha").await;
    let b = upload(&input, "docs/b.txt", "beta").await;
    let c = upload(&input, "docs/c.txt", "gamma").await;
    upload(&input, "folder/", "").await;
    // c already has its result: nothing to do for it.
    put_result(&out, "docs/c.txt", &c, &id("rec-in", "docs/c.txt", &c)).await;

    let dry = cli(&env, &["reconcile", "--dry-run", "--json"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert_eq!(
        dry.counts(),
        json!({"listed": 4, "submitted": 2, "duplicate": 0, "ignored": 1, "failed": 0})
    );
    assert!(fake.task_ids(JOB).is_empty(), "a dry run submitted");

    // At the finest log level too, nothing secret is printed (run_cli checks every run).
    let mut traced = env.clone();
    traced.push(("RUST_LOG".into(), "trace".into()));
    let first = cli(&traced, &["reconcile", "--json"]).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(
        first.counts(),
        json!({"listed": 4, "submitted": 2, "duplicate": 0, "ignored": 1, "failed": 0})
    );
    let mut expected = vec![id("rec-in", "a.txt", &a), id("rec-in", "docs/b.txt", &b)];
    expected.sort();
    assert_eq!(fake.task_ids(JOB), expected);
    let actions = first.json();
    assert_eq!(actions[0]["action"], "submitted");
    assert_eq!(actions[0]["blob"], "a.txt");
    assert_eq!(actions[0]["taskId"], id("rec-in", "a.txt", &a));
    // One Add Task Collection for the page, not a request per blob.
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].path.ends_with("/addtaskcollection"));

    // Right after: the tasks exist (no results yet), so nothing new is submitted.
    let second = cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(
        second.counts(),
        json!({"listed": 4, "submitted": 0, "duplicate": 2, "ignored": 1, "failed": 0})
    );
    assert_eq!(fake.task_ids(JOB).len(), 2);

    // An overwrite is a new version: one new task.
    let a2 = upload(&input, "a.txt", "alpha again").await;
    let third = cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(third.counts()["submitted"], 1);
    assert!(fake.task_ids(JOB).contains(&id("rec-in", "a.txt", &a2)));
    assert_eq!(fake.task_ids(JOB).len(), 3);
}

#[tokio::test]
async fn prefix_and_since_narrow_the_listing() {
    let fake = fake().await;
    let env = env(fake.url().as_str(), "narrow");
    let input = container("narrow-in").await;
    container("narrow-out").await;
    upload(&input, "old/a.txt", "a").await;
    upload(&input, "new/b.txt", "b").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let fresh = upload(&input, "new/c.txt", "c").await;

    let by_prefix = cli(
        &env,
        &["reconcile", "--dry-run", "--json", "--prefix", "new/"],
    )
    .await;
    assert_eq!(by_prefix.counts()["listed"], 2, "{}", by_prefix.stdout);
    let by_time = cli(&env, &["reconcile", "--json", "--since", "PT2S"]).await;
    assert_eq!(by_time.code, Some(0), "{}", by_time.stderr);
    assert_eq!(by_time.counts()["listed"], 1, "{}", by_time.stdout);
    assert_eq!(
        fake.task_ids(JOB),
        vec![id("narrow-in", "new/c.txt", &fresh)]
    );

    let bad = cli(&env, &["reconcile", "--since", "yesterday"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
}

#[tokio::test]
async fn status_reports_every_state() {
    let fake = fake().await;
    let env = env(fake.url().as_str(), "stat");
    let input = container("stat-in").await;
    let out = container("stat-out").await;
    let names = [
        "active.txt",
        "running.txt",
        "ok.txt",
        "bad.txt",
        "overwritten.txt",
    ];
    let mut etags = std::collections::HashMap::new();
    for name in names {
        etags.insert(name, upload(&input, name, name).await);
    }
    // An old result of overwritten.txt, from its first version.
    put_result(&out, "overwritten.txt", &etags["overwritten.txt"], "wc-old").await;
    let assert_ok = cli(&env, &["reconcile"]).await;
    assert_eq!(assert_ok.code, Some(0), "{}", assert_ok.stderr);
    etags.insert(
        "overwritten.txt",
        upload(&input, "overwritten.txt", "v2").await,
    );
    upload(&input, "never.txt", "never").await;
    let task = |name: &str| id("stat-in", name, &etags[name]);
    fake.set_task_fields(JOB, &task("running.txt"), json!({"state": "running"}));
    fake.set_task_fields(
        JOB,
        &task("ok.txt"),
        json!({"state": "completed", "executionInfo": {"exitCode": 0, "result": "success", "retryCount": 0}}),
    );
    put_result(&out, "ok.txt", &etags["ok.txt"], &task("ok.txt")).await;
    fake.set_task_fields(
        JOB,
        &task("bad.txt"),
        json!({"state": "completed", "executionInfo": {"exitCode": 1, "result": "failure", "retryCount": 2,
            "failureInfo": {"category": "usererror", "code": "FailureExitCode",
                            "message": "The task process exited with an unexpected exit code"}}}),
    );
    let logs = format!("bad.txt.wordcount.logs/{}", task("bad.txt"));
    out.upload_bytes(
        &format!("{logs}/stderr.txt"),
        b"boom".to_vec(),
        &BlobHttpHeaders::default(),
    )
    .await
    .unwrap();

    let run = cli(&env, &["status", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let rows: std::collections::HashMap<String, Value> = run
        .json()
        .into_iter()
        .map(|row| (row["blob"].as_str().unwrap().to_string(), row))
        .collect();
    assert_eq!(rows.len(), 6, "{}", run.stdout);
    assert_eq!(rows["active.txt"]["state"], "active");
    assert_eq!(rows["active.txt"]["taskId"], task("active.txt"));
    assert_eq!(rows["active.txt"]["output"], Value::Null);
    assert_eq!(rows["running.txt"]["state"], "running");
    let ok = &rows["ok.txt"];
    assert_eq!(
        (
            &ok["state"],
            &ok["exitCode"],
            &ok["retries"],
            &ok["failure"]
        ),
        (&json!("succeeded"), &json!(0), &json!(0), &Value::Null)
    );
    assert_eq!(ok["output"], "ok.txt.wordcount.json");
    assert_eq!(ok["outputCurrent"], true);
    let bad = &rows["bad.txt"];
    assert_eq!(
        (&bad["state"], &bad["exitCode"], &bad["retries"]),
        (&json!("failed"), &json!(1), &json!(2))
    );
    assert_eq!(
        bad["failure"],
        json!({"category": "usererror", "code": "FailureExitCode",
               "message": "The task process exited with an unexpected exit code"})
    );
    assert_eq!(bad["logs"], format!("{logs}/"));
    assert_eq!(rows["never.txt"]["state"], "unsubmitted");
    let stale = &rows["overwritten.txt"];
    assert_eq!(stale["state"], "unsubmitted");
    assert_eq!(stale["etag"], etags["overwritten.txt"].as_str());
    assert_eq!(stale["output"], "overwritten.txt.wordcount.json");
    assert_eq!(
        stale["outputCurrent"], false,
        "an old result is not current"
    );

    // Named blobs and a table; a missing name is an error (exit code 1).
    let table = cli(&env, &["status", "bad.txt", "missing.txt"]).await;
    assert_eq!(table.code, Some(1), "{}", table.stderr);
    assert!(
        table.stderr.contains("missing.txt: no such blob"),
        "{}",
        table.stderr
    );
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    assert!(lines[0].starts_with("STATE"));
    assert!(
        lines[1].starts_with("failed") && lines[1].contains("FailureExitCode"),
        "{}",
        lines[1]
    );
    assert!(!table.stdout.contains('\x1b'), "no colour off a terminal");
}

/// A dead-letter blob's events in the Event Grid schema.
fn event_grid(id: &str, container: &str, blob: &str, etag: &str, account_url: &str) -> Value {
    BlobEvent::new(blob)
        .id(id)
        .container(container)
        .etag(etag)
        .account_url(account_url)
        .with("deadLetterReason", json!("MaxDeliveryAttemptsExceeded"))
        .with("deliveryAttempts", json!(30))
        .with("lastDeliveryOutcome", json!("Busy"))
        .with("lastHttpStatusCode", json!(503))
        .with("publishTime", json!("2026-03-14T09:26:54Z"))
        .with("lastDeliveryAttemptTime", json!("2026-03-15T09:26:54Z"))
        .json()
}

fn cloud_event(id: &str, container: &str, blob: &str, etag: &str, account_url: &str) -> Value {
    BlobEvent::new(blob)
        .id(id)
        .container(container)
        .etag(etag)
        .account_url(account_url)
        .cloud_event()
        .with("deadletterreason", json!("TimeToLiveExceeded"))
        .with("deliveryattempts", json!(12))
        .with("lastdeliveryoutcome", json!("TimedOut"))
        .with("lasthttpstatuscode", json!(0))
        .json()
}

#[tokio::test]
async fn redrive_settles_quarantines_and_keeps_dead_letters() {
    let fake = fake().await;
    let env = env(fake.url().as_str(), "redr");
    let azurite = crate::support::azurite::azurite();
    let input = container("redr-in").await;
    container("redr-out").await;
    let dead = container("redr-dead").await;
    let a = upload(&input, "a.txt", "a").await;
    let b = upload(&input, "b.txt", "b").await;
    let url = &azurite.url;
    let put = |name: &'static str, body: String| {
        let dead = dead.clone();
        async move {
            dead.upload_bytes(name, body.into_bytes(), &BlobHttpHeaders::default())
                .await
                .unwrap();
        }
    };
    let several = "SUB/2026/3/14/9/0001.json";
    put(
        several,
        json!([
            event_grid("e-a", "redr-in", "a.txt", &a, url),
            event_grid("e-b", "redr-in", "b.txt", &b, url),
            event_grid("e-other", "elsewhere", "x.txt", "0x1", url)
        ])
        .to_string(),
    )
    .await;
    let cloud = "SUB/2026/3/14/9/0002.json";
    put(
        cloud,
        json!([cloud_event("c-a", "redr-in", "a.txt", &a, url)]).to_string(),
    )
    .await;
    let foreign = "SUB/2026/3/14/10/0003.json";
    put(
        foreign,
        json!([event_grid(
            "e-f",
            "redr-in",
            "a.txt",
            &a,
            "https://other.blob.core.windows.net"
        )])
        .to_string(),
    )
    .await;
    let garbage = "SUB/2026/3/14/10/0004.json";
    put(garbage, "{not json".to_string()).await;
    put("redriven/SUB/old.json", "[]".to_string()).await;

    let dry = cli(&env, &["redrive", "--dry-run", "--json"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert_eq!(dry.counts()["submitted"], 2, "{}", dry.stdout);
    assert!(fake.task_ids(JOB).is_empty());
    assert_eq!(
        dead.list(None).await.unwrap().len(),
        5,
        "a dry run moved something"
    );

    let mut traced = env.clone();
    traced.push(("RUST_LOG".into(), "trace".into()));
    let run = cli(&traced, &["redrive", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.counts(),
        json!({"deadLettered": 4, "events": 5, "submitted": 2, "duplicate": 1, "ignored": 1,
               "rejected": 1, "failed": 0})
    );
    let lines = run.json();
    let first = lines.iter().find(|l| l["id"] == "e-a").unwrap();
    assert_eq!(first["blob"], "redr-in/a.txt");
    assert_eq!(first["deadLetterReason"], "MaxDeliveryAttemptsExceeded");
    assert_eq!(first["deliveryAttempts"], 30);
    assert_eq!(first["lastDeliveryOutcome"], "Busy");
    let cloud_line = lines.iter().find(|l| l["id"] == "c-a").unwrap();
    assert_eq!(cloud_line["deadLetterReason"], "TimeToLiveExceeded");
    assert_eq!(cloud_line["deliveryAttempts"], 12);
    assert_eq!(cloud_line["outcome"], "duplicate");
    assert_eq!(fake.task_ids(JOB).len(), 2);

    let mut left: Vec<String> = dead
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    left.sort();
    let mut expected = vec![
        format!("quarantine/{foreign}"),
        format!("quarantine/{garbage}"),
        "redriven/SUB/old.json".to_string(),
        format!("redriven/{several}"),
        format!("redriven/{cloud}"),
    ];
    expected.sort();
    assert_eq!(left, expected);
    let reason = dead
        .properties(&format!("quarantine/{foreign}"))
        .await
        .unwrap()
        .unwrap()
        .metadata["quarantine_reason"]
        .clone();
    assert!(
        reason.contains("not in the configured storage account"),
        "{reason}"
    );

    // Blobs under redriven/ and quarantine/ are never read again.
    let again = cli(&env, &["redrive", "--json"]).await;
    assert_eq!(again.counts()["deadLettered"], 0);
}

#[tokio::test]
async fn unreachable_batch_fails_within_the_budget_and_moves_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env(&format!("http://127.0.0.1:{port}"), "down");
    let input = container("down-in").await;
    container("down-out").await;
    let dead = container("down-dead").await;
    let etag = upload(&input, "a.txt", "a").await;
    let url = crate::support::azurite::azurite().url.clone();
    dead.upload_bytes(
        "SUB/2026/3/14/9/0001.json",
        json!([event_grid("e-1", "down-in", "a.txt", &etag, &url)])
            .to_string()
            .into_bytes(),
        &BlobHttpHeaders::default(),
    )
    .await
    .unwrap();

    for args in [&["reconcile"][..], &["redrive"], &["status"]] {
        let started = Instant::now();
        let run = cli(&env, args).await;
        assert_eq!(run.code, Some(1), "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(run.stderr.contains("a.txt"), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("onnect") || run.stderr.contains("no answer"),
            "{args:?} does not say why: {}",
            run.stderr
        );
    }
    let names: Vec<String> = dead
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["SUB/2026/3/14/9/0001.json"],
        "the dead letter must stay"
    );
}

#[tokio::test]
async fn the_timer_reconciles_its_window_and_answers_the_host() {
    let fake = fake().await;
    let mut env = env(fake.url().as_str(), "timer");
    env.push(("RECONCILE_GRACE".into(), "PT0S".into()));
    env.push(("RECONCILE_LOOKBACK".into(), "PT1H".into()));
    env.push(("RUST_LOG".into(), "info".into()));
    let input = container("timer-in").await;
    container("timer-out").await;
    let etag = upload(&input, "missed.txt", "missed").await;
    let serve = Serve::start(&env);
    let timer_info = json!({"Schedule": {"AdjustForDST": true},
        "ScheduleStatus": {"Last": "2026-03-14T09:15:00Z", "Next": "2026-03-14T09:30:00Z",
                           "LastUpdated": "2026-03-14T09:15:00Z"},
        "IsPastDue": false});
    let body = json!({"Data": {"timer": timer_info.to_string()},
                      "Metadata": {"sys": {"MethodName": "Reconcile", "UtcNow": "2026-03-14T09:30:00Z"}}});
    let response = reqwest::Client::new()
        .post(format!("{}/Reconcile", serve.url))
        .header("x-azure-functions-invocationid", "inv-timer")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["ReturnValue"]["submitted"], 1, "{answer}");
    assert_eq!(answer["ReturnValue"]["more"], false);
    assert!(
        answer["Logs"][0]
            .as_str()
            .unwrap()
            .starts_with("reconcile: listed 1, current 0, submitted 1"),
        "{answer}"
    );
    assert_eq!(
        fake.task_ids(JOB),
        vec![id("timer-in", "missed.txt", &etag)]
    );
    // The next tick: a duplicate, no second task; the event the host may still deliver later
    // gets the same id.
    let again = reqwest::Client::new()
        .post(format!("{}/Reconcile", serve.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer: Value = again.json().await.unwrap();
    assert_eq!(answer["ReturnValue"]["duplicate"], 1, "{answer}");
    assert_eq!(fake.task_ids(JOB).len(), 1);
    serve.wait_for_lines(2, Duration::from_secs(10), |l| {
        l.contains("reconcile: listed 1")
    });
}
