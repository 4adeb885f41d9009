//! `LocalRunner`: runs Batch task specifications on this machine, the way a Batch node would.
//!
//! Per task: its record and directory (see [`super::task_dir`]); resource files fetched from their
//! URLs (SAS) into the working directory (see [`super::resources`]); the command run by the [`Engine`]; output files uploaded
//! per their condition (see [`super::outputs`]). What would fail on Batch fails here, with a
//! failure in Batch's shape ([`TaskFailure`]).
//!
//! Task ids are case-insensitive and remembered in the work directory: a repeated id is a
//! duplicate, and a task accepted but not finished when the runner stopped runs again when it
//! starts. One runner at a time executes the tasks of a work directory (it holds a lock on it).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use super::engine::{Engine, WordcountMissing, find_wordcount};
use super::failure::{FailureCode, TaskFailure};
use super::outputs::{UploadedOutput, Uploads, upload_outputs};
use super::resources::fetch_resources;
use super::task_dir::{Recorded, RunResult, TaskDir, TaskResult, TaskStore};
use crate::config::LocalSettings;
use crate::http_client::{HttpClientError, HttpClientOptions, http_client};
use crate::runner::{Accepted, BoxFuture, Submission, SubmitError, SubmitResult, TaskRunner};
use crate::sync::lock;
use crate::task_spec::{TaskSpec, is_valid_id};

#[derive(Clone, Debug)]
pub struct LocalRunnerOptions {
    pub work_dir: PathBuf,
    /// Tasks running at once.
    pub concurrency: usize,
    /// How the word count's tasks run.
    pub engine: Engine,
    /// The image of the word count's tasks (tasks of any other image run in it, with podman).
    pub word_count_image: String,
}

impl LocalRunnerOptions {
    /// The runner the settings ask for: podman with `LOCAL_PODMAN_IMAGE`, else the `wordcount`
    /// program (`LOCAL_WORDCOUNT_BIN`, beside `blob2batch`, or on `PATH`).
    pub fn from_settings(
        settings: &LocalSettings,
        word_count_image: &str,
    ) -> Result<Self, LocalRunnerError> {
        let engine = match &settings.podman_image {
            Some(image) => Engine::Podman {
                image: image.clone(),
            },
            None => Engine::Process {
                wordcount_bin: find_wordcount(settings.wordcount_bin.as_deref())?,
            },
        };
        Ok(LocalRunnerOptions {
            work_dir: settings.work_dir.clone(),
            concurrency: settings.concurrency,
            engine,
            word_count_image: word_count_image.to_string(),
        })
    }
}

/// Where a task's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Downloading the resource files.
    pub fetch: Duration,
    /// The command.
    pub run: Duration,
    /// Uploading the output files.
    pub upload: Duration,
}

/// What happens to tasks, for whoever watches (the `dev` console, tests).
#[derive(Clone, Debug)]
pub enum RunnerEvent {
    Received {
        id: String,
        display_name: Option<String>,
    },
    Running {
        id: String,
        display_name: Option<String>,
    },
    Done {
        id: String,
        display_name: Option<String>,
        exit_code: i32,
        duration: Duration,
        phases: Phases,
        outputs: Vec<UploadedOutput>,
        task_dir: PathBuf,
    },
    Failed {
        id: String,
        display_name: Option<String>,
        exit_code: Option<i32>,
        duration: Duration,
        failure: TaskFailure,
        stderr_tail: String,
        /// Outputs uploaded anyway (e.g. the logs on `taskfailure`).
        outputs: Vec<UploadedOutput>,
        task_dir: PathBuf,
    },
}

