//! `mfplug lock`: resolve `python3_virtualenv_sources/requirements-to-freeze.txt` into the
//! hashed, pip-installable `requirements3.txt` for the plugin's interpreter (issue 5).
//!
//! The command reads the input, finds the target interpreter and the index, resolves with
//! PubGrub, hashes every fitting file and writes the lockfile atomically: a failure at any step
//! leaves the previous lockfile byte for byte. `--check` compares the recorded input hash with
//! no network and no interpreter.

pub mod lockfile;
pub mod requirements;
pub(crate) mod resolve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use pep508_rs::{PackageName, VersionOrUrl};
use serde::Serialize;

use crate::config::Settings;
use crate::index::{self, IndexError};
use crate::interpreter::{self, InterpreterError, Target};
use crate::ui;

/// Where the input and the lock live in a plugin dir.
pub(crate) const SOURCES_DIR: &str = "python3_virtualenv_sources";
pub(crate) const INPUT_FILE: &str = "requirements-to-freeze.txt";
pub(crate) const LOCK_FILE: &str = "requirements3.txt";

/// What goes wrong in a lock, with where; `commands` says what to do about each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// The plugin dir has no input file.
    #[error("no `{SOURCES_DIR}/{INPUT_FILE}` in `{}`", dir.display())]
    NoInput { dir: PathBuf },
    /// A requirements file that does not read; `cause` is the first cause of `error`.
    #[error("{error}")]
    Requirements {
        error: requirements::RequirementsError,
        #[source]
        cause: Option<Cause>,
    },
    /// Requirements to lock, and no index nor link dir to find them in.
    #[error("no package index is configured")]
    NoIndex,
    /// The target interpreter is not there.
    #[error("{0}")]
    NoInterpreter(InterpreterError),
    /// The target interpreter `python` does not describe itself.
    #[error("cannot use the interpreter `{python}`")]
    Interpreter {
        python: String,
        #[source]
        cause: Cause,
    },
    /// `--python-version` or `--platform` is not what a target takes.
    #[error("{0}")]
    Target(InterpreterError),
    /// No versions satisfy the requirements; the report says why.
    #[error("no set of versions satisfies the requirements:\n{0}")]
    NoSolution(String),
    /// A requirement the resolver does not take (one from a URL).
    #[error("{0}")]
    Unsupported(resolve::ResolveError),
    /// An error of the index, with the package whose requirement led there (`required_by`);
    /// `cause` is the first cause of `error`.
    #[error("{error}{}", required_by_suffix(.required_by.as_deref()))]
    Index {
        error: Arc<IndexError>,
        required_by: Option<String>,
        suggestion: Suggestion,
        #[source]
        cause: Option<Cause>,
    },
}

/// The cause of a [`LockError`], as the one `Caused by:` line it prints: its own causes are
/// not printed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Cause(String);

impl Cause {
    /// The text of `cause`, if there is one.
    fn of(cause: Option<&(dyn std::error::Error + 'static)>) -> Option<Cause> {
        cause.map(|cause| Cause(cause.to_string()))
    }
}

/// What the index has instead of a package it does not have, for the hint.
#[derive(Debug)]
pub(crate) enum Suggestion {
    /// Nothing to suggest (or the error is not about an unknown package).
    Nothing,
    /// The index's name closest to the unknown one.
    Close(String),
    /// The index's root page (at that URL) answers 404 too: the index URL is wrong.
    RootMissing(String),
}

/// `, required by NAME` when the requirement of package NAME led to an error.
fn required_by_suffix(required_by: Option<&str>) -> String {
    required_by.map_or_else(String::new, |by| format!(", required by {by}"))
}

/// What `lock` is asked: the plugin dir and the options of `mfplug lock`, as plain values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    /// Re-resolve every package.
    pub(crate) upgrade: bool,
    /// Re-resolve these packages only.
    pub(crate) upgrade_package: Vec<String>,
    /// `--index-url`, `--extra-index-url`, `--find-links`, `--no-index`.
    pub(crate) index: index::config::Flags,
    pub(crate) offline: bool,
    pub(crate) pre: bool,
    pub(crate) python: Option<String>,
    pub(crate) python_version: Option<String>,
    pub(crate) platform: Option<String>,
}

