//! `mfplug install`: a pipeline of named stages, each with its compensation.
//!
//! verify+extract (into `plugins/.staging/`), rename (`--new-name`), build `local/`, config
//! (the admin's override file), postinstall, record, commit. Until `commit` nothing outside
//! `.staging/` has changed but the override file, which a failure puts back. `commit` is one
//! rename (or, for an upgrade, one atomic exchange with the installed dir), so a crash leaves
//! the old plugin or the new one; what is left in `.staging/` is purged by the next writer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::{override_file, plugin_dir, stage_pause, write_own_file, HomeLock, InstallRecord};
use crate::archive::unpack::{self, Limits};
use crate::archive::{self, FileFormat, PluginMeta};
use crate::config::{self, ini::Document, Settings};
use crate::fsx::sha256_hex;
use crate::plugin::{read_own_file, Label, PluginName, CONFIG_FILE, LABEL_FILE};
use crate::ui;

/// What `install` is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct InstallOptions {
    pub(crate) file: PathBuf,
    pub(crate) new_name: Option<PluginName>,
    pub(crate) force: bool,
    pub(crate) provisioned: bool,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Installed,
    Upgraded(String),
    Downgraded(String),
    Reinstalled,
}

#[derive(Debug, Clone)]
pub(crate) struct Installed {
    pub(crate) name: PluginName,
    pub(crate) meta: PluginMeta,
    pub(crate) action: Action,
    /// A message about the override file, when the admin's was kept.
    pub(crate) override_note: Option<String>,
}

/// Compares two versions: runs of digits as numbers, other runs as text, separators
/// (`.`, `-`, `_`) only separate. `1.10` > `1.9`, `1.0` = `1.0.0`, `1.0a` < `1.0b`,
/// a number beats a word (`1.0.1` > `1.0.rc1`). See `docs/home.md`.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(v: &str) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut digit = false;
        for c in v.chars() {
            if matches!(c, '.' | '-' | '_') {
                if !current.is_empty() {
                    out.push(if digit {
                        Ok(current.parse().unwrap_or(u64::MAX))
                    } else {
                        Err(current.clone())
                    });
                    current.clear();
                }
                continue;
            }
            if !current.is_empty() && c.is_ascii_digit() != digit {
                out.push(if digit {
                    Ok(current.parse().unwrap_or(u64::MAX))
                } else {
                    Err(current.clone())
                });
                current.clear();
            }
            digit = c.is_ascii_digit();
            current.push(c);
        }
        if !current.is_empty() {
            out.push(if digit {
                Ok(current.parse().unwrap_or(u64::MAX))
            } else {
                Err(current)
            });
        }
        while matches!(out.last(), Some(Ok(0))) {
            out.pop();
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let ord = match (pa.get(i), pb.get(i)) {
            (Some(Ok(x)), Some(Ok(y))) => x.cmp(y),
            (Some(Err(x)), Some(Err(y))) => x.cmp(y),
            (Some(Ok(_)), Some(Err(_))) => Ordering::Greater,
            (Some(Err(_)), Some(Ok(_))) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// `VERSION-RELEASE` compared as versions, version first.
pub(crate) fn compare_full(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    compare_versions(a.0, b.0).then_with(|| compare_versions(a.1, b.1))
}

/// The commented copy of `config.ini` that install writes as the admin's override file: every
/// section but `[general]` and private ones, every key not starting with `_`, commented out.
pub(crate) fn override_template(name: &PluginName, config_text: &str) -> String {
    let (doc, _) = Document::parse(config_text);
    let mut out = format!(
        "# Overrides of the `{name}` plugin's configuration, for the administrator.\n\
         # Uncomment a key and change its value to override the plugin's default;\n\
         # `mfplug config {name}` shows the result. Keys starting with `_` cannot be\n\
         # overridden. This file is kept when the plugin is upgraded or uninstalled\n\
         # (unless `mfplug uninstall --clean`).\n"
    );
    for section in doc.sections() {
        if section.name == "general" || section.name.starts_with('_') {
            continue;
        }
        let entries: Vec<_> = section
            .entries()
            .filter(|e| !e.key.name.starts_with('_'))
            .collect();
        if entries.is_empty() {
            continue;
        }
        out.push_str(&format!("\n[{}]\n", section.name));
        for entry in entries {
            let mut lines = entry.value.lines();
            out.push_str(&format!(
                "# {} = {}\n",
                entry.key,
                lines.next().unwrap_or_default()
            ));
            for line in lines {
                out.push_str(&format!("#     {line}\n"));
            }
        }
    }
    out
}

/// Runs `postinstall` (or `preuninstall`) of the plugin in `dir`, in its env, if it is there;
/// a hook that is a symlink is refused (it must be the plugin's own file).
pub(crate) fn run_hook(dir: &Path, hook: &str, settings: &Settings) -> Result<()> {
    let path = dir.join(hook);
    match fs_err::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display())))
        }
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(ui::error_with_hint(
                format!(
                    "`{}` is a symlink: mfplug runs a plugin's `{hook}` only from the plugin's own file",
                    path.display()
                ),
                format!("ship `{hook}` as a file, not a link"),
            ))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(ui::error_with_hint(
                format!("`{}` is not a file", path.display()),
                format!("`{hook}` must be an executable file"),
            ))
        }
        Ok(_) => {}
    }
    let config = config::load(dir, settings).map_err(|problems| {
        anyhow::anyhow!(
            "cannot read the configuration: {}",
            problems.first().map(|p| p.to_string()).unwrap_or_default()
        )
    })?;
    let env = crate::env::plugin_env(&config, &settings.env)?;
    if let Some(tmp) = env.get("TMPDIR") {
        let _ = fs_err::create_dir_all(tmp);
    }
    let output = Command::new(&path)
        .current_dir(dir)
        .env_clear()
        .envs(&env)
        .output()
        .with_context(|| format!("cannot run `{hook}` (is it executable?)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!("`{hook}` failed ({}):\n{}", output.status, tail.join("\n"));
    }
    for line in text.lines() {
        ui::verbose(format!("{hook}: {line}"));
    }
    Ok(())
}

