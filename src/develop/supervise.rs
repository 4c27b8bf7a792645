//! Supervision of a plugin's `[extra_daemon_*]` sections for `mfplug develop`: each copy in
//! its own process group, in the plugin env, with its rlimits; its output prefixed on the
//! terminal and appended to `log/extra_PLUGIN_DAEMON.log`; stopped with SIGTERM to the group
//! then SIGKILL after `graceful_timeout`; restarted with backoff when it dies, held when it
//! keeps dying; restarted when older than `max_age`.
//!
//! The supervisor owns no thread of its own: the caller's event loop feeds it the exits (sent
//! by one waiter thread per child) and calls [`Supervisor::tick`] at [`Supervisor::deadline`].

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use super::DevelopError;
use crate::config::PluginConfig;
use crate::ui;

/// The first delay before restarting a daemon that died; it doubles at each quick exit.
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(500);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A daemon that stayed up this long was fine: its backoff starts over.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);
/// After this many quick exits in a row a daemon is held until the next change.
pub(crate) const MAX_QUICK_EXITS: u32 = 5;

/// The most copies of one daemon `develop` runs: `numprocesses` above is refused (each copy
/// is a process and two threads).
pub(crate) const MAX_COPIES: usize = 256;

/// `now + delay`, or as far as an `Instant` goes when a delay from `config.ini` (a
/// `graceful_timeout` or `max_age` of billions of years) would overflow it.
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(delay)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// The `rlimit_*` keys; 0 leaves the limit as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) address_space: u64,
    pub(crate) open_files: u64,
    pub(crate) stack: u64,
    pub(crate) file_size: u64,
}

/// One `[extra_daemon_NAME]` section, read.
#[derive(Debug, Clone)]
pub(crate) struct DaemonSpec {
    /// `NAME`, from the section name.
    pub(crate) name: String,
    /// `_cmd_and_args` split with shell quoting rules, or why it cannot be.
    pub(crate) argv: Result<Vec<String>, String>,
    pub(crate) numprocesses: usize,
    pub(crate) graceful_timeout: Duration,
    /// 0: no limit.
    pub(crate) max_age: Duration,
    pub(crate) limits: Limits,
}

/// The daemons of a plugin, in file order.
pub(crate) fn specs(config: &PluginConfig) -> Vec<DaemonSpec> {
    let mut out = Vec::new();
    for (section, keys) in &config.sections {
        let Some(name) = section.strip_prefix("extra_daemon_") else {
            continue;
        };
        let number = |key: &str| -> u64 {
            keys.get(key)
                .and_then(|s| s.value.trim().parse().ok())
                .unwrap_or(0)
        };
        let command = keys.get("_cmd_and_args").map_or("", |s| s.value.as_str());
        let mut argv = match shlex::split(command) {
            Some(argv) if !argv.is_empty() => Ok(argv),
            Some(_) => Err(format!("`[{section}]` has no `_cmd_and_args`")),
            None => Err(format!(
                "`_cmd_and_args` of `[{section}]` has an unclosed quote or a trailing `\\`"
            )),
        };
        // The schema fills `numprocesses` (default 0); a negative one, which MetWork's
        // `to_int` keeps, runs no copy, as MetWork's `range` does.
        let mut numprocesses = keys
            .get("numprocesses")
            .and_then(|s| s.value.trim().parse().ok())
            .unwrap_or(0);
        if numprocesses > MAX_COPIES {
            argv = Err(format!(
                "`numprocesses = {numprocesses}` of `[{section}]` is above the {MAX_COPIES} \
                 copies `mfplug develop` runs"
            ));
            numprocesses = 1;
        }
        out.push(DaemonSpec {
            name: name.to_owned(),
            argv,
            numprocesses,
            graceful_timeout: Duration::from_secs(
                keys.get("graceful_timeout")
                    .and_then(|s| s.value.trim().parse().ok())
                    .unwrap_or(10),
            ),
            max_age: Duration::from_secs(number("max_age")),
            limits: Limits {
                address_space: number("rlimit_as"),
                open_files: number("rlimit_nofile"),
                stack: number("rlimit_stack"),
                file_size: number("rlimit_fsize"),
            },
        });
    }
    out
}

/// What the supervisor tells the event loop: a child it started has exited.
#[derive(Debug)]
pub(crate) struct Exited {
    pub(crate) serial: u64,
    pub(crate) status: ExitStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Restart,
    Stop,
}

/// The process group of one child, which the supervisor signals (never a single pid), and
/// only while its leader is not reaped: the leader's waiter thread reaps it under the same
/// lock. Once the leader is reaped and its group empty the kernel may give the id to a new
/// process; by then no signal goes to it.
#[derive(Debug, Clone)]
struct Group {
    pgid: i32,
    reaped: Arc<Mutex<bool>>,
    /// What was sent, to whom: the tests check that nothing goes to a reaped group.
    #[cfg(test)]
    sent: Arc<Mutex<Vec<(i32, Signal)>>>,
}