/// What `lock` did.
pub(crate) struct Locked {
    pub(crate) lockfile: PathBuf,
    pub(crate) pins: Vec<lockfile::Pin>,
    /// The versions the previous lock pinned, to say what changed.
    pub(crate) previous: std::collections::BTreeMap<PackageName, pep440_rs::Version>,
    pub(crate) requests: usize,
    pub(crate) elapsed: std::time::Duration,
    /// The target, as the lock's header records it.
    pub(crate) target: String,
}

/// What `lock --check` found.
#[derive(Serialize)]
pub(crate) struct Checked {
    pub(crate) fresh: bool,
    pub(crate) lockfile: PathBuf,
    pub(crate) reasons: Vec<String>,
}

/// The input of a lock, read: the requirements, their hash and the previous lock.
struct Input {
    requirements: requirements::Input,
    sha256: String,
    lock_path: PathBuf,
    previous_text: Option<String>,
    previous: lockfile::Previous,
}

/// Reads `requirements-to-freeze.txt` (and what it includes) and the previous lock of `dir`.
fn read_input(dir: &Path) -> Result<Input> {
    let sources = dir.join(SOURCES_DIR);
    let input_path = sources.join(INPUT_FILE);
    if !input_path.is_file() {
        return Err(LockError::NoInput {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let requirements = requirements::read(&input_path).map_err(|e| LockError::Requirements {
        cause: Cause::of(std::error::Error::source(&e)),
        error: e,
    })?;
    let lock_path = sources.join(LOCK_FILE);
    let previous_text = fs_err::read_to_string(&lock_path).ok();
    let previous = previous_text
        .as_deref()
        .map(lockfile::parse)
        .unwrap_or_default();
    Ok(Input {
        sha256: requirements.sha256(),
        requirements,
        lock_path,
        previous_text,
        previous,
    })
}

/// The indexes and link pages a lock reads, from the flags, the requirements file and pip's
/// configuration.
struct Sources {
    indexes: Vec<String>,
    find_links: Vec<PathBuf>,
}

impl Sources {
    fn discover(opts: &Options, input: &requirements::Input) -> Result<Sources> {
        let env = |key: &str| std::env::var(key).ok();
        let (primary, mut extra) = index::config::discover(
            opts.index.index_url.as_deref(),
            input.index_url.as_deref(),
            &env,
        );
        if !opts.index.extra_index_url.is_empty() || !input.extra_index_urls.is_empty() {
            extra = opts.index.extra_index_url.clone();
            extra.extend(input.extra_index_urls.iter().cloned());
        }
        let mut find_links = opts.index.find_links.clone();
        find_links.extend(input.find_links.iter().cloned());
        let mut indexes = Vec::new();
        if opts.index.no_index {
            ui::verbose("no index: `--no-index`");
        } else if input.no_index {
            ui::verbose("no index: `--no-index` in the requirements file");
        } else if let Some((url, source)) = &primary {
            ui::verbose(format!(
                "index `{}` from {source}",
                index::config::strip_credentials(url)
            ));
            indexes.push(url.clone());
            indexes.extend(extra);
        } else if find_links.is_empty() && !input.requirements.is_empty() {
            // (An input with no requirement locks to an empty list without any index.)
            return Err(LockError::NoIndex.into());
        }
        Ok(Sources {
            indexes,
            find_links,
        })
    }

    /// The client of these sources, with pip's CA bundle and the user's netrc.
    fn client(&self, cache_dir: &Path, offline: bool) -> Arc<index::Client> {
        // pip's CA bundle (`PIP_CERT`, `cert` in pip.conf) goes to the TLS layer, which
        // reads `SSL_CERT_FILE`; set before any thread starts, and only when the user set
        // neither.
        let env = |key: &str| std::env::var(key).ok();
        if std::env::var_os("SSL_CERT_FILE").is_none() {
            if let Some(cert) = index::config::discover_cert(&env) {
                ui::verbose(format!(
                    "CA bundle `{}` from pip's configuration",
                    cert.display()
                ));
                std::env::set_var("SSL_CERT_FILE", cert);
            }
        }
        let netrc = std::env::var_os("NETRC")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")))
            .and_then(|p| fs_err::read_to_string(p).ok());
        index::Client::new(index::Options {
            indexes: self.indexes.clone(),
            find_links: self.find_links.clone(),
            cache_dir: cache_dir.to_path_buf(),
            offline,
            netrc,
        })
    }

    /// The lock's header: what was locked from where, credentials stripped.
    fn header(&self, input_sha256: &str, target: &Target) -> lockfile::Header {
        lockfile::Header {
            input_file: INPUT_FILE.to_owned(),
            input_sha256: input_sha256.to_owned(),
            index_urls: self
                .indexes
                .iter()
                .map(|u| index::config::strip_credentials(u))
                .collect(),
            find_links: self
                .find_links
                .iter()
                .map(|p| index::config::strip_credentials(&p.display().to_string()))
                .collect(),
            python: target.describe(),
        }
    }
}

/// The pins of the previous lock to keep: all but `--upgrade-package`'s, none with `--upgrade`.
fn preferences(
    opts: &Options,
    previous: &lockfile::Previous,
) -> HashMap<PackageName, pep440_rs::Version> {
    if opts.upgrade {
        return HashMap::new();
    }
    let upgraded: Vec<String> = opts
        .upgrade_package
        .iter()
        .map(|p| index::simple::normalize(p))
        .collect();
    previous
        .pins
        .iter()
        .filter(|(name, _)| !upgraded.iter().any(|u| u == name.as_ref()))
        .map(|(name, version)| (name.clone(), version.clone()))
        .collect()
}

/// `mfplug lock`: resolves the plugin's requirements and writes `requirements3.txt` when it
/// changed. `progress` hears of the requests made while resolving.
pub(crate) fn lock(
    opts: &Options,
    settings: &Settings,
    progress: &dyn ui::Progress,
) -> Result<Locked> {
    let start = Instant::now();
    let dir = &opts.dir;
    let input = read_input(dir)?;
    // The target interpreter: `--python`, `[general] python`, else `python3` on PATH.
    let python = match &opts.python {
        Some(p) => p.clone(),
        None => configured_python(dir, settings)?.unwrap_or_else(|| "python3".to_owned()),
    };
    let cache_dir = index::default_cache_dir();
    let sources = Sources::discover(opts, &input.requirements)?;
    let client = sources.client(&cache_dir, opts.offline);
    // The requirements' pages do not depend on the target: fetch them while it is probed.
    for located in &input.requirements.requirements {
        client.prefetch_project(&located.requirement.name);
    }
    let target = Arc::new(find_target(&python, &cache_dir, opts)?);
    let request_of = |located: &[requirements::Located]| -> Vec<_> {
        located.iter().map(|r| r.requirement.clone()).collect()
    };
    let (reqs, constraints) = (
        request_of(&input.requirements.requirements),
        request_of(&input.requirements.constraints),
    );
    let request = resolve::Request {
        requirements: &reqs,
        constraints: &constraints,
        preferences: preferences(opts, &input.previous),
        pre: opts.pre || input.requirements.pre,
    };
    let pins = with_request_count(&client, progress, || {
        let resolved =
            resolve::resolve(&client, &target, &request).map_err(|e| resolve_error(e, &client))?;
        hash_pins(&resolved, &client)
    })?;
    let text = lockfile::render(&sources.header(&input.sha256, &target), &pins);
    if input.previous_text.as_deref() != Some(text.as_str()) {
        crate::fsx::write_atomic(&input.lock_path, text.as_bytes())
            .with_context(|| format!("cannot write `{}`", input.lock_path.display()))?;
    }
    Ok(Locked {
        lockfile: input.lock_path,
        pins,
        previous: input.previous.pins,
        requests: client.requests(),
        elapsed: start.elapsed(),
        target: target.describe(),
    })
}

/// Runs `work` while `progress` shows the client's count of requests, ten times a second.
fn with_request_count<T>(
    client: &index::Client,
    progress: &dyn ui::Progress,
    work: impl FnOnce() -> T,
) -> T {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || loop {
            progress.message(&format!("{} requests", client.requests()));
            if stopped
                .recv_timeout(std::time::Duration::from_millis(80))
                .is_ok()
            {
                break;
            }
        });
        let result = work();
        let _ = stop.send(());
        result
    });
    progress.finish();
    result
}

