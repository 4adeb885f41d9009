//! The command line: argument parsing, running a count end to end, and mapping failures to exit
//! codes (0 success, 1 input or output error, 2 usage error).

use crate::input;
use crate::options::{Mode, Options};
use crate::pipeline::{Config, count_reader};
use crate::report::Report;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str = "\
usage: wordcount [--mode unicode|whitespace] [--lowercase] [--format json|tsv] [--top N]
                 [--source NAME] [-o FILE] [INPUT]

Counts word frequencies in INPUT (a file, or standard input when absent or '-'); gzip input is
decompressed on the fly.

  --mode unicode      words are UAX #29 word segments holding a letter or digit, lower-cased (default)
  --mode whitespace   words are runs of bytes between ASCII whitespace, kept as they are
  --lowercase         in whitespace mode, fold ASCII upper case to lower case
  --format json|tsv   JSON document (default) or one 'word<TAB>count' line per word
  --top N             keep only the N most frequent words (0, the default, keeps all)
  --source NAME       the \"source\" field of the JSON document (default: $WORDCOUNT_SOURCE if set,
                      else INPUT or '-')
  -o FILE             write to FILE instead of standard output
";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Tsv,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub options: Options,
    pub format: Format,
    pub top: usize,
    pub source: Option<String>,
    pub output: Option<PathBuf>,
    /// `None` for standard input.
    pub input: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Help,
    Version,
}

/// Why a run failed; the message is the single stderr line.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Usage(String),
    Io(String),
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut parsed = Args {
        options: Options::default(),
        format: Format::Json,
        top: 0,
        source: None,
        output: None,
        input: None,
    };
    let mut inputs: Vec<OsString> = Vec::new();
    let mut args = args.into_iter();
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        if only_operands || arg == "-" || !arg.as_encoded_bytes().starts_with(b"-") {
            inputs.push(arg);
            continue;
        }
        let text = arg
            .to_str()
            .ok_or_else(|| format!("unknown option {}", arg.to_string_lossy()))?;
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(OsString::from(v))),
            _ => (text, None),
        };
        let mut value = |what: &str| -> Result<OsString, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name {
            "--" => only_operands = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--lowercase" if inline.is_none() => parsed.options.lowercase = true,
            "--mode" => {
                parsed.options.mode = match value("a value")?.to_str() {
                    Some("unicode") => Mode::Unicode,
                    Some("whitespace") => Mode::Whitespace,
                    _ => return Err("--mode must be 'unicode' or 'whitespace'".into()),
                }
            }
            "--format" => {
                parsed.format = match value("a value")?.to_str() {
                    Some("json") => Format::Json,
                    Some("tsv") => Format::Tsv,
                    _ => return Err("--format must be 'json' or 'tsv'".into()),
                }
            }
            "--top" => {
                parsed.top = value("a number")?
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--top needs a non-negative integer")?
            }
            "--source" => {
                let v = value("a name")?;
                parsed.source = Some(v.to_string_lossy().into_owned());
            }
            "-o" | "--output" => parsed.output = Some(value("a file name")?.into()),
            _ => return Err(format!("unknown option {text}")),
        }
    }
    if inputs.len() > 1 {
        return Err("at most one INPUT".into());
    }
    parsed.input = inputs.pop().filter(|i| i != "-").map(PathBuf::from);
    Ok(Command::Run(parsed))
}

fn describe(path: Option<&Path>) -> String {
    match path {
        Some(p) => format!("'{}'", p.display()),
        None => "standard input".into(),
    }
}

/// Counts as `args` says. `env_source` is the value of `WORDCOUNT_SOURCE`, if any.
pub fn run(args: &Args, env_source: Option<&OsStr>) -> Result<(), Failure> {
    let input_path = args.input.as_deref();
    let source = args
        .source
        .clone()
        .or_else(|| {
            env_source
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| match input_path {
            Some(p) => p.to_string_lossy().into_owned(),
            None => "-".into(),
        });
    let reader = input::open(input_path)
        .map_err(|e| Failure::Io(format!("cannot open input {}: {e}", describe(input_path))))?;
    // Created before counting so that a bad output path fails fast; removed again on failure so
    // that no partial result is left behind.
    let file = match &args.output {
        Some(path) => Some(File::create(path).map_err(|e| {
            Failure::Io(format!(
                "cannot create output {}: {e}",
                describe(Some(path))
            ))
        })?),
        None => None,
    };
    let discard = || {
        if let Some(path) = &args.output {
            let _ = std::fs::remove_file(path);
        }
    };
    let counted = count_reader(reader, args.options, Config::default()).map_err(|e| {
        discard();
        Failure::Io(format!("error reading input {}: {e}", describe(input_path)))
    })?;
    let report = Report::new(source, args.options.mode, counted, args.top);
    let written = match file {
        Some(file) => write_report(
            &report,
            args.format,
            BufWriter::with_capacity(1 << 16, file),
        ),
        None => match write_report(
            &report,
            args.format,
            BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        ) {
            // The reader went away (e.g. `| head`): nothing left to do, and not an error of ours.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        },
    };
    written.map_err(|e| {
        discard();
        let target = match &args.output {
            Some(p) => describe(Some(p)),
            None => "standard output".into(),
        };
        Failure::Io(format!("error writing output {target}: {e}"))
    })
}

fn write_report(report: &Report, format: Format, mut out: impl Write) -> io::Result<()> {
    match format {
        Format::Json => report.write_json(&mut out)?,
        Format::Tsv => report.write_tsv(&mut out)?,
    }
    out.flush()
}

/// The whole program: parses `args`, runs, prints at most one error line, returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let result = match parse(args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            Ok(())
        }
        Ok(Command::Version) => {
            println!("wordcount {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::Run(args)) => run(&args, std::env::var_os("WORDCOUNT_SOURCE").as_deref()),
        Err(message) => Err(Failure::Usage(message)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!(
                "wordcount: {message}\n{}",
                USAGE.lines().take(2).collect::<Vec<_>>().join("\n")
            );
            ExitCode::from(2)
        }
        Err(Failure::Io(message)) => {
            eprintln!("wordcount: {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn defaults() {
        let Command::Run(a) = args(&[]).unwrap() else {
            panic!()
        };
        assert_eq!(a.options, Options::default());
        assert_eq!(
            (a.format, a.top, a.source, a.output, a.input),
            (Format::Json, 0, None, None, None)
        );
    }

    #[test]
    fn all_options() {
        let Command::Run(a) = args(&[
            "--mode",
            "whitespace",
            "--lowercase",
            "--format=tsv",
            "--top",
            "5",
            "--source",
            "x y",
            "-o",
            "out.json",
            "in.txt",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            a.options,
            Options {
                mode: Mode::Whitespace,
                lowercase: true
            }
        );
        assert_eq!((a.format, a.top), (Format::Tsv, 5));
        assert_eq!(a.source.as_deref(), Some("x y"));
        assert_eq!(a.output, Some(PathBuf::from("out.json")));
        assert_eq!(a.input, Some(PathBuf::from("in.txt")));
        let Command::Run(a) = args(&["-"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.input, None);
        let Command::Run(a) = args(&["--", "--mode"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.input, Some(PathBuf::from("--mode")));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["--mode"][..],
            &["--mode", "words"],
            &["--top", "-1"],
            &["--top", "x"],
            &["--bogus"],
            &["a", "b"],
            &["--format", "xml"],
            &["--lowercase=yes"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        assert_eq!(args(&["--help"]), Ok(Command::Help));
    }
}
