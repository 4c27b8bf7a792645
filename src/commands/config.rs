//! `mfplug config [DIR|NAME]`: the effective configuration and the generated variables.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use indexmap::IndexMap;
use serde::Serialize;

use super::Ctx;
use crate::config::{Origin, PluginConfig};
use crate::{home, ui};

#[derive(Serialize)]
struct ConfigReport<'a> {
    name: &'a str,
    label: String,
    dir: &'a Path,
    version: &'a str,
    release: &'a str,
    config_name: &'a str,
    layers: &'a [PathBuf],
    config: IndexMap<&'a str, IndexMap<&'a str, &'a str>>,
    variables: &'a IndexMap<String, String>,
}

pub(crate) fn run(target: Option<String>, ctx: &Ctx) -> Result<ExitCode> {
    let dir = match target {
        None => crate::plugin::find_dir(None)?,
        Some(target) => dir_or_installed(&target, &ctx.home)?,
    };
    let config = super::load_config(&dir, &ctx.settings())?;
    if ctx.json {
        super::out_json(&report(&config))?;
    } else {
        ui::out(text(&config).trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A dir first; else a valid name of an installed plugin. A value that is not a name is only
/// ever a path, never joined under the home.
fn dir_or_installed(target: &str, home: &Path) -> Result<PathBuf> {
    let path = PathBuf::from(target);
    if path.is_dir() {
        return Ok(path);
    }
    crate::plugin::PluginName::parse(target)
        .ok()
        .map(|name| home::plugin_dir(home, &name))
        .filter(|dir| dir.is_dir())
        .ok_or_else(|| {
            ui::error_with_hint(
                format!(
                    "`{target}` is neither a plugin dir nor a plugin installed in `{}`",
                    home.display()
                ),
                "give a plugin dir, or the name of an installed plugin (`--home` chooses the home)",
            )
        })
}

/// The `--json` document.
fn report(config: &PluginConfig) -> ConfigReport<'_> {
    ConfigReport {
        name: config.name(),
        label: config.label.to_string(),
        dir: &config.dir,
        version: config.version(),
        release: config.release(),
        config_name: &config.config_name,
        layers: &config.layers,
        config: config.values(),
        variables: &config.variables,
    }
}

/// The text: an INI file of the effective values (with `-v`, where each comes from), then the
/// variables as shell assignments that can be sourced.
fn text(config: &PluginConfig) -> String {
    let mut text = format!(
        "# plugin `{}` {}-{}, configuration name {}\n",
        config.name(),
        config.version(),
        config.release(),
        config.config_name
    );
    for layer in &config.layers {
        text.push_str(&format!("# layer: {}\n", layer.display()));
    }
    for (section, keys) in &config.sections {
        text.push_str(&format!("\n[{section}]\n"));
        for (key, setting) in keys {
            let value = setting.value.replace('\n', "\n    ");
            if ui::verbosity() > 0 {
                let origin = match &setting.origin {
                    Origin::File { path, line } => format!("{}:{line}", path.display()),
                    Origin::Default => "default".into(),
                };
                text.push_str(&format!("# from {origin}\n"));
            }
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str("\n# variables\n");
    for (name, value) in &config.variables {
        text.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    text
}

/// Quotes a value for a POSIX shell when it needs it, so that the variables can be sourced.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,+=@%".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b-c"), "/a/b-c");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
