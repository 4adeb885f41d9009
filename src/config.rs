//! Settings, read from the environment once at start-up and validated as a whole.
//!
//! Every problem is collected and reported together, so that a misconfigured app says everything
//! that is wrong with it in one message instead of one problem per restart. What comes out cannot
//! be invalid: the runner choice carries its own settings, keys are decoded here once, and every
//! duration is bounded so that no later arithmetic can overflow. Secrets are held in types whose
//! `Debug` prints nothing of them.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::account_key::AccountKey;
use crate::batch::MAX_RETRY_BUDGET;
use crate::batch::group_commit::{DEFAULT_MAX_IN_FLIGHT, MAX_MAX_IN_FLIGHT};
use crate::duration::{format_iso8601, parse_iso8601};
use crate::loopback::is_loopback_url;
use crate::size::parse_size;
use crate::storage::delegation::LONGEST_DELEGATED_LIFETIME;
use crate::storage::key::StorageAccountKey;
use crate::task_spec::is_valid_id;
use crate::workloads::{self, FileDefaults, Program, Workloads};

/// Local image name used when `WORDCOUNT_IMAGE` is not set and tasks run on this machine.
pub(crate) const DEFAULT_LOCAL_IMAGE: &str = "localhost/wordcount:latest";

/// The longest a task given a user delegation SAS may wait and run: what a delegation key can
/// cover (see [`crate::storage::delegation`]), less the clock skew a SAS's expiry is given.
pub(crate) const MAX_DELEGATED_TASK_LIFETIME: Duration =
    Duration::from_secs(LONGEST_DELEGATED_LIFETIME.as_secs() - SAS_CLOCK_SKEW.as_secs());

/// A SAS given to a task starts this long before it is signed and ends this long after the
/// task's longest lifetime: clocks differ.
pub(crate) const SAS_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// `BATCH_POOL_ID` and `BATCH_JOB_ID` when unset.
pub(crate) const DEFAULT_POOL_ID: &str = "wordcount";
pub(crate) const DEFAULT_JOB_ID: &str = "wordcount";

/// `STORAGE_RETRY_BUDGET` when unset.
pub(crate) const DEFAULT_STORAGE_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Batch terminates a task that has not completed 180 days after it was added, so no task
/// duration setting, and no SAS lifetime derived from them, needs to be longer.
pub(crate) const MAX_TASK_LIFETIME: Duration = Duration::from_secs(180 * 86_400);

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
    /// Where tasks run, with the settings of that choice.
    pub runner: RunnerSettings,
    pub task: TaskSettings,
    /// When set, `POST /api/events` requires `?code=<key>` (direct webhook hosting).
    pub webhook_key: Option<SecretString>,
    /// Where Event Grid writes the events it could not deliver (`redrive` reads it).
    pub deadletter_container: String,
    pub reconcile: ReconcileSettings,
    /// What `serve` allows a client: body size, time to send a request, connections.
    pub http: HttpSettings,
    /// Which workload runs on which blob (`WORKLOADS_FILE`; without it, word count for all).
    pub workloads: Workloads,
    /// When a word count is split across the pool (`SPLIT_*`, `STAGING_CONTAINER`).
    pub split: SplitSettings,
}

/// How a large blob's word count is split into parts and a merge (see [`crate::plan`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitSettings {
    /// Blobs at least this large are split (`SPLIT_THRESHOLD`; `None`: never).
    pub threshold: Option<u64>,
    /// Bytes per part (`SPLIT_PART_SIZE`), unless that would give more than `max_parts`.
    pub part_size: u64,
    /// The most parts one blob is split into (`SPLIT_MAX_PARTS`).
    pub max_parts: u32,
    /// Where the parts leave their partial counts for the merge (`STAGING_CONTAINER`).
    pub staging_container: String,
    /// Why splitting is off although `SPLIT_THRESHOLD` was left to its default (logged at
    /// start-up).
    pub off_because: Option<String>,
}

/// `SPLIT_THRESHOLD`, `SPLIT_PART_SIZE` and `SPLIT_MAX_PARTS` when unset. Of the part sizes
/// modelled, 1 GiB has the smallest worst case against the best of them (1.9x) for blobs from
/// 2 GB to 1 TB on 1 to 64 nodes, whatever Batch's task start latency (2 to 10 s); from 2 GiB,
/// two parts beat one task at any of those latencies (docs/performance.md, "Splitting", has the
/// measurements and the model).
pub(crate) const DEFAULT_SPLIT_THRESHOLD: u64 = 2 << 30;
pub(crate) const DEFAULT_SPLIT_PART_SIZE: u64 = 1 << 30;
pub(crate) const DEFAULT_SPLIT_MAX_PARTS: u32 = 1000;
/// The bounds of `SPLIT_PART_SIZE` and `SPLIT_MAX_PARTS`.
const SPLIT_PART_SIZES: std::ops::RangeInclusive<u64> = 1024..=(100 << 30);
const SPLIT_PART_COUNTS: std::ops::RangeInclusive<u32> = 2..=10_000;

/// What the `Reconcile` timer looks at, and how long one run may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// Blobs modified longer ago than this are left alone (Event Grid retries for 24 hours).
    pub lookback: Duration,
    /// Blobs modified more recently than this are left to Event Grid.
    pub grace: Duration,
    /// The longest one timer run works before it answers (and resumes in the next run).
    pub budget: Duration,
}

/// The limits `serve` puts on every client (the `HTTP_*` settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// The largest request body read; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// How long a request head may take: from the accept for the first request of a connection,
    /// from the head's first byte for later ones. Past it the connection is closed, after a 408
    /// if part of a head had arrived.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive once its head has.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            // Event Grid sends at most 1 MB per delivery; the host's string encoding of the event
            // escapes every quote twice, which can more than double that.
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StorageSettings {
    /// Blob endpoint of the account, without a trailing slash.
    pub account_url: Url,
    pub account_name: String,
    /// `STORAGE_ACCOUNT_KEY`, decoded; when present, tasks get service SAS URLs signed with it.
    pub account_key: Option<StorageAccountKey>,
    /// The longest one storage call of ours may take, retries included (`STORAGE_RETRY_BUDGET`):
    /// what an operator waits at most to hear that storage is failing.
    pub retry_budget: Duration,
}

