//! Splitting one input: the parts' partial results, merged, give the very bytes of one run over
//! the whole input (a property test over generated inputs, through the library's real code paths
//! and partial files on disk), and the command line's `--range`, `--partial` and `--merge` on files,
//! with every refusal the merge makes.

mod support;

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use support::{even_ranges, fails, ok, run, run_env};
use wordcount::part::{self, Whole};
use wordcount::range::Range;
use wordcount::{Config, Mode, Options, Report, count_reader, merge};

/// Line breaks in every form, a byte-order mark, words of every class, and non-ASCII and
/// invalid UTF-8 to fall on part boundaries.
const FRAGMENTS: &[&[u8]] = &[
    b"a",
    b"Bc",
    b"don't",
    b"3.14",
    b"x_y",
    b" ",
    b"  ",
    b"\t",
    b"\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"\x0b",
    b"\x0c",
    b"-",
    b".",
    b"'",
    b",",
    b"\xef\xbb\xbf",
    "é".as_bytes(),
    "É".as_bytes(),
    "Σ".as_bytes(),
    "日本".as_bytes(),
    "\u{301}".as_bytes(),
    "👍🏽".as_bytes(),
    "🇫🇷".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{200d}".as_bytes(),
    b"\xff",
    b"\xe2\x82",
];

fn text() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, bom, long_line)| {
            let mut data = Vec::new();
            if bom {
                data.extend_from_slice(b"\xef\xbb\xbfBOM here\n");
            }
            data.extend(parts.concat());
            if long_line {
                // A line far longer than any part.
                data.extend(b"long ".repeat(40));
            }
            data
        })
}

fn options() -> impl Strategy<Value = Options> {
    prop_oneof![
        Just(Options::default()),
        Just(Options {
            mode: Mode::Whitespace,
            lowercase: false
        }),
        Just(Options {
            mode: Mode::Whitespace,
            lowercase: true
        }),
    ]
}

/// Cut offsets: every byte (1-byte parts), or a few anywhere (empty parts included).
fn cuts(len: usize) -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        Just(
            (0..=len as u64)
                .chain((len == 0).then_some(0))
                .collect::<Vec<_>>()
        ),
        prop::collection::vec(0..=len as u64, 0..6).prop_map(move |mut v| {
            v.push(0);
            v.push(len as u64);
            v.sort();
            v
        }),
    ]
}

fn json(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    report.write_json(&mut out).unwrap();
    out
}

