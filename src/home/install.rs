//! `mfplug install`: a pipeline of named stages, each with its compensation.
//!
//! [`install_stages`] lists them in order: `verify` (every member checked while it is
//! extracted into `plugins/.staging/`), `rename` (`--new-name`), `build` (`local/`),
//! `config` (the admin's override file), `postinstall`, `record`, `commit`; [`run_stages`]
//! runs them and, when one fails, runs the undos of it and of those before it, last first.
//! Until `commit` nothing outside `.staging/` has changed but the override file, which
//! `config`'s undo puts back. `commit` is one rename (or, for an upgrade, one atomic exchange
//! with the installed dir), so a crash leaves the old plugin or the new one; what is left in
//! `.staging/` is purged by the next writer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::{
    override_file, plugin_dir, stage_pause, write_own_file, HomeError, HomeLock, InstallRecord,
};
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
            return Err(HomeError::HookIsALink {
                path,
                hook: hook.to_owned(),
            }
            .into())
        }
        Ok(meta) if !meta.is_file() => {
            return Err(HomeError::HookNotAFile {
                path,
                hook: hook.to_owned(),
            }
            .into())
        }
        Ok(_) => {}
    }
    let config = config::load(dir, settings).map_err(|problems| {
        anyhow::anyhow!(
            "cannot read the configuration: {}",
            problems.first().map(|p| p.to_string()).unwrap_or_default()
        )
    })?;
    let deps = super::layers::dependencies(dir, settings)?;
    let env = crate::env::plugin_env(&config, settings, &deps)?;
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

/// Removes a dir when dropped: the temporary conversion of a legacy file.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.0);
    }
}

/// One named step of a pipeline and its compensation: `run` does the step, `undo` puts back
/// what it did (also when `run` failed half-way, so an `undo` copes with partial work).
struct Stage<C> {
    /// Its name: the crash-safety point (`stage_pause`) reached once it has run.
    name: &'static str,
    run: fn(&mut C) -> Result<()>,
    undo: fn(&mut C),
}

impl<C> Stage<C> {
    /// The stage `name`, done by `run` and undone by `undo`.
    const fn new(name: &'static str, run: fn(&mut C) -> Result<()>, undo: fn(&mut C)) -> Stage<C> {
        Stage { name, run, undo }
    }
}

/// Runs `stages` in order, pausing after each at its crash-safety point. When one fails, its
/// own `undo` and those of the stages before it run, last first, the later stages never run,
/// and the error is handed back.
fn run_stages<C>(stages: &[Stage<C>], ctx: &mut C) -> Result<()> {
    for (done, stage) in stages.iter().enumerate() {
        if let Err(e) = (stage.run)(ctx) {
            for undone in stages.iter().take(done + 1).rev() {
                (undone.undo)(ctx);
            }
            return Err(e);
        }
        stage_pause(stage.name);
    }
    Ok(())
}

/// The install pipeline, in order. Until `commit` nothing outside the staged dir has changed
/// but the override files, which `config`'s undo puts back; `verify`'s undo removes the
/// staged dir, and with it whatever the stages between wrote there.
fn install_stages<'a>() -> [Stage<InstallCtx<'a>>; 7] {
    [
        Stage::new("verify", verify, remove_staged),
        Stage::new("rename", rename, in_staged_dir),
        Stage::new("build", build, in_staged_dir),
        Stage::new("config", configure, restore_overrides),
        Stage::new("postinstall", postinstall, in_staged_dir),
        Stage::new("record", record, in_staged_dir),
        Stage::new("commit", commit, nothing_moved),
    ]
}

/// What the install stages share: the inputs, and what each stage hands the next.
struct InstallCtx<'a> {
    home: &'a Path,
    settings: &'a Settings,
    opts: &'a InstallOptions,
    /// The format-1 file read: the one given, or the converted copy of a legacy one.
    file: PathBuf,
    /// Removes the converted copy of a legacy file once the install is over.
    _converted: Option<RemoveOnDrop>,
    /// The name in the file, and the name it is installed under (`--new-name`).
    original: PluginName,
    name: PluginName,
    /// `plugins/NAME`, and the dir in `plugins/.staging/` the new version is made in.
    target: PathBuf,
    staged: PathBuf,
    /// The install record of the version this one replaces.
    previous: Option<InstallRecord>,
    /// Set by `verify`: what the file holds, and its label.
    verified: Option<unpack::Verified>,
    label: Option<Label>,
    /// Set by `config`: the override files as they were, the sha256 of the override file
    /// to record, and a message when the admin's edited file was kept.
    saved: Vec<Saved>,
    override_sha: Option<String>,
    note: Option<String>,
}

