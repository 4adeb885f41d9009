//! Workloads: which container runs on which blob. An ordered list of routes, each a set of match
//! rules (name prefix, name suffix, content type) and what runs for the blobs it takes: the
//! built-in word count, any container image with a constant command line, or nothing (the blob
//! is acknowledged as ignored by that rule).
//!
//! Without `WORKLOADS_FILE` there is one route, the built-in `wordcount`, taking every blob: the
//! product as it always was, ids and Batch bodies included. With it, exactly the routes the file
//! lists (see `file` for its form and its checks). The first route whose rules all hold takes a
//! blob; a blob no route takes is ignored.

mod file;
mod routes;

pub use file::{FileDefaults, load};
pub use routes::{
    Action, ContentTypeRule, Input, Limits, Output, Program, RESERVED_NAMES, Route, Rules, Run,
    Workload, Workloads,
};
pub(crate) use routes::{ENV_BLOB, ENV_CONTAINER, ENV_ETAG, ENV_INPUT_URL, ENV_WORKLOAD};
