//! Settings, read from the environment once at start-up and validated as a whole.
//!
//! Every problem is collected and reported together, so that a misconfigured app says everything
//! that is wrong with it in one message instead of one problem per restart. Secrets are held in
//! `secrecy` types, so neither `Debug` nor a log line can print them.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::duration::{format_iso8601, parse_iso8601};
use crate::loopback::is_loopback_url;

/// Azurite's blob endpoint for its well-known development account.
pub const AZURITE_URL: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Where submitted work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunnerKind {
    /// Azure Batch, through its REST API.
    Batch,
    /// This machine (the `dev` pipeline and tests).
    Local,
}

/// How a blob version becomes Batch work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitMode {
    /// A task added to the long-lived job `BATCH_JOB_ID` on pool `BATCH_POOL_ID`.
    Task,
    /// A job per blob with an auto pool that lives and dies with the job.
    Job,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Address `serve` listens on; the Functions host always calls 127.0.0.1.
    pub listen_address: IpAddr,
    pub port: u16,
    pub storage: StorageSettings,
    pub input_container: String,
    pub output_container: String,
    pub input_prefix: Option<String>,
    pub input_suffix: Option<String>,
    pub runner: RunnerKind,
    pub batch: BatchSettings,
    pub task: TaskSettings,
    pub local: LocalSettings,
    /// When set, `POST /api/events` requires `?code=<key>` (direct webhook hosting).
    pub webhook_key: Option<SecretString>,
}

#[derive(Clone, Debug)]
pub struct StorageSettings {
    /// Blob endpoint of the account, without a trailing slash.
    pub account_url: Url,
    pub account_name: String,
    /// Base64 account key; when present, tasks get service SAS URLs signed with it.
    pub account_key: Option<SecretString>,
}

#[derive(Clone, Debug)]
pub struct BatchSettings {
    /// Present when `RUNNER=batch`.
    pub account_url: Option<Url>,
    pub account_name: Option<String>,
    /// Shared Key when present, Entra ID otherwise.
    pub account_key: Option<SecretString>,
    pub pool_id: String,
    pub job_id: String,
    /// ARM id of the pool's user-assigned identity.
    pub node_identity: Option<String>,
    pub submit_mode: SubmitMode,
    pub auto_pool_vm_size: String,
    pub auto_pool_low_priority: bool,
    /// Total time one submission may take, retries included (at most 20 s, well inside Event
    /// Grid's 30 s wait).
    pub retry_budget: Duration,
}

