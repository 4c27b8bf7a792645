//! `mfplug build [DIR] [--offline] [--compile]`: every builder of the plugin, in order.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::build::{self, Kind};

#[derive(Serialize)]
struct BuildReport<'a> {
    dir: &'a Path,
    kinds: Vec<&'static str>,
    python: Option<PythonReport<'a>>,
}

#[derive(Serialize)]
struct PythonReport<'a> {
    fresh: bool,
    packages: usize,
    installed: &'a [String],
    removed: &'a [String],
    elapsed_ms: u128,
}

/// The name of a kind in reports.
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Python => "python",
        Kind::Node => "node",
        Kind::Rust => "rust",
    }
}

pub(crate) fn run(
    dir: Option<PathBuf>,
    offline: bool,
    compile: bool,
    index: crate::index::config::Flags,
    ctx: &Ctx,
) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(dir)?;
    let opts = build::Options {
        dir,
        flags: build::Flags {
            offline,
            compile,
            index,
        },
    };
    let bar = crate::ui::Bar::when_counted("Fetching");
    let report = build::build(&opts, &ctx.settings(), &bar)?;
    drop(bar);
    let dir = &opts.dir;
    if ctx.json {
        super::out_json(&BuildReport {
            dir,
            kinds: report.kinds.iter().copied().map(kind_name).collect(),
            python: report.python.as_ref().map(|p| PythonReport {
                fresh: p.built.noop,
                packages: p.built.packages,
                installed: &p.built.installed,
                removed: &p.built.removed,
                elapsed_ms: p.elapsed.as_millis(),
            }),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    build::say_built(dir, &report);
    Ok(ExitCode::SUCCESS)
}
