//! Fault benchmark (not a test): the release binary `blob2batch serve`, driven with many
//! concurrent host invocations (`POST /BlobCreated`, each a distinct blob version) for a fixed
//! time, against the fake Batch service under one fault profile after another. Every invocation
//! not answered 2xx is delivered again, as Event Grid would (bounded: at most
//! `BENCH_ATTEMPTS` deliveries per event, `BENCH_REDELIVERY_MS` apart). Then, per profile, it
//! checks and reports: every answer within 30 s, p50 and p99 latency, exactly one task per blob
//! version in the fake (none created twice, none missing), invocations per second, Batch
//! requests per event, and the serve process's peak RSS (VmHWM). Before the load of the first
//! profile it times lone events, one at a time.
//!
//! `cargo bench --bench faults` (settings: BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_ATTEMPTS,
//! BENCH_REDELIVERY_MS, BENCH_LONE_EVENTS, BENCH_PROFILES: a comma-separated subset of a,b,c,d,e;
//! BATCH_MAX_IN_FLIGHT and BATCH_RETRY_BUDGET are passed on to serve when set).
//! A profile runs until its last worker has finished the event it started, redeliveries included;
//! rates are over that time. "Lost" counts blob versions without a task, given up ones included
//! (Event Grid would go on redelivering them). Exits with status 1 when a task answered 2xx is
//! missing, a task was created twice, or an answer took 30 s or more.

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

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blob2batch::plan::task_id;
use events::BlobEvent;
use fake_batch::{FakeBatch, FakeBatchConfig, FaultCounts, FaultProfile};
use serde_json::{Value, json};
use serve::{BINARY, free_port, spawn_handler};

const ETAG: &str = "0x8DE62A1B3C4D5E7";
/// Event Grid waits this long for an answer.
const EVENT_GRID_TIMEOUT: Duration = Duration::from_secs(30);
const LATENCY: Duration = Duration::from_millis(50);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Profile {
    name: &'static str,
    description: &'static str,
    faults: FaultProfile,
}

