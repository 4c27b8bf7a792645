//! The plugin env: the environment a plugin's code runs in, and the `exec` of `mfplug env` /
//! `mfplug wrapper`.
//!
//! It is the caller's environment plus the plugin's: `bin/` and `local/bin` first on `PATH`,
//! `lib/` on `LD_LIBRARY_PATH` (and, through the configuration, on `PYTHONPATH`),
//! `VIRTUAL_ENV` when `local/` is a virtualenv, `NODE_PATH` for node plugins, the lines of
//! `.layerapi2_extra_env`, and every variable the configuration generates (after the
//! override layers). Daemons (`develop`), cron jobs and `postinstall` get the same env.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::config::{self, PluginConfig, Settings};

pub(crate) const EXTRA_ENV_FILE: &str = ".layerapi2_extra_env";
/// Set in the plugin env to the plugin's name, so that a shell or a script knows where it is.
pub(crate) const MARKER: &str = "MFPLUG_PLUGIN_ENV";

/// Prepends `dirs` to a `:`-separated list, leaving out empty parts.
fn prepend(dirs: &[String], existing: Option<&String>) -> String {
    let mut parts: Vec<&str> = dirs.iter().map(String::as_str).collect();
    if let Some(existing) = existing {
        parts.extend(existing.split(':').filter(|p| !p.is_empty()));
    }
    parts.join(":")
}

/// Reads `.layerapi2_extra_env`: `NAME=value` lines, `#` comments; values are rendered like
/// `config.ini` values (Jinja, against the env built so far).
fn extra_env(dir: &Path, env: &BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    let path = dir.join(EXTRA_ENV_FILE);
    // The plugin's own file: not through a link, bounded.
    let text = match crate::plugin::read_own_file(&path) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    let jinja = minijinja::Environment::new();
    let mut out = Vec::new();
    let mut context = env.clone();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let where_ = || format!("`{}` line {}", path.display(), index + 1);
        let Some((name, value)) = line.split_once('=') else {
            return Err(EnvError::NotAssignment {
                at: where_(),
                line: line.to_owned(),
            }
            .into());
        };
        let name = name.trim().trim_start_matches("export ").trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(EnvError::BadName {
                at: where_(),
                name: name.to_owned(),
            }
            .into());
        }
        let value = jinja
            .render_str(value.trim(), &context)
            .with_context(where_)?;
        context.insert(name.to_owned(), value.clone());
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// The full environment of a plugin: `base` (the caller's) with the plugin's on top.
pub(crate) fn plugin_env(
    config: &PluginConfig,
    base: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut env = base.clone();
    let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
    let dir_text = dir.display().to_string();
    env.insert(
        "PATH".into(),
        prepend(
            &[format!("{dir_text}/bin"), format!("{dir_text}/local/bin")],
            base.get("PATH"),
        ),
    );
    env.insert(
        "LD_LIBRARY_PATH".into(),
        prepend(&[format!("{dir_text}/lib")], base.get("LD_LIBRARY_PATH")),
    );
    if dir.join("local/pyvenv.cfg").is_file() {
        env.insert("VIRTUAL_ENV".into(), format!("{dir_text}/local"));
        env.remove("PYTHONHOME");
    }
    if dir.join("package.json").is_file() {
        env.insert(
            "NODE_PATH".into(),
            prepend(&[format!("{dir_text}/node_modules")], base.get("NODE_PATH")),
        );
    }
    for (name, value) in &config.variables {
        env.insert(name.clone(), value.clone());
    }
    env.insert(MARKER.into(), config.name().to_owned());
    for (name, value) in extra_env(&dir, &env)? {
        env.insert(name, value);
    }
    Ok(env)
}

/// A line of `.layerapi2_extra_env` that is not an assignment; `at` is the file and line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvError {
    #[error("{at}: `{line}` is not `NAME=value`")]
    NotAssignment { at: String, line: String },
    #[error("{at}: `{name}` is not a variable name")]
    BadName { at: String, name: String },
}

/// Why `exec` did not replace this process with the command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecError {
    /// Not found on the plugin env's `PATH` (a shell's 127).
    #[error("cannot run `{program}`: {source}")]
    NotFound {
        program: String,
        source: std::io::Error,
    },
    /// Found, but it cannot be run (a shell's 126).
    #[error("cannot run `{program}`: {source}")]
    NotRunnable {
        program: String,
        source: std::io::Error,
    },
}

/// Runs `program` with `args` in the env of the plugin in `dir`, in place of this process:
/// returns only when it could not (the configuration, or `exec` itself, failed).
pub(crate) fn exec_in(
    dir: &Path,
    settings: &Settings,
    program: &str,
    args: &[String],
) -> Result<ExecError> {
    use std::os::unix::process::CommandExt;

    let config = config::load_reported(dir, settings)?;
    let env = plugin_env(&config, &settings.env)?;
    if let Some(tmp) = env.get("TMPDIR") {
        let _ = fs_err::create_dir_all(tmp);
    }
    let mut command = std::process::Command::new(program);
    command.args(args).env_clear().envs(&env);
    // `exec` only returns on failure; on success the command's exit code is ours.
    let source = command.exec();
    let program = program.to_owned();
    Ok(if source.kind() == std::io::ErrorKind::NotFound {
        ExecError::NotFound { program, source }
    } else {
        ExecError::NotRunnable { program, source }
    })
}

/// The shell `mfplug env` runs: `$SHELL`, else `/bin/sh`.
pub(crate) fn shell(settings: &Settings) -> String {
    settings
        .env
        .get("SHELL")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "/bin/sh".into())
}
