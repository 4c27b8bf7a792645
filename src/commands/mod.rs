//! The commands: one file per command of `cli`, named like it. Each turns its arguments into
//! a stage's plain options, calls the stage, renders the stage's typed report as text or
//! `--json` (documented in `docs/json.md`), and decides the exit code. Stages never print a
//! report, choose an exit code or read clap's types: that is here.

mod bootstrap;
mod build;
mod check;
mod clean;
mod completions;
mod config;
mod convert;
mod crontab;
mod develop;
mod env;
mod info;
mod install;
mod list;
mod lock;
mod provision;
mod release;
mod repackage;
mod uninstall;
mod verify;
mod wrapper;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{BootstrapCommand, Cli, ColorChoice, Command, NameOrFile};
use crate::config::{PluginConfig, Settings};
use crate::home::HomeError;
use crate::plugin::DirError;
use crate::release::ReleaseError;
use crate::{home, ui};

/// Exit code of a command that failed.
pub const EXIT_FAILURE: u8 = 1;

/// The version of every `--json` document's shape (`schema_version`, `docs/json.md`), raised
/// when a field changes meaning or goes; a new field does not raise it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What every command gets besides its own arguments.
pub(crate) struct Ctx {
    pub(crate) home: PathBuf,
    pub(crate) module: String,
    pub(crate) json: bool,
}

impl Ctx {
    /// The settings of `config::load`: the module, the home and the environment.
    pub(crate) fn settings(&self) -> Settings {
        Settings::from_env(&self.module, Some(self.home.clone()))
    }
}

/// The exit code of a command that reports `ok`.
pub(crate) fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// Prints `value`, a JSON object, as the command's document, `schema_version` first.
pub(crate) fn out_json(value: &impl serde::Serialize) -> Result<()> {
    ui::out_json(&versioned(value)?)
}

/// Prints `value`, a JSON object, as one line of a JSON Lines stream (`provision`'s events),
/// `schema_version` first.
pub(crate) fn out_json_line(value: &impl serde::Serialize) -> Result<()> {
    ui::out(serde_json::to_string(&versioned(value)?)?)?;
    Ok(())
}

/// `value` as a JSON object with `schema_version` first.
fn versioned(value: &impl serde::Serialize) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut document = serde_json::Map::new();
    document.insert("schema_version".into(), SCHEMA_VERSION.into());
    match serde_json::to_value(value)? {
        serde_json::Value::Object(map) => document.extend(map),
        other => anyhow::bail!("a JSON report must be an object, not {other}"),
    }
    Ok(document)
}

/// The plugin's configuration, its warnings printed; on errors, a [`crate::config::Invalid`]
/// error, which `ui::print_error` prints with every problem and the `mfplug check` hint.
pub(crate) fn load_config(dir: &Path, settings: &Settings) -> Result<PluginConfig> {
    let config = crate::config::load_reported(dir, settings)?;
    for warning in &config.warnings {
        ui::print_problem(warning);
    }
    Ok(config)
}

/// What to do about a typed error of a stage: the words are the commands', as uv's hints are
/// its binary's; `ui::print_error` prints them below the error.
fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<DirError>() {
        return Some(
            match error {
                DirError::NotADir(_) | DirError::Missing(_) => {
                    "give the plugin's directory, the one holding `config.ini`"
                }
                DirError::NotInside(_) => {
                    "run it from a plugin dir (or one of its subdirs), or give the dir; `mfplug bootstrap create NAME` starts one"
                }
                DirError::Io { .. } => "check the permissions of the dir",
            }
            .to_owned(),
        );
    }
    if let Some(error) = error.downcast_ref::<crate::config::Invalid>() {
        return Some(error.hint());
    }
    if let Some(error) = error.downcast_ref::<ReleaseError>() {
        return Some(release_hint(error));
    }
    error.downcast_ref::<HomeError>().map(home_hint)
}

/// What to do about an error around a `.plugin` file.
fn release_hint(error: &ReleaseError) -> String {
    match error {
        ReleaseError::Level(_) => "use a level from 1 (fast) to 22 (small); the default is 3",
        ReleaseError::SourceDateEpoch {
            converting: false, ..
        } => "unset it, or give the time of the last change, e.g. `git log -1 --format=%ct`",
        ReleaseError::SourceDateEpoch {
            converting: true, ..
        } => "unset it",
        ReleaseError::NotAPluginFile(_) => {
            "a `.plugin` file is made by `mfplug release` (zstd) or by MetWork (tar.gz)"
        }
        ReleaseError::NoRecord(_) => {
            "`mfplug convert` rewrites it as a format-1 file, whose files `info --files` lists"
        }
        ReleaseError::AlreadyFormat1(_) => "`mfplug convert` rewrites legacy MetWork files only",
        ReleaseError::NoVersion(_) => {
            "a MetWork file has it in `.metadata.json` or in `config.ini` (`[general] _version`)"
        }
    }
    .to_owned()
}

