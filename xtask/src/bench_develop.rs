//! `cargo xtask bench develop`: how fast `mfplug develop` restarts a daemon after a change,
//! against `watchexec --restart` with the same debounce in the same run, and how much CPU it
//! uses while idle with 20 000 files watched.
//!
//! Latency is the time from a file write to the first line of the restarted daemon, 50 trials,
//! median and p95. The peer is `watchexec`, looked for in the `:`-separated dirs of
//! `$MFPLUG_BENCH_PEERS`, then on `PATH` (`cargo install watchexec-cli`); without it, its
//! figures are skipped with a message. Idle CPU is utime + stime from `/proc/PID/stat` over
//! 30 s.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const TRIALS: usize = 50;
const DEBOUNCE_MS: u64 = 50;
const IDLE_FILES: usize = 20_000;
const IDLE_SECONDS: u64 = 30;
/// What the daemon prints first: the marker the latency is measured to.
const READY: &str = "ready";
/// The daemon: prints one line, then waits in the same process (SIGTERM ends it).
const DAEMON: &str = "echo ready $$; exec sleep 100000";

/// A watcher under test, its stdout lines timestamped as they arrive.
struct Running {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Running {
    fn spawn(mut command: Command) -> Result<Running> {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = command.spawn().context("cannot start the watcher")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Running { child, lines })
    }

    /// The time of the next `ready` line.
    fn next_ready(&self, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .context("no `ready` line from the daemon in time")?;
            if line.contains(READY) {
                return Ok(at);
            }
        }
    }

    /// Drops the lines already there.
    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Writes a plugin dir with one daemon and `files` more `.py` files, 100 a dir.
fn plugin(dir: &Path, files: usize) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(".layerapi2_label"), "plugin_bench@mfplug\n")?;
    std::fs::write(
        dir.join("config.ini"),
        format!(
            "{}\n[extra_daemon_main]\n_cmd_and_args = sh -c '{DAEMON}'\nnumprocesses = 1\n",
            crate::BENCH_GENERAL
        ),
    )?;
    std::fs::write(dir.join("app.py"), "print('hello')\n")?;
    for i in 0..files {
        let sub = dir.join(format!("pkg{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub)?;
        }
        std::fs::write(sub.join(format!("mod{i}.py")), format!("x = {i}\n"))?;
    }
    Ok(())
}

fn mfplug_command(mfplug: &Path, bench: &Path, plugin: &Path) -> Command {
    let mut command = Command::new(mfplug);
    command
        .env("MFPLUG_HOME", bench.join("home"))
        .env("NO_COLOR", "1")
        .args(["-q", "develop", "--debounce", &DEBOUNCE_MS.to_string()])
        .arg(plugin)
        .stderr(Stdio::null());
    command
}

fn watchexec_command(watchexec: &Path, plugin: &Path) -> Command {
    let mut command = Command::new(watchexec);
    command
        .current_dir(plugin)
        // `--shell=none`: the command is run as given, not through another shell. The bench
        // tree lives under `target/`, which the repository's `.gitignore` names: its ignore
        // files must not apply.
        .args(["--shell=none", "--restart", "--debounce"])
        .arg(format!("{DEBOUNCE_MS}ms"))
        .args([
            "--no-vcs-ignore",
            "--no-project-ignore",
            "--no-global-ignore",
        ])
        .args(["--exts", "py", "--", "sh", "-c", DAEMON])
        .stderr(Stdio::null());
    command
}

/// One trial: the time from a write in `plugin` to the daemon's next first line, in ms.
fn trial(running: &Running, plugin: &Path, n: usize) -> Result<f64> {
    running.drain();
    let written = Instant::now();
    std::fs::write(plugin.join("app.py"), format!("print({n})\n"))?;
    let ready = running.next_ready(Duration::from_secs(10))?;
    Ok(ready.duration_since(written).as_secs_f64() * 1000.0)
}

