//! `mfplug lock` (issue 5) against an in-process index: resolution rules, the lockfile, its
//! staleness check, and every failure leaving the previous lockfile as it was.

use std::process::Command;

use crate::index::{release, Index, Mode};
use crate::support::TestContext;

const INPUT: &str = "plugin/python3_virtualenv_sources/requirements-to-freeze.txt";
const LOCK: &str = "plugin/python3_virtualenv_sources/requirements3.txt";

fn lock(ctx: &TestContext, index: &Index, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = ctx.cmd(["lock", "plugin", "--index-url", &index.url]);
    cmd.args(extra);
    cmd
}

/// The lockfile with the parts that change from run to run filtered out.
fn lockfile(ctx: &TestContext) -> String {
    let text = ctx.read(LOCK);
    let mut out = String::new();
    for line in text.lines() {
        let line = if line.starts_with("# python: ") {
            "# python: [PYTHON]".to_owned()
        } else if let Some(i) = line.find("127.0.0.1:") {
            let rest = &line[i + 10..];
            let end = rest.find('/').unwrap_or(rest.len());
            format!("{}127.0.0.1:[PORT]{}", &line[..i], &rest[end..])
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `name==version` lines of the lockfile.
fn pins(ctx: &TestContext) -> Vec<String> {
    ctx.read(LOCK)
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && l.contains("=="))
        .map(|l| l.trim_end_matches(" \\").to_owned())
        .collect()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).replace('\r', "")
}

fn run(cmd: &mut assert_cmd::Command) -> std::process::Output {
    cmd.output().expect("run mfplug")
}

#[test]
fn lock_markers_extras_and_install_with_pip() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[
            release(
                "app",
                "1.0",
                &["dep>=1", "web[fast]; python_version >= '3'"],
            ),
            release(
                "web",
                "2.0",
                &["speedy; extra == 'fast'", "never; sys_platform == 'win32'"],
            ),
            release("dep", "1.0", &[]),
            release("dep", "1.5", &[]),
            release("speedy", "0.3", &[]),
            release("never", "1.0", &[]),
            release("old-only", "1.0", &[]).requires_python("<3"),
        ],
    );
    ctx.write(
        INPUT,
        "# the plugin's needs\napp  # main\nold-only; python_version < '3'\n",
    );
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        pins(&ctx),
        ["app==1.0", "dep==1.5", "speedy==0.3", "web==2.0"]
    );
    insta::assert_snapshot!("lockfile_markers_extras", lockfile(&ctx));

    // The lockfile installs with pip, hashes required, from the same files.
    crate::support::require_command(
        "python3",
        &["-m", "pip", "--version"],
        "apt-get install python3-pip",
    );
    let wheels = ctx.root().join("wheels");
    index.write_files(&wheels);
    let target = ctx.root().join("target");
    let mut pip = Command::new("python3");
    // Nothing of the caller's pip configuration (`PIP_FIND_LINKS`, ...) may take part.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PIP_") {
            pip.env_remove(key);
        }
    }
    let pip = pip
        .args(["-m", "pip", "install", "--require-hashes", "--no-index"])
        .arg("--find-links")
        .arg(&wheels)
        .arg("--target")
        .arg(&target)
        .arg("-r")
        .arg(ctx.work.join(LOCK))
        .args(["--disable-pip-version-check", "--no-cache-dir", "-q"])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .output()
        .expect("run pip");
    assert!(
        pip.status.success(),
        "pip install failed:\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
    for module in ["app", "dep", "web", "speedy"] {
        assert!(
            target.join(module).join("__init__.py").is_file(),
            "{module}"
        );
    }
}

