//! The plugin model: a plugin dir's effective configuration and the variables it generates.
//!
//! Loading goes: read the label (the name), read `config.ini` and the override layers of the
//! runtime home (`config/plugins/NAME.ini`, then `provision/NAME.ini`), merge them key by key,
//! check the merged sections against the schema, pick each key's variant for the
//! configuration name (`MFCONFIG`), fill the defaults, render every value as a Jinja template,
//! and derive the `{MODULE}_CURRENT_PLUGIN_*` variables. Every problem found on the way is
//! collected, so that `mfplug check` can report them all at once.

pub mod ini;
mod invalid;
pub(crate) mod schema;

pub(crate) use invalid::{load_reported, Invalid};
pub(crate) mod module;
mod profile;
mod unsupported;

pub(crate) use unsupported::unsupported;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::plugin::{self, Label, CONFIG_FILE};
use ini::{Document, Key};
use schema::{Profile, SectionKind};

/// What the model needs to know of the world: the module `--module` names, the configuration
/// name, the runtime home and the environment values are rendered against.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Upper-case module (`MFPLUG`, `MFDATA`, ...) of a plugin being made and of the hints
    /// about a missing label: `--module`/`MFPLUG_MODULE`, else `MFPLUG`. A plugin's own module,
    /// the prefix of its variables, is the one its label names (`module::of_label`).
    pub module: String,
    /// Whether `--module`/`MFPLUG_MODULE` named [`Settings::module`]: then a label naming
    /// another module is an error.
    pub module_given: bool,
    /// The configuration name that picks variants (`MFCONFIG`, default `GENERIC`).
    pub config_name: String,
    pub home: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
}

impl Settings {
    /// Settings from the process environment; `module_given` when `--module`/`MFPLUG_MODULE`
    /// named `module`.
    pub(crate) fn from_env(module: &str, module_given: bool, home: Option<PathBuf>) -> Settings {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let config_name = env
            .get("MFCONFIG")
            .filter(|v| !v.trim().is_empty())
            .map_or_else(|| "GENERIC".to_owned(), |v| v.trim().to_owned());
        Settings {
            module: module.to_ascii_uppercase(),
            module_given,
            config_name,
            home,
            env,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Error,
    Warning,
    /// Shown with `-v` only: a variable that renders empty, as in MetWork.
    Info,
}

/// One problem of a plugin dir, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub(crate) severity: Severity,
    pub(crate) file: Option<PathBuf>,
    pub line: Option<usize>,
    pub section: Option<String>,
    pub(crate) key: Option<String>,
    pub message: String,
    pub(crate) hint: Option<String>,
}

impl Problem {
    fn error(file: Option<&Path>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            file: file.map(Path::to_path_buf),
            line: None,
            section: None,
            key: None,
            message: message.into(),
            hint: None,
        }
    }

    fn warning(file: Option<&Path>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(file, message)
        }
    }

    fn info(file: Option<&Path>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Info,
            ..Problem::error(file, message)
        }
    }

    fn at(mut self, line: usize) -> Problem {
        self.line = (line > 0).then_some(line);
        self
    }

    fn in_section(mut self, section: &str) -> Problem {
        self.section = Some(section.to_owned());
        self
    }

    fn for_key(mut self, key: &str) -> Problem {
        self.key = Some(key.to_owned());
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(file) = &self.file {
            place.push(format!("`{}`", file.display()));
        }
        if let Some(line) = self.line {
            place.push(format!("line {line}"));
        }
        if let Some(section) = &self.section {
            place.push(format!("section `[{section}]`"));
        }
        if place.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", place.join(", "), self.message)
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum Origin {
    /// A line of a file (`config.ini` or an override layer).
    File { path: PathBuf, line: usize },
    /// The schema's default.
    Default,
}

/// One effective key: its rendered value, the text it was rendered from and its origin.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub(crate) value: String,
    pub(crate) raw: String,
    pub(crate) variant: Option<String>,
    pub(crate) origin: Origin,
}

/// The effective configuration of a plugin dir.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub(crate) dir: PathBuf,
    pub(crate) label: Label,
    /// The files read, lowest layer first.
    pub(crate) layers: Vec<PathBuf>,
    pub(crate) config_name: String,
    /// Sections in file order (private `_` sections left out), keys in file order then
    /// defaults.
    pub sections: IndexMap<String, IndexMap<String, Setting>>,
    /// The generated variables, in a stable order.
    pub variables: IndexMap<String, String>,
    /// Problems that do not stop the plugin from loading (an unknown variable, ...).
    pub warnings: Vec<Problem>,
}

impl PluginConfig {
    pub(crate) fn name(&self) -> &str {
        &self.label.name
    }

