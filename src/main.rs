//! The `blob2batch` command: parses the command line and hands over to the library.
//!
//! Exit codes: 0 success, 1 a runtime failure, 2 a usage or settings error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use blob2batch::config::Settings;
use blob2batch::startup::{Application, runner_from_settings, shutdown_signal};
use blob2batch::telemetry;

#[derive(Parser)]
#[command(name = "blob2batch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the custom handler (what host.json starts); settings come from the environment.
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(),
    }
}

fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("blob2batch: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("blob2batch: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let result = async {
            let runner = runner_from_settings(&settings)?;
            let application = Application::build(settings, runner).await?;
            application
                .run_until_stopped(shutdown_signal())
                .await
                .map_err(|e| format!("server error: {e}").into())
        }
        .await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err::<(), Box<dyn std::error::Error>>(error) => {
                tracing::error!(%error, "stopped");
                eprintln!("blob2batch: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
