#![allow(dead_code)]

pub mod azurite;
pub mod dev;
