//! `mfplug bootstrap list` and `mfplug bootstrap create`: every template, every bad input.

use std::path::Path;

use crate::mfplug_snapshot;
use crate::support::{listing, require_command, succeed, TestContext};

const TEMPLATES: &[&str] = &["default", "python3_daemon", "nodejs", "rust", "bin"];

/// Files every template must produce, as a MetWork template does.
const COMMON_FILES: &[&str] = &[
    "config.ini",
    ".layerapi2_label",
    ".layerapi2_dependencies",
    ".releaseignore",
    ".autorestart_includes",
    ".autorestart_excludes",
    ".plugin_format_version",
    "crontab",
    ".gitignore",
];

#[test]
fn list_shows_the_builtin_templates() {
    let ctx = TestContext::new();
    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "list"]));
    let out = ctx.cmd(["bootstrap", "list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    let names: Vec<&str> = json["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in TEMPLATES {
        assert!(names.contains(t), "{t} not in {names:?}");
    }
    assert_eq!(json["templates"][0]["source"]["kind"], "builtin");
    assert_eq!(
        json["templates"][0]["variables"]["version"]["default"],
        "0.0.1"
    );
}

#[test]
fn every_template_makes_a_plugin_that_check_accepts() {
    let ctx = TestContext::new();
    for template in TEMPLATES {
        let name = format!("p_{template}");
        ctx.cmd(["bootstrap", "create", "--template", template, &name])
            .assert()
            .success();
        let dir = ctx.work.join(&name);
        for file in COMMON_FILES {
            assert!(dir.join(file).is_file(), "{template}: {file} missing");
        }
        assert_eq!(
            ctx.read(&format!("{name}/.layerapi2_label")).trim(),
            format!("plugin_{name}@mfplug")
        );
        assert_eq!(
            ctx.read(&format!("{name}/.plugin_format_version")).trim(),
            env!("CARGO_PKG_VERSION")
        );
        let releaseignore = ctx.read(&format!("{name}/.releaseignore"));
        assert!(
            releaseignore.lines().any(|l| l.trim() == "/local"),
            "{template}"
        );
        let config = ctx.read(&format!("{name}/config.ini"));
        for key in [
            "_version",
            "_release",
            "_summary",
            "_license",
            "_url",
            "_maintainer",
            "_vendor",
        ] {
            assert!(
                config.lines().any(|l| l.starts_with(key)),
                "{template}: {key} missing from config.ini"
            );
        }
        // MetWork requires each of them non-empty: the template fills every one.
        let general = general_of(&ctx, &name);
        for key in REQUIRED_GENERAL {
            let value = general[*key].as_str().unwrap_or_default();
            assert!(!value.trim().is_empty(), "{template}: {key} is {value:?}");
        }
        let python = template.starts_with("python3") || *template == "default";
        assert_eq!(
            dir.join("python3_virtualenv_sources/requirements-to-freeze.txt")
                .is_file(),
            python,
            "{template}"
        );
        if python {
            let allow = dir.join("python3_virtualenv_sources/allow_binary_packages");
            assert_eq!(std::fs::metadata(allow).unwrap().len(), 0, "{template}");
        }
        succeed(&mut ctx.cmd(["check", &name]));
        // No warning either: the templates are clean under `-v`.
        let out = ctx.cmd(["-v", "check", &name]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("warning") && !stderr.contains("note:"),
            "{template}: {stderr}"
        );
    }
}

/// The `[general]` keys MetWork requires non-empty (mfplugin's `SCHEMA`).
const REQUIRED_GENERAL: &[&str] = &[
    "_version",
    "_summary",
    "_license",
    "_url",
    "_maintainer",
    "_vendor",
];

/// The `[general]` section of a plugin dir, as `mfplug config --json` gives it.
fn general_of(ctx: &TestContext, dir: &str) -> serde_json::Value {
    let out = succeed(&mut ctx.cmd(["config", dir, "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["config"]["general"].clone()
}

/// `mfplug bootstrap create ARGS`, blind to the machine's `/etc/gitconfig`: git's identity
/// is only what the test puts in its own `HOME`.
fn create_without_system_git(ctx: &TestContext, args: &[&str]) {
    let create = ["bootstrap", "create"].iter().chain(args);
    succeed(ctx.cmd(create).env("GIT_CONFIG_NOSYSTEM", "1"));
}

/// A `git config --global` in the test's own `HOME` (the test's `HOME/.gitconfig`).
fn git_config_global(ctx: &TestContext, key: &str, value: &str) {
    let status = std::process::Command::new("git")
        .args(["config", "--global", key, value])
        .env("HOME", ctx.root().join("user"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "git config --global {key} {value}");
}

#[test]
fn every_template_passes_check_under_every_module() {
    let ctx = TestContext::new();
    for template in TEMPLATES {
        for module in ["MFPLUG", "GENERIC", "MFSERV", "MFDATA", "MFBASE"] {
            let name = format!("p_{template}_{}", module.to_ascii_lowercase());
            let create = ["--module", module, "bootstrap", "create", "--template"];
            succeed(&mut ctx.cmd(create.into_iter().chain([*template, name.as_str()])));
            succeed(&mut ctx.cmd(["--module", module, "check", &name]));
            succeed(&mut ctx.cmd(["check", &name]));
        }
    }
}

#[test]
fn maintainer_and_vendor_come_from_git_and_set_overrides_them() {
    require_command("git", &["--version"], "apt-get install -y git");
    let ctx = TestContext::new();
    // Without git's identity: non-empty placeholders, and no host in the url.
    create_without_system_git(&ctx, &["anon"]);
    let general = general_of(&ctx, "anon");
    assert_eq!(general["_url"], "unknown");
    assert_eq!(general["_maintainer"], "Firstname FAMILYNAME <email>");
    assert_eq!(general["_vendor"], "unknown");

    git_config_global(&ctx, "user.email", "jane@example.invalid");
    create_without_system_git(&ctx, &["mail"]);
    let general = general_of(&ctx, "mail");
    assert_eq!(general["_maintainer"], "jane@example.invalid");
    assert_eq!(general["_vendor"], "jane@example.invalid");

    git_config_global(&ctx, "user.name", "Jane DOE");
    create_without_system_git(&ctx, &["known"]);
    let general = general_of(&ctx, "known");
    assert_eq!(general["_maintainer"], "Jane DOE <jane@example.invalid>");
    assert_eq!(general["_vendor"], "Jane DOE");
    let out = succeed(&mut ctx.cmd(["bootstrap", "list", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let variables = &json["templates"][0]["variables"];
    assert_eq!(
        variables["maintainer"]["default"],
        "Jane DOE <jane@example.invalid>"
    );

    let sets = [
        "--set",
        "maintainer=Ops <ops@example.invalid>",
        "--set",
        "vendor=ACME",
        "--set",
        "url=none yet",
    ];
    create_without_system_git(&ctx, &[&sets[..], &["set"]].concat());
    let general = general_of(&ctx, "set");
    assert_eq!(general["_maintainer"], "Ops <ops@example.invalid>");
    assert_eq!(general["_vendor"], "ACME");
    assert_eq!(general["_url"], "none yet");
}

/// Directory in, directory out: the default template's tree, file by file.
#[test]
fn default_template_tree() {
    let ctx = TestContext::new();
    let out = mfplug_snapshot!(
        ctx,
        ctx.cmd(["bootstrap", "create", "foo"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
    );
    assert!(out.status.success());
    let dir = ctx.work.join("foo");
    insta::assert_snapshot!("default_tree", listing(&dir));
    let filters = ctx.filters();
    let filters: Vec<(&str, &str)> = filters
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    for file in [
        "config.ini",
        "crontab",
        ".releaseignore",
        ".autorestart_includes",
        ".autorestart_excludes",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        insta::with_settings!({ filters => filters.clone(), snapshot_suffix => file.trim_start_matches('.') }, {
            insta::assert_snapshot!("default_file", text);
        });
    }
}

#[test]
fn config_ini_of_default_template_has_one_custom_key_and_a_commented_daemon() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "foo"]).assert().success();
    let out = ctx.cmd(["config", "foo", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let custom = json["config"]["custom"].as_object().unwrap();
    assert_eq!(custom.len(), 1, "{custom:?}");
    assert!(json["config"]
        .as_object()
        .unwrap()
        .keys()
        .all(|k| !k.starts_with("extra_daemon")));
    let config = ctx.read("foo/config.ini");
    assert!(
        config.contains("# [extra_daemon_"),
        "no commented extra daemon"
    );
}

#[test]
fn set_variables_and_dir() {
    let ctx = TestContext::new();
    ctx.cmd([
        "bootstrap",
        "create",
        "--set",
        "version=2.1.0",
        "--set",
        "summary=My plugin",
        "--dir",
        "nested/deeper/here",
        "bar",
    ])
    .assert()
    .success();
    let out = ctx
        .cmd(["config", "nested/deeper/here", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "bar");
    assert_eq!(json["version"], "2.1.0");
    assert_eq!(json["config"]["general"]["_summary"], "My plugin");
}

#[test]
fn module_flag_sets_the_label() {
    let ctx = TestContext::new();
    ctx.cmd(["--module", "MFDATA", "bootstrap", "create", "foo"])
        .assert()
        .success();
    assert_eq!(ctx.read("foo/.layerapi2_label").trim(), "plugin_foo@mfdata");
    assert!(ctx.read("foo/crontab").contains("MFDATA_"));
    ctx.cmd(["--module", "MFDATA", "check", "foo"])
        .assert()
        .success();
}

#[test]
fn an_existing_empty_dir_is_filled() {
    let ctx = TestContext::new();
    std::fs::create_dir(ctx.work.join("empty")).unwrap();
    ctx.cmd(["bootstrap", "create", "--dir", "empty", "foo"])
        .assert()
        .success();
    assert!(ctx.work.join("empty/config.ini").is_file());
}

#[test]
fn python3_daemon_runs_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let ctx = TestContext::new();
    ctx.cmd([
        "bootstrap",
        "create",
        "-t",
        "python3_daemon",
        "--set",
        "interval=0.2",
        "d",
    ])
    .assert()
    .success();
    let out = ctx.cmd(["config", "d", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let daemons: Vec<(&String, &serde_json::Value)> = json["config"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("extra_daemon_"))
        .collect();
    assert_eq!(daemons.len(), 1, "one working extra daemon");
    let cmd_and_args = daemons[0].1["_cmd_and_args"].as_str().unwrap();
    let argv: Vec<&str> = cmd_and_args.split_whitespace().collect();
    let vars = json["variables"].as_object().unwrap();
    let mut child = Command::new(argv[0]);
    child.args(&argv[1..]);
    for (k, v) in vars {
        child.env(k, v.as_str().unwrap());
    }
    let bin = ctx.work.join("d/bin");
    child.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let mut child = child
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("started"), "{first}");
    let beat = lines.next().unwrap().unwrap();
    assert!(!beat.is_empty());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn rust_template_builds_with_cargo() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "rust", "rplug"])
        .assert()
        .success();
    let dir = ctx.work.join("rplug");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", ctx.root().join("rust-target"))
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let binary = ctx.root().join("rust-target/debug/rplug");
    let out = std::process::Command::new(binary)
        .env("MFPLUG_CURRENT_PLUGIN_NAME", "rplug")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("rplug"));
}

/// The `bin` template's script, run as its comments say (`mfplug wrapper b -- b`, its
/// settings from `[custom]` through the plugin env): it greets with the configured greeting
/// and the plugin's name; with `--daemon` it beats every `interval` seconds and stops cleanly
/// on SIGTERM.
#[test]
fn bin_template_script_runs() {
    use std::io::{BufRead, BufReader};
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "bin", "b"])
        .assert()
        .success();
    assert!(listing(&ctx.work.join("b")).contains("bin/b (executable)"));
    let config = ctx.read("b/config.ini");
    assert!(config.contains("\ngreeting = hello\n"), "{config}");
    ctx.write(
        "b/config.ini",
        &config
            .replace("\ngreeting = hello\n", "\ngreeting = bonjour\n")
            .replace("\ninterval = 5\n", "\ninterval = 0.1\n"),
    );
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("b"), ctx.home.join("plugins/b")).unwrap();
    // Found on the plugin env's PATH, from another dir.
    let out = ctx.cmd(["wrapper", "b", "--", "b"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bonjour from the b plugin\n"
    );
    assert_eq!(
        ctx.cmd(["wrapper", "b", "--", "b", "--nope"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );

    let mut daemon = ctx
        .command(["wrapper", "b", "--", "b", "--daemon"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert_eq!(next(), "bonjour from the b plugin");
    assert!(next().starts_with("b daemon started (pid "));
    assert_eq!(next(), "b heartbeat 1 (every 0.1s)");
    assert_eq!(next(), "b heartbeat 2 (every 0.1s)");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = daemon.wait().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(status.success(), "{status}: {rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("b daemon stopping"),
        "{rest:?}"
    );
}

fn assert_nothing_created(ctx: &TestContext, before: &[String]) {
    let mut now: Vec<String> = std::fs::read_dir(&ctx.work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    now.sort();
    assert_eq!(now, before, "something was left behind");
}

#[test]
fn bad_inputs_fail_with_exit_1_and_leave_nothing() {
    let ctx = TestContext::new();
    ctx.write("full/keep.txt", "mine");
    let before = vec!["full".to_owned()];

    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "create", "--dir", "full", "foo"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `full` already exists and is not empty

    hint: choose another `--dir`, or empty that directory first
    ");
    assert_eq!(ctx.read("full/keep.txt"), "mine");

    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "create", "--template", "pyhton3_daemon", "foo"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown template `pyhton3_daemon`

    hint: did you mean `python3_daemon`? `mfplug bootstrap list` shows them all
    ");

    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "create", "my.plugin"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: invalid character `.` at position 3 of plugin name `my.plugin`: use only letters, digits, `_` and `-`

    hint: a plugin name is made of letters, digits, `_` and `-`; it may not start with `plugin_`, `__` or `-`, nor be `base` or `config`
    ");
    for name in ["plugin_x", "__x", "base", "config", "a b", "é"] {
        ctx.cmd(["bootstrap", "create", name]).assert().code(1);
    }

    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "create", "--set", "verison=1", "foo"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown variable `verison` for template `default`

    hint: did you mean `version`?
    ");
    ctx.cmd(["bootstrap", "create", "--set", "novalue", "foo"])
        .assert()
        .code(1);
    ctx.cmd(["bootstrap", "create", "--set", "name=x", "foo"])
        .assert()
        .code(1);

    ctx.write("full2", "a file");
    ctx.cmd(["bootstrap", "create", "--dir", "full2", "foo"])
        .assert()
        .code(1);
    assert_eq!(ctx.read("full2"), "a file");
    std::fs::remove_file(ctx.work.join("full2")).unwrap();

    assert_nothing_created(&ctx, &before);
}

#[test]
fn a_set_value_that_check_refuses_creates_nothing() {
    let ctx = TestContext::new();
    ctx.write("keep/mine.txt", "mine");
    std::fs::create_dir(ctx.work.join("empty")).unwrap();
    let before = vec!["empty".to_owned(), "keep".to_owned()];

    // Before issue 16 this made a plugin that `check` then refused.
    mfplug_snapshot!(ctx, ctx.cmd(["bootstrap", "create", "--set", "version=1.0BAD", "foo"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `foo/config.ini`, line 37, section `[general]`: `_version`: `1.0BAD` is not a valid version: use only a-z, 0-9, `-`, `_` and `.`
    error: the plugin would not pass `mfplug check`: nothing was created in `foo`
      Caused by: cannot read the configuration of `foo`

    hint: change the `--set` values the problems above name (or fix the template)
    ");
    // The target's missing parents go too, an existing empty target stays as it was.
    for dir in ["new/deeper/here", "keep/new", "empty"] {
        ctx.cmd([
            "bootstrap",
            "create",
            "--set",
            "version=1.0BAD",
            "--dir",
            dir,
            "foo",
        ])
        .assert()
        .code(1);
    }
    assert_eq!(
        std::fs::read_dir(ctx.work.join("empty")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(ctx.work.join("keep")).unwrap().count(),
        1,
        "keep/new was left behind"
    );
    for template in TEMPLATES {
        for module in ["MFPLUG", "MFSERV", "MFDATA", "MFBASE"] {
            let create = ["--module", module, "bootstrap", "create", "--template"];
            let args = create
                .into_iter()
                .chain([*template, "--set", "version=2 0", "foo"]);
            let out = ctx.cmd(args).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{template} {module}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("foo/config.ini") && !stderr.contains(".mfplug-bootstrap"),
                "{template} {module}: {stderr}"
            );
        }
    }
    assert_nothing_created(&ctx, &before);

    // The same value through `check` is refused by the same rule.
    succeed(&mut ctx.cmd(["bootstrap", "create", "foo"]));
    let config = ctx.read("foo/config.ini");
    ctx.write(
        "foo/config.ini",
        &config.replace("_version = 0.0.1", "_version = 1.0BAD"),
    );
    let out = ctx.cmd(["check", "foo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`1.0BAD` is not a valid version"));
}

fn user_template(root: &Path, name: &str, config: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("files/bin")).unwrap();
    std::fs::write(
        dir.join("template.toml"),
        "description = \"my own\"\n[variables.greeting]\ndefault = \"hi\"\ndescription = \"what to say\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("NEXT.md"), "cd {{ dir }} and enjoy {{ name }}\n").unwrap();
    std::fs::write(dir.join("files/config.ini"), config).unwrap();
    std::fs::write(
        dir.join("files/.layerapi2_label"),
        "plugin_{{ name }}@{{ module }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("files/bin/{{ name }}-say"),
        "#!/bin/sh\necho {{ greeting }}\n",
    )
    .unwrap();
}

#[test]
fn user_templates_are_listed_and_used() {
    let ctx = TestContext::new();
    let root = ctx.root().join("tpl");
    user_template(
        &root,
        "mine",
        "[general]\n_version = 1.0.0\n_summary = {{ summary }}\n_license = {{ license }}\n_url = {{ url }}\n_maintainer = {{ maintainer }}\n_vendor = {{ vendor }}\n[custom]\nsay = {{ greeting }}\n",
    );
    let env_root = ctx.root().join("tpl-env");
    user_template(
        &env_root,
        "fromenv",
        "[general]\n_version = 1.0.0\n_summary = s\n_license = BSD\n_url = unknown\n_maintainer = m\n_vendor = v\n",
    );

    let out = ctx
        .cmd(["bootstrap", "list", "--templates-dir"])
        .arg(&root)
        .env("MFPLUG_TEMPLATES_DIR", &env_root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("mine"), "{stdout}");
    assert!(stdout.contains("fromenv"), "{stdout}");
    assert!(stdout.contains("default"), "{stdout}");

    let out = mfplug_snapshot!(ctx, ctx
        .cmd(["bootstrap", "create", "-t", "mine", "--set", "greeting=hello", "--templates-dir"])
        .arg(&root)
        .arg("u"), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
         Created plugin `u` from template `mine` in `u` (3 files)

    cd u and enjoy u
    ");
    assert!(out.status.success());
    assert_eq!(
        ctx.read("u/config.ini"),
        "[general]\n_version = 1.0.0\n_summary = one line summary of the plugin\n_license = BSD\n_url = unknown\n_maintainer = Firstname FAMILYNAME <email>\n_vendor = unknown\n[custom]\nsay = hello\n"
    );
    assert!(listing(&ctx.work.join("u")).contains("bin/u-say (executable)"));
    ctx.cmd(["check", "u"]).assert().success();

    ctx.cmd(["bootstrap", "create", "-t", "fromenv", "v"])
        .env("MFPLUG_TEMPLATES_DIR", &env_root)
        .assert()
        .success();
}

#[test]
fn a_broken_template_is_an_error_and_leaves_nothing() {
    let ctx = TestContext::new();
    let root = ctx.root().join("tpl");
    user_template(&root, "broken", "[general]\n_version = {{ version \n");
    let out = mfplug_snapshot!(
        ctx,
        ctx.cmd(["bootstrap", "create", "-t", "broken", "--templates-dir"])
            .arg(&root)
            .arg("x")
    );
    assert_eq!(out.status.code(), Some(1));
    // An undefined variable in a template is an error too, not an empty string.
    user_template(&root, "undefined", "[general]\n_version = {{ nope }}\n");
    ctx.cmd(["bootstrap", "create", "-t", "undefined", "--templates-dir"])
        .arg(&root)
        .arg("y")
        .assert()
        .code(1);
    // A bad manifest is reported by `list`, which still lists the others and exits 1.
    std::fs::write(root.join("broken/template.toml"), "descr = 1\n").unwrap();
    let out = ctx
        .cmd(["bootstrap", "list", "--templates-dir"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("default"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid template manifest"));
    assert_nothing_created(&ctx, &[]);
}

/// A MetWork module's own templates dir (cookiecutter layout, as in
/// `mfserv/adm/templates-plugins/`) works unchanged as `--templates-dir`: `_common/` shared
/// through symlinks, `{% extends "_common/config.ini" %}` with blocks and `{% raw %}`, a list
/// value as a choice, `{{cookiecutter.name}}` in paths, and the `X.delete` files of MetWork's
/// post-generation hook; the plugin it makes passes `check`.
#[test]
fn a_metwork_cookiecutter_templates_dir_works_unchanged() {
    use std::os::unix::fs::symlink;
    let ctx = TestContext::new();
    let root = ctx.root().join("templates-plugins");
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "_common/cookiecutter.json",
        r#"{
    "version": "{% raw %}{{MFMODULE_VERSION}}{% endraw %}",
    "release": "1",
    "one_line_summary": "one line summary",
    "license": ["Proprietary", "BSD", "MIT"],
    "url": "unknown",
    "maintainer": "Firstname FAMILYNAME <email>",
    "vendor": "Vendor"
}"#,
    );
    write(
        "_common/config.ini",
        "[general]\n\
         # If the value is {% raw %}{{MFMODULE_VERSION}}{% endraw %}, the module's is used\n\
         _version={{cookiecutter.version}}\n_release={{cookiecutter.release}}\n\
         _summary={{cookiecutter.one_line_summary}}\n_license={{cookiecutter.license}}\n\
         _url={{cookiecutter.url}}\n_maintainer={{cookiecutter.maintainer}}\n\
         _vendor={{cookiecutter.vendor}}\n\n{% block custom %}{% endblock %}\n",
    );
    write(
        "_common/layerapi2_label",
        "plugin_{{cookiecutter.name}}@generic\n",
    );
    write(
        "_common/plugin_format_version",
        "{{cookiecutter.MFMODULE_VERSION}}",
    );
    write(
        "_common/python3_virtualenv_sources/requirements-to-freeze.txt",
        "",
    );
    write(
        "_common/python3_virtualenv_sources.delete",
        "{% if cookiecutter.type|default('unknown') != \"python3\" %}\nyes\n{% endif %}\n",
    );
    write(
        "_common/hooks/post_gen_project.py",
        "raise SystemExit('not run')\n",
    );
    write("web/README.md", "# README\n\nA web plugin template.\n");
    write(
        "web/{{cookiecutter.name}}/config.ini",
        "{% extends \"_common/config.ini\" %}\n{% block custom %}[custom]\nwho = {{cookiecutter.name}}\n{% endblock %}\n",
    );
    write(
        "web/{{cookiecutter.name}}/{{cookiecutter.name}}/main.py",
        "print(\"{{cookiecutter.name}}\")\n",
    );
    let web = root.join("web");
    symlink(
        "../_common/cookiecutter.json",
        web.join("cookiecutter.json"),
    )
    .unwrap();
    symlink("../_common/hooks", web.join("hooks")).unwrap();
    let tree = web.join("{{cookiecutter.name}}");
    for (link, target) in [
        (".layerapi2_label", "../../_common/layerapi2_label"),
        (
            ".plugin_format_version",
            "../../_common/plugin_format_version",
        ),
        (
            "python3_virtualenv_sources",
            "../../_common/python3_virtualenv_sources",
        ),
        (
            "python3_virtualenv_sources.delete",
            "../../_common/python3_virtualenv_sources.delete",
        ),
    ] {
        symlink(target, tree.join(link)).unwrap();
    }

    let out = ctx
        .cmd(["bootstrap", "list", "--json", "--templates-dir"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web_json = json["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "web")
        .unwrap();
    assert_eq!(web_json["description"], "A web plugin template.");
    assert_eq!(web_json["variables"]["license"]["default"], "Proprietary");
    assert!(!json["templates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "_common"));

    ctx.cmd([
        "bootstrap",
        "create",
        "foo",
        "-t",
        "web",
        "--set",
        "license=BSD",
        "--templates-dir",
    ])
    .arg(&root)
    .assert()
    .success();
    let config = ctx.read("foo/config.ini");
    assert!(config.contains("_license=BSD\n"), "{config}");
    assert!(config.contains("{{MFMODULE_VERSION}}"), "{config}");
    assert!(config.contains("[custom]\nwho = foo\n"), "{config}");
    assert_eq!(ctx.read("foo/.layerapi2_label"), "plugin_foo@generic\n");
    assert_eq!(ctx.read("foo/foo/main.py"), "print(\"foo\")\n");
    assert!(!ctx.work.join("foo/python3_virtualenv_sources").exists());
    assert!(!ctx
        .work
        .join("foo/python3_virtualenv_sources.delete")
        .exists());
    assert!(!ctx.work.join("foo/hooks").exists());
    ctx.cmd(["check", "foo"]).assert().success();
    let out = ctx.cmd(["config", "foo", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["variables"]["GENERIC_CURRENT_PLUGIN_NAME"], "foo");
    // The default rendered as cookiecutter renders it, then `{{MFMODULE_VERSION}}` by the
    // configuration: outside a module's environment, mfplug's version.
    assert!(
        config.contains("_version={{MFMODULE_VERSION}}\n"),
        "{config}"
    );
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}
