//! The little blob access blob2batch needs, on the official `azure_storage_blob` crate: through
//! SAS URLs (the crate has no Shared Key; a SAS over plain http is how it talks to Azurite), or
//! with an Entra ID credential (https only) where no account key is configured.
//!
//! Blob names are raw strings (`docs/a b#1.txt`); URLs are built by percent-encoding each
//! `/`-separated segment once, so names with spaces, `#`, `%`, `?`, non-ASCII, emoji and nested
//! folders round-trip. A name containing a `.` or `..` segment cannot be addressed path-style (URL
//! parsers fold such segments), which the service does not allow to be useful either.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::pager::PagerOptions;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, StatusCode, Url,
};
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders as _, BlobContainerClientListBlobsOptions,
    BlockBlobClientCommitBlockListOptions, BlockBlobClientUploadOptions, BlockLookupList,
    ListBlobsIncludeItem,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
};
use futures_util::{StreamExt as _, TryStreamExt as _};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::key::StorageAccountKey;
use super::sas::{SasOptions, SasProtocol, redact_sas};
use super::url::{encode_blob_name, join_query};
use crate::error_chain::error_chain;

/// Files up to this size are uploaded in one request; larger ones in blocks of this size.
pub(crate) const SINGLE_UPLOAD_LIMIT: u64 = 8 * 1024 * 1024;
const BLOCK_SIZE: usize = 8 * 1024 * 1024;

/// A failed storage call. The message never holds a SAS signature.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{op} failed{}: {message}", status.map(|s| format!(" ({s}{})", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())).unwrap_or_default())]
    Service {
        op: &'static str,
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("invalid storage URL: {0}")]
    Url(String),
    /// The call, retries included, did not end within the client's retry budget.
    #[error("{op}: no answer within {} s, retries included", budget.as_secs())]
    Timeout { op: &'static str, budget: Duration },
}

impl BlobError {
    pub fn status(&self) -> Option<u16> {
        match self {
            BlobError::Service { status, .. } => *status,
            _ => None,
        }
    }

    fn azure(op: &'static str, err: azure_core::Error) -> Self {
        let status = err.http_status().map(u16::from);
        let code = match err.kind() {
            azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
            _ => None,
        };
        BlobError::Service {
            op,
            status,
            code,
            message: redact_sas(&error_chain(&err)),
        }
    }

    fn http(op: &'static str, err: reqwest::Error) -> Self {
        BlobError::Service {
            op,
            status: err.status().map(|s| s.as_u16()),
            code: None,
            message: redact_sas(&error_chain(&err.without_url())),
        }
    }

    fn io(op: &'static str, source: std::io::Error) -> Self {
        BlobError::Io { op, source }
    }
}

/// One blob in a listing (or read with its properties).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobEntry {
    pub name: String,
    /// Unquoted, e.g. `0x8DE62A1B3C4D5E7`.
    pub etag: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub last_modified: Option<OffsetDateTime>,
    /// User metadata (`x-ms-meta-*`), names in lower case; filled when the listing asked for it.
    pub metadata: BTreeMap<String, String>,
}

/// One page of a listing, and where the next one starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ListPage {
    pub entries: Vec<BlobEntry>,
    /// The service's continuation marker; `None` on the last page.
    pub next_marker: Option<String>,
}

/// What a listing asks for.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOptions<'a> {
    pub prefix: Option<&'a str>,
    /// Resume where a previous page said the next one starts.
    pub marker: Option<String>,
    /// Include each blob's metadata.
    pub metadata: bool,
}

/// The blob HTTP headers and metadata set on upload (Batch's `uploadHeaders` map onto these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobHttpHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    /// `x-ms-meta-{name}`; names in lower case.
    pub metadata: BTreeMap<String, String>,
}

impl BlobHttpHeaders {
    pub fn content_type(value: &str) -> Self {
        Self {
            content_type: Some(value.to_string()),
            ..Default::default()
        }
    }

