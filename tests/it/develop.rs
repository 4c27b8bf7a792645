//! `mfplug develop` (issue 8): the built binary runs as a child process on a temp plugin dir
//! whose daemons are small `sh` scripts that record each start (pid, time) in a file; the
//! tests poll that file and the output with timeouts, and check that the pids are gone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::mfplug_snapshot;
use crate::support::TestContext;

/// How long a test waits for something that should happen (generous: CI machines are busy).
const PATIENCE: Duration = Duration::from_secs(20);
/// How long a test waits to be sure that something does not happen.
const QUIET: Duration = Duration::from_millis(700);

/// A daemon recording `pid time` then sleeping in the same process.
const RECORDER: &str =
    "echo \"$$ $(date +%s%N)\" >> \"$STARTS\"\necho \"up $$\"\nexec sleep 1000\n";

fn plugin(ctx: &TestContext, daemons: &str) -> PathBuf {
    ctx.write("p/.layerapi2_label", "plugin_demo@mfplug\n");
    ctx.write(
        "p/config.ini",
        &format!("[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n{daemons}"),
    );
    ctx.write("p/recorder.sh", RECORDER);
    ctx.work.join("p")
}

/// An `[extra_daemon_NAME]` section; one process unless `extra` says how many (MetWork's
/// default is 0: not run).
fn daemon(name: &str, command: &str, extra: &str) -> String {
    let count = if extra.contains("numprocesses") {
        ""
    } else {
        "numprocesses = 1\n"
    };
    format!("[extra_daemon_{name}]\n_cmd_and_args = {command}\n{count}{extra}\n")
}

/// A running `mfplug develop`, its output in files; killed if a test fails before the end.
struct Develop {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    starts: PathBuf,
}

impl Develop {
    fn start(ctx: &TestContext, args: &[&str]) -> Develop {
        let err = ctx.root().join("develop.err");
        Develop::start_with(ctx, args, File::create(&err).unwrap().into())
    }

    /// `start`, with stderr where the test wants it.
    fn start_with(ctx: &TestContext, args: &[&str], stderr: Stdio) -> Develop {
        let root = ctx.root();
        let out = root.join("develop.out");
        let err = root.join("develop.err");
        let starts = root.join("starts");
        let child = ctx
            .command(["develop"])
            .args(args)
            .env("STARTS", &starts)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(stderr)
            .spawn()
            .expect("run mfplug develop");
        Develop {
            child,
            out,
            err,
            starts,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The recorded starts: (pid, time in ns).
    fn starts(&self) -> Vec<(i32, u128)> {
        std::fs::read_to_string(&self.starts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
            })
            .collect()
    }

    fn wait_starts(&self, n: usize) -> Vec<(i32, u128)> {
        let ok = wait_for(|| self.starts().len() >= n);
        assert!(
            ok,
            "expected {n} starts, got {:?}\nstderr:\n{}",
            self.starts(),
            self.stderr()
        );
        self.starts()
    }

    /// The causes of the restarts said so far (`Restarted ... after a change to `CAUSE``), in
    /// order.
    fn restarts(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains("Restarted"))
            .filter_map(|l| l.split_once("after a change to `"))
            .map(|(_, rest)| rest.trim_end().trim_end_matches('`').to_owned())
            .collect()
    }

    /// Waits for the `n`th restart to be said, and gives the causes.
    fn wait_restarts(&self, n: usize) -> Vec<String> {
        let ok = wait_for(|| self.restarts().len() >= n);
        assert!(
            ok,
            "expected {n} restarts, got {:?}\nstderr:\n{}",
            self.restarts(),
            self.stderr()
        );
        self.restarts()
    }

    fn wait_stderr(&self, needle: &str) {
        let ok = wait_for(|| self.stderr().contains(needle));
        assert!(ok, "expected `{needle}` in stderr:\n{}", self.stderr());
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mfplug did not exit\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the exit status.
    fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit()
    }
}

