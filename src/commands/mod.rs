//! The commands that compose the rest: `dev` (the whole pipeline on this machine) and `put`
//! (uploads into the input container). `serve` is [`crate::startup`].

pub mod dev;
pub mod put;
