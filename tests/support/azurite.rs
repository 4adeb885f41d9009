//! One Azurite per test binary, on a free port, in memory. Never skipped: if it cannot start, the
//! test fails with what to do about it.

use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use blob2batch::storage::StorageAccount;
use blob2batch::storage::azurite::{self, WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY};

pub struct TestAzurite {
    pub port: u16,
    /// `http://127.0.0.1:{port}/devstoreaccount1`
    pub url: String,
    pub log: PathBuf,
}

impl TestAzurite {
    pub fn account(&self) -> StorageAccount {
        StorageAccount::new(&self.url, azurite::well_known_key())
    }

    /// Environment for a `blob2batch` process pointed at this Azurite.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("STORAGE_ACCOUNT_URL".into(), self.url.clone()),
            ("STORAGE_ACCOUNT_KEY".into(), WELL_KNOWN_KEY.into()),
        ]
    }
}

static AZURITE: OnceLock<TestAzurite> = OnceLock::new();

/// The Azurite of this test binary, started on first use.
pub fn azurite() -> &'static TestAzurite {
    AZURITE.get_or_init(start)
}

fn start() -> TestAzurite {
    let bin = match azurite::azurite_bin() {
        Ok(bin) => bin,
        Err(e) => panic!("cannot run the end-to-end tests: {e}"),
    };
    let log = std::env::temp_dir().join(format!(
        "blob2batch-test-azurite-{}.log",
        std::process::id()
    ));
    let log_file = std::fs::File::create(&log).expect("create the Azurite log file");
    let (tx, rx) = std::sync::mpsc::channel();
    // The child is spawned from a thread that lives as long as the test binary, with
    // PR_SET_PDEATHSIG: when the test binary exits (or dies), the kernel kills Azurite.
    let spawn_bin = bin.clone();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&spawn_bin);
        // Port 0: the system picks a free one as Azurite binds it, and Azurite says which.
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
            ])
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn();
        let ok = child.is_ok();
        tx.send(child).expect("report the Azurite child");
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    let mut child = match rx.recv().expect("Azurite spawner") {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot start Azurite ({}): {e}. Run `npm ci` at the repository root (Node.js 20+).",
            bin.display()
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        if let Some(port) = azurite::announced_port(&read_log(&log))
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "Azurite exited ({status}) during start-up: {}\nRun `npm ci` at the repository root (Node.js 20+).",
                read_log(&log)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Azurite did not start within 60 s: {}", read_log(&log));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The handle is dropped without killing: PDEATHSIG ends Azurite with the test binary.
    std::mem::forget(child);
    let _ = WELL_KNOWN_ACCOUNT;
    TestAzurite {
        port,
        url: azurite::blob_url("127.0.0.1", port),
        log,
    }
}

fn read_log(path: &PathBuf) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}