impl Drop for Develop {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Whether `pid` is a live process (a zombie left to a parent that does not reap is not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

fn all_gone(pids: &[i32]) -> bool {
    wait_for(|| pids.iter().all(|&p| !alive(p)))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_included_change_restarts_once_an_excluded_one_does_not() {
    let ctx = TestContext::new();
    let dir = plugin(
        &ctx,
        &daemon("rec", "sh {plugin_dir}/recorder.sh", "graceful_timeout = 5"),
    );
    // `-v` says each change that counts (`changed: PATH`), in the order of the events.
    let mut dev = Develop::start(&ctx, &["-v", "p", "--debounce", "50"]);
    let first = dev.wait_starts(1);
    dev.wait_stderr("Watching");

    write(&dir.join("notes.txt"), "not included");
    write(&dir.join("local/lib/x.py"), "excluded");
    write(&dir.join("sub/__pycache__/x.py"), "excluded");
    // A requirement that cannot be locked (no index here): said, and nothing restarted.
    write(
        &dir.join("python3_virtualenv_sources/requirements-to-freeze.txt"),
        "requests\n",
    );
    dev.wait_stderr("the daemons were not restarted: fix the requirements");

    // The events come in order: once the change to `code.py` is said and its restart done,
    // the ones before it were looked at, and none counted or restarted anything (no fixed
    // sleep to wait for what should not happen).
    write(&dir.join("code.py"), "print('hi')\n");
    assert_eq!(dev.wait_restarts(1), ["code.py"], "{}", dev.stderr());
    let starts = dev.wait_starts(2);
    let stderr = dev.stderr();
    // (A write is two events, a create and a modify: each path once.)
    let mut changed: Vec<&str> = stderr
        .lines()
        .filter_map(|l| {
            l.split_once("changed: `")
                .map(|(_, p)| p.trim_end_matches('`'))
        })
        .collect();
    changed.dedup();
    assert_eq!(changed, ["code.py"], "{stderr}");
    assert!(all_gone(&[first[0].0]), "the first daemon is still there");
    let up = format!("[rec:1] up {}", starts[1].0);
    assert!(wait_for(|| dev.stdout().contains(&up)), "{}", dev.stdout());
    // And nothing restarted it since: the next restart is the next change's.
    write(&dir.join("last.py"), "\n");
    assert_eq!(
        dev.wait_restarts(2),
        ["code.py", "last.py"],
        "{}",
        dev.stderr()
    );
    let starts = dev.wait_starts(3);
    assert_eq!(starts.len(), 3, "{}", dev.stderr());

    assert!(dev.stop().success(), "{}", dev.stderr());
    assert!(all_gone(&[starts[2].0]));
    let log = std::fs::read_to_string(ctx.home.join("log/extra_demo_rec.log")).unwrap();
    assert!(
        log.contains(&format!("[rec:1] up {}", starts[1].0)),
        "{log}"
    );
}

#[test]
fn a_burst_of_500_writes_gives_one_restart() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    // A debounce far above the time the burst takes, even on a busy machine.
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "1500"]);
    dev.wait_starts(1);
    dev.wait_stderr("Watching");
    for i in 0..500 {
        write(&dir.join(format!("burst{}.py", i % 20)), &i.to_string());
    }
    let causes = dev.wait_restarts(1);
    assert!(causes[0].starts_with("burst"), "{causes:?}");
    // The next restart is the next change's: the burst gave one.
    write(&dir.join("after.py"), "\n");
    let causes = dev.wait_restarts(2);
    assert_eq!(causes[1], "after.py", "{causes:?}");
    assert_eq!(dev.wait_starts(3).len(), 3, "{}", dev.stderr());
    assert!(dev.stop().success());
}

#[test]
fn a_file_in_a_new_subdirectory_is_seen() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "50"]);
    dev.wait_starts(1);
    dev.wait_stderr("Watching");
    // Written at once: the file may come before the new dirs' watches.
    write(&dir.join("new/deeper/module.py"), "x = 1\n");
    dev.wait_starts(2);
    dev.wait_stderr("after a change to `new/deeper/module.py`");
    // And later, through the watch of the new dir.
    write(&dir.join("new/deeper/other.py"), "y = 1\n");
    dev.wait_starts(3);
    assert!(dev.stop().success());
}

