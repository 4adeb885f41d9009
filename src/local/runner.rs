//! `LocalRunner`: runs Batch task specifications on this machine, the way a Batch node would.
//!
//! Per task: its record and directory (see [`super::task_dir`]); resource files fetched from their
//! URLs (SAS) into the working directory (see [`super::resources`]); the command run by the
//! [`Engine`]; output files uploaded per their condition (see [`super::outputs`]). What would fail
//! on Batch fails here, with a failure in Batch's shape ([`TaskFailure`]).
//!
//! Task ids are case-insensitive and remembered in the work directory: a repeated id is a
//! duplicate, and a task accepted but not finished when the runner stopped runs again when it
//! starts. A split blob's job is recorded and run as Batch runs it (see [`super::split`] and
//! [`super::job_runs`]). One runner at a time executes the tasks of a work directory (it holds
//! a lock on it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;

use super::engine::{Engine, WordcountMissing, find_wordcount};
use super::events::{Phases, RunnerEvent};
use super::failure::{FailureCode, TaskFailure};
use super::job_dir::JobStore;
use super::job_runs::{Changes, JobRuns, Launch, StopReason, StopSender, StopSignal, TaskEnd};
use super::outputs::{UploadedOutput, Uploads, upload_outputs};
use super::resources::fetch_resources;
use super::split::{RecordError, record_split};
use super::task_dir::{RecordStamp, Recorded, RunResult, ScanGate, TaskDir, TaskResult, TaskStore};
use crate::config::LocalSettings;
use crate::http_client::{HttpClientError, HttpClientOptions, http_client};
use crate::runner::{
    Accepted, BoxFuture, LookupResult, RemoveError, SplitJob, Submission, SubmitError,
    SubmitResult, TaskLookup, TaskRemover, TaskRunner,
};
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
    job_store: JobStore,
    /// The split blobs' jobs and where their tasks stand.
    jobs: Mutex<JobRuns>,
    /// Tasks of `tasks/` queued or running here (lower-case id): their claim and stop sender.
    active: Mutex<HashMap<String, (u64, StopSender)>>,
    claims: AtomicU64,
    /// One split blob is recorded at a time: two deliveries of one blob then give one
    /// `Submitted`.
    split_submissions: tokio::sync::Mutex<()>,
    tasks_gate: Mutex<ScanGate>,
    permits: Arc<Semaphore>,
    events: broadcast::Sender<RunnerEvent>,
    http: reqwest::Client,
    running: Mutex<JoinSet<()>>,
    pending: watch::Sender<usize>,
    /// Held for as long as the runner lives; the kernel releases it when the process dies.
    _lock: std::fs::File,
}

/// One task to run: of `tasks/`, or of a job of its own.
struct Work {
    task: TaskSpec,
    dir: TaskDir,
    stop: StopSignal,
    owner: Owner,
}

/// Whom a task reports its end to.
enum Owner {
    /// A task of `tasks/`, with its claim in `active`.
    Tasks { claim: u64 },
    /// A task of a job of its own (its id as submitted, and its record).
    Job { id: String, record_id: String },
}

impl Work {
    fn job(&self) -> Option<String> {
        match &self.owner {
            Owner::Tasks { .. } => None,
            Owner::Job { id, .. } => Some(id.clone()),
        }
    }
}

