//! The command line: what each command takes, and running one to its exit code. Every command
//! ends here the same way: success (0); failures it went on past, each named on its own stderr
//! line (1); or an error, named on stderr with its causes, whose kind gives the exit code (see
//! [`super::CommandError`]).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use super::dev::{self, DevOptions, LocalDefaults};
use super::plan::PlanOptions;
use super::put::{self, PutOptions};
use super::reconcile::ReconcileOptions;
use super::redrive::RedriveOptions;
use super::status::StatusOptions;
use super::{CommandError, FAILURE, SUCCESS, console, reconcile, redrive, status};
use crate::config::Settings;
use crate::context::Context;
use crate::shutdown::shutdown_signal;
use crate::startup::Application;
use crate::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(name = "blob2batch", version, about, long_about = None)]
pub struct Cli {
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
        /// Content type of every file (workload routes may match on it); default: guessed
        /// from each file's name.
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
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
        /// Submit again the versions whose task (or split job) failed, after removing it.
        #[arg(long)]
        retry_failed: bool,
    },
    /// Check the workloads file and print the routing table: each route in order, what it takes
    /// and what it runs.
    Workloads {
        /// One JSON object per route.
        #[arg(long)]
        json: bool,
    },
    /// What serve would do with a blob version: which workload takes it, and the exact Batch
    /// request bodies it would send (signatures redacted). Reaches nothing.
    Plan {
        /// One JSON object per blob version.
        #[arg(long)]
        json: bool,
        /// The version's eTag (default: a placeholder, named in the output).
        #[arg(long, value_name = "E")]
        etag: Option<String>,
        /// The blob's size in bytes (default 0).
        #[arg(long, value_name = "N")]
        size: Option<u64>,
        /// The blob's content type, as its uploader set it.
        #[arg(long, value_name = "T")]
        content_type: Option<String>,
        /// An Event Grid or CloudEvents event, a delivery, or a Functions host invocation.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["etag", "size", "content_type"])]
        event: Option<PathBuf>,
        /// A blob of the input container.
        #[arg(
            value_name = "NAME",
            required_unless_present = "event",
            conflicts_with = "event"
        )]
        name: Option<String>,
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

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Serve => "serve",
            Command::Dev { .. } => "dev",
            Command::Put { .. } => "put",
            Command::Status { .. } => "status",
            Command::Reconcile { .. } => "reconcile",
            Command::Redrive { .. } => "redrive",
            Command::Workloads { .. } => "workloads",
            Command::Plan { .. } => "plan",
        }
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_iso8601(text)
        .filter(|d| d.as_secs() <= 366 * 86_400)
        .ok_or_else(|| format!("`{text}` is not an ISO 8601 duration up to P366D (e.g. PT25H)"))
}

/// Runs the command to its exit code, naming on stderr whatever went wrong.
pub fn run(cli: Cli) -> u8 {
    let name = cli.command.name();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("blob2batch {name}: cannot start the async runtime: {error}");
            return FAILURE;
        }
    };
    if !matches!(cli.command, Command::Serve) {
        // The commands print their own progress; logs are for problems only.
        let format = LogFormat::for_stream(&std::io::stderr(), LogFormat::Text { colour: false });
        telemetry::init_with(format, "warn", std::io::stderr);
    }
    match runtime.block_on(dispatch(cli.command)) {
        Ok(problems) if problems.is_empty() => SUCCESS,
        Ok(problems) => {
            for problem in &problems {
                eprintln!("blob2batch {name}: {problem}");
            }
            FAILURE
        }
        Err(error) => {
            eprintln!("blob2batch {name}: {error}");
            error.exit_code()
        }
    }
}

/// The failures a command went on past (one stderr line each), or the error that stopped it.
async fn dispatch(command: Command) -> Result<Vec<String>, CommandError> {
    let out = &mut std::io::stdout();
    match command {
        Command::Serve => serve().await.map(|()| Vec::new()),
        Command::Dev {
            persist,
            func_host,
            podman,
        } => {
            let options = DevOptions {
                persist,
                func_host,
                podman,
                ..DevOptions::default()
            };
            dev::run(options).await?;
            Ok(Vec::new())
        }
        Command::Put {
            files,
            prefix,
            content_type,
        } => put_files(files, prefix, content_type).await,
        Command::Status {
            json,
            prefix,
            names,
        } => {
            let options = StatusOptions {
                json,
                prefix,
                names,
            };
            status::run(&commands_context()?, &options, out).await
        }
        Command::Reconcile {
            prefix,
            since,
            dry_run,
            json,
            retry_failed,
        } => {
            let options = ReconcileOptions {
                prefix,
                since,
                dry_run,
                json,
                retry_failed,
            };
            reconcile::run(&commands_context()?, &options, out).await
        }
        Command::Workloads { json } => {
            super::workloads::run(&console::ops_settings()?, json, out);
            Ok(Vec::new())
        }
        Command::Plan {
            json,
            etag,
            size,
            content_type,
            event,
            name,
        } => {
            let options = PlanOptions {
                json,
                etag,
                size,
                content_type,
                name,
                event,
            };
            super::plan::run(&console::ops_settings()?, &options, out).map(|()| Vec::new())
        }
        Command::Redrive { dry_run, json } => {
            let options = RedriveOptions { dry_run, json };
            redrive::run(&commands_context()?, &options, out).await
        }
    }
}

/// `put`: the files into the input container `dev` uses, with the same settings.
async fn put_files(
    files: Vec<PathBuf>,
    prefix: String,
    content_type: Option<String>,
) -> Result<Vec<String>, CommandError> {
    let setup = dev::resolve(console::command_env(), &LocalDefaults::default())?;
    put::run(PutOptions {
        container: setup.settings.input_container.clone(),
        account: setup.account,
        files,
        prefix,
        create_container: true,
        content_type,
    })
    .await?;
    Ok(Vec::new())
}

/// The operations commands' context, from their settings (see [`console::ops_settings`]).
fn commands_context() -> Result<Context, CommandError> {
    Ok(Context::for_commands(console::ops_settings()?)?)
}

/// The handler, until Ctrl-C or SIGTERM.
async fn serve() -> Result<(), CommandError> {
    let settings = Settings::from_env()?;
    telemetry::init();
    let started = match Context::for_serve(settings).await {
        Ok(context) => Application::build(Arc::new(context))
            .await
            .map_err(CommandError::runtime),
        Err(error) => Err(CommandError::from(error)),
    };
    match started {
        Ok(application) => {
            application.run_until_stopped(shutdown_signal()).await;
            Ok(())
        }
        Err(error) => {
            // The Functions host reads the handler's stdout, not its stderr.
            tracing::error!(error = %error, "stopped");
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_up_to_a_year() {
        assert_eq!(
            parse_duration("PT25H"),
            Ok(std::time::Duration::from_secs(25 * 3600))
        );
        assert!(parse_duration("P367D").is_err());
        assert!(parse_duration("25h").is_err());
    }

    #[test]
    fn commands_know_their_names() {
        let cli = Cli::try_parse_from(["blob2batch", "reconcile", "--dry-run"]).unwrap();
        assert_eq!(cli.command.name(), "reconcile");
    }
}