/// Every fitting file's hash of every resolved package (the downloads run in parallel,
/// started by the resolver), as the lock's pins.
fn hash_pins(
    resolved: &[resolve::Resolved],
    client: &Arc<index::Client>,
) -> Result<Vec<lockfile::Pin>> {
    let mut pins = Vec::new();
    for package in resolved {
        let mut files = Vec::new();
        for file in &package.files {
            let hash = client
                .sha256(file)
                .map_err(|e| index_error(e, client, None))
                .with_context(|| format!("cannot hash `{}`", file.filename))?;
            files.push((file.filename.clone(), hash.to_string()));
        }
        files.sort();
        files.dedup();
        let mut hashes: Vec<String> = files.iter().map(|(_, hash)| hash.clone()).collect();
        hashes.sort();
        hashes.dedup();
        let via = package
            .via
            .iter()
            .map(|v| match v {
                None => format!("-r {INPUT_FILE}"),
                Some(name) => name.clone(),
            })
            .collect();
        pins.push(lockfile::Pin {
            name: package.name.clone(),
            version: package.version.clone(),
            hashes,
            via,
            files,
        });
    }
    Ok(pins)
}

/// `lock --check`: fresh when the recorded input hash is the input's; says why not. No
/// network, no interpreter.
pub(crate) fn check(dir: &Path) -> Result<Checked> {
    let input = read_input(dir)?;
    let previous = &input.previous;
    let mut reasons = Vec::new();
    if input.previous_text.is_none() {
        reasons.push(format!("`{SOURCES_DIR}/{LOCK_FILE}` does not exist"));
    } else if previous.input_sha256.as_deref() != Some(input.sha256.as_str()) {
        reasons.push(match &previous.input_sha256 {
            Some(_) => format!("`{INPUT_FILE}` (or a file it includes) changed since the lock"),
            None => {
                format!("`{LOCK_FILE}` records no input hash: it was not made by `mfplug lock`")
            }
        });
        reasons.extend(unmet_requirements(&input.requirements, previous));
    }
    Ok(Checked {
        fresh: reasons.is_empty(),
        lockfile: input.lock_path,
        reasons,
    })
}

