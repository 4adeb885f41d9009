//! The [`Sink`] trait: what word extraction sends the words of a piece to.
//!
//! It lives in a module of its own so that the code that finds words ([`crate::unicode`]) and the
//! code that counts them ([`crate::tally`], which implements it) both depend on this module and
//! not on each other.

/// Receives the words of a piece. Words that live as long as the piece are queued and looked up
/// in batches; others (freshly lower-cased) are looked up at once.
pub trait Sink<'a> {
    fn borrowed(&mut self, word: &'a [u8]);
    fn transient(&mut self, word: &[u8]);
}
