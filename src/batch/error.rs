//! Errors of the Batch client: what a failed call tells the caller, and what a bad configuration
//! tells the operator at start-up.
//!
//! A [`BatchError`] is either transient (worth a redelivery: throttling, server errors, timeouts,
//! unreachable service) or permanent (the service refused the request). Nothing in these types may
//! carry a secret: messages come from the service's error body or from our own wording, never from
//! request headers; a transport failure keeps its cause, whose text names at most a URL's path.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::headers::header_str;

/// Whether retrying later may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchErrorKind {
    /// 429, 5xx, timeout or connection failure that was still failing when the retry budget ran out.
    Transient,
    /// Any other refusal (4xx other than throttling): retrying the same request will not fix it.
    Permanent,
}

/// A failed Batch call.
#[derive(Clone, Debug)]
pub struct BatchError {
    pub kind: BatchErrorKind,
    /// HTTP status of the last response, if there was one.
    pub status: Option<u16>,
    /// The service's error code (`JobNotFound`, `TaskExists`, `AuthenticationFailed`, ...).
    pub code: Option<String>,
    /// The service's message, or our description when there was no usable response.
    pub message: String,
    /// The service's `request-id` of the last response, for a support ticket.
    pub request_id: Option<String>,
    /// Our `client-request-id` of the logical call (the same on every attempt).
    pub client_request_id: Option<String>,
    /// HTTP attempts made for this logical call (for an item of a task collection: how many
    /// times the item was sent).
    pub attempts: u32,
    /// What failed underneath when there was no usable answer (a connection, a credential).
    pub source: Option<Source>,
}

/// The cause of a [`BatchError`]: shared, since one failed request fails every task it carried,
/// and a thin pointer, so that the error stays small.
pub(crate) type Source = Arc<Box<dyn Error + Send + Sync>>;

impl BatchError {
    pub fn is_transient(&self) -> bool {
        self.kind == BatchErrorKind::Transient
    }

    /// The message on one line (Batch messages end with `RequestId:` and `Time:` lines).
    pub fn message_line(&self) -> String {
        one_line(&self.message)
    }

    /// True when the service answered with this error code (compared case-insensitively).
    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(code))
    }

    /// Builds the error for a response that was not a success, from its status, headers and body.
    ///
    /// Public (only the transport calls it) so that the fuzz targets in `fuzz/` can feed it any
    /// status and bytes.
    pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let parsed = ErrorBody::parse(body);
        let message = parsed.message.unwrap_or_else(|| {
            let reason = status.canonical_reason().unwrap_or("unexpected status");
            match parsed.raw_snippet {
                Some(snippet) => format!("{reason}: {snippet}"),
                None => reason.to_string(),
            }
        });
        BatchError {
            kind: kind_of_status(status),
            status: Some(status.as_u16()),
            code: parsed.code,
            message,
            request_id: header_str(headers, "request-id").map(str::to_string),
            client_request_id: None,
            attempts: 0,
            source: None,
        }
    }

    /// An error without a response (timeout, connection failure, credential failure).
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        BatchError {
            kind: BatchErrorKind::Transient,
            status: None,
            code: None,
            message: message.into(),
            request_id: None,
            client_request_id: None,
            attempts: 0,
            source: None,
        }
    }

    /// An error detected before anything was sent (for example an id the service would refuse).
    pub(crate) fn permanent(code: &str, message: impl Into<String>) -> Self {
        BatchError {
            code: Some(code.to_string()),
            kind: BatchErrorKind::Permanent,
            ..BatchError::transient(message)
        }
    }

    /// The error of one item of an Add Task Collection answer, from the item's `error` object.
    pub(crate) fn from_item(kind: BatchErrorKind, error: Option<&serde_json::Value>) -> Self {
        let parsed = error.map(ErrorBody::from_value).unwrap_or_default();
        BatchError {
            code: parsed.code,
            kind,
            ..BatchError::transient(
                parsed
                    .message
                    .unwrap_or_else(|| "no error detail".to_string()),
            )
        }
    }

    pub(crate) fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(Box::new(source)));
        self
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            BatchErrorKind::Transient => "transient",
            BatchErrorKind::Permanent => "permanent",
        };
        write!(f, "Batch {kind} error")?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        // Batch messages carry "\nRequestId:...\nTime:..." lines; one log line reads better. The
        // code comes from the body too, so whatever answered can put line breaks in it.
        if let Some(code) = &self.code {
            write!(f, " {}", one_line(code))?;
        }
        write!(f, ": {}", one_line(&self.message))?;
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

