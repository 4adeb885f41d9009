//! The accept loop of `serve`: HTTP/1.1 connections served by hyper, each held to deadlines so
//! that a client cannot keep one without making progress, and a cap on how many are served.
//!
//! hyper's own `header_read_timeout` starts whenever a connection waits for a request head, and on
//! a kept-alive connection that wait includes the idle time before the next request: one duration
//! would bound both a slow client and an idle pooled one. The Functions host keeps its connections
//! open between invocations, so the two get different limits here, and hyper's is switched off.
//! Each connection is in one of three phases, each with its own deadline:
//!
//! - **head**: a request head is arriving. It must be complete `HTTP_HEADER_TIMEOUT` after the
//!   accept (the first request) or after its first byte (later requests); the clock does not
//!   restart with each byte, so trickling one at a time gains nothing. Past it the connection is
//!   closed, after a 408 if part of a head had arrived.
//! - **idle**: between the end of a response and the first byte of the next request, for at most
//!   `HTTP_IDLE_TIMEOUT`; then the connection is closed without a word, as HTTP/1.1 allows.
//! - **busy**: a request is being served. The body must arrive within `HTTP_BODY_TIMEOUT` of the
//!   head ([`Deadline`]); the handler bounds its own work (the Batch retry budget).
//!
//! At most `HTTP_MAX_CONNECTIONS` connections are served at once. When all are taken the loop
//! stops accepting, so that further connections wait in the kernel's listen backlog until one
//! ends (the deadlines above make sure one does): the Functions host's next call is then late
//! rather than failed, which would fail an invocation and make Event Grid redeliver.
//!
//! Shutdown stops accepting, lets every connection finish the request it is serving (idle ones
//! close at once), and returns once all have ended.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::body::Deadline;
use crate::config::HttpSettings;
use crate::sync::lock;

/// Descriptors kept free beyond the connections: the Batch client's own connections, logs, and
/// the local runner's files.
const RESERVED_FILES: u64 = 256;
/// How long a 408 may take to write before the connection is dropped anyway.
const LAST_WORD_TIMEOUT: Duration = Duration::from_secs(1);
/// How often, at most, a full house is logged.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    raise_open_file_limit(limits.max_connections as u64 + RESERVED_FILES);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut warned_full: Option<Instant> = None;
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "every connection slot is taken; new connections wait in the backlog"
                    );
                    warned_full = Some(Instant::now());
                }
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of descriptors or memory: retrying at once would spin.
                        tracing::error!(%error, "cannot accept connections");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written at once; Nagle's algorithm would only delay them.
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            ConnectionTimeouts::from(limits),
            stopped.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop.send(());
    // Every connection holds its slot until it has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection cap above the open-file limit would never be reached: accepts would fail first,
/// and so would the Batch client's connections. Raises the soft limit as far as the hard one
/// allows, as the Go runtime does for every program.
fn raise_open_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur >= needed {
        return;
    }
    let wanted = needed.min(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0;
    let open_files = if ok { wanted } else { limit.rlim_cur };
    if open_files < needed {
        tracing::warn!(
            open_files,
            needed,
            "the open-file limit is below HTTP_MAX_CONNECTIONS plus a reserve; \
             lower HTTP_MAX_CONNECTIONS or raise the limit"
        );
    }
}

/// The per-connection part of the settings.
#[derive(Clone, Copy, Debug)]
struct ConnectionTimeouts {
    header: Duration,
    idle: Duration,
    body: Duration,
}

impl From<&HttpSettings> for ConnectionTimeouts {
    fn from(settings: &HttpSettings) -> ConnectionTimeouts {
        ConnectionTimeouts {
            header: settings.header_timeout,
            idle: settings.idle_timeout,
            body: settings.body_timeout,
        }
    }
}

/// Where a connection stands; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head since `since`; `started` once a byte of it has arrived.
    Head { since: Instant, started: bool },
    /// Between requests since `since`.
    Idle { since: Instant },
    /// Serving `requests` requests: one at a time over HTTP/1.1, but counting keeps the phase
    /// right however the end of one response and the start of the next request interleave.
    Busy { requests: usize },
}

/// What a passed deadline means for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// A new connection that never sent a byte: close it, there is nothing to answer.
    Silent,
    /// Part of a head arrived, the rest did not: answer 408, then close.
    SlowHead,
    /// Nothing asked for a while: close.
    Idle,
}

