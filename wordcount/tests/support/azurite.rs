//! A real Azurite (the Azure Storage emulator, installed by `npm ci` at the repository root) on a
//! loopback port of its own, and the few Blob REST calls the tests make to it, signed with the
//! emulator's well-known Shared Key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

pub const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION: &str = "2024-11-04";

/// A running Azurite, stopped when dropped.
pub struct Azurite {
    child: Child,
    pub port: u16,
    agent: ureq::Agent,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Azurite prints once it listens, before the URL (http or https) with its port.
const LISTENING: &str = "successfully listens on ";

/// The port Azurite says it listens on, read from its standard output (whose remainder is
/// drained, so that Azurite never blocks on a full pipe).
fn listening_port(stdout: std::process::ChildStdout) -> Option<u16> {
    use std::io::BufRead as _;
    let (found, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(url) = line.split(LISTENING).nth(1) {
                let port = url.trim().rsplit(':').next().and_then(|p| p.parse().ok());
                let _ = found.send(port);
                break;
            }
        }
        for _ in lines {}
    });
    port.recv_timeout(Duration::from_secs(30)).ok().flatten()
}

fn sign(message: &str) -> String {
    let key = STANDARD.decode(KEY).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

impl Azurite {
    /// Starts Azurite from `node_modules/.bin/azurite-blob`; panics with what to do if it is not
    /// installed.
    pub fn start() -> Azurite {
        Azurite::start_with(&[])
    }

    /// Starts Azurite with extra flags (`--cert` and `--key` for HTTPS).
    pub fn start_with(extra: &[&str]) -> Azurite {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = root.join("node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm ci --no-audit --no-fund` at the repository root \
             (expected {})",
            bin.display()
        );
        // Port 0: the system picks a free port as Azurite binds it, so that two Azurites started
        // at once never share one (a port found free and then bound can be taken in between).
        let mut child = Command::new(&bin)
            .args([
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start Azurite");
        let stdout = child.stdout.take().expect("piped stdout");
        let Some(port) = listening_port(stdout) else {
            let _ = child.kill();
            panic!("Azurite did not say which port it listens on within 30 s");
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Azurite { child, port, agent }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// The plain URL of `container/blob` (spaces in the name percent-encoded).
    pub fn url(&self, container: &str, blob: &str) -> String {
        format!(
            "{}/{container}/{}",
            self.endpoint(),
            blob.replace(' ', "%20")
        )
    }

    /// A Shared Key signed request; returns the status and the response headers asked for.
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, ureq::http::HeaderMap) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut ms: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .filter(|(k, _)| k.starts_with("x-ms-"))
            .collect();
        ms.push(("x-ms-date".into(), date.clone()));
        ms.push(("x-ms-version".into(), VERSION.into()));
        ms.sort();
        let path = path.replace(' ', "%20");
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}/{path}");
        let mut sorted_query: Vec<_> = query.to_vec();
        sorted_query.sort();
        for (k, v) in &sorted_query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut to_sign = format!("{method}\n\n\n{length}\n\n\n\n\n\n\n\n\n");
        for (k, v) in &ms {
            to_sign.push_str(&format!("{k}:{v}\n"));
        }
        to_sign.push_str(&resource);
        let mut url = format!("{}/{path}", self.endpoint());
        for (i, (k, v)) in query.iter().enumerate() {
            url.push_str(if i == 0 { "?" } else { "&" });
            url.push_str(&format!("{k}={v}"));
        }
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in &ms {
            request = request.header(k.as_str(), v.as_str());
        }
        request = request.header(
            "Authorization",
            format!("SharedKey {ACCOUNT}:{}", sign(&to_sign)),
        );
        let response = self
            .agent
            .run(request.body(body.to_vec()).unwrap())
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        (response.status().as_u16(), response.headers().clone())
    }

    /// Creates a container; `public` lets anyone read its blobs without a SAS.
    pub fn create_container(&self, container: &str, public: bool) {
        let headers: &[(&str, &str)] = if public {
            &[("x-ms-blob-public-access", "blob")]
        } else {
            &[]
        };
        let (status, _) = self.call("PUT", container, &[("restype", "container")], headers, b"");
        assert_eq!(status, 201, "create container {container}");
    }

    /// Uploads a block blob; returns its eTag, unquoted.
    pub fn put(&self, container: &str, blob: &str, data: &[u8]) -> String {
        let (status, headers) = self.call(
            "PUT",
            &format!("{container}/{blob}"),
            &[],
            &[("x-ms-blob-type", "BlockBlob")],
            data,
        );
        assert_eq!(status, 201, "put {container}/{blob}");
        headers["etag"]
            .to_str()
            .unwrap()
            .trim_matches('"')
            .to_owned()
    }

    /// Moves a blob to an access tier (`Hot`, `Cool`, `Archive`).
    pub fn set_tier(&self, container: &str, blob: &str, tier: &str) {
        let (status, _) = self.call(
            "PUT",
            &format!("{container}/{blob}"),
            &[("comp", "tier")],
            &[("x-ms-access-tier", tier)],
            b"",
        );
        assert!(status == 200 || status == 202, "set tier {tier}: {status}");
    }

    /// A read-only service SAS URL for one blob, signed with `key_ok`'s key or a wrong one.
    pub fn sas_url(&self, container: &str, blob: &str, key_ok: bool) -> String {
        let (sp, se, spr, sv, sr) = ("r", "2099-01-01T00:00:00Z", "https,http", "2020-12-06", "b");
        let canonical = format!("/blob/{ACCOUNT}/{container}/{blob}");
        let to_sign = [
            sp, "", se, &canonical, "", "", spr, sv, sr, "", "", "", "", "", "", "",
        ]
        .join("\n");
        let mut sig = sign(&to_sign);
        if !key_ok {
            sig = sign("something else");
        }
        let sig = sig
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        format!(
            "{}?sv={sv}&sr={sr}&sp={sp}&se={se}&spr={spr}&sig={sig}",
            self.url(container, blob)
        )
    }
}
