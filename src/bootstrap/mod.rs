//! `mfplug bootstrap`: start a plugin dir from a template.
//!
//! A template is a directory with `template.toml` (description, variables and their
//! defaults), `NEXT.md` (what to do next, printed after creation) and `files/` (the tree to
//! create, whose file names and contents are rendered with minijinja). The built-in templates
//! of `templates/` are embedded in the binary; `--templates-dir` and `MFPLUG_TEMPLATES_DIR`
//! add the user's own, which shadow a built-in template of the same name.
//!
//! Creation renders everything in memory first, then writes into a temp dir beside the target,
//! loads it as `check` would and renames it into place: a bad template, name or variable, or a
//! `--set` value `check` refuses, leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use include_dir::{include_dir, Dir};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::{Invalid, Problem, Settings};
use crate::plugin::{validate_name, NameError};
use crate::ui;

mod cookiecutter;

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

pub(crate) const MANIFEST: &str = "template.toml";
pub(crate) const NEXT: &str = "NEXT.md";
pub(crate) const FILES: &str = "files";

/// Variables every template gets, with their defaults; a manifest may change a default.
pub(crate) const COMMON_VARIABLES: &[(&str, &str, &str)] = &[
    (
        "version",
        "0.0.1",
        "the plugin's first version (`[general] _version`)",
    ),
    (
        "summary",
        "one line summary of the plugin",
        "`[general] _summary`",
    ),
    ("license", "BSD", "`[general] _license`"),
    ("url", "unknown", "`[general] _url`"),
    (
        "maintainer",
        "Firstname FAMILYNAME <email>",
        "`[general] _maintainer` (default: git's `user.name <user.email>`)",
    ),
    (
        "vendor",
        "unknown",
        "`[general] _vendor` (default: git's `user.name`)",
    ),
];

/// The common variables with their defaults: those of [`COMMON_VARIABLES`], where the
/// placeholders of `maintainer` and `vendor` give way to who git says the user is. Every
/// default is non-empty, as `check` wants each of these `[general]` keys.
fn common_variables() -> IndexMap<String, VarSpec> {
    let git = GitIdentity::read();
    COMMON_VARIABLES
        .iter()
        .map(|&(name, placeholder, description)| {
            let from_git = match name {
                "maintainer" => git.maintainer(),
                "vendor" => git.vendor(),
                _ => None,
            };
            let spec = VarSpec {
                default: from_git.unwrap_or_else(|| placeholder.to_owned()),
                description: description.to_owned(),
            };
            (name.to_owned(), spec)
        })
        .collect()
}

/// Who git says the user is: `git config --get user.name` and `user.email`, each `None` when
/// git is missing, fails or has no such key.
#[derive(Debug, Default)]
struct GitIdentity {
    name: Option<String>,
    email: Option<String>,
}

impl GitIdentity {
    /// Asks git for both keys.
    fn read() -> Self {
        GitIdentity {
            name: git_config("user.name"),
            email: git_config("user.email"),
        }
    }

