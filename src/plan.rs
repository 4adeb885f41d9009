//! From a blob version to the Batch work that counts its words. Pure: the same event and the same
//! clock give the same body, byte for byte.
//!
//! The blob name never reaches the command line or a path the task writes: the input is fetched
//! to a fixed path, the command line is a constant, and the name travels only as data (display
//! name, environment, output blob path).

use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{AutoPool, RunnerSettings, Settings, StorageAccess, SubmitMode, TaskSettings};
use crate::filter::BlobCreated;
use crate::results::{ResultNames, SOURCE_ETAG_METADATA, TASK_ID_METADATA};
use crate::runner::Submission;
use crate::storage::sas::{SasOptions, SasProtocol, SasResource};
use crate::storage::url::encode_blob_name;
use crate::task_spec::{
    AutoUserScope, AutoUserSpecification, ContainerRegistry, ContainerSettings,
    ContainerWorkingDirectory, ElevationLevel, EnvironmentSetting, HttpHeader, IdentityReference,
    JobManagerTask, JobSpec, OutputFile, OutputFileBlobContainerDestination, OutputFileDestination,
    OutputFileUploadOptions, PoolInfo, ResourceFile, TaskConstraints, TaskSpec, UploadCondition,
    UserIdentity,
};

/// Where the input lands in the task's working directory.
pub(crate) const INPUT_PATH: &str = "input/data";
/// The result is the program's standard output, which Batch captures beside the working
/// directory: the container needs no write access to the task directory (the image runs as a
/// non-root user that does not own it).
pub(crate) const RESULT_FILE: &str = "../stdout.txt";
/// Constant: no part of it comes from an event.
pub(crate) const COMMAND_LINE: &str = "/wordcount input/data";
/// Readable by the image's non-root user, whatever user Batch downloads the file as.
const INPUT_FILE_MODE: &str = "0644";
/// Environment variable carrying the blob name into the task (the `source` of the result).
pub(crate) const SOURCE_VARIABLE: &str = "WORDCOUNT_SOURCE";
/// Task id prefix; the rest is hex of a SHA-256.
pub(crate) const TASK_ID_PREFIX: &str = "wc-";
/// Job id prefix in job-per-blob mode.
pub(crate) const JOB_ID_PREFIX: &str = "wcj-";
/// The one task of a job-per-blob job.
pub(crate) const JOB_MANAGER_TASK_ID: &str = "wordcount";

const MAX_DISPLAY_NAME_CHARS: usize = 1024;
/// Clock skew tolerated between us and storage for a SAS's start time.
const SAS_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// One blob version, planned: the work to submit and where its outputs will be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub submission: Submission,
    /// The blob's name in the input container.
    pub blob: String,
    /// The version planned for (unquoted).
    pub etag: String,
    pub names: ResultNames,
}

#[derive(Clone, Debug)]
pub struct Planner {
    account_name: String,
    /// Blob endpoint without a trailing slash.
    account_url: String,
    https_only: bool,
    output_container: String,
    task: TaskSettings,
    /// The identity that logs in to the registry, when the pool has one.
    registry_identity: Option<String>,
    mode: SubmitMode,
}

/// How a task reaches its input and the output container.
struct Access {
    input_url: String,
    output_container_url: String,
    /// The pool's identity, when it is the way in (no SAS).
    identity: Option<IdentityReference>,
}

impl Planner {
    pub fn from_settings(settings: &Settings) -> Planner {
        let storage = &settings.storage;
        let (registry_identity, mode) = match &settings.runner {
            RunnerSettings::Batch(batch) => {
                (batch.node_identity.clone(), batch.submit_mode.clone())
            }
            RunnerSettings::Local(_) => (None, SubmitMode::Task),
        };
        Planner {
            account_name: storage.account_name.clone(),
            account_url: storage
                .account_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            https_only: storage.account_url.scheme() == "https",
            output_container: settings.output_container.clone(),
            task: settings.task.clone(),
            registry_identity,
            mode,
        }
    }

