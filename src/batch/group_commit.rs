//! Group commit towards Batch: while submissions are in flight, the tasks of concurrent
//! invocations queue up and go out together in the next Add Task Collection, each invocation
//! still getting its own outcome.
//!
//! At most `max_in_flight` group calls run at once. Whenever a slot is free, everything queued
//! (up to the limits of one Add Task Collection) leaves as one call; so under load calls fill up,
//! and when idle a lone event leaves at once, without any added wait. There is no dispatcher
//! task: whoever changes the state (a new submission, a call that ends) starts the calls that
//! can start, under the lock.
//!
//! Every submission carries the deadline of its invocation (arrival plus the retry budget), and
//! a group call is bounded by the earliest deadline among its items, so queue wait counts
//! against the budget and no invocation answers later than its budget allows. A submission
//! that would have to wait is refused at once, as a transient failure (503, so Event Grid
//! redelivers), when the queue is not expected to drain before its deadline: the estimate uses
//! the queue length, the calls in flight and a moving average of how long a call takes.
//!
//! Job-per-blob submissions bypass the queue: each is an Add Job request of its own anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{Instrument, debug};

use super::collection::{MAX_COLLECTION_BODY_BYTES, MAX_TASKS_PER_COLLECTION};
use super::task_runner::BatchTaskRunner;
use crate::per_item::{PerItem, one_per_item};
use crate::runner::{BoxFuture, JobRef, Submission, SubmitError, SubmitResult, TaskRunner};
use crate::sync::lock;

/// Group calls in flight when `BATCH_MAX_IN_FLIGHT` is not set.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 3;

/// The largest `BATCH_MAX_IN_FLIGHT` accepted.
pub(crate) const MAX_MAX_IN_FLIGHT: usize = 64;

/// How long past its deadline a group call may run before it is abandoned. The client already
/// ends its attempts and waits by the deadline; this only bounds the bookkeeping around them,
/// and anything that would break that promise.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Weight of the newest call in the moving average of call durations.
const LATENCY_WEIGHT: f64 = 0.2;

/// A runner that can be told when its answers are due.
pub(crate) trait SubmitUntil: Send + Sync + 'static {
    /// Submits every item, finishing by `deadline`; one result per item, in order.
    fn submit_until<'a>(
        &'a self,
        items: &'a [Submission],
        deadline: Instant,
    ) -> BoxFuture<'a, Vec<SubmitResult>>;
}

impl SubmitUntil for BatchTaskRunner {
    fn submit_until<'a>(
        &'a self,
        items: &'a [Submission],
        deadline: Instant,
    ) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(BatchTaskRunner::submit_until(self, items, deadline))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupCommitOptions {
    /// Group calls running at once (at least 1).
    pub max_in_flight: usize,
    /// From a submission's arrival to its answer, queue wait included (`BATCH_RETRY_BUDGET`).
    pub budget: Duration,
}

/// A [`TaskRunner`] that groups the tasks of concurrent submissions into shared calls of `R`.
pub(crate) struct GroupCommitRunner<R> {
    shared: Arc<Shared<R>>,
}

struct Shared<R> {
    inner: R,
    options: GroupCommitOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Tasks in `queue`, cancelled ones included until they are dropped.
    queued_tasks: usize,
    in_flight: usize,
    /// Moving average of a group call's duration; none before the first call ends.
    call_latency: Option<Duration>,
}

/// The tasks of one submission for one job, waiting for a call.
struct Pending {
    /// The job they are added to: tasks of different jobs never share a call.
    job: JobRef,
    items: Vec<Submission>,
    /// What the tasks add to a collection body: their JSON and a comma each.
    body_bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Vec<SubmitResult>>,
}

/// Submissions that leave together in one call.
#[derive(Default)]
struct Group {
    items: Vec<Submission>,
    /// Each submission's share of `items` (in order) and where its results go.
    replies: Vec<(usize, oneshot::Sender<Vec<SubmitResult>>)>,
    body_bytes: usize,
    deadline: Option<Instant>,
}

