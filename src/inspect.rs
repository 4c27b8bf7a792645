//! The inspection commands: `mfplug check`, `mfplug config` and `mfplug bootstrap list`.
//!
//! They read a plugin dir (or the templates) through the model of `config` and `bootstrap` and
//! report: problems on stderr, data on stdout, JSON with `--json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::config::{self, PluginConfig, Problem, Settings, Severity};
use crate::{bootstrap, home, ui};

#[derive(Serialize)]
struct CheckReport<'a> {
    dir: &'a Path,
    name: Option<&'a str>,
    version: Option<&'a str>,
    release: Option<&'a str>,
    ok: bool,
    errors: usize,
    warnings: usize,
    problems: &'a [Problem],
}

/// `mfplug check [DIR]`: every problem of the plugin dir, exit 1 if any is an error.
pub(crate) fn check(dir: Option<PathBuf>, settings: &Settings, json: bool) -> Result<ExitCode> {
    let dir = crate::plugin::find_dir(dir)?;
    let (config, mut problems) = match config::load(&dir, settings) {
        Ok(config) => {
            let warnings = config.warnings.clone();
            (Some(config), warnings)
        }
        Err(problems) => (None, problems),
    };
    problems.extend(config::unsupported(&dir));
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .count();
    if json {
        ui::out_json(&CheckReport {
            dir: &dir,
            name: config.as_ref().map(PluginConfig::name),
            version: config.as_ref().map(PluginConfig::version),
            release: config.as_ref().map(PluginConfig::release),
            ok: errors == 0,
            errors,
            warnings,
            problems: &problems,
        })?;
    } else {
        for problem in &problems {
            ui::print_problem(problem);
        }
    }
    match config {
        Some(config) => {
            ui::status(
                "Checked",
                format!(
                    "plugin `{}` {}-{} in `{}`: no errors",
                    config.name(),
                    config.version(),
                    config.release(),
                    dir.display()
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            if !json {
                let plural = if errors == 1 { "" } else { "s" };
                ui::print_error(&anyhow::anyhow!(
                    "found {errors} error{plural} in plugin dir `{}`",
                    dir.display()
                ));
            }
            Ok(ExitCode::from(crate::cli::EXIT_FAILURE))
        }
    }
}

#[derive(Serialize)]
struct ConfigReport<'a> {
    name: &'a str,
    label: String,
    dir: &'a Path,
    version: &'a str,
    release: &'a str,
    config_name: &'a str,
    layers: &'a [PathBuf],
    config: indexmap::IndexMap<&'a str, indexmap::IndexMap<&'a str, &'a str>>,
    variables: &'a indexmap::IndexMap<String, String>,
}

/// `mfplug config [DIR|NAME]`: the effective configuration and the generated variables.
pub(crate) fn config(
    target: Option<String>,
    home: &Path,
    settings: &Settings,
    json: bool,
) -> Result<ExitCode> {
    let dir = match target {
        None => crate::plugin::find_dir(None)?,
        Some(target) => {
            // A dir first; else a valid name of an installed plugin. A value that is not a
            // name is only ever a path, never joined under the home.
            let path = PathBuf::from(&target);
            let installed = crate::plugin::PluginName::parse(&target)
                .ok()
                .map(|name| home::plugin_dir(home, &name))
                .filter(|dir| dir.is_dir());
            if path.is_dir() {
                path
            } else if let Some(dir) = installed {
                dir
            } else {
                return Err(ui::error_with_hint(
                    format!(
                        "`{target}` is neither a plugin dir nor a plugin installed in `{}`",
                        home.display()
                    ),
                    "give a plugin dir, or the name of an installed plugin (`--home` chooses the home)",
                ));
            }
        }
    };
    let config = match config::load(&dir, settings) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems {
                ui::print_problem(problem);
            }
            return Err(ui::error_with_hint(
                format!("cannot read the configuration of `{}`", dir.display()),
                format!("`mfplug check {}` lists every problem", dir.display()),
            ));
        }
    };
    for warning in &config.warnings {
        ui::print_problem(warning);
    }
    if json {
        let sections = config
            .sections
            .iter()
            .map(|(s, keys)| {
                (
                    s.as_str(),
                    keys.iter()
                        .map(|(k, v)| (k.as_str(), v.value.as_str()))
                        .collect(),
                )
            })
            .collect();
        ui::out_json(&ConfigReport {
            name: config.name(),
            label: config.label.to_string(),
            dir: &config.dir,
            version: config.version(),
            release: config.release(),
            config_name: &config.config_name,
            layers: &config.layers,
            config: sections,
            variables: &config.variables,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
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
                    config::Origin::File { path, line } => format!("{}:{line}", path.display()),
                    config::Origin::Default => "default".into(),
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
    ui::out(text.trim_end())?;
    Ok(ExitCode::SUCCESS)
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

/// `mfplug bootstrap list`: every template, with its description and variables.
pub(crate) fn bootstrap_list(user_dirs: &[PathBuf], json: bool) -> Result<ExitCode> {
    let (templates, errors) = bootstrap::discover(user_dirs);
    if json {
        ui::out_json(&templates)?;
    } else {
        let width = templates.iter().map(|t| t.name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for t in &templates {
            let source = match &t.source {
                bootstrap::Source::Builtin => String::new(),
                bootstrap::Source::User(path) => format!(" (from `{}`)", path.display()),
            };
            text.push_str(&format!("{:width$}  {}{source}\n", t.name, t.description));
            if ui::verbosity() > 0 {
                for (name, spec) in &t.variables {
                    text.push_str(&format!(
                        "{:width$}    --set {name}={}  {}\n",
                        "", spec.default, spec.description
                    ));
                }
            }
        }
        ui::out(text.trim_end())?;
    }
    for e in &errors {
        ui::print_error(e);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::cli::EXIT_FAILURE)
    })
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
