//! Runs full flows at TRACE with known secrets and searches everything logged for them: account
//! keys, SAS signatures, Shared Key signatures, bearer tokens and the webhook key must never
//! appear.
//!
//! Its own test binary: it owns the process-wide subscriber, which every test here shares (each
//! looks for its own secrets in everything captured).

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use blob2batch::account_key::AccountKey;
use blob2batch::batch::{BatchClient, BatchClientOptions, BatchCredential, BatchTaskRunner};
use blob2batch::context::Context;
use blob2batch::runner::{Accepted, JobRef, Submission, TaskRunner};
use blob2batch::startup::Application;
use blob2batch::task_spec::{IdentityReference, ResourceFile, TaskSpec};
use blob2batch::telemetry::LogFormat;
use serde_json::{Value, json};
use support::events::BlobEvent;
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

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Everything any thread logs from now on, at TRACE, as `serve` formats it (JSON lines).
fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            blob2batch::telemetry::init_with(LogFormat::Json, "trace", move || writer.clone());
            capture
        })
        .clone()
}

fn event(id: &str, name: &str) -> Value {
    BlobEvent::new(name).id(id).etag("0x1").json()
}

#[tokio::test]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let capture = capture();

    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    for _ in 0..2 {
        fake.push_response(CannedResponse::error(503, "ServerBusy", "busy"));
    }
    let mut pairs = handler_env(fake.url().as_str());
    pairs.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0".into()));
    pairs.push(("WEBHOOK_KEY", WEBHOOK_KEY.into()));
    let settings = from_pairs(&pairs);
    tracing::debug!(?settings, "settings");
    let context = Context::for_serve(settings).await.unwrap();
    let app = Application::build(Arc::new(context)).await.unwrap();
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

    let logs = capture.text();
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

/// A token credential that hands out one fixed token. `Debug` is derived on purpose, token
/// included: if the client ever printed its credential, this test would catch it.
#[derive(Debug)]
struct StaticToken(&'static str);

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0,
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn batch_client(fake: &FakeBatch, credential: BatchCredential) -> BatchClient {
    let mut options = BatchClientOptions::new(fake.url(), credential);
    options.retry.initial_delay = Duration::from_millis(20);
    options.retry.max_delay = Duration::from_millis(200);
    // The bearer path runs over plain http to the loopback fake only with this explicit option.
    options.danger_allow_token_over_http_on_loopback = true;
    BatchClient::new(options).unwrap()
}

fn task(id: &str) -> TaskSpec {
    let mut task = TaskSpec::new(id, "/wordcount input/data");
    task.resource_files.push(ResourceFile::blob(
        "https://acct.blob.core.windows.net/input/a.txt".into(),
        "input/data",
        Some(IdentityReference {
            resource_id: "/subscriptions/s/uami".into(),
        }),
    ));
    task
}

#[tokio::test]
async fn no_key_signature_or_token_of_the_batch_client_reaches_the_logs() {
    let logs = capture();
    const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-bearer-token.c2ln";

    // Shared Key: retries, job creation, a collection with a retried item, a duplicate, a
    // permanent error and a read.
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let key = AccountKey::from_base64(fake_batch::KEY).unwrap();
    let client = batch_client(&fake, BatchCredential::shared_key(fake_batch::ACCOUNT, key));
    let runner = BatchTaskRunner::new(client.clone());
    fake.push_response(CannedResponse::status(503));
    fake.push_response(
        CannedResponse::error(429, "TooManyRequests", "Slow down.").header("retry-after-ms", "10"),
    );
    runner
        .submit(&[Submission::task(
            &JobRef::new("wordcount", "pool"),
            task("wc-1"),
        )])
        .await;
    fake.fail_task_in_collection("wc-3", 1);
    runner
        .submit(&[
            Submission::task(&JobRef::new("wordcount", "pool"), task("wc-1")),
            Submission::task(&JobRef::new("wordcount", "pool"), task("wc-2")),
            Submission::task(&JobRef::new("wordcount", "pool"), task("wc-3")),
            Submission::task(&JobRef::new("wordcount", "pool"), task("not valid!")),
        ])
        .await;
    client.get_task("wordcount", "wc-2").await.unwrap();

    // Bearer.
    let bearer_fake = FakeBatch::start(FakeBatchConfig {
        key: None,
        bearer_token: Some(TOKEN.into()),
        ..FakeBatchConfig::default()
    })
    .await;
    bearer_fake.push_response(CannedResponse::status(502));
    let bearer = batch_client(
        &bearer_fake,
        BatchCredential::Token(Arc::new(StaticToken(TOKEN))),
    );
    let results = BatchTaskRunner::new(bearer)
        .submit(&[Submission::task(
            &JobRef::new("wordcount", "pool"),
            task("wc-1"),
        )])
        .await;
    assert_eq!(results, vec![Ok(Accepted::Submitted)]);

    let signatures: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(signatures.len() >= 8, "{}", signatures.len());
    assert!(fake.requests().iter().all(|r| r.authorized));

    let text = logs.text();
    assert!(text.contains("Batch HTTP call"), "nothing was captured");
    assert!(text.contains("retrying Batch call"));
    assert!(
        !text.contains(fake_batch::KEY),
        "the account key was logged"
    );
    for authorization in &signatures {
        let signature = authorization.rsplit(':').next().unwrap();
        assert!(!text.contains(signature), "a signature was logged");
    }
    assert!(!text.contains("SharedKey fakebatch:"));
    assert!(!text.contains(TOKEN), "the bearer token was logged");
    assert!(!text.contains("secret-bearer-token"));
}
