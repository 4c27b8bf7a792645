//! `mfplug clean [DIR] [--super]`: generated files only, each one said.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::ui;

#[derive(Serialize)]
struct CleanReport<'a> {
    dir: &'a Path,
    removed: &'a [PathBuf],
}

pub(crate) fn run(dir: Option<PathBuf>, super_clean: bool, ctx: &Ctx) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(dir)?;
    let removed = crate::build::clean(&dir, super_clean)?;
    if ctx.json {
        super::out_json(&CleanReport {
            dir: &dir,
            removed: &removed,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    for path in &removed {
        ui::status("Removed", format!("`{}`", path.display()));
    }
    if removed.is_empty() {
        ui::status("Clean", format!("`{}`: nothing to remove", dir.display()));
    }
    Ok(ExitCode::SUCCESS)
}