impl Phase {
    fn deadline(self, limits: ConnectionTimeouts) -> Option<(Instant, Expiry)> {
        match self {
            Phase::Head {
                since,
                started: false,
            } => Some((since + limits.header, Expiry::Silent)),
            Phase::Head {
                since,
                started: true,
            } => Some((since + limits.header, Expiry::SlowHead)),
            Phase::Idle { since } => Some((since + limits.idle, Expiry::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    /// Bytes arrived. While busy they belong to the request being served (its body) or to the
    /// next one, whose head clock starts when the response is done.
    fn read(self, now: Instant) -> Phase {
        match self {
            Phase::Idle { .. } => Phase::Head {
                since: now,
                started: true,
            },
            Phase::Head { since, .. } => Phase::Head {
                since,
                started: true,
            },
            busy @ Phase::Busy { .. } => busy,
        }
    }

    /// A head is complete and its request is handed to the router.
    fn request(self) -> Phase {
        match self {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            _ => Phase::Busy { requests: 1 },
        }
    }

    /// A response has been handed to hyper in full (or abandoned).
    fn response_done(self, now: Instant) -> Phase {
        match self {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            Phase::Busy { .. } => Phase::Idle { since: now },
            other => other,
        }
    }
}

/// A connection's phase, shared by its socket, its requests and the task that drives it.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new(accepted: Instant) -> Activity {
        Activity {
            phase: Mutex::new(Phase::Head {
                since: accepted,
                started: false,
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    fn update(&self, step: impl FnOnce(Phase) -> Phase) {
        let mut phase = lock(&self.phase);
        let next = step(*phase);
        if next != *phase {
            *phase = next;
            // A stored permit if the driver is not waiting yet: no change goes unseen.
            self.changed.notify_one();
        }
    }
}

/// Ends its request's busy phase when dropped: with the response body once hyper has taken all
/// of it, or with the request's future if the connection goes away first.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.update(|phase| phase.response_done(Instant::now()));
    }
}

/// A response body that carries its request's guard.
struct Tracked {
    body: Body,
    _request: RequestGuard,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, reporting arriving bytes to the connection's [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// The last write or flush could not complete: the client is not reading what we send.
    write_blocked: bool,
}

impl Watched {
    fn note_write<T>(&mut self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.write_blocked = poll.is_pending();
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.update(|phase| phase.read(Instant::now()));
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note_write(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note_write(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.note_write(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Hands each request to the router, marking the connection busy until its response is done
/// and putting the body deadline on the request body.
#[derive(Clone)]
struct RequestService {
    router: Router,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        self.activity.update(Phase::request);
        let guard = RequestGuard(Arc::clone(&self.activity));
        let body_timeout = self.body_timeout;
        let request = request.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(Deadline::new(body, body_timeout))
            }
        });
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|body| Tracked {
                body,
                _request: guard,
            }))
        })
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionTimeouts,
    mut stop: watch::Receiver<()>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new(Instant::now()));
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
        write_blocked: false,
    });
    let service = RequestService {
        router,
        activity: Arc::clone(&activity),
        body_timeout: limits.body,
    };
    let mut conn = http1::Builder::new()
        .keep_alive(true)
        // Replaced by the head and idle deadlines below (see the module documentation).
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut stopping = false;
    loop {
        let deadline = activity.phase().deadline(limits);
        let changed = activity.changed.notified();
        let wake_at = deadline.map_or_else(Instant::now, |(at, _)| at);
        tokio::select! {
            result = &mut conn => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = changed => {}
            () = tokio::time::sleep_until(wake_at), if deadline.is_some() => {
                // The phase may have moved on since the deadline was read.
                match activity.phase().deadline(limits) {
                    Some((at, expiry)) if at <= Instant::now() => {
                        tracing::debug!(%peer, ?expiry, "connection closed at its deadline");
                        if expiry == Expiry::SlowHead {
                            let Watched { stream, write_blocked, .. } = conn.into_parts().io.into_inner();
                            if !write_blocked {
                                request_timeout(stream, limits.header).await;
                            }
                        }
                        return;
                    }
                    _ => {}
                }
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    }
}

/// Answers a head that did not arrive in time. Written by hand: hyper has no response to send
/// for a request it never finished reading. Skipped when a response is still unsent, since the
/// 408 would land in the middle of it.
async fn request_timeout(mut stream: TcpStream, after: Duration) {
    let body = json!({
        "error": format!("the request headers did not arrive within {} s", after.as_secs())
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(LAST_WORD_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: ConnectionTimeouts = ConnectionTimeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(120),
        body: Duration::from_secs(30),
    };

    #[test]
    fn a_new_connection_must_send_its_head_within_the_header_timeout() {
        let accepted = Instant::now();
        let fresh = Phase::Head {
            since: accepted,
            started: false,
        };
        assert_eq!(
            fresh.deadline(TIMEOUTS),
            Some((accepted + TIMEOUTS.header, Expiry::Silent))
        );
        // Bytes arriving do not move the deadline; they only make a 408 worth sending.
        let later = accepted + Duration::from_secs(9);
        assert_eq!(
            fresh.read(later).deadline(TIMEOUTS),
            Some((accepted + TIMEOUTS.header, Expiry::SlowHead))
        );
    }

    #[test]
    fn an_idle_connection_gets_the_idle_timeout_until_its_next_request_starts() {
        let accepted = Instant::now();
        let done = accepted + Duration::from_secs(1);
        let idle = Phase::Head {
            since: accepted,
            started: true,
        }
        .request()
        .response_done(done);
        assert_eq!(idle, Phase::Idle { since: done });
        assert_eq!(
            idle.deadline(TIMEOUTS),
            Some((done + TIMEOUTS.idle, Expiry::Idle))
        );
        // The next head's first byte starts its header clock, whatever the idle time was.
        let first_byte = done + Duration::from_secs(100);
        assert_eq!(
            idle.read(first_byte).deadline(TIMEOUTS),
            Some((first_byte + TIMEOUTS.header, Expiry::SlowHead))
        );
    }

    #[test]
    fn a_busy_connection_has_no_deadline_until_its_last_response_is_done() {
        let now = Instant::now();
        let busy = Phase::Head {
            since: now,
            started: true,
        }
        .request();
        assert_eq!(busy.deadline(TIMEOUTS), None);
        // Body bytes arriving while busy change nothing.
        assert_eq!(busy.read(now), busy);
        let overlapping = busy.request();
        assert_eq!(overlapping.response_done(now), busy);
        assert_eq!(busy.response_done(now), Phase::Idle { since: now });
        // A stray end (a guard dropped twice would be a bug elsewhere) leaves an idle phase be.
        let idle = Phase::Idle { since: now };
        assert_eq!(idle.response_done(now + TIMEOUTS.idle), idle);
    }
}
