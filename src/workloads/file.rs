//! The workloads file (`WORKLOADS_FILE`): TOML, `version = 1` and one `[[workload]]` table per
//! route, in order. Every problem is named with its file, line and column, all of them at once,
//! like every other setting; the routes come out only when there is none.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml_edit::{Document, Item, TableLike, Value};

use super::routes::{
    Action, ContentTypeRule, Input, Limits, Output, Program, RESERVED_ENV_PREFIXES, RESERVED_NAMES,
    Rules, Run, WORD_COUNT, Workload, Workloads, is_valid_name,
};
use crate::duration::{format_iso8601, parse_iso8601};
use crate::task_spec::is_valid_id;

/// The keys of a `[[workload]]` table.
const KEYS: [&str; 18] = [
    "name",
    "prefix",
    "suffix",
    "content_type",
    "ignore",
    "image",
    "command",
    "result",
    "files",
    "env",
    "input",
    "pool",
    "job",
    "max_wall_clock",
    "max_queue_time",
    "max_retries",
    "retention",
    "slots",
];

/// What runs a task; an ignoring route may not have them.
const RUN_KEYS: [&str; 13] = [
    "image",
    "command",
    "result",
    "files",
    "env",
    "input",
    "pool",
    "job",
    "max_wall_clock",
    "max_queue_time",
    "max_retries",
    "retention",
    "slots",
];

/// What the built-in word count fixes: a workload of one's own changes them.
const WORD_COUNT_FIXED: [&str; 5] = ["command", "result", "files", "env", "input"];

/// Task durations accepted, as for the `TASK_*` settings.
const MIN_DURATION: Duration = Duration::from_secs(60);
const MAX_DURATION: Duration = Duration::from_secs(180 * 86_400);

/// What the settings say that the file is checked against.
#[derive(Clone, Debug)]
pub struct FileDefaults {
    /// `BATCH_POOL_ID` and `BATCH_JOB_ID` with `RUNNER=batch`.
    pub pool: Option<String>,
    pub job: Option<String>,
    /// The `TASK_*` limits a workload does not override.
    pub max_wall_clock: Duration,
    pub max_queue_time: Duration,
    pub max_retries: i32,
    /// `None` with `STORAGE_ACCOUNT_KEY`; else the longest a task with `input = "url"` may
    /// wait and run, since its URL carries a user delegation SAS that cannot outlive its key.
    pub max_delegated_lifetime: Option<Duration>,
}

/// Reads and checks the workloads file at `path`.
pub fn load(path: &Path, defaults: &FileDefaults) -> Result<Workloads, Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("WORKLOADS_FILE {shown}: cannot read it: {e}")])?;
    parse(&text, &shown, defaults)
}

/// Checks the text of a workloads file (`file` names it in the problems).
pub(crate) fn parse(
    text: &str,
    file: &str,
    defaults: &FileDefaults,
) -> Result<Workloads, Vec<String>> {
    let mut checker = Checker {
        text,
        file,
        problems: Vec::new(),
        names: HashMap::new(),
    };
    let document = match Document::parse(text) {
        Ok(document) => document,
        Err(e) => {
            checker.problem(e.span(), e.message().trim().to_string());
            return Err(checker.problems);
        }
    };
    let routes = checker.document(document.as_item(), defaults);
    if checker.problems.is_empty() {
        Ok(Workloads::listed(routes))
    } else {
        Err(checker.problems)
    }
}

struct Checker<'a> {
    text: &'a str,
    file: &'a str,
    problems: Vec<String>,
    /// Each name given, and where.
    names: HashMap<String, Option<Range<usize>>>,
}

/// One `[[workload]]` table, where it is.
struct Table<'t> {
    table: &'t dyn TableLike,
    span: Option<Range<usize>>,
}