/// Where submitted work runs (`RUNNER`), and what that choice needs.
#[derive(Clone, Debug)]
pub enum RunnerSettings {
    /// Azure Batch, through its REST API.
    Batch(BatchSettings),
    /// This machine (the `dev` pipeline and tests).
    Local(LocalSettings),
}

#[derive(Clone, Debug)]
pub struct BatchSettings {
    pub account_url: Url,
    pub auth: BatchAuth,
    pub pool_id: String,
    pub job_id: String,
    /// ARM id of the pool's user-assigned identity (registry and, without a key, storage access).
    pub node_identity: Option<String>,
    pub submit_mode: SubmitMode,
    /// Total time one submission may take, retries included (at most [`MAX_RETRY_BUDGET`]).
    pub retry_budget: Duration,
    /// Add Task (Collection) calls in flight at once; the tasks of further invocations queue and
    /// share the next call.
    pub max_in_flight: usize,
}

/// How the Batch client proves who it is.
#[derive(Clone, Debug)]
pub enum BatchAuth {
    /// `BATCH_ACCOUNT_KEY`: Shared Key with the account's name and decoded key.
    SharedKey { account: String, key: AccountKey },
    /// No key: an Entra ID credential chosen from the environment at start-up.
    EntraId,
}

/// How a blob version becomes Batch work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitMode {
    /// A task added to the long-lived job `BATCH_JOB_ID` on pool `BATCH_POOL_ID`.
    Task,
    /// A job per blob with an auto pool that lives and dies with the job.
    Job(AutoPool),
}

/// The auto pool of job-per-blob mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoPool {
    pub vm_size: String,
    /// A Spot node instead of a dedicated one.
    pub low_priority: bool,
}

#[derive(Clone, Debug)]
pub struct LocalSettings {
    /// Where task directories and records live.
    pub work_dir: PathBuf,
    /// Tasks running at once.
    pub concurrency: usize,
    /// The `wordcount` program; found beside `blob2batch` or on `PATH` when unset.
    pub wordcount_bin: Option<PathBuf>,
    /// Run tasks in this container image with podman instead of the local binary.
    pub podman_image: Option<String>,
}

/// How tasks reach storage.
#[derive(Clone, Debug)]
pub enum StorageAccess {
    /// Service SAS URLs signed with the account key (Azurite, simple setups).
    Sas(StorageAccountKey),
    /// The pool's user-assigned managed identity, by ARM resource id.
    Identity(String),
}

#[derive(Clone, Debug)]
pub struct TaskSettings {
    /// Container image reference the task runs.
    pub image: String,
    pub access: StorageAccess,
    pub max_wall_clock_time: Duration,
    pub max_retry_count: i32,
    pub retention_time: Duration,
    /// The longest a task may wait for a node; bounds how long its SAS URLs stay valid.
    pub max_queue_time: Duration,
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

impl Settings {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Settings, ConfigError> {
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
        let runner_kind = r
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

        let runner = match runner_kind {
            RunnerKind::Batch => r.batch().map(RunnerSettings::Batch),
            RunnerKind::Local => Some(RunnerSettings::Local(r.local())),
        };
        let limits = r.task_limits();
        let workloads = r.workloads(runner.as_ref(), &limits, storage.as_ref());
        let image = r.word_count_image(runner_kind, &workloads);
        let access = storage
            .as_ref()
            .and_then(|storage| r.storage_access(storage, runner.as_ref(), runner_kind));
        let webhook_key = r.get("WEBHOOK_KEY").map(SecretString::from);
        let deadletter_container = r.container("DEADLETTER_CONTAINER", "deadletter");
        let reconcile = r.reconcile();
        let http = r.http();
        let split = r.split([&input_container, &output_container]);

        let settings = match (storage, runner, access) {
            (Some(storage), Some(runner), Some(access)) if r.problems.is_empty() => Settings {
                listen_address: listen_address.unwrap_or(IpAddr::from([127, 0, 0, 1])),
                port: port.unwrap_or(8080),
                storage,
                input_container,
                output_container,
                input_prefix,
                input_suffix,
                runner,
                task: TaskSettings {
                    image,
                    access,
                    max_wall_clock_time: limits.max_wall_clock_time,
                    max_retry_count: limits.max_retry_count,
                    retention_time: limits.retention_time,
                    max_queue_time: limits.max_queue_time,
                },
                webhook_key,
                deadletter_container,
                reconcile,
                http,
                workloads,
                split,
            },
            _ => {
                return Err(ConfigError {
                    problems: r.problems,
                });
            }
        };
        let threshold_set = lookup("SPLIT_THRESHOLD").is_some_and(|v| !v.is_empty());
        settings.with_split_checked(threshold_set)
    }

    /// Splitting that the delegation key's lifetime rules out: an error when `SPLIT_THRESHOLD`
    /// asked for it; by default, splitting is off and start-up says why.
    fn with_split_checked(mut self, threshold_set: bool) -> Result<Settings, ConfigError> {
        if let Some(problem) = self.split_lifetime_problem() {
            if threshold_set {
                return Err(ConfigError {
                    problems: vec![problem],
                });
            }
            self.split.threshold = None;
            self.split.off_because = Some(problem);
        }
        Ok(self)
    }

    /// Split parts read their input with a user delegation SAS when storage has no key: the
    /// word count's tasks must then be done before a delegation key ends.
    fn split_lifetime_problem(&self) -> Option<String> {
        self.split.threshold?;
        if self.storage.account_key.is_some() || self.batch()?.submit_mode != SubmitMode::Task {
            return None;
        }
        let lifetime = self.word_count_task_settings().longest_lifetime();
        (lifetime > MAX_DELEGATED_TASK_LIFETIME).then(|| {
            format!(
                "SPLIT_THRESHOLD: without STORAGE_ACCOUNT_KEY, split parts read their input with a \
                 user delegation SAS, which ends within {}; the word count's tasks may wait and \
                 run for {} (TASK_MAX_QUEUE_TIME, plus TASK_MAX_WALL_CLOCK_TIME for each try): \
                 shorten those, or set SPLIT_THRESHOLD=off",
                format_iso8601(MAX_DELEGATED_TASK_LIFETIME),
                format_iso8601(lifetime)
            )
        })
    }