#[test]
fn a_daemon_that_ignores_sigterm_is_killed_after_graceful_timeout() {
    let ctx = TestContext::new();
    ctx.write("p/stubborn.sh", &format!("trap '' TERM\n{RECORDER}"));
    plugin(
        &ctx,
        &daemon("stubborn", "sh stubborn.sh", "graceful_timeout = 1"),
    );
    let mut dev = Develop::start(&ctx, &["p"]);
    let pid = dev.wait_starts(1)[0].0;
    let asked = Instant::now();
    let status = dev.stop();
    let took = asked.elapsed();
    assert!(status.success(), "{}", dev.stderr());
    assert!(took >= Duration::from_millis(900), "stopped after {took:?}");
    assert!(all_gone(&[pid]));
    assert!(dev
        .stderr()
        .contains("`stubborn:1` did not stop within its `graceful_timeout`: killed"));
}

#[test]
fn numprocesses_3_runs_three_and_rlimit_nofile_reaches_the_child() {
    let ctx = TestContext::new();
    ctx.write(
        "p/limits.sh",
        &format!(
            "grep 'Max open files' /proc/$$/limits\necho \"env $MFPLUG_CURRENT_PLUGIN_NAME\"\n\
             {RECORDER}"
        ),
    );
    plugin(
        &ctx,
        &daemon(
            "rec",
            "sh limits.sh",
            "numprocesses = 3\nrlimit_nofile = 123",
        ),
    );
    let mut dev = Develop::start(&ctx, &["p"]);
    let starts = dev.wait_starts(3);
    let pids: Vec<i32> = starts.iter().map(|s| s.0).collect();
    assert!(pids.iter().all(|&p| alive(p)));
    // Each copy leads its own process group, in the plugin env.
    for &pid in &pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(fields[2], pid.to_string(), "pgrp of {pid}");
    }
    assert!(wait_for(|| dev.stdout().matches("] env demo").count() == 3));
    let mut unique = pids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 3);
    assert!(wait_for(
        || dev.stdout().matches("Max open files").count() == 3
    ));
    for copy in 1..=3 {
        let line = dev
            .stdout()
            .lines()
            .find(|l| l.starts_with(&format!("[rec:{copy}] Max open files")))
            .map(str::to_owned)
            .unwrap_or_default();
        let numbers: Vec<&str> = line.split_whitespace().filter(|w| *w == "123").collect();
        assert_eq!(numbers.len(), 2, "soft and hard limits in `{line}`");
    }
    assert!(dev.stop().success());
    assert!(all_gone(&pids));
}

#[test]
fn a_crashing_daemon_is_restarted_with_growing_delays_then_held() {
    let ctx = TestContext::new();
    ctx.write(
        "p/crash.sh",
        "echo \"$$ $(date +%s%N)\" >> \"$STARTS\"\nexit 3\n",
    );
    plugin(&ctx, &daemon("crash", "sh crash.sh", ""));
    let mut dev = Develop::start(&ctx, &["p"]);
    dev.wait_stderr("held");
    let starts = dev.starts();
    assert_eq!(starts.len(), 5, "{}", dev.stderr());
    // The delays as said (exact, whatever the load), and as waited: each gap between two
    // starts is at least its delay (a busy machine only makes it longer).
    let stderr = dev.stderr();
    let said: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once("restarting it in ").map(|(_, d)| d))
        .collect();
    assert_eq!(said, ["0.5 s", "1.0 s", "2.0 s", "4.0 s"], "{stderr}");
    let gaps: Vec<u128> = starts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    for (gap, delay_ms) in gaps.iter().zip([500u128, 1000, 2000, 4000]) {
        assert!(*gap >= delay_ms * 1_000_000, "delays {gaps:?}");
    }
    assert!(dev.stderr().contains("`crash:1` exited with code 3"));
    std::thread::sleep(QUIET);
    assert_eq!(dev.starts().len(), 5, "held, not restarted");
    assert!(dev.stop().success());
}

