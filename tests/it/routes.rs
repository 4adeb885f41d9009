//! The router driven in-process with `oneshot`: the custom-handler protocol and the direct
//! webhook, against a recording runner (the seam where Batch or the local runner plug in).

use std::sync::{Arc, Mutex};

use crate::support::events::{ACCOUNT_URL, BlobEvent, invocation_with_object};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use blob2batch::config::Settings;
use blob2batch::context::Context;
use blob2batch::http::{AppState, app};
use blob2batch::plan::task_id;
use blob2batch::runner::{Accepted, BoxFuture, Submission, SubmitError, SubmitResult, TaskRunner};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const UAMI: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool";

/// Records what it is asked to submit and answers with a scripted result.
struct Recorder {
    submitted: Mutex<Vec<Submission>>,
    answer: SubmitResult,
}

impl TaskRunner for Recorder {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        self.submitted.lock().unwrap().extend(items.iter().cloned());
        let answers = items.iter().map(|_| self.answer.clone()).collect();
        Box::pin(async move { answers })
    }
}

fn settings(extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![
        ("STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net"),
        (
            "BATCH_ACCOUNT_URL",
            "https://mybatch.westeurope.batch.azure.com",
        ),
        ("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1.0.0"),
        ("BATCH_NODE_IDENTITY", UAMI),
    ];
    pairs.extend_from_slice(extra);
    Settings::from_lookup(|name| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn build_router(answer: SubmitResult, extra: &[(&str, &str)]) -> (axum::Router, Arc<Recorder>) {
    let settings = settings(extra);
    let recorder = Arc::new(Recorder {
        submitted: Mutex::new(Vec::new()),
        answer,
    });
    let context = Context::with_runner(settings, recorder.clone()).unwrap();
    let state = AppState::new(Arc::new(context));
    (app(state), recorder)
}

/// Blob `name`, its URL encoded as `encoded`.
fn blob_event(id: &str, name: &str, encoded: &str) -> Value {
    BlobEvent::new(name)
        .id(id)
        .content_length(5231)
        .url(&format!("{ACCOUNT_URL}/input/{encoded}"))
        .json()
}

fn invocation(event: Value) -> Value {
    invocation_with_object(&event)
}

async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
    };
    (status, headers, body)
}

fn post(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-azure-functions-invocationid", "inv-1")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn expected_id(name: &str) -> String {
    task_id("acct", "input", name, "0x8DE62A1B3C4D5E7")
}

#[tokio::test]
async fn readiness_probe_answers_ok() {
    let (router, _) = build_router(Ok(Accepted::Submitted), &[]);
    let (status, _, _) = send(&router, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn invocation_with_an_object_event_submits_one_task() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
    let event = blob_event("e-1", "docs/a b.txt", "docs/a%20b.txt");
    let (status, headers, body) = send(&router, post("/BlobCreated", &invocation(event))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(body["Outputs"], json!({}));
    assert_eq!(
        body["ReturnValue"],
        json!({"events": [{"id": "e-1", "blob": "input/docs/a b.txt", "outcome": "submitted",
                           "taskId": expected_id("docs/a b.txt")}]})
    );
    assert_eq!(body["Logs"].as_array().unwrap().len(), 1);
    let submitted = recorder.submitted.lock().unwrap();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].id(), expected_id("docs/a b.txt"));
}