    /// The work for a blob version found by listing `container` rather than by an event: planned
    /// the same way, so it gets the same id whichever way it arrives.
    pub fn plan_listed(
        &self,
        container: &str,
        name: &str,
        etag: &str,
        now: OffsetDateTime,
    ) -> Planned {
        let blob = BlobCreated {
            container: container.to_string(),
            blob: name.to_string(),
            url: format!(
                "{}/{}/{}",
                self.account_url,
                encode_blob_name(container),
                encode_blob_name(name)
            ),
            etag: etag.trim_matches('"').to_string(),
            api: "PutBlob".to_string(),
        };
        self.plan(&blob, now)
    }

    /// The work for one blob version, with SAS URLs valid from `now`.
    pub fn plan(&self, blob: &BlobCreated, now: OffsetDateTime) -> Planned {
        let id = task_id(&self.account_name, &blob.container, &blob.blob, &blob.etag);
        let (submission, names) = match &self.mode {
            SubmitMode::Task => {
                let names = ResultNames::word_count(&blob.blob, &id);
                let task = self.task_spec(id.clone(), &id, blob, &names, now);
                (Submission::Task(task), names)
            }
            SubmitMode::Job(auto_pool) => {
                // The task's id is the same in every job: the job's id is what names its outputs.
                let job_id = job_id(&id);
                let names = ResultNames::word_count(&blob.blob, &job_id);
                let task = self.task_spec(JOB_MANAGER_TASK_ID.into(), &job_id, blob, &names, now);
                (
                    Submission::Job(self.job_per_blob(job_id, task, auto_pool)),
                    names,
                )
            }
        };
        Planned {
            submission,
            blob: blob.blob.clone(),
            etag: blob.etag.clone(),
            names,
        }
    }

    /// A task with the id `id`, whose outputs name `unique_id` (the id that tells this version's
    /// work from any other's).
    fn task_spec(
        &self,
        id: String,
        unique_id: &str,
        blob: &BlobCreated,
        names: &ResultNames,
        now: OffsetDateTime,
    ) -> TaskSpec {
        let access = self.access(blob, now);
        TaskSpec {
            display_name: Some(truncate_chars(
                &format!("{}/{}", blob.container, blob.blob),
                MAX_DISPLAY_NAME_CHARS,
            )),
            id,
            command_line: COMMAND_LINE.into(),
            container_settings: Some(ContainerSettings {
                image_name: self.task.image.clone(),
                container_run_options: None,
                registry: self.registry(),
                working_directory: Some(ContainerWorkingDirectory::TaskWorkingDirectory),
            }),
            resource_files: vec![ResourceFile {
                http_url: access.input_url.clone(),
                file_path: INPUT_PATH.into(),
                file_mode: Some(INPUT_FILE_MODE.into()),
                identity_reference: access.identity.clone(),
            }],
            output_files: self.output_files(&access, blob, names, unique_id),
            environment_settings: vec![EnvironmentSetting {
                name: SOURCE_VARIABLE.into(),
                value: blob.blob.clone(),
            }],
            constraints: Some(TaskConstraints {
                max_wall_clock_time: Some(self.task.max_wall_clock_time_iso()),
                retention_time: Some(self.task.retention_time_iso()),
                max_task_retry_count: Some(self.task.max_retry_count),
            }),
            user_identity: Some(UserIdentity {
                auto_user: Some(AutoUserSpecification {
                    scope: AutoUserScope::Task,
                    elevation_level: ElevationLevel::NonAdmin,
                }),
            }),
        }
    }

    /// The input's URL and the output container's, with read and write SAS signed from `now`
    /// when there is a key, plain (for the pool's identity) otherwise.
    fn access(&self, blob: &BlobCreated, now: OffsetDateTime) -> Access {
        match &self.task.access {
            StorageAccess::Sas(key) => {
                let options = |permissions: &str| SasOptions {
                    permissions: permissions.into(),
                    start: Some(now - SAS_CLOCK_SKEW),
                    expiry: now + self.task.longest_lifetime() + SAS_CLOCK_SKEW,
                    protocol: if self.https_only {
                        SasProtocol::Https
                    } else {
                        SasProtocol::HttpsAndHttp
                    },
                };
                let read = key.service_sas(
                    SasResource::Blob {
                        container: &blob.container,
                        blob: &blob.blob,
                    },
                    &options("r"),
                );
                let write = key.service_sas(
                    SasResource::Container {
                        container: &self.output_container,
                    },
                    &options("cw"),
                );
                Access {
                    input_url: read.append_to(&blob.url),
                    output_container_url: write.append_to(&self.output_container_url()),
                    identity: None,
                }
            }
            StorageAccess::Identity(resource_id) => Access {
                input_url: blob.url.clone(),
                output_container_url: self.output_container_url(),
                identity: Some(IdentityReference {
                    resource_id: resource_id.clone(),
                }),
            },
        }
    }

