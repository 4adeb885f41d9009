//! End to end: the real `blob2batch dev` (handler + local runner + feed) with the real `wordcount`,
//! against a dedicated Azurite. Files are uploaded through the storage API; the assertions read
//! the result documents in the output container.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::dev::Dev;
use blob2batch::commands::dev::feed::{blob_created_event, invocation_body};
use blob2batch::plan::task_id;
use blob2batch::storage::{BlobEntry, BlobHttpHeaders, ContainerClient};
use serde_json::{Value, json};

struct Shared {
    dev: Dev,
    _work: tempfile::TempDir,
}

static DEV: OnceLock<Shared> = OnceLock::new();

fn dev() -> &'static Dev {
    &DEV.get_or_init(|| {
        let azurite = crate::support::azurite::azurite();
        let work = tempfile::tempdir().unwrap();
        let mut env = azurite.env();
        env.push(("INPUT_CONTAINER".into(), "e2e-in".into()));
        env.push(("OUTPUT_CONTAINER".into(), "e2e-out".into()));
        let dev = Dev::start(&env, &[], work.path());
        Shared { dev, _work: work }
    })
    .dev
}

fn container(name: &str) -> ContainerClient {
    crate::support::azurite::azurite()
        .account()
        .container(name)
        .unwrap()
}

async fn put(blob: &str, content: &[u8]) -> String {
    let uploaded = container("e2e-in")
        .upload_bytes(
            blob,
            content.to_vec(),
            &BlobHttpHeaders::content_type("text/plain"),
        )
        .await
        .unwrap_or_else(|e| panic!("upload {blob:?}: {e}"));
    uploaded.etag.unwrap()
}

