//! Fuzz target: Batch error bodies, through `ErrorBody::parse` and `BatchError::from_response`.
//!
//! Input: two bytes of status (mapped onto 100-999), one byte `n`, `n` bytes of `request-id`
//! header (kept only when it is a valid header value), then the body.
//!
//! Properties: nothing panics on any status and bytes; the error keeps the status and classifies
//! it (429 and 5xx transient, the rest permanent); its code and message are the body's when the
//! body has them; and what is promised to be one line is one line: the raw snippet of a non-JSON
//! body (at most 200 characters), `message_line()`, and the error's `Display` (the log line).

#![no_main]

use blob2batch::batch::BatchError;
use blob2batch::batch::error::ErrorBody;
use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[high, low, n], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let status = StatusCode::from_u16(100 + u16::from_be_bytes([high, low]) % 900).unwrap();
    let (request_id, body) = rest.split_at(usize::from(n).min(rest.len()));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(request_id) {
        headers.insert("request-id", value);
    }

    let parsed = ErrorBody::parse(body);
    if let Some(snippet) = &parsed.raw_snippet {
        assert_one_line("raw snippet", snippet);
        assert!(
            snippet.chars().count() <= 200,
            "snippet of {} chars",
            snippet.chars().count()
        );
        assert!(parsed.code.is_none() && parsed.message.is_none());
    }

    let error = BatchError::from_response(status, &headers, body);
    assert_eq!(error.status, Some(status.as_u16()));
    let transient = status.as_u16() == 429 || status.is_server_error();
    assert_eq!(error.is_transient(), transient, "{status}");
    assert_eq!(error.code, parsed.code);
    if let Some(message) = &parsed.message {
        assert_eq!(&error.message, message);
    }
    assert_one_line("message_line()", &error.message_line());
    assert_one_line("Display", &error.to_string());
});

fn assert_one_line(what: &str, text: &str) {
    assert!(!text.contains(['\r', '\n']), "{what} spans lines: {text:?}");
}
