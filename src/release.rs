//! `mfplug release`, `mfplug convert`, and `info`/`verify` of a `.plugin` file: the commands
//! around the `archive` format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::archive::pack::{self, MetaBase, PackOptions};
use crate::archive::unpack::{self, ArchiveError, Limits};
use crate::archive::{self, legacy, FileFormat, FileInfo};
use crate::config::{self, Settings};
use crate::ui;

/// The compression level when `--level` is not given (zstd's own default).
pub(crate) const DEFAULT_LEVEL: i32 = 3;

#[derive(Serialize)]
struct ReleaseReport<'a> {
    path: &'a Path,
    name: &'a str,
    version: &'a str,
    release: &'a str,
    files: u64,
    size: u64,
    file_size: u64,
    plugin_hash: &'a str,
}

/// `mfplug release [DIR] [-o OUTDIR] [--level N]`.
pub(crate) fn release(
    dir: Option<PathBuf>,
    output: Option<PathBuf>,
    level: Option<i32>,
    settings: &Settings,
    json: bool,
) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(dir)?;
    let level = level.unwrap_or(DEFAULT_LEVEL);
    if !(1..=22).contains(&level) {
        return Err(ui::error_with_hint(
            format!("invalid compression level {level}"),
            "use a level from 1 (fast) to 22 (small); the default is 3",
        ));
    }
    let config = match config::load(&dir, settings) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems {
                ui::print_problem(problem);
            }
            return Err(ui::error_with_hint(
                format!(
                    "cannot release `{}`: its configuration has errors",
                    dir.display()
                ),
                format!(
                    "fix them first: `mfplug check {}` lists them",
                    dir.display()
                ),
            ));
        }
    };
    let base = MetaBase {
        name: config.name().to_owned(),
        version: config.version().to_owned(),
        release: config.release().to_owned(),
        summary: config
            .get("general", "_summary")
            .unwrap_or_default()
            .to_owned(),
        license: config
            .get("general", "_license")
            .unwrap_or_default()
            .to_owned(),
        maintainer: config
            .get("general", "_maintainer")
            .unwrap_or_default()
            .to_owned(),
        vendor: config
            .get("general", "_vendor")
            .unwrap_or_default()
            .to_owned(),
        url: config.get("general", "_url").unwrap_or_default().to_owned(),
    };
    let out_dir = output.unwrap_or_else(|| dir.clone());
    fs_err::create_dir_all(&out_dir)?;
    let name = archive::file_name(&base.name, &base.version, &base.release);
    let out = if out_dir == Path::new(".") {
        PathBuf::from(name)
    } else {
        out_dir.join(name)
    };
    let sources = pack::walk(&dir, std::slice::from_ref(&out), true)?;
    let epoch = archive::source_date_epoch().map_err(|e| {
        ui::error_with_hint(
            e,
            "unset it, or give the time of the last change, e.g. `git log -1 --format=%ct`",
        )
    })?;
    let bar = (!json).then(|| ui::Bar::new("Packing", None));
    let packed = pack::pack(
        sources,
        base,
        &out,
        &PackOptions {
            level,
            epoch,
            progress: bar
                .as_ref()
                .map_or(&ui::NoProgress, |bar| bar as &dyn ui::Progress),
        },
    )
    .with_context(|| format!("failed to release `{}`", dir.display()))?;
    report_packed(&packed, json)
}

pub(crate) fn report_packed(packed: &pack::Packed, json: bool) -> Result<ExitCode> {
    let meta = &packed.meta;
    if json {
        ui::out_json(&ReleaseReport {
            path: &packed.path,
            name: &meta.name,
            version: &meta.version,
            release: &meta.release,
            files: meta.files,
            size: meta.size,
            file_size: packed.file_size,
            plugin_hash: &meta.plugin_hash,
        })?;
    } else {
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
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `target` names a `.plugin` file rather than an installed plugin.
pub(crate) fn is_file_target(target: &str) -> bool {
    let path = Path::new(target);
    path.is_file() || target.ends_with(".plugin") || target.contains('/')
}

fn format_of(path: &Path) -> Result<FileFormat> {
    match archive::sniff(path) {
        Ok(Some(format)) => Ok(format),
        Ok(None) => Err(ui::error_with_hint(
            format!("`{}` is not a `.plugin` file", path.display()),
            "a `.plugin` file is made by `mfplug release` (zstd) or by MetWork (tar.gz)",
        )),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))),
    }
}