/// Why a file fails verification: a full disk is said as such, not as a bad file.
fn fails(home: &Path, file: &Path, e: anyhow::Error) -> anyhow::Error {
    if super::disk_full(&e) {
        super::explain_disk_full(e, &home.join("plugins"))
    } else {
        e.context(format!("`{}` fails verification", file.display()))
    }
}

/// A commit that failed: nothing moved, the staged dir is removed.
#[derive(Debug, thiserror::Error)]
#[error("failed to install `{}`: cannot move it into `{}`", file.display(), target.display())]
struct CommitFailed {
    file: PathBuf,
    target: PathBuf,
    #[source]
    source: std::io::Error,
}

impl InstallCtx<'_> {
    /// [`fails`] for the file of this install.
    fn fails(&self, e: anyhow::Error) -> anyhow::Error {
        fails(self.home, &self.file, e)
    }

    /// What `verify` found; an error if it has not run.
    fn verified(&self) -> Result<&unpack::Verified> {
        self.verified
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the install stage `verify` has not run"))
    }

    /// The label `verify` read; an error if it has not run.
    fn label(&self) -> Result<&Label> {
        self.label
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the install stage `verify` has not run"))
    }
}

/// The format-1 file to install: `file` itself, or a legacy file converted on the way in (in
/// `.staging/`, removed when the guard drops), then installed like any other.
fn readable_file(home: &Path, file: &Path) -> Result<(PathBuf, Option<RemoveOnDrop>)> {
    let format = archive::sniff(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?
        .ok_or_else(|| crate::release::ReleaseError::NotAPluginFile(file.to_path_buf()))?;
    match format {
        FileFormat::Format1 => Ok((file.to_path_buf(), None)),
        FileFormat::Legacy => {
            let dir = super::staging_work(home, "convert.legacy")?;
            fs_err::create_dir_all(&dir)?;
            let cleanup = RemoveOnDrop(dir.clone());
            let converted = crate::release::convert_to(file, &dir)
                .with_context(|| format!("cannot convert the legacy file `{}`", file.display()))?;
            Ok((converted, Some(cleanup)))
        }
    }
}

/// Reads the head of the file and checks that its plugin may be installed: not over a
/// devlink, not over an installed one without `--force`. Nothing is written but the staged
/// dir's name.
fn prepare<'a>(
    home: &'a Path,
    settings: &'a Settings,
    opts: &'a InstallOptions,
) -> Result<InstallCtx<'a>> {
    let (file, converted) = readable_file(home, &opts.file)?;
    let head = unpack::read_head(&file, &Limits::default())
        .map_err(|e| fails(home, &file, anyhow::Error::new(e)))?;
    let original = PluginName::parse(&head.meta.name).map_err(|e| {
        fails(
            home,
            &file,
            HomeError::BadFileName {
                name: head.meta.name.clone(),
                why: e.to_string(),
            }
            .into(),
        )
    })?;
    let name = opts.new_name.clone().unwrap_or_else(|| original.clone());
    let target = plugin_dir(home, &name);
    let previous = replaced(home, &name, &target, opts.force)?;
    let staged = super::staging_path(home, &name, "new")?;
    Ok(InstallCtx {
        home,
        settings,
        opts,
        file,
        _converted: converted,
        original,
        name,
        target,
        staged,
        previous,
        verified: None,
        label: None,
        saved: Vec::new(),
        override_sha: None,
        note: None,
    })
}

/// The install record of the plugin `name` that this install replaces, if any: a devlinked
/// plugin is never replaced, an installed one only with `--force`.
fn replaced(
    home: &Path,
    name: &PluginName,
    target: &Path,
    force: bool,
) -> Result<Option<InstallRecord>> {
    if super::is_devlink(home, name) {
        return Err(HomeError::Devlinked {
            home: home.to_path_buf(),
            name: name.clone(),
        }
        .into());
    }
    if !target.exists() {
        return Ok(None);
    }
    if !force {
        return Err(HomeError::AlreadyInstalled { name: name.clone() }.into());
    }
    Ok(InstallRecord::read(target).ok())
}

