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

/// What `provision` is asked to do.
pub(crate) struct ProvisionOptions<'a> {
    pub(crate) watch: bool,
    pub(crate) interval: Duration,
    pub(crate) prune: bool,
    pub(crate) wait: Duration,
    /// Whether the caller renders the report as JSON: then no status line is printed as an
    /// event happens.
    pub(crate) json: bool,
    /// With `watch`, called with the report of each round that had something to say (the
    /// watch never returns but by an error).
    pub(crate) on_round: &'a dyn Fn(&ProvisionReport) -> Result<bool>,
}

/// What an event says happened, as the report's `action` says it.
const FAILED: &str = "failed";

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    pub(crate) file: Option<PathBuf>,
    pub(crate) name: Option<PluginName>,
    /// `Provisioned`, `Unchanged`, `Skipped`, `Pruned`, `Kept`, `Waiting` or `failed`.
    pub(crate) action: &'static str,
    pub(crate) detail: String,
}

/// What a provisioning pass (or a watch round) did, event by event in the order they
/// happened: installs, replacements, the override layers that fail, prunes, failures.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ProvisionReport {
    pub(crate) events: Vec<Event>,
}

impl ProvisionReport {
    /// Adds `event`, said as a status line now unless the caller renders JSON.
    fn push(&mut self, event: Event, json: bool) {
        if !json {
            progress(&event);
        }
        self.events.push(event);
    }

    /// Whether everything applied: no event is a failure.
    pub(crate) fn ok(&self) -> bool {
        self.events.iter().all(|e| e.action != FAILED)
    }
}

/// Says `event` as a status line (an error line for a failure), as it happens.
fn progress(event: &Event) {
    let what = event
        .name
        .as_deref()
        .map(|n| format!("`{n}`"))
        .or_else(|| event.file.as_ref().map(|f| format!("`{}`", f.display())))
        .unwrap_or_default();
    match event.action {
        FAILED => ui::print_error(&anyhow::anyhow!("{what}: {}", event.detail)),
        action => ui::status(action, format!("{what}: {}", event.detail)),
    }
}

/// The `.plugin` files of a dir with their size and mtime.
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
    result.unwrap_or_else(|e| event(None, FAILED, format!("{e:#}")))
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
                action: FAILED,
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
                action: FAILED,
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

/// One pass over the provisioning dir, holding the home's lock: `files` applied, the override
/// layers checked, and with `--prune` the plugins whose file left pruned.
fn pass(
    home: &Path,
    settings: &Settings,
    files: &[PathBuf],
    opts: &ProvisionOptions,
) -> Result<ProvisionReport> {
    let _lock = HomeLock::acquire(home, Some(opts.wait))?;
    let mut report = ProvisionReport::default();
    for file in files {
        report.push(apply_file(home, settings, file), opts.json);
    }
    for event in check_overrides(home, settings) {
        report.push(event, opts.json);
    }
    if opts.prune {
        let all: Vec<PathBuf> = scan(&home.join("provision")).into_keys().collect();
        for event in prune(home, settings, &present(&all)) {
            report.push(event, opts.json);
        }
    }
    Ok(report)
}

/// `mfplug provision [--watch] [--interval SECS] [--prune]`: one pass, or (`--watch`) a
/// round every interval until an error, each round's report handed to `opts.on_round`.
pub(crate) fn provision(
    home: &Path,
    settings: &Settings,
    opts: &ProvisionOptions,
) -> Result<ProvisionReport> {
    let dir = home.join("provision");
    fs_err::create_dir_all(&dir)?;
    if !opts.watch {
        let files: Vec<PathBuf> = scan(&dir).into_keys().collect();
        return pass(home, settings, &files, opts);
    }
    ui::status(
        "Watching",
        format!(
            "`{}` every {:?} (Ctrl-C stops)",
            dir.display(),
            opts.interval
        ),
    );
    let mut watch = Watch::default();
    loop {
        let now = scan(&dir);
        let mut round = ProvisionReport::default();
        let ready = watch.ready(&now, &mut round, opts.json);
        let removed = watch.applied.keys().any(|p| !now.contains_key(p));
        if !ready.is_empty() || (removed && opts.prune) {
            round
                .events
                .extend(pass(home, settings, &ready, opts)?.events);
            watch.applied_files(&ready, &now);
        }
        watch.forget_gone(now);
        if !round.events.is_empty() {
            (opts.on_round)(&round)?;
        }
        std::thread::sleep(opts.interval);
    }
}

