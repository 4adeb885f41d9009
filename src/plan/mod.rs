//! From a blob version to the Batch work its workload asks for. Pure: the same event, routes and
//! clock give the same body, byte for byte.
//!
//! The route (see [`crate::workloads`]) decides which workload takes the blob; `word_count`
//! plans the built-in word count (exactly as before workloads existed), `image` any other
//! workload. The blob name never reaches a command line or a path the task writes: the input is
//! fetched to a fixed path (or read through a URL in the environment), the command line is the
//! workload's constant, and the name travels only as data (display name, environment, output
//! blob path).

mod access;
mod ids;
mod image;
mod split;
mod task;
mod word_count;

use time::OffsetDateTime;

pub use access::{NoKey, ReadSigner, Unsigned};
pub use ids::{job_id, split_job_id, task_id, workload_task_id};
pub use split::Cut;
pub(crate) use word_count::{COMMAND_LINE, JOB_MANAGER_TASK_ID};

use self::access::Signing;
use self::image::ImageTask;
use self::split::SplitPlan;
use self::word_count::WordCountTask;
use crate::config::{
    DEFAULT_JOB_ID, DEFAULT_POOL_ID, RunnerSettings, Settings, SplitSettings, SubmitMode,
    TaskSettings,
};
use crate::filter::BlobCreated;
use crate::results::ResultNames;
use crate::runner::{JobRef, Submission};
use crate::storage::BlobEntry;
use crate::storage::url::encode_blob_name;
use crate::task_spec::{ContainerRegistry, IdentityReference};
use crate::workloads::{Input, Program, Route, Run, Workload, Workloads};

/// What becomes of one blob version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Run(Box<Planned>),
    /// No task: the reason, for the logs and the answer.
    Ignored(String),
}

/// One blob version, planned: the work to submit and where its outputs will be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub submission: Submission,
    /// The workload that takes the blob.
    pub workload: String,
    /// The blob's name in the input container.
    pub blob: String,
    /// The version planned for (unquoted).
    pub etag: String,
    pub names: ResultNames,
}

/// Why a blob version could not be planned now (it may be later: a redelivery is worth it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot plan the task: {0}")]
pub struct PlanError(String);

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
    workloads: Workloads,
    /// `BATCH_JOB_ID` on `BATCH_POOL_ID`: where a workload's tasks go unless it names its own.
    default_job: JobRef,
    /// When a word count is split, and where its parts stage their counts.
    split: SplitSettings,
}

impl Planner {
    pub fn from_settings(settings: &Settings) -> Planner {
        let storage = &settings.storage;
        let (registry_identity, mode, default_job) = match &settings.runner {
            RunnerSettings::Batch(batch) => (
                batch.node_identity.clone(),
                batch.submit_mode.clone(),
                JobRef::new(&batch.job_id, &batch.pool_id),
            ),
            RunnerSettings::Local(_) => (
                None,
                SubmitMode::Task,
                JobRef::new(DEFAULT_JOB_ID, DEFAULT_POOL_ID),
            ),
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
            workloads: settings.workloads.clone(),
            default_job,
            split: settings.split.clone(),
        }
    }

    pub fn workloads(&self) -> &Workloads {
        &self.workloads
    }

    /// The work for a blob version found by listing `container` rather than by an event: planned
    /// the same way (its content type and size as the listing gives them), so it gets the same
    /// id whichever way it arrives.
    pub fn plan_listed(
        &self,
        container: &str,
        entry: &BlobEntry,
        now: OffsetDateTime,
        delegated: Option<&dyn ReadSigner>,
    ) -> Result<Plan, PlanError> {
        let blob = BlobCreated {
            container: container.to_string(),
            blob: entry.name.clone(),
            url: format!(
                "{}/{}/{}",
                self.account_url,
                encode_blob_name(container),
                encode_blob_name(&entry.name)
            ),
            etag: entry.etag.trim_matches('"').to_string(),
            api: "PutBlob".to_string(),
            content_type: entry.content_type.clone(),
            size: Some(entry.size),
        };
        self.plan(&blob, now, delegated)
    }

