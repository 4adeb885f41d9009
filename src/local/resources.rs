//! A task's resource files, fetched into its working directory the way a Batch node fetches
//! them: one blob from its URL (`httpUrl`, at `filePath`), or every blob of a container whose
//! name starts with `blobPrefix` (`storageContainerUrl`, each at `{filePath}/{blob name}`, the
//! blob's folders kept). Only SAS URLs work here: this machine has no managed identity.
//!
//! No file lands outside the working directory, whatever a `filePath` or a blob name says.

use std::path::{Path, PathBuf};

use super::failure::{FailureCode, TaskFailure};
use super::outputs::has_sas;
use super::paths::resource_file_path;
use crate::storage::ContainerClient;
use crate::storage::blob::http_download_to_file;
use crate::storage::sas::redact_sas;
use crate::task_spec::{ResourceFile, TaskSpec};

fn fail(message: String) -> TaskFailure {
    TaskFailure::new(FailureCode::ResourceFileError, message)
}

/// Every resource file of the task, into its working directory `wd`; the paths written (the
/// runner removes them once the command is done: they can be large).
pub(crate) async fn fetch_resources(
    http: &reqwest::Client,
    task: &TaskSpec,
    wd: &Path,
) -> Result<Vec<PathBuf>, TaskFailure> {
    let mut fetched = Vec::new();
    for file in &task.resource_files {
        match (&file.http_url, &file.storage_container_url) {
            (Some(url), None) => fetched.push(fetch_blob(http, wd, file, url).await?),
            (None, Some(url)) => fetched.extend(fetch_container(http, wd, file, url).await?),
            _ => {
                return Err(fail(format!(
                    "`{}`: a resource file needs exactly one of httpUrl and storageContainerUrl \
                     on this machine",
                    file.file_path
                )));
            }
        }
    }
    Ok(fetched)
}

/// The failure of a resource file reached with the pool's identity, which this machine has not.
fn identity_failure(file: &ResourceFile) -> Option<TaskFailure> {
    let url = file
        .http_url
        .as_deref()
        .or(file.storage_container_url.as_deref())?;
    (file.identity_reference.is_some() && !has_sas(url)).then(|| {
        fail(format!(
            "`{}` uses identityReference, which cannot work on this machine (no managed \
             identity); set STORAGE_ACCOUNT_KEY so that tasks get SAS URLs",
            file.file_path
        ))
    })
}

async fn fetch_blob(
    http: &reqwest::Client,
    wd: &Path,
    file: &ResourceFile,
    url: &str,
) -> Result<PathBuf, TaskFailure> {
    let path = resource_file_path(wd, &file.file_path).map_err(fail)?;
    if let Some(failure) = identity_failure(file) {
        return Err(failure);
    }
    download(http, url, &path, &file.file_path).await?;
    if let Some(mode) = &file.file_mode {
        set_mode(&path, mode);
    }
    Ok(path)
}

/// Every blob of the container under the prefix, listed through the container's SAS (all
/// pages), each to `{filePath}/{blob name}`. A container with no such blob fetches nothing, as
/// on Batch.
async fn fetch_container(
    http: &reqwest::Client,
    wd: &Path,
    file: &ResourceFile,
    url: &str,
) -> Result<Vec<PathBuf>, TaskFailure> {
    let directory = container_directory(wd, &file.file_path)?;
    if let Some(failure) = identity_failure(file) {
        return Err(failure);
    }
    let container = ContainerClient::from_sas_url(url).map_err(|e| fail(e.to_string()))?;
    let blobs = container
        .list(file.blob_prefix.as_deref().filter(|p| !p.is_empty()))
        .await
        .map_err(|e| {
            fail(format!(
                "listing {} for `{}` failed: {e}",
                redact_sas(url),
                file.file_path
            ))
        })?;
    let mut fetched = Vec::with_capacity(blobs.len());
    for blob in blobs {
        let path = blob_path(wd, &directory, &file.file_path, &blob.name)?;
        download(http, &container.blob_url(&blob.name), &path, &blob.name).await?;
        if let Some(mode) = &file.file_mode {
            set_mode(&path, mode);
        }
        fetched.push(path);
    }
    Ok(fetched)
}

/// The directory a container's blobs go to: `filePath` under the working directory (the
/// working directory itself when empty), refused if it leaves it.
fn container_directory(wd: &Path, file_path: &str) -> Result<PathBuf, TaskFailure> {
    let trimmed = file_path.trim_end_matches(['/', '\\']);
    if trimmed.is_empty() || trimmed == "." {
        return Ok(wd.to_path_buf());
    }
    resource_file_path(wd, trimmed).map_err(fail)
}