    /// The task settings of the word count: the listed `wordcount` workload's limits over the
    /// `TASK_*` settings.
    pub(crate) fn word_count_task_settings(&self) -> TaskSettings {
        match self
            .workloads
            .runs()
            .find(|(_, run)| matches!(run.program, Program::WordCount { .. }))
        {
            Some((_, run)) => self.task.with_limits(&run.limits),
            None => self.task.clone(),
        }
    }

    /// The image of the word count's tasks: the listed `wordcount` workload's own, else
    /// `WORDCOUNT_IMAGE`.
    pub fn word_count_image(&self) -> &str {
        self.workloads
            .runs()
            .find_map(|(_, run)| match &run.program {
                Program::WordCount { image } => image.as_deref(),
                Program::Image { .. } => None,
            })
            .unwrap_or(&self.task.image)
    }

    /// The Batch settings, when `RUNNER=batch`.
    pub fn batch(&self) -> Option<&BatchSettings> {
        match &self.runner {
            RunnerSettings::Batch(batch) => Some(batch),
            RunnerSettings::Local(_) => None,
        }
    }
}

/// `BATCH_SUBMIT_MODE` as written, before its auto pool settings are read.
#[derive(Clone, Copy)]
enum SubmitModeKind {
    Task,
    Job,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RunnerKind {
    Batch,
    Local,
}

struct TaskLimits {
    max_wall_clock_time: Duration,
    max_retry_count: i32,
    retention_time: Duration,
    max_queue_time: Duration,
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

    /// An ISO 8601 duration between `min` and `max` (both inclusive).
    fn duration(
        &mut self,
        name: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let expected = format!(
            "an ISO 8601 duration from {} to {}",
            format_iso8601(min),
            format_iso8601(max)
        );
        self.parse(name, &expected, |v| {
            parse_iso8601(v).filter(|d| (min..=max).contains(d))
        })
        .unwrap_or(default)
    }

    /// `SPLIT_THRESHOLD` (a size, or `off`), `SPLIT_PART_SIZE`, `SPLIT_MAX_PARTS` and
    /// `STAGING_CONTAINER`, which may be neither the input nor the output container.
    fn split(&mut self, taken: [&String; 2]) -> SplitSettings {
        let threshold = self
            .parse(
                "SPLIT_THRESHOLD",
                "a size in bytes (or with KiB, MiB or GiB), or `off`",
                |v| match v {
                    "off" => Some(None),
                    v => parse_size(v).map(Some),
                },
            )
            .unwrap_or(Some(DEFAULT_SPLIT_THRESHOLD));
        let part_size = self
            .parse(
                "SPLIT_PART_SIZE",
                "a size from 1 KiB to 100 GiB (bytes, or with KiB, MiB or GiB)",
                |v| parse_size(v).filter(|n| SPLIT_PART_SIZES.contains(n)),
            )
            .unwrap_or(DEFAULT_SPLIT_PART_SIZE);
        let max_parts = self
            .parse("SPLIT_MAX_PARTS", "a whole number from 2 to 10000", |v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| SPLIT_PART_COUNTS.contains(n))
            })
            .unwrap_or(DEFAULT_SPLIT_MAX_PARTS);
        let staging_container = self.container("STAGING_CONTAINER", "staging");
        if taken.contains(&&staging_container) {
            self.problem(format!(
                "STAGING_CONTAINER is `{staging_container}`, which is the input or the output \
                 container: partial counts would be taken for inputs or results; use a container \
                 of its own"
            ));
        }
        SplitSettings {
            threshold,
            part_size,
            max_parts,
            staging_container,
            off_because: None,
        }
    }

    fn key(&mut self, name: &str) -> Option<AccountKey> {
        let text = self.get(name)?;
        let key = AccountKey::from_base64(&text).ok();
        if key.is_none() {
            self.problem(format!("{name} must be a base64 account key"));
        }
        key
    }