    /// Standard output to the result blob on success, with the version it counts; the task's
    /// `stdout.txt` and `stderr.txt` to the logs folder on failure.
    fn output_files(
        &self,
        access: &Access,
        blob: &BlobCreated,
        names: &ResultNames,
        unique_id: &str,
    ) -> Vec<OutputFile> {
        let destination = |path: &str, headers: Vec<HttpHeader>| OutputFileDestination {
            container: OutputFileBlobContainerDestination {
                container_url: access.output_container_url.clone(),
                path: Some(path.to_string()),
                identity_reference: access.identity.clone(),
                upload_headers: headers,
            },
        };
        let header = |name: String, value: &str| HttpHeader {
            name,
            value: value.to_string(),
        };
        vec![
            OutputFile {
                file_pattern: RESULT_FILE.into(),
                destination: destination(
                    &names.result,
                    vec![
                        header("Content-Type".into(), "application/json"),
                        header(format!("x-ms-meta-{SOURCE_ETAG_METADATA}"), &blob.etag),
                        header(format!("x-ms-meta-{TASK_ID_METADATA}"), unique_id),
                    ],
                ),
                upload_options: OutputFileUploadOptions {
                    upload_condition: UploadCondition::TaskSuccess,
                },
            },
            OutputFile {
                file_pattern: "../std*.txt".into(),
                destination: destination(&names.logs, vec![]),
                upload_options: OutputFileUploadOptions {
                    upload_condition: UploadCondition::TaskFailure,
                },
            },
        ]
    }

    /// Job-per-blob mode: a job of its own with `task` as its job manager, on an auto pool.
    fn job_per_blob(&self, id: String, task: TaskSpec, auto_pool: &AutoPool) -> JobSpec {
        JobSpec {
            id,
            display_name: task.display_name.clone(),
            pool_info: PoolInfo {
                pool_id: None,
                auto_pool_specification: Some(self.auto_pool(auto_pool)),
            },
            on_all_tasks_complete: None,
            job_manager_task: Some(JobManagerTask {
                task,
                kill_job_on_completion: true,
            }),
        }
    }

    fn output_container_url(&self) -> String {
        format!("{}/{}", self.account_url, self.output_container)
    }

    /// The registry is named only when the pool identity can log in to it; otherwise the pool's
    /// own container configuration (or a public image) has to provide access.
    fn registry(&self) -> Option<ContainerRegistry> {
        let identity = self.registry_identity.as_ref()?;
        if self.mode != SubmitMode::Task {
            return None;
        }
        Some(ContainerRegistry {
            registry_server: registry_server(&self.task.image)?.to_owned(),
            identity_reference: Some(IdentityReference {
                resource_id: identity.clone(),
            }),
        })
    }

    fn auto_pool(&self, auto_pool: &AutoPool) -> serde_json::Value {
        let (dedicated, low_priority) = if auto_pool.low_priority {
            (0, 1)
        } else {
            (1, 0)
        };
        serde_json::json!({
            "autoPoolIdPrefix": "wc",
            "poolLifetimeOption": "job",
            "keepAlive": false,
            "pool": {
                "vmSize": auto_pool.vm_size,
                "taskSlotsPerNode": 1,
                "targetDedicatedNodes": dedicated,
                "targetLowPriorityNodes": low_priority,
                "virtualMachineConfiguration": {
                    "imageReference": {
                        "publisher": "microsoft-dsvm",
                        "offer": "ubuntu-hpc",
                        "sku": "2204",
                        "version": "latest"
                    },
                    "nodeAgentSKUId": "batch.node.ubuntu 22.04",
                    "containerConfiguration": {
                        "type": "dockerCompatible",
                        "containerImageNames": [self.task.image]
                    }
                }
            }
        })
    }
}

