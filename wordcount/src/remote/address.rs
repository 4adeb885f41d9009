//! The blob's URL: which schemes and hosts are accepted, and how it is shown. The query string of
//! a SAS URL holds the signature, so it is never shown: messages name the URL without it.

use std::fmt;
use std::net::IpAddr;
use ureq::http::Uri;

/// A blob URL, checked.
#[derive(Clone)]
pub struct BlobUrl {
    full: String,
    shown: String,
}

impl fmt::Debug for BlobUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl BlobUrl {
    /// Accepts `https://...`, and `http://...` (whose hosts are checked when resolved, see
    /// [`plain_http_allowed`]).
    pub fn parse(text: &str) -> Result<BlobUrl, String> {
        let shown = without_query(text);
        let uri: Uri = text
            .parse()
            .map_err(|_| format!("'{shown}' is not a valid URL"))?;
        match uri.scheme_str() {
            Some("https") => {
                if !cfg!(feature = "tls") {
                    return Err(format!(
                        "'{shown}': this wordcount was built without TLS (the 'tls' feature)"
                    ));
                }
            }
            Some("http") => {}
            _ => return Err(format!("'{shown}': the URL must start with https://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("'{shown}' has no host"));
        }
        Ok(BlobUrl {
            full: text.to_owned(),
            shown,
        })
    }

    /// The URL to request, SAS included.
    pub fn full(&self) -> &str {
        &self.full
    }

    /// The URL without its query string, safe to print.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

fn without_query(text: &str) -> String {
    let end = text.find(['?', '#']).unwrap_or(text.len());
    text[..end].to_owned()
}

/// Replaces the value of every `sig=` in `text` (a message that might quote a SAS URL) with
/// `REDACTED`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.to_ascii_lowercase().find("sig=") {
        out.push_str(&rest[..i + 4]);
        out.push_str("REDACTED");
        let value = &rest[i + 4..];
        let end = value
            .find(|c: char| c == '&' || c == '#' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Plain HTTP only goes to loopback and private addresses (the emulator and test servers): a
/// SAS must not cross a network in clear text.
pub fn plain_http_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
                // Unique local addresses, fc00::/7.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_never_shown() {
        let url = BlobUrl::parse("http://127.0.0.1:1/a/b%20c.txt?sv=1&sig=SECRET%2B&se=2").unwrap();
        assert_eq!(url.shown(), "http://127.0.0.1:1/a/b%20c.txt");
        assert_eq!(format!("{url:?}"), "http://127.0.0.1:1/a/b%20c.txt");
        assert!(url.full().contains("SECRET"));
        let err = BlobUrl::parse("ftp://h/x?sig=SECRET").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(BlobUrl::parse("http:///x").is_err());
    }

    #[test]
    fn signatures_are_redacted() {
        assert_eq!(
            redact("GET https://a/b?sv=1&sig=abc%2Fd&se=2 failed; Sig=x y"),
            "GET https://a/b?sv=1&sig=REDACTED&se=2 failed; Sig=REDACTED y"
        );
        assert_eq!(redact("no secret"), "no secret");
    }

    #[test]
    fn plain_http_hosts() {
        for ok in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::1",
            "fd00::1",
        ] {
            assert!(plain_http_allowed(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "8.8.8.8",
            "172.32.0.1",
            "20.60.1.1",
            "2001:db8::1",
            "169.254.169.254",
        ] {
            assert!(!plain_http_allowed(bad.parse().unwrap()), "{bad}");
        }
    }
}
