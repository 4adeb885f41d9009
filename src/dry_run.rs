//! Dry runs: the same intake and the same reconciler as a real run, with a runner that submits
//! nothing and only looks tasks up.
//!
//! What it answers is what a real submission would have answered: a task that exists is a
//! duplicate, one that does not would be submitted, and a second item with an id this run
//! already "submitted" is a duplicate, as the service would say. A lookup that fails is a
//! transient failure, as a submission that could not reach the service would be.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::runner::{
    Accepted, BoxFuture, Submission, SubmitError, SubmitResult, TaskLookup, TaskRunner, lookup_each,
};
use crate::sync::lock;

/// A [`TaskRunner`] that only looks up.
pub(crate) struct DryRunner {
    lookup: Arc<dyn TaskLookup>,
    /// Ids (lower case: Batch ids are case-insensitive) this run would have submitted.
    would_submit: Mutex<HashSet<String>>,
}

impl DryRunner {
    pub fn new(lookup: Arc<dyn TaskLookup>) -> DryRunner {
        DryRunner {
            lookup,
            would_submit: Mutex::new(HashSet::new()),
        }
    }
}

impl TaskRunner for DryRunner {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move {
            let found = lookup_each(self.lookup.as_ref(), items).await;
            let mut would_submit = lock(&self.would_submit);
            items
                .iter()
                .zip(found)
                .map(|(item, found)| match found {
                    Ok(Some(_)) => Ok(Accepted::Duplicate),
                    Ok(None) if would_submit.insert(item.id().to_ascii_lowercase()) => {
                        Ok(Accepted::Submitted)
                    }
                    Ok(None) => Ok(Accepted::Duplicate),
                    Err(e) => Err(SubmitError::transient(e)),
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{LookupError, LookupResult, TaskState, TaskStatus};
    use crate::task_spec::TaskSpec;

    /// Knows `exists`; fails for `broken`.
    struct Known;

    impl TaskLookup for Known {
        fn lookup<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<LookupResult>> {
            let results = items
                .iter()
                .map(|item| match item.id() {
                    "exists" => Ok(Some(TaskStatus::new(TaskState::Running))),
                    "broken" => Err(LookupError(Arc::new(std::io::Error::other("503")))),
                    _ => Ok(None),
                })
                .collect();
            Box::pin(async move { results })
        }
    }

    fn item(id: &str) -> Submission {
        Submission::task(
            &crate::runner::JobRef::new("wordcount", "wordcount"),
            TaskSpec::new(id, "/wordcount input/data"),
        )
    }

    #[tokio::test]
    async fn answers_what_a_submission_would() {
        let runner = DryRunner::new(Arc::new(Known));
        let results = runner
            .submit(&[item("exists"), item("new"), item("NEW"), item("broken")])
            .await;
        assert_eq!(results[0], Ok(Accepted::Duplicate));
        assert_eq!(results[1], Ok(Accepted::Submitted));
        assert_eq!(
            results[2],
            Ok(Accepted::Duplicate),
            "ids are case-insensitive"
        );
        assert!(results[3].as_ref().is_err_and(SubmitError::is_transient));
        // Across calls too: the run remembers what it would have submitted.
        assert_eq!(
            runner.submit(&[item("new")]).await[0],
            Ok(Accepted::Duplicate)
        );
    }
}
