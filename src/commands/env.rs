//! `mfplug env [NAME]`: an interactive shell (`$SHELL`, else `/bin/sh`) in the plugin env of
//! an installed plugin, or of the plugin dir found upward from here.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::plugin::PluginName;
use crate::{env, ui};

pub(crate) fn run(name: Option<&PluginName>, ctx: &Ctx) -> Result<ExitCode> {
    let dir = match name {
        Some(name) => crate::home::installed_dir(&ctx.home, name)?,
        None => crate::plugin::find_dir(None)?,
    };
    let settings = ctx.settings();
    ui::note(format!(
        "entering the env of `{}` (`exit` leaves it)",
        dir.display()
    ));
    super::wrapper::exec(&dir, &settings, &env::shell(&settings), &["-i".to_owned()])
}
