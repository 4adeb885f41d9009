//! The release binary's `serve`, started as the Functions host starts it, against the fake Batch
//! service: what the handler and fault benchmarks both run.

use std::process::{Child, Command, Stdio};

use crate::settings::handler_env;

pub const BINARY: &str = env!("CARGO_BIN_EXE_blob2batch");

/// Passed on from the benchmark's environment when set, to compare settings; unset, `serve`
/// uses its defaults.
const PASSED_ON: [&str; 2] = ["BATCH_MAX_IN_FLIGHT", "BATCH_RETRY_BUDGET"];

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve` on `port`, submitting to the fake Batch service at `batch_url`; warnings only, and
/// its output discarded so that logging costs nothing the benchmark measures.
pub fn spawn_handler(batch_url: &str, port: u16) -> Child {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .env_clear()
        .envs(handler_env(batch_url))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("RUST_LOG", "warn");
    for name in PASSED_ON {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the release binary")
}
