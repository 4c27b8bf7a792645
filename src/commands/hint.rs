//! What to do about each typed error of the stages: the words are the commands', as uv's hints
//! are its binary's. `ui::print_error` prints the hint below the error (`ui::set_hinter`).
//! One function per stage's error type, each a `match` with one arm per variant.

use crate::bootstrap::BootstrapError;
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
        ReleaseError::NoVersion(_) => {
            "a MetWork file has it in `.metadata.json` or in `config.ini` (`[general] _version`)"
        }
    }
    .to_owned()
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
        HomeError::NotInstalled {
            close: Some(close), ..
        } => format!("did you mean `{close}`? `mfplug list` shows the installed plugins"),
        HomeError::NotInstalled { close: None, .. } => {
            "`mfplug list` shows the installed plugins; `--home` chooses the home".into()
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
        BootstrapError::NotADir { .. } => "choose another `--dir`".into(),
        BootstrapError::NotEmpty { .. } => {
            "choose another `--dir`, or empty that directory first".into()
        }
    }
}
