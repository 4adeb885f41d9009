//! End to end: `blob2batch dev` starts and stops what it needs, and a restart does not run a
//! blob version twice.

mod support;

use std::time::{Duration, Instant};

use blob2batch::storage::azurite::{self, WELL_KNOWN_KEY};
use blob2batch::storage::{BlobHttpHeaders, StorageAccount};
use support::dev::Dev;

async fn wait_result(account: &StorageAccount, container: &str, blob: &str) -> serde_json::Value {
    let out = account.container(container).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = out
            .read_if_exists(&format!("{blob}.wordcount.json"))
            .await
            .unwrap()
        {
            return serde_json::from_slice(&body).unwrap();
        }
        assert!(Instant::now() < deadline, "no result for {blob}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_restart_runs_nothing_twice_and_stop_prints_a_summary() {
    let azurite = support::azurite::azurite();
    let work = tempfile::tempdir().unwrap();
    let mut env = azurite.env();
    env.push(("INPUT_CONTAINER".into(), "life-in".into()));
    env.push(("OUTPUT_CONTAINER".into(), "life-out".into()));
    let account = azurite.account();

    let dev = Dev::start(&env, &[], work.path());
    account
        .container("life-in")
        .unwrap()
        .upload_bytes("a.txt", b"a b c".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap();
    wait_result(&account, "life-out", "a.txt").await;
    dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("done") && l.contains("a.txt")
    });
    let status = dev.stop();
    assert!(status.success(), "{status}");
    let output = dev.output();
    assert!(
        output
            .iter()
            .any(|l| l == "summary: 1 file(s) seen, 1 done, 0 failed"),
        "{}",
        output.join("\n")
    );
    let etag_before = result_etag(&account, "a.txt").await;

    // Same work dir: the new feed delivers a.txt again; the runner knows its task id.
    let dev = Dev::start(&env, &[], work.path());
    dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("received") && l.contains("a.txt")
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(dev.task_ids_for("a.txt").len(), 1);
    assert!(
        !dev.output().iter().any(|l| l.starts_with("running")),
        "{}",
        dev.output().join("\n")
    );
    assert_eq!(result_etag(&account, "a.txt").await, etag_before);
    assert!(dev.stop().success());
}

async fn result_etag(account: &StorageAccount, blob: &str) -> String {
    let name = format!("{blob}.wordcount.json");
    account
        .container("life-out")
        .unwrap()
        .list(Some(&name))
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap()
        .etag
}

#[tokio::test]
async fn dev_starts_azurite_when_none_answers_and_stops_it() {
    // Make sure Azurite is installed (a clear failure otherwise) before asking dev to start it.
    support::azurite::azurite();
    let port = azurite::free_port("127.0.0.1").unwrap();
    let url = azurite::blob_url("127.0.0.1", port);
    let work = tempfile::tempdir().unwrap();
    let env = vec![
        ("STORAGE_ACCOUNT_URL".to_string(), url.clone()),
        (
            "STORAGE_ACCOUNT_KEY".to_string(),
            WELL_KNOWN_KEY.to_string(),
        ),
    ];
    let dev = Dev::start(&env, &[], work.path());
    let ready = dev.output().join("\n");
    assert!(ready.contains("Azurite started, in memory"), "{ready}");
    let account = StorageAccount::new(&url, azurite::well_known_key());
    account
        .container("input")
        .unwrap()
        .upload_bytes("x.txt", b"x y".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap();
    let doc = wait_result(&account, "output", "x.txt").await;
    assert_eq!(doc["words"], 2);
    assert!(dev.stop().success());
    assert!(
        !azurite::is_reachable(&url).await,
        "Azurite still answers after dev stopped"
    );
}