/// Waits for `{blob}.wordcount.json`, optionally until its `bytes` equals `bytes`.
async fn result(blob: &str, bytes: Option<u64>, timeout: Duration) -> Value {
    let out = container("e2e-out");
    let name = format!("{blob}.wordcount.json");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(body) = crate::support::storage::read_if_exists(&out, &name)
            .await
            .unwrap()
        {
            let doc: Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: not JSON ({e})"));
            if bytes.is_none_or(|b| doc["bytes"] == b) {
                return doc;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "no result {name:?} within {timeout:?}; dev output:\n{}",
                dev().output().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn exact_counts_for_awkward_names() {
    dev();
    let text = b"The quick brown fox jumps over the lazy dog.\nThe DOG sleeps; the fox doesn't.\n";
    let names = [
        "plain.txt",
        "with space.txt",
        "hash#1.txt",
        "Ünïcödé 日本語.txt",
        "nested/folder/deep/file.txt",
        "emoji 😀.txt",
        "percent%20.txt",
    ];
    for name in names {
        put(name, text).await;
    }
    for name in names {
        let doc = result(name, None, Duration::from_secs(60)).await;
        assert_eq!(doc["source"], name, "{doc}");
        assert_eq!(doc["mode"], "unicode");
        assert_eq!(doc["bytes"], text.len());
        assert_eq!(doc["lines"], 2);
        assert_eq!(doc["words"], 15, "{doc}");
        assert_eq!(doc["unique_words"], 10, "{doc}");
        assert_eq!(
            doc["counts"],
            json!([
                ["the", 4],
                ["dog", 2],
                ["fox", 2],
                ["brown", 1],
                ["doesn't", 1],
                ["jumps", 1],
                ["lazy", 1],
                ["over", 1],
                ["quick", 1],
                ["sleeps", 1]
            ])
        );
    }
    let listed = container("e2e-out").list(Some("nested/")).await.unwrap();
    let entry = listed
        .iter()
        .find(|e| e.name == "nested/folder/deep/file.txt.wordcount.json")
        .expect("nested result");
    assert_eq!(entry.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_50_mb_file() {
    dev();
    let line = b"alpha beta gamma delta\n";
    let repeats = 50 * 1024 * 1024 / line.len();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    std::fs::write(&path, line.repeat(repeats)).unwrap();
    container("e2e-in")
        .upload_file(
            "big/50mb.txt",
            &path,
            &BlobHttpHeaders::content_type("text/plain"),
            None,
        )
        .await
        .unwrap();
    let doc = result("big/50mb.txt", None, Duration::from_secs(120)).await;
    assert_eq!(doc["bytes"], (line.len() * repeats) as u64);
    assert_eq!(doc["lines"], repeats as u64);
    assert_eq!(doc["words"], 4 * repeats as u64);
    assert_eq!(doc["unique_words"], 4);
    assert_eq!(doc["counts"][0], json!(["alpha", repeats]));
}

#[tokio::test]
async fn overwriting_a_blob_gives_a_new_result_from_a_new_task() {
    let dev = dev();
    put("overwrite.txt", b"one two").await;
    let first = result("overwrite.txt", Some(7), Duration::from_secs(60)).await;
    assert_eq!(first["words"], 2);
    let ids_before = dev.task_ids_for("overwrite.txt");
    assert_eq!(ids_before.len(), 1, "{ids_before:?}");
    put("overwrite.txt", b"one two three four five").await;
    let second = result("overwrite.txt", Some(23), Duration::from_secs(60)).await;
    assert_eq!(second["words"], 5);
    let ids_after = dev.task_ids_for("overwrite.txt");
    assert_eq!(ids_after.len(), 2, "{ids_after:?}");
    assert!(ids_after.contains(&ids_before[0]));
}

#[tokio::test]
async fn a_burst_of_100_small_files_all_complete() {
    dev();
    let uploads = (0..100).map(|i| async move {
        let words = (0..=i).map(|_| "w").collect::<Vec<_>>().join(" ");
        put(&format!("burst/{i:03}.txt"), words.as_bytes()).await;
    });
    futures_util::future::join_all(uploads).await;
    for i in 0..100u64 {
        let doc = result(&format!("burst/{i:03}.txt"), None, Duration::from_secs(120)).await;
        assert_eq!(doc["words"], i + 1);
        assert_eq!(doc["unique_words"], 1);
    }
}

#[tokio::test]
async fn a_failing_task_leaves_its_logs_where_documented() {
    let dev = dev();
    let blob = "broken/archive #1.gz";
    // gzip magic bytes, then garbage: the word counter exits 1 with a message on stderr.
    put(blob, b"\x1f\x8b\x08\x00not really gzip at all").await;
    let prefix = format!("{blob}.wordcount.logs/");
    let out = container("e2e-out");
    let deadline = Instant::now() + Duration::from_secs(60);
    let logs = loop {
        let logs = out.list(Some(&prefix)).await.unwrap();
        if logs.iter().any(|e| e.name.ends_with("/stderr.txt"))
            && logs.iter().any(|e| e.name.ends_with("/stdout.txt"))
        {
            break logs;
        }
        assert!(
            Instant::now() < deadline,
            "no logs; dev output:\n{}",
            dev.output().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ids = dev.task_ids_for(blob);
    assert_eq!(ids.len(), 1);
    let stderr_blob = format!("{prefix}{}/stderr.txt", ids[0]);
    assert!(logs.iter().any(|e| e.name == stderr_blob), "{logs:?}");
    assert!(
        logs.iter()
            .any(|e| e.name == format!("{prefix}{}/stdout.txt", ids[0]))
    );
    let stderr = String::from_utf8(out.read(&stderr_blob).await.unwrap()).unwrap();
    assert!(stderr.starts_with("wordcount: "), "{stderr}");
    assert!(
        crate::support::storage::read_if_exists(&out, &format!("{blob}.wordcount.json"))
            .await
            .unwrap()
            .is_none()
    );
    // The console shows the failure with the stderr tail and where the logs are.
    let line = dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("FAILED") && l.contains(blob)
    });
    assert!(line.contains(&ids[0]), "{line}");
    let output = dev.output().join("\n");
    assert!(
        output.contains(&format!("stderr| {}", stderr.lines().last().unwrap())),
        "{output}"
    );
    assert!(output.contains(&stderr_blob), "{output}");
    assert!(
        !output.contains("sig="),
        "a SAS reached the console: {output}"
    );
}

#[tokio::test]
async fn redelivered_events_run_once() {
    let dev = dev();
    let blob = "redelivered.txt";
    let etag = put(blob, b"red red delivered").await;
    // The very same invocation, ten times at once, straight to the handler (as the host retries),
    // racing the feed's own delivery of this blob version.
    let entry = BlobEntry {
        name: blob.into(),
        etag: etag.clone(),
        size: 17,
        content_type: Some("text/plain".into()),
        ..BlobEntry::default()
    };
    let account = crate::support::azurite::azurite().account();
    let event = blob_created_event(&account, "e2e-in", &entry, "redelivered-event", 1);
    let body = invocation_body(&event);
    let http = reqwest::Client::new();
    let posts = (0..10).map(|_| {
        http.post(format!("{}/BlobCreated", dev.handler_url))
            .header(
                "X-Azure-Functions-InvocationId",
                "6f8b0c3e-0000-4000-8000-000000000001",
            )
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.clone())
            .send()
    });
    let mut outcomes = Vec::new();
    for response in futures_util::future::join_all(posts).await {
        let response = response.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let answer: Value = response.json().await.unwrap();
        let event = &answer["ReturnValue"]["events"][0];
        assert_eq!(
            event["taskId"],
            task_id("devstoreaccount1", "e2e-in", blob, &etag)
        );
        outcomes.push(event["outcome"].as_str().unwrap().to_string());
    }
    let doc = result(blob, None, Duration::from_secs(60)).await;
    assert_eq!(doc["words"], 3);
    // The feed's delivery of the same version is the eleventh.
    let feed_line = dev.wait_for_line(Duration::from_secs(30), |l| {
        l.starts_with("received") && l.contains(blob)
    });
    let feed_submitted = feed_line.contains("[submitted]");
    assert!(
        feed_submitted || feed_line.contains("[duplicate]"),
        "{feed_line}"
    );
    let submitted =
        outcomes.iter().filter(|o| *o == "submitted").count() + usize::from(feed_submitted);
    let duplicates = outcomes.iter().filter(|o| *o == "duplicate").count();
    assert_eq!(
        (submitted, duplicates + usize::from(!feed_submitted)),
        (1, 10),
        "{outcomes:?} and the feed's {feed_line}"
    );
    let runs = dev
        .output()
        .iter()
        .filter(|l| l.starts_with("running") && l.contains(blob))
        .count();
    assert_eq!(runs, 1, "{}", dev.output().join("\n"));
}
