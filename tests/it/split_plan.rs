//! The plan of a large blob: when a word count is split (threshold, gzip, job mode, unknown
//! size), how (parts, ranges, the merge and its one dependency range), what each task reaches
//! (the blob by a read-only URL, the staging folder of its job, the result under today's name),
//! and the job id, which changes with the cut and with nothing else.

use crate::support::events::BlobEvent;
use crate::support::settings::{STORAGE_KEY, from_pairs, handler_env};
use blob2batch::config::Settings;
use blob2batch::event::parse_event;
use blob2batch::filter::{EventFilter, Verdict};
use blob2batch::plan::{Plan, Planner, Unsigned};
use blob2batch::runner::{SplitJob, Submission};
use serde_json::{Value, json};

const UAMI: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool";

fn settings(extra: &[(&'static str, &str)]) -> Settings {
    let mut pairs = handler_env("https://fake.example");
    pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    from_pairs(&pairs)
}

/// The submission for a blob of `size` bytes (and `content_type`, `name`).
fn plan_with(settings: &Settings, name: &str, size: u64, content_type: Option<&str>) -> Submission {
    let mut event = BlobEvent::new(name).etag("0x8DE1").content_length(size);
    if let Some(content_type) = content_type {
        event = event.content_type(content_type);
    }
    let event = parse_event(event.json()).unwrap();
    let Verdict::Act(blob) = EventFilter::from_settings(settings).classify(&event) else {
        panic!("not acted on");
    };
    let now = time::macros::datetime!(2026-03-14 09:26:53 UTC);
    match Planner::from_settings(settings).plan(&blob, now, Some(&Unsigned)) {
        Ok(Plan::Run(planned)) => planned.submission,
        other => panic!("not planned: {other:?}"),
    }
}

fn split(submission: Submission) -> SplitJob {
    match submission {
        Submission::Split(split) => *split,
        other => panic!("not split: {other:?}"),
    }
}

fn json_of(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

const MIB: u64 = 1 << 20;

#[test]
fn blobs_split_from_the_threshold_on_and_never_gzip_job_mode_or_an_unknown_size() {
    let s = settings(&[("SPLIT_THRESHOLD", "64MiB"), ("SPLIT_PART_SIZE", "16MiB")]);
    assert!(matches!(
        plan_with(&s, "a.txt", 64 * MIB - 1, None),
        Submission::Task { .. }
    ));
    assert_eq!(split(plan_with(&s, "a.txt", 64 * MIB, None)).parts.len(), 4);
    for (name, content_type) in [
        ("a.txt.gz", None),
        ("A.GZ", None),
        ("a.txt", Some("application/gzip")),
        ("a.txt", Some("application/x-gzip")),
    ] {
        assert!(
            matches!(
                plan_with(&s, name, 1 << 40, content_type),
                Submission::Task { .. }
            ),
            "{name} {content_type:?}"
        );
    }
    let off = settings(&[("SPLIT_THRESHOLD", "off")]);
    assert!(matches!(
        plan_with(&off, "a.txt", 1 << 40, None),
        Submission::Task { .. }
    ));
    let job_mode = settings(&[
        ("SPLIT_THRESHOLD", "1KiB"),
        ("BATCH_SUBMIT_MODE", "job"),
        ("STORAGE_ACCOUNT_KEY", STORAGE_KEY),
    ]);
    assert!(matches!(
        plan_with(&job_mode, "a.txt", 1 << 40, None),
        Submission::Job(_)
    ));
    // Listed blobs carry their size; an event without one stays one task.
    let event = parse_event(BlobEvent::new("a.txt").json()).unwrap();
    let Verdict::Act(mut blob) = EventFilter::from_settings(&s).classify(&event) else {
        panic!()
    };
    blob.size = None;
    let now = time::OffsetDateTime::now_utc();
    let Ok(Plan::Run(planned)) = Planner::from_settings(&s).plan(&blob, now, None) else {
        panic!()
    };
    assert!(matches!(planned.submission, Submission::Task { .. }));
}

#[test]
fn parts_tile_the_blob_and_the_merge_depends_on_them_all() {
    let s = settings(&[("SPLIT_THRESHOLD", "64MiB"), ("SPLIT_PART_SIZE", "16MiB")]);
    let size = 50 * MIB + 7 + 16 * MIB;
    let job = split(plan_with(&s, "docs/big file.txt", size, Some("text/plain")));
    let id = job.job.id.clone();
    assert_eq!(
        json_of(&job.job),
        json!({"id": id, "displayName": "input/docs/big file.txt",
               "poolInfo": {"poolId": "wordcount"}, "onAllTasksComplete": "noaction",
               "onTaskFailure": "performexitoptionsjobaction", "usesTaskDependencies": true})
    );
    let ranges: Vec<&str> = job.parts.iter().map(|p| p.command_line.as_str()).collect();
    let m = 16 * MIB;
    assert_eq!(
        ranges,
        [
            format!("/wordcount --url-from-env --range 0..{m} --partial"),
            format!("/wordcount --url-from-env --range {m}..{} --partial", 2 * m),
            format!(
                "/wordcount --url-from-env --range {}..{} --partial",
                2 * m,
                3 * m
            ),
            format!(
                "/wordcount --url-from-env --range {}..{} --partial",
                3 * m,
                4 * m
            ),
            format!(
                "/wordcount --url-from-env --range {}..{size} --partial",
                4 * m
            ),
        ]
    );
    for (i, part) in job.parts.iter().enumerate() {
        let part = json_of(part);
        assert_eq!(part["id"], i.to_string());
        assert_eq!(
            part["displayName"],
            format!("input/docs/big file.txt [part {i} of 5]")
        );
        let env: Vec<&str> = part["environmentSettings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            [
                "BLOB2BATCH_INPUT_URL",
                "BLOB2BATCH_ETAG",
                "WORDCOUNT_SOURCE"
            ]
        );
        let url = part["environmentSettings"][0]["value"].as_str().unwrap();
        assert!(
            url.starts_with("https://acct.blob.core.windows.net/input/docs/big%20file.txt?")
                && url.contains("sp=r&"),
            "{url}"
        );
        assert_eq!(part["environmentSettings"][1]["value"], "0x8DE1");
        assert!(
            part.get("resourceFiles").is_none(),
            "a part reads its range itself"
        );
        let staged = &part["outputFiles"][0];
        assert_eq!(staged["filePattern"], "../stdout.txt");
        assert_eq!(
            staged["destination"]["container"]["path"],
            format!("{id}/parts/{i}")
        );
        let staging = staged["destination"]["container"]["containerUrl"]
            .as_str()
            .unwrap();
        assert!(
            staging.starts_with("https://acct.blob.core.windows.net/staging?")
                && staging.contains("sp=cw"),
            "{staging}"
        );
        assert_eq!(
            part["outputFiles"][1]["destination"]["container"]["path"],
            format!("docs/big file.txt.wordcount.logs/{id}/{i}")
        );
    }
    let merge = json_of(&job.merge);
    assert_eq!(merge["id"], "merge");
    assert_eq!(
        merge["commandLine"],
        "/wordcount --merge --expect-parts 5 parts"
    );
    assert_eq!(
        merge["dependsOn"],
        json!({"taskIdRanges": [{"start": 0, "end": 4}]})
    );
    let fetch = &merge["resourceFiles"][0];
    assert_eq!(fetch["blobPrefix"], format!("{id}/parts/"));
    assert_eq!(fetch["filePath"], "parts");
    assert!(
        fetch["storageContainerUrl"]
            .as_str()
            .unwrap()
            .contains("sp=rl")
    );
    let result = &merge["outputFiles"][0]["destination"]["container"];
    assert_eq!(result["path"], "docs/big file.txt.wordcount.json");
    assert_eq!(
        result["uploadHeaders"],
        json!([{"name": "Content-Type", "value": "application/json"},
               {"name": "x-ms-meta-source_etag", "value": "0x8DE1"},
               {"name": "x-ms-meta-task_id", "value": id}])
    );
}

#[test]
fn the_most_parts_make_larger_parts_and_the_cut_is_part_of_the_job_id() {
    let s = settings(&[
        ("SPLIT_THRESHOLD", "1MiB"),
        ("SPLIT_PART_SIZE", "1MiB"),
        ("SPLIT_MAX_PARTS", "8"),
    ]);
    let job = split(plan_with(&s, "a.txt", 100 * MIB, None));
    assert_eq!(job.parts.len(), 8);
    assert_eq!(
        job.parts[7].command_line,
        format!(
            "/wordcount --url-from-env --range {}..{} --partial",
            7 * (25 * MIB / 2),
            100 * MIB
        )
    );
    let again = split(plan_with(&s, "a.txt", 100 * MIB, None));
    assert_eq!(again.job.id, job.job.id, "a redelivery gets the same job");
    let other_cut = settings(&[
        ("SPLIT_THRESHOLD", "1MiB"),
        ("SPLIT_PART_SIZE", "1MiB"),
        ("SPLIT_MAX_PARTS", "9"),
    ]);
    assert_ne!(
        split(plan_with(&other_cut, "a.txt", 100 * MIB, None))
            .job
            .id,
        job.job.id,
        "another cut is another job: parts of two plans never meet"
    );
}

#[test]
fn with_the_pool_identity_the_staging_container_is_reached_with_it() {
    let s = settings(&[
        ("SPLIT_THRESHOLD", "1MiB"),
        ("SPLIT_PART_SIZE", "1MiB"),
        ("STORAGE_ACCOUNT_KEY", ""),
        ("BATCH_NODE_IDENTITY", UAMI),
    ]);
    let job = split(plan_with(&s, "a.txt", 10 * MIB, None));
    let part = json_of(&job.parts[0]);
    let staged = &part["outputFiles"][0]["destination"]["container"];
    assert_eq!(
        staged["containerUrl"],
        "https://acct.blob.core.windows.net/staging"
    );
    assert_eq!(staged["identityReference"]["resourceId"], UAMI);
    // The part's URL is signed with a user delegation key (here a stand-in signer).
    let url = part["environmentSettings"][0]["value"].as_str().unwrap();
    assert!(url.contains("skoid="), "{url}");
    let fetch = &json_of(&job.merge)["resourceFiles"][0];
    assert_eq!(
        fetch["storageContainerUrl"],
        "https://acct.blob.core.windows.net/staging"
    );
    assert_eq!(fetch["identityReference"]["resourceId"], UAMI);
}
