//! `--url` against faults Azurite cannot produce: 503 and 429 bursts, connections reset or
//! stalled in the middle of a body, a blob overwritten between two range reads, and an archived
//! blob refused on Get Blob. The fake server on loopback keeps to the Blob REST contract: Get Blob
//! Properties (HEAD) with `Content-Length`, `ETag` and `x-ms-access-tier`; Get Blob with
//! `x-ms-range: bytes=A-B` answered 206 with `Content-Range: bytes A-B/SIZE`; `If-Match` answered
//! 412 `ConditionNotMet` when the eTag differs; errors with `x-ms-error-code`.

mod support;

use socket2::Socket;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{fails, ok, run};

/// What the server does to one Get Blob call.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answer with this status and error code (and `Retry-After: 0` for 503).
    Status(u16, &'static str),
    /// Send the headers and this many body bytes, then reset the connection.
    Reset(usize),
    /// Send the headers and this many body bytes, then stall for 3 s.
    Stall(usize),
    /// From this call on, the blob has another eTag.
    Overwrite,
}

struct State {
    data: Vec<u8>,
    etag: String,
    tier: &'static str,
    faults: VecDeque<Fault>,
    /// Every Get Blob call's range, and whether it was answered in full.
    gets: Vec<(u64, u64)>,
}

struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start(data: Vec<u8>, faults: &[Fault]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            data,
            etag: "0x8DE62A1B3C4D5E7".into(),
            tier: "Hot",
            faults: faults.iter().copied().collect(),
            gets: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { port, state }
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/devstoreaccount1/c/blob.txt?sv=2020-12-06&sig=SECRETSIG",
            self.port
        )
    }

    fn gets(&self) -> Vec<(u64, u64)> {
        self.state.lock().unwrap().gets.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let method = request_line.split(' ').next().unwrap_or("").to_owned();
        let mut s = state.lock().unwrap();
        let fault = if method == "GET" {
            s.faults.pop_front()
        } else {
            None
        };
        if let Some(Fault::Overwrite) = fault {
            s.etag = "0x8DE62A1B3C4D5FF".into();
            s.data.reverse();
        }
        let etag = format!("\"{}\"", s.etag);
        if header("if-match").is_some_and(|m| m != etag) {
            drop(s);
            respond_error(&mut out, 412, "ConditionNotMet");
            continue;
        }
        let size = s.data.len() as u64;
        if method == "HEAD" {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nETag: {etag}\r\n\
                 x-ms-blob-type: BlockBlob\r\nx-ms-access-tier: {}\r\n\
                 x-ms-version: 2024-11-04\r\nAccept-Ranges: bytes\r\n\r\n",
                s.tier
            );
            drop(s);
            let _ = out.write_all(head.as_bytes());
            continue;
        }
        let range = header("x-ms-range")
            .and_then(|r| {
                let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
                Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
            })
            .expect("every Get Blob call is a range read");
        s.gets.push(range);
        let body = s.data[range.0 as usize..=range.1 as usize].to_vec();
        drop(s);
        if let Some(Fault::Status(status, code)) = fault {
            respond_error(&mut out, status, code);
            continue;
        }
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{size}\r\n\
             ETag: {etag}\r\nx-ms-blob-type: BlockBlob\r\nx-ms-version: 2024-11-04\r\n\r\n",
            body.len(),
            range.0,
            range.1
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        match fault {
            Some(Fault::Reset(n)) => {
                let _ = out.write_all(&body[..n.min(body.len())]);
                let _ = out.flush();
                let socket = Socket::from(out);
                let _ = socket.set_linger(Some(Duration::ZERO));
                return;
            }
            Some(Fault::Stall(n)) => {
                let _ = out.write_all(&body[..n.min(body.len())]);
                let _ = out.flush();
                std::thread::sleep(Duration::from_secs(3));
                return;
            }
            _ => {
                if out.write_all(&body).is_err() {
                    return;
                }
            }
        }
    }
}

