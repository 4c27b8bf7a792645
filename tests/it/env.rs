//! `mfplug wrapper` and `mfplug env`: a command or a shell in the plugin env.

use crate::support::{make_executable, TestContext};

/// A plugin placed in the home as a devlink (a symlink to the source dir).
fn devlinked(ctx: &TestContext) {
    ctx.write("src/p/.layerapi2_label", "plugin_p@mfplug\n");
    ctx.write(
        "src/p/config.ini",
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[custom]\ncolor = blue\ncolor[DEV] = green\n",
    );
    ctx.write(
        "src/p/bin/hello",
        "#!/bin/sh\necho hello from $MFPLUG_CURRENT_PLUGIN_NAME\n",
    );
    make_executable(&ctx.work.join("src/p/bin/hello"));
    ctx.write(
        "src/p/.layerapi2_extra_env",
        "# extra variables\nGREETING=hi {{MFPLUG_CURRENT_PLUGIN_NAME}}\nexport OTHER = x\n",
    );
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("src/p"), ctx.home.join("plugins/p")).unwrap();
}

fn run(ctx: &TestContext, script: &str) -> (i32, String) {
    let out = ctx
        .cmd(["wrapper", "p", "--", "sh", "-c", script])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[test]
fn wrapper_runs_in_the_plugin_env() {
    let ctx = TestContext::new();
    devlinked(&ctx);
    let dir = ctx.home.join("plugins/p").display().to_string();
    assert_eq!(run(&ctx, "hello"), (0, "hello from p".into()));
    assert_eq!(
        run(&ctx, "echo $MFPLUG_CURRENT_PLUGIN_CUSTOM_COLOR"),
        (0, "blue".into())
    );
    assert_eq!(
        run(&ctx, "echo $MFPLUG_CURRENT_PLUGIN_DIR"),
        (0, dir.clone())
    );
    assert_eq!(run(&ctx, "echo $GREETING-$OTHER"), (0, "hi p-x".into()));
    assert_eq!(run(&ctx, "echo $MFPLUG_PLUGIN_ENV"), (0, "p".into()));
    let (_, path) = run(&ctx, "echo $PATH");
    assert!(
        path.starts_with(&format!("{dir}/bin:{dir}/local/bin:")),
        "{path}"
    );
    let (_, ld) = run(&ctx, "echo $LD_LIBRARY_PATH");
    assert!(ld.starts_with(&format!("{dir}/lib")), "{ld}");
    let (_, py) = run(&ctx, "echo $PYTHONPATH");
    assert_eq!(py, format!("{dir}:{dir}/lib"));
    let (_, tmp) = run(&ctx, "echo $TMPDIR; test -d $TMPDIR && echo exists");
    assert_eq!(tmp, format!("{}\nexists", ctx.home.join("tmp/p").display()));
}

#[test]
fn wrapper_passes_the_exit_code_and_applies_overrides_and_variants() {
    let ctx = TestContext::new();
    devlinked(&ctx);
    assert_eq!(run(&ctx, "exit 7").0, 7);
    let out = ctx
        .cmd([
            "wrapper",
            "p",
            "--",
            "sh",
            "-c",
            "echo $MFPLUG_CURRENT_PLUGIN_CUSTOM_COLOR",
        ])
        .env("MFCONFIG", "DEV")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "green");
    std::fs::create_dir_all(ctx.home.join("config/plugins")).unwrap();
    std::fs::write(
        ctx.home.join("config/plugins/p.ini"),
        "[custom]\ncolor = red\n",
    )
    .unwrap();
    assert_eq!(
        run(&ctx, "echo $MFPLUG_CURRENT_PLUGIN_CUSTOM_COLOR"),
        (0, "red".into())
    );
}

