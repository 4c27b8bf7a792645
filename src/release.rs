//! `mfplug release`, `mfplug convert`, and `info`/`verify` of a `.plugin` file: the stages
//! around the `archive` format, each giving a report that `commands` renders.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::archive::pack::{self, MetaBase, PackOptions};
use crate::archive::unpack::{self, ArchiveError, Limits};
use crate::archive::{self, legacy, metwork, FileFormat, FileInfo};
use crate::config::{self, Settings};
use crate::ui;

/// The compression level when `--level` is not given (zstd's own default).
pub(crate) const DEFAULT_LEVEL: i32 = 3;

/// What goes wrong around a `.plugin` file, with where; `commands` says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseError {
    #[error("invalid compression level {0}")]
    Level(i32),
    /// `SOURCE_DATE_EPOCH` is not a time (`converting`: for `convert`, which keeps the
    /// legacy file's own times otherwise).
    #[error("{message}")]
    SourceDateEpoch { message: String, converting: bool },
    #[error("`{}` is not a `.plugin` file", .0.display())]
    NotAPluginFile(PathBuf),
    #[error("`{}` is a legacy MetWork file: it has no RECORD of its files", .0.display())]
    NoRecord(PathBuf),
    #[error("`{}` is already a format-1 `.plugin` file", .0.display())]
    AlreadyFormat1(PathBuf),
    #[error("`{}` states no version", .0.display())]
    NoVersion(PathBuf),
    /// The reader refused the file: `message` is its reason with the causes; `damaged` when
    /// the bytes are cut or corrupt rather than not what a release writes.
    #[error("{message}")]
    Refused { message: String, damaged: bool },
}

/// What `release` packs, and how.
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    /// Where the file goes (default: the plugin dir).
    pub(crate) output: Option<PathBuf>,
    /// The zstd level, 1 to 22 ([`DEFAULT_LEVEL`] when `None`).
    pub(crate) level: Option<i32>,
}

/// What both formats of `release` start from: the plugin's metadata, the output file (named
/// by `file_name` from the configuration and the metadata, in `-o` or the plugin dir) and the
/// plugin's files, the output left out.
struct Prepared {
    base: MetaBase,
    out: PathBuf,
    sources: pack::Walk,
}

/// Loads the configuration of the plugin dir and lays out the release of it.
fn prepare(
    opts: &Options,
    settings: &Settings,
    file_name: impl FnOnce(&config::PluginConfig, &MetaBase) -> String,
) -> Result<Prepared> {
    let dir = &opts.dir;
    let config = config::load_reported(dir, settings)
        .with_context(|| format!("cannot release `{}`", dir.display()))?;
    let base = about(&config, config.name());
    let out_dir = opts.output.clone().unwrap_or_else(|| dir.clone());
    fs_err::create_dir_all(&out_dir)?;
    let name = file_name(&config, &base);
    let out = if out_dir == Path::new(".") {
        PathBuf::from(name)
    } else {
        out_dir.join(name)
    };
    let sources = pack::walk(dir, std::slice::from_ref(&out), true)?;
    Ok(Prepared { base, out, sources })
}

/// `SOURCE_DATE_EPOCH`, or `None` when it is unset.
fn stated_epoch() -> Result<Option<u64>> {
    let set = std::env::var("SOURCE_DATE_EPOCH").is_ok_and(|v| !v.trim().is_empty());
    if !set {
        return Ok(None);
    }
    let epoch = archive::source_date_epoch().map_err(|e| ReleaseError::SourceDateEpoch {
        message: e,
        converting: false,
    })?;
    Ok(Some(epoch))
}

/// `mfplug release`: the plugin dir packed into a reproducible `NAME-VERSION-RELEASE.plugin`.
pub(crate) fn release(
    opts: &Options,
    settings: &Settings,
    progress: &dyn ui::Progress,
) -> Result<pack::Packed> {
    let level = opts.level.unwrap_or(DEFAULT_LEVEL);
    if !(1..=22).contains(&level) {
        return Err(ReleaseError::Level(level).into());
    }
    let Prepared { base, out, sources } = prepare(opts, settings, |_, base| {
        archive::file_name(&base.name, &base.version, &base.release)
    })?;
    let epoch = stated_epoch()?.unwrap_or(archive::DEFAULT_EPOCH);
    pack::pack(
        sources,
        base,
        &out,
        &PackOptions {
            level,
            epoch,
            progress,
        },
    )
    .with_context(|| format!("failed to release `{}`", opts.dir.display()))
}

