//! `mfplug check`: MetWork plugin dirs as they are in the field pass; broken ones get every
//! problem reported.

use crate::mfplug_snapshot;
use crate::support::{succeed, TestContext};

/// A python daemon plugin as MetWork's mfdata templates write it (the Makefile of
/// `templates-plugins/_common`, rendered: an empty `custom::`, which mfplug does not warn of).
fn metwork_python_daemon(ctx: &TestContext) {
    ctx.write("pydaemon/.layerapi2_label", "plugin_pydaemon@mfdata\n");
    ctx.write("pydaemon/.layerapi2_dependencies", "python3@mfdata\n");
    ctx.write("pydaemon/.plugin_format_version", "1.0.0\n");
    ctx.write(
        "pydaemon/Makefile",
        "include $(MFEXT_HOME)/share/plugin.mk\n\n\ncustom::\n\t@# your custom build directives here\n\n\n\n",
    );
    ctx.write(
        "pydaemon/python3_virtualenv_sources/requirements-to-freeze.txt",
        "requests>=2\n",
    );
    ctx.write(
        "pydaemon/python3_virtualenv_sources/allow_binary_packages",
        "",
    );
    ctx.write(
        "pydaemon/config.ini",
        r#"[general]
# Notes about the name of the plugin:
# - the name of the plugin is given by the content of .layerapi2_label
#   in this directory (format: plugin_{name of the plugin}@mfdata)
# - the old "name" key in this file is not used anymore

# Version of the plugin (X.Y.Z)
# If the value is {{MFDATA_CURRENT_PLUGIN_VERSION}},
# the version will be the version of the plugin file
_version=1.0.0

# Release of the plugin
_release=1

# Summary (one line) of the goal of the plugin
_summary=python daemon plugin

# License of the plugin
_license=BSD

# URL of the plugin homepage
_url=http://www.metwork-framework.org

# Name of the maintainer of the plugin on the form "Firstname FAMILYNAME <email>"
_maintainer=Fabien MARTY <fabien.marty@example.org>

# Vendor of the plugin
_vendor=MetWork

# If _add_plugin_dir_to_python_path=1, the plugin directory will be added to PYTHONPATH
_add_plugin_dir_to_python_path=1

[extra_daemon_foo]
_cmd_and_args = {{MFDATA_CURRENT_PLUGIN_DIR}}/daemon.py --name={extra_name}
numprocesses=1
graceful_timeout = 30
rlimit_as = 1000000000
rlimit_nofile = 1000
rlimit_stack = 10000000
rlimit_fsize = 100000000
log_split_stdout_stderr=AUTO
log_split_multiple_workers=AUTO
max_age=0

[_dont_use_this_section]
anything = goes
"#,
    );
}

/// A plugin that is mostly `[custom*]` configuration, multi-line values and `null`s, with a
/// step and switch rules as mfdata has them.
fn metwork_custom_heavy(ctx: &TestContext) {
    ctx.write("customs/.layerapi2_label", "plugin_customs@mfdata\n");
    ctx.write(
        "customs/config.ini",
        r#"[general]
_version=0.1.0-dev
_release=3
_summary=lots of custom keys
_license=BSD-3-Clause
_url=https://example.invalid
_maintainer=t <t@example.invalid>
_vendor=t

[custom]
# database connection
db_host = localhost
db_port = 5432
db-name = metwork
empty_value =
null_value = null
sql = SELECT *
    FROM table
    WHERE x = 1
path = {{MFDATA_CURRENT_PLUGIN_DIR}}/data

[custom_queues]
inbox = {{MFDATA_HOME}}/var/in
outbox = {{MFDATA_HOME}}/var/out

[custom_step]
# MFDATA's [step_*] sections take only its keys: the others go in a [custom*] one
arg_redis_unix_socket_path = /tmp/redis.socket
switch_logical_condition = True

[step_main]
_cmd_and_args = {{MFDATA_CURRENT_PLUGIN_DIR}}/main.py --step-name={step_name}
numprocesses = 2
failure_policy = keep

[switch_rules:fnmatch:latest.switch.main.system_original_basename]
*.gz = main
* = main
"#,
    );
}

