//! The operator's commands on installed plugins: `install` (its report), `uninstall`, `list`,
//! `info NAME`, `verify NAME`, `repackage` and `crontab`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::install;
use super::{
    is_devlink, override_file, plugin_dir, stage_pause, HomeError, HomeLock, InstallRecord,
};
use crate::archive::pack::{self, PackOptions};
use crate::archive::{self, Kind, Record, RECORD_PATH};
use crate::config::{self, ini::Document, Settings};
use crate::fsx::sha256_hex;
use crate::plugin::{read_own_file, PluginName, CONFIG_FILE};
use crate::ui;

/// Whether the override file is still the one install wrote (not edited by the admin).
fn override_pristine(home: &Path, name: &PluginName, record: Option<&InstallRecord>) -> bool {
    let Ok(bytes) = fs_err::read(override_file(home, name)) else {
        return true;
    };
    let current = sha256_hex(&bytes);
    record
        .and_then(|r| r.override_sha256.as_deref())
        .is_some_and(|s| s == current)
}

/// What `uninstall` did.
pub(crate) enum Uninstalled {
    /// A devlink lost its link; the developer's files stay.
    Unlinked,
    /// The plugin was removed; `kept` is the admin's edited override file, kept.
    Removed { kept: Option<PathBuf> },
}

/// `mfplug uninstall NAME [--clean]`: a plugin out of the home, its `preuninstall` run first.
pub(crate) fn uninstall(
    home: &Path,
    settings: &Settings,
    name: &PluginName,
    clean: bool,
    wait: Duration,
) -> Result<Uninstalled> {
    let _lock = HomeLock::acquire(home, Some(wait))?;
    let dir = plugin_dir(home, name);
    if is_devlink(home, name) {
        // A devlink only loses its link: the developer's files stay.
        fs_err::remove_file(&dir)?;
        return Ok(Uninstalled::Unlinked);
    }
    if !dir.is_dir() {
        return Err(super::not_installed(home, name));
    }
    let record = InstallRecord::read(&dir).ok();
    install::run_hook(&dir, "preuninstall", settings).with_context(|| {
        format!("failed to uninstall `{name}`: its `preuninstall` failed; nothing was removed")
    })?;
    stage_pause("preuninstall");
    // One rename takes it out of `plugins/`; the copy in `.staging/` is then deleted (or
    // purged by the next writer after a crash).
    let trash = super::staging_path(home, name, "removed")?;
    fs_err::rename(&dir, &trash)?;
    let _ = crate::fsx::sync_dir(&home.join("plugins"));
    stage_pause("remove");
    fs_err::remove_dir_all(&trash)?;
    // What it made at run time: its temp dir and its daemons' logs.
    let _ = fs_err::remove_dir_all(home.join("tmp").join(name.as_str()));
    if let Ok(entries) = fs_err::read_dir(home.join("log")) {
        let prefix = format!("extra_{name}_");
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs_err::remove_file(entry.path());
            }
        }
    }
    let path = override_file(home, name);
    let new_copy = path.with_extension("ini.new");
    let _ = fs_err::remove_file(&new_copy);
    let mut kept = None;
    if path.exists() {
        if clean || override_pristine(home, name, record.as_ref()) {
            fs_err::remove_file(&path)?;
        } else {
            kept = Some(path);
        }
    }
    Ok(Uninstalled::Removed { kept })
}

/// One installed plugin, as `list` shows it.
#[derive(Serialize)]
pub(crate) struct ListEntry {
    pub(crate) name: PluginName,
    pub(crate) version: String,
    pub(crate) release: String,
    pub(crate) devlink: bool,
    pub(crate) hash: String,
    pub(crate) installed_at: Option<u64>,
    pub(crate) dir: PathBuf,
}

fn list_entry(home: &Path, name: &PluginName, settings: &Settings) -> ListEntry {
    let dir = plugin_dir(home, name);
    let devlink = is_devlink(home, name);
    match InstallRecord::read(&dir) {
        Ok(record) => ListEntry {
            name: name.clone(),
            version: record.meta.version,
            release: record.meta.release,
            devlink,
            hash: record.meta.plugin_hash,
            installed_at: Some(record.installed_at),
            dir,
        },
        Err(_) => {
            let (version, release) = config::load(&dir, settings)
                .map(|c| (c.version().to_owned(), c.release().to_owned()))
                .unwrap_or_default();
            ListEntry {
                name: name.clone(),
                version,
                release,
                devlink,
                hash: String::new(),
                installed_at: None,
                dir,
            }
        }
    }
}