    pub(crate) fn get(&self, section: &str, key: &str) -> Option<&str> {
        Some(self.sections.get(section)?.get(key)?.value.as_str())
    }

    /// The effective values, section by section, in file order (without their origins).
    pub(crate) fn values(&self) -> IndexMap<&str, IndexMap<&str, &str>> {
        self.sections
            .iter()
            .map(|(section, keys)| {
                let keys = keys
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.value.as_str()))
                    .collect();
                (section.as_str(), keys)
            })
            .collect()
    }

    pub(crate) fn version(&self) -> &str {
        self.get("general", "_version").unwrap_or_default()
    }

    pub(crate) fn release(&self) -> &str {
        self.get("general", "_release").unwrap_or("1")
    }
}

/// The override layers of the runtime home, lowest first, for a plugin named `name`.
pub(crate) fn override_paths(home: &Path, name: &str) -> [PathBuf; 2] {
    [
        home.join("config")
            .join("plugins")
            .join(format!("{name}.ini")),
        home.join("provision").join(format!("{name}.ini")),
    ]
}

/// The most a layer (`config.ini`, an override file) may take.
pub(crate) const MAX_FILE_BYTES: usize = 16 << 20;
/// The most a value may take once rendered: far above any real value, low enough that a
/// file whose keys each render the one above twice ("billion laughs") stops at once.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most all the values of a plugin may take once rendered.
pub(crate) const MAX_RENDERED_BYTES: usize = 16 << 20;
/// The template steps (minijinja fuel) one value may take: a real value takes a handful.
pub(crate) const MAX_STEPS_PER_VALUE: u64 = 100_000;
/// The template steps all the values of a plugin may take.
pub(crate) const MAX_STEPS: u64 = 10_000_000;

/// A raw merged value: the text and where it was written.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    file: usize,
    line: usize,
}

/// A merged section: where it first appears and its keys (with variants) in order.
#[derive(Debug, Clone)]
struct RawSection {
    file: usize,
    line: usize,
    keys: IndexMap<Key, Raw>,
}

/// Loads the effective configuration of the plugin in `dir`; on failure, every problem found,
/// in reading order: the plugin's own files, `config.ini` line by line, then the overrides.
pub fn load(dir: &Path, settings: &Settings) -> Result<PluginConfig, Vec<Problem>> {
    let config_path = dir.join(CONFIG_FILE);
    let rank = |p: &Problem| {
        let file = p.file.clone().unwrap_or_default();
        let is_override = p.file.is_some() && !file.starts_with(dir);
        (is_override, file == config_path, file, p.line.unwrap_or(0))
    };
    match load_unsorted(dir, settings) {
        Ok(mut config) => {
            config.warnings.sort_by_key(rank);
            Ok(config)
        }
        Err(mut problems) => {
            problems.sort_by_key(rank);
            Err(problems)
        }
    }
}

/// [`load`] before the problems are put in order.
fn load_unsorted(dir: &Path, settings: &Settings) -> Result<PluginConfig, Vec<Problem>> {
    let mut problems = Vec::new();

    let label = read_label(dir, settings, &mut problems);
    // The plugin's module is its label's; without a label, go on with the given one, so that
    // the other problems are reported too.
    let module = match &label {
        Some(label) => module::of_label(dir, label, settings, &mut problems),
        None => settings.module.clone(),
    };
    let settings = &Settings {
        module,
        ..settings.clone()
    };
    if let Err(message) = plugin::read_format_version(dir) {
        problems.push(Problem::error(
            Some(&dir.join(plugin::FORMAT_VERSION_FILE)),
            message,
        ));
    }

    let (files, docs) = read_layers(dir, settings, label.as_ref(), &mut problems);
    let merged = merge(&docs);
    let profile = schema::profile(&settings.module);
    check_schema(&merged, &files, profile, &mut problems);

    // Go on rendering after schema errors, so that rendering problems are reported too.
    let Some(label) = label.filter(|_| !docs.is_empty()) else {
        return Err(problems);
    };

    let sections = resolve(&merged, &settings.config_name, profile);
    let mut config = render(dir, label, files, sections, settings, &mut problems);
    if let Some(config) = &mut config {
        profile::apply(&settings.module, &settings.env, config, &mut problems);
    }
    match config {
        Some(config) if !problems.iter().any(|p| p.severity == Severity::Error) => Ok(config),
        _ => Err(problems),
    }
}

/// Reads the plugin's label: a problem (with how to write one) when it is missing or
/// malformed.
fn read_label(dir: &Path, settings: &Settings, problems: &mut Vec<Problem>) -> Option<Label> {
    match Label::read(dir) {
        Ok(label) => Some(label),
        Err(e) => {
            let hint = match e {
                plugin::LabelError::Missing(_) | plugin::LabelError::Malformed(..) => {
                    Some(format!(
                        "write `plugin_NAME@{}` in it, NAME being the plugin name",
                        settings.module.to_ascii_lowercase()
                    ))
                }
                _ => None,
            };
            let mut problem = Problem::error(None, e.to_string());
            problem.hint = hint;
            problems.push(problem);
            None
        }
    }
}

