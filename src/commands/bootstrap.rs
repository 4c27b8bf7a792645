//! `mfplug bootstrap list` (every template, with its description and variables) and
//! `mfplug bootstrap create NAME` (a plugin dir from a template).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::bootstrap::{self, Source, Template};
use crate::ui;

#[derive(Serialize)]
struct ListReport<'a> {
    templates: &'a [Template],
}

pub(crate) fn list(template_dirs: &[PathBuf], ctx: &Ctx) -> Result<ExitCode> {
    let (templates, errors) = bootstrap::discover(&bootstrap::user_dirs(template_dirs));
    if ctx.json {
        super::out_json(&ListReport {
            templates: &templates,
        })?;
    } else {
        ui::out(list_text(&templates).trim_end())?;
    }
    for e in &errors {
        ui::print_error(e);
    }
    Ok(super::exit(errors.is_empty()))
}

/// One line per template; with `-v`, its variables below it as `--set` flags.
fn list_text(templates: &[Template]) -> String {
    let width = templates.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for t in templates {
        let source = match &t.source {
            Source::Builtin => String::new(),
            Source::User(path) => format!(" (from `{}`)", path.display()),
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
    text
}

#[derive(Serialize)]
struct CreateReport<'a> {
    name: &'a str,
    template: &'a str,
    dir: &'a Path,
    files: usize,
    next: &'a str,
}

pub(crate) fn create(
    name: String,
    template: String,
    sets: Vec<String>,
    dir: Option<PathBuf>,
    template_dirs: &[PathBuf],
    ctx: &Ctx,
) -> Result<ExitCode> {
    let created = bootstrap::create(&bootstrap::CreateOptions {
        name: name.clone(),
        template: template.clone(),
        sets,
        dir,
        module: ctx.module.clone(),
        user_dirs: bootstrap::user_dirs(template_dirs),
    })?;
    if ctx.json {
        super::out_json(&CreateReport {
            name: &name,
            template: &template,
            dir: &created.dir,
            files: created.files,
            next: created.next.trim(),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    ui::status(
        "Created",
        format!(
            "plugin `{name}` from template `{template}` in `{}` ({} files)",
            created.dir.display(),
            created.files
        ),
    );
    if !created.next.trim().is_empty() {
        ui::note(format!("\n{}", created.next.trim_end()));
    }
    Ok(ExitCode::SUCCESS)
}
