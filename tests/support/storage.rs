//! Storage helpers only tests need: SAS URLs signed for a test's own use, and reading a blob that
//! may not exist.

use std::time::Duration;

use blob2batch::storage::sas::{SasOptions, SasProtocol, SasResource};
use blob2batch::storage::{BlobError, ContainerClient, StorageAccount};
use time::OffsetDateTime;

fn options(account: &StorageAccount, permissions: &str, ttl: Duration) -> SasOptions {
    let now = OffsetDateTime::now_utc();
    SasOptions {
        permissions: permissions.to_string(),
        start: Some(now - Duration::from_secs(300)),
        expiry: now + ttl,
        protocol: if account.url().starts_with("https:") {
            SasProtocol::Https
        } else {
            SasProtocol::HttpsAndHttp
        },
    }
}

/// A container URL with a service SAS.
pub fn container_sas_url(
    account: &StorageAccount,
    container: &str,
    permissions: &str,
    ttl: Duration,
) -> String {
    account
        .key()
        .service_sas(
            SasResource::Container { container },
            &options(account, permissions, ttl),
        )
        .append_to(&account.container_url(container))
}

/// A blob URL with a service SAS for that one blob.
pub fn blob_sas_url(
    account: &StorageAccount,
    container: &str,
    blob: &str,
    permissions: &str,
    ttl: Duration,
) -> String {
    account
        .key()
        .service_sas(
            SasResource::Blob { container, blob },
            &options(account, permissions, ttl),
        )
        .append_to(&account.blob_url(container, blob))
}

/// The blob's content, or `None` when it does not exist.
pub async fn read_if_exists(
    container: &ContainerClient,
    blob: &str,
) -> Result<Option<Vec<u8>>, BlobError> {
    match container.read(blob).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A container of the test Azurite, created when missing.
pub async fn fresh_container(name: &str) -> ContainerClient {
    let container = super::azurite::azurite().account().container(name).unwrap();
    container.create_if_missing().await.unwrap();
    container
}
