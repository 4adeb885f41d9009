//! Runs full flows at TRACE with known secrets and searches everything logged for them: account
//! keys, SAS signatures, Shared Key signatures and the webhook key must never appear.
//!
//! Its own test binary: it owns the process-wide subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use blob2batch::startup::{Application, runner_from_settings};
use serde_json::{Value, json};
use support::fake_batch::{self, CannedResponse, FakeBatch, FakeBatchConfig};
use support::settings::{STORAGE_KEY, from_pairs, handler_env};

const WEBHOOK_KEY: &str = "webhook-secret-4711";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn event(id: &str, name: &str) -> Value {
    json!({
        "id": id, "topic": "/t", "eventType": "Microsoft.Storage.BlobCreated",
        "subject": format!("/blobServices/default/containers/input/blobs/{name}"),
        "eventTime": "2026-03-14T09:26:53Z", "dataVersion": "", "metadataVersion": "1",
        "data": {"api": "PutBlob", "eTag": "0x1", "url": format!("https://acct.blob.core.windows.net/input/{name}")}
    })
}

#[tokio::test]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let capture = Capture::default();
    let writer = capture.clone();
    // SAFETY: set before any other thread reads the environment in this test binary.
    unsafe { std::env::set_var("RUST_LOG", "trace") };
    blob2batch::telemetry::init_with(true, move || writer.clone());

    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    for _ in 0..2 {
        fake.push_response(CannedResponse::error(503, "ServerBusy", "busy"));
    }
    let mut pairs = handler_env(fake.url().as_str());
    pairs.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0".into()));
    pairs.push(("WEBHOOK_KEY", WEBHOOK_KEY.into()));
    let settings = from_pairs(&pairs);
    tracing::debug!(?settings, "settings");
    let runner = runner_from_settings(&settings).unwrap();
    let app = Application::build(settings, runner).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    // Host invocation (retried 503s, job created on first use), a batched webhook delivery,
    // a redelivery, a refused key, and a permanent error.
    let invocation = json!({"Data": {"event": event("e-1", "a.txt").to_string()}, "Metadata": {}});
    let r = client
        .post(format!("{base}/BlobCreated"))
        .json(&invocation)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let batch = json!([event("e-2", "b.txt"), event("e-3", "c.txt")]);
    let r = client
        .post(format!("{base}/api/events?code={WEBHOOK_KEY}"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/BlobCreated"))
        .json(&invocation)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/api/events?code=wrong"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    fake.push_response(CannedResponse::error(403, "AuthenticationFailed", "no"));
    let r = client
        .post(format!("{base}/BlobCreated"))
        .json(&json!({"Data": {"event": event("e-4", "d.txt")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);

    // What must not leak: every signature the fake saw and every SAS signature sent.
    let mut secrets: Vec<String> = vec![
        STORAGE_KEY.into(),
        fake_batch::KEY.into(),
        WEBHOOK_KEY.into(),
    ];
    for request in fake.requests() {
        if let Some(auth) = request.header("authorization") {
            secrets.push(auth.rsplit(':').next().unwrap().to_owned());
        }
        let body = String::from_utf8_lossy(&request.body_bytes).into_owned();
        for part in body.split(['?', '&', '"']) {
            if let Some(sig) = part.strip_prefix("sig=") {
                secrets.push(sig.to_owned());
                secrets.push(
                    percent_encoding::percent_decode_str(sig)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        }
    }
    assert!(
        secrets.len() > 10,
        "the flows produced signatures to look for"
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("event handled"), "logging works at all");
    assert!(logs.contains("\"level\":\"TRACE\""), "TRACE was captured");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the logs: {secret}"
        );
    }
    assert!(!logs.contains("sig="), "no SAS query string in the logs");
}