    /// The work for one blob version, with SAS URLs valid from `now`; `delegated` signs the
    /// input URL of a task that reads its input itself when storage has no key.
    pub fn plan(
        &self,
        blob: &BlobCreated,
        now: OffsetDateTime,
        delegated: Option<&dyn ReadSigner>,
    ) -> Result<Plan, PlanError> {
        let planned = match self
            .workloads
            .route(&blob.blob, blob.content_type.as_deref())
        {
            Route::Unmatched => return Ok(Plan::Ignored("no workload matches".into())),
            Route::Ignored(workload) => {
                return Ok(Plan::Ignored(format!(
                    "ignored by workload {}",
                    workload.name
                )));
            }
            Route::Run(workload, run) => match &run.program {
                Program::WordCount { image } => {
                    let image = image.as_deref().unwrap_or(&self.task.image);
                    match self.cut(blob) {
                        Some((size, cut)) => {
                            let split = (size, cut);
                            self.split(blob, workload, run, image, split, now, delegated)?
                        }
                        None => self.word_count(blob, workload, run, image, now),
                    }
                }
                Program::Image { image, command } => {
                    let program = (image.as_str(), command.as_str());
                    self.image(blob, workload, run, program, now, delegated)?
                }
            },
        };
        Ok(Plan::Run(Box::new(planned)))
    }

    /// The word count of one blob version: a task of the workload's job, or in job-per-blob mode
    /// a job of its own.
    fn word_count(
        &self,
        blob: &BlobCreated,
        workload: &Workload,
        run: &Run,
        image: &str,
        now: OffsetDateTime,
    ) -> Planned {
        let id = task_id(&self.account_name, &blob.container, &blob.blob, &blob.etag);
        let settings = self.task_settings(run);
        // In job-per-blob mode the task's id is the same in every job: the job's id is what
        // names its outputs.
        let (unique_id, task_id) = match &self.mode {
            SubmitMode::Task => (id.clone(), id),
            SubmitMode::Job(_) => (job_id(&id), JOB_MANAGER_TASK_ID.to_string()),
        };
        let names = ResultNames::word_count(&blob.blob, &unique_id);
        let task = word_count::task(WordCountTask {
            id: task_id,
            unique_id: &unique_id,
            blob,
            image,
            registry: self.registry(image),
            settings: &settings,
            slots: run.slots,
            access: self
                .signing()
                .access(blob, now, settings.longest_lifetime()),
            names: &names,
        });
        let submission = match &self.mode {
            SubmitMode::Task => Submission::task(&self.job_of(run), task),
            SubmitMode::Job(auto_pool) => {
                Submission::Job(word_count::job_per_blob(unique_id, task, auto_pool, image))
            }
        };
        Planned::new(submission, workload, blob, names)
    }

    /// How a word-count blob is split, if it is: never in job-per-blob mode, nor gzip, nor
    /// a blob whose size is not known or under the threshold.
    fn cut(&self, blob: &BlobCreated) -> Option<(u64, Cut)> {
        if self.mode != SubmitMode::Task || split::is_gzip(blob) {
            return None;
        }
        let size = blob.size?;
        Cut::of(size, &self.split).map(|cut| (size, cut))
    }

    /// The word count of a large blob version, split into parts and a merge in a job of its own
    /// on the workload's pool.
    #[allow(clippy::too_many_arguments)]
    fn split(
        &self,
        blob: &BlobCreated,
        workload: &Workload,
        run: &Run,
        image: &str,
        (size, cut): (u64, Cut),
        now: OffsetDateTime,
        delegated: Option<&dyn ReadSigner>,
    ) -> Result<Planned, PlanError> {
        let job_id = split_job_id(
            &self.account_name,
            &blob.container,
            &blob.blob,
            &blob.etag,
            (size, cut.part_size, cut.parts),
        );
        let settings = self.task_settings(run);
        let lifetime = settings.longest_lifetime();
        let signing = self.signing();
        let input_url = signing
            .read_url(blob, now, lifetime, delegated)
            .map_err(PlanError)?;
        let names = ResultNames::word_count(&blob.blob, &job_id);
        let pool = self.job_of(run).pool;
        let job = split::split(SplitPlan {
            job_id,
            pool: &pool,
            cut,
            blob,
            size,
            image,
            registry: self.registry(image),
            settings: &settings,
            slots: run.slots,
            // The merge writes the result after the parts have run: its URLs last twice as long.
            access: signing.access(blob, now, lifetime.saturating_mul(2)),
            input_url,
            staging: signing.staging(now, lifetime),
            names: &names,
        });
        let submission = Submission::Split(Box::new(job));
        Ok(Planned::new(submission, workload, blob, names))
    }