#[test]
fn sigterm_and_sigint_leave_no_process_behind() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let ctx = TestContext::new();
        // A daemon with a child of its own in its group.
        ctx.write(
            "p/family.sh",
            "sleep 1000 &\necho \"$$ $(date +%s%N) $!\" >> \"$STARTS\"\nwait\n",
        );
        plugin(&ctx, &daemon("fam", "sh family.sh", "numprocesses = 2"));
        let mut dev = Develop::start(&ctx, &["p"]);
        dev.wait_starts(2);
        let text = std::fs::read_to_string(&dev.starts).unwrap();
        let pids: Vec<i32> = text
            .lines()
            .flat_map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                [parts[0].parse().unwrap(), parts[2].parse().unwrap()]
            })
            .collect();
        assert_eq!(pids.len(), 4);
        assert!(pids.iter().all(|&p| alive(p)));
        dev.signal(signal);
        let status = dev.wait_exit();
        assert!(status.success(), "{signal}: {}", dev.stderr());
        assert!(all_gone(&pids), "{signal}: processes left behind");
        assert!(dev.stderr().contains("the devlink"));
        assert!(ctx.home.join("plugins/demo").is_symlink());
    }
}

#[test]
fn no_watch_only_links() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    mfplug_snapshot!(ctx, ctx.cmd(["develop", "p", "--no-watch"]), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
          Linked `[HOME]/plugins/demo` -> `[TEMP_DIR]/work/p`
    ");
    let link = ctx.home.join("plugins/demo");
    assert_eq!(std::fs::read_link(&link).unwrap(), dir);
    assert!(!ctx.root().join("starts").exists());

    // A devlink to another dir is replaced.
    ctx.write("q/.layerapi2_label", "plugin_demo@mfplug\n");
    ctx.write("q/config.ini", "[general]\n_version = 2\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    ctx.cmd(["develop", "q", "--no-watch"]).assert().success();
    assert_eq!(std::fs::read_link(&link).unwrap(), ctx.work.join("q"));
}

#[test]
fn an_installed_plugin_is_not_replaced_without_force() {
    let ctx = TestContext::new();
    plugin(&ctx, "");
    let installed = ctx.home.join("plugins/demo");
    std::fs::create_dir_all(&installed).unwrap();
    std::fs::write(installed.join("config.ini"), "[general]\n").unwrap();
    mfplug_snapshot!(ctx, ctx.cmd(["develop", "p", "--no-watch"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `demo` is installed in `[HOME]/plugins/demo` and is not a devlink

    hint: `--force` moves the installed plugin aside (to `displaced/` in the home) and links this dir in its place
    ");
    assert!(!installed.is_symlink());

    let output = ctx
        .cmd(["develop", "p", "--no-watch", "--force"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(installed.is_symlink());
    let displaced: Vec<_> = std::fs::read_dir(ctx.home.join("displaced"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(displaced.len(), 1);
    assert!(
        displaced[0].join("config.ini").is_file(),
        "kept, not deleted"
    );
}

#[test]
fn a_malformed_autorestart_includes_line_is_reported_and_the_others_apply() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    ctx.write("p/.autorestart_includes", "*.txt\n[z-a]\n");
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "50"]);
    dev.wait_starts(1);
    dev.wait_stderr("p/.autorestart_includes`, line 2");
    write(&dir.join("a.txt"), "included by line 1");
    dev.wait_starts(2);
    // Fixing the file reloads it: `*.md` now counts (and the file itself no longer does).
    write(&dir.join(".autorestart_includes"), "*.md\n");
    write(&dir.join("b.md"), "included now");
    dev.wait_starts(3);
    dev.wait_stderr("after a change to `b.md`");
    assert!(dev.stop().success());
}

#[test]
fn a_missing_command_is_named_and_the_other_daemons_run() {
    let ctx = TestContext::new();
    plugin(
        &ctx,
        &format!(
            "{}{}{}",
            daemon("ghost", "no-such-command-for-mfplug --flag", ""),
            daemon("quote", "sh -c 'echo unclosed", ""),
            daemon("rec", "sh recorder.sh", "")
        ),
    );
    let mut dev = Develop::start(&ctx, &["p"]);
    let pid = dev.wait_starts(1)[0].0;
    dev.wait_stderr("cannot start `ghost:1` (`no-such-command-for-mfplug`)");
    dev.wait_stderr(
        "cannot start `quote:1`: `_cmd_and_args` of `[extra_daemon_quote]` has an unclosed quote",
    );
    assert!(alive(pid));
    assert!(dev.stop().success());
}

#[test]
fn without_daemons_it_links_watches_and_says_so() {
    let ctx = TestContext::new();
    plugin(&ctx, "");
    let mut dev = Develop::start(&ctx, &["p"]);
    dev.wait_stderr("Nothing to run");
    dev.wait_stderr("Watching");
    assert!(ctx.home.join("plugins/demo").is_symlink());
    assert!(dev.stop().success());
}

#[test]
fn removing_the_plugin_dir_stops_and_says_why() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    let mut dev = Develop::start(&ctx, &["p"]);
    let pid = dev.wait_starts(1)[0].0;
    dev.wait_stderr("Watching");
    std::fs::remove_dir_all(&dir).unwrap();
    let status = dev.wait_exit();
    assert_eq!(status.code(), Some(1));
    assert!(
        dev.stderr().contains("was removed: stopping"),
        "{}",
        dev.stderr()
    );
    assert!(all_gone(&[pid]));
}

#[test]
fn a_daemon_older_than_max_age_is_restarted() {
    let ctx = TestContext::new();
    plugin(&ctx, &daemon("old", "sh recorder.sh", "max_age = 1"));
    let mut dev = Develop::start(&ctx, &["p"]);
    let starts = dev.wait_starts(2);
    assert!(all_gone(&[starts[0].0]));
    assert!(dev.stderr().contains("`old:1`: older than `max_age`"));
    assert!(dev.stop().success());
}

#[test]
fn a_broken_config_keeps_the_daemons_until_it_is_fixed() {
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", ""));
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "50"]);
    let pid = dev.wait_starts(1)[0].0;
    dev.wait_stderr("Watching");
    let good = std::fs::read_to_string(dir.join("config.ini")).unwrap();
    write(
        &dir.join("config.ini"),
        &format!("{good}\n[extra_deamon_typo]\n"),
    );
    dev.wait_stderr("the daemons were not restarted: fix it and save again");
    assert!(alive(pid));
    assert_eq!(dev.starts().len(), 1);
    write(&dir.join("config.ini"), &good);
    dev.wait_starts(2);
    assert!(all_gone(&[pid]));
    assert!(dev.stop().success());
}

#[test]
fn a_second_signal_kills_at_once() {
    let ctx = TestContext::new();
    ctx.write("p/stubborn.sh", &format!("trap '' TERM\n{RECORDER}"));
    plugin(
        &ctx,
        &daemon("stubborn", "sh stubborn.sh", "graceful_timeout = 60"),
    );
    let mut dev = Develop::start(&ctx, &["p"]);
    let pid = dev.wait_starts(1)[0].0;
    let asked = Instant::now();
    dev.signal(Signal::SIGINT);
    dev.wait_stderr("Stopping");
    dev.signal(Signal::SIGINT);
    assert!(dev.wait_exit().success(), "{}", dev.stderr());
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "waited for the grace"
    );
    assert!(all_gone(&[pid]));
}

#[test]
fn on_a_terminal_a_status_line_shows_daemons_restarts_and_the_last_change() {
    use std::io::Read as _;
    let ctx = TestContext::new();
    let dir = plugin(&ctx, &daemon("rec", "sh recorder.sh", "numprocesses = 2"));
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let mut dev = Develop::start_with(&ctx, &["p", "--debounce", "50"], pty.slave.into());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = seen.clone();
    let mut master = File::from(pty.master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            reader
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let text = || seen.lock().unwrap().clone();
    assert!(
        wait_for(|| text().contains("develop: 2/2 up, 0 restarts")),
        "{}",
        text()
    );
    dev.wait_starts(2);
    write(&dir.join("app.py"), "x = 1\n");
    assert!(
        wait_for(
            || text().contains("develop: 2/2 up, 1 restart, last change `app.py` (restart took")
        ),
        "{}",
        text()
    );
    // The line is redrawn in place: erased before other lines are written.
    assert!(text().contains("\r\x1b[2K"));
    assert!(dev.stop().success());
}

/// A requirements change relocks (here from a dir of wheels named in the file), vendors and
/// rebuilds `local/`, then restarts the daemons once.
#[test]
fn a_requirements_change_relocks_rebuilds_then_restarts() {
    crate::support::require_tool(
        "python3",
        "apt-get install -y python3 python3-venv, or .ci/run",
    );
    let ctx = TestContext::new();
    let dir = plugin(
        &ctx,
        &daemon("rec", "sh {plugin_dir}/recorder.sh", "graceful_timeout = 5"),
    );
    let wheels = ctx.root().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let (name, bytes) = crate::build::wheel("tool", "1.0", true);
    std::fs::write(wheels.join(name), bytes).unwrap();
    write(
        &dir.join("python3_virtualenv_sources/allow_binary_packages"),
        "",
    );
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "50"]);
    dev.wait_starts(1);
    dev.wait_stderr("Watching");
    write(
        &dir.join("python3_virtualenv_sources/requirements-to-freeze.txt"),
        &format!("--find-links {}\ntool\n", wheels.display()),
    );
    dev.wait_starts(2);
    assert!(dir.join("local/bin/tool").is_file(), "{}", dev.stderr());
    assert!(dir
        .join("python3_virtualenv_sources/requirements3.txt")
        .is_file());
    // Once: the next restart is the next change's (the lock it wrote did not restart again).
    assert_eq!(dev.wait_restarts(1).len(), 1, "{}", dev.stderr());
    write(&dir.join("after.py"), "\n");
    let causes = dev.wait_restarts(2);
    assert_eq!(causes[1], "after.py", "{causes:?}");
    assert_eq!(dev.wait_starts(3).len(), 3, "{}", dev.stderr());
    assert!(dev.stop().success(), "{}", dev.stderr());
}

