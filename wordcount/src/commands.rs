//! Carrying out a command line: a count of a file, standard input or a blob, one part's partial
//! result, or a merge of partial results; and the exit code (0 success, 1 input, output or
//! network error, 2 usage error), with at most one line on stderr.

use crate::cli::{Args, Command, Format, Input, MergeArgs, USAGE, parse};
use crate::input;
use crate::merge;
use crate::part::{self, Whole};
use crate::pipeline::{Config, count_reader};
use crate::range::Range;
use crate::report::Report;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;

/// Why a run failed; the message is the single stderr line.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Usage(String),
    Io(String),
}

/// The environment variables a run reads.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `WORDCOUNT_SOURCE`: the default `source`.
    pub source: Option<OsString>,
    /// `BLOB2BATCH_INPUT_URL`, for `--url-from-env`.
    pub input_url: Option<OsString>,
    /// `BLOB2BATCH_ETAG`, for `--url-from-env`.
    pub etag: Option<OsString>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            source: var("WORDCOUNT_SOURCE"),
            input_url: var("BLOB2BATCH_INPUT_URL"),
            etag: var("BLOB2BATCH_ETAG"),
        }
    }
}

/// The whole program: parses `args`, runs, prints at most one error line, returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let env = Env::from_process();
    let result = match parse(args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            Ok(())
        }
        Ok(Command::Version) => {
            println!("wordcount {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::Run(args)) => run(&args, &env),
        Ok(Command::Merge(args)) => merge(&args, &env),
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

/// What is being read, for messages: a file or standard input, or a blob (whose errors name the
/// URL themselves, without its query string).
enum Origin {
    Local(String),
    Blob,
}

impl Origin {
    fn read_error(&self, e: io::Error) -> String {
        match self {
            Origin::Local(what) => format!("error reading input {what}: {e}"),
            Origin::Blob => format!("cannot read blob {e}"),
        }
    }
}

fn describe(path: Option<&Path>) -> String {
    match path {
        Some(p) => format!("'{}'", p.display()),
        None => "standard input".into(),
    }
}

/// `--source`, else `WORDCOUNT_SOURCE`, else `default`.
fn source_name(given: &Option<String>, env: &Env, default: impl FnOnce() -> String) -> String {
    given
        .clone()
        .or_else(|| {
            env.source
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(default)
}

/// The output file, created before any counting so that a bad path fails at once, and removed
/// again if the run fails, so that no plausible-looking partial result is left behind.
struct Output<'a> {
    path: Option<&'a Path>,
    file: Option<File>,
}

impl<'a> Output<'a> {
    fn create(path: Option<&'a Path>) -> Result<Self, Failure> {
        let file = match path {
            Some(path) => Some(File::create(path).map_err(|e| {
                Failure::Io(format!(
                    "cannot create output {}: {e}",
                    describe(Some(path))
                ))
            })?),
            None => None,
        };
        Ok(Output { path, file })
    }

    fn discard(&self) {
        if let Some(path) = self.path {
            let _ = std::fs::remove_file(path);
        }
    }

    /// `failure` after removing the output file.
    fn fail(&self, failure: Failure) -> Failure {
        self.discard();
        failure
    }

    fn write(self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Failure> {
        let written = match &self.file {
            Some(file) => {
                let mut out = BufWriter::with_capacity(1 << 16, file);
                f(&mut out).and_then(|()| out.flush())
            }
            None => {
                let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
                match f(&mut out).and_then(|()| out.flush()) {
                    // The reader went away (e.g. `| head`): nothing left to do, and not an error
                    // of ours.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    other => other,
                }
            }
        };
        written.map_err(|e| {
            let target = match self.path {
                Some(p) => describe(Some(p)),
                None => "standard output".into(),
            };
            self.fail(Failure::Io(format!("error writing output {target}: {e}")))
        })
    }
}

fn write_report(report: &Report, format: Format, mut out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => report.write_json(&mut out),
        Format::Tsv => report.write_tsv(&mut out),
    }
}

/// Counts as `args` says.
pub fn run(args: &Args, env: &Env) -> Result<(), Failure> {
    if let Some(range) = args.part {
        return run_part(args, range, env);
    }
    let (reader, source, origin): (Box<dyn Read>, String, Origin) = match &args.input {
        Input::Stdin | Input::File(_) => {
            let path = match &args.input {
                Input::File(p) => Some(p.as_path()),
                _ => None,
            };
            let source = source_name(&args.source, env, || match path {
                Some(p) => p.to_string_lossy().into_owned(),
                None => "-".into(),
            });
            let reader = input::open(path)
                .map_err(|e| Failure::Io(format!("cannot open input {}: {e}", describe(path))))?;
            (reader, source, Origin::Local(describe(path)))
        }
        Input::Url(..) | Input::UrlFromEnv => {
            let blob = remote::open(&args.input, env, args)?;
            let source = source_name(&args.source, env, || remote::shown(&blob));
            let reader =
                remote::whole(blob).map_err(|e| Failure::Io(format!("cannot read blob {e}")))?;
            (reader, source, Origin::Blob)
        }
    };
    let output = Output::create(args.output.as_deref())?;
    let counted = count_reader(reader, args.options, Config::default())
        .map_err(|e| output.fail(Failure::Io(origin.read_error(e))))?;
    let report = Report::new(source, args.options.mode, counted, args.top);
    output.write(|out| write_report(&report, args.format, out))
}

/// Counts the lines of one part (`--range ... --partial`) and writes its partial result.
fn run_part(args: &Args, range: Range, env: &Env) -> Result<(), Failure> {
    let (reader, whole, origin) = match &args.input {
        Input::File(path) => {
            let source = source_name(&args.source, env, || path.to_string_lossy().into_owned());
            let origin = Origin::Local(describe(Some(path)));
            let io_failure = |e: io::Error| Failure::Io(origin.read_error(e));
            let mut file = File::open(path).map_err(|e| {
                Failure::Io(format!("cannot open input {}: {e}", describe(Some(path))))
            })?;
            let size = file.metadata().map_err(io_failure)?.len();
            let mut head = Vec::with_capacity(2);
            (&mut file)
                .take(2)
                .read_to_end(&mut head)
                .map_err(io_failure)?;
            let whole = Whole {
                size,
                etag: String::new(),
                source,
                head,
            };
            part::check(range, &whole).map_err(|m| {
                Failure::Io(format!("cannot count input {}: {m}", describe(Some(path))))
            })?;
            file.seek(SeekFrom::Start(range.read_from()))
                .map_err(io_failure)?;
            (Box::new(file) as Box<dyn Read>, whole, origin)
        }
        Input::Url(..) | Input::UrlFromEnv => {
            let blob = remote::open(&args.input, env, args)?;
            let source = source_name(&args.source, env, || remote::shown(&blob));
            let (reader, whole) = remote::part(blob, range, source)?;
            (reader, whole, Origin::Blob)
        }
        Input::Stdin => {
            return Err(Failure::Usage(
                "--range needs INPUT (a file), --url or --url-from-env".into(),
            ));
        }
    };
    let output = Output::create(args.output.as_deref())?;
    let part = part::count(reader, range, &whole, args.options, Config::default())
        .map_err(|e| output.fail(Failure::Io(origin.read_error(e))))?;
    output.write(|out| part.write(out))
}

/// `--merge`: sums the partial results into the document.
pub fn merge(args: &MergeArgs, env: &Env) -> Result<(), Failure> {
    let files = merge::files(&args.paths).map_err(Failure::Io)?;
    let output = Output::create(args.output.as_deref())?;
    let merged = merge::merge(&files, args.options, args.expect_parts)
        .map_err(|m| output.fail(Failure::Io(format!("cannot merge: {m}"))))?;
    let source = source_name(&args.source, env, || merged.source.clone());
    let report = Report::new(source, args.options.mode, merged.counted, args.top);
    output.write(|out| write_report(&report, args.format, out))
}

/// Opening blobs, which needs the `http` feature.
#[cfg(feature = "http")]
mod remote {
    use super::{Failure, Whole};
    use crate::cli::{Args, Input};
    use crate::part;
    use crate::range::Range;
    use crate::remote::{Blob, BlobUrl, ParallelReader, redact};
    use std::io::{self, Read};
    use std::sync::Arc;

    pub fn open(input: &Input, env: &super::Env, args: &Args) -> Result<Arc<Blob>, Failure> {
        let (url, etag) = match input {
            Input::Url(url, etag) => (url.clone(), etag.clone()),
            _ => {
                let url = env.input_url.as_ref().ok_or_else(|| {
                    Failure::Usage("--url-from-env: BLOB2BATCH_INPUT_URL is not set".into())
                })?;
                let url = url.to_str().ok_or_else(|| {
                    Failure::Usage("BLOB2BATCH_INPUT_URL is not valid UTF-8".into())
                })?;
                let etag = env.etag.as_ref().map(|e| e.to_string_lossy().into_owned());
                (url.to_owned(), etag)
            }
        };
        let url = BlobUrl::parse(&url).map_err(|m| Failure::Usage(redact(&m)))?;
        Blob::open(url, etag.as_deref(), args.tuning)
            .map(Arc::new)
            .map_err(|e| Failure::Io(format!("cannot read blob {e}")))
    }

    pub fn shown(blob: &Blob) -> String {
        blob.shown().to_owned()
    }

    /// The whole blob, in order (gzip decompressed, as for files).
    pub fn whole(blob: Arc<Blob>) -> io::Result<Box<dyn Read>> {
        let size = blob.size();
        crate::input::sniff(Box::new(ParallelReader::new(blob, 0, size)))
    }

    /// The part's reader and what the part must know of the blob.
    pub fn part(
        blob: Arc<Blob>,
        range: Range,
        source: String,
    ) -> Result<(Box<dyn Read>, Whole), Failure> {
        let mut head = Vec::with_capacity(2);
        blob.fetch(Range::new(0, blob.size().min(2)), &mut head)
            .map_err(|e| Failure::Io(format!("cannot read blob {e}")))?;
        let whole = Whole {
            size: blob.size(),
            etag: blob.etag().to_owned(),
            source,
            head,
        };
        part::check(range, &whole)
            .map_err(|m| Failure::Io(format!("cannot count blob {}: {m}", blob.shown())))?;
        let reader = ParallelReader::new(blob, range.read_from(), range.end);
        Ok((Box::new(reader), whole))
    }
}

/// Without the `http` feature, a URL is a usage error.
#[cfg(not(feature = "http"))]
mod remote {
    use super::{Failure, Whole};
    use crate::cli::{Args, Input};
    use crate::range::Range;
    use std::io::{self, Read};

    pub enum Blob {}

    pub fn open(_: &Input, _: &super::Env, _: &Args) -> Result<Blob, Failure> {
        Err(Failure::Usage(
            "this wordcount was built without HTTP support (the 'http' feature)".into(),
        ))
    }

    pub fn shown(blob: &Blob) -> String {
        match *blob {}
    }

    pub fn whole(blob: Blob) -> io::Result<Box<dyn Read>> {
        match blob {}
    }

    pub fn part(blob: Blob, _: Range, _: String) -> Result<(Box<dyn Read>, Whole), Failure> {
        match blob {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_precedence() {
        let env = Env {
            source: Some("from env".into()),
            ..Env::default()
        };
        assert_eq!(
            source_name(&Some("given".into()), &env, || "d".into()),
            "given"
        );
        assert_eq!(source_name(&None, &env, || "d".into()), "from env");
        assert_eq!(source_name(&None, &Env::default(), || "d".into()), "d");
    }

    #[test]
    fn output_is_removed_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let output = Output::create(Some(&path)).unwrap();
        assert!(path.exists());
        let _ = output.fail(Failure::Io("x".into()));
        assert!(!path.exists());
    }
}
