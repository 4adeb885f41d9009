//! The local runner against a real Azurite: it runs the task specification exactly as written,
//! and what would fail on Batch fails here. A small shell script stands in for `wordcount`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blob2batch::config::Settings;
use blob2batch::local::{
    Engine, FailureCategory, FailureCode, LocalRunner, LocalRunnerOptions, LocalSubmitter,
    RunnerEvent, TaskFailure,
};
use blob2batch::plan::{Plan, Planner};
use blob2batch::runner::{Accepted, JobRef, Submission, TaskRunner};
use blob2batch::storage::azurite::WELL_KNOWN_KEY;
use blob2batch::storage::{BlobEntry, BlobHttpHeaders, StorageAccount};
use blob2batch::task_spec::{IdentityReference, JobManagerTask, JobSpec, PoolInfo, TaskSpec};
use tokio::sync::broadcast;

/// The image the planner gives the word count's tasks (the settings name none).
const WORD_COUNT_IMAGE: &str = "localhost/wordcount:latest";

/// The job the local runner's tasks are planned for (it runs them whatever their job).
fn job() -> JobRef {
    JobRef::new("wordcount", "wordcount")
}

/// Stand-in for `wordcount INPUT`: the document on standard output, as the real program writes it.
const STAND_IN: &str = r#"#!/bin/sh
in="$1"
if grep -q FAIL "$in"; then
  echo "partial output"
  echo "stand-in: cannot count '$in'" >&2
  exit 1
fi
w=$(wc -w < "$in" | tr -d ' ')
printf '{"source":"%s","words":%s,"task":"%s"}' "$WORDCOUNT_SOURCE" "$w" "$AZ_BATCH_TASK_ID"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    work_dir: PathBuf,
    script: PathBuf,
    account: StorageAccount,
    input: String,
    output: String,
    planner: Planner,
}

async fn fixture(name: &str) -> Fixture {
    let azurite = crate::support::azurite::azurite();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wordcount-stand-in");
    std::fs::write(&script, STAND_IN).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let account = azurite.account();
    let input = format!("{name}-in");
    let output = format!("{name}-out");
    for c in [&input, &output] {
        account
            .container(c)
            .unwrap()
            .create_if_missing()
            .await
            .unwrap();
    }
    let work_dir = dir.path().join("work");
    // The planner `serve` builds for this pipeline: tasks are planned exactly as events would
    // plan them.
    let pairs = [
        ("RUNNER", "local".to_string()),
        ("STORAGE_ACCOUNT_URL", azurite.url.clone()),
        ("STORAGE_ACCOUNT_KEY", WELL_KNOWN_KEY.to_string()),
        ("INPUT_CONTAINER", input.clone()),
        ("OUTPUT_CONTAINER", output.clone()),
        ("LOCAL_WORK_DIR", work_dir.display().to_string()),
    ];
    let settings = Settings::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    Fixture {
        planner: Planner::from_settings(&settings),
        work_dir,
        _dir: dir,
        script,
        account,
        input,
        output,
    }
}

impl Fixture {
    async fn runner(&self) -> LocalRunner {
        LocalRunner::open(LocalRunnerOptions {
            word_count_image: WORD_COUNT_IMAGE.into(),
            work_dir: self.work_dir.clone(),
            concurrency: 2,
            engine: Engine::Process {
                wordcount_bin: self.script.clone(),
            },
        })
        .await
        .unwrap()
    }

    async fn put(&self, blob: &str, content: &str) -> String {
        self.account
            .container(&self.input)
            .unwrap()
            .upload_bytes(
                blob,
                content.as_bytes().to_vec(),
                &BlobHttpHeaders::default(),
            )
            .await
            .unwrap()
            .etag
            .unwrap()
    }

    async fn read_output(&self, blob: &str) -> Option<Vec<u8>> {
        let container = self.account.container(&self.output).unwrap();
        crate::support::storage::read_if_exists(&container, blob)
            .await
            .unwrap()
    }

    /// The task the handler plans for version `etag` of `blob`.
    fn task(&self, blob: &str, etag: &str) -> TaskSpec {
        let entry = BlobEntry {
            name: blob.into(),
            etag: etag.into(),
            ..BlobEntry::default()
        };
        let now = time::OffsetDateTime::now_utc();
        match self.planner.plan_listed(&self.input, &entry, now, None) {
            Ok(Plan::Run(planned)) => match planned.submission {
                Submission::Task { task, .. } => task,
                other => panic!("expected a task, got {other:?}"),
            },
            other => panic!("expected a task, got {other:?}"),
        }
    }

