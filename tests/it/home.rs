//! The operator's side on temp homes: install, uninstall, list, info, verify, repackage,
//! crontab, provision, concurrency and crash safety.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{make_executable, stderr, succeed, TestContext};

/// Writes a plugin dir `src/NAME-VERSION` and releases it; gives the `.plugin` path.
fn plugin_file(ctx: &TestContext, name: &str, version: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = format!("src/{name}-{version}");
    ctx.write(
        &format!("{dir}/.layerapi2_label"),
        &format!("plugin_{name}@mfplug\n"),
    );
    ctx.write(
        &format!("{dir}/config.ini"),
        &format!("[general]\n_version = {version}\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n_summary = test plugin\n\n[custom]\n# the color\ncolor = blue\nsize = 3\n"),
    );
    ctx.write(
        &format!("{dir}/bin/{name}-hello"),
        "#!/bin/sh\necho hello $MFPLUG_CURRENT_PLUGIN_NAME $MFPLUG_CURRENT_PLUGIN_CUSTOM_COLOR\n",
    );
    ctx.write(
        &format!("{dir}/crontab"),
        "# jobs\n*/5 * * * * {{MFPLUG_CURRENT_PLUGIN_NAME}} at {{MFPLUG_CURRENT_PLUGIN_DIR}}\n",
    );
    for (path, text) in extra {
        ctx.write(&format!("{dir}/{path}"), text);
    }
    make_executable(&ctx.work.join(format!("{dir}/bin/{name}-hello")));
    for (path, _) in extra {
        if *path == "postinstall" || *path == "preuninstall" {
            make_executable(&ctx.work.join(format!("{dir}/{path}")));
        }
    }
    succeed(&mut ctx.cmd(["-q", "release", &dir, "-o", "dist"]));
    ctx.work.join(format!("dist/{name}-{version}-1.plugin"))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn staging_is_empty(ctx: &TestContext) -> bool {
    std::fs::read_dir(ctx.home.join("plugins/.staging")).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn install_list_info_verify_uninstall() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Installed plugin `foo` 1.0.0-1: installed"));
    let dir = ctx.home.join("plugins/foo");
    assert!(dir.join("bin/foo-hello").is_file());
    assert!(staging_is_empty(&ctx));

    let out = ctx.cmd(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plugins"][0]["name"], "foo");
    assert_eq!(json["plugins"][0]["version"], "1.0.0");
    assert_eq!(json["plugins"][0]["devlink"], false);
    assert!(json["plugins"][0]["hash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let out = ctx.cmd(["list"]).output().unwrap();
    assert!(stdout(&out).starts_with("NAME"), "{}", stdout(&out));

    let out = ctx.cmd(["info", "foo"]).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("plugin hash: sha256:"), "{text}");
    assert!(text.contains("color = blue"), "{text}");
    ctx.cmd(["verify", "foo"]).assert().success();

    let out = ctx
        .cmd(["wrapper", "foo", "--", "foo-hello"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hello foo blue");

    // The override file: a commented copy without [general] and `_` keys, whole (each
    // `contains` of a piece passed with a `[general]` section left in).
    let overrides = std::fs::read_to_string(ctx.home.join("config/plugins/foo.ini")).unwrap();
    assert_eq!(
        overrides,
        "# Overrides of the `foo` plugin's configuration, for the administrator.\n\
         # Uncomment a key and change its value to override the plugin's default;\n\
         # `mfplug config foo` shows the result. Keys starting with `_` cannot be\n\
         # overridden. This file is kept when the plugin is upgraded or uninstalled\n\
         # (unless `mfplug uninstall --clean`).\n\
         \n\
         [custom]\n\
         # color = blue\n\
         # size = 3\n"
    );

    ctx.cmd(["uninstall", "foo"]).assert().success();
    assert!(!dir.exists());
    assert!(
        !ctx.home.join("config/plugins/foo.ini").exists(),
        "an untouched override file goes"
    );
    ctx.cmd(["uninstall", "foo"]).assert().code(1);
    ctx.cmd(["info", "foo"]).assert().code(1);
}

#[test]
fn verify_reports_modified_missing_and_added_files() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[("lib/a.py", "A = 1\n")]);
    ctx.cmd(["install"]).arg(&file).assert().success();
    let dir = ctx.home.join("plugins/foo");
    std::fs::write(dir.join("lib/a.py"), "A = 2\n").unwrap();
    std::fs::remove_file(dir.join("crontab")).unwrap();
    std::fs::write(dir.join("lib/new.py"), "").unwrap();
    std::fs::create_dir_all(dir.join("lib/__pycache__")).unwrap();
    std::fs::write(dir.join("lib/__pycache__/a.pyc"), "").unwrap();
    let out = ctx.cmd(["verify", "foo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "modified  lib/a.py\nmissing   crontab\nadded     lib/new.py\n"
    );
    let out = ctx.cmd(["verify", "foo", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["missing"][0], "crontab");
}

#[test]
fn refusals() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    // A file that fails verification: nothing installed, nothing left.
    let bad = ctx.work.join("dist/bad.plugin");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 40);
    std::fs::write(&bad, bytes).unwrap();
    let out = ctx.cmd(["install"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("fails verification"),
        "{}",
        stderr(&out)
    );
    assert!(!ctx.home.join("plugins/foo").exists());
    assert!(!ctx.home.join("config/plugins/foo.ini").exists());
    assert!(staging_is_empty(&ctx));

    ctx.cmd(["install"]).arg(&file).assert().success();
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already installed"));

    // A devlinked plugin of that name is never replaced.
    ctx.cmd(["uninstall", "foo"]).assert().success();
    std::os::unix::fs::symlink(ctx.work.join("src/foo-1.0.0"), ctx.home.join("plugins/foo"))
        .unwrap();
    let out = ctx.cmd(["install", "--force"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is devlinked"));
    let out = ctx.cmd(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plugins"][0]["devlink"], true);
    // Uninstalling a devlink removes the link, never the developer's files.
    ctx.cmd(["uninstall", "foo"]).assert().success();
    assert!(ctx.work.join("src/foo-1.0.0/config.ini").is_file());

    // A bad name is a usage error, refused by the command line before anything is read.
    ctx.cmd(["install", "--new-name", "bad.name"])
        .arg(&file)
        .assert()
        .code(2);
    ctx.cmd(["install", "nowhere.plugin"]).assert().code(1);

    // A plugin that locks Python packages it does not vendor cannot be installed offline.
    let py = plugin_file(
        &ctx,
        "py",
        "1.0.0",
        &[(
            "python3_virtualenv_sources/requirements3.txt",
            "six==1.16.0 \\\n    --hash=sha256:00\n",
        )],
    );
    let out = ctx.cmd(["install"]).arg(&py).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`six==1.16.0` is missing from `python3_virtualenv_sources/src/`"),
        "{}",
        stderr(&out)
    );
    assert!(!ctx.home.join("plugins/py").exists());
    assert!(staging_is_empty(&ctx));
}

#[test]
fn upgrade_downgrade_and_the_admins_override_file() {
    let ctx = TestContext::new();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let v2 = plugin_file(&ctx, "foo", "1.10.0", &[("lib/v2.py", "")]);
    ctx.cmd(["install"]).arg(&v1).assert().success();
    // An upgrade over an untouched override file refreshes it.
    let out = ctx.cmd(["install", "--force"]).arg(&v2).output().unwrap();
    assert!(
        stderr(&out).contains("upgraded from 1.0.0-1"),
        "{}",
        stderr(&out)
    );
    assert!(ctx.home.join("plugins/foo/lib/v2.py").is_file());
    // The admin edits it; a downgrade keeps it and writes the new copy beside it.
    let overrides = ctx.home.join("config/plugins/foo.ini");
    std::fs::write(&overrides, "[custom]\ncolor = red\n").unwrap();
    let out = ctx.cmd(["install", "--force"]).arg(&v1).output().unwrap();
    assert!(
        stderr(&out).contains("downgraded from 1.10.0-1"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("kept your edited"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&overrides).unwrap(),
        "[custom]\ncolor = red\n"
    );
    assert!(ctx.home.join("config/plugins/foo.ini.new").is_file());
    assert!(!ctx.home.join("plugins/foo/lib/v2.py").exists());
    let out = ctx
        .cmd(["wrapper", "foo", "--", "foo-hello"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hello foo red");
    // Uninstall keeps an edited override file, unless --clean.
    ctx.cmd(["uninstall", "foo"]).assert().success();
    assert!(overrides.is_file());
    ctx.cmd(["install"]).arg(&v1).assert().success();
    ctx.cmd(["uninstall", "--clean", "foo"]).assert().success();
    assert!(!overrides.exists());
}

#[test]
fn postinstall_runs_in_the_env_and_its_failure_rolls_back() {
    let ctx = TestContext::new();
    let ok = plugin_file(
        &ctx,
        "foo",
        "1.0.0",
        &[("postinstall", "#!/bin/sh\necho \"$MFPLUG_CURRENT_PLUGIN_NAME $MFPLUG_CURRENT_PLUGIN_CUSTOM_COLOR\" > post.out\n")],
    );
    ctx.cmd(["install"]).arg(&ok).assert().success();
    assert_eq!(
        std::fs::read_to_string(ctx.home.join("plugins/foo/post.out")).unwrap(),
        "foo blue\n"
    );
    // What postinstall made is part of the install: verify does not report it.
    ctx.cmd(["verify", "foo"]).assert().success();

    let failing = plugin_file(
        &ctx,
        "foo",
        "2.0.0",
        &[("postinstall", "#!/bin/sh\necho boom >&2\nexit 3\n")],
    );
    let out = ctx
        .cmd(["install", "--force"])
        .arg(&failing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("boom"), "{}", stderr(&out));
    // The old version is still there, whole.
    ctx.cmd(["verify", "foo"]).assert().success();
    let out = ctx.cmd(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["plugins"][0]["version"], "1.0.0");
    assert!(staging_is_empty(&ctx));

    // A failing preuninstall keeps the plugin.
    let stubborn = plugin_file(
        &ctx,
        "bar",
        "1.0.0",
        &[("preuninstall", "#!/bin/sh\nexit 1\n")],
    );
    ctx.cmd(["install"]).arg(&stubborn).assert().success();
    ctx.cmd(["uninstall", "bar"]).assert().code(1);
    assert!(ctx.home.join("plugins/bar").is_dir());
}

#[test]
fn new_name_then_repackage_then_install_elsewhere() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    ctx.cmd(["install", "--new-name", "bar"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(ctx.home.join("plugins/bar/.layerapi2_label")).unwrap(),
        "plugin_bar@mfplug\n"
    );
    std::fs::write(
        ctx.home.join("config/plugins/bar.ini"),
        "[custom]\ncolor = green\n",
    )
    .unwrap();
    let out = ctx
        .cmd(["wrapper", "bar", "--", "foo-hello"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hello bar green");
    let out = ctx
        .cmd(["repackage", "bar", "-o", "repack", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let repacked = ctx.work.join("repack/bar-1.0.0-1.plugin");
    ctx.cmd(["verify"]).arg(&repacked).assert().success();
    // Reproducible like a release.
    let first = std::fs::read(&repacked).unwrap();
    ctx.cmd(["-q", "repackage", "bar", "-o", "repack"])
        .assert()
        .success();
    assert_eq!(first, std::fs::read(&repacked).unwrap());

    let other = ctx.root().join("other-home");
    let out = ctx
        .cmd(["install"])
        .arg(&repacked)
        .env("MFPLUG_HOME", &other)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctx
        .cmd(["wrapper", "bar", "--", "foo-hello"])
        .env("MFPLUG_HOME", &other)
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hello bar green");
    // The comments of config.ini survive the merge.
    let config = std::fs::read_to_string(other.join("plugins/bar/config.ini")).unwrap();
    assert!(config.contains("# the color\ncolor = green\n"), "{config}");
}

#[test]
fn legacy_files_install_converted() {
    let ctx = TestContext::new();
    let src = ctx.root().join("legacy/metwork_plugin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(".layerapi2_label"), "plugin_old@mfplug\n").unwrap();
    std::fs::write(src.join("config.ini"), "[general]\n_version=2.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n").unwrap();
    std::fs::write(
        src.join(".metadata.json"),
        r#"{"name":"old","version":"2.0","release":"1"}"#,
    )
    .unwrap();
    std::fs::write(
        src.join(".files.json"),
        r#"["config.ini",".layerapi2_label"]"#,
    )
    .unwrap();
    let file = ctx.work.join("old.plugin");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&file).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    builder.append_dir_all("metwork_plugin", &src).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ctx.cmd(["verify", "old"]).assert().success();
    assert!(staging_is_empty(&ctx));
}

#[test]
fn crontab_prints_and_applies_between_markers() {
    let ctx = TestContext::new();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "foo", "1.0.0", &[]))
        .assert()
        .success();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "bar", "1.0.0", &[]))
        .assert()
        .success();
    let out = ctx.cmd(["crontab"]).output().unwrap();
    let dir = ctx.home.join("plugins");
    assert_eq!(
        stdout(&out),
        format!(
            "# plugin bar\n*/5 * * * * bar at {0}/bar\n# plugin foo\n*/5 * * * * foo at {0}/foo\n",
            dir.display()
        )
    );
    // A fake `crontab` on PATH keeps the user's table in a file.
    let bin = ctx.root().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let table = ctx.root().join("table");
    std::fs::write(&table, "MAILTO=me\n0 1 * * * my-own-job\n").unwrap();
    let script = bin.join("crontab");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -l ]; then cat '{0}'; else cat > '{0}'; fi\n",
            table.display()
        ),
    )
    .unwrap();
    make_executable(&script);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for _ in 0..2 {
        ctx.cmd(["crontab", "--apply"])
            .env("PATH", &path)
            .assert()
            .success();
    }
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(
        text.starts_with("MAILTO=me\n0 1 * * * my-own-job\n# BEGIN mfplug plugins"),
        "{text}"
    );
    assert_eq!(text.matches("# plugin foo").count(), 1, "{text}");
    ctx.cmd(["uninstall", "foo"]).assert().success();
    ctx.cmd(["uninstall", "bar"]).assert().success();
    ctx.cmd(["crontab", "--apply"])
        .env("PATH", &path)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&table).unwrap(),
        "MAILTO=me\n0 1 * * * my-own-job\n"
    );
}

#[test]
fn provision_by_hash() {
    let ctx = TestContext::new();
    let provision = ctx.home.join("provision");
    std::fs::create_dir_all(&provision).unwrap();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let v0 = plugin_file(&ctx, "foo", "0.9.0", &[]);
    std::fs::copy(&v1, provision.join("foo.plugin")).unwrap();
    let out = ctx.cmd(["provision"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("installed 1.0.0-1"),
        "{}",
        stderr(&out)
    );
    let out = ctx.cmd(["provision", "--json"]).output().unwrap();
    assert!(
        stdout(&out).contains("\"action\":\"Unchanged\""),
        "{}",
        stdout(&out)
    );
    // Another hash replaces it whatever the version, keeping the admin's override file.
    std::fs::write(
        ctx.home.join("config/plugins/foo.ini"),
        "[custom]\ncolor = red\n",
    )
    .unwrap();
    std::fs::copy(&v0, provision.join("foo.plugin")).unwrap();
    let out = ctx.cmd(["provision"]).output().unwrap();
    assert!(
        stderr(&out).contains("downgraded from 1.0.0-1 to 0.9.0-1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(ctx.home.join("config/plugins/foo.ini")).unwrap(),
        "[custom]\ncolor = red\n"
    );
    // A bad file is reported, the others still apply, and the exit code says so.
    std::fs::write(provision.join("broken.plugin"), b"not a plugin").unwrap();
    std::fs::copy(
        plugin_file(&ctx, "bar", "1.0.0", &[]),
        provision.join("bar.plugin"),
    )
    .unwrap();
    let out = ctx.cmd(["provision"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(ctx.home.join("plugins/bar").is_dir());
    std::fs::remove_file(provision.join("broken.plugin")).unwrap();
    // A devlinked plugin is left alone.
    ctx.cmd(["uninstall", "bar"]).assert().success();
    std::os::unix::fs::symlink(ctx.work.join("src/bar-1.0.0"), ctx.home.join("plugins/bar"))
        .unwrap();
    let out = ctx.cmd(["provision"]).output().unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("devlinked"), "{}", stderr(&out));
    // --prune uninstalls what left the provisioning dir, keeping the override file.
    std::fs::remove_file(provision.join("foo.plugin")).unwrap();
    ctx.cmd(["provision"]).assert().success();
    assert!(
        ctx.home.join("plugins/foo").exists(),
        "no pruning without --prune"
    );
    ctx.cmd(["provision", "--prune"]).assert().success();
    assert!(!ctx.home.join("plugins/foo").exists());
    assert!(ctx.home.join("config/plugins/foo.ini").exists());
    assert!(ctx.home.join("plugins/bar").exists());
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `.plugin` copied into `provision/` in two steps: the watcher sees the first half, says it
/// waits for it (it does not verify), tries nothing and installs nothing; the whole file is
/// then installed, once, with no failure reported on the way.
#[test]
fn provision_watch_installs_complete_files_only() {
    let ctx = TestContext::new();
    let provision = ctx.home.join("provision");
    std::fs::create_dir_all(&provision).unwrap();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let bytes = std::fs::read(&file).unwrap();
    let log = ctx.root().join("watch.log");
    let mut child = ctx
        .command(["provision", "--watch", "--interval", "0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    // A half-copied file, which holds still long enough to be looked at.
    let target = provision.join("foo.plugin");
    std::fs::write(&target, &bytes[..bytes.len() / 2]).unwrap();
    wait_for(
        "the watcher to wait for the half file",
        Duration::from_secs(20),
        || log_text().contains("does not verify"),
    );
    // Another two looks at the same half file: still nothing tried.
    std::thread::sleep(Duration::from_millis(300));
    let text = log_text();
    assert!(!ctx.home.join("plugins/foo").exists(), "{text}");
    assert_eq!(text.matches("Waiting").count(), 1, "{text}");
    std::fs::write(&target, &bytes).unwrap();
    wait_for("the watched install", Duration::from_secs(20), || {
        log_text().contains("Provisioned")
    });
    // Two more looks at the installed file: applied once.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let text = log_text();
    assert!(!text.contains("error"), "{text}");
    assert_eq!(text.matches("Provisioned").count(), 1, "{text}");
    assert!(text.contains("installed 1.0.0-1"), "{text}");
    ctx.cmd(["verify", "foo"]).assert().success();
}

#[test]
fn one_writer_at_a_time() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let other = plugin_file(&ctx, "bar", "1.0.0", &[]);
    let mut slow = ctx
        .command(["install"])
        .arg(&file)
        .env("MFPLUG_TEST_STAGE_DELAY_MS", "300")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "the first install to start",
        Duration::from_secs(10),
        || staging_has_work(&ctx),
    );
    let out = ctx.cmd(["install"]).arg(&other).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another mfplug is changing the home"),
        "{}",
        stderr(&out)
    );
    ctx.cmd(["install", "--wait", "30"])
        .arg(&other)
        .assert()
        .success();
    assert!(slow.wait().unwrap().success());
    ctx.cmd(["verify", "foo"]).assert().success();
    ctx.cmd(["verify", "bar"]).assert().success();
}

fn staging_has_work(ctx: &TestContext) -> bool {
    std::fs::read_dir(ctx.home.join("plugins/.staging")).is_ok_and(|mut d| d.next().is_some())
}

/// SIGKILL an install, an upgrade and an uninstall at many points: what remains is the old
/// plugin or the new one, whole, and the next writer purges the leftovers.
#[test]
fn crashes_leave_the_old_or_the_new_plugin() {
    let ctx = TestContext::new();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &[("lib/one.py", "1\n")]);
    let v2 = plugin_file(&ctx, "foo", "2.0.0", &[("lib/two.py", "2\n")]);
    let delay = 40u64;
    for (what, args) in [
        (
            "install",
            vec!["install".to_owned(), v1.display().to_string()],
        ),
        (
            "upgrade",
            vec![
                "install".to_owned(),
                "--force".to_owned(),
                v2.display().to_string(),
            ],
        ),
        ("uninstall", vec!["uninstall".to_owned(), "foo".to_owned()]),
    ] {
        for kill_after in (0..9).map(|i| i * delay + 5) {
            // Start from a known state.
            let _ = ctx.cmd(["uninstall", "--clean", "foo"]).output();
            if what != "install" {
                ctx.cmd(["install"]).arg(&v1).assert().success();
            }
            let mut child = ctx
                .command(&args)
                .env("MFPLUG_TEST_STAGE_DELAY_MS", delay.to_string())
                .stderr(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(kill_after));
            let _ = child.kill();
            child.wait().unwrap();
            let installed = ctx.home.join("plugins/foo");
            if installed.exists() {
                let out = ctx.cmd(["verify", "foo"]).output().unwrap();
                assert!(
                    out.status.success(),
                    "{what} killed after {kill_after} ms: {}{}",
                    stdout(&out),
                    stderr(&out)
                );
                let version =
                    std::fs::read_to_string(installed.join(".mfplug/INSTALL.json")).unwrap();
                let expected: &[&str] = match what {
                    "install" | "uninstall" => &["\"1.0.0\""],
                    _ => &["\"1.0.0\"", "\"2.0.0\""],
                };
                assert!(
                    expected.iter().any(|v| version.contains(v)),
                    "{what}: {version}"
                );
            } else {
                assert!(
                    what != "upgrade",
                    "an upgrade killed after {kill_after} ms left no plugin"
                );
            }
            // The next writer purges what the killed one left.
            ctx.cmd(["install", "--force"]).arg(&v1).assert().success();
            assert!(staging_is_empty(&ctx), "{what} after {kill_after} ms");
        }
    }
}

/// One member of a crafted `.plugin` file.
enum Crafted {
    File(String),
    Exec(String),
    Link(String),
}

/// Writes a format-1 `.plugin` file member by member (tar + zstd, RECORD and PLUGIN.json
/// made as `release` makes them), so that a test can ship what `release` never would: a
/// link where mfplug keeps its own files, a name in PLUGIN.json that is not the label's.
fn crafted(ctx: &TestContext, file: &str, meta_name: &str, members: &[(&str, Crafted)]) -> PathBuf {
    use sha2::{Digest, Sha256};
    let hex = |bytes: &[u8]| mfplug::archive::hex(&Sha256::digest(bytes));
    let mut lines = Vec::new();
    let mut external = Vec::new();
    let mut size = 0u64;
    for (path, member) in members {
        lines.push(match member {
            Crafted::File(text) | Crafted::Exec(text) => {
                size += text.len() as u64;
                let mode = if matches!(member, Crafted::Exec(_)) {
                    755
                } else {
                    644
                };
                format!("{path}\t{mode}\t{}\t{}", text.len(), hex(text.as_bytes()))
            }
            Crafted::Link(target) => {
                size += target.len() as u64;
                if target.starts_with('/') {
                    external.push(format!("{path} -> {target}"));
                }
                format!("{path}\tlink\t{}\t{}", target.len(), hex(target.as_bytes()))
            }
        });
    }
    lines.sort();
    let record: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let meta = serde_json::json!({
        "format": 1, "name": meta_name, "version": "1.0.0", "release": "1",
        "build_time": 946684800u64, "tool": "mfplug 0.1.0", "platform": "any",
        "plugin_hash": mfplug::archive::Record::plugin_hash(&record),
        "files": lines.len(), "size": size, "external_symlinks": external,
    })
    .to_string();
    let mut builder = tar::Builder::new(Vec::new());
    let mut append =
        |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_path(path).unwrap();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_mtime(946_684_800);
            if let Some(link) = link {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            builder.append(&h, data).unwrap();
        };
    append(
        ".mfplug/PLUGIN.json",
        tar::EntryType::Regular,
        0o644,
        meta.as_bytes(),
        None,
    );
    append(
        ".mfplug/RECORD",
        tar::EntryType::Regular,
        0o644,
        record.as_bytes(),
        None,
    );
    for (path, member) in members {
        match member {
            Crafted::File(text) => {
                append(path, tar::EntryType::Regular, 0o644, text.as_bytes(), None)
            }
            Crafted::Exec(text) => {
                append(path, tar::EntryType::Regular, 0o755, text.as_bytes(), None)
            }
            Crafted::Link(target) => {
                append(path, tar::EntryType::Symlink, 0o777, b"", Some(target))
            }
        }
    }
    let tar_bytes = builder.into_inner().unwrap();
    let path = ctx.work.join(file);
    std::fs::write(&path, zstd::encode_all(&tar_bytes[..], 3).unwrap()).unwrap();
    path
}

/// The label and config.ini of a crafted plugin named `name`.
fn basics(name: &str) -> Vec<(&'static str, Crafted)> {
    vec![
        (
            ".layerapi2_label",
            Crafted::File(format!("plugin_{name}@mfplug\n")),
        ),
        (
            "config.ini",
            Crafted::File("[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n[custom]\ncolor = blue\n".into()),
        ),
    ]
}

/// Every file under `dir`, with its content, to tell that nothing changed there.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            (
                e.path().to_path_buf(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A NAME argument that is not a plugin name is a usage error (exit 2, the rule named)
/// and touches nothing: not a dir beside the home, not the admin's overrides.
#[test]
fn names_that_are_not_plugin_names_touch_nothing() {
    let ctx = TestContext::new();
    let file = plugin_file(&ctx, "foo", "1.0.0", &[]);
    ctx.cmd(["install"]).arg(&file).assert().success();
    let victim = ctx.root().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious"), "keep me\n").unwrap();
    std::fs::write(
        ctx.home.join("config/plugins/foo.ini"),
        "[custom]\ncolor = red\n",
    )
    .unwrap();
    // `../../victim` from `plugins/` is the victim dir beside the home.
    let escape = format!("../../{}", victim.file_name().unwrap().to_string_lossy());
    assert!(ctx
        .home
        .join("plugins")
        .join(&escape)
        .join("precious")
        .is_file());
    let before = (snapshot(&ctx.home), snapshot(&victim));
    for args in [
        vec!["uninstall", escape.as_str()],
        vec!["uninstall", "../config"],
        vec!["uninstall", "--clean", ".."],
        vec!["uninstall", "--", "-rf"],
        vec!["uninstall", "base"],
        vec!["repackage", "../config", "-o", "out"],
        vec!["wrapper", "../config", "--", "true"],
        vec!["env", "../config"],
    ] {
        let out = ctx.cmd(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("plugin name"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!((snapshot(&ctx.home), snapshot(&victim)), before, "{args:?}");
    }
    let out = ctx
        .cmd(["install", "--new-name", "../config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid character `.` at position 1"),
        "{}",
        stderr(&out)
    );
    // `info`/`verify` take NAME|FILE: what is not a name is a path, never looked up in the
    // home; neither a name nor a file is a usage error.
    let out = ctx.cmd(["verify", "-r"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = ctx.cmd(["info", "no.such"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("neither a file nor a plugin name"),
        "{}",
        stderr(&out)
    );
    assert_eq!((snapshot(&ctx.home), snapshot(&victim)), before);
    ctx.cmd(["verify", "foo"]).assert().success();
}

/// A plugin cannot be named `-rf`: a name starting with `-` could not be given to
/// `verify` or `uninstall`.
#[test]
fn a_leading_dash_is_refused_in_labels_and_files() {
    let ctx = TestContext::new();
    ctx.write("dash/.layerapi2_label", "plugin_-rf@mfplug\n");
    ctx.write("dash/config.ini", "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    let out = ctx.cmd(["check", "dash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("plugin name `-rf` starts with `-`"),
        "{}",
        stderr(&out)
    );
    let file = crafted(&ctx, "dash.plugin", "-rf", &basics("-rf"));
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("starts with `-`"), "{}", stderr(&out));
    assert!(!ctx.home.join("plugins/-rf").exists());
    assert!(staging_is_empty(&ctx));
}

/// A file whose PLUGIN.json names another plugin than its label is refused (it would be
/// installed under one name and run as the other, the admin's overrides of no effect).
#[test]
fn plugin_json_and_label_must_name_the_same_plugin() {
    let ctx = TestContext::new();
    let file = crafted(&ctx, "two.plugin", "alpha", &basics("beta"));
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "`PLUGIN.json` names the plugin `alpha`, but its `.layerapi2_label` names it `beta`"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!ctx.home.join("plugins/alpha").exists());
    assert!(!ctx.home.join("config/plugins/alpha.ini").exists());
    assert!(staging_is_empty(&ctx));
}

/// Install never writes its record through a `.mfplug` link the file ships.
#[test]
fn install_never_writes_its_record_through_a_shipped_link() {
    let ctx = TestContext::new();
    let outside = ctx.root().join("any-dir");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("RECORD"), "the owner's\n").unwrap();
    let mut members = basics("evil");
    members.push((".mfplug", Crafted::Link(outside.display().to_string())));
    let file = crafted(&ctx, "evil.plugin", "evil", &members);
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(".mfplug"), "{}", stderr(&out));
    assert_eq!(
        snapshot(&outside),
        vec![(outside.join("RECORD"), b"the owner's\n".to_vec())]
    );
    assert!(!ctx.home.join("plugins/evil").exists());
    assert!(!ctx.home.join("config/plugins/evil.ini").exists());
    assert!(staging_is_empty(&ctx));
    // Nor through one its `postinstall` makes.
    let mut members = basics("evil");
    members.push((
        "postinstall",
        Crafted::Exec(format!(
            "#!/bin/sh
ln -s '{}' .mfplug
",
            outside.display()
        )),
    ));
    let file = crafted(&ctx, "evil2.plugin", "evil", &members);
    let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(".mfplug"), "{}", stderr(&out));
    assert_eq!(
        snapshot(&outside),
        vec![(outside.join("RECORD"), b"the owner's\n".to_vec())]
    );
    assert!(!ctx.home.join("plugins/evil").exists());
    assert!(!ctx.home.join("config/plugins/evil.ini").exists());
    assert!(staging_is_empty(&ctx));
}

/// `install --new-name` never rewrites the label or config.ini through links the file
/// ships, even when the install then fails.
#[test]
fn new_name_never_writes_through_shipped_links() {
    let ctx = TestContext::new();
    let outside = ctx.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("label"), "plugin_evil@mfplug\n").unwrap();
    std::fs::write(
        outside.join("config.ini"),
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n[custom]\nwho = plugin_evil@mfplug\n",
    )
    .unwrap();
    let before = snapshot(&outside);
    for (what, members) in [
        (
            "label",
            vec![
                (
                    ".layerapi2_label",
                    Crafted::Link(outside.join("label").display().to_string()),
                ),
                (
                    "config.ini",
                    Crafted::File("[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n".into()),
                ),
            ],
        ),
        (
            "config",
            vec![
                (
                    ".layerapi2_label",
                    Crafted::File("plugin_evil@mfplug\n".into()),
                ),
                (
                    "config.ini",
                    Crafted::Link(outside.join("config.ini").display().to_string()),
                ),
            ],
        ),
    ] {
        let file = crafted(&ctx, &format!("{what}.plugin"), "evil", &members);
        let out = ctx
            .cmd(["install", "--new-name", "other"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("symlink"), "{what}: {}", stderr(&out));
        assert_eq!(snapshot(&outside), before, "{what}");
        assert!(!ctx.home.join("plugins/other").exists());
        assert!(staging_is_empty(&ctx));
    }
}

/// Install reads the plugin's own `crontab` and runs its `postinstall` only from the
/// plugin's files, never through a link to something else.
#[test]
fn install_never_reads_its_plugins_files_through_links() {
    let ctx = TestContext::new();
    let outside = ctx.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("jobs"), "* * * * * not-the-plugins-job\n").unwrap();
    let marker = outside.join("ran");
    let script = outside.join("script");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    make_executable(&script);
    // A FIFO that no one writes: reading it would hang; a link to it is never read.
    let fifo = outside.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (what, member) in [
        ("config.ini", Crafted::Link(fifo.display().to_string())),
        (
            "crontab",
            Crafted::Link(outside.join("jobs").display().to_string()),
        ),
        ("postinstall", Crafted::Link(script.display().to_string())),
    ] {
        let mut members = basics("linky");
        members.retain(|(path, _)| *path != what);
        members.push((what, member));
        let file = crafted(&ctx, &format!("{what}.plugin"), "linky", &members);
        let out = ctx.cmd(["install"]).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("symlink"), "{what}: {}", stderr(&out));
        assert!(!ctx.home.join("plugins/linky").exists(), "{what}");
        assert!(
            !ctx.home.join("config/plugins/linky.ini").exists(),
            "{what}"
        );
        assert!(!marker.exists(), "{what}: the linked script ran");
        assert!(staging_is_empty(&ctx));
    }
    let out = ctx.cmd(["crontab"]).output().unwrap();
    assert!(!stdout(&out).contains("not-the-plugins-job"));
}

/// `crontab --apply` keeps the user's lines: only `crontab -l`'s "no crontab for USER"
/// means an empty table; any other failure aborts with the table untouched.
#[test]
fn crontab_apply_never_drops_the_users_lines() {
    let ctx = TestContext::new();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "foo", "1.0.0", &[]))
        .assert()
        .success();
    let bin = ctx.root().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let table = ctx.root().join("table");
    let answer = ctx.root().join("answer");
    let script = bin.join("crontab");
    // `answer` holds how `crontab -l` fails: nothing (it works), `none`, `denied`, `crash`.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -l ]; then\n  case \"$(cat '{answer}')\" in\n    none) echo 'no crontab for tester' >&2; exit 1;;\n    denied) echo 'crontab: cannot open /var/spool/cron/tester: Permission denied' >&2; exit 1;;\n    crash) exit 2;;\n  esac\n  cat '{table}'\nelse\n  cat > '{table}'\nfi\n",
            answer = answer.display(),
            table = table.display()
        ),
    )
    .unwrap();
    make_executable(&script);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mine = "MAILTO=me\n0 1 * * * my-own-job\n";
    for failure in ["denied", "crash"] {
        std::fs::write(&table, mine).unwrap();
        std::fs::write(&answer, failure).unwrap();
        let out = ctx
            .cmd(["crontab", "--apply"])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{failure}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot read your crontab")
                && stderr(&out).contains("nothing was changed"),
            "{failure}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("Applied"), "{}", stderr(&out));
        if failure == "denied" {
            assert!(
                stderr(&out).contains("Permission denied"),
                "{}",
                stderr(&out)
            );
        }
        assert_eq!(std::fs::read_to_string(&table).unwrap(), mine, "{failure}");
    }
    // No crontab yet: the plugins' jobs are the whole table.
    std::fs::write(&table, "").unwrap();
    std::fs::write(&answer, "none").unwrap();
    ctx.cmd(["crontab", "--apply"])
        .env("PATH", &path)
        .assert()
        .success();
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(text.starts_with("# BEGIN mfplug plugins"), "{text}");
    assert!(text.contains("# plugin foo\n"), "{text}");
}

/// A failure after the `config` stage (here a crontab template error, which `check`
/// and `release` accept) leaves the admin's override file exactly as it was: absent on a
/// first install, the pristine copy of the old version on an upgrade.
#[test]
fn a_late_failure_puts_the_override_file_back() {
    let ctx = TestContext::new();
    let broken = [
        ("crontab", "*/5 * * * * {{ MFPLUG_CURRENT_PLUGIN_NAME\n"),
        (
            "config.ini",
            "[general]\n_version = 2.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n[custom]\ncolor = green\nshape = round\n",
        ),
    ];
    let bad = plugin_file(&ctx, "foo", "2.0.0", &broken);
    ctx.cmd(["check", "src/foo-2.0.0"]).assert().success();
    let overrides = ctx.home.join("config/plugins/foo.ini");
    let out = ctx.cmd(["install"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("crontab"), "{}", stderr(&out));
    assert!(
        !overrides.exists(),
        "a failed first install left an override file"
    );
    assert!(!ctx.home.join("plugins/foo").exists());

    let good = plugin_file(&ctx, "foo", "1.0.0", &[]);
    ctx.cmd(["install"]).arg(&good).assert().success();
    let pristine = std::fs::read(&overrides).unwrap();
    let out = ctx.cmd(["install", "--force"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&overrides).unwrap(), pristine);
    assert!(!ctx.home.join("config/plugins/foo.ini.new").exists());
    ctx.cmd(["verify", "foo"]).assert().success();
    // The admin's edited file, too, stays byte for byte, and no `.ini.new` is left.
    std::fs::write(&overrides, "[custom]\r\ncolor = red\r\n").unwrap();
    let out = ctx.cmd(["install", "--force"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&overrides).unwrap(),
        b"[custom]\r\ncolor = red\r\n"
    );
    assert!(!ctx.home.join("config/plugins/foo.ini.new").exists());
    assert!(staging_is_empty(&ctx));
}

/// A killed `repackage` leaves a full-size temp dir in `plugins/`: the next writer
/// purges it, as it purges `.staging/`, while a live one's is left alone.
#[test]
fn a_killed_repackage_leaves_nothing_for_long() {
    let ctx = TestContext::new();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "foo", "1.0.0", &[]))
        .assert()
        .success();
    let leftover = ctx.home.join("plugins/.mfplug-repackage-AbC123");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("config.ini"), vec![b'x'; 1 << 20]).unwrap();
    // A live repackage holds its dir locked.
    let live = ctx.home.join("plugins/.mfplug-repackage-live");
    std::fs::create_dir_all(&live).unwrap();
    let hold = std::fs::File::open(&live).unwrap();
    hold.try_lock().unwrap();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "bar", "1.0.0", &[]))
        .assert()
        .success();
    assert!(
        !leftover.exists(),
        "the killed repackage's temp dir is still there"
    );
    assert!(live.is_dir(), "a live repackage's temp dir was removed");
    drop(hold);
    ctx.cmd(["uninstall", "bar"]).assert().success();
    assert!(!live.exists());
    // And repackage itself leaves nothing behind.
    ctx.cmd(["-q", "repackage", "foo", "-o", "out"])
        .assert()
        .success();
    let names: Vec<String> = std::fs::read_dir(ctx.home.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".staging")
        .collect();
    assert_eq!(names, ["foo"], "{names:?}");
}