impl<R: SubmitUntil> GroupCommitRunner<R> {
    pub fn new(inner: R, options: GroupCommitOptions) -> Self {
        let options = GroupCommitOptions {
            max_in_flight: options.max_in_flight.max(1),
            ..options
        };
        GroupCommitRunner {
            shared: Arc::new(Shared {
                inner,
                options,
                state: Mutex::new(State::default()),
            }),
        }
    }

    async fn submit_tasks(
        &self,
        job: JobRef,
        items: Vec<Submission>,
        deadline: Instant,
    ) -> Vec<SubmitResult> {
        let count = items.len();
        if count == 0 {
            return Vec::new();
        }
        let body_bytes = items.iter().map(|item| json_len(item) + 1).sum();
        let (reply, answer) = oneshot::channel();
        {
            let mut state = self.shared.state();
            let now = Instant::now();
            if let Err(refusal) = state.admit(count, now, deadline, &self.shared.options) {
                debug!(
                    tasks = count,
                    queued = state.queued_tasks,
                    in_flight = state.in_flight,
                    "Batch queue cannot drain in time; failing at once"
                );
                let error = SubmitError::transient(refusal);
                return vec![Err(error); count];
            }
            state.queued_tasks += count;
            state.queue.push_back(Pending {
                job,
                items,
                body_bytes,
                deadline,
                reply,
            });
            self.shared.start_calls(&mut state);
        }
        // The group call is bounded by the same deadline; this only guards against a group that
        // never starts, and waits longer than a group call may take so that its answer wins.
        match tokio::time::timeout_at(deadline + DEADLINE_GRACE * 2, answer).await {
            Ok(Ok(results)) => results,
            Ok(Err(_)) => {
                let error = SubmitError::transient("the Batch call carrying this task was lost");
                vec![Err(error); count]
            }
            Err(_) => {
                let error =
                    SubmitError::transient("no Batch call carried this task within the budget");
                vec![Err(error); count]
            }
        }
    }
}

impl<R: SubmitUntil> TaskRunner for GroupCommitRunner<R> {
    fn submit<'a>(&'a self, items: &'a [Submission]) -> BoxFuture<'a, Vec<SubmitResult>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.shared.options.budget;
            // The tasks of each job queue on their own; jobs of their own (split blobs' too) go
            // straight through.
            let mut by_job: Vec<(JobRef, Vec<usize>)> = Vec::new();
            let mut job_at = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Submission::Task { job, .. } => {
                        match by_job.iter_mut().find(|(j, _)| j == job) {
                            Some((_, at)) => at.push(i),
                            None => by_job.push((job.clone(), vec![i])),
                        }
                    }
                    Submission::Job(_) | Submission::Split(_) => job_at.push(i),
                }
            }
            let queued = by_job.iter().map(|(job, at)| {
                let tasks = at.iter().map(|&i| items[i].clone()).collect();
                self.submit_tasks(job.clone(), tasks, deadline)
            });
            let jobs: Vec<Submission> = job_at.iter().map(|&i| items[i].clone()).collect();
            let (task_results, job_results) =
                tokio::join!(futures_util::future::join_all(queued), async {
                    if jobs.is_empty() {
                        Vec::new()
                    } else {
                        self.shared.inner.submit_until(&jobs, deadline).await
                    }
                });
            let mut results = PerItem::new(items.len());
            let task_at = by_job.into_iter().flat_map(|(_, at)| at);
            for (i, result) in task_at
                .zip(task_results.into_iter().flatten())
                .chain(job_at.into_iter().zip(job_results))
            {
                results.set(i, result);
            }
            results.finish(|| Err(no_result()))
        })
    }
}

