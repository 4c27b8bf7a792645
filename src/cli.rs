//! The command line, as clap definitions only: every flag, its help and the completions come
//! from the one definition here; `commands` runs what it parses.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plugin::PluginName;

/// Build, release and run MetWork-style plugins: one binary from template to `.plugin` file.
#[derive(Debug, Parser)]
#[command(
    name = "mfplug",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit codes: 0 success, 1 failure, 2 usage error.\nDocumentation: docs/ in the source tree."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The runtime home: installed plugins, admin overrides, logs
    #[arg(long, global = true, env = "MFPLUG_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Module of a new plugin (default `MFPLUG`); a plugin's label names its module, which this must match
    #[arg(
        long,
        global = true,
        env = "MFPLUG_MODULE",
        value_name = "NAME",
        value_parser = parse_module
    )]
    pub(crate) module: Option<String>,
    /// Say less: no status lines, no warnings
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Say more (repeat for even more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// When to use colours (`NO_COLOR` is honoured with `auto`)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub(crate) color: ColorChoice,
    /// Print the report as JSON on stdout, for scripts
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn parse_module(value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(format!(
            "`{value}` is not a module name: use a letter then letters, digits or `_` (e.g. MFDATA)"
        ))
    }
}

/// A plugin name from the command line: checked by clap, so that a bad one exits 2 with the
/// rule it breaks, before anything is read or touched.
fn parse_name(value: &str) -> Result<PluginName, String> {
    PluginName::parse(value).map_err(|e| e.to_string())
}

/// `NAME|FILE`: an installed plugin's name, or a `.plugin` file. A value that is not a valid
/// name is a path, never joined under the home.
#[derive(Debug, Clone)]
pub(crate) enum NameOrFile {
    Name(PluginName),
    File(PathBuf),
}

/// Whether `target` names a `.plugin` file rather than an installed plugin.
fn is_file_target(target: &str) -> bool {
    let path = std::path::Path::new(target);
    path.is_file() || target.ends_with(".plugin") || target.contains('/')
}

fn parse_name_or_file(value: &str) -> Result<NameOrFile, String> {
    if is_file_target(value) {
        return Ok(NameOrFile::File(PathBuf::from(value)));
    }
    match PluginName::parse(value) {
        Ok(name) => Ok(NameOrFile::Name(name)),
        Err(_) if std::path::Path::new(value).exists() => {
            Ok(NameOrFile::File(PathBuf::from(value)))
        }
        Err(e) => Err(format!(
            "`{value}` is neither a file nor a plugin name ({e}): give the name of an installed plugin or the path of a `.plugin` file"
        )),
    }
}

/// The most seconds `--wait` and `--interval` take: about 31 years.
const MAX_SECS: f64 = 1e9;

/// A number of seconds, `0` to [`MAX_SECS`]: not `nan`, `inf` or negative.
fn parse_secs(value: &str) -> Result<std::time::Duration, String> {
    let refuse = || {
        format!("`{value}` is not a number of seconds: give a number from 0 to {MAX_SECS:.0} (e.g. `2` or `0.5`)")
    };
    let secs: f64 = value.trim().parse().map_err(|_| refuse())?;
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return Err(refuse());
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| refuse())
}