/// `provision --prune` never removes a plugin whose `.plugin` is still in `provision/`
/// but cannot be read (empty, half-copied, corrupt): a present file never counts as gone.
#[test]
fn prune_keeps_a_plugin_whose_file_is_present_but_unreadable() {
    let ctx = TestContext::new();
    let provision = ctx.home.join("provision");
    std::fs::create_dir_all(&provision).unwrap();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let bytes = std::fs::read(&v1).unwrap();
    let dropped = provision.join("foo-1.0.0-1.plugin");
    std::fs::write(&dropped, &bytes).unwrap();
    std::fs::write(provision.join("plain.plugin"), "").unwrap();
    ctx.cmd(["provision"]).assert().code(1);
    assert!(ctx.home.join("plugins/foo").is_dir());
    std::fs::remove_file(provision.join("plain.plugin")).unwrap();
    for (what, content) in [
        ("empty", Vec::new()),
        ("its first bytes", bytes[..40].to_vec()),
        ("half of it", bytes[..bytes.len() / 2].to_vec()),
        ("garbage", b"not a plugin at all".to_vec()),
    ] {
        std::fs::write(&dropped, &content).unwrap();
        let out = ctx.cmd(["provision", "--prune"]).output().unwrap();
        assert!(!stderr(&out).contains("Pruned"), "{what}: {}", stderr(&out));
        assert!(ctx.home.join("plugins/foo").is_dir(), "{what}: pruned");
        ctx.cmd(["verify", "foo"]).assert().success();
    }
    // Named only `NAME.plugin`, it keeps `NAME` too.
    std::fs::remove_file(&dropped).unwrap();
    std::fs::write(provision.join("foo.plugin"), "").unwrap();
    let out = ctx.cmd(["provision", "--prune"]).output().unwrap();
    assert!(stderr(&out).contains("not pruned"), "{}", stderr(&out));
    assert!(ctx.home.join("plugins/foo").is_dir());
    // Gone for good: pruned.
    std::fs::remove_file(provision.join("foo.plugin")).unwrap();
    ctx.cmd(["provision", "--prune"]).assert().success();
    assert!(!ctx.home.join("plugins/foo").exists());
}