/// Variants everywhere: `[DEV]`, `[DEV_JOHN]`, `[PROD]`, on custom and daemon keys.
fn metwork_variant_heavy(ctx: &TestContext) {
    ctx.write("variants/.layerapi2_label", "plugin_variants@mfserv\n");
    ctx.write(
        "variants/config.ini",
        r#"[general]
_version=2.0.0
_summary=variants
_license=BSD-3-Clause
_url=https://example.invalid
_maintainer=t <t@example.invalid>
_vendor=t

[custom]
url = https://prod.example.invalid
url[DEV] = http://localhost:8080
url[DEV_JOHN] = http://john:8080
debug_level = 1
debug_level[PROD] = 0
only_in_dev[DEV] = yes

[app_main]
_cmd_and_args = {{MFSERV_CURRENT_PLUGIN_DIR}}/main/wsgi.py {app_name}
numprocesses = 4
numprocesses[DEV] = 1
timeout = 60
_virtualdomain_based_routing = False
"#,
    );
}

#[test]
fn metwork_plugin_dirs_pass_unchanged() {
    let ctx = TestContext::new();
    metwork_python_daemon(&ctx);
    metwork_custom_heavy(&ctx);
    metwork_variant_heavy(&ctx);
    for (dir, module) in [
        ("pydaemon", "MFDATA"),
        ("customs", "MFDATA"),
        ("variants", "MFSERV"),
    ] {
        let out = succeed(&mut ctx.cmd(["--module", module, "check", dir]));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("warning"),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for name in ["GENERIC", "DEV", "DEV_JOHN", "PROD"] {
            ctx.cmd(["--module", module, "check", dir])
                .env("MFCONFIG", name)
                .assert()
                .success();
        }
    }
}

/// `mfplug --module MFDATA --json check DIR`'s document.
fn check_json(ctx: &TestContext, dir: &str) -> serde_json::Value {
    let out = ctx
        .cmd(["--module", "MFDATA", "--json", "check", dir])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn check_reports_ok_in_text_and_json() {
    let ctx = TestContext::new();
    metwork_python_daemon(&ctx);
    mfplug_snapshot!(ctx, ctx.cmd(["--module", "MFDATA", "check", "pydaemon"]), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
         Checked plugin `pydaemon` 1.0.0-1 in `pydaemon`: no errors
    ");
    let json = check_json(&ctx, "pydaemon");
    assert_eq!(json["ok"], true);
    assert_eq!(json["name"], "pydaemon");
    assert_eq!(json["errors"], 0);
}

/// What MetWork does and mfplug does not (a Python 2 env, a Makefile's `custom::` target) is
/// said, not ignored: a warning that names it, and the plugin still checks.
#[test]
fn check_says_what_is_not_supported() {
    let ctx = TestContext::new();
    metwork_python_daemon(&ctx);
    ctx.write(
        "pydaemon/python2_virtualenv_sources/requirements-to-freeze.txt",
        "six\n",
    );
    ctx.write(
        "pydaemon/Makefile",
        "include $(MFEXT_HOME)/share/plugin.mk\n\ncustom::\n\t./build-assets.sh\n",
    );
    let out = succeed(&mut ctx.cmd(["--module", "MFDATA", "check", "pydaemon"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: `pydaemon/python2_virtualenv_sources`")
            && stderr.contains("`python2_virtualenv_sources/` is not supported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`pydaemon/Makefile`, line 3")
            && stderr.contains("the `custom::` target is not supported"),
        "{stderr}"
    );
    let json = check_json(&ctx, "pydaemon");
    assert_eq!(json["ok"], true);
    assert_eq!(json["warnings"], 2);
}

/// Without DIR, the plugin dir is found going up from the working dir, as cargo finds
/// `Cargo.toml`: from a subdir, every command that takes DIR works on the plugin around it.
#[test]
fn commands_find_the_plugin_dir_upward() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "up"]).assert().success();
    let sub = ctx.work.join("up/deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let out = succeed(ctx.cmd(["check"]).current_dir(&sub));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Checked plugin `up`"), "{stderr}");
    let out = succeed(ctx.cmd(["release", "-o", "../../.."]).current_dir(&sub));
    assert!(String::from_utf8_lossy(&out.stdout).contains("up-"));
    assert!(std::fs::read_dir(&ctx.work).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".plugin")));
    // The plugin's own input is found (it has no lock yet: stale, exit 1).
    let out = ctx
        .cmd(["lock", "--check"])
        .current_dir(&sub)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("requirements3.txt` does not exist"),
        "{stderr}"
    );
}

