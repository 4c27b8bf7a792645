//! The plugin env: the environment a plugin's code runs in, and the `exec` of `mfplug env` /
//! `mfplug wrapper`.
//!
//! It is the caller's environment plus the plugin's: `bin/` and `local/bin` first on `PATH`,
//! `lib/` on `LD_LIBRARY_PATH` (and, through the configuration, on `PYTHONPATH`),
//! `VIRTUAL_ENV` when `local/` is a virtualenv, `NODE_PATH` for node plugins, the lines of
//! `.layerapi2_extra_env`, and every variable the configuration generates (after the
//! override layers); before it, the same for each plugin of its `.layerapi2_dependencies`
//! (resolved by `home::layers`). Daemons (`develop`), cron jobs and `postinstall` get the
//! same env.

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
            .render_str(&expand_braces(value.trim(), &context), &context)
            .with_context(where_)?;
        context.insert(name.to_owned(), value.clone());
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// Set in the plugin env: what it changed in the caller's env, as JSON (each variable's value
/// before, `null` when it was unset), so that entering another plugin's env from inside this
/// one first undoes this one instead of piling on it.
pub(crate) const SAVED: &str = "MFPLUG_PLUGIN_ENV_SAVED";

/// The full environment of a plugin: `base` (the caller's, with the additions of a plugin env
/// it is already in undone), then the env of each plugin of `deps` (its
/// `.layerapi2_dependencies`, in load order), then the plugin's own on top: its `bin/` comes
/// first on `PATH`, its variables win.
pub(crate) fn plugin_env(
    config: &PluginConfig,
    settings: &Settings,
    deps: &[PluginConfig],
) -> Result<BTreeMap<String, String>> {
    let base = outer_undone(&settings.env);
    let mut env = base.clone();
    // The runtime home, as `config.ini` and `crontab` render it: `{MODULE}_HOME` for the
    // plugin's module, and `MFPLUG_HOME`, so that an mfplug run from the env finds the home.
    if let Some(home) = &settings.home {
        let home = home.display().to_string();
        let module = config.label.module.to_ascii_uppercase();
        env.insert(format!("{module}_HOME"), home.clone());
        env.insert("MFPLUG_HOME".into(), home);
    }
    for layer in deps.iter().chain(std::iter::once(config)) {
        add_layer(&mut env, layer)?;
    }
    env.insert(MARKER.into(), config.name().to_owned());
    let mut saved = serde_json::Map::new();
    for (name, value) in &env {
        if base.get(name) != Some(value) {
            saved.insert(name.clone(), base.get(name).cloned().into());
        }
    }
    for name in base.keys().filter(|name| !env.contains_key(*name)) {
        saved.insert(name.clone(), base.get(name).cloned().into());
    }
    env.insert(SAVED.into(), serde_json::Value::Object(saved).to_string());
    Ok(env)
}

/// `env` with what an enclosing plugin env added undone, as [`SAVED`] records it.
fn outer_undone(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = env.clone();
    let Some(saved) = env.remove(SAVED) else {
        return env;
    };
    if let Ok(serde_json::Value::Object(saved)) = serde_json::from_str(&saved) {
        for (name, before) in saved {
            match before {
                serde_json::Value::String(value) => {
                    env.insert(name, value);
                }
                _ => {
                    env.remove(&name);
                }
            }
        }
    }
    env.remove(MARKER);
    env
}

/// Adds one plugin's layer to `env`: its `bin/`, `local/bin`, `lib/`, virtualenv and
/// `node_modules`, its generated variables and its `.layerapi2_extra_env`.
fn add_layer(env: &mut BTreeMap<String, String>, config: &PluginConfig) -> Result<()> {
    let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
    let dir_text = dir.display().to_string();
    let path = prepend(
        &[format!("{dir_text}/bin"), format!("{dir_text}/local/bin")],
        env.get("PATH"),
    );
    env.insert("PATH".into(), path);
    let libs = prepend(&[format!("{dir_text}/lib")], env.get("LD_LIBRARY_PATH"));
    env.insert("LD_LIBRARY_PATH".into(), libs);
    if dir.join("local/pyvenv.cfg").is_file() {
        env.insert("VIRTUAL_ENV".into(), format!("{dir_text}/local"));
        env.remove("PYTHONHOME");
    }
    if dir.join("package.json").is_file() {
        let node = prepend(&[format!("{dir_text}/node_modules")], env.get("NODE_PATH"));
        env.insert("NODE_PATH".into(), node);
    }
    for (name, value) in &config.variables {
        env.insert(name.clone(), value.clone());
    }
    for (name, value) in extra_env(&dir, env)? {
        env.insert(name, value);
    }
    Ok(())
}

/// layerapi2's `{VAR}` in a `.layerapi2_extra_env` value: replaced by the variable's value
/// (empty when unset); `{{ ... }}` is left for Jinja.
fn expand_braces(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('{') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let tail = rest.get(at..).unwrap_or_default();
        if let Some(jinja) = tail.strip_prefix("{{") {
            // Copied through to its `}}`, for Jinja.
            let end = jinja.find("}}").map_or(jinja.len(), |e| e + 2);
            out.push_str("{{");
            out.push_str(jinja.get(..end).unwrap_or(jinja));
            rest = jinja.get(end..).unwrap_or_default();
            continue;
        }
        let inner = tail.get(1..).unwrap_or_default();
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let name = inner.get(..name_len).unwrap_or_default();
        let closed = inner.get(name_len..).is_some_and(|r| r.starts_with('}'));
        let starts_well = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if closed && starts_well {
            out.push_str(env.get(name).map_or("", String::as_str));
            rest = inner.get(name_len + 1..).unwrap_or_default();
        } else {
            out.push('{');
            rest = inner;
        }
    }
    out.push_str(rest);
    out
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
    deps: &[PluginConfig],
    program: &str,
    args: &[String],
) -> Result<ExecError> {
    use std::os::unix::process::CommandExt;

    let config = config::load_reported(dir, settings)?;
    let env = plugin_env(&config, settings, deps)?;
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
