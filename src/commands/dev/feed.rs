//! The feed: turns new blobs in the input container into BlobCreated deliveries, as Event Grid and
//! the Functions host would.
//!
//! It lists the container every `interval` and, for each new blob or new eTag, delivers one
//! `Microsoft.Storage.BlobCreated` event (Event Grid schema) either
//! - straight to the handler, as the Functions host's custom-handler invocation
//!   (`POST {handler}/BlobCreated`, the event double-encoded as a JSON string in `Data.event`), or
//! - to a real Functions host (`func start`): `POST {host}/runtime/webhooks/eventgrid?functionName=BlobCreated`
//!   with `aeg-event-type: Notification` and a JSON array holding the event.
//!
//! A delivery that fails (connection error, non-2xx) is retried on a later round, with the same
//! event id, until it succeeds: at least once, like Event Grid. Nothing is dropped.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::error_chain::error_chain;
use crate::http_client::{HttpClientOptions, http_client};
use crate::storage::{BlobEntry, ContainerClient, StorageAccount};

/// Where deliveries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedTarget {
    /// The handler itself (`http://127.0.0.1:{port}`), invoked like the Functions host does.
    Handler(String),
    /// A Functions host (`func start`, e.g. `http://localhost:7071`).
    FunctionsHost(String),
}

#[derive(Clone, Debug)]
pub struct FeedOptions {
    pub account: StorageAccount,
    pub container: String,
    pub target: FeedTarget,
    /// Listing period (at most a second).
    pub interval: Duration,
    /// Deliveries in flight at once.
    pub parallel: usize,
}

/// What the feed did, for the console and tests.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    /// A blob version was delivered and acknowledged. `outcome`/`task_id` come from the handler's
    /// answer when it says (custom-handler invocations).
    Delivered {
        blob: String,
        etag: String,
        size: u64,
        outcome: Option<String>,
        task_id: Option<String>,
        detail: Option<String>,
    },
    /// A delivery failed; it will be retried.
    Retrying {
        blob: String,
        etag: String,
        error: String,
    },
    /// Listing the container failed; retried next round.
    ListFailed { error: String },
}

/// One blob version to deliver; the event id stays the same across retries.
#[derive(Clone, Debug)]
struct Pending {
    entry: BlobEntry,
    event_id: String,
    sequencer: u128,
}

/// What the feed knows between rounds.
struct Feed {
    options: FeedOptions,
    http: reqwest::Client,
    container: ContainerClient,
    events: mpsc::UnboundedSender<FeedEvent>,
    /// The last eTag delivered, per blob name.
    delivered: HashMap<String, String>,
    /// Deliveries still owed, per blob name.
    owed: HashMap<String, Pending>,
    sequencer: u128,
}

/// Runs until `shutdown` resolves.
pub async fn run(
    options: FeedOptions,
    events: mpsc::UnboundedSender<FeedEvent>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut feed = match Feed::new(options, events.clone()) {
        Ok(feed) => feed,
        Err(error) => {
            let _ = events.send(FeedEvent::ListFailed { error });
            return;
        }
    };
    let mut ticker = tokio::time::interval(feed.options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        feed.scan().await;
        tokio::select! {
            _ = &mut shutdown => return,
            _ = feed.deliver_owed() => {}
        }
    }
}

impl Feed {
    fn new(options: FeedOptions, events: mpsc::UnboundedSender<FeedEvent>) -> Result<Feed, String> {
        let http = http_client(&HttpClientOptions {
            request_timeout: Some(Duration::from_secs(60)),
            ..HttpClientOptions::default()
        })
        .map_err(|e| error_chain(&e))?;
        let container = options
            .account
            .container(&options.container)
            .map_err(|e| e.to_string())?;
        Ok(Feed {
            options,
            http,
            container,
            events,
            delivered: HashMap::new(),
            owed: HashMap::new(),
            sequencer: 0,
        })
    }

