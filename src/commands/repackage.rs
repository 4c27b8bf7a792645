//! `mfplug repackage NAME [-o OUTDIR]`: the installed plugin, under its installed name, with
//! the effective configuration merged into its `config.ini`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::release::{packing_bar, progress, render_packed};
use super::Ctx;
use crate::plugin::PluginName;

pub(crate) fn run(name: &PluginName, output: Option<PathBuf>, ctx: &Ctx) -> Result<ExitCode> {
    let bar = packing_bar(ctx);
    let packed =
        crate::home::ops::repackage(&ctx.home, &ctx.settings(), name, output, progress(&bar))?;
    drop(bar);
    render_packed(&packed, ctx)
}