    fn storage(&mut self) -> Option<StorageSettings> {
        let raw = self.required("STORAGE_ACCOUNT_URL", "");
        let key = self.key("STORAGE_ACCOUNT_KEY");
        let retry_budget = self.duration(
            "STORAGE_RETRY_BUDGET",
            DEFAULT_STORAGE_RETRY_BUDGET,
            Duration::from_secs(1),
            Duration::from_secs(300),
        );
        let url = match Url::parse(raw?.trim_end_matches('/')) {
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
        Some(StorageSettings {
            account_key: key.map(|key| StorageAccountKey::new(account_name.clone(), key)),
            account_url: url,
            account_name,
            retry_budget,
        })
    }

    fn batch(&mut self) -> Option<BatchSettings> {
        let key = self.key("BATCH_ACCOUNT_KEY");
        let has_key = key.is_some() || self.get("BATCH_ACCOUNT_KEY").is_some();
        let account_url = self.batch_endpoint(has_key);
        let account_name = self.get("BATCH_ACCOUNT_NAME").or_else(|| {
            account_url
                .as_ref()
                .and_then(|u| u.host_str())
                .and_then(|h| h.split('.').next())
                .map(str::to_owned)
        });
        let pool_id = self.batch_id("BATCH_POOL_ID", DEFAULT_POOL_ID);
        let job_id = self.batch_id("BATCH_JOB_ID", DEFAULT_JOB_ID);
        let submit_mode = self.submit_mode();
        let retry_budget = self.duration(
            "BATCH_RETRY_BUDGET",
            MAX_RETRY_BUDGET,
            Duration::from_secs(1),
            MAX_RETRY_BUDGET,
        );
        let max_in_flight = self
            .parse(
                "BATCH_MAX_IN_FLIGHT",
                &format!("a whole number from 1 to {MAX_MAX_IN_FLIGHT}"),
                |v| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_MAX_IN_FLIGHT).contains(n))
                },
            )
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let auth = match (key, account_name) {
            (Some(key), Some(account)) => BatchAuth::SharedKey { account, key },
            (Some(_), None) => {
                self.problem("BATCH_ACCOUNT_NAME is required with BATCH_ACCOUNT_KEY".into());
                return None;
            }
            // A key that is there but malformed was reported already.
            (None, _) if has_key => return None,
            (None, _) => BatchAuth::EntraId,
        };
        Some(BatchSettings {
            account_url: account_url?,
            auth,
            pool_id,
            job_id,
            node_identity: self.get("BATCH_NODE_IDENTITY"),
            submit_mode,
            retry_budget,
            max_in_flight,
        })
    }

    /// `BATCH_ACCOUNT_URL`: https, or plain http to a loopback address with a key (tests).
    fn batch_endpoint(&mut self, has_key: bool) -> Option<Url> {
        let raw = self.required("BATCH_ACCOUNT_URL", " when RUNNER=batch")?;
        let parsed = Url::parse(raw.trim_end_matches('/'))
            .ok()
            .filter(|u| u.host().is_some());
        match parsed {
            Some(u) if u.scheme() == "https" => Some(u),
            Some(u) if u.scheme() == "http" && is_loopback_url(&u) && has_key => Some(u),
            Some(u) if u.scheme() == "http" => {
                self.problem(
                    "BATCH_ACCOUNT_URL may use http only for a loopback address with \
                     BATCH_ACCOUNT_KEY (tests); use https"
                        .into(),
                );
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
    }

    /// `BATCH_SUBMIT_MODE`, with the auto pool of job-per-blob mode.
    fn submit_mode(&mut self) -> SubmitMode {
        let job = self
            .parse("BATCH_SUBMIT_MODE", "`task` or `job`", |v| match v {
                "task" => Some(SubmitModeKind::Task),
                "job" => Some(SubmitModeKind::Job),
                _ => None,
            })
            .unwrap_or(SubmitModeKind::Task);
        let low_priority = self
            .parse("BATCH_AUTO_POOL_LOW_PRIORITY", "`true` or `false`", |v| {
                v.parse::<bool>().ok()
            })
            .unwrap_or(false);
        let vm_size = self
            .get("BATCH_AUTO_POOL_VM_SIZE")
            .unwrap_or_else(|| "standard_d2s_v5".into());
        match job {
            SubmitModeKind::Task => SubmitMode::Task,
            SubmitModeKind::Job => SubmitMode::Job(AutoPool {
                vm_size,
                low_priority,
            }),
        }
    }

    /// `WORKLOADS_FILE`, checked against the rest of the settings; every problem it has joins
    /// the others.
    fn workloads(
        &mut self,
        runner: Option<&RunnerSettings>,
        limits: &TaskLimits,
        storage: Option<&StorageSettings>,
    ) -> Workloads {
        let Some(path) = self.get("WORKLOADS_FILE") else {
            return Workloads::word_count_only();
        };
        let batch = match runner {
            Some(RunnerSettings::Batch(batch)) => Some(batch),
            _ => None,
        };
        if batch.is_some_and(|b| b.submit_mode != SubmitMode::Task) {
            self.problem(
                "WORKLOADS_FILE needs BATCH_SUBMIT_MODE=task: a job per blob runs only the word \
                 count; unset one of the two"
                    .into(),
            );
        }
        let defaults = FileDefaults {
            pool: batch.map(|b| b.pool_id.clone()),
            job: batch.map(|b| b.job_id.clone()),
            max_wall_clock: limits.max_wall_clock_time,
            max_queue_time: limits.max_queue_time,
            max_retries: limits.max_retry_count,
            max_delegated_lifetime: storage
                .filter(|s| s.account_key.is_none())
                .map(|_| MAX_DELEGATED_TASK_LIFETIME),
        };
        match workloads::load(std::path::Path::new(&path), &defaults) {
            Ok(workloads) => workloads,
            Err(problems) => {
                self.problems.extend(problems);
                Workloads::word_count_only()
            }
        }
    }

    /// The word count's image: `WORDCOUNT_IMAGE`, required with `RUNNER=batch` when a route runs
    /// the word count without an `image` of its own.
    fn word_count_image(&mut self, kind: RunnerKind, workloads: &Workloads) -> String {
        let needed = workloads
            .runs()
            .any(|(_, run)| matches!(run.program, Program::WordCount { image: None }));
        let image = match kind {
            RunnerKind::Batch if needed => {
                let why = if workloads.is_from_file() {
                    " when RUNNER=batch and the workloads file lists `wordcount` without an `image`"
                } else {
                    " when RUNNER=batch"
                };
                self.required("WORDCOUNT_IMAGE", why)
            }
            _ => self.get("WORDCOUNT_IMAGE"),
        };
        image.unwrap_or_else(|| DEFAULT_LOCAL_IMAGE.to_owned())
    }

    fn batch_id(&mut self, name: &str, default: &str) -> String {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        if !is_valid_id(&value) {
            self.problem(format!(
                "{name} must be 1-64 letters, digits, hyphens or underscores"
            ));
        }
        value
    }

    fn local(&mut self) -> LocalSettings {
        LocalSettings {
            work_dir: self
                .get("LOCAL_WORK_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_work_dir),
            concurrency: self
                .parse("LOCAL_CONCURRENCY", "a whole number from 1 to 1024", |v| {
                    v.parse::<usize>().ok().filter(|n| (1..=1024).contains(n))
                })
                .unwrap_or_else(default_concurrency),
            wordcount_bin: self.get("LOCAL_WORDCOUNT_BIN").map(PathBuf::from),
            podman_image: self.get("LOCAL_PODMAN_IMAGE"),
        }
    }

    fn reconcile(&mut self) -> ReconcileSettings {
        let minute = Duration::from_secs(60);
        let lookback = self.duration(
            "RECONCILE_LOOKBACK",
            Duration::from_secs(25 * 3600),
            minute,
            Duration::from_secs(30 * 86_400),
        );
        let grace = self.duration(
            "RECONCILE_GRACE",
            Duration::from_secs(10 * 60),
            Duration::ZERO,
            Duration::from_secs(86_400),
        );
        if grace >= lookback {
            self.problem(
                "RECONCILE_GRACE must be shorter than RECONCILE_LOOKBACK: the timer looks at blobs \
                 modified between the two"
                    .into(),
            );
        }
        ReconcileSettings {
            lookback,
            grace,
            // host.json gives a function 5 minutes; the answer must come well before.
            budget: self.duration(
                "RECONCILE_BUDGET",
                Duration::from_secs(120),
                Duration::from_secs(10),
                Duration::from_secs(240),
            ),
        }
    }

    fn http(&mut self) -> HttpSettings {
        let default = HttpSettings::default();
        // Below 1 MiB a full Event Grid delivery (1 MB) would be refused; above 64 MiB a handful of
        // clients could make the handler hold more memory than its plan has.
        let (min_body, max_body) = (1024 * 1024, 64 * 1024 * 1024);
        let second = Duration::from_secs(1);
        let max_body_bytes = self
            .parse(
                "HTTP_MAX_BODY_BYTES",
                &format!("a whole number of bytes from {min_body} to {max_body}"),
                |v| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (min_body..=max_body).contains(n))
                },
            )
            .unwrap_or(default.max_body_bytes);
        let max_connections = self
            .parse(
                "HTTP_MAX_CONNECTIONS",
                "a whole number from 1 to 65536",
                |v| v.parse::<usize>().ok().filter(|n| (1..=65_536).contains(n)),
            )
            .unwrap_or(default.max_connections);
        HttpSettings {
            max_body_bytes,
            header_timeout: self.duration(
                "HTTP_HEADER_TIMEOUT",
                default.header_timeout,
                second,
                Duration::from_secs(300),
            ),
            idle_timeout: self.duration(
                "HTTP_IDLE_TIMEOUT",
                default.idle_timeout,
                second,
                Duration::from_secs(3600),
            ),
            body_timeout: self.duration(
                "HTTP_BODY_TIMEOUT",
                default.body_timeout,
                second,
                Duration::from_secs(300),
            ),
            max_connections,
        }
    }

    fn task_limits(&mut self) -> TaskLimits {
        let max_retry_count = self
            .parse(
                "TASK_MAX_RETRY_COUNT",
                "a whole number from -1 to 100",
                |v| v.parse::<i32>().ok().filter(|n| (-1..=100).contains(n)),
            )
            .unwrap_or(2);
        let minute = Duration::from_secs(60);
        TaskLimits {
            max_wall_clock_time: self.duration(
                "TASK_MAX_WALL_CLOCK_TIME",
                Duration::from_secs(3600),
                minute,
                MAX_TASK_LIFETIME,
            ),
            max_retry_count,
            retention_time: self.duration(
                "TASK_RETENTION_TIME",
                Duration::from_secs(86_400),
                minute,
                MAX_TASK_LIFETIME,
            ),
            max_queue_time: self.duration(
                "TASK_MAX_QUEUE_TIME",
                Duration::from_secs(12 * 3600),
                minute,
                MAX_TASK_LIFETIME,
            ),
        }
    }

    fn storage_access(
        &mut self,
        storage: &StorageSettings,
        runner: Option<&RunnerSettings>,
        kind: RunnerKind,
    ) -> Option<StorageAccess> {
        if let Some(key) = &storage.account_key {
            return Some(StorageAccess::Sas(key.clone()));
        }
        if self.get("STORAGE_ACCOUNT_KEY").is_some() {
            return None; // malformed: reported already
        }
        match (kind, runner) {
            (RunnerKind::Local, _) => {
                self.problem(
                    "STORAGE_ACCOUNT_KEY is required with RUNNER=local: the local runner reaches \
                     storage through SAS URLs only"
                        .into(),
                );
                None
            }
            (RunnerKind::Batch, Some(RunnerSettings::Batch(batch))) => {
                if matches!(batch.submit_mode, SubmitMode::Job(_)) {
                    self.problem(
                        "BATCH_SUBMIT_MODE=job needs STORAGE_ACCOUNT_KEY: an auto pool cannot \
                         carry a managed identity"
                            .into(),
                    );
                    return None;
                }
                match &batch.node_identity {
                    Some(identity) => Some(StorageAccess::Identity(identity.clone())),
                    None => {
                        self.problem(
                            "tasks need storage access: set STORAGE_ACCOUNT_KEY (SAS URLs) or \
                             BATCH_NODE_IDENTITY (the pool's managed identity)"
                                .into(),
                        );
                        None
                    }
                }
            }
            (RunnerKind::Batch, _) => None,
        }
    }
}