/// A refused file: what is wrong (with its causes), and what to do about it.
fn refused(path: &Path, e: ArchiveError) -> anyhow::Error {
    let hint = match &e {
        ArchiveError::Io(_) | ArchiveError::Write(..) => None,
        ArchiveError::Corrupt(_) | ArchiveError::BadTar { .. } => Some(
            "the file is damaged or cut short: copy it again from where it was released",
        ),
        _ => Some(
            "the file is not what `mfplug release` writes, or was altered since: do not install it; get it again from its source, or release it again from the plugin dir",
        ),
    };
    let Some(hint) = hint else {
        return anyhow::Error::new(e).context(format!("`{}` is refused", path.display()));
    };
    // The chain's text as the message (the hint travels with it), then the path.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ui::error_with_hint(message, hint).context(format!("`{}` is refused", path.display()))
}

/// Reads what `info` shows of a `.plugin` file, of either format.
pub(crate) fn file_info(path: &Path) -> Result<FileInfo> {
    let file_size = fs_err::metadata(path)?.len();
    let limits = Limits::default();
    Ok(match format_of(path)? {
        FileFormat::Format1 => {
            let head = unpack::read_head(path, &limits).map_err(|e| refused(path, e))?;
            let m = head.meta;
            FileInfo {
                path: path.to_path_buf(),
                format: m.format.to_string(),
                name: m.name,
                version: m.version,
                release: m.release,
                summary: m.summary,
                license: m.license,
                maintainer: m.maintainer,
                vendor: m.vendor,
                url: m.url,
                build_time: Some(m.build_time),
                tool: Some(m.tool),
                platform: Some(m.platform),
                files: head.record.entries.len() as u64,
                size: head.record.entries.iter().map(|e| e.size).sum(),
                file_size,
                plugin_hash: m.plugin_hash,
                external_symlinks: m.external_symlinks,
            }
        }
        FileFormat::Legacy => {
            let l = legacy::read(path, &limits, None).map_err(|e| refused(path, e))?;
            FileInfo {
                path: path.to_path_buf(),
                format: "legacy".into(),
                name: l.name,
                version: l.version,
                release: l.release,
                summary: l.summary,
                license: l.license,
                maintainer: l.maintainer,
                vendor: l.vendor,
                url: l.url,
                build_time: None,
                tool: None,
                platform: None,
                files: l.files,
                size: l.size,
                file_size,
                plugin_hash: if l.hash.is_empty() {
                    String::new()
                } else {
                    format!("metwork:{}", l.hash)
                },
                external_symlinks: l.external_symlinks,
            }
        }
    })
}

