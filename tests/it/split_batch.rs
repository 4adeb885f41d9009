//! A split blob on Batch, against the fake service: the exact requests and their order (job,
//! parts, merge, seal), completion of a submission that died half way, a redelivery of a sealed
//! or ended job as a duplicate, the active-job quota as a transient failure, and the state read
//! back from the job's tasks, page by page.

use std::time::Duration;

use crate::support::events::BlobEvent;
use crate::support::fake_batch::{self, FakeBatch, FakeBatchConfig, RecordedRequest};
use crate::support::settings::{from_pairs, handler_env};
use blob2batch::account_key::AccountKey;
use blob2batch::batch::{BatchClient, BatchClientOptions, BatchCredential, BatchTaskRunner};
use blob2batch::event::parse_event;
use blob2batch::filter::{EventFilter, Verdict};
use blob2batch::plan::{Plan, Planner};
use blob2batch::runner::{
    Accepted, SplitJob, Submission, SubmitError, TaskLookup, TaskRunner, TaskState,
};
use serde_json::{Value, json};

/// 250 parts of 1 KiB: three Add Task Collection calls.
const PARTS: u32 = 250;

/// The split plan of a 250 KiB blob, from the real planner.
fn split_job() -> SplitJob {
    let mut pairs = handler_env("https://fake.example");
    pairs.extend([
        ("SPLIT_THRESHOLD", "1KiB".to_string()),
        ("SPLIT_PART_SIZE", "1KiB".to_string()),
    ]);
    let settings = from_pairs(&pairs);
    let event = parse_event(
        BlobEvent::new("big/corpus.txt")
            .etag("0x8DE1")
            .content_length(u64::from(PARTS) * 1024)
            .json(),
    )
    .unwrap();
    let Verdict::Act(blob) = EventFilter::from_settings(&settings).classify(&event) else {
        panic!("not acted on");
    };
    let now = time::OffsetDateTime::now_utc();
    let Ok(Plan::Run(planned)) = Planner::from_settings(&settings).plan(&blob, now, None) else {
        panic!("not planned");
    };
    match planned.submission {
        Submission::Split(split) => *split,
        other => panic!("not split: {other:?}"),
    }
}

fn runner(fake: &FakeBatch, budget: Duration) -> BatchTaskRunner {
    let mut options = BatchClientOptions::new(
        fake.url(),
        BatchCredential::shared_key(
            fake_batch::ACCOUNT,
            AccountKey::from_base64(fake_batch::KEY).unwrap(),
        ),
    );
    options.retry.initial_delay = Duration::from_millis(20);
    options.retry.max_delay = Duration::from_millis(100);
    options.retry.budget = budget;
    BatchTaskRunner::new(BatchClient::new(options).unwrap())
}

/// `METHOD path-after-the-job` of each request, e.g. `POST addtaskcollection`.
fn calls(requests: &[RecordedRequest], job: &str) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let path = r.path.trim_start_matches("/jobs");
            let path = path.trim_start_matches('/');
            let path = path
                .strip_prefix(job)
                .unwrap_or(path)
                .trim_start_matches('/');
            format!("{} {path}", r.method).trim_end().to_string()
        })
        .collect()
}

async fn submit(runner: &BatchTaskRunner, split: &SplitJob) -> Result<Accepted, SubmitError> {
    let items = vec![Submission::Split(Box::new(split.clone()))];
    runner.submit(&items).await.pop().unwrap()
}

