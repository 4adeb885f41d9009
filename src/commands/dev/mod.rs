//! `blob2batch dev`: the whole pipeline on this machine.
//!
//! Storage at `STORAGE_ACCOUNT_URL` (default: Azurite's well-known account; started here when
//! nothing answers on that loopback address), the input and output containers (and the staging
//! container a split blob's parts leave their counts in), the handler with the local runner on
//! an ephemeral port, and the feed that delivers a BlobCreated event for each
//! new blob. Prints one line per step of each file (see `progress`); stops everything it started
//! on Ctrl-C/SIGTERM.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub mod feed;
pub(crate) mod planning;
mod progress;

use self::feed::{FeedEvent, FeedOptions, FeedTarget};
pub use self::progress::DevSummary;
use self::progress::{Progress, say};
use super::CommandError;
use crate::commands::put::human_bytes;
use crate::config::{
    ConfigError, DEFAULT_LOCAL_IMAGE, LocalSettings, RunnerSettings, Settings, SplitSettings,
    StorageAccess,
};
use crate::context::{Context, ContextError};
use crate::local::{Engine, LocalRunner, LocalRunnerError, LocalRunnerOptions, RunnerEvent};
use crate::loopback::is_loopback_url;
use crate::shutdown::shutdown_signal;
use crate::startup::{Application, BindError};
use crate::storage::StorageAccount;
use crate::storage::azurite::{self, AzuriteOptions, AzuriteProcess};
use crate::storage::blob::BlobError;

pub(crate) type ShutdownSignal = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting `dev` cannot work with.
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
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("handler")]
    Handler(#[from] BindError),
}

impl From<DevError> for CommandError {
    /// Settings `dev` cannot work with are the caller's to fix; everything else happened at run
    /// time.
    fn from(error: DevError) -> CommandError {
        match error {
            DevError::Config(error) => CommandError::from(error),
            DevError::Context(error) => CommandError::from(error),
            error @ DevError::Setup(_) => CommandError::usage(error),
            error => CommandError::runtime(error),
        }
    }
}

/// What the `dev` command line changes in the local settings' defaults.
#[derive(Clone, Debug, Default)]
pub(crate) struct LocalDefaults {
    /// `--persist DIR`: task records in `DIR/work` unless `LOCAL_WORK_DIR` says otherwise.
    pub persist: Option<PathBuf>,
    /// `--podman`: run tasks in `LOCAL_PODMAN_IMAGE`, else `WORDCOUNT_IMAGE`, else the local build.
    pub podman: bool,
}

/// Settings for the local pipeline and `put`, with the local defaults: Azurite's well-known
/// account when `STORAGE_ACCOUNT_URL` is unset (and its key for a loopback URL without
/// `STORAGE_ACCOUNT_KEY`), `RUNNER=local`, the handler on an ephemeral loopback port.
pub(crate) struct LocalSetup {
    pub settings: Settings,
    /// The local runner's settings (`settings.runner`).
    pub local: LocalSettings,
    pub account: StorageAccount,
    pub url: url::Url,
    pub loopback: bool,
}