/// The requirements a previous lock does not meet, in words.
fn unmet_requirements(input: &requirements::Input, previous: &lockfile::Previous) -> Vec<String> {
    let mut reasons = Vec::new();
    for located in &input.requirements {
        let req = &located.requirement;
        match previous.pins.get(&req.name) {
            Some(pinned) => {
                if let Some(VersionOrUrl::VersionSpecifier(spec)) = &req.version_or_url {
                    if !spec.contains(pinned) {
                        reasons.push(format!(
                            "the pin `{}=={pinned}` does not satisfy `{req}` ({})",
                            req.name, located.origin
                        ));
                    }
                }
            }
            None if req.marker.is_true() => reasons.push(format!(
                "`{}` is required ({}) but not pinned",
                req.name, located.origin
            )),
            None => {}
        }
    }
    reasons
}

/// `[general] python` of the plugin's configuration, when the plugin has a `config.ini`.
pub(crate) fn configured_python(dir: &Path, settings: &Settings) -> Result<Option<String>> {
    if !dir.join("config.ini").is_file() {
        return Ok(None);
    }
    let config = crate::config::load_reported(dir, settings)?;
    Ok(config
        .get("general", "python")
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().to_owned()))
}

/// The interpreter `python` and the target it makes with `--python-version` and `--platform`.
fn find_target(python: &str, cache_dir: &Path, args: &Options) -> Result<Target, LockError> {
    let path = interpreter::find(python).map_err(LockError::NoInterpreter)?;
    let probe = interpreter::probe(&path, Some(cache_dir)).map_err(|e| LockError::Interpreter {
        python: python.to_owned(),
        cause: Cause(e.to_string()),
    })?;
    Target::new(
        probe,
        args.python_version.as_deref(),
        args.platform.as_deref(),
    )
    .map_err(LockError::Target)
}

