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
use watch::{Debounce, Filter};

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
        if let Err(e) = crate::build::run(Some(dir.clone()), false, false, settings) {
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
    run(&dir, home, settings, config, options.debounce)
}

fn load(dir: &Path, settings: &Settings) -> Result<PluginConfig> {
    config::load(dir, settings).map_err(|problems| {
        for problem in &problems {
            ui::print_problem(problem);
        }
        ui::error_with_hint(
            format!("cannot read the configuration of `{}`", dir.display()),
            format!("`mfplug check {}` lists every problem", dir.display()),
        )
    })
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

fn run(
    dir: &Path,
    home: &Path,
    settings: &Settings,
    config: PluginConfig,
    debounce: Duration,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Event>();

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot handle signals")?;
    let signal_tx = tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal_tx.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signal thread")?;

    let (mut filter, problems) = Filter::load(dir);
    report(&problems);
    let _watcher = watch::watch(dir, tx.clone(), Event::Fs)?;
    ui::status("Watching", format!("`{}`", dir.display()));

    let log_dir = home::log_dir(home)?;
    let name = config.label.name.clone();
    let mut supervisor = Supervisor::new(&name, dir, &log_dir, tx, Event::Exited);
    start(&mut supervisor, prepare(&config, settings)?);
    if supervisor.total() > 0 {
        ui::status("Started", daemons(supervisor.total()));
    }

    let live = std::io::IsTerminal::is_terminal(&std::io::stderr()) && ui::verbosity() >= 0;
    let mut stats = Stats::default();
    let mut debouncer = Debounce::new(debounce);
    let mut pending: Option<Pending> = None;
    let mut new_dirs: Vec<PathBuf> = Vec::new();
    let mut check_dir_at: Option<Instant> = None;
    let mut requirements_changed = false;
    let mut stopping: Option<Result<(), String>> = None;
    let mut shown = String::new();

    loop {
        let deadline = [debouncer.deadline(), supervisor.deadline(), check_dir_at]
            .into_iter()
            .flatten()
            .min();
        let event = match deadline {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(event) => Some(event),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(event) => Some(event),
                Err(_) => break,
            },
        };
        let now = Instant::now();
        match event {
            Some(Event::Signal(signal)) => {
                if stopping.is_some() {
                    supervisor.kill_all();
                } else {
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
                    stopping = Some(Ok(()));
                    pending = None;
                    supervisor.stop_all(now);
                }
            }
            Some(Event::Exited(exited)) => supervisor.exited(&exited, now),
            Some(Event::Fs(Err(e))) => say(|| ui::warn(format!("file events: {e}"))),
            Some(Event::Fs(Ok(event))) if stopping.is_none() => {
                if event.kind.is_remove() {
                    // The dir's own removal may come with no event of its own (a daemon whose
                    // current dir it is keeps it alive for inotify): it is looked at shortly
                    // after the last removal inside it.
                    check_dir_at = Some(now + CHECK_DIR_AFTER);
                }
                if event.need_rescan() {
                    debouncer.change(dir.to_path_buf(), now);
                } else if watch::is_change(&event) {
                    for path in &event.paths {
                        let Ok(relative) = path.strip_prefix(dir) else {
                            continue;
                        };
                        if relative == Path::new(watch::INCLUDES_FILE)
                            || relative == Path::new(watch::EXCLUDES_FILE)
                        {
                            let (reloaded, problems) = Filter::load(dir);
                            report(&problems);
                            filter = reloaded;
                        }
                        if relative == Path::new(watch::REQUIREMENTS_FILE) {
                            requirements_changed = true;
                            debouncer.poke(now);
                        }
                        let is_dir = path.is_dir();
                        if filter.counts(relative, is_dir) {
                            ui::verbose(format!("changed: `{}`", relative.display()));
                            debouncer.change(relative.to_path_buf(), now);
                        }
                        if is_dir && event.kind.is_create() {
                            // Files written into a new dir before its watch is in place have
                            // no event of their own: the dir is looked into when the burst
                            // is due.
                            new_dirs.push(path.clone());
                            debouncer.poke(now);
                        }
                    }
                }
            }
            Some(Event::Fs(Ok(_))) | None => {}
        }

        let now = Instant::now();
        if stopping.is_none() && check_dir_at.is_some_and(|at| now >= at) {
            check_dir_at = None;
            if !dir.is_dir() {
                stopping = Some(Err(format!(
                    "the plugin dir `{}` was removed: stopping",
                    dir.display()
                )));
                pending = None;
                debouncer = Debounce::new(debounce);
                supervisor.stop_all(now);
            }
        }
        if debouncer.is_due(now) {
            for new_dir in new_dirs.drain(..) {
                for file in walkdir::WalkDir::new(&new_dir).min_depth(1) {
                    let Ok(file) = file else { continue };
                    let Ok(relative) = file.path().strip_prefix(dir) else {
                        continue;
                    };
                    if filter.counts(relative, file.file_type().is_dir()) {
                        debouncer.join(relative.to_path_buf());
                    }
                    requirements_changed |= relative == Path::new(watch::REQUIREMENTS_FILE);
                }
            }
            if std::mem::take(&mut requirements_changed) {
                // Relock and rebuild, then restart; a failure keeps the daemons as they are.
                let built = ui::with_live_cleared(|| {
                    crate::build::run(Some(dir.to_path_buf()), false, false, settings)
                });
                match built {
                    Ok(_) => debouncer.join(PathBuf::from(watch::REQUIREMENTS_FILE)),
                    Err(e) => {
                        say(|| {
                            ui::print_error(&e);
                            ui::warn("the daemons were not restarted: fix the requirements and save again");
                        })
                    }
                }
            }
        }
        if let Some(burst) = debouncer.take(now) {
            // A dir that is gone is not restarted from: the removal check stops everything.
            if stopping.is_none() && dir.is_dir() {
                // The configuration is read again: the change may be to `config.ini`.
                // Both are checked before anything is stopped: a mistake leaves the running
                // daemons as they are.
                let prepared = ui::with_live_cleared(|| {
                    // A Rust plugin's binaries are rebuilt into `bin/` first.
                    if crate::build::rust::is_rust(dir) {
                        crate::build::rust::build(dir, false)?;
                    }
                    load(dir, settings).and_then(|config| prepare(&config, settings))
                });
                match prepared {
                    Ok(prepared) => {
                        supervisor.stop_all(now);
                        pending = Some(Pending {
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
        }
        supervisor.tick(now);

        if supervisor.is_idle() {
            if let Some(done) = stopping.take() {
                if live {
                    ui::live_status(None);
                }
                return match done {
                    Ok(()) => {
                        ui::status(
                            "Stopped",
                            format!(
                                "every daemon; the devlink `{}` stays in place",
                                home::plugin_dir(home, &name).display()
                            ),
                        );
                        Ok(())
                    }
                    Err(why) => Err(anyhow::anyhow!(why)),
                };
            }
            if let Some(restart) = pending.take() {
                start(&mut supervisor, restart.prepared);
                let took = restart.began.elapsed();
                stats.restarts += 1;
                say(|| {
                    ui::status(
                        "Restarted",
                        format!(
                            "{} in {} ms after a change to `{}`",
                            daemons(supervisor.total()),
                            took.as_millis(),
                            restart.cause.display()
                        ),
                    )
                });
                stats.last_change = Some(restart.cause);
                stats.last_took = Some(took);
            }
        }

        if live {
            let line = status_line(&supervisor, &stats);
            if line != shown {
                ui::live_status(Some(line.clone()));
                shown = line;
            }
        }
    }
    Ok(())
}

/// The daemons of `config` and the plugin env they run in.
fn prepare(config: &PluginConfig, settings: &Settings) -> Result<Prepared> {
    let env = env::plugin_env(config, &settings.env)?;
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
fn start<E: Send + 'static>(supervisor: &mut Supervisor<E>, (specs, env): Prepared) {
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
        supervisor.start_all();
    }
}

fn daemons(n: usize) -> String {
    if n == 1 {
        "1 daemon".to_owned()
    } else {
        format!("{n} daemons")
    }
}

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
