//! The fuzz targets' regression inputs (`fuzz/regressions/<target>/`), replayed by `cargo test`
//! against the property each one once broke. The fuzz crate is a workspace of its own, so its
//! targets cannot run here; `scripts/fuzz` replays the same files through the targets themselves.

use std::fs;
use std::path::PathBuf;

use blob2batch::batch::BatchError;
use blob2batch::event::parse_delivery;
use blob2batch::filter::{EventFilter, Verdict};
use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};
use url::Url;

/// The inputs kept for one target (none is fine: not every target has found something).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// `batch_error`: two bytes of status (onto 100-999), a length byte, that many bytes of
/// `request-id`, then the body. The error's log line must be one line.
#[test]
fn batch_error_regressions_stay_one_line() {
    for (path, data) in inputs("batch_error") {
        let Some((&[high, low, n], rest)) = data.split_first_chunk::<3>() else {
            continue;
        };
        let status = StatusCode::from_u16(100 + u16::from_be_bytes([high, low]) % 900).unwrap();
        let (request_id, body) = rest.split_at(usize::from(n).min(rest.len()));
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(request_id) {
            headers.insert("request-id", value);
        }
        let error = BatchError::from_response(status, &headers, body);
        for line in [error.to_string(), error.message_line()] {
            assert!(!line.contains(['\r', '\n']), "{}: {line:?}", path.display());
        }
    }
}

/// `event_filter`: deliveries whose URLs leave the account once resolved; none may be acted on
/// by the Azurite account they pretend to be in.
#[test]
fn event_filter_regressions_are_not_acted_on() {
    let filter = EventFilter::new(
        &Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
        "input",
        None,
        None,
    );
    let all = inputs("event_filter");
    assert!(!all.is_empty(), "the dot-segment regression is missing");
    for (path, body) in all {
        for event in parse_delivery(&body).unwrap() {
            let verdict = filter.classify(&event);
            assert!(
                !matches!(verdict, Verdict::Act(_)),
                "{}: {verdict:?}",
                path.display()
            );
        }
    }
}
