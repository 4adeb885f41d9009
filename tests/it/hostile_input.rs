//! Hostile request bodies, through the router in-process: each gets a clear 4xx in its route's
//! shape (the host's invocation answer on `/BlobCreated`, `{"error"}` on `/api/events`), quickly,
//! and no Batch call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::events::BlobEvent;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use blob2batch::config::Settings;
use blob2batch::context::Context;
use blob2batch::event::MAX_EVENTS_PER_DELIVERY;
use blob2batch::http::{AppState, app, app_with_body_limit};
use blob2batch::runner::{Accepted, BoxFuture, Submission, SubmitResult, TaskRunner};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const MIB: usize = 1024 * 1024;
const DEFAULT_LIMIT: usize = 4 * MIB;

/// Counts what it is asked to submit and accepts it all.
#[derive(Default)]
struct Counter {
    submitted: AtomicUsize,
}

impl TaskRunner for Counter {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        self.submitted.fetch_add(items.len(), Ordering::SeqCst);
        let results = items.iter().map(|_| Ok(Accepted::Submitted)).collect();
        Box::pin(async move { results })
    }
}

fn app_state(extra: &[(&str, &str)]) -> (AppState, Arc<Counter>) {
    let mut pairs = vec![
        ("STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net"),
        ("BATCH_ACCOUNT_URL", "https://b.westeurope.batch.azure.com"),
        ("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1.0.0"),
        ("BATCH_NODE_IDENTITY", "/subscriptions/s/uami"),
    ];
    pairs.extend_from_slice(extra);
    let settings = Settings::from_lookup(|name| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let counter = Arc::new(Counter::default());
    let context = Context::with_runner(settings, counter.clone()).unwrap();
    let state = AppState::new(Arc::new(context));
    (state, counter)
}

struct Answer {
    status: StatusCode,
    connection: Option<String>,
    body: Value,
}

/// Sends `request`; every answer must be JSON, and must come within a generous bound.
async fn send(router: &axum::Router, request: Request<Body>) -> Answer {
    let work = async {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let connection = response
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&bytes))
        });
        Answer {
            status,
            connection,
            body,
        }
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("answered within 30 s")
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// The host's answer shape, with `ReturnValue.error` naming the problem.
fn assert_host_rejection(answer: &Answer, status: StatusCode, needle: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["Outputs"], json!({}), "{}", answer.body);
    let logs = answer.body["Logs"].as_array().expect("Logs");
    assert_eq!(logs.len(), 1, "{}", answer.body);
    assert!(logs[0].as_str().unwrap().starts_with("rejected: "));
    let error = answer.body["ReturnValue"]["error"].as_str().expect("error");
    assert!(error.contains(needle), "{needle:?} not in {error:?}");
}

fn assert_webhook_rejection(answer: &Answer, status: StatusCode, needle: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains(needle), "{needle:?} not in {error:?}");
    assert_eq!(answer.body.as_object().unwrap().len(), 1, "{}", answer.body);
}