/// The polling interval: a number of seconds, at least 0.05, at most a day.
fn parse_interval(value: &str) -> Result<std::time::Duration, String> {
    let refuse = || {
        format!("`{value}` is not an interval: give a number of seconds from 0.05 to 86400 (e.g. `2` or `0.5`)")
    };
    let secs: f64 = value.trim().parse().map_err(|_| refuse())?;
    if !secs.is_finite() || !(0.05..=86_400.0).contains(&secs) {
        return Err(refuse());
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| refuse())
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start a plugin from a template
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Check a plugin dir: configuration with all its layers, name, format version
    Check {
        /// The plugin dir (default: the current dir)
        dir: Option<PathBuf>,
    },
    /// Print the effective configuration of a plugin and the variables it generates
    Config {
        /// A plugin dir, or the name of an installed plugin (default: the current dir)
        #[arg(value_name = "DIR|NAME")]
        target: Option<String>,
    },
    /// Resolve requirements-to-freeze.txt into the hashed lock requirements3.txt
    Lock(LockArgs),
    /// Build `local/` from the lock: vendored wheels, a virtualenv, offline when asked
    Build {
        /// The plugin dir (default: the current dir)
        dir: Option<PathBuf>,
        /// Use only the vendored files and the cache: no network
        #[arg(long)]
        offline: bool,
        /// Compile bytecode with the target interpreter
        #[arg(long)]
        compile: bool,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Remove `local/` and other generated files
    Clean {
        /// The plugin dir (default: the current dir)
        dir: Option<PathBuf>,
        /// Also remove the lock and the vendored dependencies
        #[arg(long = "super")]
        super_clean: bool,
    },
    /// Devlink the plugin into the home, run its daemons, restart them on change
    Develop {
        /// The plugin dir (default: the current dir)
        dir: Option<PathBuf>,
        /// Only link the plugin into the home, then exit: no daemons, no watching
        #[arg(long)]
        no_watch: bool,
        /// Wait this long after the last change of a burst before restarting
        #[arg(long, value_name = "MS", default_value_t = crate::develop::DEFAULT_DEBOUNCE_MS)]
        debounce: u64,
        /// Move an installed plugin of the same name aside (to `displaced/` in the home)
        #[arg(long)]
        force: bool,
        /// Build from the vendored files and the cache only: no network
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Pack the plugin dir into a reproducible NAME-VERSION-RELEASE.plugin file
    Release {
        /// The plugin dir (default: the current dir)
        dir: Option<PathBuf>,
        /// Where to write the file (default: the plugin dir)
        #[arg(short, long, value_name = "OUTDIR")]
        output: Option<PathBuf>,
        /// zstd compression level, 1 to 22 (default 3); the plugin hash does not depend on it
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        level: Option<i32>,
        /// The file's format: mfplug's own, or MetWork's (`NAME-VERSION-RELEASE.metwork.MODULE.plugin`, which MetWork installs)
        #[arg(long, value_enum, default_value_t = ReleaseFormat::Mfplug, value_name = "FORMAT")]
        format: ReleaseFormat,
    },
    /// Install a .plugin file into the home
    Install {
        /// The `.plugin` file (`mfplug release` makes one from a plugin dir)
        file: PathBuf,
        /// Install under another name
        #[arg(long, value_name = "NAME", value_parser = parse_name)]
        new_name: Option<PluginName>,
        /// Replace an installed plugin of the same name (an upgrade or a downgrade)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Remove an installed plugin
    Uninstall {
        /// The installed plugin's name (`mfplug list` shows them)
        #[arg(value_parser = parse_name)]
        name: PluginName,
        /// Also remove the admin's override file
        #[arg(long)]
        clean: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the installed plugins
    List,
    /// Describe an installed plugin or a .plugin file
    Info {
        /// An installed plugin's name, or a `.plugin` file
        #[arg(value_name = "NAME|FILE", value_parser = parse_name_or_file)]
        target: NameOrFile,
        /// Also list the files, with their mode, size and sha256 (from the RECORD)
        #[arg(long)]
        files: bool,
    },
    /// Check an installed plugin or a .plugin file against its hashes
    Verify {
        /// An installed plugin's name, or a `.plugin` file
        #[arg(value_name = "NAME|FILE", value_parser = parse_name_or_file)]
        target: NameOrFile,
    },
    /// Open a shell in a plugin's environment
    Env {
        /// The plugin (default: the plugin of the current dir)
        #[arg(value_parser = parse_name)]
        name: Option<PluginName>,
    },
    /// Run a command in a plugin's environment and pass its exit code through
    Wrapper {
        /// The installed plugin's name
        #[arg(value_parser = parse_name)]
        name: PluginName,
        /// The command and its arguments (a `--` before it is allowed, not needed); exits
        /// with its code, 127 when it is not found, 126 when it cannot run
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
    /// Make a new .plugin file from an installed plugin, with its name and overrides
    Repackage {
        /// The installed plugin's name
        #[arg(value_parser = parse_name)]
        name: PluginName,
        /// Where to write the file (default: the current dir)
        #[arg(short, long, value_name = "OUTDIR")]
        output: Option<PathBuf>,
    },
    /// Rewrite a legacy MetWork .plugin file as format 1
    Convert {
        /// The legacy MetWork `.plugin` file (tar.gz)
        file: PathBuf,
        /// Where to write the new file (default: beside the old one)
        #[arg(short, long, value_name = "OUTDIR")]
        output: Option<PathBuf>,
    },
    /// Apply the provisioning dir: install, replace or reconfigure plugins by hash
    Provision {
        /// Keep watching the provisioning dir
        #[arg(long)]
        watch: bool,
        /// Seconds between two looks at the provisioning dir with `--watch`
        #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_interval)]
        interval: std::time::Duration,
        /// Uninstall provisioned plugins whose `.plugin` left the provisioning dir
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Print the merged crontab of the installed plugins
    Crontab {
        /// Install it into the user's crontab, between markers
        #[arg(long)]
        apply: bool,
    },
    /// Print a shell completion script
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (mfplug.1 and one per command) into DIR (`cargo xtask dist`)
    #[command(hide = true)]
    GenerateMan {
        /// The dir the pages go to (made if missing)
        dir: PathBuf,
    },
}

/// The format of `release`'s file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReleaseFormat {
    /// mfplug's format 1 (zstd, RECORD, plugin hash)
    Mfplug,
    /// MetWork's tar.gz (`.metadata.json`, `.files.json`)
    Metwork,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Wait up to SECS for another mfplug changing the home (default: fail at once)
    #[arg(long = "wait", value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    pub(crate) secs: std::time::Duration,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// The plugin dir (default: the current dir)
    pub(crate) dir: Option<PathBuf>,
    /// Re-resolve every package
    #[arg(long)]
    pub(crate) upgrade: bool,
    /// Re-resolve this package only (repeatable)
    #[arg(long, value_name = "P")]
    pub(crate) upgrade_package: Vec<String>,
    /// Exit 1 if the lock is stale; write nothing
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) index: IndexArgs,
    /// Use only the cache: no network
    #[arg(long)]
    pub(crate) offline: bool,
    /// Allow pre-releases
    #[arg(long)]
    pub(crate) pre: bool,
    /// The target interpreter (default: `python` of `[general]` in config.ini, else `python3`)
    #[arg(long, value_name = "PATH")]
    pub(crate) python: Option<String>,
    /// Lock for another Python version than the interpreter's (`3.11`)
    #[arg(long, value_name = "X.Y")]
    pub(crate) python_version: Option<String>,
    /// Lock for another platform: wheel platform tags, best first (`manylinux_2_17_x86_64`)
    #[arg(long, value_name = "TAGS")]
    pub(crate) platform: Option<String>,
}

/// Where packages come from: the index options of `lock`, `build` and `develop`.
#[derive(Debug, Args)]
pub(crate) struct IndexArgs {
    /// The package index (else `MFPLUG_INDEX_URL`, `PIP_INDEX_URL`, pip.conf's `index-url`; for `build`, else the lock's)
    #[arg(long, value_name = "URL")]
    pub(crate) index_url: Option<String>,
    /// Another package index (repeatable)
    #[arg(long, value_name = "URL")]
    pub(crate) extra_index_url: Vec<String>,
    /// A local dir of wheels, or the URL of a page of links to them (repeatable)
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) find_links: Vec<PathBuf>,
    /// No package index: only `--find-links` (and the vendored files)
    #[arg(long)]
    pub(crate) no_index: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BootstrapCommand {
    /// List the available templates, built-in and the user's
    List {
        #[command(flatten)]
        templates: TemplatesDirArgs,
    },
    /// Create a plugin dir from a template
    Create {
        /// The plugin name (letters, digits, `_`, `-`)
        name: String,
        /// The template
        #[arg(short, long, default_value = "default")]
        template: String,
        /// Set a template variable (repeatable): `--set version=1.0.0`
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where to create the plugin (default: `./NAME`)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        templates: TemplatesDirArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TemplatesDirArgs {
    /// A dir of user templates, beside `MFPLUG_TEMPLATES_DIR` (repeatable)
    #[arg(long = "templates-dir", value_name = "DIR")]
    pub(crate) dirs: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    /// Every positional argument of every command says what it is in `--help`.
    #[test]
    fn every_positional_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_positionals() {
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "mfplug", &mut missing);
        assert!(missing.is_empty(), "positionals without help: {missing:?}");
    }

    #[test]
    fn seconds() {
        assert_eq!(
            parse_secs("2.5"),
            Ok(std::time::Duration::from_millis(2500))
        );
        assert_eq!(parse_secs("0"), Ok(std::time::Duration::ZERO));
        for bad in ["nan", "NaN", "inf", "-inf", "-1", "1e300", "", "x"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("0.2").is_ok());
    }

    #[test]
    fn module_names() {
        assert_eq!(parse_module("mfdata").unwrap(), "MFDATA");
        assert!(parse_module("1x").is_err());
        assert!(parse_module("a-b").is_err());
        assert!(parse_module("").is_err());
    }
}
