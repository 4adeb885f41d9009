//! Name resolution that needs no C library: hickory's resolver reads `/etc/resolv.conf` and
//! `/etc/hosts` itself and asks the name servers directly. A statically linked glibc resolves
//! names through NSS modules it loads at run time, which a `FROM scratch` image does not have.
//! Container engines write both files into every container, the scratch ones too.
//!
//! This is also where plain HTTP is held to loopback and private addresses: the check applies
//! to the addresses a name resolves to, not to how it is spelt.

use super::address::plain_http_allowed;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// A refusal or failure that retrying cannot fix.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with hickory, once per host for the life of the process (every request goes to the
/// same account).
#[derive(Default)]
pub struct HickoryResolver {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    runtime: Option<(tokio::runtime::Runtime, TokioResolver)>,
    known: HashMap<String, Vec<IpAddr>>,
}

impl fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HickoryResolver")
    }
}

fn refused(message: String) -> ureq::Error {
    ureq::Error::Other(Box::new(Refused(message)))
}

impl State {
    fn lookup(&mut self, host: &str) -> Result<Vec<IpAddr>, ureq::Error> {
        if let Some(ips) = self.known.get(host) {
            return Ok(ips.clone());
        }
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ureq::Error::Io)?;
            let resolver = TokioResolver::builder_tokio()
                .and_then(|b| b.build())
                .map_err(|e| refused(format!("cannot set up name resolution: {e}")))?;
            self.runtime = Some((runtime, resolver));
        }
        let Some((runtime, resolver)) = &self.runtime else {
            unreachable!("set above")
        };
        let ips: Vec<IpAddr> = match runtime.block_on(resolver.lookup_ip(host)) {
            Ok(found) => found.iter().collect(),
            Err(e) if e.is_no_records_found() => Vec::new(),
            // Time-outs and unreachable name servers may pass: the caller retries.
            Err(e) => {
                return Err(ureq::Error::Io(std::io::Error::other(format!(
                    "cannot resolve '{host}': {e}"
                ))));
            }
        };
        if ips.is_empty() {
            return Err(refused(format!("cannot resolve '{host}': no such host")));
        }
        self.known.insert(host.to_owned(), ips.clone());
        Ok(ips)
    }
}

impl Resolver for HickoryResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ips = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .lookup(bare)?,
        };
        if !https && let Some(ip) = ips.iter().find(|ip| !plain_http_allowed(**ip)) {
            return Err(refused(format!(
                "plain http is only allowed to loopback and private addresses, and '{host}' is \
                 {ip}: use https"
            )));
        }
        let mut out = self.empty();
        for ip in ips {
            if out.try_push(SocketAddr::new(ip, port)).is_err() {
                break;
            }
        }
        Ok(out)
    }
}
