//! `LocalRunner`: runs Batch task specifications on this machine, the way a Batch node would.
//!
//! Per task: `{work_dir}/tasks/{id}/` holds `task.json` (the specification as submitted),
//! `wd/` (the working directory), `stdout.txt`, `stderr.txt` and, once finished, `result.json`.
//! Resource files are fetched from their URLs (SAS) into `wd/{filePath}`; the command line is split
//! like Batch does (no shell) and run with the task's environment; output files are uploaded per
//! `uploadCondition`, `filePattern` and `destination`. What would fail on Batch fails here.
//!
//! Task ids are case-insensitive and remembered in `work_dir`: a repeated id is a duplicate, and
//! a task accepted but not finished when the runner stopped runs again when it starts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use super::paths::{OutputPattern, output_blob_name, resource_file_path};
use crate::batch::models::{TaskSpec, UploadCondition};
use crate::runner::{Accepted, BoxFuture, Submission, SubmitError, SubmitResult, TaskRunner};
use crate::storage::blob::{BlobHttpHeaders, ContainerClient, http_download_to_file};
use crate::storage::sas::redact_sas;

/// How a task's command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// As a local process; the program `/wordcount` is the locally built binary.
    Process { wordcount_bin: PathBuf },
    /// In the container image, through podman, as Batch runs container tasks.
    Podman { image: String },
}

#[derive(Clone, Debug)]
pub struct LocalRunnerOptions {
    pub work_dir: PathBuf,
    /// Tasks running at once (default: the number of cores).
    pub concurrency: usize,
    pub engine: Engine,
}

impl LocalRunnerOptions {
    pub fn new(work_dir: PathBuf, engine: Engine) -> Self {
        Self {
            work_dir,
            concurrency: default_concurrency(),
            engine,
        }
    }
}

pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// An uploaded output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedOutput {
    pub file: PathBuf,
    /// Blob name in the destination container.
    pub blob: String,
    /// Container URL without its SAS.
    pub container: String,
    pub bytes: u64,
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
        /// Why: the exit code, a resource file or upload error, a timeout.
        reason: String,
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

/// Runs [`Submission`]s locally. Cheap to clone.
#[derive(Clone)]
pub struct LocalRunner {
    inner: Arc<Inner>,
}