    /// Sets a header by its HTTP name (case-insensitive); `false` when it is not a blob header.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let slot = match name.to_ascii_lowercase().as_str() {
            "content-type" | "x-ms-blob-content-type" => &mut self.content_type,
            "content-encoding" | "x-ms-blob-content-encoding" => &mut self.content_encoding,
            "content-language" | "x-ms-blob-content-language" => &mut self.content_language,
            "content-disposition" | "x-ms-blob-content-disposition" => {
                &mut self.content_disposition
            }
            "cache-control" | "x-ms-blob-cache-control" => &mut self.cache_control,
            other => {
                let Some(meta) = other.strip_prefix("x-ms-meta-").filter(|m| !m.is_empty()) else {
                    return false;
                };
                self.metadata.insert(meta.to_string(), value.to_string());
                return true;
            }
        };
        *slot = Some(value.to_string());
        true
    }

    fn metadata(&self) -> Option<HashMap<String, String>> {
        (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }

    fn upload_options(&self) -> BlockBlobClientUploadOptions<'static> {
        BlockBlobClientUploadOptions {
            blob_content_type: self.content_type.clone(),
            blob_content_encoding: self.content_encoding.clone(),
            blob_content_language: self.content_language.clone(),
            blob_content_disposition: self.content_disposition.clone(),
            blob_cache_control: self.cache_control.clone(),
            metadata: self.metadata(),
            ..Default::default()
        }
    }

    fn commit_options(&self) -> BlockBlobClientCommitBlockListOptions<'static> {
        BlockBlobClientCommitBlockListOptions {
            blob_content_type: self.content_type.clone(),
            blob_content_encoding: self.content_encoding.clone(),
            blob_content_language: self.content_language.clone(),
            blob_content_disposition: self.content_disposition.clone(),
            blob_cache_control: self.cache_control.clone(),
            metadata: self.metadata(),
            ..Default::default()
        }
    }
}

/// What an upload produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub etag: Option<String>,
    pub size: u64,
}

/// A storage account we hold the key of: builds plain and SAS URLs, and container clients.
#[derive(Clone, Debug)]
pub struct StorageAccount {
    /// Blob endpoint without trailing `/`, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    url: String,
    key: StorageAccountKey,
}

impl StorageAccount {
    pub fn new(url: &str, key: StorageAccountKey) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            key,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn key(&self) -> &StorageAccountKey {
        &self.key
    }

    /// `{url}/{container}`, no SAS.
    pub fn container_url(&self, container: &str) -> String {
        format!("{}/{}", self.url, encode_blob_name(container))
    }

    /// `{url}/{container}/{encoded blob name}`, no SAS.
    pub fn blob_url(&self, container: &str, blob: &str) -> String {
        format!(
            "{}/{}",
            self.container_url(container),
            encode_blob_name(blob)
        )
    }

    fn protocol(&self) -> SasProtocol {
        if self.url.starts_with("https:") {
            SasProtocol::Https
        } else {
            SasProtocol::HttpsAndHttp
        }
    }

    fn sas_options(&self, permissions: &str, ttl: Duration) -> SasOptions {
        let now = OffsetDateTime::now_utc();
        SasOptions {
            permissions: permissions.to_string(),
            // A little slack for clock skew between us and the service.
            start: Some(now - Duration::from_secs(300)),
            expiry: now + ttl,
            protocol: self.protocol(),
        }
    }

    /// A client for `container` with an account SAS granting everything (creating the container
    /// included, which no service SAS can), valid for a day.
    pub fn container(&self, container: &str) -> Result<ContainerClient, BlobError> {
        let token = self.key.account_sas(
            "sco",
            &self.sas_options("racwdl", Duration::from_secs(24 * 3600)),
        );
        ContainerClient::from_sas_url(&token.append_to(&self.container_url(container)))
    }
}

/// A container reached through a (SAS) container URL, or with an Entra ID credential.
#[derive(Clone)]
pub struct ContainerClient {
    /// Path without trailing `/`.
    base: String,
    /// The SAS query, without `?` (may be empty).
    query: String,
    credential: Option<Arc<dyn TokenCredential>>,
    /// When set, the longest any one call may take, retries included
    /// ([`ContainerClient::with_retry_budget`]); otherwise the SDK's retry policy alone bounds it.
    budget: Option<Duration>,
    inner: Arc<BlobContainerClient>,
}

impl std::fmt::Debug for ContainerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerClient")
            .field("url", &self.base)
            .finish()
    }
}