/// Reads the layers in order: the plugin's `config.ini` (a problem when it is missing), then
/// the home's override files of the plugin (with a label to name them); returns the files
/// read and their documents.
fn read_layers(
    dir: &Path,
    settings: &Settings,
    label: Option<&Label>,
    problems: &mut Vec<Problem>,
) -> (Vec<PathBuf>, Vec<Document>) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut docs: Vec<Document> = Vec::new();
    let config_path = dir.join(CONFIG_FILE);
    match read_layer(&config_path, true, problems) {
        Some(doc) => {
            files.push(config_path);
            docs.push(doc);
        }
        None => {
            if !config_path.exists() {
                problems.push(
                    Problem::error(Some(&config_path), "is missing")
                        .hint("every plugin dir needs a `config.ini` with a `[general]` section; `mfplug bootstrap create` makes one"),
                );
            }
        }
    }
    if let (Some(home), Some(label)) = (&settings.home, label) {
        for path in override_paths(home, &label.name) {
            if let Some(doc) = read_layer(&path, false, problems) {
                check_override(&path, &doc, problems);
                files.push(path);
                docs.push(doc);
            }
        }
    }
    (files, docs)
}

/// Reads and parses one layer; `None` when it is absent (and not `required`) or unreadable.
/// At most [`MAX_FILE_BYTES`] are read: a bigger file (or `/dev/zero` behind a symlink) is a
/// problem, not a read until memory runs out.
fn read_layer(path: &Path, required: bool, problems: &mut Vec<Problem>) -> Option<Document> {
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(ReadError::TooBig) => {
            problems.push(
                Problem::error(
                    Some(path),
                    format!("is larger than {} MiB", MAX_FILE_BYTES >> 20),
                )
                .hint(format!(
                    "a configuration file may take {} MiB; is it a symlink to a device, or data \
                     that belongs in a file of its own?",
                    MAX_FILE_BYTES >> 20
                )),
            );
            return None;
        }
        Err(ReadError::NotUtf8(at)) => {
            problems.push(
                Problem::error(
                    Some(path),
                    format!("is not UTF-8 text: byte {at} is not part of a character"),
                )
                .hint("save the file as UTF-8"),
            );
            return None;
        }
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return None
        }
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(ReadError::Io(e)) => {
            problems.push(Problem::error(Some(path), format!("cannot be read: {e}")));
            return None;
        }
    };
    let (doc, errors) = Document::parse(&text);
    for error in errors {
        problems.push(Problem::error(Some(path), error.kind.to_string()).at(error.line));
    }
    Some(doc)
}

enum ReadError {
    Io(std::io::Error),
    /// More than [`MAX_FILE_BYTES`].
    TooBig,
    /// Not UTF-8 from this byte on.
    NotUtf8(usize),
}

/// The text of `path`, reading at most [`MAX_FILE_BYTES`] and one byte.
fn read_bounded(path: &Path) -> Result<String, ReadError> {
    use std::io::Read as _;
    let file = fs_err::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooBig);
    }
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// An override layer may not set `_` sections or keys: they are the developer's.
fn check_override(path: &Path, doc: &Document, problems: &mut Vec<Problem>) {
    let hint = "keys and sections starting with `_` belong to the plugin's developer and cannot be overridden; remove the line";
    for section in doc.sections() {
        if section.name.starts_with('_') {
            problems.push(
                Problem::error(
                    Some(path),
                    format!("section `[{}]` cannot be overridden", section.name),
                )
                .at(section.line)
                .in_section(&section.name)
                .hint(hint),
            );
            continue;
        }
        for entry in section.entries() {
            if entry.key.name.starts_with('_') {
                problems.push(
                    Problem::error(
                        Some(path),
                        format!("key `{}` cannot be overridden", entry.key),
                    )
                    .at(entry.line)
                    .in_section(&section.name)
                    .for_key(&entry.key.name)
                    .hint(hint),
                );
            }
        }
    }
}

/// Merges the layers: a later layer's `key[VARIANT]` replaces the same `key[VARIANT]` of an
/// earlier one. Private sections are dropped here, as MetWork ignores them.
fn merge(docs: &[Document]) -> IndexMap<String, RawSection> {
    let mut merged: IndexMap<String, RawSection> = IndexMap::new();
    for (file, doc) in docs.iter().enumerate() {
        for section in doc.sections() {
            if schema::section_kind(&section.name) == SectionKind::Private {
                continue;
            }
            let target = merged
                .entry(section.name.clone())
                .or_insert_with(|| RawSection {
                    file,
                    line: section.line,
                    keys: IndexMap::new(),
                });
            for entry in section.entries() {
                target.keys.insert(
                    entry.key.clone(),
                    Raw {
                        value: entry.value.clone(),
                        file,
                        line: entry.line,
                    },
                );
            }
        }
    }
    merged
}