    /// `Name <email>`, `Name` or `email`, whichever git has.
    fn maintainer(&self) -> Option<String> {
        match (&self.name, &self.email) {
            (Some(name), Some(email)) => Some(format!("{name} <{email}>")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        }
    }

    /// The user's name, else the email.
    fn vendor(&self) -> Option<String> {
        self.name.clone().or_else(|| self.email.clone())
    }
}

/// The value of one git config key (one line, trimmed), `None` when git is missing, fails or
/// gives nothing.
fn git_config(key: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["config", "--get", key])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let value = String::from_utf8(out.stdout).ok()?;
    let value = value.lines().next().unwrap_or_default().trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// What goes wrong in `bootstrap`, with where; `commands` says what to do about each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BootstrapError {
    /// No template of that name; `close` is the name closest to it, if one is close.
    #[error("unknown template `{name}`")]
    UnknownTemplate {
        name: String,
        close: Option<String>,
        available: Vec<String>,
    },
    /// A `--set` flag with no `=`.
    #[error("invalid `--set {set}`: expected `key=value`")]
    SetSyntax { set: String },
    /// A `--set` of a variable mfplug sets itself.
    #[error("`--set {key}=...` is not allowed: mfplug sets `{key}` itself")]
    Reserved { key: String },
    /// A `--set` of a variable the template does not take; `close` is the variable closest
    /// to it, if one is close.
    #[error("unknown variable `{key}` for template `{template}`")]
    UnknownVariable {
        key: String,
        template: String,
        close: Option<String>,
        known: Vec<String>,
    },
    /// The plugin name is not one.
    #[error("{0}")]
    BadName(NameError),
    /// `--module` names a module mfplug does not know; `known` lists those it does.
    #[error("mfplug does not know module `{module}`: the known modules are {known}")]
    UnknownModule { module: String, known: String },
    /// The target is there and is not a directory.
    #[error("`{}` already exists and is not a directory", path.display())]
    NotADir { path: PathBuf },
    /// The target is a directory with something in it.
    #[error("`{}` already exists and is not empty", path.display())]
    NotEmpty { path: PathBuf },
    /// The rendered plugin, `dir`, would not load: `mfplug check` would refuse it (a `--set`
    /// value it refuses, or a template that makes a bad `config.ini`). `invalid` names the
    /// problems as `dir`'s; nothing was created.
    #[error("the plugin would not pass `mfplug check`: nothing was created in `{}`", dir.display())]
    WouldNotCheck {
        dir: PathBuf,
        #[source]
        invalid: Invalid,
    },
}

/// Variables set by mfplug itself, which `--set` cannot change.
const RESERVED: &[&str] = &["name", "module", "MODULE", "mfplug_version"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VarSpec {
    #[serde(default)]
    pub(crate) default: String,
    #[serde(default)]
    pub(crate) description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    description: String,
    #[serde(default)]
    variables: IndexMap<String, VarSpec>,
}

/// Where a template comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub(crate) enum Source {
    Builtin,
    User(PathBuf),
}

/// A file of a template: its path under `files/` (not rendered yet) and its bytes.
#[derive(Debug, Clone)]
struct TemplateFile {
    path: String,
    contents: Vec<u8>,
    executable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Template {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) source: Source,
    /// Common and template variables, with their defaults.
    pub(crate) variables: IndexMap<String, VarSpec>,
    #[serde(skip)]
    next: String,
    #[serde(skip)]
    files: Vec<TemplateFile>,
    /// For a MetWork (cookiecutter) template, the templates dir `{% extends %}` loads from.
    #[serde(skip)]
    cookiecutter_root: Option<PathBuf>,
}

/// The template dirs named by `MFPLUG_TEMPLATES_DIR` (a `:`-separated list) and the flags.
pub(crate) fn user_dirs(flags: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("MFPLUG_TEMPLATES_DIR")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    dirs.extend(flags.iter().cloned());
    dirs
}

