//! Split blobs through the operations commands, against Azurite and the fake Batch service:
//! `reconcile` submits a large blob as a split job, `status` shows it as one row covering its
//! parts (failed with the failing part's logs), and `reconcile --retry-failed` removes a failed
//! task or split job and submits it again under the same ids.

use crate::support::dev::run_cli;
use crate::support::fake_batch::{self, FakeBatch, FakeBatchConfig};
use crate::support::storage::fresh_container;
use blob2batch::plan::task_id;
use blob2batch::storage::BlobHttpHeaders;
use blob2batch::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};
use serde_json::{Value, json};

fn env(batch_url: &str, name: &str) -> Vec<(String, String)> {
    let azurite = crate::support::azurite::azurite();
    [
        ("STORAGE_ACCOUNT_URL", azurite.url.clone()),
        ("STORAGE_ACCOUNT_KEY", WELL_KNOWN_KEY.to_string()),
        ("INPUT_CONTAINER", format!("{name}-in")),
        ("OUTPUT_CONTAINER", format!("{name}-out")),
        ("STAGING_CONTAINER", format!("{name}-staging")),
        ("BATCH_ACCOUNT_URL", batch_url.to_string()),
        ("BATCH_ACCOUNT_NAME", fake_batch::ACCOUNT.to_string()),
        ("BATCH_ACCOUNT_KEY", fake_batch::KEY.to_string()),
        ("BATCH_RETRY_BUDGET", "PT5S".to_string()),
        (
            "WORDCOUNT_IMAGE",
            "example.azurecr.io/wordcount:1".to_string(),
        ),
        ("SPLIT_THRESHOLD", "2KiB".to_string()),
        ("SPLIT_PART_SIZE", "1KiB".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn failed() -> Value {
    json!({"state": "completed",
           "executionInfo": {"exitCode": 2, "result": "failure", "retryCount": 2,
               "failureInfo": {"category": "usererror", "code": "FailureExitCode",
                               "message": "The task process exited with an unexpected exit code"}}})
}

fn rows(stdout: &str) -> std::collections::HashMap<String, Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|row| (row["blob"].as_str().unwrap().to_string(), row))
        .collect()
}

#[tokio::test]
async fn a_split_blob_is_one_row_and_failed_versions_are_retried_under_the_same_ids() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let env = env(fake.url().as_str(), "splitops");
    let input = fresh_container("splitops-in").await;
    let out = fresh_container("splitops-out").await;
    let text = |bytes: usize| "lorem ipsum\n".repeat(bytes / 12).into_bytes();
    let put = |name: &'static str, body: Vec<u8>| {
        let input = input.clone();
        async move {
            input
                .upload_bytes(name, body, &BlobHttpHeaders::content_type("text/plain"))
                .await
                .unwrap()
                .etag
                .unwrap()
        }
    };
    let small = put("small.txt", text(600)).await;
    put("big.txt", text(3000)).await;

    let run = run_cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts()["submitted"], 2, "{}", run.stdout);
    let small_task = task_id(WELL_KNOWN_ACCOUNT, "splitops-in", "small.txt", &small);
    let lines = run.json();
    let big_job = lines.iter().find(|l| l["blob"] == "big.txt").unwrap()["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(big_job.starts_with("wcs-"), "{big_job}");
    // 3,000 bytes in parts of 1 KiB: three parts and the merge.
    assert_eq!(fake.task_ids(&big_job), ["0", "1", "2", "merge"]);
    assert_eq!(fake.job_state(&big_job).unwrap().1, "terminatejob");

    fake.set_task_fields(&big_job, "0", json!({"state": "running"}));
    let status = run_cli(&env, &["status", "--json"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let big = &rows(&status.stdout)["big.txt"];
    assert_eq!(big["taskId"], big_job.as_str());
    assert_eq!(big["state"], "running");
    assert_eq!(
        big["parts"],
        json!({"total": 3, "active": 2, "running": 1, "succeeded": 0, "failed": 0})
    );
    assert_eq!(rows(&status.stdout)["small.txt"]["parts"], Value::Null);
    let table = run_cli(&env, &["status", "big.txt"]).await;
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("running 0/3 parts"),
        "{}",
        table.stdout
    );

    // Part 1 fails after its retries: the service ends the job. The small task fails too.
    fake.set_task_fields(&big_job, "1", failed());
    fake.complete_job(&big_job, "TaskFailed");
    fake.set_task_fields("wordcount", &small_task, failed());
    let logs = format!("big.txt.wordcount.logs/{big_job}/1/stderr.txt");
    out.upload_bytes(&logs, b"boom".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap();
    let status = run_cli(&env, &["status", "--json"]).await;
    let rows = rows(&status.stdout);
    let big = &rows["big.txt"];
    assert_eq!(big["state"], "failed");
    assert_eq!(big["exitCode"], 2);
    assert_eq!(big["failure"]["code"], "FailureExitCode");
    assert_eq!(big["logs"], format!("big.txt.wordcount.logs/{big_job}/1/"));
    assert_eq!(big["parts"]["failed"], 1);
    assert_eq!(rows["small.txt"]["state"], "failed");

    // A plain reconcile leaves failures alone; a dry run of the retry removes nothing.
    let plain = run_cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(plain.counts()["duplicate"], 2, "{}", plain.stdout);
    let dry = run_cli(
        &env,
        &["reconcile", "--retry-failed", "--dry-run", "--json"],
    )
    .await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert_eq!(dry.counts()["retried"], 2, "{}", dry.stdout);
    assert_eq!(fake.job_state(&big_job).unwrap().0, "completed");
    assert_eq!(fake.task_count(&small_task).created, 1);

    let retry = run_cli(&env, &["reconcile", "--retry-failed", "--json"]).await;
    assert_eq!(retry.code, Some(0), "{}", retry.stderr);
    assert_eq!(
        retry.counts(),
        json!({"listed": 2, "submitted": 0, "duplicate": 0, "ignored": 0, "failed": 0,
               "retried": 2})
    );
    assert!(
        retry.json()[..2].iter().all(|l| l["action"] == "retried"),
        "{}",
        retry.stdout
    );
    // The same ids, created a second time: a redelivery of either event is still a duplicate.
    assert_eq!(fake.task_count(&small_task).created, 2);
    assert_eq!(fake.job_counts()[&big_job.to_ascii_lowercase()].created, 2);
    assert_eq!(
        fake.job_state(&big_job),
        Some(("active".into(), "terminatejob".into()))
    );
    assert_eq!(fake.task_ids(&big_job), ["0", "1", "2", "merge"]);
    let again = run_cli(&env, &["reconcile", "--retry-failed", "--json"]).await;
    assert_eq!(again.counts()["duplicate"], 2, "{}", again.stdout);
}
