//! MetWork's module profiles (issue 16, item 2): each module's keys, defaults, forced values
//! and checks, on plugin dirs written here from reading `mfserv`, `mfdata` and `mfbase`'s
//! `adm/plugins.py` (our own fixtures and expected values).

use crate::support::TestContext;

/// The `[general]` keys every module requires.
const GENERAL: &str = "[general]\n_version = 1.0.0\n_summary = s\n_license = BSD-3-Clause\n\
                       _url = https://example.invalid\n_maintainer = m <m@example.invalid>\n\
                       _vendor = v\n";

/// Writes plugin `name` of `module` (lower case) with `rest` after the `[general]` keys.
fn plugin(ctx: &TestContext, name: &str, module: &str, general: &str, rest: &str) {
    ctx.write(
        &format!("{name}/.layerapi2_label"),
        &format!("plugin_{name}@{module}\n"),
    );
    ctx.write(
        &format!("{name}/config.ini"),
        &format!("{GENERAL}{general}\n{rest}"),
    );
}

/// `mfplug config DIR --json`, which must succeed.
fn config_json(ctx: &TestContext, dir: &str) -> serde_json::Value {
    let out = ctx.cmd(["config", dir, "--json"]).output().unwrap();
    let stderr = crate::support::stderr(&out);
    assert!(out.status.success(), "{dir}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `mfplug check DIR`, which must fail; its stderr.
fn check_fails(ctx: &TestContext, dir: &str) -> String {
    let out = ctx.cmd(["check", dir]).output().unwrap();
    let stderr = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{dir}: {stderr}");
    stderr
}

#[test]
fn mfserv_app_defaults_and_forced_values() {
    let ctx = TestContext::new();
    ctx.write("web/nginx_http.conf", "# http fragment\n");
    plugin(
        &ctx,
        "web",
        "mfserv",
        "_extra_nginx_http_conf_filename = nginx_http.conf\n\
         _extra_nginx_server_conf_filename = null\n",
        "[internal]\ndisable_nginx_conf = yes\n\n\
         [app_main]\n_cmd_and_args = run {app_name}\nnumprocesses = 4\ndebug = 1\nmax_age = 300\n\
         timeout = 0\n\n\
         [app_api]\n_cmd_and_args = api\nnumprocesses = 2\ntimeout = 30\nsmart_stop_delay = 5\n",
    );
    let json = config_json(&ctx, "web");
    let config = &json["config"];
    assert_eq!(config["general"]["_add_plugin_dir_to_lua_path"], "1");
    assert_eq!(config["general"]["_extra_nginx_server_conf_filename"], "");
    assert_eq!(config["internal"]["disable_nginx_conf"], "1");
    let main = &config["app_main"];
    // `timeout` ≤ 0 is `MFSERV_NGINX_TIMEOUT` (60 when it is not set); debug forces one process
    // and no `max_age`; `graceful_timeout` is `timeout + smart_stop_delay + 10`.
    assert_eq!(main["timeout"], "60");
    assert_eq!(main["numprocesses"], "1");
    assert_eq!(main["max_age"], "0");
    assert_eq!(main["graceful_timeout"], "73");
    assert_eq!(main["smart_stop_signal"], "15");
    assert_eq!(main["_static_url_prefix"], "/static");
    assert_eq!(main["_http_test_expected_status_code"], "200");
    let api = &config["app_api"];
    assert_eq!(api["numprocesses"], "2");
    assert_eq!(api["graceful_timeout"], "45");
    let vars = &json["variables"];
    assert_eq!(vars["MFSERV_CURRENT_PLUGIN_APP_MAIN_NUMPROCESSES"], "1");
    assert_eq!(vars["MFSERV_CURRENT_PLUGIN_APP_API_GRACEFUL_TIMEOUT"], "45");
    assert_eq!(
        vars["MFSERV_CURRENT_PLUGIN_INTERNAL_DISABLE_NGINX_CONF"],
        "1"
    );

    // `MFSERV_NGINX_TIMEOUT` is the fallback when the environment sets it.
    let out = ctx
        .cmd(["config", "web", "--json"])
        .env("MFSERV_NGINX_TIMEOUT", "120")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["config"]["app_main"]["timeout"], "120");
}

#[test]
fn mfserv_refuses_a_missing_nginx_file_bad_routes_and_other_modules_sections() {
    let ctx = TestContext::new();
    plugin(
        &ctx,
        "web",
        "mfserv",
        "_extra_nginx_http_conf_filename = missing.conf\n",
        "[app_main]\n_cmd_and_args = run\nprefix_based_routing_extra_routes = /ok;bad;/slash/\n\
         module_specific = x\n\n[step_main]\n_cmd_and_args = x\n",
    );
    let stderr = check_fails(&ctx, "web");
    assert!(
        stderr.contains(
            "`web/config.ini`, line 8, section `[general]`: `_extra_nginx_http_conf_filename` \
             names `missing.conf`, which is not a file under the plugin dir"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 12, section `[app_main]`: `prefix_based_routing_extra_routes`: the route `bad` does not start with `/`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the route `/slash/` ends with `/`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 13, section `[app_main]`: unknown key `module_specific`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("section `[step_main]` is not one of this plugin's module"),
        "{stderr}"
    );
}

#[test]
fn mfdata_step_defaults_forced_values_and_switch_rules() {
    let ctx = TestContext::new();
    plugin(
        &ctx,
        "data",
        "mfdata",
        "",
        "[step_main]\n_cmd_and_args = main {step_name}\nnumprocesses = 2\ntimeout = 30\n\
         failure_policy = move\nfailure_policy_move_dest_dir = /tmp/failed\n\n\
         [switch_rules:fnmatch:latest.switch.main.system_original_basename]\n*.gz = main\n",
    );
    let json = config_json(&ctx, "data");
    let step = &json["config"]["step_main"];
    assert_eq!(step["watched_directories"], "{MFDATA_CURRENT_STEP_DIR}");
    assert_eq!(step["retry_total"], "0");
    assert_eq!(step["retry_min_wait"], "10");
    assert_eq!(step["retry_max_wait"], "120");
    // A step's `graceful_timeout` is its `timeout`.
    assert_eq!(step["graceful_timeout"], "30");
    assert_eq!(
        json["variables"]["MFDATA_CURRENT_PLUGIN_STEP_MAIN_FAILURE_POLICY"],
        "move"
    );
    let rules = &json["config"]["switch_rules:fnmatch:latest.switch.main.system_original_basename"];
    assert_eq!(rules["*.gz"], "main");
}

#[test]
fn mfdata_refuses_move_without_destination_and_retry_waits_out_of_order() {
    let ctx = TestContext::new();
    plugin(
        &ctx,
        "data",
        "mfdata",
        "",
        "[step_a]\n_cmd_and_args = a\nfailure_policy = move\n\n\
         [step_b]\n_cmd_and_args = b\nretry_min_wait = 30\nretry_max_wait = 5.5\n\n\
         [step_c]\n_cmd_and_args = c\nfailure_policy = drop\nretry_backoff = soon\n",
    );
    let stderr = check_fails(&ctx, "data");
    for expected in [
        "`data/config.ini`, line 11, section `[step_a]`: `failure_policy = move` needs \
         `failure_policy_move_dest_dir`, which is not set",
        "`data/config.ini`, line 16, section `[step_b]`: `retry_max_wait` (5.5) is below \
         `retry_min_wait` (30)",
        "line 20, section `[step_c]`: `failure_policy`: `drop` is not one of `keep`, `delete`, \
         `move`",
        "line 21, section `[step_c]`: `retry_backoff`: `soon` is not a number",
    ] {
        assert!(stderr.contains(expected), "{expected}\nnot in\n{stderr}");
    }
}

#[test]
fn mfbase_storage_keys() {
    let ctx = TestContext::new();
    ctx.write("store/htpasswd", "u:x\n");
    plugin(
        &ctx,
        "store",
        "mfbase",
        "_use_postgresql = no\nstorage_auth_passwd_filename = htpasswd\n\
         storage_forbidden_dav_methods = put delete\n",
        "",
    );
    let json = config_json(&ctx, "store");
    let general = &json["config"]["general"];
    assert_eq!(general["_use_postgresql"], "0");
    assert_eq!(general["_use_storage"], "1");
    assert_eq!(general["storage_satisfy"], "any");
    assert_eq!(general["storage_autoindex_format"], "html");
    assert_eq!(general["storage_forbidden_dav_methods"], "PUT,DELETE");
    let passwd = ctx.work.join("store/htpasswd").display().to_string();
    assert_eq!(general["storage_auth_passwd_filename"], passwd.as_str());
    assert_eq!(
        json["variables"]["MFBASE_CURRENT_PLUGIN_GENERAL_STORAGE_AUTH_PASSWD_FILENAME"],
        passwd.as_str()
    );

    plugin(
        &ctx,
        "nopass",
        "mfbase",
        "storage_auth_passwd_filename = missing\nstorage_satisfy = some\n",
        "[step_x]\n_cmd_and_args = x\n",
    );
    let stderr = check_fails(&ctx, "nopass");
    assert!(
        stderr.contains("line 8, section `[general]`: `storage_auth_passwd_filename`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`some` is not one of `any`, `all`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("section `[step_x]` is not one of this plugin's module"),
        "{stderr}"
    );
}

/// Plugin dirs like those of mfplugin's own tests (`mfplugin/tests/data`), written here: each
/// accepted or refused as mfplugin's tests expect, the refusal naming the rule.
#[test]
fn mfplugin_test_plugins_are_accepted_and_refused_as_mfplugin_does() {
    let ctx = TestContext::new();
    let package =
        "_release=1\n_summary=a summary\n_url=http://example.invalid\n_maintainer=Someone\n";
    let cases: [(&str, &str, String, Option<&str>); 5] = [
        // A good generic plugin, with a variant (mfplugin's `plugin1`).
        (
            "good",
            "plugin_good@generic",
            format!("[general]\n_version=1.2.3\n{package}_license=BSD\n_vendor=V\n[custom]\nk=v\nk[SPECIFIC]=w\n"),
            None,
        ),
        // No `[general]` section (`badplugin1`).
        (
            "nogeneral",
            "plugin_nogeneral@generic",
            "[not_general]\nfoo=1\n".to_owned(),
            Some("has no `[general]` section"),
        ),
        // A label without its module (`badplugin2`).
        (
            "nomodule",
            "plugin_nomodule@",
            format!("[general]\n_version=1.2.3\n{package}_license=BSD\n_vendor=V\n"),
            Some(".layerapi2_label"),
        ),
        // `_version=1.` fits MetWork's pattern; the missing `_vendor` refuses it
        // (`badplugin3`).
        (
            "novendor",
            "plugin_novendor@generic",
            format!("[general]\n_version=1.\n{package}_license=BSD\n"),
            Some("`_vendor` is missing"),
        ),
        // No `_license` (`badplugin4`).
        (
            "nolicense",
            "plugin_nolicense@generic",
            format!("[general]\n_version=1.2.3\n{package}_vendor=V\n"),
            Some("`_license` is missing"),
        ),
    ];
    for (dir, label, config, refusal) in cases {
        ctx.write(&format!("{dir}/.layerapi2_label"), &format!("{label}\n"));
        ctx.write(&format!("{dir}/config.ini"), &config);
        let out = ctx.cmd(["check", dir]).output().unwrap();
        let stderr = crate::support::stderr(&out);
        match refusal {
            None => assert!(out.status.success(), "{dir}: {stderr}"),
            Some(rule) => {
                assert_eq!(out.status.code(), Some(1), "{dir}: {stderr}");
                assert!(stderr.contains(rule), "{dir}: {rule} not in {stderr}");
            }
        }
    }
    let json = config_json(&ctx, "good");
    assert_eq!(json["variables"]["GENERIC_CURRENT_PLUGIN_CUSTOM_K"], "v");
    assert_eq!(json["config"]["general"]["_version"], "1.2.3");
}
