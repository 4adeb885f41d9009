//! What the operations commands share on the console: which settings they read, how a table
//! looks, and colour only where a terminal shows it.

use std::io::Write;
use std::path::PathBuf;

use super::CommandError;
use super::dev::{self, LocalDefaults};
use crate::config::{Settings, default_work_dir};

/// The settings of `status`, `reconcile` and `redrive`: those of `serve`, read from the
/// environment; without `STORAGE_ACCOUNT_URL`, those of the local pipeline (`dev`'s Azurite and
/// work directory), as `put` does. With the local runner, what the environment leaves unset of
/// the settings `dev` plans with comes from that `dev`.
pub(crate) fn ops_settings() -> Result<Settings, CommandError> {
    let env = command_env();
    if env("STORAGE_ACCOUNT_URL").is_some() {
        Ok(Settings::from_lookup(|name| env(name))?)
    } else {
        Ok(dev::resolve(env, &LocalDefaults::default())?.settings)
    }
}

/// What a command reads its settings from: the process environment and, on the local pipeline
/// (no `STORAGE_ACCOUNT_URL`, or `RUNNER=local`), what its `dev` plans with.
pub(crate) fn command_env() -> dev::Env {
    let env = dev::process_env();
    if env("STORAGE_ACCOUNT_URL").is_none() || env("RUNNER").as_deref() == Some("local") {
        as_the_local_pipeline_plans(env)
    } else {
        env
    }
}

/// With the local runner, the planning settings the `dev` executing the work directory was
/// given fill those the environment leaves unset (see [`dev::planning`]); named on stderr.
fn as_the_local_pipeline_plans(env: dev::Env) -> dev::Env {
    let work_dir = env("LOCAL_WORK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_work_dir);
    let (env, taken) = dev::planning::adopt(env, &work_dir);
    if !taken.is_empty() {
        let named: Vec<String> = taken.iter().map(|(n, v)| format!("{n}={v}")).collect();
        eprintln!(
            "blob2batch: with the settings of the local pipeline's dev ({}, from {})",
            named.join(", "),
            dev::planning::path(&work_dir).display()
        );
    }
    env
}

/// A terminal colour for a word, or nothing when stdout is not a terminal (or `NO_COLOR` is set).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Palette {
    enabled: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Tone {
    Good,
    Busy,
    Bad,
    Quiet,
}

impl Palette {
    pub(crate) fn for_stdout() -> Palette {
        Palette {
            enabled: crate::telemetry::colours(&std::io::stdout()),
        }
    }

    #[cfg(test)]
    pub fn plain() -> Palette {
        Palette { enabled: false }
    }

    /// `text` padded to `width` characters, coloured when enabled (padding outside the colour, so
    /// columns stay aligned).
    pub(crate) fn paint(&self, text: &str, tone: Tone, width: usize) -> String {
        let pad = " ".repeat(width.saturating_sub(text.chars().count()));
        if !self.enabled {
            return format!("{text}{pad}");
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Busy => "33",
            Tone::Bad => "31",
            Tone::Quiet => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m{pad}")
    }
}

/// Writes a line to stdout; a closed stdout (`| head`) is not an error worth a panic.
pub fn line(out: &mut impl Write, text: &str) {
    let _ = writeln!(out, "{text}");
}

/// One JSON object on a line.
pub(crate) fn json_line(out: &mut impl Write, value: &impl serde::Serialize) {
    if let Ok(text) = serde_json::to_string(value) {
        let _ = writeln!(out, "{text}");
    }
}
