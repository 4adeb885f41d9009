//! End to end: a split blob through the real `blob2batch dev` (handler, local runner, feed) and
//! the real `wordcount`, against a dedicated Azurite, with a low split threshold: the parts read
//! their ranges themselves, stage their partial counts, and the merge writes the one result; a
//! blob whose every part fails ends its job without a merge, and runs again once `reconcile
//! --retry-failed` has removed it. `status` reads the job back.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::dev::{Dev, run_cli, wordcount_bin};
use blob2batch::plan::split_job_id;
use blob2batch::storage::{BlobHttpHeaders, ContainerClient};
use serde_json::Value;

const INPUT: &str = "split-in";
const OUTPUT: &str = "split-out";
const STAGING: &str = "split-staging";
const PART_SIZE: u64 = 16 * 1024;

struct Shared {
    dev: Dev,
    work: tempfile::TempDir,
}

static DEV: OnceLock<Shared> = OnceLock::new();

/// The pipeline's settings (also what `status` needs to plan the same jobs).
fn env(work: &Path) -> Vec<(String, String)> {
    let mut env = crate::support::azurite::azurite().env();
    env.extend([
        ("INPUT_CONTAINER".to_string(), INPUT.to_string()),
        ("OUTPUT_CONTAINER".into(), OUTPUT.into()),
        ("STAGING_CONTAINER".into(), STAGING.into()),
        ("SPLIT_THRESHOLD".into(), "64KiB".into()),
        ("SPLIT_PART_SIZE".into(), "16KiB".into()),
        ("RUNNER".into(), "local".into()),
        ("LOCAL_WORK_DIR".into(), work.display().to_string()),
    ]);
    env
}

fn shared() -> &'static Shared {
    DEV.get_or_init(|| {
        let work = tempfile::tempdir().unwrap();
        let dev = Dev::start(&env(work.path()), &[], work.path());
        Shared { dev, work }
    })
}

fn container(name: &str) -> ContainerClient {
    crate::support::azurite::azurite()
        .account()
        .container(name)
        .unwrap()
}

async fn put(blob: &str, content: &[u8]) -> String {
    container(INPUT)
        .upload_bytes(
            blob,
            content.to_vec(),
            &BlobHttpHeaders::content_type("text/plain"),
        )
        .await
        .unwrap_or_else(|e| panic!("upload {blob:?}: {e}"))
        .etag
        .unwrap()
}

/// The split job's id of version `etag` of `blob`, cut in parts of `PART_SIZE`.
fn job_id(blob: &str, etag: &str, size: usize) -> (String, u32) {
    let parts = (size as u64).div_ceil(PART_SIZE) as u32;
    let id = split_job_id(
        "devstoreaccount1",
        INPUT,
        blob,
        etag,
        (size as u64, PART_SIZE, parts),
    );
    (id, parts)
}

/// About 100 KB of CRLF text with non-ASCII words, and at each part boundary either a CR LF
/// split across it or a three-byte character straddling it.
fn awkward_text() -> Vec<u8> {
    let words = [
        "Grüße",
        "café",
        "naïve",
        "日本語",
        "über",
        "Straße",
        "ÉCOLE",
        "don't",
        "e-mail",
        "ok",
    ];
    let mut text = Vec::new();
    let mut boundary = PART_SIZE as usize;
    let mut i = 0;
    while text.len() < 100_000 {
        if text.len() + 120 >= boundary && text.len() < boundary {
            let special: &[u8] = if (boundary / PART_SIZE as usize) % 2 == 1 {
                b"\r\n"
            } else {
                "日本\r\n".as_bytes()
            };
            // The special's first byte is the boundary's last: CR | LF, or 日 cut after a byte.
            text.resize(boundary - 1, b'z');
            text.extend_from_slice(special);
            boundary += PART_SIZE as usize;
            continue;
        }
        let line = format!(
            "{} {} {}, {i}\r\n",
            words[i % words.len()],
            words[(i * 7 + 3) % words.len()],
            words[(i * 3 + 1) % words.len()]
        );
        text.extend_from_slice(line.as_bytes());
        i += 1;
    }
    text
}