impl Checker<'_> {
    fn problem(&mut self, span: Option<Range<usize>>, message: String) {
        let (line, column) = span.map_or((1, 1), |s| self.position(s.start));
        self.problems
            .push(format!("{}:{line}:{column}: {message}", self.file));
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn document(&mut self, root: &Item, defaults: &FileDefaults) -> Vec<Workload> {
        let Some(root) = root.as_table_like() else {
            self.problem(None, "the file is not a TOML table".into());
            return Vec::new();
        };
        for (key, _) in root.iter() {
            if key != "version" && key != "workload" {
                let span = root.get_key_value(key).and_then(|(k, _)| k.span());
                self.problem(
                    span,
                    format!("unknown key `{key}` (expected `version`, `workload`)"),
                );
            }
        }
        match root.get_key_value("version") {
            None => self.problem(None, "`version = 1` is missing".into()),
            Some((_, item)) if item.as_integer() == Some(1) => {}
            Some((_, item)) => self.problem(item.span(), "`version` must be 1".into()),
        }
        let tables = self.tables(root);
        if tables.is_empty() && self.problems.is_empty() {
            self.problem(
                None,
                "no `[[workload]]` is listed: nothing would run".into(),
            );
        }
        let routes: Vec<Workload> = tables
            .iter()
            .filter_map(|table| self.workload(table, defaults))
            .collect();
        self.placements(&tables, &routes, defaults);
        routes
    }

    /// The `[[workload]]` tables (or `workload = [{...}, ...]`).
    fn tables<'t>(&mut self, root: &'t dyn TableLike) -> Vec<Table<'t>> {
        match root.get_key_value("workload") {
            None => Vec::new(),
            Some((_, Item::ArrayOfTables(array))) => array
                .iter()
                .map(|t| Table {
                    table: t as &dyn TableLike,
                    span: t.span(),
                })
                .collect(),
            Some((_, Item::Value(Value::Array(array)))) => {
                let mut tables = Vec::new();
                for value in array.iter() {
                    match value.as_inline_table() {
                        Some(t) => tables.push(Table {
                            table: t as &dyn TableLike,
                            span: t.span(),
                        }),
                        None => self.problem(value.span(), "a workload must be a table".into()),
                    }
                }
                tables
            }
            Some((_, item)) => {
                self.problem(item.span(), "`workload` must be an array of tables".into());
                Vec::new()
            }
        }
    }

    fn workload(&mut self, t: &Table<'_>, defaults: &FileDefaults) -> Option<Workload> {
        let before = self.problems.len();
        for (key, _) in t.table.iter() {
            if !KEYS.contains(&key) {
                self.problem(key_span(t.table, key), format!("unknown key `{key}`"));
            }
        }
        let name = self.name(t);
        let rules = self.rules(t.table);
        let ignore = self.boolean(t.table, "ignore").unwrap_or(false);
        let action = if ignore {
            for key in RUN_KEYS {
                if t.table.contains_key(key) {
                    self.problem(
                        key_span(t.table, key),
                        format!("`{key}` has no use with `ignore = true`: the route runs nothing"),
                    );
                }
            }
            Action::Ignore
        } else {
            let run = self.run(t, name.as_deref(), defaults);
            Action::Run(Box::new(run))
        };
        (self.problems.len() == before).then(|| Workload {
            name: name.unwrap_or_default(),
            rules,
            action,
        })
    }

    fn name(&mut self, t: &Table<'_>) -> Option<String> {
        let Some(name) = self.string(t.table, "name") else {
            if !t.table.contains_key("name") {
                self.problem(t.span.clone(), "a workload needs a `name`".into());
            }
            return None;
        };
        let span = value_span(t.table, "name");
        if !is_valid_name(&name) {
            self.problem(
                span.clone(),
                format!(
                    "`{name}` is not a workload name: 1 to 24 lower-case letters, digits and \
                     hyphens, starting with a letter"
                ),
            );
        } else if RESERVED_NAMES.contains(&name.as_str()) {
            self.problem(
                span.clone(),
                format!("`{name}` is reserved: it is a prefix of blob2batch's own ids"),
            );
        }
        if let Some(first) = self.names.get(&name).cloned() {
            let (line, column) = first.map_or((1, 1), |s| self.position(s.start));
            self.problem(
                span,
                format!(
                    "`{name}` is already the name of the workload at line {line}, column {column}"
                ),
            );
        } else {
            self.names.insert(name.clone(), span);
        }
        Some(name)
    }

    fn rules(&mut self, table: &dyn TableLike) -> Rules {
        let prefix = self.non_empty(table, "prefix");
        let suffix = self.non_empty(table, "suffix");
        let content_type = self.non_empty(table, "content_type").and_then(|text| {
            let rule = ContentTypeRule::parse(&text);
            if rule.is_none() {
                self.problem(
                    value_span(table, "content_type"),
                    format!("content_type `{text}` must be `type/subtype` or `type/*`"),
                );
            }
            rule
        });
        Rules {
            prefix,
            suffix,
            content_type,
        }
    }

    fn run(&mut self, t: &Table<'_>, name: Option<&str>, defaults: &FileDefaults) -> Run {
        let table = t.table;
        let word_count = name == Some(WORD_COUNT);
        let image = self.string(table, "image");
        if image
            .as_deref()
            .is_some_and(|i| i.is_empty() || i.contains(char::is_whitespace))
        {
            self.problem(
                value_span(table, "image"),
                "`image` must be an image reference".into(),
            );
        }
        let program = if word_count {
            for key in WORD_COUNT_FIXED {
                if table.contains_key(key) {
                    self.problem(
                        key_span(table, key),
                        format!(
                            "the built-in `wordcount` fixes its `{key}`; give another name to \
                             run a workload of your own"
                        ),
                    );
                }
            }
            Program::WordCount { image }
        } else {
            if image.is_none() && !table.contains_key("image") {
                self.problem(
                    t.span.clone(),
                    "a workload needs an `image` (only the built-in `wordcount` has one)".into(),
                );
            }
            let command = self.command(t);
            Program::Image {
                image: image.unwrap_or_default(),
                command: command.unwrap_or_default(),
            }
        };
        let output = if word_count {
            Run::word_count().output
        } else {
            self.output(table, name.unwrap_or_default())
        };
        let run = Run {
            program,
            output,
            env: self.env(table),
            input: self.input(table),
            pool: self.id(table, "pool"),
            job: self.id(table, "job"),
            limits: self.limits(table),
            slots: self
                .integer(table, "slots", 1, 256, "a whole number from 1 to 256")
                .map(|n| n as u32),
        };
        self.delegated_lifetime(table, &run, defaults);
        run
    }

    fn command(&mut self, t: &Table<'_>) -> Option<String> {
        let command = self.string(t.table, "command");
        match &command {
            None if !t.table.contains_key("command") => {
                self.problem(t.span.clone(), "a workload needs a `command`".into())
            }
            Some(c) if shell_words::split(c).is_ok_and(|argv| !argv.is_empty()) => {}
            Some(_) => self.problem(
                value_span(t.table, "command"),
                "`command` must be a command line (a program and its arguments, quoted as in a \
                 shell; it is not run through one)"
                    .into(),
            ),
            None => {}
        }
        command
    }

    fn output(&mut self, table: &dyn TableLike, name: &str) -> Output {
        let files = self.string(table, "files");
        let result = table.get_key_value("result");
        if let (Some(_), Some((key, _))) = (&files, result) {
            self.problem(key.span(), "give `result` or `files`, not both".into());
        }
        if let Some(pattern) = files {
            if !is_safe_pattern(&pattern) {
                self.problem(
                    value_span(table, "files"),
                    format!(
                        "`files` must be a pattern relative to the task's working directory, \
                         without `..` (e.g. `out/**`), not `{pattern}`"
                    ),
                );
            }
            return Output::Files { pattern };
        }
        let mut suffix = format!(".{name}.out");
        let mut content_type = "application/octet-stream".to_string();
        if let Some((_, item)) = result {
            match item.as_table_like() {
                None => self.problem(
                    item.span(),
                    "`result` must be a table: `{ suffix = \"...\", content_type = \"...\" }`"
                        .into(),
                ),
                Some(result) => {
                    for (key, _) in result.iter() {
                        if key != "suffix" && key != "content_type" {
                            self.problem(
                                key_span(result, key),
                                format!(
                                    "unknown key `result.{key}` (expected `suffix`, `content_type`)"
                                ),
                            );
                        }
                    }
                    if let Some(given) = self.string(result, "suffix") {
                        if given.is_empty() {
                            self.problem(
                                value_span(result, "suffix"),
                                "`result.suffix` must not be empty".into(),
                            );
                        }
                        suffix = given;
                    }
                    if let Some(given) = self.string(result, "content_type") {
                        if !is_header_value(&given) || !given.contains('/') {
                            self.problem(value_span(result, "content_type"), format!("`result.content_type` `{given}` must be a media type such as `text/plain`"));
                        }
                        content_type = given;
                    }
                }
            }
        }
        Output::Stdout {
            suffix,
            content_type,
        }
    }

    fn env(&mut self, table: &dyn TableLike) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some((_, item)) = table.get_key_value("env") else {
            return env;
        };
        let Some(vars) = item.as_table_like() else {
            self.problem(
                item.span(),
                "`env` must be a table of names and strings".into(),
            );
            return env;
        };
        for (name, _) in vars.iter() {
            let span = key_span(vars, name);
            if !is_env_name(name) {
                self.problem(
                    span.clone(),
                    format!("`{name}` is not an environment variable name"),
                );
            } else if let Some(prefix) = RESERVED_ENV_PREFIXES.iter().find(|p| name.starts_with(*p))
            {
                self.problem(span.clone(), format!("`{name}` is reserved (names starting with `{prefix}` are set by blob2batch or Batch)"));
            }
            if let Some(value) = self.string(vars, name) {
                env.insert(name.to_string(), value);
            }
        }
        env
    }

    fn input(&mut self, table: &dyn TableLike) -> Input {
        match self.string(table, "input").as_deref() {
            None | Some("file") => Input::File,
            Some("url") => Input::Url,
            Some(other) => {
                self.problem(
                    value_span(table, "input"),
                    format!("`input` must be \"file\" or \"url\", not \"{other}\""),
                );
                Input::File
            }
        }
    }

    fn id(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        let id = self.string(table, key)?;
        if !is_valid_id(&id) {
            self.problem(
                value_span(table, key),
                format!(
                    "`{key}` must be a Batch id: 1 to 64 letters, digits, hyphens and underscores"
                ),
            );
        }
        Some(id)
    }

    fn limits(&mut self, table: &dyn TableLike) -> Limits {
        Limits {
            max_wall_clock: self.duration(table, "max_wall_clock"),
            max_queue_time: self.duration(table, "max_queue_time"),
            max_retries: self
                .integer(
                    table,
                    "max_retries",
                    -1,
                    100,
                    "a whole number from -1 (unlimited) to 100",
                )
                .map(|n| n as i32),
            retention: self.duration(table, "retention"),
        }
    }

    /// With a user delegation SAS in its URL, a task must be done before the key ends.
    fn delegated_lifetime(&mut self, table: &dyn TableLike, run: &Run, defaults: &FileDefaults) {
        let (Input::Url, Some(max)) = (run.input, defaults.max_delegated_lifetime) else {
            return;
        };
        let queue = run.limits.max_queue_time.unwrap_or(defaults.max_queue_time);
        let wall = run.limits.max_wall_clock.unwrap_or(defaults.max_wall_clock);
        let retries = run.limits.max_retries.unwrap_or(defaults.max_retries);
        let tries = if retries < 0 {
            10
        } else {
            retries.unsigned_abs() + 1
        };
        let lifetime = wall.saturating_mul(tries).saturating_add(queue);
        if lifetime > max {
            self.problem(
                value_span(table, "input"),
                format!(
                    "`input = \"url\"` without STORAGE_ACCOUNT_KEY gives the task a user \
                     delegation SAS, valid at most {}; this workload's tasks may wait and run \
                     {} (max_queue_time + (max_retries + 1) x max_wall_clock): shorten them",
                    format_iso8601(max),
                    format_iso8601(lifetime)
                ),
            );
        }
    }

    /// Every job runs on one pool: a workload on another pool names its own job, and the
    /// workloads naming one job name the same pool.
    fn placements(&mut self, tables: &[Table<'_>], routes: &[Workload], defaults: &FileDefaults) {
        let (Some(default_pool), Some(default_job)) = (&defaults.pool, &defaults.job) else {
            return;
        };
        let mut pools: HashMap<String, String> = HashMap::new();
        pools.insert(default_job.to_ascii_lowercase(), default_pool.clone());
        for (table, route) in tables.iter().zip(routes) {
            let Action::Run(run) = &route.action else {
                continue;
            };
            let pool = run.pool.clone().unwrap_or_else(|| default_pool.clone());
            let job = run.job.clone().unwrap_or_else(|| default_job.clone());
            if run.pool.is_some() && run.job.is_none() && pool != *default_pool {
                self.problem(
                    value_span(table.table, "pool"),
                    format!("a workload on pool `{pool}` names its own `job`: the job `{job}` runs on `{default_pool}`"),
                );
                continue;
            }
            match pools.get(&job.to_ascii_lowercase()) {
                Some(existing) if !existing.eq_ignore_ascii_case(&pool) => self.problem(
                    value_span(table.table, "job"),
                    format!("job `{job}` runs on pool `{existing}`, not `{pool}`: give this workload a job of its own"),
                ),
                Some(_) => {}
                None => {
                    pools.insert(job.to_ascii_lowercase(), pool);
                }
            }
        }
    }

    fn string(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        let (_, item) = table.get_key_value(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.problem(item.span(), format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn non_empty(&mut self, table: &dyn TableLike, key: &str) -> Option<String> {
        let value = self.string(table, key)?;
        if value.is_empty() {
            self.problem(value_span(table, key), format!("`{key}` must not be empty"));
            return None;
        }
        Some(value)
    }

    fn boolean(&mut self, table: &dyn TableLike, key: &str) -> Option<bool> {
        let (_, item) = table.get_key_value(key)?;
        let value = item.as_bool();
        if value.is_none() {
            self.problem(item.span(), format!("`{key}` must be true or false"));
        }
        value
    }

    fn integer(
        &mut self,
        table: &dyn TableLike,
        key: &str,
        min: i64,
        max: i64,
        expected: &str,
    ) -> Option<i64> {
        let (_, item) = table.get_key_value(key)?;
        let value = item.as_integer().filter(|n| (min..=max).contains(n));
        if value.is_none() {
            self.problem(item.span(), format!("`{key}` must be {expected}"));
        }
        value
    }

    fn duration(&mut self, table: &dyn TableLike, key: &str) -> Option<Duration> {
        let text = self.string(table, key)?;
        let value = parse_iso8601(&text).filter(|d| (MIN_DURATION..=MAX_DURATION).contains(d));
        if value.is_none() {
            self.problem(
                value_span(table, key),
                format!(
                    "`{key}` must be an ISO 8601 duration from {} to {}, not `{text}`",
                    format_iso8601(MIN_DURATION),
                    format_iso8601(MAX_DURATION)
                ),
            );
        }
        value
    }
}

fn key_span(table: &dyn TableLike, key: &str) -> Option<Range<usize>> {
    table.get_key_value(key).and_then(|(k, _)| k.span())
}

fn value_span(table: &dyn TableLike, key: &str) -> Option<Range<usize>> {
    table.get_key_value(key).and_then(|(_, v)| v.span())
}

/// A relative glob that stays in the working directory.
fn is_safe_pattern(pattern: &str) -> bool {
    let pattern = pattern.replace('\\', "/");
    !pattern.is_empty()
        && !pattern.starts_with('/')
        && !pattern.contains(':')
        && pattern
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != ".")
}

fn is_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn is_header_value(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> FileDefaults {
        FileDefaults {
            pool: Some("wordcount".into()),
            job: Some("wordcount".into()),
            max_wall_clock: Duration::from_secs(3600),
            max_queue_time: Duration::from_secs(12 * 3600),
            max_retries: 2,
            max_delegated_lifetime: None,
        }
    }

    /// The example of the documentation, as written there.
    const EXAMPLE: &str = r#"version = 1

[[workload]]
name = "checksum"
prefix = "images/"
suffix = ".png"
content_type = "image/*"
image = "myregistry.azurecr.io/checksum:1.2"
command = "/bin/busybox sha256sum input/data"
result = { suffix = ".sha256.txt", content_type = "text/plain" }
env = { LEVEL = "9" }
input = "file"
pool = "checksum-pool"
job = "checksum"
max_wall_clock = "PT30M"
max_queue_time = "PT12H"
max_retries = 1
retention = "P1D"
slots = 1

[[workload]]
name = "archive"
prefix = "archive/"
ignore = true

[[workload]]
name = "wordcount"
suffix = ".txt"
"#;

    fn problems(text: &str) -> Vec<String> {
        parse(text, "w.toml", &defaults()).unwrap_err()
    }

    #[test]
    fn the_documented_example_reads_as_written() {
        let workloads = parse(EXAMPLE, "w.toml", &defaults()).unwrap();
        let routes = workloads.routes();
        assert_eq!(routes.len(), 3);
        let checksum = &routes[0];
        assert_eq!(checksum.name, "checksum");
        assert_eq!(checksum.rules.prefix.as_deref(), Some("images/"));
        assert_eq!(checksum.rules.suffix.as_deref(), Some(".png"));
        assert_eq!(
            checksum.rules.content_type,
            ContentTypeRule::parse("image/*")
        );
        let Action::Run(run) = &checksum.action else {
            panic!("checksum runs")
        };
        assert_eq!(
            run.program,
            Program::Image {
                image: "myregistry.azurecr.io/checksum:1.2".into(),
                command: "/bin/busybox sha256sum input/data".into()
            }
        );
        assert_eq!(
            run.output,
            Output::Stdout {
                suffix: ".sha256.txt".into(),
                content_type: "text/plain".into()
            }
        );
        assert_eq!(run.env.get("LEVEL").map(String::as_str), Some("9"));
        assert_eq!(run.input, Input::File);
        assert_eq!(
            (run.pool.as_deref(), run.job.as_deref()),
            (Some("checksum-pool"), Some("checksum"))
        );
        assert_eq!(
            run.limits,
            Limits {
                max_wall_clock: Some(Duration::from_secs(1800)),
                max_queue_time: Some(Duration::from_secs(12 * 3600)),
                max_retries: Some(1),
                retention: Some(Duration::from_secs(86_400)),
            }
        );
        assert_eq!(run.slots, Some(1));
        assert_eq!(routes[1].action, Action::Ignore);
        assert_eq!(routes[2].action, Action::Run(Box::new(Run::word_count())));
        assert_eq!(routes[2].rules.suffix.as_deref(), Some(".txt"));
        assert!(workloads.is_from_file());
    }

    #[test]
    fn defaults_of_a_workload_of_ones_own() {
        let text = "version = 1\n[[workload]]\nname = \"thumbs\"\nimage = \"r.io/t:1\"\ncommand = \"/t\"\n";
        let workloads = parse(text, "w.toml", &defaults()).unwrap();
        let Action::Run(run) = &workloads.routes()[0].action else {
            panic!()
        };
        assert_eq!(
            run.output,
            Output::Stdout {
                suffix: ".thumbs.out".into(),
                content_type: "application/octet-stream".into()
            }
        );
        assert_eq!(
            (run.input, run.slots, &run.limits),
            (Input::File, None, &Limits::default())
        );
        let files = "version = 1\nworkload = [{ name = \"thumbs\", image = \"r.io/t:1\", command = \"/t\", files = \"out/**\" }]\n";
        let workloads = parse(files, "w.toml", &defaults()).unwrap();
        let Action::Run(run) = &workloads.routes()[0].action else {
            panic!()
        };
        assert_eq!(
            run.output,
            Output::Files {
                pattern: "out/**".into()
            }
        );
    }

    #[test]
    fn every_problem_is_named_with_its_line_and_column() {
        let text = r#"version = 1
colour = "blue"

[[workload]]
name = "Bad_Name"
image = "r.io/a:1"
command = "/a"
flavour = "x"

[[workload]]
name = "wc"
image = "r.io/b:1"
command = "/b"

[[workload]]
name = "dup"
command = "/c"

[[workload]]
name = "dup"
image = "r.io/d:1"
command = "/d 'unclosed"
result = { suffix = ".d" }
files = "out/**"
env = { BLOB2BATCH_ETAG = "x", "1X" = "y", OK = 3 }
input = "stream"
max_wall_clock = "an hour"
max_retries = 101
slots = 0
pool = "a.b"

[[workload]]
name = "skip"
ignore = true
image = "r.io/e:1"

[[workload]]
name = "wordcount"
command = "/wordcount -x"
content_type = "text"
"#;
        assert_eq!(
            problems(text),
            [
                "w.toml:2:1: unknown key `colour` (expected `version`, `workload`)",
                "w.toml:8:1: unknown key `flavour`",
                "w.toml:5:8: `Bad_Name` is not a workload name: 1 to 24 lower-case letters, digits and hyphens, starting with a letter",
                "w.toml:11:8: `wc` is reserved: it is a prefix of blob2batch's own ids",
                "w.toml:15:1: a workload needs an `image` (only the built-in `wordcount` has one)",
                "w.toml:20:8: `dup` is already the name of the workload at line 16, column 8",
                "w.toml:22:11: `command` must be a command line (a program and its arguments, quoted as in a shell; it is not run through one)",
                "w.toml:23:1: give `result` or `files`, not both",
                "w.toml:25:9: `BLOB2BATCH_ETAG` is reserved (names starting with `BLOB2BATCH_` are set by blob2batch or Batch)",
                "w.toml:25:32: `1X` is not an environment variable name",
                "w.toml:25:49: `OK` must be a string",
                "w.toml:26:9: `input` must be \"file\" or \"url\", not \"stream\"",
                "w.toml:30:8: `pool` must be a Batch id: 1 to 64 letters, digits, hyphens and underscores",
                "w.toml:27:18: `max_wall_clock` must be an ISO 8601 duration from PT1M to P180D, not `an hour`",
                "w.toml:28:15: `max_retries` must be a whole number from -1 (unlimited) to 100",
                "w.toml:29:9: `slots` must be a whole number from 1 to 256",
                "w.toml:35:1: `image` has no use with `ignore = true`: the route runs nothing",
                "w.toml:40:16: content_type `text` must be `type/subtype` or `type/*`",
                "w.toml:39:1: the built-in `wordcount` fixes its `command`; give another name to run a workload of your own",
            ]
        );
    }

    #[test]
    fn the_file_as_a_whole() {
        assert_eq!(
            problems("version = 1\n[[workload]\nname = 1"),
            ["w.toml:2:12: unclosed array table, expected `]`"],
        );
        assert_eq!(
            problems("[[workload]]\nname = \"a\"\nimage = \"i\"\ncommand = \"c\"\n"),
            ["w.toml:1:1: `version = 1` is missing"]
        );
        assert_eq!(
            problems("version = 2\n[[workload]]\nname = \"a\"\nimage = \"i\"\ncommand = \"c\"\n"),
            ["w.toml:1:11: `version` must be 1"]
        );
        assert_eq!(
            problems("version = 1\n"),
            ["w.toml:1:1: no `[[workload]]` is listed: nothing would run"]
        );
        assert_eq!(
            problems("version = 1\nworkload = 3\n"),
            ["w.toml:2:12: `workload` must be an array of tables"]
        );
    }

    #[test]
    fn a_job_runs_on_one_pool() {
        let text = r#"version = 1
[[workload]]
name = "a"
image = "r.io/a:1"
command = "/a"
pool = "gpu"

[[workload]]
name = "b"
image = "r.io/b:1"
command = "/b"
pool = "gpu"
job = "wordcount"

[[workload]]
name = "c"
image = "r.io/c:1"
command = "/c"
pool = "gpu"
job = "gpu-jobs"

[[workload]]
name = "d"
image = "r.io/d:1"
command = "/d"
pool = "big"
job = "gpu-jobs"
"#;
        assert_eq!(
            problems(text),
            [
                "w.toml:6:8: a workload on pool `gpu` names its own `job`: the job `wordcount` runs on `wordcount`",
                "w.toml:13:7: job `wordcount` runs on pool `wordcount`, not `gpu`: give this workload a job of its own",
                "w.toml:27:7: job `gpu-jobs` runs on pool `gpu`, not `big`: give this workload a job of its own",
            ]
        );
    }

    #[test]
    fn a_delegated_url_must_outlive_the_task() {
        let mut defaults = defaults();
        defaults.max_delegated_lifetime = Some(Duration::from_secs(6 * 86_400));
        let text = |queue: &str| {
            format!(
                "version = 1\n[[workload]]\nname = \"u\"\nimage = \"r.io/u:1\"\ncommand = \"/u\"\ninput = \"url\"\nmax_queue_time = \"{queue}\"\n"
            )
        };
        assert!(parse(&text("PT12H"), "w.toml", &defaults).is_ok());
        assert_eq!(
            parse(&text("P6D"), "w.toml", &defaults).unwrap_err(),
            [
                "w.toml:6:9: `input = \"url\"` without STORAGE_ACCOUNT_KEY gives the task a user delegation SAS, valid at most P6D; this workload's tasks may wait and run P6DT3H (max_queue_time + (max_retries + 1) x max_wall_clock): shorten them"
            ]
        );
        // With a key, the SAS is a service SAS: no such bound.
        assert!(parse(&text("P6D"), "w.toml", &self::defaults()).is_ok());
    }
}
