//! `--merge`: sums partial results into the document one run over the whole input would give,
//! after proving that the parts cover that input exactly once.
//!
//! Two passes: the headers of all parts first (a few dozen bytes each), so that a missing,
//! duplicated or foreign part fails before any word is read; then the word tables, one part at a
//! time, into one table. Memory is that table (the distinct words of the union) plus one read
//! buffer, whatever the number of parts.

use crate::options::{Mode, Options};
use crate::partial::{self, Header};
use crate::pipeline::Counted;
use crate::range::Range;
use crate::tally::Tally;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

/// The result of a merge.
#[derive(Debug)]
pub struct Merged {
    pub counted: Counted,
    /// The source name recorded by the part that starts at offset 0.
    pub source: String,
}

/// The files named by `paths`: a file as given; a directory's regular files at any depth, each
/// directory's entries in byte order of their names (so the order is that of the sorted paths).
/// Entries that are neither files nor directories, symbolic links included, are left out.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for path in paths {
        let meta = fs::metadata(path)
            .map_err(|e| format!("cannot read partial '{}': {e}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut found)
                .map_err(|e| format!("cannot list directory '{}': {e}", path.display()))?;
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), found)?;
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    Ok(())
}

fn describe(options: Options) -> String {
    match (options.mode, options.lowercase) {
        (Mode::Unicode, _) => "--mode unicode".into(),
        (Mode::Whitespace, false) => "--mode whitespace".into(),
        (Mode::Whitespace, true) => "--mode whitespace --lowercase".into(),
    }
}

fn open(path: &Path) -> Result<partial::Reader<BufReader<File>>, String> {
    let file =
        File::open(path).map_err(|e| format!("cannot open partial '{}': {e}", path.display()))?;
    partial::Reader::new(BufReader::with_capacity(1 << 18, file))
        .map_err(|e| format!("cannot read partial '{}': {e}", path.display()))
}

/// Checks that the parts belong together and cover `0..size` exactly once, each byte owned by
/// one part; returns them in range order.
fn check(
    mut parts: Vec<(PathBuf, Header)>,
    options: Options,
    expect: Option<u64>,
) -> Result<Vec<(PathBuf, Header)>, String> {
    let options = partial::normalize(options);
    let Some((first_path, first)) = parts.first().cloned() else {
        return Err(match expect {
            Some(n) => format!("expected {n} parts, found none"),
            None => "no partial results found".into(),
        });
    };
    for (path, h) in &parts {
        belongs_with(path, h, &first_path, &first, options)?;
    }
    if let Some(n) = expect
        && n != parts.len() as u64
    {
        return Err(format!("expected {n} parts, found {}", parts.len()));
    }
    parts.sort_by_key(|(_, h)| (h.range.start, h.range.end));
    tile(&parts, first.size)?;
    Ok(parts)
}

/// Whether part `h` (at `path`) was counted like the merge counts, from the same version of
/// the same input as the first part.
fn belongs_with(
    path: &Path,
    h: &Header,
    first_path: &Path,
    first: &Header,
    options: Options,
) -> Result<(), String> {
    if h.options != options {
        return Err(format!(
            "'{}' was counted with {}, the merge counts with {}: give the merge the parts' \
             --mode and --lowercase",
            path.display(),
            describe(h.options),
            describe(options)
        ));
    }
    if (h.size, &h.etag) != (first.size, &first.etag) {
        return Err(format!(
            "'{}' is of an input of {} bytes with eTag '{}', '{}' of {} bytes with eTag '{}': \
             parts of different blobs or versions",
            first_path.display(),
            first.size,
            first.etag,
            path.display(),
            h.size,
            h.etag
        ));
    }
    Ok(())
}