#[test]
fn lock_json_index_with_metadata_files() {
    let ctx = TestContext::new();
    let mut old_sdist = release("d", "1.0", &["e"]).sdist();
    old_sdist.egg_info = true;
    let index = Index::start(
        Mode::Json,
        &[
            release("a", "1.0", &["b"]),
            release("b", "1.0", &[]),
            release("c", "1.0", &[]).sdist(),
            old_sdist,
            release("e", "1.0", &[]),
        ],
    );
    ctx.write(INPUT, "a\nc\nd\n");
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    // `e` is found through `d`'s `egg-info/requires.txt`.
    assert_eq!(
        pins(&ctx),
        ["a==1.0", "b==1.0", "c==1.0", "d==1.0", "e==1.0"]
    );
    let requests = index.requests();
    // Metadata came from PEP 658 files, not from downloading the wheels.
    assert!(requests.iter().any(|r| r.ends_with(".whl.metadata")));
    assert!(!requests.iter().any(|r| r.ends_with(".whl")));
    // The sdist's PKG-INFO was read out of it.
    assert!(requests.iter().any(|r| r.ends_with("c-1.0.tar.gz")));
    // `--json` reports the pins on stdout.
    let output = run(&mut lock(&ctx, &index, &["--json", "--upgrade"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(report["packages"][0]["hashes"], 1);
}

#[test]
fn lock_exact_pin_matches_a_local_build_not_a_post_release() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[
            release("a", "1.0+cpu", &[]),
            release("a", "1.0.post1", &[]),
            release("a", "1.1", &[]),
        ],
    );
    // PEP 440: `==1.0` ignores the candidate's local segment, and a post-release is another
    // version.
    ctx.write(INPUT, "a==1.0\n");
    let out = run(&mut lock(&ctx, &index, &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pins(&ctx), ["a==1.0+cpu"]);
    lock(&ctx, &index, &["--check"]).assert().success();
    ctx.write(INPUT, "a==1.0.post1\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==1.0.post1"]);
}

#[test]
fn lock_prereleases_only_when_asked() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("a", "1.0", &[]), release("a", "2.0b1", &[])],
    );
    ctx.write(INPUT, "a\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==1.0"]);
    // Asking for more than the final releases says why the pre-release was not taken.
    ctx.write(INPUT, "a>1.0\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(
        err.contains("(the index has 1.0, 2.0b1; 2.0b1 is a pre-release (allow it with `--pre`"),
        "{err}"
    );
    ctx.write(INPUT, "a\n");
    assert!(run(&mut lock(&ctx, &index, &["--pre", "--upgrade"]))
        .status
        .success());
    assert_eq!(pins(&ctx), ["a==2.0b1"]);
    ctx.write(INPUT, "a>=2.0b1\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==2.0b1"]);
}

#[test]
fn lock_skips_yanked_unless_pinned_and_honours_requires_python() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Json,
        &[
            release("a", "1.0", &[]),
            release("a", "1.1", &[]).yanked(),
            release("b", "1.0", &[]),
            release("b", "2.0", &[]).requires_python(">=4"),
            release("c", "1.0", &[]).tag("cp27-none-manylinux1_x86_64"),
            release("c", "0.9", &[]),
        ],
    );
    ctx.write(INPUT, "a\nb\nc\n");
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0", "c==0.9"]);
    ctx.write(INPUT, "a==1.1\nb\nc\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==1.1", "b==1.0", "c==0.9"]);
    // Locking for another target changes what fits.
    ctx.write(INPUT, "c\n");
    let output = run(&mut lock(
        &ctx,
        &index,
        &[
            "--upgrade",
            "--python-version",
            "2.7",
            "--platform",
            "manylinux1_x86_64",
        ],
    ));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["c==1.0"]);
}

#[test]
fn lock_conflict_is_explained() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[
            release("a", "1.0", &["b<2"]),
            release("c", "1.0", &["b>=2"]),
            release("b", "1.0", &[]),
            release("b", "2.0", &[]),
        ],
    );
    ctx.write(INPUT, "a==1.0\nc==1.0\n");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    let _guard = settings.bind_to_scope();
    let output = crate::mfplug_snapshot!(ctx, lock(&ctx, &index, &[]));
    assert_eq!(output.status.code(), Some(1));
    assert!(!ctx.work.join(LOCK).exists());
}

#[test]
fn lock_keeps_pins_and_upgrades_one_package() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("a", "1.0", &[]), release("b", "1.0", &[])],
    );
    ctx.write(INPUT, "a\nb\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    index.publish(release("a", "1.1", &[]));
    index.publish(release("b", "1.1", &[]));
    // The input changed (a comment), the pins stay.
    ctx.write(INPUT, "a\nb\n# touched\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0"]);
    assert!(run(&mut lock(&ctx, &index, &["--upgrade-package", "A"]))
        .status
        .success());
    assert_eq!(pins(&ctx), ["a==1.1", "b==1.0"]);
    // A pin that no longer satisfies the input moves.
    ctx.write(INPUT, "a\nb>1.0\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    assert_eq!(pins(&ctx), ["a==1.1", "b==1.1"]);
    assert!(run(&mut lock(&ctx, &index, &["--upgrade"]))
        .status
        .success());
}