impl RunnerEvent {
    pub fn id(&self) -> &str {
        match self {
            RunnerEvent::Received { id, .. }
            | RunnerEvent::Running { id, .. }
            | RunnerEvent::Done { id, .. }
            | RunnerEvent::Failed { id, .. } => id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalRunnerError {
    #[error("cannot use the work directory {path}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another runner is executing the tasks of {0}; stop it, or give this one its own \
         LOCAL_WORK_DIR"
    )]
    Busy(PathBuf),
    #[error(transparent)]
    Wordcount(#[from] WordcountMissing),
    #[error(transparent)]
    HttpClient(#[from] HttpClientError),
}

/// How often the runner looks for tasks recorded by other processes.
const RECORD_SCAN_INTERVAL: Duration = Duration::from_millis(500);

/// How long a new runner waits for one that is stopping to release the work directory.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Runs [`Submission`]s locally. Cheap to clone.
#[derive(Clone)]
pub struct LocalRunner {
    inner: Arc<Inner>,
}

struct Inner {
    options: LocalRunnerOptions,
    store: TaskStore,
    /// Lower-case ids this runner knows are recorded.
    seen: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    events: broadcast::Sender<RunnerEvent>,
    http: reqwest::Client,
    running: Mutex<JoinSet<()>>,
    pending: tokio::sync::watch::Sender<usize>,
    /// Held for as long as the runner lives; the kernel releases it when the process dies.
    _lock: std::fs::File,
}

impl LocalRunner {
    /// Opens (or creates) the work directory and re-queues tasks left unfinished by an earlier
    /// run; waits a moment for a runner that is stopping to release the directory.
    pub async fn open(options: LocalRunnerOptions) -> Result<Self, LocalRunnerError> {
        let work_dir_error = |source| LocalRunnerError::WorkDir {
            path: options.work_dir.clone(),
            source,
        };
        let store = TaskStore::open(&options.work_dir).map_err(work_dir_error)?;
        let lock = lock_work_dir(&options.work_dir).await?;
        // Azurite (Node) drops idle connections after 5 s; a pooled connection reused after
        // that is reset mid-request.
        let http = http_client(&HttpClientOptions {
            pool_idle_timeout: Some(Duration::from_secs(2)),
            ..HttpClientOptions::default()
        })?;
        let ids = store.ids().map_err(work_dir_error)?;
        let unfinished: Vec<TaskSpec> = ids
            .iter()
            .map(|id| store.dir(id))
            .filter(|dir| dir.result().is_none())
            .filter_map(|dir| dir.spec().ok())
            .collect();
        let (events, _) = broadcast::channel(4096);
        let (pending, _) = tokio::sync::watch::channel(0);
        let runner = LocalRunner {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
                options,
                store,
                seen: Mutex::new(ids.into_iter().collect()),
                events,
                http,
                running: Mutex::new(JoinSet::new()),
                pending,
                _lock: lock,
            }),
        };
        for task in unfinished {
            tracing::info!(task_id = %task.id, "re-queueing a task left unfinished");
            runner.spawn(task);
        }
        runner.watch_for_records();
        Ok(runner)
    }

    /// Looks for records other processes make (`blob2batch reconcile` with `RUNNER=local`), as a
    /// Batch pool picks up tasks added to its job. Stops when the runner is dropped.
    fn watch_for_records(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RECORD_SCAN_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                LocalRunner { inner }.adopt_recorded();
            }
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunnerEvent> {
        self.inner.events.subscribe()
    }

    pub fn work_dir(&self) -> &Path {
        &self.inner.options.work_dir
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.options.engine
    }

    /// The task records of its work directory.
    pub fn store(&self) -> &TaskStore {
        &self.inner.store
    }

    /// Tasks accepted and not finished yet.
    pub fn pending(&self) -> usize {
        *self.inner.pending.borrow()
    }

    /// Waits until no task is queued or running.
    pub async fn idle(&self) {
        let mut rx = self.inner.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Stops every running task (their processes are killed); unfinished tasks run again on the
    /// next start with the same work directory.
    pub async fn shutdown(&self) {
        let mut set = std::mem::take(&mut *lock(&self.inner.running));
        set.shutdown().await;
    }

    fn accept(&self, item: &Submission) -> SubmitResult {
        let task = runnable(item)?;
        let key = task.id.to_ascii_lowercase();
        // Claimed before it is recorded, so that the scan for records made elsewhere never
        // starts this one too.
        if !lock(&self.inner.seen).insert(key.clone()) {
            return Ok(Accepted::Duplicate);
        }
        match self.inner.store.record(&task) {
            Ok(Recorded::New) => {
                let _ = self.inner.events.send(RunnerEvent::Received {
                    id: task.id.clone(),
                    display_name: task.display_name.clone(),
                });
                self.spawn(task);
                Ok(Accepted::Submitted)
            }
            Ok(Recorded::Exists) => {
                // Recorded by another process (`reconcile`): this runner executes it.
                let dir = self.inner.store.dir(&task.id);
                if dir.result().is_none()
                    && let Ok(recorded) = dir.spec()
                {
                    self.spawn(recorded);
                }
                Ok(Accepted::Duplicate)
            }
            Err(e) => {
                lock(&self.inner.seen).remove(&key);
                Err(SubmitError::transient(RecordError {
                    id: task.id.clone(),
                    source: e,
                }))
            }
        }
    }

    /// Starts the tasks other processes recorded in the work directory since the last look.
    fn adopt_recorded(&self) {
        let Ok(ids) = self.inner.store.ids() else {
            return;
        };
        for id in ids {
            if !lock(&self.inner.seen).insert(id.clone()) {
                continue;
            }
            let dir = self.inner.store.dir(&id);
            if dir.result().is_none()
                && let Ok(task) = dir.spec()
            {
                tracing::info!(task_id = %task.id, "running a task recorded by another process");
                let _ = self.inner.events.send(RunnerEvent::Received {
                    id: task.id.clone(),
                    display_name: task.display_name.clone(),
                });
                self.spawn(task);
            }
        }
    }

    fn spawn(&self, task: TaskSpec) {
        self.inner.pending.send_modify(|n| *n += 1);
        let runner = self.clone();
        let mut running = lock(&self.inner.running);
        // Reap finished tasks so the set does not grow without bound.
        while running.try_join_next().is_some() {}
        running.spawn(async move {
            let _guard = PendingGuard(runner.inner.clone());
            let permit = runner.inner.permits.clone().acquire_owned().await;
            if permit.is_err() {
                return;
            }
            runner.run(task).await;
        });
    }

    async fn run(&self, task: TaskSpec) {
        let dir = self.inner.store.dir(&task.id);
        let started = Instant::now();
        let start_time = OffsetDateTime::now_utc();
        let _ = dir.mark_started();
        let _ = self.inner.events.send(RunnerEvent::Running {
            id: task.id.clone(),
            display_name: task.display_name.clone(),
        });
        let mut phases = Phases::default();
        let outcome = self.execute(&task, &dir, &mut phases).await;
        let duration = started.elapsed();
        let record = TaskResult {
            result: if outcome.failure.is_none() {
                RunResult::Success
            } else {
                RunResult::Failure
            },
            exit_code: outcome.exit_code,
            failure_info: outcome.failure.clone(),
            start_time,
            end_time: OffsetDateTime::now_utc(),
            fetch_ms: phases.fetch.as_millis() as u64,
            run_ms: phases.run.as_millis() as u64,
            upload_ms: phases.upload.as_millis() as u64,
        };
        if let Err(e) = dir.write_result(&record) {
            tracing::warn!(task_id = %task.id, error = %e, "cannot write the task's result record");
        }
        let event = match outcome.failure {
            None => RunnerEvent::Done {
                id: task.id.clone(),
                display_name: task.display_name.clone(),
                exit_code: outcome.exit_code.unwrap_or(0),
                duration,
                phases,
                outputs: outcome.outputs,
                task_dir: dir.path().to_path_buf(),
            },
            Some(failure) => RunnerEvent::Failed {
                id: task.id.clone(),
                display_name: task.display_name.clone(),
                exit_code: outcome.exit_code,
                duration,
                failure,
                stderr_tail: dir.stderr_tail(2048),
                outputs: outcome.outputs,
                task_dir: dir.path().to_path_buf(),
            },
        };
        let _ = self.inner.events.send(event);
    }

    /// The task's life on a node: a clean working directory, its resource files, its command,
    /// its output files.
    async fn execute(&self, task: &TaskSpec, dir: &TaskDir, phases: &mut Phases) -> Execution {
        let (stdout, stderr) = match prepare(dir) {
            Ok(logs) => logs,
            Err(failure) => return Execution::failed(failure),
        };
        let fetch_started = Instant::now();
        let fetched = match fetch_resources(&self.inner.http, task, &dir.wd()).await {
            Ok(fetched) => fetched,
            Err(failure) => {
                append(&dir.stderr(), &format!("{failure}\n"));
                let uploads = upload_outputs(task, dir, false).await;
                return Execution {
                    exit_code: None,
                    failure: Some(failure),
                    outputs: uploads.done,
                };
            }
        };
        phases.fetch = fetch_started.elapsed();

        let run_started = Instant::now();
        let exit = self
            .inner
            .options
            .engine
            .run(
                task,
                &self.inner.options.word_count_image,
                dir,
                (stdout, stderr),
            )
            .await;
        phases.run = run_started.elapsed();
        // Resource files can be large and are not needed any more.
        for path in fetched {
            let _ = std::fs::remove_file(path);
        }
        let (exit_code, failure) = match exit {
            Ok(0) => (Some(0), None),
            Ok(code) => (
                Some(code),
                Some(TaskFailure::new(
                    FailureCode::FailureExitCode,
                    format!("exit code {code}"),
                )),
            ),
            Err(failure) => {
                append(&dir.stderr(), &format!("{failure}\n"));
                (None, Some(failure))
            }
        };
        let upload_started = Instant::now();
        let Uploads {
            done,
            failure: upload_failure,
        } = upload_outputs(task, dir, failure.is_none()).await;
        phases.upload = upload_started.elapsed();
        let failure = match (failure, upload_failure) {
            (None, upload) => upload,
            (Some(failure), None) => Some(failure),
            (Some(failure), Some(upload)) => Some(failure.and(&upload)),
        };
        Execution {
            exit_code,
            failure,
            outputs: done,
        }
    }
}

impl TaskRunner for LocalRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move { items.iter().map(|item| self.accept(item)).collect() })
    }
}