#[tokio::test]
async fn a_split_blob_goes_in_as_job_parts_merge_then_seal() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let split = split_job();
    let job_id = split.job.id.clone();
    assert!(job_id.starts_with("wcs-") && job_id.len() == 64, "{job_id}");
    let runner = runner(&fake, Duration::from_secs(5));

    assert_eq!(submit(&runner, &split).await, Ok(Accepted::Submitted));
    let requests = fake.requests();
    assert_eq!(
        calls(&requests, &job_id),
        [
            "POST",
            "POST addtaskcollection",
            "POST addtaskcollection",
            "POST addtaskcollection",
            "POST tasks",
            "PATCH",
        ]
    );
    assert!(requests.iter().all(|r| r.authorized));
    let job = requests[0].body.as_ref().unwrap();
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["usesTaskDependencies"], true);
    assert_eq!(job["onAllTasksComplete"], "noaction");
    assert_eq!(job["onTaskFailure"], "performexitoptionsjobaction");
    assert_eq!(job["poolInfo"], json!({"poolId": "wordcount"}));
    let merge = requests[4].body.as_ref().unwrap();
    assert_eq!(merge["id"], "merge");
    assert_eq!(
        merge["dependsOn"],
        json!({"taskIdRanges": [{"start": 0, "end": PARTS - 1}]})
    );
    assert_eq!(
        merge["commandLine"],
        format!("/wordcount --merge --expect-parts {PARTS} parts")
    );
    assert_eq!(
        requests[5].body.as_ref().unwrap(),
        &json!({"onAllTasksComplete": "terminatejob"})
    );
    assert_eq!(fake.task_ids(&job_id).len(), PARTS as usize + 1);
    // Every part is added exactly once, and before the merge.
    for part in 0..PARTS {
        assert_eq!(fake.task_count(&part.to_string()).created, 1, "part {part}");
    }

    // A redelivery: the sealed job needs nothing more.
    fake.clear_requests();
    assert_eq!(submit(&runner, &split).await, Ok(Accepted::Duplicate));
    assert_eq!(calls(&fake.requests(), &job_id), ["POST", "GET"]);
    let get = &fake.requests()[1];
    assert_eq!(
        get.query.as_deref(),
        Some("api-version=2025-06-01&%24select=id%2Cstate%2ConAllTasksComplete%2CexecutionInfo")
    );
}

#[tokio::test]
async fn a_submission_that_died_half_way_is_completed_and_the_merge_waits_for_every_part() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let split = split_job();
    let job_id = split.job.id.clone();
    // Part 7 keeps failing with a server error: the merge must not go in, nor the seal.
    fake.fail_task_in_collection("7", 1000);
    let runner = runner(&fake, Duration::from_millis(600));
    let first = submit(&runner, &split).await;
    assert!(
        first.as_ref().is_err_and(SubmitError::is_transient),
        "{first:?}"
    );
    fake.settle().await;
    // Some parts are in (how many depends on when the budget ran out); never the merge.
    let added = fake.task_ids(&job_id);
    assert!(
        !added.is_empty() && added.len() < PARTS as usize,
        "{}",
        added.len()
    );
    assert!(!added.contains(&"7".to_string()));
    assert!(!added.contains(&"merge".to_string()));
    assert_eq!(
        fake.job_state(&job_id),
        Some(("active".into(), "noaction".into()))
    );

    // The next delivery finds the job unsealed and completes it.
    fake.fail_task_in_collection("7", 0);
    fake.clear_requests();
    assert_eq!(submit(&runner, &split).await, Ok(Accepted::Submitted));
    let calls = calls(&fake.requests(), &job_id);
    assert_eq!(calls[..2], ["POST", "GET"]);
    assert_eq!(calls.last().unwrap(), "PATCH");
    assert_eq!(fake.task_ids(&job_id).len(), PARTS as usize + 1);
    for part in 0..PARTS {
        assert_eq!(fake.task_count(&part.to_string()).created, 1, "part {part}");
    }
    assert_eq!(
        fake.job_state(&job_id),
        Some(("active".into(), "terminatejob".into()))
    );
}

#[tokio::test]
async fn a_job_that_ended_before_it_was_sealed_is_a_duplicate() {
    let fake = FakeBatch::start(FakeBatchConfig::default()).await;
    let split = split_job();
    let job_id = split.job.id.clone();
    fake.fail_task_in_collection("7", 1000);
    let runner = runner(&fake, Duration::from_millis(600));
    assert!(submit(&runner, &split).await.is_err());
    fake.settle().await;
    // A part failed meanwhile: the service ended the job.
    fake.complete_job(&job_id, "TaskFailed");
    fake.fail_task_in_collection("7", 0);
    fake.clear_requests();
    assert_eq!(submit(&runner, &split).await, Ok(Accepted::Duplicate));
    assert_eq!(calls(&fake.requests(), &job_id), ["POST", "GET"]);
}

