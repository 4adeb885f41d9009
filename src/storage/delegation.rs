//! User delegation SAS (https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas):
//! read-only SAS URLs for one blob where no account key is configured. The key that signs them
//! comes from the service (Get User Delegation Key) in exchange for the process's Entra ID token.
//!
//! The SAS is signed for version [`SAS_VERSION`] (2025-11-05, as the service SAS), whose
//! string-to-sign has 26 lines:
//!
//! ```text
//! sp \n st \n se \n /blob/{account}/{container}/{blob} \n skoid \n sktid \n skt \n ske \n sks \n
//! skv \n saoid \n suoid \n scid \n skdutid \n sduoid \n sip \n spr \n sv \n sr \n snapshot \n
//! ses \n rscc \n rscd \n rsce \n rscl \n rsct
//! ```
//!
//! The official `azure_storage_sas` 1.0 is not used to sign: it signs only its own version,
//! 2026-04-06, whose layout has two more lines (signed request headers and query parameters,
//! empty when unused), and nothing lets a caller choose another. Azurite 3.35.0 checks every
//! version from 2025-07-05 on against the 26-line layout, so it answers 403 to the crate's SAS;
//! the version is part of what is signed, so it cannot be rewritten afterwards. The tests check
//! this signer against the crate's, line by line: they differ in those two lines and the version.

use std::fmt;

use azure_core::http::Url;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use super::sas::{SAS_VERSION, format_sas_time, redact_sas};
use super::url::encode_query_value;
use crate::account_key::AccountKey;

/// Why no key or no SAS. Messages name the cause and never hold a key, token or signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    /// The service answered with a key that cannot serve.
    #[error("the user delegation key the service returned {problem}")]
    UnusableKey { problem: String },
    /// The SAS would still be valid after its key has expired.
    #[error(
        "a SAS expiring at {} would outlive its key, which expires at {}",
        format_sas_time(*expiry),
        format_sas_time(*key_expiry)
    )]
    OutlivesKey {
        expiry: OffsetDateTime,
        key_expiry: OffsetDateTime,
    },
    /// The SAS would expire before it starts.
    #[error(
        "a SAS must expire after it starts, not at {} when starting at {}",
        format_sas_time(*expiry),
        format_sas_time(*start)
    )]
    EmptyWindow {
        start: OffsetDateTime,
        expiry: OffsetDateTime,
    },
}

impl DelegationError {
    /// Whether trying again later may succeed: the service gave a key that cannot serve, as
    /// opposed to a request that no retry can satisfy.
    pub fn is_transient(&self) -> bool {
        matches!(self, DelegationError::UnusableKey { .. })
    }

    fn unusable(problem: impl Into<String>) -> Self {
        DelegationError::UnusableKey {
            problem: problem.into(),
        }
    }
}

/// A user delegation key as Get User Delegation Key returns it, field by field and each
/// optional, as in the SDK's `UserDelegationKey` (of `azure_storage_common`, which the crate
/// names only through `azure_storage_blob`). `Debug` never shows the value.
#[derive(Clone, Default)]
pub struct DelegationKeyParts {
    pub signed_oid: Option<String>,
    pub signed_tid: Option<String>,
    pub signed_start: Option<OffsetDateTime>,
    pub signed_expiry: Option<OffsetDateTime>,
    pub signed_service: Option<String>,
    pub signed_version: Option<String>,
    pub signed_delegated_user_tid: Option<String>,
    pub value: Option<Vec<u8>>,
}

impl fmt::Debug for DelegationKeyParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationKeyParts")
            .field("signed_oid", &self.signed_oid)
            .field("signed_tid", &self.signed_tid)
            .field("signed_start", &self.signed_start.map(format_sas_time))
            .field("signed_expiry", &self.signed_expiry.map(format_sas_time))
            .field("signed_version", &self.signed_version)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A user delegation key, and what a SAS signed with it names: the account, and whether the
/// endpoint is https. `Debug` never shows the key's value.
pub struct DelegationKey {
    account: String,
    https_only: bool,
    object_id: String,
    tenant_id: String,
    start: OffsetDateTime,
    expiry: OffsetDateTime,
    service: String,
    version: String,
    delegated_user_tenant_id: Option<String>,
    value: AccountKey,
}