struct Inner {
    options: LocalRunnerOptions,
    seen: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    events: broadcast::Sender<RunnerEvent>,
    http: reqwest::Client,
    running: Mutex<JoinSet<()>>,
    pending: tokio::sync::watch::Sender<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalRunnerError {
    #[error("cannot use the work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LocalRunner {
    /// Opens (or creates) the work directory and re-queues tasks left unfinished by an earlier run.
    /// Must be called inside a tokio runtime.
    pub fn new(options: LocalRunnerOptions) -> Result<Self, LocalRunnerError> {
        let tasks_dir = options.work_dir.join("tasks");
        std::fs::create_dir_all(&tasks_dir).map_err(|source| LocalRunnerError::WorkDir {
            path: tasks_dir.clone(),
            source,
        })?;
        let mut seen = HashSet::new();
        let mut unfinished = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&tasks_dir) {
            for entry in entries.flatten() {
                let dir = entry.path();
                let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                seen.insert(name.to_string());
                if !dir.join("result.json").exists()
                    && let Ok(text) = std::fs::read_to_string(dir.join("task.json"))
                    && let Ok(task) = serde_json::from_str::<TaskSpec>(&text)
                {
                    unfinished.push(task);
                }
            }
        }
        let (events, _) = broadcast::channel(4096);
        let (pending, _) = tokio::sync::watch::channel(0);
        let runner = Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
                options,
                seen: Mutex::new(seen),
                events,
                http: reqwest::Client::new(),
                running: Mutex::new(JoinSet::new()),
                pending,
            }),
        };
        for task in unfinished {
            tracing::info!(task_id = %task.id, "re-queueing a task left unfinished");
            runner.spawn(task);
        }
        Ok(runner)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunnerEvent> {
        self.inner.events.subscribe()
    }

    pub fn work_dir(&self) -> &Path {
        &self.inner.options.work_dir
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
        let mut set = std::mem::take(&mut *self.inner.running.lock().expect("running lock"));
        set.shutdown().await;
    }

    fn task_dir(&self, id: &str) -> PathBuf {
        self.inner
            .options
            .work_dir
            .join("tasks")
            .join(id.to_ascii_lowercase())
    }

    fn accept(&self, item: &Submission) -> SubmitResult {
        let Some(task) = item.task() else {
            return Err(SubmitError::Rejected {
                code: "InvalidPropertyValue".into(),
                message: format!("job `{}` has no job manager task to run", item.id()),
            });
        };
        let id = item.id();
        validate_id(id)?;
        let key = id.to_ascii_lowercase();
        {
            let mut seen = self.inner.seen.lock().expect("seen lock");
            if seen.contains(&key) {
                return Ok(Accepted::Duplicate);
            }
            seen.insert(key);
        }
        let mut task = task.clone();
        // A job runs its manager task under the job's id.
        task.id = id.to_string();
        let dir = self.task_dir(id);
        let persisted = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(
                dir.join("task.json"),
                serde_json::to_vec_pretty(&task).expect("a task serializes"),
            )
        });
        if let Err(e) = persisted {
            self.inner
                .seen
                .lock()
                .expect("seen lock")
                .remove(&id.to_ascii_lowercase());
            return Err(SubmitError::Transient(format!(
                "cannot record task {id} in {}: {e}",
                dir.display()
            )));
        }
        let _ = self.inner.events.send(RunnerEvent::Received {
            id: task.id.clone(),
            display_name: task.display_name.clone(),
        });
        self.spawn(task);
        Ok(Accepted::Submitted)
    }

    fn spawn(&self, task: TaskSpec) {
        self.inner.pending.send_modify(|n| *n += 1);
        let runner = self.clone();
        let mut running = self.inner.running.lock().expect("running lock");
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
        let task_dir = self.task_dir(&task.id);
        let started = Instant::now();
        let _ = self.inner.events.send(RunnerEvent::Running {
            id: task.id.clone(),
            display_name: task.display_name.clone(),
        });
        let mut phases = Phases::default();
        let outcome = self.execute(&task, &task_dir, &mut phases).await;
        let duration = started.elapsed();
        let (event, summary) = match outcome {
            Outcome::Succeeded { exit_code, outputs } => (
                RunnerEvent::Done {
                    id: task.id.clone(),
                    display_name: task.display_name.clone(),
                    exit_code,
                    duration,
                    phases,
                    outputs,
                    task_dir: task_dir.clone(),
                },
                serde_json::json!({
                    "state": "succeeded", "exitCode": exit_code,
                    "durationMs": duration.as_millis() as u64,
                    "fetchMs": phases.fetch.as_millis() as u64,
                    "runMs": phases.run.as_millis() as u64,
                    "uploadMs": phases.upload.as_millis() as u64,
                }),
            ),
            Outcome::Failed {
                exit_code,
                reason,
                outputs,
            } => (
                RunnerEvent::Failed {
                    id: task.id.clone(),
                    display_name: task.display_name.clone(),
                    exit_code,
                    duration,
                    reason: reason.clone(),
                    stderr_tail: tail(&task_dir.join("stderr.txt"), 2048),
                    outputs,
                    task_dir: task_dir.clone(),
                },
                serde_json::json!({"state": "failed", "exitCode": exit_code, "reason": reason, "durationMs": duration.as_millis() as u64}),
            ),
        };
        let _ = std::fs::write(
            task_dir.join("result.json"),
            serde_json::to_vec_pretty(&summary).expect("json"),
        );
        let _ = self.inner.events.send(event);
    }

    async fn execute(&self, task: &TaskSpec, task_dir: &Path, phases: &mut Phases) -> Outcome {
        let wd = task_dir.join("wd");
        // A task that runs again starts from a clean working directory.
        let _ = std::fs::remove_dir_all(&wd);
        if let Err(e) = std::fs::create_dir_all(&wd) {
            return Outcome::failed(None, format!("cannot create {}: {e}", wd.display()));
        }
        let stdout_path = task_dir.join("stdout.txt");
        let stderr_path = task_dir.join("stderr.txt");
        let (stdout, stderr) = match (
            std::fs::File::create(&stdout_path),
            std::fs::File::create(&stderr_path),
        ) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return Outcome::failed(None, format!("cannot create the task's log files: {e}"));
            }
        };

        // Resource files.
        let fetch_started = Instant::now();
        let mut fetched = Vec::new();
        for file in &task.resource_files {
            let result = self.fetch_resource(&wd, file).await;
            match result {
                Ok(path) => fetched.push(path),
                Err(reason) => {
                    append(&stderr_path, &format!("{reason}\n"));
                    let outputs = self.upload_outputs(task, task_dir, &wd, false).await;
                    return Outcome::Failed {
                        exit_code: None,
                        reason,
                        outputs: outputs.unwrap_or_else(|(done, _)| done),
                    };
                }
            }
        }

        phases.fetch = fetch_started.elapsed();
        // The command.
        let run_started = Instant::now();
        let exit = self.run_command(task, task_dir, &wd, stdout, stderr).await;
        phases.run = run_started.elapsed();
        // Resource files can be large and are not needed any more.
        for path in fetched {
            let _ = std::fs::remove_file(path);
        }
        let (exit_code, failure) = match exit {
            Ok(0) => (Some(0), None),
            Ok(code) => (Some(code), Some(format!("exit code {code}"))),
            Err(reason) => {
                append(&stderr_path, &format!("{reason}\n"));
                (None, Some(reason))
            }
        };
        let success = failure.is_none();
        let upload_started = Instant::now();
        let uploaded = self.upload_outputs(task, task_dir, &wd, success).await;
        phases.upload = upload_started.elapsed();
        match (failure, uploaded) {
            (None, Ok(outputs)) => Outcome::Succeeded {
                exit_code: exit_code.unwrap_or(0),
                outputs,
            },
            (None, Err((outputs, reason))) => Outcome::Failed {
                exit_code,
                reason: format!("FileUploadError: {reason}"),
                outputs,
            },
            (Some(reason), Ok(outputs)) => Outcome::Failed {
                exit_code,
                reason,
                outputs,
            },
            (Some(reason), Err((outputs, upload))) => Outcome::Failed {
                exit_code,
                reason: format!("{reason}; FileUploadError: {upload}"),
                outputs,
            },
        }
    }

    async fn fetch_resource(
        &self,
        wd: &Path,
        file: &crate::batch::models::ResourceFile,
    ) -> Result<PathBuf, String> {
        let path = resource_file_path(wd, &file.file_path)
            .map_err(|e| format!("ResourceFileError: {e}"))?;
        if file.identity_reference.is_some() && !has_sas(&file.http_url) {
            return Err(format!(
                "ResourceFileError: `{}` uses identityReference, which cannot work on this \
                 machine (no managed identity); set STORAGE_ACCOUNT_KEY so that tasks get SAS URLs",
                file.file_path
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                format!("ResourceFileError: cannot create {}: {e}", parent.display())
            })?;
        }
        http_download_to_file(&self.inner.http, &file.http_url, &path)
            .await
            .map_err(|e| {
                format!(
                    "ResourceFileError: downloading `{}` from {} failed: {e}",
                    file.file_path,
                    redact_sas(&file.http_url)
                )
            })?;
        if let Some(mode) = &file.file_mode {
            set_mode(&path, mode);
        }
        Ok(path)
    }

    async fn run_command(
        &self,
        task: &TaskSpec,
        task_dir: &Path,
        wd: &Path,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<i32, String> {
        let argv = shell_words::split(&task.command_line)
            .map_err(|e| format!("the command line cannot be parsed: {e}"))?;
        let Some((program, args)) = argv.split_first() else {
            return Err("the command line is empty".into());
        };
        let mut env: Vec<(String, String)> = task
            .environment_settings
            .iter()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect();
        env.push(("AZ_BATCH_TASK_ID".into(), task.id.clone()));
        let mut cmd = match &self.inner.options.engine {
            Engine::Process { wordcount_bin } => {
                let program = if program == "/wordcount" {
                    wordcount_bin.clone()
                } else {
                    PathBuf::from(program)
                };
                env.push(("AZ_BATCH_TASK_DIR".into(), task_dir.display().to_string()));
                env.push(("AZ_BATCH_TASK_WORKING_DIR".into(), wd.display().to_string()));
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args).current_dir(wd).env_clear();
                for keep in ["PATH", "HOME", "LANG", "TMPDIR", "TZ"] {
                    if let Some(v) = std::env::var_os(keep) {
                        cmd.env(keep, v);
                    }
                }
                cmd.envs(env);
                cmd
            }
            Engine::Podman { image } => {
                let image = task
                    .container_settings
                    .as_ref()
                    .map(|c| c.image_name.clone())
                    .filter(|_| image.is_empty())
                    .unwrap_or_else(|| image.clone());
                env.push(("AZ_BATCH_TASK_DIR".into(), "/batch/task".into()));
                env.push(("AZ_BATCH_TASK_WORKING_DIR".into(), "/batch/task/wd".into()));
                // As on Batch, the container runs as the task's user (Batch maps the task
                // user's uid and gid into Linux containers), here the user running `dev`. The
                // explicit limits are needed where the runtime may not copy the caller's.
                // SAFETY: getuid and getgid cannot fail.
                let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
                let mut cmd = tokio::process::Command::new("podman");
                cmd.args(["run", "--rm", "--runtime", "runc", "--network", "none"])
                    .args([
                        "--ulimit",
                        "nofile=1024:1024",
                        "--ulimit",
                        "nproc=1024:1024",
                    ])
                    .arg("--user")
                    .arg(format!("{uid}:{gid}"))
                    .arg("-v")
                    .arg(format!("{}:/batch/task:Z", task_dir.display()))
                    .args(["-w", "/batch/task/wd", "--entrypoint"])
                    .arg(program);
                for (k, v) in &env {
                    cmd.arg("-e").arg(format!("{k}={v}"));
                }
                cmd.arg(image).args(args);
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        let limit = task
            .constraints
            .as_ref()
            .and_then(|c| c.max_wall_clock_time.as_deref())
            .and_then(parse_iso_duration);
        let status = match limit {
            Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(format!(
                        "TaskEnded: the task exceeded its maxWallClockTime ({} s)",
                        limit.as_secs()
                    ));
                }
            },
            None => child.wait().await,
        }
        .map_err(|e| format!("waiting for `{program}` failed: {e}"))?;
        Ok(status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt as _;
            128 + status.signal().unwrap_or(0)
        }))
    }

    /// Uploads the output files whose condition holds. On an error, what was uploaded so far and
    /// the error.
    async fn upload_outputs(
        &self,
        task: &TaskSpec,
        task_dir: &Path,
        wd: &Path,
        success: bool,
    ) -> Result<Vec<UploadedOutput>, (Vec<UploadedOutput>, String)> {
        let mut done = Vec::new();
        for output in &task.output_files {
            let wanted = match output.upload_options.upload_condition {
                UploadCondition::TaskSuccess => success,
                UploadCondition::TaskFailure => !success,
                UploadCondition::TaskCompletion => true,
            };
            if !wanted {
                continue;
            }
            let dest = &output.destination.container;
            if dest.identity_reference.is_some() && !has_sas(&dest.container_url) {
                return Err((
                    done,
                    format!(
                        "output `{}` uses identityReference, which cannot work on this machine; \
                         set STORAGE_ACCOUNT_KEY so that tasks get SAS URLs",
                        output.file_pattern
                    ),
                ));
            }
            let pattern = match OutputPattern::new(task_dir, wd, &output.file_pattern) {
                Ok(p) => p,
                Err(e) => return Err((done, e)),
            };
            let files = pattern.matches();
            if !pattern.is_wildcard() && files.is_empty() {
                return Err((
                    done,
                    format!(
                        "no file matches filePattern `{}` (relative to the working directory)",
                        output.file_pattern
                    ),
                ));
            }
            let mut headers = BlobHttpHeaders::default();
            for h in &dest.upload_headers {
                if !headers.set(&h.name, &h.value) {
                    tracing::warn!(header = %h.name, "upload header not supported locally; ignored");
                }
            }
            let container = match ContainerClient::from_sas_url(&dest.container_url) {
                Ok(c) => c,
                Err(e) => return Err((done, e.to_string())),
            };
            let container_plain = redact_query(&dest.container_url);
            for file in files {
                let blob = output_blob_name(dest.path.as_deref(), pattern.is_wildcard(), &file);
                match container
                    .upload_file(&blob, &file.path, &headers, None)
                    .await
                {
                    Ok(uploaded) => done.push(UploadedOutput {
                        file: file.path.clone(),
                        blob,
                        container: container_plain.clone(),
                        bytes: uploaded.size,
                    }),
                    Err(e) => {
                        return Err((
                            done,
                            format!(
                                "uploading {} to `{blob}` in {container_plain} failed: {e}",
                                file.relative
                            ),
                        ));
                    }
                }
            }
        }
        Ok(done)
    }
}