/// Counts each range into a partial file under `dir` (nested, as Batch lays them out), and
/// merges them.
fn split_and_merge(
    data: &[u8],
    bounds: &[u64],
    options: Options,
    config: Config,
    dir: &Path,
    top: usize,
) -> Vec<u8> {
    let whole = Whole {
        size: data.len() as u64,
        etag: "0x8DE62A1B3C4D5E7".into(),
        source: "the source".into(),
        head: data[..data.len().min(2)].to_vec(),
    };
    let mut files = Vec::new();
    for (i, pair) in bounds.windows(2).enumerate() {
        let range = Range::new(pair[0], pair[1]);
        part::check(range, &whole).unwrap();
        let from = range.read_from() as usize;
        let counted = part::count(&data[from..], range, &whole, options, config).unwrap();
        let path: PathBuf = dir.join(format!("job/{}/{i}.part", i % 3));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        counted
            .write(std::fs::File::create(&path).unwrap())
            .unwrap();
        files.push(path);
    }
    let parts = bounds.len() as u64 - 1;
    let found = merge::files(&[dir.to_path_buf()]).unwrap();
    assert_eq!(found.len(), files.len());
    let merged = merge::merge(&found, options, Some(parts)).unwrap();
    json(&Report::new(
        merged.source,
        options.mode,
        merged.counted,
        top,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn split_then_merge_gives_the_single_runs_bytes(
        (data, bounds) in text().prop_flat_map(|d| { let n = d.len(); (Just(d), cuts(n)) }),
        options in options(),
        chunk_size in 1usize..48,
        threads in 1usize..3,
        top in 0usize..3,
    ) {
        prop_assume!(!data.starts_with(&part::GZIP_MAGIC));
        let config = Config { threads, chunk_size };
        let single = count_reader(&data[..], options, config).unwrap();
        let single = json(&Report::new("the source".into(), options.mode, single, top));
        let dir = tempfile::tempdir().unwrap();
        let merged = split_and_merge(&data, &bounds, options, config, dir.path(), top);
        prop_assert_eq!(String::from_utf8_lossy(&merged), String::from_utf8_lossy(&single));
    }
}

#[test]
fn edge_inputs_split_exactly() {
    let config = Config {
        threads: 2,
        chunk_size: 5,
    };
    for data in [
        &b""[..],
        b"\n",
        b"no newline at all",
        b"\xef\xbb\xbfword\n\xef\xbb\xbfword",
        "a\r\nb\r\n\u{feff}c\n日本語\n".as_bytes(),
    ] {
        for options in [
            Options::default(),
            Options {
                mode: Mode::Whitespace,
                lowercase: true,
            },
        ] {
            let single = count_reader(data, options, config).unwrap();
            let single = json(&Report::new("the source".into(), options.mode, single, 0));
            for n in [1, 2, 8] {
                let mut bounds: Vec<u64> = even_ranges(data.len() as u64, n)
                    .iter()
                    .map(|r| r.0)
                    .collect();
                bounds.push(data.len() as u64);
                let dir = tempfile::tempdir().unwrap();
                let merged = split_and_merge(data, &bounds, options, config, dir.path(), 0);
                assert_eq!(merged, single, "{data:?} in {n} parts");
            }
        }
    }
}

/// The known-answer file split into `n` parts with the binary, partials in nested folders.
fn split_with_binary(dir: &Path, input: &str, n: u64, extra: &[&str]) -> PathBuf {
    let size = std::fs::metadata(dir.join(input)).unwrap().len();
    let parts = dir.join("parts");
    for (i, (start, end)) in even_ranges(size, n).into_iter().enumerate() {
        let folder = parts.join(format!("job-1/{}", i % 4));
        std::fs::create_dir_all(&folder).unwrap();
        let range = format!("{start}..{end}");
        let mut args = vec![input, "--range", &range, "--partial"];
        args.extend(extra);
        let partial = ok(run(dir, &args));
        std::fs::write(folder.join(format!("{i}.part")), partial).unwrap();
    }
    parts
}

fn banner() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/the_star_spangled_banner.txt")
}

#[test]
fn binary_split_and_merge_matches_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data");
    std::fs::copy(banner(), &input).unwrap();
    let env = [("WORDCOUNT_SOURCE", "songs/the banner.txt")];
    for (mode, n) in [
        (&[][..], 1),
        (&[][..], 7),
        (&["--mode", "whitespace"][..], 40),
    ] {
        let single = ok(run_env(dir.path(), &[&["data"][..], mode].concat(), &env));
        let parts = split_with_binary(dir.path(), "data", n, mode);
        let expect = n.to_string();
        let mut merge = vec!["--merge", "--expect-parts", &expect, "parts"];
        merge.extend(mode);
        let merged = ok(run_env(dir.path(), &merge, &env));
        assert_eq!(
            String::from_utf8_lossy(&merged),
            String::from_utf8_lossy(&single),
            "{mode:?} in {n} parts"
        );
        // Without --source or WORDCOUNT_SOURCE, the source is what the first part recorded.
        let merged: serde_json::Value =
            serde_json::from_slice(&ok(run(dir.path(), &merge))).unwrap();
        assert_eq!(merged["source"], "data");
        std::fs::remove_dir_all(&parts).unwrap();
    }
}

