//! `mfplug build` and `mfplug clean`: the lock turned into a working `local/`.
//!
//! The locked files are matched with the vendor dir (`python3_virtualenv_sources/src/`, which
//! travels in the `.plugin`), checked against the lock's hashes, unpacked once into the cache
//! and installed by `wheel` into a new env built beside `local/` (by hard links from the old
//! one for what did not change), which then takes `local/`'s place by one atomic exchange. A
//! second build with nothing changed reads three small files and stops.

pub(crate) mod fetch;
pub(crate) mod node;
pub(crate) mod rust;
pub(crate) mod sdist;
pub(crate) mod venv;
pub(crate) mod wheel;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::fsx::{sha256_file, sha256_hex};
use crate::index::simple::normalize;
use crate::interpreter;
use crate::lock::{INPUT_FILE, LOCK_FILE, SOURCES_DIR};
use crate::ui;

/// The vendor dir, under the sources dir (the name MetWork uses).
pub(crate) const VENDOR_DIR: &str = "src";
/// The env, and the record of what is in it.
pub(crate) const LOCAL: &str = "local";
const STATE_FILE: &str = ".mfplug-build.json";
/// `allow_binary_packages`: absent, build every package from its sdist; empty, use wheels for
/// all; a list of names, wheels for those only (MetWork's rule).
pub(crate) const ALLOW_BINARY: &str = "allow_binary_packages";

/// What goes wrong in a build, with where; `commands` says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// The interpreter is not found, or does not fit (its error's text, without its causes).
    #[error("{0}")]
    Interpreter(interpreter::InterpreterError),
    /// The interpreter `python` does not answer the probe.
    #[error("cannot use the interpreter `{python}`: {error}")]
    InterpreterUnusable {
        python: String,
        error: interpreter::InterpreterError,
    },
    /// No vendored file of a pin fits (`why` says which were there).
    #[error("cannot build `local/`: `{name}=={version}` is missing from `{sources}/{vendor}/`: {why}", sources = SOURCES_DIR, vendor = VENDOR_DIR)]
    NotVendored {
        name: String,
        version: String,
        why: String,
    },
    /// A vendored file that no pin took.
    #[error("vendored `{0}` is not in the lock")]
    NotInLock(String),
    /// A vendored `file` of the pin `name==version` with other bytes than the lock's
    /// (`expected` says what the lock has).
    #[error("vendored `{file}` does not match the lock for `{name}=={version}`: its sha256 is {sha256}, {expected}")]
    NotTheLockedFile {
        file: String,
        name: String,
        version: String,
        sha256: String,
        expected: String,
    },
    #[error("`npm` is not installed, and this plugin has a `package.json`")]
    NoNpm,
    #[error("`cargo` is not installed, and this plugin has a `Cargo.toml`")]
    NoCargo,
    /// `--offline` with a Python lock (its path) that is missing or stale.
    #[error("the lock `{}` is missing or stale", .0.display())]
    StaleLock(PathBuf),
    /// `--offline` with a stale `package-lock.json` (`why`).
    #[error("cannot build `node_modules/` offline: {why}")]
    StaleNodeLock { why: String },
    /// `--offline` with a stale `Cargo.lock` (`why`).
    #[error("cannot build offline: {why}")]
    StaleCargoLock { why: String },
    /// Files to fetch, and nowhere to fetch them from.
    #[error("some locked files are not vendored and no package index is configured")]
    NoIndex,
    /// The index does not list the files of the package `name`.
    #[error("cannot list the files of `{name}`: {error}")]
    ListFiles {
        name: String,
        error: std::sync::Arc<crate::index::IndexError>,
    },
    /// No file of `name==version` on the index has a hash of the lock.
    #[error("no file of `{name}=={version}` on the index matches the lock's hashes{}", wheels_note(*.wheels_allowed))]
    NoMatchingFile {
        name: String,
        version: String,
        wheels_allowed: bool,
    },
    /// The index file `file` cannot be hashed.
    #[error("cannot hash `{file}`: {error}")]
    Hash {
        file: String,
        error: std::sync::Arc<crate::index::IndexError>,
    },
    /// The download of `file` hashes to `actual`, not to the lock's `expected`.
    #[error("downloaded `{file}` does not match the lock: its sha256 is {actual}, the lock's is {expected}")]
    DownloadMismatch {
        file: String,
        actual: String,
        expected: String,
    },
    /// The index file `file` cannot be downloaded.
    #[error("cannot download `{file}`: {error}")]
    Download {
        file: String,
        error: crate::index::IndexError,
    },
    /// A file copied from `path` hashes to `actual`, not to `expected`.
    #[error("`{}` does not have the expected sha256 {expected} (it has {actual})", path.display())]
    ChangedFile {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// Offline, the build requirements of an sdist are not in the vendor dir.
    #[error("the build requirements ({}) are not vendored", .0.join(", "))]
    BuildRequirementsNotVendored(Vec<String>),
}

