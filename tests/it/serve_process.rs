//! The real `blob2batch serve` process, as the Functions host runs it: start-up refuses bad
//! settings (a bad workloads file among them) with exit code 2, and a failed invocation's reasons reach stdout, the only place the
//! host sees them (it discards the body of a non-2xx answer).

use std::process::Command;
use std::time::Duration;

use crate::support::dev::Serve;
use crate::support::events::{self, BlobEvent};
use crate::support::fake_batch::{CannedResponse, FakeBatch, FakeBatchConfig};
use crate::support::settings::{STORAGE_KEY, handler_env};
use serde_json::{Value, json};

fn env(fake: &FakeBatch) -> Vec<(&'static str, String)> {
    let mut env = handler_env(fake.url().as_str());
    env.push(("BATCH_RETRY_BUDGET", "PT1S".into()));
    env.push(("RUST_LOG", "info".into()));
    env
}

fn invocation(id: &str, name: &str) -> Value {
    events::invocation(&BlobEvent::new(name).id(id).etag("0x1").json())
}

/// The JSON log lines `serve` wrote whose message is `message`.
fn logged(serve: &Serve, message: &str) -> Vec<Value> {
    serve
        .output()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

#[test]
fn bad_settings_exit_with_code_2_naming_every_problem() {
    let output = Command::new(env!("CARGO_BIN_EXE_blob2batch"))
        .arg("serve")
        .env_clear()
        .env("RUNNER", "batch")
        .env("BATCH_ACCOUNT_KEY", "not base64 !!")
        .env("TASK_MAX_QUEUE_TIME", "P99999999999D")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "STORAGE_ACCOUNT_URL is required",
        "BATCH_ACCOUNT_URL is required",
        "BATCH_ACCOUNT_KEY must be a base64 account key",
        "TASK_MAX_QUEUE_TIME must be an ISO 8601 duration from PT1M to P180D",
        "WORDCOUNT_IMAGE is required",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
    assert!(!stderr.contains("not base64 !!"), "{stderr}");
}

/// A workloads file with a problem of each kind, each on a known line.
const BAD_WORKLOADS: &str = r#"version = 1

[[workload]]
name = "checksum"
suffix = ".png"
image = "example.azurecr.io/checksum:1"
command = "/bin/busybox sha256sum input/data"
result = { suffix = ".sha256" }
files = "out/**"
slots = 0
colour = "blue"

[[workload]]
name = "wcs"
image = "example.azurecr.io/other:1"
command = "/bin/run"
env = { BLOB2BATCH_BLOB = "mine" }
max_wall_clock = "half an hour"
input = "stream"
"#;

#[test]
fn a_bad_workloads_file_exits_with_code_2_naming_every_problem_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workloads.toml"), BAD_WORKLOADS).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_blob2batch"))
        .arg("serve")
        .env_clear()
        .envs(handler_env("http://127.0.0.1:9"))
        // Relative: taken from the working directory, as under the Functions host.
        .env("WORKLOADS_FILE", "workloads.toml")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "workloads.toml:11:1: unknown key `colour`",
        "workloads.toml:8:1: give `result` or `files`, not both",
        "workloads.toml:10:9: `slots` must be a whole number from 1 to 256",
        "workloads.toml:14:8: `wcs` is reserved",
        "workloads.toml:17:9: `BLOB2BATCH_BLOB` is reserved",
        "workloads.toml:19:9: `input` must be \"file\" or \"url\", not \"stream\"",
        "workloads.toml:18:18: `max_wall_clock` must be an ISO 8601 duration",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
}

#[test]
fn a_workloads_file_with_job_mode_exits_with_code_2_naming_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workloads.toml");
    std::fs::write(&file, "version = 1\n\n[[workload]]\nname = \"wordcount\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_blob2batch"))
        .arg("serve")
        .env_clear()
        .envs(handler_env("http://127.0.0.1:9"))
        .env("WORKLOADS_FILE", &file)
        .env("BATCH_SUBMIT_MODE", "job")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WORKLOADS_FILE") && stderr.contains("BATCH_SUBMIT_MODE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_failed_invocation_logs_its_reasons_on_stdout() {
    let fake = FakeBatch::start(FakeBatchConfig::default().with_job("wordcount")).await;
    for _ in 0..100 {
        fake.push_response(CannedResponse::error(
            503,
            "ServerBusy",
            "The server is busy.",
        ));
    }
    let serve = Serve::start(&env(&fake));
    let http = reqwest::Client::new();

    // Batch keeps answering 503: the invocation answers 503 (the host's JSON shape still).
    let response = http
        .post(format!("{}/BlobCreated", serve.url))
        .json(&invocation("evt-busy", "a.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "failed");

    // A malformed invocation is answered 400.
    let response = http
        .post(format!("{}/BlobCreated", serve.url))
        .json(&json!({"Data": {"event": "{not json"}, "Metadata": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let failed = logged(&serve, "invocation failed");
    assert_eq!(failed.len(), 2, "{}", serve.output().join("\n"));
    let busy = failed[0]["fields"]["reasons"].as_str().unwrap();
    assert_eq!(failed[0]["fields"]["status"], 503);
    assert!(
        busy.contains("event evt-busy") && busy.contains("ServerBusy"),
        "{busy}"
    );
    let malformed = failed[1]["fields"]["reasons"].as_str().unwrap();
    assert_eq!(failed[1]["fields"]["status"], 400);
    assert!(malformed.contains("not JSON"), "{malformed}");
    // The per-event line is there too, with the invocation id's span.
    let events = logged(&serve, "event not handled");
    assert_eq!(events.len(), 1, "{}", serve.output().join("\n"));
    assert_eq!(events[0]["fields"]["event_id"], "evt-busy");
    assert!(
        events[0]["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("ServerBusy")
    );
    let all = serve.output().join("\n");
    assert!(!all.contains(STORAGE_KEY) && !all.contains("sig="), "{all}");
    assert!(serve.stop().success());
}