/// Whether the parts, in range order, cover `0..size` with no gap or overlap, and their lines
/// follow one another to the end.
fn tile(parts: &[(PathBuf, Header)], size: u64) -> Result<(), String> {
    let mut covered = 0;
    let mut owned = 0;
    let mut previous: Option<&Path> = None;
    for (path, h) in parts {
        if h.range.start < covered {
            let other = previous.map_or("?".into(), |p| p.display().to_string());
            return Err(format!(
                "parts overlap: '{}' covers {} but '{other}' ends at {covered}",
                path.display(),
                h.range
            ));
        }
        if h.range.start > covered {
            return Err(format!(
                "no part covers bytes {}",
                Range::new(covered, h.range.start)
            ));
        }
        if !h.owned.is_empty() {
            if h.owned.start != owned {
                return Err(format!(
                    "'{}' owns bytes {} but the lines before it end at {owned}: the parts read \
                     different data",
                    path.display(),
                    h.owned
                ));
            }
            owned = h.owned.end;
        }
        covered = h.range.end;
        previous = Some(path);
    }
    if covered != size {
        return Err(format!(
            "no part covers bytes {}",
            Range::new(covered, size)
        ));
    }
    if owned != size {
        return Err(format!(
            "the parts' lines end at byte {owned}, the input has {size}: the parts read different data"
        ));
    }
    Ok(())
}

/// Merges the partials in `files`, which must all have been counted with `options` and, given
/// `expect`, be exactly that many.
pub fn merge(files: &[PathBuf], options: Options, expect: Option<u64>) -> Result<Merged, String> {
    let mut parts = Vec::with_capacity(files.len());
    for path in files {
        parts.push((path.clone(), open(path)?.header));
    }
    let parts = check(parts, options, expect)?;
    let mut tally = Tally::new();
    let mut lines = 0;
    for (path, header) in &parts {
        let failed = |e: io::Error| format!("cannot read partial '{}': {e}", path.display());
        let mut reader = open(path)?;
        if reader.header != *header {
            return Err(format!(
                "partial '{}' changed while it was read",
                path.display()
            ));
        }
        while let Some((word, n)) = reader.next_entry().map_err(failed)? {
            tally.add_count(word, n);
        }
        reader.finish().map_err(failed)?;
        lines += header.lines;
    }
    tally.bytes = parts[0].1.size;
    Ok(Merged {
        counted: Counted { tally, lines },
        source: parts[0].1.source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(range: (u64, u64), owned: (u64, u64)) -> Header {
        Header {
            options: Options::default(),
            range: Range::new(range.0, range.1),
            size: 10,
            etag: "e".into(),
            source: "s".into(),
            owned: Range::new(owned.0, owned.1),
            lines: 0,
            words: 0,
            distinct: 0,
        }
    }

    /// (range, owned) of each part.
    type Spans = [((u64, u64), (u64, u64))];

    fn parts(list: &Spans) -> Vec<(PathBuf, Header)> {
        list.iter()
            .enumerate()
            .map(|(i, &(r, o))| (PathBuf::from(format!("p{i}")), header(r, o)))
            .collect()
    }

    #[test]
    fn tiling_is_proved() {
        let ok = parts(&[((5, 10), (6, 10)), ((0, 5), (0, 6))]);
        let sorted = check(ok.clone(), Options::default(), Some(2)).unwrap();
        assert_eq!(sorted[0].1.range, Range::new(0, 5));
        let err =
            |list: &Spans, expect| check(parts(list), Options::default(), expect).unwrap_err();
        assert!(err(&[((0, 5), (0, 6))], None).contains("no part covers bytes 5..10"));
        assert!(err(&[((0, 4), (0, 4)), ((5, 10), (5, 10))], None).contains("4..5"));
        assert!(err(&[((0, 6), (0, 6)), ((5, 10), (6, 10))], None).contains("overlap"));
        assert!(err(&[((0, 5), (0, 6)), ((0, 5), (0, 6))], None).contains("overlap"));
        assert!(err(&[((0, 5), (0, 6)), ((5, 10), (7, 10))], None).contains("different data"));
        assert!(err(&[((0, 5), (0, 6)), ((5, 10), (6, 10))], Some(3)).contains("expected 3"));
        assert!(err(&[], Some(1)).contains("found none"));
        let mut mixed = parts(&[((0, 5), (0, 6)), ((5, 10), (6, 10))]);
        mixed[1].1.etag = "other".into();
        assert!(
            check(mixed, Options::default(), None)
                .unwrap_err()
                .contains("versions")
        );
        let whitespace = Options {
            mode: Mode::Whitespace,
            lowercase: false,
        };
        assert!(
            check(ok, whitespace, None)
                .unwrap_err()
                .contains("--mode unicode")
        );
    }
}