/// [`install`] with the home's lock already held (provisioning installs several files).
pub(crate) fn install_locked(
    home: &Path,
    settings: &Settings,
    opts: &InstallOptions,
) -> Result<Installed> {
    let mut ctx = prepare(home, settings, opts)?;
    if let Err(e) = run_stages(&install_stages(), &mut ctx) {
        if e.is::<CommitFailed>() {
            return Err(e);
        }
        let e = super::explain_disk_full(e, &home.join("plugins"));
        return Err(e.context(format!("failed to install `{}`", opts.file.display())));
    }
    // After an exchange the old version sits in the staging path.
    if ctx.staged.exists() {
        let _ = fs_err::remove_dir_all(&ctx.staged);
    }
    let meta = ctx.verified()?.meta.clone();
    let action = action(ctx.previous.as_ref(), &meta);
    Ok(Installed {
        name: ctx.name,
        meta,
        action,
        override_note: ctx.note,
    })
}

/// What installing `meta` over `previous` (if any) did, by the version order.
fn action(previous: Option<&InstallRecord>, meta: &PluginMeta) -> Action {
    let Some(old) = previous else {
        return Action::Installed;
    };
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

/// Stage `verify`: every member checked while it is extracted into the staged dir; then what
/// mfplug reads of it (its own dir, the label, `config.ini`) checked before anything runs.
fn verify(ctx: &mut InstallCtx) -> Result<()> {
    let verified = unpack::read(&ctx.file, &Limits::default(), Some(&ctx.staged))
        .map_err(|e| ctx.fails(anyhow::Error::new(e)))?;
    ctx.verified = Some(verified);
    let staged = &ctx.staged;
    // mfplug's own dir is mfplug's: a file that ships one (a dir or a link) is refused.
    if fs_err::symlink_metadata(staged.join(super::RECORD_DIR)).is_ok() {
        return Err(ctx.fails(HomeError::ShipsRecordDir.into()));
    }
    let label = Label::read(staged).map_err(|e| ctx.fails(anyhow::anyhow!("{e}")))?;
    if label.name != ctx.original {
        return Err(ctx.fails(
            HomeError::NameMismatch {
                file_name: ctx.original.clone(),
                label_name: label.name.clone(),
            }
            .into(),
        ));
    }
    // The plugin's own `config.ini` is read (by `config::load` too) only if it is a file
    // of the plugin, not a link, and bounded: refused here before anything reads it.
    read_own_file(&staged.join(CONFIG_FILE)).map_err(|e| ctx.fails(anyhow::Error::new(e)))?;
    ctx.label = Some(label);
    Ok(())
}

/// Undo of `verify`: removes the staged dir (what was extracted, and all the later stages
/// wrote in it).
fn remove_staged(ctx: &mut InstallCtx) {
    let _ = fs_err::remove_dir_all(&ctx.staged);
}

/// Undo of a stage that writes only in the staged dir: nothing of its own, as `verify`'s
/// undo removes that dir.
fn in_staged_dir(_: &mut InstallCtx) {}

/// Stage `rename` (`--new-name`): the label, and the label in `config.ini`'s values,
/// rewritten in the staged dir only, never through a link it ships.
fn rename(ctx: &mut InstallCtx) -> Result<()> {
    if ctx.name == ctx.original {
        return Ok(());
    }
    let label = ctx.label()?;
    let new = Label {
        name: ctx.name.clone(),
        module: label.module.clone(),
    };
    let staged = &ctx.staged;
    let config_path = staged.join(CONFIG_FILE);
    let text = read_own_file(&config_path)?.unwrap_or_default();
    let renamed = relabel_config(&text, &label.to_string(), &new.to_string());
    write_own_file(staged, LABEL_FILE, format!("{new}\n").as_bytes(), true)?;
    if config_path.exists() || !text.is_empty() {
        write_own_file(staged, CONFIG_FILE, renamed.as_bytes(), true)?;
    }
    Ok(())
}

/// `config.ini`'s text with `old_label` replaced by `new_label` in every value that holds
/// it, the rest of the file untouched.
fn relabel_config(text: &str, old_label: &str, new_label: &str) -> String {
    let (mut doc, _) = Document::parse(text);
    let changes: Vec<(String, String, String)> = doc
        .sections()
        .iter()
        .flat_map(|s| {
            s.entries()
                .filter(|e| e.value.contains(old_label))
                .map(|e| {
                    (
                        s.name.clone(),
                        e.key.to_string(),
                        e.value.replace(old_label, new_label),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (section, key, value) in changes {
        doc.set(&section, &key, &value);
    }
    doc.to_text()
}

/// Stage `build`: `local/` from the vendored wheels, offline, for its final place. A Python
/// plugin gets its env even when its lock names no package: `python` in the plugin env is
/// then the plugin's interpreter, as in development.
fn build(ctx: &mut InstallCtx) -> Result<()> {
    if !ctx
        .staged
        .join("python3_virtualenv_sources/requirements3.txt")
        .is_file()
    {
        return Ok(());
    }
    let built = crate::build::build_local(
        &ctx.staged,
        &ctx.target,
        ctx.settings,
        &crate::build::Flags {
            offline: true,
            ..crate::build::Flags::default()
        },
        &crate::ui::NoProgress,
    )
    .with_context(|| {
        format!(
            "cannot build `local/` of `{}` from its vendored files",
            ctx.name
        )
    })?;
    ui::verbose(format!("built `local/` with {} packages", built.packages));
    Ok(())
}

/// Stage `config`: the plugin's configuration must load, under its new name, with the home's
/// override layers, and its crontab must render (a template error is caught now, before the
/// admin's side is touched); then the admin's override file is written.
fn configure(ctx: &mut InstallCtx) -> Result<()> {
    let config = config::load_reported(&ctx.staged, ctx.settings)
        .map_err(|e| {
            e.with_hint(format!(
                "nothing was installed: fix the plugin's `config.ini` and release it again, or fix `{}`",
                override_file(ctx.home, &ctx.name).display()
            ))
        })
        .context("the plugin's configuration has errors")?;
    // The crontab is rendered by `mfplug crontab` with the installed plugin's variables.
    render_crontab(&ctx.staged, &config.variables)?;
    let config_text = read_own_file(&ctx.staged.join(CONFIG_FILE))?.unwrap_or_default();
    let template = override_template(&ctx.name, &config_text);
    write_override(ctx, &template)
}

/// Writes the override file from `template` (saving it and its `.ini.new` copy first, for
/// the undo): a new or pristine file becomes the template; one the admin edited is kept and
/// the template goes to `.ini.new`, with a note saying so.
fn write_override(ctx: &mut InstallCtx, template: &str) -> Result<()> {
    let path = override_file(ctx.home, &ctx.name);
    let new_path = path.with_extension("ini.new");
    let saved = Saved::take(path.clone())?;
    let before = saved.before.clone();
    ctx.saved.push(saved);
    ctx.saved.push(Saved::take(new_path.clone())?);
    let write = |to: &Path| {
        crate::fsx::write_atomic(to, template.as_bytes())
            .with_context(|| format!("cannot write `{}`", to.display()))
    };
    let template_sha = sha256_hex(template.as_bytes());
    let recorded = ctx
        .previous
        .as_ref()
        .and_then(|r| r.override_sha256.clone());
    ctx.override_sha = match before.map(|bytes| sha256_hex(&bytes)) {
        None => {
            write(&path)?;
            Some(template_sha)
        }
        Some(current)
            if recorded.as_deref() == Some(current.as_str()) || current == template_sha =>
        {
            if current != template_sha {
                write(&path)?;
            }
            Some(template_sha)
        }
        Some(_) => {
            write(&new_path)?;
            ctx.note = Some(format!(
                "kept your edited `{}`; the plugin's new defaults are in `{}`",
                path.display(),
                new_path.display()
            ));
            recorded
        }
    };
    Ok(())
}

/// Undo of `config`: the override file and its `.ini.new` copy put back as they were.
fn restore_overrides(ctx: &mut InstallCtx) {
    for saved in &ctx.saved {
        saved.restore();
    }
}

/// Stage `postinstall`: the plugin's hook, in the plugin env.
fn postinstall(ctx: &mut InstallCtx) -> Result<()> {
    run_hook(&ctx.staged, "postinstall", ctx.settings)
        .map_err(|e| e.context("the plugin's `postinstall` failed"))
}

/// Stage `record`: what was installed, for `list`, `info`, `verify` and provisioning, written
/// into a dir mfplug makes (refused if the plugin or its postinstall made one), never
/// through a link.
fn record(ctx: &mut InstallCtx) -> Result<()> {
    let record_dir = super::create_own_dir(&ctx.staged, super::RECORD_DIR)?;
    let verified = ctx.verified()?;
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
    let record = InstallRecord {
        install_files: install_files(&ctx.staged, verified)?,
        meta,
        source: ctx.opts.file.display().to_string(),
        installed_at: super::now(),
        original_name: (ctx.name != ctx.original).then(|| ctx.original.clone()),
        override_sha256: ctx.override_sha.clone(),
        provisioned: ctx.opts.provisioned,
    };
    write_own_file(
        &record_dir,
        "INSTALL.json",
        serde_json::to_string_pretty(&record)?.as_bytes(),
        false,
    )
}

/// The files of the staged dir that are neither in the RECORD nor mfplug's nor `local/`:
/// what postinstall (or the build) added, so that `verify` does not report it.
fn install_files(staged: &Path, verified: &unpack::Verified) -> Result<Vec<String>> {
    let recorded: std::collections::HashSet<&str> = verified
        .record
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    let mut install_files = Vec::new();
    for item in walkdir::WalkDir::new(staged)
        .min_depth(1)
        .sort_by_file_name()
    {
        let item = item?;
        if item.file_type().is_dir() {
            continue;
        }
        let rel = item
            .path()
            .strip_prefix(staged)
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
    Ok(install_files)
}

/// Stage `commit`: one rename, or one atomic exchange with the installed version; then the
/// `plugins/` dir synced.
fn commit(ctx: &mut InstallCtx) -> Result<()> {
    let moved = if ctx.previous.is_some() || ctx.target.exists() {
        crate::fsx::exchange(&ctx.staged, &ctx.target)
    } else {
        fs_err::rename(&ctx.staged, &ctx.target)
    };
    moved.map_err(|source| CommitFailed {
        file: ctx.opts.file.clone(),
        target: ctx.target.clone(),
        source,
    })?;
    let _ = crate::fsx::sync_dir(&ctx.home.join("plugins"));
    Ok(())
}

/// Undo of `commit`: nothing, as it is the last stage and one rename: when it fails,
/// nothing moved.
fn nothing_moved(_: &mut InstallCtx) {}

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
        let text = "[general]\n_version = 1\nname = p\n\n[custom]\n# doc\nfoo = 1\n_private = 2\nmulti = a\n    b\n\n[_hidden]\nx = 1\n\n[only_private]\n_key = 3\n\n[extra_daemon_d]\n_cmd_and_args = run\nnumprocesses = 2\n";
        let out = override_template(&PluginName::parse("p").unwrap(), text);
        let expected = "\
# Overrides of the `p` plugin's configuration, for the administrator.
# Uncomment a key and change its value to override the plugin's default;
# `mfplug config p` shows the result. Keys starting with `_` cannot be
# overridden. This file is kept when the plugin is upgraded or uninstalled
# (unless `mfplug uninstall --clean`).

[custom]
# foo = 1
# multi = a
#     b

[extra_daemon_d]
# numprocesses = 2
";
        assert_eq!(out, expected);
        // It parses as an override layer that overrides nothing until a key is uncommented.
        let (doc, errors) = Document::parse(&out);
        assert!(errors.is_empty());
        let names: Vec<_> = doc.sections().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["custom", "extra_daemon_d"]);
        assert!(doc.sections().iter().all(|s| s.entries().count() == 0));
    }

    /// A stage of the loop tests that logs `run NAME` and `undo NAME`; its run fails unless
    /// `$ok`.
    macro_rules! logged {
        ($name:literal, $ok:literal) => {
            Stage::new(
                $name,
                |log: &mut Vec<String>| {
                    log.push(concat!("run ", $name).into());
                    if $ok {
                        Ok(())
                    } else {
                        anyhow::bail!(concat!($name, " broke"))
                    }
                },
                |log: &mut Vec<String>| log.push(concat!("undo ", $name).into()),
            )
        };
    }

    #[test]
    fn a_failing_stage_unwinds_the_earlier_ones_in_reverse_and_stops_the_pipeline() {
        let stages = [
            logged!("a", true),
            logged!("b", true),
            logged!("c", false),
            logged!("d", true),
        ];
        let mut log = Vec::new();
        let err = run_stages(&stages, &mut log).unwrap_err();
        assert_eq!(err.to_string(), "c broke");
        // The failing stage's own undo first (it may have done part of its work), then the
        // earlier stages', last first; `d` neither runs nor is undone.
        assert_eq!(
            log,
            ["run a", "run b", "run c", "undo c", "undo b", "undo a"]
        );
    }

    #[test]
    fn a_pipeline_that_succeeds_undoes_nothing() {
        let stages = [logged!("a", true), logged!("b", true)];
        let mut log = Vec::new();
        run_stages(&stages, &mut log).unwrap();
        assert_eq!(log, ["run a", "run b"]);
    }

    #[test]
    fn the_install_pipeline_keeps_its_crash_points_in_order() {
        let names: Vec<&str> = install_stages().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "verify",
                "rename",
                "build",
                "config",
                "postinstall",
                "record",
                "commit"
            ]
        );
    }
}
