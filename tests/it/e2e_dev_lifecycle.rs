//! End to end: `blob2batch dev` starts and stops what it needs, and a restart does not run a
//! blob version twice.

use std::time::{Duration, Instant};

use crate::support::dev::Dev;
use blob2batch::storage::azurite::{self, WELL_KNOWN_KEY};
use blob2batch::storage::{BlobHttpHeaders, StorageAccount};

async fn wait_result(account: &StorageAccount, container: &str, blob: &str) -> serde_json::Value {
    let out = account.container(container).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) =
            crate::support::storage::read_if_exists(&out, &format!("{blob}.wordcount.json"))
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
    let azurite = crate::support::azurite::azurite();
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
    let received = dev.wait_for_line(Duration::from_secs(10), |l| {
        l.starts_with("received") && l.contains("a.txt")
    });
    assert!(received.contains("[duplicate]"), "{received}");
    tokio::time::sleep(Duration::from_secs(1)).await;
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

/// `dev` pointed at a free port where nothing answers, so that it starts Azurite itself there.
/// Returns it with that storage URL and port.
fn dev_with_its_own_azurite(work_dir: &std::path::Path) -> (Dev, String, u16) {
    // Make sure Azurite is installed (a clear failure otherwise) before asking dev to start it.
    crate::support::azurite::azurite();
    let port = azurite::free_port("127.0.0.1").unwrap();
    let url = azurite::blob_url("127.0.0.1", port);
    let env = vec![
        ("STORAGE_ACCOUNT_URL".to_string(), url.clone()),
        (
            "STORAGE_ACCOUNT_KEY".to_string(),
            WELL_KNOWN_KEY.to_string(),
        ),
    ];
    (Dev::start(&env, &[], work_dir), url, port)
}

#[tokio::test]
async fn dev_starts_azurite_when_none_answers_and_stops_it() {
    let work = tempfile::tempdir().unwrap();
    let (dev, url, _) = dev_with_its_own_azurite(work.path());
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
        !azurite::is_reachable(&url).await.unwrap(),
        "Azurite still answers after dev stopped"
    );
}

#[tokio::test]
async fn azurite_started_by_dev_stops_when_dev_is_killed() {
    let work = tempfile::tempdir().unwrap();
    let (dev, _, port) = dev_with_its_own_azurite(work.path());
    let listening = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(listening());
    dev.kill_hard();
    // Only connections, no HTTP requests: an orphaned Azurite dies on its first request anyway
    // (logging it to the closed pipe), and it must not linger until then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while listening() {
        assert!(
            std::time::Instant::now() < deadline,
            "Azurite still listens 15 s after dev was killed with SIGKILL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// With `--func-host`, events go to the Functions host's Event Grid webhook; a 503 is retried.
#[tokio::test]
async fn func_host_deliveries_are_event_grid_notifications_retried_until_accepted() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    let azurite = crate::support::azurite::azurite();
    let received: Arc<Mutex<Vec<(HeaderMap, String, String)>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/runtime/webhooks/eventgrid",
            axum::routing::post(
                move |query: axum::extract::RawQuery, headers: HeaderMap, body: String| {
                    let received = received.clone();
                    async move {
                        let mut all = received.lock().unwrap();
                        all.push((headers, query.0.unwrap_or_default(), body));
                        // The first delivery fails, as a busy host would.
                        if all.len() == 1 {
                            StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            StatusCode::ACCEPTED
                        }
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let work = tempfile::tempdir().unwrap();
    let mut env = azurite.env();
    env.push(("INPUT_CONTAINER".into(), "func-in".into()));
    env.push(("OUTPUT_CONTAINER".into(), "func-out".into()));
    let dev = Dev::start(&env, &["--func-host", &host_url], work.path());
    let etag = azurite
        .account()
        .container("func-in")
        .unwrap()
        .upload_bytes("f g.txt", b"x".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap()
        .etag
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "{}", dev.output().join("\n"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dev.stop().success());
    let all = received.lock().unwrap().clone();
    let (headers, query, body) = &all[1];
    assert_eq!(query, "functionName=BlobCreated");
    assert_eq!(headers["aeg-event-type"], "Notification");
    let events: serde_json::Value = serde_json::from_str(body).unwrap();
    let event = &events.as_array().expect("an array of events")[0];
    assert_eq!(event["eventType"], "Microsoft.Storage.BlobCreated");
    assert_eq!(
        event["subject"],
        "/blobServices/default/containers/func-in/blobs/f g.txt"
    );
    assert_eq!(event["data"]["eTag"], etag);
    assert_eq!(
        event["data"]["url"],
        format!("{}/func-in/f%20g.txt", azurite.url)
    );
    // The retry carries the same event id, like an Event Grid redelivery.
    let first: serde_json::Value = serde_json::from_str(&all[0].2).unwrap();
    assert_eq!(first[0]["id"], event["id"]);
    assert!(
        dev.output()
            .iter()
            .any(|l| l.starts_with("retrying") && l.contains("503"))
    );
}
