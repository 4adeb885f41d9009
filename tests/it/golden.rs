//! What must never change between releases, written out literally.
//!
//! Task ids: a redelivery that spans an upgrade must get the id its first delivery got, or it
//! runs twice. Every other test computes the ids it expects with `task_id` itself, so only this
//! table catches a change to the hash or to how its parts are framed; the same holds for the
//! ids of workloads of one's own. **Never change a row.**
//!
//! Batch request bodies: the bodies the planner makes for a set of events, byte for byte, under
//! each way of reaching storage and both submit modes, at a fixed clock (SAS signatures depend
//! on the time). They were captured before workloads existed; without a workloads file the
//! product must keep sending exactly these.

use crate::support::events::BlobEvent;
use blob2batch::config::Settings;
use blob2batch::event::parse_event;
use blob2batch::filter::{EventFilter, Verdict};
use blob2batch::plan::{Plan, Planner, job_id, split_job_id, task_id, workload_task_id};
use blob2batch::runner::Submission;

/// (account, container, blob name, eTag) -> task id. NEVER CHANGE THESE ROWS.
const TASK_IDS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "acct",
        "input",
        "docs/a b.txt",
        "0x8DE62A1B3C4D5E7",
        "wc-fd55473df108b807428fc988df5c4ca8154922442f166171bf6f49429068f",
    ),
    // The quotes the documentation shows around an eTag are not part of it.
    (
        "acct",
        "input",
        "docs/a b.txt",
        "\"0x8DE62A1B3C4D5E7\"",
        "wc-fd55473df108b807428fc988df5c4ca8154922442f166171bf6f49429068f",
    ),
    // An overwrite, and the same name in another account.
    (
        "acct",
        "input",
        "docs/a b.txt",
        "0x8DE62A1B3C4D5E8",
        "wc-74b89ff5f96b7dad1de6b72c07856cb81003ed33f61ef5f1d4f40d7f00e25",
    ),
    (
        "acct2",
        "input",
        "docs/a b.txt",
        "0x8DE62A1B3C4D5E7",
        "wc-810b24e91cbee93a937986a6454cfb5861fe125f0b23e33d8d70f558e3e3e",
    ),
    (
        "acct",
        "input",
        "naïve café/日本語.txt",
        "0x8DE62A1B3C4D5E7",
        "wc-517d8ad2aaab0fbe1d3a4d4be41bae1998ebda8c54735c7b8122f7cb159f2",
    ),
    (
        "acct",
        "input",
        "100% done & ready?.txt",
        "0x8DE62A1B3C4D5E7",
        "wc-190c343625ecd2d14f837aaa2a9f8a4c0f3f6748f47b2717a5da995f70fbf",
    ),
    (
        "devstoreaccount1",
        "input",
        "🎉 party.txt",
        "0x8DC0FFEE",
        "wc-12734e6040046279494860616496b71a99f7b9ec7dded900d278bf957282e",
    ),
    // Length-prefixed parts: moving a character from container to name is another id.
    (
        "acct",
        "in",
        "put/a",
        "0x1",
        "wc-add107a25583fc2beb8a1571798edada3da8c2270e5b42a43076993c44cce",
    ),
    (
        "acct",
        "inp",
        "ut/a",
        "0x1",
        "wc-232fce13cf6200e30a82404d4f1c4ae02f4bb47b0e804c17e324a64e6bac7",
    ),
];

/// Task id -> the job id of job-per-blob mode. NEVER CHANGE THESE ROWS.
const JOB_IDS: &[(&str, &str)] = &[
    (
        "wc-fd55473df108b807428fc988df5c4ca8154922442f166171bf6f49429068f",
        "wcj-fd55473df108b807428fc988df5c4ca8154922442f166171bf6f49429068",
    ),
    (
        "wc-517d8ad2aaab0fbe1d3a4d4be41bae1998ebda8c54735c7b8122f7cb159f2",
        "wcj-517d8ad2aaab0fbe1d3a4d4be41bae1998ebda8c54735c7b8122f7cb159f",
    ),
    (
        "wc-12734e6040046279494860616496b71a99f7b9ec7dded900d278bf957282e",
        "wcj-12734e6040046279494860616496b71a99f7b9ec7dded900d278bf957282",
    ),
];

