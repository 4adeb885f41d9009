//! The workloads file's JSON Schema (`docs/workloads.schema.json`, what editors check the file
//! with) agrees with the parser (`blob2batch::workloads::load`, what blob2batch runs with): the
//! sample, every TOML example of `docs/workloads.md`, and documents valid and invalid one rule at
//! a time get the same verdict from both. What the schema cannot say (unique names, duration
//! ranges, shell quoting, the placement of jobs on pools) is left out of the cases: the schema's
//! description names those checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use blob2batch::workloads::{FileDefaults, RESERVED_NAMES, load};
use serde_json::{Map, Value as Json};
use toml_edit::{Document, Item, Value};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo("docs/workloads.schema.json")).unwrap();
    let schema: Json = serde_json::from_str(&text).unwrap();
    if let Err(error) = jsonschema::meta::validate(&schema) {
        panic!("the schema is not a valid draft-07 schema: {error}");
    }
    assert_eq!(
        schema["$schema"], "http://json-schema.org/draft-07/schema#",
        "Taplo validates with draft 4, 6 and 7 only"
    );
    jsonschema::draft7::new(&schema).unwrap()
}

/// The document as an editor's schema check sees it: TOML as JSON, datetimes as strings.
fn to_json(text: &str) -> Json {
    let document = Document::parse(text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    item(document.as_item())
}

fn item(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => value(v),
        Item::Table(table) => Json::Object(
            table
                .iter()
                .map(|(k, v)| (k.into(), self::item(v)))
                .collect(),
        ),
        Item::ArrayOfTables(array) => Json::Array(
            array
                .iter()
                .map(|table| {
                    Json::Object(
                        table
                            .iter()
                            .map(|(k, v)| (k.into(), self::item(v)))
                            .collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn value(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(n) => Json::from(*n.value()),
        Value::Float(f) => Json::from(*f.value()),
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(array) => Json::Array(array.iter().map(self::value).collect()),
        Value::InlineTable(table) => Json::Object(
            table
                .iter()
                .map(|(k, v)| (k.to_string(), self::value(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// Settings that add no check of their own: no default pool or job (so no placement rule), an
/// account key (so no bound on a URL's lifetime).
fn defaults() -> FileDefaults {
    FileDefaults {
        pool: None,
        job: None,
        max_wall_clock: Duration::from_secs(3600),
        max_queue_time: Duration::from_secs(12 * 3600),
        max_retries: 2,
        max_delegated_lifetime: None,
    }
}

/// The parser's verdict: `Ok` or its problems.
fn parse(text: &str) -> Result<(), Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workloads.toml");
    std::fs::write(&path, text).unwrap();
    load(&path, &defaults()).map(|_| ())
}

/// Both verdicts, checked against what is expected of `text`.
fn check(schema: &jsonschema::Validator, what: &str, text: &str, valid: bool) {
    let json = to_json(text);
    let schema_errors: Vec<String> = schema.iter_errors(&json).map(|e| e.to_string()).collect();
    let parsed = parse(text);
    assert_eq!(
        schema_errors.is_empty(),
        valid,
        "{what}: the schema says {schema_errors:?}\n{text}"
    );
    assert_eq!(
        parsed.is_ok(),
        valid,
        "{what}: the parser says {parsed:?}\n{text}"
    );
}

/// A file of one workload of one's own: `version = 1` and `[[workload]]` with these lines.
fn own(lines: &str) -> String {
    format!(
        "version = 1\n[[workload]]\nname = \"thumbs\"\nimage = \"r.io/thumbs:1\"\ncommand = \"/thumbs\"\n{lines}\n"
    )
}

/// A file of one workload with exactly these lines.
fn one(lines: &str) -> String {
    format!("version = 1\n[[workload]]\n{lines}\n")
}

#[test]
fn the_sample_is_valid_and_names_the_schema_for_editors() {
    let schema = schema();
    let path = repo("samples/checksum/workloads.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    check(&schema, "samples/checksum/workloads.toml", &text, true);
    let directive = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#:schema "));
    let target = path
        .parent()
        .unwrap()
        .join(directive.expect("a #:schema directive first"));
    assert_eq!(
        target.canonicalize().unwrap(),
        repo("docs/workloads.schema.json").canonicalize().unwrap(),
        "the directive is relative to the file"
    );
}

#[test]
fn every_toml_example_of_the_documentation_is_valid() {
    let schema = schema();
    let doc = std::fs::read_to_string(repo("docs/workloads.md")).unwrap();
    let mut examples = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```toml" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        examples += 1;
        check(
            &schema,
            &format!("docs/workloads.md example {examples}"),
            &block.join("\n"),
            true,
        );
    }
    assert!(
        examples >= 2,
        "the documentation's TOML examples were not found"
    );
}

#[test]
fn valid_documents() {
    let schema = schema();
    let every_key = r#"version = 1
[[workload]]
name = "checksum"
prefix = "images/"
suffix = ".png"
content_type = "image/*"
ignore = false
image = "myregistry.azurecr.io/checksum:1.2"
command = "/bin/busybox sha256sum input/data"
result = { suffix = ".sha256.txt", content_type = "text/plain" }
env = { LEVEL = "9", _PRIVATE = "x", level2 = "" }
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
image = "r.io/wordcount:2"
pool = "other"
job = "words"
max_wall_clock = "P1DT2H3M4S"
max_retries = -1
retention = "P180D"
slots = 256
"#;
    let cases = [
        ("every key", every_key.to_string()),
        ("the least a workload of one's own needs", own("")),
        (
            "inline tables",
            "version = 1\nworkload = [{ name = \"a\", image = \"i\", command = \"c\" }, { name = \"wordcount\" }]\n".into(),
        ),
        ("files", own("files = \"out/**\"")),
        ("files with dotted parts", own("files = \"out/.hidden/...keep/*.png\"")),
        ("an empty result table", own("result = {}")),
        ("a result's suffix alone", own("result = { suffix = \".x\" }")),
        ("input by URL", own("input = \"url\"")),
        ("a quoted command", one("name = \"sh\"\nimage = \"i\"\ncommand = \"/bin/sh -c 'echo hi'\"")),
        ("a 24-character name", one(&format!("name = \"{}\"\nignore = true", "a".repeat(24)))),
        ("hyphens and digits", one("name = \"thumb-2x\"\nignore = true")),
        ("content type with spaces and case", own("content_type = \" IMAGE/PNG \"")),
        ("content type with a suffix", own("content_type = \"application/vnd.api+json\"")),
        ("durations", own("max_wall_clock = \"PT1M\"\nmax_queue_time = \"PT90S\"\nretention = \"PT1H30M\"")),
        ("retries and slots at their bounds", own("max_retries = 100\nslots = 256")),
        ("an ignoring word count", one("name = \"wordcount\"\nignore = true\nprefix = \"x/\"")),
        ("the word count alone", one("name = \"wordcount\"")),
    ];
    for (what, text) in cases {
        check(&schema, what, &text, true);
    }
}

#[test]
fn invalid_documents() {
    let schema = schema();
    let mut cases: Vec<(String, String)> = [
        (
            "an unknown top-level key",
            format!("colour = \"blue\"\n{}", own("")),
        ),
        ("an unknown workload key", own("flavour = \"x\"")),
        ("no version", own("").replace("version = 1\n", "")),
        ("version 2", own("").replace("version = 1", "version = 2")),
        (
            "version as a string",
            own("").replace("version = 1", "version = \"1\""),
        ),
        ("no workload", "version = 1\n".into()),
        (
            "an empty list of workloads",
            "version = 1\nworkload = []\n".into(),
        ),
        (
            "workload as one table",
            "version = 1\n[workload]\nname = \"a\"\nimage = \"i\"\ncommand = \"c\"\n".into(),
        ),
        (
            "a workload that is not a table",
            "version = 1\nworkload = [1]\n".into(),
        ),
        ("no name", one("image = \"i\"\ncommand = \"c\"")),
        (
            "a name with capitals",
            one("name = \"Bad_Name\"\nignore = true"),
        ),
        (
            "a name starting with a digit",
            one("name = \"2x\"\nignore = true"),
        ),
        (
            "a 25-character name",
            one(&format!("name = \"{}\"\nignore = true", "a".repeat(25))),
        ),
        ("a name that is a number", one("name = 3\nignore = true")),
        ("no image", one("name = \"a\"\ncommand = \"c\"")),
        ("no command", one("name = \"a\"\nimage = \"i\"")),
        (
            "an image with a space",
            own("").replace("\"r.io/thumbs:1\"", "\"r.io/thumbs 1\""),
        ),
        (
            "an empty image",
            own("").replace("\"r.io/thumbs:1\"", "\"\""),
        ),
        ("an empty command", own("").replace("\"/thumbs\"", "\"\"")),
        ("a blank command", own("").replace("\"/thumbs\"", "\"   \"")),
        (
            "result and files",
            own("result = { suffix = \".x\" }\nfiles = \"out/**\""),
        ),
        ("result as a string", own("result = \".x\"")),
        ("an unknown result key", own("result = { format = \"x\" }")),
        ("an empty result suffix", own("result = { suffix = \"\" }")),
        (
            "a result content type without a slash",
            own("result = { content_type = \"plain\" }"),
        ),
        (
            "a result content type with a line break",
            own("result = { content_type = \"text/plain\\n\" }"),
        ),
        ("absolute files", own("files = \"/out/**\"")),
        (
            "files leaving the directory",
            own("files = \"out/../../x\""),
        ),
        ("files with a dot part", own("files = \"./out/**\"")),
        ("files with an empty part", own("files = \"out//x\"")),
        ("files ending with a slash", own("files = \"out/\"")),
        ("files with a drive", own("files = \"c:out\"")),
        ("empty files", own("files = \"\"")),
        (
            "a reserved variable",
            own("env = { BLOB2BATCH_ETAG = \"x\" }"),
        ),
        (
            "a Batch variable",
            own("env = { AZ_BATCH_NODE_ID = \"x\" }"),
        ),
        (
            "a variable name starting with a digit",
            own("env = { \"1X\" = \"y\" }"),
        ),
        (
            "a variable name with a hyphen",
            own("env = { \"A-B\" = \"y\" }"),
        ),
        ("a variable that is not a string", own("env = { OK = 3 }")),
        ("env as a list", own("env = [\"A=1\"]")),
        ("input stream", own("input = \"stream\"")),
        ("a pool with a dot", own("pool = \"a.b\"")),
        (
            "a 65-character job",
            own(&format!("job = \"{}\"", "j".repeat(65))),
        ),
        ("an empty pool", own("pool = \"\"")),
        ("a duration in words", own("max_wall_clock = \"an hour\"")),
        ("P alone", own("max_queue_time = \"P\"")),
        ("PT alone", own("max_queue_time = \"PT\"")),
        ("a day and an empty time", own("retention = \"P1DT\"")),
        ("hours without T", own("retention = \"P1H\"")),
        ("units out of order", own("max_wall_clock = \"PT1M1H\"")),
        ("a unit twice", own("max_wall_clock = \"PT1H1H\"")),
        ("weeks", own("retention = \"P1W\"")),
        (
            "a fraction of a second",
            own("max_wall_clock = \"PT90.5S\""),
        ),
        ("a duration as a number", own("max_wall_clock = 60")),
        ("101 retries", own("max_retries = 101")),
        ("-2 retries", own("max_retries = -2")),
        ("0 slots", own("slots = 0")),
        ("257 slots", own("slots = 257")),
        ("slots as a string", own("slots = \"1\"")),
        (
            "an ignoring route with an image",
            one("name = \"a\"\nignore = true\nimage = \"i\""),
        ),
        (
            "an ignoring route with a pool",
            one("name = \"a\"\nignore = true\npool = \"p\""),
        ),
        (
            "an ignoring route with slots",
            one("name = \"a\"\nignore = true\nslots = 1"),
        ),
        ("ignore as a string", one("name = \"a\"\nignore = \"yes\"")),
        (
            "the word count with a command",
            one("name = \"wordcount\"\ncommand = \"/wordcount -x\""),
        ),
        (
            "the word count with a result",
            one("name = \"wordcount\"\nresult = { suffix = \".x\" }"),
        ),
        (
            "the word count with files",
            one("name = \"wordcount\"\nfiles = \"out/**\""),
        ),
        (
            "the word count with env",
            one("name = \"wordcount\"\nenv = { A = \"1\" }"),
        ),
        (
            "the word count with input",
            one("name = \"wordcount\"\ninput = \"file\""),
        ),
        (
            "a content type without a subtype",
            own("content_type = \"text\""),
        ),
        ("any content type", own("content_type = \"*/*\"")),
        ("an empty subtype", own("content_type = \"text/\"")),
        ("two slashes", own("content_type = \"a/b/c\"")),
        (
            "a space in a content type",
            own("content_type = \"text/pl ain\""),
        ),
        ("an empty prefix", own("prefix = \"\"")),
        ("an empty suffix", own("suffix = \"\"")),
        ("a prefix that is not a string", own("prefix = 1")),
    ]
    .into_iter()
    .map(|(what, text)| (what.to_string(), text))
    .collect();
    for reserved in RESERVED_NAMES {
        cases.push((
            format!("the reserved name {reserved}"),
            one(&format!("name = \"{reserved}\"\nignore = true")),
        ));
    }
    for (what, text) in cases {
        check(&schema, &what, &text, false);
    }
}