fn profiles() -> Vec<Profile> {
    let base = FaultProfile {
        seed: 20260314,
        latency: LATENCY,
        ..FaultProfile::default()
    };
    vec![
        Profile {
            name: "a",
            description: "50 ms latency, no faults",
            faults: base.clone(),
        },
        Profile {
            name: "b",
            description: "20% 503, 5% 429, 2% reset after create, 50 ms",
            faults: FaultProfile {
                p_503: 0.20,
                p_429: 0.05,
                p_reset_after_create: 0.02,
                ..base.clone()
            },
        },
        Profile {
            name: "c",
            description: "30% 429 with Retry-After: 1, 50 ms",
            faults: FaultProfile {
                p_429: 0.30,
                retry_after_429: Some(Duration::from_secs(1)),
                ..base.clone()
            },
        },
        Profile {
            name: "d",
            description: "10% 503, 5% reset before, 5% reset after create, 1% hang, 50 ms",
            faults: FaultProfile {
                p_503: 0.10,
                p_reset_before: 0.05,
                p_reset_after_create: 0.05,
                p_hang: 0.01,
                ..base.clone()
            },
        },
        Profile {
            name: "e",
            description: "20% hang, 50 ms",
            faults: FaultProfile {
                p_hang: 0.20,
                ..base
            },
        },
    ]
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn blob_name(profile: &str, n: u64) -> String {
    format!("bench/{profile}/{n:07}.txt")
}

/// The host's invocation for one blob version (`Data.event` holds the event as a JSON string
/// inside a JSON string, as the Functions host sends it).
fn invocation(name: &str, n: u64) -> Value {
    let event = BlobEvent::new(name)
        .id(&format!("e-{n}"))
        .etag(ETAG)
        .content_length(4096)
        .json();
    json!({"Data": {"event": Value::String(event.to_string()).to_string()}, "Metadata": {}})
}

/// One delivery: its latency and whether it was answered 2xx (`None`: no answer in 30 s).
async fn deliver(client: &reqwest::Client, url: &str, body: &Value) -> (Duration, Option<bool>) {
    let started = Instant::now();
    let answer = client
        .post(url)
        .timeout(EVENT_GRID_TIMEOUT)
        .json(body)
        .send()
        .await;
    let outcome = match answer {
        Ok(response) => {
            let ok = response.status().is_success();
            match response.bytes().await {
                Ok(_) => Some(ok),
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    (started.elapsed(), outcome)
}

#[derive(Default)]
struct WorkerReport {
    latencies: Vec<Duration>,
    non_2xx: u64,
    unanswered: u64,
    /// Blob versions whose every delivery failed.
    given_up: u64,
    /// Each blob version, and whether a delivery was answered 2xx.
    blobs: Vec<(u64, bool)>,
}

struct Row {
    profile: &'static str,
    description: &'static str,
    blobs: usize,
    invocations: usize,
    seconds: f64,
    non_2xx: u64,
    unanswered: u64,
    given_up: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    lost: usize,
    lost_after_2xx: usize,
    created_twice: usize,
    foreign: usize,
    requests_per_event: f64,
    peak_rss_kib: u64,
    faults: FaultCounts,
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while client.get(base).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lone events, one at a time with idle gaps: each should take the fake's latency plus a little.
async fn lone_events(client: &reqwest::Client, base: &str, count: u64) -> Vec<Duration> {
    let url = format!("{base}/BlobCreated");
    let mut latencies = Vec::new();
    for n in 0..count {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (latency, ok) = deliver(client, &url, &invocation(&blob_name("lone", n), n)).await;
        assert_eq!(ok, Some(true), "a lone event failed");
        latencies.push(latency);
    }
    latencies.sort();
    latencies
}

async fn run_profile(profile: &Profile, lone: u64) -> Row {
    let seconds = env_number("BENCH_SECONDS", 20);
    let concurrency = env_number("BENCH_CONCURRENCY", 64);
    let attempts = env_number("BENCH_ATTEMPTS", 10);
    let redelivery = Duration::from_millis(env_number("BENCH_REDELIVERY_MS", 250));

    let mut config = FakeBatchConfig::default().with_job("wordcount");
    config.record_requests = false;
    let fake = FakeBatch::start(config).await;
    let port = free_port();
    let mut child = spawn_handler(fake.url().as_str(), port);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;

    let lone_ids: HashSet<String> = (0..lone)
        .map(|n| task_id("acct", "input", &blob_name("lone", n), ETAG).to_ascii_lowercase())
        .collect();
    if lone > 0 {
        fake.set_latency(LATENCY);
        let latencies = lone_events(&client, &base, lone).await;
        fake.set_latency(Duration::ZERO);
        println!(
            "lone events ({lone}, one at a time, fake latency {} ms): median {:.1} ms, min {:.1} ms, max {:.1} ms",
            LATENCY.as_millis(),
            ms(percentile(&latencies, 0.5)),
            ms(latencies[0]),
            ms(latencies[latencies.len() - 1]),
        );
    }
    let lone_requests = fake.request_count();
    fake.set_fault_profile(Some(profile.faults.clone()));

    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let counter = counter.clone();
        let url = format!("{base}/BlobCreated");
        let name = profile.name;
        workers.push(tokio::spawn(async move {
            let mut report = WorkerReport::default();
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = invocation(&blob_name(name, n), n);
                let mut done = false;
                for attempt in 0..attempts {
                    if attempt > 0 {
                        tokio::time::sleep(redelivery).await;
                    }
                    let (latency, outcome) = deliver(&client, &url, &body).await;
                    report.latencies.push(latency);
                    match outcome {
                        Some(true) => {
                            done = true;
                            break;
                        }
                        Some(false) => report.non_2xx += 1,
                        None => report.unanswered += 1,
                    }
                }
                if !done {
                    report.given_up += 1;
                }
                report.blobs.push((n, done));
            }
            report
        }));
    }
    let mut latencies = Vec::new();
    let mut blobs = Vec::new();
    let (mut non_2xx, mut unanswered, mut given_up) = (0, 0, 0);
    for worker in workers {
        let report = worker.await.unwrap();
        latencies.extend(report.latencies);
        blobs.extend(report.blobs);
        non_2xx += report.non_2xx;
        unanswered += report.unanswered;
        given_up += report.given_up;
    }
    let elapsed = started.elapsed();
    // An invocation the client gave up on may still be at work in serve; let it finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak_rss_kib = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    let counts = fake.task_counts();
    let id_of =
        |n: u64| task_id("acct", "input", &blob_name(profile.name, n), ETAG).to_ascii_lowercase();
    let expected: HashSet<String> = blobs.iter().map(|&(n, _)| id_of(n)).collect();
    let missing = |n: u64| counts.get(&id_of(n)).is_none_or(|c| c.created == 0);
    let lost = blobs.iter().filter(|&&(n, _)| missing(n)).count();
    // A 2xx answer promises the task: one missing after it is a bug, not bad luck.
    let lost_after_2xx = blobs.iter().filter(|&&(n, ok)| ok && missing(n)).count();
    let created_twice = counts.values().filter(|c| c.created > 1).count();
    let foreign = counts
        .iter()
        .filter(|(id, c)| c.created > 0 && !expected.contains(*id) && !lone_ids.contains(*id))
        .count();
    latencies.sort();
    Row {
        profile: profile.name,
        description: profile.description,
        blobs: blobs.len(),
        invocations: latencies.len(),
        seconds: elapsed.as_secs_f64(),
        non_2xx,
        unanswered,
        given_up,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        lost,
        lost_after_2xx,
        created_twice,
        foreign,
        requests_per_event: (fake.request_count() - lone_requests) as f64 / blobs.len() as f64,
        peak_rss_kib,
        faults: fake.fault_counts(),
    }
}

#[tokio::main]
async fn main() {
    let wanted: Option<Vec<String>> = std::env::var("BENCH_PROFILES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let lone = env_number("BENCH_LONE_EVENTS", 20);
    println!("binary: {BINARY}");
    println!(
        "{} s per profile, {} concurrent invocations, up to {} deliveries per event {} ms apart",
        env_number("BENCH_SECONDS", 20),
        env_number("BENCH_CONCURRENCY", 64),
        env_number("BENCH_ATTEMPTS", 10),
        env_number("BENCH_REDELIVERY_MS", 250),
    );
    let mut rows = Vec::new();
    for (i, profile) in profiles()
        .into_iter()
        .filter(|p| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|n| n == p.name))
        })
        .enumerate()
    {
        let row = run_profile(&profile, if i == 0 { lone } else { 0 }).await;
        let f = row.faults;
        println!(
            "profile {} ({}): {} blob versions, {} invocations in {:.1} s; non-2xx {}, unanswered {}, \
             given up {}; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; lost {}, created twice {}, \
             unexpected {}; {:.3} Batch requests per event; peak RSS {:.1} MiB; faults: {} 503, \
             {} 429, {} resets before, {} resets after create, {} hangs",
            row.profile,
            row.description,
            row.blobs,
            row.invocations,
            row.seconds,
            row.non_2xx,
            row.unanswered,
            row.given_up,
            ms(row.p50),
            ms(row.p99),
            ms(row.max),
            row.lost,
            row.created_twice,
            row.foreign,
            row.requests_per_event,
            row.peak_rss_kib as f64 / 1024.0,
            f.status_503,
            f.status_429,
            f.reset_before,
            f.reset_after_create,
            f.hangs,
        );
        rows.push(row);
    }

    println!();
    println!(
        "| profile | run | blob versions | invocations (per s) | non-2xx answers | given up | p50 | p99 | max | lost / created twice | Batch requests per event | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for row in &rows {
        println!(
            "| ({}) {} | {:.1} s | {} | {} ({:.0}) | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {} / {} | {:.3} | {:.1} MiB |",
            row.profile,
            row.description,
            row.seconds,
            row.blobs,
            row.invocations,
            row.invocations as f64 / row.seconds,
            row.non_2xx + row.unanswered,
            row.given_up,
            ms(row.p50),
            ms(row.p99),
            ms(row.max),
            row.lost,
            row.created_twice + row.foreign,
            row.requests_per_event,
            row.peak_rss_kib as f64 / 1024.0,
        );
        failed |= row.lost_after_2xx > 0
            || row.created_twice > 0
            || row.foreign > 0
            || row.unanswered > 0
            || row.max >= EVENT_GRID_TIMEOUT;
    }
    if failed {
        println!(
            "FAILED: a task answered 2xx is missing, a task was created twice, or an answer took 30 s or more"
        );
        std::process::exit(1);
    }
}