impl fmt::Debug for DelegationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationKey")
            .field("account", &self.account)
            .field("object_id", &self.object_id)
            .field("tenant_id", &self.tenant_id)
            .field("start", &format_sas_time(self.start))
            .field("expiry", &format_sas_time(self.expiry))
            .field("version", &self.version)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl DelegationKey {
    /// The key the service returned for `account`, whose blob endpoint is `endpoint`. Fails
    /// naming the first field the answer lacks.
    pub fn new(
        account: &str,
        endpoint: &Url,
        key: DelegationKeyParts,
    ) -> Result<DelegationKey, DelegationError> {
        let missing = |field: &str| DelegationError::unusable(format!("lacks {field}"));
        let value = key.value.ok_or_else(|| missing("Value"))?;
        // The one HMAC signer of the crate takes base64, as account keys come.
        let value = AccountKey::from_base64(&STANDARD.encode(value))
            .map_err(|_| DelegationError::unusable("has an empty Value"))?;
        Ok(DelegationKey {
            account: account.to_string(),
            https_only: endpoint.scheme() == "https",
            object_id: key.signed_oid.ok_or_else(|| missing("SignedOid"))?,
            tenant_id: key.signed_tid.ok_or_else(|| missing("SignedTid"))?,
            start: key.signed_start.ok_or_else(|| missing("SignedStart"))?,
            expiry: key.signed_expiry.ok_or_else(|| missing("SignedExpiry"))?,
            service: key.signed_service.ok_or_else(|| missing("SignedService"))?,
            version: key.signed_version.ok_or_else(|| missing("SignedVersion"))?,
            delegated_user_tenant_id: key.signed_delegated_user_tid,
            value,
        })
    }

    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    pub fn expiry(&self) -> OffsetDateTime {
        self.expiry
    }

    /// A SAS that lets its holder read the blob `blob` (raw name, not percent-encoded) of
    /// `container` from `start` to `expiry`, and nothing else; https only when the endpoint
    /// is. Refused when it would outlive the key.
    pub fn read_blob_sas(
        &self,
        container: &str,
        blob: &str,
        start: OffsetDateTime,
        expiry: OffsetDateTime,
    ) -> Result<DelegationSas, DelegationError> {
        if expiry <= start {
            return Err(DelegationError::EmptyWindow { start, expiry });
        }
        if expiry > self.expiry {
            return Err(DelegationError::OutlivesKey {
                expiry,
                key_expiry: self.expiry,
            });
        }
        let fields = BlobFields {
            permissions: "r",
            start: format_sas_time(start),
            expiry: format_sas_time(expiry),
            // Backslashes as slashes, as the official SDKs sign blob names.
            canonical_resource: format!(
                "/blob/{}/{container}/{}",
                self.account,
                blob.replace('\\', "/")
            ),
            protocol: if self.https_only {
                "https"
            } else {
                "https,http"
            },
            resource: "b",
        };
        let signature = self.value.sign(&self.string_to_sign(&fields));
        Ok(DelegationSas {
            query: self.query(&fields, &signature),
        })
    }

    /// The 26-line string-to-sign of [`SAS_VERSION`]; fields blob2batch never sets are empty.
    fn string_to_sign(&self, fields: &BlobFields<'_>) -> String {
        let key_start = format_sas_time(self.start);
        let key_expiry = format_sas_time(self.expiry);
        [
            fields.permissions,
            &fields.start,
            &fields.expiry,
            &fields.canonical_resource,
            &self.object_id,
            &self.tenant_id,
            &key_start,
            &key_expiry,
            &self.service,
            &self.version,
            "", // authorized user object id (saoid)
            "", // unauthorized user object id (suoid)
            "", // correlation id (scid)
            self.delegated_user_tenant_id.as_deref().unwrap_or(""),
            "", // delegated user object id (sduoid)
            "", // IP range (sip)
            fields.protocol,
            SAS_VERSION,
            fields.resource,
            "", // snapshot time
            "", // encryption scope (ses)
            "", // rscc
            "", // rscd
            "", // rsce
            "", // rscl
            "", // rsct
        ]
        .join("\n")
    }

    /// The query in the official crate's order; times and the protocol list are left as they
    /// are (`:` and `,` are allowed in a query), as the crate does.
    fn query(&self, fields: &BlobFields<'_>, signature: &str) -> String {
        let mut pairs = vec![
            format!("sv={SAS_VERSION}"),
            format!("sr={}", fields.resource),
            format!("st={}", fields.start),
            format!("se={}", fields.expiry),
            format!("sp={}", fields.permissions),
            format!("spr={}", fields.protocol),
            format!("skoid={}", encode_query_value(&self.object_id)),
            format!("sktid={}", encode_query_value(&self.tenant_id)),
            format!("skt={}", format_sas_time(self.start)),
            format!("ske={}", format_sas_time(self.expiry)),
            format!("sks={}", encode_query_value(&self.service)),
            format!("skv={}", encode_query_value(&self.version)),
        ];
        if let Some(tenant) = &self.delegated_user_tenant_id {
            pairs.push(format!("skdutid={}", encode_query_value(tenant)));
        }
        pairs.push(format!("sig={}", encode_query_value(signature)));
        pairs.join("&")
    }
}

