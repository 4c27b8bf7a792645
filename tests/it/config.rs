//! `mfplug config`: the effective configuration and variables, by dir or installed name.

use crate::mfplug_snapshot;
use crate::support::{succeed, TestContext};

fn variants_plugin(ctx: &TestContext, at: &str) {
    ctx.write(&format!("{at}/.layerapi2_label"), "plugin_var@mfplug\n");
    ctx.write(
        &format!("{at}/config.ini"),
        "[general]\n_version = 1.2.3\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n_release = 4\n\n[custom]\n# a comment\nurl = prod\nurl[DEV] = dev\nurl[DEV_JOHN] = john\nfull = {{MFPLUG_CURRENT_PLUGIN_NAME}} at {{MFPLUG_CURRENT_PLUGIN_CUSTOM_URL}}\nmulti = a\n    b\n\n[extra_daemon_w]\n_cmd_and_args = {plugin_dir}/w {extra_name}\ndebug = yes\n",
    );
}

#[test]
fn config_prints_effective_values_and_variables() {
    let ctx = TestContext::new();
    variants_plugin(&ctx, "var");
    mfplug_snapshot!(ctx, ctx.cmd(["config", "var"]).env("MFCONFIG", "dev_john"));
}

#[test]
fn config_json() {
    let ctx = TestContext::new();
    variants_plugin(&ctx, "var");
    let out = ctx
        .cmd(["config", "var", "--json"])
        .env("MFCONFIG", "DEV_JANE")
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config_name"], "DEV_JANE");
    assert_eq!(json["config"]["custom"]["url"], "dev");
    assert_eq!(
        json["variables"]["MFPLUG_CURRENT_PLUGIN_CUSTOM_FULL"],
        "var at dev"
    );
    assert_eq!(
        json["variables"]["MFPLUG_CURRENT_PLUGIN_CUSTOM_MULTI"],
        "a\nb"
    );
    assert_eq!(
        json["variables"]["MFPLUG_CURRENT_PLUGIN_EXTRA_DAEMON_W_DEBUG"],
        "1"
    );
    assert_eq!(json["variables"]["MFPLUG_CURRENT_PLUGIN_RELEASE"], "4");
    let dir = ctx.work.join("var").display().to_string();
    assert_eq!(json["variables"]["MFPLUG_CURRENT_PLUGIN_DIR"], dir.as_str());
    assert_eq!(
        json["config"]["extra_daemon_w"]["_cmd_and_args"],
        format!("{dir}/w w")
    );
    assert_eq!(
        json["variables"]["TMPDIR"],
        ctx.home.join("tmp/var").display().to_string()
    );
}

#[test]
fn config_by_installed_name_with_overrides() {
    let ctx = TestContext::new();
    let installed = ctx.home.join("plugins/var");
    std::fs::create_dir_all(&installed).unwrap();
    variants_plugin(&ctx, "src");
    for file in [".layerapi2_label", "config.ini"] {
        std::fs::copy(ctx.work.join("src").join(file), installed.join(file)).unwrap();
    }
    std::fs::create_dir_all(ctx.home.join("config/plugins")).unwrap();
    std::fs::write(
        ctx.home.join("config/plugins/var.ini"),
        "[custom]\n#url = commented\nurl = admin\n",
    )
    .unwrap();
    std::fs::create_dir_all(ctx.home.join("provision")).unwrap();
    std::fs::write(
        ctx.home.join("provision/var.ini"),
        "[extra_daemon_w]\nnumprocesses = 0\n",
    )
    .unwrap();
    let out = succeed(&mut ctx.cmd(["config", "var", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config"]["custom"]["url"], "admin");
    assert_eq!(json["config"]["extra_daemon_w"]["numprocesses"], "0");
    assert_eq!(json["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        json["variables"]["MFPLUG_CURRENT_PLUGIN_CUSTOM_FULL"],
        "var at admin"
    );
}

#[test]
fn config_errors() {
    let ctx = TestContext::new();
    mfplug_snapshot!(ctx, ctx.cmd(["config", "nothing"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `nothing` is neither a plugin dir nor a plugin installed in `[HOME]`

    hint: give a plugin dir, or the name of an installed plugin (`--home` chooses the home)
    ");
    ctx.write("broken/.layerapi2_label", "plugin_broken@mfplug\n");
    ctx.write("broken/config.ini", "[general]\n_version = 1\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[nope]\n");
    mfplug_snapshot!(ctx, ctx.cmd(["config", "broken"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: `broken/config.ini`, line 8, section `[nope]`: unknown section `[nope]`
      hint: known sections are `[general]`, `[custom*]`, `[extra_daemon_NAME]`, `[app_NAME]` and `[step_NAME]`; a section starting with `_` is ignored
    error: cannot read the configuration of `broken`

    hint: `mfplug check broken` lists every problem
    ");
}

/// A plugin's module is the one its label names: made with `--module MFDATA`, it keeps its
/// `MFDATA_*` variables on every later command without the flag.
#[test]
fn the_module_comes_from_the_label() {
    let ctx = TestContext::new();
    ctx.cmd(["--module", "MFDATA", "bootstrap", "create", "foo"])
        .assert()
        .success();
    let json = json_of(ctx.cmd(["config", "foo", "--json"]));
    assert_eq!(json["label"], "plugin_foo@mfdata");
    let variables = json["variables"].as_object().unwrap();
    assert_eq!(variables["MFDATA_CURRENT_PLUGIN_NAME"], "foo");
    assert!(
        !variables.keys().any(|k| k.starts_with("MFPLUG_")),
        "{variables:?}"
    );
    // The flag or `MFPLUG_MODULE` naming the label's module changes nothing.
    let flagged = json_of(ctx.cmd(["--module", "mfdata", "config", "foo", "--json"]));
    assert_eq!(flagged["variables"], json["variables"]);
    let mut by_env = ctx.cmd(["config", "foo", "--json"]);
    by_env.env("MFPLUG_MODULE", "MFDATA");
    assert_eq!(json_of(by_env)["variables"], json["variables"]);
    // An `@mfserv` label gives `MFSERV_*`, whatever the default module.
    ctx.write("foo/.layerapi2_label", "plugin_foo@mfserv\n");
    let json = json_of(ctx.cmd(["config", "foo", "--json"]));
    assert_eq!(json["variables"]["MFSERV_CURRENT_PLUGIN_NAME"], "foo");
}

/// The `--json` document of a `config` command that succeeds.
fn json_of(mut cmd: assert_cmd::Command) -> serde_json::Value {
    let out = succeed(&mut cmd);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `--module` or `MFPLUG_MODULE` naming another module than the label's is refused, naming
/// both and the fix, as MetWork refuses a label whose module is not the running one.
#[test]
fn a_module_that_disagrees_with_the_label_is_refused() {
    let ctx = TestContext::new();
    ctx.cmd(["--module", "MFSERV", "bootstrap", "create", "web"])
        .assert()
        .success();
    let mut by_env = ctx.cmd(["config", "web"]);
    by_env.env("MFPLUG_MODULE", "MFDATA");
    for mut cmd in [ctx.cmd(["--module", "MFDATA", "config", "web"]), by_env] {
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "`web/.layerapi2_label`, line 1: the label names module `mfserv` but \
                 `--module`/`MFPLUG_MODULE` names `MFDATA`"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("drop `--module MFDATA`") && stderr.contains("`plugin_web@mfdata`"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
