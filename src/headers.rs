//! Reading HTTP header values, the same way for the requests we serve and the answers we get.

use http::HeaderMap;

/// The header's value when it is present and visible ASCII text.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Text made fit for a header value (blob metadata is sent as headers): visible ASCII and
/// spaces, anything else as `?`, at most 1024 characters.
pub fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(1024)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_only() {
        let mut headers = HeaderMap::new();
        headers.insert("request-id", "rid-1".parse().unwrap());
        headers.insert(
            "x-bytes",
            http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(header_str(&headers, "request-id"), Some("rid-1"));
        assert_eq!(header_str(&headers, "Request-ID"), Some("rid-1"));
        assert_eq!(header_str(&headers, "x-bytes"), None);
        assert_eq!(header_str(&headers, "missing"), None);
    }

    #[test]
    fn header_safe_text_is_a_header_value() {
        assert_eq!(header_safe("bad\nsubject é"), "bad?subject ?");
        assert_eq!(header_safe(&"x".repeat(2000)).len(), 1024);
        assert!(http::HeaderValue::from_str(&header_safe("\u{7f}\t\r\0")).is_ok());
    }
}
