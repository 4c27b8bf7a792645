//! `mfplug provision`: make the home match `$MFPLUG_HOME/provision/`.
//!
//! Each `provision/*.plugin` is compared by plugin hash with the installed plugin of its name:
//! the same hash, nothing happens; another hash, it replaces the installed one whatever the
//! version (keeping the admin's override file); a devlinked plugin is left alone. Each
//! `provision/NAME.ini` is a layer of the plugin's configuration, checked here. One plugin's
//! failure is reported and the others still apply. With `--watch`, it polls the directory and
//! applies what is dropped, replaced or (with `--prune`) removed; a file is only considered
//! once its size and mtime held still between two polls and it verifies, so a half-copied
//! `.plugin` is never installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::Serialize;

use super::install::{self, InstallOptions};
use super::{is_devlink, plugin_dir, HomeLock, InstallRecord};
use crate::archive::unpack::{self, Limits};
use crate::archive::{self, FileFormat};
use crate::config::Settings;
use crate::plugin::PluginName;
use crate::ui;

#[derive(Debug, Clone)]
pub(crate) struct ProvisionOptions {
    pub(crate) watch: bool,
    pub(crate) interval: Duration,
    pub(crate) prune: bool,
    pub(crate) wait: Duration,
    pub(crate) json: bool,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
struct Event {
    file: Option<PathBuf>,
    name: Option<PluginName>,
    action: &'static str,
    detail: String,
}

fn report(event: &Event, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = ui::out(line);
        }
        return;
    }
    let what = event
        .name
        .as_deref()
        .map(|n| format!("`{n}`"))
        .or_else(|| event.file.as_ref().map(|f| format!("`{}`", f.display())))
        .unwrap_or_default();
    match event.action {
        "failed" => ui::print_error(&anyhow::anyhow!("{what}: {}", event.detail)),
        action => ui::status(action, format!("{what}: {}", event.detail)),
    }
}

type Seen = BTreeMap<PathBuf, (u64, SystemTime)>;

fn scan(dir: &Path) -> Seen {
    let mut out = BTreeMap::new();
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "plugin") {
                if let Ok(meta) = entry.metadata() {
                    out.insert(
                        path,
                        (
                            meta.len(),
                            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        ),
                    );
                }
            }
        }
    }
    out
}

/// Applies one `.plugin` of the provisioning dir.
fn apply_file(home: &Path, settings: &Settings, file: &Path) -> Event {
    let event = |name: Option<PluginName>, action, detail: String| Event {
        file: Some(file.to_path_buf()),
        name,
        action,
        detail,
    };
    let result = (|| -> Result<Event> {
        // A legacy file is converted first: its hash is the converted file's.
        let converted;
        let path = match archive::sniff(file)? {
            Some(FileFormat::Format1) => file,
            Some(FileFormat::Legacy) => {
                let dir = super::staging_work(home, "provision.legacy")?;
                fs_err::create_dir_all(&dir)?;
                converted = crate::release::convert_to(file, &dir)?;
                &converted
            }
            None => anyhow::bail!("not a `.plugin` file"),
        };
        let head = unpack::read_head(path, &Limits::default()).map_err(anyhow::Error::new)?;
        let name = PluginName::parse(&head.meta.name).map_err(|e| {
            anyhow::anyhow!("`PLUGIN.json` names the plugin `{}`: {e}", head.meta.name)
        })?;
        if is_devlink(home, &name) {
            return Ok(event(
                Some(name),
                "Skipped",
                "devlinked: a devlinked plugin is never replaced".into(),
            ));
        }
        if let Ok(record) = InstallRecord::read(&plugin_dir(home, &name)) {
            if record.meta.plugin_hash == head.meta.plugin_hash {
                return Ok(event(
                    Some(name),
                    "Unchanged",
                    format!("same plugin hash, {}", head.meta.plugin_hash),
                ));
            }
        }
        let done = install::install_locked(
            home,
            settings,
            &InstallOptions {
                file: path.to_path_buf(),
                new_name: None,
                force: true,
                provisioned: true,
            },
        )?;
        let detail = match done.action {
            install::Action::Installed => {
                format!("installed {}-{}", done.meta.version, done.meta.release)
            }
            install::Action::Upgraded(from) => format!(
                "upgraded from {from} to {}-{}",
                done.meta.version, done.meta.release
            ),
            install::Action::Downgraded(from) => format!(
                "downgraded from {from} to {}-{}",
                done.meta.version, done.meta.release
            ),
            install::Action::Reinstalled => format!(
                "replaced {}-{} (another plugin hash)",
                done.meta.version, done.meta.release
            ),
        };
        if let Some(note) = done.override_note {
            ui::warn(note);
        }
        Ok(event(Some(done.name), "Provisioned", detail))
    })();
    result.unwrap_or_else(|e| event(None, "failed", format!("{e:#}")))
}