/// Checks the merged sections against `config::schema`: the `[general]` section and its
/// `_version`, unknown sections and keys (with "did you mean"), and the values that hold no
/// template.
fn check_schema(
    merged: &IndexMap<String, RawSection>,
    files: &[PathBuf],
    profile: &Profile,
    problems: &mut Vec<Problem>,
) {
    if let Some(config_file) = files.first() {
        check_general(merged, config_file, profile, problems);
    }
    for (name, section) in merged {
        let kind = schema::section_kind(name);
        if !profile.has_section(kind) {
            problems.push(unknown_section(name, section, files, profile));
            continue;
        }
        for (key, raw) in &section.keys {
            check_key(name, (profile, kind), key, raw, files, problems);
        }
    }
}

/// Checks that `config.ini` (`config_file`) has a `[general]` section with the keys the
/// module requires (`_version`, `_summary`, ...: those with no default but `python`).
fn check_general(
    merged: &IndexMap<String, RawSection>,
    config_file: &Path,
    profile: &Profile,
    problems: &mut Vec<Problem>,
) {
    let config_file = Some(config_file);
    let Some(general) = merged.get("general") else {
        problems.push(
            Problem::error(config_file, "has no `[general]` section").hint(
                "add `[general]` with at least `_version = 0.0.1`, `_summary`, `_license`, \
                 `_url`, `_maintainer` and `_vendor`",
            ),
        );
        return;
    };
    let required = profile
        .known_keys(SectionKind::General)
        .into_iter()
        .filter(|spec| {
            matches!(
                spec.kind,
                schema::Kind::Version | schema::Kind::RequiredText
            )
        })
        .filter(|spec| spec.default.is_none());
    for spec in required {
        if general.keys.keys().any(|k| k.name == spec.name) {
            continue;
        }
        let hint = if spec.name == "_version" {
            "add `_version = 0.0.1` (letters a-z, digits, `-`, `_`, `.`)".to_owned()
        } else {
            format!(
                "add `{} = ...` with a non-empty value: MetWork requires it of every plugin",
                spec.name
            )
        };
        problems.push(
            Problem::error(config_file, format!("`{}` is missing", spec.name))
                .at(general.line)
                .in_section("general")
                .hint(hint),
        );
    }
}

/// The problem of a section the schema does not know, with the one it may have meant.
fn unknown_section(
    name: &str,
    section: &RawSection,
    files: &[PathBuf],
    profile: &Profile,
) -> Problem {
    let file = Some(files[section.file].as_path());
    let kind = schema::section_kind(name);
    if kind != SectionKind::Unknown {
        return Problem::error(
            file,
            format!("section `[{name}]` is not one of this plugin's module"),
        )
        .at(section.line)
        .in_section(name)
        .hint(format!(
            "known sections here are {}; the module comes from the label \
             (`.layerapi2_label`)",
            profile.section_list()
        ));
    }
    let mut problem = Problem::error(file, format!("unknown section `[{name}]`"))
        .at(section.line)
        .in_section(name);
    problem.hint = Some(match schema::suggest_section(name) {
        Some(s) => format!("did you mean `[{s}]`?"),
        None => format!(
            "known sections are {}; a section starting with `_` is ignored",
            profile.section_list()
        ),
    });
    problem
}

/// Checks one key of section `name` (of `kind`): that the schema knows it, and that its value,
/// when it holds no template, has the key's kind (a value with no template in it can be
/// checked now, whichever variant is chosen).
fn check_key(
    name: &str,
    (profile, kind): (&Profile, SectionKind),
    key: &Key,
    raw: &Raw,
    files: &[PathBuf],
    problems: &mut Vec<Problem>,
) {
    let file = Some(files[raw.file].as_path());
    if !profile.key_allowed(kind, &key.name) {
        problems.push(unknown_key(name, profile.known_keys(kind), key, raw, file));
        return;
    }
    if let Some(spec) = profile.key_spec(kind, &key.name) {
        if !has_template(&raw.value) {
            if let Err(e) = schema::coerce(spec.kind, &raw.value) {
                problems.push(
                    coerce_problem(file, &format!("`{key}`"), &key.name, &e)
                        .at(raw.line)
                        .in_section(name)
                        .for_key(&key.name),
                );
            }
        }
    }
}