impl ContainerClient {
    /// `url` is a container URL, normally with a SAS query (used as is, never re-encoded).
    pub fn from_sas_url(url: &str) -> Result<Self, BlobError> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b.trim_end_matches('/').to_string(), q.to_string()),
            None => (url.trim_end_matches('/').to_string(), String::new()),
        };
        let parsed = parse_url(&join_query(&base, &query))?;
        let inner = BlobContainerClient::new(parsed, None, None)
            .map_err(|e| BlobError::azure("container client", e))?;
        Ok(Self {
            base,
            query,
            credential: None,
            budget: None,
            inner: Arc::new(inner),
        })
    }

    /// `url` is a plain https container URL; requests carry tokens from `credential` (scope
    /// `https://storage.azure.com/.default`, which the crate asks for).
    pub(crate) fn with_credential(
        url: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, BlobError> {
        let base = url.trim_end_matches('/').to_string();
        let inner = BlobContainerClient::new(parse_url(&base)?, Some(credential.clone()), None)
            .map_err(|e| BlobError::azure("container client", e))?;
        Ok(Self {
            base,
            query: String::new(),
            credential: Some(credential),
            budget: None,
            inner: Arc::new(inner),
        })
    }

    /// The same container, each call of which gives up once `budget` has passed, retries
    /// included (`STORAGE_RETRY_BUDGET`): the SDK stops retrying by then, and a call still
    /// waiting for an answer is abandoned.
    pub(crate) fn with_retry_budget(self, budget: Duration) -> Result<Self, BlobError> {
        let url = parse_url(&join_query(&self.base, &self.query))?;
        let options = BlobContainerClientOptions {
            client_options: client_options(budget),
            ..Default::default()
        };
        let inner = BlobContainerClient::new(url, self.credential.clone(), Some(options))
            .map_err(|e| BlobError::azure("container client", e))?;
        Ok(Self {
            budget: Some(budget),
            inner: Arc::new(inner),
            ..self
        })
    }

    /// Whether both are the same client (clones of one), not merely of the same container.
    #[cfg(test)]
    pub(crate) fn is_same_client(&self, other: &ContainerClient) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Runs one call within the budget, when there is one.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T, BlobError>>,
    ) -> Result<T, BlobError> {
        match self.budget {
            None => call.await,
            Some(budget) => tokio::time::timeout(budget, call)
                .await
                .unwrap_or(Err(BlobError::Timeout { op, budget })),
        }
    }

    /// The URL of `blob` in this container, with the container's SAS.
    pub fn blob_url(&self, blob: &str) -> String {
        join_query(
            &format!("{}/{}", self.base, encode_blob_name(blob)),
            &self.query,
        )
    }

    fn blob_client(&self, blob: &str) -> Result<BlobClient, BlobError> {
        let options = self.budget.map(|budget| BlobClientOptions {
            client_options: client_options(budget),
            ..Default::default()
        });
        BlobClient::new(
            parse_url(&self.blob_url(blob))?,
            self.credential.clone(),
            options,
        )
        .map_err(|e| BlobError::azure("blob client", e))
    }

    /// Creates the container; `Ok(false)` when it already exists.
    pub async fn create_if_missing(&self) -> Result<bool, BlobError> {
        self.bounded("create container", async {
            match self.inner.create(None).await {
                Ok(_) => Ok(true),
                Err(e) if e.http_status() == Some(StatusCode::Conflict) => Ok(false),
                Err(e) => Err(BlobError::azure("create container", e)),
            }
        })
        .await
    }

    /// Every blob whose name starts with `prefix` (all pages).
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<BlobEntry>, BlobError> {
        let mut options = ListOptions {
            prefix,
            ..ListOptions::default()
        };
        let mut out = Vec::new();
        loop {
            let page = self.list_page(&options).await?;
            out.extend(page.entries);
            match page.next_marker {
                Some(marker) => options.marker = Some(marker),
                None => return Ok(out),
            }
        }
    }

    /// One page of a listing (at most 5,000 blobs), in name order.
    pub(crate) async fn list_page(&self, options: &ListOptions<'_>) -> Result<ListPage, BlobError> {
        self.bounded("list blobs", self.list_page_unbounded(options))
            .await
    }

    async fn list_page_unbounded(&self, options: &ListOptions<'_>) -> Result<ListPage, BlobError> {
        let list_options = BlobContainerClientListBlobsOptions {
            prefix: options.prefix.map(str::to_string),
            marker: options.marker.clone(),
            include: options
                .metadata
                .then(|| vec![ListBlobsIncludeItem::Metadata]),
            method_options: PagerOptions::default(),
            ..Default::default()
        };
        let mut pages = self
            .inner
            .list_blobs(Some(list_options))
            .map_err(|e| BlobError::azure("list blobs", e))?
            .into_pages();
        let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| BlobError::azure("list blobs", e))?
        else {
            return Ok(ListPage::default());
        };
        let page = page
            .into_model()
            .map_err(|e| BlobError::azure("list blobs", e))?;
        let entries = page
            .blob_items
            .into_iter()
            .filter_map(|item| {
                let name = item.name?;
                let props = item.properties.unwrap_or_default();
                Some(BlobEntry {
                    name,
                    etag: props.etag.map(|e| unquote(e.as_ref())).unwrap_or_default(),
                    size: props.content_length.unwrap_or(0),
                    content_type: props.content_type,
                    last_modified: props.last_modified,
                    metadata: item
                        .metadata
                        .and_then(|m| m.values)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect(),
                })
            })
            .collect();
        Ok(ListPage {
            entries,
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }

    /// The blob's properties and metadata, or `None` when it does not exist.
    pub async fn properties(&self, blob: &str) -> Result<Option<BlobEntry>, BlobError> {
        self.bounded("get blob properties", self.properties_unbounded(blob))
            .await
    }

    async fn properties_unbounded(&self, blob: &str) -> Result<Option<BlobEntry>, BlobError> {
        let response = match self.blob_client(blob)?.get_properties(None).await {
            Ok(response) => response,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(BlobError::azure("get blob properties", e)),
        };
        let read = |e| BlobError::azure("get blob properties", e);
        Ok(Some(BlobEntry {
            name: blob.to_string(),
            etag: response
                .etag()
                .map_err(read)?
                .map(|e| unquote(e.as_ref()))
                .unwrap_or_default(),
            size: response.content_length().map_err(read)?.unwrap_or(0),
            content_type: response.content_type().map_err(read)?,
            last_modified: response.last_modified().map_err(read)?,
            metadata: response
                .metadata()
                .map_err(read)?
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }))
    }

    /// Deletes the blob; `Ok(false)` when it was not there.
    pub async fn delete(&self, blob: &str) -> Result<bool, BlobError> {
        let client = self.blob_client(blob)?;
        self.bounded("delete blob", async {
            match client.delete(None).await {
                Ok(_) => Ok(true),
                Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(false),
                Err(e) => Err(BlobError::azure("delete blob", e)),
            }
        })
        .await
    }

    /// Uploads `bytes` as a block blob in one request.
    pub async fn upload_bytes(
        &self,
        blob: &str,
        bytes: Vec<u8>,
        headers: &BlobHttpHeaders,
    ) -> Result<Uploaded, BlobError> {
        let size = bytes.len() as u64;
        let client = self.blob_client(blob)?;
        let result = self
            .bounded("upload blob", async {
                client
                    .upload(RequestContent::from(bytes), Some(headers.upload_options()))
                    .await
                    .map_err(|e| BlobError::azure("upload blob", e))
            })
            .await?;
        Ok(Uploaded {
            etag: result.etag.map(|e| unquote(e.as_ref())),
            size,
        })
    }

    /// Uploads a file as a block blob: one request up to [`SINGLE_UPLOAD_LIMIT`], else staged
    /// blocks committed at the end. `progress(sent, total)` is called after each block.
    pub async fn upload_file(
        &self,
        blob: &str,
        path: &Path,
        headers: &BlobHttpHeaders,
        progress: Option<&(dyn Fn(u64, u64) + Send + Sync)>,
    ) -> Result<Uploaded, BlobError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| BlobError::io("open file to upload", e))?;
        let total = file
            .metadata()
            .await
            .map_err(|e| BlobError::io("stat file to upload", e))?
            .len();
        if total <= SINGLE_UPLOAD_LIMIT {
            let mut bytes = Vec::with_capacity(total as usize);
            file.read_to_end(&mut bytes)
                .await
                .map_err(|e| BlobError::io("read file to upload", e))?;
            let uploaded = self.upload_bytes(blob, bytes, headers).await?;
            if let Some(progress) = progress {
                progress(uploaded.size, uploaded.size);
            }
            return Ok(uploaded);
        }
        let client = self.blob_client(blob)?.block_blob_client();
        let mut ids = Vec::new();
        let mut sent = 0u64;
        loop {
            let mut block = Vec::with_capacity(BLOCK_SIZE);
            (&mut file)
                .take(BLOCK_SIZE as u64)
                .read_to_end(&mut block)
                .await
                .map_err(|e| BlobError::io("read file to upload", e))?;
            if block.is_empty() {
                break;
            }
            let id = format!("block-{:08}", ids.len()).into_bytes();
            let len = block.len() as u64;
            self.bounded("stage block", async {
                client
                    .stage_block(&id, len, RequestContent::from(block), None)
                    .await
                    .map_err(|e| BlobError::azure("stage block", e))
            })
            .await?;
            ids.push(id);
            sent += len;
            if let Some(progress) = progress {
                progress(sent, total.max(sent));
            }
        }
        let list = BlockLookupList {
            committed: None,
            latest: Some(ids),
            uncommitted: None,
        };
        let content = list
            .try_into()
            .map_err(|e| BlobError::azure("commit block list", e))?;
        let response = self
            .bounded("commit block list", async {
                client
                    .commit_block_list(content, Some(headers.commit_options()))
                    .await
                    .map_err(|e| BlobError::azure("commit block list", e))
            })
            .await?;
        let etag = response
            .headers()
            .get_optional_str(&azure_core::http::headers::ETAG)
            .map(unquote);
        Ok(Uploaded { etag, size: sent })
    }

    /// The whole content of a (small) blob.
    pub async fn read(&self, blob: &str) -> Result<Vec<u8>, BlobError> {
        let client = self.blob_client(blob)?;
        self.bounded("download blob", async {
            let result = client
                .download(None)
                .await
                .map_err(|e| BlobError::azure("download blob", e))?;
            let bytes = result
                .body
                .collect()
                .await
                .map_err(|e| BlobError::azure("download blob", e))?;
            Ok(bytes.to_vec())
        })
        .await
    }
}

