//! Runs the real `blob2batch` binary for end-to-end tests: the helpers every command shares
//! (a child tied to the test binary, its output collected line by line), `dev`, and `serve`.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Spawns `cmd` from a thread that lives as long as the test binary, with PR_SET_PDEATHSIG, so
/// that the child dies with the test binary even when a test panics or the binary is killed.
pub fn spawn_tied_to_this_process(mut cmd: Command) -> std::io::Result<Child> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let ok_child = cmd.spawn();
        let ok = ok_child.is_ok();
        let _ = tx.send(ok_child);
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv().expect("spawner thread")
}

/// The built `wordcount` program of this workspace (`cargo test --workspace` builds it).
pub fn wordcount_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LOCAL_WORDCOUNT_BIN") {
        return PathBuf::from(path);
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_blob2batch"));
    let profile_dir = exe.parent().expect("target/<profile>");
    let target = profile_dir.parent().expect("target");
    let candidates = [
        profile_dir.join("wordcount"),
        target.join("release").join("wordcount"),
        target.join("debug").join("wordcount"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the wordcount program is not built (looked for {candidates:?}). Run the tests with \
                 `cargo test --workspace`, or build it first: `cargo build -p wordcount`"
            )
        })
}

/// A running `blob2batch` child whose stdout and stderr are collected as lines.
pub struct Process {
    child: Mutex<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    name: String,
}

impl Process {
    /// Spawns `cmd` (its stdout and stderr are piped here) and starts collecting its output.
    pub fn spawn(mut cmd: Command, name: &str) -> Process {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child =
            spawn_tied_to_this_process(cmd).unwrap_or_else(|e| panic!("start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Process {
            child: Mutex::new(child),
            lines,
            name: name.to_string(),
        }
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `count` lines match `pred` (the output is read by another thread, so a line
    /// written before an answer may arrive after it); panics with the whole output on timeout.
    pub fn wait_for_lines(&self, count: usize, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while self.output().iter().filter(|l| pred(l)).count() < count {
            assert!(
                Instant::now() < deadline,
                "{} did not write {count} such lines:\n{}",
                self.name,
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a line matching `pred`; panics with the whole output on timeout or exit.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.output().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{} exited ({status}):\n{}",
                    self.name,
                    self.output().join("\n")
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: expected line not seen within {timeout:?}:\n{}",
                    self.name,
                    self.output().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: nothing in the child runs afterwards, so whatever it started must stop by itself.
    pub fn kill_hard(&self) -> ExitStatus {
        let mut child = self.child.lock().unwrap();
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child")
    }

    /// SIGTERM, then waits (at most 30 s) for it to exit.
    pub fn stop(&self) -> ExitStatus {
        let pid = self.child.lock().unwrap().id() as i32;
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.lock().unwrap().kill();
                panic!(
                    "{} did not stop on SIGTERM:\n{}",
                    self.name,
                    self.output().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's pid (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `blob2batch dev`, started and ready.
pub struct Dev {
    process: Process,
    pub handler_url: String,
    pub work_dir: PathBuf,
}

impl std::ops::Deref for Dev {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl Dev {
    /// Starts `blob2batch dev` with `env` (plus a work dir and the wordcount binary) and waits
    /// until it says it is ready.
    pub fn start(env: &[(String, String)], args: &[&str], work_dir: &Path) -> Dev {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_blob2batch"));
        cmd.arg("dev")
            .args(args)
            .env_remove("STORAGE_ACCOUNT_URL")
            .env_remove("STORAGE_ACCOUNT_KEY")
            .env("LOCAL_WORK_DIR", work_dir)
            .env("LOCAL_WORDCOUNT_BIN", wordcount_bin())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let process = Process::spawn(cmd, "blob2batch dev");
        process.wait_for_line(Duration::from_secs(60), |l| l.starts_with("ready in "));
        let handler = process.wait_for_line(Duration::from_secs(5), |l| {
            l.trim_start().starts_with("handler ")
        });
        let handler_url = handler
            .split_whitespace()
            .nth(1)
            .expect("handler URL")
            .to_string();
        Dev {
            process,
            handler_url,
            work_dir: work_dir.to_path_buf(),
        }
    }

    /// Task ids the runner recorded for `blob` (its tasks/<id>/task.json name it).
    pub fn task_ids_for(&self, blob: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.work_dir.join("tasks")) else {
            return ids;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("task.json")) else {
                continue;
            };
            let task: serde_json::Value = serde_json::from_str(&text).unwrap();
            let source = task["environmentSettings"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == "WORDCOUNT_SOURCE")
                .and_then(|s| s["value"].as_str())
                .map(str::to_string);
            if source.as_deref() == Some(blob) {
                ids.push(task["id"].as_str().unwrap().to_string());
            }
        }
        ids.sort();
        ids
    }
}

/// `blob2batch serve` on a free loopback port, answering its readiness probe.
pub struct Serve {
    process: Process,
    pub url: String,
}

impl std::ops::Deref for Serve {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl Serve {
    /// Starts `blob2batch serve` with exactly `env` (nothing inherited but `PATH`) and waits until
    /// `GET /` answers, as the Functions host does.
    pub fn start<K: AsRef<std::ffi::OsStr>>(env: &[(K, String)]) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_blob2batch"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (k, v.as_str())));
        let process = Process::spawn(cmd, "blob2batch serve");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "serve did not listen:\n{}",
                process.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { process, url }
    }
}

/// What a finished `blob2batch` command printed and how it exited.
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// The JSON objects of stdout, one per line.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// The closing object of a `--json` run.
    pub fn counts(&self) -> serde_json::Value {
        self.json().pop().expect("a counts line")
    }
}

/// Runs `blob2batch ARGS` with exactly `env` (and `PATH`) to its end, and checks that nothing it
/// printed holds a secret of the test fixtures (keys, SAS signatures).
pub async fn run_cli(env: &[(String, String)], args: &[&str]) -> CliRun {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_blob2batch"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run blob2batch");
    let run = CliRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let all = format!("{}{}", run.stdout, run.stderr);
    for secret in [
        blob2batch::storage::azurite::WELL_KNOWN_KEY,
        super::fake_batch::KEY,
    ] {
        assert!(!all.contains(secret), "a key was printed: {all}");
    }
    assert!(
        !all.contains(&format!("SharedKey {}:", super::fake_batch::ACCOUNT)),
        "a Shared Key signature was printed: {all}"
    );
    // A SAS may be named, never shown: its signature must read redacted wherever it appears.
    for (at, _) in all.match_indices("sig=") {
        let value = &all[at + 4..];
        assert!(
            value.starts_with("REDACTED") || value.starts_with("<redacted>"),
            "a SAS signature was printed: {}",
            &all[at.saturating_sub(200)..(at + 80).min(all.len())]
        );
    }
    run
}
