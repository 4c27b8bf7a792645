//! Building a wheel from an sdist with the target interpreter (PEP 517), in isolation.
//!
//! The sdist is unpacked into a temp dir; a fresh env of the target interpreter gets the
//! `[build-system] requires` of its `pyproject.toml` (setuptools' legacy backend when it has
//! none) and what the backend's `get_requires_for_build_wheel` adds, installed the same way
//! as any wheel; then the backend's `build_wheel` runs there. The wheel is cached by the
//! sdist's sha256 (`$XDG_CACHE_HOME/mfplug/built/SHA256/`). Online, the build requirements
//! are resolved against the index and vendored in `python3_virtualenv_sources/src/.build/`, so
//! that an offline build (or an install) finds them in the plugin dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};

use super::{venv, wheel};
use crate::index::Client;
use crate::interpreter::Target;

/// Where the build requirements are vendored, inside the vendor dir.
pub(crate) const BUILD_DIR: &str = ".build";

const HOOKS: &str = r#"
import importlib, json, os, sys
mode, backend, backend_path, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
sys.path[:0] = [os.path.abspath(p) for p in backend_path]
module, _, attr = backend.partition(":")
hooks = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    hooks = getattr(hooks, part)
if mode == "requires":
    get = getattr(hooks, "get_requires_for_build_wheel", None)
    result = list(get({}) if get else [])
else:
    result = hooks.build_wheel(out, {})
with open(os.path.join(out, ".mfplug-hook-result"), "w") as f:
    json.dump(result, f)
"#;

/// `[build-system]` of `pyproject.toml`: requirements, backend, backend path.
fn build_system(src: &Path) -> Result<(Vec<String>, String, Vec<String>)> {
    let default = (
        vec!["setuptools>=40.8.0".to_owned()],
        "setuptools.build_meta:__legacy__".to_owned(),
        Vec::new(),
    );
    let Ok(text) = fs_err::read_to_string(src.join("pyproject.toml")) else {
        return Ok(default);
    };
    let doc: toml::Value = toml::from_str(&text).context("invalid `pyproject.toml`")?;
    let Some(system) = doc.get("build-system") else {
        return Ok(default);
    };
    let strings = |key: &str| -> Vec<String> {
        system
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let requires = strings("requires");
    let backend = system
        .get("build-backend")
        .and_then(|v| v.as_str())
        .map_or(default.1, str::to_owned);
    Ok((requires, backend, strings("backend-path")))
}

/// Installs `requirements` into the build env: resolved on the index and vendored into
/// `build_vendor` when online, else taken from `build_vendor`.
fn install_requirements(
    requirements: &[String],
    layout: &wheel::Layout,
    target: &Arc<Target>,
    client: Option<&Arc<Client>>,
    build_vendor: &Path,
    cache: &Path,
) -> Result<()> {
    if requirements.is_empty() {
        return Ok(());
    }
    if let Some(client) = client {
        let parsed: Vec<pep508_rs::Requirement> = requirements
            .iter()
            .map(|r| {
                crate::index::requirement::parse_requirement(r)
                    .map_err(|e| anyhow::anyhow!("invalid build requirement `{r}`: {e}"))
            })
            .collect::<Result<_>>()?;
        let resolved = crate::lock::resolve::resolve(
            client,
            target,
            &crate::lock::resolve::Request {
                requirements: &parsed,
                constraints: &[],
                preferences: Default::default(),
                pre: false,
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot resolve the build requirements")?;
        fs_err::create_dir_all(build_vendor)?;
        for package in resolved {
            let Some(file) = package
                .files
                .iter()
                .find(|f| f.is_wheel && target.accepts_wheel(&f.filename))
            else {
                bail!(
                    "build requirement `{}=={}` has no wheel for {}",
                    package.name,
                    package.version,
                    target.describe()
                );
            };
            let out = build_vendor.join(&file.filename);
            if !out.is_file() {
                let got = client.download(file).map_err(|e| anyhow::anyhow!("{e}"))?;
                super::fetch::copy_verified(&got.path, &out, &got.sha256)?;
            }
        }
    }
    let mut found = false;
    for entry in fs_err::read_dir(build_vendor)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".whl") && target.accepts_wheel(&name) {
            let sha = crate::fsx::sha256_file(&entry.path())?;
            let unpacked = wheel::unpack_cached(&entry.path(), &sha, cache)?;
            wheel::install(&unpacked, layout)?;
            found = true;
        }
    }
    if !found {
        return Err(super::BuildError::BuildRequirementsNotVendored(requirements.to_vec()).into());
    }
    Ok(())
}

/// Runs one hook in the build env; gives its JSON result.
fn hook(
    python: &Path,
    src: &Path,
    mode: &str,
    backend: &str,
    backend_path: &[String],
    out: &Path,
) -> Result<serde_json::Value> {
    // As pip and uv run a backend: the isolated env's `bin/` first on `PATH` (the tools its
    // build requirements install, `maturin` or `cmake`, and its `python`), as if activated.
    let bin = python.parent().unwrap_or(Path::new("."));
    let path = std::env::join_paths(
        std::iter::once(bin.to_path_buf()).chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )?;
    let mut command = std::process::Command::new(python);
    command
        .args(["-c", HOOKS, mode, backend])
        .arg(serde_json::to_string(backend_path)?)
        .arg(out)
        .current_dir(src)
        .env("PATH", path)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME");
    if let Some(env_dir) = bin.parent() {
        command.env("VIRTUAL_ENV", env_dir);
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", python.display()))?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "the build backend `{backend}` failed ({}):\n{}",
            output.status,
            tail.join("\n")
        );
    }
    let text = fs_err::read_to_string(out.join(".mfplug-hook-result"))?;
    let _ = fs_err::remove_file(out.join(".mfplug-hook-result"));
    Ok(serde_json::from_str(&text)?)
}