/// The end of [`BuildError::NoMatchingFile`]'s message: whether wheels were tried.
fn wheels_note(wheels_allowed: bool) -> &'static str {
    if wheels_allowed {
        ""
    } else {
        " (wheels are not allowed for it)"
    }
}

/// One locked package, as the lockfile's strict reader gives it.
pub(crate) use crate::lock::lockfile::LockedPin as Pin;

/// The name and version of a distribution file name: `index::simple`'s one parser.
pub(crate) use crate::index::simple::file_identity;

/// What is in `local/`, written last by a build: the no-op check compares it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    lock_sha256: String,
    interpreter: String,
    vendor: String,
    allow_binary: Option<Vec<String>>,
    /// name -> (wheel sha256, dist-info dir)
    packages: BTreeMap<String, (String, String)>,
}

/// Names, sizes and mtimes of the vendor dir: what tells, without hashing, that it changed.
fn vendor_stamp(vendor: &Path) -> String {
    let mut lines: Vec<String> = fs_err::read_dir(vendor)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    let mtime = meta
                        .modified()
                        .ok()?
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?
                        .as_nanos();
                    Some(format!(
                        "{}:{}:{mtime}",
                        e.file_name().to_string_lossy(),
                        meta.len()
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    sha256_hex(lines.join("\n").as_bytes())
}

/// `allow_binary_packages` read as MetWork does.
fn allow_binary(sources: &Path) -> Option<Vec<String>> {
    let text = fs_err::read_to_string(sources.join(ALLOW_BINARY)).ok()?;
    Some(
        text.lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter(|l| !l.is_empty())
            .map(normalize)
            .collect(),
    )
}

/// What a build of `local/` did.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) packages: usize,
    pub(crate) installed: Vec<String>,
    pub(crate) removed: Vec<String>,
    pub(crate) noop: bool,
}

/// A hold on the build of one plugin dir: a second build of it waits.
struct BuildLock {
    _file: fs_err::File,
}

fn build_lock(dir: &Path, cache: &Path) -> Result<BuildLock> {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let key = sha256_hex(abs.to_string_lossy().as_bytes());
    let locks = cache.join("locks");
    fs_err::create_dir_all(&locks)?;
    let path = locks.join(format!("build-{}.lock", key.get(..16).unwrap_or(&key)));
    let file = fs_err::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    if file.try_lock().is_err() {
        ui::status(
            "Waiting",
            format!("for another `mfplug build` of `{}`", dir.display()),
        );
        file.lock()
            .with_context(|| format!("cannot lock `{}`", path.display()))?;
    }
    Ok(BuildLock { _file: file })
}

/// The interpreter of the plugin in `dir`: `[general] python`, else `python3` on PATH.
fn target(dir: &Path, settings: &Settings, cache: &Path) -> Result<interpreter::Target> {
    let python =
        crate::lock::configured_python(dir, settings)?.unwrap_or_else(|| "python3".to_owned());
    let path = interpreter::find(&python).map_err(BuildError::Interpreter)?;
    let probe = interpreter::probe(&path, Some(cache))
        .map_err(|error| BuildError::InterpreterUnusable { python, error })?;
    Ok(interpreter::Target::new(probe, None, None).map_err(BuildError::Interpreter)?)
}

/// What a build of `local/` works from: the lock, the vendor dir, the old env's state and
/// the target interpreter, read once.
struct Plan<'a> {
    dir: &'a Path,
    /// Where the fetch of what the vendor dir lacks is shown.
    progress: &'a dyn ui::Progress,
    offline: bool,
    /// The index flags, for the files the vendor dir lacks.
    index: crate::index::config::Flags,
    cache: PathBuf,
    lock_path: PathBuf,
    lock_text: String,
    lock_sha: String,
    vendor: PathBuf,
    local: PathBuf,
    old_state: Option<State>,
    allow: Option<Vec<String>>,
    target: std::sync::Arc<interpreter::Target>,
    base: venv::Base,
    interpreter_id: String,
    stamp: String,
}