/// The problem of a value (`what`: "`key`", "`key` once rendered") that does not fit its
/// key: a warning when MetWork reads another value instead (a junk integer reads as 0), else
/// an error.
fn coerce_problem(file: Option<&Path>, what: &str, key: &str, e: &schema::CoerceError) -> Problem {
    match e.fallback() {
        Some(fallback) => Problem::warning(file, format!("{what}: {e}")).hint(format!(
            "write an integer; `{key}` is {fallback} until then"
        )),
        None => Problem::error(file, format!("{what}: {e}")),
    }
}

/// The problem of a key that section `name` (of `kind`) does not have, with the one it may
/// have meant, else the keys it has.
fn unknown_key(
    name: &str,
    known: Vec<&'static schema::KeySpec>,
    key: &Key,
    raw: &Raw,
    file: Option<&Path>,
) -> Problem {
    let mut problem = Problem::error(
        file,
        format!("unknown key `{}` in section `[{name}]`", key.name),
    )
    .at(raw.line)
    .in_section(name)
    .for_key(&key.name);
    problem.hint = Some(
        match schema::did_you_mean(&key.name, known.iter().map(|k| k.name)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "known keys are {}",
                known
                    .iter()
                    .map(|k| format!("`{}`", k.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    );
    problem
}

fn has_template(value: &str) -> bool {
    value.contains("{{") || value.contains("{%") || value.contains("{#")
}

/// Picks, among the variants of a key, the one for `config_name`: `key[VARIANT]` matches when
/// the name is `VARIANT` or starts with `VARIANT_` (case-insensitively); the longest match
/// wins, then the plain key. Returns the index of the chosen candidate.
pub(crate) fn select_variant<'a>(
    config_name: &str,
    variants: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<usize> {
    let name = config_name.to_ascii_uppercase();
    let mut best: Option<(usize, usize)> = None; // (index, variant length + 1)
    for (index, variant) in variants.into_iter().enumerate() {
        let rank = match variant {
            None => 0,
            Some(v) => {
                let v = v.to_ascii_uppercase();
                if name == v || name.starts_with(&format!("{v}_")) {
                    v.len() + 1
                } else {
                    continue;
                }
            }
        };
        if best.is_none_or(|(_, r)| rank > r) {
            best = Some((index, rank));
        }
    }
    best.map(|(index, _)| index)
}

/// A key after variant selection, not rendered yet.
struct Chosen {
    raw: String,
    variant: Option<String>,
    /// The index of the layer it comes from and its line; `None` for a default.
    place: Option<(usize, usize)>,
}

/// Resolves the variants of the merged sections and fills the defaults of known keys.
fn resolve(
    merged: &IndexMap<String, RawSection>,
    config_name: &str,
    profile: &Profile,
) -> Vec<(String, Vec<(String, Chosen)>)> {
    let mut out = Vec::new();
    for (name, section) in merged {
        let mut by_name: IndexMap<&str, Vec<(&Key, &Raw)>> = IndexMap::new();
        for (key, raw) in &section.keys {
            by_name
                .entry(key.name.as_str())
                .or_default()
                .push((key, raw));
        }
        let mut keys = Vec::new();
        for (key_name, candidates) in by_name {
            let Some(index) = select_variant(
                config_name,
                candidates.iter().map(|(k, _)| k.variant.as_deref()),
            ) else {
                continue;
            };
            let (key, raw) = candidates[index];
            keys.push((
                key_name.to_owned(),
                Chosen {
                    raw: raw.value.clone(),
                    variant: key.variant.clone(),
                    place: Some((raw.file, raw.line)),
                },
            ));
        }
        for spec in profile.known_keys(schema::section_kind(name)) {
            if let Some(default) = spec.default {
                if !keys.iter().any(|(k, _)| k == spec.name) {
                    keys.push((
                        spec.name.to_owned(),
                        Chosen {
                            raw: default.to_owned(),
                            variant: None,
                            place: None,
                        },
                    ));
                }
            }
        }
        out.push((name.clone(), keys));
    }
    out
}

/// The name of the variable generated for `[section] key`.
pub(crate) fn variable_name(module: &str, section: &str, key: &str) -> String {
    let mut name = format!("{module}_CURRENT_PLUGIN_{section}_{key}").to_ascii_uppercase();
    name = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    name
}

/// Renders the chosen values in file order: a value sees the environment, the plugin's
/// built-in variables and the variables of the keys above it.
fn render(
    dir: &Path,
    label: Label,
    files: Vec<PathBuf>,
    sections: Vec<(String, Vec<(String, Chosen)>)>,
    settings: &Settings,
    problems: &mut Vec<Problem>,
) -> Option<PluginConfig> {
    // Variables hold the absolute dir (not resolving symlinks: a devlink stays a devlink).
    let dir_text = std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string();
    let mut renderer = Renderer::new(&dir_text, &label, &files, settings, problems);
    let mut out: IndexMap<String, IndexMap<String, Setting>> = IndexMap::new();
    for (section, keys) in sections {
        let rendered = renderer.section(&section, keys).ok()?;
        out.insert(section, rendered);
    }
    let Renderer {
        mut variables,
        section_vars,
        ..
    } = renderer;
    variables.extend(section_vars);
    add_path_variables(&mut variables, &out, &dir_text, &label, settings);

    let warnings = problems
        .iter()
        .filter(|p| p.severity != Severity::Error)
        .cloned()
        .collect();
    Some(PluginConfig {
        dir: dir.to_path_buf(),
        label,
        layers: files,
        config_name: settings.config_name.clone(),
        sections: out,
        variables,
        warnings,
    })
}

/// Adds `TMPDIR` and `PYTHONPATH` (the plugin dir unless `_add_plugin_dir_to_python_path` is
/// not 1, its `lib/`, then the caller's `PYTHONPATH`) to the generated variables.
fn add_path_variables(
    variables: &mut IndexMap<String, String>,
    sections: &IndexMap<String, IndexMap<String, Setting>>,
    dir_text: &str,
    label: &Label,
    settings: &Settings,
) {
    let tmpdir = match &settings.home {
        Some(home) => home.join("tmp").join(&label.name),
        None => std::env::temp_dir().join(format!("mfplug-{}", label.name)),
    };
    variables.insert("TMPDIR".into(), tmpdir.display().to_string());
    let add_dir = sections
        .get("general")
        .and_then(|g| g.get("_add_plugin_dir_to_python_path"))
        .is_none_or(|s| s.value == "1");
    let mut python_path: Vec<String> = Vec::new();
    if add_dir {
        python_path.push(dir_text.to_owned());
    }
    // `lib/` holds the plugin's own modules and shared libraries (guide, section 3.2).
    python_path.push(format!("{dir_text}/lib"));
    if let Some(existing) = settings.env.get("PYTHONPATH").filter(|p| !p.is_empty()) {
        python_path.push(existing.clone());
    }
    if !python_path.is_empty() {
        variables.insert("PYTHONPATH".into(), python_path.join(":"));
    }
}

/// A limit of the whole configuration was reached (its problem reported): rendering stops.
struct Stop;

/// Where a value was set, to locate its problems.
struct At<'a> {
    /// The layer it comes from; `None` for a default.
    path: Option<&'a Path>,
    line: usize,
    section: &'a str,
    key: &'a str,
}

impl At<'_> {
    /// The problem with its line, section and key.
    fn locate(&self, problem: Problem) -> Problem {
        problem
            .at(self.line)
            .in_section(self.section)
            .for_key(self.key)
    }
}

/// The state of [`render`] from one value to the next: the context a template sees, the
/// variables generated so far, and what is left of the limits.
struct Renderer<'a> {
    settings: &'a Settings,
    files: &'a [PathBuf],
    label: &'a Label,
    /// The plugin dir, absolute.
    dir_text: &'a str,
    /// `{MODULE}_CURRENT_PLUGIN_`.
    prefix: String,
    env: minijinja::Environment<'static>,
    context: BTreeMap<String, String>,
    /// The plugin's built-in variables.
    variables: IndexMap<String, String>,
    /// The variables of the keys, after the built-in ones.
    section_vars: IndexMap<String, String>,
    /// The template steps the configuration may still take.
    steps_left: u64,
    rendered_bytes: usize,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Renderer<'a> {
    /// A renderer whose context holds the environment, `{MODULE}_HOME` and the plugin's
    /// `NAME`, `DIR` and `LABEL` variables.
    fn new(
        dir_text: &'a str,
        label: &'a Label,
        files: &'a [PathBuf],
        settings: &'a Settings,
        problems: &'a mut Vec<Problem>,
    ) -> Renderer<'a> {
        let module = &settings.module;
        let mut context: BTreeMap<String, String> = settings.env.clone();
        let mut variables: IndexMap<String, String> = IndexMap::new();
        let prefix = format!("{module}_CURRENT_PLUGIN_");
        variables.insert(format!("{prefix}NAME"), label.name.to_string());
        variables.insert(format!("{prefix}DIR"), dir_text.to_owned());
        variables.insert(format!("{prefix}LABEL"), label.to_string());
        if let Some(home) = &settings.home {
            context.insert(format!("{module}_HOME"), home.display().to_string());
        }
        // MetWork's "the current module's version" (`_version={{MFMODULE_VERSION}}` in its
        // templates): outside a module's environment, mfplug's own.
        context
            .entry("MFMODULE_VERSION".to_owned())
            .or_insert_with(|| env!("CARGO_PKG_VERSION").to_owned());
        context.extend(variables.clone());
        Renderer {
            settings,
            files,
            label,
            dir_text,
            prefix,
            env: minijinja::Environment::new(),
            context,
            variables,
            section_vars: IndexMap::new(),
            steps_left: MAX_STEPS,
            rendered_bytes: 0,
            problems,
        }
    }

    /// Renders the keys of one section, leaving out those with a problem.
    fn section(
        &mut self,
        section: &str,
        keys: Vec<(String, Chosen)>,
    ) -> Result<IndexMap<String, Setting>, Stop> {
        let kind = schema::section_kind(section);
        let mut rendered = IndexMap::new();
        for (key, chosen) in keys {
            let (path, line) = match chosen.place {
                Some((file, line)) => (Some(self.files[file].clone()), line),
                None => (None, 0),
            };
            let at = At {
                path: path.as_deref(),
                line,
                section,
                key: &key,
            };
            let Some(value) = self.value(kind, &at, &chosen.raw)? else {
                continue;
            };
            let origin = match path {
                Some(path) => Origin::File { path, line },
                None => Origin::Default,
            };
            let setting = Setting {
                value,
                raw: chosen.raw,
                variant: chosen.variant,
                origin,
            };
            rendered.insert(key, setting);
        }
        Ok(rendered)
    }

    /// The value of one key: rendered when it holds a template, counted against the size
    /// limit, coerced to its kind, its placeholders filled, then made a variable. `Ok(None)`
    /// when it has a problem.
    fn value(&mut self, kind: SectionKind, at: &At<'_>, raw: &str) -> Result<Option<String>, Stop> {
        let mut value = if has_template(raw) {
            match self.template(at, raw)? {
                Some(value) => value,
                None => return Ok(None),
            }
        } else {
            raw.to_owned()
        };
        self.count_bytes(at, value.len())?;
        // A free key keeps `null` as it is, as MetWork keeps it.
        if let Some(spec) = schema::profile(&self.settings.module).key_spec(kind, at.key) {
            match schema::coerce(spec.kind, &value) {
                Ok(v) => value = v,
                Err(e) => {
                    // A value without a template was checked with the schema already.
                    if has_template(raw) {
                        let what = format!("`{}` once rendered", at.key);
                        self.problems
                            .push(at.locate(coerce_problem(at.path, &what, at.key, &e)));
                    }
                    match e.fallback() {
                        Some(fallback) => value = fallback.to_owned(),
                        None => return Ok(None),
                    }
                }
            }
        }
        if at.key == "_cmd_and_args" {
            value = fill_placeholders(&value, &self.label.name, self.dir_text, at.section);
        }
        self.record(kind, at, &value);
        Ok(Some(value))
    }

    /// Renders a value's template within the step limits, reporting the names it uses that
    /// are not defined; `Ok(None)` when it cannot be rendered.
    fn template(&mut self, at: &At<'_>, raw: &str) -> Result<Option<String>, Stop> {
        let key = at.key;
        self.env
            .set_fuel(Some(self.steps_left.min(MAX_STEPS_PER_VALUE)));
        let problem = match render_value(&self.env, raw, &self.context) {
            Ok((value, undefined, steps)) => {
                self.steps_left = self.steps_left.saturating_sub(steps);
                for name in undefined {
                    self.problems.push(
                        at.locate(
                            Problem::info(
                                at.path,
                                format!(
                                    "`{key}` uses `{name}`, which is not defined: it renders empty"
                                ),
                            )
                            .hint(format!(
                                "define `{name}` in the environment, or fix its name"
                            )),
                        ),
                    );
                }
                return Ok(Some(value));
            }
            Err(RenderError::TooLarge) => Problem::error(
                at.path,
                format!("`{key}` renders to more than {} MiB", MAX_VALUE_BYTES >> 20),
            )
            .hint(format!(
                "a value may take {} MiB once rendered; does it use a variable \
                 that uses itself, or a big value many times?",
                MAX_VALUE_BYTES >> 20
            )),
            Err(RenderError::Template(e)) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
                return self.out_of_steps(at);
            }
            Err(RenderError::Template(e)) => {
                Problem::error(at.path, format!("`{key}` cannot be rendered: {e}"))
            }
        };
        self.problems.push(at.locate(problem));
        Ok(None)
    }

    /// Reports a value that took too many template steps: `Err` when the steps of the whole
    /// configuration ran out, else `Ok(None)` (that value alone is left out).
    fn out_of_steps(&mut self, at: &At<'_>) -> Result<Option<String>, Stop> {
        let whole = self.steps_left < MAX_STEPS_PER_VALUE;
        let (what, limit) = if whole {
            ("the configuration's values", MAX_STEPS)
        } else {
            ("a value", MAX_STEPS_PER_VALUE)
        };
        self.problems.push(
            at.locate(
                Problem::error(
                    at.path,
                    format!("`{}` takes too many template steps to render", at.key),
                )
                .hint(format!(
                    "{what} may take {limit} steps; write plain values or simple \
                 `{{{{VARIABLE}}}}`s, without long loops"
                )),
            ),
        );
        if whole {
            Err(Stop)
        } else {
            Ok(None)
        }
    }

    /// Counts `len` more rendered bytes: `Err`, with its problem, past
    /// [`MAX_RENDERED_BYTES`] in all.
    fn count_bytes(&mut self, at: &At<'_>, len: usize) -> Result<(), Stop> {
        self.rendered_bytes = self.rendered_bytes.saturating_add(len);
        if self.rendered_bytes <= MAX_RENDERED_BYTES {
            return Ok(());
        }
        self.problems.push(
            at.locate(
                Problem::error(
                    at.path,
                    format!(
                        "the configuration renders to more than {} MiB, reached at `{}`",
                        MAX_RENDERED_BYTES >> 20,
                        at.key
                    ),
                )
                .hint(format!(
                    "the values of a plugin may take {} MiB in all once rendered; keep big \
                 data in files the plugin reads",
                    MAX_RENDERED_BYTES >> 20
                )),
            ),
        );
        Err(Stop)
    }

    /// Makes a rendered value seen by the values below it: `_version` and `_release` of
    /// `[general]` as the plugin's `VERSION` and `RELEASE`, any other key not starting with
    /// `_` as its variable.
    fn record(&mut self, kind: SectionKind, at: &At<'_>, value: &str) {
        if at.section == "general" {
            let name = match at.key {
                "_version" => Some("VERSION"),
                "_release" => Some("RELEASE"),
                _ => None,
            };
            if let Some(name) = name {
                let name = format!("{}{name}", self.prefix);
                self.variables.insert(name.clone(), value.to_owned());
                self.context.insert(name, value.to_owned());
            }
        }
        // Switch rules are read by the module itself; their keys are patterns, not names.
        if !at.key.starts_with('_') && kind != SectionKind::SwitchRules {
            let name = variable_name(&self.settings.module, at.section, at.key);
            self.context.insert(name.clone(), value.to_owned());
            self.section_vars.insert(name, value.to_owned());
        }
    }
}

