//! Workloads through the real binary: `plan` prints exactly what `serve` sends for the same
//! events, and the operations commands (`reconcile`, `status`, `redrive`) handle a mix of
//! workloads against Azurite and the fake Batch service.

use std::collections::HashMap;
use std::path::Path;

use crate::support::dev::{Serve, run_cli};
use crate::support::events::{self, BlobEvent};
use crate::support::fake_batch::{FakeBatch, FakeBatchConfig, RecordedRequest};
use crate::support::settings::handler_env;
use crate::support::storage::fresh_container;
use blob2batch::plan::{task_id, workload_task_id};
use blob2batch::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};
use blob2batch::storage::{BlobHttpHeaders, ContainerClient};
use serde_json::{Value, json};

/// Every kind of route: an image of one's own on its own pool and job (reading its input by
/// URL), one writing files, an ignore rule, and the built-in word count.
const WORKLOADS: &str = r#"version = 1

[[workload]]
name = "checksum"
prefix = "images/"
content_type = "image/*"
image = "example.azurecr.io/checksum:1.2"
command = "/bin/busybox sha256sum input/data"
result = { suffix = ".sha256.txt", content_type = "text/plain" }
env = { LEVEL = "9" }
max_wall_clock = "PT30M"
max_retries = 1
slots = 2

[[workload]]
name = "thumbs"
prefix = "images/"
image = "example.azurecr.io/thumbs:3"
command = "/thumbs --out out"
files = "out/**"
input = "url"
pool = "gpu-pool"
job = "thumbs"

[[workload]]
name = "archive"
prefix = "archive/"
ignore = true

[[workload]]
name = "wordcount"
suffix = ".txt"
"#;

fn write_workloads(dir: &Path) -> String {
    let file = dir.join("workloads.toml");
    std::fs::write(&file, WORKLOADS).unwrap();
    file.to_str().unwrap().to_string()
}

