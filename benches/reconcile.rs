//! Reconcile benchmark (not a test): what one `blob2batch reconcile` run costs over a container
//! of blobs that have their results, and what it submits when some are missing. The release
//! binary against a real Azurite and the fake Batch service, both on loopback.
//!
//! `cargo bench --bench reconcile` (settings: BENCH_BLOBS, default 10000; BENCH_MISSING_PERCENT,
//! default 1).

#[allow(dead_code)]
#[path = "../tests/support/azurite.rs"]
mod azurite;
#[path = "../tests/support/fake_batch.rs"]
mod fake_batch;

use std::process::Command;
use std::time::{Duration, Instant};

use blob2batch::plan::task_id;
use blob2batch::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};
use blob2batch::storage::{BlobHttpHeaders, ContainerClient};
use fake_batch::{FakeBatch, FakeBatchConfig};
use futures_util::StreamExt as _;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_blob2batch");
const UPLOADS_IN_FLIGHT: usize = 32;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name(i: u64) -> String {
    format!("day/{:02}/file-{i:06}.txt", i % 24)
}

/// One `reconcile --json` run: its counts, how long it took, and the Batch requests it made.
fn reconcile(fake: &FakeBatch, args: &[&str]) -> (Value, Duration, usize) {
    fake.clear_requests();
    let azurite = azurite::azurite();
    let started = Instant::now();
    let output = Command::new(BINARY)
        .arg("reconcile")
        .arg("--json")
        .args(args)
        .env_clear()
        .env("STORAGE_ACCOUNT_URL", &azurite.url)
        .env("STORAGE_ACCOUNT_KEY", WELL_KNOWN_KEY)
        .env("INPUT_CONTAINER", "bench-in")
        .env("OUTPUT_CONTAINER", "bench-out")
        .env("BATCH_ACCOUNT_URL", fake.url().as_str())
        .env("BATCH_ACCOUNT_NAME", fake_batch::ACCOUNT)
        .env("BATCH_ACCOUNT_KEY", fake_batch::KEY)
        .env("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1")
        .output()
        .expect("run the release binary");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let counts: Value = serde_json::from_str(stdout.lines().last().expect("counts")).unwrap();
    (counts, took, fake.requests().len())
}

async fn upload_all(
    container: &ContainerClient,
    items: Vec<(String, Vec<u8>, BlobHttpHeaders)>,
) -> Vec<String> {
    futures_util::stream::iter(items.into_iter().map(|(name, body, headers)| {
        let container = container.clone();
        async move {
            container
                .upload_bytes(&name, body, &headers)
                .await
                .unwrap()
                .etag
                .unwrap()
        }
    }))
    .buffered(UPLOADS_IN_FLIGHT)
    .collect()
    .await
}

#[tokio::main]
async fn main() {
    let blobs = env_number("BENCH_BLOBS", 10_000);
    let missing_percent = env_number("BENCH_MISSING_PERCENT", 1);
    let account = azurite::azurite().account();
    let input = account.container("bench-in").unwrap();
    let output = account.container("bench-out").unwrap();
    input.create_if_missing().await.unwrap();
    output.create_if_missing().await.unwrap();
    let fake = FakeBatch::start(FakeBatchConfig::default().with_job("wordcount")).await;

    let started = Instant::now();
    let etags = upload_all(
        &input,
        (0..blobs)
            .map(|i| {
                (
                    name(i),
                    format!("words of {i}").into_bytes(),
                    BlobHttpHeaders::default(),
                )
            })
            .collect(),
    )
    .await;
    let results = (0..blobs)
        .map(|i| {
            let etag = &etags[i as usize];
            let mut headers = BlobHttpHeaders::content_type("application/json");
            headers.metadata.insert("source_etag".into(), etag.clone());
            headers.metadata.insert(
                "task_id".into(),
                task_id(WELL_KNOWN_ACCOUNT, "bench-in", &name(i), etag),
            );
            (
                format!("{}.wordcount.json", name(i)),
                br#"{"words":3}"#.to_vec(),
                headers,
            )
        })
        .collect();
    upload_all(&output, results).await;
    eprintln!(
        "setup: {blobs} blobs and their results uploaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    println!("| run | blobs | submitted | Batch requests | requests per 100 blobs | time |");
    println!("|---|---|---|---|---|---|");
    let row = |label: &str, counts: &Value, took: Duration, requests: usize| {
        println!(
            "| {label} | {} | {} | {requests} | {:.2} | {:.2} s |",
            counts["listed"],
            counts["submitted"],
            requests as f64 * 100.0 / blobs as f64,
            took.as_secs_f64()
        );
    };

    let (counts, took, requests) = reconcile(&fake, &[]);
    assert_eq!(counts["submitted"], 0, "{counts}");
    row("all results current", &counts, took, requests);

    // Some results missing: exactly those are submitted.
    let missing: Vec<u64> = (0..blobs)
        .filter(|i| i % (100 / missing_percent.max(1)) == 7)
        .collect();
    for i in &missing {
        output
            .delete(&format!("{}.wordcount.json", name(*i)))
            .await
            .unwrap();
    }
    let (counts, took, requests) = reconcile(&fake, &[]);
    let mut expected: Vec<String> = missing
        .iter()
        .map(|&i| task_id(WELL_KNOWN_ACCOUNT, "bench-in", &name(i), &etags[i as usize]))
        .collect();
    expected.sort();
    assert_eq!(counts["submitted"], missing.len() as u64, "{counts}");
    assert_eq!(
        fake.task_ids("wordcount"),
        expected,
        "exactly the missing ones"
    );
    row(
        &format!("{} results missing", missing.len()),
        &counts,
        took,
        requests,
    );

    // Right after: their tasks exist, nothing new is submitted.
    let (counts, took, requests) = reconcile(&fake, &[]);
    assert_eq!(counts["submitted"], 0, "{counts}");
    row("again at once (tasks exist)", &counts, took, requests);

    // A windowed run, as the timer makes: reads the candidates' results one by one.
    let (counts, took, requests) = reconcile(&fake, &["--since", "PT1H"]);
    row("--since PT1H (property reads)", &counts, took, requests);
}
