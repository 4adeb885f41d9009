//! Hostile clients at the connection level, over real TCP with raw sockets: slow or silent heads,
//! trickled bodies, idle connections by the hundred, the connection cap, and shutdown while all
//! that goes on. Waits are bounded generously; what is asserted is the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::dev::Serve;
use crate::support::events::{self, BlobEvent};
use crate::support::fake_batch::{FakeBatch, FakeBatchConfig};
use crate::support::settings::{from_pairs, handler_env};
use blob2batch::context::Context;
use blob2batch::runner::{Accepted, BoxFuture, Submission, SubmitResult, TaskRunner};
use blob2batch::startup::Application;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Accepts everything; when `gate` is set, each submission waits for one of its permits.
#[derive(Default)]
struct Runner {
    submitted: AtomicUsize,
    waiting: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
}

impl TaskRunner for Runner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
            }
            self.submitted.fetch_add(items.len(), Ordering::SeqCst);
            items.iter().map(|_| Ok(Accepted::Submitted)).collect()
        })
    }
}

struct App {
    port: u16,
    runner: Arc<Runner>,
}

/// The application as `serve` builds it, on port 0, with `extra` settings.
async fn start(extra: &[(&str, &str)], runner: Runner) -> (App, tokio::task::JoinHandle<()>) {
    start_until(extra, runner, std::future::pending()).await
}

async fn start_until(
    extra: &[(&str, &str)],
    runner: Runner,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (App, tokio::task::JoinHandle<()>) {
    // The runner is ours: the Batch URL is never called.
    let mut pairs = handler_env("http://127.0.0.1:9");
    pairs.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0".into()));
    pairs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let runner = Arc::new(runner);
    let context = Context::with_runner(from_pairs(&pairs), runner.clone()).unwrap();
    let application = Application::build(Arc::new(context)).await.unwrap();
    let port = application.port();
    let task = tokio::spawn(async move {
        application.run_until_stopped(shutdown).await;
    });
    (App { port, runner }, task)
}

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

fn invocation(name: &str) -> String {
    events::invocation(&BlobEvent::new(name).etag("0x1").json()).to_string()
}

fn post_head(path: &str, content_length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n"
    )
}

fn post_request(path: &str, body: &str) -> String {
    post_head(path, body.len()) + body
}

const PROBE: &str = "GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

/// One response read off a kept-alive connection: status, headers and a `content-length` body.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn read_reply(stream: &mut TcpStream, within: Duration) -> Reply {
    tokio::time::timeout(within, async {
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before a response: {buffer:?}");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = buffer[head_end..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed inside a response body");
            body.extend_from_slice(&chunk[..n]);
        }
        Reply { status, head, body }
    })
    .await
    .expect("a response in time")
}

/// Reads until the peer closes; what arrived before. Panics if it stays open past `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("still open after {within:?}"));
    all
}

/// True if nothing arrives (and the peer does not close) within `wait`.
async fn stays_silent(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut byte))
        .await
        .is_err()
}

const GENEROUS: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_gets_408_and_is_disconnected() {
    let (app, _) = start(&[("HTTP_HEADER_TIMEOUT", "PT1S")], Runner::default()).await;
    let mut stream = connect(app.port).await;
    stream
        .write_all(b"POST /BlobCreated HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut stream, GENEROUS).await).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"error": "the request headers did not arrive within 1 s"})
    );
    // The handler is unharmed.
    let mut probe = connect(app.port).await;
    probe.write_all(PROBE.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut probe, GENEROUS).await.status, 200);
}

