//! User delegation SAS (https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas):
//! read-only SAS URLs for one blob where no account key is configured. The key that signs them
//! comes from the service (Get User Delegation Key) in exchange for the process's Entra ID token
//! and lasts at most [`MAX_DELEGATION_LIFETIME`]; [`DelegationKeys`] keeps one and asks for the
//! next only when a caller needs more than what is left of it.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Transport, Url,
};
use azure_storage_blob::models::KeyInfo;
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use super::sas::{SAS_VERSION, format_sas_time, redact_sas};
use super::url::encode_query_value;
use crate::account_key::AccountKey;
use crate::error_chain::error_chain;
use crate::sync::lock;

/// The longest a user delegation key may last (a service limit), so the longest any SAS signed
/// with one can.
pub const MAX_DELEGATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a workload's time (queue plus run) must leave of [`MAX_DELEGATION_LIFETIME`]: the
/// longest lifetime [`DelegationKeys::key_for`] accepts is the difference.
///
/// It must cover the clock-skew allowance cut from each key's end and the slack asked beyond a
/// caller's lifetime (ten minutes together). What is left decides how long a key serves callers
/// that ask for the longest lifetime: with an hour, a fresh key serves them for fifty minutes,
/// so even then the service sees one key request every fifty minutes, not one per task.
pub(crate) const DELEGATION_MARGIN: Duration = Duration::from_secs(3600);

/// Our clock may differ from the service's: a key starts this long before now, and ends this
/// long short of the limit, so that the service neither finds its start in the future nor its
/// end beyond seven days.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// A key handed out must outlast the asked lifetime by this much: a caller signs after
/// `key_for` returns, and counts its SAS's expiry from then.
const SIGNING_SLACK: Duration = Duration::from_secs(300);

const _: () = assert!(
    DELEGATION_MARGIN.as_secs() >= CLOCK_SKEW.as_secs() + SIGNING_SLACK.as_secs(),
    "a fresh key must cover the longest lifetime key_for accepts"
);

/// The longest lifetime [`DelegationKeys::key_for`] accepts.
pub(crate) const LONGEST_DELEGATED_LIFETIME: Duration =
    Duration::from_secs(MAX_DELEGATION_LIFETIME.as_secs() - DELEGATION_MARGIN.as_secs());

/// Why no key or no SAS. Messages name the cause and never hold a key, token or signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    /// The blob endpoint cannot give keys (they are only given over https).
    #[error("no user delegation key from {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    /// The lifetime asked for is longer than any key can serve.
    #[error(
        "a user delegation SAS lasts at most {} s (seven days less a margin of {} s); {} s asked",
        LONGEST_DELEGATED_LIFETIME.as_secs(),
        DELEGATION_MARGIN.as_secs(),
        asked.as_secs()
    )]
    LifetimeTooLong { asked: Duration },
    /// The key request failed: storage unreachable, or an error answer (403 while the identity
    /// lacks a role that allows `generateUserDelegationKey`).
    #[error("getting a user delegation key failed{}: {message}", status_and_code(*status, code.as_deref()))]
    Service {
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    /// The key request, retries included, did not end within the retry budget.
    #[error("getting a user delegation key: no answer within {} s, retries included", budget.as_secs())]
    Timeout { budget: Duration },
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
    /// Whether trying again later may succeed: the service failed or was not reached, as
    /// opposed to a setting or a request that no retry can satisfy.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DelegationError::Service { .. }
                | DelegationError::Timeout { .. }
                | DelegationError::UnusableKey { .. }
        )
    }

    fn service(err: azure_core::Error) -> Self {
        let status = err.http_status().map(u16::from);
        let code = match err.kind() {
            azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
            _ => None,
        };
        DelegationError::Service {
            status,
            code,
            message: redact_sas(&error_chain(&err)),
        }
    }

    fn unusable(problem: impl Into<String>) -> Self {
        DelegationError::UnusableKey {
            problem: problem.into(),
        }
    }
}

