//! Test support: a temp dir with a work dir and a runtime home, a hermetic `mfplug` command,
//! and `mfplug_snapshot!`, which snapshots exit code, stdout and stderr with what changes from
//! run to run filtered (`[TEMP_DIR]`, `[HOME]`, `[CACHE_DIR]`, `[TIME]`, `[ELAPSED]`,
//! `[VERSION]`).

use std::path::{Path, PathBuf};

/// The built binary: spawn it only through [`TestContext`] (`cmd`, `command`,
/// `command_under`), which clear the environment.
const MFPLUG: &str = env!("CARGO_BIN_EXE_mfplug");

pub struct TestContext {
    pub tmp: tempfile::TempDir,
    /// The current dir of every command.
    pub work: PathBuf,
    /// `MFPLUG_HOME`.
    pub home: PathBuf,
}

impl TestContext {
    pub fn new() -> TestContext {
        let tmp = tempfile::tempdir().expect("temp dir");
        // Canonical, so that the filters also catch paths a command resolved itself.
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let work = root.join("work");
        let home = root.join("home");
        for dir in [&work, &home, &root.join("user")] {
            std::fs::create_dir_all(dir).expect("create test dirs");
        }
        TestContext { tmp, work, home }
    }

    pub fn root(&self) -> PathBuf {
        self.work.parent().expect("work has a parent").to_path_buf()
    }

    /// Writes `text` to `path` (relative to the work dir), creating parents.
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let path = self.work.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.work.join(path)).expect("read file")
    }

    /// `mfplug ARGS` in the work dir, with nothing of the caller's environment but `PATH`.
    pub fn cmd<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        assert_cmd::Command::from_std(self.command(args))
    }

    /// [`TestContext::cmd`] as a `std::process::Command`, for a test that spawns mfplug and
    /// acts while it runs (kills it, races it, feeds it, closes its pipes).
    pub fn command<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = std::process::Command::new(MFPLUG);
        self.hermetic(&mut cmd);
        cmd.args(args);
        cmd
    }

    /// `PROGRAM ARGS MFPLUG` in the environment of [`TestContext::cmd`]: mfplug run by a
    /// wrapper that measures it (a shell limiting its memory, a python3 script counting its
    /// peak RSS or its opens), which then gets mfplug's own arguments. `PYENV_ROOT` is kept,
    /// so that a `python3` shim of pyenv still finds its interpreter.
    pub fn command_under<I, S>(&self, program: &str, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = std::process::Command::new(program);
        self.hermetic(&mut cmd);
        if let Some(root) = std::env::var_os("PYENV_ROOT") {
            cmd.env("PYENV_ROOT", root);
        }
        cmd.args(args).arg(MFPLUG);
        cmd
    }

    /// `mfplug ARGS` as [`TestContext::cmd`], with its address space limited to `mib` MiB
    /// (`ulimit -v` in a shell that then execs mfplug): a test of bounded memory fails on an
    /// allocation failure (an abort) instead of taking the machine's memory.
    pub fn cmd_with_memory_limit<I, S>(&self, mib: u64, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let limit = format!("ulimit -v {} && exec \"$0\" \"$@\"", mib * 1024);
        let mut cmd = self.command_under("sh", ["-c", &limit]);
        cmd.args(args);
        assert_cmd::Command::from_std(cmd)
    }

    /// The environment and current dir of [`TestContext::cmd`].
    fn hermetic(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root().join("user"))
            .env("MFPLUG_HOME", &self.home)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("LANG", "C.UTF-8")
            // git's identity (bootstrap's maintainer default) from the test's `HOME` only,
            // never from the machine's `/etc/gitconfig`.
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(&self.work);
        // The toolchains the plugins' builders call (cargo through rustup) live under the real
        // home, which the test's `HOME` hides.
        if let Some(real_home) = std::env::var_os("HOME") {
            let real_home = std::path::PathBuf::from(real_home);
            for (var, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
                let value = std::env::var_os(var).unwrap_or_else(|| real_home.join(default).into());
                cmd.env(var, value);
            }
        }
    }

    /// Filters for snapshots, in the order they apply: the runtime home becomes `[HOME]`, the
    /// cache dir (`~/.cache/mfplug` or `$XDG_CACHE_HOME/mfplug` under the temp root)
    /// `[CACHE_DIR]`, the rest of the temp root `[TEMP_DIR]`; wall-clock timestamps
    /// (`2026-12-02 06:45:50 UTC`, RFC 3339) `[TIME]`; durations (`in 0.12s`, `12 ms`,
    /// `"elapsed_ms": 12`) `[ELAPSED]`; mfplug's own version `[VERSION]`.
    pub fn filters(&self) -> Vec<(String, String)> {
        let root = self.root();
        let raw = self.tmp.path().to_path_buf();
        let mut roots = vec![root.clone()];
        if raw != root {
            roots.push(raw);
        }
        let mut filters = Vec::new();
        for (under, name) in [
            ("home", "[HOME]"),
            ("user/.cache/mfplug", "[CACHE_DIR]"),
            ("cache/mfplug", "[CACHE_DIR]"),
        ] {
            for root in &roots {
                let path = root.join(under).display().to_string();
                filters.push((format!("{}\\b", regex_escape(&path)), name.to_owned()));
            }
        }
        for root in &roots {
            filters.push((
                regex_escape(&root.display().to_string()),
                "[TEMP_DIR]".to_owned(),
            ));
        }
        filters.push((
            r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?( ?UTC|Z|[+-]\d{2}:\d{2})?"
                .to_owned(),
            "[TIME]".to_owned(),
        ));
        filters.push((
            r#""elapsed_ms": ?\d+"#.to_owned(),
            r#""elapsed_ms": [ELAPSED]"#.to_owned(),
        ));
        filters.push((
            r"\b\d+(\.\d+)? ?(ms|s)\b".to_owned(),
            "[ELAPSED]".to_owned(),
        ));
        // After `mfplug` (`tool: mfplug 0.1.0`, a user agent), or a line of its own
        // (`.plugin_format_version`); not any `0.1.0`, which a plugin's version may be.
        let version = regex_escape(env!("CARGO_PKG_VERSION"));
        filters.push((
            format!(r"\bmfplug([ /@]v?){version}\b"),
            "mfplug${1}[VERSION]".to_owned(),
        ));
        filters.push((format!(r"(?m)^{version}$"), "[VERSION]".to_owned()));
        filters
    }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The output of a command as one text: exit code, stdout, stderr.
