//! How a task's command runs on this machine: as a local process (the `wordcount` program stands
//! in for the word-count image's `/wordcount`), or in a container image with podman, as Batch
//! runs a container task. The word count's tasks run the way the engine says (the local binary,
//! or `LOCAL_PODMAN_IMAGE`); a task of any other image always runs that image, with podman.
//!
//! The command line is split the way Batch splits it (no shell) and runs with the task's
//! environment, in the task's working directory, within its `maxWallClockTime`. A container
//! runs as the user running `dev` (Batch maps the task user into Linux containers), with no
//! network, except a task that reads its input itself (`BLOB2BATCH_INPUT_URL`): it shares the
//! host's network, so that its URL (storage on this machine's loopback) reaches storage.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::failure::{FailureCode, TaskFailure};
use super::task_dir::TaskDir;
use crate::duration::parse_iso8601;
use crate::task_spec::TaskSpec;
use crate::workloads::ENV_INPUT_URL;

/// How the word count's tasks run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engine {
    /// As a local process; the program `/wordcount` is the locally built binary.
    Process { wordcount_bin: PathBuf },
    /// In the container image, through podman, as Batch runs container tasks.
    Podman { image: String },
}

/// The `wordcount` program was not found.
#[derive(Debug, thiserror::Error)]
#[error(
    "the wordcount program was not found ({0}). Build it with `cargo build --release -p wordcount` \
     (or set LOCAL_WORDCOUNT_BIN to its path)"
)]
pub struct WordcountMissing(String);

/// `LOCAL_WORDCOUNT_BIN`, else `wordcount` next to the current executable, else on `PATH`.
pub(crate) fn find_wordcount(configured: Option<&Path>) -> Result<PathBuf, WordcountMissing> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(WordcountMissing(format!(
                "LOCAL_WORDCOUNT_BIN={} does not exist",
                path.display()
            )))
        };
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join("wordcount");
        if beside.is_file() {
            return Ok(beside);
        }
    }
    on_path("wordcount")
        .ok_or_else(|| WordcountMissing("not beside the blob2batch executable, not on PATH".into()))
}

/// `program` in a directory of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Where one task's command runs.
enum Runs<'a> {
    Process(&'a Path),
    Container {
        image: &'a str,
        /// The host's network, for a task that reads storage itself.
        network: bool,
    },
}

impl Engine {
    /// Runs the task's command to its end; its exit code, or why it could not run to one.
    /// `word_count_image` tells the word count's tasks from the others.
    pub(crate) async fn run(
        &self,
        task: &TaskSpec,
        word_count_image: &str,
        dir: &TaskDir,
        logs: (std::fs::File, std::fs::File),
    ) -> Result<i32, TaskFailure> {
        let argv = shell_words::split(&task.command_line).map_err(|e| {
            TaskFailure::new(
                FailureCode::CommandLineError,
                format!("the command line cannot be parsed: {e}"),
            )
        })?;
        let Some((program, args)) = argv.split_first() else {
            return Err(TaskFailure::new(
                FailureCode::CommandLineError,
                "the command line is empty",
            ));
        };
        let runs = self.runs(task, word_count_image)?;
        let mut cmd = command(&runs, task, dir, program, args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(logs.0))
            .stderr(Stdio::from(logs.1))
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            TaskFailure::new(
                FailureCode::CommandLineError,
                format!("cannot start `{program}`: {e}"),
            )
        })?;
        let waited = match wall_clock_limit(task) {
            Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.kill().await;
                    return Err(TaskFailure::new(
                        FailureCode::MaxWallClockTimeExceeded,
                        format!(
                            "the task exceeded its maxWallClockTime ({} s)",
                            limit.as_secs()
                        ),
                    ));
                }
            },
            None => child.wait().await,
        };
        let status = waited.map_err(|e| {
            TaskFailure::new(
                FailureCode::CommandLineError,
                format!("waiting for `{program}` failed: {e}"),
            )
        })?;
        Ok(status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt as _;
            128 + status.signal().unwrap_or(0)
        }))
    }

    /// Where `task` runs: the word count as the engine says, any other image in a container;
    /// refused at once when that needs podman and this machine has none.
    fn runs<'a>(
        &'a self,
        task: &'a TaskSpec,
        word_count_image: &'a str,
    ) -> Result<Runs<'a>, TaskFailure> {
        let image = task
            .container_settings
            .as_ref()
            .map_or(word_count_image, |c| c.image_name.as_str());
        let network = task
            .environment_settings
            .iter()
            .any(|e| e.name == ENV_INPUT_URL);
        let runs = match self {
            Engine::Process { wordcount_bin } if image == word_count_image => {
                return Ok(Runs::Process(wordcount_bin));
            }
            Engine::Podman { image: local } if image == word_count_image => Runs::Container {
                image: local,
                network,
            },
            _ => Runs::Container { image, network },
        };
        if on_path("podman").is_none() {
            return Err(TaskFailure::new(
                FailureCode::ContainerEngineMissing,
                format!(
                    "this task runs the image {image}, and this machine has no podman to run it: \
                     install podman (apt-get install podman runc); the built-in word count runs \
                     without it"
                ),
            ));
        }
        Ok(runs)
    }
}

