//! `mfplug install FILE [--new-name N] [--force]`: a `.plugin` file into the home.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::home::{self, install::Action, install::InstallOptions};
use crate::plugin::PluginName;
use crate::ui;

pub(crate) fn run(
    file: PathBuf,
    new_name: Option<PluginName>,
    force: bool,
    wait: Duration,
    ctx: &Ctx,
) -> Result<ExitCode> {
    if file.is_dir() {
        return Err(ui::error_with_hint(
            format!("`{}` is a directory, not a `.plugin` file", file.display()),
            format!(
                "make one with `mfplug release {}`, then install the file it prints",
                file.display()
            ),
        ));
    }
    let opts = InstallOptions {
        file,
        new_name,
        force,
        provisioned: false,
    };
    let done = home::install::install(&ctx.home, &ctx.settings(), &opts, wait)?;
    let verb = match &done.action {
        Action::Installed => "installed".to_owned(),
        Action::Upgraded(from) => format!("upgraded from {from}"),
        Action::Downgraded(from) => format!("downgraded from {from}"),
        Action::Reinstalled => "reinstalled (same version)".to_owned(),
    };
    if ctx.json {
        super::out_json(&serde_json::json!({
            "name": done.name,
            "version": done.meta.version,
            "release": done.meta.release,
            "plugin_hash": done.meta.plugin_hash,
            "action": verb,
            "dir": home::plugin_dir(&ctx.home, &done.name),
        }))?;
    } else {
        ui::status(
            "Installed",
            format!(
                "plugin `{}` {}-{}: {verb}",
                done.name, done.meta.version, done.meta.release
            ),
        );
    }
    if let Some(note) = done.override_note {
        ui::warn(note);
    }
    Ok(ExitCode::SUCCESS)
}