/// `mfplug list`: every installed plugin, by name.
pub(crate) fn list(home: &Path, settings: &Settings) -> Result<Vec<ListEntry>> {
    Ok(super::installed_names(home)?
        .iter()
        .map(|name| list_entry(home, name, settings))
        .collect())
}

/// What `info NAME` shows of an installed plugin.
pub(crate) struct Description {
    pub(crate) entry: ListEntry,
    /// The record install wrote (none for a devlink).
    pub(crate) record: Option<InstallRecord>,
    /// The effective configuration, or why it does not load (a broken override file).
    pub(crate) config: Result<config::PluginConfig, config::Invalid>,
}

/// `mfplug info NAME`: an installed plugin's record and effective configuration.
pub(crate) fn describe(home: &Path, settings: &Settings, name: &PluginName) -> Result<Description> {
    let dir = super::installed_dir(home, name)?;
    Ok(Description {
        entry: list_entry(home, name, settings),
        record: InstallRecord::read(&dir).ok(),
        config: config::load_reported(&dir, settings),
    })
}

/// Paths that install or run time make inside a plugin and that `verify` does not report.
fn generated(path: &str) -> bool {
    path == "local"
        || path.starts_with("local/")
        || path.starts_with(".mfplug/")
        || path == ".mfplug"
        || path.contains("__pycache__")
}

/// What `verify NAME` found: the files that differ from the RECORD, by how.
#[derive(Serialize, Default)]
pub(crate) struct VerifyReport {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) modified: Vec<String>,
    pub(crate) missing: Vec<String>,
    pub(crate) added: Vec<String>,
    /// The RECORD's number of entries.
    #[serde(skip)]
    pub(crate) entries: usize,
}

/// What identifies one installed copy of a plugin: its dir's inode and its install record.
/// An install commits by exchanging dirs, so another copy has another inode.
fn identity(dir: &Path) -> Option<(u64, u64, String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs_err::metadata(dir).ok()?;
    let record = read_own_file(&dir.join(super::INSTALL_FILE)).ok()??;
    Some((meta.dev(), meta.ino(), record))
}

/// How many times `verify NAME` looks again when the plugin was replaced under it.
const VERIFY_ATTEMPTS: usize = 20;

/// `mfplug verify NAME`: every installed file against the RECORD it came with, like `rpm -V`.
/// It reports on one copy of the plugin: when an install replaced it meanwhile (its dir's
/// identity changed), it looks again, so that it sees the old plugin or the new one, never a
/// mix.
pub(crate) fn verify(home: &Path, name: &PluginName) -> Result<VerifyReport> {
    let dir = super::installed_dir(home, name)?;
    if is_devlink(home, name) {
        return Err(HomeError::DevlinkNotVerified { name: name.clone() }.into());
    }
    let mut attempt = 0;
    let (mut report, entries) = loop {
        attempt += 1;
        let before = identity(&dir);
        let result = verify_copy(&dir, name);
        let after = identity(&dir);
        if before.is_some() && before == after {
            break result?;
        }
        if attempt >= VERIFY_ATTEMPTS {
            return Err(HomeError::KeptChanging { name: name.clone() }.into());
        }
        ui::verbose(format!(
            "plugin `{name}` was replaced while it was verified: looking again"
        ));
        std::thread::sleep(Duration::from_millis(20 * attempt as u64));
        // An uninstall took it away: say so as `installed_dir` does.
        super::installed_dir(home, name)?;
    };
    report.ok = report.modified.is_empty() && report.missing.is_empty() && report.added.is_empty();
    report.entries = entries;
    Ok(report)
}

/// The RECORD an installed plugin came with.
fn installed_record(dir: &Path, name: &PluginName) -> Result<Record> {
    let text = read_own_file(&dir.join(RECORD_PATH))
        .with_context(|| format!("plugin `{name}` has no readable install record"))?
        .with_context(|| format!("plugin `{name}` has no install record"))?;
    Record::parse(&text).map_err(|e| anyhow::anyhow!(e))
}

