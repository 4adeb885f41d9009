//! The `blob2batch` command: parses the command line and hands over to the library.
//!
//! Exit codes: 0 success, 1 a runtime failure, 2 a usage or settings error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use blob2batch::commands::dev::{self, DevOptions, LocalDefaults};
use blob2batch::commands::put::{self, PutOptions};
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
}

/// Exit code of a usage or settings error.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let interactive = !matches!(cli.command, Command::Serve);
    if interactive && std::env::var_os("RUST_LOG").is_none() {
        // `dev` and `put` print their own progress; logs are for problems only.
        // SAFETY: still single-threaded; nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
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
                telemetry::init_with(false, std::io::stderr);
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
                telemetry::init_with(false, std::io::stderr);
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
        }
    })
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
