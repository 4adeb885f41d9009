//! Reading HTTP header values, the same way for the requests we serve and the answers we get.

use http::HeaderMap;

/// The header's value when it is present and visible ASCII text.
pub fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
}
