//! Azurite, the storage emulator: its well-known account, and starting the project's own copy
//! (installed with `npm ci` at the repository root, pinned in `package.json`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::http_client::{HttpClientError, HttpClientOptions, http_client};
use crate::loopback::is_loopback_host;
use crate::sync::lock;

/// The emulator's well-known account name.
pub const WELL_KNOWN_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known account key (public, documented by Microsoft; not a secret).
pub const WELL_KNOWN_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The emulator's default blob endpoint (path-style: the account is the first path segment).
pub(crate) const DEFAULT_BLOB_URL: &str = "http://127.0.0.1:10000/devstoreaccount1";
/// Overrides where the `azurite-blob` executable is.
pub(crate) const AZURITE_BIN_ENV: &str = "AZURITE_BIN";

/// How long `start` waits for the emulator to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The well-known account's key.
pub fn well_known_key() -> super::key::StorageAccountKey {
    super::key::StorageAccountKey::from_base64(WELL_KNOWN_ACCOUNT, WELL_KNOWN_KEY)
        .expect("the well-known key is valid base64")
}

/// The blob endpoint of the well-known account on `host:port`.
pub fn blob_url(host: &str, port: u16) -> String {
    format!("http://{host}:{port}/{WELL_KNOWN_ACCOUNT}")
}

/// Whether something answers HTTP at `url` within a second (any status counts).
pub async fn is_reachable(url: &str) -> Result<bool, HttpClientError> {
    Ok(answers(&probe_client()?, url).await)
}

/// A client that gives up on an answer after a second.
fn probe_client() -> Result<reqwest::Client, HttpClientError> {
    http_client(&HttpClientOptions {
        request_timeout: Some(Duration::from_secs(1)),
        ..HttpClientOptions::default()
    })
}

async fn answers(client: &reqwest::Client, url: &str) -> bool {
    client.get(url).send().await.is_ok()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzuriteOptions {
    /// Loopback address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Keep data in this folder; in memory when `None`.
    pub persist: Option<PathBuf>,
    /// Where Azurite writes its debug log (with the string-to-sign of every SAS it checks).
    pub debug_log: Option<PathBuf>,
}

impl Default for AzuriteOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 10000,
            persist: None,
            debug_log: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AzuriteError {
    #[error(
        "Azurite is not installed: `{0}` does not exist. Run `npm ci` at the repository root \
         (Node.js 20 or later), or set {AZURITE_BIN_ENV} to an `azurite-blob` executable"
    )]
    NotInstalled(PathBuf),
    #[error("Azurite may only listen on a loopback address, not `{0}`")]
    NotLoopback(String),
    #[error("could not start Azurite (`{bin}`): {source}")]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("Azurite exited during start-up ({status}); its output:\n{output}")]
    Exited { status: String, output: String },
    #[error("Azurite did not answer at {url} within {secs} s; its output:\n{output}")]
    Timeout {
        url: String,
        secs: u64,
        output: String,
    },
    #[error("no free port on {host}: {source}")]
    Port {
        host: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    HttpClient(#[from] HttpClientError),
}

/// Where the project's `azurite-blob` is: `AZURITE_BIN`, else `node_modules/.bin/azurite-blob` in
/// the repository this binary was built from or that contains the running executable.
pub fn azurite_bin() -> Result<PathBuf, AzuriteError> {
    if let Some(bin) = std::env::var_os(AZURITE_BIN_ENV).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.exists() {
            Ok(bin)
        } else {
            Err(AzuriteError::NotInstalled(bin))
        };
    }
    let relative = Path::new("node_modules").join(".bin").join("azurite-blob");
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    roots
        .iter()
        .map(|root| root.join(&relative))
        .find(|bin| bin.exists())
        .ok_or_else(|| {
            AzuriteError::NotInstalled(Path::new(env!("CARGO_MANIFEST_DIR")).join(&relative))
        })
}

/// A running Azurite blob service started by us. Stopped (with its whole process group) by
/// [`AzuriteProcess::stop`] or on drop.
pub struct AzuriteProcess {
    child: Option<Child>,
    /// The thread whose end sends Azurite SIGTERM; it outlives the stop in `Drop`.
    _parent: ParentThread,
    pgid: Option<i32>,
    url: String,
    port: u16,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for AzuriteProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzuriteProcess")
            .field("url", &self.url)
            .field("pid", &self.pgid)
            .finish()
    }
}

