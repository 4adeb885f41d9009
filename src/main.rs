//! The `blob2batch` command: parses the command line and hands over to the library.
//!
//! Exit codes: 0 success, 1 a runtime failure, 2 a usage or settings error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use blob2batch::commands::console::{self, Problems, UsageError};
use blob2batch::commands::dev::{self, DevOptions, LocalDefaults};
use blob2batch::commands::put::{self, PutOptions};
use blob2batch::commands::{reconcile, redrive, status};
use blob2batch::config::Settings;
use blob2batch::error_chain::error_chain;
use blob2batch::shutdown::shutdown_signal;
use blob2batch::startup::{Application, runner_from_settings};
use blob2batch::telemetry;

#[derive(Parser)]
#[command(name = "blob2batch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the custom handler (what host.json starts); listens on FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve,
    /// Run the whole pipeline on this machine: Azurite, the handler with the local runner, and a
    /// feed that turns new blobs in the input container into BlobCreated events.
    Dev {
        /// Keep Azurite's data (and the task work directory) in this folder instead of in memory.
        #[arg(long, value_name = "DIR")]
        persist: Option<PathBuf>,
        /// Deliver events through this Functions host (`func start`, e.g. http://localhost:7071).
        #[arg(long, value_name = "URL")]
        func_host: Option<String>,
        /// Run tasks in the container image with podman (LOCAL_PODMAN_IMAGE or WORDCOUNT_IMAGE).
        #[arg(long)]
        podman: bool,
    },
    /// Upload files into the input container (same settings as `dev`).
    Put {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Prefix for the blob names (e.g. `docs/`); the blob name is prefix + file name.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// What became of each blob's current version: its task, the task's state, its result.
    Status {
        /// One JSON object per blob and line.
        #[arg(long)]
        json: bool,
        /// Only blobs whose name starts with this.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// These blobs only.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Submit the blob versions that have neither a current result nor a task.
    Reconcile {
        /// Only blobs whose name starts with this.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// Only blobs modified within this ISO 8601 duration (e.g. PT25H).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// Submit nothing; report what would be submitted.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per blob acted on, then the counts.
        #[arg(long)]
        json: bool,
    },
    /// Pass Event Grid's dead-lettered events through the intake again.
    Redrive {
        /// Submit and move nothing; report what would happen.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object per event, then the counts.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    blob2batch::duration::parse_iso8601(text)
        .filter(|d| d.as_secs() <= 366 * 86_400)
        .ok_or_else(|| format!("`{text}` is not an ISO 8601 duration up to P366D (e.g. PT25H)"))
}

/// Exit code of a usage or settings error.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("blob2batch: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve().await,
            Command::Dev {
                persist,
                func_host,
                podman,
            } => {
                telemetry::init_with(false, "warn", std::io::stderr);
                let options = DevOptions {
                    persist,
                    func_host,
                    podman,
                    ..DevOptions::default()
                };
                match dev::run(options).await {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(error) => failed("dev", &error, error.is_usage()),
                }
            }
            Command::Put { files, prefix } => {
                telemetry::init_with(false, "warn", std::io::stderr);
                let setup = match dev::resolve(dev::process_env(), &LocalDefaults::default()) {
                    Ok(setup) => setup,
                    Err(error) => return failed("put", &error, true),
                };
                let options = PutOptions {
                    container: setup.settings.input_container.clone(),
                    account: setup.account,
                    files,
                    prefix,
                    create_container: true,
                };
                match put::run(options).await {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(error) => failed("put", &error, error.is_usage()),
                }
            }
            Command::Status {
                json,
                prefix,
                names,
            } => {
                let options = status::StatusOptions {
                    json,
                    prefix,
                    names,
                };
                operation("status", |settings| async move {
                    status::run(&settings, &options, &mut std::io::stdout().lock()).await
                })
                .await
            }
            Command::Reconcile {
                prefix,
                since,
                dry_run,
                json,
            } => {
                let options = reconcile::ReconcileOptions {
                    prefix,
                    since,
                    dry_run,
                    json,
                };
                operation("reconcile", |settings| async move {
                    reconcile::run(&settings, &options, &mut std::io::stdout().lock()).await
                })
                .await
            }
            Command::Redrive { dry_run, json } => {
                let options = redrive::RedriveOptions { dry_run, json };
                operation("redrive", |settings| async move {
                    redrive::run(&settings, &options, &mut std::io::stdout().lock()).await
                })
                .await
            }
        }
    })
}

/// Runs an operations command: its settings (exit code 2 when they are wrong), then `work`,
/// which names what failed; exit code 1 when anything did, each failure on its own stderr line.
async fn operation<F, Fut, R, E>(command: &str, work: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = Result<R, E>>,
    R: Problems,
    E: UsageError,
{
    telemetry::init_with(false, "warn", std::io::stderr);
    let settings = match console::ops_settings() {
        Ok(settings) => settings,
        Err(error) => return failed(command, &error, true),
    };
    match work(settings).await.map(Problems::problems) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            for problem in &problems {
                eprintln!("blob2batch {command}: {problem}");
            }
            ExitCode::FAILURE
        }
        Err(error) => failed(command, &error, error.is_usage()),
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return failed("serve", &error, true),
    };
    telemetry::init();
    let result: Result<(), Box<dyn std::error::Error>> = async {
        let runner = runner_from_settings(&settings)?;
        let application = Application::build(settings, runner).await?;
        application.run_until_stopped(shutdown_signal()).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "stopped");
            failed("serve", error.as_ref(), false)
        }
    }
}

/// Names the error and its causes on stderr; exit code 2 for a usage error, else 1.
fn failed(command: &str, error: &(dyn std::error::Error + 'static), usage: bool) -> ExitCode {
    eprintln!("blob2batch {command}: {}", error_chain(error));
    if usage {
        ExitCode::from(USAGE)
    } else {
        ExitCode::FAILURE
    }
}
