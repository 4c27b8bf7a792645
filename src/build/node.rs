//! Node plugins (a `package.json` in the plugin dir): `package-lock.json` with npm, and
//! `node_modules/` with `npm ci`, offline from npm's cache when asked.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::ui;

pub(crate) const MANIFEST: &str = "package.json";
pub(crate) const LOCK: &str = "package-lock.json";

pub(crate) fn is_node(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

fn npm(dir: &Path, args: &[&str]) -> Result<()> {
    super::run_tool(Command::new("npm"), args, dir, super::BuildError::NoNpm)
}

/// Why the lock is stale, or `None` when it is fresh: it must exist and record the
/// dependencies `package.json` asks for.
pub(crate) fn stale(dir: &Path) -> Result<Option<String>> {
    let Ok(lock_text) = fs_err::read_to_string(dir.join(LOCK)) else {
        return Ok(Some(format!("`{LOCK}` is missing")));
    };
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(dir.join(MANIFEST))?)
            .with_context(|| format!("`{}` is not valid JSON", dir.join(MANIFEST).display()))?;
    let lock: serde_json::Value = serde_json::from_str(&lock_text)
        .with_context(|| format!("`{}` is not valid JSON", dir.join(LOCK).display()))?;
    let root = &lock["packages"][""];
    for key in [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ] {
        let wanted = manifest
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let locked = root.get(key).cloned().unwrap_or(serde_json::Value::Null);
        let empty =
            |v: &serde_json::Value| v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
        if wanted != locked && !(empty(&wanted) && empty(&locked)) {
            return Ok(Some(format!(
                "the `{key}` of `{MANIFEST}` are not the locked ones"
            )));
        }
    }
    Ok(None)
}

/// `package-lock.json` from `package.json` (`npm install --package-lock-only`).
pub(crate) fn lock(dir: &Path, offline: bool) -> Result<()> {
    let mut args = vec!["install", "--package-lock-only", "--no-audit", "--no-fund"];
    if offline {
        args.push("--offline");
    }
    npm(dir, &args)?;
    ui::status("Locked", format!("`{}`", dir.join(LOCK).display()));
    Ok(())
}

/// `node_modules/` from the lock (`npm ci`), relocking first when it is stale.
pub(crate) fn build(dir: &Path, offline: bool) -> Result<()> {
    if let Some(why) = stale(dir)? {
        if offline {
            return Err(super::BuildError::StaleNodeLock { why }.into());
        }
        lock(dir, false)?;
    }
    let lock_text = fs_err::read_to_string(dir.join(LOCK))?;
    // npm keeps a copy of the lock it installed in `node_modules/.package-lock.json`.
    let installed = fs_err::read_to_string(dir.join("node_modules/.package-lock.json")).ok();
    let same = installed.as_deref().is_some_and(|i| {
        let strip = |t: &str| {
            // (`get_mut`, not `v["packages"]`: indexing a JSON array by a key panics, and
            // this file is whatever was left in `node_modules/`.)
            serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .and_then(|mut v| {
                    let packages = v.get_mut("packages")?.as_object_mut()?;
                    packages.remove("");
                    Some(packages.clone())
                })
        };
        strip(i).is_some() && strip(i) == strip(&lock_text)
    });
    if same {
        ui::status("Fresh", "`node_modules/` is up to date: nothing to do");
        return Ok(());
    }
    let mut args = vec!["ci", "--no-audit", "--no-fund"];
    if offline {
        args.push("--offline");
    }
    npm(dir, &args)?;
    ui::status("Built", format!("`{}`", dir.join("node_modules").display()));
    Ok(())
}