impl Group {
    /// Sends `signal` to the group unless its leader is reaped; whether it was sent.
    fn signal(&self, signal: Signal) -> bool {
        let reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        if *reaped {
            return false;
        }
        let _ = killpg(Pid::from_raw(self.pgid), signal);
        #[cfg(test)]
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.pgid, signal));
        true
    }

    /// Runs `reap`, which reaps the leader, and marks the group so that it is never
    /// signalled again; no signal can go to it meanwhile.
    fn reap<T>(&self, reap: impl FnOnce() -> T) -> T {
        let mut reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        let out = reap();
        *reaped = true;
        out
    }
}

#[derive(Debug)]
enum State {
    /// Not running, and not to be started until asked.
    Idle,
    Running {
        group: Group,
        serial: u64,
        started: Instant,
    },
    /// SIGTERM sent to the group; SIGKILL at `kill_at` unless the leader exits first.
    Stopping {
        group: Group,
        serial: u64,
        kill_at: Instant,
        killed: bool,
        then: Then,
    },
    /// Died; started again at `until`.
    Waiting { until: Instant },
    /// Died too often, or cannot be started: left alone until the next change.
    Held,
}

#[derive(Debug)]
struct Instance {
    spec: usize,
    /// 1-based, as in the `[NAME:N]` prefix.
    copy: usize,
    state: State,
    backoff: Backoff,
}

/// The restart policy of one copy after it dies: the delay doubles at each quick exit (up to
/// [`BACKOFF_MAX`]), starts over after a run of [`STABLE_AFTER`], and after
/// [`MAX_QUICK_EXITS`] quick exits in a row the copy is held. Pure: the times are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    delay: Duration,
    quick_exits: u32,
}

/// What to do with a copy that died, as [`Backoff::exited`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterExit {
    /// Start it again after `delay`, at `at`.
    Restart { delay: Duration, at: Instant },
    /// Hold it: it died this many times in a row within [`STABLE_AFTER`] of starting.
    Hold { quick_exits: u32 },
}

impl Backoff {
    /// A fresh policy: the next restart comes after [`BACKOFF_START`].
    fn new() -> Backoff {
        Backoff {
            delay: BACKOFF_START,
            quick_exits: 0,
        }
    }

    /// The copy started at `started` died at `now`.
    fn exited(&mut self, started: Instant, now: Instant) -> AfterExit {
        if now.saturating_duration_since(started) >= STABLE_AFTER {
            *self = Backoff::new();
        } else {
            self.quick_exits += 1;
        }
        if self.quick_exits >= MAX_QUICK_EXITS {
            return AfterExit::Hold {
                quick_exits: self.quick_exits,
            };
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        AfterExit::Restart {
            delay,
            at: later(now, delay),
        }
    }
}

/// The running daemons of one plugin.
pub(crate) struct Supervisor<E> {
    plugin: String,
    dir: PathBuf,
    log_dir: PathBuf,
    env: BTreeMap<String, String>,
    specs: Vec<DaemonSpec>,
    instances: Vec<Instance>,
    events: Sender<E>,
    wrap: fn(Exited) -> E,
    next_serial: u64,
    /// Restarts after a daemon died or aged out (not those after a change).
    pub(crate) restarts: u64,
    /// Every signal sent to a group, shared with the groups.
    #[cfg(test)]
    sent: Arc<Mutex<Vec<(i32, Signal)>>>,
}

impl<E: Send + 'static> Supervisor<E> {
    pub(crate) fn new(
        plugin: &str,
        dir: &Path,
        log_dir: &Path,
        events: Sender<E>,
        wrap: fn(Exited) -> E,
    ) -> Supervisor<E> {
        Supervisor {
            plugin: plugin.to_owned(),
            dir: dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            env: BTreeMap::new(),
            specs: Vec::new(),
            instances: Vec::new(),
            events,
            wrap,
            next_serial: 0,
            restarts: 0,
            #[cfg(test)]
            sent: Arc::default(),
        }
    }

    /// Replaces the daemons to run and their env; only when nothing runs.
    pub(crate) fn set(&mut self, specs: Vec<DaemonSpec>, env: BTreeMap<String, String>) {
        debug_assert!(self.is_idle());
        self.instances = specs
            .iter()
            .enumerate()
            .flat_map(|(spec, s)| {
                (1..=s.numprocesses).map(move |copy| Instance {
                    spec,
                    copy,
                    state: State::Idle,
                    backoff: Backoff::new(),
                })
            })
            .collect();
        self.specs = specs;
        self.env = env;
    }