fn command(
    runs: &Runs<'_>,
    task: &TaskSpec,
    dir: &TaskDir,
    program: &str,
    args: &[String],
) -> tokio::process::Command {
    let mut env: Vec<(String, String)> = task
        .environment_settings
        .iter()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    env.push(("AZ_BATCH_TASK_ID".into(), task.id.clone()));
    match runs {
        Runs::Process(wordcount_bin) => {
            let program = if program == "/wordcount" {
                wordcount_bin.to_path_buf()
            } else {
                PathBuf::from(program)
            };
            env.push(("AZ_BATCH_TASK_DIR".into(), dir.path().display().to_string()));
            env.push((
                "AZ_BATCH_TASK_WORKING_DIR".into(),
                dir.wd().display().to_string(),
            ));
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args).current_dir(dir.wd()).env_clear();
            for keep in ["PATH", "HOME", "LANG", "TMPDIR", "TZ"] {
                if let Some(v) = std::env::var_os(keep) {
                    cmd.env(keep, v);
                }
            }
            cmd.envs(env);
            cmd
        }
        Runs::Container { image, network } => {
            env.push(("AZ_BATCH_TASK_DIR".into(), "/batch/task".into()));
            env.push(("AZ_BATCH_TASK_WORKING_DIR".into(), "/batch/task/wd".into()));
            // As on Batch, the container runs as the task's user (Batch maps the task
            // user's uid and gid into Linux containers), here the user running `dev`. The
            // explicit limits are needed where the runtime may not copy the caller's.
            // SAFETY: getuid and getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let mut cmd = tokio::process::Command::new("podman");
            cmd.args(["run", "--rm", "--runtime", "runc", "--network"])
                .arg(if *network { "host" } else { "none" })
                .args([
                    "--ulimit",
                    "nofile=1024:1024",
                    "--ulimit",
                    "nproc=1024:1024",
                ])
                .arg("--user")
                .arg(format!("{uid}:{gid}"))
                .arg("-v")
                .arg(format!("{}:/batch/task:Z", dir.path().display()))
                .args(["-w", "/batch/task/wd", "--entrypoint"])
                .arg(program);
            for (k, v) in &env {
                cmd.arg("-e").arg(format!("{k}={v}"));
            }
            cmd.arg(image).args(args);
            cmd
        }
    }
}

/// The task's `maxWallClockTime`, when it has one.
fn wall_clock_limit(task: &TaskSpec) -> Option<Duration> {
    task.constraints
        .as_ref()
        .and_then(|c| c.max_wall_clock_time.as_deref())
        .and_then(parse_iso8601)
}