impl TaskSettings {
    /// These settings with a workload's own limits over them.
    pub(crate) fn with_limits(&self, limits: &workloads::Limits) -> TaskSettings {
        TaskSettings {
            max_wall_clock_time: limits.max_wall_clock.unwrap_or(self.max_wall_clock_time),
            max_retry_count: limits.max_retries.unwrap_or(self.max_retry_count),
            retention_time: limits.retention.unwrap_or(self.retention_time),
            max_queue_time: limits.max_queue_time.unwrap_or(self.max_queue_time),
            ..self.clone()
        }
    }

    /// The longest a task can exist before it has finished: queued, then every try running to
    /// its wall-clock limit, but never beyond the 180 days after which Batch ends any task. SAS
    /// URLs given to a task must outlive it.
    pub fn longest_lifetime(&self) -> Duration {
        let tries = match self.max_retry_count {
            n if n < 0 => 10, // "unlimited": bound the SAS anyway
            n => n.unsigned_abs() + 1,
        };
        self.max_wall_clock_time
            .saturating_mul(tries)
            .saturating_add(self.max_queue_time)
            .min(MAX_TASK_LIFETIME)
    }

    pub(crate) fn max_wall_clock_time_iso(&self) -> String {
        format_iso8601(self.max_wall_clock_time)
    }

    pub(crate) fn retention_time_iso(&self) -> String {
        format_iso8601(self.retention_time)
    }
}

/// The local runner's work directory when `LOCAL_WORK_DIR` is unset.
pub(crate) fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join("blob2batch-local")
}

