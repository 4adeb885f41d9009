//! Result blobs: what a blob version's task leaves in the output container, and whether it is
//! current. The one place that knows their names (the `long-names/` fallback included), how to
//! find them (one listing, or a read per blob), and what makes one current.
//!
//! A result records the version it was made from in its `source_etag` metadata: it is current
//! when that is the blob's eTag now. A task that failed leaves its `stdout.txt` and `stderr.txt`
//! in a logs folder beside it. A read of the output container that fails after its retries is
//! an error here, never an answer: whether to show it or to act as if the result were missing is
//! the caller's decision.

use std::collections::HashMap;
use std::sync::Arc;

use crate::fail_fast::map_fail_fast;
use crate::storage::blob::ListOptions;
use crate::storage::{BlobError, ContainerClient};
use crate::workloads::Output;

/// Where results and logs go when the natural name would exceed the 1,024-character blob name
/// limit.
pub(crate) const LONG_NAMES_PREFIX: &str = "long-names/";
/// Metadata on a result blob: the eTag of the input version it was counted from.
pub(crate) const SOURCE_ETAG_METADATA: &str = "source_etag";
/// Metadata on a result blob: the id of the task (or job) that produced it.
pub(crate) const TASK_ID_METADATA: &str = "task_id";

const MAX_BLOB_NAME_CHARS: usize = 1024;

/// In a `files` result's folder: the task's standard output, the marker of a complete result.
pub(crate) const FILES_MARKER: &str = "stdout.txt";

/// Result reads in flight at once.
const READS_IN_FLIGHT: usize = 16;

/// Where one blob version's outputs go in the output container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultNames {
    /// The result blob.
    pub result: String,
    /// The folder a failed task leaves its `stdout.txt` and `stderr.txt` in (no trailing `/`).
    pub logs: String,
}

impl ResultNames {
    /// The names of a workload of one's own (`unique_id` is its task's id):
    /// - standard output: `{blob}{suffix}` (or `long-names/{id}{suffix}`);
    /// - files: `{blob}.{workload}/` holds them, and its `stdout.txt` (the task's standard
    ///   output) is the result that marks them complete (or `long-names/{id}.{workload}/...`);
    /// - logs: `{blob}.{workload}.logs/{id}` (or `long-names/{id}.{workload}.logs`).
    pub(crate) fn of_workload(
        blob: &str,
        unique_id: &str,
        workload: &str,
        output: &Output,
    ) -> ResultNames {
        let result = match output {
            Output::Stdout { suffix, .. } => {
                let natural = format!("{blob}{suffix}");
                if natural.chars().count() <= MAX_BLOB_NAME_CHARS {
                    natural
                } else {
                    format!("{LONG_NAMES_PREFIX}{unique_id}{suffix}")
                }
            }
            Output::Files { .. } => {
                let natural = format!("{blob}.{workload}/{FILES_MARKER}");
                if natural.chars().count() <= MAX_BLOB_NAME_CHARS {
                    natural
                } else {
                    format!("{LONG_NAMES_PREFIX}{unique_id}.{workload}/{FILES_MARKER}")
                }
            }
        };
        let logs = format!("{blob}.{workload}.logs/{unique_id}");
        let logs = if logs.chars().count() + "/stdout.txt".len() <= MAX_BLOB_NAME_CHARS {
            logs
        } else {
            format!("{LONG_NAMES_PREFIX}{unique_id}.{workload}.logs")
        };
        ResultNames { result, logs }
    }

    /// The folder a `files` result's files go to: the result's own folder.
    pub fn folder(&self) -> String {
        self.result
            .strip_suffix(FILES_MARKER)
            .and_then(|folder| folder.strip_suffix('/'))
            .unwrap_or(&self.result)
            .to_string()
    }

