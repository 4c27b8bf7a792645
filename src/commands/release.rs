//! `mfplug release [DIR] [-o OUTDIR] [--level N]`, and the report of every command that
//! writes a `.plugin` file (`convert`, `repackage`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::archive::{self, pack::Packed};
use crate::{release, ui};

pub(crate) fn run(
    dir: Option<PathBuf>,
    output: Option<PathBuf>,
    level: Option<i32>,
    ctx: &Ctx,
) -> Result<ExitCode> {
    let opts = release::Options {
        dir: crate::plugin::find_dir(dir)?,
        output,
        level,
    };
    let bar = packing_bar(ctx);
    let packed = release::release(&opts, &ctx.settings(), progress(&bar))?;
    drop(bar);
    render_packed(&packed, ctx)
}

/// The bar of a command that packs, unless the output is JSON.
pub(crate) fn packing_bar(ctx: &Ctx) -> Option<ui::Bar> {
    (!ctx.json).then(|| ui::Bar::new("Packing", None))
}

/// The bar as the stage's progress, or none.
pub(crate) fn progress(bar: &Option<ui::Bar>) -> &dyn ui::Progress {
    bar.as_ref().map_or(&ui::NoProgress, |bar| bar as _)
}

#[derive(Serialize)]
struct PackedReport<'a> {
    path: &'a Path,
    name: &'a str,
    version: &'a str,
    release: &'a str,
    files: u64,
    size: u64,
    file_size: u64,
    plugin_hash: &'a str,
}

/// What a written `.plugin` file is: the JSON report, or a status line and the file's path,
/// size and hash on stdout.
pub(crate) fn render_packed(packed: &Packed, ctx: &Ctx) -> Result<ExitCode> {
    let meta = &packed.meta;
    if ctx.json {
        super::out_json(&PackedReport {
            path: &packed.path,
            name: &meta.name,
            version: &meta.version,
            release: &meta.release,
            files: meta.files,
            size: meta.size,
            file_size: packed.file_size,
            plugin_hash: &meta.plugin_hash,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    ui::status(
        "Released",
        format!(
            "plugin `{}` {}-{} ({} files, {} unpacked)",
            meta.name,
            meta.version,
            meta.release,
            meta.files,
            archive::human_size(meta.size)
        ),
    );
    ui::out(format!(
        "{}\nsize: {} ({} bytes)\nplugin hash: {}",
        packed.path.display(),
        archive::human_size(packed.file_size),
        packed.file_size,
        meta.plugin_hash
    ))?;
    Ok(ExitCode::SUCCESS)
}