#[tokio::test]
async fn the_active_job_quota_and_a_job_being_deleted_are_transient() {
    let config = FakeBatchConfig {
        max_active_jobs: Some(1),
        ..FakeBatchConfig::default()
    }
    .with_job("wordcount");
    let fake = FakeBatch::start(config).await;
    let split = split_job();
    let runner = runner(&fake, Duration::from_secs(2));
    let refused = submit(&runner, &split).await.unwrap_err();
    assert!(refused.is_transient(), "{refused:?}");
    assert!(
        refused
            .reason()
            .contains("ActiveJobAndScheduleQuotaReached"),
        "{}",
        refused.reason()
    );
    assert!(fake.job(&split.job.id).is_none());

    // Room again; a job of this id being deleted makes the submission wait for a redelivery.
    let fake = FakeBatch::start(FakeBatchConfig {
        delete_delay: Duration::from_secs(60),
        ..FakeBatchConfig::default()
    })
    .await;
    let runner = runner_for(&fake);
    assert_eq!(submit(&runner, &split).await, Ok(Accepted::Submitted));
    client_of(&fake)
        .delete_job(&split.job.id, deadline())
        .await
        .unwrap();
    let again = submit(&runner, &split).await.unwrap_err();
    assert!(again.is_transient(), "{again:?}");
    assert!(
        again.reason().contains("being deleted"),
        "{}",
        again.reason()
    );
}

fn runner_for(fake: &FakeBatch) -> BatchTaskRunner {
    runner(fake, Duration::from_secs(2))
}

fn client_of(fake: &FakeBatch) -> BatchClient {
    runner_for(fake).client().clone()
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(2)
}

fn completed(exit_code: i32) -> Value {
    if exit_code == 0 {
        json!({"state": "completed",
               "executionInfo": {"exitCode": 0, "result": "success", "retryCount": 0}})
    } else {
        json!({"state": "completed",
               "executionInfo": {"exitCode": exit_code, "result": "failure", "retryCount": 2,
                   "failureInfo": {"category": "usererror", "code": "FailureExitCode",
                                   "message": "The task process exited with an unexpected exit code"}}})
    }
}

#[tokio::test]
async fn a_split_blobs_state_covers_its_parts_read_page_by_page() {
    let fake = FakeBatch::start(FakeBatchConfig {
        list_page_size: 100,
        ..FakeBatchConfig::default()
    })
    .await;
    let split = split_job();
    let job_id = split.job.id.clone();
    let runner = runner_for(&fake);
    let item = vec![Submission::Split(Box::new(split.clone()))];
    assert_eq!(runner.lookup(&item).await.pop().unwrap().unwrap(), None);
    submit(&runner, &split).await.unwrap();
    for part in 0..37 {
        fake.set_task_fields(&job_id, &part.to_string(), json!({"state": "running"}));
    }
    for part in 37..100 {
        fake.set_task_fields(&job_id, &part.to_string(), completed(0));
    }
    fake.clear_requests();
    let status = runner.lookup(&item).await.pop().unwrap().unwrap().unwrap();
    assert_eq!(status.state, TaskState::Running);
    let parts = status.parts.unwrap();
    assert_eq!(
        (
            parts.total,
            parts.active,
            parts.running,
            parts.succeeded,
            parts.failed
        ),
        (PARTS, PARTS - 100, 37, 63, 0)
    );
    // 251 tasks, 100 a page: three pages, each signed, each asking for the state only.
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.authorized && r.method == "GET"));
    assert!(
        requests[2]
            .query
            .as_deref()
            .unwrap()
            .contains("skiptoken=200")
    );
    assert!(requests.iter().all(|r| {
        r.query
            .as_deref()
            .unwrap()
            .contains("%24select=id%2Cstate%2CexecutionInfo")
    }));

    // A failed part makes the blob failed, with that part's failure.
    fake.set_task_fields(&job_id, "42", completed(3));
    let status = runner.lookup(&item).await.pop().unwrap().unwrap().unwrap();
    assert_eq!(status.state, TaskState::Failed);
    assert_eq!(status.failed_task.as_deref(), Some("42"));
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.failure.unwrap().code, "FailureExitCode");

    // Every part and the merge done: succeeded, and the sealed job completes.
    for part in 0..PARTS {
        fake.set_task_fields(&job_id, &part.to_string(), completed(0));
    }
    fake.set_task_fields(&job_id, "merge", completed(0));
    let status = runner.lookup(&item).await.pop().unwrap().unwrap().unwrap();
    assert_eq!(status.state, TaskState::Succeeded);
    assert_eq!(status.parts.unwrap().succeeded, PARTS);
    assert_eq!(
        fake.job_state(&job_id).unwrap().0,
        "completed",
        "a sealed job completes with its tasks"
    );
}