/// The files an installed plugin came with (`info NAME --files`), from its RECORD.
pub(crate) fn installed_entries(
    home: &Path,
    name: &PluginName,
) -> Result<Vec<archive::RecordEntry>> {
    let dir = super::installed_dir(home, name)?;
    if is_devlink(home, name) {
        return Err(HomeError::DevlinkHasNoRecord { name: name.clone() }.into());
    }
    Ok(installed_record(&dir, name)?.entries)
}

/// Checks one copy of an installed plugin against its RECORD; gives the report and the
/// RECORD's number of entries.
fn verify_copy(dir: &Path, name: &PluginName) -> Result<(VerifyReport, usize)> {
    let record = installed_record(dir, name)?;
    let mut report = VerifyReport {
        name: name.to_string(),
        ..VerifyReport::default()
    };
    let mut known: std::collections::HashSet<String> = InstallRecord::read(dir)
        .map(|r| r.install_files.into_iter().collect())
        .unwrap_or_default();
    for entry in &record.entries {
        known.insert(entry.path.clone());
        let path = dir.join(&entry.path);
        let meta = match fs_err::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(_) => {
                report.missing.push(entry.path.clone());
                continue;
            }
        };
        let same = match entry.kind {
            Kind::Dir => meta.is_dir(),
            Kind::Symlink => fs_err::read_link(&path)
                .ok()
                .and_then(|t| t.to_str().map(|t| sha256_hex(t.as_bytes()) == entry.sha256))
                .unwrap_or(false),
            Kind::File { executable } => {
                use std::os::unix::fs::PermissionsExt;
                meta.is_file()
                    && meta.len() == entry.size
                    && (meta.permissions().mode() & 0o111 != 0) == executable
                    && crate::fsx::sha256_file(&path).is_ok_and(|h| h == entry.sha256)
            }
        };
        if !same {
            report.modified.push(entry.path.clone());
        }
    }
    for item in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let item = item?;
        let rel = item
            .path()
            .strip_prefix(dir)
            .unwrap_or(item.path())
            .to_string_lossy()
            .into_owned();
        if generated(&rel) || item.file_type().is_dir() {
            continue;
        }
        if !known.contains(&rel) {
            report.added.push(rel);
        }
    }
    Ok((report, record.entries.len()))
}

/// `mfplug repackage NAME [-o OUTDIR]`: the installed plugin, under its installed name, with
/// the effective configuration (the override layers merged into `config.ini`).
pub(crate) fn repackage(
    home: &Path,
    settings: &Settings,
    name: &PluginName,
    output: Option<PathBuf>,
    progress: &dyn ui::Progress,
) -> Result<pack::Packed> {
    let dir = super::installed_dir(home, name)?;
    let config = config::load_reported(&dir, settings)?;
    // Merge the override layers into config.ini, keeping the developer's comments.
    let config_path = dir.join(CONFIG_FILE);
    let config_text = read_own_file(&config_path)?
        .with_context(|| format!("`{}` is missing", config_path.display()))?;
    let (mut doc, _) = Document::parse(&config_text);
    for layer in config.layers.iter().skip(1) {
        let (overrides, _) = Document::parse(&fs_err::read_to_string(layer)?);
        for section in overrides.sections() {
            for entry in section.entries() {
                doc.set(&section.name, &entry.key.to_string(), &entry.value);
            }
        }
    }
    // Held while it lives; a killed repackage leaves it to the next writer's purge.
    let work = super::repackage_work(home)?;
    let merged = work.path().join(CONFIG_FILE);
    fs_err::write(&merged, doc.to_text())?;
    let out_dir = output.unwrap_or_else(|| PathBuf::from("."));
    fs_err::create_dir_all(&out_dir)?;
    let out = out_dir.join(archive::file_name(name, config.version(), config.release()));
    let sources = pack::walk(&dir, &[dir.join(super::RECORD_DIR), out.clone()], true)?
        .filter(|s| {
            s.as_ref()
                .map_or(true, |s| !generated(s.rel.trim_end_matches('/')))
        })
        .map(|s| {
            s.map(|mut source| {
                if source.rel == CONFIG_FILE {
                    source.abs = merged.clone();
                }
                source
            })
        });
    pack::pack(
        sources,
        crate::release::about(&config, name.as_str()),
        &out,
        &PackOptions {
            level: crate::release::DEFAULT_LEVEL,
            epoch: archive::source_date_epoch().map_err(|message| {
                crate::release::ReleaseError::SourceDateEpoch {
                    message,
                    converting: true,
                }
            })?,
            progress,
        },
    )
    .with_context(|| format!("failed to repackage `{name}`"))
}

