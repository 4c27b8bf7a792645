//! `mfplug verify FILE.plugin|NAME`: a file's members against its RECORD, or an installed
//! plugin's files against the RECORD it came with (like `rpm -V`); exit 1 on any mismatch.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::archive::FileFormat;
use crate::home::ops;
use crate::plugin::PluginName;
use crate::ui;

#[derive(Serialize)]
struct FileReport<'a> {
    path: &'a Path,
    ok: bool,
    format: &'a str,
    name: Option<&'a str>,
    files: Option<u64>,
    plugin_hash: Option<&'a str>,
    error: Option<String>,
}

pub(crate) fn file(path: &Path, ctx: &Ctx) -> Result<ExitCode> {
    let (format, result) = crate::release::verify(path)?;
    let format_name = match format {
        FileFormat::Format1 => "1",
        FileFormat::Legacy => "legacy",
    };
    if ctx.json {
        let good = result.as_ref().ok();
        super::out_json(&FileReport {
            path,
            ok: good.is_some(),
            format: format_name,
            name: good.map(|v| v.name.as_str()),
            files: good.map(|v| v.files),
            plugin_hash: good.map(|v| v.plugin_hash.as_str()),
            error: result.as_ref().err().map(|e| format!("{e:#}")),
        })?;
        return Ok(super::exit(good.is_some()));
    }
    match result {
        Ok(verified) => {
            let what = if format == FileFormat::Legacy {
                "every listed file is present (a legacy file has no content hashes)".to_owned()
            } else {
                format!(
                    "{} files match RECORD, RECORD matches {}",
                    verified.files, verified.plugin_hash
                )
            };
            ui::status(
                "Verified",
                format!("`{}`: plugin `{}`, {what}", path.display(), verified.name),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            ui::print_error(&error);
            Ok(super::exit(false))
        }
    }
}

pub(crate) fn installed(name: &PluginName, ctx: &Ctx) -> Result<ExitCode> {
    let report = ops::verify(&ctx.home, name)?;
    if ctx.json {
        super::out_json(&report)?;
        return Ok(super::exit(report.ok));
    }
    let mut lines = Vec::new();
    for (mark, list) in [
        ("modified", &report.modified),
        ("missing", &report.missing),
        ("added", &report.added),
    ] {
        for path in list {
            lines.push(format!("{mark:8}  {path}"));
        }
    }
    if !lines.is_empty() {
        ui::out(lines.join("\n"))?;
    }
    if report.ok {
        ui::status(
            "Verified",
            format!(
                "plugin `{name}`: {} entries match its RECORD",
                report.entries
            ),
        );
    } else {
        ui::print_error(&anyhow::anyhow!(
            "plugin `{name}` differs from its RECORD: {} modified, {} missing, {} added",
            report.modified.len(),
            report.missing.len(),
            report.added.len()
        ));
    }
    Ok(super::exit(report.ok))
}