/// `--` is not needed before the command, and the command's own options are its.
#[test]
fn wrapper_takes_the_command_without_a_double_dash() {
    let ctx = TestContext::new();
    devlinked(&ctx);
    let out = ctx
        .cmd([
            "wrapper",
            "p",
            "sh",
            "-c",
            "echo \"$MFPLUG_PLUGIN_ENV $0\"; exit 7",
            "-x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "p -x\n");
}

#[test]
fn wrapper_errors() {
    let ctx = TestContext::new();
    devlinked(&ctx);
    let out = ctx.cmd(["wrapper", "nope", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no plugin named `nope` is installed"));
    let out = ctx
        .cmd(["wrapper", "p", "--", "no-such-command-here"])
        .output()
        .unwrap();
    // As a shell says: 127 not found, 126 found but not runnable.
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run `no-such-command-here`"));
    ctx.write("not-executable", "#!/bin/sh\necho hi\n");
    let path = ctx.work.join("not-executable");
    let out = ctx
        .cmd(["wrapper", "p", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("check that it is executable"));
    ctx.write("src/p/.layerapi2_extra_env", "not a pair\n");
    let out = ctx.cmd(["wrapper", "p", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".layerapi2_extra_env` line 1"));
}

#[test]
fn env_opens_the_shell_of_the_current_plugin_or_a_named_one() {
    let ctx = TestContext::new();
    devlinked(&ctx);
    let shell = ctx.write(
        "fake-shell",
        "#!/bin/sh\necho \"shell $1 in $MFPLUG_PLUGIN_ENV\"\n",
    );
    make_executable(&shell);
    let out = ctx.cmd(["env", "p"]).env("SHELL", &shell).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shell -i in p");
    // No name: the plugin of the current dir, found from a subdir.
    std::fs::create_dir_all(ctx.work.join("src/p/lib/deep")).unwrap();
    let out = ctx
        .cmd(["env"])
        .env("SHELL", &shell)
        .current_dir(ctx.work.join("src/p/lib/deep"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shell -i in p");
    let out = ctx.cmd(["env"]).env("SHELL", &shell).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not inside a plugin dir"));
}

/// A devlinked plugin `name` in the home whose `bin/` holds `tool`, with the given
/// `.layerapi2_dependencies`.
fn layered(ctx: &TestContext, name: &str, tool: &str, deps: Option<&str>) {
    ctx.write(
        &format!("src/{name}/.layerapi2_label"),
        &format!("plugin_{name}@mfplug\n"),
    );
    ctx.write(
        &format!("src/{name}/config.ini"),
        &format!("[general]\n_version = 1.0.0\n_summary = s\n_license = BSD\n_url = unknown\n_maintainer = m\n_vendor = v\n[custom]\nwho = {name}\n"),
    );
    let bin = format!("src/{name}/bin/{tool}");
    ctx.write(&bin, &format!("#!/bin/sh\necho {tool} of {name}\n"));
    make_executable(&ctx.work.join(bin));
    if let Some(deps) = deps {
        ctx.write(&format!("src/{name}/.layerapi2_dependencies"), deps);
    }
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(
        ctx.work.join(format!("src/{name}")),
        ctx.home.join(format!("plugins/{name}")),
    )
    .unwrap();
}

/// `.layerapi2_dependencies`, as layerapi2 reads it: another plugin's `bin/` and variables in
/// this plugin's env (its own first), an optional one skipped, a MetWork module layer left to
/// the host; `{VAR}` and `{{VAR}}` both expand in `.layerapi2_extra_env`; entering a plugin's
/// env from inside another's undoes the outer one.
#[test]
fn dependencies_join_the_env_and_an_outer_env_is_undone() {
    let ctx = TestContext::new();
    layered(&ctx, "core", "coretool", None);
    layered(
        &ctx,
        "app",
        "apptool",
        Some("# what app needs\nplugin_core@mfplug\n-plugin_absent@mfplug\npython3@mfserv\n"),
    );
    ctx.write(
        "src/app/.layerapi2_extra_env",
        "BOTH={MFPLUG_CURRENT_PLUGIN_NAME}+{{MFPLUG_CURRENT_PLUGIN_NAME}}\n",
    );
    let out = ctx
        .cmd([
            "wrapper",
            "app",
            "sh",
            "-c",
            "coretool; apptool; echo $BOTH; echo $PATH",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        ["coretool of core", "apptool of app", "app+app"]
    );
    let path = lines[3];
    let app_bin = path.find("plugins/app/bin").unwrap();
    let core_bin = path.find("plugins/core/bin").unwrap();
    assert!(app_bin < core_bin, "{path}");

    // From inside app's env, entering core's: no trace of app is left.
    let env = ctx.cmd(["wrapper", "app", "env"]).output().unwrap();
    let outer: Vec<(String, String)> = String::from_utf8(env.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let out = ctx
        .cmd([
            "wrapper",
            "core",
            "sh",
            "-c",
            "echo $PATH; echo ${BOTH-unset}",
        ])
        .envs(outer)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("plugins/app"), "{text}");
    assert!(text.contains("plugins/core/bin"), "{text}");
    assert!(text.ends_with("unset\n"), "{text}");
}

/// A dependency that is not installed, and plugins that depend on each other: each refused,
/// naming the file and the line.
#[test]
fn a_missing_dependency_and_a_cycle_are_refused_with_file_and_line() {
    let ctx = TestContext::new();
    layered(&ctx, "a", "atool", Some("plugin_b@mfplug\n"));
    let out = ctx.cmd(["wrapper", "a", "atool"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".layerapi2_dependencies` line 1: plugin `b` is not installed"),
        "{err}"
    );
    assert!(err.contains("-plugin_b@MODULE"), "{err}");
    layered(&ctx, "b", "btool", Some("\nplugin_a@mfplug\n"));
    let out = ctx.cmd(["wrapper", "a", "atool"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: the plugins depend on each other: a -> b -> a"),
        "{err}"
    );
    // A line that names no valid plugin.
    ctx.write(
        "src/b/.layerapi2_dependencies",
        "# ok\nplugin_base@mfplug\n",
    );
    let out = ctx.cmd(["wrapper", "a", "atool"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".layerapi2_dependencies` line 2: plugin name `base` is reserved"),
        "{err}"
    );
    assert!(err.contains("one layer label per line"), "{err}");
}

/// The runtime home is in the plugin env from `--home` (not only from an exported
/// variable): `MFPLUG_HOME`, and `{MODULE}_HOME` for the plugin's module.
#[test]
fn the_home_is_in_the_env_from_the_flag() {
    let ctx = TestContext::new();
    layered(&ctx, "h", "htool", None);
    ctx.write("src/h/.layerapi2_label", "plugin_h@mfdata\n");
    let out = ctx
        .cmd(["--home"])
        .arg(&ctx.home)
        .args([
            "wrapper",
            "h",
            "sh",
            "-c",
            "echo $MFPLUG_HOME; echo $MFDATA_HOME",
        ])
        .env_remove("MFPLUG_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let home = ctx.home.display().to_string();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{home}\n{home}\n")
    );
}
