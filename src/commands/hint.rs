//! What to do about each typed error of the stages: the words are the commands', as uv's hints
//! are its binary's. `ui::print_error` prints the hint below the error (`ui::set_hinter`).
//! One function per stage's error type, each a `match` with one arm per variant.

use crate::archive::pack::PackError;
use crate::develop::DevelopError;
use crate::env::EnvError;
use crate::build::BuildError;
use crate::home::HomeError;
use crate::plugin::DirError;
use crate::release::ReleaseError;

/// What to do about a typed error of a stage: the words are the commands', as uv's hints are
/// its binary's; `ui::print_error` prints them below the error.
pub(crate) fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<DirError>() {
        return Some(
            match error {
                DirError::NotADir(_) | DirError::Missing(_) => {
                    "give the plugin's directory, the one holding `config.ini`"
                }
                DirError::NotInside(_) => {
                    "run it from a plugin dir (or one of its subdirs), or give the dir; `mfplug bootstrap create NAME` starts one"
                }
                DirError::Io { .. } => "check the permissions of the dir",
            }
            .to_owned(),
        );
    }
    if let Some(error) = error.downcast_ref::<crate::config::Invalid>() {
        return Some(error.hint());
    }
    if let Some(error) = error.downcast_ref::<DevelopError>() {
        return Some(develop_hint(error));
    }
    if let Some(error) = error.downcast_ref::<PackError>() {
        return Some(pack_hint(error).to_owned());
    }
    if let Some(error) = error.downcast_ref::<EnvError>() {
        return Some(
            match error {
                EnvError::NotAssignment { .. } => {
                    "write one `NAME=value` per line; `#` starts a comment"
                }
                EnvError::BadName { .. } => "use letters, digits and `_`",
            }
            .to_owned(),
        );
    }
    if let Some(error) = error.downcast_ref::<BuildError>() {
        return Some(build_hint(error));
    }
    if let Some(error) = error.downcast_ref::<ReleaseError>() {
        return Some(release_hint(error));
    }
    error.downcast_ref::<HomeError>().map(home_hint)
}

/// What to do about an error around a `.plugin` file.
fn release_hint(error: &ReleaseError) -> String {
    match error {
        ReleaseError::Level(_) => "use a level from 1 (fast) to 22 (small); the default is 3",
        ReleaseError::SourceDateEpoch {
            converting: false, ..
        } => "unset it, or give the time of the last change, e.g. `git log -1 --format=%ct`",
        ReleaseError::SourceDateEpoch {
            converting: true, ..
        } => "unset it",
        ReleaseError::NotAPluginFile(_) => {
            "a `.plugin` file is made by `mfplug release` (zstd) or by MetWork (tar.gz)"
        }
        ReleaseError::NoRecord(_) => {
            "`mfplug convert` rewrites it as a format-1 file, whose files `info --files` lists"
        }
        ReleaseError::AlreadyFormat1(_) => "`mfplug convert` rewrites legacy MetWork files only",
        ReleaseError::Refused { damaged: true, .. } => {
            "the file is damaged or cut short: copy it again from where it was released"
        }
        ReleaseError::Refused { damaged: false, .. } => {
            "the file is not what `mfplug release` writes, or was altered since: do not install it; get it again from its source, or release it again from the plugin dir"
        }
        ReleaseError::NoVersion(_) => {
            "a MetWork file has it in `.metadata.json` or in `config.ini` (`[general] _version`)"
        }
    }
    .to_owned()
}

/// What to do about an error of a build.
fn build_hint(error: &BuildError) -> String {
    use crate::build::{ALLOW_BINARY, VENDOR_DIR};
    use crate::lock::SOURCES_DIR;
    match error {
        BuildError::Interpreter(_) | BuildError::InterpreterUnusable { .. } => {
            "install it, or name another with `python` in `[general]` of `config.ini`".into()
        }
        BuildError::NotVendored { .. } => {
            "`mfplug build` (online) vendors the locked files; `--offline` uses only what is vendored".into()
        }
        BuildError::NotInLock(_) => format!(
            "remove it from `{SOURCES_DIR}/{VENDOR_DIR}/`, or run `mfplug lock` if the lock is out of date"
        ),
        BuildError::NotTheLockedFile { .. } => {
            "the file was changed or replaced (another file's bytes under its name): `mfplug build` (online) fetches it again".into()
        }
        BuildError::NoNpm => {
            "install Node.js with npm (e.g. `apt-get install nodejs npm`), then try again".into()
        }
        BuildError::NoCargo => {
            "install the Rust toolchain (rustup, or your distribution's cargo), then try again".into()
        }
        BuildError::StaleLock(_) => {
            "run `mfplug lock` (it needs the index), then `mfplug build --offline`".into()
        }
        BuildError::StaleNodeLock { .. } | BuildError::StaleCargoLock { .. } => {
            "run `mfplug lock` first".into()
        }
        BuildError::NoIndex => {
            "set `MFPLUG_INDEX_URL`, `PIP_INDEX_URL` or `index-url` in pip.conf, or vendor the files in `python3_virtualenv_sources/src/`".into()
        }
        BuildError::ListFiles { error, .. } | BuildError::Hash { error, .. } => error.hint().into(),
        BuildError::Download { error, .. } => error.hint().into(),
        BuildError::NoMatchingFile { name, .. } => {
            format!("run `mfplug lock --upgrade-package {name}`, or check `{ALLOW_BINARY}`")
        }
        BuildError::DownloadMismatch { .. } => {
            "the index serves another file than the one locked (a truncated or changed download): nothing was vendored; check the index, or relock with `mfplug lock --upgrade-package`".into()
        }
        BuildError::ChangedFile { .. } => {
            "the file changed: remove it and run the command again".into()
        }
        BuildError::BuildRequirementsNotVendored(_) => {
            "run `mfplug build` online once: it vendors them in `python3_virtualenv_sources/src/.build/`".into()
        }
    }
}