/// The task a submission runs, under the submission's id; refused as Batch would refuse it.
fn runnable(item: &Submission) -> Result<TaskSpec, SubmitError> {
    let Some(task) = item.work() else {
        return Err(SubmitError::rejected(
            "InvalidPropertyValue",
            format!("job `{}` has no job manager task to run", item.id()),
        ));
    };
    let id = item.id();
    if !is_valid_id(id) {
        return Err(SubmitError::rejected(
            "InvalidPropertyValue",
            format!("the id `{id}` is not a valid Batch task id"),
        ));
    }
    let mut task = task.clone();
    // A job runs its manager task under the job's id.
    task.id = id.to_string();
    Ok(task)
}

/// Records tasks in a work directory without running them: what `reconcile` does with
/// `RUNNER=local`, while `dev` (or `serve`) executes them, as a Batch pool runs the tasks added
/// to its job. Ids are remembered across processes: a recorded id is a duplicate.
#[derive(Clone, Debug)]
pub struct LocalSubmitter {
    store: TaskStore,
}

impl LocalSubmitter {
    pub fn open(work_dir: &Path) -> Result<LocalSubmitter, LocalRunnerError> {
        let store = TaskStore::open(work_dir).map_err(|source| LocalRunnerError::WorkDir {
            path: work_dir.to_path_buf(),
            source,
        })?;
        Ok(LocalSubmitter { store })
    }

