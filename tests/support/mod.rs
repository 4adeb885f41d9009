#![allow(dead_code)]

pub mod azurite;