pub fn render_output(output: &std::process::Output) -> String {
    format!(
        "success: {}\nexit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
        output.status.success(),
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Snapshots a command's exit code, stdout and stderr with the context's filters.
#[macro_export]
macro_rules! mfplug_snapshot {
    ($ctx:expr, $cmd:expr, @$snapshot:literal) => {{
        let output = $cmd.output().expect("run mfplug");
        let text = $crate::support::render_output(&output);
        let filters = $ctx.filters();
        let filters: Vec<(&str, &str)> =
            filters.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        insta::with_settings!({ filters => filters, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(text, @$snapshot);
        });
        output
    }};
    ($ctx:expr, $cmd:expr) => {{
        let output = $cmd.output().expect("run mfplug");
        let text = $crate::support::render_output(&output);
        let filters = $ctx.filters();
        let filters: Vec<(&str, &str)> =
            filters.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        insta::with_settings!({ filters => filters, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(text);
        });
        output
    }};
}

/// Every file under `dir` as `path (mode)`, sorted, for tree comparisons.
pub fn listing(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mut lines: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let mode = e.metadata().expect("metadata").permissions().mode();
            let exec = if mode & 0o100 != 0 {
                " (executable)"
            } else {
                ""
            };
            format!(
                "{}{exec}",
                e.path().strip_prefix(dir).expect("under dir").display()
            )
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// A member of a format-1 `.plugin` file, read back by the tests.
pub struct Member {
    pub path: String,
    pub mode: u32,
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// The members of a format-1 `.plugin` file, in order.
pub fn members(file: &Path) -> Vec<Member> {
    use std::io::Read;
    let bytes = zstd::decode_all(std::fs::File::open(file).expect("open plugin")).expect("zstd");
    let mut archive = tar::Archive::new(&bytes[..]);
    archive
        .entries()
        .expect("tar")
        .map(|e| {
            let mut e = e.expect("member");
            let path = String::from_utf8(e.path_bytes().into_owned()).expect("utf-8 path");
            let mode = e.header().mode().expect("mode");
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).expect("utf-8 link"));
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            Member {
                path,
                mode,
                link,
                data,
            }
        })
        .collect()
}

/// The member names of a format-1 `.plugin` file, in order.
pub fn member_paths(file: &Path) -> Vec<String> {
    members(file).into_iter().map(|m| m.path).collect()
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs `cmd`, which must succeed (else the test fails and shows its stderr), and gives its
/// output.
pub fn succeed(cmd: &mut assert_cmd::Command) -> std::process::Output {
    let out = cmd.output().expect("run mfplug");
    assert!(out.status.success(), "{cmd:?} failed:\n{}", stderr(&out));
    out
}

/// A command's stderr as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The path of `tool` on `PATH`; when it is missing the test fails (it never passes by
/// returning early), naming how to install it, e.g.
/// `require_tool("npm", "apt-get install -y npm, or run .ci/run")`.
pub fn require_tool(tool: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| {
            panic!("this test needs `{tool}`, which is not on PATH: install it ({install})")
        })
}

/// Runs `program args` (e.g. `python3 -m pip --version`), which must succeed; when it does
/// not, the test fails naming how to install what is missing: a test never passes by
/// returning early.
pub fn require_command(program: &str, args: &[&str], install: &str) {
    let ok = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs `{program} {}` to work: install it ({install})",
        args.join(" ")
    );
}