impl<'a> Plan<'a> {
    /// Reads what the build of `dir` needs (holding no lock: the caller holds the build's).
    fn read(
        dir: &'a Path,
        settings: &Settings,
        flags: &Flags,
        progress: &'a dyn ui::Progress,
        cache: PathBuf,
    ) -> Result<Plan<'a>> {
        let offline = flags.offline;
        let sources = dir.join(SOURCES_DIR);
        let lock_path = sources.join(LOCK_FILE);
        let lock_text = fs_err::read_to_string(&lock_path)?;
        let vendor = sources.join(VENDOR_DIR);
        let local = dir.join(LOCAL);
        let old_state: Option<State> = fs_err::read_to_string(local.join(STATE_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let target = std::sync::Arc::new(target(dir, settings, &cache)?);
        let base = venv::Base {
            executable: PathBuf::from(&target.probe.executable),
            full_version: target.probe.markers.python_full_version.clone(),
            version: target.probe.markers.python_version.clone(),
        };
        let interpreter_id = format!(
            "{} {}",
            target.probe.executable, target.probe.markers.python_full_version
        );
        Ok(Plan {
            dir,
            progress,
            offline,
            index: flags.index.clone(),
            lock_sha: sha256_hex(lock_text.as_bytes()),
            stamp: vendor_stamp(&vendor),
            allow: allow_binary(&sources),
            cache,
            lock_path,
            lock_text,
            vendor,
            local,
            old_state,
            target,
            base,
            interpreter_id,
        })
    }

    /// The old env's package count when nothing changed since it was built: same lock,
    /// interpreter, vendor dir and `allow_binary_packages`. Online, a vendor dir that
    /// disappeared must be fetched again whatever the state says.
    fn fresh(&self) -> Option<usize> {
        let old = self.old_state.as_ref()?;
        let wants_fetch = !self.offline && !self.vendor.is_dir();
        let same = !wants_fetch
            && old.lock_sha256 == self.lock_sha
            && old.interpreter == self.interpreter_id
            && old.vendor == self.stamp
            && old.allow_binary == self.allow
            && self.local.join("pyvenv.cfg").is_file();
        same.then_some(old.packages.len())
    }

    /// Every vendored file and its sha256: hashed here offline; online, by the fetch that
    /// makes the vendor dir hold what the lock names.
    fn vendored(&self, pins: &[Pin]) -> Result<BTreeMap<String, String>> {
        if self.offline {
            return fetch::hash_vendor_dir(&self.vendor);
        }
        let done = fetch::vendor(
            self.dir,
            &self.lock_text,
            pins,
            &self.target,
            self.allow.as_deref(),
            &fetch::Fetch {
                cache: &self.cache,
                index: &self.index,
                progress: self.progress,
            },
        )?;
        for name in &done.replaced {
            ui::status(
                "Replaced",
                format!("`{name}` (its bytes were not the lock's for that name)"),
            );
        }
        for name in &done.fetched {
            ui::status("Vendored", format!("`{name}`"));
        }
        for name in &done.pruned {
            ui::status("Pruned", format!("`{name}` (the lock no longer names it)"));
        }
        Ok(done.hashes)
    }
}

/// The vendored files, by name, path and sha256, and which of them a pin took.
struct Vendored {
    files: Vec<(String, PathBuf)>,
    hashes: Vec<String>,
    used: HashSet<usize>,
}

/// The file each pin installs from, and the sdist builds that makes wheels of.
struct Chooser<'p, 'a> {
    plan: &'p Plan<'a>,
    vendored: Vendored,
    client: Option<std::sync::Arc<crate::index::Client>>,
}

impl Chooser<'_, '_> {
    /// The file that installs `pin`: its wheel if wheels are allowed for it (or only a wheel
    /// is there), else a wheel built from its sdist; an error when none fits.
    fn choose(&mut self, pin: &Pin) -> Result<(Pin, PathBuf, String)> {
        let (wheel, sdist, candidates) = self.candidates(pin)?;
        let plan = self.plan;
        let wheels_allowed = match &plan.allow {
            None => false,
            Some(list) => list.is_empty() || list.contains(&pin.name),
        };
        let files = &self.vendored.files;
        let pick = match (wheel, sdist) {
            (Some(w), _) if wheels_allowed => w,
            (Some(w), None) => {
                ui::warn(format!(
                    "`{}` is not in `{ALLOW_BINARY}` but only a wheel of it is vendored: using the wheel",
                    pin.name
                ));
                w
            }
            (_, Some(s)) => return self.build_sdist(pin, s),
            (None, None) => {
                let found: Vec<&str> = candidates.iter().map(|i| files[*i].0.as_str()).collect();
                let why = if found.is_empty() {
                    "no file of it is vendored".to_owned()
                } else {
                    format!(
                        "the vendored files ({}) do not fit {}",
                        found.join(", "),
                        plan.target.describe()
                    )
                };
                return Err(BuildError::NotVendored {
                    name: pin.name.clone(),
                    version: pin.version.clone(),
                    why,
                }
                .into());
            }
        };
        Ok((
            pin.clone(),
            files[pick].1.clone(),
            self.vendored.hashes[pick].clone(),
        ))
    }

