//! One blob version over the Blob REST API: its properties (Get Blob Properties) and byte ranges
//! of it (Get Blob with `x-ms-range`), every call pinned by `If-Match` to the eTag the task was
//! given or, without one, to the eTag the first call saw.
//!
//! Throttling (429, 503), other server errors (5xx), 408, time-outs and broken connections are
//! retried with exponential back-off and jitter (honouring `Retry-After`), and a range read resumes
//! at the first byte it did not get. Nothing else is retried: a changed blob (412), an archived
//! one (409 `BlobArchived`), a missing one or a refused SAS fail at once.

use super::address::{BlobUrl, redact};
use super::resolve::{HickoryResolver, Refused};
use crate::range::Range;
use crate::tuning::Tuning;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::time::Duration;
use ureq::Agent;
use ureq::http::Response;
use ureq::unversioned::transport::DefaultConnector;

/// The REST version sent as `x-ms-version`.
const API_VERSION: &str = "2024-11-04";
/// Failed attempts in a row, without a byte of progress, before a call gives up.
const MAX_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A `Retry-After` longer than this is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One version of one blob.
pub struct Blob {
    agent: Agent,
    url: BlobUrl,
    etag: String,
    size: u64,
    pub tuning: Tuning,
}

/// What one attempt came to, when it did not succeed.
enum Failure {
    /// Worth another attempt, after at least the given wait.
    Transient(String, Option<Duration>),
    Fatal(String),
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// `"0x8D..."` or `W/"..."` as sent in an `ETag` header, without the quotes.
fn unquoted(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

fn header<'a, B>(response: &'a Response<B>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Blob {
    /// Reads the blob's properties. `etag`, if given, must still be the blob's.
    pub fn open(url: BlobUrl, etag: Option<&str>, tuning: Tuning) -> io::Result<Blob> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("wordcount/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(tuning.timeout))
            .timeout_recv_response(Some(tuning.timeout))
            .timeout_per_read(Some(tuning.timeout))
            .max_idle_connections_per_host(tuning.connections.max(1));
        #[cfg(feature = "tls")]
        let config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::WebPki)
                .build(),
        );
        let config = config.build();
        let agent = Agent::with_parts(config, DefaultConnector::new(), HickoryResolver::default());
        let mut blob = Blob {
            agent,
            url,
            etag: etag.map(|e| unquoted(e).to_owned()).unwrap_or_default(),
            size: 0,
            tuning,
        };
        let (size, etag) =
            blob.with_retries("reading the blob's properties", |b| b.properties())?;
        blob.size = size;
        blob.etag = etag;
        Ok(blob)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The eTag every read is pinned to, unquoted.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The URL without its query string.
    pub fn shown(&self) -> &str {
        self.url.shown()
    }

    fn error(&self, message: &str) -> io::Error {
        io::Error::other(redact(&format!("{}: {message}", self.url.shown())))
    }

    fn with_retries<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut(&Self) -> Result<T, Failure>,
    ) -> io::Result<T> {
        let mut failures = 0;
        loop {
            match attempt(self) {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(m)) => return Err(self.error(&m)),
                Err(Failure::Transient(m, wait)) => {
                    failures += 1;
                    if failures >= MAX_ATTEMPTS {
                        return Err(self.error(&format!("{what}: {m} ({failures} attempts)")));
                    }
                    std::thread::sleep(backoff(failures, wait));
                }
            }
        }
    }

    fn request(&self, method: &str, range: Option<Range>) -> Result<Response<ureq::Body>, Failure> {
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url.full())
            .header("x-ms-version", API_VERSION);
        let builder = match range {
            Some(r) => builder.header("x-ms-range", format!("bytes={}-{}", r.start, r.end - 1)),
            None => builder,
        };
        let builder = if self.etag.is_empty() {
            builder
        } else {
            builder.header("If-Match", quoted(&self.etag))
        };
        let request = builder
            .body(())
            .map_err(|e| Failure::Fatal(format!("cannot build the request: {e}")))?;
        let response = self.agent.run(request).map_err(classify)?;
        let status = response.status().as_u16();
        if matches!(status, 200 | 206) {
            return Ok(response);
        }
        Err(self.refusal(status, &response))
    }

    fn refusal<B>(&self, status: u16, response: &Response<B>) -> Failure {
        let code = header(response, "x-ms-error-code").unwrap_or("");
        let described = format!(
            "HTTP {status}{}{code}",
            if code.is_empty() { "" } else { " " }
        );
        let wait = header(response, "retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        match status {
            // Every 5xx but "not implemented" and "version not supported" may pass.
            408 | 429 | 500 | 502..=504 | 506..=599 => {
                Failure::Transient(format!("the service answered {described}"), wait)
            }
            412 => Failure::Fatal(format!(
                "the blob is no longer the version with eTag \"{}\" (it was overwritten; \
                 {described})",
                self.etag
            )),
            409 if code == "BlobArchived" || code == "BlobBeingRehydrated" => {
                Failure::Fatal(format!(
                    "the blob is in the Archive access tier and cannot be read until it is \
                     rehydrated to Hot or Cool ({described})"
                ))
            }
            404 => Failure::Fatal(format!("no such blob ({described})")),
            401 | 403 => Failure::Fatal(format!(
                "access denied ({described}): check that the SAS is valid, not expired, and \
                 grants read"
            )),
            _ => Failure::Fatal(format!("the service answered {described}")),
        }
    }

    /// Size and eTag, from Get Blob Properties.
    fn properties(&self) -> Result<(u64, String), Failure> {
        let response = self.request("HEAD", None)?;
        if header(&response, "x-ms-access-tier").is_some_and(|t| t.eq_ignore_ascii_case("archive"))
        {
            return Err(Failure::Fatal(
                "the blob is in the Archive access tier and cannot be read until it is \
                 rehydrated to Hot or Cool"
                    .into(),
            ));
        }
        let size = header(&response, "content-length")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure::Fatal("the service gave no Content-Length".into()))?;
        let etag = header(&response, "etag")
            .map(|e| unquoted(e).to_owned())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Failure::Fatal("the service gave no ETag".into()))?;
        if !self.etag.is_empty() && etag != self.etag {
            return Err(Failure::Fatal(format!(
                "the service answered eTag \"{etag}\" to If-Match \"{}\"",
                self.etag
            )));
        }
        Ok((size, etag))
    }

    /// Appends the bytes of `range` (within the blob) to `out`. A read cut short is resumed at
    /// the first missing byte; only attempts that bring no byte count towards giving up.
    pub fn fetch(&self, range: Range, out: &mut Vec<u8>) -> io::Result<()> {
        let mut at = range.start;
        let mut failures = 0;
        while at < range.end {
            let before = at;
            let result = self.fetch_once(Range::new(at, range.end), out, &mut at);
            match result {
                Ok(()) => {}
                Err(Failure::Fatal(m)) => return Err(self.error(&m)),
                Err(Failure::Transient(m, wait)) => {
                    failures = if at > before { 1 } else { failures + 1 };
                    if failures >= MAX_ATTEMPTS {
                        return Err(self.error(&format!(
                            "reading bytes {}: {m} ({failures} attempts without progress)",
                            Range::new(at, range.end)
                        )));
                    }
                    if at == before {
                        std::thread::sleep(backoff(failures, wait));
                    }
                }
            }
        }
        Ok(())
    }

    fn fetch_once(&self, range: Range, out: &mut Vec<u8>, at: &mut u64) -> Result<(), Failure> {
        let response = self.request("GET", Some(range))?;
        if response.status().as_u16() != 206 {
            return Err(Failure::Fatal(format!(
                "the service answered HTTP {} to a range request",
                response.status().as_u16()
            )));
        }
        let first = header(&response, "content-range")
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split_once('-'))
            .and_then(|(first, _)| first.parse::<u64>().ok());
        if first != Some(range.start) {
            return Err(Failure::Fatal(format!(
                "the service answered a read of bytes {range} with Content-Range {:?}",
                header(&response, "content-range").unwrap_or("")
            )));
        }
        let mut body = response.into_body().into_reader();
        // Straight into `out`'s spare capacity; on an error, what came before it stays there.
        let before = out.len();
        let result = (&mut body).take(range.len()).read_to_end(out);
        *at += (out.len() - before) as u64;
        if let Err(e) = result {
            return Err(Failure::Transient(format!("{e} at byte {at}"), None));
        }
        if *at < range.end {
            return Err(Failure::Transient(
                format!("the connection ended at byte {at}"),
                None,
            ));
        }
        // Reading on to the end of the body hands the connection back to the pool, so that the
        // next range read needs no new connection (nor TLS handshake).
        match body.read(&mut [0u8; 1]) {
            Ok(0) | Err(_) => Ok(()),
            Ok(_) => Err(Failure::Fatal(format!(
                "the service sent more than bytes {range}"
            ))),
        }
    }
}

fn classify(e: ureq::Error) -> Failure {
    match e {
        ureq::Error::Other(inner) if inner.is::<Refused>() => Failure::Fatal(inner.to_string()),
        ureq::Error::BadUri(m) => Failure::Fatal(format!("bad URL: {m}")),
        ureq::Error::Tls(_) => Failure::Fatal(format!("TLS: {e}")),
        #[cfg(feature = "tls")]
        ureq::Error::Rustls(_) => Failure::Fatal(format!("TLS: {e}")),
        // A certificate refused during the handshake comes as an I/O error.
        #[cfg(feature = "tls")]
        ureq::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            Failure::Fatal(format!("TLS: {io}"))
        }
        other => Failure::Transient(other.to_string(), None),
    }
}

/// Exponential back-off with "full jitter" between half and all of the step, so that parallel
/// readers throttled together do not come back together.
fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let step = FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let jitter = RandomState::new().hash_one(failures) % 1000;
    let wait = step / 2 + step / 2 * jitter as u32 / 1000;
    wait.max(retry_after.unwrap_or_default())
}