    /// Lists the container; every new blob or new eTag becomes a delivery owed.
    async fn scan(&mut self) {
        let blobs = match self.container.list(None).await {
            Ok(blobs) => blobs,
            Err(e) => {
                let _ = self.events.send(FeedEvent::ListFailed {
                    error: e.to_string(),
                });
                return;
            }
        };
        for entry in blobs {
            let known = self.delivered.get(&entry.name) == Some(&entry.etag)
                || self
                    .owed
                    .get(&entry.name)
                    .is_some_and(|p| p.entry.etag == entry.etag);
            if known {
                continue;
            }
            self.sequencer += 1;
            let pending = Pending {
                event_id: uuid::Uuid::new_v4().to_string(),
                sequencer: self.sequencer,
                entry,
            };
            self.owed.insert(pending.entry.name.clone(), pending);
        }
    }

    /// Delivers everything owed, oldest first, several at a time; what fails stays owed.
    async fn deliver_owed(&mut self) {
        let mut batch: Vec<Pending> = self.owed.values().cloned().collect();
        batch.sort_by_key(|p| p.sequencer);
        let (http, options) = (&self.http, &self.options);
        let mut results = futures_util::stream::iter(batch.into_iter().map(|pending| async move {
            let result = deliver(http, options, &pending).await;
            (pending, result)
        }))
        .buffer_unordered(options.parallel.max(1));
        while let Some((pending, result)) = results.next().await {
            let event = match result {
                Ok(answer) => {
                    let (outcome, task_id, detail) = answer.map(summarize).unwrap_or_default();
                    self.owed.remove(&pending.entry.name);
                    self.delivered
                        .insert(pending.entry.name.clone(), pending.entry.etag.clone());
                    FeedEvent::Delivered {
                        blob: pending.entry.name,
                        etag: pending.entry.etag,
                        size: pending.entry.size,
                        outcome,
                        task_id,
                        detail,
                    }
                }
                Err(error) => FeedEvent::Retrying {
                    blob: pending.entry.name,
                    etag: pending.entry.etag,
                    error,
                },
            };
            let _ = self.events.send(event);
        }
    }
}

/// Delivers one event; `Ok(Some(answer))` with the handler's JSON answer when there is one.
async fn deliver(
    http: &reqwest::Client,
    options: &FeedOptions,
    pending: &Pending,
) -> Result<Option<Value>, String> {
    let event = blob_created_event(
        &options.account,
        &options.container,
        &pending.entry,
        &pending.event_id,
        pending.sequencer,
    );
    let request = match &options.target {
        FeedTarget::Handler(base) => http
            .post(format!("{}/BlobCreated", base.trim_end_matches('/')))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("X-Azure-Functions-HostVersion", "4.0.0.0")
            .header("User-Agent", "Azure-Functions-Host/4.0.0.0")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(invocation_body(&event)),
        FeedTarget::FunctionsHost(base) => http
            .post(format!(
                "{}/runtime/webhooks/eventgrid?functionName=BlobCreated",
                base.trim_end_matches('/')
            ))
            .header("aeg-event-type", "Notification")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(serde_json::to_string(&json!([event])).expect("json")),
    };
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let snippet: String = text.chars().take(300).collect();
        return Err(format!("{status}: {snippet}"));
    }
    Ok(serde_json::from_str(&text).ok())
}

/// The Functions host's invocation body for the `event` binding: `Data.event` is a JSON string
/// holding a JSON string holding the (indented) event, as the host sends it.
pub fn invocation_body(event: &Value) -> String {
    let once = serde_json::to_string_pretty(event).expect("json");
    let twice = serde_json::to_string(&once).expect("json");
    let now = OffsetDateTime::now_utc().format(&Rfc3339).expect("formats");
    serde_json::to_string(&json!({
        "Data": {"event": twice},
        "Metadata": {"sys": {
            "MethodName": "BlobCreated",
            "UtcNow": now,
            "RandGuid": uuid::Uuid::new_v4().to_string(),
        }},
    }))
    .expect("json")
}