    /// The task of a workload of one's own for one blob version.
    fn image(
        &self,
        blob: &BlobCreated,
        workload: &Workload,
        run: &Run,
        (image, command): (&str, &str),
        now: OffsetDateTime,
        delegated: Option<&dyn ReadSigner>,
    ) -> Result<Planned, PlanError> {
        let id = workload_task_id(
            &workload.name,
            &self.account_name,
            &blob.container,
            &blob.blob,
            &blob.etag,
        );
        let settings = self.task_settings(run);
        let lifetime = settings.longest_lifetime();
        let signing = self.signing();
        let input_url = match run.input {
            Input::File => None,
            Input::Url => Some(
                signing
                    .read_url(blob, now, lifetime, delegated)
                    .map_err(PlanError)?,
            ),
        };
        let names = ResultNames::of_workload(&blob.blob, &id, &workload.name, &run.output);
        let task = image::task(ImageTask {
            id,
            workload: &workload.name,
            run,
            image,
            command,
            registry: self.registry(image),
            blob,
            settings: &settings,
            access: signing.access(blob, now, lifetime),
            input_url,
            names: &names,
        });
        let submission = Submission::task(&self.job_of(run), task);
        Ok(Planned::new(submission, workload, blob, names))
    }

    /// The job a workload's tasks go to.
    fn job_of(&self, run: &Run) -> JobRef {
        match (&run.job, &run.pool) {
            (None, None) => self.default_job.clone(),
            (job, pool) => JobRef::new(
                job.as_deref().unwrap_or(&self.default_job.id),
                pool.as_deref().unwrap_or(&self.default_job.pool),
            ),
        }
    }

    /// The task settings of a workload: its own limits over the `TASK_*` settings.
    fn task_settings(&self, run: &Run) -> TaskSettings {
        self.task.with_limits(&run.limits)
    }

    fn signing(&self) -> Signing<'_> {
        Signing {
            access: &self.task.access,
            https_only: self.https_only,
            output_container_url: format!("{}/{}", self.account_url, self.output_container),
            output_container: &self.output_container,
            staging_container_url: format!("{}/{}", self.account_url, self.split.staging_container),
            staging_container: &self.split.staging_container,
        }
    }

    /// The registry is named only when the pool identity can log in to it, which Batch does
    /// for Azure Container Registry only; otherwise the pool's own container configuration (or
    /// a public image, `mcr.microsoft.com/...`) has to provide access.
    fn registry(&self, image: &str) -> Option<ContainerRegistry> {
        let identity = self.registry_identity.as_ref()?;
        if self.mode != SubmitMode::Task {
            return None;
        }
        let server = registry_server(image).filter(|s| is_azure_container_registry(s))?;
        Some(ContainerRegistry {
            registry_server: server.to_owned(),
            identity_reference: Some(IdentityReference {
                resource_id: identity.clone(),
            }),
        })
    }
}

