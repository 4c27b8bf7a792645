//! The runtime home (`$MFPLUG_HOME`): where installed plugins, admin overrides and logs live,
//! and how it changes safely.
//!
//! Layout: `plugins/NAME` (a plugin, or a symlink to its source dir when devlinked),
//! `plugins/.staging/` (work in flight, purged at the start of every writer), `config/plugins/`
//! (admin overrides), `provision/`, `log/`, `tmp/`, `.lock`. One writer at a time holds
//! `.lock`; every change is prepared in `.staging/` and committed by one rename (or an atomic
//! exchange for an upgrade), so a reader, or a crash, only ever sees the old plugin or the new
//! one.

pub(crate) mod devlink;
pub(crate) mod install;
pub(crate) mod layers;
pub(crate) mod ops;
pub(crate) mod provision;

use fs_err::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::archive::PluginMeta;
use crate::plugin::{PluginName, LABEL_FILE};
use crate::ui;

/// The home: `--home`/`MFPLUG_HOME` (clap reads both), else `$XDG_DATA_HOME/mfplug`, else
/// `~/.local/share/mfplug`.
pub(crate) fn resolve(flag: Option<&Path>) -> PathBuf {
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

/// The home's `log/` dir, where the daemons' logs go; made when missing.
pub(crate) fn log_dir(home: &Path) -> Result<PathBuf> {
    let dir = home.join("log");
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

/// Where an installed (or devlinked) plugin named `name` lives: always one entry of
/// `plugins/`, since a [`PluginName`] has no `/`, no `.` and no `..`.
pub(crate) fn plugin_dir(home: &Path, name: &PluginName) -> PathBuf {
    home.join("plugins").join(name.as_str())
}

pub(crate) fn staging_dir(home: &Path) -> PathBuf {
    home.join("plugins").join(".staging")
}

/// The admin's override file of a plugin: one entry of `config/plugins/`.
pub(crate) fn override_file(home: &Path, name: &PluginName) -> PathBuf {
    home.join("config")
        .join("plugins")
        .join(format!("{name}.ini"))
}

/// Where the install record lives inside an installed plugin.
pub(crate) const RECORD_DIR: &str = ".mfplug";
pub(crate) const INSTALL_FILE: &str = ".mfplug/INSTALL.json";

/// What install writes beside the plugin's files: where it came from and what it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstallRecord {
    pub(crate) meta: PluginMeta,
    /// The `.plugin` file installed, as given.
    pub(crate) source: String,
    /// Seconds since 1970.
    pub(crate) installed_at: u64,
    /// The name in the file, when installed under another one (`--new-name`).
    pub(crate) original_name: Option<PluginName>,
    /// sha256 of the override file install wrote, to tell later whether the admin edited it.
    pub(crate) override_sha256: Option<String>,
    /// Whether provisioning installed it (and may prune it).
    #[serde(default)]
    pub(crate) provisioned: bool,
    /// Files that install made beside the RECORD's (`postinstall`'s), which `verify` expects.
    #[serde(default)]
    pub(crate) install_files: Vec<String>,
}

impl InstallRecord {
    /// Reads `.mfplug/INSTALL.json` of an installed plugin (not through a symlink, bounded),
    /// its names checked.
    pub(crate) fn read(dir: &Path) -> Result<InstallRecord> {
        let path = dir.join(INSTALL_FILE);
        let text = crate::plugin::read_own_file(&path)?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{}` is missing", path.display()),
            )
        })?;
        let record: InstallRecord = serde_json::from_str(&text)
            .with_context(|| format!("invalid install record `{}`", path.display()))?;
        PluginName::parse(&record.meta.name)
            .with_context(|| format!("invalid install record `{}`", path.display()))?;
        Ok(record)
    }
}

/// Opens `dir` as a directory, refusing a symlink: the handle of a dir mfplug writes its own
/// files into.
fn open_dir_nofollow(dir: &Path) -> Result<rustix::fd::OwnedFd> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| nofollow_error(dir, e))
}

fn nofollow_error(path: &Path, e: rustix::io::Errno) -> anyhow::Error {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        HomeError::OwnFileThroughLink {
            path: path.to_path_buf(),
        }
        .into()
    } else {
        anyhow::Error::new(std::io::Error::from(e))
            .context(format!("cannot write `{}`", path.display()))
    }
}

/// Writes one of mfplug's own files, `dir/name`, never through a symlink: `dir` is opened
/// without following a link and `name` is created new (`O_EXCL`, so an existing entry,
/// link or not, is refused), or with `replace` written beside it and renamed over it (a
/// link there is replaced, never followed).
pub(crate) fn write_own_file(dir: &Path, name: &str, bytes: &[u8], replace: bool) -> Result<()> {
    use rustix::fs::{openat, renameat, Mode, OFlags};
    use std::io::Write as _;
    let dirfd = open_dir_nofollow(dir)?;
    let path = dir.join(name);
    let temp = format!(".{name}.mfplug-new");
    let created = if replace { temp.as_str() } else { name };
    let fd = openat(
        &dirfd,
        created,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| {
        if e == rustix::io::Errno::EXIST && !replace {
            HomeError::OwnFileExists {
                path: path.to_path_buf(),
            }
            .into()
        } else {
            nofollow_error(&dir.join(created), e)
        }
    })?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write `{}`", dir.join(created).display()))?;
    if replace {
        renameat(&dirfd, temp.as_str(), &dirfd, name)
            .map_err(|e| anyhow::Error::new(std::io::Error::from(e)))
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
    }
    Ok(())
}

/// Makes `dir/name` as a new dir of mfplug's own: an entry already there (a dir, a file or a
/// link the plugin shipped) is refused.
pub(crate) fn create_own_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    let dirfd = open_dir_nofollow(dir)?;
    let path = dir.join(name);
    rustix::fs::mkdirat(&dirfd, name, rustix::fs::Mode::from_raw_mode(0o755)).map_err(|e| {
        if e == rustix::io::Errno::EXIST {
            HomeError::OwnDirExists {
                path: path.to_path_buf(),
            }
            .into()
        } else {
            anyhow::Error::new(std::io::Error::from(e))
                .context(format!("cannot create `{}`", path.display()))
        }
    })?;
    Ok(path)
}

/// Whether an error comes from a full disk (or a full quota) anywhere in its chain.
pub(crate) fn disk_full(err: &anyhow::Error) -> bool {
    fn io_full(e: &std::io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            || e.kind() == std::io::ErrorKind::StorageFull
            || e.kind() == std::io::ErrorKind::QuotaExceeded
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>())
                .is_some_and(io_full)
    }
    err.chain().any(|cause| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause);
        while let Some(e) = source {
            if e.downcast_ref::<std::io::Error>().is_some_and(io_full) {
                return true;
            }
            source = e.source();
        }
        false
    })
}

/// `err` said as a full disk, naming `dir`, when it is one; else `err` itself.
pub(crate) fn explain_disk_full(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    if !disk_full(&err) {
        return err;
    }
    let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    HomeError::DiskFull {
        dir: dir.to_path_buf(),
        detail: chain.join(": "),
    }
    .into()
}

/// An exclusive hold on the home: one writer at a time.
#[derive(Debug)]
pub(crate) struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// Takes the home's lock, waiting up to `wait` for another writer; then purges what a
    /// crashed writer left in `.staging/`.
    pub(crate) fn acquire(home: &Path, wait: Option<Duration>) -> Result<HomeLock> {
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
                        return Err(HomeError::Busy {
                            home: home.to_path_buf(),
                        }
                        .into())
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

/// The prefix of the temp dirs `repackage` makes in `plugins/`.
pub(crate) const REPACKAGE_PREFIX: &str = ".mfplug-repackage-";

/// Removes what an interrupted writer left in `.staging/` (the old or the new copy of a
/// plugin, never the committed one) and what a killed `repackage` left in `plugins/` (its
/// temp dirs no live `repackage` holds).
pub(crate) fn purge_staging(home: &Path) -> Result<()> {
    purge_repackage(home)?;
    let staging = staging_dir(home);
    let entries = match fs_err::read_dir(&staging) {
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
            fs_err::remove_dir_all(&path)
        } else {
            fs_err::remove_file(&path)
        };
        result.with_context(|| format!("cannot remove leftover `{}`", path.display()))?;
    }
    Ok(())
}

/// A `repackage`'s hold on its temp dir: a lock on the dir, which the purge tests.
#[derive(Debug)]
pub(crate) struct RepackageWork {
    dir: tempfile::TempDir,
    _hold: File,
}

impl RepackageWork {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A temp dir in `plugins/` for `repackage`, held (locked) while it lives, so that a writer's
/// purge removes it only once its `repackage` is gone (killed).
pub(crate) fn repackage_work(home: &Path) -> Result<RepackageWork> {
    let plugins = home.join("plugins");
    fs_err::create_dir_all(&plugins)?;
    let dir = tempfile::Builder::new()
        .prefix(REPACKAGE_PREFIX)
        .tempdir_in(&plugins)
        .with_context(|| format!("cannot create a temp dir in `{}`", plugins.display()))?;
    let hold = fs_err::File::open(dir.path())?;
    hold.try_lock()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot lock `{}`", dir.path().display()))?;
    Ok(RepackageWork { dir, _hold: hold })
}

fn purge_repackage(home: &Path) -> Result<()> {
    let plugins = home.join("plugins");
    let Ok(entries) = fs_err::read_dir(&plugins) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(REPACKAGE_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            // A live `repackage` holds its dir locked: leave it.
            let Ok(handle) = File::open(&path) else {
                continue;
            };
            if handle.try_lock().is_err() {
                continue;
            }
            ui::verbose(format!("removing leftover `{}`", path.display()));
            fs_err::remove_dir_all(&path)
                .with_context(|| format!("cannot remove leftover `{}`", path.display()))?;
        } else {
            ui::verbose(format!("removing leftover `{}`", path.display()));
            fs_err::remove_file(&path)
                .with_context(|| format!("cannot remove leftover `{}`", path.display()))?;
        }
    }
    Ok(())
}

/// A fresh dir in `.staging/` for `name`, for one step of a change.
pub(crate) fn staging_path(home: &Path, name: &PluginName, what: &str) -> Result<PathBuf> {
    staging_work(home, &format!("{name}.{what}"))
}

/// A fresh dir in `.staging/` for work that has no plugin name yet (`what`: a word of
/// mfplug's, such as `convert`).
pub(crate) fn staging_work(home: &Path, what: &str) -> Result<PathBuf> {
    let staging = staging_dir(home);
    fs_err::create_dir_all(&staging)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{what}."))
        .tempdir_in(&staging)
        .with_context(|| format!("cannot create a dir in `{}`", staging.display()))?;
    let path = dir.keep();
    // The caller creates the dir itself (extraction wants a new one).
    fs_err::remove_dir(&path)?;
    Ok(path)
}

/// Whether `plugins/NAME` is a devlink (a symlink to a source dir).
pub(crate) fn is_devlink(home: &Path, name: &PluginName) -> bool {
    fs_err::symlink_metadata(plugin_dir(home, name)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The names of the installed and devlinked plugins, sorted; an entry of `plugins/` that is
/// not a plugin name (mfplug's own `.staging`, `x.plugin`) or not a dir or a link (a stray
/// file) is left out.
pub(crate) fn installed_names(home: &Path) -> Result<Vec<PluginName>> {
    let dir = home.join("plugins");
    let entries = match fs_err::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read `{}`", dir.display())))
        }
    };
    let mut names: Vec<PluginName> = entries
        .filter_map(|e| e.ok())
        // A plugin is a dir, or a devlink to one; a stray file is none.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| PluginName::parse(&n).ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The dir of the plugin named `name` in the home (installed or devlinked).
pub(crate) fn installed_dir(home: &Path, name: &PluginName) -> Result<PathBuf> {
    let dir = plugin_dir(home, name);
    if dir.join(LABEL_FILE).is_file() {
        Ok(dir)
    } else {
        Err(not_installed(home, name))
    }
}

/// The error of a command given the name of a plugin the home does not have: with the
/// installed name that is closest, if one is close ("did you mean").
pub(crate) fn not_installed(home: &Path, name: &PluginName) -> anyhow::Error {
    let names = installed_names(home).unwrap_or_default();
    let close = crate::config::schema::did_you_mean(name, names.iter().map(|n| n.as_str()))
        .and_then(|close| PluginName::parse(close).ok());
    HomeError::NotInstalled {
        home: home.to_path_buf(),
        name: name.clone(),
        close,
    }
    .into()
}

/// What goes wrong in the home, with where; `commands` says what to do about each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HomeError {
    /// A plugin ships one of mfplug's own files (or a dir on its way) as a symlink.
    #[error("`{}` is a symlink or not a directory: mfplug writes its own files only into dirs it made, never through a link", path.display())]
    OwnFileThroughLink { path: PathBuf },
    /// A plugin ships one of mfplug's own files.
    #[error("`{}` is there already: it is mfplug's own file", path.display())]
    OwnFileExists { path: PathBuf },
    /// A plugin ships mfplug's own dir, `.mfplug/`.
    #[error("`{}` is there already: it is mfplug's own dir, where install writes its record", path.display())]
    OwnDirExists { path: PathBuf },
    /// The disk (or the quota) holding `dir` is full.
    #[error("the disk holding `{}` is full (no space left on the device, or the quota is reached): {detail}", dir.display())]
    DiskFull { dir: PathBuf, detail: String },
    /// Another mfplug holds the home's lock.
    #[error("another mfplug is changing the home `{}`", home.display())]
    Busy { home: PathBuf },
    /// A plugin's `postinstall`/`preuninstall` is a symlink.
    #[error("`{}` is a symlink: mfplug runs a plugin's `{hook}` only from the plugin's own file", path.display())]
    HookIsALink { path: PathBuf, hook: String },
    /// A plugin's hook is not a file.
    #[error("`{}` is not a file", path.display())]
    HookNotAFile { path: PathBuf, hook: String },
    /// `PLUGIN.json` names the plugin with a name that is not valid.
    #[error("`PLUGIN.json` names the plugin `{name}`: {why}")]
    BadFileName { name: String, why: String },
    /// The plugin is devlinked: install never replaces it.
    #[error("plugin `{name}` is devlinked in `{}`", home.display())]
    Devlinked { home: PathBuf, name: PluginName },
    /// The plugin is installed and `--force` was not given.
    #[error("plugin `{name}` is already installed")]
    AlreadyInstalled { name: PluginName },
    /// The file ships `.mfplug/`.
    #[error("the file ships `{RECORD_DIR}`, where mfplug keeps the install record")]
    ShipsRecordDir,
    /// `PLUGIN.json` and the label disagree on the name.
    #[error(
        "`PLUGIN.json` names the plugin `{file_name}` but `{LABEL_FILE}` names it `{label_name}`"
    )]
    NameMismatch {
        file_name: PluginName,
        label_name: PluginName,
    },
    /// `verify NAME` of a devlink: there is no RECORD.
    #[error("plugin `{name}` is devlinked: it has no RECORD to check against")]
    DevlinkNotVerified { name: PluginName },
    /// `info NAME --files` of a devlink.
    #[error("plugin `{name}` is devlinked: it has no RECORD of its files")]
    DevlinkHasNoRecord { name: PluginName },
    /// `verify NAME` saw another copy each time it looked.
    #[error("plugin `{name}` kept changing while it was verified")]
    KeptChanging { name: PluginName },
    /// `crontab -l` gave bytes that are not UTF-8.
    #[error("your crontab (`crontab -l`) is not UTF-8 text; nothing was changed")]
    CrontabNotText,
    /// `crontab -l` failed otherwise than by having no crontab.
    #[error(
        "cannot read your crontab: `crontab -l` failed ({status}){stderr}; nothing was changed"
    )]
    CrontabUnreadable { status: String, stderr: String },
    /// `develop` would devlink over an installed plugin (no `--force`).
    #[error("`{name}` is installed in `{}` and is not a devlink", path.display())]
    InstalledNotDevlink { name: PluginName, path: PathBuf },
    /// `.layerapi2_dependencies` names a plugin the home does not have.
    #[error("`{}` line {line}: plugin `{name}` is not installed", file.display())]
    MissingDependency {
        file: PathBuf,
        line: usize,
        name: PluginName,
    },
    /// `.layerapi2_dependencies` leads back to a plugin on the way (`chain`: `a -> b -> a`).
    #[error("`{}` line {line}: the plugins depend on each other: {chain}", file.display())]
    DependencyCycle {
        file: PathBuf,
        line: usize,
        chain: String,
    },
    /// `.layerapi2_dependencies` names a plugin with a name that is not valid.
    #[error("`{}` line {line}: {why}", file.display())]
    BadDependency {
        file: PathBuf,
        line: usize,
        why: String,
    },
    /// No plugin of that name; `close` is the installed name closest to it, if one is close.
    #[error("no plugin named `{name}` is installed in `{}`", home.display())]
    NotInstalled {
        home: PathBuf,
        name: PluginName,
        close: Option<PluginName>,
    },
}

/// Seconds since 1970, now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A test-only switch: `MFPLUG_TEST_STAGE_DELAY_MS` pauses after each stage of a change, so
/// that crash tests can kill mfplug at every point of it.
pub(crate) fn stage_pause(stage: &str) {
    if let Some(ms) = std::env::var("MFPLUG_TEST_STAGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        ui::verbose(format!("stage `{stage}` done"));
        std::thread::sleep(Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_said_as_such_wherever_it_is_in_the_chain() {
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let archive = crate::archive::unpack::ArchiveError::Write(PathBuf::from("/h/x"), full());
        let err = anyhow::Error::new(archive).context("`foo.plugin` fails verification");
        assert!(disk_full(&err));
        let explained = explain_disk_full(err, Path::new("/h/plugins"));
        let text = explained.to_string();
        assert!(
            text.starts_with("the disk holding `/h/plugins` is full"),
            "{text}"
        );
        assert!(text.contains("cannot write `/h/x`"), "{text}");
        assert!(matches!(
            explained.downcast_ref::<HomeError>(),
            Some(HomeError::DiskFull { .. })
        ));
        let quota = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(disk_full(&quota));
        // Wrapped in another io::Error, as a decoder wraps its reader's error.
        let wrapped = anyhow::Error::new(std::io::Error::other(full()));
        assert!(disk_full(&wrapped));
        let other = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EACCES))
            .context("cannot write");
        assert!(!disk_full(&other));
        assert_eq!(
            explain_disk_full(other, Path::new("/h")).to_string(),
            "cannot write"
        );
    }

    #[test]
    fn own_files_are_written_never_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        fs_err::write(&target, "keep\n").unwrap();
        fs_err::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
        assert!(write_own_file(dir.path(), "link", b"x", false).is_err());
        write_own_file(dir.path(), "link", b"new\n", true).unwrap();
        assert_eq!(fs_err::read_to_string(&target).unwrap(), "keep\n");
        assert_eq!(
            fs_err::read_to_string(dir.path().join("link")).unwrap(),
            "new\n"
        );
        fs_err::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).unwrap();
        let err = write_own_file(&dir.path().join("linked-dir"), "f", b"x", false).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(create_own_dir(dir.path(), "linked-dir").is_err());
        assert!(!outside.path().join("f").exists());
        let made = create_own_dir(dir.path(), ".mfplug").unwrap();
        write_own_file(&made, "RECORD", b"r", false).unwrap();
        assert!(write_own_file(&made, "RECORD", b"again", false).is_err());
        assert_eq!(fs_err::read(made.join("RECORD")).unwrap(), b"r");
    }
}
