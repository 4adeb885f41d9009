//! Percent-encoding for storage URLs: blob names in paths, SAS values in queries.
//!
//! Both use the RFC 3986 unreserved set, so that a name or value is encoded exactly once and the
//! service decodes it back to the same bytes.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are: RFC 3986 unreserved (`A-Z a-z 0-9 - . _ ~`).
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a blob name for a URL path: each `/`-separated segment once, `/` kept.
pub fn encode_blob_name(name: &str) -> String {
    name.split('/')
        .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes one query value.
pub(crate) fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// `base?query`, or `base` when the query is empty.
pub(crate) fn join_query(base: &str, query: &str) -> String {
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_encoded_once_per_segment() {
        assert_eq!(encode_blob_name("docs/a b.txt"), "docs/a%20b.txt");
        assert_eq!(encode_blob_name("50%#?.txt"), "50%25%23%3F.txt");
        assert_eq!(encode_blob_name("é/😀"), "%C3%A9/%F0%9F%98%80");
        assert_eq!(encode_blob_name("a+b=c&d"), "a%2Bb%3Dc%26d");
    }

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(
            encode_query_value("2026-03-14T09:00:00Z"),
            "2026-03-14T09%3A00%3A00Z"
        );
        assert_eq!(encode_query_value("a+b/c="), "a%2Bb%2Fc%3D");
        assert_eq!(encode_query_value("https,http"), "https%2Chttp");
        assert_eq!(join_query("http://h/c", ""), "http://h/c");
        assert_eq!(join_query("http://h/c", "sv=1"), "http://h/c?sv=1");
    }
}