/// The signed fields of a blob SAS that vary between SAS of one key.
struct BlobFields<'a> {
    permissions: &'a str,
    start: String,
    expiry: String,
    canonical_resource: String,
    protocol: &'a str,
    resource: &'a str,
}

/// A user delegation SAS: the query string, without `?`. `Debug` hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct DelegationSas {
    query: String,
}

impl DelegationSas {
    pub fn query(&self) -> &str {
        &self.query
    }

    /// `url` (as given: never decoded nor encoded again) with this SAS appended.
    pub fn append_to(&self, url: &str) -> String {
        let separator = match url.find('?') {
            None => "?",
            Some(_) if url.ends_with('?') || url.ends_with('&') => "",
            Some(_) => "&",
        };
        format!("{url}{separator}{}", self.query)
    }
}

impl fmt::Debug for DelegationSas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DelegationSas")
            .field(&redact_sas(&self.query))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_storage_common::models::UserDelegationKey;
    use azure_storage_sas::{SasBuilder, SasProtocol as CrateProtocol};
    use time::macros::datetime;

    const OID: &str = "11111111-2222-3333-4444-555555555555";
    const TID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    const VALUE: &[u8] = b"blob2batch delegation key test!!";

    fn model() -> UserDelegationKey {
        UserDelegationKey {
            signed_oid: Some(OID.into()),
            signed_tid: Some(TID.into()),
            signed_start: Some(datetime!(2026-03-14 08:55:00 UTC)),
            signed_expiry: Some(datetime!(2026-03-21 08:55:00 UTC)),
            signed_service: Some("b".into()),
            signed_version: Some("2025-11-05".into()),
            signed_delegated_user_tid: None,
            value: Some(VALUE.to_vec()),
        }
    }

    /// The same key as ours.
    fn parts(udk: UserDelegationKey) -> DelegationKeyParts {
        DelegationKeyParts {
            signed_oid: udk.signed_oid,
            signed_tid: udk.signed_tid,
            signed_start: udk.signed_start,
            signed_expiry: udk.signed_expiry,
            signed_service: udk.signed_service,
            signed_version: udk.signed_version,
            signed_delegated_user_tid: udk.signed_delegated_user_tid,
            value: udk.value,
        }
    }

    fn key_at(endpoint: &str) -> DelegationKey {
        DelegationKey::new("acct", &Url::parse(endpoint).unwrap(), parts(model())).unwrap()
    }

    fn key() -> DelegationKey {
        key_at("https://acct.blob.core.windows.net")
    }

    const START: OffsetDateTime = datetime!(2026-03-14 09:00:00 UTC);
    const EXPIRY: OffsetDateTime = datetime!(2026-03-15 09:00:00 UTC);

    /// Pinned: every task's input URL changes if this does. The signature is the one Azurite
    /// 3.35.0's own signer (`generateBlobSASSignatureWithUDK`) computes for these values.
    #[test]
    fn known_answer() {
        let sas = key()
            .read_blob_sas("input", "docs/a b#1é.txt", START, EXPIRY)
            .unwrap();
        assert_eq!(
            sas.query(),
            "sv=2025-11-05&sr=b&st=2026-03-14T09:00:00Z&se=2026-03-15T09:00:00Z&sp=r&spr=https\
             &skoid=11111111-2222-3333-4444-555555555555&sktid=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\
             &skt=2026-03-14T08:55:00Z&ske=2026-03-21T08:55:00Z&sks=b&skv=2025-11-05\
             &sig=opviQEp4XKOzylV8%2FJ5A76IBmrutJb11Zzksnck%2F3NQ%3D"
        );
    }

    fn fields(blob: &str, protocol: &'static str) -> BlobFields<'static> {
        BlobFields {
            permissions: "r",
            start: format_sas_time(START),
            expiry: format_sas_time(EXPIRY),
            canonical_resource: format!("/blob/acct/input/{blob}"),
            protocol,
            resource: "b",
        }
    }

    #[test]
    fn string_to_sign_has_the_26_line_layout() {
        let s = key().string_to_sign(&fields("docs/a b#1é.txt", "https"));
        assert_eq!(
            s,
            "r\n2026-03-14T09:00:00Z\n2026-03-15T09:00:00Z\n/blob/acct/input/docs/a b#1é.txt\n\
             11111111-2222-3333-4444-555555555555\naaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n\
             2026-03-14T08:55:00Z\n2026-03-21T08:55:00Z\nb\n2025-11-05\n\n\n\n\n\n\n\
             https\n2025-11-05\nb\n\n\n\n\n\n\n"
        );
        assert_eq!(s.split('\n').count(), 26);
    }

    /// The official crate's 28-line string-to-sign of its version: ours with the signed request
    /// headers and query parameters (empty) before `rscc`, and its version.
    fn as_the_crate_signs(ours: &str) -> String {
        let mut lines: Vec<&str> = ours.split('\n').collect();
        assert_eq!(lines[17], SAS_VERSION);
        lines[17] = "2026-04-06";
        lines.splice(21..21, ["", ""]);
        lines.join("\n")
    }

    /// Signed with the same key and fields, the crate's SAS and ours differ only in `sv` and
    /// `sig`, and the crate's signature is ours over its layout: nothing else of ours departs
    /// from the official builder.
    #[test]
    fn matches_the_official_builder_but_for_version_and_layout() {
        let udk = model();
        for (endpoint, protocol, crate_protocol) in [
            (
                "https://acct.blob.core.windows.net",
                "https",
                CrateProtocol::Https,
            ),
            (
                "http://127.0.0.1:10000/acct",
                "https,http",
                CrateProtocol::HttpsAndHttp,
            ),
        ] {
            let key = key_at(endpoint);
            for blob in [
                "a.txt",
                "docs/a b#1é.txt",
                "50%?&=+.txt",
                "dir\\x.txt",
                "😀/ü",
            ] {
                let theirs = SasBuilder::new("acct", &udk, EXPIRY)
                    .unwrap()
                    .start(START)
                    .protocol(crate_protocol)
                    .blob("input", blob)
                    .read()
                    .build();
                let ours = key.read_blob_sas("input", blob, START, EXPIRY).unwrap();
                let (ours_unsigned, ours_sig) = ours.query().rsplit_once("&sig=").unwrap();
                let (theirs_unsigned, theirs_sig) = theirs.rsplit_once("&sig=").unwrap();
                assert_eq!(
                    theirs_unsigned.replacen("sv=2026-04-06", "sv=2025-11-05", 1),
                    ours_unsigned
                );
                let canonical = format!("/blob/acct/input/{}", blob.replace('\\', "/"));
                let mut f = fields(blob, protocol);
                f.canonical_resource = canonical;
                let ours_sts = key.string_to_sign(&f);
                assert_eq!(encode_query_value(&key.value.sign(&ours_sts)), ours_sig);
                assert_eq!(
                    encode_query_value(&key.value.sign(&as_the_crate_signs(&ours_sts))),
                    theirs_sig,
                    "{blob}"
                );
            }
        }
    }

    #[test]
    fn read_only_one_blob_https_only_on_https() {
        let query = |endpoint: &str| {
            key_at(endpoint)
                .read_blob_sas("input", "a.txt", START, EXPIRY)
                .unwrap()
                .query()
                .to_string()
        };
        let https = query("https://acct.blob.core.windows.net/");
        for field in ["sp=r", "sr=b", "spr=https", "sks=b", "sv=2025-11-05"] {
            assert!(https.split('&').any(|p| p == field), "{field} in {https}");
        }
        let http = query("http://127.0.0.1:10000/acct");
        assert!(http.split('&').any(|p| p == "spr=https,http"), "{http}");
    }

    #[test]
    fn the_delegated_tenant_is_signed_when_the_key_has_one() {
        let mut udk = model();
        udk.signed_delegated_user_tid = Some("dtid".into());
        let endpoint = Url::parse("https://acct.blob.core.windows.net").unwrap();
        let key = DelegationKey::new("acct", &endpoint, parts(udk.clone())).unwrap();
        let ours = key.read_blob_sas("c", "b", START, EXPIRY).unwrap();
        let theirs = SasBuilder::new("acct", &udk, EXPIRY)
            .unwrap()
            .start(START)
            .protocol(CrateProtocol::Https)
            .blob("c", "b")
            .read()
            .build();
        assert!(ours.query().contains("&skdutid=dtid&"), "{ours:?}");
        let strip = |q: &str| {
            q.split('&')
                .filter(|p| !p.starts_with("sv=") && !p.starts_with("sig="))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(strip(ours.query()), strip(&theirs));
    }

    #[test]
    fn a_sas_never_outlives_its_key() {
        let key = key();
        let late = key.expiry() + std::time::Duration::from_secs(1);
        assert_eq!(
            key.read_blob_sas("input", "a.txt", START, late),
            Err(DelegationError::OutlivesKey {
                expiry: late,
                key_expiry: key.expiry()
            })
        );
        assert!(
            key.read_blob_sas("input", "a.txt", START, key.expiry())
                .is_ok()
        );
        let err = key
            .read_blob_sas("input", "a.txt", EXPIRY, START)
            .unwrap_err();
        assert!(matches!(err, DelegationError::EmptyWindow { .. }), "{err}");
        assert!(!err.is_transient());
        let err = key
            .read_blob_sas("input", "a.txt", START, START)
            .unwrap_err();
        assert!(matches!(err, DelegationError::EmptyWindow { .. }), "{err}");
    }

    #[test]
    fn an_incomplete_key_is_refused_naming_what_it_lacks() {
        let endpoint = Url::parse("https://acct.blob.core.windows.net").unwrap();
        let mut udk = model();
        udk.signed_oid = None;
        let err = DelegationKey::new("acct", &endpoint, parts(udk)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the user delegation key the service returned lacks SignedOid"
        );
        let mut udk = model();
        udk.value = Some(Vec::new());
        let err = DelegationKey::new("acct", &endpoint, parts(udk)).unwrap_err();
        assert!(err.to_string().contains("empty Value"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_value_nor_signature() {
        let key = key();
        let sas = key.read_blob_sas("input", "a.txt", START, EXPIRY).unwrap();
        let sig = sas.query().rsplit("sig=").next().unwrap().to_string();
        let shown = format!("{key:?} {key:#?} {sas:?} {sas:#?} {:?}", parts(model()));
        assert!(shown.contains("sig=<redacted>"), "{shown}");
        assert!(!shown.contains(&sig), "{shown}");
        let value = STANDARD.encode(VALUE);
        let raw = format!("{:?}", VALUE.to_vec());
        assert!(
            !shown.contains(&value) && !shown.contains("blob2batch delegation"),
            "{shown}"
        );
        assert!(!shown.contains(&raw[1..raw.len() - 1]), "{shown}");
        assert!(shown.contains(OID), "{shown}");
    }

    #[test]
    fn append_to_keeps_the_url_as_given() {
        let sas = DelegationSas {
            query: "sv=1&sig=x".into(),
        };
        let url = "https://acct.blob.core.windows.net/input/docs/a%20b%231%C3%A9.txt";
        assert_eq!(sas.append_to(url), format!("{url}?sv=1&sig=x"));
        assert_eq!(
            sas.append_to("https://h/c/b?versionid=1"),
            "https://h/c/b?versionid=1&sv=1&sig=x"
        );
        assert_eq!(sas.append_to("https://h/c/b?"), "https://h/c/b?sv=1&sig=x");
    }
}