/// A Rust plugin: built before the daemons start, and rebuilt into `bin/` before the restart
/// that a change of its source causes.
#[test]
fn a_rust_plugin_is_built_then_rebuilt_before_a_restart() {
    crate::support::require_tool("cargo", "install rustup from https://rustup.rs");
    crate::support::require_tool("cc", "apt-get install -y build-essential, or .ci/run");
    let ctx = TestContext::new();
    let dir = plugin(
        &ctx,
        &daemon("bin", "{plugin_dir}/bin/p", "graceful_timeout = 5"),
    );
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(&dir.join(".autorestart_includes"), "*.rs\n");
    let main = |tag: &str| {
        format!(
            "use std::io::Write;\nfn main() {{\n    let path = std::env::var(\"STARTS\").unwrap();\n    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();\n    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();\n    writeln!(f, \"{{}} {{}}\", std::process::id(), t).unwrap();\n    println!(\"up {tag}\");\n    std::thread::sleep(std::time::Duration::from_secs(1000));\n}}\n"
        )
    };
    write(&dir.join("src/main.rs"), &main("v1"));
    let mut dev = Develop::start(&ctx, &["p", "--debounce", "50"]);
    dev.wait_starts(1);
    assert!(dir.join("bin/p").is_file());
    write(&dir.join("src/main.rs"), &main("v2"));
    dev.wait_starts(2);
    let ok = wait_for(|| dev.stdout().contains("up v2"));
    assert!(ok, "{}\n{}", dev.stdout(), dev.stderr());
    assert!(dev.stop().success(), "{}", dev.stderr());
}