/// Every template: the built-in ones, then those of `user_dirs` (a later one shadows an
/// earlier one of the same name). A user template that cannot be read is returned as an error
/// beside the others.
pub(crate) fn discover(user_dirs: &[PathBuf]) -> (Vec<Template>, Vec<anyhow::Error>) {
    let common = common_variables();
    let mut templates: Vec<Template> = Vec::new();
    let mut errors = Vec::new();
    for dir in BUILTIN.dirs() {
        match builtin_template(dir, &common) {
            Ok(t) => templates.push(t),
            Err(e) => errors.push(e),
        }
    }
    for root in user_dirs {
        let entries = match fs_err::read_dir(root) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(
                    anyhow::Error::new(e)
                        .context(format!("cannot read templates dir `{}`", root.display())),
                );
                continue;
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(MANIFEST).is_file() || cookiecutter::is_template(p))
            .collect();
        dirs.sort();
        for dir in dirs {
            let template = if dir.join(MANIFEST).is_file() {
                disk_template(&dir, &common)
            } else {
                cookiecutter::template(&dir)
            };
            match template {
                Ok(t) => {
                    templates.retain(|old| old.name != t.name);
                    templates.push(t);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    (templates, errors)
}

fn parse_manifest(text: &str, origin: &str) -> Result<Manifest> {
    let manifest: Manifest =
        toml::from_str(text).with_context(|| format!("invalid template manifest `{origin}`"))?;
    for name in manifest.variables.keys() {
        if RESERVED.contains(&name.as_str()) {
            bail!("template manifest `{origin}` defines `{name}`, which mfplug sets itself");
        }
    }
    Ok(manifest)
}

/// The template from its parts: the common variables, then the manifest's own, which may
/// change a common default.
fn assemble(
    name: String,
    source: Source,
    manifest: Manifest,
    next: String,
    files: Vec<TemplateFile>,
    common: &IndexMap<String, VarSpec>,
) -> Template {
    let mut variables = common.clone();
    variables.extend(manifest.variables);
    Template {
        name,
        description: manifest.description,
        source,
        variables,
        next,
        files,
        cookiecutter_root: None,
    }
}

fn builtin_template(
    dir: &'static Dir<'static>,
    common: &IndexMap<String, VarSpec>,
) -> Result<Template> {
    let name = dir.path().to_string_lossy().into_owned();
    let origin = format!("built-in:{name}/{MANIFEST}");
    let manifest_text = dir
        .get_file(dir.path().join(MANIFEST))
        .and_then(|f| f.contents_utf8())
        .with_context(|| format!("built-in template `{name}` has no {MANIFEST}"))?;
    let manifest = parse_manifest(manifest_text, &origin)?;
    let next = dir
        .get_file(dir.path().join(NEXT))
        .and_then(|f| f.contents_utf8())
        .unwrap_or_default()
        .to_owned();
    let mut files = Vec::new();
    if let Some(root) = dir.get_dir(dir.path().join(FILES)) {
        collect_builtin(root, root.path(), &mut files);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(assemble(
        name,
        Source::Builtin,
        manifest,
        next,
        files,
        common,
    ))
}

fn collect_builtin(dir: &Dir<'static>, root: &Path, files: &mut Vec<TemplateFile>) {
    for file in dir.files() {
        let path = file.path().strip_prefix(root).unwrap_or(file.path());
        files.push(TemplateFile {
            path: path.to_string_lossy().into_owned(),
            contents: file.contents().to_vec(),
            executable: false,
        });
    }
    for sub in dir.dirs() {
        collect_builtin(sub, root, files);
    }
}

fn disk_template(dir: &Path, common: &IndexMap<String, VarSpec>) -> Result<Template> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest_path = dir.join(MANIFEST);
    let manifest_text = fs_err::read_to_string(&manifest_path)?;
    let manifest = parse_manifest(&manifest_text, &manifest_path.display().to_string())?;
    let next = match fs_err::read_to_string(dir.join(NEXT)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let root = dir.join(FILES);
    let files = if root.is_dir() {
        read_files(&root, false, &name)?
    } else {
        Vec::new()
    };
    Ok(assemble(
        name,
        Source::User(dir.to_path_buf()),
        manifest,
        next,
        files,
        common,
    ))
}

/// The files under `root`, by path, each with its bytes and whether it is executable; with
/// `follow_links`, symlinks are read through (MetWork's templates share `_common/` so).
fn read_files(root: &Path, follow_links: bool, template: &str) -> Result<Vec<TemplateFile>> {
    use std::os::unix::fs::PermissionsExt;

    let mut files = Vec::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(follow_links)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.with_context(|| format!("cannot read template `{template}`"))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let mode = entry
            .metadata()
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        files.push(TemplateFile {
            path: rel.to_string_lossy().into_owned(),
            contents: fs_err::read(entry.path())?,
            executable: mode & 0o111 != 0,
        });
    }
    Ok(files)
}

/// What `bootstrap create` is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct CreateOptions {
    pub(crate) name: String,
    pub(crate) template: String,
    pub(crate) sets: Vec<String>,
    pub(crate) dir: Option<PathBuf>,
    /// Upper-case module prefix (`MFPLUG`).
    pub(crate) module: String,
    pub(crate) user_dirs: Vec<PathBuf>,
}

/// What `bootstrap create` made.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) dir: PathBuf,
    pub(crate) files: usize,
    pub(crate) next: String,
}

/// Finds a template by name, with a "did you mean" when there is none.
pub(crate) fn find(name: &str, user_dirs: &[PathBuf]) -> Result<Template> {
    let (templates, errors) = discover(user_dirs);
    for e in &errors {
        ui::warn(format!("{e:#}"));
    }
    if let Some(t) = templates.iter().find(|t| t.name == name) {
        return Ok(t.clone());
    }
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    Err(BootstrapError::UnknownTemplate {
        name: name.to_owned(),
        close: crate::config::schema::did_you_mean(name, names.iter().copied()).map(str::to_owned),
        available: names.iter().map(|&n| n.to_owned()).collect(),
    }
    .into())
}

/// Parses the `--set key=value` flags against the template's variables.
fn variables(template: &Template, opts: &CreateOptions) -> Result<BTreeMap<String, String>> {
    let mut vars: BTreeMap<String, String> = template
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.default.clone()))
        .collect();
    let mut set_keys: Vec<String> = Vec::new();
    for set in &opts.sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(BootstrapError::SetSyntax { set: set.clone() }.into());
        };
        let key = key.trim();
        if RESERVED.contains(&key) {
            return Err(BootstrapError::Reserved {
                key: key.to_owned(),
            }
            .into());
        }
        if !vars.contains_key(key) {
            let known: Vec<&str> = template.variables.keys().map(String::as_str).collect();
            return Err(BootstrapError::UnknownVariable {
                key: key.to_owned(),
                template: template.name.clone(),
                close: crate::config::schema::did_you_mean(key, known.iter().copied())
                    .map(str::to_owned),
                known: known.iter().map(|&k| k.to_owned()).collect(),
            }
            .into());
        }
        vars.insert(key.to_owned(), value.to_owned());
        set_keys.push(key.to_owned());
    }
    vars.insert("name".into(), opts.name.clone());
    vars.insert("module".into(), opts.module.to_ascii_lowercase());
    vars.insert("MODULE".into(), opts.module.to_ascii_uppercase());
    vars.insert("mfplug_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(root) = &template.cookiecutter_root {
        vars.extend(cookiecutter::module_context(&opts.module));
        cookiecutter::render_defaults(root, template, &set_keys, &mut vars)?;
    }
    Ok(vars)
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