fn respond_error(out: &mut TcpStream, status: u16, code: &str) {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>fault</Message></Error>"
    );
    let retry = if status == 503 {
        "Retry-After: 0\r\n"
    } else {
        ""
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status} Fault\r\nContent-Length: {}\r\nx-ms-error-code: {code}\r\n{retry}\r\n{body}",
        body.len()
    );
}

fn sample() -> Vec<u8> {
    (0..12_000)
        .flat_map(|i| format!("line {i} of the blob, word{} é\n", i % 97).into_bytes())
        .collect()
}

fn single_run(data: &[u8]) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), data).unwrap();
    let out = ok(run(dir.path(), &["data", "--source", "s"]));
    (dir, out)
}

const ONE_CONNECTION: &[&str] = &[
    "--connections",
    "1",
    "--block-size",
    "65536",
    "--timeout",
    "1",
];

#[test]
fn transient_faults_are_retried_and_reads_resume_where_they_stopped() {
    let data = sample();
    let (dir, single) = single_run(&data);
    let server = Server::start(
        data.clone(),
        &[
            Fault::Status(503, "ServerBusy"),
            Fault::Status(429, "TooManyRequests"),
            Fault::Reset(10_000),
            Fault::Status(500, "InternalError"),
            Fault::Stall(5_000),
            Fault::Status(503, "ServerBusy"),
        ],
    );
    let url = server.url();
    let mut args = vec!["--url", &url, "--source", "s"];
    args.extend(ONE_CONNECTION);
    let out = ok(run(dir.path(), &args));
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&single)
    );
    let gets = server.gets();
    // 0-65535 refused twice, cut after 10,000 bytes, then resumed at byte 10,000; refused once
    // more; then cut after 5,000 more bytes by the stall, and resumed at 15,000.
    assert_eq!(
        &gets[..7],
        &[
            (0, 65535),
            (0, 65535),
            (0, 65535),
            (10_000, 65535),
            (10_000, 65535),
            (15_000, 65535),
            (15_000, 65535),
        ]
    );
    assert_eq!(gets[7], (65536, 131071));
}

#[test]
fn parallel_reads_survive_a_burst_of_throttling() {
    let data = sample();
    let (dir, single) = single_run(&data);
    let mut faults = vec![Fault::Status(503, "ServerBusy"); 6];
    faults.extend([Fault::Status(429, "TooManyRequests"), Fault::Reset(1_000)]);
    let server = Server::start(data.clone(), &faults);
    let url = server.url();
    let out = ok(run(
        dir.path(),
        &[
            "--url",
            &url,
            "--source",
            "s",
            "--connections",
            "4",
            "--block-size",
            "32768",
        ],
    ));
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&single)
    );
}

#[test]
fn a_blob_overwritten_while_it_is_read_fails_clearly() {
    let data = sample();
    let server = Server::start(data, &[Fault::Overwrite]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let mut args = vec!["--url", &url];
    args.extend(ONE_CONNECTION);
    let err = fails(run(dir.path(), &args), 1);
    assert!(
        err.contains("no longer the version with eTag \"0x8DE62A1B3C4D5E7\""),
        "{err}"
    );
    assert!(!err.contains("SECRETSIG"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn an_archived_blob_fails_at_once() {
    let data = sample();
    let server = Server::start(data, &[Fault::Status(409, "BlobArchived")]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let err = fails(
        run(
            dir.path(),
            &["--url", &url, "--range", "0..100", "--partial"],
        ),
        1,
    );
    assert!(err.contains("Archive access tier"), "{err}");
    assert_eq!(server.gets().len(), 1, "not retried");
    // Get Blob Properties already tells: no range read at all.
    server.state.lock().unwrap().tier = "Archive";
    let err = fails(run(dir.path(), &["--url", &url]), 1);
    assert!(err.contains("Archive access tier"), "{err}");
    assert_eq!(server.gets().len(), 1);
}
