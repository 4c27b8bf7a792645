//! `mfplug develop [DIR]`: devlink the plugin, run its daemons, restart them on changes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::develop;

pub(crate) fn run(
    dir: Option<PathBuf>,
    no_watch: bool,
    debounce_ms: u64,
    force: bool,
    offline: bool,
    index: crate::index::config::Flags,
    ctx: &Ctx,
) -> Result<ExitCode> {
    develop::develop(
        &develop::Options {
            dir,
            no_watch,
            debounce: Duration::from_millis(debounce_ms),
            force,
            build: crate::build::Flags {
                offline,
                compile: false,
                index,
            },
        },
        &ctx.home,
        &ctx.settings(),
    )?;
    Ok(ExitCode::SUCCESS)
}