    /// The word count's names: `{blob}.wordcount.json` and `{blob}.wordcount.logs/{id}`, or
    /// `long-names/{id}.wordcount.json` and `long-names/{id}.wordcount.logs` when a natural name
    /// would be too long. `unique_id` is the task's id (the job's in job-per-blob mode).
    pub(crate) fn word_count(blob: &str, unique_id: &str) -> ResultNames {
        let result = format!("{blob}.wordcount.json");
        let result = if result.chars().count() <= MAX_BLOB_NAME_CHARS {
            result
        } else {
            format!("{LONG_NAMES_PREFIX}{unique_id}.wordcount.json")
        };
        let logs = format!("{blob}.wordcount.logs/{unique_id}");
        let logs = if logs.chars().count() + "/stdout.txt".len() <= MAX_BLOB_NAME_CHARS {
            logs
        } else {
            format!("{LONG_NAMES_PREFIX}{unique_id}.wordcount.logs")
        };
        ResultNames { result, logs }
    }
}

/// What the output container holds for one blob version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// The result blob, when there is one (of this version or an older one).
    pub output: Option<String>,
    /// The result is of this very version.
    pub current: bool,
    /// The logs folder (with a trailing `/`), when a failed task left logs there.
    pub logs: Option<String>,
}

/// Reading the output container failed after the retries. Shared: once one read has failed,
/// the reads not yet started fail with it.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot read the output container")]
pub struct ResultsError(#[source] Arc<BlobError>);

/// The result blobs of the output container.
pub(crate) struct Results {
    output: ContainerClient,
}

/// What a listing of the output container found: each blob and the version it records.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    recorded: HashMap<String, Option<String>>,
    /// Every blob name, sorted, to find logs folders.
    names: Vec<String>,
}

impl Listing {
    /// What the listing holds for the version `etag` of a blob whose outputs are `names`.
    pub fn find(&self, names: &ResultNames, etag: &str) -> Found {
        let recorded = self.recorded.get(&names.result);
        let logs = format!("{}/", names.logs);
        let at = self
            .names
            .partition_point(|name| name.as_str() < logs.as_str());
        let has_logs = self
            .names
            .get(at)
            .is_some_and(|name| name.starts_with(&logs));
        Found {
            output: recorded.map(|_| names.result.clone()),
            current: recorded.is_some_and(|r| is_current(r.as_deref(), etag)),
            logs: has_logs.then_some(logs),
        }
    }
}

impl Results {
    pub fn new(output: ContainerClient) -> Results {
        Results { output }
    }

    /// Every blob under `prefix`, and under `long-names/` where results of long names go.
    pub async fn list(&self, prefix: Option<&str>) -> Result<Listing, ResultsError> {
        let mut prefixes = vec![prefix];
        if prefix.is_some_and(|p| !p.is_empty() && !LONG_NAMES_PREFIX.starts_with(p)) {
            prefixes.push(Some(LONG_NAMES_PREFIX));
        }
        let mut listing = Listing::default();
        for prefix in prefixes {
            let mut marker = None;
            loop {
                let page = self
                    .output
                    .list_page(&ListOptions {
                        prefix,
                        marker,
                        metadata: true,
                    })
                    .await
                    .map_err(|e| ResultsError(Arc::new(e)))?;
                for entry in page.entries {
                    let recorded = entry.metadata.get(SOURCE_ETAG_METADATA).cloned();
                    listing.recorded.insert(entry.name.clone(), recorded);
                    listing.names.push(entry.name);
                }
                marker = page.next_marker;
                if marker.is_none() {
                    break;
                }
            }
        }
        listing.names.sort();
        Ok(listing)
    }

    /// For each (names, eTag), what the output container holds, read blob by blob, a few at a
    /// time; with `logs`, whether its logs folder holds anything too. Once a read has failed,
    /// the ones not yet started fail with it.
    pub async fn probe(
        &self,
        versions: &[(&ResultNames, &str)],
        logs: bool,
    ) -> Vec<Result<Found, ResultsError>> {
        map_fail_fast(versions, READS_IN_FLIGHT, |(names, etag)| async move {
            self.probe_one(names, etag, logs)
                .await
                .map_err(|e| ResultsError(Arc::new(e)))
        })
        .await
    }

