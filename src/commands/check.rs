//! `mfplug check [DIR]`: every problem of the plugin dir, exit 1 if any is an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::config::{self, PluginConfig, Problem, Severity};
use crate::ui;

#[derive(Serialize)]
struct CheckReport<'a> {
    dir: &'a Path,
    name: Option<&'a str>,
    version: Option<&'a str>,
    release: Option<&'a str>,
    ok: bool,
    errors: usize,
    warnings: usize,
    problems: &'a [Problem],
}

pub(crate) fn run(dir: Option<PathBuf>, ctx: &Ctx) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(dir)?;
    let (config, mut problems) = match config::load(&dir, &ctx.settings()) {
        Ok(config) => {
            let warnings = config.warnings.clone();
            (Some(config), warnings)
        }
        Err(problems) => (None, problems),
    };
    problems.extend(config::unsupported(&dir));
    let count = |severity| problems.iter().filter(|p| p.severity == severity).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    if ctx.json {
        super::out_json(&CheckReport {
            dir: &dir,
            name: config.as_ref().map(PluginConfig::name),
            version: config.as_ref().map(PluginConfig::version),
            release: config.as_ref().map(PluginConfig::release),
            ok: errors == 0,
            errors,
            warnings,
            problems: &problems,
        })?;
    } else {
        for problem in &problems {
            ui::print_problem(problem);
        }
    }
    let Some(config) = config else {
        if !ctx.json {
            let plural = if errors == 1 { "" } else { "s" };
            ui::print_error(&anyhow::anyhow!(
                "found {errors} error{plural} in plugin dir `{}`",
                dir.display()
            ));
        }
        return Ok(super::exit(false));
    };
    ui::status(
        "Checked",
        format!(
            "plugin `{}` {}-{} in `{}`: no errors",
            config.name(),
            config.version(),
            config.release(),
            dir.display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}
