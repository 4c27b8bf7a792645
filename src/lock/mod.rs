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
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use pep508_rs::{PackageName, VersionOrUrl};
use serde::Serialize;

use crate::cli::LockArgs;
use crate::config::Settings;
use crate::index::{self, IndexError};
use crate::interpreter::{self, Target};
use crate::ui;

/// Where the input and the lock live in a plugin dir.
pub(crate) const SOURCES_DIR: &str = "python3_virtualenv_sources";
pub(crate) const INPUT_FILE: &str = "requirements-to-freeze.txt";
pub(crate) const LOCK_FILE: &str = "requirements3.txt";

#[derive(Serialize)]
struct CheckReport {
    fresh: bool,
    lockfile: PathBuf,
    reasons: Vec<String>,
}

#[derive(Serialize)]
struct LockReport<'a> {
    lockfile: &'a Path,
    packages: Vec<PackageReport>,
    requests: usize,
    elapsed_ms: u128,
}

#[derive(Serialize)]
struct PackageReport {
    name: String,
    version: String,
    hashes: usize,
}

/// `mfplug lock [DIR]`.
pub(crate) fn run(args: LockArgs, settings: &Settings, json: bool) -> Result<ExitCode> {
    let start = Instant::now();
    let dir = crate::plugin::find_dir(args.dir.clone())?;
    let sources = dir.join(SOURCES_DIR);
    let input_path = sources.join(INPUT_FILE);
    let lock_path = sources.join(LOCK_FILE);
    if !input_path.is_file() {
        return Err(ui::error_with_hint(
            format!("no `{SOURCES_DIR}/{INPUT_FILE}` in `{}`", dir.display()),
            "write the plugin's Python requirements there, one per line (`requests>=2`), then run `mfplug lock` again",
        ));
    }
    let input = requirements::read(&input_path).map_err(|e| {
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
    let input_sha256 = input.sha256();
    let previous_text = fs_err::read_to_string(&lock_path).ok();
    let previous = previous_text
        .as_deref()
        .map(lockfile::parse)
        .unwrap_or_default();

    if args.check {
        return check(
            &input,
            &input_sha256,
            previous_text.is_some(),
            &previous,
            &lock_path,
            json,
        );
    }

    // The target interpreter: `--python`, `[general] python`, else `python3` on PATH.
    let python = match &args.python {
        Some(p) => p.clone(),
        None => configured_python(&dir, settings)?.unwrap_or_else(|| "python3".to_owned()),
    };
    let cache_dir = index::default_cache_dir();

    // The indexes.
    let env = |key: &str| std::env::var(key).ok();
    let (primary, mut extra) =
        index::config::discover(args.index_url.as_deref(), input.index_url.as_deref(), &env);
    if !args.extra_index_url.is_empty() || !input.extra_index_urls.is_empty() {
        extra = args.extra_index_url.clone();
        extra.extend(input.extra_index_urls.iter().cloned());
    }
    let mut find_links = args.find_links.clone();
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
    // pip's CA bundle (`PIP_CERT`, `cert` in pip.conf) goes to the TLS layer, which reads
    // `SSL_CERT_FILE`; set before any thread starts, and only when the user set neither.
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
    let client = index::Client::new(index::Options {
        indexes: indexes.clone(),
        find_links: find_links.clone(),
        cache_dir: cache_dir.clone(),
        offline: args.offline,
        netrc,
    });
    // The requirements' pages do not depend on the target: fetch them while it is probed.
    for located in &input.requirements {
        client.prefetch_project(&located.requirement.name);
    }
    let target = Arc::new(find_target(&python, &cache_dir, &args)?);

    // Pins to keep.
    let mut preferences: HashMap<PackageName, pep440_rs::Version> = HashMap::new();
    if !args.upgrade {
        let upgraded: Vec<String> = args
            .upgrade_package
            .iter()
            .map(|p| index::simple::normalize(p))
            .collect();
        for (name, version) in &previous.pins {
            if !upgraded.iter().any(|u| u == name.as_ref()) {
                preferences.insert(name.clone(), version.clone());
            }
        }
    }

    let progress = Progress::start(&client);
    let reqs: Vec<_> = input
        .requirements
        .iter()
        .map(|r| r.requirement.clone())
        .collect();
    let constraints: Vec<_> = input
        .constraints
        .iter()
        .map(|r| r.requirement.clone())
        .collect();
    let result = resolve::resolve(
        &client,
        &target,
        &resolve::Request {
            requirements: &reqs,
            constraints: &constraints,
            preferences,
            pre: args.pre || input.pre,
        },
    );
    let resolved = match result {
        Ok(resolved) => resolved,
        Err(e) => {
            progress.finish();
            return Err(resolve_error(e, &client));
        }
    };

    // Every fitting file's hash (downloads run in parallel, started by the resolver).
    let mut pins = Vec::new();
    for package in &resolved {
        let mut hashes = Vec::new();
        let mut files = Vec::new();
        for file in &package.files {
            let hash = client
                .sha256(file)
                .map_err(|e| index_error(&e, &client, None))
                .with_context(|| format!("cannot hash `{}`", file.filename))?;
            hashes.push(hash.to_string());
            files.push((file.filename.clone(), hash.to_string()));
        }
        hashes.sort();
        hashes.dedup();
        files.sort();
        files.dedup();
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
    progress.finish();

    let header = lockfile::Header {
        input_file: INPUT_FILE.to_owned(),
        input_sha256,
        index_urls: indexes
            .iter()
            .map(|u| index::config::strip_credentials(u))
            .collect(),
        find_links: find_links
            .iter()
            .map(|p| index::config::strip_credentials(&p.display().to_string()))
            .collect(),
        python: target.describe(),
    };
    let text = lockfile::render(&header, &pins);
    if previous_text.as_deref() != Some(text.as_str()) {
        crate::fsx::write_atomic(&lock_path, text.as_bytes())
            .with_context(|| format!("cannot write `{}`", lock_path.display()))?;
    }
    let elapsed = start.elapsed();
    if json {
        ui::out_json(&LockReport {
            lockfile: &lock_path,
            packages: pins
                .iter()
                .map(|p| PackageReport {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                    hashes: p.hashes.len(),
                })
                .collect(),
            requests: client.requests(),
            elapsed_ms: elapsed.as_millis(),
        })?;
    }
    for pin in &pins {
        match previous.pins.get(&pin.name) {
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
            target.describe()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `lock --check`: fresh when the recorded input hash is the input's; says why not.
fn check(
    input: &requirements::Input,
    input_sha256: &str,
    exists: bool,
    previous: &lockfile::Previous,
    lock_path: &Path,
    json: bool,
) -> Result<ExitCode> {
    let mut reasons = Vec::new();
    if !exists {
        reasons.push(format!("`{SOURCES_DIR}/{LOCK_FILE}` does not exist"));
    } else if previous.input_sha256.as_deref() != Some(input_sha256) {
        reasons.push(match &previous.input_sha256 {
            Some(_) => format!("`{INPUT_FILE}` (or a file it includes) changed since the lock"),
            None => {
                format!("`{LOCK_FILE}` records no input hash: it was not made by `mfplug lock`")
            }
        });
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
    }
    let fresh = reasons.is_empty();
    if json {
        ui::out_json(&CheckReport {
            fresh,
            lockfile: lock_path.to_path_buf(),
            reasons: reasons.clone(),
        })?;
    }
    if fresh {
        ui::status(
            "Fresh",
            format!("`{SOURCES_DIR}/{LOCK_FILE}` matches `{INPUT_FILE}`"),
        );
        Ok(ExitCode::SUCCESS)
    } else {
        if !json {
            let mut text = format!("`{SOURCES_DIR}/{LOCK_FILE}` is stale");
            for reason in &reasons {
                text.push_str(&format!("\n  - {reason}"));
            }
            ui::print_error(&ui::error_with_hint(text, "run `mfplug lock` to update it"));
        }
        Ok(ExitCode::from(crate::cli::EXIT_FAILURE))
    }
}

/// `[general] python` of the plugin's configuration, when the plugin has a `config.ini`.
pub(crate) fn configured_python(dir: &Path, settings: &Settings) -> Result<Option<String>> {
    if !dir.join("config.ini").is_file() {
        return Ok(None);
    }
    match crate::config::load(dir, settings) {
        Ok(config) => Ok(config
            .get("general", "python")
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().to_owned())),
        Err(problems) => {
            for problem in &problems {
                ui::print_problem(problem);
            }
            Err(ui::error_with_hint(
                format!("cannot read the configuration of `{}`", dir.display()),
                format!("`mfplug check {}` lists every problem", dir.display()),
            ))
        }
    }
}

fn find_target(python: &str, cache_dir: &Path, args: &LockArgs) -> Result<Target> {
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

/// A spinner on a terminal (hidden otherwise) counting the requests.
struct Progress {
    stop: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Progress {
    fn start(client: &Arc<index::Client>) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() || ui::verbosity() != 0 {
            return Progress { stop: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        let (tx, rx) = std::sync::mpsc::channel();
        let client = Arc::clone(client);
        let handle = std::thread::spawn(move || loop {
            bar.set_message(format!("Resolving: {} requests", client.requests()));
            bar.tick();
            if rx
                .recv_timeout(std::time::Duration::from_millis(80))
                .is_ok()
            {
                bar.finish_and_clear();
                break;
            }
        });
        Progress {
            stop: Some((tx, handle)),
        }
    }

    fn finish(self) {}
}

impl Drop for Progress {
    /// Clears the spinner on every way out, errors included, before anything else is printed.
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.stop.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
    }
}
