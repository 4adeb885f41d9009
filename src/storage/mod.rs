//! Blob storage: account keys, service SAS signing, URL encoding, blob access, the account's
//! containers as this process reaches them, Azurite.

pub mod azurite;
pub mod blob;
pub mod containers;
pub mod delegation;
pub mod key;
pub mod sas;
pub mod url;

pub use blob::{BlobEntry, BlobError, BlobHttpHeaders, ContainerClient, StorageAccount, Uploaded};
pub use containers::Containers;
pub use key::{InvalidAccountKey, StorageAccountKey};
pub use sas::{SasOptions, SasProtocol, SasResource, SasToken};
pub use url::encode_blob_name;
