//! Logging: readable lines in a terminal, JSON lines otherwise (the Functions host and log
//! collectors read stdout). Filtered by `RUST_LOG`; without it, by the default the caller gives
//! (`info` for `serve`, `warn` for the commands, which print their own progress).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to stdout at `info` unless `RUST_LOG` says otherwise;
/// JSON unless stdout is a terminal.
pub(crate) fn init() {
    let json = !std::io::stdout().is_terminal();
    init_with(json, "info", std::io::stdout);
}

/// Installs the global subscriber with an explicit format, default filter (used when `RUST_LOG`
/// is unset or invalid) and writer (the commands write to stderr; tests capture output).
pub fn init_with<W>(json: bool, default_filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}
