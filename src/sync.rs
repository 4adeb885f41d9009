//! Locks that stay usable after a panic elsewhere.
//!
//! Every mutex of the crate guards state that is consistent between statements (a set of ids, a
//! queue, counters), so a thread that panicked while holding one leaves nothing half-written
//! behind: the next holder takes the data as it is instead of propagating the panic to every
//! later caller.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, recovering it from poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let mutex = std::sync::Arc::new(Mutex::new(vec![1]));
        let held = mutex.clone();
        let _ = std::thread::spawn(move || {
            let mut data = held.lock().unwrap();
            data.push(2);
            panic!("while holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), vec![1, 2]);
    }
}
