//! The `blob2batch` command: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use blob2batch::config::{RunnerKind, Settings};
use blob2batch::local::dev::{self, DevOptions};
use blob2batch::local::put::{self, PutOptions};
use blob2batch::local::runner::default_concurrency;
use blob2batch::local::{Engine, LocalRunner, LocalRunnerOptions};
use blob2batch::runner::TaskRunner;
use blob2batch::startup::Application;

#[derive(Parser)]
#[command(name = "blob2batch", version, about)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet_by_default = !matches!(cli.command, Command::Serve);
    if quiet_by_default && std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: still single-threaded; nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("blob2batch: cannot start the async runtime: {e}");
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
                blob2batch::telemetry::init_with(false, std::io::stderr);
                let options = DevOptions {
                    persist,
                    func_host,
                    podman,
                    ..DevOptions::default()
                };
                match dev::run(options).await {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("blob2batch dev: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Put { files, prefix } => {
                blob2batch::telemetry::init_with(false, std::io::stderr);
                let setup = match dev::resolve(dev::process_env()) {
                    Ok(setup) => setup,
                    Err(e) => {
                        eprintln!("blob2batch put: {e}");
                        return ExitCode::FAILURE;
                    }
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
                    Err(e) => {
                        eprintln!("blob2batch put: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    })
}

async fn serve() -> ExitCode {
    blob2batch::telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("blob2batch serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runner: Arc<dyn TaskRunner> = match settings.runner {
        RunnerKind::Local => {
            let engine = match settings.local.podman_image.clone() {
                Some(image) => Engine::Podman { image },
                None => match dev::find_wordcount(settings.local.wordcount_bin.as_deref()) {
                    Ok(wordcount_bin) => Engine::Process { wordcount_bin },
                    Err(e) => {
                        eprintln!("blob2batch serve: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            let work_dir = settings
                .local
                .work_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("blob2batch-serve"));
            match LocalRunner::new(LocalRunnerOptions {
                work_dir,
                concurrency: settings
                    .local
                    .concurrency
                    .unwrap_or_else(default_concurrency),
                engine,
            }) {
                Ok(runner) => Arc::new(runner),
                Err(e) => {
                    eprintln!("blob2batch serve: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        RunnerKind::Batch => {
            eprintln!(
                "blob2batch serve: the Azure Batch runner is not part of this build yet; \
                 use RUNNER=local"
            );
            return ExitCode::FAILURE;
        }
    };
    let application = match Application::build(settings, runner).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("blob2batch serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until_stopped(dev::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blob2batch serve: {e}");
            ExitCode::FAILURE
        }
    }
}