impl<R: SubmitUntil> Shared<R> {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Starts a call for what is queued, as long as slots are free.
    fn start_calls(self: &Arc<Self>, state: &mut State) {
        // Only a runtime that is shutting down lets a call end without one; what is still queued
        // then has no one left to answer.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        while state.in_flight < self.options.max_in_flight {
            let Some(group) = state.take_group(Instant::now()) else {
                return;
            };
            state.in_flight += 1;
            let shared = self.clone();
            let span = tracing::debug_span!(
                "group_commit",
                tasks = group.items.len(),
                submissions = group.replies.len()
            );
            // A task of its own: the call must go on when the invocation that happened to start
            // it is cancelled, since it carries the tasks of others.
            runtime.spawn(shared.run(group).instrument(span));
        }
    }

    async fn run(self: Arc<Self>, group: Group) {
        let mut slot = Slot {
            shared: self.clone(),
            latency: None,
        };
        let Group {
            items,
            replies,
            deadline,
            ..
        } = group;
        let deadline = deadline.unwrap_or_else(Instant::now);
        let started = Instant::now();
        let call = self.inner.submit_until(&items, deadline);
        let results = match tokio::time::timeout_at(deadline + DEADLINE_GRACE, call).await {
            Ok(results) => results,
            Err(_) => {
                let error = SubmitError::transient("no answer from Batch within the retry budget");
                vec![Err(error); items.len()]
            }
        };
        let elapsed = started.elapsed();
        debug!(
            tasks = items.len(),
            call_ms = elapsed.as_millis() as u64,
            "Batch group call ended"
        );
        slot.latency = Some(elapsed);
        // Free the slot before answering, so that the next group leaves as soon as possible.
        drop(slot);
        let mut results = one_per_item(results, items.len(), || Err(no_result())).into_iter();
        for (count, reply) in replies {
            let own: Vec<SubmitResult> = results.by_ref().take(count).collect();
            // A caller that went away (its invocation was cancelled) needs no answer.
            let _ = reply.send(own);
        }
    }
}

/// A call's hold on a slot; released on drop, even when the call panics.
struct Slot<R: SubmitUntil> {
    shared: Arc<Shared<R>>,
    latency: Option<Duration>,
}

impl<R: SubmitUntil> Drop for Slot<R> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.in_flight -= 1;
        if let Some(sample) = self.latency {
            state.record_latency(sample);
        }
        self.shared.start_calls(&mut state);
    }
}

impl State {
    /// Whether a submission of `tasks` arriving `now` can be answered by `deadline`.
    fn admit(
        &self,
        tasks: usize,
        now: Instant,
        deadline: Instant,
        options: &GroupCommitOptions,
    ) -> Result<(), String> {
        let latency = self.call_latency.unwrap_or_default();
        let wait = estimated_wait(
            self.queued_tasks,
            tasks,
            self.in_flight,
            options.max_in_flight,
            latency,
        );
        // A submission that leaves at once is always sent: the call itself keeps the deadline,
        // and refusing it would stop the estimate from ever learning that Batch got faster.
        if wait.is_zero() || now + wait + latency <= deadline {
            return Ok(());
        }
        Err(format!(
            "Batch submissions are backed up: {} tasks queued, {} calls in flight, about {} ms \
             per call; the queue would not drain within the retry budget",
            self.queued_tasks,
            self.in_flight,
            latency.as_millis()
        ))
    }

    fn record_latency(&mut self, sample: Duration) {
        self.call_latency = Some(match self.call_latency {
            None => sample,
            Some(average) => average.mul_f64(1.0 - LATENCY_WEIGHT) + sample.mul_f64(LATENCY_WEIGHT),
        });
    }

