//! The routes: what each takes (name prefix, name suffix, content type) and what it does with
//! what it takes; the first route whose rules all hold takes a blob.

use std::collections::BTreeMap;
use std::time::Duration;

/// The name of the built-in word count.
pub(crate) const WORD_COUNT: &str = "wordcount";

/// Names a workload may not take: the prefixes of the ids blob2batch gives tasks and jobs
/// (`wc-` word count, `wcj-` job per blob, `wcs-` split jobs).
pub const RESERVED_NAMES: [&str; 3] = ["wc", "wcj", "wcs"];

/// Prefixes of environment variables a workload's `env` may not set: ours, and Batch's own.
pub(crate) const RESERVED_ENV_PREFIXES: [&str; 2] = ["BLOB2BATCH_", "AZ_BATCH_"];

/// The environment every task of a workload of one's own gets.
pub(crate) const ENV_BLOB: &str = "BLOB2BATCH_BLOB";
pub(crate) const ENV_CONTAINER: &str = "BLOB2BATCH_CONTAINER";
pub(crate) const ENV_ETAG: &str = "BLOB2BATCH_ETAG";
pub(crate) const ENV_WORKLOAD: &str = "BLOB2BATCH_WORKLOAD";
/// With `input = "url"`: a read-only SAS URL for the one blob.
pub(crate) const ENV_INPUT_URL: &str = "BLOB2BATCH_INPUT_URL";

/// The routes, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workloads {
    routes: Vec<Workload>,
    /// Whether a file gave them (rather than the built-in default).
    from_file: bool,
}

/// One route: its name, what it takes, what runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// `[a-z][a-z0-9-]{0,23}`: it starts the ids of its tasks and names its results.
    pub name: String,
    pub rules: Rules,
    pub action: Action,
}

/// Which blobs a route takes; every rule given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub content_type: Option<ContentTypeRule>,
}

/// `type/subtype`, or `type/*`; compared without parameters, case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentTypeRule {
    /// Lower case.
    pub kind: String,
    /// Lower case; `None` for `type/*`.
    pub subtype: Option<String>,
}

/// What a route does with the blobs it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Acknowledged and logged as ignored by this route.
    Ignore,
    Run(Box<Run>),
}

/// A task per blob version, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub program: Program,
    /// Where the task's result goes.
    pub output: Output,
    /// The workload's own environment, in name order.
    pub env: BTreeMap<String, String>,
    pub input: Input,
    /// The pool and job its tasks go to; `None`: `BATCH_POOL_ID` / `BATCH_JOB_ID`.
    pub pool: Option<String>,
    pub job: Option<String>,
    pub limits: Limits,
    /// Batch's `requiredSlots`; `None` leaves it out of the body (the service's default, 1).
    pub slots: Option<u32>,
}

/// The container and its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// The built-in word count: its image is `image`, else `WORDCOUNT_IMAGE`.
    WordCount { image: Option<String> },
    /// Any image, with a constant command line (nothing of an event reaches it).
    Image { image: String, command: String },
}

/// Where a task's result goes in the output container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Standard output, to `{blob}{suffix}`, with this content type.
    Stdout {
        suffix: String,
        content_type: String,
    },
    /// What the task writes matching `pattern` (e.g. `out/**`), under `{blob}.{name}/`; its
    /// standard output goes to `{blob}.{name}/stdout.txt`, the marker of a complete result.
    Files { pattern: String },
}

/// How a task reaches its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Fetched by Batch to `input/data` before the command runs.
    File,
    /// Not fetched: the task gets [`ENV_INPUT_URL`], a read-only SAS URL for the blob.
    Url,
}

/// A workload's own task limits; `None`: the `TASK_*` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_wall_clock: Option<Duration>,
    pub max_queue_time: Option<Duration>,
    pub max_retries: Option<i32>,
    pub retention: Option<Duration>,
}

/// Which route takes a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Run(&'a Workload, &'a Run),
    /// Taken by a route that ignores what it takes.
    Ignored(&'a Workload),
    /// No route takes it.
    Unmatched,
}

impl Workloads {
    /// The built-in default: word count for every blob.
    pub(crate) fn word_count_only() -> Workloads {
        Workloads {
            routes: vec![Workload {
                name: WORD_COUNT.into(),
                rules: Rules::default(),
                action: Action::Run(Box::new(Run::word_count())),
            }],
            from_file: false,
        }
    }

    /// The routes a workloads file lists.
    pub(super) fn listed(routes: Vec<Workload>) -> Workloads {
        Workloads {
            routes,
            from_file: true,
        }
    }

    pub fn routes(&self) -> &[Workload] {
        &self.routes
    }

    /// Whether a workloads file gave the routes.
    pub(crate) fn is_from_file(&self) -> bool {
        self.from_file
    }

    /// Whether a route runs the built-in word count.
    pub(crate) fn has_word_count(&self) -> bool {
        self.runs()
            .any(|(_, run)| matches!(run.program, Program::WordCount { .. }))
    }

    /// The routes that run something, with what they run.
    pub fn runs(&self) -> impl Iterator<Item = (&Workload, &Run)> {
        self.routes.iter().filter_map(|w| match &w.action {
            Action::Run(run) => Some((w, run.as_ref())),
            Action::Ignore => None,
        })
    }

    /// The route that takes blob `name` of content type `content_type`: the first whose rules
    /// all hold.
    pub fn route(&self, name: &str, content_type: Option<&str>) -> Route<'_> {
        match self
            .routes
            .iter()
            .find(|w| w.rules.hold(name, content_type))
        {
            None => Route::Unmatched,
            Some(workload) => match &workload.action {
                Action::Ignore => Route::Ignored(workload),
                Action::Run(run) => Route::Run(workload, run),
            },
        }
    }
}