fn status_and_code(status: Option<u16>, code: Option<&str>) -> String {
    match (status, code) {
        (Some(status), Some(code)) => format!(" ({status} {code})"),
        (Some(status), None) => format!(" ({status})"),
        _ => String::new(),
    }
}

/// How [`DelegationKeys`] reaches the service.
#[derive(Clone)]
pub struct DelegationKeysOptions {
    /// The longest one key request may take, retries included (`STORAGE_RETRY_BUDGET`).
    pub retry_budget: Duration,
    /// Where requests go instead of the SDK's own HTTP client: in tests, one that trusts a test
    /// certificate or counts requests. `None` in production.
    pub transport: Option<Transport>,
}

impl DelegationKeysOptions {
    pub fn new(retry_budget: Duration) -> Self {
        DelegationKeysOptions {
            retry_budget,
            transport: None,
        }
    }
}

impl fmt::Debug for DelegationKeysOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationKeysOptions")
            .field("retry_budget", &self.retry_budget)
            .field("custom_transport", &self.transport.is_some())
            .finish()
    }
}

/// The user delegation keys of one account, as the process's identity obtains them: one kept,
/// shared by every caller it covers, replaced when a caller needs more than is left of it.
pub struct DelegationKeys {
    account: String,
    endpoint: Url,
    budget: Duration,
    client: BlobServiceClient,
    current: Mutex<Option<Arc<DelegationKey>>>,
    /// Held while a key is fetched, so that callers who arrive meanwhile wait for that fetch
    /// instead of starting their own; holds the last fetch's failure, which they share.
    fetching: tokio::sync::Mutex<Option<DelegationError>>,
    /// Completed fetches: a caller that saw one complete while it waited takes its outcome.
    fetches: AtomicU64,
}

impl fmt::Debug for DelegationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = lock(&self.current)
            .as_ref()
            .map(|key| format_sas_time(key.expiry));
        f.debug_struct("DelegationKeys")
            .field("account", &self.account)
            .field("endpoint", &redact_sas(self.endpoint.as_str()))
            .field("retry_budget", &self.budget)
            .field("current_key_expiry", &current)
            .finish()
    }
}

