//! What `serve`, the `Reconcile` timer and every command share, built once per process from the
//! settings: the storage containers, the event filter, the planner, where submissions go and
//! where their tasks are read back, and the one Batch client (one connection pool, one token
//! cache) everything that talks to Batch uses.
//!
//! `serve` submits through the group commit (Batch) or runs tasks itself (local); the commands
//! submit to Batch directly, or record tasks in the local work directory for the `dev` (or
//! `serve`) that executes them.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::batch::{
    BatchClient, BatchClientOptions, BatchConfigError, BatchCredential, BatchTaskRunner,
    GroupCommitOptions, GroupCommitRunner, RetryOptions,
};
use crate::config::{
    BatchAuth, BatchSettings, LocalSettings, RunnerSettings, SAS_CLOCK_SKEW, Settings, SubmitMode,
};
use crate::dry_run::DryRunner;
use crate::entra::{EntraError, entra_credential_from_env};
use crate::error_chain::error_chain;
use crate::filter::EventFilter;
use crate::local::task_dir::TaskStore;
use crate::local::{LocalRunner, LocalRunnerError, LocalRunnerOptions, LocalSubmitter};
use crate::plan::Planner;
use crate::plan::{NoKey, ReadSigner};
use crate::runner::{TaskLookup, TaskRemover, TaskRunner};
use crate::storage::Containers;
use crate::storage::delegation::{DelegationError, DelegationKeys, DelegationKeysOptions};
use crate::workloads::Input;
use std::time::Duration;

/// Everything built from the settings that more than one part of the process uses.
pub struct Context {
    settings: Settings,
    containers: Containers,
    filter: EventFilter,
    planner: Planner,
    runner: Arc<dyn TaskRunner>,
    lookup: Arc<dyn TaskLookup>,
    /// Removes a failed blob version's task or job (`reconcile --retry-failed`).
    remover: Option<Arc<dyn TaskRemover>>,
    batch: Option<BatchClient>,
    reads: Option<DelegatedReads>,
}

