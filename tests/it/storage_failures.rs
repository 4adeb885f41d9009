//! The operations commands while storage fails: a proxy in front of Azurite answers 503 to
//! every request for the output container. A read that fails after its retries is never shown
//! as a state; the commands say so and end within about `STORAGE_RETRY_BUDGET`.

use std::time::Duration;

use blob2batch::storage::BlobHttpHeaders;

use crate::support::dev::{CliRun, run_cli};
use crate::support::storage::fresh_container;
use crate::support::storage_proxy::{self, StorageProxy};

/// A test's own containers: `{name}-in` and `{name}-out`.
struct Case {
    proxy: StorageProxy,
    work: tempfile::TempDir,
    name: &'static str,
}

async fn setup(name: &'static str, blobs: usize) -> Case {
    let azurite = crate::support::azurite::azurite();
    let input = fresh_container(&format!("{name}-in")).await;
    fresh_container(&format!("{name}-out")).await;
    for i in 0..blobs {
        input
            .upload_bytes(
                &format!("f{i:02}.txt"),
                b"one two".to_vec(),
                &BlobHttpHeaders::default(),
            )
            .await
            .unwrap();
    }
    let upstream = azurite.url.trim_end_matches("/devstoreaccount1");
    let failing = format!("/devstoreaccount1/{name}-out");
    let proxy = storage_proxy::start(upstream, "devstoreaccount1", &failing).await;
    Case {
        proxy,
        work: tempfile::tempdir().unwrap(),
        name,
    }
}

impl Case {
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("STORAGE_ACCOUNT_URL".into(), self.proxy.url.clone()),
            (
                "STORAGE_ACCOUNT_KEY".into(),
                blob2batch::storage::azurite::WELL_KNOWN_KEY.into(),
            ),
            ("RUNNER".into(), "local".into()),
            (
                "LOCAL_WORK_DIR".into(),
                self.work.path().display().to_string(),
            ),
            ("INPUT_CONTAINER".into(), format!("{}-in", self.name)),
            ("OUTPUT_CONTAINER".into(), format!("{}-out", self.name)),
            ("STORAGE_RETRY_BUDGET".into(), "PT4S".into()),
        ]
    }
}

/// Runs the command; a command that never ends fails the test instead of hanging it.
async fn cli(env: &[(String, String)], args: &[&str]) -> CliRun {
    tokio::time::timeout(Duration::from_secs(120), run_cli(env, args))
        .await
        .unwrap_or_else(|_| panic!("`{}` did not end", args.join(" ")))
}

#[tokio::test]
async fn status_names_a_failed_read_and_shows_no_state_for_it() {
    let case = setup("sfa", 3).await;
    let env = case.env();

    let run = cli(&env, &["status", "--json", "--prefix", "f"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stdout, "", "no row could be read");
    assert!(
        run.stderr.contains("cannot read the output container") && run.stderr.contains("503"),
        "{}",
        run.stderr
    );

    let run = cli(&env, &["status", "--json", "f00.txt", "f01.txt", "f02.txt"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(!run.stdout.contains("unsubmitted"), "{}", run.stdout);
    assert_eq!(run.stdout, "");
    for name in ["f00.txt", "f01.txt", "f02.txt"] {
        assert!(
            run.stderr.contains(&format!(
                "blob2batch status: {name}: cannot read the output container"
            )),
            "{name} in {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn once_a_result_read_has_failed_the_reads_not_started_fail_with_it() {
    let case = setup("sfb", 40).await;
    let env = case.env();
    let names: Vec<String> = (0..40).map(|i| format!("f{i:02}.txt")).collect();
    let mut args = vec!["status", "--json"];
    args.extend(names.iter().map(String::as_str));

    let run = cli(&env, &args).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 40, "{}", run.stderr);
    // 16 reads at a time: after the first failures, the other blobs were never asked for.
    let asked = case.proxy.failed_paths().len();
    assert!((1..=20).contains(&asked), "{asked} result blobs were read");
}

#[tokio::test]
async fn reconcile_stops_when_it_cannot_list_results_and_submits_when_it_cannot_probe_them() {
    let case = setup("sfc", 2).await;
    let env = case.env();

    let run = cli(&env, &["reconcile", "--json"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read the output container"),
        "{}",
        run.stderr
    );

    // A windowed run reads results one by one; one it cannot read counts as not current, so the
    // version is submitted (a duplicate, should its task exist).
    let run = cli(&env, &["reconcile", "--json", "--since", "PT1H"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts()["submitted"], 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("treating it as missing"),
        "{}",
        run.stderr
    );
    // Its warnings go to a pipe here: plain text, no terminal colour codes.
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}
