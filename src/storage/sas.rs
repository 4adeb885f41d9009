//! Service SAS signing (https://learn.microsoft.com/rest/api/storageservices/create-service-sas).
//!
//! The official Rust crates only build user-delegation SAS, so the service SAS (signed with the
//! account key) is written here. Signed version [`SAS_VERSION`] uses the 16-line string-to-sign of
//! versions 2020-12-06 and later:
//!
//! ```text
//! sp \n st \n se \n /blob/{account}/{container}[/{blob}] \n si \n sip \n spr \n sv \n sr \n
//! snapshot \n ses \n rscc \n rscd \n rsce \n rscl \n rsct
//! ```
//!
//! The canonicalized resource holds the raw (decoded) blob name; the query string holds
//! percent-encoded values.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::key::StorageAccountKey;
use super::url::encode_query_value;

/// The signed version (`sv`). Azurite 3.35.0 accepts it; later versions change other SAS layouts.
pub(crate) const SAS_VERSION: &str = "2025-11-05";

/// What the SAS grants access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SasResource<'a> {
    /// One blob; `blob` is the raw blob name (not percent-encoded).
    Blob { container: &'a str, blob: &'a str },
    /// A container and every blob in it.
    Container { container: &'a str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SasProtocol {
    Https,
    HttpsAndHttp,
}

impl SasProtocol {
    fn as_str(self) -> &'static str {
        match self {
            SasProtocol::Https => "https",
            SasProtocol::HttpsAndHttp => "https,http",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SasOptions {
    /// In the service's canonical order (`racwdxltmeop`), e.g. `"r"`, `"cw"`, `"rl"`, `"racwdl"`.
    pub permissions: String,
    pub start: Option<OffsetDateTime>,
    pub expiry: OffsetDateTime,
    pub protocol: SasProtocol,
}

/// A SAS token: the query string (without `?`), values percent-encoded. `Debug` hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    query: String,
}

impl SasToken {
    pub fn query(&self) -> &str {
        &self.query
    }

