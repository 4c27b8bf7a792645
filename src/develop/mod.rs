//! `mfplug develop`: devlink a plugin dir into the home, run its daemons in the foreground,
//! and restart them when a watched file changes (issue 8). See `docs/develop.md`.
//!
//! One event loop in the main thread owns everything: it receives file events (from the
//! watcher's thread), daemon exits (from one waiter thread per child) and signals (from the
//! signal thread) on one channel, and sleeps until the next event or deadline: idle, it does
//! not wake up at all.

pub(crate) mod supervise;
pub(crate) mod watch;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::config::{self, PluginConfig, Settings};
use crate::{env, home, ui};
use supervise::{Exited, Supervisor};
use watch::{Burst, Debounce, Filter};

/// The debounce when `--debounce` is not given.
pub(crate) const DEFAULT_DEBOUNCE_MS: u64 = 300;

/// How long after a removal inside the plugin dir the dir itself is looked at.
const CHECK_DIR_AFTER: Duration = Duration::from_millis(100);

/// What `mfplug develop` was asked.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) no_watch: bool,
    pub(crate) debounce: Duration,
    pub(crate) force: bool,
    /// How to build what is stale (offline, the index flags).
    pub(crate) build: crate::build::Flags,
}

/// What goes wrong with the daemons and the watch, with where; `commands` says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DevelopError {
    /// A daemon exited too quickly too often: it is held until a watched file changes.
    #[error(
        "`{label}` {how}, {quick_exits} times in a row within {stable_after} s of starting: held"
    )]
    Held {
        label: String,
        how: String,
        quick_exits: u32,
        stable_after: u64,
    },
    /// `_cmd_and_args` does not split as a shell would.
    #[error("cannot start `{label}`: {why}")]
    BadCommand { label: String, why: String },
    /// The daemon's program could not be started.
    #[error("cannot start `{label}` (`{program}`): {source}")]
    Start {
        label: String,
        program: String,
        source: std::io::Error,
    },
    /// The system's limit of inotify watches is reached.
    #[error("{message}")]
    WatchLimit { message: String },
}

/// Everything the event loop waits for.
enum Event {
    Fs(notify::Result<notify::Event>),
    Exited(Exited),
    Signal(i32),
}

/// `mfplug develop [DIR] [--no-watch] [--debounce MS] [--force]`.
pub(crate) fn develop(options: &Options, home: &Path, settings: &Settings) -> Result<()> {
    let dir = crate::plugin::find_dir(options.dir.clone())?;
    let dir = fs_err::canonicalize(&dir)?;
    let config = load(&dir, settings)?;
    let name = config.label.name.clone();

    // What is stale is built first, as `mfplug build` does; a failure is shown and the
    // daemons start with what is built already.
    if !crate::build::kinds(&dir).is_empty() {
        if let Err(e) = crate::build::run(Some(dir.clone()), &options.build, settings) {
            ui::print_error(&e);
            ui::warn("the daemons start with what is built already");
        }
    }

    let link = home::devlink::link(home, &name, &dir, options.force)?;
    ui::status(
        "Linked",
        format!("`{}` -> `{}`", link.display(), dir.display()),
    );
    if options.no_watch {
        return Ok(());
    }
    run(&dir, home, settings, config, options)
}

/// The plugin's configuration, or an error that `ui::print_error` prints with every problem
/// and the hint to `mfplug check`.
fn load(dir: &Path, settings: &Settings) -> Result<PluginConfig> {
    Ok(config::load_reported(dir, settings)?)
}

/// What the status line shows.
#[derive(Debug, Default)]
struct Stats {
    restarts: u64,
    last_change: Option<PathBuf>,
    last_took: Option<Duration>,
}

/// A restart after a change: the old daemons stop, then the new set starts.
struct Pending {
    began: Instant,
    cause: PathBuf,
    prepared: Prepared,
}