struct PendingGuard(Arc<Inner>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

enum Outcome {
    Succeeded {
        exit_code: i32,
        outputs: Vec<UploadedOutput>,
    },
    Failed {
        exit_code: Option<i32>,
        reason: String,
        outputs: Vec<UploadedOutput>,
    },
}

impl Outcome {
    fn failed(exit_code: Option<i32>, reason: String) -> Self {
        Outcome::Failed {
            exit_code,
            reason,
            outputs: Vec::new(),
        }
    }
}

impl TaskRunner for LocalRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move { items.iter().map(|item| self.accept(item)).collect() })
    }
}

/// Batch's id rule: letters, digits, `-`, `_`; 1 to 64 characters.
fn validate_id(id: &str) -> Result<(), SubmitError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SubmitError::Rejected {
            code: "InvalidPropertyValue".into(),
            message: format!("the id `{id}` is not a valid Batch task id"),
        })
    }
}

fn has_sas(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("sig=")))
}

fn redact_query(url: &str) -> String {
    url.split_once('?')
        .map(|(b, _)| b)
        .unwrap_or(url)
        .to_string()
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

/// The last `max` bytes of a file, as text.
pub fn tail(path: &Path, max: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

fn set_mode(path: &Path, mode: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(bits) = u32::from_str_radix(mode, 8) {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits));
    }
}