    /// The vendored files of `pin` that the lock accepts: the first wheel that fits the
    /// target, the sdist, and every file named after the pin. A file of the pinned version
    /// whose bytes are not the lock's is an error.
    fn candidates(&mut self, pin: &Pin) -> Result<(Option<usize>, Option<usize>, Vec<usize>)> {
        let plan = self.plan;
        let v = &mut self.vendored;
        let candidates: Vec<usize> = (0..v.files.len())
            .filter(|i| file_identity(&v.files[*i].0).is_some_and(|(n, _)| n == pin.name))
            .collect();
        let (mut wheel, mut sdist) = (None, None);
        for &i in &candidates {
            let (Some((name, _)), Some(sha)) = (v.files.get(i), v.hashes.get(i)) else {
                continue;
            };
            if !fetch::is_locked_file(pin, &plan.vendor, name, sha) {
                let (_, version) = file_identity(name).unwrap_or_default();
                if version == pin.version {
                    return Err(not_the_locked_file(pin, name, sha));
                }
                continue;
            }
            v.used.insert(i);
            if name.ends_with(".whl") {
                if plan.target.accepts_wheel(name) && wheel.is_none() {
                    wheel = Some(i);
                }
            } else {
                sdist = Some(i);
            }
        }
        Ok((wheel, sdist, candidates))
    }

    /// A wheel of `pin` built from the vendored sdist `s` (cached by the sdist's hash).
    fn build_sdist(&mut self, pin: &Pin, s: usize) -> Result<(Pin, PathBuf, String)> {
        let plan = self.plan;
        if self.client.is_none() && !plan.offline {
            self.client = Some(fetch::client(
                plan.dir,
                &plan.lock_text,
                &plan.cache,
                &plan.index,
            )?);
        }
        let (name, path) = &self.vendored.files[s];
        ui::status(
            "Building",
            format!("`{}` from its sdist `{name}`", pin.name),
        );
        let built = sdist::build_wheel(
            path,
            &self.vendored.hashes[s],
            &plan.target,
            &plan.base,
            self.client.as_ref(),
            &plan.vendor.join(sdist::BUILD_DIR),
            &plan.cache,
        )
        .with_context(|| format!("cannot build `{}=={}` from `{name}`", pin.name, pin.version))?;
        let sha = sha256_file(&built)?;
        Ok((pin.clone(), built, sha))
    }