/// The watch-and-restart part of `develop`: sets up the signal thread, the watcher and the
/// daemons, then runs the event loop until the daemons are stopped.
fn run(
    dir: &Path,
    home: &Path,
    settings: &Settings,
    config: PluginConfig,
    options: &Options,
) -> Result<()> {
    let debounce = options.debounce;
    let (tx, rx) = mpsc::channel::<Event>();
    forward_signals(tx.clone())?;

    let (filter, problems) = Filter::load(dir);
    report(&problems);
    let _watcher = watch::watch(dir, tx.clone(), Event::Fs)?;
    ui::status("Watching", format!("`{}`", dir.display()));

    let log_dir = home::log_dir(home)?;
    let name = config.label.name.clone();
    let mut supervisor = Supervisor::new(&name, dir, &log_dir, tx, Event::Exited);
    start(&mut supervisor, prepare(&config, settings)?, Instant::now());
    if supervisor.total() > 0 {
        ui::status("Started", daemons(supervisor.total()));
    }

    let mut session = Session {
        dir,
        home,
        settings,
        build: &options.build,
        name,
        debounce,
        supervisor,
        filter,
        debouncer: Debounce::new(debounce),
        pending: None,
        new_dirs: Vec::new(),
        check_dir_at: None,
        requirements_changed: false,
        stopping: None,
        stats: Stats::default(),
        live: std::io::IsTerminal::is_terminal(&std::io::stderr()) && ui::verbosity() >= 0,
        shown: String::new(),
    };
    session.run(&rx)
}

/// Starts the thread that turns SIGINT, SIGTERM and SIGHUP into events of the loop.
fn forward_signals(tx: mpsc::Sender<Event>) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot handle signals")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// What woke the event loop up.
enum Woken {
    Event(Event),
    /// The nearest deadline passed.
    Deadline,
    /// Every sender is gone: nothing can happen any more.
    Closed,
}

/// One `develop` session: the daemons, what the file events have gathered so far, and the
/// restart or the stop under way. The event loop's handlers are its methods.
struct Session<'a> {
    dir: &'a Path,
    home: &'a Path,
    settings: &'a Settings,
    /// How a change to the requirements rebuilds.
    build: &'a crate::build::Flags,
    name: crate::plugin::PluginName,
    debounce: Duration,
    supervisor: Supervisor<Event>,
    filter: Filter,
    debouncer: Debounce,
    /// The restart under way: the old set is stopping, the new one is ready.
    pending: Option<Pending>,
    /// Dirs created during the burst, looked into when it is due.
    new_dirs: Vec<PathBuf>,
    /// When to look whether the plugin dir is still there.
    check_dir_at: Option<Instant>,
    /// The burst includes a change to the requirements: relock and rebuild when it is due.
    requirements_changed: bool,
    /// The stop under way, and what `develop` returns once it is done.
    stopping: Option<Result<(), String>>,
    stats: Stats,
    /// Whether the status line is shown (stderr is a terminal), and what it shows now.
    live: bool,
    shown: String,
}