impl LocalRunner {
    /// Opens (or creates) the work directory and re-queues tasks left unfinished by an earlier
    /// run (a split blob's merge whose parts all succeeded included); waits a moment for a
    /// runner that is stopping to release the directory.
    pub async fn open(options: LocalRunnerOptions) -> Result<Self, LocalRunnerError> {
        let work_dir_error = |source| LocalRunnerError::WorkDir {
            path: options.work_dir.clone(),
            source,
        };
        let store = TaskStore::open(&options.work_dir).map_err(work_dir_error)?;
        let job_store = JobStore::open(&options.work_dir).map_err(work_dir_error)?;
        let lock = lock_work_dir(&options.work_dir).await?;
        // Azurite (Node) drops idle connections after 5 s; a pooled connection reused after
        // that is reset mid-request.
        let http = http_client(&HttpClientOptions {
            pool_idle_timeout: Some(Duration::from_secs(2)),
            ..HttpClientOptions::default()
        })?;
        let unfinished: Vec<TaskSpec> = store
            .ids()
            .map_err(work_dir_error)?
            .iter()
            .map(|id| store.dir(id))
            .filter(|dir| dir.result().is_none())
            .filter_map(|dir| dir.spec().ok())
            .collect();
        let (jobs, job_changes) = JobRuns::open(job_store.clone()).map_err(work_dir_error)?;
        let runner = LocalRunner {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
                options,
                store,
                job_store,
                jobs: Mutex::new(jobs),
                active: Mutex::new(HashMap::new()),
                claims: AtomicU64::new(0),
                split_submissions: tokio::sync::Mutex::new(()),
                tasks_gate: Mutex::new(ScanGate::default()),
                events: broadcast::channel(4096).0,
                http,
                running: Mutex::new(JoinSet::new()),
                pending: watch::channel(0).0,
                _lock: lock,
            }),
        };
        for task in unfinished {
            tracing::info!(task_id = %task.id, "re-queueing a task left unfinished");
            if let Some(work) = runner.claim(task) {
                runner.spawn(work);
            }
        }
        for launch in &job_changes.launch {
            tracing::info!(job_id = %launch.job, task_id = %launch.task.id, "re-queueing a job's task");
        }
        runner.apply(job_changes);
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

    /// Tasks accepted and not finished yet (a task waiting for a dependency is not counted
    /// until it can start).
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

    fn send(&self, event: RunnerEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Claims task `task` of `tasks/` for this runner (`None` when it is queued or running
    /// here already): claimed before it is recorded, so that the scan for records made
    /// elsewhere never starts it too.
    fn claim(&self, task: TaskSpec) -> Option<Work> {
        let key = task.id.to_ascii_lowercase();
        let mut active = lock(&self.inner.active);
        if active.contains_key(&key) {
            return None;
        }
        let claim = self.inner.claims.fetch_add(1, Ordering::Relaxed);
        let (stop, signal) = watch::channel(None);
        active.insert(key, (claim, stop));
        Some(Work {
            dir: self.inner.store.dir(&task.id),
            task,
            stop: signal,
            owner: Owner::Tasks { claim },
        })
    }

    /// Gives up a claim (only its own: the id may have been claimed again since).
    fn release(&self, id: &str, claim: u64) {
        let key = id.to_ascii_lowercase();
        let mut active = lock(&self.inner.active);
        if active.get(&key).is_some_and(|(c, _)| *c == claim) {
            active.remove(&key);
        }
    }

    fn accept(&self, item: &Submission) -> SubmitResult {
        let task = runnable(item)?;
        let Some(work) = self.claim(task) else {
            return Ok(Accepted::Duplicate);
        };
        let Owner::Tasks { claim } = work.owner else {
            unreachable!("a claim is of tasks/")
        };
        match self.inner.store.record(&work.task) {
            Ok(Recorded::New) => {
                self.send(RunnerEvent::Received {
                    id: work.task.id.clone(),
                    job: None,
                    display_name: work.task.display_name.clone(),
                });
                self.spawn(work);
                Ok(Accepted::Submitted)
            }
            Ok(Recorded::Exists) => {
                // Recorded by another process (`reconcile`) and not run yet: this runner runs
                // it, from its record.
                match (work.dir.result(), work.dir.spec()) {
                    (None, Ok(recorded)) => self.spawn(Work {
                        task: recorded,
                        ..work
                    }),
                    _ => self.release(&work.task.id, claim),
                }
                Ok(Accepted::Duplicate)
            }
            Err(e) => {
                self.release(&work.task.id, claim);
                Err(RecordError::task(&work.task.id, e))
            }
        }
    }

    /// Records a split blob's job (see [`record_split`]) and starts what can start.
    async fn accept_split(&self, split: &SplitJob) -> SubmitResult {
        let _one_at_a_time = self.inner.split_submissions.lock().await;
        let jobs = self.inner.job_store.clone();
        let owned = split.clone();
        // Recording a thousand parts is a thousand directories: off the runtime's threads.
        let recorded = tokio::task::spawn_blocking(move || record_split(&jobs, &owned))
            .await
            .unwrap_or_else(|e| Err(SubmitError::transient(e)));
        // Even after a failure half way: what was recorded runs, as on Batch.
        let changes = lock(&self.inner.jobs).refresh(&split.job.id);
        self.apply(changes);
        recorded
    }

    /// Starts the tasks other processes recorded in the work directory since the last look,
    /// and takes up their jobs' changes.
    fn adopt_recorded(&self) {
        self.adopt_tasks();
        let changes = lock(&self.inner.jobs).scan();
        self.apply(changes);
    }

    fn adopt_tasks(&self) {
        if !lock(&self.inner.tasks_gate).changed(self.inner.store.root()) {
            return;
        }
        let Ok(ids) = self.inner.store.ids() else {
            return;
        };
        for id in ids {
            if lock(&self.inner.active).contains_key(&id) {
                continue;
            }
            let dir = self.inner.store.dir(&id);
            if dir.result().is_some() {
                continue;
            }
            let Ok(task) = dir.spec() else { continue };
            let Some(work) = self.claim(task) else {
                continue;
            };
            // Looked at again once claimed: a run of this runner that just ended has written
            // its result by the time it gives its claim up.
            if work.dir.result().is_some() {
                if let Owner::Tasks { claim } = work.owner {
                    self.release(&id, claim);
                }
                continue;
            }
            tracing::info!(task_id = %work.task.id, "running a task recorded by another process");
            self.send(RunnerEvent::Received {
                id: work.task.id.clone(),
                job: None,
                display_name: work.task.display_name.clone(),
            });
            self.spawn(work);
        }
    }

    /// Carries out what the jobs' scheduler decided.
    fn apply(&self, changes: Changes) {
        for (job, task) in changes.received {
            self.send(RunnerEvent::Received {
                id: task.id,
                job: Some(job),
                display_name: task.display_name,
            });
        }
        for Launch {
            job,
            record_id,
            task,
            dir,
            stop,
        } in changes.launch
        {
            self.spawn(Work {
                task,
                dir,
                stop,
                owner: Owner::Job { id: job, record_id },
            });
        }
        for done in changes.completed {
            tracing::info!(
                job_id = %done.job,
                reason = done.completion.terminate_reason.as_str(),
                "job completed"
            );
            self.send(RunnerEvent::JobCompleted {
                job: done.job,
                display_name: done.display_name,
                reason: done.completion.terminate_reason,
                failed_task: done.completion.failed_task,
                succeeded: done.succeeded,
                failed: done.failed,
                unfinished: done.unfinished,
            });
        }
    }

    fn spawn(&self, work: Work) {
        self.inner.pending.send_modify(|n| *n += 1);
        let runner = self.clone();
        let mut running = lock(&self.inner.running);
        // Reap finished tasks so the set does not grow without bound.
        while running.try_join_next().is_some() {}
        running.spawn(async move {
            let _guard = PendingGuard(runner.inner.clone());
            let mut work = work;
            let slot = runner.slot(&mut work).await;
            let outcome = match &slot {
                Some(_) => runner.run(&mut work).await,
                None => TaskEnd::NotRun,
            };
            // The slot is given back only once the task's job has taken its next step: a task
            // whose job this one's failure ends must not start in between.
            runner.finish(&work, outcome);
            drop(slot);
        });
    }

    /// Tells the task's owner how it ended: its claim is given up, or its job takes its next
    /// step (before the task counts as done, so that `idle` never sees a gap).
    fn finish(&self, work: &Work, outcome: TaskEnd) {
        match &work.owner {
            Owner::Tasks { claim } => self.release(&work.task.id, *claim),
            Owner::Job { id, record_id } => {
                let changes =
                    lock(&self.inner.jobs).finished(id, record_id, &work.task.id, outcome);
                self.apply(changes);
            }
        }
    }

    /// Waits for a slot to run the task in; `None` when it is told to stop first (its job
    /// ended, or its record was removed, before it started: it never runs).
    async fn slot(&self, work: &mut Work) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = tokio::select! {
            biased;
            _ = stopped(&mut work.stop) => None,
            permit = self.inner.permits.clone().acquire_owned() => permit.ok(),
        };
        permit.filter(|_| work.stop.borrow().is_none())
    }

    /// Runs the task (in its slot) and records how it ended.
    async fn run(&self, work: &mut Work) -> TaskEnd {
        let Some(stamp) = work.dir.stamp() else {
            return TaskEnd::NotRun;
        };
        let started = Instant::now();
        let start_time = OffsetDateTime::now_utc();
        let _ = work.dir.mark_started();
        self.send(RunnerEvent::Running {
            id: work.task.id.clone(),
            job: work.job(),
            display_name: work.task.display_name.clone(),
        });
        let mut phases = Phases::default();
        let execution = tokio::select! {
            execution = self.execute(&work.task, &work.dir, stamp, &mut phases) => execution,
            reason = stopped(&mut work.stop) => Execution::stopped(reason),
        };
        let ran = Ran {
            duration: started.elapsed(),
            start_time,
            phases,
        };
        self.record(work, stamp, execution, ran)
    }

    /// Writes the task's result (unless its record went away meanwhile) and says how it ended.
    fn record(&self, work: &Work, stamp: RecordStamp, outcome: Execution, ran: Ran) -> TaskEnd {
        let gone = outcome.removed || work.dir.stamp() != Some(stamp);
        if gone {
            tracing::info!(task_id = %work.task.id, "the task's record was removed while it ran: its outcome is dropped");
        } else if let Err(e) = work.dir.write_result(&ran.result(&outcome)) {
            tracing::warn!(task_id = %work.task.id, error = %e, "cannot write the task's result record");
        }
        let task_dir = work.dir.path().to_path_buf();
        let (id, job, display_name) = (
            work.task.id.clone(),
            work.job(),
            work.task.display_name.clone(),
        );
        let event = match (outcome.failure, gone) {
            (None, false) => RunnerEvent::Done {
                id,
                job,
                display_name,
                exit_code: outcome.exit_code.unwrap_or(0),
                duration: ran.duration,
                phases: ran.phases,
                outputs: outcome.outputs,
                task_dir,
            },
            (failure, _) => RunnerEvent::Failed {
                id,
                job,
                display_name,
                exit_code: outcome.exit_code,
                duration: ran.duration,
                failure: failure.unwrap_or_else(|| {
                    TaskFailure::new(FailureCode::TaskEnded, "the task's record was removed")
                }),
                stderr_tail: work.dir.stderr_tail(2048),
                outputs: outcome.outputs,
                task_dir,
            },
        };
        let ended = match &event {
            _ if gone => TaskEnd::NotRun,
            RunnerEvent::Done { .. } => TaskEnd::Succeeded,
            _ => TaskEnd::Failed,
        };
        self.send(event);
        ended
    }

    /// The task's life on a node: a clean working directory, its resource files, its command,
    /// its output files (not uploaded when its record went away while it ran).
    async fn execute(
        &self,
        task: &TaskSpec,
        dir: &TaskDir,
        stamp: RecordStamp,
        phases: &mut Phases,
    ) -> Execution {
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
                    removed: false,
                };
            }
        };
        phases.fetch = fetch_started.elapsed();

        let run_started = Instant::now();
        let options = &self.inner.options;
        let exit = options
            .engine
            .run(task, &options.word_count_image, dir, (stdout, stderr))
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
        if dir.stamp() != Some(stamp) {
            return Execution {
                exit_code,
                failure,
                outputs: Vec::new(),
                removed: true,
            };
        }
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
            removed: false,
        }
    }
}

