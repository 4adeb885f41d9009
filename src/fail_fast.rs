//! Many reads of one service, a few at a time, that stop trying once the service has failed.
//!
//! Each read already retries within its budget; when one still fails, the service is down or
//! refusing us, and every read not yet started would spend the same budget to learn the same
//! thing. They fail at once with that read's error instead, so that a command over thousands of
//! blobs says "the service is failing" in about one budget, not in hours.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use futures_util::StreamExt as _;

/// `read` over `items`, at most `limit` at once, results in item order. Once one read has
/// failed, reads not yet started give a copy of its error without running.
pub(crate) async fn map_fail_fast<I, T, E, F, Fut>(
    items: I,
    limit: usize,
    read: F,
) -> Vec<Result<T, E>>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Clone,
{
    let first_failure: Arc<OnceLock<E>> = Arc::default();
    let reads = items.into_iter().map(|item| {
        let first_failure = Arc::clone(&first_failure);
        let read = &read;
        async move {
            if let Some(failure) = first_failure.get() {
                return Err(failure.clone());
            }
            let result = read(item).await;
            if let Err(failure) = &result {
                let _ = first_failure.set(failure.clone());
            }
            result
        }
    });
    futures_util::stream::iter(reads)
        .buffered(limit.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn after_a_failure_the_reads_not_started_fail_with_it() {
        let started = AtomicUsize::new(0);
        let results = map_fail_fast(0..10, 2, |i| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 3 {
                    Err(format!("read {i}"))
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        assert_eq!(results.len(), 10);
        assert_eq!(results[..3], [Ok(0), Ok(1), Ok(2)]);
        assert_eq!(results[3], Err("read 3".to_string()));
        // At most the one read already in flight beside the failed one ran after it.
        assert!(started.load(Ordering::SeqCst) <= 5, "{started:?}");
        assert!(results[5..].iter().all(|r| r == &Err("read 3".to_string())));
    }
}