impl Session<'_> {
    /// The event loop: sleeps until the next event or deadline, handles the event, does what
    /// is due, and returns once a stop is complete.
    fn run(&mut self, rx: &mpsc::Receiver<Event>) -> Result<()> {
        loop {
            let woken = self.wait(rx);
            let now = Instant::now();
            match woken {
                Woken::Closed => return Ok(()),
                Woken::Event(Event::Signal(signal)) => self.on_signal(signal, now),
                Woken::Event(Event::Exited(exited)) => self.supervisor.exited(&exited, now),
                Woken::Event(Event::Fs(Err(e))) => say(|| ui::warn(format!("file events: {e}"))),
                Woken::Event(Event::Fs(Ok(event))) if self.stopping.is_none() => {
                    self.on_file_event(&event, now);
                }
                Woken::Event(Event::Fs(Ok(_))) | Woken::Deadline => {}
            }
            let now = Instant::now();
            self.on_deadlines(now);
            if let Some(done) = self.when_idle(now) {
                return done;
            }
            self.show_status();
        }
    }

    /// Waits for the next event, or until the nearest deadline; with none, it sleeps until an
    /// event comes.
    fn wait(&self, rx: &mpsc::Receiver<Event>) -> Woken {
        let deadline = [
            self.debouncer.deadline(),
            self.supervisor.deadline(),
            self.check_dir_at,
        ]
        .into_iter()
        .flatten()
        .min();
        match deadline {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => Woken::Event(event),
                Err(mpsc::RecvTimeoutError::Timeout) => Woken::Deadline,
                Err(mpsc::RecvTimeoutError::Disconnected) => Woken::Closed,
            },
            None => rx.recv().map_or(Woken::Closed, Woken::Event),
        }
    }

    /// SIGINT, SIGTERM or SIGHUP: every daemon is asked to stop, and a restart under way is
    /// dropped; a second signal kills them at once.
    fn on_signal(&mut self, signal: i32, now: Instant) {
        if self.stopping.is_some() {
            self.supervisor.kill_all();
            return;
        }
        let name = if signal == signal_hook::consts::SIGTERM {
            "SIGTERM"
        } else if signal == signal_hook::consts::SIGHUP {
            "SIGHUP"
        } else {
            "SIGINT"
        };
        say(|| {
            ui::status(
                "Stopping",
                format!("the daemons ({name}; again to kill them at once)"),
            )
        });
        self.stopping = Some(Ok(()));
        self.pending = None;
        self.supervisor.stop_all(now);
    }

    /// A file event (not during a stop): a removal schedules a look at the plugin dir, a
    /// rescan counts as a change of the whole dir, and each changed path is looked at.
    fn on_file_event(&mut self, event: &notify::Event, now: Instant) {
        if event.kind.is_remove() {
            // The dir's own removal may come with no event of its own (a daemon whose
            // current dir it is keeps it alive for inotify): it is looked at shortly
            // after the last removal inside it.
            self.check_dir_at = Some(now + CHECK_DIR_AFTER);
        }
        if event.need_rescan() {
            self.debouncer.change(self.dir.to_path_buf(), now);
        } else if watch::is_change(event) {
            for path in &event.paths {
                self.on_changed_path(path, event.kind.is_create(), now);
            }
        }
    }

    /// One changed path: the autorestart files reload the filter, the requirements mark a
    /// relock, a path the filter counts joins the burst, and a new dir is looked into later.
    fn on_changed_path(&mut self, path: &Path, created: bool, now: Instant) {
        let Ok(relative) = path.strip_prefix(self.dir) else {
            return;
        };
        if relative == Path::new(watch::INCLUDES_FILE)
            || relative == Path::new(watch::EXCLUDES_FILE)
        {
            let (reloaded, problems) = Filter::load(self.dir);
            report(&problems);
            self.filter = reloaded;
        }
        if relative == Path::new(watch::REQUIREMENTS_FILE) {
            self.requirements_changed = true;
            self.debouncer.poke(now);
        }
        let is_dir = path.is_dir();
        if self.filter.counts(relative, is_dir) {
            ui::verbose(format!("changed: `{}`", relative.display()));
            self.debouncer.change(relative.to_path_buf(), now);
        }
        if is_dir && created {
            // Files written into a new dir before its watch is in place have no event of
            // their own: the dir is looked into when the burst is due.
            self.new_dirs.push(path.to_path_buf());
            self.debouncer.poke(now);
        }
    }

    /// Does what is due at `now`: the look at the plugin dir, the end of a burst (new dirs
    /// looked into, a relock, then the restart), and the supervisor's own deadlines.
    fn on_deadlines(&mut self, now: Instant) {
        if self.stopping.is_none() && self.check_dir_at.is_some_and(|at| now >= at) {
            self.check_dir(now);
        }
        if self.debouncer.is_due(now) {
            self.scan_new_dirs();
            if std::mem::take(&mut self.requirements_changed) {
                self.relock();
            }
        }
        if let Some(burst) = self.debouncer.take(now) {
            // A dir that is gone is not restarted from: the removal check stops everything.
            if self.stopping.is_none() && self.dir.is_dir() {
                self.restart(burst, now);
            }
        }
        self.supervisor.tick(now);
    }

    /// Whether the plugin dir is still there; gone, every daemon stops and `develop` ends
    /// with an error saying why.
    fn check_dir(&mut self, now: Instant) {
        self.check_dir_at = None;
        if !self.dir.is_dir() {
            self.stopping = Some(Err(format!(
                "the plugin dir `{}` was removed: stopping",
                self.dir.display()
            )));
            self.pending = None;
            self.debouncer = Debounce::new(self.debounce);
            self.supervisor.stop_all(now);
        }
    }

    /// Looks into the dirs created during the burst: the files they hold that count join it.
    fn scan_new_dirs(&mut self) {
        for new_dir in std::mem::take(&mut self.new_dirs) {
            for file in walkdir::WalkDir::new(&new_dir).min_depth(1) {
                let Ok(file) = file else { continue };
                let Ok(relative) = file.path().strip_prefix(self.dir) else {
                    continue;
                };
                if self.filter.counts(relative, file.file_type().is_dir()) {
                    self.debouncer.join(relative.to_path_buf());
                }
                self.requirements_changed |= relative == Path::new(watch::REQUIREMENTS_FILE);
            }
        }
    }

    /// Relocks and rebuilds after a change to the requirements, then the burst restarts the
    /// daemons; a failure keeps them as they are.
    fn relock(&mut self) {
        let built = ui::with_live_cleared(|| {
            crate::build::run(Some(self.dir.to_path_buf()), self.build, self.settings)
        });
        match built {
            Ok(_) => self.debouncer.join(PathBuf::from(watch::REQUIREMENTS_FILE)),
            Err(e) => say(|| {
                ui::print_error(&e);
                ui::warn("the daemons were not restarted: fix the requirements and save again");
            }),
        }
    }

    /// The end of a burst: the configuration is read again (the change may be to
    /// `config.ini`) and a Rust plugin's binaries rebuilt, both before anything is stopped
    /// (a mistake leaves the running daemons as they are); then the old set stops.
    fn restart(&mut self, burst: Burst, now: Instant) {
        let (dir, settings) = (self.dir, self.settings);
        let prepared = ui::with_live_cleared(|| {
            if crate::build::rust::is_rust(dir) {
                crate::build::rust::build(dir, false)?;
            }
            load(dir, settings).and_then(|config| prepare(&config, settings))
        });
        match prepared {
            Ok(prepared) => {
                self.supervisor.stop_all(now);
                self.pending = Some(Pending {
                    began: now,
                    cause: burst.last,
                    prepared,
                });
            }
            Err(e) => say(|| {
                ui::print_error(&e);
                ui::warn("the daemons were not restarted: fix it and save again");
            }),
        }
    }

    /// Once no daemon runs: a stop is complete (what `develop` returns), or the new set of a
    /// restart starts.
    fn when_idle(&mut self, now: Instant) -> Option<Result<()>> {
        if !self.supervisor.is_idle() {
            return None;
        }
        if let Some(done) = self.stopping.take() {
            return Some(self.stopped(done));
        }
        if let Some(restart) = self.pending.take() {
            self.restarted(restart, now);
        }
        None
    }

    /// The end of a stop: the status line goes; after a signal, it says that the devlink
    /// stays; after the plugin dir's removal, the error.
    fn stopped(&self, done: Result<(), String>) -> Result<()> {
        if self.live {
            ui::live_status(None);
        }
        match done {
            Ok(()) => {
                ui::status(
                    "Stopped",
                    format!(
                        "every daemon; the devlink `{}` stays in place",
                        home::plugin_dir(self.home, &self.name).display()
                    ),
                );
                Ok(())
            }
            Err(why) => Err(anyhow::anyhow!(why)),
        }
    }

    /// The old set of a restart is gone: the new one starts, and the stats count it.
    fn restarted(&mut self, restart: Pending, now: Instant) {
        start(&mut self.supervisor, restart.prepared, now);
        let took = restart.began.elapsed();
        self.stats.restarts += 1;
        let total = self.supervisor.total();
        say(|| {
            ui::status(
                "Restarted",
                format!(
                    "{} in {} ms after a change to `{}`",
                    daemons(total),
                    took.as_millis(),
                    restart.cause.display()
                ),
            )
        });
        self.stats.last_change = Some(restart.cause);
        self.stats.last_took = Some(took);
    }

    /// Redraws the status line when what it shows has changed (on a terminal only).
    fn show_status(&mut self) {
        if self.live {
            let line = status_line(&self.supervisor, &self.stats);
            if line != self.shown {
                ui::live_status(Some(line.clone()));
                self.shown = line;
            }
        }
    }
}

