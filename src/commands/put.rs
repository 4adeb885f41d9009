//! `blob2batch put FILE... [--prefix P]`: uploads files into the input container.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::{BlobError, BlobHttpHeaders, ContainerClient, StorageAccount};
use crate::sync::lock;

#[derive(Clone, Debug)]
pub struct PutOptions {
    pub account: StorageAccount,
    pub container: String,
    pub files: Vec<PathBuf>,
    /// Prepended to each file name to form the blob name (e.g. `docs/`).
    pub prefix: String,
    /// Creates the container when it is missing.
    pub create_container: bool,
    /// The content type of every file; `None`: guessed from each file's name.
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("`{0}` is not a file")]
    NotAFile(PathBuf),
    #[error("`{path}`")]
    Upload {
        path: PathBuf,
        #[source]
        source: BlobError,
    },
    #[error("container `{container}`")]
    Container {
        container: String,
        #[source]
        source: BlobError,
    },
}

impl From<PutError> for super::CommandError {
    /// A file that is not there is the caller's mistake (exit code 2), not a storage failure.
    fn from(error: PutError) -> super::CommandError {
        match error {
            error @ PutError::NotAFile(_) => super::CommandError::usage(error),
            error => super::CommandError::runtime(error),
        }
    }
}

/// Files at least this big get a progress line on stderr.
const PROGRESS_FROM: u64 = 16 * 1024 * 1024;

/// Uploads every file; prints one line per file on stdout and progress for large files on stderr.
/// Returns the blob names.
pub async fn run(options: PutOptions) -> Result<Vec<String>, PutError> {
    for file in &options.files {
        if !file.is_file() {
            return Err(PutError::NotAFile(file.clone()));
        }
    }
    let container = options
        .account
        .container(&options.container)
        .map_err(|source| PutError::Container {
            container: options.container.clone(),
            source,
        })?;
    if options.create_container {
        container
            .create_if_missing()
            .await
            .map_err(|source| PutError::Container {
                container: options.container.clone(),
                source,
            })?;
    }
    // Small files go up several at a time; a large one shows its progress.
    let container = &container;
    let options = &options;
    let results: Vec<Result<String, PutError>> = futures_util::stream::iter(
        options
            .files
            .iter()
            .map(|file| async move { upload_one(container, options, file).await }),
    )
    .buffered(PARALLEL_UPLOADS)
    .collect()
    .await;
    results.into_iter().collect()
}

/// Files uploaded at once.
const PARALLEL_UPLOADS: usize = 8;

async fn upload_one(
    container: &ContainerClient,
    options: &PutOptions,
    file: &Path,
) -> Result<String, PutError> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| PutError::NotAFile(file.to_path_buf()))?;
    let blob = format!("{}{name}", options.prefix);
    let started = Instant::now();
    let last = Mutex::new(Instant::now() - Duration::from_secs(1));
    let progress = |sent: u64, total: u64| {
        if total < PROGRESS_FROM {
            return;
        }
        let mut last = lock(&last);
        if sent < total && last.elapsed() < Duration::from_millis(250) {
            return;
        }
        *last = Instant::now();
        let pct = (sent * 100).checked_div(total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  {blob}: {} / {} ({pct}%)",
            human_bytes(sent),
            human_bytes(total)
        );
        if sent >= total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    };
    let content_type = options
        .content_type
        .as_deref()
        .unwrap_or_else(|| guess_content_type(&name));
    let headers = BlobHttpHeaders::content_type(content_type);
    let uploaded = container
        .upload_file(&blob, file, &headers, Some(&progress))
        .await
        .map_err(|source| PutError::Upload {
            path: file.to_path_buf(),
            source,
        })?;
    println!(
        "uploaded {} -> {}/{blob} ({}, {} ms)",
        file.display(),
        options.container,
        human_bytes(uploaded.size),
        started.elapsed().as_millis()
    );
    Ok(blob)
}

/// The content type a file's name suggests (workload routes may match on it), or
/// `application/octet-stream`.
fn guess_content_type(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// `1.5 MiB`-style sizes.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_types() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(433 * 1024 * 1024), "433.0 MiB");
        assert_eq!(guess_content_type("a.TXT"), "text/plain");
        assert_eq!(guess_content_type("photo.png"), "image/png");
        assert_eq!(guess_content_type("notes.md"), "text/markdown");
        assert_eq!(guess_content_type("data.json"), "application/json");
        assert_eq!(guess_content_type("x"), "application/octet-stream");
    }
}