/// ISO 8601 durations as Batch writes them: `P1D`, `PT1H`, `PT30M`, `PT10S`, `P1DT2H3M4.5S`.
pub fn parse_iso_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0f64;
    let mut number = String::new();
    for c in date.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'D' => secs += number.parse::<f64>().ok()? * 86400.0,
            'W' => secs += number.parse::<f64>().ok()? * 7.0 * 86400.0,
            _ => return None,
        }
        if !c.is_ascii_digit() && c != '.' {
            number.clear();
        }
    }
    for c in time.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' => secs += number.parse::<f64>().ok()? * 3600.0,
            'M' => secs += number.parse::<f64>().ok()? * 60.0,
            'S' => secs += number.parse::<f64>().ok()?,
            _ => return None,
        }
        if !c.is_ascii_digit() && c != '.' {
            number.clear();
        }
    }
    if !number.is_empty() {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("PT1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_iso_duration("P1D"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_iso_duration("PT30M"), Some(Duration::from_secs(1800)));
        assert_eq!(
            parse_iso_duration("P1DT2H3M4S"),
            Some(Duration::from_secs(93784))
        );
        assert_eq!(
            parse_iso_duration("PT0.5S"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_iso_duration("1H"), None);
        assert_eq!(parse_iso_duration("PT5"), None);
    }

    #[test]
    fn ids_follow_batch_rules() {
        assert!(validate_id("wc-0123abcd_X").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a.b").is_err());
        assert!(validate_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn sas_detection() {
        assert!(has_sas("http://h/c/b?sv=1&sig=abc"));
        assert!(!has_sas("http://h/c/b"));
        assert!(!has_sas("http://h/c/b?sv=1"));
        assert_eq!(redact_query("http://h/c?sv=1&sig=x"), "http://h/c");
    }
}