/// What to do about an error of the home.
fn home_hint(error: &HomeError) -> String {
    match error {
        HomeError::OwnFileThroughLink { .. } => {
            "the `.plugin` file ships it: a plugin may not ship mfplug's own files as links".into()
        }
        HomeError::OwnFileExists { .. } => {
            "the `.plugin` file (or its `postinstall`) made it: a plugin may not ship mfplug's own files".into()
        }
        HomeError::OwnDirExists { .. } => {
            "the `.plugin` file (or its `postinstall`) made it: a plugin may not ship `.mfplug/`".into()
        }
        HomeError::DiskFull { .. } => {
            "free some space there (`df -h`), then run it again; what was installed is unchanged".into()
        }
        HomeError::Busy { .. } => {
            "wait for it to finish, or pass `--wait SECS` to wait for it".into()
        }
        HomeError::HookIsALink { hook, .. } => format!("ship `{hook}` as a file, not a link"),
        HomeError::HookNotAFile { hook, .. } => format!("`{hook}` must be an executable file"),
        HomeError::BadFileName { .. } => {
            "a `.plugin` file holds a valid plugin name; `mfplug verify FILE` checks one".into()
        }
        HomeError::Devlinked { name, .. } => format!(
            "a devlinked plugin is never replaced; `mfplug uninstall {name}` removes the link"
        ),
        HomeError::AlreadyInstalled { .. } => {
            "pass `--force` to replace it, or `--new-name` to install this one beside it".into()
        }
        HomeError::ShipsRecordDir => {
            "a plugin may not ship `.mfplug/`: remove it from the plugin dir and release again".into()
        }
        HomeError::NameMismatch { .. } => {
            "release the plugin again with `mfplug release`: both then hold the label's name".into()
        }
        HomeError::DevlinkNotVerified { .. } => "`mfplug check` validates a plugin dir".into(),
        HomeError::DevlinkHasNoRecord { .. } => "its files are those of its source dir".into(),
        HomeError::KeptChanging { .. } => {
            "an install, an upgrade or an uninstall is running: run `mfplug verify` again once it is done".into()
        }
        HomeError::CrontabNotText => {
            "fix it with `crontab -e`, then run `mfplug crontab --apply` again".into()
        }
        HomeError::CrontabUnreadable { .. } => {
            "fix what `crontab -l` says, then run `mfplug crontab --apply` again".into()
        }
        HomeError::InstalledNotDevlink { .. } => {
            "`--force` moves the installed plugin aside (to `displaced/` in the home) and links this dir in its place".into()
        }
        HomeError::NotInstalled {
            close: Some(close), ..
        } => format!("did you mean `{close}`? `mfplug list` shows the installed plugins"),
        HomeError::NotInstalled { close: None, .. } => {
            "`mfplug list` shows the installed plugins; `--home` chooses the home".into()
        }
    }
}

/// What to do about a plugin dir that cannot be packed.
fn pack_hint(error: &PackError) -> &'static str {
    match error {
        PackError::MetadataSymlink { .. } => "replace the symlink with a copy of its target",
        PackError::SymlinkOutside { .. } => {
            "make it point inside the plugin, use an absolute target (it is then reported by `mfplug info`), or list it in `.releaseignore`"
        }
        PackError::SpecialFile { .. } => "list it in `.releaseignore`",
        PackError::UnrecordableName { .. } => "rename it, or list it in `.releaseignore`",
        PackError::SymlinkChain { .. } => {
            "make the symlinks point inside the plugin, or list them in `.releaseignore`"
        }
    }
}

/// What to do about a daemon or the watch.
fn develop_hint(error: &DevelopError) -> String {
    match error {
        DevelopError::Held { .. } => {
            "fix it and save a watched file: held daemons start again".into()
        }
        DevelopError::BadCommand { .. } => {
            "write the command as in a shell: `_cmd_and_args = prog --opt 'a b'`".into()
        }
        DevelopError::Start {
            program, source, ..
        } => match source.kind() {
            std::io::ErrorKind::NotFound => {
                format!("`{program}` is not on the plugin env's PATH")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("check that `{program}` is executable")
            }
            _ => "an rlimit above the hard limit needs privileges".to_owned(),
        },
        DevelopError::WatchLimit { .. } => {
            "the system's limit of inotify watches is reached: raise `fs.inotify.max_user_watches` (sysctl)".into()
        }
    }
}