    /// The planned task of `blob` under another id, for a variation of it.
    fn task_as(&self, id: &str, blob: &str, etag: &str) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            ..self.task(blob, etag)
        }
    }
}

/// Waits for the final event (Done or Failed) of task `id`.
async fn finished(events: &mut broadcast::Receiver<RunnerEvent>, id: &str) -> RunnerEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e @ (RunnerEvent::Done { .. } | RunnerEvent::Failed { .. })) if e.id() == id => {
                    return e;
                }
                Ok(_) => {}
                Err(e) => panic!("runner events: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the task finishes within 60 s")
}

async fn submit(runner: &LocalRunner, task: TaskSpec) -> Accepted {
    let items = [Submission::task(&job(), task)];
    runner.submit(&items).await.remove(0).expect("accepted")
}

#[tokio::test]
async fn runs_a_task_and_uploads_its_result_with_headers() {
    let f = fixture("ok").await;
    let blob = "docs/a b#1 é.txt";
    let etag = f.put(blob, "one two three four").await;
    let runner = f.runner().await;
    let mut events = runner.subscribe();
    let task = f.task(blob, &etag);
    let id = task.id.clone();
    assert_eq!(submit(&runner, task.clone()).await, Accepted::Submitted);
    // Case-insensitive duplicate, like Batch.
    let shouted = TaskSpec {
        id: id.to_ascii_uppercase(),
        ..task
    };
    assert_eq!(submit(&runner, shouted).await, Accepted::Duplicate);
    match finished(&mut events, &id).await {
        RunnerEvent::Done {
            exit_code, outputs, ..
        } => {
            assert_eq!(exit_code, 0);
            assert_eq!(outputs.len(), 1);
            assert_eq!(outputs[0].blob, format!("{blob}.wordcount.json"));
        }
        other => panic!("expected Done, got {other:?}"),
    }
    let result = f
        .read_output(&format!("{blob}.wordcount.json"))
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&result).unwrap();
    assert_eq!(json["words"], 4);
    assert_eq!(json["source"], blob);
    assert_eq!(json["task"], id.as_str());
    let listed = f
        .account
        .container(&f.output)
        .unwrap()
        .list(None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "no logs on success: {listed:?}");
    assert_eq!(listed[0].content_type.as_deref(), Some("application/json"));
    // Metadata upload headers land as blob metadata, as Put Blob applies them on Batch.
    let properties = f
        .account
        .container(&f.output)
        .unwrap()
        .properties(&format!("{blob}.wordcount.json"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        properties.metadata.get("source_etag").map(String::as_str),
        Some(etag.as_str())
    );
    assert_eq!(
        properties.metadata.get("task_id").map(String::as_str),
        Some(id.as_str())
    );
    // Batch's layout on disk: the result is the task's standard output; the resource file is
    // removed once the task is done.
    let task_dir = f.work_dir.join("tasks").join(&id);
    let stdout = std::fs::read_to_string(task_dir.join("stdout.txt")).unwrap();
    assert_eq!(stdout.as_bytes(), result.as_slice());
    assert!(task_dir.join("stderr.txt").exists());
    assert!(!task_dir.join("wd/input/data").exists());
    runner.idle().await;
}