/// A rendered file, ready to write.
struct Rendered {
    path: PathBuf,
    contents: Vec<u8>,
    executable: bool,
}

fn render_files(template: &Template, vars: &BTreeMap<String, String>) -> Result<Vec<Rendered>> {
    // A MetWork template sees its values as `cookiecutter.KEY`.
    let (env, context) = match &template.cookiecutter_root {
        Some(root) => (
            cookiecutter::environment(root),
            minijinja::context! { cookiecutter => vars },
        ),
        None => (environment(), minijinja::Value::from_serialize(vars)),
    };
    let mut out: Vec<Rendered> = Vec::new();
    'files: for file in &template.files {
        let what = || {
            format!(
                "template `{}`: cannot render `{}`",
                template.name, file.path
            )
        };
        let mut path = PathBuf::new();
        for component in file.path.split('/') {
            let rendered = env.render_str(component, &context).with_context(what)?;
            // An empty name leaves the file out, so that a variable can make a file optional.
            if rendered.trim().is_empty() {
                continue 'files;
            }
            if rendered == "."
                || rendered == ".."
                || rendered.contains('/')
                || rendered.contains('\0')
            {
                bail!(
                    "{}: its name renders to `{rendered}`, not a file name",
                    what()
                );
            }
            path.push(rendered);
        }
        let (contents, executable) = match std::str::from_utf8(&file.contents) {
            Ok(text) => {
                let rendered = env.render_str(text, &context).with_context(what)?;
                let shebang = rendered.starts_with("#!");
                (rendered.into_bytes(), file.executable || shebang)
            }
            Err(_) => (file.contents.clone(), file.executable),
        };
        if out.iter().any(|r| r.path == path) {
            bail!("{}: two files render to `{}`", what(), path.display());
        }
        out.push(Rendered {
            path,
            contents,
            executable,
        });
    }
    if template.cookiecutter_root.is_some() {
        cookiecutter::apply_deletes(&mut out);
    }
    Ok(out)
}