/// A DIR that is a file is refused with what a plugin dir is.
#[test]
fn a_dir_that_is_a_file_is_refused() {
    let ctx = TestContext::new();
    ctx.write("plain.txt", "x\n");
    let out = ctx.cmd(["check", "plain.txt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`plain.txt` is not a directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: give the plugin's directory"),
        "{stderr}"
    );
}

#[test]
fn check_defaults_to_the_current_dir() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "here"]).assert().success();
    ctx.cmd(["check"])
        .current_dir(ctx.work.join("here"))
        .assert()
        .success();
    ctx.cmd(["check"]).assert().code(1);
}

#[test]
fn check_reports_every_problem_not_only_the_first() {
    let ctx = TestContext::new();
    ctx.write("bad/.layerapi2_label", "plugin_bad.name@mfplug\n");
    ctx.write("bad/.plugin_format_version", "one two\n");
    ctx.write(
        "bad/config.ini",
        "[general]\n_version = 1.0 beta\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n_sumary = typo\n\n[custom]\nfoo = 1\nfoo = 2\nno equals sign here\n\n[extra_deamon_x]\nnumprocesses = 1\n\n[extra_daemon_y]\nnumprocess = 2\ngraceful_timeout = soon\n",
    );
    let out = mfplug_snapshot!(ctx, ctx.cmd(["check", "bad"]));
    assert_eq!(out.status.code(), Some(1));

    let out = ctx.cmd(["check", "bad", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    // `graceful_timeout = soon` is a warning: it reads as 0, as MetWork's `to_int` reads it.
    assert_eq!(json["errors"], 8);
    assert_eq!(json["warnings"], 1);
    let problems = json["problems"].as_array().unwrap();
    assert!(problems
        .iter()
        .any(|p| p["key"] == "numprocess" && p["line"] == 19));
}

#[test]
fn check_reads_the_override_layers_of_the_home() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "foo"]).assert().success();
    std::fs::create_dir_all(ctx.home.join("config/plugins")).unwrap();
    std::fs::write(
        ctx.home.join("config/plugins/foo.ini"),
        "[general]\n_version = 9.9.9\n[custom]\nfoo = admin\n[extra_daemon_x]\nnumprocesses = lots\n",
    )
    .unwrap();
    let out = mfplug_snapshot!(ctx, ctx.cmd(["check", "foo"]));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_of_a_missing_or_non_plugin_dir() {
    let ctx = TestContext::new();
    mfplug_snapshot!(ctx, ctx.cmd(["check", "nowhere"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: plugin dir `nowhere` does not exist

    hint: give the plugin's directory, the one holding `config.ini`
    ");
    std::fs::create_dir(ctx.work.join("empty")).unwrap();
    mfplug_snapshot!(ctx, ctx.cmd(["check", "empty"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `empty/.layerapi2_label` is missing: it holds the plugin name as `plugin_NAME@module`
      hint: write `plugin_NAME@mfplug` in it, NAME being the plugin name
    error: `empty/config.ini`: is missing
      hint: every plugin dir needs a `config.ini` with a `[general]` section; `mfplug bootstrap create` makes one
    error: found 2 errors in plugin dir `empty`
    ");
}

#[test]
fn undefined_variables_are_reported_with_verbose() {
    let ctx = TestContext::new();
    ctx.write("v/.layerapi2_label", "plugin_v@mfplug\n");
    ctx.write(
        "v/config.ini",
        "[general]\n_version = 1\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[custom]\nx = {{UNDEFINED_THING}}\n",
    );
    let out = ctx.cmd(["check", "v"]).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("UNDEFINED_THING"));
    let out = ctx.cmd(["-v", "check", "v"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 9"), "{stderr}");
    assert!(
        stderr.contains("`UNDEFINED_THING`, which is not defined"),
        "{stderr}"
    );
}

/// A plugin dir `name` whose `[custom]` section is `custom` (lines after the header).
fn custom_plugin(ctx: &TestContext, name: &str, custom: &str) {
    ctx.write(
        &format!("{name}/.layerapi2_label"),
        &format!("plugin_{name}@mfplug\n"),
    );
    ctx.write(
        &format!("{name}/config.ini"),
        &format!("[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n[custom]\n{custom}"),
    );
}

/// `a0` then `levels` keys, each rendering the one above twice: `a{levels}` would take
/// 100 * 2^levels bytes.
fn laughs(levels: usize) -> String {
    let mut text = format!("a0 = {}\n", "x".repeat(100));
    for i in 1..=levels {
        let above = format!("{{{{MFPLUG_CURRENT_PLUGIN_CUSTOM_A{}}}}}", i - 1);
        text.push_str(&format!("a{i} = {above}{above}\n"));
    }
    text
}

/// "billion laughs": 30 and 40 levels (a value of 100 GiB and 100 PiB) are refused at
/// the level that passes 1 MiB, under a 1 GiB address space (today's code aborts there).
#[test]
fn a_value_doubling_at_each_key_is_refused_with_bounded_memory() {
    let ctx = TestContext::new();
    for levels in [30, 40] {
        custom_plugin(&ctx, "laugh", &laughs(levels));
        let started = std::time::Instant::now();
        let out = ctx
            .cmd_with_memory_limit(1024, ["check", "laugh"])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = crate::support::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        // 100 * 2^14 is the first value above 1 MiB, on line 24.
        assert!(
            stderr.contains(
                "error: `laugh/config.ini`, line 24, section `[custom]`: `a14` renders to more \
                 than 1 MiB"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("hint: a value may take 1 MiB once rendered"));
        assert_eq!(stderr.matches("error: `").count(), 1, "{stderr}");
        assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    }
    // As `config` reads it too.
    let out = ctx
        .cmd_with_memory_limit(1024, ["config", "laugh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::support::stderr(&out).contains("`a14` renders to more than 1 MiB"));
}

/// The values of a file together are bounded too: 40 keys that each copy a 800 KiB value.
#[test]
fn the_rendered_configuration_is_bounded_as_a_whole() {
    let ctx = TestContext::new();
    let mut custom = laughs(13);
    for i in 0..40 {
        custom.push_str(&format!(
            "copy{i} = {{{{MFPLUG_CURRENT_PLUGIN_CUSTOM_A13}}}}\n"
        ));
    }
    custom_plugin(&ctx, "wide", &custom);
    let out = ctx
        .cmd_with_memory_limit(1024, ["check", "wide"])
        .output()
        .unwrap();
    let stderr = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // 100 * (2^14 - 1) bytes for a0..a13, then 819 200 per copy: the 16 MiB pass at `copy18`.
    assert!(
        stderr.contains(
            "error: `wide/config.ini`, line 42, section `[custom]`: the configuration renders to \
             more than 16 MiB, reached at `copy18`"
        ),
        "{stderr}"
    );
}

/// A template that loops for ages is stopped after a bounded number of steps.
#[test]
fn a_template_that_loops_for_ages_is_stopped() {
    let ctx = TestContext::new();
    custom_plugin(
        &ctx,
        "spin",
        "ok = {{MFPLUG_CURRENT_PLUGIN_NAME}}\n\
         spin = {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    );
    let out = ctx.cmd(["check", "spin"]).output().unwrap();
    let stderr = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: `spin/config.ini`, line 11, section `[custom]`: `spin` takes too many template \
             steps to render"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("a value may take 100000 steps"), "{stderr}");
}

/// Parsing, merging, checking and rendering are linear: 100 000 sections (2.5 MB) are
/// checked in seconds (before: minutes), and a duplicate at the very end is still found.
#[test]
fn a_file_of_100_000_sections_is_checked() {
    let ctx = TestContext::new();
    let mut text = String::from("[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n\n");
    for i in 0..100_000 {
        text.push_str(&format!("[custom_{i}]\nk = v{i}\n"));
    }
    ctx.write("big/.layerapi2_label", "plugin_big@mfplug\n");
    ctx.write("big/config.ini", &text);
    let out = succeed(&mut ctx.cmd(["check", "big"]));
    assert!(
        crate::support::stderr(&out).contains("Checked plugin `big` 1.0.0-1 in `big`: no errors")
    );

    text.push_str("[custom_7]\nk = again\n[custom_99999]\nk = one\nk = two\n");
    ctx.write("big/config.ini", &text);
    let out = ctx.cmd(["check", "big", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 3, "{json}");
    let problems = json["problems"].as_array().unwrap();
    let lines: Vec<u64> = problems
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [200_009, 200_011, 200_013], "{json}");
    assert!(problems[0]["message"]
        .as_str()
        .unwrap()
        .contains("section `[custom_7]` is already defined on line 23"));
}

/// `.ci/run` on a fresh machine. It runs here against a PATH of shims: `apt-get` and
/// `sudo` record what they are asked, `id` says a user, `rustc` and `cargo` say a version;
/// only the core tools of the shell are real. It installs exactly what is missing, in one `apt-get
/// install --no-install-recommends`, then nothing once all is there; an old rustc is refused
/// with `rustup update stable` named.
#[test]
fn ci_run_installs_what_is_missing_and_checks_rustc() {
    use std::os::unix::fs::symlink;
    let ctx = TestContext::new();
    let repo = ctx.root().join("repo");
    std::fs::create_dir_all(repo.join(".ci")).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run");
    std::fs::copy(&script, repo.join(".ci/run")).unwrap();
    let bin = ctx.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "sed", "awk", "sort", "head", "grep", "env", "dirname", "cat", "bash", "sh", "printf",
    ] {
        let real = crate::support::require_tool(tool, "apt-get install -y coreutils sed gawk grep");
        symlink(real, bin.join(tool)).unwrap();
    }
    let log = ctx.root().join("apt.log");
    let shim = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        crate::support::make_executable(&path);
    };
    shim(
        "apt-get",
        &format!("echo \"apt-get $*\" >> '{}'", log.display()),
    );
    shim("dpkg-query", "exit 1");
    // Not root: through `sudo`.
    shim("id", "echo 1000");
    shim(
        "sudo",
        &format!("printf 'sudo ' >> '{}'\nexec \"$@\"", log.display()),
    );
    shim("cargo", "exit 0");
    let run = |rust_version: &str, rustc: &str| {
        std::fs::write(
            repo.join("Cargo.toml"),
            format!("[package]\nname = \"x\"\nrust-version = \"{rust_version}\"\n"),
        )
        .unwrap();
        shim("rustc", &format!("echo 'rustc {rustc} (abc 2026-01-01)'"));
        let _ = std::fs::remove_file(&log);
        let out = std::process::Command::new(bin.join("bash"))
            .arg(repo.join(".ci/run"))
            .arg("--deps")
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", ctx.root().join("user"))
            .output()
            .unwrap();
        let apt = std::fs::read_to_string(&log).unwrap_or_default();
        (out, apt)
    };

    // A bare machine: everything is installed, at once.
    let (out, apt) = run("1.89", "1.95.0");
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert_eq!(
        apt,
        "sudo apt-get update\nsudo apt-get install -y --no-install-recommends build-essential \
         pkg-config python3 python3-venv python3-pip nodejs npm procps\n"
    );

    // Some of it there (as commands): only the rest is installed.
    for tool in ["cc", "make", "node", "npm", "ps", "pkill", "pkg-config"] {
        shim(tool, "exit 0");
    }
    let (out, apt) = run("1.89", "1.89.0");
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert_eq!(
        apt,
        "sudo apt-get update\nsudo apt-get install -y --no-install-recommends python3 \
         python3-venv python3-pip\n"
    );

    // All there: nothing asked of apt.
    shim("python3", "exit 0");
    let (out, apt) = run("1.89", "1.90.1-nightly");
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert_eq!(apt, "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready: rustc 1.90.1 (at least 1.89)"));

    // An old rustc: refused, saying how to update.
    let (out, _) = run("1.89", "1.88.0");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::support::stderr(&out).contains(
            "error: rustc 1.88.0 is older than the rust-version 1.89 of Cargo.toml: run `rustup \
             update stable`"
        ),
        "{}",
        crate::support::stderr(&out)
    );
    let (out, _) = run("1.100", "1.99.0");
    assert_eq!(out.status.code(), Some(1), "versions compare as numbers");
}

/// A `config.ini` that never ends (a symlink to `/dev/zero`) or that is bigger than
/// 16 MiB is refused after reading 16 MiB, not read until memory runs out; one that is not
/// UTF-8 names the byte.
#[test]
fn an_endless_or_huge_or_binary_config_ini_is_refused() {
    let ctx = TestContext::new();
    ctx.write("zero/.layerapi2_label", "plugin_zero@mfplug\n");
    std::os::unix::fs::symlink("/dev/zero", ctx.work.join("zero/config.ini")).unwrap();
    mfplug_snapshot!(ctx, ctx.cmd_with_memory_limit(1024, ["check", "zero"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `zero/config.ini`: is larger than 16 MiB
      hint: a configuration file may take 16 MiB; is it a symlink to a device, or data that belongs in a file of its own?
    error: found 1 error in plugin dir `zero`
    ");

    let mut big = String::from("[general]\n_version = 1\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[custom]\n");
    big.push_str(&format!("# {}\n", "x".repeat(16 << 20)));
    custom_plugin(&ctx, "big", "");
    ctx.write("big/config.ini", &big);
    let out = ctx.cmd(["check", "big"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::support::stderr(&out).contains("`big/config.ini`: is larger than 16 MiB"));

    custom_plugin(&ctx, "bin", "");
    std::fs::write(
        ctx.work.join("bin/config.ini"),
        b"[general]\n_version = 1\xff\n",
    )
    .unwrap();
    mfplug_snapshot!(ctx, ctx.cmd(["check", "bin"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `bin/config.ini`: is not UTF-8 text: byte 22 is not part of a character
      hint: save the file as UTF-8
    error: found 1 error in plugin dir `bin`
    ");
}

/// A 40 KB section name and a 200 KB key name are reported at once (the "did you mean"
/// compared every prefix of the name with the known ones: minutes for this file).
#[test]
fn long_unknown_names_are_reported_at_once() {
    let ctx = TestContext::new();
    let section = "a_".repeat(20_000);
    let key = "q".repeat(200_000);
    ctx.write("long/.layerapi2_label", "plugin_long@mfplug\n");
    ctx.write(
        "long/config.ini",
        &format!("[general]\n_version = 1\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[{section}]\n[extra_daemon_x]\n{key} = 1\n"),
    );
    let out = ctx.cmd(["check", "long", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 2);
    assert_eq!(json["problems"][0]["section"], section.as_str());
    assert_eq!(json["problems"][1]["key"], key.as_str());
    assert!(json["problems"][1]["hint"]
        .as_str()
        .unwrap()
        .starts_with("known keys are `_cmd_and_args`"));
}

/// A label/`--module` disagreement is an error of `check`, with the label's file and line,
/// naming both modules; the same through `MFPLUG_MODULE`.
#[test]
fn check_refuses_a_module_that_disagrees_with_the_label() {
    let ctx = TestContext::new();
    metwork_variant_heavy(&ctx);
    let out = ctx
        .cmd(["--module", "MFDATA", "--json", "check", "variants"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 1, "{json}");
    let problem = &json["problems"][0];
    assert_eq!(problem["file"], "variants/.layerapi2_label");
    assert_eq!(problem["line"], 1);
    let message = problem["message"].as_str().unwrap();
    assert!(
        message.contains("`mfserv`") && message.contains("`MFDATA`"),
        "{message}"
    );
    let out = ctx
        .cmd(["check", "variants"])
        .env("MFPLUG_MODULE", "MFDATA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(message));
    // The label's own module, given or not, passes.
    succeed(&mut ctx.cmd(["check", "variants"]));
    succeed(
        ctx.cmd(["check", "variants"])
            .env("MFPLUG_MODULE", "mfserv"),
    );
}

/// A label naming a module mfplug does not know is an error naming the known ones, at the
/// label's line; `bootstrap create --module` of one is refused before anything is written.
#[test]
fn check_refuses_an_unknown_module() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "odd"]).assert().success();
    ctx.write(
        "odd/.layerapi2_label",
        "# a MetWork module mfplug has no profile of\n\nplugin_odd@mfadmin\n",
    );
    mfplug_snapshot!(ctx, ctx.cmd(["check", "odd"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `odd/.layerapi2_label`, line 3: the label names module `mfadmin`, which mfplug does not know: the known modules are `mfplug` (or `generic`), `mfserv`, `mfdata` and `mfbase`
      hint: write one of them after the `@` (e.g. `plugin_odd@mfplug` for a plugin of no MetWork module); mfplug knows a module by its profile (its keys, defaults and checks), so another module needs one added to mfplug first
    error: found 1 error in plugin dir `odd`
    ");
    mfplug_snapshot!(ctx, ctx.cmd(["--module", "MFADMIN", "bootstrap", "create", "other"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: mfplug does not know module `MFADMIN`: the known modules are `mfplug` (or `generic`), `mfserv`, `mfdata` and `mfbase`

    hint: pass one of them to `--module` (or `MFPLUG_MODULE`), or leave it out for an MFPLUG plugin
    ");
    assert!(!ctx.work.join("other").exists());
}