/// Why a value could not be rendered.
enum RenderError {
    Template(minijinja::Error),
    /// It took more than [`MAX_VALUE_BYTES`].
    TooLarge,
}

/// Renders one value into at most [`MAX_VALUE_BYTES`]; gives the names it uses that the
/// context does not define and the template steps it took.
///
/// Only the variables the template names are handed to it: the whole context (every key
/// above) would be copied for each value, which makes rendering quadratic.
fn render_value(
    env: &minijinja::Environment<'_>,
    text: &str,
    context: &BTreeMap<String, String>,
) -> Result<(String, Vec<String>, u64), RenderError> {
    let template = env.template_from_str(text).map_err(RenderError::Template)?;
    let mut used: BTreeMap<&str, &str> = BTreeMap::new();
    let mut undefined: Vec<String> = Vec::new();
    for name in template.undeclared_variables(false) {
        match context.get_key_value(name.as_str()) {
            Some((name, value)) => {
                used.insert(name, value);
            }
            None => undefined.push(name),
        }
    }
    undefined.sort();
    let mut out = Capped {
        bytes: Vec::new(),
        over: false,
    };
    let captured = template.render_captured_to(used, &mut out);
    if out.over {
        return Err(RenderError::TooLarge);
    }
    let captured = captured.map_err(RenderError::Template)?;
    let steps = captured.state().fuel_levels().map_or(0, |(used, _)| used);
    let value = match String::from_utf8(out.bytes) {
        Ok(value) => value,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((value, undefined, steps))
}

/// A template's output, refused past [`MAX_VALUE_BYTES`].
struct Capped {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > MAX_VALUE_BYTES {
            self.over = true;
            return Err(std::io::Error::other("the value is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Replaces `_cmd_and_args` placeholders: `{plugin_name}`, `{plugin_dir}` and the process
/// name (`{extra_name}`, `{app_name}` or `{step_name}`, after the section's prefix).
pub(crate) fn fill_placeholders(
    value: &str,
    plugin_name: &str,
    plugin_dir: &str,
    section: &str,
) -> String {
    let mut out = value
        .replace("{plugin_name}", plugin_name)
        .replace("{plugin_dir}", plugin_dir);
    for (prefix, placeholder) in schema::PROCESS_PREFIXES {
        if let Some(process) = section.strip_prefix(prefix) {
            out = out.replace(&format!("{{{placeholder}}}"), process);
        }
    }
    out
}

#[cfg(test)]
mod tests;