const CRON_BEGIN: &str =
    "# BEGIN mfplug plugins (managed by `mfplug crontab --apply`; do not edit)";
const CRON_END: &str = "# END mfplug plugins";

/// The merged crontab of the installed plugins: each plugin's rendered `crontab`.
pub(crate) fn merged_crontab(home: &Path, settings: &Settings) -> Result<String> {
    let mut out = String::new();
    for name in super::installed_names(home)? {
        let dir = plugin_dir(home, &name);
        if fs_err::symlink_metadata(dir.join("crontab")).is_err() {
            continue;
        }
        let config = match config::load(&dir, settings) {
            Ok(config) => config,
            Err(problems) => {
                ui::warn(format!(
                    "left out the jobs of `{name}`: {}",
                    problems.first().map(|p| p.to_string()).unwrap_or_default()
                ));
                continue;
            }
        };
        let text = match install::render_crontab(&dir, &config.variables) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(e) => {
                ui::warn(format!("left out the jobs of `{name}`: {e:#}"));
                continue;
            }
        };
        let jobs: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect();
        if jobs.is_empty() {
            continue;
        }
        out.push_str(&format!("# plugin {name}\n"));
        for job in jobs {
            out.push_str(job);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The user's crontab, through `crontab -l`: empty only when it answers that there is none
/// (exit 1, `no crontab for USER`); any other failure is an error, so that `--apply` never
/// writes a table without the user's own lines.
fn current_crontab() -> Result<String> {
    let out = std::process::Command::new("crontab")
        .arg("-l")
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run `crontab -l` (is cron installed?); nothing was changed")?;
    if out.status.success() {
        return String::from_utf8(out.stdout).map_err(|_| HomeError::CrontabNotText.into());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(1) && no_crontab_yet(&stderr) {
        return Ok(String::new());
    }
    Err(HomeError::CrontabUnreadable {
        status: out.status.to_string(),
        stderr: if stderr.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", stderr.trim())
        },
    }
    .into())
}

/// Whether `crontab -l`'s complaint is that the user has no crontab yet (cronie, vixie cron
/// and busybox say `no crontab for USER`).
fn no_crontab_yet(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    matches!(lines.as_slice(), [line] if line.to_ascii_lowercase().contains("no crontab for "))
}

/// `mfplug crontab --apply`: the merged crontab of the plugins (`merged`) installed into the
/// user's, between markers, the user's own lines kept.
pub(crate) fn apply_crontab(merged: &str) -> Result<()> {
    let current = current_crontab()?;
    let mut kept = Vec::new();
    let mut inside = false;
    for line in current.lines() {
        if line == CRON_BEGIN {
            inside = true;
        } else if line == CRON_END {
            inside = false;
        } else if !inside {
            kept.push(line);
        }
    }
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    if !merged.is_empty() {
        text.push_str(&format!("{CRON_BEGIN}\n{merged}{CRON_END}\n"));
    }
    let mut child = std::process::Command::new("crontab")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("cannot run `crontab -`")?;
    std::io::Write::write_all(child.stdin.as_mut().context("no stdin")?, text.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        anyhow::bail!("`crontab -` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::no_crontab_yet;

    #[test]
    fn only_no_crontab_for_user_means_empty() {
        assert!(no_crontab_yet("no crontab for alice\n"));
        assert!(no_crontab_yet("crontab: no crontab for alice\n"));
        assert!(!no_crontab_yet(""));
        assert!(!no_crontab_yet(
            "crontab: cannot open /var/spool/cron: Permission denied\n"
        ));
        assert!(!no_crontab_yet(
            "no crontab for alice\ncrontab: and then it broke\n"
        ));
    }
}
