//! Logging: readable lines in a terminal, JSON lines otherwise (the Functions host and log
//! collectors read stdout). Filtered by `RUST_LOG`, `info` by default.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to stdout; JSON unless stdout is a terminal.
pub fn init() {
    let json = !std::io::stdout().is_terminal();
    init_with(json, std::io::stdout);
}

/// Installs the global subscriber with an explicit format and writer (tests capture output).
pub fn init_with<W>(json: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
