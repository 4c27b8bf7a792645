//! What `mfplug develop` watches: the plugin dir through the operating system's file events
//! (inotify through `notify`, recursive, new dirs watched as they appear; never polling), and
//! which changes count, from `.autorestart_includes` and `.autorestart_excludes` (gitignore
//! syntax, the patterns of MetWork's templates when a file is absent: mfplug's choice, MetWork then never restarts).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{RecursiveMode, Watcher as _};

use crate::config::{Problem, Severity};

pub(crate) const INCLUDES_FILE: &str = ".autorestart_includes";
pub(crate) const EXCLUDES_FILE: &str = ".autorestart_excludes";
/// The input of `mfplug lock`: a change to it means relock and rebuild, not just a restart.
pub(crate) const REQUIREMENTS_FILE: &str = "python3_virtualenv_sources/requirements-to-freeze.txt";

/// The includes MetWork's templates write, used when the plugin has no `.autorestart_includes` (mfplug's choice: MetWork itself never restarts a plugin with neither file).
pub(crate) const DEFAULT_INCLUDES: &[&str] = &[
    "*.py",
    "*.ini",
    "*.js",
    "*.conf",
    "*.json",
    "nginx*",
    "magic",
    ".autorestart_includes",
    ".autorestart_excludes",
];

/// The excludes MetWork's templates write, used when the plugin has no `.autorestart_excludes`.
pub(crate) const DEFAULT_EXCLUDES: &[&str] = &[
    "/local",
    "/python3_virtualenv_sources",
    "/node_sources",
    "/node_modules",
    "__pycache__",
];

/// Always excluded, whatever the files say: version control and editors' temporary files
/// (vim's swap files and its `4913` write probe, emacs's backups and lock files).
/// mfplug's own temp files (`.mfplug-local-*` of a build, `.mfplug-release-*`) are never a change.
pub(crate) const ALWAYS_EXCLUDED: &[&str] =
    &[".git/", "*.swp", "*.swx", "*~", ".#*", "4913", "/.mfplug-*"];

/// Which paths of the plugin dir count as a change.
#[derive(Debug)]
pub(crate) struct Filter {
    includes: Gitignore,
    excludes: Gitignore,
    always: Gitignore,
}

impl Filter {
    /// Reads the two files of `dir` (or takes the defaults); a malformed line is a warning
    /// naming the file and line, and the other lines still apply.
    pub(crate) fn load(dir: &Path) -> (Filter, Vec<Problem>) {
        let mut problems = Vec::new();
        let includes = patterns(dir, INCLUDES_FILE, DEFAULT_INCLUDES, &mut problems);
        let excludes = patterns(dir, EXCLUDES_FILE, DEFAULT_EXCLUDES, &mut problems);
        let always = patterns_from(dir, None, ALWAYS_EXCLUDED.iter().copied(), &mut problems);
        (
            Filter {
                includes,
                excludes,
                always,
            },
            problems,
        )
    }

    /// Whether a change to `relative` (a path inside the plugin dir) counts.
    pub(crate) fn counts(&self, relative: &Path, is_dir: bool) -> bool {
        let excluded = |g: &Gitignore| g.matched_path_or_any_parents(relative, is_dir).is_ignore();
        excluded(&self.includes) && !excluded(&self.excludes) && !excluded(&self.always)
    }
}

fn patterns(dir: &Path, file: &str, defaults: &[&str], problems: &mut Vec<Problem>) -> Gitignore {
    let path = dir.join(file);
    match fs_err::read_to_string(&path) {
        Ok(text) => patterns_from(dir, Some(&path), text.lines(), problems),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push(problem(&path, None, e.to_string()));
            }
            patterns_from(dir, None, defaults.iter().copied(), problems)
        }
    }
}

fn patterns_from<'a>(
    dir: &Path,
    file: Option<&Path>,
    lines: impl Iterator<Item = &'a str>,
    problems: &mut Vec<Problem>,
) -> Gitignore {
    let mut builder = GitignoreBuilder::new(dir);
    for (index, line) in lines.enumerate() {
        if let Err(e) = builder.add_line(file.map(Path::to_path_buf), line) {
            let place = file.unwrap_or(dir);
            let message = format!("{e}: this line is left out, the others apply");
            problems.push(problem(place, Some(index + 1), message));
        }
    }
    builder.build().unwrap_or_else(|e| {
        problems.push(problem(file.unwrap_or(dir), None, e.to_string()));
        Gitignore::empty()
    })
}

fn problem(file: &Path, line: Option<usize>, message: String) -> Problem {
    Problem {
        severity: Severity::Warning,
        file: Some(file.to_path_buf()),
        line,
        section: None,
        key: None,
        message,
        hint: Some("the file uses gitignore syntax, one pattern per line".to_owned()),
    }
}