/// Puts a file of the admin's side back exactly as it was (its bytes, or its absence).
#[derive(Debug)]
struct Saved {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

impl Saved {
    fn take(path: PathBuf) -> Result<Saved> {
        let before = match fs_err::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))
                )
            }
        };
        Ok(Saved { path, before })
    }

    fn restore(&self) {
        let result = match &self.before {
            Some(bytes) => {
                if fs_err::read(&self.path).is_ok_and(|now| now == *bytes) {
                    return;
                }
                crate::fsx::write_atomic(&self.path, bytes)
            }
            None => match fs_err::remove_file(&self.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        if let Err(e) = result {
            ui::warn(format!(
                "could not put `{}` back as it was: {e}",
                self.path.display()
            ));
        }
    }
}

/// The override file and its `.ini.new` copy as they were before install touched them: every
/// failing stage after `config` puts both back.
#[derive(Debug, Default)]
struct OverrideUndo {
    saved: Vec<Saved>,
}

impl OverrideUndo {
    fn undo(&self) {
        for saved in &self.saved {
            saved.restore();
        }
    }
}

/// Removes a dir when dropped: the temporary conversion of a legacy file.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.0);
    }
}

/// Installs a `.plugin` file into the home.
pub(crate) fn install(
    home: &Path,
    settings: &Settings,
    opts: &InstallOptions,
    wait: Duration,
) -> Result<Installed> {
    let _lock = HomeLock::acquire(home, Some(wait))?;
    install_locked(home, settings, opts)
}