pub(crate) type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment (empty values count as unset).
pub(crate) fn process_env() -> Env {
    Arc::new(|k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

pub(crate) fn resolve(env: Env, defaults: &LocalDefaults) -> Result<LocalSetup, DevError> {
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
    // With RUNNER=local the settings hold the local runner's part and a key (they refuse to
    // load otherwise).
    let (RunnerSettings::Local(local), StorageAccess::Sas(key)) =
        (&settings.runner, &settings.task.access)
    else {
        return Err(DevError::Setup(
            "the local pipeline needs RUNNER=local and STORAGE_ACCOUNT_KEY".into(),
        ));
    };
    let account = StorageAccount::new(settings.storage.account_url.as_str(), key.clone());
    Ok(LocalSetup {
        local: local.clone(),
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
    let setup = resolve(
        env,
        &LocalDefaults {
            persist: options.persist.clone(),
            podman: options.podman,
        },
    )?;
    let azurite = ensure_storage(&setup, options.persist.as_ref()).await?;
    let storage_note = match (&azurite, &options.persist) {
        (Some(_), Some(dir)) => format!("Azurite started, data in {}", dir.display()),
        (Some(_), None) => "Azurite started, in memory".to_string(),
        (None, _) => "already running".to_string(),
    };
    let result = run_pipeline(options, setup, started, storage_note).await;
    if let Some(process) = azurite {
        process.stop().await;
    }
    result
}

/// Uses the storage that answers, or starts Azurite on that loopback address.
async fn ensure_storage(
    setup: &LocalSetup,
    persist: Option<&PathBuf>,
) -> Result<Option<AzuriteProcess>, DevError> {
    let url = setup.account.url();
    if azurite::is_reachable(url)
        .await
        .map_err(azurite::AzuriteError::from)?
    {
        return Ok(None);
    }
    if !setup.loopback {
        return Err(DevError::StorageUnreachable(url.to_string()));
    }
    let host = setup.url.host_str().unwrap_or_default();
    let process = azurite::start(AzuriteOptions {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: setup.url.port_or_known_default().unwrap_or(10000),
        persist: persist.cloned(),
        debug_log: None,
    })
    .await?;
    Ok(Some(process))
}

/// The pipeline on storage that answers: containers, runner, handler and feed, until the
/// shutdown signal.
async fn run_pipeline(
    options: DevOptions,
    setup: LocalSetup,
    started: Instant,
    storage_note: String,
) -> Result<DevSummary, DevError> {
    let LocalSetup {
        settings,
        local,
        account,
        ..
    } = setup;
    let (input, output, staging) = (
        settings.input_container.clone(),
        settings.output_container.clone(),
        settings.split.staging_container.clone(),
    );
    for container in [&input, &output, &staging] {
        create_container(&account, container).await?;
    }
    let split = split_note(&settings.split);
    // The runner, as `serve` builds it from the same settings; its events are shown here.
    let runner_options = LocalRunnerOptions::from_settings(&local, settings.word_count_image())?;
    let runner = LocalRunner::open(runner_options).await?;
    // The commands run against this work directory plan as this run does.
    let env = options.env.clone().unwrap_or_else(process_env);
    if let Err(error) = planning::record(&env, &local.work_dir) {
        say(&format!(
            "cannot record the settings for the commands: {error}"
        ));
    }
    let runner_events = runner.subscribe();
    let context = Context::with_runner(settings, Arc::new(runner.clone()))?;
    let application = Application::build(Arc::new(context)).await?;
    let handler_url = format!("http://127.0.0.1:{}", application.port());

    let (stop, stopped) = watch::channel(false);
    let handler = tokio::spawn(application.run_until_stopped(until(stopped.clone())));
    let target = match &options.func_host {
        Some(url) => FeedTarget::FunctionsHost(url.clone()),
        None => FeedTarget::Handler(handler_url.clone()),
    };
    let (feed_tx, feed_events) = mpsc::unbounded_channel();
    let feed = tokio::spawn(feed::run(
        FeedOptions {
            account: account.clone(),
            container: input.clone(),
            target,
            interval: Duration::from_millis(250),
            parallel: 16,
        },
        feed_tx,
        until(stopped),
    ));

    say(&ready_banner(Banner {
        started,
        account: &account,
        storage_note: &storage_note,
        input: &input,
        output: &output,
        split: &split,
        handler_url: &handler_url,
        func_host: options.func_host.as_deref(),
        runner: &runner,
        persist: options.persist.is_some(),
    }));
    let shutdown = options
        .shutdown
        .unwrap_or_else(|| Box::pin(shutdown_signal()));
    let summary = watch_events(shutdown, feed_events, runner_events).await;
    say("stopping...");
    let _ = stop.send(true);
    stop_all(feed, handler, &runner).await;
    say(&summary_line(&summary, runner.pending()));
    Ok(summary)
}

async fn create_container(account: &StorageAccount, name: &str) -> Result<(), DevError> {
    let creating = |source| DevError::Storage {
        what: format!("creating container `{name}`"),
        source,
    };
    account
        .container(name)
        .map_err(creating)?
        .create_if_missing()
        .await
        .map_err(creating)?;
    Ok(())
}

/// Completes once `stopped` turns true.
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// What the ready banner shows.
struct Banner<'a> {
    started: Instant,
    account: &'a StorageAccount,
    storage_note: &'a str,
    input: &'a str,
    output: &'a str,
    /// When blobs are split, and where their parts stage their counts.
    split: &'a str,
    handler_url: &'a str,
    func_host: Option<&'a str>,
    runner: &'a LocalRunner,
    persist: bool,
}

fn ready_banner(b: Banner<'_>) -> String {
    let engine = match b.runner.engine() {
        Engine::Process { wordcount_bin } => format!("wordcount {}", wordcount_bin.display()),
        Engine::Podman { image } => format!("podman image {image}"),
    };
    let work_dir = b.runner.work_dir();
    // The operations commands find this pipeline by themselves only where its defaults are theirs.
    let default_work_dir = std::env::temp_dir().join("blob2batch-local");
    let operate = if work_dir == default_work_dir && !b.persist {
        "blob2batch status | reconcile | redrive".to_string()
    } else {
        format!(
            "LOCAL_WORK_DIR={} blob2batch status | reconcile | redrive",
            work_dir.display()
        )
    };
    let via = match b.func_host {
        Some(url) => format!(" (events delivered through the Functions host at {url})"),
        None => String::new(),
    };
    let url = b.account.url();
    format!(
        "ready in {:.2} s\n  storage  {url} ({})\n  input    {url}/{}\n  output   {url}/{}\n  \
         split    {}\n  handler  {}{via}\n  runner   {engine}, work dir {}\n  drop files with: blob2batch put \
         FILE...  (or Azure Storage Explorer / az storage blob upload against the emulator)\n  \
         operate:  {operate}",
        b.started.elapsed().as_secs_f64(),
        b.storage_note,
        b.input,
        b.output,
        b.split,
        b.handler_url,
        work_dir.display(),
    )
}

/// Shows what the feed and the runner report until `shutdown`.
async fn watch_events(
    mut shutdown: ShutdownSignal,
    mut feed_events: mpsc::UnboundedReceiver<FeedEvent>,
    mut runner_events: broadcast::Receiver<RunnerEvent>,
) -> DevSummary {
    let mut progress = Progress::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(event) = feed_events.recv() => progress.on_feed_event(event),
            event = runner_events.recv() => match event {
                Ok(event) => progress.on_runner_event(event),
                Err(broadcast::error::RecvError::Lagged(n)) => say(&format!("({n} task events not shown)")),
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    progress.summary()
}

async fn stop_all(feed: JoinHandle<()>, handler: JoinHandle<()>, runner: &LocalRunner) {
    let _ = feed.await;
    if tokio::time::timeout(Duration::from_secs(5), handler)
        .await
        .is_err()
    {
        say("handler did not stop within 5 s");
    }
    runner.shutdown().await;
}

/// The banner's word on splitting: from what size, in parts of what size, staged where.
fn split_note(split: &SplitSettings) -> String {
    match split.threshold {
        Some(threshold) => format!(
            "word counts of {} or more in parts of {} (at most {}), staged in container {}",
            human_bytes(threshold),
            human_bytes(split.part_size),
            split.max_parts,
            split.staging_container
        ),
        None => "off (SPLIT_THRESHOLD)".to_string(),
    }
}

fn summary_line(summary: &DevSummary, pending: usize) -> String {
    format!(
        "summary: {} file(s) seen, {} done, {} failed{}",
        summary.seen,
        summary.done,
        summary.failed,
        match pending {
            0 => String::new(),
            n => format!(", {n} unfinished (run again when dev restarts with the same work dir)"),
        }
    )
}
