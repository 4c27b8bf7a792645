//! `mfplug release [DIR] [-o OUTDIR] [--level N]`, and the report of every command that
//! writes a `.plugin` file (`convert`, `repackage`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::archive::{self, metwork, pack::Packed};
use crate::cli::ReleaseFormat;
use crate::{release, ui};

pub(crate) fn run(
    dir: Option<PathBuf>,
    output: Option<PathBuf>,
    level: Option<i32>,
    format: ReleaseFormat,
    ctx: &Ctx,
) -> Result<ExitCode> {
    let opts = release::Options {
        dir: crate::plugin::find_dir(dir)?,
        output,
        level,
    };
    if format == ReleaseFormat::Metwork {
        return render_metwork(&release::release_metwork(&opts, &ctx.settings())?, ctx);
    }
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

/// What a MetWork-format file is, with the same report as a format-1 one; its plugin hash is
/// MetWork's (`metwork:MD5`).
fn render_metwork(written: &metwork::Written, ctx: &Ctx) -> Result<ExitCode> {
    let m = &written.metadata;
    let report = PackedReport {
        path: &written.path,
        name: &written.name,
        version: &m.version,
        release: &m.release,
        files: written.files,
        size: written.size,
        file_size: written.file_size,
        plugin_hash: &written.plugin_hash,
    };
    render(&report, " in MetWork's format", ctx)
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
    let report = PackedReport {
        path: &packed.path,
        name: &meta.name,
        version: &meta.version,
        release: &meta.release,
        files: meta.files,
        size: meta.size,
        file_size: packed.file_size,
        plugin_hash: &meta.plugin_hash,
    };
    render(&report, "", ctx)
}

/// The report of a written file, as JSON or as a status line (`format`: how the file is
/// said, after its version) and the path, size and hash on stdout.
fn render(report: &PackedReport<'_>, format: &str, ctx: &Ctx) -> Result<ExitCode> {
    if ctx.json {
        super::out_json(report)?;
        return Ok(ExitCode::SUCCESS);
    }
    ui::status(
        "Released",
        format!(
            "plugin `{}` {}-{}{format} ({} files, {} unpacked)",
            report.name,
            report.version,
            report.release,
            report.files,
            archive::human_size(report.size)
        ),
    );
    ui::out(format!(
        "{}\nsize: {} ({} bytes)\nplugin hash: {}",
        report.path.display(),
        archive::human_size(report.file_size),
        report.file_size,
        report.plugin_hash
    ))?;
    Ok(ExitCode::SUCCESS)
}