impl DelegationKeys {
    /// Keys of `account` from its blob endpoint `endpoint` (https), obtained with tokens from
    /// `credential`. Asks for nothing yet.
    pub fn new(
        endpoint: &Url,
        account: &str,
        credential: Arc<dyn TokenCredential>,
        options: DelegationKeysOptions,
    ) -> Result<DelegationKeys, DelegationError> {
        let refused = |reason: String| DelegationError::Endpoint {
            endpoint: redact_sas(endpoint.as_str()),
            reason: redact_sas(&reason),
        };
        if endpoint.scheme() != "https" {
            return Err(refused("keys are only given over https".into()));
        }
        let client_options = BlobServiceClientOptions {
            client_options: client_options(options.retry_budget, options.transport),
            // The key's version (skv) matches the SAS's, and Azurite 3.35.0 knows it.
            version: SAS_VERSION.to_string(),
        };
        let client =
            BlobServiceClient::new(endpoint.clone(), Some(credential), Some(client_options))
                .map_err(|e| refused(error_chain(&e)))?;
        Ok(DelegationKeys {
            account: account.to_string(),
            endpoint: endpoint.clone(),
            budget: options.retry_budget,
            client,
            current: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// A key valid for at least `lifetime` from now (plus a few minutes of slack): the kept
    /// one when it lasts that long, else a new one valid for the longest a key may be.
    /// Callers arriving while a key is fetched share that fetch, and its failure.
    pub async fn key_for(&self, lifetime: Duration) -> Result<Arc<DelegationKey>, DelegationError> {
        if lifetime > LONGEST_DELEGATED_LIFETIME {
            return Err(DelegationError::LifetimeTooLong { asked: lifetime });
        }
        let needed = |now: OffsetDateTime| now + lifetime + SIGNING_SLACK;
        if let Some(key) = self.current_until(needed(OffsetDateTime::now_utc())) {
            return Ok(key);
        }
        let seen = self.fetches.load(Ordering::Acquire);
        let mut last_failure = self.fetching.lock().await;
        let until = needed(OffsetDateTime::now_utc());
        if let Some(key) = self.current_until(until) {
            return Ok(key);
        }
        if self.fetches.load(Ordering::Acquire) != seen
            && let Some(failure) = last_failure.as_ref()
        {
            return Err(failure.clone());
        }
        let fetched = self.fetch(until).await;
        self.fetches.fetch_add(1, Ordering::Release);
        match &fetched {
            Ok(key) => {
                *lock(&self.current) = Some(key.clone());
                *last_failure = None;
            }
            Err(failure) => *last_failure = Some(failure.clone()),
        }
        fetched
    }

    fn current_until(&self, until: OffsetDateTime) -> Option<Arc<DelegationKey>> {
        lock(&self.current)
            .as_ref()
            .filter(|key| key.expiry >= until)
            .cloned()
    }

    /// Asks the service for a key valid from a little before now for as long as allowed, and
    /// checks that it lasts until `until`.
    async fn fetch(&self, until: OffsetDateTime) -> Result<Arc<DelegationKey>, DelegationError> {
        // Whole seconds: the service signs the times as sent, and the SAS carries them in whole
        // seconds, which must be the same text.
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond");
        let info = KeyInfo {
            start: Some(now - CLOCK_SKEW),
            expiry: Some(now + MAX_DELEGATION_LIFETIME - CLOCK_SKEW),
            ..Default::default()
        };
        let request = RequestContent::try_from(info).map_err(DelegationError::service)?;
        let call = self.client.get_user_delegation_key(request, None);
        let answer = tokio::time::timeout(self.budget, call)
            .await
            .map_err(|_| DelegationError::Timeout {
                budget: self.budget,
            })?
            .map_err(DelegationError::service)?;
        let model = answer.into_model().map_err(DelegationError::service)?;
        let parts = DelegationKeyParts {
            signed_oid: model.signed_oid,
            signed_tid: model.signed_tid,
            signed_start: model.signed_start,
            signed_expiry: model.signed_expiry,
            signed_service: model.signed_service,
            signed_version: model.signed_version,
            signed_delegated_user_tid: model.signed_delegated_user_tid,
            value: model.value,
        };
        let key = DelegationKey::new(&self.account, &self.endpoint, parts)?;
        if key.expiry < until {
            return Err(DelegationError::unusable(format!(
                "expires at {}, before {} as needed",
                format_sas_time(key.expiry),
                format_sas_time(until)
            )));
        }
        Ok(Arc::new(key))
    }
}

/// The SDK stops retrying at half the budget, so that its last answer (not our timeout) is
/// what a failure reports.
fn client_options(budget: Duration, transport: Option<Transport>) -> ClientOptions {
    let retries_end = azure_core::time::Duration::try_from(budget / 2)
        .unwrap_or(azure_core::time::Duration::seconds(15));
    ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            max_total_elapsed: retries_end,
            ..Default::default()
        }),
        transport,
        ..Default::default()
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
            // Backslashes as slashes, as azure_storage_sas signs blob names.
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
        let late = key.expiry() + Duration::from_secs(1);
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

    mod cache {
        use super::*;
        use azure_core::credentials::{AccessToken, TokenRequestOptions};
        use azure_core::http::headers::{HeaderName, Headers};
        use azure_core::http::{AsyncRawResponse, Body, HttpClient, Request, StatusCode};
        use std::collections::VecDeque;

        /// A token credential with a fixed token, which no message may show.
        #[derive(Debug)]
        struct FixedToken;

        const TOKEN: &str = "fixed-test-token-c2VjcmV0";

        #[async_trait::async_trait]
        impl TokenCredential for FixedToken {
            async fn get_token(
                &self,
                _scopes: &[&str],
                _options: Option<TokenRequestOptions<'_>>,
            ) -> azure_core::Result<AccessToken> {
                Ok(AccessToken::new(
                    TOKEN,
                    OffsetDateTime::now_utc() + Duration::from_secs(3600),
                ))
            }
        }

        /// How the fake service answers one request.
        #[derive(Debug, Clone, Copy)]
        enum Answer {
            /// The key asked for.
            AsAsked,
            /// A key that ends this long after now, whatever was asked.
            EndingIn(Duration),
            /// An error status.
            Status(u16),
            /// Nothing, ever.
            Never,
        }

        #[derive(Debug)]
        struct Seen {
            method: String,
            url: String,
            version: Option<String>,
            authorization: Option<String>,
            body: String,
        }

        /// Get User Delegation Key as the service answers it. Requests wait for a permit of
        /// `gate` when there is one, so that callers can pile up behind a fetch.
        #[derive(Debug, Default)]
        struct FakeService {
            answers: Mutex<VecDeque<Answer>>,
            seen: Mutex<Vec<Seen>>,
            gate: Option<tokio::sync::Semaphore>,
        }

        fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
            let from = text.find(open).expect(open) + open.len();
            &text[from..from + text[from..].find(close).expect(close)]
        }

        fn key_xml(start: &str, expiry: &str) -> String {
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey>\
                 <SignedOid>{OID}</SignedOid><SignedTid>{TID}</SignedTid>\
                 <SignedStart>{start}</SignedStart><SignedExpiry>{expiry}</SignedExpiry>\
                 <SignedService>b</SignedService><SignedVersion>2025-11-05</SignedVersion>\
                 <Value>{}</Value></UserDelegationKey>",
                STANDARD.encode(VALUE)
            )
        }

