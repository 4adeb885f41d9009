//! The operations commands against the local pipeline: `reconcile` records tasks for the work
//! directory `dev` executes, `status` reads its records, `redrive` hands it dead letters; the
//! real `blob2batch` and `wordcount` binaries, a real Azurite.

use std::time::{Duration, Instant};

use crate::support::dev::{Dev, run_cli};
use crate::support::events::BlobEvent;
use crate::support::storage::fresh_container;
use blob2batch::storage::BlobHttpHeaders;
use serde_json::{Value, json};

fn env(work: &std::path::Path) -> Vec<(String, String)> {
    let mut env = crate::support::azurite::azurite().env();
    env.extend([
        ("RUNNER".to_string(), "local".to_string()),
        ("LOCAL_WORK_DIR".into(), work.display().to_string()),
        ("INPUT_CONTAINER".into(), "local-in".into()),
        ("OUTPUT_CONTAINER".into(), "local-out".into()),
        ("DEADLETTER_CONTAINER".into(), "local-dead".into()),
    ]);
    env
}

async fn cli(env: &[(String, String)], args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let run = run_cli(env, args).await;
    (run.code, run.json(), run.stderr)
}

/// Waits until `status` says every listed blob succeeded with a current result.
async fn until_all_succeeded(env: &[(String, String)], count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, rows, stderr) = cli(env, &["status", "--json"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        if rows.len() == count
            && rows
                .iter()
                .all(|r| r["state"] == "succeeded" && r["outputCurrent"] == true)
        {
            return rows;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_commands_work_against_devs_local_runner() {
    let work = tempfile::tempdir().unwrap();
    let env = env(work.path());
    let input = fresh_container("local-in").await;
    fresh_container("local-out").await;
    let dead = fresh_container("local-dead").await;
    for (name, text) in [
        ("a.txt", "one two"),
        ("b.txt", "three"),
        ("c.txt", "four five six"),
    ] {
        input
            .upload_bytes(name, text.as_bytes().to_vec(), &BlobHttpHeaders::default())
            .await
            .unwrap();
    }

    // Uploaded while no pipeline ran: no event will come. reconcile records their tasks.
    let (code, lines, stderr) = cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        lines.last().unwrap(),
        &json!({"listed": 3, "submitted": 3, "duplicate": 0, "ignored": 0, "failed": 0})
    );
    let (_, rows, _) = cli(&env, &["status", "--json"]).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["state"] == "active"), "{rows:?}");

    // dev runs what was recorded, and its feed's events for the same versions are duplicates.
    let dev = Dev::start(&env, &[], work.path());
    let rows = until_all_succeeded(&env, 3).await;
    let a = rows.iter().find(|r| r["blob"] == "a.txt").unwrap();
    assert_eq!(a["exitCode"], 0);
    assert_eq!(a["output"], "a.txt.wordcount.json");
    for name in ["a.txt", "b.txt", "c.txt"] {
        let received = dev.wait_for_line(Duration::from_secs(10), |l| {
            l.starts_with("received") && l.contains(name)
        });
        assert!(received.contains("[duplicate]"), "{received}");
    }
    let (_, lines, _) = cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(lines.last().unwrap()["submitted"], 0);

    // A dead-lettered event for a blob dev has not seen yet is redriven; dev runs it.
    let etag = input
        .upload_bytes("d.txt", b"seven".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap()
        .etag
        .unwrap();
    let url = crate::support::azurite::azurite().url.clone();
    dead.upload_bytes(
        "SUB/2026/3/14/9/0001.json",
        json!([BlobEvent::new("d.txt")
            .id("dl-1")
            .container("local-in")
            .etag(&etag)
            .account_url(&url)
            .with("deadLetterReason", json!("MaxDeliveryAttemptsExceeded"))
            .with("deliveryAttempts", json!(30))
            .json()])
        .to_string()
        .into_bytes(),
        &BlobHttpHeaders::default(),
    )
    .await
    .unwrap();
    let (code, lines, stderr) = cli(&env, &["redrive", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let counts = lines.last().unwrap();
    assert_eq!(
        counts["submitted"].as_u64().unwrap() + counts["duplicate"].as_u64().unwrap(),
        1,
        "{counts}"
    );
    until_all_succeeded(&env, 4).await;
    assert!(
        dead.properties("redriven/SUB/2026/3/14/9/0001.json")
            .await
            .unwrap()
            .is_some()
    );
    // One task per blob version, whoever submitted it.
    let tasks = std::fs::read_dir(work.path().join("tasks"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("result.json").is_file())
        .count();
    assert_eq!(tasks, 4, "{}", dev.output().join("\n"));
    assert!(dev.stop().success());
}
