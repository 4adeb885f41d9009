//! Add Task Collection: many tasks in few requests, one outcome per task.
//!
//! The service takes at most [`MAX_TASKS_PER_COLLECTION`] tasks and a body under 1 MB per request,
//! answers per task and possibly out of order, and refuses two ids in one job that differ only by
//! case. So tasks are sent once per id (case-insensitively), in chunks planned from their
//! serialized sizes; answers are matched on the task id; items that failed with `servererror` are
//! sent again alone, with the same ids, while the deadline allows; a chunk the service still finds
//! too large is halved.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use super::error::{BatchError, BatchErrorKind};
use super::models::{TaskAddCollectionResult, TaskAddStatus};
use super::retry::fits_before;
use super::transport::{Call, Reply, Transport};
use crate::headers::header_str;
use crate::per_item::PerItem;
use crate::runner::Accepted;
use crate::task_spec::TaskSpec;

/// Add Task Collection takes at most this many tasks per request.
pub(crate) const MAX_TASKS_PER_COLLECTION: usize = 100;

/// Add Task Collection bodies must stay under 1 MB; we keep a margin below 1 MiB.
pub(crate) const MAX_COLLECTION_BODY_BYTES: usize = 1_000_000;

type ItemResult = Result<Accepted, BatchError>;

/// One Add Task Collection operation over `tasks`, until every task has an outcome.
pub(crate) struct CollectionSend<'a> {
    transport: &'a Transport,
    url: Url,
    deadline: Instant,
    tasks: &'a [&'a TaskSpec],
    /// Each task's body, serialized once (empty for copies and for tasks that failed to serialize).
    serialized: Vec<Vec<u8>>,
    results: PerItem<ItemResult>,
    /// Chunks still to send, as indices into `tasks`.
    work: VecDeque<Vec<usize>>,
}

impl<'a> CollectionSend<'a> {
    pub(crate) fn new(
        transport: &'a Transport,
        url: Url,
        tasks: &'a [&'a TaskSpec],
        deadline: Instant,
    ) -> Self {
        CollectionSend {
            transport,
            url,
            deadline,
            tasks,
            serialized: vec![Vec::new(); tasks.len()],
            results: PerItem::new(tasks.len()),
            work: VecDeque::new(),
        }
    }

    /// One result per task, in the order given. Tasks repeating an id are sent once; the copies
    /// share the first one's outcome (a success counts as a duplicate for them).
    pub(crate) async fn run(mut self) -> Vec<ItemResult> {
        let mut first_by_id: HashMap<String, usize> = HashMap::with_capacity(self.tasks.len());
        let mut copies: Vec<(usize, usize)> = Vec::new();
        let mut sendable = Vec::with_capacity(self.tasks.len());
        for (i, task) in self.tasks.iter().enumerate() {
            match first_by_id.entry(task.id.to_ascii_lowercase()) {
                Entry::Occupied(first) => copies.push((i, *first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    match serde_json::to_vec(task) {
                        Ok(bytes) => {
                            self.serialized[i] = bytes;
                            sendable.push(i);
                        }
                        Err(e) => self.results.set(
                            i,
                            Err(BatchError::permanent(
                                "InvalidRequest",
                                format!("cannot serialize the task: {e}"),
                            )),
                        ),
                    }
                }
            }
        }
        let sizes: Vec<usize> = sendable.iter().map(|&i| self.serialized[i].len()).collect();
        self.work = plan_chunks(&sizes, MAX_TASKS_PER_COLLECTION, MAX_COLLECTION_BODY_BYTES)
            .into_iter()
            .map(|chunk| chunk.into_iter().map(|k| sendable[k]).collect())
            .collect();
        while let Some(chunk) = self.work.pop_front() {
            self.send_chunk(chunk).await;
        }
        for (copy, first) in copies {
            let shared = match self.results.get(first) {
                Some(Ok(_)) => Ok(Accepted::Duplicate),
                Some(Err(e)) => Err(e.clone()),
                None => Err(no_result()),
            };
            self.results.set(copy, shared);
        }
        self.results.finish(|| Err(no_result()))
    }

    /// Sends one chunk until each of its items has an outcome: server errors of single items are
    /// retried alone, with the same task ids, for as long as the deadline allows.
    async fn send_chunk(&mut self, chunk: Vec<usize>) {
        let mut pending = chunk;
        let mut round: u32 = 0;
        loop {
            round += 1;
            let call = Call::new(
                "add_task_collection",
                Method::POST,
                self.url.clone(),
                Some(collection_body(&pending, &self.serialized)),
            );
            let reply = match self.transport.execute(&call, self.deadline).await {
                Ok(reply) => reply,
                Err(e) => return self.fail_all(&pending, &e),
            };
            if !reply.status.is_success() {
                return self.refused(pending, &call, &reply);
            }
            let retry = self.record_answers(&pending, &call, &reply, round);
            if retry.is_empty() || !self.wait_to_retry(&retry, round).await {
                return;
            }
            pending = retry.into_iter().map(|(i, _)| i).collect();
        }
    }

    /// A refusal of the whole chunk: one the service finds too large is halved (both halves go
    /// back to the front of the work), any other fails its items.
    fn refused(&mut self, mut pending: Vec<usize>, call: &Call, reply: &Reply) {
        let err = call.refused(reply);
        if reply.status == StatusCode::PAYLOAD_TOO_LARGE
            && err.has_code("RequestBodyTooLarge")
            && pending.len() > 1
        {
            let second = pending.split_off(pending.len() / 2);
            debug!(
                first = pending.len(),
                second = second.len(),
                "Batch found the task collection too large; splitting it"
            );
            self.work.push_front(second);
            self.work.push_front(pending);
            return;
        }
        self.fail_all(&pending, &err);
    }

    /// Records each item's answer; returns the items worth another round (server errors, and
    /// items the answer left out), with their error.
    fn record_answers(
        &mut self,
        pending: &[usize],
        call: &Call,
        reply: &Reply,
        round: u32,
    ) -> Vec<(usize, BatchError)> {
        let request_id = header_str(&reply.headers, "request-id").map(str::to_string);
        let mut by_id: HashMap<String, _> =
            serde_json::from_slice::<TaskAddCollectionResult>(&reply.body)
                .map(|r| r.value)
                .unwrap_or_default()
                .into_iter()
                .map(|item| (item.task_id.to_ascii_lowercase(), item))
                .collect();
        let mut retry = Vec::new();
        for &i in pending {
            let item = by_id.remove(&self.tasks[i].id.to_ascii_lowercase());
            let (status, error) = match &item {
                Some(item) => (Some(item.status), item.error.as_ref()),
                None => (None, None),
            };
            let error = |kind| {
                let mut e = call.failure(BatchError::from_item(kind, error), round);
                e.request_id = request_id.clone();
                e
            };
            match status {
                Some(TaskAddStatus::Success) => self.results.set(i, Ok(Accepted::Submitted)),
                Some(TaskAddStatus::ClientError) => {
                    let err = error(BatchErrorKind::Permanent);
                    let result = if err.has_code("TaskExists") {
                        Ok(Accepted::Duplicate)
                    } else {
                        Err(err)
                    };
                    self.results.set(i, result);
                }
                Some(TaskAddStatus::ServerError) => {
                    retry.push((i, error(BatchErrorKind::Transient)))
                }
                None => {
                    let mut err = error(BatchErrorKind::Transient);
                    err.message = "the service returned no result for this task".into();
                    retry.push((i, err));
                }
            }
        }
        retry
    }

    /// Waits before another round for `retry`, when the deadline leaves room for it; otherwise
    /// fails them with their last error and returns `false`.
    async fn wait_to_retry(&mut self, retry: &[(usize, BatchError)], round: u32) -> bool {
        let wait = self.transport.retry.backoff(round);
        if !fits_before(wait, self.deadline) {
            warn!(
                tasks = retry.len(),
                round, "Batch task collection: retry budget exhausted with server errors left"
            );
            for (i, err) in retry {
                self.results.set(*i, Err(err.clone()));
            }
            return false;
        }
        warn!(
            tasks = retry.len(),
            round,
            code = retry.first().and_then(|(_, e)| e.code.as_deref()),
            delay_ms = wait.as_millis() as u64,
            "Batch task collection: retrying the items that failed with server errors"
        );
        tokio::time::sleep(wait).await;
        true
    }

    fn fail_all(&mut self, items: &[usize], error: &BatchError) {
        for &i in items {
            self.results.set(i, Err(error.clone()));
        }
    }
}