/// `mfplug info FILE.plugin`.
pub(crate) fn info(path: &Path, json: bool) -> Result<ExitCode> {
    let info = file_info(path)?;
    if json {
        ui::out_json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = vec![
        format!("name: {}", info.name),
        format!("version: {}", info.version),
        format!("release: {}", info.release),
    ];
    for (key, value) in [
        ("summary", &info.summary),
        ("license", &info.license),
        ("maintainer", &info.maintainer),
        ("vendor", &info.vendor),
        ("url", &info.url),
    ] {
        if !value.is_empty() {
            lines.push(format!("{key}: {value}"));
        }
    }
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
    ui::out(lines.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    path: &'a Path,
    ok: bool,
    format: &'a str,
    name: Option<String>,
    files: Option<u64>,
    plugin_hash: Option<String>,
    error: Option<String>,
}

/// `mfplug verify FILE.plugin`: every member read and checked; exit 1 on any mismatch.
pub(crate) fn verify(path: &Path, json: bool) -> Result<ExitCode> {
    let format = format_of(path)?;
    let limits = Limits::default();
    let result: Result<(String, u64, String), ArchiveError> = match format {
        FileFormat::Format1 => unpack::read(path, &limits, None).map(|v| {
            (
                v.meta.name,
                v.record.entries.len() as u64,
                v.meta.plugin_hash,
            )
        }),
        FileFormat::Legacy => {
            legacy::read(path, &limits, None).map(|l| (l.name, l.files, String::new()))
        }
    };
    let format_name = match format {
        FileFormat::Format1 => "1",
        FileFormat::Legacy => "legacy",
    };
    match result {
        Ok((name, files, hash)) => {
            if json {
                ui::out_json(&VerifyReport {
                    path,
                    ok: true,
                    format: format_name,
                    name: Some(name),
                    files: Some(files),
                    plugin_hash: Some(hash),
                    error: None,
                })?;
            } else {
                let what = if format == FileFormat::Legacy {
                    "every listed file is present (a legacy file has no content hashes)".to_owned()
                } else {
                    format!("{files} files match RECORD, RECORD matches {hash}")
                };
                ui::status(
                    "Verified",
                    format!("`{}`: plugin `{name}`, {what}", path.display()),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let error = refused(path, e);
            if json {
                ui::out_json(&VerifyReport {
                    path,
                    ok: false,
                    format: format_name,
                    name: None,
                    files: None,
                    plugin_hash: None,
                    error: Some(format!("{error:#}")),
                })?;
            } else {
                ui::print_error(&error);
            }
            Ok(ExitCode::from(crate::cli::EXIT_FAILURE))
        }
    }
}

/// `mfplug convert OLD.plugin [-o OUTDIR]`: a legacy MetWork file rewritten as format 1.
pub(crate) fn convert(path: &Path, output: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    match format_of(path)? {
        FileFormat::Legacy => {}
        FileFormat::Format1 => {
            return Err(ui::error_with_hint(
                format!("`{}` is already a format-1 `.plugin` file", path.display()),
                "`mfplug convert` rewrites legacy MetWork files only",
            ))
        }
    }
    let out_dir = output.unwrap_or_else(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let bar = (!json).then(|| ui::Bar::new("Packing", None));
    let packed = convert_core(
        path,
        &out_dir,
        bar.as_ref()
            .map_or(&ui::NoProgress, |bar| bar as &dyn ui::Progress),
    )
    .with_context(|| format!("failed to convert `{}`", path.display()))?;
    report_packed(&packed, json)
}

/// Converts a legacy file into a format-1 file in `out_dir`; gives its path (install uses it).
pub(crate) fn convert_to(path: &Path, out_dir: &Path) -> Result<PathBuf> {
    Ok(convert_core(path, out_dir, &ui::NoProgress)?.path)
}

fn convert_core(path: &Path, out_dir: &Path, progress: &dyn ui::Progress) -> Result<pack::Packed> {
    // The whole file is checked (its names included) before anything is written.
    legacy::read(path, &Limits::default(), None).map_err(|e| refused(path, e))?;
    fs_err::create_dir_all(out_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".mfplug-convert-")
        .tempdir_in(out_dir)
        .with_context(|| format!("cannot create a temp dir in `{}`", out_dir.display()))?;
    let tree = staging.path().join("plugin");
    let info = legacy::read(path, &Limits::default(), Some(&tree)).map_err(|e| refused(path, e))?;
    if info.version.is_empty() {
        return Err(ui::error_with_hint(
            format!("`{}` states no version", path.display()),
            "a MetWork file has it in `.metadata.json` or in `config.ini` (`[general] _version`)",
        ));
    }
    let out = out_dir.join(archive::file_name(&info.name, &info.version, &info.release));
    let sources = pack::walk(&tree, &[], false)?;
    let epoch = archive::source_date_epoch().map_err(|e| ui::error_with_hint(e, "unset it"))?;
    pack::pack(
        sources,
        MetaBase {
            name: info.name,
            version: info.version,
            release: info.release,
            summary: info.summary,
            license: info.license,
            maintainer: info.maintainer,
            vendor: info.vendor,
            url: info.url,
        },
        &out,
        &PackOptions {
            level: DEFAULT_LEVEL,
            epoch,
            progress,
        },
    )
}