/// Network chunks are small; each tokio file write is a trip to the blocking pool. Writing in
/// large buffers halves the time to fetch a big blob.
const DOWNLOAD_BUFFER: usize = 4 * 1024 * 1024;

/// Writes a download stream into a new file at `path`; returns the number of bytes written.
async fn write_download<S, B, E>(
    path: &Path,
    stream: S,
    on_error: impl Fn(E) -> BlobError,
) -> Result<u64, BlobError>
where
    S: futures_util::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| BlobError::io("create download file", e))?;
    let mut file = tokio::io::BufWriter::with_capacity(DOWNLOAD_BUFFER, file);
    let mut stream = std::pin::pin!(stream);
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(&on_error)?;
        let chunk = chunk.as_ref();
        file.write_all(chunk)
            .await
            .map_err(|e| BlobError::io("write download file", e))?;
        written += chunk.len() as u64;
    }
    file.flush()
        .await
        .map_err(|e| BlobError::io("write download file", e))?;
    Ok(written)
}

/// The SDK's exponential retries, stopped within `budget`: no new attempt after half of it, so
/// that a call failing fast (a 503 after another) ends with the service's own answer, and the
/// timeout at the end of the budget only ends a call still waiting for one.
fn client_options(budget: Duration) -> ClientOptions {
    let budget = azure_core::time::Duration::try_from(budget / 2)
        .unwrap_or(azure_core::time::Duration::seconds(15));
    ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            max_total_elapsed: budget,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An eTag without the quotes the service may put around it.
fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

fn parse_url(url: &str) -> Result<Url, BlobError> {
    Url::parse(url).map_err(|e| BlobError::Url(format!("{e} in {}", redact_sas(url))))
}

/// Downloads `url` (verbatim, e.g. a blob SAS URL) with a plain HTTP GET into a new file at `path`,
/// streaming. Returns the number of bytes written.
pub async fn http_download_to_file(
    http: &reqwest::Client,
    url: &str,
    path: &Path,
) -> Result<u64, BlobError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| BlobError::http("download", e))?;
    let status = response.status();
    if !status.is_success() {
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        return Err(BlobError::Service {
            op: "download",
            status: Some(status.as_u16()),
            code,
            message: redact_sas(&first_line_of_message(&body)),
        });
    }
    write_download(path, response.bytes_stream(), |e| {
        BlobError::http("download", e)
    })
    .await
}

