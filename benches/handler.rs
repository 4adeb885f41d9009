//! Handler benchmark (not a test): start-up to the first readiness answer, invocations per second
//! and latency through `POST /BlobCreated` against a zero-latency fake Batch on loopback, idle
//! memory, and binary size. Runs the release binary as the Functions host would.
//!
//! `cargo bench --bench handler` (settings: BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_STARTS;
//! BATCH_MAX_IN_FLIGHT and BATCH_RETRY_BUDGET are passed on to serve when set).

#[allow(dead_code)]
#[path = "../tests/support/events.rs"]
mod events;
#[path = "../tests/support/fake_batch.rs"]
mod fake_batch;
#[path = "support/serve.rs"]
mod serve;
#[allow(dead_code)]
#[path = "../tests/support/settings.rs"]
mod settings;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use events::BlobEvent;
use fake_batch::{FakeBatch, FakeBatchConfig};
use serde_json::json;
use serve::{BINARY, free_port, spawn_handler};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Time from spawn to the first HTTP answer on `GET /`, polled as fast as possible.
fn time_to_ready(batch_url: &str) -> Duration {
    use std::io::{Read, Write};
    let port = free_port();
    let started = Instant::now();
    let mut child = spawn_handler(batch_url, port);
    let ready = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                break Some(started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    ready.expect("the handler did not answer within 10 s")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let seconds = env_number("BENCH_SECONDS", 10);
    let connections = env_number("BENCH_CONNECTIONS", 16);
    let starts = env_number("BENCH_STARTS", 20);

    let mut config = FakeBatchConfig::default().with_job("wordcount");
    config.record_requests = false;
    let fake = FakeBatch::start(config).await;
    let batch_url = fake.url().to_string();

    let size = std::fs::metadata(BINARY).unwrap().len();
    println!("binary: {BINARY}");
    println!(
        "binary size: {:.2} MiB ({size} bytes)",
        size as f64 / 1048576.0
    );

    let url = batch_url.clone();
    let mut startup: Vec<Duration> =
        tokio::task::spawn_blocking(move || (0..starts).map(|_| time_to_ready(&url)).collect())
            .await
            .unwrap();
    startup.sort();
    println!(
        "start to first GET / answer over {starts} starts: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        percentile(&startup, 0.5).as_secs_f64() * 1e3,
        startup[0].as_secs_f64() * 1e3,
        startup[startup.len() - 1].as_secs_f64() * 1e3
    );

    let port = free_port();
    let mut child = spawn_handler(&batch_url, port);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    while client.get(&base).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle RSS after start: {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );

    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let counter = counter.clone();
        let url = format!("{base}/BlobCreated");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let event = BlobEvent::new(&format!("bench/{n}.txt"))
                    .id(&format!("e-{n}"))
                    .content_length(4096)
                    .json();
                let body = json!({"Data": {"event": event.to_string()}, "Metadata": {}});
                let started = Instant::now();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(started.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "invocations: {} in {:.1} s over {connections} connections = {:.0}/s; failures {failures}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "RSS after load: {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
