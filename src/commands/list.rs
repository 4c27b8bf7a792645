//! `mfplug list`: the installed plugins, one per line.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::home::ops::{self, ListEntry};
use crate::ui;

#[derive(Serialize)]
struct ListReport<'a> {
    plugins: &'a [ListEntry],
}

pub(crate) fn run(ctx: &Ctx) -> Result<ExitCode> {
    let entries = ops::list(&ctx.home, &ctx.settings())?;
    if ctx.json {
        super::out_json(&ListReport { plugins: &entries })?;
    } else if entries.is_empty() {
        ui::note(format!(
            "no plugin is installed in `{}`",
            ctx.home.display()
        ));
    } else {
        ui::out(table(&entries).trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table: name, version, devlink, the start of the hash, when it was installed.
fn table(entries: &[ListEntry]) -> String {
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!(
        "{:width$}  {:12}  {:7}  {:12}  INSTALLED\n",
        "NAME", "VERSION", "DEVLINK", "HASH"
    );
    for e in entries {
        let hash = e.hash.trim_start_matches("sha256:");
        text.push_str(&format!(
            "{:width$}  {:12}  {:7}  {:12}  {}\n",
            e.name,
            format!("{}-{}", e.version, e.release),
            if e.devlink { "yes" } else { "no" },
            hash.get(..hash.len().min(12)).unwrap_or(hash),
            e.installed_at.map_or("-".into(), ui::format_time),
        ));
    }
    text
}
