//! The command line: what the arguments ask for. Carrying it out, and the exit codes, is
//! [`crate::commands`].

use crate::options::{Mode, Options};
use crate::range::Range;
use crate::tuning::Tuning;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: wordcount [OPTIONS] [INPUT | --url URL [--etag ETAG] | --url-from-env] [--range START..END --partial]
       wordcount --merge [--expect-parts N] [OPTIONS] PATH...

Counts word frequencies in INPUT (a file, or standard input when absent or '-'), or in a blob read
over HTTPS. gzip input is decompressed on the fly (not with --range).

  --mode unicode      words are UAX #29 word segments holding a letter or digit, lower-cased (default)
  --mode whitespace   words are runs of bytes between ASCII whitespace, kept as they are
  --lowercase         in whitespace mode, fold ASCII upper case to lower case
  --format json|tsv   JSON document (default) or one 'word<TAB>count' line per word
  --top N             keep only the N most frequent words (0, the default, keeps all)
  --source NAME       the \"source\" field of the JSON document (default: $WORDCOUNT_SOURCE if set,
                      else INPUT, the URL without its query string, or '-')
  -o FILE             write to FILE instead of standard output

Reading a blob:
  --url URL           read the blob at URL (https; plain http only to loopback and private addresses)
  --etag ETAG         fail unless the blob still has this eTag (default: the eTag it has when first read)
  --url-from-env      read the URL from $BLOB2BATCH_INPUT_URL and the eTag from $BLOB2BATCH_ETAG
  --connections N     range reads in flight (default 4)
  --block-size BYTES  bytes per range read (default 8388608)
  --timeout SECONDS   longest wait for a connection, a response or more bytes (default 60)

Splitting one input across tasks:
  --range START..END  count the lines that start at byte offsets START <= offset < END
  --partial           write the part's partial result (binary) for --merge, instead of the document
  --merge PATH...     sum partial results (files, or directories read recursively) into the document
  --expect-parts N    with --merge: fail unless exactly N parts covering the whole input are given
";

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Tsv,
}

/// Where the words come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// `--url`, with `--etag` if given.
    Url(String, Option<String>),
    /// `--url-from-env`.
    UrlFromEnv,
}

/// A parsed counting command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub options: Options,
    pub format: Format,
    pub top: usize,
    pub source: Option<String>,
    pub output: Option<PathBuf>,
    pub input: Input,
    /// `--range` (which always comes with `--partial`).
    pub part: Option<Range>,
    pub tuning: Tuning,
}

/// A parsed `--merge` command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeArgs {
    pub options: Options,
    pub format: Format,
    pub top: usize,
    pub source: Option<String>,
    pub output: Option<PathBuf>,
    pub paths: Vec<PathBuf>,
    pub expect_parts: Option<u64>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Merge(MergeArgs),
    Help,
    Version,
}

fn number<T: std::str::FromStr>(value: OsString, name: &str, what: &str) -> Result<T, String> {
    value
        .to_str()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{name} needs {what}"))
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    match Given::read(args)? {
        Read::Help => Ok(Command::Help),
        Read::Version => Ok(Command::Version),
        Read::Given(given) if given.merge => given.merge_args(),
        Read::Given(given) => given.run_args(),
    }
}

/// What the command line gave, before its combinations are checked.
#[derive(Default)]
struct Given {
    options: Options,
    format: Option<Format>,
    top: Option<usize>,
    source: Option<String>,
    output: Option<PathBuf>,
    url: Option<String>,
    etag: Option<String>,
    url_from_env: bool,
    range: Option<Range>,
    partial: bool,
    merge: bool,
    expect_parts: Option<u64>,
    tuning: Tuning,
    /// The first tuning option given, to name it when it does not apply.
    tuned: Option<String>,
    operands: Vec<OsString>,
}

/// What reading the command line ends with.
enum Read {
    Help,
    Version,
    Given(Box<Given>),
}