/// The registry host of an image reference, if it names one (`example.azurecr.io/wc:1`), by the
/// usual rule: the first component is a registry when it has a `.` or `:` or is `localhost`.
pub(crate) fn registry_server(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// An Azure Container Registry login server (public and sovereign clouds).
fn is_azure_container_registry(server: &str) -> bool {
    let host = server
        .split(':')
        .next()
        .unwrap_or(server)
        .to_ascii_lowercase();
    [".azurecr.io", ".azurecr.cn", ".azurecr.us"]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

impl Planned {
    fn new(
        submission: Submission,
        workload: &Workload,
        blob: &BlobCreated,
        names: ResultNames,
    ) -> Planned {
        Planned {
            submission,
            workload: workload.name.clone(),
            blob: blob.blob.clone(),
            etag: blob.etag.clone(),
            names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::task::{INPUT_PATH, RESULT_FILE};
    use super::*;
    use crate::task_spec::TaskSpec;
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
            content_type: None,
            size: None,
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

    fn planned(plan: Result<Plan, PlanError>) -> Planned {
        match plan {
            Ok(Plan::Run(planned)) => *planned,
            other => panic!("expected a task, got {other:?}"),
        }
    }

    fn task(plan: Result<Plan, PlanError>) -> TaskSpec {
        match planned(plan).submission {
            Submission::Task { task, .. } => task,
            other => panic!("expected a task, got {other:?}"),
        }
    }

    #[test]
    fn identity_plan_matches_the_documented_body() {
        let planner = Planner::from_settings(&settings(&[("BATCH_NODE_IDENTITY", UAMI)]));
        let b = blob("docs/a b.txt", "0x8DE62A1B3C4D5E7");
        let t = task(planner.plan(&b, now(), None));
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
        let t = task(planner.plan(&blob("a.txt", "0x1"), now(), None));
        let input = &t.resource_files[0];
        assert!(input.identity_reference.is_none());
        assert!(
            input
                .http_url
                .as_deref()
                .unwrap()
                .starts_with("https://acct.blob.core.windows.net/input/a%2Etxt?")
        );
        // Valid from 15 minutes before now until the task's longest lifetime (12 h queue +
        // 3 tries of 1 h) plus 15 minutes; read only, on that one blob, over https only.
        let read = sas_params(input.http_url.as_deref().unwrap());
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
            let t = task(planner.plan(&blob(name, "0x1"), now(), None));
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
        let t = task(planner.plan(&blob(&name, "0x1"), now(), None));
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
        let short = task(planner.plan(&blob(&"n".repeat(1000), "0x1"), now(), None));
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
        let Submission::Job(job) = planned(planner.plan(&b, now(), None)).submission else {
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
        let by_event = planned(planner.plan(&blob("docs/a b.txt", "0x8D1"), now(), None));
        let entry = BlobEntry {
            name: "docs/a b.txt".into(),
            etag: "\"0x8D1\"".into(),
            ..BlobEntry::default()
        };
        let by_listing = planned(planner.plan_listed("input", &entry, now(), None));
        assert_eq!(by_listing.names, by_event.names);
        assert_eq!(by_listing.etag, "0x8D1");
        assert_eq!(by_listing.names.result, "docs/a b.txt.wordcount.json");
        let task = |p: Planned| match p.submission {
            Submission::Task { task, .. } => task,
            other => panic!("{other:?}"),
        };
        let (by_event, by_listing) = (task(by_event), task(by_listing));
        assert_eq!(by_listing.id, by_event.id);
        assert_eq!(
            by_listing.resource_files[0].http_url.as_deref(),
            Some("https://acct.blob.core.windows.net/input/docs/a%20b.txt")
        );
        assert_eq!(by_listing.output_files, by_event.output_files);
        assert_eq!(
            by_listing.output_files[1].destination.container.path,
            Some(format!("docs/a b.txt.wordcount.logs/{}", by_listing.id))
        );
    }

    /// Settings with the workloads file `text`.
    fn with_workloads(text: &str, extra: &[(&str, &str)]) -> (Settings, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workloads.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        let mut pairs = vec![("WORKLOADS_FILE", path.as_str())];
        pairs.extend_from_slice(extra);
        (settings(&pairs), dir)
    }

    const WORKLOADS: &str = r#"version = 1
[[workload]]
name = "checksum"
suffix = ".png"
content_type = "image/*"
image = "example.azurecr.io/checksum:1.2"
command = "/bin/busybox sha256sum input/data"
result = { suffix = ".sha256.txt", content_type = "text/plain" }
env = { LEVEL = "9", A_FIRST = "1" }
pool = "small"
job = "checksums"
max_wall_clock = "PT30M"
max_retries = 0
slots = 2

[[workload]]
name = "thumbs"
prefix = "photos/"
image = "example.azurecr.io/thumbs:3"
command = "/thumbs --size 128"
files = "out/**"
input = "url"

[[workload]]
name = "archive"
prefix = "archive/"
ignore = true

[[workload]]
name = "wordcount"
suffix = ".txt"
max_wall_clock = "PT2H"
"#;

    fn typed(name: &str, content_type: &str) -> BlobCreated {
        BlobCreated {
            content_type: Some(content_type.into()),
            ..blob(name, "0x1")
        }
    }

    #[test]
    fn each_blob_goes_to_its_route_and_the_rest_is_ignored() {
        let (s, _dir) = with_workloads(WORKLOADS, &[("STORAGE_ACCOUNT_KEY", KEY)]);
        let planner = Planner::from_settings(&s);
        let route = |b: BlobCreated| match planner.plan(&b, now(), None).unwrap() {
            Plan::Run(p) => p.workload,
            Plan::Ignored(reason) => reason,
        };
        assert_eq!(route(typed("a.png", "image/png")), "checksum");
        assert_eq!(route(typed("a.png", "text/plain")), "no workload matches");
        assert_eq!(route(typed("photos/a.jpg", "image/jpeg")), "thumbs");
        assert_eq!(
            route(typed("archive/a.txt", "text/plain")),
            "ignored by workload archive"
        );
        assert_eq!(route(typed("b.txt", "text/plain")), "wordcount");
        assert_eq!(route(blob("b.md", "0x1")), "no workload matches");
    }

    #[test]
    fn a_workload_task_runs_its_image_on_its_job_with_its_environment_and_limits() {
        let (s, _dir) = with_workloads(
            WORKLOADS,
            &[("STORAGE_ACCOUNT_KEY", KEY), ("BATCH_NODE_IDENTITY", UAMI)],
        );
        let planner = Planner::from_settings(&s);
        let planned = planned(planner.plan(&typed("a b.png", "image/png"), now(), None));
        let id = workload_task_id("checksum", "acct", "input", "a b.png", "0x1");
        assert_eq!(planned.workload, "checksum");
        assert_eq!(planned.names.result, "a b.png.sha256.txt");
        assert_eq!(planned.names.logs, format!("a b.png.checksum.logs/{id}"));
        let Submission::Task { job, task } = planned.submission else {
            panic!("a task")
        };
        assert_eq!(job, JobRef::new("checksums", "small"));
        assert_eq!(task.id, id);
        assert_eq!(task.command_line, "/bin/busybox sha256sum input/data");
        let container = task.container_settings.as_ref().unwrap();
        assert_eq!(container.image_name, "example.azurecr.io/checksum:1.2");
        assert_eq!(
            container.registry.as_ref().unwrap().registry_server,
            "example.azurecr.io"
        );
        assert_eq!(task.resource_files.len(), 1);
        assert_eq!(task.resource_files[0].file_path, "input/data");
        let env: Vec<(&str, &str)> = task
            .environment_settings
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("BLOB2BATCH_BLOB", "a b.png"),
                ("BLOB2BATCH_CONTAINER", "input"),
                ("BLOB2BATCH_ETAG", "0x1"),
                ("BLOB2BATCH_WORKLOAD", "checksum"),
                ("A_FIRST", "1"),
                ("LEVEL", "9"),
            ]
        );
        let body = serde_json::to_value(&task).unwrap();
        assert_eq!(
            body["constraints"],
            serde_json::json!({"maxWallClockTime": "PT30M", "retentionTime": "P1D", "maxTaskRetryCount": 0})
        );
        assert_eq!(body["requiredSlots"], 2);
        let result = &body["outputFiles"][0];
        assert_eq!(result["filePattern"], "../stdout.txt");
        assert_eq!(
            result["destination"]["container"]["path"],
            "a b.png.sha256.txt"
        );
        assert_eq!(
            result["destination"]["container"]["uploadHeaders"],
            serde_json::json!([
                {"name": "Content-Type", "value": "text/plain"},
                {"name": "x-ms-meta-source_etag", "value": "0x1"},
                {"name": "x-ms-meta-task_id", "value": id}
            ])
        );
        // The SAS of a task lasts as long as it may: no queue override (12 h), one 30-minute try.
        let read = sas_params(task.resource_files[0].http_url.as_deref().unwrap());
        assert_eq!(read["se"], "2026-03-14T22:11:53Z");
        assert_eq!(read["sp"], "r");
    }

    #[test]
    fn a_files_pattern_without_a_wildcard_lands_in_the_folder_too() {
        // Batch names a literal pattern's blob by the destination itself: the folder alone would
        // make the file the blob `{blob}.{name}`, beside its folder rather than in it.
        let text = "version = 1\n[[workload]]\nname = \"report\"\nimage = \"r.io/report:1\"\n\
                    command = \"/report\"\nfiles = \"out/summary.pdf\"\n";
        let (s, _dir) = with_workloads(text, &[("STORAGE_ACCOUNT_KEY", KEY)]);
        let planner = Planner::from_settings(&s);
        let planned = planned(planner.plan(&blob("a.txt", "0x1"), now(), None));
        assert_eq!(planned.names.result, "a.txt.report/stdout.txt");
        let Submission::Task { task, .. } = planned.submission else {
            panic!("a task")
        };
        let paths: Vec<(&str, Option<&str>)> = task
            .output_files
            .iter()
            .map(|o| {
                (
                    o.file_pattern.as_str(),
                    o.destination.container.path.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            paths[..2],
            [
                ("out/summary.pdf", Some("a.txt.report/summary.pdf")),
                ("../stdout.txt", Some("a.txt.report/stdout.txt")),
            ]
        );
    }

    #[test]
    fn a_url_input_and_a_files_result() {
        let (s, _dir) = with_workloads(WORKLOADS, &[("STORAGE_ACCOUNT_KEY", KEY)]);
        let planner = Planner::from_settings(&s);
        let planned = planned(planner.plan(&typed("photos/a.jpg", "image/jpeg"), now(), None));
        assert_eq!(planned.names.result, "photos/a.jpg.thumbs/stdout.txt");
        let Submission::Task { job, task } = planned.submission else {
            panic!("a task")
        };
        assert_eq!(
            job,
            JobRef::new("wordcount", "wordcount"),
            "the default job"
        );
        assert!(task.resource_files.is_empty(), "nothing is fetched");
        let url = &task
            .environment_settings
            .iter()
            .find(|e| e.name == "BLOB2BATCH_INPUT_URL")
            .unwrap()
            .value;
        assert!(url.starts_with("https://acct.blob.core.windows.net/input/photos%2Fa%2Ejpg?"));
        let read = sas_params(url);
        assert_eq!((read["sp"].as_str(), read["sr"].as_str()), ("r", "b"));
        let body = serde_json::to_value(&task).unwrap();
        let outputs = body["outputFiles"].as_array().unwrap();
        assert_eq!(outputs.len(), 3);
        assert_eq!(outputs[0]["filePattern"], "out/**");
        assert_eq!(
            outputs[0]["destination"]["container"]["path"],
            "photos/a.jpg.thumbs"
        );
        assert_eq!(
            outputs[0]["uploadOptions"]["uploadCondition"],
            "tasksuccess"
        );
        assert_eq!(outputs[1]["filePattern"], "../stdout.txt");
        assert_eq!(
            outputs[1]["destination"]["container"]["path"],
            "photos/a.jpg.thumbs/stdout.txt"
        );
        assert_eq!(
            outputs[2]["uploadOptions"]["uploadCondition"],
            "taskfailure"
        );
        // Without a key, the URL needs a user delegation signer.
        let (s, _dir) = with_workloads(WORKLOADS, &[("BATCH_NODE_IDENTITY", UAMI)]);
        let planner = Planner::from_settings(&s);
        let err = planner
            .plan(&typed("photos/a.jpg", "image/jpeg"), now(), None)
            .unwrap_err();
        assert!(err.to_string().contains("user delegation key"), "{err}");
        struct Fixed;
        impl ReadSigner for Fixed {
            fn read_blob_sas(
                &self,
                container: &str,
                blob: &str,
                _start: OffsetDateTime,
                _expiry: OffsetDateTime,
            ) -> Result<String, String> {
                Ok(format!("sv=x&sr=b&sp=r&for={container}/{blob}&sig=s"))
            }
        }
        let signed = self::tests::task(planner.plan(
            &typed("photos/a.jpg", "image/jpeg"),
            now(),
            Some(&Fixed),
        ));
        let url = &signed.environment_settings[4].value;
        assert_eq!(
            url,
            "https://acct.blob.core.windows.net/input/photos%2Fa%2Ejpg?sv=x&sr=b&sp=r&for=input/photos/a.jpg&sig=s"
        );
    }

    #[test]
    fn a_listed_word_count_takes_its_own_limits() {
        let (s, _dir) = with_workloads(WORKLOADS, &[("STORAGE_ACCOUNT_KEY", KEY)]);
        let planner = Planner::from_settings(&s);
        let task = task(planner.plan(&typed("b.txt", "text/plain"), now(), None));
        assert_eq!(task.id, task_id("acct", "input", "b.txt", "0x1"));
        assert_eq!(task.command_line, COMMAND_LINE);
        assert_eq!(
            task.constraints.unwrap().max_wall_clock_time.as_deref(),
            Some("PT2H")
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

    #[test]
    fn only_azure_container_registries_get_the_pool_identity_login() {
        assert!(is_azure_container_registry("example.azurecr.io"));
        assert!(is_azure_container_registry("Example.AzureCR.io"));
        assert!(is_azure_container_registry("example.azurecr.cn"));
        for other in [
            "mcr.microsoft.com",
            "docker.io",
            "ghcr.io",
            "localhost:5000",
            "azurecr.io.evil.example",
        ] {
            assert!(!is_azure_container_registry(other), "{other}");
        }
        let planner = Planner::from_settings(&settings(&[
            ("BATCH_NODE_IDENTITY", UAMI),
            ("WORDCOUNT_IMAGE", "mcr.microsoft.com/example/wordcount:1"),
        ]));
        let t = task(planner.plan(&blob("a.txt", "0x1"), now(), None));
        assert!(t.container_settings.unwrap().registry.is_none());
    }
}
