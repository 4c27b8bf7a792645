//! What to do about each typed error of the stages: the words are the commands', as uv's hints
//! are its binary's. `ui::print_error` prints the hint below the error (`ui::set_hinter`).
//! One function per stage's error type, each a `match` with one arm per variant.

use crate::archive::pack::PackError;
use crate::bootstrap::BootstrapError;
use crate::build::BuildError;
use crate::develop::DevelopError;
use crate::env::EnvError;
use crate::home::HomeError;
use crate::index::IndexError;
use crate::lock::requirements::RequirementsError;
use crate::lock::{LockError, Suggestion};
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
    if let Some(error) = error.downcast_ref::<LockError>() {
        return Some(lock_hint(error));
    }
    if let Some(error) = error.downcast_ref::<BootstrapError>() {
        return Some(bootstrap_hint(error));
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
        HomeError::MissingDependency { name, .. } => format!(
            "install `{name}` first, or write the line as `-plugin_{name}@MODULE` to make it optional"
        ),
        HomeError::DependencyCycle { .. } => {
            "remove one of these lines: a plugin cannot load itself through its dependencies".into()
        }
        HomeError::BadDependency { .. } => {
            "write one layer label per line, such as `plugin_NAME@mfserv`".into()
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

/// What to do about an error of a lock.
fn lock_hint(error: &LockError) -> String {
    match error {
        LockError::NoInput { .. } => {
            "write the plugin's Python requirements there, one per line (`requests>=2`), then run `mfplug lock` again".into()
        }
        LockError::Requirements { error, .. } => match error {
            RequirementsError::Malformed { .. } => {
                "a line is `name[extras] specifiers ; markers` (PEP 508), or a pip option such as `-r FILE`"
            }
            RequirementsError::TooBig { .. } => {
                "a requirements file is a small text file: check the `-r`/`-c` lines"
            }
            RequirementsError::TooManyIncludes { .. } => {
                "include each generated file once: check the `-r`/`-c` lines"
            }
            RequirementsError::Read { .. } | RequirementsError::Cycle { .. } => {
                "check that the file exists and is readable"
            }
        }
        .into(),
        LockError::NoIndex => {
            "give `--index-url URL`, or set `MFPLUG_INDEX_URL`, `PIP_INDEX_URL` or `index-url` in `[global]` of pip.conf (or use `--find-links DIR` for a dir of wheels)".into()
        }
        LockError::NoInterpreter(_) | LockError::Interpreter { .. } => {
            "install it, or name another with `--python` or `python` in `[general]` of `config.ini`".into()
        }
        LockError::Target(_) => {
            "give `--python-version` as `3.11` and `--platform` as a wheel platform tag such as `manylinux_2_17_x86_64`".into()
        }
        LockError::NoSolution(_) => {
            "loosen a specifier in `requirements-to-freeze.txt`; a version counts only if a file of it fits the target interpreter, pre-releases only with `--pre` or a specifier naming one, yanked ones only with an exact `==` pin".into()
        }
        LockError::Unsupported(_) => "require the package by name and version".into(),
        LockError::Index {
            error, suggestion, ..
        } => lock_index_hint(error, suggestion),
    }
}

/// What to do about an error of the index while locking; `suggestion` is what the index has
/// instead of an unknown package.
fn lock_index_hint(error: &IndexError, suggestion: &Suggestion) -> String {
    match (error, suggestion) {
        (IndexError::UnknownPackage { .. }, Suggestion::RootMissing(url)) => {
            format!("the index's root page `{url}` answers 404 too: check the index URL, it must be a simple index (PEP 503/691) such as `https://HOST/simple`")
        }
        (IndexError::UnknownPackage { .. }, Suggestion::Close(name)) => {
            format!("did you mean `{name}`?")
        }
        (IndexError::UnknownPackage { .. }, Suggestion::Nothing) => {
            "check the name in `requirements-to-freeze.txt`, and that the index is the one that has it".to_owned()
        }
        (IndexError::Status { status: 401 | 403, .. }, _) => {
            "the index wants credentials: put them in the URL (`https://user:token@host/...`) or in `~/.netrc`".to_owned()
        }
        (IndexError::Status { status: 404, .. }, _) => {
            "check the index URL: it must be a simple index (PEP 503/691), such as `https://HOST/simple`".to_owned()
        }
        (IndexError::Unreachable { source, .. }, _) if source.to_string().contains("certificate") => {
            "the index's TLS certificate is not trusted: point `SSL_CERT_FILE`, `PIP_CERT` or `cert` in pip.conf at the CA bundle that signed it".to_owned()
        }
        (IndexError::Status { .. } | IndexError::Unreachable { .. } | IndexError::Read { .. }, _) => {
            "check that the index is up and its URL right; `--offline` locks from the cache alone".to_owned()
        }
        (IndexError::Garbage { .. }, _) => {
            "check that the URL is a simple index (PEP 503/691), not a web page or a proxy's error page".to_owned()
        }
        (IndexError::HashMismatch { .. }, _) => {
            "the index lists another file than it serves: a broken mirror or a proxy in the way; nothing was written".to_owned()
        }
        (IndexError::Offline { .. }, _) => "run `mfplug lock` once without `--offline` to fill the cache".to_owned(),
        (IndexError::Io { .. }, _) => "check the `--find-links` dir".to_owned(),
        (IndexError::Metadata { .. }, _) => "the release's metadata is broken: exclude that version with `!=`".to_owned(),
        (IndexError::NotModified { .. }, _) => {
            "the index or a proxy in the way answers `304` to plain requests: check the proxy, or clear `$XDG_CACHE_HOME/mfplug/pages`".to_owned()
        }
        (IndexError::TooBig { .. }, _) => {
            "that is not a package index page: check the index URL and any proxy in the way".to_owned()
        }
    }
}

/// What to do about an error of `bootstrap`.
fn bootstrap_hint(error: &BootstrapError) -> String {
    match error {
        BootstrapError::UnknownTemplate {
            close, available, ..
        } => match close {
            Some(close) => format!("did you mean `{close}`? `mfplug bootstrap list` shows them all"),
            None => format!(
                "available templates: {}; `mfplug bootstrap list` describes them",
                available.join(", ")
            ),
        },
        BootstrapError::SetSyntax { .. } => "write it as `--set version=1.0.0`".into(),
        BootstrapError::Reserved { .. } => {
            "the plugin name is the positional argument of `bootstrap create`, the module comes from `--module`".into()
        }
        BootstrapError::UnknownVariable {
            template,
            close,
            known,
            ..
        } => match close {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("template `{template}` takes: {}", known.join(", ")),
        },
        BootstrapError::BadName(_) => {
            "a plugin name is made of letters, digits, `_` and `-`; it may not start with `plugin_`, `__` or `-`, nor be `base` or `config`".into()
        }
        BootstrapError::UnknownModule { .. } => {
            "pass one of them to `--module` (or `MFPLUG_MODULE`), or leave it out for an MFPLUG plugin".into()
        }
        BootstrapError::NotADir { .. } => "choose another `--dir`".into(),
        BootstrapError::NotEmpty { .. } => {
            "choose another `--dir`, or empty that directory first".into()
        }
        BootstrapError::WouldNotCheck { .. } => {
            "change the `--set` values the problems above name (or fix the template)".into()
        }
    }
}
