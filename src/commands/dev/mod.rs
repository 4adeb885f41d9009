//! `blob2batch dev`: the whole pipeline on this machine.
//!
//! Storage at `STORAGE_ACCOUNT_URL` (default: Azurite's well-known account; started here when
//! nothing answers on that loopback address), the input and output containers, the handler with
//! the local runner on an ephemeral port, and the feed that delivers a BlobCreated event for each
//! new blob. Prints one line per step of each file; stops everything it started on Ctrl-C/SIGTERM.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

pub mod feed;

use self::feed::{FeedEvent, FeedOptions, FeedTarget};
use super::put::human_bytes;
use crate::config::{ConfigError, DEFAULT_LOCAL_IMAGE, RunnerSettings, Settings};
use crate::local::{Engine, LocalRunner, LocalRunnerError, LocalRunnerOptions, RunnerEvent};
use crate::loopback::is_loopback_url;
use crate::shutdown::shutdown_signal;
use crate::startup::{Application, StartupError};
use crate::storage::StorageAccount;
use crate::storage::azurite::{self, AzuriteOptions, AzuriteProcess};
use crate::storage::blob::BlobError;

pub type ShutdownSignal = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[derive(Default)]
pub struct DevOptions {
    /// Keep Azurite's data in this folder (when `dev` starts Azurite); in memory otherwise.
    pub persist: Option<PathBuf>,
    /// Deliver events to this Functions host (`func start`) instead of the handler directly.
    pub func_host: Option<String>,
    /// Run tasks in the container image with podman instead of the local `wordcount` binary.
    pub podman: bool,
    /// Resolves when `dev` should stop; default: Ctrl-C or SIGTERM.
    pub shutdown: Option<ShutdownSignal>,
    /// Environment lookup (default: the process environment).
    pub env: Option<Env>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevSummary {
    /// Blob versions delivered.
    pub seen: usize,
    pub done: usize,
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error(
        "nothing answers at {0}, and it is not a loopback address where Azurite could be started"
    )]
    StorageUnreachable(String),
    #[error(transparent)]
    Azurite(#[from] azurite::AzuriteError),
    #[error("storage: {what}")]
    Storage {
        what: String,
        #[source]
        source: BlobError,
    },
    #[error("local runner")]
    Runner(#[from] LocalRunnerError),
    #[error("handler")]
    Handler(#[from] StartupError),
}

impl DevError {
    /// A usage or settings problem (exit code 2), rather than a failure at run time.
    pub fn is_usage(&self) -> bool {
        matches!(self, DevError::Config(_) | DevError::Setup(_))
    }
}

/// What the `dev` command line changes in the local settings' defaults.
#[derive(Clone, Debug, Default)]
pub struct LocalDefaults {
    /// `--persist DIR`: task records in `DIR/work` unless `LOCAL_WORK_DIR` says otherwise.
    pub persist: Option<PathBuf>,
    /// `--podman`: run tasks in `LOCAL_PODMAN_IMAGE`, else `WORDCOUNT_IMAGE`, else the local build.
    pub podman: bool,
}

/// Settings for the local pipeline and `put`, with the local defaults: Azurite's well-known
/// account when `STORAGE_ACCOUNT_URL` is unset (and its key for a loopback URL without
/// `STORAGE_ACCOUNT_KEY`), `RUNNER=local`, the handler on an ephemeral loopback port.
pub struct LocalSetup {
    pub settings: Settings,
    pub account: StorageAccount,
    pub url: url::Url,
    pub loopback: bool,
}

pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment (empty values count as unset).
pub fn process_env() -> Env {
    Arc::new(|k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

pub fn resolve(env: Env, defaults: &LocalDefaults) -> Result<LocalSetup, DevError> {
    let storage_url =
        env("STORAGE_ACCOUNT_URL").unwrap_or_else(|| azurite::DEFAULT_BLOB_URL.to_string());
    let parsed = url::Url::parse(&storage_url)
        .map_err(|e| DevError::Setup(format!("STORAGE_ACCOUNT_URL `{storage_url}`: {e}")))?;
    let loopback = is_loopback_url(&parsed);
    let key_default = (loopback && env("STORAGE_ACCOUNT_KEY").is_none())
        .then(|| azurite::WELL_KNOWN_KEY.to_string());
    let work_dir_default = defaults
        .persist
        .as_ref()
        .map(|dir| dir.join("work").display().to_string());
    let podman = defaults.podman;
    let lookup = {
        let storage_url = storage_url.clone();
        move |name: &str| -> Option<String> {
            match name {
                "RUNNER" => Some("local".into()),
                // The handler listens on an ephemeral loopback port.
                "FUNCTIONS_CUSTOMHANDLER_PORT" => Some("0".into()),
                "LISTEN_ADDRESS" => Some("127.0.0.1".into()),
                "STORAGE_ACCOUNT_URL" => Some(storage_url.clone()),
                "STORAGE_ACCOUNT_KEY" => env(name).or_else(|| key_default.clone()),
                "LOCAL_WORK_DIR" => env(name).or_else(|| work_dir_default.clone()),
                "LOCAL_PODMAN_IMAGE" if podman => env(name)
                    .or_else(|| env("WORDCOUNT_IMAGE"))
                    .or_else(|| Some(DEFAULT_LOCAL_IMAGE.into())),
                _ => env(name),
            }
        }
    };
    let settings = Settings::from_lookup(lookup)?;
    // RUNNER=local requires the key, so settings without one were refused above.
    let Some(key) = settings.storage.account_key.clone() else {
        return Err(DevError::Setup(
            "STORAGE_ACCOUNT_KEY is needed here (tasks get SAS URLs signed with it)".into(),
        ));
    };
    let account = StorageAccount::new(settings.storage.account_url.as_str(), key);
    Ok(LocalSetup {
        settings,
        account,
        url: parsed,
        loopback,
    })
}

/// Runs until the shutdown signal; returns what happened.
pub async fn run(options: DevOptions) -> Result<DevSummary, DevError> {
    let started = Instant::now();
    let env: Env = options.env.clone().unwrap_or_else(process_env);

    let local = resolve(
        env.clone(),
        &LocalDefaults {
            persist: options.persist.clone(),
            podman: options.podman,
        },
    )?;
    let LocalSetup {
        settings,
        account,
        url: parsed,
        loopback,
    } = local;
    let host = parsed.host_str().unwrap_or_default().to_string();

    // Storage: use what answers, or start Azurite on that loopback address.
    let mut azurite_process: Option<AzuriteProcess> = None;
    if !azurite::is_reachable(account.url()).await {
        if !loopback {
            return Err(DevError::StorageUnreachable(account.url().to_string()));
        }
        let port = parsed.port_or_known_default().unwrap_or(10000);
        let process = azurite::start(AzuriteOptions {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            persist: options.persist.clone(),
            debug_log: None,
        })
        .await?;
        azurite_process = Some(process);
    }
    let storage_note = if azurite_process.is_some() {
        match &options.persist {
            Some(dir) => format!("Azurite started, data in {}", dir.display()),
            None => "Azurite started, in memory".to_string(),
        }
    } else {
        "already running".to_string()
    };

    let result = run_with_storage(options, settings, account, started, storage_note).await;
    if let Some(process) = azurite_process {
        process.stop().await;
    }
    result
}

async fn run_with_storage(
    options: DevOptions,
    settings: Settings,
    account: StorageAccount,
    started: Instant,
    storage_note: String,
) -> Result<DevSummary, DevError> {
    for container in [&settings.input_container, &settings.output_container] {
        let creating = |source| DevError::Storage {
            what: format!("creating container `{container}`"),
            source,
        };
        account
            .container(container)
            .map_err(creating)?
            .create_if_missing()
            .await
            .map_err(creating)?;
    }

    // The runner, as `serve` builds it from the same settings.
    let RunnerSettings::Local(local) = &settings.runner else {
        return Err(DevError::Setup(
            "the local pipeline runs with RUNNER=local".into(),
        ));
    };
    let runner = LocalRunner::new(LocalRunnerOptions::from_settings(local)?)?;
    let engine = runner.engine().clone();
    let work_dir = runner.work_dir().to_path_buf();
    let mut runner_events = runner.subscribe();

    // The handler, on an ephemeral port.
    let input = settings.input_container.clone();
    let output = settings.output_container.clone();
    let application = Application::build(settings, Arc::new(runner.clone())).await?;
    let port = application.port();
    let (stop_tx, stop_rx) = watch::channel(false);
    let handler_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let handler = tokio::spawn(application.run_until_stopped(handler_stop));

    // The feed.
    let handler_url = format!("http://127.0.0.1:{port}");
    let target = match &options.func_host {
        Some(url) => FeedTarget::FunctionsHost(url.clone()),
        None => FeedTarget::Handler(handler_url.clone()),
    };
    let (feed_tx, mut feed_events) = mpsc::unbounded_channel();
    let feed_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let feed = tokio::spawn(feed::run(
        FeedOptions {
            account: account.clone(),
            container: input.clone(),
            target: target.clone(),
            interval: Duration::from_millis(250),
            parallel: 16,
        },
        feed_tx,
        feed_stop,
    ));

    let engine_note = match &engine {
        Engine::Process { wordcount_bin } => format!("wordcount {}", wordcount_bin.display()),
        Engine::Podman { image } => format!("podman image {image}"),
    };
    // The operations commands find this pipeline by themselves only where its defaults are theirs.
    let default_work_dir = std::env::temp_dir().join("blob2batch-local");
    let operate = if work_dir == default_work_dir && options.persist.is_none() {
        "blob2batch status | reconcile | redrive".to_string()
    } else {
        format!(
            "LOCAL_WORK_DIR={} blob2batch status | reconcile | redrive",
            work_dir.display()
        )
    };
    say(&format!(
        "ready in {:.2} s\n  storage  {} ({storage_note})\n  input    {}/{input}\n  output   {}/{output}\n  handler  {handler_url}{}\n  runner   {engine_note}, work dir {}\n  drop files with: blob2batch put FILE...  (or Azure Storage Explorer / az storage blob upload against the emulator)\n  operate:  {operate}",
        started.elapsed().as_secs_f64(),
        account.url(),
        account.url(),
        account.url(),
        match &options.func_host {
            Some(url) => format!(" (events delivered through the Functions host at {url})"),
            None => String::new(),
        },
        work_dir.display(),
    ));

    let mut shutdown = options
        .shutdown
        .unwrap_or_else(|| Box::pin(shutdown_signal()));
    let mut summary = DevSummary::default();
    let mut names: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(event) = feed_events.recv() => on_feed_event(event, &mut names, &mut summary),
            event = runner_events.recv() => match event {
                Ok(event) => on_runner_event(event, &names, &output, &mut summary),
                Err(broadcast::error::RecvError::Lagged(n)) => say(&format!("({n} task events not shown)")),
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }

    say("stopping...");
    let _ = stop_tx.send(true);
    let _ = feed.await;
    match tokio::time::timeout(Duration::from_secs(5), handler).await {
        Ok(Ok(Err(e))) => say(&format!("handler stopped with an error: {e}")),
        Err(_) => say("handler did not stop within 5 s"),
        _ => {}
    }
    runner.shutdown().await;
    say(&format!(
        "summary: {} file(s) seen, {} done, {} failed{}",
        summary.seen,
        summary.done,
        summary.failed,
        match runner.pending() {
            0 => String::new(),
            n => format!(", {n} unfinished (run again when dev restarts with the same work dir)"),
        }
    ));
    Ok(summary)
}

fn on_feed_event(event: FeedEvent, names: &mut HashMap<String, String>, summary: &mut DevSummary) {
    match event {
        FeedEvent::Delivered {
            blob,
            size,
            outcome,
            task_id,
            detail,
            ..
        } => {
            summary.seen += 1;
            if let Some(id) = &task_id {
                names.insert(id.to_ascii_lowercase(), blob.clone());
            }
            let outcome = outcome
                .unwrap_or_else(|| "delivered".into())
                .to_ascii_lowercase();
            let task = task_id.map(|id| format!(" task {id}")).unwrap_or_default();
            let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
            say(&format!(
                "received  {blob} ({}) ->{task} [{outcome}{detail}]",
                human_bytes(size)
            ));
        }
        FeedEvent::Retrying { blob, error, .. } => {
            say(&format!(
                "retrying  {blob}: delivery failed ({error}); will retry"
            ));
        }
        FeedEvent::ListFailed { error } => {
            say(&format!("listing the input container failed: {error}"))
        }
    }
}

fn on_runner_event(
    event: RunnerEvent,
    names: &HashMap<String, String>,
    output: &str,
    summary: &mut DevSummary,
) {
    let name = |id: &str, display: &Option<String>| -> String {
        names
            .get(&id.to_ascii_lowercase())
            .cloned()
            .or_else(|| display.clone())
            .unwrap_or_else(|| id.to_string())
    };
    match event {
        RunnerEvent::Received { .. } => {}
        RunnerEvent::Running { id, display_name } => {
            say(&format!(
                "running   {} (task {id})",
                name(&id, &display_name)
            ));
        }
        RunnerEvent::Done {
            id,
            display_name,
            duration,
            phases,
            outputs,
            ..
        } => {
            summary.done += 1;
            let counts = outputs
                .iter()
                .find(|o| o.blob.ends_with(".json"))
                .and_then(|o| read_counts(&o.file));
            let counts = counts
                .map(|(w, u)| format!(": {w} words, {u} distinct"))
                .unwrap_or_default();
            let blobs = outputs
                .iter()
                .map(|o| format!("{output}/{}", o.blob))
                .collect::<Vec<_>>()
                .join(", ");
            say(&format!(
                "done      {} in {} ms (fetch {}, run {}, upload {}){counts} -> {blobs}",
                name(&id, &display_name),
                duration.as_millis(),
                phases.fetch.as_millis(),
                phases.run.as_millis(),
                phases.upload.as_millis(),
            ));
        }
        RunnerEvent::Failed {
            id,
            display_name,
            failure,
            stderr_tail,
            outputs,
            task_dir,
            ..
        } => {
            summary.failed += 1;
            let mut text = format!(
                "FAILED    {} (task {id}): {failure}",
                name(&id, &display_name)
            );
            let tail: Vec<&str> = stderr_tail.lines().rev().take(5).collect();
            for line in tail.into_iter().rev() {
                text.push_str(&format!("\n    stderr| {line}"));
            }
            let logs: Vec<String> = outputs
                .iter()
                .map(|o| format!("{output}/{}", o.blob))
                .collect();
            if logs.is_empty() {
                text.push_str(&format!("\n    logs: {}", task_dir.display()));
            } else {
                text.push_str(&format!(
                    "\n    logs: {} (local copy in {})",
                    logs.join(", "),
                    task_dir.display()
                ));
            }
            say(&text);
        }
    }
}

fn read_counts(path: &Path) -> Option<(u64, u64)> {
    // The document ends with the counts; `words` and `unique_words` come first, so a prefix does.
    use std::io::Read as _;
    let mut buf = vec![0u8; 4096];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let field = |name: &str| -> Option<u64> {
        let at = text.find(&format!("\"{name}\":"))? + name.len() + 3;
        let digits: String = text[at..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    };
    Some((field("words")?, field("unique_words")?))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