impl AzuriteProcess {
    /// The blob endpoint of the well-known account, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The last lines Azurite printed.
    pub fn output(&self) -> String {
        let lines = lock(&self.output);
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Terminates Azurite (SIGTERM to its process group, SIGKILL after 5 s) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, libc::SIGTERM);
            if let Some(child) = self.child.as_mut()
                && tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_err()
            {
                signal_group(pgid, libc::SIGKILL);
                let _ = child.wait().await;
            }
            // Children of the group that outlived the leader.
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

impl Drop for AzuriteProcess {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, libc::SIGKILL);
            if let Some(child) = self.child.as_mut() {
                let _ = child.try_wait();
            }
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: killpg only sends a signal; the group is the one we created for the child.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// A port that was free a moment ago on `host`.
pub fn free_port(host: &str) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((host, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts the project's Azurite blob service and waits until it answers.
pub async fn start(options: AzuriteOptions) -> Result<AzuriteProcess, AzuriteError> {
    if !is_loopback_host(&options.host) {
        return Err(AzuriteError::NotLoopback(options.host));
    }
    let bin = azurite_bin()?;
    // Port 0: the system picks a free port as Azurite binds it (Azurite then says which), so
    // that two emulators started at once never race for one found free beforehand.
    let port = options.port;
    let probe = probe_client()?;
    let (mut child, parent) = spawn_with_parent_death_signal(command(&bin, &options, port))
        .await
        .map_err(|source| AzuriteError::Spawn {
            bin: bin.clone(),
            source,
        })?;
    let output = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(out) = child.stdout.take() {
        collect(out, output.clone());
    }
    if let Some(err) = child.stderr.take() {
        collect(err, output.clone());
    }
    let pgid = child.id().map(|id| id as i32);
    let host = if options.host.contains(':') && !options.host.starts_with('[') {
        format!("[{}]", options.host)
    } else {
        options.host.clone()
    };
    let process = AzuriteProcess {
        child: Some(child),
        _parent: parent,
        pgid,
        url: blob_url(&host, port),
        port,
        output,
    };
    wait_until_ready(process, &probe).await
}

/// The command line of an Azurite blob service on `port` as `options` say.
fn command(bin: &Path, options: &AzuriteOptions, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--blobHost")
        .arg(&options.host)
        .arg("--blobPort")
        .arg(port.to_string())
        .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry"]);
    match &options.persist {
        Some(dir) => {
            let _ = std::fs::create_dir_all(dir);
            cmd.arg("--location").arg(dir);
        }
        None => {
            cmd.arg("--inMemoryPersistence");
        }
    }
    if let Some(log) = &options.debug_log {
        cmd.arg("--debug").arg(log);
    }
    cmd.current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Waits until the started Azurite answers, or says why it will not.
async fn wait_until_ready(
    mut process: AzuriteProcess,
    probe: &reqwest::Client,
) -> Result<AzuriteProcess, AzuriteError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(child) = process.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            // Give the readers a moment to collect the last words.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(AzuriteError::Exited {
                status: status.to_string(),
                output: process.output(),
            });
        }
        if process.port == 0 {
            if let Some(port) = announced_port(&process.output()) {
                process.url = process.url.replace(":0/", &format!(":{port}/"));
                process.port = port;
            }
        } else if answers(probe, &process.url).await {
            return Ok(process);
        }
        if Instant::now() > deadline {
            return Err(AzuriteError::Timeout {
                url: process.url.clone(),
                secs: START_TIMEOUT.as_secs(),
                output: process.output(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Keeps alive the thread that spawned Azurite; it ends when this is dropped.
struct ParentThread {
    _stop: std::sync::mpsc::Sender<()>,
}

/// Spawns `cmd` so that the kernel sends it SIGTERM when this process dies, however it dies
/// (SIGKILL included, when nothing here can stop Azurite). PR_SET_PDEATHSIG fires when the
/// spawning *thread* ends, so the spawn happens on a thread of its own that lives as long as the
/// returned [`ParentThread`], not on a runtime thread whose lifetime is the runtime's business.
async fn spawn_with_parent_death_signal(
    mut cmd: Command,
) -> std::io::Result<(Child, ParentThread)> {
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // This process may have died before the signal was armed.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let runtime = tokio::runtime::Handle::current();
    let (child_tx, child_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("azurite-parent".into())
        .spawn(move || {
            let _runtime = runtime.enter();
            let spawned = cmd.spawn();
            let ok = spawned.is_ok();
            let _ = child_tx.send(spawned);
            if ok {
                // Returns when the sender is dropped.
                let _ = stop_rx.recv();
            }
        })?;
    let child = child_rx
        .await
        .map_err(|_| std::io::Error::other("the thread spawning Azurite ended"))??;
    Ok((child, ParentThread { _stop: stop_tx }))
}

/// The port in Azurite's "successfully listens on http://host:port" line, once it has said it:
/// how to learn the port of an Azurite started with `--blobPort 0`.
pub fn announced_port(output: &str) -> Option<u16> {
    output
        .lines()
        .find_map(|line| line.split("successfully listens on ").nth(1))
        .and_then(|url| url.trim().rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .filter(|&port| port != 0)
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, sink: Arc<Mutex<VecDeque<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut sink = lock(&sink);
            if sink.len() >= 50 {
                sink.pop_front();
            }
            sink.push_back(line);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_azurite_announces() {
        let output = "Azurite Blob service is starting on 127.0.0.1:0\n\
                      Azurite Blob service successfully listens on http://127.0.0.1:33437\n";
        assert_eq!(announced_port(output), Some(33437));
        assert_eq!(
            announced_port("Azurite Blob service successfully listens on https://[::1]:443"),
            Some(443)
        );
        assert_eq!(
            announced_port("Azurite Blob service is starting on 127.0.0.1:0"),
            None
        );
    }

    #[test]
    fn well_known_key_is_valid() {
        assert_eq!(well_known_key().account(), WELL_KNOWN_ACCOUNT);
        assert_eq!(blob_url("127.0.0.1", 10000), DEFAULT_BLOB_URL);
    }
}