/// The context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("Entra ID credential")]
    Entra(#[from] EntraError),
    #[error("Batch client")]
    Batch(#[from] BatchConfigError),
    #[error("local runner")]
    Local(#[from] LocalRunnerError),
    #[error("user delegation keys")]
    Delegation(#[from] DelegationError),
}

/// What every context has, whoever runs the tasks.
struct Common {
    containers: Containers,
    target: Target,
    reads: Option<DelegatedReads>,
}

/// Signs the input URLs of tasks that read their input themselves when storage has no key:
/// user delegation keys, fetched with the process's identity, kept and renewed (see
/// [`crate::storage::delegation`]), each valid long enough for the longest such task.
#[derive(Clone)]
pub struct DelegatedReads {
    keys: Arc<DelegationKeys>,
    lifetime: Duration,
}

impl DelegatedReads {
    /// A signer for the tasks planned now: a key valid long enough, or, when none can be had,
    /// a signer that says why (those tasks fail transiently; the others are planned as ever).
    pub async fn signer(&self) -> Arc<dyn ReadSigner> {
        match self.keys.key_for(self.lifetime).await {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "no user delegation key");
                Arc::new(NoKey(error_chain(&error)))
            }
        }
    }
}

/// Where tasks run, with what reaching it takes.
enum Target {
    Batch {
        direct: BatchTaskRunner,
        group: GroupCommitOptions,
    },
    Local(LocalSettings),
}

/// The Entra ID credential, built on first need (Batch or storage without a key) and then
/// shared, so that both use one token cache.
#[derive(Default)]
struct SharedCredential(Option<Arc<dyn TokenCredential>>);

impl SharedCredential {
    fn get(&mut self) -> Result<Arc<dyn TokenCredential>, EntraError> {
        if let Some(credential) = &self.0 {
            return Ok(credential.clone());
        }
        let credential = entra_credential_from_env()?;
        self.0 = Some(credential.clone());
        Ok(credential)
    }
}

impl Common {
    fn new(settings: &Settings) -> Result<Common, ContextError> {
        let mut credential = SharedCredential::default();
        let storage = &settings.storage;
        let containers = match &storage.account_key {
            Some(key) => {
                Containers::with_key(&storage.account_url, key.clone(), storage.retry_budget)
            }
            None => Containers::with_credential(
                &storage.account_url,
                credential.get()?,
                storage.retry_budget,
            ),
        };
        let reads = delegated_reads(settings, &mut credential)?;
        let target = match &settings.runner {
            RunnerSettings::Batch(batch) => {
                let client = batch_client(batch, &mut credential)?;
                Target::Batch {
                    direct: BatchTaskRunner::new(client),
                    group: GroupCommitOptions {
                        max_in_flight: batch.max_in_flight,
                        budget: batch.retry_budget,
                    },
                }
            }
            RunnerSettings::Local(local) => Target::Local(local.clone()),
        };
        Ok(Common {
            containers,
            target,
            reads,
        })
    }
}

impl Context {
    /// `serve`'s context: Batch submissions share Add Task Collection calls; with the local
    /// runner, tasks run in this process.
    pub async fn for_serve(settings: Settings) -> Result<Context, ContextError> {
        if let Some(reason) = &settings.split.off_because {
            tracing::warn!(%reason, "large blobs are not split");
        }
        let common = Common::new(&settings)?;
        let (runner, lookup): (Arc<dyn TaskRunner>, Arc<dyn TaskLookup>) = match &common.target {
            Target::Batch { direct, group } => {
                let grouped = GroupCommitRunner::new(direct.clone(), group.clone());
                (Arc::new(grouped), Arc::new(direct.clone()))
            }
            Target::Local(local) => {
                let options =
                    LocalRunnerOptions::from_settings(local, settings.word_count_image())?;
                let runner = LocalRunner::open(options).await?;
                let lookup = Arc::new(runner.store().clone());
                (Arc::new(runner), lookup)
            }
        };
        Ok(Context::assemble(settings, common, runner, lookup))
    }

    /// The commands' context: Batch directly; with the local runner, the task records of
    /// `LOCAL_WORK_DIR`, for the `dev` (or `serve`) that executes them, as a pool runs what is
    /// added to its job.
    pub(crate) fn for_commands(settings: Settings) -> Result<Context, ContextError> {
        let common = Common::new(&settings)?;
        let (runner, lookup): (Arc<dyn TaskRunner>, Arc<dyn TaskLookup>) = match &common.target {
            Target::Batch { direct, .. } => {
                let direct = Arc::new(direct.clone());
                (direct.clone(), direct)
            }
            Target::Local(local) => {
                let submitter = LocalSubmitter::open(&local.work_dir)?;
                let lookup = Arc::new(submitter.store().clone());
                (Arc::new(submitter), lookup)
            }
        };
        Ok(Context::assemble(settings, common, runner, lookup))
    }

    /// A context whose submissions go to `runner` (`dev`'s local runner, whose events it
    /// shows; tests), tasks read back as the commands read them.
    pub fn with_runner(
        settings: Settings,
        runner: Arc<dyn TaskRunner>,
    ) -> Result<Context, ContextError> {
        let common = Common::new(&settings)?;
        let lookup: Arc<dyn TaskLookup> = match &common.target {
            Target::Batch { direct, .. } => Arc::new(direct.clone()),
            Target::Local(local) => {
                Arc::new(TaskStore::open(&local.work_dir).map_err(|source| {
                    LocalRunnerError::WorkDir {
                        path: local.work_dir.clone(),
                        source,
                    }
                })?)
            }
        };
        Ok(Context::assemble(settings, common, runner, lookup))
    }

    fn assemble(
        settings: Settings,
        common: Common,
        runner: Arc<dyn TaskRunner>,
        lookup: Arc<dyn TaskLookup>,
    ) -> Context {
        Context {
            reads: common.reads,
            filter: EventFilter::from_settings(&settings),
            planner: Planner::from_settings(&settings),
            containers: common.containers,
            remover: match &common.target {
                Target::Batch { direct, .. } => Some(Arc::new(direct.clone())),
                // The records of the work directory, whichever process runs them (a runner that
                // is running one gives it up when it sees its record gone).
                Target::Local(local) => TaskStore::open(&local.work_dir)
                    .ok()
                    .map(|store| Arc::new(store) as Arc<dyn TaskRemover>),
            },
            batch: match common.target {
                Target::Batch { direct, .. } => Some(direct.client().clone()),
                Target::Local(_) => None,
            },
            runner,
            lookup,
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }

    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// Where submissions go.
    pub fn runner(&self) -> &Arc<dyn TaskRunner> {
        &self.runner
    }

    /// Where submitted tasks are read back.
    pub fn lookup(&self) -> &Arc<dyn TaskLookup> {
        &self.lookup
    }

    /// What signs the input URLs of tasks that read their input themselves, when storage has no
    /// key and a workload asks for one.
    pub(crate) fn delegated_reads(&self) -> Option<&DelegatedReads> {
        self.reads.as_ref()
    }

    /// What removes a failed blob version's task or job, so that it can be submitted again.
    pub(crate) fn remover(&self) -> Option<&Arc<dyn TaskRemover>> {
        self.remover.as_ref()
    }

    /// A runner for dry runs: it submits nothing and answers what a submission would have.
    pub(crate) fn dry_runner(&self) -> Arc<dyn TaskRunner> {
        Arc::new(DryRunner::new(self.lookup.clone()))
    }

    /// The process's Batch client, with `RUNNER=batch`.
    pub fn batch(&self) -> Option<&BatchClient> {
        self.batch.as_ref()
    }
}

/// User delegation keys when storage has no key and a task may read its input through a URL (a
/// workload's, or a split blob's parts), long enough for the longest of those tasks.
fn delegated_reads(
    settings: &Settings,
    credential: &mut SharedCredential,
) -> Result<Option<DelegatedReads>, ContextError> {
    if settings.storage.account_key.is_some() {
        return Ok(None);
    }
    let splits = settings.split.threshold.is_some()
        && settings.workloads.has_word_count()
        && settings
            .batch()
            .is_some_and(|batch| batch.submit_mode == SubmitMode::Task);
    let longest = settings
        .workloads
        .runs()
        .filter(|(_, run)| run.input == Input::Url)
        .map(|(_, run)| settings.task.with_limits(&run.limits).longest_lifetime())
        .chain(splits.then(|| settings.word_count_task_settings().longest_lifetime()))
        .max();
    let Some(longest) = longest else {
        return Ok(None);
    };
    let storage = &settings.storage;
    let keys = DelegationKeys::new(
        &storage.account_url,
        &storage.account_name,
        credential.get()?,
        DelegationKeysOptions::new(storage.retry_budget),
    )?;
    Ok(Some(DelegatedReads {
        keys: Arc::new(keys),
        lifetime: longest + SAS_CLOCK_SKEW,
    }))
}

/// The Batch client the settings describe.
fn batch_client(
    batch: &BatchSettings,
    credential: &mut SharedCredential,
) -> Result<BatchClient, ContextError> {
    let credential = match &batch.auth {
        BatchAuth::SharedKey { account, key } => {
            BatchCredential::shared_key(account.clone(), key.clone())
        }
        BatchAuth::EntraId => BatchCredential::Token(credential.get()?),
    };
    let mut options = BatchClientOptions::new(batch.account_url.clone(), credential);
    options.retry = RetryOptions {
        budget: batch.retry_budget,
        ..RetryOptions::default()
    };
    // A request that never answers must leave time for another attempt within the budget.
    options.request_timeout = options.request_timeout.min(batch.retry_budget / 2);
    Ok(BatchClient::new(options)?)
}
