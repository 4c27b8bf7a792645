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
use crate::ui;

#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub watch: bool,
    pub interval: Duration,
    pub prune: bool,
    pub wait: Duration,
    pub json: bool,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
struct Event {
    file: Option<PathBuf>,
    name: Option<String>,
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
    if let Ok(entries) = std::fs::read_dir(dir) {
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
    let event = |name: Option<String>, action, detail: String| Event {
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
                let dir = super::staging_path(home, "provision", "legacy")?;
                fs_err::create_dir_all(&dir)?;
                converted = crate::release::convert_to(file, &dir)?;
                &converted
            }
            None => anyhow::bail!("not a `.plugin` file"),
        };
        let head = unpack::read_head(path, &Limits::default()).map_err(anyhow::Error::new)?;
        let name = head.meta.name.clone();
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
    let Ok(entries) = std::fs::read_dir(home.join("provision")) else {
        return events;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "ini") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
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

/// Uninstalls the provisioned plugins whose `.plugin` left the provisioning dir.
fn prune(home: &Path, settings: &Settings, present: &[String]) -> Vec<Event> {
    let mut events = Vec::new();
    for name in super::installed_names(home).unwrap_or_default() {
        if present.contains(&name) || is_devlink(home, &name) {
            continue;
        }
        let Ok(record) = InstallRecord::read(&plugin_dir(home, &name)) else {
            continue;
        };
        if !record.provisioned {
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

fn names_of(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| {
            unpack::read_head(f, &Limits::default())
                .ok()
                .map(|h| h.meta.name)
        })
        .collect()
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
        for event in prune(home, settings, &names_of(&all)) {
            ok &= event.action != "failed";
            report(&event, opts.json);
        }
    }
    Ok(ok)
}

/// `mfplug provision [--watch] [--interval SECS] [--prune]`.
pub fn provision(home: &Path, settings: &Settings, opts: &ProvisionOptions) -> Result<ExitCode> {
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
    loop {
        let now = scan(&dir);
        // A file is ready once it held still for one interval; then it is applied once per
        // version (size, mtime) of it.
        let ready: Vec<PathBuf> = now
            .iter()
            .filter(|(path, stamp)| {
                previous.get(*path) == Some(stamp) && applied.get(*path) != Some(stamp)
            })
            .map(|(path, _)| path.clone())
            .collect();
        let removed = applied.keys().any(|p| !now.contains_key(p));
        if !ready.is_empty() || (removed && opts.prune) {
            pass(home, settings, &ready, opts)?;
            for path in &ready {
                applied.insert(path.clone(), now[path]);
            }
        }
        applied.retain(|p, _| now.contains_key(p));
        previous = now;
        std::thread::sleep(opts.interval);
    }
}
