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
