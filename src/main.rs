//! The `blob2batch` command: parses the command line and hands over to the library.
//!
//! Exit codes: 0 success, 1 a runtime failure, 2 a usage or settings error.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = blob2batch::commands::cli::Cli::parse();
    ExitCode::from(blob2batch::commands::cli::run(cli))
}