/// `wc-` + hex of SHA-256 over (account, container, blob, eTag), cut to Batch's 64 characters.
/// Each part is length-prefixed so that no two different tuples hash the same bytes. A new
/// eTag (an overwrite) gives a new id; a redelivery gives the same one. The golden tests pin
/// it: changing it would run every redelivery that spans an upgrade twice.
pub fn task_id(account: &str, container: &str, blob: &str, etag: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [account, container, blob, etag.trim_matches('"')] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let hex = hex::encode(hasher.finalize());
    let mut id = String::with_capacity(64);
    id.push_str(TASK_ID_PREFIX);
    id.push_str(&hex[..64 - TASK_ID_PREFIX.len()]);
    id
}

/// Job id in job-per-blob mode, derived from the task id (so equally deterministic).
pub fn job_id(task_id: &str) -> String {
    let hash = task_id.strip_prefix(TASK_ID_PREFIX).unwrap_or(task_id);
    let mut id = String::from(JOB_ID_PREFIX);
    id.push_str(&hash[..64 - JOB_ID_PREFIX.len()]);
    id
}

/// The registry host of an image reference, if it names one (`example.azurecr.io/wc:1`), by the
/// usual rule: the first component is a registry when it has a `.` or `:` or is `localhost`.
pub(crate) fn registry_server(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    const UAMI: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool";

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut map: HashMap<String, String> = [
            ("STORAGE_ACCOUNT_URL", "https://acct.blob.core.windows.net"),
            (
                "BATCH_ACCOUNT_URL",
                "https://mybatch.westeurope.batch.azure.com",
            ),
            ("WORDCOUNT_IMAGE", "example.azurecr.io/wordcount:1.0.0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        Settings::from_lookup(|n| map.get(n).cloned()).unwrap()
    }

    fn blob(name: &str, etag: &str) -> BlobCreated {
        BlobCreated {
            container: "input".into(),
            blob: name.into(),
            url: format!(
                "https://acct.blob.core.windows.net/input/{}",
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
            ),
            etag: etag.into(),
            api: "PutBlob".into(),
        }
    }

    /// The SAS query parameters of a URL, decoded, each name exactly once.
    fn sas_params(url: &str) -> HashMap<String, String> {
        let url = url::Url::parse(url).unwrap();
        let mut params = HashMap::new();
        for (name, value) in url.query_pairs() {
            let previous = params.insert(name.into_owned(), value.into_owned());
            assert!(previous.is_none(), "a SAS parameter repeated in {url}");
        }
        params
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-03-14 09:26:53 UTC)
    }

    fn task(planned: Planned) -> TaskSpec {
        match planned.submission {
            Submission::Task(t) => t,
            other => panic!("expected a task, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_deterministic_bounded_and_change_with_the_etag() {
        let a = task_id("acct", "input", "docs/a b.txt", "0x8D1");
        assert_eq!(a, task_id("acct", "input", "docs/a b.txt", "\"0x8D1\""));
        assert_ne!(a, task_id("acct", "input", "docs/a b.txt", "0x8D2"));
        assert_ne!(a, task_id("acct2", "input", "docs/a b.txt", "0x8D1"));
        assert_ne!(task_id("a", "bc", "d", "e"), task_id("ab", "c", "d", "e"));
        assert_eq!(a.len(), 64);
        assert!(a.starts_with("wc-"));
        assert!(
            a[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let j = job_id(&a);
        assert_eq!(j.len(), 64);
        assert!(j.starts_with("wcj-") && crate::task_spec::is_valid_id(&j));
    }

    #[test]
    fn identity_plan_matches_the_documented_body() {
        let planner = Planner::from_settings(&settings(&[("BATCH_NODE_IDENTITY", UAMI)]));
        let b = blob("docs/a b.txt", "0x8DE62A1B3C4D5E7");
        let t = task(planner.plan(&b, now()));
        let id = task_id("acct", "input", "docs/a b.txt", "0x8DE62A1B3C4D5E7");
        let expected = serde_json::json!({
            "id": id,
            "displayName": "input/docs/a b.txt",
            "commandLine": "/wordcount input/data",
            "containerSettings": {
                "imageName": "example.azurecr.io/wordcount:1.0.0",
                "registry": {"registryServer": "example.azurecr.io", "identityReference": {"resourceId": UAMI}},
                "workingDirectory": "taskWorkingDirectory"
            },
            "resourceFiles": [{
                "httpUrl": "https://acct.blob.core.windows.net/input/docs%2Fa%20b%2Etxt",
                "filePath": "input/data",
                "fileMode": "0644",
                "identityReference": {"resourceId": UAMI}
            }],
            "outputFiles": [
                {"filePattern": "../stdout.txt",
                 "destination": {"container": {
                     "containerUrl": "https://acct.blob.core.windows.net/output",
                     "path": "docs/a b.txt.wordcount.json",
                     "identityReference": {"resourceId": UAMI},
                     "uploadHeaders": [
                         {"name": "Content-Type", "value": "application/json"},
                         {"name": "x-ms-meta-source_etag", "value": "0x8DE62A1B3C4D5E7"},
                         {"name": "x-ms-meta-task_id", "value": id}
                     ]}},
                 "uploadOptions": {"uploadCondition": "tasksuccess"}},
                {"filePattern": "../std*.txt",
                 "destination": {"container": {
                     "containerUrl": "https://acct.blob.core.windows.net/output",
                     "path": format!("docs/a b.txt.wordcount.logs/{id}"),
                     "identityReference": {"resourceId": UAMI}}},
                 "uploadOptions": {"uploadCondition": "taskfailure"}}
            ],
            "environmentSettings": [{"name": "WORDCOUNT_SOURCE", "value": "docs/a b.txt"}],
            "constraints": {"maxWallClockTime": "PT1H", "retentionTime": "P1D", "maxTaskRetryCount": 2},
            "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}}
        });
        assert_eq!(serde_json::to_value(&t).unwrap(), expected);
    }

    #[test]
    fn sas_plan_signs_read_for_the_blob_and_write_for_the_output_container() {
        let planner = Planner::from_settings(&settings(&[("STORAGE_ACCOUNT_KEY", KEY)]));
        let t = task(planner.plan(&blob("a.txt", "0x1"), now()));
        let input = &t.resource_files[0];
        assert!(input.identity_reference.is_none());
        assert!(
            input
                .http_url
                .starts_with("https://acct.blob.core.windows.net/input/a%2Etxt?")
        );
        // Valid from 15 minutes before now until the task's longest lifetime (12 h queue +
        // 3 tries of 1 h) plus 15 minutes; read only, on that one blob, over https only.
        let read = sas_params(&input.http_url);
        assert_eq!(read["sp"], "r");
        assert_eq!(read["sr"], "b");
        assert_eq!(read["spr"], "https");
        assert_eq!(read["sv"], crate::storage::sas::SAS_VERSION);
        assert_eq!(read["st"], "2026-03-14T09:11:53Z");
        assert_eq!(read["se"], "2026-03-15T00:41:53Z");
        assert!(!read["sig"].is_empty());
        let out = &t.output_files[0].destination.container;
        assert!(
            out.container_url
                .starts_with("https://acct.blob.core.windows.net/output?")
        );
        let write = sas_params(&out.container_url);
        assert_eq!(write["sp"], "cw", "create and write, nothing more");
        assert_eq!(write["sr"], "c");
        assert_eq!(write["se"], read["se"]);
        assert!(out.identity_reference.is_none());
        // Both result and logs go through the same container SAS.
        assert_eq!(
            t.output_files[1].destination.container.container_url,
            out.container_url
        );
        // Without an identity the registry comes from the pool's configuration.
        assert!(t.container_settings.unwrap().registry.is_none());
    }

    #[test]
    fn blob_names_never_reach_the_command_line_or_file_paths() {
        let planner = Planner::from_settings(&settings(&[("STORAGE_ACCOUNT_KEY", KEY)]));
        for name in [
            "$(reboot).txt",
            "../../etc/passwd",
            "a;b",
            "-o /etc/x",
            "🎉",
        ] {
            let t = task(planner.plan(&blob(name, "0x1"), now()));
            assert_eq!(t.command_line, COMMAND_LINE);
            assert_eq!(t.resource_files[0].file_path, INPUT_PATH);
            assert_eq!(t.output_files[0].file_pattern, RESULT_FILE);
            assert_eq!(t.environment_settings[0].value, name);
        }
    }

    #[test]
    fn overlong_names_fall_back_to_the_long_names_folder() {
        let planner = Planner::from_settings(&settings(&[("STORAGE_ACCOUNT_KEY", KEY)]));
        let name = "n".repeat(1024);
        let t = task(planner.plan(&blob(&name, "0x1"), now()));
        let result = t.output_files[0]
            .destination
            .container
            .path
            .as_deref()
            .unwrap();
        assert_eq!(result, format!("long-names/{}.wordcount.json", t.id));
        let logs = t.output_files[1]
            .destination
            .container
            .path
            .as_deref()
            .unwrap();
        assert_eq!(logs, format!("long-names/{}.wordcount.logs", t.id));
        assert_eq!(t.display_name.unwrap().chars().count(), 1024);
        let short = task(planner.plan(&blob(&"n".repeat(1000), "0x1"), now()));
        assert!(
            short.output_files[0]
                .destination
                .container
                .path
                .as_deref()
                .unwrap()
                .ends_with("n.wordcount.json")
        );
    }

    #[test]
    fn job_mode_creates_a_job_with_an_auto_pool_and_the_task_as_job_manager() {
        let planner = Planner::from_settings(&settings(&[
            ("STORAGE_ACCOUNT_KEY", KEY),
            ("BATCH_SUBMIT_MODE", "job"),
            ("BATCH_AUTO_POOL_LOW_PRIORITY", "true"),
        ]));
        let b = blob("a.txt", "0x1");
        let Submission::Job(job) = planner.plan(&b, now()).submission else {
            panic!("expected a job")
        };
        let tid = task_id("acct", "input", "a.txt", "0x1");
        assert_eq!(job.id, job_id(&tid));
        let manager = job.job_manager_task.as_ref().unwrap();
        assert!(manager.kill_job_on_completion);
        assert_eq!(manager.task.id, JOB_MANAGER_TASK_ID);
        assert_eq!(
            manager.task.output_files[1]
                .destination
                .container
                .path
                .as_deref(),
            Some(format!("a.txt.wordcount.logs/{}", job.id).as_str())
        );
        let body = serde_json::to_value(&job).unwrap();
        let pool = &body["poolInfo"]["autoPoolSpecification"];
        assert_eq!(pool["poolLifetimeOption"], "job");
        assert_eq!(pool["keepAlive"], false);
        assert_eq!(pool["pool"]["targetLowPriorityNodes"], 1);
        assert_eq!(
            pool["pool"]["virtualMachineConfiguration"]["nodeAgentSKUId"],
            "batch.node.ubuntu 22.04"
        );
        assert_eq!(body["jobManagerTask"]["killJobOnCompletion"], true);
        assert_eq!(body["jobManagerTask"]["commandLine"], COMMAND_LINE);
    }

    #[test]
    fn a_listed_blob_is_planned_like_its_event() {
        let planner = Planner::from_settings(&settings(&[("BATCH_NODE_IDENTITY", UAMI)]));
        let by_event = planner.plan(&blob("docs/a b.txt", "0x8D1"), now());
        let by_listing = planner.plan_listed("input", "docs/a b.txt", "\"0x8D1\"", now());
        assert_eq!(by_listing.names, by_event.names);
        assert_eq!(by_listing.etag, "0x8D1");
        assert_eq!(by_listing.names.result, "docs/a b.txt.wordcount.json");
        let (by_event, by_listing) = (task(by_event), task(by_listing));
        assert_eq!(by_listing.id, by_event.id);
        assert_eq!(
            by_listing.resource_files[0].http_url,
            "https://acct.blob.core.windows.net/input/docs/a%20b.txt"
        );
        assert_eq!(by_listing.output_files, by_event.output_files);
        assert_eq!(
            by_listing.output_files[1].destination.container.path,
            Some(format!("docs/a b.txt.wordcount.logs/{}", by_listing.id))
        );
    }

    #[test]
    fn registry_servers() {
        assert_eq!(
            registry_server("example.azurecr.io/wordcount:1"),
            Some("example.azurecr.io")
        );
        assert_eq!(registry_server("localhost:5000/wc"), Some("localhost:5000"));
        assert_eq!(registry_server("library/wordcount"), None);
        assert_eq!(registry_server("wordcount"), None);
    }
}
