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
    let mut options = Options::default();
    let (mut format, mut top) = (None, None);
    let (mut source, mut output) = (None, None);
    let (mut url, mut etag, mut url_from_env) = (None, None, false);
    let (mut range, mut partial) = (None, false);
    let (mut merge, mut expect_parts) = (false, None);
    let mut tuning = Tuning::default();
    let mut tuned = None;
    let mut operands: Vec<OsString> = Vec::new();
    let mut args = args.into_iter();
    let mut only_operands = false;
    while let Some(arg) = args.next() {
        if only_operands || arg == "-" || !arg.as_encoded_bytes().starts_with(b"-") {
            operands.push(arg);
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
        let flag = |set: &mut bool| -> Result<(), String> {
            match inline {
                None => {
                    *set = true;
                    Ok(())
                }
                Some(_) => Err(format!("{name} takes no value")),
            }
        };
        match name {
            "--" => only_operands = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--lowercase" => flag(&mut options.lowercase)?,
            "--partial" => flag(&mut partial)?,
            "--merge" => flag(&mut merge)?,
            "--url-from-env" => flag(&mut url_from_env)?,
            "--mode" => {
                options.mode = match value("a value")?.to_str() {
                    Some("unicode") => Mode::Unicode,
                    Some("whitespace") => Mode::Whitespace,
                    _ => return Err("--mode must be 'unicode' or 'whitespace'".into()),
                }
            }
            "--format" => {
                format = Some(match value("a value")?.to_str() {
                    Some("json") => Format::Json,
                    Some("tsv") => Format::Tsv,
                    _ => return Err("--format must be 'json' or 'tsv'".into()),
                })
            }
            "--top" => top = Some(number(value("a number")?, name, "a non-negative integer")?),
            "--source" => source = Some(value("a name")?.to_string_lossy().into_owned()),
            "-o" | "--output" => output = Some(PathBuf::from(value("a file name")?)),
            "--url" => url = Some(value("a URL")?.to_string_lossy().into_owned()),
            "--etag" => etag = Some(value("an eTag")?.to_string_lossy().into_owned()),
            "--range" => {
                let v = value("START..END")?;
                range = Some(v.to_str().unwrap_or("").parse::<Range>()?);
            }
            "--expect-parts" => {
                let n: u64 = number(value("a number")?, name, "a positive integer")?;
                if n == 0 {
                    return Err("--expect-parts needs a positive integer".into());
                }
                expect_parts = Some(n);
            }
            "--connections" => {
                let n: usize = number(value("a number")?, name, "a positive integer")?;
                if !(1..=256).contains(&n) {
                    return Err("--connections must be from 1 to 256".into());
                }
                tuning.connections = n;
                tuned.get_or_insert_with(|| name.to_owned());
            }
            "--block-size" => {
                let n: usize = number(value("a number")?, name, "a number of bytes")?;
                if !(1 << 10..=1 << 30).contains(&n) {
                    return Err("--block-size must be from 1024 to 1073741824 bytes".into());
                }
                tuning.block_size = n;
                tuned.get_or_insert_with(|| name.to_owned());
            }
            "--timeout" => {
                let n: u64 = number(value("a number")?, name, "a positive number of seconds")?;
                if n == 0 {
                    return Err("--timeout needs a positive number of seconds".into());
                }
                tuning.timeout = Duration::from_secs(n);
                tuned.get_or_insert_with(|| name.to_owned());
            }
            _ => return Err(format!("unknown option {text}")),
        }
    }
    let reads_url = url.is_some() || url_from_env;
    if merge {
        let refused = [
            (url.is_some(), "--url"),
            (url_from_env, "--url-from-env"),
            (etag.is_some(), "--etag"),
            (range.is_some(), "--range"),
            (partial, "--partial"),
            (tuned.is_some(), tuned.as_deref().unwrap_or("")),
        ];
        if let Some((_, name)) = refused.iter().find(|(given, _)| *given) {
            return Err(format!("{name} cannot be used with --merge"));
        }
        if operands.is_empty() {
            return Err("--merge needs at least one PATH".into());
        }
        return Ok(Command::Merge(MergeArgs {
            options,
            format: format.unwrap_or(Format::Json),
            top: top.unwrap_or(0),
            source,
            output,
            paths: operands.into_iter().map(PathBuf::from).collect(),
            expect_parts,
        }));
    }
    if expect_parts.is_some() {
        return Err("--expect-parts goes with --merge".into());
    }
    if range.is_some() != partial {
        return Err("--range and --partial go together".into());
    }
    if partial && (format.is_some() || top.is_some()) {
        return Err("--format and --top apply to the merged document, not to --partial".into());
    }
    if url.is_some() && url_from_env {
        return Err("--url and --url-from-env exclude each other".into());
    }
    if etag.is_some() && url.is_none() {
        return Err("--etag goes with --url".into());
    }
    if let Some(name) = tuned
        && !reads_url
    {
        return Err(format!("{name} goes with --url or --url-from-env"));
    }
    if operands.len() > 1 || (reads_url && !operands.is_empty()) {
        return Err("at most one INPUT, and none with --url or --url-from-env".into());
    }
    let input = match (url, url_from_env, operands.pop()) {
        (Some(url), _, _) => Input::Url(url, etag),
        (None, true, _) => Input::UrlFromEnv,
        (None, false, Some(path)) if path != "-" => Input::File(PathBuf::from(path)),
        (None, false, _) => Input::Stdin,
    };
    if partial && input == Input::Stdin {
        return Err("--range needs INPUT (a file), --url or --url-from-env".into());
    }
    Ok(Command::Run(Args {
        options,
        format: format.unwrap_or(Format::Json),
        top: top.unwrap_or(0),
        source,
        output,
        input,
        part: range,
        tuning,
    }))
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