    /// How many copies are to run.
    pub(crate) fn total(&self) -> usize {
        self.instances.len()
    }

    /// How many copies run now.
    pub(crate) fn up(&self) -> usize {
        self.instances
            .iter()
            .filter(|i| matches!(i.state, State::Running { .. }))
            .count()
    }

    /// Whether no process of ours is running or stopping.
    pub(crate) fn is_idle(&self) -> bool {
        self.instances.iter().all(|i| {
            !matches!(
                i.state,
                State::Running { .. } | State::Stopping { .. } | State::Waiting { .. }
            )
        })
    }

    /// Starts every copy that is not running (idle, waiting or held), with a fresh backoff.
    pub(crate) fn start_all(&mut self, now: Instant) {
        for index in 0..self.instances.len() {
            let instance = &mut self.instances[index];
            if matches!(
                instance.state,
                State::Idle | State::Waiting { .. } | State::Held
            ) {
                instance.backoff = Backoff::new();
                self.spawn(index, now);
            }
        }
    }

    /// Asks every copy to stop: SIGTERM to its group now, SIGKILL after its `graceful_timeout`.
    pub(crate) fn stop_all(&mut self, now: Instant) {
        for index in 0..self.instances.len() {
            self.stop(index, now, Then::Stop);
        }
    }

    /// SIGKILL to every group still there (a second Ctrl-C).
    pub(crate) fn kill_all(&mut self) {
        for instance in &mut self.instances {
            match &mut instance.state {
                State::Running { group, .. } | State::Stopping { group, .. } => {
                    group.signal(Signal::SIGKILL);
                }
                State::Waiting { .. } => instance.state = State::Idle,
                _ => {}
            }
        }
    }

    fn stop(&mut self, index: usize, now: Instant, then: Then) {
        let graceful = self.specs[self.instances[index].spec].graceful_timeout;
        let instance = &mut self.instances[index];
        match &mut instance.state {
            State::Running { group, serial, .. } => {
                group.signal(Signal::SIGTERM);
                instance.state = State::Stopping {
                    group: group.clone(),
                    serial: *serial,
                    kill_at: later(now, graceful),
                    killed: false,
                    then,
                };
            }
            State::Stopping { then: old, .. } => *old = then,
            State::Waiting { .. } | State::Held if then == Then::Stop => {
                instance.state = State::Idle;
            }
            _ => {}
        }
    }