impl Run {
    /// The built-in word count with today's image, limits and placement.
    pub(crate) fn word_count() -> Run {
        Run {
            program: Program::WordCount { image: None },
            output: Output::Stdout {
                suffix: ".wordcount.json".into(),
                content_type: "application/json".into(),
            },
            env: BTreeMap::new(),
            input: Input::File,
            pool: None,
            job: None,
            limits: Limits::default(),
            slots: None,
        }
    }
}

impl Rules {
    /// Whether every rule given holds for blob `name` of content type `content_type`.
    pub fn hold(&self, name: &str, content_type: Option<&str>) -> bool {
        self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| name.ends_with(s))
            && self
                .content_type
                .as_ref()
                .is_none_or(|rule| content_type.is_some_and(|t| rule.matches(t)))
    }
}

impl ContentTypeRule {
    /// `type/subtype` or `type/*`; `None` for anything else.
    pub fn parse(text: &str) -> Option<ContentTypeRule> {
        let (kind, subtype) = text.trim().split_once('/')?;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        let subtype = match subtype {
            "*" => None,
            s if token(s) => Some(s.to_ascii_lowercase()),
            _ => return None,
        };
        token(kind).then(|| ContentTypeRule {
            kind: kind.to_ascii_lowercase(),
            subtype,
        })
    }

    /// Whether a blob's content type (`text/plain; charset=utf-8`) is of this rule.
    pub fn matches(&self, content_type: &str) -> bool {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some((kind, subtype)) = media.split_once('/') else {
            return false;
        };
        kind.eq_ignore_ascii_case(&self.kind)
            && self
                .subtype
                .as_deref()
                .is_none_or(|s| subtype.trim().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for ContentTypeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.kind,
            self.subtype.as_deref().unwrap_or("*")
        )
    }
}

/// Whether `name` is a workload name: `[a-z][a-z0-9-]{0,23}`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=24).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, rules: Rules, action: Action) -> Workload {
        Workload {
            name: name.into(),
            rules,
            action,
        }
    }

    #[test]
    fn the_first_route_whose_rules_all_hold_takes_the_blob() {
        let image = |name: &str| {
            Action::Run(Box::new(Run {
                program: Program::Image {
                    image: format!("r.io/{name}:1"),
                    command: "/bin/true".into(),
                },
                ..Run::word_count()
            }))
        };
        let workloads = Workloads {
            routes: vec![
                route(
                    "archive",
                    Rules {
                        prefix: Some("archive/".into()),
                        ..Rules::default()
                    },
                    Action::Ignore,
                ),
                route(
                    "checksum",
                    Rules {
                        prefix: Some("images/".into()),
                        suffix: Some(".png".into()),
                        content_type: ContentTypeRule::parse("image/*"),
                    },
                    image("checksum"),
                ),
                route(
                    "wordcount",
                    Rules {
                        suffix: Some(".txt".into()),
                        ..Rules::default()
                    },
                    Action::Run(Box::new(Run::word_count())),
                ),
            ],
            from_file: true,
        };
        let name_of = |route: Route<'_>| match route {
            Route::Run(w, _) => w.name.clone(),
            Route::Ignored(w) => format!("ignored by {}", w.name),
            Route::Unmatched => "unmatched".into(),
        };
        let cases = [
            ("archive/a.txt", Some("text/plain"), "ignored by archive"),
            ("images/a.png", Some("image/png"), "checksum"),
            ("images/a.png", Some("IMAGE/PNG; x=1"), "checksum"),
            // Every rule must hold: no content type, or another one, is not image/*.
            ("images/a.png", None, "unmatched"),
            ("images/a.png", Some("text/plain"), "unmatched"),
            ("images/a.txt", Some("image/png"), "wordcount"),
            ("docs/b.txt", None, "wordcount"),
            ("docs/b.md", Some("text/markdown"), "unmatched"),
        ];
        for (name, content_type, expected) in cases {
            assert_eq!(
                name_of(workloads.route(name, content_type)),
                expected,
                "{name} {content_type:?}"
            );
        }
        assert!(workloads.has_word_count());
        assert_eq!(workloads.runs().count(), 2);
    }

    #[test]
    fn content_type_rules() {
        let any_image = ContentTypeRule::parse("Image/*").unwrap();
        assert_eq!(any_image.to_string(), "image/*");
        assert!(any_image.matches("image/png"));
        assert!(any_image.matches(" image/SVG+xml ; charset=utf-8"));
        assert!(!any_image.matches("text/plain"));
        assert!(!any_image.matches("image"));
        let plain = ContentTypeRule::parse("text/plain").unwrap();
        assert!(plain.matches("text/plain; charset=utf-8"));
        assert!(!plain.matches("text/plainer"));
        for bad in ["", "text", "*/*", "text/", "/plain", "text/pl ain", "a/b/c"] {
            assert_eq!(ContentTypeRule::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(is_valid_name("checksum"));
        assert!(is_valid_name("a"));
        assert!(is_valid_name("thumb-2x"));
        assert!(is_valid_name(&"a".repeat(24)));
        for bad in ["", "2x", "-a", "Check", "a_b", "a.b", &"a".repeat(25)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_default_is_word_count_for_every_blob() {
        let workloads = Workloads::word_count_only();
        assert!(!workloads.is_from_file());
        match workloads.route("anything/at all", None) {
            Route::Run(w, run) => {
                assert_eq!(w.name, WORD_COUNT);
                assert_eq!(run, &Run::word_count());
            }
            other => panic!("{other:?}"),
        }
    }
}