impl Given {
    fn read(args: impl IntoIterator<Item = OsString>) -> Result<Read, String> {
        let mut given = Box::<Given>::default();
        let mut args = args.into_iter();
        let mut only_operands = false;
        while let Some(arg) = args.next() {
            if only_operands || arg == "-" || !arg.as_encoded_bytes().starts_with(b"-") {
                given.operands.push(arg);
                continue;
            }
            let text = arg
                .to_str()
                .ok_or_else(|| format!("unknown option {}", arg.to_string_lossy()))?;
            let (name, inline) = match text.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(OsString::from(v))),
                _ => (text, None),
            };
            let has_inline = inline.is_some();
            let mut value = |what: &str| -> Result<OsString, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs {what}"))
            };
            match name {
                "--" => only_operands = true,
                "-h" | "--help" => return Ok(Read::Help),
                "-V" | "--version" => return Ok(Read::Version),
                _ => given.option(name, has_inline, &mut value)?,
            }
        }
        Ok(Read::Given(given))
    }

    /// One option other than `--`, `--help` and `--version`; `value` gives its value.
    fn option(
        &mut self,
        name: &str,
        has_inline: bool,
        value: &mut dyn FnMut(&str) -> Result<OsString, String>,
    ) -> Result<(), String> {
        let flag = |set: &mut bool| -> Result<(), String> {
            if has_inline {
                return Err(format!("{name} takes no value"));
            }
            *set = true;
            Ok(())
        };
        match name {
            "--lowercase" => flag(&mut self.options.lowercase)?,
            "--partial" => flag(&mut self.partial)?,
            "--merge" => flag(&mut self.merge)?,
            "--url-from-env" => flag(&mut self.url_from_env)?,
            "--mode" => {
                self.options.mode = match value("a value")?.to_str() {
                    Some("unicode") => Mode::Unicode,
                    Some("whitespace") => Mode::Whitespace,
                    _ => return Err("--mode must be 'unicode' or 'whitespace'".into()),
                }
            }
            "--format" => {
                self.format = Some(match value("a value")?.to_str() {
                    Some("json") => Format::Json,
                    Some("tsv") => Format::Tsv,
                    _ => return Err("--format must be 'json' or 'tsv'".into()),
                })
            }
            "--top" => self.top = Some(number(value("a number")?, name, "a non-negative integer")?),
            "--source" => self.source = Some(value("a name")?.to_string_lossy().into_owned()),
            "-o" | "--output" => self.output = Some(PathBuf::from(value("a file name")?)),
            "--url" => self.url = Some(value("a URL")?.to_string_lossy().into_owned()),
            "--etag" => self.etag = Some(value("an eTag")?.to_string_lossy().into_owned()),
            "--range" => {
                let v = value("START..END")?;
                self.range = Some(v.to_str().unwrap_or("").parse::<Range>()?);
            }
            "--expect-parts" => {
                let n: u64 = number(value("a number")?, name, "a positive integer")?;
                if n == 0 {
                    return Err("--expect-parts needs a positive integer".into());
                }
                self.expect_parts = Some(n);
            }
            "--connections" | "--block-size" | "--timeout" => self.tuning_option(name, value)?,
            _ => return Err(format!("unknown option {name}")),
        }
        Ok(())
    }

    /// How a blob is read: `--connections`, `--block-size`, `--timeout`.
    fn tuning_option(
        &mut self,
        name: &str,
        value: &mut dyn FnMut(&str) -> Result<OsString, String>,
    ) -> Result<(), String> {
        match name {
            "--connections" => {
                let n: usize = number(value("a number")?, name, "a positive integer")?;
                if !(1..=256).contains(&n) {
                    return Err("--connections must be from 1 to 256".into());
                }
                self.tuning.connections = n;
            }
            "--block-size" => {
                let n: usize = number(value("a number")?, name, "a number of bytes")?;
                if !(1 << 10..=1 << 30).contains(&n) {
                    return Err("--block-size must be from 1024 to 1073741824 bytes".into());
                }
                self.tuning.block_size = n;
            }
            _ => {
                let n: u64 = number(value("a number")?, name, "a positive number of seconds")?;
                if n == 0 {
                    return Err("--timeout needs a positive number of seconds".into());
                }
                self.tuning.timeout = Duration::from_secs(n);
            }
        }
        self.tuned.get_or_insert_with(|| name.to_owned());
        Ok(())
    }

    fn merge_args(self) -> Result<Command, String> {
        let refused = [
            (self.url.is_some(), "--url"),
            (self.url_from_env, "--url-from-env"),
            (self.etag.is_some(), "--etag"),
            (self.range.is_some(), "--range"),
            (self.partial, "--partial"),
            (self.tuned.is_some(), self.tuned.as_deref().unwrap_or("")),
        ];
        if let Some((_, name)) = refused.iter().find(|(given, _)| *given) {
            return Err(format!("{name} cannot be used with --merge"));
        }
        if self.operands.is_empty() {
            return Err("--merge needs at least one PATH".into());
        }
        Ok(Command::Merge(MergeArgs {
            options: self.options,
            format: self.format.unwrap_or(Format::Json),
            top: self.top.unwrap_or(0),
            source: self.source,
            output: self.output,
            paths: self.operands.into_iter().map(PathBuf::from).collect(),
            expect_parts: self.expect_parts,
        }))
    }

    fn run_args(mut self) -> Result<Command, String> {
        let reads_url = self.url.is_some() || self.url_from_env;
        if self.expect_parts.is_some() {
            return Err("--expect-parts goes with --merge".into());
        }
        if self.range.is_some() != self.partial {
            return Err("--range and --partial go together".into());
        }
        if self.partial && (self.format.is_some() || self.top.is_some()) {
            return Err("--format and --top apply to the merged document, not to --partial".into());
        }
        if self.url.is_some() && self.url_from_env {
            return Err("--url and --url-from-env exclude each other".into());
        }
        if self.etag.is_some() && self.url.is_none() {
            return Err("--etag goes with --url".into());
        }
        if let Some(name) = &self.tuned
            && !reads_url
        {
            return Err(format!("{name} goes with --url or --url-from-env"));
        }
        if self.operands.len() > 1 || (reads_url && !self.operands.is_empty()) {
            return Err("at most one INPUT, and none with --url or --url-from-env".into());
        }
        let input = match (self.url, self.url_from_env, self.operands.pop()) {
            (Some(url), _, _) => Input::Url(url, self.etag),
            (None, true, _) => Input::UrlFromEnv,
            (None, false, Some(path)) if path != "-" => Input::File(PathBuf::from(path)),
            (None, false, _) => Input::Stdin,
        };
        if self.partial && input == Input::Stdin {
            return Err("--range needs INPUT (a file), --url or --url-from-env".into());
        }
        Ok(Command::Run(Args {
            options: self.options,
            format: self.format.unwrap_or(Format::Json),
            top: self.top.unwrap_or(0),
            source: self.source,
            output: self.output,
            input,
            part: self.range,
            tuning: self.tuning,
        }))
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
            (a.format, a.top, a.source, a.output, a.input, a.part),
            (Format::Json, 0, None, None, Input::Stdin, None)
        );
        assert_eq!(a.tuning, Tuning::default());
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
        assert_eq!(a.input, Input::File(PathBuf::from("in.txt")));
        let Command::Run(a) = args(&["-"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.input, Input::Stdin);
        let Command::Run(a) = args(&["--", "--mode"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.input, Input::File(PathBuf::from("--mode")));
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
            &["--range", "0..5"],
            &["--partial", "f"],
            &["--range", "5..0", "--partial", "f"],
            &["--range", "0..5", "--partial"],
            &["--range", "0..5", "--partial", "--top", "3", "f"],
            &["--range", "0..5", "--partial", "--format", "json", "f"],
            &["--url", "u", "f"],
            &["--url", "u", "--url-from-env"],
            &["--url-from-env", "--etag", "e"],
            &["--etag", "e", "f"],
            &["--connections", "4", "f"],
            &["--url", "u", "--connections", "0"],
            &["--url", "u", "--block-size", "10"],
            &["--url", "u", "--timeout", "0"],
            &["--merge"],
            &["--merge", "--url", "u", "p"],
            &["--merge", "--partial", "p"],
            &["--merge", "--expect-parts", "0", "p"],
            &["--merge", "--expect-parts", "x", "p"],
            &["--expect-parts", "3", "p"],
            &["--partial=1", "--range", "0..1", "f"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        assert_eq!(args(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn the_task_command_lines() {
        let Command::Run(a) =
            args(&["--url-from-env", "--range", "0..1048576", "--partial"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (a.input, a.part, a.options),
            (
                Input::UrlFromEnv,
                Some(Range::new(0, 1 << 20)),
                Options::default()
            )
        );
        let Command::Merge(m) = args(&["--merge", "--expect-parts", "8", "parts"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.expect_parts, m.paths, m.options, m.format, m.top),
            (
                Some(8),
                vec![PathBuf::from("parts")],
                Options::default(),
                Format::Json,
                0
            )
        );
        let Command::Run(a) = args(&[
            "--url=https://a/b?sig=x",
            "--etag",
            "0x8D",
            "--connections",
            "2",
            "--block-size",
            "65536",
            "--timeout",
            "5",
            "--mode",
            "whitespace",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            a.input,
            Input::Url("https://a/b?sig=x".into(), Some("0x8D".into()))
        );
        assert_eq!(
            a.tuning,
            Tuning {
                connections: 2,
                block_size: 65536,
                timeout: Duration::from_secs(5)
            }
        );
        let Command::Run(a) = args(&["data", "--range", "3..9", "--partial"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.input, Input::File(PathBuf::from("data")));
    }
}
