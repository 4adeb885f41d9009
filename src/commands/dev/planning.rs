//! The settings that decide how `dev` plans a blob (which containers, which routes, whether and
//! how it is split), kept in the work directory it executes, so that the commands run against
//! that local pipeline (`status`, `reconcile`, `redrive`, `put`, `workloads`, `plan`) see the
//! same containers and plan each blob the same way: the same workload, the same task ids, the
//! same result names. Without them, a blob `dev` split would be looked up as one task, and a
//! workload's blob as a word count.
//!
//! `dev` rewrites the file each time it starts, so it always holds the last run's settings; a
//! setting the command's own environment gives wins over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Env;

/// What the file holds: the settings a plan depends on, as `dev` was given them.
const PLANNING: &[&str] = &[
    "INPUT_CONTAINER",
    "OUTPUT_CONTAINER",
    "STAGING_CONTAINER",
    "INPUT_PREFIX",
    "INPUT_SUFFIX",
    "WORKLOADS_FILE",
    "SPLIT_THRESHOLD",
    "SPLIT_PART_SIZE",
    "SPLIT_MAX_PARTS",
];

const FILE_NAME: &str = "dev-settings.json";

/// The file in `work_dir`.
pub(crate) fn path(work_dir: &Path) -> PathBuf {
    work_dir.join(FILE_NAME)
}

/// Records the planning settings `env` gives (a relative `WORKLOADS_FILE` made absolute, so that
/// a command started elsewhere reads the same file), replacing what an earlier run left.
pub(crate) fn record(env: &Env, work_dir: &Path) -> std::io::Result<()> {
    let mut settings = BTreeMap::new();
    for &name in PLANNING {
        if let Some(value) = env(name) {
            let value = match name {
                "WORKLOADS_FILE" => std::path::absolute(&value)?.display().to_string(),
                _ => value,
            };
            settings.insert(name, value);
        }
    }
    let text = serde_json::to_vec_pretty(&settings).map_err(std::io::Error::other)?;
    let staged = work_dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&staged, text)?;
    std::fs::rename(&staged, path(work_dir))
}

/// What a command plans with: its own environment, and for each planning setting it leaves
/// unset, the value the file in `work_dir` records. Also returns the settings taken from the
/// file, to be named to the user. No file (no `dev` ran there), or one that cannot be read: the
/// environment alone.
pub(crate) fn adopt(env: Env, work_dir: &Path) -> (Env, Vec<(String, String)>) {
    let recorded: BTreeMap<String, String> = std::fs::read(path(work_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let taken: BTreeMap<String, String> = recorded
        .into_iter()
        .filter(|(name, value)| {
            PLANNING.contains(&name.as_str()) && !value.is_empty() && env(name).is_none()
        })
        .collect();
    if taken.is_empty() {
        return (env, Vec::new());
    }
    let named = taken.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    let merged: Env = Arc::new(move |name: &str| env(name).or_else(|| taken.get(name).cloned()));
    (merged, named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> Env {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn a_command_plans_with_what_dev_was_given_unless_it_says_otherwise() {
        let work = tempfile::tempdir().unwrap();
        let dev = env_of(&[
            ("SPLIT_THRESHOLD", "64KiB"),
            ("SPLIT_PART_SIZE", "16KiB"),
            ("INPUT_CONTAINER", "docs"),
            ("STORAGE_ACCOUNT_KEY", "not a planning setting"),
        ]);
        record(&dev, work.path()).unwrap();

        let command = env_of(&[("SPLIT_PART_SIZE", "32KiB")]);
        let (merged, taken) = adopt(command, work.path());
        assert_eq!(merged("SPLIT_THRESHOLD").as_deref(), Some("64KiB"));
        assert_eq!(merged("SPLIT_PART_SIZE").as_deref(), Some("32KiB"));
        assert_eq!(merged("INPUT_CONTAINER").as_deref(), Some("docs"));
        assert_eq!(merged("STORAGE_ACCOUNT_KEY"), None);
        assert_eq!(
            taken,
            [
                ("INPUT_CONTAINER".to_string(), "docs".to_string()),
                ("SPLIT_THRESHOLD".to_string(), "64KiB".to_string()),
            ]
        );
    }

    #[test]
    fn a_relative_workloads_file_is_recorded_absolute_and_a_new_run_replaces_the_last() {
        let work = tempfile::tempdir().unwrap();
        record(&env_of(&[("WORKLOADS_FILE", "w.toml")]), work.path()).unwrap();
        let (merged, _) = adopt(env_of(&[]), work.path());
        let recorded = PathBuf::from(merged("WORKLOADS_FILE").unwrap());
        assert!(recorded.is_absolute(), "{}", recorded.display());
        assert!(recorded.ends_with("w.toml"));

        record(&env_of(&[]), work.path()).unwrap();
        let (merged, taken) = adopt(env_of(&[]), work.path());
        assert_eq!(merged("WORKLOADS_FILE"), None);
        assert!(taken.is_empty());
    }

    #[test]
    fn without_a_readable_file_the_environment_alone_counts() {
        let work = tempfile::tempdir().unwrap();
        let (merged, taken) = adopt(env_of(&[("INPUT_SUFFIX", ".txt")]), work.path());
        assert_eq!(merged("INPUT_SUFFIX").as_deref(), Some(".txt"));
        assert!(taken.is_empty());

        std::fs::write(path(work.path()), b"not json").unwrap();
        let (merged, taken) = adopt(env_of(&[]), work.path());
        assert_eq!(merged("SPLIT_THRESHOLD"), None);
        assert!(taken.is_empty());
    }
}