#[tokio::test]
async fn a_failing_task_uploads_its_logs_on_taskfailure() {
    let f = fixture("fail").await;
    let blob = "bad/input.txt";
    let etag = f.put(blob, "this will FAIL").await;
    let runner = f.runner().await;
    let mut events = runner.subscribe();
    let task = f.task(blob, &etag);
    let id = task.id.clone();
    submit(&runner, task).await;
    match finished(&mut events, &id).await {
        RunnerEvent::Failed {
            exit_code,
            stderr_tail,
            outputs,
            failure,
            ..
        } => {
            assert_eq!(exit_code, Some(1));
            assert_eq!(failure.code, FailureCode::FailureExitCode);
            assert_eq!(failure.category, FailureCategory::UserError);
            assert_eq!(failure.message, "exit code 1");
            assert!(
                stderr_tail.contains("stand-in: cannot count"),
                "{stderr_tail}"
            );
            let mut blobs: Vec<_> = outputs.iter().map(|o| o.blob.clone()).collect();
            blobs.sort();
            assert_eq!(
                blobs,
                [
                    format!("bad/input.txt.wordcount.logs/{id}/stderr.txt"),
                    format!("bad/input.txt.wordcount.logs/{id}/stdout.txt")
                ]
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let stderr = f
        .read_output(&format!("bad/input.txt.wordcount.logs/{id}/stderr.txt"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&stderr).contains("cannot count"));
    assert!(
        f.read_output("bad/input.txt.wordcount.json")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn what_fails_on_batch_fails_here() {
    let f = fixture("wrong").await;
    let etag = f.put("x.txt", "a b c").await;
    let runner = f.runner().await;
    let mut events = runner.subscribe();
    let task = |id: &str| f.task_as(id, "x.txt", &etag);

    // A tampered read SAS: the resource file cannot be fetched.
    let mut bad_sas = task("wc-bad-sas");
    let url = bad_sas.resource_files[0].http_url.take().unwrap();
    bad_sas.resource_files[0].http_url = Some(url.replace("sig=", "sig=AAAA"));
    submit(&runner, bad_sas).await;
    let why = failure(finished(&mut events, "wc-bad-sas").await);
    assert_eq!(why.code, FailureCode::ResourceFileError, "{why}");
    assert!(why.message.contains("403"), "{why}");
    assert!(!why.message.contains("sig=AAAA"), "the SAS leaked: {why}");

    // A SAS for another blob.
    let mut wrong_blob = task("wc-wrong-blob");
    wrong_blob.resource_files[0].http_url = Some(
        crate::support::storage::blob_sas_url(
            &f.account,
            &f.input,
            "other.txt",
            "r",
            Duration::from_secs(60),
        )
        .replace("other.txt", "x.txt"),
    );
    submit(&runner, wrong_blob).await;
    let why = failure(finished(&mut events, "wc-wrong-blob").await);
    assert_eq!(why.code, FailureCode::ResourceFileError, "{why}");
    assert!(why.message.contains("403"), "{why}");

    // A read-only SAS for the output container: the upload fails.
    let mut read_only = task("wc-ro-output");
    read_only.output_files[0]
        .destination
        .container
        .container_url = crate::support::storage::container_sas_url(
        &f.account,
        &f.output,
        "rl",
        Duration::from_secs(60),
    );
    submit(&runner, read_only).await;
    let why = failure(finished(&mut events, "wc-ro-output").await);
    assert_eq!(why.code, FailureCode::FileUploadError, "{why}");
    assert!(why.message.contains("403"), "{why}");

    // A pattern that matches nothing (the program writes to standard output only).
    let mut no_match = task("wc-no-match");
    no_match.output_files[0].file_pattern = "out/wordcount.json".into();
    submit(&runner, no_match).await;
    let why = failure(finished(&mut events, "wc-no-match").await);
    assert_eq!(why.code, FailureCode::FileUploadError, "{why}");
    assert!(why.message.contains("no file matches"), "{why}");

    // A file path leaving the working directory.
    let mut escape = task("wc-escape");
    escape.resource_files[0].file_path = "../escape".into();
    submit(&runner, escape).await;
    let why = failure(finished(&mut events, "wc-escape").await);
    assert_eq!(why.code, FailureCode::ResourceFileError, "{why}");
    assert!(
        why.message.contains("leaves the task's working directory"),
        "{why}"
    );

    // Managed identity cannot work here.
    let mut identity = task("wc-identity");
    identity.resource_files[0].http_url = Some(f.account.blob_url(&f.input, "x.txt"));
    identity.resource_files[0].identity_reference = Some(IdentityReference {
        resource_id: "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id".into(),
    });
    submit(&runner, identity).await;
    let why = failure(finished(&mut events, "wc-identity").await);
    assert_eq!(why.code, FailureCode::ResourceFileError, "{why}");
    assert!(why.message.contains("identityReference"), "{why}");

    // An id Batch would refuse.
    let items = [Submission::task(&job(), task("not a valid id"))];
    assert!(runner.submit(&items).await[0].is_err());

    assert!(f.read_output("x.txt.wordcount.json").await.is_none());
}

fn failure(event: RunnerEvent) -> TaskFailure {
    match event {
        RunnerEvent::Failed { failure, .. } => failure,
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_restart_remembers_ids_and_reruns_unfinished_tasks() {
    let f = fixture("restart").await;
    let first_etag = f.put("r1.txt", "alpha beta").await;
    let second_etag = f.put("r2.txt", "gamma delta epsilon").await;
    let first = f.task("r1.txt", &first_etag);
    let second = f.task("r2.txt", &second_etag);
    {
        let runner = f.runner().await;
        let mut events = runner.subscribe();
        submit(&runner, first.clone()).await;
        finished(&mut events, &first.id).await;
    }
    // A task accepted but not finished when the runner stopped.
    let unfinished = f.work_dir.join("tasks").join(&second.id);
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(
        unfinished.join("task.json"),
        serde_json::to_vec(&second).unwrap(),
    )
    .unwrap();

    let runner = f.runner().await;
    let events = runner.subscribe();
    assert_eq!(submit(&runner, first).await, Accepted::Duplicate);
    let shouted = TaskSpec {
        id: second.id.to_ascii_uppercase(),
        ..second
    };
    assert_eq!(submit(&runner, shouted).await, Accepted::Duplicate);
    // The re-queued task may have finished before we subscribed: check its result file.
    runner.idle().await;
    assert!(unfinished.join("result.json").exists());
    drop(events);
    let json = f.read_output("r2.txt.wordcount.json").await.unwrap();
    assert!(String::from_utf8_lossy(&json).contains("\"words\":3"));
}

#[tokio::test]
async fn concurrency_is_bounded() {
    let f = fixture("bounded").await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("running");
    std::fs::create_dir_all(&marker).unwrap();
    // Each task records itself as running for a while; the script checks how many run at once.
    let script = dir.path().join("slow");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {m}/$AZ_BATCH_TASK_ID\nls {m} | wc -l >> {m}.max\nsleep 0.3\nrm {m}/$AZ_BATCH_TASK_ID\necho '{{}}'\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let etag = f.put("c.txt", "x").await;
    let runner = LocalRunner::open(LocalRunnerOptions {
        word_count_image: WORD_COUNT_IMAGE.into(),
        work_dir: f.work_dir.clone(),
        concurrency: 2,
        engine: Engine::Process {
            wordcount_bin: script,
        },
    })
    .await
    .unwrap();
    let items: Vec<Submission> = (0..6)
        .map(|i| Submission::task(&job(), f.task_as(&format!("wc-c-{i}"), "c.txt", &etag)))
        .collect();
    let results = runner.submit(&items).await;
    assert!(results.iter().all(|r| r == &Ok(Accepted::Submitted)));
    runner.idle().await;
    let max = std::fs::read_to_string(Path::new(&format!("{}.max", marker.display()))).unwrap();
    let max = max
        .lines()
        .map(|l| l.trim().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert!(max <= 2, "{max} tasks ran at once");
}

#[tokio::test]
async fn a_job_runs_its_job_manager_task_under_the_job_id() {
    let f = fixture("job").await;
    let etag = f.put("j.txt", "x y z").await;
    let runner = f.runner().await;
    let mut events = runner.subscribe();
    let job = JobSpec {
        id: "wcjob-1".into(),
        display_name: None,
        pool_info: PoolInfo {
            pool_id: None,
            auto_pool_specification: Some(serde_json::json!({"poolLifetimeOption": "job"})),
        },
        on_all_tasks_complete: None,
        on_task_failure: None,
        uses_task_dependencies: None,
        job_manager_task: Some(JobManagerTask {
            task: f.task_as("wordcount", "j.txt", &etag),
            kill_job_on_completion: true,
        }),
    };
    let items = [Submission::Job(job.clone())];
    assert_eq!(runner.submit(&items).await[0], Ok(Accepted::Submitted));
    assert_eq!(runner.submit(&items).await[0], Ok(Accepted::Duplicate));
    match finished(&mut events, "wcjob-1").await {
        RunnerEvent::Done { .. } => {}
        other => panic!("expected Done, got {other:?}"),
    }
    let json = f.read_output("j.txt.wordcount.json").await.unwrap();
    assert!(String::from_utf8_lossy(&json).contains("\"task\":\"wcjob-1\""));
}

#[tokio::test]
async fn tasks_recorded_by_another_process_are_run_once() {
    let f = fixture("adopt").await;
    let etag = f.put("x.txt", "a b c d").await;
    let runner = f.runner().await;
    let mut events = runner.subscribe();
    // What `reconcile` does with RUNNER=local: record the task, run nothing.
    let submitter = LocalSubmitter::open(&f.work_dir).unwrap();
    let task = f.task("x.txt", &etag);
    let items = [Submission::task(&job(), task.clone())];
    assert_eq!(submitter.submit(&items).await[0], Ok(Accepted::Submitted));
    assert_eq!(submitter.submit(&items).await[0], Ok(Accepted::Duplicate));
    match finished(&mut events, &task.id).await {
        RunnerEvent::Done { .. } => {}
        other => panic!("expected Done, got {other:?}"),
    }
    // The runner knows the id now: the same submission through it is a duplicate.
    assert_eq!(submit(&runner, task).await, Accepted::Duplicate);
    let json = f.read_output("x.txt.wordcount.json").await.unwrap();
    assert!(String::from_utf8_lossy(&json).contains("\"words\":4"));
    runner.idle().await;
}
