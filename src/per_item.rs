//! Calls that owe one result per item, in the order of the items.
//!
//! A runner, a lookup or a service may answer fewer items than it was given (a bug, a lost
//! answer) or more. Whoever collects such answers goes through here, so that an item left
//! without an answer is always given an explicit failure, never a success and never someone
//! else's result.

/// Results collected out of order, by item index.
#[derive(Debug)]
pub(crate) struct PerItem<T> {
    slots: Vec<Option<T>>,
}

impl<T> PerItem<T> {
    /// Room for the results of `len` items.
    pub(crate) fn new(len: usize) -> PerItem<T> {
        PerItem {
            slots: (0..len).map(|_| None).collect(),
        }
    }

    /// The result of item `index`; a later one for the same item replaces it.
    pub(crate) fn set(&mut self, index: usize, value: T) {
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(value);
        }
    }

    /// The result of item `index`, if it has one yet.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.slots.get(index).and_then(Option::as_ref)
    }

    /// One result per item, `missing()` for each item that got none.
    pub(crate) fn finish(self, mut missing: impl FnMut() -> T) -> Vec<T> {
        self.slots
            .into_iter()
            .map(|slot| slot.unwrap_or_else(&mut missing))
            .collect()
    }
}

/// `results`, answered in item order, as exactly `len` results: `missing()` for the items past
/// the end of a short answer; what goes beyond `len` is dropped.
pub(crate) fn one_per_item<T>(results: Vec<T>, len: usize, missing: impl FnMut() -> T) -> Vec<T> {
    let mut collected = PerItem::new(len);
    for (index, result) in results.into_iter().take(len).enumerate() {
        collected.set(index, result);
    }
    collected.finish(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_answers_are_padded_and_long_ones_cut() {
        assert_eq!(one_per_item(vec![1, 2], 4, || 0), vec![1, 2, 0, 0]);
        assert_eq!(one_per_item(vec![1, 2, 3], 2, || 0), vec![1, 2]);
        assert_eq!(one_per_item(Vec::<i32>::new(), 0, || 0), Vec::<i32>::new());
    }

    #[test]
    fn results_set_out_of_order_land_in_item_order() {
        let mut results = PerItem::new(3);
        results.set(2, "c");
        results.set(0, "a");
        results.set(7, "ignored");
        assert_eq!(results.get(1), None);
        assert_eq!(results.finish(|| "missing"), vec!["a", "missing", "c"]);
    }
}
