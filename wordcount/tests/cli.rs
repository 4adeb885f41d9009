//! Runs the real `wordcount` binary in a temporary directory: exit codes, error lines, `-o`,
//! standard input, gzip, `WORDCOUNT_SOURCE`, TSV, `--top`, a closed pipe, and a 100 MB line.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wordcount");

fn banner() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/the_star_spangled_banner.txt")
}

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("WORDCOUNT_SOURCE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn json(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count_of(doc: &Value, word: &str) -> u64 {
    doc["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == word)
        .map_or(0, |c| c[1].as_u64().unwrap())
}

#[test]
fn banner_from_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = banner();
    let doc = json(&run(
        dir.path(),
        &["--mode", "whitespace", path.to_str().unwrap()],
        b"",
    ));
    assert_eq!(doc["source"], path.to_str().unwrap());
    assert_eq!(doc["mode"], "whitespace");
    assert_eq!(
        (doc["bytes"].as_u64(), doc["words"].as_u64()),
        (Some(1754), Some(314))
    );
    assert_eq!(doc["unique_words"], 186);
    assert_eq!(
        (
            count_of(&doc, "the"),
            count_of(&doc, "O'er"),
            count_of(&doc, "o'er")
        ),
        (43, 5, 1)
    );
    assert_eq!(doc["counts"][0], serde_json::json!(["the", 43]));

    let data = std::fs::read(&path).unwrap();
    let from_stdin = json(&run(dir.path(), &["--mode", "whitespace", "-"], &data));
    assert_eq!(from_stdin["source"], "-");
    assert_eq!(from_stdin["counts"], doc["counts"]);
}

#[test]
fn output_file_and_source_from_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), "b a b\n").unwrap();
    let out = Command::new(BIN)
        .args(["-o", "wordcount.json", "data"])
        .current_dir(dir.path())
        .env("WORDCOUNT_SOURCE", "folder/my blob.txt")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("wordcount.json")).unwrap()).unwrap();
    assert_eq!(doc["source"], "folder/my blob.txt");
    assert_eq!(doc["counts"], serde_json::json!([["b", 2], ["a", 1]]));
    assert_eq!(
        (doc["lines"].as_u64(), doc["unique_words"].as_u64()),
        (Some(1), Some(2))
    );

    // --source wins over the environment.
    let out = Command::new(BIN)
        .args(["--source", "explicit", "data"])
        .current_dir(dir.path())
        .env("WORDCOUNT_SOURCE", "env")
        .output()
        .unwrap();
    assert_eq!(json(&out)["source"], "explicit");
}

#[test]
fn gzip_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(&std::fs::read(banner()).unwrap()).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(dir.path().join("banner.txt.gz"), &gz).unwrap();
    let doc = json(&run(
        dir.path(),
        &["--mode", "whitespace", "banner.txt.gz"],
        b"",
    ));
    assert_eq!(
        (doc["bytes"].as_u64(), doc["words"].as_u64()),
        (Some(1754), Some(314))
    );
    let doc = json(&run(dir.path(), &["--mode=whitespace"], &gz));
    assert_eq!(doc["unique_words"], 186);
    // A damaged stream is an input error, and leaves no output file behind.
    let out = run(dir.path(), &["-o", "out.json"], &gz[..gz.len() / 2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));
    assert!(!dir.path().join("out.json").exists());
}

#[test]
fn tsv_and_top() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["--format", "tsv", "--top", "2"],
        b"b c a b c b\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"b\t3\nc\t2\n");
    let doc = json(&run(dir.path(), &["--top", "1"], b"b c a b c b\n"));
    assert_eq!(doc["counts"], serde_json::json!([["b", 3]]));
    assert_eq!(
        (doc["words"].as_u64(), doc["unique_words"].as_u64()),
        (Some(6), Some(3))
    );
}

#[test]
fn invalid_utf8_gives_valid_json() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json(&run(
        dir.path(),
        &["--mode", "whitespace"],
        b"a\xffb a\xffb \xc3\n",
    ));
    assert_eq!(
        doc["counts"],
        serde_json::json!([["a\u{fffd}b", 2], ["\u{fffd}", 1]])
    );
    let out = run(
        dir.path(),
        &["--mode", "whitespace", "--format", "tsv"],
        b"a\xffb\n",
    );
    assert_eq!(out.stdout, b"a\xffb\t1\n");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--mode", "bogus"][..],
        &["--nope"],
        &["a", "b"],
        &["--top"],
        &["--top", "-3"],
    ] {
        let out = run(dir.path(), args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("wordcount: "), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = run(dir.path(), &["--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: wordcount"));
}

#[test]
fn io_errors_exit_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["missing.txt"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("'missing.txt'"), "{err}");

    let out = run(dir.path(), &["-o", "no/such/dir/out.json"], b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'no/such/dir/out.json'"));

    // A directory as input: opening works on Linux, reading fails.
    let out = run(dir.path(), &["."], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'.'"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("w{i} ").into_bytes())
        .collect();
    std::fs::write(dir.path().join("many"), &input).unwrap();
    let mut child = Command::new(BIN)
        .args(["--format", "tsv", "many"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_hundred_megabyte_line() {
    // One line of 100 MB (no line feed at all), written to a file and counted by the binary.
    let dir = tempfile::tempdir().unwrap();
    let unit = b"Lorem ipsum, dolor sit amet; don't 3.14 ";
    let repeats = 100_000_000 / unit.len();
    let path = dir.path().join("line.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..repeats {
            f.write_all(unit).unwrap();
        }
        f.write_all(b"end").unwrap();
    }
    let bytes = (repeats * unit.len() + 3) as u64;
    let doc = json(&run(dir.path(), &["line.txt"], b""));
    assert_eq!(
        (doc["bytes"].as_u64(), doc["lines"].as_u64()),
        (Some(bytes), Some(1))
    );
    assert_eq!(doc["words"].as_u64(), Some(7 * repeats as u64 + 1));
    assert_eq!(count_of(&doc, "don't"), repeats as u64);
    assert_eq!(count_of(&doc, "3.14"), repeats as u64);
    let doc = json(&run(dir.path(), &["--mode", "whitespace", "line.txt"], b""));
    assert_eq!(doc["words"].as_u64(), Some(7 * repeats as u64 + 1));
    assert_eq!(count_of(&doc, "ipsum,"), repeats as u64);
}