#[derive(Clone, Debug)]
pub struct TaskSettings {
    /// Container image reference the task runs.
    pub image: String,
    pub max_wall_clock_time: Duration,
    pub max_retry_count: i32,
    pub retention_time: Duration,
    /// The longest a task may wait for a node; bounds how long its SAS URLs stay valid.
    pub max_queue_time: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct LocalSettings {
    pub work_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub wordcount_bin: Option<PathBuf>,
    /// Run tasks in this container image with podman instead of the local binary.
    pub podman_image: Option<String>,
}

/// Every problem found in the settings, one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid settings:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Local image name used when `WORDCOUNT_IMAGE` is not set and tasks run on this machine.
pub const DEFAULT_LOCAL_IMAGE: &str = "localhost/wordcount:latest";

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };

        let listen_address = r.parse("LISTEN_ADDRESS", "an IP address", |v| v.parse().ok());
        let port = r.parse("FUNCTIONS_CUSTOMHANDLER_PORT", "a TCP port number", |v| {
            v.parse::<u16>().ok()
        });

        let runner = r
            .parse("RUNNER", "`batch` or `local`", |v| match v {
                "batch" => Some(RunnerKind::Batch),
                "local" => Some(RunnerKind::Local),
                _ => None,
            })
            .unwrap_or(RunnerKind::Batch);

        let storage = r.storage();
        let input_container = r.container("INPUT_CONTAINER", "input");
        let output_container = r.container("OUTPUT_CONTAINER", "output");
        if input_container == output_container {
            r.problem(format!(
                "INPUT_CONTAINER and OUTPUT_CONTAINER are both `{input_container}`: results would \
                 trigger new tasks; use two containers"
            ));
        }
        let input_prefix = r.get("INPUT_PREFIX");
        let input_suffix = r.get("INPUT_SUFFIX");

        let batch = r.batch(runner);
        let task = r.task(runner);
        let local = LocalSettings {
            work_dir: r.get("LOCAL_WORK_DIR").map(PathBuf::from),
            concurrency: r.parse("LOCAL_CONCURRENCY", "a positive whole number", |v| {
                v.parse::<usize>().ok().filter(|n| *n > 0)
            }),
            wordcount_bin: r.get("LOCAL_WORDCOUNT_BIN").map(PathBuf::from),
            podman_image: r.get("LOCAL_PODMAN_IMAGE"),
        };
        let webhook_key = r.get("WEBHOOK_KEY").map(SecretString::from);

        if let Some(storage) = &storage {
            let has_key = storage.account_key.is_some();
            if runner == RunnerKind::Local && !has_key {
                r.problem(
                    "STORAGE_ACCOUNT_KEY is required with RUNNER=local: the local runner reaches \
                     storage through SAS URLs only"
                        .into(),
                );
            }
            if runner == RunnerKind::Batch && !has_key && batch.node_identity.is_none() {
                r.problem(
                    "tasks need storage access: set STORAGE_ACCOUNT_KEY (SAS URLs) or \
                     BATCH_NODE_IDENTITY (the pool's managed identity)"
                        .into(),
                );
            }
            if runner == RunnerKind::Batch && batch.submit_mode == SubmitMode::Job && !has_key {
                r.problem(
                    "BATCH_SUBMIT_MODE=job needs STORAGE_ACCOUNT_KEY: an auto pool cannot carry a \
                     managed identity"
                        .into(),
                );
            }
        }

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Settings {
            listen_address: listen_address.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: port.unwrap_or(8080),
            storage: storage.expect("problems reported above"),
            input_container,
            output_container,
            input_prefix,
            input_suffix,
            runner,
            batch,
            task,
            local,
            webhook_key,
        })
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Parses an optional setting; a present but malformed value is a problem. Values are not
    /// echoed: some settings are secrets.
    fn parse<T>(&mut self, name: &str, expected: &str, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        let value = self.get(name)?;
        let parsed = f(&value);
        if parsed.is_none() {
            self.problem(format!("{name} must be {expected}"));
        }
        parsed
    }

    fn required(&mut self, name: &str, why: &str) -> Option<String> {
        let value = self.get(name);
        if value.is_none() {
            self.problem(format!("{name} is required{why}"));
        }
        value
    }

    fn container(&mut self, name: &str, default: &str) -> String {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        if !is_valid_container_name(&value) {
            self.problem(format!(
                "{name} must be a container name: 3-63 lower-case letters, digits and single \
                 hyphens, starting and ending with a letter or digit"
            ));
        }
        value
    }

    fn duration(&mut self, name: &str, default: Duration) -> Duration {
        self.parse(
            name,
            "an ISO 8601 duration such as PT1H or P1D",
            parse_iso8601,
        )
        .unwrap_or(default)
    }

    fn storage(&mut self) -> Option<StorageSettings> {
        let raw = self.required("STORAGE_ACCOUNT_URL", "")?;
        let url = match Url::parse(raw.trim_end_matches('/')) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
            _ => {
                self.problem(
                    "STORAGE_ACCOUNT_URL must be an http(s) URL such as \
                     https://acct.blob.core.windows.net"
                        .into(),
                );
                return None;
            }
        };
        if url.query().is_some() || url.fragment().is_some() {
            self.problem("STORAGE_ACCOUNT_URL must not carry a query string (no SAS here)".into());
            return None;
        }
        let account_name = self
            .get("STORAGE_ACCOUNT_NAME")
            .or_else(|| storage_account_name(&url));
        let Some(account_name) = account_name else {
            self.problem(
                "STORAGE_ACCOUNT_NAME is required: it cannot be derived from STORAGE_ACCOUNT_URL"
                    .into(),
            );
            return None;
        };
        let account_key = self.get("STORAGE_ACCOUNT_KEY");
        if let Some(key) = &account_key
            && !is_base64_key(key)
        {
            self.problem("STORAGE_ACCOUNT_KEY must be a base64 account key".into());
        }
        Some(StorageSettings {
            account_url: url,
            account_name,
            account_key: account_key.map(SecretString::from),
        })
    }

    fn batch(&mut self, runner: RunnerKind) -> BatchSettings {
        let needed = runner == RunnerKind::Batch;
        let account_url = if needed {
            self.required("BATCH_ACCOUNT_URL", " when RUNNER=batch")
        } else {
            self.get("BATCH_ACCOUNT_URL")
        };
        let account_key = self.get("BATCH_ACCOUNT_KEY");
        if let Some(key) = &account_key
            && !is_base64_key(key)
        {
            self.problem("BATCH_ACCOUNT_KEY must be a base64 account key".into());
        }
        let account_url = account_url.and_then(|raw| {
            let parsed = Url::parse(raw.trim_end_matches('/'))
                .ok()
                .filter(|u| u.host().is_some());
            match parsed {
                Some(u) if u.scheme() == "https" => Some(u),
                Some(u) if u.scheme() == "http" && is_loopback_url(&u) && account_key.is_some() => {
                    Some(u)
                }
                Some(u) if u.scheme() == "http" => {
                    self.problem(
                        "BATCH_ACCOUNT_URL may use http only for a loopback address with \
                         BATCH_ACCOUNT_KEY (tests); use https"
                            .into(),
                    );
                    let _ = u;
                    None
                }
                _ => {
                    self.problem(
                        "BATCH_ACCOUNT_URL must be a URL such as \
                         https://acct.region.batch.azure.com"
                            .into(),
                    );
                    None
                }
            }
        });
        let account_name = self.get("BATCH_ACCOUNT_NAME").or_else(|| {
            account_url
                .as_ref()
                .and_then(|u| u.host_str())
                .and_then(|h| h.split('.').next())
                .map(str::to_owned)
        });
        let pool_id = self.batch_id("BATCH_POOL_ID", "wordcount");
        let job_id = self.batch_id("BATCH_JOB_ID", "wordcount");
        let submit_mode = self
            .parse("BATCH_SUBMIT_MODE", "`task` or `job`", |v| match v {
                "task" => Some(SubmitMode::Task),
                "job" => Some(SubmitMode::Job),
                _ => None,
            })
            .unwrap_or(SubmitMode::Task);
        let auto_pool_low_priority = self
            .parse("BATCH_AUTO_POOL_LOW_PRIORITY", "`true` or `false`", |v| {
                v.parse::<bool>().ok()
            })
            .unwrap_or(false);
        let retry_budget = self
            .parse(
                "BATCH_RETRY_BUDGET",
                "an ISO 8601 duration from PT1S to PT20S",
                |v| parse_iso8601(v).filter(|d| (1..=20).contains(&d.as_secs())),
            )
            .unwrap_or(Duration::from_secs(20));
        BatchSettings {
            retry_budget,
            account_url,
            account_name,
            account_key: account_key.map(SecretString::from),
            pool_id,
            job_id,
            node_identity: self.get("BATCH_NODE_IDENTITY"),
            submit_mode,
            auto_pool_vm_size: self
                .get("BATCH_AUTO_POOL_VM_SIZE")
                .unwrap_or_else(|| "standard_d2s_v5".into()),
            auto_pool_low_priority,
        }
    }

    fn batch_id(&mut self, name: &str, default: &str) -> String {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        if !is_valid_batch_id(&value) {
            self.problem(format!(
                "{name} must be 1-64 letters, digits, hyphens or underscores"
            ));
        }
        value
    }

    fn task(&mut self, runner: RunnerKind) -> TaskSettings {
        let image = if runner == RunnerKind::Batch {
            self.required("WORDCOUNT_IMAGE", " when RUNNER=batch")
        } else {
            self.get("WORDCOUNT_IMAGE")
        }
        .unwrap_or_else(|| DEFAULT_LOCAL_IMAGE.to_owned());
        let max_retry_count = self
            .parse(
                "TASK_MAX_RETRY_COUNT",
                "a whole number from -1 to 100",
                |v| v.parse::<i32>().ok().filter(|n| (-1..=100).contains(n)),
            )
            .unwrap_or(2);
        TaskSettings {
            image,
            max_wall_clock_time: self
                .duration("TASK_MAX_WALL_CLOCK_TIME", Duration::from_secs(3600)),
            max_retry_count,
            retention_time: self.duration("TASK_RETENTION_TIME", Duration::from_secs(86_400)),
            max_queue_time: self.duration("TASK_MAX_QUEUE_TIME", Duration::from_secs(12 * 3600)),
        }
    }
}

