//! Batch's path rules for resource files and output file patterns, applied to a task directory
//! laid out like a Batch node's: `{task}/wd` (the working directory), `{task}/stdout.txt`,
//! `{task}/stderr.txt`.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// A resource file's `filePath` as a path under the working directory, or why it is refused
/// (absolute, empty, or leaving the working directory).
pub(crate) fn resource_file_path(wd: &Path, file_path: &str) -> Result<PathBuf, String> {
    let normalized = file_path.replace('\\', "/");
    if normalized.is_empty() || normalized.ends_with('/') {
        return Err(format!("filePath `{file_path}` must name a file"));
    }
    let path = Path::new(&normalized);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!(
                        "filePath `{file_path}` leaves the task's working directory"
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "filePath `{file_path}` must be relative to the task's working directory"
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("filePath `{file_path}` must name a file"));
    }
    Ok(wd.join(out))
}

/// True when a `filePattern` has a wildcard (`*`, `?` or `[`).
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// An output `filePattern` resolved against a task directory.
#[derive(Debug)]
pub(crate) struct OutputPattern {
    /// Directory the pattern's literal part leads to (blob names are relative to it).
    pub base: PathBuf,
    /// `None`: a single file, `base` joined with `literal`.
    matcher: Option<GlobMatcher>,
    /// For a pattern without wildcard: the file path relative to `base`'s parent chain.
    pub literal: Option<PathBuf>,
}

/// One file an output pattern matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MatchedFile {
    pub path: PathBuf,
    /// Blob-name part: the path relative to the pattern's base, `/`-separated (for a pattern
    /// without wildcard: the file name).
    pub relative: String,
}

impl OutputPattern {
    /// Resolves `pattern` (relative to `wd`, which is `{task}/wd`). `../` may reach the task
    /// directory (`../std*.txt`) and no further.
    pub fn new(task_dir: &Path, wd: &Path, pattern: &str) -> Result<Self, String> {
        let normalized = pattern.replace('\\', "/");
        if normalized.is_empty() {
            return Err("filePattern is empty".into());
        }
        if normalized.starts_with('/') {
            return Err(format!(
                "filePattern `{pattern}` must be relative to the task's working directory"
            ));
        }
        // Literal leading components (no wildcard) move the base; `..` may climb up to the task dir.
        let parts: Vec<&str> = normalized.split('/').filter(|p| !p.is_empty()).collect();
        let mut base = wd.to_path_buf();
        let mut i = 0;
        while i < parts.len() - 1 && !has_wildcard(parts[i]) {
            match parts[i] {
                "." => {}
                ".." => {
                    if base == task_dir || !base.pop() || !base.starts_with(task_dir) {
                        return Err(format!("filePattern `{pattern}` leaves the task directory"));
                    }
                }
                part => base.push(part),
            }
            i += 1;
        }
        let rest = parts[i..].join("/");
        if rest.split('/').any(|p| p == "..") {
            return Err(format!("filePattern `{pattern}` has `..` after a wildcard"));
        }
        if !has_wildcard(&rest) {
            if rest == "." || rest == ".." {
                return Err(format!("filePattern `{pattern}` must name a file"));
            }
            return Ok(Self {
                base,
                matcher: None,
                literal: Some(PathBuf::from(rest)),
            });
        }
        let glob = GlobBuilder::new(&rest)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| format!("filePattern `{pattern}` is not a valid pattern: {e}"))?;
        Ok(Self {
            base,
            matcher: Some(glob.compile_matcher()),
            literal: None,
        })
    }

    pub(crate) fn is_wildcard(&self) -> bool {
        self.matcher.is_some()
    }

    /// The regular files the pattern matches, sorted by path.
    pub fn matches(&self) -> Vec<MatchedFile> {
        match (&self.matcher, &self.literal) {
            (None, Some(literal)) => {
                let path = self.base.join(literal);
                if path.is_file() {
                    let relative = literal
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    vec![MatchedFile { path, relative }]
                } else {
                    Vec::new()
                }
            }
            (Some(matcher), _) => {
                let mut out = Vec::new();
                walk(&self.base, &self.base, matcher, &mut out);
                out.sort_by(|a, b| a.path.cmp(&b.path));
                out
            }
            (None, None) => Vec::new(),
        }
    }
}

fn walk(base: &Path, dir: &Path, matcher: &GlobMatcher, out: &mut Vec<MatchedFile>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            walk(base, &path, matcher, out);
        } else if file_type.is_file() {
            let Ok(rel) = path.strip_prefix(base) else {
                continue;
            };
            let relative = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if matcher.is_match(&relative) {
                out.push(MatchedFile { path, relative });
            }
        }
    }
}