    pub fn store(&self) -> &TaskStore {
        &self.store
    }
}

impl TaskRunner for LocalSubmitter {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        let results = items
            .iter()
            .map(|item| {
                let task = runnable(item)?;
                match self.store.record(&task) {
                    Ok(Recorded::New) => Ok(Accepted::Submitted),
                    Ok(Recorded::Exists) => Ok(Accepted::Duplicate),
                    Err(source) => Err(SubmitError::transient(RecordError {
                        id: task.id.clone(),
                        source,
                    })),
                }
            })
            .collect();
        Box::pin(async move { results })
    }
}

/// A task could not be recorded in the work directory.
#[derive(Debug, thiserror::Error)]
#[error("cannot record task {id} in the work directory")]
struct RecordError {
    id: String,
    #[source]
    source: std::io::Error,
}

struct PendingGuard(Arc<Inner>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

struct Execution {
    exit_code: Option<i32>,
    failure: Option<TaskFailure>,
    outputs: Vec<UploadedOutput>,
}

impl Execution {
    fn failed(failure: TaskFailure) -> Self {
        Execution {
            exit_code: None,
            failure: Some(failure),
            outputs: Vec::new(),
        }
    }
}

/// A clean working directory (a task that runs again starts from scratch, as on a node) and
/// the task's `stdout.txt` and `stderr.txt`.
fn prepare(dir: &TaskDir) -> Result<(std::fs::File, std::fs::File), TaskFailure> {
    let wd = dir.wd();
    let _ = std::fs::remove_dir_all(&wd);
    std::fs::create_dir_all(&wd).map_err(|e| {
        TaskFailure::new(
            FailureCode::TaskDirectoryError,
            format!("cannot create {}: {e}", wd.display()),
        )
    })?;
    let log = |path: PathBuf| {
        std::fs::File::create(path).map_err(|e| {
            TaskFailure::new(
                FailureCode::TaskDirectoryError,
                format!("cannot create the task's log files: {e}"),
            )
        })
    };
    Ok((log(dir.stdout())?, log(dir.stderr())?))
}

/// Takes the work directory's lock, waiting a moment (without holding up a runtime thread) for
/// a runner that is stopping.
async fn lock_work_dir(work_dir: &Path) -> Result<std::fs::File, LocalRunnerError> {
    use std::os::fd::AsRawFd as _;
    let path = work_dir.join("runner.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LocalRunnerError::WorkDir {
            path: path.clone(),
            source,
        })?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own; it takes no pointer.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        if Instant::now() >= deadline {
            return Err(LocalRunnerError::Busy(work_dir.to_path_buf()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_runner_at_a_time_per_work_directory() {
        let dir = tempfile::tempdir().unwrap();
        let options = LocalRunnerOptions {
            word_count_image: "localhost/wordcount:latest".into(),
            work_dir: dir.path().to_path_buf(),
            concurrency: 1,
            engine: Engine::Process {
                wordcount_bin: PathBuf::from("/bin/true"),
            },
        };
        let first = LocalRunner::open(options.clone()).await.unwrap();
        match LocalRunner::open(options.clone()).await {
            Err(LocalRunnerError::Busy(path)) => assert_eq!(path, dir.path()),
            other => panic!("expected Busy, got {:?}", other.err()),
        }
        drop(first);
        assert!(
            LocalRunner::open(options).await.is_ok(),
            "the lock is released with the runner"
        );
    }
}