/// `wordcount` run once on the whole text, as the source `blob`.
fn counted_at_once(text: &[u8], blob: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.txt");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(wordcount_bin())
        .arg(&path)
        .env("WORDCOUNT_SOURCE", blob)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

/// Waits until `what` gives something, or fails with dev's output.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {timeout:?}; dev output:\n{}",
            shared().dev.output().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `status --json` of one blob, as the only row.
async fn status(blob: &str) -> Value {
    let run = run_cli(&env(shared().work.path()), &["status", "--json", blob]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut rows = run.json();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

#[tokio::test]
async fn a_split_blob_gets_the_count_of_one_run() {
    let dev = &shared().dev;
    let blob = "awkward/crlf ü.txt";
    let text = awkward_text();
    let etag = put(blob, &text).await;
    let (job, parts) = job_id(blob, &etag, text.len());
    assert_eq!(parts, 7);
    let out = container(OUTPUT);
    let result_name = format!("{blob}.wordcount.json");
    let result = until("the result", Duration::from_secs(90), || async {
        crate::support::storage::read_if_exists(&out, &result_name)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        String::from_utf8_lossy(&result),
        String::from_utf8_lossy(&counted_at_once(&text, blob))
    );
    let properties = out.properties(&result_name).await.unwrap().unwrap();
    assert_eq!(properties.metadata["source_etag"], etag);
    assert_eq!(properties.metadata["task_id"], job);
    // The parts staged their partial counts under the job's folder.
    let staged = container(STAGING)
        .list(Some(&format!("{job}/parts/")))
        .await
        .unwrap();
    assert_eq!(staged.len(), 7, "{staged:?}");

    // The console showed each part and the merge, and the job's end.
    dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("completed ") && l.contains(&job)
    });
    let output = dev.output();
    for part in 0..parts {
        let name = format!("{INPUT}/{blob} [part {part} of {parts}] (task {part})");
        assert!(
            output
                .iter()
                .any(|l| l.starts_with(&format!("done      {name}"))),
            "part {part}: {output:#?}"
        );
    }
    assert!(
        output
            .iter()
            .any(|l| l.starts_with(&format!("done      {INPUT}/{blob} [merge] (task merge)")))
    );

    // status reads the job back as the blob's one task.
    let row = status(blob).await;
    assert_eq!(row["taskId"], job.as_str());
    assert_eq!(row["state"], "succeeded", "{row}");
    assert_eq!(row["outputCurrent"], true, "{row}");
    assert_eq!(row["parts"]["total"], 7, "{row}");
    assert_eq!(row["parts"]["succeeded"], 7, "{row}");

    // Given only the storage and the work directory, status plans as dev does, with the
    // containers and the split dev was started with, and says so.
    let mut bare = crate::support::azurite::azurite().env();
    bare.extend([
        ("RUNNER".to_string(), "local".to_string()),
        (
            "LOCAL_WORK_DIR".into(),
            shared().work.path().display().to_string(),
        ),
    ]);
    let run = run_cli(&bare, &["status", "--json", blob]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json()[0]["taskId"], job.as_str(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("with the settings of the local pipeline's dev")
            && run.stderr.contains("SPLIT_THRESHOLD=64KiB")
            && run.stderr.contains(&format!("INPUT_CONTAINER={INPUT}")),
        "{}",
        run.stderr
    );
    // put, likewise, drops files where dev looks.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "short").unwrap();
    let run = run_cli(&bare, &["put", &file.path().display().to_string()]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("-> {INPUT}/")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_split_blob_whose_parts_fail_ends_its_job_without_a_merge() {
    let dev = &shared().dev;
    let blob = "broken/really gzip.txt";
    // gzip's magic, then 80 KB: every part reads the blob's head and refuses to split gzip.
    let mut content = b"\x1f\x8b\x08\x00".to_vec();
    content.extend((0..80_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let etag = put(blob, &content).await;
    let (job, parts) = job_id(blob, &etag, content.len());
    assert_eq!(parts, 5);
    let job_dir = shared().work.path().join("jobs").join(&job);
    let completion: Value = until("the job's end", Duration::from_secs(90), || async {
        let text = std::fs::read_to_string(job_dir.join("completed.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    })
    .await;
    assert_eq!(completion["terminateReason"], "TaskFailed", "{completion}");
    let failed = completion["failedTask"].as_str().unwrap().to_string();
    // The merge never ran, and no result was written.
    let merge = job_dir.join("tasks/merge");
    assert!(merge.join("task.json").is_file());
    assert!(!merge.join("started").exists() && !merge.join("result.json").exists());
    let out = container(OUTPUT);
    let result = format!("{blob}.wordcount.json");
    assert!(
        crate::support::storage::read_if_exists(&out, &result)
            .await
            .unwrap()
            .is_none()
    );
    // The failed part's logs are in the job's logs folder, in a folder of the part's.
    let stderr_blob = format!("{blob}.wordcount.logs/{job}/{failed}/stderr.txt");
    let stderr = out.read(&stderr_blob).await.unwrap();
    assert!(
        String::from_utf8_lossy(&stderr).contains("gzip"),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("FAILED    ") && l.contains(&format!("(job {job}): task {failed} failed"))
    });

    let row = status(blob).await;
    assert_eq!(row["taskId"], job.as_str());
    assert_eq!(row["state"], "failed", "{row}");
    assert_eq!(row["failure"]["code"], "FailureExitCode", "{row}");
    assert_eq!(row["exitCode"], 1, "{row}");
    assert_eq!(
        row["logs"],
        format!("{blob}.wordcount.logs/{job}/{failed}/"),
        "{row}"
    );
    assert_eq!(row["parts"]["total"], 5, "{row}");
    assert!(row["parts"]["failed"].as_u64().unwrap() >= 1, "{row}");

    // reconcile --retry-failed, from another process, removes the failed job's records and
    // records it again under the same ids; dev takes it up and runs it again.
    let retry = run_cli(
        &env(shared().work.path()),
        &["reconcile", "--retry-failed", "--json"],
    )
    .await;
    assert_eq!(retry.code, Some(0), "{}", retry.stderr);
    let line = retry
        .json()
        .into_iter()
        .find(|l| l["blob"] == blob)
        .unwrap_or_else(|| panic!("{}", retry.stdout));
    assert_eq!(line["action"], "retried", "{line}");
    assert_eq!(line["taskId"], job.as_str());
    dev.wait_for_lines(2, Duration::from_secs(60), |l| {
        l.starts_with("FAILED    ") && l.contains(&format!("(job {job}): task "))
    });
    let row = status(blob).await;
    assert_eq!(row["state"], "failed", "{row}");
}
