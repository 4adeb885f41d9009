//! The local runner running split jobs as Batch runs them, with a small shell script standing
//! in for `wordcount`: it notes when each task starts and ends, sleeps and exits as the task's
//! environment says. The tasks fetch and upload nothing, so no storage is needed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::broadcast;

use super::events::RunnerEvent;
use super::failure::FailureCode;
use super::job_dir::{JobCompletion, JobStore, TerminateReason};
use super::runner::{LocalRunner, LocalRunnerOptions, LocalSubmitter};
use super::task_dir::{RunResult, TaskResult, TaskStore};
use super::{Engine, TaskFailure};
use crate::runner::{
    Accepted, MERGE_TASK_ID, SplitJob, Submission, TaskLookup, TaskRemover, TaskRunner, TaskState,
    TaskStatus,
};
use crate::task_spec::{EnvironmentSetting, JobSpec, TaskDependencies, TaskIdRange, TaskSpec};

const STAND_IN: &str = r#"#!/bin/sh
echo "start $AZ_BATCH_TASK_ID" >> "$LOG"
if [ -n "$SLEEP" ]; then sleep "$SLEEP"; fi
echo "end $AZ_BATCH_TASK_ID" >> "$LOG"
exit "${EXIT:-0}"
"#;

struct Bench {
    _dir: tempfile::TempDir,
    work: PathBuf,
    log: PathBuf,
    script: PathBuf,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wordcount-stand-in");
    std::fs::write(&script, STAND_IN).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Bench {
        work: dir.path().join("work"),
        log: dir.path().join("log"),
        script,
        _dir: dir,
    }
}

impl Bench {
    async fn runner(&self, concurrency: usize) -> LocalRunner {
        LocalRunner::open(LocalRunnerOptions {
            work_dir: self.work.clone(),
            concurrency,
            engine: Engine::Process {
                wordcount_bin: self.script.clone(),
            },
            word_count_image: "localhost/wordcount:latest".into(),
        })
        .await
        .unwrap()
    }

    /// A task whose stand-in run takes the settings `env` gives (`SLEEP`, `EXIT`).
    fn task(&self, id: &str, env: &[(&str, &str)]) -> TaskSpec {
        let mut task = TaskSpec::new(id, "/wordcount");
        task.environment_settings = std::iter::once(("LOG", self.log.to_str().unwrap()))
            .chain(env.iter().copied())
            .map(|(name, value)| EnvironmentSetting {
                name: name.into(),
                value: value.into(),
            })
            .collect();
        task
    }

    /// A split job whose part `i` runs with `parts[i]`'s settings, and a merge.
    fn split(&self, id: &str, parts: &[&[(&str, &str)]]) -> SplitJob {
        let mut merge = self.task(MERGE_TASK_ID, &[]);
        merge.depends_on = Some(TaskDependencies {
            task_ids: Vec::new(),
            task_id_ranges: vec![TaskIdRange {
                start: 0,
                end: parts.len() as u32 - 1,
            }],
        });
        SplitJob {
            job: job(id),
            parts: parts
                .iter()
                .enumerate()
                .map(|(i, env)| self.task(&i.to_string(), env))
                .collect(),
            merge,
        }
    }

    /// The stand-in's notes, in order.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn jobs(&self) -> JobStore {
        JobStore::open(&self.work).unwrap()
    }

    fn store(&self) -> TaskStore {
        TaskStore::open(&self.work).unwrap()
    }

    async fn lookup(&self, split: &SplitJob) -> Option<TaskStatus> {
        let items = [Submission::Split(Box::new(split.clone()))];
        self.store().lookup(&items).await.remove(0).unwrap()
    }
}

fn job(id: &str) -> JobSpec {
    JobSpec {
        display_name: Some(format!("input/{id}.txt")),
        ..JobSpec::split(id, "pool")
    }
}

async fn submit(runner: &dyn TaskRunner, split: &SplitJob) -> Accepted {
    let items = [Submission::Split(Box::new(split.clone()))];
    runner.submit(&items).await.remove(0).expect("accepted")
}

