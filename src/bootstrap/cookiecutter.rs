//! MetWork's own plugin templates, as `--templates-dir` finds them: the cookiecutter layout of
//! `adm/templates-plugins/` (a dir with `cookiecutter.json` and a `{{cookiecutter.name}}/`
//! tree; symlinks into `_common/` followed; `{% extends "_common/config.ini" %}` resolved
//! from the templates dir; values as `{{cookiecutter.KEY}}`). MetWork's post-generation hook
//! is not run; its one effect, a `X.delete` file that renders to `yes` removing `X`, is done
//! here (and every `.delete` file is dropped).

use std::path::Path;

use anyhow::{Context as _, Result};
use indexmap::IndexMap;

use super::{Source, Template, VarSpec};

/// The file that makes a dir a cookiecutter template.
pub(crate) const MANIFEST: &str = "cookiecutter.json";
/// The suffix of MetWork's "remove this when it renders to `yes`" files.
const DELETE_SUFFIX: &str = ".delete";

/// Whether `dir` is a cookiecutter template: it has a manifest, and its name does not start
/// with `_` (MetWork's `_common/` holds what the templates share, and is none).
pub(crate) fn is_template(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
        && !dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('_'))
}

/// The cookiecutter template in `dir` (its parent is the templates dir).
pub(crate) fn template(dir: &Path) -> Result<Template> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = dir.join(MANIFEST);
    let text = fs_err::read_to_string(&manifest)?;
    let values: IndexMap<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("invalid cookiecutter manifest `{}`", manifest.display()))?;
    let variables = values
        .into_iter()
        .filter(|(key, _)| !key.starts_with('_'))
        .map(|(key, value)| (key, spec(&value)))
        .collect();
    let tree = fs_err::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("cookiecutter"))
        })
        .with_context(|| {
            format!(
                "cookiecutter template `{}` has no `{{{{cookiecutter.name}}}}` dir",
                dir.display()
            )
        })?;
    // The tree's own name is the plugin dir's: the paths start below it.
    let files = super::read_files(&tree, true, &name)?;
    Ok(Template {
        name,
        description: description(dir),
        source: Source::User(dir.to_path_buf()),
        variables,
        next: String::new(),
        files,
        cookiecutter_root: dir.parent().map(Path::to_path_buf),
    })
}

/// A cookiecutter value as a variable: a string is its default; a list is a choice, its first
/// item the default.
fn spec(value: &serde_json::Value) -> VarSpec {
    match value {
        serde_json::Value::String(s) => VarSpec {
            default: s.clone(),
            description: String::new(),
        },
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect();
            VarSpec {
                default: items.first().cloned().unwrap_or_default(),
                description: format!("one of: {}", items.join(", ")),
            }
        }
        other => VarSpec {
            default: other.to_string(),
            description: String::new(),
        },
    }
}

/// The first line of prose of the template's `README.md`, else a generic description.
fn description(dir: &Path) -> String {
    fs_err::read_to_string(dir.join("README.md"))
        .ok()
        .and_then(|text| {
            // The first line of text that is not a heading such as `# README`.
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "MetWork plugin template (cookiecutter)".to_owned())
}

/// What MetWork's bootstrap adds to a template's values: the module's name and version (here
/// mfplug's, which `.plugin_format_version` then records as the tool that made the plugin).
pub(crate) fn module_context(module: &str) -> [(String, String); 3] {
    [
        ("MFMODULE".into(), module.to_ascii_uppercase()),
        ("MFMODULE_LOWERCASE".into(), module.to_ascii_lowercase()),
        ("MFMODULE_VERSION".into(), env!("CARGO_PKG_VERSION").into()),
    ]
}

/// Renders the defaults of `cookiecutter.json` that `--set` did not replace, in the file's
/// order, as cookiecutter does: each sees the values above it (`{% raw %}` keeps a
/// `{{MFMODULE_VERSION}}` for `config.ini`'s own rendering).
pub(crate) fn render_defaults(
    root: &Path,
    template: &Template,
    set_keys: &[String],
    vars: &mut std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let env = environment(root);
    for (key, spec) in &template.variables {
        if set_keys.contains(key) || !spec.default.contains(['{', '%']) {
            continue;
        }
        let rendered = env
            .render_str(
                &spec.default,
                minijinja::context! { cookiecutter => &*vars },
            )
            .with_context(|| {
                format!(
                    "template `{}`: cannot render the default of `{key}`",
                    template.name
                )
            })?;
        vars.insert(key.clone(), rendered);
    }
    Ok(())
}

/// The rendering environment of a cookiecutter template: Jinja's lenient undefined values, as
/// cookiecutter's, and templates loaded from the templates dir, for `{% extends %}`.
pub(crate) fn environment(root: &Path) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_loader(minijinja::path_loader(root));
    env
}

/// Applies MetWork's `.delete` files to the rendered `files` (paths and contents): a
/// `X.delete` whose content is `yes` removes `X` (a file, or a dir and all under it); every
/// `.delete` file goes.
pub(crate) fn apply_deletes(files: &mut Vec<super::Rendered>) {
    let doomed: Vec<std::path::PathBuf> = files
        .iter()
        .filter_map(|file| {
            let name = file.path.to_string_lossy();
            let stem = name.strip_suffix(DELETE_SUFFIX)?;
            (String::from_utf8_lossy(&file.contents).trim() == "yes").then(|| stem.into())
        })
        .collect();
    files.retain(|file| {
        !file.path.to_string_lossy().ends_with(DELETE_SUFFIX)
            && !doomed.iter().any(|d| file.path.starts_with(d))
    });
}