    /// The next call's load: the job of the first queued submission, and its queued submissions
    /// in order, as many as one Add Task Collection takes (the first one always, however large:
    /// the client splits it); submissions for other jobs wait for calls of their own. Skips
    /// submissions whose caller is gone and fails those whose deadline has passed.
    fn take_group(&mut self, now: Instant) -> Option<Group> {
        let mut group = Group::default();
        let mut job: Option<JobRef> = None;
        let mut at = 0;
        while let Some(candidate) = self.queue.get(at) {
            if job.as_ref().is_some_and(|job| *job != candidate.job) {
                at += 1;
                continue;
            }
            let count = candidate.items.len();
            let expired = candidate.deadline <= now;
            if !candidate.reply.is_closed() && !expired && !group.replies.is_empty() {
                let tasks = group.items.len() + count;
                let bytes = COLLECTION_ENVELOPE + group.body_bytes + candidate.body_bytes;
                if tasks > MAX_TASKS_PER_COLLECTION || bytes > MAX_COLLECTION_BODY_BYTES {
                    break;
                }
            }
            let Some(pending) = self.queue.remove(at) else {
                break;
            };
            self.queued_tasks -= count;
            if pending.reply.is_closed() {
                continue;
            }
            if expired {
                let error =
                    SubmitError::transient("the retry budget ran out while waiting for Batch");
                let _ = pending.reply.send(vec![Err(error); count]);
                continue;
            }
            job.get_or_insert_with(|| pending.job.clone());
            group.deadline = Some(match group.deadline {
                Some(d) => d.min(pending.deadline),
                None => pending.deadline,
            });
            group.body_bytes += pending.body_bytes;
            group.items.extend(pending.items);
            group.replies.push((count, pending.reply));
        }
        (!group.replies.is_empty()).then_some(group)
    }
}

/// `{"value":[` and `]}`; the per-task commas are counted with the tasks (one too many: a margin).
const COLLECTION_ENVELOPE: usize = b"{\"value\":[]}".len();

/// How long a submission of `tasks` arriving now waits before its call starts: the calls
/// ahead of it (those in flight and the groups the queue makes, its own included) go through
/// `max_in_flight` slots, one average call per round.
fn estimated_wait(
    queued_tasks: usize,
    tasks: usize,
    in_flight: usize,
    max_in_flight: usize,
    call_latency: Duration,
) -> Duration {
    let groups = (queued_tasks + tasks)
        .div_ceil(MAX_TASKS_PER_COLLECTION)
        .max(1);
    let calls = in_flight + groups;
    if calls <= max_in_flight {
        return Duration::ZERO;
    }
    let rounds = (calls - max_in_flight).div_ceil(max_in_flight);
    call_latency.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
}

/// The length of an item's JSON, without keeping the bytes.
fn json_len(item: &Submission) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let written = match item {
        Submission::Task { task, .. } => serde_json::to_writer(&mut count, task),
        Submission::Job(job) => serde_json::to_writer(&mut count, job),
        Submission::Split(split) => serde_json::to_writer(&mut count, &split.job),
    };
    // A task that cannot be serialized fails in the client, which says why; it weighs nothing.
    if written.is_err() {
        return 0;
    }
    count.0
}