/// The peak resident memory of `pid` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status:\n{status}"))
}

/// A daemon writing 300 MB with no newline (a binary blob, a `\r` progress bar) is passed
/// on in bounded pieces: develop's peak RSS stays far below the line's size (it was 610 MB),
/// and every byte reaches the log.
#[test]
fn a_300_mb_line_is_logged_whole_in_bounded_memory() {
    const SIZE: u64 = 300_000_000;
    for tool in ["head", "tr", "wc", "awk", "grep"] {
        crate::support::require_tool(tool, "apt-get install -y coreutils gawk grep");
    }
    let ctx = TestContext::new();
    ctx.write(
        "p/blob.sh",
        &format!(
            "head -c {SIZE} /dev/zero | tr '\\0' x\nprintf '\\r50%%\\r100%%\\nafter the blob\\n'\n\
             {RECORDER}"
        ),
    );
    plugin(&ctx, &daemon("blob", "sh blob.sh", ""));
    // `--color always`: stripping colour codes from 300 MB (`NO_COLOR`) takes a debug build
    // a minute; the relay is what is tested here.
    let mut dev = Develop::start(&ctx, &["p", "--color", "always"]);
    let log = ctx.home.join("log/extra_demo_blob.log");
    let ok = wait_for_long(|| {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > SIZE)
            && std::fs::read_to_string(&dev.starts).is_ok_and(|s| !s.is_empty())
            && tail(&log).contains("[blob:1] up ")
    });
    assert!(ok, "the blob did not reach the log:\n{}", dev.stderr());
    let peak = peak_rss_kib(dev.child.id());
    assert!(dev.stop().success(), "{}", dev.stderr());
    assert!(peak < 100 * 1024, "develop peaked at {peak} KiB of RSS");

    // Every `x` is in the log, in pieces of at most 64 KiB, each on a line with the prefix.
    let count = Command::new("sh")
        .arg("-c")
        .arg("tr -cd x < \"$0\" | wc -c")
        .arg(&log)
        .output()
        .unwrap();
    let count: u64 = String::from_utf8_lossy(&count.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(count, SIZE);
    let longest = Command::new("sh")
        .arg("-c")
        .arg("awk '{ if (length($0) > n) n = length($0) } END { print n }' \"$0\"")
        .arg(&log)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let longest: usize = String::from_utf8_lossy(&longest.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(longest, "[blob:1] ".len() + 64 * 1024);
    let end = tail(&log);
    assert!(
        end.contains("\r50%\r100%\n[blob:1] after the blob\n"),
        "{end:?}"
    );
    let lines = Command::new("sh")
        .arg("-c")
        .arg("grep -c '^\\[blob:1\\] ' \"$0\"")
        .arg(&log)
        .output()
        .unwrap();
    let lines: u64 = String::from_utf8_lossy(&lines.stdout)
        .trim()
        .parse()
        .unwrap();
    let pieces = SIZE.div_ceil(64 * 1024);
    assert_eq!(
        lines,
        pieces + 2,
        "every piece of the blob on a line of its own"
    );
}

/// The last KiB of a file, as text.
fn tail(path: &Path) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`wait_for`] with room for 300 MB to go through pipes on a busy machine.
fn wait_for_long(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE * 6;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// Timeouts and counts from `config.ini` never overflow: a `graceful_timeout` and a
/// `max_age` of 2^64 - 1 seconds (they panicked `develop` on the first stop), and a
/// `numprocesses` of a hundred thousand, refused with the limit named.
#[test]
fn huge_timeouts_and_counts_do_not_panic_develop() {
    let ctx = TestContext::new();
    plugin(
        &ctx,
        &format!(
            "{}{}",
            daemon(
                "rec",
                "sh recorder.sh",
                "graceful_timeout = 18446744073709551615\nmax_age = 18446744073709551615"
            ),
            daemon(
                "many",
                "no-such-command-for-mfplug",
                "numprocesses = 100000"
            ),
        ),
    );
    let mut dev = Develop::start(&ctx, &["p"]);
    let pid = dev.wait_starts(1)[0].0;
    dev.wait_stderr(
        "cannot start `many:1`: `numprocesses = 100000` of `[extra_daemon_many]` is above the 256 \
         copies `mfplug develop` runs",
    );
    let status = dev.stop();
    assert!(status.success(), "{status:?}\n{}", dev.stderr());
    assert!(all_gone(&[pid]));
    assert!(!dev.stderr().contains("panicked"), "{}", dev.stderr());
}
