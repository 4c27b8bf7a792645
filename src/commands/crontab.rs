//! `mfplug crontab [--apply]`: the merged crontab of the installed plugins, printed or
//! installed into the user's crontab between markers.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::home::ops;
use crate::ui;

pub(crate) fn run(apply: bool, ctx: &Ctx) -> Result<ExitCode> {
    let merged = ops::merged_crontab(&ctx.home, &ctx.settings())?;
    let jobs = merged
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    if apply {
        ops::apply_crontab(&merged)?;
    }
    if ctx.json {
        super::out_json(&serde_json::json!({
            "applied": apply,
            "jobs": jobs,
            "crontab": merged,
        }))?;
    } else if apply {
        ui::status(
            "Applied",
            "the plugins' jobs to your crontab (your own lines are kept)",
        );
    } else if !merged.is_empty() {
        ui::out(merged.trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}