    /// Refuses a vendored file no pin took.
    fn all_used(&self) -> Result<()> {
        let unused = (0..self.vendored.files.len()).find(|i| !self.vendored.used.contains(i));
        match unused {
            None => Ok(()),
            Some(i) => Err(BuildError::NotInLock(self.vendored.files[i].0.clone()).into()),
        }
    }
}

/// A vendored file of a pin's version whose bytes are not what the lock names.
fn not_the_locked_file(pin: &Pin, name: &str, sha: &str) -> anyhow::Error {
    let expected = match pin.hash_of(name) {
        Some(h) => format!("the lock's sha256 for that name is {h}"),
        None if pin.files.is_empty() => {
            "it is not one of the pin's hashes, or its content is not of the kind its name says"
                .to_owned()
        }
        None => "the lock names no file of that name".to_owned(),
    };
    BuildError::NotTheLockedFile {
        file: name.to_owned(),
        name: pin.name.clone(),
        version: pin.version.clone(),
        sha256: sha.to_owned(),
        expected,
    }
    .into()
}

/// Builds `local/` of the plugin in `dir` from its lock and vendor dir, offline, for an env
/// that will live at `prefix/local` (the dir itself, or where install moves it): read the
/// plan, stop if fresh, vendor, choose a file per pin, build the new env beside the old one,
/// swap it in.
pub(crate) fn build_local(
    dir: &Path,
    prefix: &Path,
    settings: &Settings,
    flags: &Flags,
    progress: &dyn ui::Progress,
) -> Result<Built> {
    let cache = crate::index::default_cache_dir();
    let _lock = build_lock(dir, &cache)?;
    let plan = Plan::read(dir, settings, flags, progress, cache)?;
    if let Some(packages) = plan.fresh() {
        return Ok(Built {
            packages,
            installed: Vec::new(),
            removed: Vec::new(),
            noop: true,
        });
    }
    let pins = crate::lock::lockfile::read_pins(&plan.lock_text)
        .with_context(|| format!("cannot read `{}`", plan.lock_path.display()))?;
    let vendored = plan.vendored(&pins)?;
    let mut chooser = Chooser {
        plan: &plan,
        vendored: Vendored {
            files: vendored
                .keys()
                .map(|name| (name.clone(), plan.vendor.join(name)))
                .collect(),
            hashes: vendored.into_values().collect(),
            used: HashSet::new(),
        },
        client: None,
    };
    let chosen = pins
        .iter()
        .map(|pin| chooser.choose(pin))
        .collect::<Result<Vec<_>>>()?;
    chooser.all_used()?;
    install_env(&plan, prefix, &chosen)
}

/// The new env, built beside `local/` (from a hard-linked copy of the old one when the
/// interpreter is the same: its unchanged packages kept, the others uninstalled), the chosen
/// files installed on the thread pool, then swapped in by one exchange.
fn install_env(plan: &Plan, prefix: &Path, chosen: &[(Pin, PathBuf, String)]) -> Result<Built> {
    let (dir, local) = (plan.dir, &plan.local);
    let staging = tempfile::Builder::new()
        .prefix(".mfplug-local-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a dir in `{}`", dir.display()))?;
    let root = staging.path().join("env");
    let layout = wheel::Layout {
        root: root.clone(),
        prefix: prefix.join(LOCAL),
        python_version: plan.base.version.clone(),
    };
    let (keep, removed) = reuse_old_env(plan, &layout, chosen)?;
    let prompt = fs_err::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "local".into());
    venv::create(&root, &layout.prefix, &plan.base, &prompt)?;
    let todo: Vec<&(Pin, PathBuf, String)> = chosen
        .iter()
        .filter(|(p, _, _)| !keep.contains_key(&p.name))
        .collect();
    let outcomes = crate::pool::map(&todo, crate::pool::cpu_threads(8), |(pin, path, sha)| {
        wheel::unpack_cached(path, sha, &plan.cache)
            .and_then(|unpacked| wheel::install(&unpacked, &layout))
            .with_context(|| {
                format!(
                    "cannot install `{}`",
                    path.file_name().unwrap_or_default().to_string_lossy()
                )
            })
            .map(|info| (pin.name.clone(), sha.clone(), info))
    });
    let results = outcomes.into_iter().collect::<Result<Vec<_>>>()?;
    let mut installed = Vec::new();
    let mut packages = keep;
    for (name, sha, info) in results {
        installed.push(name.clone());
        packages.insert(name, (sha, info));
    }
    installed.sort();
    let state = State {
        lock_sha256: plan.lock_sha.clone(),
        interpreter: plan.interpreter_id.clone(),
        vendor: plan.stamp.clone(),
        allow_binary: plan.allow.clone(),
        packages,
    };
    fs_err::write(root.join(STATE_FILE), serde_json::to_string_pretty(&state)?)?;
    // Swap: one exchange with the old env, or one rename.
    let exchanged = if local.exists() {
        crate::fsx::exchange(&root, local)
    } else {
        fs_err::rename(&root, local)
    };
    exchanged.with_context(|| format!("cannot move the new env to `{}`", local.display()))?;
    drop(staging);
    Ok(Built {
        packages: state.packages.len(),
        installed,
        removed,
        noop: false,
    })
}

