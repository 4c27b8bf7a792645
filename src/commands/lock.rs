//! `mfplug lock [DIR]`: every lock of the plugin (Python through the `lock` stage, then
//! `package-lock.json`, then `Cargo.lock`); with `--check`, every one is checked and reported.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::build::{self, node, rust, Kind};
use crate::cli::LockArgs;
use crate::lock::{self, Checked, Locked, INPUT_FILE, LOCK_FILE, SOURCES_DIR};
use crate::ui;

pub(crate) fn run(args: LockArgs, ctx: &Ctx) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(args.dir.clone())?;
    let kinds = build::kinds(&dir);
    let (check, offline) = (args.check, args.offline);
    let mut ok = true;
    if kinds.contains(&Kind::Python) || !kinds.iter().any(|k| matches!(k, Kind::Node | Kind::Rust))
    {
        ok = python(&dir, args, ctx)?;
    }
    for kind in kinds {
        let (name, stale) = match kind {
            Kind::Python => continue,
            Kind::Node if check => (node::LOCK, node::stale(&dir)?),
            Kind::Rust if check => (rust::LOCK, rust::stale(&dir)?),
            Kind::Node => {
                node::lock(&dir, offline)?;
                continue;
            }
            Kind::Rust => {
                rust::lock(&dir, offline)?;
                continue;
            }
        };
        match stale {
            None => ui::status("Fresh", format!("`{name}`")),
            Some(why) => {
                ui::print_error(&anyhow::anyhow!("`{name}` is stale: {why}"));
                ok = false;
            }
        }
    }
    Ok(super::exit(ok))
}

/// The Python lock: `--check`, or a lock, reported as text or `--json`; whether it is fine.
fn python(dir: &Path, args: LockArgs, ctx: &Ctx) -> Result<bool> {
    if args.check {
        return render_check(&lock::check(dir)?, ctx.json);
    }
    let opts = lock::Options {
        dir: dir.to_path_buf(),
        upgrade: args.upgrade,
        upgrade_package: args.upgrade_package,
        index: super::index_flags(args.index),
        offline: args.offline,
        pre: args.pre,
        python: args.python,
        python_version: args.python_version,
        platform: args.platform,
    };
    // The spinner counts requests only at the default verbosity: `-v` logs each one.
    let bar = (ui::verbosity() == 0).then(|| ui::Bar::new("Resolving", None));
    let progress: &dyn ui::Progress = bar.as_ref().map_or(&ui::NoProgress, |b| b as _);
    let locked = lock::lock(&opts, &ctx.settings(), progress)?;
    drop(bar);
    render_lock(&locked, ctx.json)?;
    Ok(true)
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

/// What a lock did: the JSON report, the changed pins with `-v`, the status line.
fn render_lock(locked: &Locked, json: bool) -> Result<()> {
    if json {
        super::out_json(&LockReport {
            lockfile: &locked.lockfile,
            packages: locked
                .pins
                .iter()
                .map(|p| PackageReport {
                    name: p.name.to_string(),
                    version: p.version.to_string(),
                    hashes: p.hashes.len(),
                })
                .collect(),
            requests: locked.requests,
            elapsed_ms: locked.elapsed.as_millis(),
        })?;
    }
    lock::say_locked(locked);
    Ok(())
}

/// What `--check` found: the JSON report or the status line, or the reasons as an error;
/// whether the lock is fresh.
fn render_check(checked: &Checked, json: bool) -> Result<bool> {
    if json {
        super::out_json(checked)?;
    }
    if checked.fresh {
        ui::status(
            "Fresh",
            format!("`{SOURCES_DIR}/{LOCK_FILE}` matches `{INPUT_FILE}`"),
        );
        return Ok(true);
    }
    if !json {
        let mut text = format!("`{SOURCES_DIR}/{LOCK_FILE}` is stale");
        for reason in &checked.reasons {
            text.push_str(&format!("\n  - {reason}"));
        }
        ui::print_error(&ui::error_with_hint(text, "run `mfplug lock` to update it"));
    }
    Ok(false)
}