#[test]
fn lock_check_fresh_and_stale() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    ctx.write(INPUT, "a\n");
    let output = run(&mut ctx.cmd(["lock", "plugin", "--check"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    let before = index.requests().len();
    // Fresh: no network (no index given at all), exit 0.
    let output = run(&mut ctx.cmd(["lock", "plugin", "--check"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(index.requests().len(), before);
    ctx.write(INPUT, "a>=2\n");
    let lock_before = ctx.read(LOCK);
    crate::mfplug_snapshot!(ctx, ctx.cmd(["lock", "plugin", "--check"]));
    let output = run(&mut ctx.cmd(["lock", "plugin", "--check", "--json"]));
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["fresh"], false);
    assert_eq!(report["reasons"].as_array().unwrap().len(), 2);
    assert_eq!(ctx.read(LOCK), lock_before);
}

#[test]
fn lock_offline_uses_the_cache() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("a", "1.0", &["b"]), release("b", "1.0", &[])],
    );
    ctx.write(INPUT, "a\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    let first = ctx.read(LOCK);
    index.set_mode(Mode::Status(500));
    ctx.write(INPUT, "a\n# again\n");
    let output = run(&mut lock(&ctx, &index, &["--offline"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0"]);
    assert_ne!(ctx.read(LOCK), first);
}

/// Runs a lock that must fail, and checks that the previous lockfile is untouched.
fn failing(ctx: &TestContext, mut cmd: assert_cmd::Command) -> String {
    let before = std::fs::read(ctx.work.join(LOCK)).ok();
    let output = run(&mut cmd);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{:?}: {}",
        cmd,
        stderr(&output)
    );
    assert_eq!(std::fs::read(ctx.work.join(LOCK)).ok(), before);
    stderr(&output)
}

#[test]
fn lock_failures_are_clear_and_leave_the_lock_alone() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("requests", "1.0", &[]), release("b", "1.0", &[])],
    );
    ctx.write(INPUT, "requests\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());

    // A malformed requirement: file, line, column and what was expected.
    ctx.write(INPUT, "requests\n  b >= \n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(err.contains("requirements-to-freeze.txt:2:"), "{err}");
    assert!(err.contains("expected version"), "{err}");

    // A missing included file, with the system's reason, which names the file too (fs_err).
    ctx.write(INPUT, "-r nowhere.txt\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(err.contains("cannot read `"), "{err}");
    assert!(
        err.contains("Caused by: failed to open file `")
            && err.contains("nowhere.txt`: No such file or directory"),
        "{err}"
    );

    // An unknown package, with a close name on the index.
    ctx.write(INPUT, "reqeusts\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(
        err.contains("package `reqeusts` is not on the index"),
        "{err}"
    );
    assert!(err.contains("did you mean `requests`?"), "{err}");

    // Deeper down, the message names the package that requires it.
    index.publish(release("b", "2.0", &["missing-dep"]));
    ctx.write(INPUT, "b==2.0\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(
        err.contains("package `missing-dep` is not on the index, required by `b==2.0`"),
        "{err}"
    );

    // No version satisfies.
    ctx.write(INPUT, "requests>=5\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(
        err.contains("there is no usable version of `requests>=5`"),
        "{err}"
    );

    // A missing interpreter.
    ctx.write(INPUT, "requests\n");
    let err = failing(
        &ctx,
        lock(&ctx, &index, &["--python", "/nonexistent/python9"]),
    );
    assert!(err.contains("cannot find the interpreter"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    // No index configured.
    let err = failing(&ctx, ctx.cmd(["lock", "plugin"]));
    assert!(err.contains("no package index is configured"), "{err}");
    assert!(err.contains("MFPLUG_INDEX_URL"), "{err}");

    // The index refuses, answers garbage, lists wrong hashes, is down.
    let fresh = Index::start(Mode::Status(401), &[release("requests", "1.0", &[])]);
    let err = failing(&ctx, lock(&ctx, &fresh, &[]));
    assert!(err.contains("answered 401"), "{err}");
    assert!(err.contains("netrc"), "{err}");
    fresh.set_mode(Mode::Status(403));
    let err = failing(&ctx, lock(&ctx, &fresh, &[]));
    assert!(err.contains("answered 403"), "{err}");
    fresh.set_mode(Mode::Garbage);
    let err = failing(&ctx, lock(&ctx, &fresh, &[]));
    assert!(err.contains("not a package index page"), "{err}");
    fresh.set_mode(Mode::WrongHashes);
    let err = failing(&ctx, lock(&ctx, &fresh, &[]));
    assert!(err.contains("hash mismatch"), "{err}");
    let url = fresh.url.clone();
    drop(fresh);
    let err = failing(&ctx, ctx.cmd(["lock", "plugin", "--index-url", &url]));
    assert!(err.contains("cannot reach"), "{err}");
    let mut cmd = ctx.cmd([
        "lock",
        "plugin",
        "--index-url",
        &format!("{}/nope", index.url),
    ]);
    cmd.arg("-q");
    let err = failing(&ctx, cmd);
    assert!(err.contains("not on the index"), "{err}");
    assert!(
        err.contains("answers 404 too: check the index URL"),
        "{err}"
    );
}

#[test]
fn lock_index_url_from_environment_and_pip_conf() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    ctx.write(INPUT, "a\n");
    let mut cmd = ctx.cmd(["lock", "plugin"]);
    cmd.env("PIP_INDEX_URL", &index.url);
    assert!(run(&mut cmd).status.success());
    // `MFPLUG_INDEX_URL` comes before `PIP_INDEX_URL` (here a dead one).
    let mut cmd = ctx.cmd(["lock", "plugin", "--upgrade"]);
    cmd.env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("MFPLUG_INDEX_URL", &index.url);
    let output = run(&mut cmd);
    assert!(output.status.success(), "{}", stderr(&output));
    let conf = ctx.write(
        "pip.conf",
        &format!("[global]\nindex-url = {}\n", index.url),
    );
    let mut cmd = ctx.cmd(["lock", "plugin", "--upgrade"]);
    cmd.env("PIP_CONFIG_FILE", &conf);
    let output = run(&mut cmd);
    assert!(output.status.success(), "{}", stderr(&output));
    // Credentials in the URL are sent, and never written.
    let with_creds = index.url.replace("http://", "http://user:secret@");
    assert!(
        run(&mut ctx.cmd(["lock", "plugin", "--upgrade", "--index-url", &with_creds]))
            .status
            .success()
    );
    assert!(!ctx.read(LOCK).contains("secret"));
}

#[test]
fn lock_http_cache_revalidates_and_honours_max_age() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Json,
        &[release("a", "1.0", &["b"]), release("b", "1.0", &[])],
    );
    ctx.write(INPUT, "a\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());
    // The second run revalidates the pages (304) and reads the metadata from the cache.
    let before = index.statuses().len();
    assert!(run(&mut lock(&ctx, &index, &["--upgrade"]))
        .status
        .success());
    let second: Vec<(String, u16)> = index.statuses()[before..].to_vec();
    assert!(!second.is_empty());
    assert!(
        second
            .iter()
            .all(|(p, s)| p.starts_with("/simple/") && *s == 304),
        "{second:?}"
    );
    // Within `max-age`, no request at all.
    index.set_max_age(600);
    assert!(run(&mut lock(&ctx, &index, &["--upgrade"]))
        .status
        .success());
    let before = index.statuses().len();
    assert!(run(&mut lock(&ctx, &index, &["--upgrade"]))
        .status
        .success());
    assert_eq!(index.statuses().len(), before);
}

#[test]
fn lock_credentials_from_netrc() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    // base64("user:s3cret")
    index.require_auth("dXNlcjpzM2NyZXQ=");
    ctx.write(INPUT, "a\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(err.contains("answered 401"), "{err}");
    std::fs::write(
        ctx.root().join("user/.netrc"),
        "machine 127.0.0.1\nlogin user\npassword s3cret\n",
    )
    .unwrap();
    let output = run(&mut lock(&ctx, &index, &["-v"]));
    assert!(output.status.success(), "{}", stderr(&output));
    // `-v` shows each request.
    assert!(
        stderr(&output).contains("GET http://127.0.0.1:"),
        "{}",
        stderr(&output)
    );
    assert!(!ctx.read(LOCK).contains("s3cret"));
}

#[test]
fn lock_interpreter_from_config_ini() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    ctx.write("plugin/.layerapi2_label", "plugin_demo@mfplug\n");
    ctx.write(
        "plugin/config.ini",
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\npython = /nonexistent/python3.99\n",
    );
    ctx.write(INPUT, "a\n");
    let err = failing(&ctx, lock(&ctx, &index, &[]));
    assert!(
        err.contains("cannot find the interpreter `/nonexistent/python3.99`"),
        "{err}"
    );
    // `--python` wins over the configuration.
    let output = run(&mut lock(&ctx, &index, &["--python", "python3"]));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn lock_reads_wheel_metadata_with_range_requests() {
    let ctx = TestContext::new();
    // A wheel bigger than one range block, so that only parts of it are read.
    let mut big = release("big", "1.0", &["b"]);
    big.padding = 300 * 1024;
    let index = Index::start(Mode::Html, &[big, release("b", "1.0", &[])]);
    index.honour_ranges();
    ctx.write(INPUT, "big\n");
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["b==1.0", "big==1.0"]);
    let big_requests: Vec<u16> = index
        .statuses()
        .into_iter()
        .filter(|(p, _)| p.contains("big-1.0"))
        .map(|(_, s)| s)
        .collect();
    assert!(
        !big_requests.is_empty() && big_requests.iter().all(|s| *s == 206),
        "{big_requests:?}"
    );
    // The METADATA read that way is cached: the next lock reads no part of the wheel.
    let before = index.statuses().len();
    assert!(run(&mut lock(&ctx, &index, &["--upgrade"]))
        .status
        .success());
    let again = index.statuses()[before..].to_vec();
    assert!(
        !again.iter().any(|(p, _)| p.contains("big-1.0")),
        "{again:?}"
    );
}

#[test]
fn lock_retries_transient_errors() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Flaky,
        &[release("a", "1.0", &["b"]), release("b", "1.0", &[])],
    );
    ctx.write(INPUT, "a\n");
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0"]);
    assert!(index.statuses().iter().any(|(_, s)| *s == 503));
}