/// The packages of an env, by name: the sha256 of the file installed and its install info.
type Packages = BTreeMap<String, (String, String)>;

/// The packages of the old env that stay (same file), after copying the old env into the new
/// root and uninstalling the others from it; nothing when the interpreter changed.
fn reuse_old_env(
    plan: &Plan,
    layout: &wheel::Layout,
    chosen: &[(Pin, PathBuf, String)],
) -> Result<(Packages, Vec<String>)> {
    let mut keep = BTreeMap::new();
    let mut removed = Vec::new();
    let reuse = plan.old_state.as_ref().filter(|old| {
        old.interpreter == plan.interpreter_id && plan.local.join("pyvenv.cfg").is_file()
    });
    let Some(old) = reuse else {
        return Ok((keep, removed));
    };
    clone_tree(&plan.local, &layout.root)?;
    let wanted: HashMap<&str, &str> = chosen
        .iter()
        .map(|(p, _, h)| (p.name.as_str(), h.as_str()))
        .collect();
    for (name, (sha, info)) in &old.packages {
        if wanted.get(name.as_str()) == Some(&sha.as_str()) {
            keep.insert(name.clone(), (sha.clone(), info.clone()));
        } else {
            wheel::uninstall(layout, info)?;
            removed.push(name.clone());
        }
    }
    Ok((keep, removed))
}

/// Copies a tree by hard links (symlinks recreated): the new env starts as the old one, and
/// the old one is left untouched because files are only ever replaced, never written in place.
fn clone_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs_err::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            let link = fs_err::read_link(entry.path())?;
            fs_err::os::unix::fs::symlink(link, &target)?;
        } else if fs_err::hard_link(entry.path(), &target).is_err() {
            fs_err::copy(entry.path(), &target)?;
        }
    }
    let _ = fs_err::remove_file(to.join(STATE_FILE));
    Ok(())
}