/// The installed plugins whose env the plugin's includes (`.layerapi2_dependencies`).
fn dependencies(config: &PluginConfig, settings: &Settings) -> Result<Vec<PluginConfig>> {
    crate::home::layers::dependencies(&config.dir, settings)
}

/// The daemons of `config` and the plugin env they run in.
fn prepare(config: &PluginConfig, settings: &Settings) -> Result<Prepared> {
    let deps = dependencies(config, settings)?;
    let env = env::plugin_env(config, settings, &deps)?;
    if let Some(tmp) = env.get("TMPDIR") {
        let _ = fs_err::create_dir_all(tmp);
    }
    Ok((supervise::specs(config), env))
}

type Prepared = (
    Vec<supervise::DaemonSpec>,
    std::collections::BTreeMap<String, String>,
);

/// Starts a new set of daemons (nothing of the old set runs any more).
fn start<E: Send + 'static>(supervisor: &mut Supervisor<E>, (specs, env): Prepared, now: Instant) {
    supervisor.set(specs, env);
    if supervisor.total() == 0 {
        say(|| {
            ui::status(
                "Nothing",
                "to run: `config.ini` has no `[extra_daemon_*]` section with `numprocesses` \
                 above 0; watching all the same",
            )
        });
    } else {
        supervisor.start_all(now);
    }
}

