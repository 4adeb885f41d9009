//! Shared Key signing of Batch requests.
//!
//! `Authorization: SharedKey {account}:{Base64(HMAC-SHA256(Base64Decode(key), StringToSign))}`, with
//! the StringToSign built from the request exactly as it goes on the wire. Two regression vectors
//! (reproduced byte for byte by the Python SDK's policy) pin the format in the tests below.

use std::fmt;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::error::BatchConfigError;
use crate::account_key::AccountKey;

/// The standard headers of the StringToSign, in order, after the verb.
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// Signs requests with an account's key. The decoded key never leaves this type.
#[derive(Clone)]
pub(crate) struct SharedKeySigner {
    account: String,
    key: AccountKey,
}

impl fmt::Debug for SharedKeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeySigner")
            .field("account", &self.account)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SharedKeySigner {
    pub(crate) fn new(account: &str, key: AccountKey) -> Result<Self, BatchConfigError> {
        if account.trim().is_empty() {
            return Err(BatchConfigError::EmptyAccountName);
        }
        Ok(SharedKeySigner {
            account: account.to_string(),
            key,
        })
    }

    /// The `Authorization` value for a request whose headers are final (Content-Type,
    /// Content-Length and `ocp-date` included). Marked sensitive so that HTTP layers that print
    /// headers redact it.
    pub(crate) fn authorization(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
    ) -> HeaderValue {
        let signature = self
            .key
            .sign(&string_to_sign(&self.account, method, url, headers));
        let mut value = HeaderValue::try_from(format!("SharedKey {}:{signature}", self.account))
            .expect("account names and base64 are valid header text");
        value.set_sensitive(true);
        value
    }
}

/// The StringToSign of the Batch Shared Key scheme.
pub(crate) fn string_to_sign(
    account: &str,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method.as_str());
    out.push('\n');
    let has_ocp_date = headers.contains_key("ocp-date");
    for name in SIGNED_HEADERS {
        // `ocp-date` replaces `Date`, which is then signed as an empty line.
        if !(name == "date" && has_ocp_date)
            && let Some(value) = headers.get(name)
        {
            out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        out.push('\n');
    }
    canonicalized_headers(headers, &mut out);
    canonicalized_resource(account, url, &mut out);
    out
}

fn canonicalized_headers(headers: &HeaderMap, out: &mut String) {
    // HeaderMap names are already lower case.
    let mut names: Vec<&str> = headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| n.starts_with("ocp-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
}

fn canonicalized_resource(account: &str, url: &Url, out: &mut String) {
    out.push('/');
    out.push_str(account);
    // The path exactly as sent, percent-encoding included.
    out.push_str(url.path());
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| (name.to_lowercase(), value.into_owned()))
        .collect();
    params.sort();
    let mut i = 0;
    while i < params.len() {
        let name = &params[i].0;
        let mut j = i;
        let mut values = Vec::new();
        while j < params.len() && params[j].0 == *name {
            values.push(params[j].1.as_str());
            j += 1;
        }
        out.push('\n');
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "mybatch";
    const KEY: &str =
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==";

    fn signer() -> SharedKeySigner {
        SharedKeySigner::new(ACCOUNT, AccountKey::from_base64(KEY).unwrap()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn reference_vector_post_add_task() {
        let body = br#"{"id":"task1","commandLine":"/bin/sh -c 'echo hi'"}"#;
        assert_eq!(body.len(), 51);
        let url = Url::parse(
            "https://mybatch.westeurope.batch.azure.com/jobs/blob-ingest/tasks?api-version=2025-06-01&timeout=30",
        )
        .unwrap();
        let headers = headers(&[
            ("ocp-date", "Sat, 14 Mar 2026 09:31:09 GMT"),
            ("content-type", "application/json; odata=minimalmetadata"),
            ("content-length", "51"),
            ("client-request-id", "00000000-0000-0000-0000-000000000001"),
        ]);
        assert_eq!(
            string_to_sign(ACCOUNT, &Method::POST, &url, &headers),
            "POST\n\n\n51\n\napplication/json; odata=minimalmetadata\n\n\n\n\n\n\n\
             ocp-date:Sat, 14 Mar 2026 09:31:09 GMT\n\
             /mybatch/jobs/blob-ingest/tasks\napi-version:2025-06-01\ntimeout:30"
        );
        assert_eq!(
            signer().authorization(&Method::POST, &url, &headers),
            "SharedKey mybatch:5TDxEI4v8cUwU5n/hEWI5H9WMUv+XRAJpHcL+pe/oEE="
        );
    }

    #[test]
    fn reference_vector_get_task() {
        let url = Url::parse(
            "https://mybatch.westeurope.batch.azure.com/jobs/blob-ingest/tasks/task1?api-version=2025-06-01",
        )
        .unwrap();
        let headers = headers(&[("ocp-date", "Sat, 14 Mar 2026 09:31:10 GMT")]);
        assert_eq!(
            signer().authorization(&Method::GET, &url, &headers),
            "SharedKey mybatch:8CFNhvl6V8dkHnt1hg5ndmOnpe80S7+SmG0RtF5l2Hw="
        );
    }

    #[test]
    fn query_names_are_lower_cased_sorted_and_repeated_values_joined() {
        let url = Url::parse("https://a.b.batch.azure.com/jobs?timeOut=30&b=2&api-version=x&b=1")
            .unwrap();
        let s = string_to_sign("a", &Method::GET, &url, &HeaderMap::new());
        assert!(
            s.ends_with("/a/jobs\napi-version:x\nb:1,2\ntimeout:30"),
            "{s}"
        );
    }

    #[test]
    fn date_is_signed_only_without_ocp_date() {
        let url = Url::parse("https://a.b.batch.azure.com/jobs").unwrap();
        let plain = headers(&[("date", "D")]);
        let lines: Vec<String> = string_to_sign("a", &Method::GET, &url, &plain)
            .split('\n')
            .map(str::to_string)
            .collect();
        assert_eq!(lines[6], "D");
        let both = headers(&[("date", "D"), ("ocp-date", "O")]);
        let lines: Vec<String> = string_to_sign("a", &Method::GET, &url, &both)
            .split('\n')
            .map(str::to_string)
            .collect();
        assert_eq!(lines[6], "");
        assert_eq!(lines[12], "ocp-date:O");
    }

    #[test]
    fn refuses_an_empty_account_name() {
        assert!(matches!(
            SharedKeySigner::new(" ", AccountKey::from_base64(KEY).unwrap()),
            Err(BatchConfigError::EmptyAccountName)
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let printed = format!("{:?}", signer());
        assert!(printed.contains("mybatch"));
        assert!(!printed.contains(KEY));
        assert!(!printed.contains("48, 49, 50"), "{printed}");
    }
}