    async fn probe_one(
        &self,
        names: &ResultNames,
        etag: &str,
        logs: bool,
    ) -> Result<Found, BlobError> {
        let result = self.output.properties(&names.result).await?;
        let logs_folder = format!("{}/", names.logs);
        let has_logs = logs
            && !self
                .output
                .list_page(&ListOptions {
                    prefix: Some(&logs_folder),
                    ..ListOptions::default()
                })
                .await?
                .entries
                .is_empty();
        Ok(Found {
            current: result.as_ref().is_some_and(|entry| {
                is_current(
                    entry.metadata.get(SOURCE_ETAG_METADATA).map(String::as_str),
                    etag,
                )
            }),
            output: result.map(|_| names.result.clone()),
            logs: has_logs.then_some(logs_folder),
        })
    }
}

/// A result is current when the version it records is the blob's version now.
fn is_current(recorded: Option<&str>, etag: &str) -> bool {
    recorded.is_some_and(|recorded| recorded.trim_matches('"') == etag.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_names_fall_back_to_the_long_names_folder() {
        let names = ResultNames::word_count("docs/a b.txt", "wc-1");
        assert_eq!(names.result, "docs/a b.txt.wordcount.json");
        assert_eq!(names.logs, "docs/a b.txt.wordcount.logs/wc-1");
        let long = ResultNames::word_count(&"n".repeat(1024), "wc-1");
        assert_eq!(long.result, "long-names/wc-1.wordcount.json");
        assert_eq!(long.logs, "long-names/wc-1.wordcount.logs");
        let short = ResultNames::word_count(&"n".repeat(1000), "wc-1");
        assert!(short.result.ends_with("n.wordcount.json"));
    }

    #[test]
    fn the_names_of_a_workload_of_ones_own() {
        let stdout = Output::Stdout {
            suffix: ".sha256.txt".into(),
            content_type: "text/plain".into(),
        };
        let names = ResultNames::of_workload("images/a.png", "checksum-1", "checksum", &stdout);
        assert_eq!(names.result, "images/a.png.sha256.txt");
        assert_eq!(names.logs, "images/a.png.checksum.logs/checksum-1");
        let files = Output::Files {
            pattern: "out/**".into(),
        };
        let names = ResultNames::of_workload("images/a.png", "thumbs-1", "thumbs", &files);
        assert_eq!(names.result, "images/a.png.thumbs/stdout.txt");
        assert_eq!(names.folder(), "images/a.png.thumbs");
        let long = "n".repeat(1020);
        let names = ResultNames::of_workload(&long, "thumbs-1", "thumbs", &files);
        assert_eq!(names.result, "long-names/thumbs-1.thumbs/stdout.txt");
        assert_eq!(names.folder(), "long-names/thumbs-1.thumbs");
        assert_eq!(names.logs, "long-names/thumbs-1.thumbs.logs");
        let names = ResultNames::of_workload(&long, "checksum-1", "checksum", &stdout);
        assert_eq!(names.result, "long-names/checksum-1.sha256.txt");
    }

    #[test]
    fn a_listing_finds_results_their_version_and_logs() {
        let names = ResultNames::word_count("a.txt", "wc-1");
        let mut listing = Listing::default();
        listing
            .recorded
            .insert("a.txt.wordcount.json".into(), Some("0x2".into()));
        listing.names = vec![
            "a.txt.wordcount.json".into(),
            "a.txt.wordcount.logs/wc-1/stderr.txt".into(),
            "b.txt.wordcount.json".into(),
        ];
        assert_eq!(
            listing.find(&names, "0x2"),
            Found {
                output: Some("a.txt.wordcount.json".into()),
                current: true,
                logs: Some("a.txt.wordcount.logs/wc-1/".into()),
            }
        );
        assert!(!listing.find(&names, "0x3").current, "an older version");
        let other = ResultNames::word_count("c.txt", "wc-3");
        assert_eq!(listing.find(&other, "0x1"), Found::default());
    }

    #[test]
    fn only_the_recorded_version_is_current() {
        assert!(is_current(Some("0x1"), "0x1"));
        assert!(is_current(Some("\"0x1\""), "0x1"));
        assert!(!is_current(Some("0x1"), "0x2"));
        assert!(!is_current(None, "0x1"));
    }
}