/// URLs without their query strings: SAS tokens carry the time they were signed at.
fn without_queries(value: &Value) -> Value {
    match value {
        Value::String(s) if s.starts_with("http") => {
            Value::String(s.split('?').next().unwrap_or_default().to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(without_queries).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_queries(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The tasks and jobs a recorded run added, by id.
fn added(requests: &[RecordedRequest]) -> (HashMap<String, Value>, HashMap<String, Value>) {
    let (mut tasks, mut jobs) = (HashMap::new(), HashMap::new());
    for request in requests.iter().filter(|r| r.method == "POST") {
        let Some(body) = &request.body else { continue };
        let bodies = if request.path.ends_with("/addtaskcollection") {
            body["value"].as_array().cloned().unwrap_or_default()
        } else {
            vec![body.clone()]
        };
        for body in bodies {
            let id = body["id"].as_str().unwrap().to_string();
            if request.path.ends_with("/jobs") {
                jobs.insert(id, body);
            } else {
                tasks.insert(id, body);
            }
        }
    }
    (tasks, jobs)
}

#[tokio::test]
async fn plan_prints_what_serve_sends_for_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let mut env: Vec<(String, String)> = handler_env(fake.url().as_str())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("WORKLOADS_FILE".into(), write_workloads(dir.path())));
    env.push(("BATCH_NODE_IDENTITY".into(), "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool".into()));
    let delivery = vec![
        BlobEvent::new("images/cat.png")
            .id("e-png")
            .etag("0x8DE1")
            .content_type("image/png")
            .content_length(2048)
            .json(),
        BlobEvent::new("images/cat.raw")
            .id("e-raw")
            .etag("0x8DE2")
            .content_type("application/octet-stream")
            .json(),
        BlobEvent::new("archive/old.txt").id("e-old").json(),
        BlobEvent::new("docs/a b.txt")
            .id("e-txt")
            .etag("0x8DE3")
            .content_length(5231)
            .json(),
        BlobEvent::new("misc/data.bin").id("e-bin").json(),
    ];

    let serve = Serve::start(&env);
    let http = reqwest::Client::new();
    for event in &delivery {
        let response = http
            .post(format!("{}/BlobCreated", serve.url))
            .json(&events::invocation(event))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", serve.output().join("\n"));
    }
    let (tasks, jobs) = added(&fake.requests());

    let event_file = dir.path().join("delivery.json");
    std::fs::write(&event_file, Value::Array(delivery).to_string()).unwrap();
    let plan = run_cli(
        &env,
        &["plan", "--json", "--event", event_file.to_str().unwrap()],
    )
    .await;
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let lines = plan.json();
    let by_blob: HashMap<&str, &Value> = lines
        .iter()
        .map(|l| (l["blob"].as_str().unwrap(), l))
        .collect();

    let expected = [
        ("input/images/cat.png", "checksum", "wordcount"),
        ("input/images/cat.raw", "thumbs", "thumbs"),
        ("input/docs/a b.txt", "wordcount", "wordcount"),
    ];
    for (blob, workload, job) in expected {
        let line = by_blob[blob];
        assert_eq!(line["outcome"], "act", "{line}");
        assert_eq!(line["workload"], workload, "{line}");
        assert_eq!(line["job"], job, "{line}");
        let planned = line["tasks"].as_array().unwrap();
        assert_eq!(planned.len(), 1, "{line}");
        let id = planned[0]["id"].as_str().unwrap();
        let sent = tasks
            .get(id)
            .unwrap_or_else(|| panic!("serve sent no task {id}"));
        assert_eq!(
            without_queries(&planned[0]),
            without_queries(sent),
            "{blob}"
        );
        assert_eq!(
            without_queries(&line["jobBody"]),
            without_queries(&jobs[job]),
            "{blob}: the job serve created"
        );
    }
    assert_eq!(tasks.len(), 3, "serve sent exactly the planned tasks");
    assert_eq!(by_blob["input/images/cat.raw"]["pool"], "gpu-pool");
    assert_eq!(by_blob["input/archive/old.txt"]["outcome"], "ignored");
    assert!(
        by_blob["input/archive/old.txt"]["reason"]
            .as_str()
            .unwrap()
            .contains("archive"),
        "{}",
        plan.stdout
    );
    assert_eq!(by_blob["input/misc/data.bin"]["outcome"], "ignored");
    assert_eq!(
        by_blob["input/misc/data.bin"]["reason"],
        "no workload matches"
    );
    // The signatures are redacted, never printed.
    let signatures = plan.stdout.matches("sig=").count();
    assert!(signatures > 0, "{}", plan.stdout);
    assert_eq!(
        plan.stdout.matches("sig=<redacted>").count(),
        signatures,
        "{}",
        plan.stdout
    );
}

/// Settings of a Batch-backed run with the workloads above, over containers `{name}-in`,
/// `{name}-out` and `{name}-dead`.
fn ops_env(batch_url: &str, name: &str, workloads: &str) -> Vec<(String, String)> {
    let azurite = crate::support::azurite::azurite();
    let mut env: Vec<(String, String)> = handler_env(batch_url)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.extend([
        ("STORAGE_ACCOUNT_URL".into(), azurite.url.clone()),
        ("STORAGE_ACCOUNT_KEY".into(), WELL_KNOWN_KEY.into()),
        ("INPUT_CONTAINER".into(), format!("{name}-in")),
        ("OUTPUT_CONTAINER".into(), format!("{name}-out")),
        ("DEADLETTER_CONTAINER".into(), format!("{name}-dead")),
        ("BATCH_RETRY_BUDGET".into(), "PT2S".into()),
        ("WORKLOADS_FILE".into(), workloads.into()),
    ]);
    env
}

async fn upload(container: &ContainerClient, blob: &str, content_type: &str) -> String {
    container
        .upload_bytes(
            blob,
            blob.as_bytes().to_vec(),
            &BlobHttpHeaders::content_type(content_type),
        )
        .await
        .unwrap()
        .etag
        .unwrap()
}

/// A result blob as Batch uploads it, with the version and task it came from.
async fn put_result(out: &ContainerClient, name: &str, source_etag: &str, task: &str) {
    let mut headers = BlobHttpHeaders::content_type("text/plain");
    headers
        .metadata
        .insert("source_etag".into(), source_etag.into());
    headers.metadata.insert("task_id".into(), task.into());
    out.upload_bytes(name, b"done".to_vec(), &headers)
        .await
        .unwrap();
}

#[tokio::test]
async fn reconcile_status_and_redrive_handle_a_mix_of_workloads() {
    let dir = tempfile::tempdir().unwrap();
    let workloads = write_workloads(dir.path());
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let env = ops_env(fake.url().as_str(), "mix", &workloads);
    let input = fresh_container("mix-in").await;
    let out = fresh_container("mix-out").await;
    let dead = fresh_container("mix-dead").await;
    let png = upload(&input, "images/cat.png", "image/png").await;
    let raw = upload(&input, "images/cat.raw", "application/octet-stream").await;
    let txt = upload(&input, "docs/a.txt", "text/plain").await;
    upload(&input, "archive/old.txt", "text/plain").await;
    upload(&input, "misc/data.bin", "application/octet-stream").await;
    let own = |workload: &str, blob: &str, etag: &str| {
        workload_task_id(workload, WELL_KNOWN_ACCOUNT, "mix-in", blob, etag)
    };
    let checksum = own("checksum", "images/cat.png", &png);
    let thumbs = own("thumbs", "images/cat.raw", &raw);
    let words = task_id(WELL_KNOWN_ACCOUNT, "mix-in", "docs/a.txt", &txt);

    // reconcile: each blob to its workload's job; the archive and the unmatched blob ignored.
    let run = run_cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.counts(),
        json!({"listed": 5, "submitted": 3, "duplicate": 0, "ignored": 2, "failed": 0})
    );
    let acted: HashMap<String, String> = run.json()[..3]
        .iter()
        .map(|l| {
            (
                l["blob"].as_str().unwrap().to_string(),
                l["workload"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(acted["images/cat.png"], "checksum");
    assert_eq!(acted["images/cat.raw"], "thumbs");
    assert_eq!(acted["docs/a.txt"], "wordcount");
    let mut in_wordcount = fake.task_ids("wordcount");
    in_wordcount.sort();
    let mut expected = vec![checksum.clone(), words.clone()];
    expected.sort();
    assert_eq!(in_wordcount, expected);
    assert_eq!(fake.task_ids("thumbs"), vec![thumbs.clone()]);
    assert_eq!(
        fake.job("thumbs").unwrap()["poolInfo"]["poolId"],
        "gpu-pool"
    );

    // Both result styles done and current; word count still queued.
    let done = json!({"state": "completed",
        "executionInfo": {"exitCode": 0, "result": "success", "retryCount": 0}});
    fake.set_task_fields("wordcount", &checksum, done.clone());
    fake.set_task_fields("thumbs", &thumbs, done);
    put_result(&out, "images/cat.png.sha256.txt", &png, &checksum).await;
    put_result(&out, "images/cat.raw.thumbs/stdout.txt", &raw, &thumbs).await;
    put_result(&out, "images/cat.raw.thumbs/thumb-64.png", &raw, &thumbs).await;
    let status = run_cli(&env, &["status", "--json"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let rows: HashMap<String, Value> = status
        .json()
        .into_iter()
        .map(|row| (row["blob"].as_str().unwrap().to_string(), row))
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "ignored blobs are not rows: {}",
        status.stdout
    );
    let png_row = &rows["images/cat.png"];
    assert_eq!(
        (&png_row["workload"], &png_row["state"], &png_row["taskId"]),
        (&json!("checksum"), &json!("succeeded"), &json!(checksum))
    );
    assert_eq!(png_row["output"], "images/cat.png.sha256.txt");
    assert_eq!(png_row["outputCurrent"], true);
    let raw_row = &rows["images/cat.raw"];
    assert_eq!(
        (
            &raw_row["workload"],
            &raw_row["state"],
            &raw_row["outputCurrent"]
        ),
        (&json!("thumbs"), &json!("succeeded"), &json!(true))
    );
    let txt_row = &rows["docs/a.txt"];
    assert_eq!(
        (
            &txt_row["workload"],
            &txt_row["state"],
            &txt_row["outputCurrent"]
        ),
        (&json!("wordcount"), &json!("active"), &json!(false))
    );
    let table = run_cli(&env, &["status"]).await;
    assert!(table.stdout.lines().next().unwrap().contains("WORKLOAD"));

    // Nothing left to do; a named ignored blob is said to be so.
    let again = run_cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(again.counts()["submitted"], 0, "{}", again.stdout);
    let named = run_cli(&env, &["status", "archive/old.txt"]).await;
    assert!(
        named
            .stderr
            .contains("archive/old.txt: not counted: ignored by workload archive"),
        "{}",
        named.stderr
    );

    // redrive: dead-lettered events go through the same routes.
    let dog = upload(&input, "images/dog.png", "image/png").await;
    let url = &crate::support::azurite::azurite().url;
    let event = |id: &str, blob: &str, etag: &str, content_type: &str| {
        BlobEvent::new(blob)
            .id(id)
            .container("mix-in")
            .etag(etag)
            .content_type(content_type)
            .account_url(url)
            .json()
    };
    let letters = json!([
        event("e-cat", "images/cat.png", &png, "image/png"),
        event("e-dog", "images/dog.png", &dog, "image/png"),
        event("e-old", "archive/old.txt", "0x1", "text/plain"),
    ]);
    dead.upload_bytes(
        "SUB/2026/3/14/9/0001.json",
        letters.to_string().into_bytes(),
        &BlobHttpHeaders::default(),
    )
    .await
    .unwrap();
    let redrive = run_cli(&env, &["redrive", "--json"]).await;
    assert_eq!(redrive.code, Some(0), "{}", redrive.stderr);
    let counts = redrive.counts();
    assert_eq!(
        (
            &counts["submitted"],
            &counts["duplicate"],
            &counts["ignored"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{}",
        redrive.stdout
    );
    assert!(
        fake.task_ids("wordcount")
            .contains(&own("checksum", "images/dog.png", &dog))
    );
}
