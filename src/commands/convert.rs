//! `mfplug convert OLD.plugin [-o OUTDIR]`: a legacy MetWork file rewritten as format 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::release::{packing_bar, progress, render_packed};
use super::Ctx;

pub(crate) fn run(file: &Path, output: Option<PathBuf>, ctx: &Ctx) -> Result<ExitCode> {
    let bar = packing_bar(ctx);
    let packed = crate::release::convert(file, output, progress(&bar))?;
    drop(bar);
    render_packed(&packed, ctx)
}
