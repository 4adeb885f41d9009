//! A second Azurite per test binary, for what needs Entra ID tokens: HTTPS with a self-signed
//! certificate made for it, and `--oauth basic`. Never skipped: if `openssl` or Azurite cannot
//! run, the test fails saying what to install.
//!
//! Azurite's basic OAuth checks a bearer token's `iss` (an Entra ID issuer prefix), `aud`
//! (`https://storage.azure.com` among others), `nbf`, `exp` and `iat`, never its signature, so
//! [`TestToken`] hands out unsigned JWTs with those claims. It serves only HTTPS then, so every
//! client of it trusts the certificate: [`OAuthAzurite::http_client`].

use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::Transport;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blob2batch::storage::azurite::{self, WELL_KNOWN_ACCOUNT};
use time::OffsetDateTime;

/// The tenant and object ids the tokens name; a user delegation key carries both.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OBJECT_ID: &str = "0b2c8d5e-6f71-4a83-9b4c-5d6e7f8091a2";

pub struct OAuthAzurite {
    pub port: u16,
    /// `https://127.0.0.1:{port}/devstoreaccount1`
    pub url: String,
    /// The certificate Azurite serves (PEM), which its clients trust.
    pub certificate: Vec<u8>,
    pub log: PathBuf,
    /// Holds the certificate and key for as long as the test binary runs.
    _dir: tempfile::TempDir,
}

impl OAuthAzurite {
    /// An HTTP client that trusts this Azurite's certificate, and only it.
    pub fn http_client(&self) -> reqwest::Client {
        let certificate =
            reqwest::Certificate::from_pem(&self.certificate).expect("a PEM certificate");
        reqwest::Client::builder()
            .tls_certs_only([certificate])
            .build()
            .expect("an HTTP client trusting the test certificate")
    }

    /// An SDK transport over [`OAuthAzurite::http_client`].
    pub fn transport(&self) -> Transport {
        Transport::new(Arc::new(self.http_client()))
    }
}

/// A credential whose tokens Azurite's basic OAuth accepts.
#[derive(Debug)]
pub struct TestToken;

#[async_trait::async_trait]
impl TokenCredential for TestToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let now = OffsetDateTime::now_utc();
        let expires = now + Duration::from_secs(3600);
        Ok(AccessToken::new(jwt(now, expires), expires))
    }
}

/// An unsigned JWT (Azurite does not check signatures) with the claims Azurite checks.
fn jwt(now: OffsetDateTime, expires: OffsetDateTime) -> String {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "aud": "https://storage.azure.com",
        "iss": format!("https://sts.windows.net/{TENANT_ID}/"),
        "iat": now.unix_timestamp() - 60,
        "nbf": now.unix_timestamp() - 60,
        "exp": expires.unix_timestamp(),
        "oid": OBJECT_ID,
        "tid": TENANT_ID,
    });
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        URL_SAFE_NO_PAD.encode(b"not checked")
    )
}

static AZURITE: OnceLock<OAuthAzurite> = OnceLock::new();

/// The HTTPS, OAuth Azurite of this test binary, started on first use.
pub fn oauth_azurite() -> &'static OAuthAzurite {
    AZURITE.get_or_init(start)
}

/// A certificate for 127.0.0.1, valid for a day, made with the `openssl` command. Not a CA
/// certificate, as `req -x509` makes by default: rustls refuses a CA certificate as a server's
/// own (`CaUsedAsEndEntity`), even when it trusts it.
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` to make a test certificate ({e}): install it (Debian: apt-get install openssl)")
        });
    assert!(
        output.status.success(),
        "openssl could not make a test certificate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (key, cert)
}

fn start() -> OAuthAzurite {
    let bin = azurite::azurite_bin().unwrap_or_else(|e| panic!("cannot run the test: {e}"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (key, cert) = make_certificate(dir.path());
    let log = dir.path().join("azurite.log");
    let log_file = std::fs::File::create(&log).expect("create the Azurite log file");
    let mut cmd = Command::new(&bin);
    // Port 0: the system picks a free one as Azurite binds it, and Azurite says which.
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
        .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--loose"])
        .args(["--disableTelemetry", "--oauth", "basic", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe. With PR_SET_PDEATHSIG the kernel ends Azurite with
    // the thread that spawned it, which is why that thread lives as long as the test binary.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = cmd.spawn();
        let spawned = child.is_ok();
        tx.send(child).expect("report the Azurite child");
        if spawned {
            loop {
                std::thread::park();
            }
        }
    });
    let child = rx.recv().expect("Azurite spawner").unwrap_or_else(|e| {
        panic!(
            "cannot start Azurite ({}): {e}. Run `npm ci` at the repository root (Node.js 20+).",
            bin.display()
        )
    });
    let port = wait_until_listening(child, &log);
    OAuthAzurite {
        port,
        url: format!("https://127.0.0.1:{port}/{WELL_KNOWN_ACCOUNT}"),
        certificate: std::fs::read(&cert).expect("read the test certificate"),
        log,
        _dir: dir,
    }
}

/// The port Azurite announced, once it accepts connections there.
fn wait_until_listening(mut child: std::process::Child, log: &Path) -> u16 {
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(port) = azurite::announced_port(&read_log())
            && TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            // Not killed when the handle goes: PDEATHSIG ends Azurite with the test binary.
            std::mem::forget(child);
            return port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "Azurite (HTTPS, OAuth) exited ({status}) during start-up: {}",
                read_log()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "Azurite (HTTPS, OAuth) did not start within 60 s: {}",
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