/// Checks the provisioned override files against their plugins.
fn check_overrides(home: &Path, settings: &Settings) -> Vec<Event> {
    let mut events = Vec::new();
    let Ok(entries) = fs_err::read_dir(home.join("provision")) else {
        return events;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "ini") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // `NAME.ini`: a file not named after a plugin configures none.
        let Ok(name) = PluginName::parse(&stem) else {
            ui::verbose(format!(
                "left out `{}`: `{stem}` is not a plugin name",
                path.display()
            ));
            continue;
        };
        let dir = plugin_dir(home, &name);
        if !dir.exists() {
            continue;
        }
        if let Err(problems) = crate::config::load(&dir, settings) {
            let detail = problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            events.push(Event {
                file: Some(path),
                name: Some(name),
                action: "failed",
                detail,
            });
        }
    }
    events
}

/// What a file of the provisioning dir says about the plugin it holds.
#[derive(Debug, Clone)]
enum Present {
    /// It reads: the plugin it names.
    Named(PluginName),
    /// It is there but cannot be read (empty, half-copied, corrupt): it keeps every plugin
    /// its file name may be of.
    Unreadable { file: PathBuf, stem: String },
}

impl Present {
    /// Whether this file keeps the plugin `name` provisioned: a present file never counts
    /// as gone. An unreadable `NAME-VERSION-RELEASE.plugin` (or `NAME.plugin`) keeps `NAME`.
    fn keeps(&self, name: &PluginName) -> bool {
        match self {
            Present::Named(n) => n == name,
            Present::Unreadable { stem, .. } => {
                stem == name.as_str()
                    || stem
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            }
        }
    }
}

/// The name in a provisioning file, reading as little as it takes: the head of a format-1
/// file, or the metadata of a legacy one.
fn name_in(file: &Path) -> Result<PluginName> {
    let name = match archive::sniff(file)? {
        Some(FileFormat::Format1) => unpack::read_head(file, &Limits::default())?.meta.name,
        Some(FileFormat::Legacy) => {
            crate::archive::legacy::read(file, &Limits::default(), None)?.name
        }
        None => anyhow::bail!("not a `.plugin` file"),
    };
    PluginName::parse(&name).map_err(anyhow::Error::new)
}

fn present(files: &[PathBuf]) -> Vec<Present> {
    files
        .iter()
        .map(|f| match name_in(f) {
            Ok(name) => Present::Named(name),
            Err(_) => Present::Unreadable {
                file: f.clone(),
                stem: f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            },
        })
        .collect()
}

/// Uninstalls the provisioned plugins whose `.plugin` left the provisioning dir; one whose
/// file is there but cannot be read is kept, and said so.
fn prune(home: &Path, settings: &Settings, present: &[Present]) -> Vec<Event> {
    let mut events = Vec::new();
    for name in super::installed_names(home).unwrap_or_default() {
        if is_devlink(home, &name) {
            continue;
        }
        let Ok(record) = InstallRecord::read(&plugin_dir(home, &name)) else {
            continue;
        };
        if !record.provisioned {
            continue;
        }
        if let Some(keeper) = present.iter().find(|p| p.keeps(&name)) {
            if let Present::Unreadable { file, .. } = keeper {
                events.push(Event {
                    file: Some(file.clone()),
                    name: Some(name.clone()),
                    action: "Kept",
                    detail: format!(
                        "`{}` is in the provisioning dir but cannot be read yet: not pruned",
                        file.display()
                    ),
                });
            }
            continue;
        }
        let dir = plugin_dir(home, &name);
        let result = install::run_hook(&dir, "preuninstall", settings).and_then(|()| {
            let trash = super::staging_path(home, &name, "removed")?;
            fs_err::rename(&dir, &trash)?;
            fs_err::remove_dir_all(&trash)?;
            Ok(())
        });
        events.push(match result {
            Ok(()) => Event {
                file: None,
                name: Some(name),
                action: "Pruned",
                detail: "its `.plugin` left the provisioning dir (the override file is kept)"
                    .into(),
            },
            Err(e) => Event {
                file: None,
                name: Some(name),
                action: "failed",
                detail: format!("{e:#}"),
            },
        });
    }
    events
}

