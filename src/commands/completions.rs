//! `mfplug completions SHELL`: the shell's completion script, and the man pages (`cargo xtask
//! dist`), both from the one definition in `cli`.

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

/// Writes `mfplug.1` and a `mfplug-COMMAND.1` page per visible command into `dir`; says each.
pub(crate) fn man(dir: &std::path::Path) -> Result<ExitCode> {
    fs_err::create_dir_all(dir)?;
    let mut command = Cli::command();
    command.build();
    write_page(dir, "mfplug", command.clone())?;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_page(dir, &format!("mfplug-{}", sub.get_name()), sub.clone())?;
        for nested in sub
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let name = format!("mfplug-{}-{}", sub.get_name(), nested.get_name());
            write_page(dir, &name, nested.clone())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One page: `name.1`, rendered by clap_mangen under the name a reader types (`mfplug lock`).
fn write_page(dir: &std::path::Path, name: &str, command: clap::Command) -> Result<()> {
    let title = name.replacen('-', " ", 2);
    let command = command.name(name.to_owned()).display_name(title);
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    crate::fsx::write_atomic(&path, &page)?;
    ui::status("Wrote", format!("`{}`", path.display()));
    Ok(())
}