/// Unpacks the sdist at `path` into `dest` (made), whichever format pip builds it from; the
/// archive readers keep every member inside `dest`.
fn unpack(path: &Path, dest: &Path) -> Result<()> {
    use crate::index::metadata::SdistFormat;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = SdistFormat::of(&name).with_context(|| {
        format!(
            "`{}` is not an sdist (`.tar.gz`, `.tgz`, `.tar.bz2`, `.tar.xz` or `.zip`)",
            path.display()
        )
    })?;
    let file = fs_err::File::open(path)?;
    let invalid = || format!("`{}` is not a valid sdist ({name})", path.display());
    match format.tar(file) {
        Some(mut archive) => archive.unpack(dest).with_context(invalid)?,
        None => {
            let file = fs_err::File::open(path)?;
            let mut archive = zip::ZipArchive::new(file).with_context(invalid)?;
            archive.extract(dest).with_context(invalid)?;
        }
    }
    Ok(())
}

/// Builds (or finds in the cache) the wheel of the sdist at `path`; gives its path.
pub(crate) fn build_wheel(
    path: &Path,
    sha256: &str,
    target: &Arc<Target>,
    base: &venv::Base,
    client: Option<&Arc<Client>>,
    build_vendor: &Path,
    cache: &Path,
) -> Result<PathBuf> {
    let built = cache.join("built").join(sha256);
    if let Some(wheel) = find_wheel(&built) {
        return Ok(wheel);
    }
    let work = tempfile::Builder::new()
        .prefix("mfplug-sdist-")
        .tempdir()
        .context("cannot create a temp dir")?;
    let unpacked = work.path().join("src");
    unpack(path, &unpacked)?;
    let mut dirs = fs_err::read_dir(&unpacked)?
        .flatten()
        .filter(|e| e.path().is_dir());
    let src = match (dirs.next(), dirs.next()) {
        (Some(only), None) => only.path(),
        _ => unpacked.clone(),
    };
    let (requires, backend, backend_path) = build_system(&src)?;
    let env_dir = work.path().join("env");
    venv::create(&env_dir, &env_dir, base, "build")?;
    let layout = wheel::Layout {
        root: env_dir.clone(),
        prefix: env_dir.clone(),
        python_version: base.version.clone(),
    };
    install_requirements(&requires, &layout, target, client, build_vendor, cache)?;
    let python = env_dir.join("bin/python");
    let out = work.path().join("dist");
    fs_err::create_dir_all(&out)?;
    let extra = hook(&python, &src, "requires", &backend, &backend_path, &out)?;
    let extra: Vec<String> = extra
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<String> = extra
        .into_iter()
        .filter(|r| !requires.contains(r))
        .collect();
    if !missing.is_empty() {
        install_requirements(&missing, &layout, target, client, build_vendor, cache)?;
    }
    let name = hook(&python, &src, "wheel", &backend, &backend_path, &out)?;
    let name = name
        .as_str()
        .context("the backend's `build_wheel` gave no file name")?;
    if !target.accepts_wheel(name) {
        bail!(
            "the backend built `{name}`, which does not fit {}",
            target.describe()
        );
    }
    let parent = cache.join("built");
    fs_err::create_dir_all(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".built-")
        .tempdir_in(&parent)?;
    fs_err::copy(out.join(name), staging.path().join(name))?;
    let staging = staging.keep();
    if fs_err::rename(&staging, &built).is_err() {
        let _ = fs_err::remove_dir_all(&staging);
    }
    find_wheel(&built).context("the built wheel vanished from the cache")
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    fs_err::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
}
