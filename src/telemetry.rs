//! Logging: readable lines in a terminal, JSON lines otherwise (the Functions host and log
//! collectors read stdout). Filtered by `RUST_LOG`; without it, by the default the caller gives
//! (`info` for `serve`, `warn` for the commands, which print their own progress).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Readable lines; coloured only when `colour`, so that a file or a pipe gets no escape codes.
    Text { colour: bool },
}

impl LogFormat {
    /// Readable lines for a terminal, coloured unless `NO_COLOR` is set; `fallback` otherwise.
    pub fn for_stream(stream: &impl IsTerminal, fallback: LogFormat) -> LogFormat {
        if stream.is_terminal() {
            LogFormat::Text {
                colour: colours(stream),
            }
        } else {
            fallback
        }
    }
}

/// Whether what is written to `stream` may carry colour: only a terminal shows it, and
/// `NO_COLOR` turns it off. The one rule for logs and the commands' tables alike.
pub(crate) fn colours(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Installs the global subscriber writing to stdout at `info` unless `RUST_LOG` says otherwise;
/// JSON unless stdout is a terminal.
pub(crate) fn init() {
    let format = LogFormat::for_stream(&std::io::stdout(), LogFormat::Json);
    init_with(format, "info", std::io::stdout);
}

/// Installs the global subscriber with an explicit format, default filter (used when `RUST_LOG`
/// is unset or invalid) and writer (the commands write to stderr; tests capture output).
pub fn init_with<W>(format: LogFormat, default_filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text { colour } => builder.with_target(false).with_ansi(colour).try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}