/// Where blob `name` lands: `{filePath}/{name}`, which must stay inside that directory (a name
/// with `..` segments or a trailing `/` is refused, rather than written elsewhere).
fn blob_path(
    wd: &Path,
    directory: &Path,
    file_path: &str,
    name: &str,
) -> Result<PathBuf, TaskFailure> {
    let relative = directory.strip_prefix(wd).unwrap_or(Path::new(""));
    let joined = format!("{}/{name}", relative.display());
    let path = resource_file_path(wd, joined.trim_start_matches('/')).map_err(|e| {
        fail(format!(
            "the blob `{name}` cannot be fetched under `{file_path}`: {e}"
        ))
    })?;
    if path == directory || !path.starts_with(directory) {
        return Err(fail(format!(
            "the blob `{name}` would leave `{file_path}`, where its container's blobs go"
        )));
    }
    Ok(path)
}

/// Downloads `url` to `path` (its folders created), one more try for a connection that failed
/// before an answer, as the Batch node agent retries its downloads.
async fn download(
    http: &reqwest::Client,
    url: &str,
    path: &Path,
    what: &str,
) -> Result<(), TaskFailure> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut downloaded = http_download_to_file(http, url, path).await;
    if downloaded.as_ref().is_err_and(|e| e.status().is_none()) {
        downloaded = http_download_to_file(http, url, path).await;
    }
    downloaded.map(drop).map_err(|e| {
        fail(format!(
            "downloading `{what}` from {} failed: {e}",
            redact_sas(url)
        ))
    })
}