/// Runs a tool of a plugin kind (`npm`, `cargo`) in `dir`; a tool that is not installed is the
/// error `missing`.
pub(crate) fn run_tool(
    mut command: std::process::Command,
    args: &[&str],
    dir: &Path,
    missing: BuildError,
) -> Result<()> {
    let tool = command.get_program().to_string_lossy().into_owned();
    ui::verbose(format!(
        "running `{tool} {}` in `{}`",
        args.join(" "),
        dir.display()
    ));
    let status = command.args(args).current_dir(dir).status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing.into()
        } else {
            anyhow::Error::new(e).context(format!("cannot run `{tool}`"))
        }
    })?;
    if !status.success() {
        bail!("`{tool} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Whether a plugin dir is a Python plugin: it has a requirements input or a lock.
pub(crate) fn is_python(dir: &Path) -> bool {
    let sources = dir.join(SOURCES_DIR);
    sources.join(INPUT_FILE).is_file() || sources.join(LOCK_FILE).is_file()
}

/// The kinds of a plugin, in the order their builders run: Python, Node, Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Python,
    Node,
    Rust,
}

pub(crate) fn kinds(dir: &Path) -> Vec<Kind> {
    let mut out = Vec::new();
    if is_python(dir) {
        out.push(Kind::Python);
    }
    if node::is_node(dir) {
        out.push(Kind::Node);
    }
    if rust::is_rust(dir) {
        out.push(Kind::Rust);
    }
    out
}

/// How to build: what `build` and `develop` are given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    /// Use only the vendor dir and the caches.
    pub(crate) offline: bool,
    /// Compile the env's bytecode after a Python build.
    pub(crate) compile: bool,
    /// Where to fetch from (and relock from): the flags, else what the lock records.
    pub(crate) index: crate::index::config::Flags,
}

/// What to build, and how.
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    pub(crate) flags: Flags,
}

/// What a build did: the plugin's kinds, in the order their builders ran, and what the
/// Python builder did (when the plugin has Python requirements).
pub(crate) struct Report {
    pub(crate) kinds: Vec<Kind>,
    pub(crate) python: Option<PythonReport>,
}

/// What the Python builder did: `local/` built (or found fresh) from the lock.
pub(crate) struct PythonReport {
    pub(crate) built: Built,
    pub(crate) elapsed: std::time::Duration,
}

/// `mfplug build`: every builder of the plugin, in order.
pub(crate) fn build(
    opts: &Options,
    settings: &Settings,
    progress: &dyn ui::Progress,
) -> Result<Report> {
    let dir = &opts.dir;
    let kinds = kinds(dir);
    let mut report = Report {
        kinds: kinds.clone(),
        python: None,
    };
    for kind in kinds {
        match kind {
            Kind::Python => report.python = Some(python(opts, settings, progress)?),
            Kind::Node => node::build(dir, opts.flags.offline).with_context(|| {
                format!("failed to build the node modules of `{}`", dir.display())
            })?,
            Kind::Rust => {
                rust::build(dir, opts.flags.offline).with_context(|| {
                    format!("failed to build the binaries of `{}`", dir.display())
                })?;
            }
        }
    }
    Ok(report)
}

/// Builds the plugin in `dir` (found upward when `None`) and says what it did, as `mfplug
/// build` does: what `develop` runs before it starts the daemons and when the requirements
/// change.
pub(crate) fn run(dir: Option<PathBuf>, flags: &Flags, settings: &Settings) -> Result<()> {
    let opts = Options {
        dir: crate::plugin::find_dir(dir)?,
        flags: flags.clone(),
    };
    say_built(&opts.dir, &build(&opts, settings, &ui::NoProgress)?);
    Ok(())
}

/// The status lines of a build: nothing to build, `local/` fresh, or what was built.
pub(crate) fn say_built(dir: &Path, report: &Report) {
    if report.kinds.is_empty() {
        ui::status(
            "Finished",
            format!(
                "`{}` has no Python requirements, `package.json` or `Cargo.toml`: nothing to build",
                dir.display()
            ),
        );
    }
    let Some(python) = &report.python else {
        return;
    };
    let built = &python.built;
    if built.noop {
        ui::status(
            "Fresh",
            format!(
                "`local/` is up to date ({} packages): nothing to do",
                built.packages
            ),
        );
    } else {
        ui::status(
            "Built",
            format!(
                "`local/`: {} packages ({} installed, {} removed) in {:.2} s",
                built.packages,
                built.installed.len(),
                built.removed.len(),
                python.elapsed.as_secs_f64()
            ),
        );
    }
}

