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
use crate::interpreter::{self, Target};
use crate::ui;

/// Where the input and the lock live in a plugin dir.
pub(crate) const SOURCES_DIR: &str = "python3_virtualenv_sources";
pub(crate) const INPUT_FILE: &str = "requirements-to-freeze.txt";
pub(crate) const LOCK_FILE: &str = "requirements3.txt";

/// What `lock` is asked: the plugin dir and the options of `mfplug lock`, as plain values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    /// Re-resolve every package.
    pub(crate) upgrade: bool,
    /// Re-resolve these packages only.
    pub(crate) upgrade_package: Vec<String>,
    pub(crate) index_url: Option<String>,
    pub(crate) extra_index_url: Vec<String>,
    pub(crate) find_links: Vec<PathBuf>,
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
        return Err(ui::error_with_hint(
            format!("no `{SOURCES_DIR}/{INPUT_FILE}` in `{}`", dir.display()),
            "write the plugin's Python requirements there, one per line (`requests>=2`), then run `mfplug lock` again",
        ));
    }
    let requirements = requirements::read(&input_path).map_err(|e| {
        let hint = match &e {
            requirements::RequirementsError::Malformed { .. } => {
                "a line is `name[extras] specifiers ; markers` (PEP 508), or a pip option such as `-r FILE`"
            }
            requirements::RequirementsError::TooBig { .. } => {
                "a requirements file is a small text file: check the `-r`/`-c` lines"
            }
            requirements::RequirementsError::TooManyIncludes { .. } => {
                "include each generated file once: check the `-r`/`-c` lines"
            }
            _ => "check that the file exists and is readable",
        };
        with_cause(e.to_string(), std::error::Error::source(&e), hint.to_owned())
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
        let (primary, mut extra) =
            index::config::discover(opts.index_url.as_deref(), input.index_url.as_deref(), &env);
        if !opts.extra_index_url.is_empty() || !input.extra_index_urls.is_empty() {
            extra = opts.extra_index_url.clone();
            extra.extend(input.extra_index_urls.iter().cloned());
        }
        let mut find_links = opts.find_links.clone();
        find_links.extend(input.find_links.iter().cloned());
        let mut indexes = Vec::new();
        if input.no_index {
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
            return Err(ui::error_with_hint(
                "no package index is configured",
                "give `--index-url URL`, or set `MFPLUG_INDEX_URL`, `PIP_INDEX_URL` or `index-url` in `[global]` of pip.conf (or use `--find-links DIR` for a dir of wheels)",
            ));
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
                .map_err(|e| index_error(&e, client, None))
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

fn find_target(python: &str, cache_dir: &Path, args: &Options) -> Result<Target> {
    let hint =
        "install it, or name another with `--python` or `python` in `[general]` of `config.ini`";
    let path = interpreter::find(python).map_err(|e| ui::error_with_hint(e.to_string(), hint))?;
    let probe = interpreter::probe(&path, Some(cache_dir)).map_err(|e| {
        with_cause(
            format!("cannot use the interpreter `{python}`"),
            Some(&e),
            hint.to_owned(),
        )
    })?;
    Target::new(
        probe,
        args.python_version.as_deref(),
        args.platform.as_deref(),
    )
    .map_err(|e| {
        ui::error_with_hint(
            e.to_string(),
            "give `--python-version` as `3.11` and `--platform` as a wheel platform tag such as `manylinux_2_17_x86_64`",
        )
    })
}

/// A resolver error as the user reads it, with what to do.
fn resolve_error(error: resolve::ResolveError, client: &Arc<index::Client>) -> anyhow::Error {
    match error {
        resolve::ResolveError::Index(e) => index_error(&e, client, None),
        resolve::ResolveError::Required {
            required_by,
            source,
        } => index_error(&source, client, Some(&required_by)),
        resolve::ResolveError::NoSolution(report) => ui::error_with_hint(
            format!("no set of versions satisfies the requirements:\n{report}"),
            "loosen a specifier in `requirements-to-freeze.txt`; a version counts only if a file of it fits the target interpreter, pre-releases only with `--pre` or a specifier naming one, yanked ones only with an exact `==` pin",
        ),
        e @ resolve::ResolveError::Url { .. } => {
            ui::error_with_hint(e.to_string(), "require the package by name and version")
        }
        e => anyhow::Error::new(e),
    }
}

fn index_error(
    error: &IndexError,
    client: &Arc<index::Client>,
    required_by: Option<&str>,
) -> anyhow::Error {
    let message = match required_by {
        Some(by) => format!("{error}, required by {by}"),
        None => error.to_string(),
    };
    let hint = match error {
        IndexError::UnknownPackage { name } => {
            let names = match client.project_names() {
                Ok(names) => names,
                Err(IndexError::Status { url, status: 404, .. }) => {
                    let hint = format!("the index's root page `{url}` answers 404 too: check the index URL, it must be a simple index (PEP 503/691) such as `https://HOST/simple`");
                    return with_cause(message, None, hint);
                }
                Err(_) => Vec::new(),
            };
            let best = names
                .iter()
                .map(|n| (strsim::jaro_winkler(&index::simple::normalize(n), name), n))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match best {
                Some((_, n)) => format!("did you mean `{n}`?"),
                None => "check the name in `requirements-to-freeze.txt`, and that the index is the one that has it".to_owned(),
            }
        }
        IndexError::Status { status: 401 | 403, .. } => {
            "the index wants credentials: put them in the URL (`https://user:token@host/...`) or in `~/.netrc`".to_owned()
        }
        IndexError::Status { status: 404, .. } => {
            "check the index URL: it must be a simple index (PEP 503/691), such as `https://HOST/simple`".to_owned()
        }
        IndexError::Unreachable { source, .. } if source.to_string().contains("certificate") => {
            "the index's TLS certificate is not trusted: point `SSL_CERT_FILE`, `PIP_CERT` or `cert` in pip.conf at the CA bundle that signed it".to_owned()
        }
        IndexError::Status { .. } | IndexError::Unreachable { .. } | IndexError::Read { .. } => {
            "check that the index is up and its URL right; `--offline` locks from the cache alone".to_owned()
        }
        IndexError::Garbage { .. } => {
            "check that the URL is a simple index (PEP 503/691), not a web page or a proxy's error page".to_owned()
        }
        IndexError::HashMismatch { .. } => {
            "the index lists another file than it serves: a broken mirror or a proxy in the way; nothing was written".to_owned()
        }
        IndexError::Offline { .. } => "run `mfplug lock` once without `--offline` to fill the cache".to_owned(),
        IndexError::Io { .. } => "check the `--find-links` dir".to_owned(),
        IndexError::Metadata { .. } => "the release's metadata is broken: exclude that version with `!=`".to_owned(),
        IndexError::NotModified { .. } => {
            "the index or a proxy in the way answers `304` to plain requests: check the proxy, or clear `$XDG_CACHE_HOME/mfplug/pages`".to_owned()
        }
        IndexError::TooBig { .. } => {
            "that is not a package index page: check the index URL and any proxy in the way".to_owned()
        }
    };
    with_cause(message, std::error::Error::source(error), hint)
}

/// `message`, then its cause as a `Caused by:` line, then the hint.
fn with_cause(
    message: String,
    cause: Option<&(dyn std::error::Error + 'static)>,
    hint: String,
) -> anyhow::Error {
    match cause {
        Some(cause) => anyhow::Error::new(ui::UserError {
            message: cause.to_string(),
            hint: Some(hint),
        })
        .context(message),
        None => ui::error_with_hint(message, hint),
    }
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