#[tokio::test]
async fn headers_trickled_a_byte_at_a_time_are_cut_at_the_deadline_from_the_first_byte() {
    let (app, _) = start(&[("HTTP_HEADER_TIMEOUT", "PT1S")], Runner::default()).await;
    let stream = connect(app.port).await;
    let (mut read, mut write) = stream.into_split();
    // 60 s worth of head at one byte per 100 ms: every read makes progress, none completes it.
    let head = format!(
        "POST /BlobCreated HTTP/1.1\r\nx-pad: {}\r\n\r\n",
        "p".repeat(600)
    );
    let sender = tokio::spawn(async move {
        let mut sent = 0;
        for byte in head.bytes() {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(GENEROUS, read.read_to_end(&mut answer))
        .await
        .expect("disconnected within 10 s although bytes kept arriving")
        .ok();
    assert!(started.elapsed() < GENEROUS);
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    sender.abort();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_without_an_answer() {
    let (app, _) = start(&[("HTTP_HEADER_TIMEOUT", "PT1S")], Runner::default()).await;
    let mut stream = connect(app.port).await;
    assert_eq!(read_to_close(&mut stream, GENEROUS).await, b"");
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_and_closes_at_the_idle_timeout() {
    let (app, _) = start(
        &[
            ("HTTP_HEADER_TIMEOUT", "PT1S"),
            ("HTTP_IDLE_TIMEOUT", "PT4S"),
        ],
        Runner::default(),
    )
    .await;
    let mut stream = connect(app.port).await;
    stream.write_all(PROBE.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut stream, GENEROUS).await.status, 200);
    // Idle for twice the header timeout: still open, and the next request is served on it.
    assert!(stays_silent(&mut stream, Duration::from_secs(2)).await);
    let body = invocation("idle.txt");
    stream
        .write_all(post_request("/BlobCreated", &body).as_bytes())
        .await
        .unwrap();
    let reply = read_reply(&mut stream, GENEROUS).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(app.runner.submitted.load(Ordering::SeqCst), 1);
    // Then left idle: closed at the idle timeout, without a word.
    assert_eq!(read_to_close(&mut stream, GENEROUS).await, b"");
}

#[tokio::test]
async fn a_body_that_trickles_gets_408_in_each_routes_shape() {
    let (app, _) = start(&[("HTTP_BODY_TIMEOUT", "PT1S")], Runner::default()).await;
    for path in ["/BlobCreated", "/api/events"] {
        let stream = connect(app.port).await;
        let (mut read, mut write) = stream.into_split();
        write
            .write_all(post_head(path, 1000).as_bytes())
            .await
            .unwrap();
        let sender = tokio::spawn(async move {
            for _ in 0..1000 {
                if write.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut answer = Vec::new();
        tokio::time::timeout(GENEROUS, read.read_to_end(&mut answer))
            .await
            .expect("answered and closed within 10 s")
            .ok();
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 408 "), "{path}: {answer}");
        assert!(head.contains("connection: close"), "{path}: {head}");
        let body: Value = serde_json::from_str(body).unwrap();
        let error = if path == "/BlobCreated" {
            assert_eq!(body["Outputs"], json!({}), "{body}");
            assert!(body["Logs"][0].as_str().unwrap().starts_with("rejected: "));
            &body["ReturnValue"]["error"]
        } else {
            &body["error"]
        };
        assert_eq!(
            error, "the request body did not arrive within 1 s",
            "{path}: {body}"
        );
        sender.abort();
    }
    assert_eq!(app.runner.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let (app, _) = start(&[], Runner::default()).await;
    let mut stream = connect(app.port).await;
    // The head alone: the answer must not wait for 5 MiB that never come.
    stream
        .write_all(post_head("/BlobCreated", 5 * 1024 * 1024).as_bytes())
        .await
        .unwrap();
    let reply = read_reply(&mut stream, GENEROUS).await;
    assert_eq!(reply.status, 413);
    assert!(reply.head.contains("connection: close"), "{}", reply.head);
    assert_eq!(
        reply.json()["ReturnValue"]["error"],
        "the request body is larger than the 4194304 bytes accepted"
    );
    assert_eq!(read_to_close(&mut stream, GENEROUS).await, b"");
}

#[tokio::test]
async fn connections_above_the_cap_wait_in_the_backlog_until_a_slot_frees() {
    let (app, _) = start(&[("HTTP_MAX_CONNECTIONS", "2")], Runner::default()).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(app.port).await;
        stream.write_all(PROBE.as_bytes()).await.unwrap();
        assert_eq!(read_reply(&mut stream, GENEROUS).await.status, 200);
        held.push(stream);
    }
    // The kernel completes the handshake, but the handler does not take the connection up.
    let mut waiting = connect(app.port).await;
    waiting.write_all(PROBE.as_bytes()).await.unwrap();
    assert!(
        stays_silent(&mut waiting, Duration::from_secs(1)).await,
        "a third connection was served with a cap of two"
    );
    // A slot frees: the waiting request is served, and the held connections still work.
    drop(held.pop());
    assert_eq!(read_reply(&mut waiting, GENEROUS).await.status, 200);
    held[0].write_all(PROBE.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut held[0], GENEROUS).await.status, 200);
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_closes_idle_connections() {
    let gate = Arc::new(Semaphore::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = Runner {
        gate: Some(gate.clone()),
        ..Runner::default()
    };
    let (app, server) = start_until(&[], runner, async {
        let _ = stopped.await;
    })
    .await;
    let mut idle = connect(app.port).await;
    idle.write_all(PROBE.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut idle, GENEROUS).await.status, 200);
    let mut busy = connect(app.port).await;
    let body = invocation("busy.txt");
    busy.write_all(post_request("/BlobCreated", &body).as_bytes())
        .await
        .unwrap();
    // The request is in the runner when the stop comes.
    let deadline = Instant::now() + GENEROUS;
    while app.runner.waiting.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the runner"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(read_to_close(&mut idle, GENEROUS).await, b"");
    // No new connections once stopping.
    let deadline = Instant::now() + GENEROUS;
    while TcpStream::connect(("127.0.0.1", app.port)).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after the stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !server.is_finished(),
        "stopped before the request in flight"
    );
    gate.add_permits(1);
    let reply = read_reply(&mut busy, GENEROUS).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(
        reply.json()["ReturnValue"]["events"][0]["outcome"],
        "submitted"
    );
    tokio::time::timeout(GENEROUS, server)
        .await
        .expect("serve returned once the request was done")
        .unwrap();
}

/// The real binary, settings from its environment: 500 idle connections of every kind (silent,
/// half a head, kept alive after a request) are held open while normal requests are served at
/// once.
#[tokio::test]
async fn hundreds_of_idle_connections_do_not_delay_a_request() {
    let fake = FakeBatch::start(FakeBatchConfig::default().with_job("wordcount")).await;
    let mut env = handler_env(fake.url().as_str());
    env.push(("RUST_LOG", "warn".into()));
    let serve = Serve::start(&env);
    let port: u16 = serve.url.rsplit(':').next().unwrap().parse().unwrap();

    let mut idle = Vec::new();
    for i in 0..500 {
        let mut stream = connect(port).await;
        match i % 3 {
            0 => {}
            1 => stream
                .write_all(b"POST /BlobCreated HTTP/1.1\r\nhost: 127.0.0.1\r\n")
                .await
                .unwrap(),
            _ => {
                stream.write_all(PROBE.as_bytes()).await.unwrap();
                assert_eq!(read_reply(&mut stream, GENEROUS).await.status, 200);
            }
        }
        idle.push(stream);
    }

    let started = Instant::now();
    let mut client = connect(port).await;
    client.write_all(PROBE.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut client, GENEROUS).await.status, 200);
    let body = invocation("busy-day.txt");
    client
        .write_all(post_request("/BlobCreated", &body).as_bytes())
        .await
        .unwrap();
    let reply = read_reply(&mut client, GENEROUS).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(
        reply.json()["ReturnValue"]["events"][0]["outcome"],
        "submitted"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served in {:?} with 500 idle connections",
        started.elapsed()
    );
    // None of the idle connections was dropped to make room.
    for stream in &mut idle {
        assert!(stays_silent(stream, Duration::from_millis(1)).await);
    }
    assert_eq!(fake.tasks("wordcount").len(), 1);
    drop(idle);
    assert!(serve.stop().success());
}

#[test]
fn bad_http_settings_exit_with_code_2_naming_each() {
    let mut env = handler_env("http://127.0.0.1:9");
    for (name, value) in [
        ("HTTP_MAX_BODY_BYTES", "10"),
        ("HTTP_HEADER_TIMEOUT", "PT0S"),
        ("HTTP_IDLE_TIMEOUT", "2 minutes"),
        ("HTTP_BODY_TIMEOUT", "PT1H"),
        ("HTTP_MAX_CONNECTIONS", "0"),
    ] {
        env.push((name, value.into()));
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_blob2batch"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "HTTP_MAX_BODY_BYTES must be a whole number of bytes from 1048576 to 67108864",
        "HTTP_HEADER_TIMEOUT must be an ISO 8601 duration from PT1S to PT5M",
        "HTTP_IDLE_TIMEOUT must be an ISO 8601 duration from PT1S to PT1H",
        "HTTP_BODY_TIMEOUT must be an ISO 8601 duration from PT1S to PT5M",
        "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 65536",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
}
