//! `blob2batch put FILE... [--prefix P]`: uploads files into the input container.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::{BlobHttpHeaders, StorageAccount};

#[derive(Clone, Debug)]
pub struct PutOptions {
    pub account: StorageAccount,
    pub container: String,
    pub files: Vec<PathBuf>,
    /// Prepended to each file name to form the blob name (e.g. `docs/`).
    pub prefix: String,
    /// Creates the container when it is missing.
    pub create_container: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("`{0}` is not a file")]
    NotAFile(PathBuf),
    #[error("`{path}`: {message}")]
    Upload { path: PathBuf, message: String },
    #[error("container `{container}`: {message}")]
    Container { container: String, message: String },
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
    let container =
        options
            .account
            .container(&options.container)
            .map_err(|e| PutError::Container {
                container: options.container.clone(),
                message: e.to_string(),
            })?;
    if options.create_container {
        container
            .create_if_missing()
            .await
            .map_err(|e| PutError::Container {
                container: options.container.clone(),
                message: e.to_string(),
            })?;
    }
    let mut names = Vec::new();
    for file in &options.files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| PutError::NotAFile(file.clone()))?;
        let blob = format!("{}{name}", options.prefix);
        let started = Instant::now();
        let last = Mutex::new(Instant::now() - Duration::from_secs(1));
        let progress = |sent: u64, total: u64| {
            if total < PROGRESS_FROM {
                return;
            }
            let mut last = last.lock().expect("progress lock");
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
        let headers = BlobHttpHeaders::content_type(guess_content_type(&name));
        let uploaded = container
            .upload_file(&blob, file, &headers, Some(&progress))
            .await
            .map_err(|e| PutError::Upload {
                path: file.clone(),
                message: e.to_string(),
            })?;
        println!(
            "uploaded {} -> {}/{blob} ({}, {} ms)",
            file.display(),
            options.container,
            human_bytes(uploaded.size),
            started.elapsed().as_millis()
        );
        names.push(blob);
    }
    Ok(names)
}

fn guess_content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit_once('.').map(|(_, ext)| ext) {
        Some("txt" | "md" | "csv" | "tsv" | "log") => "text/plain",
        Some("json") => "application/json",
        Some("gz") => "application/gzip",
        Some("html" | "htm") => "text/html",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
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
        assert_eq!(guess_content_type("x"), "application/octet-stream");
    }
}