/// `1 daemon`, `N daemons`.
fn daemons(n: usize) -> String {
    if n == 1 {
        "1 daemon".to_owned()
    } else {
        format!("{n} daemons")
    }
}

/// Prints the problems of the autorestart files, around the live status line.
fn report(problems: &[config::Problem]) {
    say(|| {
        for problem in problems {
            ui::print_problem(problem);
        }
    });
}

/// Prints around the live status line.
fn say(print: impl FnOnce()) {
    ui::with_live_cleared(print);
}

/// The live status line: the daemons up, the restarts, the last change and how long its
/// restart took, cut to the terminal's width.
fn status_line<E: Send + 'static>(supervisor: &Supervisor<E>, stats: &Stats) -> String {
    let mut line = format!(
        "develop: {}/{} up, {} restart{}",
        supervisor.up(),
        supervisor.total(),
        stats.restarts + supervisor.restarts,
        if stats.restarts + supervisor.restarts == 1 {
            ""
        } else {
            "s"
        }
    );
    if let Some(path) = &stats.last_change {
        line.push_str(&format!(", last change `{}`", path.display()));
    }
    if let Some(took) = stats.last_took {
        line.push_str(&format!(" (restart took {} ms)", took.as_millis()));
    }
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(80)
        .saturating_sub(1);
    line.chars().take(width).collect()
}
