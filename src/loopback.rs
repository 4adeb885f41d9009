//! Whether an address stays on this machine. Plain `http://` is allowed only there (tests, the
//! emulator), and only there may `dev` start Azurite or assume its well-known key.

use std::net::IpAddr;

use url::Url;

/// `localhost`, or a loopback IPv4/IPv6 address (brackets allowed, as in URLs).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether the URL's host is a loopback host.
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_urls() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "localhost",
            "LocalHost",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "10.0.0.1",
            "example.com",
            "localhost.example.com",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(is_loopback_url(&Url::parse("http://[::1]:8080/x").unwrap()));
        assert!(is_loopback_url(
            &Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap()
        ));
        assert!(!is_loopback_url(
            &Url::parse("https://acct.blob.core.windows.net").unwrap()
        ));
    }
}