/// Refuses a module mfplug does not know: the label `create` writes names it, and `check`
/// would refuse the plugin.
fn check_module(module: &str) -> Result<()> {
    if crate::config::module::is_known(module) {
        return Ok(());
    }
    Err(BootstrapError::UnknownModule {
        module: module.to_owned(),
        known: crate::config::module::known_list(),
    }
    .into())
}

/// Creates a plugin dir from a template; on any error nothing is left behind.
pub(crate) fn create(opts: &CreateOptions) -> Result<Created> {
    validate_name(&opts.name).map_err(BootstrapError::BadName)?;
    check_module(&opts.module)?;
    let template = find(&opts.template, &opts.user_dirs)?;
    let vars = variables(&template, opts)?;
    let target = opts
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&opts.name));
    check_target(&target)?;

    let files = render_files(&template, &vars)?;
    let env = environment();
    let mut next_vars = vars.clone();
    next_vars.insert("dir".into(), target.display().to_string());
    let next = env
        .render_str(&template.next, &next_vars)
        .with_context(|| format!("template `{}`: cannot render {NEXT}", template.name))?;

    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Dropped last: on an error, the dirs made above the target go after the temp dir.
    let made = MadeParents::create(&parent)?;
    let staging = stage(&parent, &files)?;
    // A MetWork template's label names its module, which `--module` does not override.
    let module_given = template.cookiecutter_root.is_none();
    check_staged(staging.path(), &target, &opts.module, module_given)?;
    let staged = staging.keep();
    if let Err(e) = fs_err::rename(&staged, &target) {
        let _ = fs_err::remove_dir_all(&staged);
        return Err(anyhow::Error::new(e).context(format!("cannot create `{}`", target.display())));
    }
    made.keep();
    Ok(Created {
        dir: target,
        files: files.len(),
        next,
    })
}

/// Refuses a target that is there and is not an empty directory.
fn check_target(target: &Path) -> Result<()> {
    match fs_err::symlink_metadata(target) {
        Ok(meta) if !meta.is_dir() => Err(BootstrapError::NotADir {
            path: target.to_path_buf(),
        }
        .into()),
        Ok(_) => {
            let mut entries = fs_err::read_dir(target)?;
            if entries.next().is_some() {
                return Err(BootstrapError::NotEmpty {
                    path: target.to_path_buf(),
                }
                .into());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read `{}`", target.display()))),
    }
}

/// The dirs `create` made above the target (`--dir a/b/c` with no `a`), removed again when
/// dropped unless the creation succeeded.
struct MadeParents {
    /// `parent`, then each dir above it up to the highest one made, while they are to remove.
    made: Vec<PathBuf>,
}

impl MadeParents {
    /// Creates `parent` and the dirs above it that are missing, remembering which.
    fn create(parent: &Path) -> Result<MadeParents> {
        let made = parent
            .ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && fs_err::symlink_metadata(dir).is_err())
            .map(Path::to_path_buf)
            .collect();
        fs_err::create_dir_all(parent)?;
        Ok(MadeParents { made })
    }

    /// The creation succeeded: the dirs stay.
    fn keep(mut self) {
        self.made.clear();
    }
}

impl Drop for MadeParents {
    /// Removes the dirs made, deepest first; one that is no longer empty stays, and so do
    /// those above it.
    fn drop(&mut self) {
        for dir in &self.made {
            if fs_err::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Writes the rendered files into a new temp dir in `parent`, with the mode a new dir gets;
/// the temp dir is removed when the returned handle drops.
fn stage(parent: &Path, files: &[Rendered]) -> Result<tempfile::TempDir> {
    let staging = tempfile::Builder::new()
        .prefix(".mfplug-bootstrap-")
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in `{}`",
                parent.display()
            )
        })?;
    for file in files {
        write_file(staging.path(), file)?;
    }
    set_dir_mode(staging.path())?;
    Ok(staging)
}

/// Loads the staged plugin as `mfplug check` would (without a runtime home's override
/// layers: the plugin is not installed) and refuses it when it does not load, its problems
/// named as `target`'s; prints its warnings.
fn check_staged(staging: &Path, target: &Path, module: &str, module_given: bool) -> Result<()> {
    let settings = Settings::from_env(module, module_given, None);
    match crate::config::load_reported(staging, &settings) {
        Ok(config) => {
            for warning in &config.warnings {
                ui::print_problem(&as_target(warning, staging, target));
            }
            Ok(())
        }
        Err(mut invalid) => {
            for problem in &mut invalid.problems {
                *problem = as_target(problem, staging, target);
            }
            invalid.dir = target.to_path_buf();
            Err(BootstrapError::WouldNotCheck {
                dir: target.to_path_buf(),
                invalid,
            }
            .into())
        }
    }
}

/// A problem of the staged dir as one of the target: its file and the paths in its words.
fn as_target(problem: &Problem, staging: &Path, target: &Path) -> Problem {
    let (from, to) = (staging.display().to_string(), target.display().to_string());
    let mut problem = problem.clone();
    if let Some(file) = &problem.file {
        if let Ok(rel) = file.strip_prefix(staging) {
            problem.file = Some(target.join(rel));
        }
    }
    problem.message = problem.message.replace(&from, &to);
    problem.hint = problem.hint.map(|hint| hint.replace(&from, &to));
    problem
}

fn write_file(root: &Path, file: &Rendered) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let path = root.join(&file.path);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(&path, &file.contents)?;
    if file.executable {
        let mut perms = fs_err::metadata(&path)?.permissions();
        let mode = perms.mode();
        // Executable wherever readable, so that the umask still decides who may run it.
        perms.set_mode(mode | ((mode & 0o444) >> 2));
        fs_err::set_permissions(&path, perms)?;
    }
    Ok(())
}

