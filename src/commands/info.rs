//! `mfplug info FILE.plugin|NAME`: what a `.plugin` file holds, or what an installed plugin is.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::archive::{self, FileInfo, Kind, RecordEntry};
use crate::config::PluginConfig;
use crate::home::{ops, InstallRecord};
use crate::plugin::PluginName;
use crate::ui;

#[derive(Serialize)]
struct FileReport<'a> {
    #[serde(flatten)]
    info: &'a FileInfo,
    entries: Option<Vec<EntryReport<'a>>>,
}

/// One file of a RECORD, for `--files`.
#[derive(Serialize)]
struct EntryReport<'a> {
    path: &'a str,
    kind: &'static str,
    mode: Option<&'static str>,
    size: Option<u64>,
    sha256: Option<&'a str>,
}

/// The `--json` entries of a RECORD.
fn entry_reports(entries: &[RecordEntry]) -> Vec<EntryReport<'_>> {
    entries
        .iter()
        .map(|e| EntryReport {
            path: &e.path,
            kind: match e.kind {
                Kind::File { .. } => "file",
                Kind::Symlink => "symlink",
                Kind::Dir => "dir",
            },
            mode: matches!(e.kind, Kind::File { .. }).then(|| e.kind.as_str()),
            size: (e.kind != Kind::Dir).then_some(e.size),
            sha256: (!e.sha256.is_empty()).then_some(e.sha256.as_str()),
        })
        .collect()
}

/// The `files:` list of the text: mode (or `link`, `dir`), size, sha256 and path, aligned.
fn entry_lines(lines: &mut Vec<String>, entries: &[RecordEntry]) {
    lines.push("entries:".into());
    let width = entries
        .iter()
        .map(|e| e.size.to_string().len())
        .max()
        .unwrap_or(1);
    for e in entries {
        let hash = if e.sha256.is_empty() { "-" } else { &e.sha256 };
        lines.push(format!(
            "  {:4}  {:>width$}  {hash:64}  {}",
            e.kind.as_str(),
            e.size,
            e.path
        ));
    }
}

pub(crate) fn file(path: &Path, files: bool, ctx: &Ctx) -> Result<ExitCode> {
    let info = crate::release::file_info(path)?;
    let entries = files
        .then(|| crate::release::file_entries(path))
        .transpose()?;
    if ctx.json {
        super::out_json(&FileReport {
            info: &info,
            entries: entries.as_deref().map(entry_reports),
        })?;
    } else {
        let mut lines = file_lines(&info);
        if let Some(entries) = &entries {
            entry_lines(&mut lines, entries);
        }
        ui::out(lines.join("\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `key: value` lines that describe a `.plugin` file; empty fields are left out.
fn file_lines(info: &FileInfo) -> Vec<String> {
    let about = &info.about;
    let mut lines = vec![
        format!("name: {}", about.name),
        format!("version: {}", about.version),
        format!("release: {}", about.release),
    ];
    push_described(
        &mut lines,
        [
            ("summary", &about.summary),
            ("license", &about.license),
            ("maintainer", &about.maintainer),
            ("vendor", &about.vendor),
            ("url", &about.url),
        ],
    );
    lines.push(format!("format: {}", info.format));
    if let Some(time) = info.build_time {
        lines.push(format!(
            "build time: {} ({time} seconds since 1970)",
            ui::format_time(time)
        ));
    }
    if let Some(tool) = &info.tool {
        lines.push(format!("tool: {tool}"));
    }
    if let Some(platform) = &info.platform {
        lines.push(format!("platform: {platform}"));
    }
    lines.push(format!("files: {}", info.files));
    lines.push(format!(
        "size: {} unpacked, {} packed",
        archive::human_size(info.size),
        archive::human_size(info.file_size)
    ));
    if !info.plugin_hash.is_empty() {
        lines.push(format!("plugin hash: {}", info.plugin_hash));
    }
    for link in &info.external_symlinks {
        lines.push(format!("external symlink: {link}"));
    }
    lines
}

/// The describing fields (summary, license, ...) that are set, as `key: value` lines.
fn push_described(lines: &mut Vec<String>, fields: [(&str, &String); 5]) {
    for (key, value) in fields {
        if !value.is_empty() {
            lines.push(format!("{key}: {value}"));
        }
    }
}

pub(crate) fn installed(name: &PluginName, files: bool, ctx: &Ctx) -> Result<ExitCode> {
    let described = ops::describe(&ctx.home, &ctx.settings(), name)?;
    let entries = files
        .then(|| ops::installed_entries(&ctx.home, name))
        .transpose()?;
    let config = described.config.as_ref().ok();
    let entry = &described.entry;
    if ctx.json {
        let configuration = config.map(PluginConfig::values);
        super::out_json(&serde_json::json!({
            "name": name,
            "dir": entry.dir,
            "devlink": entry.devlink,
            "version": entry.version,
            "release": entry.release,
            "install": described.record,
            "config": configuration,
            "variables": config.map(|c| &c.variables),
            "config_error": described.config.as_ref().err().map(|e| {
                let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
                serde_json::json!({ "error": e.to_string(), "problems": problems })
            }),
            "entries": entries.as_deref().map(entry_reports),
        }))?;
    } else {
        let mut lines = vec![
            format!("name: {name}"),
            format!("dir: {}", entry.dir.display()),
            format!("version: {}-{}", entry.version, entry.release),
            format!("devlink: {}", if entry.devlink { "yes" } else { "no" }),
        ];
        if let Some(record) = &described.record {
            record_lines(&mut lines, record);
        }
        if let Some(config) = config {
            config_lines(&mut lines, config);
        }
        if let Some(entries) = &entries {
            entry_lines(&mut lines, entries);
        }
        ui::out(lines.join("\n"))?;
    }
    match described.config {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(invalid) => {
            if !ctx.json {
                ui::print_error(&anyhow::Error::new(invalid));
            }
            Ok(super::exit(false))
        }
    }
}

/// What install recorded: the file's description, where it came from and when.
fn record_lines(lines: &mut Vec<String>, record: &InstallRecord) {
    let m = &record.meta;
    push_described(
        lines,
        [
            ("summary", &m.summary),
            ("license", &m.license),
            ("maintainer", &m.maintainer),
            ("vendor", &m.vendor),
            ("url", &m.url),
        ],
    );
    lines.push(format!("files: {}", m.files));
    lines.push(format!("size: {}", archive::human_size(m.size)));
    lines.push(format!("plugin hash: {}", m.plugin_hash));
    lines.push(format!("platform: {}", m.platform));
    lines.push(format!("installed from: {}", record.source));
    lines.push(format!(
        "installed at: {}",
        ui::format_time(record.installed_at)
    ));
    if let Some(original) = &record.original_name {
        lines.push(format!("installed as a copy of: {original}"));
    }
    if record.provisioned {
        lines.push("provisioned: yes".into());
    }
}

/// The effective configuration, indented under its name.
fn config_lines(lines: &mut Vec<String>, config: &PluginConfig) {
    lines.push(format!("configuration ({}):", config.config_name));
    for (section, keys) in &config.sections {
        lines.push(format!("  [{section}]"));
        for (key, setting) in keys {
            lines.push(format!(
                "  {key} = {}",
                setting.value.replace('\n', "\n      ")
            ));
        }
    }
}