/// Two errors are equal when they say the same; their causes are compared by what they say too.
impl PartialEq for BatchError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.status == other.status
            && self.code == other.code
            && self.message == other.message
            && self.request_id == other.request_id
            && self.client_request_id == other.client_request_id
            && self.attempts == other.attempts
            && self.source.as_ref().map(ToString::to_string)
                == other.source.as_ref().map(ToString::to_string)
    }
}

impl Error for BatchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e.as_ref() as &(dyn Error + 'static))
    }
}

/// A client configuration the service would refuse or that would leak a secret.
#[derive(Debug, thiserror::Error)]
pub enum BatchConfigError {
    #[error("Batch endpoint {0}")]
    InvalidEndpoint(String),
    #[error("Batch account name is empty")]
    EmptyAccountName,
    #[error("Batch retry budget {budget:?} exceeds the maximum of {max:?}")]
    RetryBudgetTooLong {
        budget: std::time::Duration,
        max: std::time::Duration,
    },
    #[error("Batch retry options: {0}")]
    InvalidRetryOptions(String),
    #[error("Entra ID credential")]
    Entra(#[from] crate::entra::EntraError),
    #[error(transparent)]
    HttpClient(#[from] crate::http_client::HttpClientError),
}

/// 429 and every 5xx are worth a redelivery, though only some 5xx are retried within one call
/// (see [`crate::batch::retry::is_retryable_status`]).
pub(crate) fn kind_of_status(status: StatusCode) -> BatchErrorKind {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        BatchErrorKind::Transient
    } else {
        BatchErrorKind::Permanent
    }
}

fn one_line(message: &str) -> String {
    message
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What we could read out of an error body, whatever its shape.
///
/// Public, with [`ErrorBody::parse`], so that the fuzz targets in `fuzz/` can reach it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    /// The start of a body that was not JSON, so that a proxy's HTML page still says something.
    pub raw_snippet: Option<String>,
}

const SNIPPET_CHARS: usize = 200;

impl ErrorBody {
    /// Accepts the Batch shape `{"code", "message": {"lang", "value"}, "values"}` (with or without
    /// `odata.metadata`), a plain-string `message`, the ARM-style `{"error": {...}}` wrapper, an
    /// empty body and non-JSON.
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return ErrorBody::default();
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) else {
            let snippet: String = trimmed.chars().take(SNIPPET_CHARS).collect();
            return ErrorBody {
                raw_snippet: Some(one_line(&snippet)),
                ..ErrorBody::default()
            };
        };
        ErrorBody::from_value(&value)
    }

    /// The same, from a body already parsed (an item of an Add Task Collection answer).
    pub(crate) fn from_value(value: &serde_json::Value) -> Self {
        let object = match value.get("error") {
            Some(inner) if inner.is_object() => inner,
            _ => value,
        };
        let code = object
            .get("code")
            .and_then(|c| c.as_str())
            .map(str::to_string);
        let mut message = match object.get("message") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(m) => m.get("value").and_then(|v| v.as_str()).map(str::to_string),
            None => None,
        };
        // `values` often names the offending property; worth having in the log.
        if let Some(values) = object.get("values").and_then(|v| v.as_array()) {
            let details: Vec<String> = values
                .iter()
                .filter_map(|d| {
                    let key = d.get("key")?.as_str()?;
                    let value = d.get("value")?.as_str()?;
                    Some(format!("{key}={value}"))
                })
                .collect();
            if !details.is_empty() {
                let joined = details.join("; ");
                message = Some(match message {
                    Some(m) => format!("{m} ({joined})"),
                    None => joined,
                });
            }
        }
        ErrorBody {
            code,
            message,
            raw_snippet: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_batch_shape_with_odata_metadata() {
        let body = br#"{"odata.metadata":"https://a.b.batch.azure.com/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element","code":"TaskExists","message":{"lang":"en-US","value":"The specified task already exists.\nRequestId:1\nTime:2026-03-14T09:31:09Z"}}"#;
        let parsed = ErrorBody::parse(body);
        assert_eq!(parsed.code.as_deref(), Some("TaskExists"));
        assert!(
            parsed
                .message
                .unwrap()
                .starts_with("The specified task already exists.")
        );
    }

    #[test]
    fn appends_values_to_the_message() {
        let body = br#"{"code":"InvalidPropertyValue","message":{"lang":"en-US","value":"bad"},"values":[{"key":"PropertyName","value":"id"}]}"#;
        let parsed = ErrorBody::parse(body);
        assert_eq!(parsed.message.as_deref(), Some("bad (PropertyName=id)"));
    }

    #[test]
    fn accepts_string_messages_and_the_arm_wrapper() {
        let parsed = ErrorBody::parse(br#"{"error":{"code":"X","message":"plain"}}"#);
        assert_eq!(parsed.code.as_deref(), Some("X"));
        assert_eq!(parsed.message.as_deref(), Some("plain"));
    }

    #[test]
    fn survives_empty_and_non_json_bodies() {
        assert_eq!(ErrorBody::parse(b""), ErrorBody::default());
        assert_eq!(ErrorBody::parse(b"  \n"), ErrorBody::default());
        let html = ErrorBody::parse(b"<html>\n<body>Bad Gateway</body></html>");
        assert_eq!(html.code, None);
        assert_eq!(
            html.raw_snippet.as_deref(),
            Some("<html> <body>Bad Gateway</body></html>")
        );
        let err = BatchError::from_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"");
        assert_eq!(err.kind, BatchErrorKind::Transient);
        assert_eq!(err.message, "Bad Gateway");
    }

    #[test]
    fn classifies_statuses() {
        for s in [429, 500, 501, 502, 503, 504] {
            assert_eq!(
                kind_of_status(StatusCode::from_u16(s).unwrap()),
                BatchErrorKind::Transient
            );
        }
        for s in [400, 401, 403, 404, 409, 413] {
            assert_eq!(
                kind_of_status(StatusCode::from_u16(s).unwrap()),
                BatchErrorKind::Permanent
            );
        }
    }

    #[test]
    fn display_is_one_line_with_code_and_request_id() {
        let mut headers = HeaderMap::new();
        headers.insert("request-id", "rid-1".parse().unwrap());
        let err = BatchError::from_response(
            StatusCode::NOT_FOUND,
            &headers,
            br#"{"code":"JobNotFound","message":{"lang":"en-US","value":"The specified job does not exist.\nRequestId:rid-1"}}"#,
        );
        assert_eq!(
            err.to_string(),
            "Batch permanent error (HTTP 404) JobNotFound: The specified job does not exist. RequestId:rid-1 [request-id rid-1]"
        );
        assert!(err.has_code("jobnotfound"));
    }

    /// Found by the fuzz target `batch_error` (fuzz/regressions/batch_error/code-with-line-break).
    #[test]
    fn display_is_one_line_when_the_code_has_line_breaks() {
        let err = BatchError::from_response(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"code":"Job\r\nNotFound\n","message":"gone"}"#,
        );
        assert_eq!(
            err.to_string(),
            "Batch permanent error (HTTP 404) Job NotFound: gone"
        );
        // The code itself stays as the service sent it, for `has_code`.
        assert_eq!(err.code.as_deref(), Some("Job\r\nNotFound\n"));
    }
}
