//! Fuzz target: the event filter (`EventFilter::classify`), on every event of any delivery that
//! parses, under three filters: an Azure account (blob and dfs endpoints), the same with
//! `INPUT_PREFIX` and `INPUT_SUFFIX`, and Azurite's path-style account.
//!
//! Properties: classifying never panics, and an `Act` verdict is one we can stand behind: its
//! container and blob name are the subject's parts (split at the first `/blobs/`), its URL is
//! `data.url` verbatim, its container is the input container, its api commits a blob, and its URL
//! is in the account as a URL parser reads it (scheme, host and port the account's or, on Azure,
//! its dfs twin; the path, with dot segments resolved, under the account's path). A foreign URL
//! never gets `Act`.

#![no_main]

use blob2batch::event::{BLOB_CREATED, Event, parse_delivery};
use blob2batch::filter::{ACTIONABLE_APIS, EventFilter, Verdict};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use url::Url;

struct Case {
    account: Url,
    filter: EventFilter,
    prefix: &'static str,
    suffix: &'static str,
}

const INPUT: &str = "input";

static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    [
        ("https://acct.blob.core.windows.net", "", ""),
        ("https://acct.blob.core.windows.net/", "docs/", ".txt"),
        ("http://127.0.0.1:10000/devstoreaccount1", "", ""),
    ]
    .into_iter()
    .map(|(account, prefix, suffix)| {
        let account = Url::parse(account).unwrap();
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let filter = EventFilter::new(&account, INPUT, some(prefix), some(suffix));
        Case {
            account,
            filter,
            prefix,
            suffix,
        }
    })
    .collect()
});

fuzz_target!(|body: &[u8]| {
    let Ok(events) = parse_delivery(body) else {
        return;
    };
    for case in CASES.iter() {
        for event in &events {
            if let Verdict::Act(blob) = case.filter.classify(event) {
                check_act(case, event, &blob);
            }
        }
    }
});

fn check_act(case: &Case, event: &Event, blob: &blob2batch::filter::BlobCreated) {
    assert_eq!(event.event_type, BLOB_CREATED);
    let subject = event.subject.as_deref().expect("Act without a subject");
    let (container, name) = subject_parts(subject).expect("Act on a subject that is not a blob's");
    assert_eq!(blob.container, container);
    assert_eq!(blob.blob, name);
    assert_eq!(Some(blob.url.as_str()), event.data["url"].as_str());
    assert_eq!(blob.container, INPUT);
    assert!(
        ACTIONABLE_APIS.contains(&blob.api.as_str()),
        "api {}",
        blob.api
    );
    assert!(blob.blob.starts_with(case.prefix) && blob.blob.ends_with(case.suffix));
    assert!(!blob.etag.is_empty() && !blob.etag.starts_with('"') && !blob.etag.ends_with('"'));
    assert!(
        in_account(&case.account, &blob.url),
        "foreign URL acted on: {:?}",
        blob.url
    );
}

/// `/blobServices/default/containers/{container}/blobs/{name}`, split at the first `/blobs/`.
fn subject_parts(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("/blobServices/default/containers/")?;
    let at = rest.find("/blobs/")?;
    Some((&rest[..at], &rest[at + "/blobs/".len()..]))
}

/// Whether a client that fetches `url` reaches the account: the URL as the WHATWG parser reads it
/// (what an HTTP client sends), not as text.
fn in_account(account: &Url, url: &str) -> bool {
    let Ok(url) = Url::parse(url) else {
        return false;
    };
    let blob_host = account.host_str().unwrap_or_default();
    let dfs_host = blob_host.replacen(".blob.", ".dfs.", 1);
    let host = url.host_str().unwrap_or_default();
    let base = account.path().trim_end_matches('/');
    url.scheme() == account.scheme()
        && (host == blob_host || (blob_host.contains(".blob.") && host == dfs_host))
        && url.port_or_known_default() == account.port_or_known_default()
        && url
            .path()
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}
