//! Blob storage helpers: account keys, service SAS signing, blob access, Azurite.

pub mod azurite;
pub mod blob;
pub mod key;
pub mod sas;

pub use blob::{
    BlobEntry, BlobError, BlobHttpHeaders, ContainerClient, StorageAccount, Uploaded,
    encode_blob_name,
};
pub use key::{InvalidAccountKey, StorageAccountKey};
pub use sas::{SasOptions, SasProtocol, SasResource, SasToken};