/// `provision --watch --prune` during a slow, stalling upgrade copy: the running plugin
/// is never uninstalled, the copy is said to be waiting (not a failure per look), and the
/// upgrade applies once the file is whole.
#[test]
fn watch_waits_for_a_stalled_copy_and_never_prunes_it() {
    let ctx = TestContext::new();
    let provision = ctx.home.join("provision");
    std::fs::create_dir_all(&provision).unwrap();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &[]);
    let v2 = plugin_file(
        &ctx,
        "foo",
        "2.0.0",
        &[("lib/big.txt", &"x".repeat(200_000))],
    );
    let target = provision.join("foo.plugin");
    std::fs::copy(&v1, &target).unwrap();
    ctx.cmd(["provision"]).assert().success();
    let log = ctx.root().join("watch.log");
    /// Kills the watcher however the test ends, so that a failing assertion leaves no
    /// process behind.
    struct Watcher(std::process::Child);
    impl Drop for Watcher {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let watcher = Watcher(
        ctx.command(["provision", "--watch", "--prune", "--interval", "0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    // The upgrade arrives in pieces, with stalls of several intervals between them.
    let bytes = std::fs::read(&v2).unwrap();
    let pieces = 6;
    let mut file = std::fs::File::create(&target).unwrap();
    for i in 0..pieces {
        let (from, to) = (bytes.len() * i / pieces, bytes.len() * (i + 1) / pieces);
        std::io::Write::write_all(&mut file, &bytes[from..to]).unwrap();
        file.sync_all().unwrap();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                ctx.home.join("plugins/foo").is_dir(),
                "the running plugin was pruned during the copy:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
    }
    drop(file);
    wait_for("the upgrade", Duration::from_secs(20), || {
        std::fs::read_to_string(ctx.home.join("plugins/foo/.mfplug/INSTALL.json"))
            .is_ok_and(|t| t.contains("\"2.0.0\""))
    });
    drop(watcher);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("error"), "{text}");
    assert!(!text.contains("Pruned"), "{text}");
    let waiting = text.matches("Waiting").count();
    assert!((1..=2).contains(&waiting), "{text}");
    ctx.cmd(["verify", "foo"]).assert().success();
}

/// `verify NAME` while upgrades run sees the old plugin or the new one, never a mix of
/// both reported as modified files.
#[test]
fn verify_during_upgrades_sees_one_plugin() {
    let ctx = TestContext::new();
    let files = |version: &str| -> Vec<(String, String)> {
        (0..150)
            .map(|i| (format!("lib/m{i}.py"), format!("VERSION = '{version}'\n")))
            .collect()
    };
    let (v1_files, v2_files) = (files("1.0.0"), files("2.0.0"));
    let v1_refs: Vec<(&str, &str)> = v1_files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let v2_refs: Vec<(&str, &str)> = v2_files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let v1 = plugin_file(&ctx, "foo", "1.0.0", &v1_refs);
    let v2 = plugin_file(&ctx, "foo", "2.0.0", &v2_refs);
    ctx.cmd(["install"]).arg(&v1).assert().success();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut runs = 0;
    let mut bad = Vec::new();
    let upgrades = std::thread::scope(|scope| {
        let upgrader = scope.spawn(|| {
            let mut done = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || done < 10 {
                let file = if done % 2 == 0 { &v2 } else { &v1 };
                let out = ctx
                    .command(["-q", "install", "--force", "--wait", "30"])
                    .arg(file)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", stderr(&out));
                done += 1;
                if done >= 40 {
                    break;
                }
            }
            done
        });
        while !upgrader.is_finished() {
            let out = ctx.cmd(["verify", "foo"]).output().unwrap();
            runs += 1;
            if !out.status.success() {
                bad.push(format!("{}{}", stdout(&out), stderr(&out)));
            }
            if runs >= 60 {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        upgrader.join().unwrap()
    });
    assert!(
        upgrades >= 10 && runs >= 5,
        "{upgrades} upgrades, {runs} verifies"
    );
    assert!(
        bad.is_empty(),
        "{} of {runs} verify runs failed:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// What is in `plugins/` without being a plugin (a stray file, an entry that is not a
/// plugin name) is not listed, nor given jobs, nor pruned.
#[test]
fn list_shows_plugins_only() {
    let ctx = TestContext::new();
    ctx.cmd(["install"])
        .arg(plugin_file(&ctx, "foo", "1.0.0", &[]))
        .assert()
        .success();
    std::fs::write(ctx.home.join("plugins/stray"), "a file").unwrap();
    std::fs::write(ctx.home.join("plugins/escaped-1-1.plugin"), "a file").unwrap();
    std::fs::create_dir_all(ctx.home.join("plugins/not.a.name")).unwrap();
    let out = ctx.cmd(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["foo"]);
    let out = ctx.cmd(["crontab"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches("# plugin").count(),
        1,
        "{}",
        stdout(&out)
    );
}

/// What a person gets wrong about names and files: a plugin name one letter off gets a "did
/// you mean"; a plugin dir given to `install` says that a `.plugin` file is wanted and how to
/// make one; `info NAME` with a broken override file reports it (exit 1) instead of showing no
/// configuration; `info --files` lists the RECORD.
#[test]
fn names_dirs_and_broken_overrides_are_explained() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "foo", "-t", "bin"])
        .assert()
        .success();
    ctx.cmd(["release", "foo", "-o", "out"]).assert().success();
    ctx.cmd(["install", "out/foo-0.0.1-1.plugin"])
        .assert()
        .success();

    for args in [["info", "fo0"], ["uninstall", "fooo"], ["verify", "fop"]] {
        let out = ctx.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("did you mean `foo`?"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = ctx.cmd(["install", "foo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is a directory, not a `.plugin` file"),
        "{err}"
    );
    assert!(err.contains("mfplug release foo"), "{err}");

    let out = ctx.cmd(["info", "foo", "--files"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let bin = text
        .lines()
        .find(|l| l.ends_with(" bin/foo"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(bin.trim_start().starts_with("755 "), "{bin}");
    let file_text = ctx
        .cmd(["info", "out/foo-0.0.1-1.plugin", "--files"])
        .output()
        .unwrap()
        .stdout;
    assert!(String::from_utf8(file_text).unwrap().contains(bin));

    std::fs::write(ctx.home.join("config/plugins/foo.ini"), "bad line\n").unwrap();
    let out = ctx.cmd(["info", "foo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: foo"));
    let err = stderr(&out);
    assert!(err.contains("`bad line` is neither"), "{err}");
    assert!(err.contains("cannot read the configuration"), "{err}");
    let out = ctx.cmd(["info", "foo", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config"], serde_json::Value::Null);
    assert_eq!(
        json["config_error"]["problems"].as_array().unwrap().len(),
        1
    );
}
