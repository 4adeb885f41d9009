//! Shared by the integration tests: running the real binary, and a real Azurite.

#![allow(dead_code)]

pub mod azurite;

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_wordcount");

/// Runs the binary in `dir` with `args` and `env`, and nothing of the caller's environment that
/// the program reads.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("WORDCOUNT_SOURCE")
        .env_remove("BLOB2BATCH_INPUT_URL")
        .env_remove("BLOB2BATCH_ETAG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    run_env(dir, args, &[])
}

/// Standard output of a run that must succeed.
pub fn ok(out: Output) -> Vec<u8> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The single stderr line of a run that must fail with `code`.
pub fn fails(out: Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("wordcount: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `n` ranges that cover `0..size`, cut at evenly spaced offsets, as the planner would.
pub fn even_ranges(size: u64, n: u64) -> Vec<(u64, u64)> {
    (0..n).map(|i| (size * i / n, size * (i + 1) / n)).collect()
}