impl TaskSettings {
    /// The longest a task can exist before it has finished: queued, then every try running to
    /// its wall-clock limit. SAS URLs given to a task must outlive it.
    pub fn longest_lifetime(&self) -> Duration {
        let tries = match self.max_retry_count {
            n if n < 0 => 10, // "unlimited": bound the SAS anyway
            n => n as u32 + 1,
        };
        self.max_queue_time + self.max_wall_clock_time * tries
    }

    pub fn max_wall_clock_time_iso(&self) -> String {
        format_iso8601(self.max_wall_clock_time)
    }

    pub fn retention_time_iso(&self) -> String {
        format_iso8601(self.retention_time)
    }
}

/// The account name in a blob endpoint: the first label of `acct.blob.core.windows.net`, or the
/// first path segment of a path-style URL (Azurite, `http://127.0.0.1:10000/devstoreaccount1`).
pub fn storage_account_name(url: &Url) -> Option<String> {
    let path_account = url
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty());
    if let Some(account) = path_account {
        return Some(account.to_owned());
    }
    match url.host() {
        Some(url::Host::Domain(host)) if host.contains('.') => {
            host.split('.').next().map(str::to_owned)
        }
        _ => None,
    }
}

fn is_base64_key(value: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .is_ok_and(|k| !k.is_empty())
}