/// One task per core by default.
pub(crate) fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The account name in a blob endpoint: the first label of `acct.blob.core.windows.net`, or the
/// first path segment of a path-style URL (Azurite, `http://127.0.0.1:10000/devstoreaccount1`).
pub(crate) fn storage_account_name(url: &Url) -> Option<String> {
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

/// Blob container naming rules.
pub(crate) fn is_valid_container_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    const AZURITE_URL: &str = crate::storage::azurite::DEFAULT_BLOB_URL;
    const UAMI: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool";

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
            ("BATCH_NODE_IDENTITY", UAMI),
        ]
    }

    fn with(
        mut pairs: Vec<(&'static str, &'static str)>,
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        for (name, value) in extra {
            pairs.retain(|(k, _)| k != name);
            pairs.push((name, value));
        }
        pairs
    }

    fn batch(s: &Settings) -> &BatchSettings {
        s.batch().expect("RUNNER=batch")
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
        let b = batch(&s);
        assert!(matches!(&b.auth, BatchAuth::EntraId));
        assert_eq!(b.pool_id, "wordcount");
        assert_eq!(b.job_id, "wordcount");
        assert_eq!(b.submit_mode, SubmitMode::Task);
        assert_eq!(b.retry_budget, MAX_RETRY_BUDGET);
        assert_eq!(b.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert!(matches!(&s.task.access, StorageAccess::Identity(id) if id == UAMI));
        assert_eq!(s.task.max_wall_clock_time, Duration::from_secs(3600));
        assert_eq!(s.task.max_retry_count, 2);
        assert_eq!(s.task.retention_time_iso(), "P1D");
    }

    #[test]
    fn the_runner_choice_carries_its_settings() {
        let s = settings(&with(
            batch_minimal(),
            &[("BATCH_ACCOUNT_KEY", KEY), ("STORAGE_ACCOUNT_KEY", KEY)],
        ))
        .unwrap();
        match &batch(&s).auth {
            BatchAuth::SharedKey { account, .. } => assert_eq!(account, "mybatch"),
            other => panic!("{other:?}"),
        }
        // A key wins over the identity for storage; the identity still pulls the image.
        assert!(matches!(&s.task.access, StorageAccess::Sas(k) if k.account() == "acct"));
        assert_eq!(batch(&s).node_identity.as_deref(), Some(UAMI));

        let local = settings(&[
            ("RUNNER", "local"),
            ("STORAGE_ACCOUNT_URL", AZURITE_URL),
            ("STORAGE_ACCOUNT_KEY", KEY),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
            ("LOCAL_CONCURRENCY", "3"),
            ("LOCAL_WORK_DIR", "/srv/tasks"),
        ])
        .unwrap();
        let RunnerSettings::Local(l) = &local.runner else {
            panic!("expected the local runner")
        };
        assert_eq!(l.concurrency, 3);
        assert_eq!(l.work_dir, PathBuf::from("/srv/tasks"));
        assert!(local.batch().is_none());
        assert_eq!(local.storage.account_name, "devstoreaccount1");
        assert_eq!(local.task.image, DEFAULT_LOCAL_IMAGE);
        assert_eq!(local.port, 0);
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
        let pairs = with(
            batch_minimal(),
            &[
                ("STORAGE_ACCOUNT_KEY", KEY),
                ("BATCH_ACCOUNT_KEY", KEY),
                ("WEBHOOK_KEY", "hook-secret-123"),
            ],
        );
        let s = settings(&pairs).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains(KEY));
        assert!(!debug.contains("Eby8"));
        assert!(!debug.contains("hook-secret-123"));

        let err = settings(&with(pairs, &[("BATCH_ACCOUNT_KEY", "not base64 !!")]))
            .unwrap_err()
            .to_string();
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

        let err = settings(&with(batch_minimal(), &[("BATCH_SUBMIT_MODE", "job")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BATCH_SUBMIT_MODE=job needs STORAGE_ACCOUNT_KEY"));

        let err = settings(&[("RUNNER", "local"), ("STORAGE_ACCOUNT_URL", AZURITE_URL)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("STORAGE_ACCOUNT_KEY is required with RUNNER=local"));
    }

    #[test]
    fn job_mode_carries_its_auto_pool() {
        let s = settings(&with(
            batch_minimal(),
            &[
                ("BATCH_SUBMIT_MODE", "job"),
                ("STORAGE_ACCOUNT_KEY", KEY),
                ("BATCH_AUTO_POOL_LOW_PRIORITY", "true"),
            ],
        ))
        .unwrap();
        assert_eq!(
            batch(&s).submit_mode,
            SubmitMode::Job(AutoPool {
                vm_size: "standard_d2s_v5".into(),
                low_priority: true
            })
        );
    }

    #[test]
    fn calls_in_flight_are_bounded() {
        let s = settings(&with(batch_minimal(), &[("BATCH_MAX_IN_FLIGHT", "1")])).unwrap();
        assert_eq!(batch(&s).max_in_flight, 1);
        let s = settings(&with(batch_minimal(), &[("BATCH_MAX_IN_FLIGHT", "64")])).unwrap();
        assert_eq!(batch(&s).max_in_flight, 64);
        for value in ["0", "65", "-1", "many"] {
            let err =
                settings(&with(batch_minimal(), &[("BATCH_MAX_IN_FLIGHT", value)])).unwrap_err();
            assert_eq!(
                err.problems,
                vec!["BATCH_MAX_IN_FLIGHT must be a whole number from 1 to 64".to_string()],
                "{value}"
            );
        }
    }

    #[test]
    fn plain_http_batch_endpoints_only_on_loopback_with_shared_key() {
        let loopback = with(
            batch_minimal(),
            &[("BATCH_ACCOUNT_URL", "http://127.0.0.1:9999")],
        );
        assert!(settings(&loopback).is_err());
        let s = settings(&with(
            loopback,
            &[
                ("BATCH_ACCOUNT_KEY", KEY),
                ("BATCH_ACCOUNT_NAME", "mybatch"),
            ],
        ))
        .unwrap();
        assert!(
            matches!(&batch(&s).auth, BatchAuth::SharedKey { account, .. } if account == "mybatch")
        );

        let remote = with(
            batch_minimal(),
            &[
                ("BATCH_ACCOUNT_URL", "http://mybatch.example.com"),
                ("BATCH_ACCOUNT_KEY", KEY),
            ],
        );
        assert!(settings(&remote).is_err());
    }

    #[test]
    fn same_input_and_output_container_is_refused() {
        let err = settings(&with(
            batch_minimal(),
            &[("INPUT_CONTAINER", "data"), ("OUTPUT_CONTAINER", "data")],
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("would trigger new tasks"));
    }

    #[test]
    fn container_rules() {
        assert!(is_valid_container_name("input"));
        assert!(is_valid_container_name("a-1"));
        assert!(!is_valid_container_name("ab"));
        assert!(!is_valid_container_name("-abc"));
        assert!(!is_valid_container_name("a--b"));
        assert!(!is_valid_container_name("Input"));
        let err = settings(&with(batch_minimal(), &[("BATCH_JOB_ID", "a.b")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BATCH_JOB_ID must be 1-64 letters"), "{err}");
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

    #[test]
    fn durations_that_would_overflow_are_refused_at_start_up() {
        // Each of these parses as ISO 8601; none may reach the arithmetic that derives lifetimes.
        for (name, value) in [
            ("TASK_MAX_QUEUE_TIME", "P99999999999999D"),
            ("TASK_MAX_WALL_CLOCK_TIME", "PT18446744073709551615S"),
            ("TASK_MAX_WALL_CLOCK_TIME", "P181D"),
            ("TASK_RETENTION_TIME", "P100000000D"),
            ("BATCH_RETRY_BUDGET", "PT21S"),
            ("BATCH_RETRY_BUDGET", "PT0S"),
        ] {
            let err = settings(&with(batch_minimal(), &[(name, value)])).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{name}={value}: {err}");
            assert!(
                err.problems[0].starts_with(&format!("{name} must be an ISO 8601 duration from ")),
                "{err}"
            );
        }
    }

    #[test]
    fn reconcile_settings_are_bounded_and_consistent() {
        let s = settings(&batch_minimal()).unwrap();
        assert_eq!(s.deadletter_container, "deadletter");
        assert_eq!(
            s.reconcile,
            ReconcileSettings {
                lookback: Duration::from_secs(25 * 3600),
                grace: Duration::from_secs(600),
                budget: Duration::from_secs(120),
            }
        );
        let err = settings(&with(
            batch_minimal(),
            &[
                ("RECONCILE_LOOKBACK", "PT5M"),
                ("RECONCILE_GRACE", "PT10M"),
                ("RECONCILE_BUDGET", "PT1H"),
                ("DEADLETTER_CONTAINER", "Dead_Letters"),
            ],
        ))
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "RECONCILE_GRACE must be shorter than RECONCILE_LOOKBACK",
            "RECONCILE_BUDGET must be an ISO 8601 duration from PT10S to PT4M",
            "DEADLETTER_CONTAINER must be a container name",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        assert!(
            settings(&with(
                batch_minimal(),
                &[("RECONCILE_LOOKBACK", "P100000D")]
            ))
            .is_err()
        );
    }

    #[test]
    fn http_limits_have_defaults_and_bounds() {
        let s = settings(&batch_minimal()).unwrap();
        assert_eq!(s.http, HttpSettings::default());
        assert_eq!(s.http.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(s.http.header_timeout, Duration::from_secs(10));
        assert_eq!(s.http.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.http.body_timeout, Duration::from_secs(30));
        assert_eq!(s.http.max_connections, 1024);

        let s = settings(&with(
            batch_minimal(),
            &[
                ("HTTP_MAX_BODY_BYTES", "1048576"),
                ("HTTP_HEADER_TIMEOUT", "PT1S"),
                ("HTTP_IDLE_TIMEOUT", "PT1H"),
                ("HTTP_BODY_TIMEOUT", "PT5M"),
                ("HTTP_MAX_CONNECTIONS", "1"),
            ],
        ))
        .unwrap();
        assert_eq!(
            s.http,
            HttpSettings {
                max_body_bytes: 1024 * 1024,
                header_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(3600),
                body_timeout: Duration::from_secs(300),
                max_connections: 1,
            }
        );

        for (name, value, expected) in [
            (
                "HTTP_MAX_BODY_BYTES",
                "1048575",
                "HTTP_MAX_BODY_BYTES must be a whole number of bytes from 1048576 to 67108864",
            ),
            (
                "HTTP_MAX_BODY_BYTES",
                "4MiB",
                "HTTP_MAX_BODY_BYTES must be a whole number of bytes from 1048576 to 67108864",
            ),
            (
                "HTTP_HEADER_TIMEOUT",
                "PT0S",
                "HTTP_HEADER_TIMEOUT must be an ISO 8601 duration from PT1S to PT5M",
            ),
            (
                "HTTP_IDLE_TIMEOUT",
                "P1D",
                "HTTP_IDLE_TIMEOUT must be an ISO 8601 duration from PT1S to PT1H",
            ),
            (
                "HTTP_BODY_TIMEOUT",
                "30s",
                "HTTP_BODY_TIMEOUT must be an ISO 8601 duration from PT1S to PT5M",
            ),
            (
                "HTTP_MAX_CONNECTIONS",
                "0",
                "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 65536",
            ),
            (
                "HTTP_MAX_CONNECTIONS",
                "65537",
                "HTTP_MAX_CONNECTIONS must be a whole number from 1 to 65536",
            ),
        ] {
            let err = settings(&with(batch_minimal(), &[(name, value)])).unwrap_err();
            assert_eq!(err.problems, vec![expected.to_owned()], "{name}={value}");
        }
    }

    #[test]
    fn split_settings_take_sizes_in_binary_units_and_off() {
        let s = settings(&batch_minimal()).unwrap();
        assert_eq!(
            s.split,
            SplitSettings {
                threshold: Some(DEFAULT_SPLIT_THRESHOLD),
                part_size: DEFAULT_SPLIT_PART_SIZE,
                max_parts: DEFAULT_SPLIT_MAX_PARTS,
                staging_container: "staging".into(),
                off_because: None,
            }
        );
        let s = settings(&with(
            batch_minimal(),
            &[
                ("SPLIT_THRESHOLD", "4 GiB"),
                ("SPLIT_PART_SIZE", "64MiB"),
                ("SPLIT_MAX_PARTS", "64"),
                ("STAGING_CONTAINER", "parts"),
            ],
        ))
        .unwrap();
        assert_eq!(
            (s.split.threshold, s.split.part_size, s.split.max_parts),
            (Some(4 << 30), 64 << 20, 64)
        );
        assert_eq!(s.split.staging_container, "parts");
        let off = settings(&with(batch_minimal(), &[("SPLIT_THRESHOLD", "off")])).unwrap();
        assert_eq!(off.split.threshold, None);
        for (name, value, expected) in [
            (
                "SPLIT_THRESHOLD",
                "1.5GiB",
                "SPLIT_THRESHOLD must be a size in bytes (or with KiB, MiB or GiB), or `off`",
            ),
            (
                "SPLIT_PART_SIZE",
                "1000",
                "SPLIT_PART_SIZE must be a size from 1 KiB to 100 GiB (bytes, or with KiB, MiB or GiB)",
            ),
            (
                "SPLIT_MAX_PARTS",
                "1",
                "SPLIT_MAX_PARTS must be a whole number from 2 to 10000",
            ),
        ] {
            let err = settings(&with(batch_minimal(), &[(name, value)])).unwrap_err();
            assert_eq!(err.problems, vec![expected.to_owned()], "{name}={value}");
        }
        let err = settings(&with(batch_minimal(), &[("STAGING_CONTAINER", "output")])).unwrap_err();
        assert!(
            err.problems[0].starts_with("STAGING_CONTAINER is `output`"),
            "{err}"
        );
    }

    #[test]
    fn splitting_beyond_a_delegation_keys_life_is_off_by_default_and_an_error_when_asked() {
        // Without a storage key, parts read with a user delegation SAS (at most about 7 days).
        let long = [("TASK_MAX_QUEUE_TIME", "P7D")];
        let s = settings(&with(batch_minimal(), &long)).unwrap();
        assert_eq!(s.split.threshold, None);
        assert!(
            s.split
                .off_because
                .as_deref()
                .unwrap()
                .contains("set SPLIT_THRESHOLD=off"),
            "{:?}",
            s.split.off_because
        );
        let err = settings(&with(
            batch_minimal(),
            &[long[0], ("SPLIT_THRESHOLD", "1GiB")],
        ))
        .unwrap_err();
        assert!(
            err.problems[0].starts_with("SPLIT_THRESHOLD: without STORAGE_ACCOUNT_KEY"),
            "{err}"
        );
        // With a key, the parts' SAS is signed with it: no such limit.
        let keyed = settings(&with(
            batch_minimal(),
            &[long[0], ("STORAGE_ACCOUNT_KEY", KEY)],
        ))
        .unwrap();
        assert_eq!(keyed.split.threshold, Some(DEFAULT_SPLIT_THRESHOLD));
    }

    #[test]
    fn the_longest_lifetime_never_exceeds_what_batch_allows() {
        let s = settings(&with(
            batch_minimal(),
            &[
                ("TASK_MAX_QUEUE_TIME", "P180D"),
                ("TASK_MAX_WALL_CLOCK_TIME", "P180D"),
                ("TASK_MAX_RETRY_COUNT", "100"),
            ],
        ))
        .unwrap();
        assert_eq!(s.task.longest_lifetime(), MAX_TASK_LIFETIME);
        let unlimited =
            settings(&with(batch_minimal(), &[("TASK_MAX_RETRY_COUNT", "-1")])).unwrap();
        assert_eq!(
            unlimited.task.longest_lifetime(),
            Duration::from_secs(12 * 3600 + 10 * 3600)
        );
    }

    /// A workloads file holding `text`, and its path (kept for the test's life, as the
    /// settings helpers take static strings).
    fn workloads_file(text: &str) -> (tempfile::TempDir, &'static str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, text).unwrap();
        let path: &'static str = Box::leak(path.display().to_string().into_boxed_str());
        (dir, path)
    }

    #[test]
    fn a_workloads_file_decides_whether_the_word_count_image_is_needed() {
        let own =
            "version = 1\n[[workload]]\nname = \"a\"\nimage = \"r.io/a:1\"\ncommand = \"/a\"\n";
        let (_dir, path) = workloads_file(own);
        let without_image: Vec<_> = batch_minimal()
            .into_iter()
            .filter(|(k, _)| *k != "WORDCOUNT_IMAGE")
            .collect();
        let s = settings(&with(without_image.clone(), &[("WORKLOADS_FILE", path)])).unwrap();
        assert!(!s.workloads.has_word_count());
        assert_eq!(s.workloads.routes()[0].name, "a");

        let listed = format!("{own}[[workload]]\nname = \"wordcount\"\n");
        let (_dir, path) = workloads_file(&listed);
        let err = settings(&with(without_image.clone(), &[("WORKLOADS_FILE", path)])).unwrap_err();
        assert_eq!(
            err.problems,
            [
                "WORDCOUNT_IMAGE is required when RUNNER=batch and the workloads file lists \
              `wordcount` without an `image`"
            ]
        );
        let own_image = format!("{listed}image = \"r.io/wc:2\"\n");
        let (_dir, path) = workloads_file(&own_image);
        assert!(settings(&with(without_image, &[("WORKLOADS_FILE", path)])).is_ok());
    }

    #[test]
    fn workloads_need_task_mode_and_a_readable_valid_file() {
        let (_dir, path) = workloads_file("version = 1\n[[workload]]\nname = \"wordcount\"\n");
        let err = settings(&with(
            batch_minimal(),
            &[
                ("WORKLOADS_FILE", path),
                ("BATCH_SUBMIT_MODE", "job"),
                ("STORAGE_ACCOUNT_KEY", KEY),
            ],
        ))
        .unwrap_err();
        assert_eq!(
            err.problems,
            [
                "WORKLOADS_FILE needs BATCH_SUBMIT_MODE=task: a job per blob runs only the word \
              count; unset one of the two"
            ]
        );
        let err = settings(&with(
            batch_minimal(),
            &[("WORKLOADS_FILE", "/nonexistent/w.toml")],
        ))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert!(
            err.problems[0].starts_with("WORKLOADS_FILE /nonexistent/w.toml: cannot read it"),
            "{err}"
        );
        // The file's problems join the others, each with its position.
        let (_dir, path) = workloads_file("version = 1\n[[workload]]\nname = \"X\"\n");
        let err = settings(&with(
            batch_minimal(),
            &[("WORKLOADS_FILE", path), ("BATCH_MAX_IN_FLIGHT", "0")],
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("BATCH_MAX_IN_FLIGHT"), "{text}");
        assert!(
            text.contains(&format!("{path}:3:8: `X` is not a workload name")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{path}:2:1: a workload needs an `image`")),
            "{text}"
        );
    }
}