/// (workload, account, container, blob name, eTag) -> the task id of a workload of one's own.
/// NEVER CHANGE THESE ROWS.
const WORKLOAD_TASK_IDS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "checksum",
        "acct",
        "input",
        "images/a b.png",
        "0x8DE62A1B3C4D5E7",
        "checksum-eedc68270ed523170b71997673200939d82940d50c51150fdf299e4",
    ),
    (
        "checksum",
        "acct",
        "input",
        "images/a b.png",
        "\"0x8DE62A1B3C4D5E7\"",
        "checksum-eedc68270ed523170b71997673200939d82940d50c51150fdf299e4",
    ),
    // An overwrite, and the same version taken by another workload.
    (
        "checksum",
        "acct",
        "input",
        "images/a b.png",
        "0x8DE62A1B3C4D5E8",
        "checksum-3816f66b0145c0d38c50d9124510a904f35aa1908b916ba60cfcb24",
    ),
    (
        "thumbnail",
        "acct",
        "input",
        "images/a b.png",
        "0x8DE62A1B3C4D5E7",
        "thumbnail-4cb6f1a02e0c13393b75f62a957143e84a2129a3ffc1882315a1b6",
    ),
    // Length-prefixed parts, as for word count.
    (
        "checksum",
        "acct",
        "in",
        "put/a",
        "0x1",
        "checksum-83cda709f65fa6a6c1e8df74255eee4edf91ff0f5132a089643073d",
    ),
    (
        "checksum",
        "acct",
        "inp",
        "ut/a",
        "0x1",
        "checksum-ac32232f7d29d690b5dc296ab1cd0dd3ed0c29cf5784b3d498599b8",
    ),
    // The shortest and the longest names: the hash fills the id to 64 characters.
    (
        "a",
        "acct",
        "input",
        "naïve café/日本語.png",
        "0x1",
        "a-5abfbbe93f4886111c744dc96b4b936c887154bc66aefc47296dad29fb5631",
    ),
    (
        "abcdefghijklmnopqrstuvwx",
        "acct",
        "input",
        "x",
        "0x1",
        "abcdefghijklmnopqrstuvwx-378ff32b9a6d479bf0bef69b7f7f637977eecc8",
    ),
];

/// (account, container, blob name, eTag, (size, part size, parts)) -> the job of a split word
/// count. NEVER CHANGE THESE ROWS.
type SplitRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (u64, u64, u32),
    &'static str,
);
const SPLIT_JOB_IDS: &[SplitRow] = &[
    (
        "acct",
        "input",
        "big/corpus.txt",
        "0x8DE1",
        (1_500_000_000, 268_435_456, 6),
        "wcs-09fd85ef8ecc47749b2f3cd8fedd15e66d36e5c5ca58f9d1153f15481299",
    ),
    (
        "acct",
        "input",
        "big/corpus.txt",
        "\"0x8DE1\"",
        (1_500_000_000, 268_435_456, 6),
        "wcs-09fd85ef8ecc47749b2f3cd8fedd15e66d36e5c5ca58f9d1153f15481299",
    ),
    // Another cut of the same version, and an overwrite.
    (
        "acct",
        "input",
        "big/corpus.txt",
        "0x8DE1",
        (1_500_000_000, 1_500_000, 1000),
        "wcs-014d8dd0698dc30c220698c12a4d6f5ca88d0043c6a282eadb45163bcb75",
    ),
    (
        "acct",
        "input",
        "big/corpus.txt",
        "0x8DE2",
        (1_500_000_000, 268_435_456, 6),
        "wcs-19f4fc449549e211e55ddfc576ff5ef2f986d0e80cbdbcea065856c76c6d",
    ),
];

#[test]
fn task_ids_never_change() {
    for (account, container, blob, etag, id) in TASK_IDS {
        assert_eq!(
            task_id(account, container, blob, etag),
            *id,
            "{account} {container} {blob:?} {etag}"
        );
    }
}

#[test]
fn workload_task_ids_never_change() {
    for (workload, account, container, blob, etag, id) in WORKLOAD_TASK_IDS {
        assert_eq!(
            workload_task_id(workload, account, container, blob, etag),
            *id,
            "{workload} {account} {container} {blob:?} {etag}"
        );
        assert_eq!(id.len(), 64);
    }
}

#[test]
fn split_job_ids_never_change() {
    for (account, container, blob, etag, cut, id) in SPLIT_JOB_IDS {
        assert_eq!(
            split_job_id(account, container, blob, etag, *cut),
            *id,
            "{account} {container} {blob:?} {etag} {cut:?}"
        );
    }
}

#[test]
fn job_ids_never_change() {
    for (task, job) in JOB_IDS {
        assert_eq!(job_id(task), *job, "{task}");
    }
}