/// A watch on the plugin dir; dropping it stops the watching.
pub(crate) struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir` recursively and sends every event through `send` (called on the watcher's
/// thread).
pub(crate) fn watch<T: Send + 'static>(
    dir: &Path,
    events: Sender<T>,
    wrap: fn(notify::Result<notify::Event>) -> T,
) -> Result<DirWatcher> {
    // Links inside the plugin are not followed: one pointing at `/` would watch the system.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = notify::RecommendedWatcher::new(
        move |event| {
            let _ = events.send(wrap(event));
        },
        config,
    )
    .context("cannot start watching files")?;
    if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
        let message = format!("cannot watch `{}`", dir.display());
        return Err(match e.kind {
            notify::ErrorKind::MaxFilesWatch => super::DevelopError::WatchLimit {
                message: format!("{message}: {e}"),
            }
            .into(),
            _ => anyhow::Error::new(e).context(message),
        });
    }
    Ok(DirWatcher { _watcher: watcher })
}

/// Whether an event is a change (a file created, written, renamed, removed, or its metadata
/// changed), not a read.
pub(crate) fn is_change(event: &notify::Event) -> bool {
    use notify::EventKind;
    match event.kind {
        EventKind::Access(_) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

/// Turns bursts of changes into one: the deadline moves with every change, so the action
/// comes `delay` after the last change of a burst.
#[derive(Debug)]
pub(crate) struct Debounce {
    delay: Duration,
    deadline: Option<Instant>,
    last: Option<PathBuf>,
}

/// A burst of changes that is over.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Burst {
    /// The last path that changed.
    pub(crate) last: PathBuf,
}

impl Debounce {
    pub(crate) fn new(delay: Duration) -> Debounce {
        Debounce {
            delay,
            deadline: None,
            last: None,
        }
    }

    pub(crate) fn change(&mut self, path: PathBuf, now: Instant) {
        self.deadline = Some(super::supervise::later(now, self.delay));
        self.last = Some(path);
    }

    /// Moves the deadline without a change of its own (a new dir, looked into when due).
    pub(crate) fn poke(&mut self, now: Instant) {
        self.deadline = Some(super::supervise::later(now, self.delay));
    }

    /// A change found when the burst is due: it joins the burst without moving the deadline.
    pub(crate) fn join(&mut self, path: PathBuf) {
        self.last = Some(path);
    }

    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The burst, once `now` is past its deadline.
    pub(crate) fn take(&mut self, now: Instant) -> Option<Burst> {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.last.take().map(|last| Burst { last })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(includes: Option<&str>, excludes: Option<&str>) -> (Filter, Vec<Problem>) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = includes {
            fs_err::write(dir.path().join(INCLUDES_FILE), text).unwrap();
        }
        if let Some(text) = excludes {
            fs_err::write(dir.path().join(EXCLUDES_FILE), text).unwrap();
        }
        Filter::load(dir.path())
    }

    #[test]
    fn defaults_are_metworks() {
        let (f, problems) = filter(None, None);
        assert!(problems.is_empty());
        for yes in [
            "a.py",
            "sub/dir/b.py",
            "config.ini",
            "nginx.conf",
            "magic",
            "x.json",
        ] {
            assert!(f.counts(Path::new(yes), false), "{yes}");
        }
        for no in [
            "local/lib/a.py",
            "python3_virtualenv_sources/x.py",
            "node_modules/a.js",
            "sub/__pycache__/a.py",
            "README.md",
            ".git/config.ini",
            "a.py.swp",
            "a.py~",
            ".#a.py",
            "4913",
        ] {
            assert!(!f.counts(Path::new(no), false), "{no}");
        }
        // Anchored: only the top-level `local/` is excluded.
        assert!(f.counts(Path::new("sub/local/a.py"), false));
    }

    #[test]
    fn a_malformed_line_is_reported_and_the_others_apply() {
        let (f, problems) = filter(Some("*.txt\n[z-a]\n*.py\n"), Some("skip.txt\n"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].to_string().contains(INCLUDES_FILE));
        assert!(f.counts(Path::new("a.txt"), false));
        assert!(f.counts(Path::new("a.py"), false));
        assert!(!f.counts(Path::new("skip.txt"), false));
        assert!(!f.counts(Path::new("a.ini"), false));
    }

    #[test]
    fn debounce_fires_once_after_the_last_change() {
        let start = Instant::now();
        let mut d = Debounce::new(Duration::from_millis(100));
        assert_eq!(d.take(start), None);
        for i in 0..50 {
            d.change(
                PathBuf::from(format!("f{i}")),
                start + Duration::from_millis(i),
            );
        }
        assert_eq!(d.take(start + Duration::from_millis(120)), None);
        let burst = d.take(start + Duration::from_millis(149)).unwrap();
        assert_eq!(burst.last, PathBuf::from("f49"));
        assert_eq!(d.take(start + Duration::from_secs(9)), None);
    }

    #[test]
    fn a_poke_moves_the_deadline_and_a_join_does_not() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(100));
        // A poke alone (a new dir, empty) is no burst.
        d.poke(start);
        assert_eq!(d.deadline(), Some(start + ms(100)));
        assert!(d.is_due(start + ms(100)));
        assert_eq!(d.take(start + ms(100)), None);
        assert_eq!(d.deadline(), None);

        d.change(PathBuf::from("a.py"), start);
        d.poke(start + ms(50));
        assert!(!d.is_due(start + ms(149)));
        assert_eq!(d.take(start + ms(149)), None);
        assert!(d.is_due(start + ms(150)));
        // Found when due: it is the burst's last change, and the deadline stays.
        d.join(PathBuf::from("new/b.py"));
        assert_eq!(d.deadline(), Some(start + ms(150)));
        let burst = d.take(start + ms(150)).unwrap();
        assert_eq!(burst.last, PathBuf::from("new/b.py"));
    }

    #[test]
    fn a_change_after_a_burst_starts_a_new_one() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(100));
        d.change(PathBuf::from("a"), start);
        assert_eq!(d.take(start + ms(100)).unwrap().last, PathBuf::from("a"));
        d.change(PathBuf::from("b"), start + ms(500));
        assert_eq!(d.take(start + ms(599)), None);
        assert_eq!(d.take(start + ms(600)).unwrap().last, PathBuf::from("b"));
    }
}
