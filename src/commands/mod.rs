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
mod hint;
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
use crate::{home, ui};

/// Exit code of a command that failed.
pub const EXIT_FAILURE: u8 = 1;

/// The version of every `--json` document's shape (`schema_version`, `docs/json.md`), raised
/// when a field changes meaning or goes; a new field does not raise it.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What every command gets besides its own arguments.
pub(crate) struct Ctx {
    pub(crate) home: PathBuf,
    /// `--module`/`MFPLUG_MODULE`, else [`DEFAULT_MODULE`].
    pub(crate) module: String,
    /// Whether `--module`/`MFPLUG_MODULE` named the module (a label must then agree).
    pub(crate) module_given: bool,
    pub(crate) json: bool,
}

/// The module of a new plugin when neither `--module` nor `MFPLUG_MODULE` names one.
const DEFAULT_MODULE: &str = "MFPLUG";

impl Ctx {
    /// The settings of `config::load`: the module, the home and the environment.
    pub(crate) fn settings(&self) -> Settings {
        Settings::from_env(&self.module, self.module_given, Some(self.home.clone()))
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

/// The index options of a command line, as the stages take them.
pub(crate) fn index_flags(args: crate::cli::IndexArgs) -> crate::index::config::Flags {
    crate::index::config::Flags {
        index_url: args.index_url,
        extra_index_url: args.extra_index_url,
        find_links: args.find_links,
        no_index: args.no_index,
    }
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    ui::set_hinter(hint::hint);
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
        module: global
            .module
            .clone()
            .unwrap_or_else(|| DEFAULT_MODULE.to_owned()),
        module_given: global.module.is_some(),
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
            index,
        } => build::run(dir, offline, compile, index_flags(index), ctx),
        Command::Clean { dir, super_clean } => clean::run(dir, super_clean, ctx),
        Command::Develop {
            dir,
            no_watch,
            debounce,
            force,
            offline,
            index,
        } => {
            let index = index_flags(index);
            develop::run(dir, no_watch, debounce, force, offline, index, ctx)
        }
        Command::Release {
            dir,
            output,
            level,
            format,
        } => release::run(dir, output, level, format, ctx),
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
