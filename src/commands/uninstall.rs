//! `mfplug uninstall NAME [--clean]`: a plugin out of the home.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::home::ops::{self, Uninstalled};
use crate::plugin::PluginName;
use crate::ui;

pub(crate) fn run(name: &PluginName, clean: bool, wait: Duration, ctx: &Ctx) -> Result<ExitCode> {
    let done = ops::uninstall(&ctx.home, &ctx.settings(), name, clean, wait)?;
    let (action, kept) = match &done {
        Uninstalled::Unlinked => ("unlinked", None),
        Uninstalled::Removed { kept } => ("uninstalled", kept.as_ref()),
    };
    if ctx.json {
        super::out_json(&serde_json::json!({
            "name": name,
            "action": action,
            "kept_override": kept,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    match done {
        Uninstalled::Unlinked => ui::status(
            "Unlinked",
            format!("devlinked plugin `{name}` (its source dir is untouched)"),
        ),
        Uninstalled::Removed { kept } => {
            if let Some(path) = kept {
                ui::note(format!(
                    "kept your edited `{}` (`--clean` removes it)",
                    path.display()
                ));
            }
            ui::status("Uninstalled", format!("plugin `{name}`"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