/// `mfplug release --format metwork`: the plugin dir as MetWork's own
/// `NAME-VERSION-RELEASE.metwork.MODULE.plugin` (what mfplugin's `Plugin.build` writes), for
/// hosts that install with MetWork itself. Its `build_date` is `SOURCE_DATE_EPOCH` when set,
/// else now, as MetWork's; `build_host` is `MFHOSTNAME_FULL`, else the host name.
pub(crate) fn release_metwork(opts: &Options, settings: &Settings) -> Result<metwork::Written> {
    let Prepared { base, out, sources } = prepare(opts, settings, |config, base| {
        format!(
            "{}-{}-{}.metwork.{}.plugin",
            base.name,
            base.version,
            base.release,
            config.label.module.to_ascii_lowercase()
        )
    })?;
    let epoch = match stated_epoch()? {
        Some(epoch) => epoch,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    metwork::write(sources, &base, metwork::build_host(), epoch, &out)
        .with_context(|| format!("failed to release `{}`", opts.dir.display()))
}

fn format_of(path: &Path) -> Result<FileFormat> {
    match archive::sniff(path) {
        Ok(Some(format)) => Ok(format),
        Ok(None) => Err(ReleaseError::NotAPluginFile(path.to_path_buf()).into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))),
    }
}

/// A refused file: what is wrong (with its causes), and what to do about it.
fn refused(path: &Path, e: ArchiveError) -> anyhow::Error {
    let damaged = match &e {
        ArchiveError::Io(_) | ArchiveError::Write(..) => {
            return anyhow::Error::new(e).context(format!("`{}` is refused", path.display()))
        }
        ArchiveError::Corrupt(_) | ArchiveError::BadTar { .. } => true,
        _ => false,
    };
    // The chain's text as the message (the hint travels with it), then the path.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    anyhow::Error::new(ReleaseError::Refused { message, damaged })
        .context(format!("`{}` is refused", path.display()))
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
                about: MetaBase {
                    name: m.name,
                    version: m.version,
                    release: m.release,
                    summary: m.summary,
                    license: m.license,
                    maintainer: m.maintainer,
                    vendor: m.vendor,
                    url: m.url,
                },
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
                about: l.about(),
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

/// What a release of the plugin configured by `config` says of itself, under `name`: its
/// version and release, and the `[general]` describing keys.
pub(crate) fn about(config: &config::PluginConfig, name: &str) -> MetaBase {
    let get = |key: &str| config.get("general", key).unwrap_or_default().to_owned();
    MetaBase {
        name: name.to_owned(),
        version: config.version().to_owned(),
        release: config.release().to_owned(),
        summary: get("_summary"),
        license: get("_license"),
        maintainer: get("_maintainer"),
        vendor: get("_vendor"),
        url: get("_url"),
    }
}

/// The RECORD of a format-1 `.plugin` file (`info --files`), its head checked; a legacy
/// file has none.
pub(crate) fn file_entries(path: &Path) -> Result<Vec<archive::RecordEntry>> {
    match format_of(path)? {
        FileFormat::Format1 => {
            let head = unpack::read_head(path, &Limits::default()).map_err(|e| refused(path, e))?;
            Ok(head.record.entries)
        }
        FileFormat::Legacy => Err(ReleaseError::NoRecord(path.to_path_buf()).into()),
    }
}

/// What `verify` found in a good file: the plugin's name, its number of files and its hash
/// (empty for a legacy file, which has none).
pub(crate) struct Verified {
    pub(crate) name: String,
    pub(crate) files: u64,
    pub(crate) plugin_hash: String,
}

/// `mfplug verify FILE.plugin`: the file's format, then every member read and checked (a
/// refusal as an error with its hint). Only a file that is not a `.plugin` file at all is the
/// outer error.
pub(crate) fn verify(path: &Path) -> Result<(FileFormat, Result<Verified>)> {
    let format = format_of(path)?;
    let limits = Limits::default();
    let result = match format {
        FileFormat::Format1 => unpack::read(path, &limits, None).map(|v| Verified {
            name: v.meta.name,
            files: v.record.entries.len() as u64,
            plugin_hash: v.meta.plugin_hash,
        }),
        FileFormat::Legacy => legacy::read(path, &limits, None).map(|l| Verified {
            name: l.name,
            files: l.files,
            plugin_hash: String::new(),
        }),
    };
    Ok((format, result.map_err(|e| refused(path, e))))
}

/// `mfplug convert OLD.plugin [-o OUTDIR]`: a legacy MetWork file rewritten as format 1, in
/// `output` (default: beside it).
pub(crate) fn convert(
    path: &Path,
    output: Option<PathBuf>,
    progress: &dyn ui::Progress,
) -> Result<pack::Packed> {
    match format_of(path)? {
        FileFormat::Legacy => {}
        FileFormat::Format1 => return Err(ReleaseError::AlreadyFormat1(path.to_path_buf()).into()),
    }
    let out_dir = output.unwrap_or_else(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    convert_core(path, &out_dir, progress)
        .with_context(|| format!("failed to convert `{}`", path.display()))
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
        return Err(ReleaseError::NoVersion(path.to_path_buf()).into());
    }
    let out = out_dir.join(archive::file_name(&info.name, &info.version, &info.release));
    let sources = pack::walk(&tree, &[], false)?;
    let epoch = archive::source_date_epoch().map_err(|e| ReleaseError::SourceDateEpoch {
        message: e,
        converting: true,
    })?;
    pack::pack(
        sources,
        info.about(),
        &out,
        &PackOptions {
            level: DEFAULT_LEVEL,
            epoch,
            progress,
        },
    )
}