/// Blob container naming rules.
pub fn is_valid_container_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--")
}

/// Batch job, pool and task ids: letters, digits, `-`, `_`; 1 to 64 characters.
pub fn is_valid_batch_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    fn batch_minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net/"),
            (
                "BATCH_ACCOUNT_URL",
                "https://mybatch.westeurope.batch.azure.com",
            ),
            ("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1.0.0"),
            (
                "BATCH_NODE_IDENTITY",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool",
            ),
        ]
    }

    #[test]
    fn defaults_apply_to_a_minimal_batch_configuration() {
        let s = settings(&batch_minimal()).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.listen_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            s.storage.account_url.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(s.storage.account_name, "acct");
        assert_eq!(s.input_container, "input");
        assert_eq!(s.output_container, "output");
        assert_eq!(s.runner, RunnerKind::Batch);
        assert_eq!(s.batch.account_name.as_deref(), Some("mybatch"));
        assert_eq!(s.batch.pool_id, "wordcount");
        assert_eq!(s.batch.job_id, "wordcount");
        assert_eq!(s.batch.submit_mode, SubmitMode::Task);
        assert_eq!(s.task.max_wall_clock_time, Duration::from_secs(3600));
        assert_eq!(s.task.max_retry_count, 2);
        assert_eq!(s.task.retention_time_iso(), "P1D");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = settings(&[
            ("RUNNER", "batch"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "70000"),
            ("INPUT_CONTAINER", "Bad_Name"),
            ("TASK_MAX_WALL_CLOCK_TIME", "an hour"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "FUNCTIONS_CUSTOMHANDLER_PORT",
            "STORAGE_ACCOUNT_URL is required",
            "INPUT_CONTAINER",
            "BATCH_ACCOUNT_URL is required",
            "WORDCOUNT_IMAGE is required",
            "TASK_MAX_WALL_CLOCK_TIME",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(err.problems.len(), 6, "{text}");
    }

    #[test]
    fn secrets_never_appear_in_debug_or_errors() {
        let mut pairs = batch_minimal();
        pairs.push(("STORAGE_ACCOUNT_KEY", KEY));
        pairs.push(("BATCH_ACCOUNT_KEY", KEY));
        pairs.push(("WEBHOOK_KEY", "hook-secret-123"));
        let s = settings(&pairs).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains(KEY));
        assert!(!debug.contains("hook-secret-123"));
        assert_eq!(s.storage.account_key.as_ref().unwrap().expose_secret(), KEY);

        pairs.push(("BATCH_ACCOUNT_KEY", "not base64 !!"));
        let pairs: Vec<_> = pairs
            .into_iter()
            .filter(|(k, v)| *k != "BATCH_ACCOUNT_KEY" || *v != KEY)
            .collect();
        let err = settings(&pairs).unwrap_err().to_string();
        assert!(err.contains("BATCH_ACCOUNT_KEY must be a base64"));
        assert!(!err.contains("not base64 !!"));
    }

    #[test]
    fn storage_access_must_be_possible() {
        let pairs: Vec<_> = batch_minimal()
            .into_iter()
            .filter(|(k, _)| *k != "BATCH_NODE_IDENTITY")
            .collect();
        let err = settings(&pairs).unwrap_err().to_string();
        assert!(err.contains("STORAGE_ACCOUNT_KEY") && err.contains("BATCH_NODE_IDENTITY"));

        let mut pairs = batch_minimal();
        pairs.push(("BATCH_SUBMIT_MODE", "job"));
        let err = settings(&pairs).unwrap_err().to_string();
        assert!(err.contains("BATCH_SUBMIT_MODE=job needs STORAGE_ACCOUNT_KEY"));

        let err = settings(&[("RUNNER", "local"), ("STORAGE_ACCOUNT_URL", AZURITE_URL)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("STORAGE_ACCOUNT_KEY is required with RUNNER=local"));
    }

    #[test]
    fn local_runner_needs_no_batch_settings() {
        let s = settings(&[
            ("RUNNER", "local"),
            ("STORAGE_ACCOUNT_URL", AZURITE_URL),
            ("STORAGE_ACCOUNT_KEY", KEY),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
            ("LOCAL_CONCURRENCY", "3"),
        ])
        .unwrap();
        assert_eq!(s.runner, RunnerKind::Local);
        assert_eq!(s.storage.account_name, "devstoreaccount1");
        assert_eq!(s.task.image, DEFAULT_LOCAL_IMAGE);
        assert_eq!(s.local.concurrency, Some(3));
        assert_eq!(s.port, 0);
    }

    #[test]
    fn plain_http_batch_endpoints_only_on_loopback_with_shared_key() {
        let mut pairs = batch_minimal();
        pairs.retain(|(k, _)| *k != "BATCH_ACCOUNT_URL");
        pairs.push(("BATCH_ACCOUNT_URL", "http://127.0.0.1:9999"));
        assert!(settings(&pairs).is_err());
        pairs.push(("BATCH_ACCOUNT_KEY", KEY));
        pairs.push(("BATCH_ACCOUNT_NAME", "mybatch"));
        let s = settings(&pairs).unwrap();
        assert_eq!(s.batch.account_name.as_deref(), Some("mybatch"));

        let mut pairs = batch_minimal();
        pairs.retain(|(k, _)| *k != "BATCH_ACCOUNT_URL");
        pairs.push(("BATCH_ACCOUNT_URL", "http://mybatch.example.com"));
        pairs.push(("BATCH_ACCOUNT_KEY", KEY));
        assert!(settings(&pairs).is_err());
    }

    #[test]
    fn same_input_and_output_container_is_refused() {
        let mut pairs = batch_minimal();
        pairs.push(("INPUT_CONTAINER", "data"));
        pairs.push(("OUTPUT_CONTAINER", "data"));
        let err = settings(&pairs).unwrap_err().to_string();
        assert!(err.contains("would trigger new tasks"));
    }

    #[test]
    fn container_and_id_rules() {
        assert!(is_valid_container_name("input"));
        assert!(is_valid_container_name("a-1"));
        assert!(!is_valid_container_name("ab"));
        assert!(!is_valid_container_name("-abc"));
        assert!(!is_valid_container_name("a--b"));
        assert!(!is_valid_container_name("Input"));
        assert!(is_valid_batch_id("wc-0f_A"));
        assert!(!is_valid_batch_id(&"a".repeat(65)));
        assert!(!is_valid_batch_id("a.b"));
    }

    #[test]
    fn account_name_from_url_styles() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            storage_account_name(&u("https://acct.blob.core.windows.net")).as_deref(),
            Some("acct")
        );
        assert_eq!(
            storage_account_name(&u(AZURITE_URL)).as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(storage_account_name(&u("http://localhost:10000")), None);
    }

    #[test]
    fn sas_lifetime_covers_queue_and_every_try() {
        let s = settings(&batch_minimal()).unwrap();
        assert_eq!(
            s.task.longest_lifetime(),
            Duration::from_secs(12 * 3600 + 3 * 3600)
        );
    }
}
