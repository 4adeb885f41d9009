//! `blob2batch workloads [--json]`: checks the workloads file with the rest of the settings and
//! prints the routing table: each route in order, what it takes and what runs, with every
//! default spelled out (image, command, result, input, job and pool, limits).

use std::io::Write;

use serde::Serialize;

use super::console::{json_line, line};
use crate::config::Settings;
use crate::duration::format_iso8601;
use crate::workloads::{Action, Input, Output, Program, Run, Workload};

/// One route as `--json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteLine {
    pub order: usize,
    pub name: String,
    pub rules: Rules,
    /// `run` or `ignore`.
    pub action: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunLine>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub content_type: Option<String>,
}

/// What a route runs, defaults applied.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLine {
    pub image: String,
    pub command: String,
    pub result: ResultLine,
    pub input: &'static str,
    pub env: std::collections::BTreeMap<String, String>,
    pub job: String,
    pub pool: String,
    pub max_wall_clock: String,
    pub max_queue_time: String,
    pub max_retries: i32,
    pub retention: String,
    pub slots: u32,
}

#[derive(Debug, Serialize)]
#[serde(
    tag = "style",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ResultLine {
    /// Standard output to `{blob}{suffix}`.
    Stdout {
        suffix: String,
        content_type: String,
    },
    /// The files matching `pattern`, under `{blob}.{name}/`.
    Files { pattern: String, folder: String },
}

/// Prints the table; the settings were checked when they were read.
pub fn run(settings: &Settings, json: bool, out: &mut impl Write) {
    let routes = settings.workloads.routes();
    if !json {
        let source = if settings.workloads.is_from_file() {
            "WORKLOADS_FILE"
        } else {
            "the built-in default (no WORKLOADS_FILE)"
        };
        line(
            out,
            &format!(
                "{} route(s), from {source}; the first whose rules all hold takes a blob:",
                routes.len()
            ),
        );
    }
    for (order, workload) in routes.iter().enumerate() {
        let route = route_line(settings, order + 1, workload);
        if json {
            json_line(out, &route);
        } else {
            text(out, &route);
        }
    }
    if !json {
        line(
            out,
            "a blob no route takes is ignored (\"no workload matches\")",
        );
    }
}

fn route_line(settings: &Settings, order: usize, workload: &Workload) -> RouteLine {
    let rules = Rules {
        prefix: workload.rules.prefix.clone(),
        suffix: workload.rules.suffix.clone(),
        content_type: workload
            .rules
            .content_type
            .as_ref()
            .map(ToString::to_string),
    };
    let run = match &workload.action {
        Action::Ignore => None,
        Action::Run(run) => Some(run_line(settings, &workload.name, run)),
    };
    RouteLine {
        order,
        name: workload.name.clone(),
        rules,
        action: if run.is_some() { "run" } else { "ignore" },
        run,
    }
}

fn run_line(settings: &Settings, name: &str, run: &Run) -> RunLine {
    let (image, command) = match &run.program {
        Program::WordCount { image } => (
            image.clone().unwrap_or_else(|| settings.task.image.clone()),
            crate::plan::COMMAND_LINE.to_string(),
        ),
        Program::Image { image, command } => (image.clone(), command.clone()),
    };
    let result = match &run.output {
        Output::Stdout {
            suffix,
            content_type,
        } => ResultLine::Stdout {
            suffix: suffix.clone(),
            content_type: content_type.clone(),
        },
        Output::Files { pattern } => ResultLine::Files {
            pattern: pattern.clone(),
            folder: format!("{{blob}}.{name}/"),
        },
    };
    let limits = settings.task.with_limits(&run.limits);
    let (default_job, default_pool) = match settings.batch() {
        Some(batch) => (batch.job_id.clone(), batch.pool_id.clone()),
        None => (
            crate::config::DEFAULT_JOB_ID.to_string(),
            crate::config::DEFAULT_POOL_ID.to_string(),
        ),
    };
    RunLine {
        image,
        command,
        result,
        input: match run.input {
            Input::File => "file",
            Input::Url => "url",
        },
        env: run.env.clone(),
        job: run.job.clone().unwrap_or(default_job),
        pool: run.pool.clone().unwrap_or(default_pool),
        max_wall_clock: format_iso8601(limits.max_wall_clock_time),
        max_queue_time: format_iso8601(limits.max_queue_time),
        max_retries: limits.max_retry_count,
        retention: format_iso8601(limits.retention_time),
        slots: run.slots.unwrap_or(1),
    }
}

fn text(out: &mut impl Write, route: &RouteLine) {
    let mut rules = Vec::new();
    if let Some(prefix) = &route.rules.prefix {
        rules.push(format!("prefix {prefix:?}"));
    }
    if let Some(suffix) = &route.rules.suffix {
        rules.push(format!("suffix {suffix:?}"));
    }
    if let Some(content_type) = &route.rules.content_type {
        rules.push(format!("content type {content_type}"));
    }
    let rules = if rules.is_empty() {
        "every blob".to_string()
    } else {
        rules.join(", ")
    };
    line(out, &format!("{}. {}: {rules}", route.order, route.name));
    let Some(run) = &route.run else {
        line(
            out,
            "     ignored (acknowledged, logged as ignored by this route)",
        );
        return;
    };
    line(out, &format!("     image    {}", run.image));
    line(out, &format!("     command  {}", run.command));
    let result = match &run.result {
        ResultLine::Stdout {
            suffix,
            content_type,
        } => {
            format!("standard output -> {{blob}}{suffix} ({content_type})")
        }
        ResultLine::Files { pattern, folder } => {
            format!("{pattern} -> {folder}..., standard output -> {folder}stdout.txt")
        }
    };
    line(out, &format!("     result   {result}"));
    let input = match run.input {
        "url" => "BLOB2BATCH_INPUT_URL (a read-only SAS URL; not fetched)",
        _ => "fetched to input/data",
    };
    line(out, &format!("     input    {input}"));
    if !run.env.is_empty() {
        let env: Vec<String> = run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line(out, &format!("     env      {}", env.join(" ")));
    }
    line(
        out,
        &format!("     job      {} on pool {}", run.job, run.pool),
    );
    line(
        out,
        &format!(
            "     limits   wall clock {}, queue {}, retries {}, retention {}, slots {}",
            run.max_wall_clock, run.max_queue_time, run.max_retries, run.retention, run.slots
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_in_camel_case_like_the_rest_of_the_line() {
        let stdout = ResultLine::Stdout {
            suffix: ".sha256.txt".into(),
            content_type: "text/plain".into(),
        };
        assert_eq!(
            serde_json::to_value(&stdout).unwrap(),
            serde_json::json!({"style": "stdout", "suffix": ".sha256.txt", "contentType": "text/plain"})
        );
        let files = ResultLine::Files {
            pattern: "out/**".into(),
            folder: "{blob}.thumbs/".into(),
        };
        assert_eq!(
            serde_json::to_value(&files).unwrap(),
            serde_json::json!({"style": "files", "pattern": "out/**", "folder": "{blob}.thumbs/"})
        );
    }
}
