//! `.layerapi2_dependencies`: the other plugins of the home whose env a plugin's env includes,
//! as layerapi2 loads a layer's dependencies before it. One label per line
//! (`plugin_NAME@module`); a leading `-` makes it optional (skipped when the plugin is not
//! installed); `#` starts a comment. Layers that are not plugins (`python3@mfserv`, a
//! MetWork module's own) are the host's business: they are skipped, said with `-v`.

use std::path::Path;

use anyhow::Result;

use super::{plugin_dir, HomeError};
use crate::config::{self, PluginConfig, Settings};
use crate::plugin::{read_own_file, PluginName};
use crate::ui;

/// The file, in a plugin's dir.
pub(crate) const DEPENDENCIES_FILE: &str = ".layerapi2_dependencies";

/// The configurations of the plugins that `dir`'s plugin depends on, transitively, each once,
/// a plugin's dependencies before it (the order layerapi2 loads them in). Without a home in
/// `settings`, or a dependencies file, there are none.
pub(crate) fn dependencies(dir: &Path, settings: &Settings) -> Result<Vec<PluginConfig>> {
    let Some(home) = settings.home.clone() else {
        return Ok(Vec::new());
    };
    // Each plugin has its own module (its label's): a `--module` given for the outer plugin
    // does not apply to its dependencies.
    let settings = Settings {
        module_given: false,
        ..settings.clone()
    };
    let root = crate::plugin::Label::read(dir)
        .map(|label| label.name.to_string())
        .unwrap_or_default();
    let mut walk = Walk {
        home: &home,
        settings: &settings,
        stack: vec![root],
        done: Vec::new(),
    };
    walk.visit(dir)?;
    Ok(walk.done.into_iter().map(|(_, config)| config).collect())
}

/// A depth-first walk of the dependency graph.
struct Walk<'a> {
    home: &'a Path,
    settings: &'a Settings,
    /// The plugins being visited, outermost (the one whose env it is) first, to name a cycle.
    stack: Vec<String>,
    /// The dependencies loaded so far, by name, in load order.
    done: Vec<(String, PluginConfig)>,
}

impl Walk<'_> {
    /// Visits the dependencies of the plugin in `dir`, then loads each that is new.
    fn visit(&mut self, dir: &Path) -> Result<()> {
        let file = dir.join(DEPENDENCIES_FILE);
        let Some(text) = read_own_file(&file)? else {
            return Ok(());
        };
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let Some((name, optional)) = plugin_of(line, &file, line_no)? else {
                continue;
            };
            let dep_dir = plugin_dir(self.home, &name);
            if !dep_dir.join(crate::plugin::LABEL_FILE).is_file() {
                if optional {
                    ui::verbose(format!(
                        "{}:{line_no}: `{name}` is not installed: skipped (optional)",
                        file.display()
                    ));
                    continue;
                }
                return Err(HomeError::MissingDependency {
                    file: file.clone(),
                    line: line_no,
                    name,
                }
                .into());
            }
            if let Some(at) = self.stack.iter().position(|n| n == name.as_str()) {
                let mut chain: Vec<String> = self.stack.get(at..).unwrap_or_default().to_vec();
                chain.push(name.to_string());
                return Err(HomeError::DependencyCycle {
                    file: file.clone(),
                    line: line_no,
                    chain: chain.join(" -> "),
                }
                .into());
            }
            if self.done.iter().any(|(n, _)| n == name.as_str()) {
                continue;
            }
            self.stack.push(name.to_string());
            self.visit(&dep_dir)?;
            self.stack.pop();
            let config = config::load_reported(&dep_dir, self.settings)?;
            self.done.push((name.to_string(), config));
        }
        Ok(())
    }
}

/// The plugin a line names, and whether it is optional; `None` for a blank line, a comment or
/// a layer that is not a plugin.
fn plugin_of(line: &str, file: &Path, line_no: usize) -> Result<Option<(PluginName, bool)>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (label, optional) = match line.strip_prefix('-') {
        Some(rest) => (rest.trim(), true),
        None => (line, false),
    };
    let Some(rest) = label.strip_prefix("plugin_") else {
        ui::verbose(format!(
            "{}:{line_no}: `{label}` is not a plugin: the host provides it",
            file.display()
        ));
        return Ok(None);
    };
    let name = rest.split_once('@').map_or(rest, |(name, _)| name);
    match PluginName::parse(name) {
        Ok(name) => Ok(Some((name, optional))),
        Err(e) => Err(HomeError::BadDependency {
            file: file.to_path_buf(),
            line: line_no,
            why: e.to_string(),
        }
        .into()),
    }
}
