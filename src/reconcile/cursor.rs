//! Where the `Reconcile` timer resumes: the listing marker of the first page it has not done.
//!
//! A timer run stops at its budget and the next one, perhaps on another instance, carries on from
//! there, so the marker must outlive the process. With Batch it is kept in the long-lived job's
//! metadata (the function's identity may already update its job; no other store or role is
//! needed); with the local runner, in a file of the work directory.

use std::path::PathBuf;

use crate::batch::{BatchClient, BatchError};
use crate::runner::BoxFuture;
use crate::sync::lock;

/// The name of the job metadata item that holds the marker.
pub(crate) const JOB_METADATA_NAME: &str = "blob2batch-reconcile-resume";

/// The marker could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("the long-lived Batch job")]
    Batch(#[from] BatchError),
    #[error("the cursor file")]
    File(#[from] std::io::Error),
}

/// Keeps the resume marker between runs.
pub(crate) trait CursorStore: Send + Sync + 'static {
    fn load(&self) -> BoxFuture<'_, Result<Option<String>, CursorError>>;
    /// `None` clears it: the next run starts from the first blob.
    fn save<'a>(&'a self, marker: Option<&'a str>) -> BoxFuture<'a, Result<(), CursorError>>;
}

/// In the metadata of the job tasks are added to.
pub(crate) struct JobMetadataCursor {
    pub client: BatchClient,
    pub job_id: String,
}

impl CursorStore for JobMetadataCursor {
    fn load(&self) -> BoxFuture<'_, Result<Option<String>, CursorError>> {
        Box::pin(async move {
            let metadata = match self.client.get_job_metadata(&self.job_id).await {
                Ok(metadata) => metadata,
                // No job yet: nothing was submitted, so nothing to resume.
                Err(e) if e.has_code("JobNotFound") => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            Ok(metadata
                .into_iter()
                .find(|(name, _)| name == JOB_METADATA_NAME)
                .map(|(_, value)| value)
                .filter(|value| !value.is_empty()))
        })
    }

    fn save<'a>(&'a self, marker: Option<&'a str>) -> BoxFuture<'a, Result<(), CursorError>> {
        Box::pin(async move {
            let items = match marker {
                Some(marker) => vec![(JOB_METADATA_NAME.to_string(), marker.to_string())],
                None => Vec::new(),
            };
            match self.client.set_job_metadata(&self.job_id, &items).await {
                Ok(()) => Ok(()),
                // No job: there is nothing to resume into; the next run starts from the top.
                Err(e) if e.has_code("JobNotFound") => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// In a file (the local runner's work directory).
pub(crate) struct FileCursor {
    pub path: PathBuf,
}

impl CursorStore for FileCursor {
    fn load(&self) -> BoxFuture<'_, Result<Option<String>, CursorError>> {
        Box::pin(async move {
            match tokio::fs::read_to_string(&self.path).await {
                Ok(text) => Ok(Some(text).filter(|t| !t.is_empty())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn save<'a>(&'a self, marker: Option<&'a str>) -> BoxFuture<'a, Result<(), CursorError>> {
        Box::pin(async move {
            match marker {
                Some(marker) => {
                    let temporary = self.path.with_extension("tmp");
                    tokio::fs::write(&temporary, marker).await?;
                    tokio::fs::rename(temporary, &self.path).await?;
                }
                None => match tokio::fs::remove_file(&self.path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                },
            }
            Ok(())
        })
    }
}

/// For job-per-blob mode (no long-lived job) and tests: forgotten when the process ends.
#[derive(Default)]
pub(crate) struct MemoryCursor(std::sync::Mutex<Option<String>>);

impl CursorStore for MemoryCursor {
    fn load(&self) -> BoxFuture<'_, Result<Option<String>, CursorError>> {
        let value = lock(&self.0).clone();
        Box::pin(async move { Ok(value) })
    }

    fn save<'a>(&'a self, marker: Option<&'a str>) -> BoxFuture<'a, Result<(), CursorError>> {
        *lock(&self.0) = marker.map(str::to_string);
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_cursor_survives_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = FileCursor {
            path: dir.path().join("reconcile.cursor"),
        };
        assert_eq!(cursor.load().await.unwrap(), None);
        cursor.save(Some("2!96!MDAwMDIy")).await.unwrap();
        let again = FileCursor {
            path: dir.path().join("reconcile.cursor"),
        };
        assert_eq!(
            again.load().await.unwrap().as_deref(),
            Some("2!96!MDAwMDIy")
        );
        again.save(None).await.unwrap();
        assert_eq!(cursor.load().await.unwrap(), None);
        again.save(None).await.unwrap();
    }
}