/// The `<Message>` of a storage error body, or its start.
fn first_line_of_message(body: &str) -> String {
    if let (Some(start), Some(end)) = (body.find("<Message>"), body.find("</Message>"))
        && start + 9 <= end
    {
        return body[start + 9..end]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
    }
    body.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_sas_and_encode_the_name() {
        let account = StorageAccount::new(
            "http://127.0.0.1:10000/devstoreaccount1/",
            crate::storage::azurite::well_known_key(),
        );
        assert_eq!(
            account.blob_url("input", "a b/c#d"),
            "http://127.0.0.1:10000/devstoreaccount1/input/a%20b/c%23d"
        );
        let client = ContainerClient::from_sas_url("http://h:1/acct/c?sv=1&sig=x").unwrap();
        assert_eq!(client.blob_url("x y"), "http://h:1/acct/c/x%20y?sv=1&sig=x");
        assert!(!format!("{client:?}").contains("sig"));
        let admin = account.container("input").unwrap();
        let url = admin.blob_url("a b");
        assert!(
            url.starts_with("http://127.0.0.1:10000/devstoreaccount1/input/a%20b?sv=2025-11-05&")
        );
        assert!(url.contains("&spr=https%2Chttp&"));
        assert!(url.contains("&srt=sco&"), "an account SAS: {url}");
    }

    #[test]
    fn storage_error_message_is_extracted() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AuthorizationFailure</Code><Message>This request is not authorized.\nRequestId:1</Message></Error>";
        assert_eq!(
            first_line_of_message(body),
            "This request is not authorized."
        );
    }
}