const UAMI: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn settings(pairs: &[(&str, &str)]) -> Settings {
    Settings::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn azure(extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![
        ("STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net"),
        (
            "BATCH_ACCOUNT_URL",
            "https://mybatch.westeurope.batch.azure.com",
        ),
        ("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1.0.0"),
    ];
    pairs.extend_from_slice(extra);
    settings(&pairs)
}

/// Blob names as the event's subject carries them (raw) and its URL (percent-encoded).
const BLOBS: &[(&str, &str)] = &[
    ("docs/a b.txt", "docs/a%20b.txt"),
    (
        "naïve café/日本語.txt",
        "na%C3%AFve%20caf%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
    ),
    (
        "100% done & ready?.txt",
        "100%25%20done%20%26%20ready%3F.txt",
    ),
    ("$(reboot);rm -rf ~.txt", "%24(reboot)%3Brm%20-rf%20~.txt"),
];

/// The events of the golden set, for an account whose blob endpoint is `base`.
fn events(base: &str) -> Vec<serde_json::Value> {
    let mut events: Vec<serde_json::Value> = BLOBS
        .iter()
        .enumerate()
        .map(|(i, (name, encoded))| {
            BlobEvent::new(name)
                .id(&format!("e-{i}"))
                .content_length(5231)
                .url(&format!("{base}/input/{encoded}"))
                .json()
        })
        .collect();
    // A quoted eTag, as the documentation shows it.
    events.push(
        BlobEvent::new("quoted.txt")
            .etag("\"0x8DE62A1B3C4D5E8\"")
            .api("PutBlockList")
            .url(&format!("{base}/input/quoted.txt"))
            .json(),
    );
    // A name whose result name would pass the 1,024-character limit.
    let long = "n".repeat(1020);
    events.push(
        BlobEvent::new(&long)
            .etag("0x1")
            .url(&format!("{base}/input/{long}"))
            .json(),
    );
    events
}

/// The body `serve` would send for each event of the golden set, one per line.
fn bodies(settings: &Settings) -> String {
    let filter = EventFilter::from_settings(settings);
    let planner = Planner::from_settings(settings);
    let now = time::macros::datetime!(2026-03-14 09:26:53 UTC);
    let base = settings
        .storage
        .account_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let mut out = String::new();
    for event in events(&base) {
        let event = parse_event(event).unwrap();
        let Verdict::Act(blob) = filter.classify(&event) else {
            panic!("{event:?} is not acted on");
        };
        let Ok(Plan::Run(planned)) = planner.plan(&blob, now, None) else {
            panic!("{blob:?} is not planned");
        };
        let body = match planned.submission {
            Submission::Task { task, .. } => serde_json::to_string(&task),
            Submission::Job(job) => serde_json::to_string(&job),
            Submission::Split(split) => panic!("{} is split", split.job.id),
        };
        out.push_str(&body.unwrap());
        out.push('\n');
    }
    out
}

fn assert_golden(actual: &str, golden: &str, file: &str) {
    let actual: Vec<&str> = actual.lines().collect();
    let golden: Vec<&str> = golden.lines().collect();
    assert_eq!(actual.len(), golden.len(), "{file}: number of bodies");
    for (i, (a, g)) in actual.iter().zip(&golden).enumerate() {
        assert_eq!(a, g, "{file}: body {i} differs");
    }
}

#[test]
fn task_bodies_with_the_pool_identity_never_change() {
    let s = azure(&[("BATCH_NODE_IDENTITY", UAMI)]);
    assert_golden(
        &bodies(&s),
        include_str!("../golden/bodies/identity.jsonl"),
        "identity.jsonl",
    );
}

#[test]
fn task_bodies_with_sas_urls_never_change() {
    let s = azure(&[("STORAGE_ACCOUNT_KEY", KEY), ("BATCH_NODE_IDENTITY", UAMI)]);
    assert_golden(
        &bodies(&s),
        include_str!("../golden/bodies/sas.jsonl"),
        "sas.jsonl",
    );
}

#[test]
fn job_bodies_of_job_per_blob_mode_never_change() {
    let s = azure(&[
        ("STORAGE_ACCOUNT_KEY", KEY),
        ("BATCH_SUBMIT_MODE", "job"),
        ("TASK_MAX_WALL_CLOCK_TIME", "PT2H"),
        ("TASK_MAX_RETRY_COUNT", "0"),
    ]);
    assert_golden(
        &bodies(&s),
        include_str!("../golden/bodies/job.jsonl"),
        "job.jsonl",
    );
}

#[test]
fn task_bodies_of_the_local_runner_never_change() {
    let s = settings(&[
        ("RUNNER", "local"),
        (
            "STORAGE_ACCOUNT_URL",
            "http://127.0.0.1:10000/devstoreaccount1",
        ),
        ("STORAGE_ACCOUNT_KEY", KEY),
        ("LOCAL_WORK_DIR", "/tmp/unused"),
    ]);
    assert_golden(
        &bodies(&s),
        include_str!("../golden/bodies/local.jsonl"),
        "local.jsonl",
    );
}

#[test]
fn a_workloads_file_that_lists_word_count_keeps_its_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workloads.toml");
    // Word count listed after a workload that takes none of the golden blobs.
    std::fs::write(
        &file,
        "version = 1\n\n[[workload]]\nname = \"checksum\"\nsuffix = \".png\"\n\
         image = \"example.azurecr.io/checksum:1\"\ncommand = \"/bin/busybox sha256sum input/data\"\n\n\
         [[workload]]\nname = \"wordcount\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let s = azure(&[
        ("STORAGE_ACCOUNT_KEY", KEY),
        ("BATCH_NODE_IDENTITY", UAMI),
        ("WORKLOADS_FILE", path),
    ]);
    assert_eq!(s.workloads.routes().len(), 2, "the file is read");
    assert_golden(
        &bodies(&s),
        include_str!("../golden/bodies/sas.jsonl"),
        "sas.jsonl",
    );
}