/// The blob name for a matched file: `path` itself for a pattern without wildcard, else
/// `path/relative` (or `relative` when `path` is unset or empty).
pub(crate) fn destination_blob_name(
    path: Option<&str>,
    wildcard: bool,
    file: &MatchedFile,
) -> String {
    match path
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(path) if !wildcard => path.to_string(),
        Some(path) => format!("{path}/{}", file.relative),
        None => file.relative.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_stay_inside_the_working_directory() {
        let wd = Path::new("/t/wd");
        assert_eq!(
            resource_file_path(wd, "input/data").unwrap(),
            Path::new("/t/wd/input/data")
        );
        assert_eq!(
            resource_file_path(wd, "a/../b").unwrap(),
            Path::new("/t/wd/b")
        );
        assert_eq!(resource_file_path(wd, "./x").unwrap(), Path::new("/t/wd/x"));
        assert!(resource_file_path(wd, "../x").is_err());
        assert!(resource_file_path(wd, "a/../../x").is_err());
        assert!(resource_file_path(wd, "/etc/passwd").is_err());
        assert!(resource_file_path(wd, "").is_err());
        assert!(resource_file_path(wd, "dir/").is_err());
        assert!(resource_file_path(wd, "..").is_err());
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        for f in [
            "stdout.txt",
            "stderr.txt",
            "wd/wordcount.json",
            "wd/out/a.json",
            "wd/out/b.txt",
            "wd/out/sub/c.json",
            "wd/out/x1.log",
            "wd/out/y1.log",
            "wd/input/data",
        ] {
            let p = t.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        dir
    }

    fn rels(task: &Path, pattern: &str) -> Vec<String> {
        OutputPattern::new(task, &task.join("wd"), pattern)
            .unwrap()
            .matches()
            .into_iter()
            .map(|m| m.relative)
            .collect()
    }

    #[test]
    fn glob_semantics_follow_batch() {
        let dir = tree();
        let t = dir.path();
        assert_eq!(rels(t, "../std*.txt"), ["stderr.txt", "stdout.txt"]);
        assert_eq!(rels(t, "out/*.json"), ["a.json"]);
        assert_eq!(rels(t, "out/**/*.json"), ["a.json", "sub/c.json"]);
        assert_eq!(rels(t, "out/?1.log"), ["x1.log", "y1.log"]);
        assert_eq!(rels(t, "out/[x]1.log"), ["x1.log"]);
        assert_eq!(rels(t, "out/[!x]1.log"), ["y1.log"]);
        assert_eq!(
            rels(t, "**/*.json"),
            ["out/a.json", "out/sub/c.json", "wordcount.json"]
        );
        assert_eq!(rels(t, "wordcount.json"), ["wordcount.json"]);
        assert_eq!(rels(t, "out/sub/c.json"), ["c.json"]);
        assert!(rels(t, "missing.json").is_empty());
        assert!(rels(t, "*.nothing").is_empty());
    }

    #[test]
    fn patterns_cannot_leave_the_task_directory() {
        let dir = tree();
        let t = dir.path();
        let wd = t.join("wd");
        assert!(OutputPattern::new(t, &wd, "../../etc/*").is_err());
        assert!(OutputPattern::new(t, &wd, "/etc/passwd").is_err());
        assert!(OutputPattern::new(t, &wd, "*/../../x").is_err());
        assert!(OutputPattern::new(t, &wd, "").is_err());
        assert!(OutputPattern::new(t, &wd, "../stdout.txt").is_ok());
    }

    #[test]
    fn blob_names_follow_the_destination_path() {
        let f = MatchedFile {
            path: PathBuf::from("/t/stderr.txt"),
            relative: "stderr.txt".into(),
        };
        assert_eq!(
            destination_blob_name(Some("a b.txt.wordcount.json"), false, &f),
            "a b.txt.wordcount.json"
        );
        assert_eq!(
            destination_blob_name(Some("x.logs/wc-1"), true, &f),
            "x.logs/wc-1/stderr.txt"
        );
        assert_eq!(
            destination_blob_name(Some("x.logs/wc-1/"), true, &f),
            "x.logs/wc-1/stderr.txt"
        );
        assert_eq!(destination_blob_name(None, true, &f), "stderr.txt");
        assert_eq!(destination_blob_name(None, false, &f), "stderr.txt");
    }
}