    /// The next time [`Supervisor::tick`] has something to do.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.instances
            .iter()
            .filter_map(|i| match i.state {
                State::Stopping {
                    kill_at,
                    killed: false,
                    ..
                } => Some(kill_at),
                State::Waiting { until } => Some(until),
                State::Running { started, .. } => self.age_limit(i).map(|age| later(started, age)),
                _ => None,
            })
            .min()
    }

    /// When a copy is restarted for its age: `max_age`, staggered over the copies so that
    /// they do not all restart at once.
    fn age_limit(&self, instance: &Instance) -> Option<Duration> {
        let spec = &self.specs[instance.spec];
        if spec.max_age.is_zero() {
            return None;
        }
        // Both counts are at most `MAX_COPIES`: they fit a u32.
        let copies = u32::try_from(spec.numprocesses).unwrap_or(u32::MAX);
        let copy = u32::try_from(instance.copy).unwrap_or(u32::MAX);
        let stagger = spec.max_age / copies.saturating_mul(2).max(1);
        Some(
            spec.max_age
                .saturating_add(stagger.saturating_mul(copy.saturating_sub(1))),
        )
    }

    /// Does what is due at `now`: SIGKILL after a grace, a restart after a backoff or for age.
    pub(crate) fn tick(&mut self, now: Instant) {
        for index in 0..self.instances.len() {
            let age_limit = self.age_limit(&self.instances[index]);
            let label = self.label(index);
            let instance = &mut self.instances[index];
            match &mut instance.state {
                State::Stopping {
                    group,
                    kill_at,
                    killed: killed @ false,
                    ..
                } if now >= *kill_at => {
                    ui::with_live_cleared(|| {
                        ui::warn(format!(
                            "`{label}` did not stop within its `graceful_timeout`: killed"
                        ))
                    });
                    group.signal(Signal::SIGKILL);
                    *killed = true;
                }
                State::Waiting { until } if now >= *until => {
                    self.restarts += 1;
                    self.spawn(index, now);
                }
                State::Running { started, .. }
                    if age_limit.is_some_and(|age| now >= later(*started, age)) =>
                {
                    ui::with_live_cleared(|| {
                        ui::status("Restarting", format!("`{label}`: older than `max_age`"))
                    });
                    self.restarts += 1;
                    self.stop(index, now, Then::Restart);
                }
                _ => {}
            }
        }
    }

    /// A child has exited: a stop is complete, or a daemon died and waits for its backoff.
    pub(crate) fn exited(&mut self, exited: &Exited, now: Instant) {
        let Some(index) = self.instances.iter().position(|i| match i.state {
            State::Running { serial, .. } | State::Stopping { serial, .. } => {
                serial == exited.serial
            }
            _ => false,
        }) else {
            return;
        };
        let label = self.label(index);
        let instance = &mut self.instances[index];
        match instance.state {
            // What the leader left in its group is killed already (by its waiter thread).
            State::Stopping { then, .. } => {
                instance.state = State::Idle;
                if then == Then::Restart {
                    self.spawn(index, now);
                }
            }
            State::Running { started, .. } => {
                let how = describe(exited.status);
                match instance.backoff.exited(started, now) {
                    AfterExit::Hold { quick_exits } => {
                        instance.state = State::Held;
                        ui::with_live_cleared(|| {
                            ui::print_error(
                                &DevelopError::Held {
                                    label: label.to_owned(),
                                    how,
                                    quick_exits,
                                    stable_after: STABLE_AFTER.as_secs(),
                                }
                                .into(),
                            )
                        });
                    }
                    AfterExit::Restart { delay, at } => {
                        instance.state = State::Waiting { until: at };
                        ui::with_live_cleared(|| {
                            ui::warn(format!(
                                "`{label}` {how}: restarting it in {:.1} s",
                                delay.as_secs_f64()
                            ))
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// `NAME:N`, as in the output prefix.
    fn label(&self, index: usize) -> String {
        let instance = &self.instances[index];
        format!("{}:{}", self.specs[instance.spec].name, instance.copy)
    }

    fn log_path(&self, spec: &DaemonSpec) -> PathBuf {
        self.log_dir
            .join(format!("extra_{}_{}.log", self.plugin, spec.name))
    }

    /// Starts copy `index` at `now`: its output relayed, its exit watched; a failure holds
    /// that copy, and says why.
    fn spawn(&mut self, index: usize, now: Instant) {
        let label = self.label(index);
        let spec = &self.specs[self.instances[index].spec];
        let mut child = match self.start_copy(spec, &label) {
            Ok(child) => child,
            Err(e) => {
                ui::with_live_cleared(|| ui::print_error(&e));
                self.instances[index].state = State::Held;
                return;
            }
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let log = self.log_path(spec);
        let prefix = format!("[{label}]");
        if let Some(out) = child.stdout.take() {
            relay(out, prefix.clone(), log.clone(), false);
        }
        if let Some(err) = child.stderr.take() {
            relay(err, prefix, log, true);
        }
        let group = Group {
            pgid: child.id() as i32,
            reaped: Arc::new(Mutex::new(false)),
            #[cfg(test)]
            sent: self.sent.clone(),
        };
        let (events, wrap) = (self.events.clone(), self.wrap);
        if let Err(e) = wait_for_exit(child, group.clone(), move |status| {
            let _ = events.send(wrap(Exited { serial, status }));
        }) {
            ui::with_live_cleared(|| ui::warn(format!("cannot watch `{label}` for its exit: {e}")));
        }
        self.instances[index].state = State::Running {
            group,
            serial,
            started: now,
        };
    }

    /// Spawns one copy of `spec`, or says why it cannot be, with a hint.
    fn start_copy(&self, spec: &DaemonSpec, label: &str) -> anyhow::Result<std::process::Child> {
        let argv = match &spec.argv {
            Ok(argv) => argv,
            Err(why) => {
                return Err(DevelopError::BadCommand {
                    label: label.to_owned(),
                    why: why.to_string(),
                }
                .into())
            }
        };
        start(argv, spec.limits, &self.env, &self.dir).map_err(|e| {
            DevelopError::Start {
                label: label.to_owned(),
                program: argv.first().cloned().unwrap_or_default(),
                source: e,
            }
            .into()
        })
    }
}

/// Starts the thread that waits for `child`, the leader of `group`: once it has exited, and
/// before it is reaped (its zombie keeps the group's id from being reused), what it left in
/// its group is killed; then it is reaped, and `exited` told how it ended.
fn wait_for_exit(
    mut child: std::process::Child,
    group: Group,
    exited: impl FnOnce(ExitStatus) + Send + 'static,
) -> std::io::Result<()> {
    let pid = Pid::from_raw(group.pgid);
    std::thread::Builder::new()
        .name(format!("wait-{pid}"))
        .spawn(move || {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            let seen = loop {
                match waitid(Id::Pid(pid), flags) {
                    Err(Errno::EINTR) => continue,
                    seen => break seen,
                }
            };
            if seen.is_ok() {
                group.signal(Signal::SIGKILL);
            }
            if let Ok(status) = group.reap(|| child.wait()) {
                exited(status);
            }
        })
        .map(drop)
}

/// How a child ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => {
            let name =
                Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
            format!("was killed by {name}")
        }
        _ => format!("ended ({status})"),
    }
}

/// The most of a daemon's output held before it is passed on: a longer line (a binary blob,
/// a `\r` progress bar, anything without a newline) goes out in pieces of this size, each on
/// a line of its own, so that memory stays bounded whatever the daemon writes.
pub(crate) const MAX_CHUNK: usize = 64 * 1024;

/// Copies a child's output, line by line, to the terminal after `prefix` and to the log; a
/// line longer than [`MAX_CHUNK`] is passed on in pieces. The log gets the bytes as written
/// (the terminal a lossy UTF-8 reading of them).
fn relay(pipe: impl Read + Send + 'static, prefix: String, log: PathBuf, to_stderr: bool) {
    let _ = std::thread::Builder::new()
        .name(format!("relay {prefix}"))
        .spawn(move || {
            let mut file = fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log);
            if let Err(e) = &file {
                ui::with_live_cleared(|| ui::warn(format!("{e}: not logging {prefix}")));
            }
            let mut reader = BufReader::with_capacity(MAX_CHUNK, pipe);
            let mut buf: Vec<u8> = Vec::with_capacity(MAX_CHUNK);
            // The start of a character cut at the end of the previous piece.
            let mut carry: Vec<u8> = Vec::new();
            let mut record: Vec<u8> = Vec::with_capacity(MAX_CHUNK + prefix.len() + 2);
            loop {
                buf.clear();
                buf.append(&mut carry);
                let room = MAX_CHUNK.saturating_sub(buf.len()).max(1) as u64;
                let ended = match (&mut reader).take(room).read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => true,
                    Ok(_) => false,
                };
                if buf.is_empty() {
                    break;
                }
                if !ended && buf.len() >= MAX_CHUNK && buf.last() != Some(&b'\n') {
                    carry = cut_character(&mut buf);
                }
                let mut end = buf.len();
                while end > 0 && matches!(buf.get(end - 1), Some(b'\n' | b'\r')) {
                    end -= 1;
                }
                let line = buf.get(..end).unwrap_or_default();
                ui::child_line(&prefix, &String::from_utf8_lossy(line), to_stderr);
                if let Ok(file) = &mut file {
                    // One write per line: with O_APPEND, stdout's and stderr's lines do not mix.
                    record.clear();
                    record.extend_from_slice(prefix.as_bytes());
                    record.push(b' ');
                    record.extend_from_slice(line);
                    record.push(b'\n');
                    let _ = file.write_all(&record);
                }
                if ended {
                    break;
                }
            }
        });
}

/// Takes off the end of `piece` the first bytes of a UTF-8 character that the piece's size
/// cut, and gives them (to start the next piece); nothing when the piece ends on a character
/// boundary or is not UTF-8 there.
fn cut_character(piece: &mut Vec<u8>) -> Vec<u8> {
    let len = piece.len();
    // The last byte that starts a character, among the last four.
    let Some(start) = (len.saturating_sub(4)..len)
        .rev()
        .find(|&i| piece.get(i).is_some_and(|b| b & 0xC0 != 0x80))
    else {
        return Vec::new();
    };
    match piece.get(start..).map(std::str::from_utf8) {
        Some(Err(e)) if e.error_len().is_none() && start > 0 => piece.split_off(start),
        _ => Vec::new(),
    }
}

/// Spawns one copy: its own process group, the plugin env, the plugin dir as current dir,
/// default signal dispositions and an empty signal mask, and its rlimits.
///
/// Without rlimits no code runs between fork and exec, so std can use `posix_spawn` (a vfork,
/// with the process group, the mask and SIGPIPE's default set by attributes) instead of
/// `fork`, which copies mfplug's page tables: that is most of a restart's own cost. SIGTERM,
/// SIGINT and SIGHUP need no reset there: mfplug catches them, and exec resets caught signals
/// to their default. std only uses `posix_spawn` for a program given by path when the env's
/// `PATH` differs from ours, hence [`find_program`].
fn start(
    argv: &[String],
    limits: Limits,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> std::io::Result<std::process::Child> {
    let Some((name, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no command",
        ));
    };
    let program = find_program(name, env.get("PATH").map(String::as_str), dir)?;
    let mut command = Command::new(program);
    command
        .arg0(name)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if limits != Limits::default() {
        set_limits(&mut command, limits);
    }
    command.spawn()
}

/// The program `name` as the plugin env's `PATH` finds it (a name with a `/` is taken as it
/// is, relative to the plugin dir), as `execvp` would.
fn find_program(name: &str, path: Option<&str>, dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    if name.contains('/') {
        return Ok(dir.join(name));
    }
    let mut denied = false;
    for entry in path.unwrap_or("/usr/bin:/bin").split(':') {
        let base = if entry.is_empty() {
            dir
        } else {
            Path::new(entry)
        };
        let candidate = dir.join(base).join(name);
        if let Ok(meta) = fs_err::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            denied |= meta.is_file();
        }
    }
    Err(if denied {
        std::io::ErrorKind::PermissionDenied.into()
    } else {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
    })
}

/// Applies the non-zero rlimits in the child, as both soft and hard limits; the signal
/// dispositions and mask are reset there too, since std does not when it forks.
fn set_limits(command: &mut Command, limits: Limits) {
    let rlimits = [
        (libc::RLIMIT_AS, limits.address_space),
        (libc::RLIMIT_NOFILE, limits.open_files),
        (libc::RLIMIT_STACK, limits.stack),
        (libc::RLIMIT_FSIZE, limits.file_size),
    ];
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it calls setrlimit, signal, sigemptyset and
    // sigprocmask through libc, allocates nothing, takes no lock, and only reads the copied
    // `rlimits`.
    unsafe {
        command.pre_exec(move || {
            for (resource, value) in rlimits {
                if value > 0 {
                    let limit = libc::rlimit {
                        rlim_cur: value as libc::rlim_t,
                        rlim_max: value as libc::rlim_t,
                    };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGPIPE, libc::SIGHUP] {
                libc::signal(signal, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real children the test drives, as watchexec's `testchild`: each daemon is
    /// `sh -c SCRIPT`, run in a temp dir given to it as `$CTL`, where it writes what it does
    /// and reads what it is told; the supervisor's clock is the one the test hands it.
    struct Fake {
        ctl: tempfile::TempDir,
        sup: Supervisor<Exited>,
        exits: std::sync::mpsc::Receiver<Exited>,
    }

    /// How long a test waits for a real child to do something.
    const PATIENCE: Duration = Duration::from_secs(4);

    impl Fake {
        /// A supervisor of one daemon `fake`: `numprocesses` copies of `sh -c script`.
        fn new(script: &str, numprocesses: usize, graceful: Duration) -> Fake {
            let ctl = tempfile::tempdir().unwrap();
            let log_dir = ctl.path().join("log");
            fs_err::create_dir(&log_dir).unwrap();
            let (tx, exits) = std::sync::mpsc::channel();
            let mut sup = Supervisor::new("plugin", ctl.path(), &log_dir, tx, |e| e);
            let spec = DaemonSpec {
                name: "fake".to_owned(),
                argv: Ok(vec!["sh".into(), "-c".into(), script.into()]),
                numprocesses,
                graceful_timeout: graceful,
                max_age: Duration::ZERO,
                limits: Limits::default(),
            };
            let env = BTreeMap::from([
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("CTL".to_owned(), ctl.path().display().to_string()),
            ]);
            sup.set(vec![spec], env);
            Fake { ctl, sup, exits }
        }

        /// `new`, with every copy started at the time it returns (the test's clock).
        fn started(script: &str, numprocesses: usize, graceful: Duration) -> (Fake, Instant) {
            let mut fake = Fake::new(script, numprocesses, graceful);
            let now = Instant::now();
            fake.sup.start_all(now);
            (fake, now)
        }

        /// The next exit a waiter thread reports.
        fn next_exit(&self) -> Exited {
            self.exits.recv_timeout(PATIENCE).expect("a child exits")
        }

        /// The lines of `$CTL/NAME` once it has `n` complete ones.
        fn lines(&self, name: &str, n: usize) -> Vec<String> {
            let path = self.ctl.path().join(name);
            let until = Instant::now() + PATIENCE;
            loop {
                let text = fs_err::read_to_string(&path).unwrap_or_default();
                if text.ends_with('\n') && text.lines().count() >= n {
                    return text.lines().map(str::to_owned).collect();
                }
                assert!(Instant::now() < until, "{name}: {n} lines, got {text:?}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        /// The pids the copies wrote, one a line, in `$CTL/NAME`.
        fn pids(&self, name: &str, n: usize) -> Vec<i32> {
            self.lines(name, n)
                .iter()
                .map(|l| l.parse().unwrap())
                .collect()
        }

        /// Every signal sent so far.
        fn sent(&self) -> Vec<(i32, Signal)> {
            self.sup.sent.lock().unwrap().clone()
        }
    }

    /// Whether `pid` runs (a zombie does not).
    fn alive(pid: i32) -> bool {
        fs_err::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.starts_with(" Z"))
        })
    }

    #[test]
    fn a_dying_child_is_restarted_after_a_growing_backoff_then_held() {
        let script = "echo $$ >> \"$CTL/starts\"; exit 3";
        let (mut fake, mut now) = Fake::started(script, 1, Duration::from_secs(1));
        for (n, delay) in [500, 1000, 2000, 4000].into_iter().enumerate() {
            let exit = fake.next_exit();
            assert_eq!(exit.status.code(), Some(3));
            now += Duration::from_millis(10);
            fake.sup.exited(&exit, now);
            let restart_at = now + Duration::from_millis(delay);
            assert_eq!(fake.sup.deadline(), Some(restart_at));
            assert!(!fake.sup.is_idle());
            fake.sup.tick(restart_at - Duration::from_millis(1));
            assert!(matches!(fake.sup.instances[0].state, State::Waiting { .. }));
            assert_eq!(fake.sup.restarts, n as u64);
            now = restart_at;
            fake.sup.tick(now);
            assert_eq!(fake.sup.restarts, n as u64 + 1);
            assert_eq!(fake.sup.up(), 1);
        }
        // The fifth exit within STABLE_AFTER of its start: held, nothing left to do.
        let exit = fake.next_exit();
        fake.sup.exited(&exit, now + Duration::from_millis(10));
        assert!(matches!(fake.sup.instances[0].state, State::Held));
        assert_eq!(fake.sup.deadline(), None);
        assert!(fake.sup.is_idle());
        let pids = fake.pids("starts", 5);
        assert_eq!(pids.len(), 5);
        assert!(pids.iter().all(|&pid| !alive(pid)));
        // A change starts a held daemon again, with a fresh backoff.
        fake.sup.start_all(now);
        let exit = fake.next_exit();
        fake.sup.exited(&exit, now);
        assert_eq!(fake.sup.deadline(), Some(now + BACKOFF_START));
    }

    #[test]
    fn a_child_that_ignores_sigterm_gets_sigkill_after_graceful_timeout() {
        let script = "trap '' TERM; echo $$ > \"$CTL/pid\"; exec sleep 1000";
        let grace = Duration::from_secs(3);
        let (mut fake, t0) = Fake::started(script, 1, grace);
        let pid = fake.pids("pid", 1)[0];
        fake.sup.stop_all(t0);
        assert_eq!(fake.sent(), [(pid, Signal::SIGTERM)]);
        assert_eq!(fake.sup.deadline(), Some(t0 + grace));
        // It ignores the SIGTERM: no exit, however long the clock says it has been.
        assert!(fake.exits.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(alive(pid));
        fake.sup.tick(t0 + grace - Duration::from_millis(1));
        assert_eq!(fake.sent().len(), 1);
        fake.sup.tick(t0 + grace);
        assert_eq!(fake.sent()[1], (pid, Signal::SIGKILL));
        assert_eq!(fake.sup.deadline(), None);
        let exit = fake.next_exit();
        assert_eq!(exit.status.signal(), Some(libc::SIGKILL));
        fake.sup.exited(&exit, t0 + grace);
        assert!(fake.sup.is_idle());
        assert!(!alive(pid));
    }

    #[test]
    fn numprocesses_copies_run_each_in_its_own_group() {
        let script = "echo $$ >> \"$CTL/pids\"; exec sleep 1000";
        let (mut fake, now) = Fake::started(script, 3, Duration::from_secs(5));
        assert_eq!((fake.sup.up(), fake.sup.total()), (3, 3));
        let mut pids = fake.pids("pids", 3);
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 3);
        for &pid in &pids {
            let group = nix::unistd::getpgid(Some(Pid::from_raw(pid))).unwrap();
            assert_eq!(group.as_raw(), pid, "copy {pid} leads its own group");
        }
        let labels: Vec<_> = (0..3).map(|i| fake.sup.label(i)).collect();
        assert_eq!(labels, ["fake:1", "fake:2", "fake:3"]);
        fake.sup.stop_all(now);
        let mut termed: Vec<_> = fake.sent().iter().map(|&(pgid, _)| pgid).collect();
        termed.sort_unstable();
        assert_eq!(termed, pids);
        for _ in 0..3 {
            let exit = fake.next_exit();
            assert_eq!(exit.status.signal(), Some(libc::SIGTERM));
            fake.sup.exited(&exit, now);
        }
        assert!(fake.sup.is_idle());
    }

    #[test]
    fn a_reaped_child_s_group_is_never_signalled() {
        // The leader leaves a process in its group and exits: the waiter kills what is left
        // while the leader is a zombie, then reaps it.
        let script = "sleep 1000 & echo $! > \"$CTL/left\"; echo $$ > \"$CTL/pid\"; exit 0";
        let (mut fake, now) = Fake::started(script, 1, Duration::from_secs(5));
        let exit = fake.next_exit();
        let pid = fake.pids("pid", 1)[0];
        let left = fake.pids("left", 1)[0];
        assert_eq!(fake.sent(), [(pid, Signal::SIGKILL)]);
        let until = Instant::now() + PATIENCE;
        while alive(left) {
            assert!(Instant::now() < until, "what the leader left is killed");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The supervisor has not seen the exit yet (it is in the channel): it still takes the
        // copy for running, yet its stop and kill send nothing to the reaped group.
        assert_eq!(fake.sup.up(), 1);
        fake.sup.stop_all(now);
        fake.sup.kill_all();
        fake.sup.tick(now + Duration::from_secs(60));
        assert_eq!(fake.sent(), [(pid, Signal::SIGKILL)]);
        fake.sup.exited(&exit, now);
        assert!(fake.sup.is_idle());
        fake.sup.kill_all();
        assert_eq!(fake.sent(), [(pid, Signal::SIGKILL)]);
    }

    #[test]
    fn later_never_overflows() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(365 * 24 * 3600));
        assert!(later(now, Duration::from_secs(u64::MAX)) >= now);
    }

    /// The delays a copy that keeps dying within `run` of its start waits, on a clock the
    /// test moves: each start is at the previous restart time.
    fn delays_dying_after(run: Duration, exits: usize) -> Vec<AfterExit> {
        let mut backoff = Backoff::new();
        let mut started = Instant::now();
        (0..exits)
            .map(|_| {
                let after = backoff.exited(started, started + run);
                if let AfterExit::Restart { at, .. } = after {
                    started = at;
                }
                after
            })
            .collect()
    }

    #[test]
    fn backoff_doubles_at_each_quick_exit_then_holds() {
        let after = delays_dying_after(Duration::from_millis(10), 6);
        let delays: Vec<_> = after
            .iter()
            .map(|a| match a {
                AfterExit::Restart { delay, .. } => Some(delay.as_millis()),
                AfterExit::Hold { .. } => None,
            })
            .collect();
        assert_eq!(
            delays,
            [Some(500), Some(1000), Some(2000), Some(4000), None, None]
        );
        assert_eq!(after[4], AfterExit::Hold { quick_exits: 5 });
    }

    #[test]
    fn backoff_restarts_at_exit_time_plus_delay() {
        let mut backoff = Backoff::new();
        let start = Instant::now();
        let died = start + Duration::from_secs(1);
        assert_eq!(
            backoff.exited(start, died),
            AfterExit::Restart {
                delay: BACKOFF_START,
                at: died + BACKOFF_START
            }
        );
    }

    #[test]
    fn backoff_stops_growing_at_its_max() {
        let mut backoff = Backoff::new();
        let start = Instant::now();
        for _ in 0..20 {
            backoff.exited(start, start + Duration::from_millis(1));
            // Never held: the count of quick exits is reset between the exits.
            backoff.quick_exits = 0;
        }
        assert_eq!(backoff.delay, BACKOFF_MAX);
        assert!(matches!(
            backoff.exited(start, start),
            AfterExit::Restart {
                delay: BACKOFF_MAX,
                ..
            }
        ));
    }

    #[test]
    fn a_stable_run_starts_the_backoff_over() {
        let mut backoff = Backoff::new();
        let start = Instant::now();
        for _ in 0..4 {
            backoff.exited(start, start);
        }
        assert_eq!(backoff.quick_exits, 4);
        // Up STABLE_AFTER: the fifth exit is not quick, and its delay is the first one.
        assert_eq!(
            backoff.exited(start, start + STABLE_AFTER),
            AfterExit::Restart {
                delay: BACKOFF_START,
                at: start + STABLE_AFTER + BACKOFF_START
            }
        );
        assert_eq!(backoff.quick_exits, 0);
        // Just short of it, the exit is quick.
        assert_eq!(
            delays_dying_after(STABLE_AFTER - Duration::from_millis(1), 5)[4],
            AfterExit::Hold { quick_exits: 5 }
        );
    }

    #[test]
    fn a_piece_cut_inside_a_character_gives_its_start_to_the_next() {
        for (text, kept, carried) in [
            (&b"abc"[..], &b"abc"[..], &b""[..]),
            ("ab\u{e9}".as_bytes(), "ab\u{e9}".as_bytes(), &b""[..]),
            (b"ab\xc3", b"ab", b"\xc3"),
            (b"a\xe2\x82", b"a", b"\xe2\x82"),
            (b"a\xf0\x9f\x98", b"a", b"\xf0\x9f\x98"),
            (b"\xe2\x82\xac\xe2", b"\xe2\x82\xac", b"\xe2"),
            // Not UTF-8, or only a piece of a character: left as it is.
            (b"a\xff\xfe", b"a\xff\xfe", b""),
            (b"\xc3", b"\xc3", b""),
            (b"", b"", b""),
        ] {
            let mut piece = text.to_vec();
            let carry = cut_character(&mut piece);
            assert_eq!((&piece[..], &carry[..]), (kept, carried), "{text:?}");
        }
    }
}