fn no_result() -> SubmitError {
    SubmitError::transient("the Batch client returned no result for this task")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Accepted, JobRef};
    use crate::task_spec::{JobSpec, PoolInfo, TaskSpec};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    const BUDGET: Duration = Duration::from_secs(20);

    /// One call the inner runner received; it blocks until the test answers it.
    struct Call {
        ids: Vec<String>,
        deadline: Instant,
        answer: oneshot::Sender<Vec<SubmitResult>>,
    }

    impl Call {
        fn answer_all(self, result: SubmitResult) {
            let results = vec![result; self.ids.len()];
            self.answer.send(results).ok().unwrap();
        }
    }

    #[derive(Default)]
    struct Counters {
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    /// Records the batches it receives and answers each only when the test says so.
    struct Scripted {
        calls: mpsc::UnboundedSender<Call>,
        counters: Arc<Counters>,
    }

    impl SubmitUntil for Scripted {
        fn submit_until<'a>(
            &'a self,
            items: &'a [Submission],
            deadline: Instant,
        ) -> BoxFuture<'a, Vec<SubmitResult>> {
            Box::pin(async move {
                let running = self.counters.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.counters
                    .most_running
                    .fetch_max(running, Ordering::SeqCst);
                let (answer, answered) = oneshot::channel();
                let ids = items.iter().map(|i| i.id().to_owned()).collect();
                let _ = self.calls.send(Call {
                    ids,
                    deadline,
                    answer,
                });
                let results = answered.await.unwrap_or_else(|_| {
                    vec![Err(SubmitError::transient("never answered")); items.len()]
                });
                self.counters.running.fetch_sub(1, Ordering::SeqCst);
                results
            })
        }
    }

    struct Harness {
        runner: Arc<GroupCommitRunner<Scripted>>,
        calls: mpsc::UnboundedReceiver<Call>,
        counters: Arc<Counters>,
    }

    fn harness(max_in_flight: usize) -> Harness {
        let (sender, calls) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let inner = Scripted {
            calls: sender,
            counters: counters.clone(),
        };
        let options = GroupCommitOptions {
            max_in_flight,
            budget: BUDGET,
        };
        Harness {
            runner: Arc::new(GroupCommitRunner::new(inner, options)),
            calls,
            counters,
        }
    }

    impl Harness {
        fn submit(&self, items: Vec<Submission>) -> JoinHandle<Vec<SubmitResult>> {
            let runner = self.runner.clone();
            tokio::spawn(async move { runner.submit(&items).await })
        }

        /// Submits and waits until the submission is either queued or in a call.
        async fn submit_queued(&self, items: Vec<Submission>) -> JoinHandle<Vec<SubmitResult>> {
            let before = self.queued();
            let count = items.len();
            let handle = self.submit(items);
            settle_until(|| self.queued() == before + count).await;
            handle
        }

        async fn next_call(&mut self) -> Call {
            self.calls.recv().await.expect("a call")
        }

        /// No further call has been made, once everything runnable has run.
        async fn assert_no_call(&mut self) {
            settle().await;
            assert!(
                self.calls.try_recv().is_err(),
                "an unexpected call was made"
            );
        }

        fn queued(&self) -> usize {
            self.runner.shared.state().queued_tasks
        }
    }

    /// Lets every runnable task run (the test runtime has one thread).
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    async fn settle_until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the condition never held");
    }

    fn task(id: &str) -> Submission {
        task_with_command(id, "/wordcount input/data")
    }

    fn task_with_command(id: &str, command_line: &str) -> Submission {
        task_in("wordcount", TaskSpec::new(id, command_line))
    }

    fn task_in(job: &str, task: TaskSpec) -> Submission {
        Submission::task(&JobRef::new(job, "pool"), task)
    }

    fn job(id: &str) -> Submission {
        Submission::Job(JobSpec {
            id: id.into(),
            display_name: None,
            pool_info: PoolInfo {
                pool_id: Some("pool".into()),
                auto_pool_specification: None,
            },
            on_all_tasks_complete: None,
            on_task_failure: None,
            uses_task_dependencies: None,
            job_manager_task: None,
        })
    }

    fn reason(result: &SubmitResult) -> String {
        match result {
            Err(error) if error.is_transient() => error.reason(),
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_submission_leaves_at_once_alone_with_its_whole_budget() {
        let mut h = harness(4);
        let start = Instant::now();
        let caller = h.submit(vec![task("a")]);
        let call = h.next_call().await;
        assert_eq!(call.ids, vec!["a"]);
        // The clock is paused and moves only when something waits on a timer: none did.
        assert_eq!(Instant::now(), start);
        assert_eq!(call.deadline, start + BUDGET);
        call.answer_all(Ok(Accepted::Submitted));
        assert_eq!(caller.await.unwrap(), vec![Ok(Accepted::Submitted)]);
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_bound_for_different_jobs_never_share_a_call() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        // While the only slot is busy: one submission holding tasks of two jobs, then one more
        // task of each.
        let mixed = h
            .submit_queued(vec![
                task_in("checksum", TaskSpec::new("x1", "/x")),
                task("b"),
                task_in("checksum", TaskSpec::new("x2", "/x")),
            ])
            .await;
        let c = h.submit_queued(vec![task("c")]).await;
        let y = h
            .submit_queued(vec![task_in("checksum", TaskSpec::new("y", "/x"))])
            .await;
        first.answer_all(Ok(Accepted::Submitted));
        // The job of the oldest queued task goes first, with every queued task of that job.
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["x1", "x2", "y"]);
        second.answer_all(Ok(Accepted::Submitted));
        let third = h.next_call().await;
        assert_eq!(third.ids, vec!["b", "c"]);
        third.answer_all(Ok(Accepted::Duplicate));
        assert_eq!(a.await.unwrap(), vec![Ok(Accepted::Submitted)]);
        // Each result goes back to its own item, in the order submitted.
        assert_eq!(
            mixed.await.unwrap(),
            vec![
                Ok(Accepted::Submitted),
                Ok(Accepted::Duplicate),
                Ok(Accepted::Submitted)
            ]
        );
        assert_eq!(c.await.unwrap(), vec![Ok(Accepted::Duplicate)]);
        assert_eq!(y.await.unwrap(), vec![Ok(Accepted::Submitted)]);
    }

    #[tokio::test(start_paused = true)]
    async fn submissions_arriving_during_a_call_share_the_next_and_get_their_own_results() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let b = h.submit_queued(vec![task("b")]).await;
        let c = h.submit_queued(vec![task("c1"), task("c2")]).await;
        let d = h.submit_queued(vec![task("d")]).await;
        h.assert_no_call().await;

        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["b", "c1", "c2", "d"]);
        let rejected = SubmitError::rejected("InvalidPropertyValue", "bad c2");
        second
            .answer
            .send(vec![
                Ok(Accepted::Duplicate),
                Ok(Accepted::Submitted),
                Err(rejected.clone()),
                Err(SubmitError::transient("busy")),
            ])
            .ok()
            .unwrap();
        assert_eq!(a.await.unwrap(), vec![Ok(Accepted::Submitted)]);
        assert_eq!(b.await.unwrap(), vec![Ok(Accepted::Duplicate)]);
        assert_eq!(
            c.await.unwrap(),
            vec![Ok(Accepted::Submitted), Err(rejected)]
        );
        assert_eq!(d.await.unwrap(), vec![Err(SubmitError::transient("busy"))]);
        h.assert_no_call().await;
    }

    #[tokio::test(start_paused = true)]
    async fn one_task_id_from_two_invocations_gets_an_outcome_for_each() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let x1 = h.submit_queued(vec![task("x")]).await;
        let x2 = h.submit_queued(vec![task("x")]).await;
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["x", "x"]);
        // What the collection code answers for a repeated id: the copy is a duplicate.
        second
            .answer
            .send(vec![Ok(Accepted::Submitted), Ok(Accepted::Duplicate)])
            .ok()
            .unwrap();
        assert_eq!(x1.await.unwrap(), vec![Ok(Accepted::Submitted)]);
        assert_eq!(x2.await.unwrap(), vec![Ok(Accepted::Duplicate)]);
        a.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_calls_in_flight_than_allowed() {
        let mut h = harness(2);
        let callers: Vec<_> = (0..6)
            .map(|i| h.submit(vec![task(&format!("t{i}"))]))
            .collect();
        let first = h.next_call().await;
        let second = h.next_call().await;
        assert_eq!((first.ids.len(), second.ids.len()), (1, 1));
        settle_until(|| h.queued() == 4).await;
        h.assert_no_call().await;
        assert_eq!(h.counters.running.load(Ordering::SeqCst), 2);

        first.answer_all(Ok(Accepted::Submitted));
        let third = h.next_call().await;
        assert_eq!(third.ids.len(), 4, "everything queued leaves together");
        h.assert_no_call().await;
        second.answer_all(Ok(Accepted::Submitted));
        third.answer_all(Ok(Accepted::Submitted));
        for caller in callers {
            assert_eq!(caller.await.unwrap(), vec![Ok(Accepted::Submitted)]);
        }
        assert_eq!(h.counters.most_running.load(Ordering::SeqCst), 2);
        h.assert_no_call().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_carries_at_most_100_tasks() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let mut callers = Vec::new();
        for i in 0..150 {
            callers.push(h.submit_queued(vec![task(&format!("t{i:03}"))]).await);
        }
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids.len(), 100);
        assert_eq!(second.ids[0], "t000");
        h.assert_no_call().await;
        second.answer_all(Ok(Accepted::Submitted));
        let third = h.next_call().await;
        assert_eq!(third.ids.len(), 50);
        assert_eq!(third.ids[0], "t100");
        third.answer_all(Ok(Accepted::Duplicate));
        a.await.unwrap();
        for (i, caller) in callers.into_iter().enumerate() {
            let expected = if i < 100 {
                Accepted::Submitted
            } else {
                Accepted::Duplicate
            };
            assert_eq!(caller.await.unwrap(), vec![Ok(expected)], "t{i:03}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_stays_under_the_collection_body_limit() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        // About 300 kB each: three fit under 1 MB, four do not.
        let big = "x".repeat(300_000);
        let mut callers = Vec::new();
        for i in 0..5 {
            callers.push(
                h.submit_queued(vec![task_with_command(&format!("big{i}"), &big)])
                    .await,
            );
        }
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["big0", "big1", "big2"]);
        second.answer_all(Ok(Accepted::Submitted));
        let third = h.next_call().await;
        assert_eq!(third.ids, vec!["big3", "big4"]);
        third.answer_all(Ok(Accepted::Submitted));
        a.await.unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), vec![Ok(Accepted::Submitted)]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_call_ends_by_the_earliest_deadline_of_its_items() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let b_arrived = Instant::now();
        let b = h.submit_queued(vec![task("b")]).await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let c = h.submit_queued(vec![task("c")]).await;
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["b", "c"]);
        assert_eq!(second.deadline, b_arrived + BUDGET);
        second.answer_all(Ok(Accepted::Submitted));
        a.await.unwrap();
        b.await.unwrap();
        c.await.unwrap();
    }

    /// Makes the moving average of call durations `latency` by timing one call.
    async fn learn_latency(h: &mut Harness, latency: Duration) {
        let caller = h.submit(vec![task("warm-up")]);
        let call = h.next_call().await;
        tokio::time::advance(latency).await;
        call.answer_all(Ok(Accepted::Submitted));
        caller.await.unwrap();
        assert_eq!(h.runner.shared.state().call_latency, Some(latency));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_cannot_drain_in_time_fails_at_once() {
        let mut h = harness(1);
        learn_latency(&mut h, Duration::from_secs(15)).await;
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;

        // One call of about 15 s ahead, then its own: 30 s, beyond the 20 s budget.
        let start = Instant::now();
        let refused = h.submit(vec![task("b"), task("c")]).await.unwrap();
        assert_eq!(Instant::now(), start, "answered without waiting");
        assert_eq!(refused.len(), 2);
        for result in &refused {
            assert!(reason(result).contains("backed up"), "{}", reason(result));
        }
        assert_eq!(h.queued(), 0);
        h.assert_no_call().await;

        first.answer_all(Ok(Accepted::Submitted));
        assert_eq!(a.await.unwrap(), vec![Ok(Accepted::Submitted)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_can_drain_in_time_is_joined() {
        let mut h = harness(1);
        learn_latency(&mut h, Duration::from_secs(5)).await;
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let b = h.submit_queued(vec![task("b")]).await;
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["b"]);
        second.answer_all(Ok(Accepted::Submitted));
        a.await.unwrap();
        assert_eq!(b.await.unwrap(), vec![Ok(Accepted::Submitted)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_overruns_its_deadline_is_abandoned_and_frees_its_slot() {
        let mut h = harness(1);
        let start = Instant::now();
        let a = h.submit(vec![task("a")]);
        let _never_answered = h.next_call().await;
        let results = a.await.unwrap();
        assert_eq!(Instant::now(), start + BUDGET + DEADLINE_GRACE);
        assert!(
            reason(&results[0]).contains("no answer from Batch within the retry budget"),
            "{}",
            reason(&results[0])
        );
        assert_eq!(
            h.runner.shared.state().call_latency,
            Some(BUDGET + DEADLINE_GRACE)
        );

        // Batch was slower than the budget, yet a submission that can leave at once is sent:
        // the call keeps its own deadline, and only calls teach the estimate that Batch recovered.
        let b = h.submit(vec![task("b")]);
        let call = h.next_call().await;
        assert_eq!(call.ids, vec!["b"]);
        call.answer_all(Ok(Accepted::Submitted));
        assert_eq!(b.await.unwrap(), vec![Ok(Accepted::Submitted)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_submission_whose_budget_ran_out_in_the_queue_is_failed_not_sent() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let b = h.submit_queued(vec![task("b")]).await;
        tokio::time::advance(BUDGET).await;
        first.answer_all(Ok(Accepted::Submitted));
        let results = b.await.unwrap();
        assert!(
            reason(&results[0]).contains("retry budget ran out"),
            "{}",
            reason(&results[0])
        );
        h.assert_no_call().await;
        a.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_submission_is_not_sent() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let b = h.submit_queued(vec![task("b")]).await;
        let c = h.submit_queued(vec![task("c")]).await;
        b.abort();
        settle().await;
        first.answer_all(Ok(Accepted::Submitted));
        let second = h.next_call().await;
        assert_eq!(second.ids, vec!["c"]);
        second.answer_all(Ok(Accepted::Submitted));
        a.await.unwrap();
        c.await.unwrap();
        assert_eq!(h.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_bypass_the_queue() {
        let mut h = harness(1);
        let a = h.submit(vec![task("a")]);
        let first = h.next_call().await;
        let j = h.submit(vec![job("j")]);
        let job_call = h.next_call().await;
        assert_eq!(job_call.ids, vec!["j"]);
        job_call.answer_all(Ok(Accepted::Submitted));
        assert_eq!(j.await.unwrap(), vec![Ok(Accepted::Submitted)]);

        // Mixed: the task queues behind `a`, the job goes at once; results keep their order.
        let mixed = h.submit(vec![task("t"), job("k")]);
        let job_call = h.next_call().await;
        assert_eq!(job_call.ids, vec!["k"]);
        job_call.answer_all(Ok(Accepted::Duplicate));
        first.answer_all(Ok(Accepted::Submitted));
        let task_call = h.next_call().await;
        assert_eq!(task_call.ids, vec!["t"]);
        task_call.answer_all(Ok(Accepted::Submitted));
        assert_eq!(
            mixed.await.unwrap(),
            vec![Ok(Accepted::Submitted), Ok(Accepted::Duplicate)]
        );
        a.await.unwrap();
    }

    #[test]
    fn the_wait_counts_the_calls_ahead_in_rounds_of_the_slots() {
        let l = Duration::from_millis(100);
        // Free slot: no wait.
        assert_eq!(estimated_wait(0, 1, 0, 4, l), Duration::ZERO);
        assert_eq!(estimated_wait(0, 1, 3, 4, l), Duration::ZERO);
        // All slots busy: one round.
        assert_eq!(estimated_wait(0, 1, 4, 4, l), l);
        // 250 queued + 1 make three groups behind four calls: 7 calls through 4 slots.
        assert_eq!(estimated_wait(250, 1, 4, 4, l), l);
        assert_eq!(estimated_wait(450, 1, 4, 4, l), l * 2);
        assert_eq!(estimated_wait(99, 1, 1, 1, l), l);
        assert_eq!(estimated_wait(100, 1, 1, 1, l), l * 2);
        // Unknown latency: nothing to wait for as far as anyone knows.
        assert_eq!(
            estimated_wait(1000, 1, 4, 4, Duration::ZERO),
            Duration::ZERO
        );
    }

    #[test]
    fn the_latency_average_leans_on_the_past() {
        let mut state = State::default();
        state.record_latency(Duration::from_millis(100));
        assert_eq!(state.call_latency, Some(Duration::from_millis(100)));
        state.record_latency(Duration::from_millis(600));
        assert_eq!(state.call_latency, Some(Duration::from_millis(200)));
    }
}