/// What the watch remembers between two looks at the provisioning dir.
#[derive(Debug, Default)]
struct Watch {
    /// The files as the last look saw them.
    previous: Seen,
    /// The version (size, mtime) of each file last applied (or found not to verify).
    applied: Seen,
    /// Files said to be waiting (still written, or not verifying yet), each said once until
    /// it applies or goes: a slow or stalled copy is one line, not a failure per look.
    waiting: BTreeMap<PathBuf, &'static str>,
}

impl Watch {
    /// The files of `now` ready to apply: a file is ready once it held still for one
    /// interval and verifies; then it is applied once per version of it. A file still
    /// written, or not verifying, is said to wait (once) in `round`.
    fn ready(&mut self, now: &Seen, round: &mut ProvisionReport, json: bool) -> Vec<PathBuf> {
        let mut ready: Vec<PathBuf> = Vec::new();
        for (path, stamp) in now {
            if self.applied.get(path) == Some(stamp) {
                continue;
            }
            if self.previous.get(path) != Some(stamp) {
                if self.previous.contains_key(path) && !self.waiting.contains_key(path) {
                    self.waiting.insert(path.clone(), "growing");
                    let detail = "still being written: applied once it holds still".into();
                    round.push(waiting(path, detail), json);
                }
                continue;
            }
            // A half-copied file does not verify: it waits for the rest (said once).
            if let Err(e) = verifies(path) {
                if self.waiting.get(path) != Some(&"invalid") {
                    self.waiting.insert(path.clone(), "invalid");
                    let detail = format!(
                        "does not verify ({e:#}): tried again when it changes (a copy in progress?)"
                    );
                    round.push(waiting(path, detail), json);
                }
                self.applied.insert(path.clone(), *stamp);
                continue;
            }
            ready.push(path.clone());
        }
        ready
    }

    /// Remembers that `files` were applied as `now` sees them.
    fn applied_files(&mut self, files: &[PathBuf], now: &Seen) {
        for path in files {
            if let Some(stamp) = now.get(path) {
                self.applied.insert(path.clone(), *stamp);
            }
            self.waiting.remove(path);
        }
    }

    /// Forgets the files that left, and keeps `now` as the last look.
    fn forget_gone(&mut self, now: Seen) {
        self.applied.retain(|p, _| now.contains_key(p));
        self.waiting.retain(|p, _| now.contains_key(p));
        self.previous = now;
    }
}

/// The event of a file that waits, and why.
fn waiting(path: &Path, detail: String) -> Event {
    Event {
        file: Some(path.to_path_buf()),
        name: None,
        action: "Waiting",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &'static str) -> Event {
        Event {
            file: None,
            name: Some(PluginName::parse("foo").unwrap()),
            action,
            detail: "why".into(),
        }
    }

    #[test]
    fn a_report_fails_when_one_event_is_a_failure() {
        let mut report = ProvisionReport::default();
        report.events.push(event("Provisioned"));
        report.events.push(event("Unchanged"));
        assert!(report.ok());
        report.events.push(event(FAILED));
        assert!(!report.ok());
        assert_eq!(
            serde_json::to_value(&report.events[2]).unwrap(),
            serde_json::json!({"file": null, "name": "foo", "action": "failed", "detail": "why"})
        );
    }

    #[test]
    fn a_file_that_does_not_verify_waits_and_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("foo.plugin"), b"half a file").unwrap();
        let mut watch = Watch::default();
        let mut said = Vec::new();
        for _ in 0..3 {
            let now = scan(dir.path());
            let mut round = ProvisionReport::default();
            let ready = watch.ready(&now, &mut round, true);
            assert!(ready.is_empty());
            watch.forget_gone(now);
            said.push(round.events.len());
        }
        // First look: not yet held still; second: held still but does not verify (said);
        // third: the same version, not said again.
        assert_eq!(said, [0, 1, 0]);
    }
}
