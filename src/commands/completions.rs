//! `mfplug completions SHELL`: the shell's completion script, from the one definition in `cli`.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::ui;

pub(crate) fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "mfplug", &mut script);
    // Written through `ui` rather than by clap_complete, which panics on a closed pipe.
    ui::out_bytes(&script)?;
    Ok(ExitCode::SUCCESS)
}
