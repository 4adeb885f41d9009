//! Blob storage helpers: account URLs, service SAS signing, Azurite.