/// Latencies of each watcher, sorted. The watchers run side by side on their own plugin dirs
/// and take turns, so that a change of load on the machine (other builds) weighs on both
/// alike.
fn latencies(watchers: &[(&Running, &Path)]) -> Result<Vec<Vec<f64>>> {
    for (running, _) in watchers {
        running.next_ready(Duration::from_secs(30))?;
    }
    let mut out = vec![Vec::with_capacity(TRIALS); watchers.len()];
    for n in 0..TRIALS {
        for (i, (running, plugin)) in watchers.iter().enumerate() {
            // Quiet time so that each write starts a burst of its own.
            std::thread::sleep(Duration::from_millis(200));
            out[i].push(trial(running, plugin, n)?);
        }
    }
    for sorted in &mut out {
        sorted.sort_by(f64::total_cmp);
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `state` is field 3 of the whole line, so utime (14) and stime (15) are 11 and 12 here.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// The CPU share of one core that `pid` used over `IDLE_SECONDS` without a change, and the
/// clock ticks that makes.
fn idle_cpu(pid: u32) -> Result<(f64, u64)> {
    // Let the start settle: the initial walk and the daemon's start are not idle time.
    std::thread::sleep(Duration::from_secs(2));
    let before = cpu_ticks(pid)?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(IDLE_SECONDS));
    let ticks = cpu_ticks(pid)? - before;
    let share = ticks as f64 / ticks_per_second() / start.elapsed().as_secs_f64() * 100.0;
    Ok((share, ticks))
}

fn find_peer(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for var in ["MFPLUG_BENCH_PEERS", "PATH"] {
        if let Some(value) = std::env::var_os(var) {
            dirs.extend(std::env::split_paths(&value));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn report(name: &str, sorted: &[f64]) {
    eprintln!(
        "  {name:<10} median {:>7.1} ms   p95 {:>7.1} ms   (min {:.1}, max {:.1})",
        percentile(sorted, 0.5),
        percentile(sorted, 0.95),
        sorted[0],
        sorted[sorted.len() - 1]
    );
}

pub fn run(root: &Path, mfplug: &Path) -> Result<()> {
    let bench = root.join("target/bench/develop");
    std::fs::create_dir_all(&bench)?;
    let peer = find_peer("watchexec");

    eprintln!("==> develop: write-to-restart latency, {TRIALS} trials, debounce {DEBOUNCE_MS} ms");
    let ours_dir = bench.join("small-mfplug");
    plugin(&ours_dir, 0)?;
    let ours = Running::spawn(mfplug_command(mfplug, &bench, &ours_dir))?;
    let theirs_dir = bench.join("small-watchexec");
    let theirs = match &peer {
        Some(watchexec) => {
            plugin(&theirs_dir, 0)?;
            Some(Running::spawn(watchexec_command(watchexec, &theirs_dir))?)
        }
        None => {
            eprintln!(
                "  watchexec: not found on PATH nor in $MFPLUG_BENCH_PEERS: skipped \
                 (`cargo install watchexec-cli` installs it)"
            );
            None
        }
    };
    let mut watchers = vec![(&ours, ours_dir.as_path())];
    if let Some(theirs) = &theirs {
        watchers.push((theirs, theirs_dir.as_path()));
    }
    let figures = latencies(&watchers);
    ours.stop()?;
    if let Some(theirs) = theirs {
        theirs.stop()?;
    }
    let figures = figures?;
    report("mfplug", &figures[0]);
    if let Some(peer) = figures.get(1) {
        report("watchexec", peer);
        let ratio = percentile(&figures[0], 0.5) / percentile(peer, 0.5);
        eprintln!("  median ratio mfplug / watchexec: {ratio:.3} (target: at most 1)");
    }

    eprintln!("==> develop: idle CPU over {IDLE_SECONDS} s with {IDLE_FILES} files watched");
    let large = bench.join("large");
    plugin(&large, IDLE_FILES)?;
    let started = Instant::now();
    let running = Running::spawn(mfplug_command(mfplug, &bench, &large))?;
    running.next_ready(Duration::from_secs(60))?;
    eprintln!(
        "  mfplug     first daemon line {:.0} ms after start (links, walks, watches)",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let (ours_cpu, ticks) = idle_cpu(running.child.id())?;
    running.stop()?;
    eprintln!("  mfplug     idle CPU {ours_cpu:.3}% of a core ({ticks} ticks; target: under 0.5%)");
    if let Some(watchexec) = &peer {
        let running = Running::spawn(watchexec_command(watchexec, &large))?;
        running.next_ready(Duration::from_secs(60))?;
        let cpu = idle_cpu(running.child.id());
        running.stop()?;
        let (cpu, ticks) = cpu?;
        eprintln!("  watchexec  idle CPU {cpu:.3}% of a core ({ticks} ticks)");
    }
    if ours_cpu >= 0.5 {
        bail!("mfplug used {ours_cpu:.3}% of a core while idle: the target is under 0.5%");
    }
    Ok(())
}