fn no_result() -> BatchError {
    BatchError::transient("no result for this task")
}

/// `{"value":[...]}` from already serialized tasks.
fn collection_body(indices: &[usize], serialized: &[Vec<u8>]) -> Vec<u8> {
    let len = collection_body_len(indices.iter().map(|&i| serialized[i].len()));
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(b"{\"value\":[");
    for (n, &i) in indices.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&serialized[i]);
    }
    body.extend_from_slice(b"]}");
    body
}

fn collection_body_len(sizes: impl Iterator<Item = usize>) -> usize {
    let (count, total): (usize, usize) = sizes.fold((0, 0), |(c, t), s| (c + 1, t + s));
    b"{\"value\":[]}".len() + total + count.saturating_sub(1)
}

/// Greedy chunks of consecutive items (given their serialized sizes), each with at most
/// `max_tasks` items and a body of at most `max_bytes`. An item too large on its own still gets
/// a chunk of its own, so that the service's answer names the problem.
fn plan_chunks(sizes: &[usize], max_tasks: usize, max_bytes: usize) -> Vec<Vec<usize>> {
    let mut chunks = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_len = collection_body_len(std::iter::empty());
    for (i, &size) in sizes.iter().enumerate() {
        let added = size + usize::from(!current.is_empty());
        if !current.is_empty() && (current.len() == max_tasks || current_len + added > max_bytes) {
            chunks.push(std::mem::take(&mut current));
            current_len = collection_body_len(std::iter::empty());
        }
        current_len += size + usize::from(!current.is_empty());
        current.push(i);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_count_and_size() {
        let sizes = vec![10; 250];
        let chunks = plan_chunks(&sizes, 100, 1_000_000);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(chunks[1][0], 100);

        // 12 bytes of envelope + 3 * 30 + 2 commas = 104 > 100: the third goes to a new chunk.
        let chunks = plan_chunks(&[30, 30, 30, 30], 100, 100);
        assert_eq!(chunks, vec![vec![0, 1], vec![2, 3]]);
        for chunk in &chunks {
            assert!(collection_body_len(chunk.iter().map(|&i| [30, 30, 30, 30][i])) <= 100);
        }

        let chunks = plan_chunks(&[500, 10], 100, 100);
        assert_eq!(chunks, vec![vec![0], vec![1]]);
        assert!(plan_chunks(&[], 100, 100).is_empty());
    }

    #[test]
    fn collection_body_is_a_task_group() {
        let serialized = vec![b"{\"id\":\"a\"}".to_vec(), b"{\"id\":\"b\"}".to_vec()];
        let body = collection_body(&[1, 0], &serialized);
        assert_eq!(body, br#"{"value":[{"id":"b"},{"id":"a"}]}"#);
        assert_eq!(body.len(), collection_body_len([10, 10].into_iter()));
    }
}
