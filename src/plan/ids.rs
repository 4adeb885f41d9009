//! The ids of what a blob version asks Batch to run. They are derived from the blob version
//! alone, so that every delivery of one version asks for the same ids and every later one is a
//! duplicate. The golden tests pin them: changing one would run every redelivery that spans an
//! upgrade twice.

use sha2::{Digest, Sha256};

/// Task id prefix of the word count; the rest is hex of a SHA-256.
pub(crate) const TASK_ID_PREFIX: &str = "wc-";
/// Job id prefix in job-per-blob mode.
pub(crate) const JOB_ID_PREFIX: &str = "wcj-";
/// Job id prefix of a split word count.
pub(crate) const SPLIT_JOB_ID_PREFIX: &str = "wcs-";

/// Batch's longest id.
const MAX_ID_CHARS: usize = 64;

/// `wc-` + hex of SHA-256 over (account, container, blob, eTag), cut to Batch's 64 characters.
/// Each part is length-prefixed so that no two different tuples hash the same bytes. A new
/// eTag (an overwrite) gives a new id; a redelivery gives the same one.
pub fn task_id(account: &str, container: &str, blob: &str, etag: &str) -> String {
    prefixed(
        TASK_ID_PREFIX,
        &hash(&[account, container, blob, etag.trim_matches('"')]),
    )
}

/// The task id of a workload of one's own: its name, a hyphen, then hex of a SHA-256 over
/// (workload name, account, container, blob, eTag), framed as [`task_id`]'s, to 64 characters.
pub fn workload_task_id(
    workload: &str,
    account: &str,
    container: &str,
    blob: &str,
    etag: &str,
) -> String {
    let hex = hash(&[workload, account, container, blob, etag.trim_matches('"')]);
    prefixed(&format!("{workload}-"), &hex)
}

/// The job of a split word count: `wcs-` + hex of a SHA-256 over (account, container, blob,
/// eTag, size, part size, parts), framed as [`task_id`]'s. The split is part of the id, so a
/// change of the `SPLIT_*` settings between two deliveries of one version gives a second job
/// (a second, identical result) and never mixes the parts of two cuts in one job.
pub fn split_job_id(
    account: &str,
    container: &str,
    blob: &str,
    etag: &str,
    (size, part_size, parts): (u64, u64, u32),
) -> String {
    let (size, part_size, parts) = (size.to_string(), part_size.to_string(), parts.to_string());
    prefixed(
        SPLIT_JOB_ID_PREFIX,
        &hash(&[
            account,
            container,
            blob,
            etag.trim_matches('"'),
            &size,
            &part_size,
            &parts,
        ]),
    )
}

/// Job id in job-per-blob mode, derived from the task id (so equally deterministic).
pub fn job_id(task_id: &str) -> String {
    let hash = task_id.strip_prefix(TASK_ID_PREFIX).unwrap_or(task_id);
    prefixed(JOB_ID_PREFIX, hash)
}

/// Lower-case hex of a SHA-256 over the parts, each preceded by its length (8 bytes, big endian).
fn hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// `prefix` + as much of `hex` as fits in Batch's 64 characters.
fn prefixed(prefix: &str, hex: &str) -> String {
    let room = MAX_ID_CHARS.saturating_sub(prefix.len()).min(hex.len());
    let mut id = String::with_capacity(prefix.len() + room);
    id.push_str(prefix);
    id.push_str(&hex[..room]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_bounded_and_change_with_the_etag() {
        let a = task_id("acct", "input", "docs/a b.txt", "0x8D1");
        assert_eq!(a, task_id("acct", "input", "docs/a b.txt", "\"0x8D1\""));
        assert_ne!(a, task_id("acct", "input", "docs/a b.txt", "0x8D2"));
        assert_ne!(a, task_id("acct2", "input", "docs/a b.txt", "0x8D1"));
        assert_ne!(task_id("a", "bc", "d", "e"), task_id("ab", "c", "d", "e"));
        assert_eq!(a.len(), 64);
        assert!(a.starts_with("wc-"));
        assert!(
            a[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let j = job_id(&a);
        assert_eq!(j.len(), 64);
        assert!(j.starts_with("wcj-") && crate::task_spec::is_valid_id(&j));
    }

    #[test]
    fn workload_ids_start_with_their_name_and_differ_by_workload() {
        let a = workload_task_id("checksum", "acct", "input", "a.png", "0x1");
        assert!(a.starts_with("checksum-"));
        assert_eq!(a.len(), 64);
        assert!(crate::task_spec::is_valid_id(&a));
        assert_ne!(
            a,
            workload_task_id("thumbs", "acct", "input", "a.png", "0x1")
        );
        assert_ne!(
            a,
            workload_task_id("checksum", "acct", "input", "a.png", "0x2")
        );
        let longest = workload_task_id(&"n".repeat(24), "acct", "input", "a.png", "0x1");
        assert_eq!(longest.len(), 64);
    }
}