/// What to do about an error of the home.
fn home_hint(error: &HomeError) -> String {
    match error {
        HomeError::OwnFileThroughLink { .. } => {
            "the `.plugin` file ships it: a plugin may not ship mfplug's own files as links".into()
        }
        HomeError::OwnFileExists { .. } => {
            "the `.plugin` file (or its `postinstall`) made it: a plugin may not ship mfplug's own files".into()
        }
        HomeError::OwnDirExists { .. } => {
            "the `.plugin` file (or its `postinstall`) made it: a plugin may not ship `.mfplug/`".into()
        }
        HomeError::DiskFull { .. } => {
            "free some space there (`df -h`), then run it again; what was installed is unchanged".into()
        }
        HomeError::Busy { .. } => {
            "wait for it to finish, or pass `--wait SECS` to wait for it".into()
        }
        HomeError::NotInstalled {
            close: Some(close), ..
        } => format!("did you mean `{close}`? `mfplug list` shows the installed plugins"),
        HomeError::NotInstalled { close: None, .. } => {
            "`mfplug list` shows the installed plugins; `--home` chooses the home".into()
        }
    }
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    ui::set_hinter(hint);
    let global = &cli.global;
    ui::set_verbosity(if global.quiet {
        -1
    } else {
        global.verbose.min(100) as i8
    });
    let choice = match global.color {
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    let ctx = Ctx {
        home: home::resolve(global.home.as_deref()),
        module: global.module.clone(),
        json: global.json,
    };
    dispatch(cli.command, &ctx)
}

/// The command's file for each command.
fn dispatch(command: Command, ctx: &Ctx) -> Result<ExitCode> {
    match command {
        Command::Bootstrap(BootstrapCommand::List { templates }) => {
            bootstrap::list(&templates.dirs, ctx)
        }
        Command::Bootstrap(BootstrapCommand::Create {
            name,
            template,
            sets,
            dir,
            templates,
        }) => bootstrap::create(name, template, sets, dir, &templates.dirs, ctx),
        Command::Check { dir } => check::run(dir, ctx),
        Command::Config { target } => config::run(target, ctx),
        Command::Completions { shell } => completions::run(shell),
        Command::GenerateMan { dir } => completions::man(&dir),
        Command::Lock(args) => lock::run(args, ctx),
        Command::Build {
            dir,
            offline,
            compile,
        } => build::run(dir, offline, compile, ctx),
        Command::Clean { dir, super_clean } => clean::run(dir, super_clean, ctx),
        Command::Develop {
            dir,
            no_watch,
            debounce,
            force,
        } => develop::run(dir, no_watch, debounce, force, ctx),
        Command::Release { dir, output, level } => release::run(dir, output, level, ctx),
        Command::Install {
            file,
            new_name,
            force,
            wait,
        } => install::run(file, new_name, force, wait.secs, ctx),
        Command::Uninstall { name, clean, wait } => uninstall::run(&name, clean, wait.secs, ctx),
        Command::List => list::run(ctx),
        Command::Info {
            target: NameOrFile::File(file),
            files,
        } => info::file(&file, files, ctx),
        Command::Info {
            target: NameOrFile::Name(name),
            files,
        } => info::installed(&name, files, ctx),
        Command::Verify {
            target: NameOrFile::File(file),
        } => verify::file(&file, ctx),
        Command::Verify {
            target: NameOrFile::Name(name),
        } => verify::installed(&name, ctx),
        Command::Env { name } => env::run(name.as_ref(), ctx),
        Command::Wrapper { name, command } => wrapper::run(&name, &command, ctx),
        Command::Repackage { name, output } => repackage::run(&name, output, ctx),
        Command::Convert { file, output } => convert::run(&file, output, ctx),
        Command::Provision {
            watch,
            interval,
            prune,
            wait,
        } => provision::run(watch, interval, prune, wait.secs, ctx),
        Command::Crontab { apply } => crontab::run(apply, ctx),
    }
}
