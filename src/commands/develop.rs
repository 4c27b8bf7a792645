//! `mfplug develop [DIR]`: devlink the plugin, run its daemons, restart them on changes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::develop;

/// The arguments of `develop`.
pub(crate) struct Flags {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) no_watch: bool,
    pub(crate) debounce: u64,
    pub(crate) force: bool,
    pub(crate) offline: bool,
    pub(crate) index: crate::index::config::Flags,
}

pub(crate) fn run(flags: Flags, ctx: &Ctx) -> Result<ExitCode> {
    develop::develop(
        &develop::Options {
            dir: flags.dir,
            no_watch: flags.no_watch,
            debounce: Duration::from_millis(flags.debounce),
            force: flags.force,
            build: crate::build::Flags {
                offline: flags.offline,
                compile: false,
                index: flags.index,
            },
        },
        &ctx.home,
        &ctx.settings(),
    )?;
    Ok(ExitCode::SUCCESS)
}
