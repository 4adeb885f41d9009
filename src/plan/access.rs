//! How a task reaches its input and the output container: SAS URLs signed with the account key
//! (read on the one blob, create and write on the output container), or plain URLs and the
//! pool's identity; and, for a task that reads its input itself, a read-only URL for the blob.

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::StorageAccess;
use crate::filter::BlobCreated;
use crate::storage::delegation::DelegationKey;
use crate::storage::sas::{SasOptions, SasProtocol, SasResource};
use crate::task_spec::IdentityReference;

use crate::config::SAS_CLOCK_SKEW;

/// Signs a read-only SAS for one blob when storage is reached with an identity (no key): a user
/// delegation key fetched before planning (planning itself reaches nothing).
pub trait ReadSigner: Send + Sync {
    /// The SAS query (without `?`) that lets its holder read blob `blob` of `container` from
    /// `start` to `expiry`, or why it cannot be signed.
    fn read_blob_sas(
        &self,
        container: &str,
        blob: &str,
        start: OffsetDateTime,
        expiry: OffsetDateTime,
    ) -> Result<String, String>;
}

impl ReadSigner for DelegationKey {
    fn read_blob_sas(
        &self,
        container: &str,
        blob: &str,
        start: OffsetDateTime,
        expiry: OffsetDateTime,
    ) -> Result<String, String> {
        DelegationKey::read_blob_sas(self, container, blob, start, expiry)
            .map(|sas| sas.query().to_string())
            .map_err(|e| e.to_string())
    }
}

/// Signs nothing: stands where a user delegation key would sign, for what only needs a task's
/// id and outputs (`status`) or shows its body with the signatures redacted (`plan`).
pub struct Unsigned;

impl ReadSigner for Unsigned {
    fn read_blob_sas(
        &self,
        _container: &str,
        _blob: &str,
        _start: OffsetDateTime,
        _expiry: OffsetDateTime,
    ) -> Result<String, String> {
        Ok("sr=b&sp=r&skoid=user-delegation&sig=unsigned".into())
    }
}

/// A key that could not be had: every signature it is asked for fails with why.
pub struct NoKey(pub String);

impl ReadSigner for NoKey {
    fn read_blob_sas(
        &self,
        _container: &str,
        _blob: &str,
        _start: OffsetDateTime,
        _expiry: OffsetDateTime,
    ) -> Result<String, String> {
        Err(self.0.clone())
    }
}

/// How one task reaches storage.
pub(super) struct Access {
    /// The blob, for a resource file: with a read SAS, or plain for the identity.
    pub input_url: String,
    pub output_container_url: String,
    /// The pool's identity, when it is the way in (no SAS).
    pub identity: Option<IdentityReference>,
}

/// The staging container as the parts (write) and the merge (read and list) reach it.
pub(super) struct Staging {
    pub write_url: String,
    pub read_url: String,
    pub identity: Option<IdentityReference>,
}

/// What the planner signs with.
pub(super) struct Signing<'a> {
    pub access: &'a StorageAccess,
    pub https_only: bool,
    /// The output container's URL, without a SAS.
    pub output_container_url: String,
    pub output_container: &'a str,
    /// The staging container's URL, without a SAS.
    pub staging_container_url: String,
    pub staging_container: &'a str,
}

impl Signing<'_> {
    fn options(&self, permissions: &str, now: OffsetDateTime, lifetime: Duration) -> SasOptions {
        SasOptions {
            permissions: permissions.into(),
            start: Some(now - SAS_CLOCK_SKEW),
            expiry: now + lifetime + SAS_CLOCK_SKEW,
            protocol: if self.https_only {
                SasProtocol::Https
            } else {
                SasProtocol::HttpsAndHttp
            },
        }
    }

    /// The input's URL and the output container's, valid from `now` for `lifetime` (the
    /// longest the task can exist).
    pub(crate) fn access(
        &self,
        blob: &BlobCreated,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Access {
        match self.access {
            StorageAccess::Sas(key) => {
                let read = key.service_sas(
                    SasResource::Blob {
                        container: &blob.container,
                        blob: &blob.blob,
                    },
                    &self.options("r", now, lifetime),
                );
                let write = key.service_sas(
                    SasResource::Container {
                        container: self.output_container,
                    },
                    &self.options("cw", now, lifetime),
                );
                Access {
                    input_url: read.append_to(&blob.url),
                    output_container_url: write.append_to(&self.output_container_url),
                    identity: None,
                }
            }
            StorageAccess::Identity(resource_id) => Access {
                input_url: blob.url.clone(),
                output_container_url: self.output_container_url.clone(),
                identity: Some(IdentityReference {
                    resource_id: resource_id.clone(),
                }),
            },
        }
    }

    /// The staging container for a split job: create and write for the parts (valid as long
    /// as `lifetime`), read and list for the merge (twice that: it waits for the parts).
    pub fn staging(&self, now: OffsetDateTime, lifetime: Duration) -> Staging {
        match self.access {
            StorageAccess::Sas(key) => {
                let container = SasResource::Container {
                    container: self.staging_container,
                };
                let write = key.service_sas(container, &self.options("cw", now, lifetime));
                let read = key.service_sas(
                    container,
                    &self.options("rl", now, lifetime.saturating_mul(2)),
                );
                Staging {
                    write_url: write.append_to(&self.staging_container_url),
                    read_url: read.append_to(&self.staging_container_url),
                    identity: None,
                }
            }
            StorageAccess::Identity(resource_id) => Staging {
                write_url: self.staging_container_url.clone(),
                read_url: self.staging_container_url.clone(),
                identity: Some(IdentityReference {
                    resource_id: resource_id.clone(),
                }),
            },
        }
    }

    /// A read-only SAS URL for the blob, for a task that reads it itself: a service SAS with the
    /// key, else a user delegation SAS from `delegated`.
    pub fn read_url(
        &self,
        blob: &BlobCreated,
        now: OffsetDateTime,
        lifetime: Duration,
        delegated: Option<&dyn ReadSigner>,
    ) -> Result<String, String> {
        let options = self.options("r", now, lifetime);
        let query = match (self.access, delegated) {
            (StorageAccess::Sas(key), _) => key
                .service_sas(
                    SasResource::Blob {
                        container: &blob.container,
                        blob: &blob.blob,
                    },
                    &options,
                )
                .query()
                .to_string(),
            (StorageAccess::Identity(_), Some(signer)) => signer.read_blob_sas(
                &blob.container,
                &blob.blob,
                options.start.unwrap_or(now),
                options.expiry,
            )?,
            (StorageAccess::Identity(_), None) => {
                return Err("no user delegation key to sign the input's URL with".into());
            }
        };
        Ok(crate::storage::url::join_query(&blob.url, &query))
    }
}