/// Whether a provisioning file verifies whole (every member against RECORD), writing nothing.
fn verifies(file: &Path) -> Result<()> {
    match archive::sniff(file)? {
        Some(FileFormat::Format1) => {
            unpack::read(file, &Limits::default(), None)?;
        }
        Some(FileFormat::Legacy) => {
            crate::archive::legacy::read(file, &Limits::default(), None)?;
        }
        None => anyhow::bail!("not a `.plugin` file"),
    }
    Ok(())
}

/// One pass over the provisioning dir; gives whether everything applied.
fn pass(
    home: &Path,
    settings: &Settings,
    files: &[PathBuf],
    opts: &ProvisionOptions,
) -> Result<bool> {
    let _lock = HomeLock::acquire(home, Some(opts.wait))?;
    let mut ok = true;
    for file in files {
        let event = apply_file(home, settings, file);
        ok &= event.action != "failed";
        report(&event, opts.json);
    }
    for event in check_overrides(home, settings) {
        ok = false;
        report(&event, opts.json);
    }
    if opts.prune {
        let all: Vec<PathBuf> = scan(&home.join("provision")).into_keys().collect();
        for event in prune(home, settings, &present(&all)) {
            ok &= event.action != "failed";
            report(&event, opts.json);
        }
    }
    Ok(ok)
}

/// `mfplug provision [--watch] [--interval SECS] [--prune]`.
pub(crate) fn provision(
    home: &Path,
    settings: &Settings,
    opts: &ProvisionOptions,
) -> Result<ExitCode> {
    let dir = home.join("provision");
    fs_err::create_dir_all(&dir)?;
    if !opts.watch {
        let files: Vec<PathBuf> = scan(&dir).into_keys().collect();
        let ok = pass(home, settings, &files, opts)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::cli::EXIT_FAILURE)
        });
    }
    ui::status(
        "Watching",
        format!(
            "`{}` every {:?} (Ctrl-C stops)",
            dir.display(),
            opts.interval
        ),
    );
    let mut previous: Seen = BTreeMap::new();
    let mut applied: Seen = BTreeMap::new();
    // Files said to be waiting (still written, or not verifying yet), each said once until it
    // applies or goes: a slow or stalled copy is one line, not a failure per look.
    let mut waiting: BTreeMap<PathBuf, &'static str> = BTreeMap::new();
    loop {
        let now = scan(&dir);
        // A file is ready once it held still for one interval; then it is applied once per
        // version (size, mtime) of it.
        let mut ready: Vec<PathBuf> = Vec::new();
        for (path, stamp) in &now {
            if applied.get(path) == Some(stamp) {
                continue;
            }
            if previous.get(path) != Some(stamp) {
                if previous.contains_key(path) && !waiting.contains_key(path) {
                    waiting.insert(path.clone(), "growing");
                    report(
                        &Event {
                            file: Some(path.clone()),
                            name: None,
                            action: "Waiting",
                            detail: "still being written: applied once it holds still".into(),
                        },
                        opts.json,
                    );
                }
                continue;
            }
            // A half-copied file does not verify: it waits for the rest (said once).
            if let Err(e) = verifies(path) {
                if waiting.get(path) != Some(&"invalid") {
                    waiting.insert(path.clone(), "invalid");
                    report(
                        &Event {
                            file: Some(path.clone()),
                            name: None,
                            action: "Waiting",
                            detail: format!(
                                "does not verify ({e:#}): tried again when it changes (a copy in progress?)"
                            ),
                        },
                        opts.json,
                    );
                }
                applied.insert(path.clone(), *stamp);
                continue;
            }
            ready.push(path.clone());
        }
        let removed = applied.keys().any(|p| !now.contains_key(p));
        if !ready.is_empty() || (removed && opts.prune) {
            pass(home, settings, &ready, opts)?;
            for path in &ready {
                if let Some(stamp) = now.get(path) {
                    applied.insert(path.clone(), *stamp);
                }
                waiting.remove(path);
            }
        }
        applied.retain(|p, _| now.contains_key(p));
        waiting.retain(|p, _| now.contains_key(p));
        previous = now;
        std::thread::sleep(opts.interval);
    }
}