/// [`install`] with the home's lock already held (provisioning installs several files).
pub(crate) fn install_locked(
    home: &Path,
    settings: &Settings,
    opts: &InstallOptions,
) -> Result<Installed> {
    let file = &opts.file;
    let format = archive::sniff(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?
        .ok_or_else(|| {
            ui::error_with_hint(
                format!("`{}` is not a `.plugin` file", file.display()),
                "a `.plugin` file is made by `mfplug release` (zstd) or by MetWork (tar.gz)",
            )
        })?;
    // A legacy file is converted on the way in (in `.staging/`, removed when done), then
    // installed like any other.
    let converted;
    let _cleanup;
    let file: &Path = match format {
        FileFormat::Format1 => file,
        FileFormat::Legacy => {
            let dir = super::staging_work(home, "convert.legacy")?;
            fs_err::create_dir_all(&dir)?;
            _cleanup = RemoveOnDrop(dir.clone());
            converted = crate::release::convert_to(file, &dir)
                .with_context(|| format!("cannot convert the legacy file `{}`", file.display()))?;
            &converted
        }
    };

    // Stage `verify`: every member checked while it is extracted into the staging dir.
    // A full disk is said as such, not as a bad file.
    let fails = |e: anyhow::Error| {
        if super::disk_full(&e) {
            super::explain_disk_full(e, &home.join("plugins"))
        } else {
            e.context(format!("`{}` fails verification", file.display()))
        }
    };
    let head =
        unpack::read_head(file, &Limits::default()).map_err(|e| fails(anyhow::Error::new(e)))?;
    let original = PluginName::parse(&head.meta.name).map_err(|e| {
        fails(ui::error_with_hint(
            format!("`PLUGIN.json` names the plugin `{}`: {e}", head.meta.name),
            "a `.plugin` file holds a valid plugin name; `mfplug verify FILE` checks one",
        ))
    })?;
    let name = opts.new_name.clone().unwrap_or_else(|| original.clone());
    let target = plugin_dir(home, &name);
    if super::is_devlink(home, &name) {
        return Err(ui::error_with_hint(
            format!("plugin `{name}` is devlinked in `{}`", home.display()),
            format!(
                "a devlinked plugin is never replaced; `mfplug uninstall {name}` removes the link"
            ),
        ));
    }
    let previous = if target.exists() {
        if !opts.force {
            return Err(ui::error_with_hint(
                format!("plugin `{name}` is already installed"),
                "pass `--force` to replace it, or `--new-name` to install this one beside it",
            ));
        }
        InstallRecord::read(&target).ok()
    } else {
        None
    };
    let staged = super::staging_path(home, &name, "new")?;
    // What a failing stage puts back: the override files, as they were.
    let mut undo = OverrideUndo::default();
    let result = (|| -> Result<(PluginMeta, Option<String>)> {
        let verified = unpack::read(file, &Limits::default(), Some(&staged))
            .map_err(|e| fails(anyhow::Error::new(e)))?;
        // mfplug's own dir is mfplug's: a file that ships one (a dir or a link) is refused
        // before anything runs.
        if fs_err::symlink_metadata(staged.join(super::RECORD_DIR)).is_ok() {
            return Err(fails(ui::error_with_hint(
                format!(
                    "the file ships `{}`, where mfplug keeps the install record",
                    super::RECORD_DIR
                ),
                "a plugin may not ship `.mfplug/`: remove it from the plugin dir and release again",
            )));
        }
        let label = Label::read(&staged).map_err(|e| fails(anyhow::anyhow!("{e}")))?;
        if label.name != original {
            return Err(fails(ui::error_with_hint(
                format!(
                    "`PLUGIN.json` names the plugin `{original}` but `{LABEL_FILE}` names it `{}`",
                    label.name
                ),
                "release the plugin again with `mfplug release`: both then hold the label's name",
            )));
        }
        // The plugin's own `config.ini` is read (by `config::load` too) only if it is a file
        // of the plugin, not a link, and bounded: refused here before anything reads it.
        read_own_file(&staged.join(CONFIG_FILE)).map_err(|e| fails(anyhow::Error::new(e)))?;
        stage_pause("verify");

        // Stage `rename`: the plugin's own files are read and written in the staged dir
        // only, never through a link it ships.
        if name != original {
            let new = Label {
                name: name.clone(),
                module: label.module.clone(),
            };
            let config_path = staged.join(CONFIG_FILE);
            let text = read_own_file(&config_path)?.unwrap_or_default();
            let (mut doc, _) = Document::parse(&text);
            let (old_label, new_label) = (label.to_string(), new.to_string());
            let changes: Vec<(String, String, String)> = doc
                .sections()
                .iter()
                .flat_map(|s| {
                    s.entries()
                        .filter(|e| e.value.contains(&old_label))
                        .map(|e| {
                            (
                                s.name.clone(),
                                e.key.to_string(),
                                e.value.replace(&old_label, &new_label),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            for (section, key, value) in changes {
                doc.set(&section, &key, &value);
            }
            write_own_file(&staged, LABEL_FILE, format!("{new}\n").as_bytes(), true)?;
            if config_path.exists() || !text.is_empty() {
                write_own_file(&staged, CONFIG_FILE, doc.to_text().as_bytes(), true)?;
            }
        }
        stage_pause("rename");

        // Stage `build`: `local/` from the vendored wheels, offline, for its final place.
        // A Python plugin gets its env even when its lock names no package: `python` in the
        // plugin env is then the plugin's interpreter, as in development.
        if staged
            .join("python3_virtualenv_sources/requirements3.txt")
            .is_file()
        {
            let built =
                crate::build::build_local(&staged, &target, settings, true).with_context(|| {
                    format!("cannot build `local/` of `{name}` from its vendored files")
                })?;
            ui::verbose(format!("built `local/` with {} packages", built.packages));
        }
        stage_pause("build");

        // Stage `config`: the plugin's configuration must load, under its new name, with the
        // home's override layers, and its crontab must render; then the admin's override
        // file.
        let config = config::load(&staged, settings).map_err(|problems| {
            for p in &problems {
                ui::print_problem(p);
            }
            anyhow::anyhow!("the plugin's configuration has errors")
        })?;
        // The crontab is rendered by `mfplug crontab` with the installed plugin's variables;
        // a template error is caught now, before the admin's side is touched.
        render_crontab(&staged, &config.variables)?;
        let config_text = read_own_file(&staged.join(CONFIG_FILE))?.unwrap_or_default();
        let template = override_template(&name, &config_text);
        let path = override_file(home, &name);
        let new_path = path.with_extension("ini.new");
        let saved = Saved::take(path.clone())?;
        let before = saved.before.clone();
        undo.saved.push(saved);
        undo.saved.push(Saved::take(new_path.clone())?);
        let mut note = None;
        let template_sha = sha256_hex(template.as_bytes());
        let override_sha = match &before {
            None => {
                crate::fsx::write_atomic(&path, template.as_bytes())
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
                Some(template_sha)
            }
            Some(bytes) => {
                let current = sha256_hex(bytes);
                let pristine = previous
                    .as_ref()
                    .and_then(|r| r.override_sha256.as_deref())
                    .is_some_and(|s| s == current)
                    || current == template_sha;
                if pristine {
                    if current != template_sha {
                        crate::fsx::write_atomic(&path, template.as_bytes())
                            .with_context(|| format!("cannot write `{}`", path.display()))?;
                    }
                    Some(template_sha)
                } else {
                    crate::fsx::write_atomic(&new_path, template.as_bytes())
                        .with_context(|| format!("cannot write `{}`", new_path.display()))?;
                    note = Some(format!(
                        "kept your edited `{}`; the plugin's new defaults are in `{}`",
                        path.display(),
                        new_path.display()
                    ));
                    previous.as_ref().and_then(|r| r.override_sha256.clone())
                }
            }
        };
        stage_pause("config");

        // Stage `postinstall`, in the plugin env.
        run_hook(&staged, "postinstall", settings)
            .map_err(|e| e.context("the plugin's `postinstall` failed"))?;
        stage_pause("postinstall");

        // Stage `record`: what was installed, for `list`, `info`, `verify` and provisioning,
        // written into a dir mfplug makes (refused if the plugin or its postinstall made
        // one), never through a link.
        let record_dir = super::create_own_dir(&staged, super::RECORD_DIR)?;
        let meta = verified.meta.clone();
        write_own_file(
            &record_dir,
            "RECORD",
            verified.record_text.as_bytes(),
            false,
        )?;
        write_own_file(
            &record_dir,
            "PLUGIN.json",
            serde_json::to_string_pretty(&meta)?.as_bytes(),
            false,
        )?;
        // What postinstall (or the build) added, so that `verify` does not report it.
        let recorded: std::collections::HashSet<&str> = verified
            .record
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        let mut install_files = Vec::new();
        for item in walkdir::WalkDir::new(&staged)
            .min_depth(1)
            .sort_by_file_name()
        {
            let item = item?;
            if item.file_type().is_dir() {
                continue;
            }
            let rel = item
                .path()
                .strip_prefix(&staged)
                .unwrap_or(item.path())
                .to_string_lossy()
                .into_owned();
            if !recorded.contains(rel.as_str())
                && !rel.starts_with(".mfplug/")
                && !rel.starts_with("local/")
            {
                install_files.push(rel);
            }
        }
        let record = InstallRecord {
            install_files,
            meta: meta.clone(),
            source: opts.file.display().to_string(),
            installed_at: super::now(),
            original_name: (name != original).then(|| original.clone()),
            override_sha256: override_sha,
            provisioned: opts.provisioned,
        };
        write_own_file(
            &record_dir,
            "INSTALL.json",
            serde_json::to_string_pretty(&record)?.as_bytes(),
            false,
        )?;
        stage_pause("record");
        Ok((meta, note))
    })();
    let (meta, note) = match result {
        Ok(done) => done,
        Err(e) => {
            undo.undo();
            let _ = fs_err::remove_dir_all(&staged);
            let e = super::explain_disk_full(e, &home.join("plugins"));
            return Err(e.context(format!("failed to install `{}`", opts.file.display())));
        }
    };

    // Stage `commit`: one rename, or one atomic exchange with the installed version.
    let commit = if previous.is_some() || target.exists() {
        crate::fsx::exchange(&staged, &target)
    } else {
        fs_err::rename(&staged, &target)
    };
    if let Err(e) = commit {
        undo.undo();
        let _ = fs_err::remove_dir_all(&staged);
        return Err(anyhow::Error::new(e).context(format!(
            "failed to install `{}`: cannot move it into `{}`",
            opts.file.display(),
            target.display()
        )));
    }
    let _ = crate::fsx::sync_dir(&home.join("plugins"));
    stage_pause("commit");
    // After an exchange the old version sits in the staging path.
    if staged.exists() {
        let _ = fs_err::remove_dir_all(&staged);
    }
    let action = match &previous {
        None => Action::Installed,
        Some(old) => {
            let from = format!("{}-{}", old.meta.version, old.meta.release);
            match compare_full(
                (&meta.version, &meta.release),
                (&old.meta.version, &old.meta.release),
            ) {
                std::cmp::Ordering::Greater => Action::Upgraded(from),
                std::cmp::Ordering::Less => Action::Downgraded(from),
                std::cmp::Ordering::Equal => Action::Reinstalled,
            }
        }
    };
    Ok(Installed {
        name,
        meta,
        action,
        override_note: note,
    })
}

/// Renders the plugin's `crontab` with its variables (and the environment); `None` when it
/// has none.
pub(crate) fn render_crontab(
    dir: &Path,
    variables: &indexmap::IndexMap<String, String>,
) -> Result<Option<String>> {
    let path = dir.join("crontab");
    let Some(text) = read_own_file(&path)? else {
        return Ok(None);
    };
    let mut context: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    context.extend(variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env = minijinja::Environment::new();
    let rendered = env
        .render_str(&text, &context)
        .with_context(|| format!("cannot render `{}`", path.display()))?;
    Ok(Some(rendered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn version_order() {
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("1.0", "1.0.0"), Equal);
        assert_eq!(compare_versions("1.0a", "1.0b"), Less);
        assert_eq!(compare_versions("1.0.1", "1.0.rc1"), Greater);
        assert_eq!(compare_versions("2", "10"), Less);
        assert_eq!(compare_versions("1.0-2", "1.0_2"), Equal);
        assert_eq!(compare_full(("1.0", "2"), ("1.0", "10")), Less);
    }

    #[test]
    fn override_template_comments_public_keys() {
        let text = "[general]\n_version = 1\n[custom]\n# doc\nfoo = 1\n_private = 2\nmulti = a\n    b\n[_hidden]\nx = 1\n[extra_daemon_d]\n_cmd_and_args = run\nnumprocesses = 2\n";
        let out = override_template(&PluginName::parse("p").unwrap(), text);
        assert!(out.contains("[custom]\n# foo = 1\n# multi = a\n#     b\n"));
        assert!(out.contains("[extra_daemon_d]\n# numprocesses = 2\n"));
        assert!(!out.contains("general") || out.contains("# Overrides"));
        assert!(
            !out.contains("_private") && !out.contains("_hidden") && !out.contains("_cmd_and_args")
        );
        let (doc, errors) = Document::parse(&out);
        assert!(errors.is_empty());
        assert!(doc.sections().iter().all(|s| s.entries().count() == 0));
    }
}