    /// `url` with this token appended (`?` or `&` as needed).
    pub fn append_to(&self, url: &str) -> String {
        let sep = if url.contains('?') {
            if url.ends_with('?') || url.ends_with('&') {
                ""
            } else {
                "&"
            }
        } else {
            "?"
        };
        format!("{url}{sep}{}", self.query)
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SasToken")
            .field(&redact_sas(&self.query))
            .finish()
    }
}

/// Replaces the value of every `sig` parameter in a URL or query string with `<redacted>`.
pub(crate) fn redact_sas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_sig(rest) {
        let value_start = pos + "sig=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("<redacted>");
        let tail = &rest[value_start..];
        let end = tail
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_sig(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("sig=") {
        let at = from + i;
        if at == 0 || matches!(text.as_bytes()[at - 1], b'?' | b'&') {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// `2025-01-02T03:04:05Z`: whole seconds, UTC, as the service expects.
pub(crate) fn format_sas_time(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    t.format(&Rfc3339).expect("a UTC time formats as RFC 3339")
}

/// The string-to-sign of a service SAS for [`SAS_VERSION`].
fn string_to_sign(account: &str, resource: SasResource<'_>, options: &SasOptions) -> String {
    let (canonical, sr) = match resource {
        SasResource::Blob { container, blob } => {
            (format!("/blob/{account}/{container}/{blob}"), "b")
        }
        SasResource::Container { container } => (format!("/blob/{account}/{container}"), "c"),
    };
    ServiceFields {
        permissions: &options.permissions,
        start: &options.start.map(format_sas_time).unwrap_or_default(),
        expiry: &format_sas_time(options.expiry),
        canonical_resource: &canonical,
        protocol: options.protocol.as_str(),
        version: SAS_VERSION,
        resource: sr,
    }
    .string_to_sign()
}

/// The signed fields of a service SAS that blob2batch sets; the others are signed empty.
struct ServiceFields<'a> {
    permissions: &'a str,
    start: &'a str,
    expiry: &'a str,
    canonical_resource: &'a str,
    protocol: &'a str,
    version: &'a str,
    resource: &'a str,
}

impl ServiceFields<'_> {
    /// The 16-line layout of signed versions 2020-12-06 and later.
    fn string_to_sign(&self) -> String {
        [
            self.permissions,
            self.start,
            self.expiry,
            self.canonical_resource,
            "", // signed identifier
            "", // signed IP
            self.protocol,
            self.version,
            self.resource,
            "", // snapshot time
            "", // encryption scope
            "", // rscc
            "", // rscd
            "", // rsce
            "", // rscl
            "", // rsct
        ]
        .join("\n")
    }
}

/// The string-to-sign of an account SAS (blob service) for [`SAS_VERSION`]:
/// `account \n sp \n ss \n srt \n st \n se \n sip \n spr \n sv \n ses \n`
fn account_string_to_sign(account: &str, resource_types: &str, options: &SasOptions) -> String {
    let start = options.start.map(format_sas_time).unwrap_or_default();
    [
        account,
        options.permissions.as_str(),
        "b",
        resource_types,
        &start,
        &format_sas_time(options.expiry),
        "",
        options.protocol.as_str(),
        SAS_VERSION,
        "",
        "",
    ]
    .join("\n")
}

impl StorageAccountKey {
    /// Signs an account SAS for the blob service. `resource_types` is a subset of `sco` (service,
    /// container, object). Needed for what a service SAS cannot do, such as creating a container;
    /// tasks only ever get service SAS.
    pub(crate) fn account_sas(&self, resource_types: &str, options: &SasOptions) -> SasToken {
        let signature = self.sign(&account_string_to_sign(
            self.account(),
            resource_types,
            options,
        ));
        let mut pairs: Vec<(&str, String)> = vec![
            ("sv", SAS_VERSION.to_string()),
            ("ss", "b".to_string()),
            ("srt", resource_types.to_string()),
            ("sp", options.permissions.clone()),
        ];
        if let Some(start) = options.start {
            pairs.push(("st", format_sas_time(start)));
        }
        pairs.push(("se", format_sas_time(options.expiry)));
        pairs.push(("spr", options.protocol.as_str().to_string()));
        pairs.push(("sig", signature));
        SasToken {
            query: encode_pairs(&pairs),
        }
    }

    /// Signs a service SAS for `resource` with this account key.
    pub fn service_sas(&self, resource: SasResource<'_>, options: &SasOptions) -> SasToken {
        let signature = self.sign(&string_to_sign(self.account(), resource, options));
        let sr = match resource {
            SasResource::Blob { .. } => "b",
            SasResource::Container { .. } => "c",
        };
        let mut pairs: Vec<(&str, String)> = vec![("sv", SAS_VERSION.to_string())];
        if let Some(start) = options.start {
            pairs.push(("st", format_sas_time(start)));
        }
        pairs.push(("se", format_sas_time(options.expiry)));
        pairs.push(("sr", sr.to_string()));
        pairs.push(("sp", options.permissions.clone()));
        pairs.push(("spr", options.protocol.as_str().to_string()));
        pairs.push(("sig", signature));
        SasToken {
            query: encode_pairs(&pairs),
        }
    }
}

fn encode_pairs(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::azurite::{WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};
    use time::macros::datetime;

    fn options(permissions: &str) -> SasOptions {
        SasOptions {
            permissions: permissions.into(),
            start: Some(datetime!(2026-03-14 09:00:00.123 UTC)),
            expiry: datetime!(2026-03-14 10:30:00 +01:00),
            protocol: SasProtocol::HttpsAndHttp,
        }
    }

    #[test]
    fn blob_string_to_sign_has_the_16_line_layout() {
        let s = string_to_sign(
            "acct",
            SasResource::Blob {
                container: "input",
                blob: "docs/a b#1%.txt",
            },
            &options("r"),
        );
        assert_eq!(
            s,
            "r\n2026-03-14T09:00:00Z\n2026-03-14T09:30:00Z\n/blob/acct/input/docs/a b#1%.txt\n\n\n\
             https,http\n2025-11-05\nb\n\n\n\n\n\n\n"
        );
        assert_eq!(s.split('\n').count(), 16);
    }

    /// A published known answer: the service SAS test of the Azure SDK for Rust (`legacy` branch,
    /// `sdk/storage/src/shared_access_signature/service_sas.rs`, `test_blob_scoped_sas_token`),
    /// signed version 2022-11-02 with the same 16-line layout as ours.
    #[test]
    fn reproduces_the_azure_sdk_service_sas_vector() {
        let key = StorageAccountKey::from_base64(
            "STORAGE_ACCOUNT_NAME",
            "RZfi3m1W7eyQ5zD4ymSmGANVdJ2SDQmg4sE89SW104s=",
        )
        .unwrap();
        let fields = ServiceFields {
            permissions: "r",
            start: "",
            expiry: &format_sas_time(datetime!(1970-01-08 00:00:00 UTC)),
            canonical_resource: "/blob/STORAGE_ACCOUNT_NAME/CONTAINER_NAME/",
            protocol: "",
            version: "2022-11-02",
            resource: "b",
        };
        let signature = key.sign(&fields.string_to_sign());
        assert_eq!(signature, "VRZjVZ1c/Lz7IXCp17Sdx9+R9JDrnJdzE3NW56DMjNs=");
        assert_eq!(
            encode_query_value(&signature),
            "VRZjVZ1c%2FLz7IXCp17Sdx9%2BR9JDrnJdzE3NW56DMjNs%3D"
        );
        // The same fields through the production path: only the version differs.
        let ours = string_to_sign(
            "STORAGE_ACCOUNT_NAME",
            SasResource::Blob {
                container: "CONTAINER_NAME",
                blob: "",
            },
            &SasOptions {
                permissions: "r".into(),
                start: None,
                expiry: datetime!(1970-01-08 00:00:00 UTC),
                protocol: SasProtocol::Https,
            },
        );
        assert_eq!(
            ours,
            fields
                .string_to_sign()
                .replacen("\n\n2022-11-02", "\nhttps\n2025-11-05", 1)
        );
    }

    #[test]
    fn container_string_to_sign() {
        let mut o = options("cw");
        o.start = None;
        o.protocol = SasProtocol::Https;
        let s = string_to_sign(
            "acct",
            SasResource::Container {
                container: "output",
            },
            &o,
        );
        assert_eq!(
            s,
            "cw\n\n2026-03-14T09:30:00Z\n/blob/acct/output\n\n\nhttps\n2025-11-05\nc\n\n\n\n\n\n\n"
        );
    }

    #[test]
    fn account_string_to_sign_layout() {
        let s = account_string_to_sign("acct", "sco", &options("racwdl"));
        assert_eq!(
            s,
            "acct\nracwdl\nb\nsco\n2026-03-14T09:00:00Z\n2026-03-14T09:30:00Z\n\nhttps,http\n2025-11-05\n\n"
        );
    }

    #[test]
    fn token_query_is_encoded_and_signed() {
        let key = StorageAccountKey::from_base64(WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY).unwrap();
        let resource = SasResource::Blob {
            container: "input",
            blob: "a b.txt",
        };
        let token = key.service_sas(resource, &options("r"));
        let expected_sig = key.sign(&string_to_sign(WELL_KNOWN_ACCOUNT, resource, &options("r")));
        let expected_sig = encode_query_value(&expected_sig);
        assert_eq!(
            token.query(),
            format!(
                "sv=2025-11-05&st=2026-03-14T09%3A00%3A00Z&se=2026-03-14T09%3A30%3A00Z&sr=b&sp=r\
                 &spr=https%2Chttp&sig={expected_sig}"
            )
        );
        assert!(!token.query().contains('+') && !token.query().contains('/'));
    }

    #[test]
    fn debug_redacts_the_signature() {
        let key = StorageAccountKey::from_base64(WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY).unwrap();
        let token = key.service_sas(SasResource::Container { container: "c" }, &options("rl"));
        let sig = token.query().rsplit("sig=").next().unwrap().to_string();
        let shown = format!("{token:?}");
        assert!(shown.contains("sig=<redacted>"), "{shown}");
        assert!(!shown.contains(&sig), "{shown}");
    }

    #[test]
    fn append_to_picks_the_separator() {
        let token = SasToken {
            query: "sv=1&sig=x".into(),
        };
        assert_eq!(token.append_to("http://h/c/b"), "http://h/c/b?sv=1&sig=x");
        assert_eq!(
            token.append_to("http://h/c?restype=container"),
            "http://h/c?restype=container&sv=1&sig=x"
        );
        assert_eq!(token.append_to("http://h/c?"), "http://h/c?sv=1&sig=x");
    }

    #[test]
    fn redact_sas_handles_urls_and_text() {
        assert_eq!(
            redact_sas("GET http://h/c/b?sv=1&sig=abc%2B%3D&x=1 and sig=zzz ?sig=q"),
            "GET http://h/c/b?sv=1&sig=<redacted>&x=1 and sig=zzz ?sig=<redacted>"
        );
    }
}
