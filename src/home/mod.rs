//! The runtime home (`$MFPLUG_HOME`): where installed plugins, admin overrides and logs live,
//! and how it changes safely.
//!
//! Layout: `plugins/NAME` (a plugin, or a symlink to its source dir when devlinked),
//! `plugins/.staging/` (work in flight, purged at the start of every writer), `config/plugins/`
//! (admin overrides), `provision/`, `log/`, `tmp/`, `.lock`. One writer at a time holds
//! `.lock`; every change is prepared in `.staging/` and committed by one rename (or an atomic
//! exchange for an upgrade), so a reader, or a crash, only ever sees the old plugin or the new
//! one.

pub mod install;
pub mod ops;
pub mod provision;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::archive::PluginMeta;
use crate::ui;

/// The home: `--home`/`MFPLUG_HOME` (clap reads both), else `$XDG_DATA_HOME/mfplug`, else
/// `~/.local/share/mfplug`.
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("mfplug")
}

/// Where an installed (or devlinked) plugin named `name` lives.
pub fn plugin_dir(home: &Path, name: &str) -> PathBuf {
    home.join("plugins").join(name)
}

pub fn staging_dir(home: &Path) -> PathBuf {
    home.join("plugins").join(".staging")
}

/// The admin's override file of a plugin.
pub fn override_file(home: &Path, name: &str) -> PathBuf {
    home.join("config")
        .join("plugins")
        .join(format!("{name}.ini"))
}

/// Where the install record lives inside an installed plugin.
pub const RECORD_DIR: &str = ".mfplug";
pub const INSTALL_FILE: &str = ".mfplug/INSTALL.json";

/// What install writes beside the plugin's files: where it came from and what it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallRecord {
    pub meta: PluginMeta,
    /// The `.plugin` file installed, as given.
    pub source: String,
    /// Seconds since 1970.
    pub installed_at: u64,
    /// The name in the file, when installed under another one (`--new-name`).
    pub original_name: Option<String>,
    /// sha256 of the override file install wrote, to tell later whether the admin edited it.
    pub override_sha256: Option<String>,
    /// Whether provisioning installed it (and may prune it).
    #[serde(default)]
    pub provisioned: bool,
    /// Files that install made beside the RECORD's (`postinstall`'s), which `verify` expects.
    #[serde(default)]
    pub install_files: Vec<String>,
}

impl InstallRecord {
    pub fn read(dir: &Path) -> Result<InstallRecord> {
        let path = dir.join(INSTALL_FILE);
        let text = fs_err::read_to_string(&path)?;
        serde_json::from_str(&text)
            .with_context(|| format!("invalid install record `{}`", path.display()))
    }
}

/// An exclusive hold on the home: one writer at a time.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

/// How long a writer waits for another one by default before it gives up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(0);

impl HomeLock {
    /// Takes the home's lock, waiting up to `wait` for another writer; then purges what a
    /// crashed writer left in `.staging/`.
    pub fn acquire(home: &Path, wait: Option<Duration>) -> Result<HomeLock> {
        for dir in ["plugins", "config/plugins", "provision", "log", "tmp"] {
            fs_err::create_dir_all(home.join(dir))?;
        }
        let path = home.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => match deadline {
                    Some(deadline) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    None => {
                        file.lock()
                            .with_context(|| format!("cannot lock `{}`", path.display()))?;
                        break;
                    }
                    Some(_) => {
                        return Err(ui::error_with_hint(
                            format!("another mfplug is changing the home `{}`", home.display()),
                            "wait for it to finish, or pass `--wait SECS` to wait for it",
                        ))
                    }
                },
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot lock `{}`", path.display()))
                    )
                }
            }
        }
        let lock = HomeLock { _file: file };
        purge_staging(home)?;
        Ok(lock)
    }
}

/// Removes what an interrupted writer left in `.staging/`: the old or the new copy of a
/// plugin, never the committed one.
pub fn purge_staging(home: &Path) -> Result<()> {
    let staging = staging_dir(home);
    let entries = match std::fs::read_dir(&staging) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot read `{}`", staging.display()))
            )
        }
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        ui::verbose(format!("removing leftover `{}`", path.display()));
        let result = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.with_context(|| format!("cannot remove leftover `{}`", path.display()))?;
    }
    Ok(())
}

/// A fresh dir in `.staging/` for `name`, for one step of a change.
pub fn staging_path(home: &Path, name: &str, what: &str) -> Result<PathBuf> {
    let staging = staging_dir(home);
    fs_err::create_dir_all(&staging)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}.{what}."))
        .tempdir_in(&staging)
        .with_context(|| format!("cannot create a dir in `{}`", staging.display()))?;
    let path = dir.keep();
    // The caller creates the dir itself (extraction wants a new one).
    fs_err::remove_dir(&path)?;
    Ok(path)
}

/// Whether `plugins/NAME` is a devlink (a symlink to a source dir).
pub fn is_devlink(home: &Path, name: &str) -> bool {
    std::fs::symlink_metadata(plugin_dir(home, name)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The names of the installed and devlinked plugins, sorted.
pub fn installed_names(home: &Path) -> Result<Vec<String>> {
    let dir = home.join("plugins");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read `{}`", dir.display())))
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Syncs a dir so that a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync `{}`", dir.display()))
}

/// Seconds since 1970, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A test-only switch: `MFPLUG_TEST_STAGE_DELAY_MS` pauses after each stage of a change, so
/// that crash tests can kill mfplug at every point of it.
pub fn stage_pause(stage: &str) {
    if let Some(ms) = std::env::var("MFPLUG_TEST_STAGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        ui::verbose(format!("stage `{stage}` done"));
        std::thread::sleep(Duration::from_millis(ms));
    }
}