#[tokio::test]
async fn string_encoded_events_give_the_same_task() {
    let event = blob_event("e-1", "a.txt", "a.txt");
    // The host's form: a JSON string holding a JSON string literal holding the (indented) event.
    let indented = serde_json::to_string_pretty(&event).unwrap();
    let twice = Value::String(Value::String(indented).to_string());
    let once = Value::String(event.to_string());
    for encoded in [once, twice] {
        let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
        let (status, _, body) = send(&router, post("/BlobCreated", &invocation(encoded))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["ReturnValue"]["events"][0]["taskId"],
            expected_id("a.txt")
        );
        assert_eq!(recorder.submitted.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn duplicates_are_reported_as_such() {
    let (router, _) = build_router(Ok(Accepted::Duplicate), &[]);
    let (status, _, body) = send(
        &router,
        post("/BlobCreated", &invocation(blob_event("e", "a", "a"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "duplicate");
}

#[tokio::test]
async fn ignored_events_are_acknowledged_with_their_reason() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
    let mut event = blob_event("e-2", "a.txt", "a.txt");
    event["data"]["api"] = json!("CreateFile");
    let (status, _, body) = send(&router, post("/BlobCreated", &invocation(event))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "ignored");
    assert_eq!(
        body["ReturnValue"]["events"][0]["reason"],
        "api CreateFile does not commit a blob"
    );
    assert!(recorder.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn foreign_and_malformed_events_are_rejected_without_a_submission() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
    let mut foreign = blob_event("e-3", "a.txt", "a.txt");
    foreign["data"]["url"] = json!("https://other.blob.core.windows.net/input/a.txt");
    let (status, _, body) = send(&router, post("/BlobCreated", &invocation(foreign))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["ReturnValue"]["events"][0]["outcome"], "rejected");
    assert!(
        body["Logs"][0]
            .as_str()
            .unwrap()
            .contains("https://other.blob.core.windows.net")
    );

    for bad in [
        json!({"Data": {}}),
        json!({"Data": {"event": "{broken"}}),
        json!({"Data": {"event": 42}}),
    ] {
        let (status, _, body) = send(&router, post("/BlobCreated", &bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["Logs"][0].as_str().unwrap().starts_with("rejected: "),
            "{body}"
        );
        assert!(body.get("ReturnValue").is_some());
    }
    assert!(recorder.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn transient_failures_ask_for_a_redelivery_and_rejections_fail() {
    let (router, _) = build_router(Err(SubmitError::transient("Batch answered 503")), &[]);
    let (status, _, body) = send(
        &router,
        post("/BlobCreated", &invocation(blob_event("e", "a", "a"))),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ReturnValue"]["events"][0]["transient"], true);

    let rejected = SubmitError::rejected(
        "AuthenticationFailed",
        "Server failed to authenticate the request.",
    );
    let (router, _) = build_router(Err(rejected), &[]);
    let (status, _, body) = send(
        &router,
        post("/BlobCreated", &invocation(blob_event("e", "a", "a"))),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["Logs"][0]
            .as_str()
            .unwrap()
            .contains("AuthenticationFailed")
    );
}

#[tokio::test]
async fn webhook_takes_event_grid_arrays_and_cloudevents_in_one_submission() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
    let array = json!([blob_event("e-1", "a", "a"), blob_event("e-2", "b", "b")]);
    let request = Request::post("/api/events")
        .header("aeg-event-type", "Notification")
        .header("content-type", "application/json")
        .body(Body::from(array.to_string()))
        .unwrap();
    let (status, _, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
    assert_eq!(recorder.submitted.lock().unwrap().len(), 2);

    let mut ce = blob_event("c-1", "c", "c");
    let object = ce.as_object_mut().unwrap();
    let event_type = object.remove("eventType").unwrap();
    object.insert("type".into(), event_type);
    object.insert("specversion".into(), json!("1.0"));
    object.insert("source".into(), object["topic"].clone());
    for body in [ce.clone(), json!([ce])] {
        let request = Request::post("/api/events")
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, answer) = send(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["events"][0]["taskId"], expected_id("c"));
    }
}

#[tokio::test]
async fn webhook_validation_handshakes() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[]);
    let validation = json!([{"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "subject": "", "eventTime": "2026-03-14T09:26:53Z", "dataVersion": "1", "metadataVersion": "1",
        "topic": "/t", "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                                 "validationUrl": "https://rp-eastus2.eventgrid.azure.net/..."}}]);
    let request = Request::post("/api/events")
        .header("aeg-event-type", "SubscriptionValidation")
        .body(Body::from(validation.to_string()))
        .unwrap();
    let (status, _, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );

    let request = Request::options("/api/events")
        .header("webhook-request-origin", "eventgrid.azure.net")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["webhook-allowed-origin"], "eventgrid.azure.net");
    assert_eq!(headers["webhook-allowed-rate"], "*");
    assert!(recorder.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn webhook_rejects_malformed_deliveries_with_400() {
    let (router, _) = build_router(Ok(Accepted::Submitted), &[]);
    for body in ["not json", "[]", "[1]", "{\"id\": \"x\"}"] {
        let request = Request::post("/api/events").body(Body::from(body)).unwrap();
        let (status, _, answer) = send(&router, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer["error"].is_string());
    }
}

#[tokio::test]
async fn webhook_key_is_required_when_configured() {
    let (router, recorder) = build_router(Ok(Accepted::Submitted), &[("WEBHOOK_KEY", "s3cret")]);
    let body = json!([blob_event("e", "a", "a")]).to_string();
    for uri in ["/api/events", "/api/events?code=wrong"] {
        let request = Request::post(uri).body(Body::from(body.clone())).unwrap();
        let (status, _, _) = send(&router, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let request = Request::post("/api/events?code=s3cret")
        .body(Body::from(body))
        .unwrap();
    let (status, _, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorder.submitted.lock().unwrap().len(), 1);
}