#[test]
fn merge_refuses_parts_that_do_not_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data");
    std::fs::copy(banner(), &input).unwrap();
    let parts = split_with_binary(dir.path(), "data", 5, &[]);
    let part = |i: usize| parts.join(format!("job-1/{}/{i}.part", i % 4));
    let merge = |expect: &str, out: Option<&str>| {
        let mut args = vec!["--merge", "--expect-parts", expect, "parts"];
        if let Some(o) = out {
            args.extend(["-o", o]);
        }
        run(dir.path(), &args)
    };
    assert!(fails(merge("6", None), 1).contains("expected 6 parts, found 5"));
    assert!(fails(merge("4", None), 1).contains("expected 4 parts, found 5"));

    // A missing part: a gap, and no output file left behind.
    let saved = std::fs::read(part(2)).unwrap();
    std::fs::remove_file(part(2)).unwrap();
    let err = fails(merge("4", Some("out.json")), 1);
    assert!(err.contains("no part covers bytes"), "{err}");
    assert!(!dir.path().join("out.json").exists());
    // The same part twice: an overlap.
    std::fs::write(part(2), &saved).unwrap();
    std::fs::write(parts.join("copy.part"), &saved).unwrap();
    assert!(fails(merge("6", None), 1).contains("overlap"));
    std::fs::remove_file(parts.join("copy.part")).unwrap();

    // Damage: a flipped byte, a cut, a newer format, a file that is no partial.
    let mut flipped = saved.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    for (bad, message) in [
        (flipped, "damaged partial"),
        (saved[..saved.len() - 3].to_vec(), "damaged partial"),
        (
            [&b"WCPART\x02"[..], &saved[7..]].concat(),
            "version 2 is not supported",
        ),
        (b"{\"source\":\"x\"}".to_vec(), "not a wordcount partial"),
    ] {
        std::fs::write(part(2), &bad).unwrap();
        let err = fails(merge("5", None), 1);
        assert!(err.contains(message) && err.contains("2.part"), "{err}");
    }
    std::fs::write(part(2), &saved).unwrap();
    ok(merge("5", None));

    // Parts of another input (its size differs), and parts counted in another mode.
    let other = dir.path().join("other");
    std::fs::write(&other, "a different\ninput\n").unwrap();
    let foreign = ok(run(dir.path(), &["other", "--range", "0..5", "--partial"]));
    std::fs::write(part(2), &foreign).unwrap();
    assert!(fails(merge("5", None), 1).contains("different blobs or versions"));
    let whitespace = ok(run(
        dir.path(),
        &[
            "data",
            "--range",
            "0..5",
            "--partial",
            "--mode",
            "whitespace",
        ],
    ));
    std::fs::write(part(0), &whitespace).unwrap();
    let err = fails(merge("5", None), 1);
    assert!(err.contains("--mode whitespace"), "{err}");
}

#[test]
fn part_refusals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small"), "0123456789").unwrap();
    let err = fails(
        run(dir.path(), &["small", "--range", "5..11", "--partial"]),
        1,
    );
    assert!(
        err.contains("past the end of the input (10 bytes)"),
        "{err}"
    );
    // gzip cannot be split: every part checks the input's first two bytes.
    std::fs::write(dir.path().join("gz"), b"\x1f\x8b\x08\0 and more\nlines\n").unwrap();
    for range in ["0..4", "10..20"] {
        let err = fails(
            run(
                dir.path(),
                &["gz", "--range", range, "--partial", "-o", "p"],
            ),
            1,
        );
        assert!(err.contains("gzip"), "{err}");
        assert!(!dir.path().join("p").exists());
    }
    let err = fails(run(dir.path(), &["--range", "0..1", "--partial"]), 2);
    assert!(err.contains("--range needs INPUT"), "{err}");
    let err = fails(run(dir.path(), &["--merge", "missing"]), 1);
    assert!(err.contains("'missing'"), "{err}");
}