fn set_mode(path: &Path, mode: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(bits) = u32::from_str_radix(mode, 8) {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_spec::IdentityReference;
    use std::sync::{Arc, Mutex};

    /// A container served the way Blob storage lists and serves it, with pages of `page_size`
    /// blobs; it records the query of every listing.
    #[derive(Clone)]
    struct FakeContainer {
        blobs: Vec<&'static str>,
        page_size: usize,
        listings: Arc<Mutex<Vec<String>>>,
    }

    impl FakeContainer {
        fn answer(&self, path: &str, query: &str) -> (u16, String) {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let get = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            if get("sig").as_deref() != Some("test") {
                return (403, "no SAS".into());
            }
            if get("comp").as_deref() == Some("list") {
                self.listings.lock().unwrap().push(query.to_string());
                return (200, self.page(get("prefix"), get("marker")));
            }
            let name = percent_encoding::percent_decode_str(path.trim_start_matches("/acct/c/"))
                .decode_utf8_lossy()
                .into_owned();
            match self.blobs.contains(&name.as_str()) {
                true => (200, format!("content of {name}")),
                false => (404, "no such blob".into()),
            }
        }

        fn page(&self, prefix: Option<String>, marker: Option<String>) -> String {
            let prefix = prefix.unwrap_or_default();
            let matching: Vec<&str> = self
                .blobs
                .iter()
                .copied()
                .filter(|b| b.starts_with(&prefix))
                .collect();
            let start: usize = marker.map_or(0, |m| m.parse().unwrap());
            let end = (start + self.page_size).min(matching.len());
            let items: String = matching[start..end]
                .iter()
                .map(|name| {
                    format!(
                        "<Blob><Name>{name}</Name><Properties><Content-Length>9</Content-Length>\
                         <BlobType>BlockBlob</BlobType></Properties></Blob>"
                    )
                })
                .collect();
            let next = if end < matching.len() {
                format!("<NextMarker>{end}</NextMarker>")
            } else {
                "<NextMarker/>".to_string()
            };
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults \
                 ServiceEndpoint=\"http://127.0.0.1/acct/\" ContainerName=\"c\"><Prefix>{prefix}\
                 </Prefix><Blobs>{items}</Blobs>{next}</EnumerationResults>"
            )
        }
    }

    /// Serves `fake` on a loopback port; its container's SAS URL.
    async fn serve(fake: FakeContainer) -> String {
        use axum::extract::State;
        use axum::http::{StatusCode, Uri};
        let app = axum::Router::new()
            .fallback(|State(fake): State<FakeContainer>, uri: Uri| async move {
                let (status, body) = fake.answer(uri.path(), uri.query().unwrap_or_default());
                (StatusCode::from_u16(status).unwrap(), body)
            })
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://127.0.0.1:{port}/acct/c?sv=2025-11-05&sr=c&sp=rl&sig=test")
    }

    fn fake(blobs: Vec<&'static str>, page_size: usize) -> FakeContainer {
        FakeContainer {
            blobs,
            page_size,
            listings: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn task(file: ResourceFile) -> TaskSpec {
        TaskSpec {
            resource_files: vec![file],
            ..TaskSpec::new("merge", "/wordcount --merge parts")
        }
    }

    #[tokio::test]
    async fn every_blob_under_the_prefix_lands_under_the_file_path_across_pages() {
        let blobs = vec![
            "wcs-1/parts/0",
            "wcs-1/parts/1",
            "wcs-1/parts/2",
            "wcs-1/parts/3",
            "wcs-1/parts/4",
            "wcs-2/parts/0",
        ];
        let fake = fake(blobs, 2);
        let url = serve(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::new();
        let file = ResourceFile::container(url, "wcs-1/parts/", "parts", None);
        let fetched = fetch_resources(&http, &task(file), dir.path())
            .await
            .unwrap();
        assert_eq!(fetched.len(), 5, "{fetched:?}");
        for i in 0..5 {
            let path = dir.path().join(format!("parts/wcs-1/parts/{i}"));
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("content of wcs-1/parts/{i}")
            );
        }
        assert!(!dir.path().join("parts/wcs-2").exists());
        let listings = fake.listings.lock().unwrap().clone();
        assert_eq!(listings.len(), 3, "three pages of two: {listings:?}");
        for query in &listings {
            assert!(query.contains("prefix=wcs-1%2Fparts%2F"), "{query}");
            assert!(query.contains("sig=test"), "the SAS goes along: {query}");
        }
        assert!(listings[1].contains("marker=2"), "{listings:?}");
    }

    #[tokio::test]
    async fn no_blob_leaves_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("wd");
        std::fs::create_dir_all(&wd).unwrap();
        let http = reqwest::Client::new();
        for name in ["p/../../../escape", "p/../../x", "p\\..\\..\\y"] {
            let url = serve(fake(vec![name], 10)).await;
            let file = ResourceFile::container(url, "p", "parts", None);
            let failure = fetch_resources(&http, &task(file), &wd).await.unwrap_err();
            assert_eq!(failure.code, FailureCode::ResourceFileError, "{failure}");
            assert!(failure.message.contains(name), "{failure}");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["wd"],
            "nothing was written beside the working directory"
        );
        // A directory that leaves the working directory is refused before anything is listed.
        let listed = fake(vec!["p/0"], 10);
        let url = serve(listed.clone()).await;
        let file = ResourceFile::container(url, "p", "../parts", None);
        let failure = fetch_resources(&http, &task(file), &wd).await.unwrap_err();
        assert!(failure.message.contains("leaves"), "{failure}");
        assert!(listed.listings.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_empty_prefix_or_folder_takes_the_whole_container_into_the_working_directory() {
        let url = serve(fake(vec!["a", "b/c"], 10)).await;
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::new();
        let file = ResourceFile::container(url, "", "", None);
        fetch_resources(&http, &task(file), dir.path())
            .await
            .unwrap();
        assert!(dir.path().join("a").is_file());
        assert!(dir.path().join("b/c").is_file());
    }

    #[tokio::test]
    async fn a_container_reached_with_an_identity_cannot_be_fetched_here() {
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::new();
        let identity = IdentityReference {
            resource_id: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool".into(),
        };
        let file = ResourceFile::container(
            "http://127.0.0.1:9/acct/staging".into(),
            "wcs-1/parts/",
            "parts",
            Some(identity),
        );
        let failure = fetch_resources(&http, &task(file), dir.path())
            .await
            .unwrap_err();
        assert_eq!(failure.code, FailureCode::ResourceFileError);
        assert!(failure.message.contains("identityReference"), "{failure}");
        // A wrong SAS is the storage's refusal, named without its signature.
        let url = serve(fake(vec!["p/0"], 10))
            .await
            .replace("sig=test", "sig=wrong");
        let file = ResourceFile::container(url, "p", "parts", None);
        let failure = fetch_resources(&http, &task(file), dir.path())
            .await
            .unwrap_err();
        assert!(failure.message.contains("403"), "{failure}");
        assert!(!failure.message.contains("sig=wrong"), "{failure}");
    }
}
