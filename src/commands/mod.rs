//! The commands that compose the rest: `dev` (the whole pipeline on this machine), `put`
//! (uploads into the input container), and the operations `status`, `reconcile` and `redrive`.
//! `serve` is [`crate::startup`].

pub mod console;
pub mod dev;
pub mod put;
pub mod reconcile;
pub mod redrive;
pub mod status;
