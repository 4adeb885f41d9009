//! The one builder of the tests' events: a `Microsoft.Storage.BlobCreated` event in the Event
//! Grid schema (or CloudEvents 1.0), shaped as the service sends it, and the Functions host's
//! invocation around one.

use blob2batch::storage::encode_blob_name;
use serde_json::{Map, Value, json};

/// The eTag events carry unless a test gives another.
pub const ETAG: &str = "0x8DE62A1B3C4D5E7";

/// The blob endpoint of the account events come from unless a test gives another.
pub const ACCOUNT_URL: &str = "https://acct.blob.core.windows.net";

/// A BlobCreated event; `json()` gives its wire form.
#[derive(Clone, Debug)]
pub struct BlobEvent {
    id: String,
    container: String,
    name: String,
    account_url: String,
    url: Option<String>,
    etag: String,
    api: String,
    content_type: Option<String>,
    content_length: Option<u64>,
    cloud: bool,
    extra: Map<String, Value>,
}

impl BlobEvent {
    /// Blob `name` of the container `input` of [`ACCOUNT_URL`], committed by `PutBlob`, eTag
    /// [`ETAG`], event id `e-{name}`.
    pub fn new(name: &str) -> BlobEvent {
        BlobEvent {
            id: format!("e-{name}"),
            container: "input".into(),
            name: name.into(),
            account_url: ACCOUNT_URL.into(),
            url: None,
            etag: ETAG.into(),
            api: "PutBlob".into(),
            content_type: None,
            content_length: None,
            cloud: false,
            extra: Map::new(),
        }
    }

    pub fn id(mut self, id: &str) -> Self {
        self.id = id.into();
        self
    }

    pub fn container(mut self, container: &str) -> Self {
        self.container = container.into();
        self
    }

    /// The account whose blob endpoint the URL starts with (`data.url` is built from it).
    pub fn account_url(mut self, url: &str) -> Self {
        self.account_url = url.trim_end_matches('/').into();
        self
    }

    /// `data.url` exactly as given, instead of the account URL, container and encoded name.
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(url.into());
        self
    }

    pub fn etag(mut self, etag: &str) -> Self {
        self.etag = etag.into();
        self
    }

    pub fn api(mut self, api: &str) -> Self {
        self.api = api.into();
        self
    }

    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    pub fn content_length(mut self, bytes: u64) -> Self {
        self.content_length = Some(bytes);
        self
    }

    /// In the CloudEvents 1.0 schema instead of Event Grid's.
    pub fn cloud_event(mut self) -> Self {
        self.cloud = true;
        self
    }

    /// A top-level field beside the event's own (a dead-letter fact, an unknown extension).
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.extra.insert(field.into(), value);
        self
    }

    /// The event as Event Grid delivers it.
    pub fn json(&self) -> Value {
        let url = self.url.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                self.account_url,
                encode_blob_name(&self.container),
                encode_blob_name(&self.name)
            )
        });
        let mut data = json!({
            "api": self.api, "clientRequestId": "c-1", "requestId": "r-1", "eTag": self.etag,
            "blobType": "BlockBlob", "url": url, "sequencer": "0000000000000000000000000000f4c9d2",
        });
        if let Some(content_type) = &self.content_type {
            data["contentType"] = json!(content_type);
        }
        if let Some(bytes) = self.content_length {
            data["contentLength"] = json!(bytes);
        }
        let subject = format!(
            "/blobServices/default/containers/{}/blobs/{}",
            self.container, self.name
        );
        let source = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct";
        let mut event = if self.cloud {
            json!({
                "specversion": "1.0", "id": self.id, "type": "Microsoft.Storage.BlobCreated",
                "source": source, "subject": subject, "time": "2026-03-14T09:26:53.5897931Z",
                "data": data,
            })
        } else {
            json!({
                "id": self.id, "topic": source, "subject": subject,
                "eventType": "Microsoft.Storage.BlobCreated",
                "eventTime": "2026-03-14T09:26:53.5897931Z",
                "dataVersion": "", "metadataVersion": "1", "data": data,
            })
        };
        if let Value::Object(fields) = &mut event {
            fields.extend(self.extra.clone());
        }
        event
    }
}

/// The Functions host's invocation of `BlobCreated`: `Data.event` is a JSON string holding a JSON
/// string holding the (indented) event, as the host encodes it.
pub fn invocation(event: &Value) -> Value {
    let text = serde_json::to_string_pretty(event).unwrap();
    json!({"Data": {"event": Value::String(text).to_string()},
           "Metadata": {"sys": {"MethodName": "BlobCreated", "UtcNow": "2026-03-14T09:26:54Z", "RandGuid": "r"}}})
}

/// An invocation whose `Data.event` is the event object itself (a host that does not encode it).
pub fn invocation_with_object(event: &Value) -> Value {
    json!({"Data": {"event": event},
           "Metadata": {"sys": {"MethodName": "BlobCreated", "UtcNow": "2026-03-14T09:26:54Z", "RandGuid": "r"}}})
}