#[test]
fn lock_from_find_links_alone() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("a", "1.0", &["b"]), release("b", "2.0", &[])],
    );
    let wheels = ctx.root().join("wheels");
    index.write_files(&wheels);
    ctx.write(INPUT, "a\n");
    let mut cmd = ctx.cmd(["lock", "plugin", "--find-links"]);
    cmd.arg(&wheels);
    let output = run(&mut cmd);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["a==1.0", "b==2.0"]);
    // The hashes are the files' own.
    let a = std::fs::read(wheels.join("a-1.0-py3-none-any.whl")).unwrap();
    assert!(ctx
        .read(LOCK)
        .contains(&format!("--hash=sha256:{}", crate::index::sha256(&a))));
    assert!(index.requests().is_empty());
}

#[test]
fn lock_constraints_and_included_files_count_for_staleness() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[
            release("a", "1.0", &["b"]),
            release("b", "1.0", &[]),
            release("b", "2.0", &[]),
            release("c", "1.0", &[]),
            release("unused", "1.0", &[]),
        ],
    );
    ctx.write(INPUT, "-r more.txt\n-c constraints.txt\na\n");
    ctx.write("plugin/python3_virtualenv_sources/more.txt", "c\n");
    ctx.write(
        "plugin/python3_virtualenv_sources/constraints.txt",
        "b<2\nunused==1.0\n",
    );
    let output = run(&mut lock(&ctx, &index, &[]));
    assert!(output.status.success(), "{}", stderr(&output));
    // The constraint bounds `b`, and brings in nothing by itself.
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0", "c==1.0"]);
    assert!(run(&mut ctx.cmd(["lock", "plugin", "--check"]))
        .status
        .success());
    ctx.write(
        "plugin/python3_virtualenv_sources/constraints.txt",
        "b<3\nunused==1.0\n",
    );
    let output = run(&mut ctx.cmd(["lock", "plugin", "--check"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("changed since the lock"));
}

#[test]
fn lock_probes_the_interpreter_once() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    ctx.write(INPUT, "a\n");
    let counter = ctx.root().join("probes");
    let python = ctx.write(
        "bin/python-counted",
        &format!(
            "#!/bin/sh\necho probe >> '{}'\nexec python3 \"$@\"\n",
            counter.display()
        ),
    );
    crate::support::make_executable(&python);
    let python = python.display().to_string();
    let probes = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for _ in 0..2 {
        let output = run(&mut lock(&ctx, &index, &["--python", &python, "--upgrade"]));
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(probes(), 1);
    // A changed interpreter (its mtime) is probed again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let text = std::fs::read_to_string(&python).unwrap();
    std::fs::write(&python, format!("{text}\n")).unwrap();
    assert!(
        run(&mut lock(&ctx, &index, &["--python", &python, "--upgrade"]))
            .status
            .success()
    );
    assert_eq!(probes(), 2);
}

#[test]
fn lock_requires_python_from_metadata_and_extra_indexes() {
    let ctx = TestContext::new();
    let mut too_new = release("a", "2.0", &[]).requires_python(">=3.99");
    too_new.hide_requires_python = true;
    let index = Index::start(Mode::Html, &[release("a", "1.0", &["b"]), too_new]);
    let extra = Index::start(Mode::Json, &[release("b", "1.0", &[])]);
    ctx.write(INPUT, "a\n");
    let output = run(&mut lock(&ctx, &index, &["--extra-index-url", &extra.url]));
    assert!(output.status.success(), "{}", stderr(&output));
    // `a==2.0` says `Requires-Python: >=3.99` in its metadata only; `b` is on the extra index.
    assert_eq!(pins(&ctx), ["a==1.0", "b==1.0"]);
    let text = ctx.read(LOCK);
    assert!(
        text.contains("# extra-index-url: http://127.0.0.1:"),
        "{text}"
    );
    // Pinning it explains why it cannot be used.
    ctx.write(INPUT, "a==2.0\n");
    let err = failing(&ctx, lock(&ctx, &index, &["--extra-index-url", &extra.url]));
    assert!(
        err.contains("`a==2.0` cannot be used: it requires Python >=3.99"),
        "{err}"
    );
}

#[test]
fn lock_of_no_requirement_needs_no_index() {
    let ctx = TestContext::new();
    ctx.write(INPUT, "# nothing yet\n");
    let output = run(&mut ctx.cmd(["lock", "plugin"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(pins(&ctx).is_empty());
    assert!(run(&mut ctx.cmd(["lock", "plugin", "--check"]))
        .status
        .success());
}

#[test]
fn lock_find_links_pages_and_no_index() {
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Html,
        &[release("a", "1.0", &["b"]), release("b", "2.0", &[])],
    );
    // A project page is a page of links: good enough for `--find-links URL`.
    let links = index.url.replace("http://", "http://u:p@");
    ctx.write(
        INPUT,
        &format!(
            "--no-index\n-f {links}/a/\n--find-links={}/b/\na\n",
            index.url
        ),
    );
    // `--index-url` is ignored: `--no-index` in the file wins.
    let output = run(&mut ctx.cmd(["lock", "plugin", "--index-url", "http://127.0.0.1:9/simple"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(pins(&ctx), ["a==1.0", "b==2.0"]);
    let text = ctx.read(LOCK);
    assert!(text.contains("# find-links: http://127.0.0.1:"), "{text}");
    assert!(!text.contains("u:p@"), "{text}");
    assert!(!text.contains("# index-url"), "{text}");
}

/// Outside input that aborted mfplug (exit 134 in a release build): an index or proxy that
/// answers `304 Not Modified` to a request with no validator, a requirements line `-é`. Each
/// is an error with a hint, exit 1, the lockfile untouched.
#[test]
fn hostile_answers_and_lines_are_errors_not_aborts() {
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("alpha", "1.0", &[])]);
    ctx.write(INPUT, "alpha\n");
    assert!(run(&mut lock(&ctx, &index, &[])).status.success());

    // A 304 to a plain request: an empty cache, so nothing was asked conditionally.
    index.set_mode(Mode::Status(304));
    let mut cmd = lock(&ctx, &index, &["--upgrade"]);
    cmd.env("XDG_CACHE_HOME", ctx.root().join("empty-cache"));
    let err = failing(&ctx, cmd);
    assert!(
        err.contains("answered `304 Not Modified` to a request that sent no validator"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    // The same for a file download (the page comes, the wheel answers 304).
    index.set_mode(Mode::Html);
    ctx.write(
        "plugin/python3_virtualenv_sources/allow_binary_packages",
        "",
    );
    ctx.write("plugin/.layerapi2_label", "plugin_plugin@mfplug\n");
    ctx.write("plugin/config.ini", "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    index.set_mode(Mode::FileStatus(304));
    let out = ctx
        .cmd(["build", "plugin"])
        .env("MFPLUG_INDEX_URL", &index.url)
        .env("XDG_CACHE_HOME", ctx.root().join("empty-cache-2"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("files/alpha-1.0-py3-none-any.whl` answered `304 Not Modified`"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!ctx.work.join("plugin/local").exists());
    index.set_mode(Mode::Html);

    // `-é`: the option's second byte is inside a character.
    for line in ["-é\n", "-éx\n", "alpha\n-\u{301}\n"] {
        ctx.write(INPUT, line);
        let err = failing(&ctx, lock(&ctx, &index, &[]));
        assert!(err.contains("unknown option `-"), "{line:?}: {err}");
        assert!(err.contains("requirements-to-freeze.txt:"), "{err}");
        assert!(err.contains("hint:"), "{err}");
    }
}