/// Resolves with the reason once the task is told to stop; never when its sender is gone
/// without a word.
async fn stopped(signal: &mut StopSignal) -> StopReason {
    // The value is copied out at once: its guard may not be held across an await.
    let reason = signal
        .wait_for(Option::is_some)
        .await
        .map(|reason| reason.unwrap_or(StopReason::Removed));
    match reason {
        Ok(reason) => reason,
        Err(_) => std::future::pending().await,
    }
}

impl TaskRunner for LocalRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(match item {
                    Submission::Split(split) => self.accept_split(split).await,
                    item => self.accept(item),
                });
            }
            results
        })
    }
}

/// Reads the records of its work directory.
impl TaskLookup for LocalRunner {
    fn lookup<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<LookupResult>> {
        self.inner.store.lookup(items)
    }
}

/// Stops what runs of the submission here, then removes its records (see the store's
/// [`TaskRemover`]): as Batch deletes a running task, stopping it.
impl TaskRemover for LocalRunner {
    fn remove<'a>(&'a self, item: &'a Submission) -> BoxFuture<'a, Result<(), RemoveError>> {
        let store = &self.inner.store;
        // Each lock is held while the records go, so that no scan takes them up in between.
        let removed = match item {
            Submission::Split(split) => {
                let mut jobs = lock(&self.inner.jobs);
                jobs.forget(&split.job.id);
                store.remove_records(item)
            }
            item => {
                let mut active = lock(&self.inner.active);
                if let Some((_, stop)) = active.remove(&item.id().to_ascii_lowercase()) {
                    stop.send_replace(Some(StopReason::Removed));
                }
                store.remove_records(item)
            }
        };
        Box::pin(async move { removed })
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
    if task.depends_on.is_some() {
        return Err(SubmitError::rejected(
            "TaskDependenciesNotSpecifiedOnJob",
            format!("task `{id}` has dependencies, which only a split blob's job takes"),
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
    jobs: JobStore,
}

impl LocalSubmitter {
    pub fn open(work_dir: &Path) -> Result<LocalSubmitter, LocalRunnerError> {
        let work_dir_error = |source| LocalRunnerError::WorkDir {
            path: work_dir.to_path_buf(),
            source,
        };
        Ok(LocalSubmitter {
            store: TaskStore::open(work_dir).map_err(work_dir_error)?,
            jobs: JobStore::open(work_dir).map_err(work_dir_error)?,
        })
    }

    pub fn store(&self) -> &TaskStore {
        &self.store
    }

    fn submit_one(&self, item: &Submission) -> SubmitResult {
        if let Submission::Split(split) = item {
            return record_split(&self.jobs, split);
        }
        let task = runnable(item)?;
        match self.store.record(&task) {
            Ok(Recorded::New) => Ok(Accepted::Submitted),
            Ok(Recorded::Exists) => Ok(Accepted::Duplicate),
            Err(source) => Err(RecordError::task(&task.id, source)),
        }
    }
}

impl TaskRunner for LocalSubmitter {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        let results = items.iter().map(|item| self.submit_one(item)).collect();
        Box::pin(async move { results })
    }
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
    /// The task's record went away while it ran: nothing is uploaded or recorded.
    removed: bool,
}

impl Execution {
    fn failed(failure: TaskFailure) -> Self {
        Execution {
            exit_code: None,
            failure: Some(failure),
            outputs: Vec::new(),
            removed: false,
        }
    }

    /// A run stopped from outside (its command killed): its job ended, or its record went.
    /// Nothing is uploaded, as a task Batch terminates uploads nothing more.
    fn stopped(reason: StopReason) -> Self {
        Execution {
            removed: reason == StopReason::Removed,
            ..Execution::failed(TaskFailure::new(
                FailureCode::TaskEnded,
                match reason {
                    StopReason::JobEnded => "the task was stopped: its job ended",
                    StopReason::Removed => "the task was stopped: its record was removed",
                },
            ))
        }
    }
}

/// When and how long a run took.
struct Ran {
    duration: Duration,
    start_time: OffsetDateTime,
    phases: Phases,
}

impl Ran {
    fn result(&self, outcome: &Execution) -> TaskResult {
        TaskResult {
            result: if outcome.failure.is_none() {
                RunResult::Success
            } else {
                RunResult::Failure
            },
            exit_code: outcome.exit_code,
            failure_info: outcome.failure.clone(),
            start_time: self.start_time,
            end_time: OffsetDateTime::now_utc(),
            fetch_ms: self.phases.fetch.as_millis() as u64,
            run_ms: self.phases.run.as_millis() as u64,
            upload_ms: self.phases.upload.as_millis() as u64,
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