        #[async_trait::async_trait]
        impl HttpClient for FakeService {
            async fn execute_request(
                &self,
                request: &Request,
            ) -> azure_core::Result<AsyncRawResponse> {
                let header = |name: &'static str| {
                    request
                        .headers()
                        .get_optional_string(&HeaderName::from_static(name))
                };
                let body = match request.body() {
                    Body::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
                    Body::SeekableStream(_) => panic!("a key request has a small body"),
                };
                lock(&self.seen).push(Seen {
                    method: request.method().to_string(),
                    url: request.url().to_string(),
                    version: header("x-ms-version"),
                    authorization: header("authorization"),
                    body: body.clone(),
                });
                if let Some(gate) = &self.gate {
                    gate.acquire().await.unwrap().forget();
                }
                let answer = lock(&self.answers).pop_front().unwrap_or(Answer::AsAsked);
                let (status, xml) = match answer {
                    Answer::AsAsked => (
                        200,
                        key_xml(
                            between(&body, "<Start>", "</Start>"),
                            between(&body, "<Expiry>", "</Expiry>"),
                        ),
                    ),
                    Answer::EndingIn(left) => {
                        let now = OffsetDateTime::now_utc();
                        let xml = key_xml(
                            &format_sas_time(now - CLOCK_SKEW),
                            &format_sas_time(now + left),
                        );
                        (200, xml)
                    }
                    Answer::Status(status) => (
                        status,
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>\
                         <Code>AuthorizationPermissionMismatch</Code>\
                         <Message>This request is not authorized to perform this operation using \
                         this permission.</Message></Error>"
                            .to_string(),
                    ),
                    Answer::Never => std::future::pending().await,
                };
                let mut headers = Headers::new();
                headers.insert("content-type", "application/xml");
                if status != 200 {
                    headers.insert("x-ms-error-code", "AuthorizationPermissionMismatch");
                }
                Ok(AsyncRawResponse::from_bytes(
                    StatusCode::from(status),
                    headers,
                    xml,
                ))
            }
        }

        fn keys_with(service: Arc<FakeService>) -> DelegationKeys {
            let mut options = DelegationKeysOptions::new(Duration::from_secs(10));
            options.transport = Some(Transport::new(service));
            DelegationKeys::new(
                &Url::parse("https://acct.blob.core.windows.net").unwrap(),
                "acct",
                Arc::new(FixedToken),
                options,
            )
            .unwrap()
        }

        fn service(answers: &[Answer]) -> Arc<FakeService> {
            Arc::new(FakeService {
                answers: Mutex::new(answers.iter().copied().collect()),
                ..FakeService::default()
            })
        }

        const DAY: Duration = Duration::from_secs(24 * 3600);

        #[tokio::test]
        async fn one_request_for_a_seven_day_key_then_reuse() {
            let service = service(&[]);
            let keys = keys_with(service.clone());
            let first = keys.key_for(Duration::from_secs(3600)).await.unwrap();
            let longer = keys.key_for(6 * DAY).await.unwrap();
            let shorter = keys.key_for(Duration::from_secs(60)).await.unwrap();
            assert!(Arc::ptr_eq(&first, &longer) && Arc::ptr_eq(&first, &shorter));
            let seen = lock(&service.seen);
            assert_eq!(seen.len(), 1, "{seen:?}");
            let request = &seen[0];
            assert_eq!(request.method, "POST");
            assert_eq!(
                request.url,
                "https://acct.blob.core.windows.net/?comp=userdelegationkey&restype=service"
            );
            assert_eq!(request.version.as_deref(), Some(SAS_VERSION));
            assert_eq!(
                request.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            let parse = |tag: &str| {
                let close = tag.replace('<', "</");
                OffsetDateTime::parse(
                    between(&request.body, tag, &close),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap()
            };
            let (start, expiry) = (parse("<Start>"), parse("<Expiry>"));
            assert_eq!(expiry - start, MAX_DELEGATION_LIFETIME);
            assert!(start < OffsetDateTime::now_utc());
            assert_eq!((first.start(), first.expiry()), (start, expiry));
        }

        #[tokio::test]
        async fn a_new_key_when_the_kept_one_ends_too_soon() {
            let service = service(&[Answer::EndingIn(2 * DAY)]);
            let keys = keys_with(service.clone());
            let short = keys.key_for(DAY).await.unwrap();
            assert!(Arc::ptr_eq(&short, &keys.key_for(DAY).await.unwrap()));
            assert_eq!(lock(&service.seen).len(), 1);
            let renewed = keys.key_for(3 * DAY).await.unwrap();
            assert!(!Arc::ptr_eq(&short, &renewed));
            assert!(renewed.expiry() > short.expiry() + 4 * DAY);
            assert_eq!(lock(&service.seen).len(), 2);
            assert!(Arc::ptr_eq(&renewed, &keys.key_for(DAY).await.unwrap()));
            assert_eq!(lock(&service.seen).len(), 2);
        }

        #[tokio::test]
        async fn a_key_shorter_than_needed_is_refused() {
            let service = service(&[Answer::EndingIn(DAY)]);
            let keys = keys_with(service);
            let err = keys.key_for(2 * DAY).await.unwrap_err();
            assert!(matches!(err, DelegationError::UnusableKey { .. }), "{err}");
            assert!(err.is_transient());
        }

        /// Callers that arrive while a key is fetched wait for that fetch: one request, one
        /// key for all; and when it fails, one failure for all.
        #[tokio::test]
        async fn concurrent_callers_share_one_fetch_and_its_failure() {
            for answer in [Answer::AsAsked, Answer::Status(403)] {
                let service = Arc::new(FakeService {
                    answers: Mutex::new([answer].into()),
                    gate: Some(tokio::sync::Semaphore::new(0)),
                    ..FakeService::default()
                });
                let keys = Arc::new(keys_with(service.clone()));
                let callers: Vec<_> = (0..8)
                    .map(|i| {
                        let keys = keys.clone();
                        tokio::spawn(async move { keys.key_for(DAY + i * DAY / 8).await })
                    })
                    .collect();
                while lock(&service.seen).is_empty() {
                    tokio::task::yield_now().await;
                }
                for _ in 0..32 {
                    tokio::task::yield_now().await;
                }
                service.gate.as_ref().unwrap().add_permits(8);
                let mut results = Vec::new();
                for caller in callers {
                    results.push(caller.await.unwrap());
                }
                assert_eq!(lock(&service.seen).len(), 1, "{answer:?}");
                match answer {
                    Answer::AsAsked => {
                        let first = results[0].as_ref().unwrap();
                        assert!(
                            results
                                .iter()
                                .all(|r| Arc::ptr_eq(r.as_ref().unwrap(), first))
                        );
                    }
                    _ => assert!(results.iter().all(|r| matches!(
                        r,
                        Err(DelegationError::Service {
                            status: Some(403),
                            ..
                        })
                    ))),
                }
            }
        }

        #[tokio::test]
        async fn a_refusal_is_transient_and_names_the_status_without_the_token() {
            let service = service(&[Answer::Status(403)]);
            let keys = keys_with(service.clone());
            let err = keys.key_for(DAY).await.unwrap_err();
            assert!(err.is_transient(), "{err}");
            assert!(
                matches!(&err, DelegationError::Service { status: Some(403), code: Some(code), .. } if code == "AuthorizationPermissionMismatch"),
                "{err:?}"
            );
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("403"), "{shown}");
            assert!(!shown.contains(TOKEN), "{shown}");
            // A failure is not kept: the next caller asks again.
            keys.key_for(DAY).await.unwrap();
            assert_eq!(lock(&service.seen).len(), 2);
        }

        #[tokio::test]
        async fn a_lifetime_no_key_can_serve_is_refused_without_asking() {
            let service = service(&[]);
            let keys = keys_with(service.clone());
            for asked in [
                LONGEST_DELEGATED_LIFETIME + Duration::from_secs(1),
                MAX_DELEGATION_LIFETIME,
                8 * DAY,
            ] {
                let err = keys.key_for(asked).await.unwrap_err();
                assert_eq!(err, DelegationError::LifetimeTooLong { asked });
                assert!(!err.is_transient());
            }
            assert!(lock(&service.seen).is_empty());
            keys.key_for(LONGEST_DELEGATED_LIFETIME).await.unwrap();
            assert_eq!(lock(&service.seen).len(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn a_fetch_ends_with_the_retry_budget() {
            let service = service(&[Answer::Never]);
            let keys = keys_with(service);
            let err = keys.key_for(DAY).await.unwrap_err();
            assert_eq!(
                err,
                DelegationError::Timeout {
                    budget: Duration::from_secs(10)
                }
            );
            assert!(err.is_transient());
        }

        #[test]
        fn keys_are_only_asked_for_over_https() {
            let options = DelegationKeysOptions::new(Duration::from_secs(10));
            let err = DelegationKeys::new(
                &Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
                "devstoreaccount1",
                Arc::new(FixedToken),
                options,
            )
            .unwrap_err();
            assert!(matches!(err, DelegationError::Endpoint { .. }), "{err}");
            assert!(!err.is_transient());
        }

        #[tokio::test]
        async fn debug_shows_no_key_value() {
            let keys = keys_with(service(&[]));
            keys.key_for(DAY).await.unwrap();
            let shown = format!("{keys:?}");
            assert!(shown.contains("current_key_expiry: Some("), "{shown}");
            assert!(!shown.contains(&STANDARD.encode(VALUE)), "{shown}");
            assert!(!shown.contains(TOKEN), "{shown}");
        }
    }

    #[test]
    fn the_margin_leaves_the_longest_lifetime_to_a_fresh_key() {
        assert_eq!(MAX_DELEGATION_LIFETIME, Duration::from_secs(604_800));
        assert_eq!(
            LONGEST_DELEGATED_LIFETIME + DELEGATION_MARGIN,
            MAX_DELEGATION_LIFETIME
        );
        assert!(LONGEST_DELEGATED_LIFETIME + SIGNING_SLACK <= MAX_DELEGATION_LIFETIME - CLOCK_SKEW);
    }
}
