//! `mfplug wrapper NAME CMD [ARGS]...`: a command run in an installed plugin's env, in place
//! of mfplug; 127 when it is not found, 126 when it cannot be run, as shells do.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Ctx;
use crate::config::Settings;
use crate::env::{self, ExecError};
use crate::plugin::PluginName;
use crate::ui;

pub(crate) fn run(name: &PluginName, command: &[String], ctx: &Ctx) -> Result<ExitCode> {
    let dir = crate::home::installed_dir(&ctx.home, name)?;
    let (program, args) = command.split_first().context("no command given")?;
    exec(&dir, &ctx.settings(), program, args)
}

/// Execs `program` in the plugin env of `dir`; when that fails, says why and gives the
/// shell's exit code for it.
pub(crate) fn exec(
    dir: &Path,
    settings: &Settings,
    program: &str,
    args: &[String],
) -> Result<ExitCode> {
    let deps = crate::home::layers::dependencies(dir, settings)?;
    let error = env::exec_in(dir, settings, &deps, program, args)?;
    let (hint, code) = match &error {
        ExecError::NotFound { .. } => (format!("`{program}` is not on the plugin env's PATH"), 127),
        ExecError::NotRunnable { .. } => ("check that it is executable".to_owned(), 126),
    };
    ui::print_error(&ui::error_with_hint(error.to_string(), hint));
    Ok(ExitCode::from(code))
}