/// An invocation whose `Data.event` is `event`, as raw JSON text.
fn invocation_text(event: &str) -> String {
    format!(r#"{{"Data": {{"event": {event}}}, "Metadata": {{}}}}"#)
}

#[tokio::test]
async fn a_body_above_the_limit_is_413_in_each_routes_shape() {
    let (state, counter) = app_state(&[]);
    let router = app(state);
    // One byte over, declared up front: refused before it is read.
    let padded = invocation_text(&format!("\"{}\"", "a".repeat(DEFAULT_LIMIT)));
    let answer = send(&router, post("/BlobCreated", padded.clone())).await;
    assert_host_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "4194304 bytes");
    assert_eq!(answer.connection.as_deref(), Some("close"));
    let answer = send(&router, post("/api/events", padded)).await;
    assert_webhook_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "4194304 bytes");
    assert_eq!(answer.connection.as_deref(), Some("close"));

    // Chunked, without a declared length: refused when it grows past the limit.
    let chunks = || {
        let chunk = Bytes::from(vec![b' '; MIB]);
        let stream =
            futures_util::stream::iter((0..5).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        Body::from_stream(stream)
    };
    let answer = send(&router, post("/BlobCreated", chunks())).await;
    assert_host_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "4194304 bytes");
    let answer = send(&router, post("/api/events", chunks())).await;
    assert_webhook_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "4194304 bytes");

    // Exactly at the limit is read (and then found not to be JSON).
    let exact = " ".repeat(DEFAULT_LIMIT - 2) + "[]";
    let answer = send(&router, post("/api/events", exact)).await;
    assert_webhook_rejection(&answer, StatusCode::BAD_REQUEST, "empty");
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_ten_megabyte_string_is_413_and_under_a_larger_limit_400() {
    let ten_mb = format!("\"{}\"", "a".repeat(10_000_000));
    let (state, counter) = app_state(&[]);
    let router = app(state.clone());
    let answer = send(&router, post("/BlobCreated", invocation_text(&ten_mb))).await;
    assert_host_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");
    let answer = send(&router, post("/api/events", ten_mb.clone())).await;
    assert_webhook_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");

    // Let it in: the string is read, found not to be an event, and answered without echoing it.
    let router = app_with_body_limit(state, 16 * MIB);
    let answer = send(&router, post("/BlobCreated", invocation_text(&ten_mb))).await;
    assert_host_rejection(&answer, StatusCode::BAD_REQUEST, "not JSON");
    assert!(answer.body.to_string().len() < 1000);
    let answer = send(&router, post("/api/events", ten_mb)).await;
    assert_webhook_rejection(&answer, StatusCode::BAD_REQUEST, "found a string");
    assert!(answer.body.to_string().len() < 1000);
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let (state, counter) = app_state(&[]);
    let router = app(state);
    let inside_a_string = b"{\"Data\": {\"event\": \"\xff\xfe\"}, \"Metadata\": {}}".to_vec();
    let bare = b"\xc3\x28{}".to_vec();
    for body in [inside_a_string, bare] {
        let answer = send(&router, post("/BlobCreated", body.clone())).await;
        assert_host_rejection(&answer, StatusCode::BAD_REQUEST, "not a custom-handler");
        let answer = send(&router, post("/api/events", body)).await;
        assert_webhook_rejection(&answer, StatusCode::BAD_REQUEST, "not JSON");
    }
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn json_nested_100000_levels_deep_is_400() {
    let (state, counter) = app_state(&[]);
    let router = app(state);
    let depth = 100_000;
    let arrays = "[".repeat(depth) + &"]".repeat(depth);
    let objects = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
    for nested in [arrays, objects] {
        // As the binding itself, and as the string the host may wrap it in.
        let answer = send(&router, post("/BlobCreated", invocation_text(&nested))).await;
        assert_host_rejection(&answer, StatusCode::BAD_REQUEST, "recursion limit");
        let quoted = Value::String(nested.clone()).to_string();
        let answer = send(&router, post("/BlobCreated", invocation_text(&quoted))).await;
        assert_host_rejection(&answer, StatusCode::BAD_REQUEST, "recursion limit");
        let answer = send(&router, post("/api/events", nested)).await;
        assert_webhook_rejection(&answer, StatusCode::BAD_REQUEST, "recursion limit");
    }
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn data_event_encoded_more_levels_than_allowed_is_400() {
    let (state, counter) = app_state(&[]);
    let router = app(state);
    let event = BlobEvent::new("a.txt").id("e-1").etag("0x1").json();
    let mut encoded = event.clone();
    let mut levels = Vec::new();
    for _ in 0..12 {
        encoded = Value::String(encoded.to_string());
        levels.push(encoded.clone());
    }
    // Three string levels are unwrapped (the host's forms); a fourth or a twelfth is refused.
    for too_deep in [&levels[3], &levels[11]] {
        let body = json!({"Data": {"event": too_deep}, "Metadata": {}}).to_string();
        let answer = send(&router, post("/BlobCreated", body)).await;
        assert_host_rejection(&answer, StatusCode::BAD_REQUEST, "still a string after 3");
    }
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
    let body = json!({"Data": {"event": levels[2]}, "Metadata": {}}).to_string();
    let answer = send(&router, post("/BlobCreated", body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 1);
}

fn cloud_event(i: usize, account: &str) -> Value {
    BlobEvent::new(&format!("f{i}.txt"))
        .id(&format!("c-{i}"))
        .etag("0x1")
        .account_url(&format!("https://{account}.blob.core.windows.net"))
        .cloud_event()
        .json()
}

fn cloud_batch(events: Vec<Value>) -> Request<Body> {
    Request::post("/api/events")
        .header(
            "content-type",
            "application/cloudevents-batch+json; charset=utf-8",
        )
        .body(Body::from(Value::Array(events).to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_batch_of_5000_foreign_events_is_400_without_a_batch_call_and_5001_are_413() {
    let (state, counter) = app_state(&[]);
    let router = app(state);
    let foreign: Vec<Value> = (0..MAX_EVENTS_PER_DELIVERY)
        .map(|i| cloud_event(i, "attacker"))
        .collect();
    let answer = send(&router, cloud_batch(foreign.clone())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    let events = answer.body["events"].as_array().unwrap();
    assert_eq!(events.len(), MAX_EVENTS_PER_DELIVERY);
    assert!(events.iter().all(|e| e["outcome"] == "rejected"));
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);

    // One more than Event Grid ever sends: refused as a whole, before any event is looked at.
    let mut too_many = foreign;
    too_many.push(cloud_event(MAX_EVENTS_PER_DELIVERY, "acct"));
    let answer = send(&router, cloud_batch(too_many.clone())).await;
    assert_webhook_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "at most 5000");
    let binding = Value::Array(too_many).to_string();
    let answer = send(&router, post("/BlobCreated", invocation_text(&binding))).await;
    assert_host_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "at most 5000");
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_webhook_key_is_checked_before_the_body_is_read() {
    let (state, _) = app_state(&[("WEBHOOK_KEY", "s3cret")]);
    let router = app(state);
    // Over the limit, but without the key: 401, not 413. A query that does not parse carries no
    // key, and is answered in JSON like the rest.
    let oversized = " ".repeat(DEFAULT_LIMIT + 1);
    for uri in [
        "/api/events",
        "/api/events?code=wrong",
        "/api/events?code=a&code=b",
    ] {
        let answer = send(&router, post(uri, oversized.clone())).await;
        assert_webhook_rejection(&answer, StatusCode::UNAUTHORIZED, "`code`");
    }
    let answer = send(&router, post("/api/events?code=s3cret", oversized)).await;
    assert_webhook_rejection(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");

    // Without a key configured, the query string is not looked at at all.
    let (state, counter) = app_state(&[]);
    let router = app(state);
    let body = Value::Array(vec![cloud_event(1, "acct")]).to_string();
    let answer = send(&router, post("/api/events?code=a&code=b", body)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(counter.submitted.load(Ordering::SeqCst), 1);
}