/// A `Microsoft.Storage.BlobCreated` event (Event Grid schema) for `entry`.
pub fn blob_created_event(
    account: &StorageAccount,
    container: &str,
    entry: &BlobEntry,
    event_id: &str,
    sequencer: u128,
) -> Value {
    let account_name = account.key().account();
    json!({
        "id": event_id,
        "topic": format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/{account_name}"
        ),
        "subject": format!("/blobServices/default/containers/{container}/blobs/{}", entry.name),
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": event_time(OffsetDateTime::now_utc()),
        "dataVersion": "",
        "metadataVersion": "1",
        "data": {
            "api": "PutBlob",
            "clientRequestId": uuid::Uuid::new_v4().to_string(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "eTag": entry.etag,
            "contentType": entry.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
            "contentLength": entry.size,
            "blobType": "BlockBlob",
            "url": account.blob_url(container, &entry.name),
            "sequencer": format!("{sequencer:032x}"),
            "storageDiagnostics": {"batchId": uuid::Uuid::new_v4().to_string()},
        },
    })
}

/// ISO 8601 UTC with 7 fractional digits, like Event Grid.
fn event_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// (outcome, task id, detail) from the handler's answer, read tolerantly: the first
/// `outcome`/`status`, `taskId` and `reason`/`error` strings found in `ReturnValue`.
fn summarize(answer: Value) -> (Option<String>, Option<String>, Option<String>) {
    let root = answer.get("ReturnValue").cloned().unwrap_or(answer);
    let outcome = find_string(&root, &["outcome", "status", "result"]);
    let task_id = find_string(&root, &["taskId", "task_id"]);
    let detail = find_string(&root, &["reason", "error", "message"]);
    (outcome, task_id, detail)
}

fn find_string(value: &Value, keys: &[&str]) -> Option<String> {
    match value {
        Value::Object(map) => {
            for key in keys {
                if let Some(Value::String(s)) = map.get(*key) {
                    return Some(s.clone());
                }
            }
            map.values().find_map(|v| find_string(v, keys))
        }
        Value::Array(items) => items.iter().find_map(|v| find_string(v, keys)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::azurite::{DEFAULT_BLOB_URL, well_known_key};

    fn entry(name: &str) -> BlobEntry {
        BlobEntry {
            name: name.into(),
            etag: "0x8DE62A1B3C4D5E7".into(),
            size: 12,
            content_type: Some("text/plain".into()),
            ..BlobEntry::default()
        }
    }

    #[test]
    fn event_has_the_event_grid_shape() {
        let account = StorageAccount::new(DEFAULT_BLOB_URL, well_known_key());
        let e = blob_created_event(&account, "input", &entry("docs/a b#1.txt"), "e-1", 255);
        assert_eq!(
            e["subject"],
            "/blobServices/default/containers/input/blobs/docs/a b#1.txt"
        );
        assert_eq!(
            e["data"]["url"],
            "http://127.0.0.1:10000/devstoreaccount1/input/docs/a%20b%231.txt"
        );
        assert_eq!(
            e["topic"],
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
        );
        assert_eq!(e["data"]["eTag"], "0x8DE62A1B3C4D5E7");
        assert_eq!(e["data"]["contentLength"], 12);
        assert_eq!(e["data"]["sequencer"], "000000000000000000000000000000ff");
        assert_eq!(e["dataVersion"], "");
        let time = e["eventTime"].as_str().unwrap();
        assert_eq!(time.len(), "2026-03-14T09:26:53.5897931Z".len(), "{time}");
    }

    #[test]
    fn invocation_body_double_encodes_the_event() {
        let event = json!({"id": "e-1", "eventType": "Microsoft.Storage.BlobCreated"});
        let body: Value = serde_json::from_str(&invocation_body(&event)).unwrap();
        let level1 = body["Data"]["event"].as_str().unwrap();
        let level2: String = serde_json::from_str(level1).unwrap();
        let decoded: Value = serde_json::from_str(&level2).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(body["Metadata"]["sys"]["MethodName"], "BlobCreated");
    }

    #[test]
    fn answers_are_read_tolerantly() {
        let answer = json!({"Outputs": {}, "Logs": [], "ReturnValue": {"results": [{"outcome": "submitted", "taskId": "wc-1"}]}});
        assert_eq!(
            summarize(answer),
            (Some("submitted".into()), Some("wc-1".into()), None)
        );
    }
}