/// Waits for the job's `JobCompleted` event.
async fn completed(events: &mut broadcast::Receiver<RunnerEvent>, id: &str) -> RunnerEvent {
    let wait = async {
        loop {
            match events.recv().await.expect("runner events") {
                e @ RunnerEvent::JobCompleted { .. } if e.id() == id => return e,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the job completes within 20 s")
}

fn result(store: &TaskStore, id: &str) -> Option<TaskResult> {
    store.dir(id).result()
}

#[tokio::test]
async fn a_merge_runs_once_every_part_has_succeeded() {
    let b = bench();
    let runner = b.runner(2).await;
    let mut events = runner.subscribe();
    let slow: &[(&str, &str)] = &[("SLEEP", "0.3")];
    let split = b.split("wcs-ok", &[slow, slow, slow]);
    assert_eq!(submit(&runner, &split).await, Accepted::Submitted);
    assert_eq!(submit(&runner, &split).await, Accepted::Duplicate);
    match completed(&mut events, "wcs-ok").await {
        RunnerEvent::JobCompleted {
            reason, succeeded, ..
        } => assert_eq!((reason, succeeded), (TerminateReason::AllTasksComplete, 4)),
        other => panic!("{other:?}"),
    }
    runner.idle().await;
    let log = b.log();
    let merge_start = log.iter().position(|l| l == "start merge").unwrap();
    for part in 0..3 {
        let end = log
            .iter()
            .position(|l| *l == format!("end {part}"))
            .unwrap();
        assert!(
            end < merge_start,
            "the merge started before part {part} ended: {log:?}"
        );
    }
    let jd = b.jobs().dir("wcs-ok");
    let completion = jd.completion().unwrap();
    assert_eq!(
        completion.terminate_reason,
        TerminateReason::AllTasksComplete
    );
    let status = b.lookup(&split).await.unwrap();
    assert_eq!(status.state, TaskState::Succeeded);
    let parts = status.parts.unwrap();
    assert_eq!((parts.total, parts.succeeded), (3, 3));
    // A completed job takes nothing more: the same submission is a duplicate.
    assert_eq!(submit(&runner, &split).await, Accepted::Duplicate);
}

#[tokio::test]
async fn a_failed_part_ends_the_job_and_stops_the_rest() {
    let b = bench();
    // Two slots: parts 0 and 1 run, part 2 waits for a slot it never gets.
    let runner = b.runner(2).await;
    let mut events = runner.subscribe();
    let split = b.split(
        "wcs-fail",
        &[&[("SLEEP", "30")], &[("SLEEP", "0.3"), ("EXIT", "3")], &[]],
    );
    let started = std::time::Instant::now();
    assert_eq!(submit(&runner, &split).await, Accepted::Submitted);
    match completed(&mut events, "wcs-fail").await {
        RunnerEvent::JobCompleted {
            reason,
            failed_task,
            unfinished,
            ..
        } => {
            assert_eq!(reason, TerminateReason::TaskFailed);
            assert_eq!(failed_task.as_deref(), Some("1"));
            assert_eq!(
                unfinished, 3,
                "part 0 running, part 2 and the merge waiting"
            );
        }
        other => panic!("{other:?}"),
    }
    runner.idle().await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "part 0 was stopped"
    );
    let tasks = b.jobs().dir("wcs-fail").tasks();
    let stopped = result(&tasks, "0").expect("the stopped part completed");
    assert_eq!(stopped.result, RunResult::Failure);
    assert_eq!(
        stopped.failure_info.map(|f| f.code),
        Some(FailureCode::TaskEnded)
    );
    for never in ["2", MERGE_TASK_ID] {
        assert!(result(&tasks, never).is_none(), "{never} has a result");
        assert!(
            !tasks.dir(never).path().join("started").exists(),
            "{never} started"
        );
    }
    let log = b.log();
    assert!(
        !log.iter().any(|l| l == "start 2" || l == "start merge"),
        "{log:?}"
    );
    // The lookup names the part whose failure ended the job, not the one it stopped.
    let status = b.lookup(&split).await.unwrap();
    assert_eq!(status.state, TaskState::Failed);
    assert_eq!(status.failed_task.as_deref(), Some("1"));
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.failure.unwrap().code, "FailureExitCode");
    let parts = status.parts.unwrap();
    assert_eq!((parts.failed, parts.active), (2, 1));
    assert_eq!(submit(&runner, &split).await, Accepted::Duplicate);
}

#[tokio::test]
async fn a_job_completes_only_once_sealed() {
    let b = bench();
    let split = b.split("wcs-seal", &[&[], &[]]);
    // A submission that died before the seal: every task is in.
    let jobs = b.jobs();
    jobs.record(&split.job).unwrap();
    for task in split.tasks() {
        jobs.dir("wcs-seal").tasks().record(task).unwrap();
    }
    let runner = b.runner(2).await;
    let mut events = runner.subscribe();
    runner.idle().await;
    let tasks = jobs.dir("wcs-seal").tasks();
    assert!(result(&tasks, MERGE_TASK_ID).is_some(), "every task ran");
    assert!(
        !jobs.dir("wcs-seal").is_completed(),
        "not sealed: still active"
    );
    // The next submission seals it, and it completes.
    assert_eq!(submit(&runner, &split).await, Accepted::Duplicate);
    completed(&mut events, "wcs-seal").await;
    assert_eq!(
        jobs.dir("wcs-seal")
            .completion()
            .map(|c| c.terminate_reason),
        Some(TerminateReason::AllTasksComplete)
    );
}

fn success() -> TaskResult {
    TaskResult {
        result: RunResult::Success,
        exit_code: Some(0),
        failure_info: None,
        start_time: time::OffsetDateTime::UNIX_EPOCH,
        end_time: time::OffsetDateTime::UNIX_EPOCH,
        fetch_ms: 0,
        run_ms: 0,
        upload_ms: 0,
    }
}

/// Records `split` whole and sealed, as a runner that stopped would have left it.
fn recorded(b: &Bench, split: &SplitJob) -> TaskStore {
    let jobs = b.jobs();
    jobs.record(&split.job).unwrap();
    let tasks = jobs.dir(&split.job.id).tasks();
    for task in split.tasks() {
        tasks.record(task).unwrap();
    }
    jobs.dir(&split.job.id).seal().unwrap();
    tasks
}

#[tokio::test]
async fn a_restart_runs_a_blocked_merge_and_an_interrupted_part() {
    let b = bench();
    let split = b.split("wcs-restart", &[&[], &[], &[]]);
    let tasks = recorded(&b, &split);
    // Parts 0 and 1 succeeded, part 2 was running when the runner stopped.
    for part in ["0", "1"] {
        tasks.dir(part).mark_started().unwrap();
        tasks.dir(part).write_result(&success()).unwrap();
    }
    tasks.dir("2").mark_started().unwrap();
    let runner = b.runner(2).await;
    runner.idle().await;
    assert_eq!(b.log(), ["start 2", "end 2", "start merge", "end merge"]);
    let jd = b.jobs().dir("wcs-restart");
    assert_eq!(
        jd.completion().map(|c| c.terminate_reason),
        Some(TerminateReason::AllTasksComplete)
    );

    // Every part succeeded before the stop: the merge runs.
    let b = bench();
    let split = b.split("wcs-merge-only", &[&[], &[]]);
    let tasks = recorded(&b, &split);
    for part in ["0", "1"] {
        tasks.dir(part).write_result(&success()).unwrap();
    }
    let runner = b.runner(1).await;
    runner.idle().await;
    assert_eq!(b.log(), ["start merge", "end merge"]);
}

#[tokio::test]
async fn a_failure_recorded_before_a_stop_ends_the_job_at_the_restart() {
    let b = bench();
    let split = b.split("wcs-crashed", &[&[], &[]]);
    let tasks = recorded(&b, &split);
    tasks
        .dir("0")
        .write_result(&TaskResult {
            result: RunResult::Failure,
            exit_code: Some(1),
            failure_info: Some(TaskFailure::new(
                FailureCode::FailureExitCode,
                "exit code 1",
            )),
            ..success()
        })
        .unwrap();
    let runner = b.runner(2).await;
    runner.idle().await;
    assert!(b.log().is_empty(), "nothing ran: {:?}", b.log());
    let completion: JobCompletion = b.jobs().dir("wcs-crashed").completion().unwrap();
    assert_eq!(completion.terminate_reason, TerminateReason::TaskFailed);
    assert_eq!(completion.failed_task.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_split_recorded_by_another_process_is_run_once() {
    let b = bench();
    let runner = b.runner(2).await;
    let mut events = runner.subscribe();
    let split = b.split("wcs-adopted", &[&[], &[]]);
    let submitter = LocalSubmitter::open(&b.work).unwrap();
    assert_eq!(submit(&submitter, &split).await, Accepted::Submitted);
    assert_eq!(submit(&submitter, &split).await, Accepted::Duplicate);
    completed(&mut events, "wcs-adopted").await;
    assert_eq!(submit(&runner, &split).await, Accepted::Duplicate);
    runner.idle().await;
    let mut log = b.log();
    log.sort();
    assert_eq!(
        log,
        [
            "end 0",
            "end 1",
            "end merge",
            "start 0",
            "start 1",
            "start merge"
        ]
    );
}

#[tokio::test]
async fn a_removed_job_can_be_submitted_again_under_the_same_ids() {
    let b = bench();
    let runner = b.runner(2).await;
    let mut events = runner.subscribe();
    let split = b.split("wcs-again", &[&[("EXIT", "2")], &[]]);
    submit(&runner, &split).await;
    completed(&mut events, "wcs-again").await;
    runner.idle().await;
    // What reconcile --retry-failed does, from another process: the records go.
    let item = Submission::Split(Box::new(split.clone()));
    b.store().remove(&item).await.unwrap();
    b.store().remove(&item).await.unwrap();
    assert_eq!(b.lookup(&split).await, None);
    assert_eq!(submit(&runner, &split).await, Accepted::Submitted);
    completed(&mut events, "wcs-again").await;
    let starts = b.log().iter().filter(|l| *l == "start 0").count();
    assert_eq!(starts, 2, "{:?}", b.log());

    // Removed through the runner while a part runs: the part is stopped, nothing recorded.
    let long = b.split("wcs-running", &[&[("SLEEP", "30")]]);
    submit(&runner, &long).await;
    let item = Submission::Split(Box::new(long.clone()));
    tokio::time::timeout(Duration::from_secs(10), async {
        while b.log().iter().filter(|l| *l == "start 0").count() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    runner.remove(&item).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), runner.idle())
        .await
        .expect("the stopped part ends at once");
    assert!(!b.jobs().dir("wcs-running").exists());
    assert_eq!(b.lookup(&long).await, None);
}

#[tokio::test]
async fn a_removed_task_can_be_submitted_again_under_its_id() {
    let b = bench();
    let runner = b.runner(1).await;
    let item = Submission::task(
        &crate::runner::JobRef::new("wordcount", "pool"),
        b.task("wc-again", &[("EXIT", "1")]),
    );
    let items = [item.clone()];
    assert_eq!(runner.submit(&items).await[0], Ok(Accepted::Submitted));
    runner.idle().await;
    let status = b.store().lookup(&items).await.remove(0).unwrap().unwrap();
    assert_eq!(status.state, TaskState::Failed);
    assert_eq!(runner.submit(&items).await[0], Ok(Accepted::Duplicate));
    b.store().remove(&item).await.unwrap();
    assert_eq!(b.store().lookup(&items).await.remove(0).unwrap(), None);
    assert_eq!(runner.submit(&items).await[0], Ok(Accepted::Submitted));
    runner.idle().await;
    let starts = b.log().iter().filter(|l| *l == "start wc-again").count();
    assert_eq!(starts, 2, "{:?}", b.log());
}