/// A temp dir is made 0700; the plugin dir gets the usual mode under the umask.
fn set_dir_mode(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    // Read the umask from a freshly created dir: no libc call needed.
    let probe = dir.join(".mfplug-umask-probe");
    fs_err::create_dir(&probe)?;
    let mode = fs_err::metadata(&probe)?.permissions().mode() & 0o777;
    fs_err::remove_dir(&probe)?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_load() {
        let (templates, errors) = discover(&[]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        for expected in ["default", "python3_daemon", "nodejs", "rust", "bin"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for t in &templates {
            assert!(!t.description.is_empty());
            assert!(!t.files.is_empty(), "{} has no files", t.name);
            assert!(!t.next.is_empty(), "{} has no {NEXT}", t.name);
        }
    }

    #[test]
    fn maintainer_and_vendor_from_what_git_has() {
        let who = |name: Option<&str>, email: Option<&str>| GitIdentity {
            name: name.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        let both = who(Some("Jane DOE"), Some("jane@example.invalid"));
        assert_eq!(
            both.maintainer().as_deref(),
            Some("Jane DOE <jane@example.invalid>")
        );
        assert_eq!(both.vendor().as_deref(), Some("Jane DOE"));
        let name = who(Some("Jane DOE"), None);
        assert_eq!(name.maintainer().as_deref(), Some("Jane DOE"));
        assert_eq!(name.vendor().as_deref(), Some("Jane DOE"));
        let email = who(None, Some("jane@example.invalid"));
        assert_eq!(email.maintainer().as_deref(), Some("jane@example.invalid"));
        assert_eq!(email.vendor().as_deref(), Some("jane@example.invalid"));
        let nobody = who(None, None);
        assert_eq!((nobody.maintainer(), nobody.vendor()), (None, None));
        // Without git's identity every common default is still non-empty, as `check` wants.
        for (name, placeholder, _) in COMMON_VARIABLES {
            assert!(!placeholder.trim().is_empty(), "{name}");
        }
    }

    #[test]
    fn a_misspelt_variable_names_the_close_one() {
        let template = find("default", &[]).unwrap();
        let opts = CreateOptions {
            name: "foo".into(),
            template: "default".into(),
            sets: vec!["verson=1".into()],
            dir: None,
            module: "MFPLUG".into(),
            user_dirs: Vec::new(),
        };
        let error = variables(&template, &opts).unwrap_err();
        match error.downcast_ref::<BootstrapError>() {
            Some(BootstrapError::UnknownVariable {
                key, close, known, ..
            }) => {
                assert_eq!(key, "verson");
                assert_eq!(close.as_deref(), Some("version"));
                assert!(known.iter().any(|k| k == "summary"), "{known:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "unknown variable `verson` for template `default`"
        );
    }
}
