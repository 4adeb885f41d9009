//! Blob storage: account keys, service SAS signing, URL encoding, blob access, Azurite.

pub mod azurite;
pub mod blob;
pub mod key;
pub mod sas;
pub mod url;

pub use blob::{BlobEntry, BlobError, BlobHttpHeaders, ContainerClient, StorageAccount, Uploaded};
pub use key::{InvalidAccountKey, StorageAccountKey};
pub use sas::{SasOptions, SasProtocol, SasResource, SasToken};
pub use url::encode_blob_name;