/// Whether the lock of `dir` is missing, or made from other requirements than today's.
fn lock_is_stale(dir: &Path) -> bool {
    let lock_path = dir.join(SOURCES_DIR).join(LOCK_FILE);
    let input_path = dir.join(SOURCES_DIR).join(INPUT_FILE);
    match (
        fs_err::read_to_string(&lock_path),
        crate::lock::requirements::read(&input_path),
    ) {
        (Err(_), _) => true,
        (Ok(text), Ok(input)) => {
            crate::lock::lockfile::parse(&text).input_sha256.as_deref()
                != Some(input.sha256().as_str())
        }
        (Ok(_), Err(_)) => false,
    }
}

/// The Python builder: `local/` from the lock, relocked first when it is stale.
fn python(
    opts: &Options,
    settings: &Settings,
    progress: &dyn ui::Progress,
) -> Result<PythonReport> {
    let started = std::time::Instant::now();
    let dir = &opts.dir;
    if lock_is_stale(dir) {
        if opts.flags.offline {
            return Err(BuildError::StaleLock(dir.join(SOURCES_DIR).join(LOCK_FILE)).into());
        }
        // Relock first, as `mfplug lock` would.
        let lock = crate::lock::Options {
            dir: dir.clone(),
            index: opts.flags.index.clone(),
            ..crate::lock::Options::default()
        };
        let locked = crate::lock::lock(&lock, settings, &ui::NoProgress)?;
        crate::lock::say_locked(&locked);
    }
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    let built = build_local(dir, &abs, settings, &opts.flags, progress)
        .with_context(|| format!("failed to build `{}`", dir.display()))?;
    if opts.flags.compile && !built.noop {
        compile(dir)?;
    }
    Ok(PythonReport {
        built,
        elapsed: started.elapsed(),
    })
}

/// Compiles the bytecode of `local/lib` with the env's own Python.
fn compile(dir: &Path) -> Result<()> {
    let python = dir.join(LOCAL).join("bin/python");
    let status = std::process::Command::new(&python)
        .args(["-m", "compileall", "-q", "-j", "0"])
        .arg(dir.join(LOCAL).join("lib"))
        .status()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    if !status.success() {
        bail!("compiling the bytecode failed ({status})");
    }
    Ok(())
}

/// `mfplug clean`: removes the generated files of `dir` (with `super_clean`, the lock and
/// the vendored files too); gives the paths it removed, in order.
pub(crate) fn clean(dir: &Path, super_clean: bool) -> Result<Vec<PathBuf>> {
    let mut targets: Vec<PathBuf> = vec![dir.join(LOCAL), dir.join("node_modules")];
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".mfplug-local-")
            {
                targets.push(entry.path());
            }
        }
    }
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| {
            e.file_name() != LOCAL && e.file_name() != ".git" && e.file_name() != "node_modules"
        })
        .flatten()
    {
        if entry.file_type().is_dir() && entry.file_name() == "__pycache__" {
            targets.push(entry.path().to_path_buf());
        }
    }
    if rust::is_rust(dir) {
        targets.push(dir.join("target"));
    }
    if super_clean {
        targets.push(dir.join(SOURCES_DIR).join(LOCK_FILE));
        targets.push(dir.join(SOURCES_DIR).join(VENDOR_DIR));
        targets.push(dir.join(node::LOCK));
        if rust::is_rust(dir) {
            targets.push(dir.join(rust::LOCK));
            targets.push(dir.join(rust::VENDOR));
        }
    }
    let mut removed = Vec::new();
    for target in targets {
        let Ok(meta) = fs_err::symlink_metadata(&target) else {
            continue;
        };
        if meta.is_dir() {
            fs_err::remove_dir_all(&target)?;
        } else {
            fs_err::remove_file(&target)?;
        }
        removed.push(target);
    }
    Ok(removed)
}