/// A resolver error as the user reads it.
fn resolve_error(error: resolve::ResolveError, client: &index::Client) -> anyhow::Error {
    match error {
        resolve::ResolveError::Index(e) => index_error(e, client, None).into(),
        resolve::ResolveError::Required {
            required_by,
            source,
        } => index_error(source, client, Some(required_by)).into(),
        resolve::ResolveError::NoSolution(report) => LockError::NoSolution(report).into(),
        e @ resolve::ResolveError::Url { .. } => LockError::Unsupported(e).into(),
        e => anyhow::Error::new(e),
    }
}

/// An index error as the user reads it, with what the index has instead of an unknown package.
fn index_error(
    error: Arc<IndexError>,
    client: &index::Client,
    required_by: Option<String>,
) -> LockError {
    LockError::Index {
        suggestion: suggestion(&error, client),
        cause: Cause::of(std::error::Error::source(error.as_ref())),
        error,
        required_by,
    }
}

/// What the index has instead of the package `error` says it lacks (nothing for other errors).
fn suggestion(error: &IndexError, client: &index::Client) -> Suggestion {
    let IndexError::UnknownPackage { name } = error else {
        return Suggestion::Nothing;
    };
    let names = match client.project_names() {
        Ok(names) => names,
        Err(IndexError::Status {
            url, status: 404, ..
        }) => return Suggestion::RootMissing(url),
        Err(_) => Vec::new(),
    };
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(&index::simple::normalize(n), name), n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(Suggestion::Nothing, |(_, n)| Suggestion::Close(n.clone()))
}

/// The status line of a lock (and, with `-v`, each pin that changed): what `mfplug lock`
/// says, and `build` when it relocks.
pub(crate) fn say_locked(locked: &Locked) {
    let pins = &locked.pins;
    for pin in pins {
        match locked.previous.get(&pin.name) {
            Some(old) if old != &pin.version => {
                ui::verbose(format!("  {} {old} -> {}", pin.name, pin.version))
            }
            None => ui::verbose(format!("  {} {} (new)", pin.name, pin.version)),
            _ => {}
        }
    }
    let plural = if pins.len() == 1 { "" } else { "s" };
    ui::status(
        "Locked",
        format!(
            "{} package{plural} into `{SOURCES_DIR}/{LOCK_FILE}` for {}",
            pins.len(),
            locked.target
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_input_and_an_unreadable_include_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_input(dir.path()).err().unwrap();
        assert!(matches!(
            error.downcast_ref::<LockError>(),
            Some(LockError::NoInput { dir: d }) if d == dir.path()
        ));
        let sources = dir.path().join(SOURCES_DIR);
        fs_err::create_dir(&sources).unwrap();
        fs_err::write(sources.join(INPUT_FILE), "-r nosuch.txt\n").unwrap();
        let error = read_input(dir.path()).err().unwrap();
        assert!(matches!(
            error.downcast_ref::<LockError>(),
            Some(LockError::Requirements {
                error: requirements::RequirementsError::Read { .. },
                cause: Some(_),
            })
        ));
        // One `Caused by:` line: the cause's own causes are not printed.
        assert_eq!(error.chain().count(), 2, "{error:?}");
    }
}
