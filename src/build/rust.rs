//! Rust plugins (a `Cargo.toml` in the plugin dir): `Cargo.lock` with cargo, the binaries
//! built with `cargo build --release --locked` and installed into `bin/` (found with
//! `cargo_metadata`), and the crates vendored into the plugin so that `--offline` builds from
//! the plugin dir alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::ui;

pub(crate) const MANIFEST: &str = "Cargo.toml";
pub(crate) const LOCK: &str = "Cargo.lock";
/// Where `cargo vendor` puts the crates, inside the plugin.
pub(crate) const VENDOR: &str = "rust_vendor";

pub(crate) fn is_rust(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(dir: &Path, args: &[&str]) -> Result<()> {
    super::run_tool(cargo(), args, dir, super::BuildError::NoCargo)
}

/// Why `Cargo.lock` is stale, or `None`: it must exist and satisfy `Cargo.toml`.
pub(crate) fn stale(dir: &Path) -> Result<Option<String>> {
    if !dir.join(LOCK).is_file() {
        return Ok(Some(format!("`{LOCK}` is missing")));
    }
    let output = cargo()
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(dir)
        .output()
        .context("cannot run `cargo metadata`")?;
    if output.status.success() {
        Ok(None)
    } else {
        let text = String::from_utf8_lossy(&output.stderr);
        Ok(Some(
            text.lines()
                .find(|l| l.contains("error"))
                .unwrap_or("`cargo metadata --locked` failed")
                .trim()
                .to_owned(),
        ))
    }
}

/// `Cargo.lock`: made when absent (`cargo generate-lockfile`), kept otherwise.
pub(crate) fn lock(dir: &Path, offline: bool) -> Result<()> {
    if dir.join(LOCK).is_file() {
        ui::status("Fresh", format!("`{}` is kept", dir.join(LOCK).display()));
        return Ok(());
    }
    let mut args = vec!["generate-lockfile"];
    if offline {
        args.push("--offline");
    }
    run(dir, &args)?;
    ui::status("Locked", format!("`{}`", dir.join(LOCK).display()));
    Ok(())
}

/// Whether the lock names crates that come from a registry or git (not paths).
fn has_remote_crates(dir: &Path) -> bool {
    fs_err::read_to_string(dir.join(LOCK)).is_ok_and(|t| t.contains("\nsource = "))
}

/// Vendors the crates into the plugin and points cargo at them (`.cargo/config.toml`).
fn vendor(dir: &Path) -> Result<()> {
    let output = cargo()
        .args(["vendor", "--locked", VENDOR])
        .current_dir(dir)
        .output()
        .context("cannot run `cargo vendor`")?;
    if !output.status.success() {
        bail!(
            "`cargo vendor` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let snippet = String::from_utf8_lossy(&output.stdout).into_owned();
    let config = dir.join(".cargo/config.toml");
    let current = fs_err::read_to_string(&config).unwrap_or_default();
    if !current.contains("vendored-sources") {
        fs_err::create_dir_all(dir.join(".cargo"))?;
        let text = if current.is_empty() {
            snippet
        } else {
            format!("{current}\n{snippet}")
        };
        fs_err::write(&config, text)?;
    }
    ui::status(
        "Vendored",
        format!("the crates into `{}`", dir.join(VENDOR).display()),
    );
    Ok(())
}

/// Builds the binaries and installs them into `bin/`.
pub(crate) fn build(dir: &Path, offline: bool) -> Result<Vec<String>> {
    if let Some(why) = stale(dir)? {
        if offline {
            return Err(super::BuildError::StaleCargoLock { why }.into());
        }
        lock(dir, false)?;
    }
    if !offline && has_remote_crates(dir) && !dir.join(VENDOR).is_dir() {
        vendor(dir)?;
    }
    let mut args = vec!["build", "--release", "--locked"];
    if offline {
        args.push("--offline");
    }
    run(dir, &args)?;
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(dir.join(MANIFEST))
        .no_deps()
        .other_options(vec!["--offline".to_owned()])
        .exec()
        .context("cannot read the crate's metadata")?;
    let release: PathBuf = metadata.target_directory.join("release").into();
    let bin = dir.join("bin");
    fs_err::create_dir_all(&bin)?;
    let mut installed = Vec::new();
    for package in metadata.workspace_packages() {
        for target in &package.targets {
            if !target.kind.iter().any(|k| k.to_string() == "bin") {
                continue;
            }
            let from = release.join(&target.name);
            let to = bin.join(&target.name);
            // Written beside and renamed, so that a running daemon keeps its old binary.
            let temp = bin.join(format!(".{}.mfplug-new", target.name));
            fs_err::copy(&from, &temp)?;
            {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
            }
            fs_err::rename(&temp, &to)?;
            installed.push(target.name.clone());
        }
    }
    installed.sort();
    ui::status("Built", format!("`bin/`: {}", installed.join(", ")));
    Ok(installed)
}
