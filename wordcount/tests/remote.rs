//! `--url` and `--url-from-env` against a real Azurite: a whole blob and its parts merged give
//! the bytes of `wordcount FILE`; SAS and public URLs; a blob overwritten since its eTag was
//! taken, an archived blob and a gzip blob split into parts fail with one clear line that never
//! shows the SAS signature; and HTTPS is verified against the compiled-in roots, which do not
//! hold a self-signed certificate.

mod support;

use std::path::PathBuf;
use support::azurite::Azurite;
use support::{even_ranges, fails, ok, run, run_env};

/// The banner 300 times over (about 526 KB): several blocks of the smallest block size.
fn sample() -> Vec<u8> {
    let banner = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/the_star_spangled_banner.txt"),
    )
    .unwrap();
    let mut data = Vec::new();
    for i in 0..300 {
        data.extend_from_slice(&banner);
        data.extend_from_slice(format!("\nverse {i} é\n").as_bytes());
    }
    data
}

const SMALL_BLOCKS: &[&str] = &["--block-size", "65536", "--connections", "3"];

#[test]
fn blob_parts_merge_to_the_files_bytes() {
    let azurite = Azurite::start();
    azurite.create_container("private", false);
    let data = sample();
    let etag = azurite.put("private", "dir/big file.txt", &data);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), &data).unwrap();
    let env_source = ("WORDCOUNT_SOURCE", "dir/big file.txt");
    let single = ok(run_env(dir.path(), &["data"], &[env_source]));

    // The whole blob through a SAS URL, with its eTag.
    let sas = azurite.sas_url("private", "dir/big file.txt", true);
    let mut args = vec!["--url", &sas, "--etag", &etag];
    args.extend(SMALL_BLOCKS);
    let whole = ok(run_env(dir.path(), &args, &[env_source]));
    assert_eq!(
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&single)
    );

    // Parts as the tasks run them: the URL and eTag in the environment, a constant command line.
    let env = [
        ("BLOB2BATCH_INPUT_URL", sas.as_str()),
        ("BLOB2BATCH_ETAG", etag.as_str()),
    ];
    let n = 9;
    for (i, (start, end)) in even_ranges(data.len() as u64, n).into_iter().enumerate() {
        let range = format!("{start}..{end}");
        let mut args = vec!["--url-from-env", "--range", &range, "--partial"];
        args.extend(SMALL_BLOCKS);
        let partial = ok(run_env(dir.path(), &args, &env));
        let folder = dir.path().join(format!("parts/job/{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("stdout.txt"), partial).unwrap();
    }
    let merged = ok(run_env(
        dir.path(),
        &["--merge", "--expect-parts", &n.to_string(), "parts"],
        &[env_source],
    ));
    assert_eq!(
        String::from_utf8_lossy(&merged),
        String::from_utf8_lossy(&single)
    );

    // With the default tuning too, and one part that is the whole blob.
    let range = format!("0..{}", data.len());
    let partial = ok(run_env(
        dir.path(),
        &["--url-from-env", "--range", &range, "--partial"],
        &env,
    ));
    std::fs::write(dir.path().join("one.part"), partial).unwrap();
    let merged = ok(run_env(
        dir.path(),
        &["--merge", "--expect-parts", "1", "one.part"],
        &[env_source],
    ));
    assert_eq!(merged, single);
}

#[test]
fn public_blob_and_source_default() {
    let azurite = Azurite::start();
    azurite.create_container("public", true);
    azurite.put("public", "a.txt", b"Hello hello world\n");
    let dir = tempfile::tempdir().unwrap();
    let url = azurite.url("public", "a.txt");
    let doc: serde_json::Value =
        serde_json::from_slice(&ok(run(dir.path(), &["--url", &url]))).unwrap();
    assert_eq!(doc["source"], url.as_str());
    assert_eq!(
        doc["counts"],
        serde_json::json!([["hello", 2], ["world", 1]])
    );
    // An empty blob: no range read at all.
    azurite.put("public", "empty", b"");
    let empty = azurite.url("public", "empty");
    let doc: serde_json::Value =
        serde_json::from_slice(&ok(run(dir.path(), &["--url", &empty]))).unwrap();
    assert_eq!(
        (doc["bytes"].as_u64(), doc["words"].as_u64()),
        (Some(0), Some(0))
    );
    let partial = ok(run(
        dir.path(),
        &["--url", &empty, "--range", "0..0", "--partial"],
    ));
    std::fs::write(dir.path().join("p"), partial).unwrap();
    let merged: serde_json::Value = serde_json::from_slice(&ok(run(
        dir.path(),
        &["--merge", "--expect-parts", "1", "p"],
    )))
    .unwrap();
    assert_eq!(merged["source"], empty.as_str());
    assert_eq!(merged["lines"], 0);
}

#[test]
fn refusals_are_one_clear_line_without_the_signature() {
    let azurite = Azurite::start();
    azurite.create_container("ccc", false);
    let dir = tempfile::tempdir().unwrap();
    let old = azurite.put("ccc", "changing", b"first version\n");
    azurite.put("ccc", "changing", b"second version\n");
    let sas = azurite.sas_url("ccc", "changing", true);
    let sig = sas.split("sig=").nth(1).unwrap().to_owned();
    let check = |err: &str| {
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains(&sig) && !err.contains("sig="), "{err}");
    };

    // Overwritten since the eTag was taken: If-Match fails with 412.
    let err = fails(
        run_env(
            dir.path(),
            &["--url-from-env", "--range", "0..5", "--partial"],
            &[("BLOB2BATCH_INPUT_URL", &sas), ("BLOB2BATCH_ETAG", &old)],
        ),
        1,
    );
    assert!(
        err.contains("no longer the version") && err.contains(&old),
        "{err}"
    );
    check(&err);

    // A SAS signed with the wrong key.
    let bad = azurite.sas_url("ccc", "changing", false);
    let bad_sig = bad.split("sig=").nth(1).unwrap().to_owned();
    let err = fails(run(dir.path(), &["--url", &bad]), 1);
    assert!(
        err.contains("403") && err.contains("access denied"),
        "{err}"
    );
    assert!(!err.contains(&bad_sig), "{err}");
    check(&err);

    // No such blob.
    let missing = azurite.sas_url("ccc", "missing", true);
    let err = fails(run(dir.path(), &["--url", &missing]), 1);
    assert!(err.contains("404") && err.contains("/ccc/missing"), "{err}");
    check(&err);

    // An archived blob fails at once.
    azurite.put("ccc", "cold", b"frozen words\n");
    azurite.set_tier("ccc", "cold", "Archive");
    let err = fails(
        run(
            dir.path(),
            &["--url", &azurite.sas_url("ccc", "cold", true)],
        ),
        1,
    );
    assert!(err.contains("Archive"), "{err}");
    check(&err);

    // gzip is counted whole, and refused in parts.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"zipped words\nzipped\n").unwrap();
    azurite.put("ccc", "z.gz", &gz.finish().unwrap());
    let url = azurite.sas_url("ccc", "z.gz", true);
    let doc: serde_json::Value =
        serde_json::from_slice(&ok(run(dir.path(), &["--url", &url]))).unwrap();
    assert_eq!(
        doc["counts"],
        serde_json::json!([["zipped", 2], ["words", 1]])
    );
    let err = fails(
        run(
            dir.path(),
            &["--url", &url, "--range", "10..20", "--partial"],
        ),
        1,
    );
    assert!(err.contains("gzip"), "{err}");
    check(&err);

    // The environment must hold the URL.
    let err = fails(run(dir.path(), &["--url-from-env"]), 2);
    assert!(err.contains("BLOB2BATCH_INPUT_URL"), "{err}");
}

#[test]
fn https_checks_the_certificate_against_the_compiled_in_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes the test's self-signed certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let azurite = Azurite::start_with(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let url = format!(
        "https://127.0.0.1:{}/{}/c/blob?sv=2020-12-06&sig=SECRET",
        azurite.port,
        support::azurite::ACCOUNT
    );
    let err = fails(run(dir.path(), &["--url", &url]), 1);
    // Refused by the certificate check, at once (not retried as a broken connection).
    assert!(err.contains("TLS: invalid peer certificate"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
}
