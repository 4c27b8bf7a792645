//! Unit tests of the plugin model: layering, variants, schema, rendering, variables.

use super::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
}

/// The `[general]` keys every module requires besides `_version`, which [`plugin`] writes
/// after the `[general]` line when the fixture does not: [`GENERAL_LINES`] lines.
const REQUIRED: &str = "_summary = s\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = m <m@example.invalid>\n_vendor = v\n";
const GENERAL_LINES: usize = 5;

/// [`REQUIRED`] inserted after the `[general]` line of `config`, the keys it sets left out.
fn with_required(config: &str) -> String {
    let keys: String = REQUIRED
        .lines()
        .filter(|line| {
            let key = line.split('=').next().unwrap_or_default().trim();
            !config.lines().any(|l| l.trim_start().starts_with(key))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    config.replacen("[general]\n", &format!("[general]\n{keys}"), 1)
}

fn plugin(config: &str) -> Fixture {
    plugin_raw(&with_required(config))
}

/// A plugin whose `config.ini` is `config` as it is.
fn plugin_raw(config: &str) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    let home = tmp.path().join("home");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join(".layerapi2_label"), "plugin_foo@mfplug\n").unwrap();
    fs_err::write(dir.join("config.ini"), config).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        home,
    }
}

fn settings(fx: &Fixture, config_name: &str) -> Settings {
    let mut env = BTreeMap::new();
    env.insert("SOME_ENV".to_owned(), "from-env".to_owned());
    Settings {
        module: "MFPLUG".into(),
        module_given: false,
        config_name: config_name.into(),
        home: Some(fx.home.clone()),
        env,
    }
}

fn write_override(fx: &Fixture, which: usize, text: &str) -> PathBuf {
    let path = override_paths(&fx.home, "foo")[which].clone();
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(&path, text).unwrap();
    path
}

const BASE: &str = "\
[general]
_version = 1.0.0
_summary = test plugin

[custom]
foo = plain
foo[DEV] = dev
foo[DEV_JOHN] = john
bar = {{SOME_ENV}}-{{MFPLUG_CURRENT_PLUGIN_NAME}}
baz = {{MFPLUG_CURRENT_PLUGIN_CUSTOM_FOO}}/x
flag = yes
empty = null

[extra_daemon_worker]
_cmd_and_args = {plugin_dir}/bin/run {extra_name} {plugin_name}
numprocesses = 2
debug = True

[_private]
whatever = 1
";

#[test]
fn variants_pick_longest_match_then_plain() {
    let fx = plugin(BASE);
    let get = |name: &str| {
        let config = load(&fx.dir, &settings(&fx, name)).unwrap();
        config.get("custom", "foo").unwrap().to_owned()
    };
    assert_eq!(get("GENERIC"), "plain");
    assert_eq!(get("DEV"), "dev");
    assert_eq!(get("dev"), "dev");
    assert_eq!(get("DEV_JOHN"), "john");
    assert_eq!(get("DEV_JANE"), "dev");
    assert_eq!(get("DEVELOPER"), "plain");
    assert_eq!(get("PROD"), "plain");
}

#[test]
fn select_variant_rules() {
    let v = [None, Some("DEV"), Some("DEV_JOHN")];
    assert_eq!(select_variant("DEV_JOHN_2", v), Some(2));
    assert_eq!(select_variant("dev_x", v), Some(1));
    assert_eq!(select_variant("prod", v), Some(0));
    assert_eq!(select_variant("prod", [Some("DEV")]), None);
}

#[test]
fn values_render_and_variables_are_generated() {
    let fx = plugin(BASE);
    let config = load(&fx.dir, &settings(&fx, "DEV")).unwrap();
    let vars = &config.variables;
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_NAME"], "foo");
    assert_eq!(
        vars["MFPLUG_CURRENT_PLUGIN_DIR"],
        fx.dir.display().to_string()
    );
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_LABEL"], "plugin_foo@mfplug");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_VERSION"], "1.0.0");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_RELEASE"], "1");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_CUSTOM_FOO"], "dev");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_CUSTOM_BAR"], "from-env-foo");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_CUSTOM_BAZ"], "dev/x");
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_CUSTOM_FLAG"], "yes");
    // A free key keeps `null` as it is, as MetWork keeps it.
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_CUSTOM_EMPTY"], "null");
    assert_eq!(
        vars["MFPLUG_CURRENT_PLUGIN_EXTRA_DAEMON_WORKER_NUMPROCESSES"],
        "2"
    );
    assert_eq!(vars["MFPLUG_CURRENT_PLUGIN_EXTRA_DAEMON_WORKER_DEBUG"], "1");
    assert_eq!(
        vars["MFPLUG_CURRENT_PLUGIN_EXTRA_DAEMON_WORKER_GRACEFUL_TIMEOUT"],
        "10"
    );
    assert!(!vars
        .keys()
        .any(|k| k.contains("_CMD_AND_ARGS") || k.contains("PRIVATE")));
    assert_eq!(
        vars["TMPDIR"],
        fx.home.join("tmp/foo").display().to_string()
    );
    assert_eq!(vars["PYTHONPATH"], format!("{0}:{0}/lib", fx.dir.display()));
    assert_eq!(
        config.get("extra_daemon_worker", "_cmd_and_args").unwrap(),
        format!("{}/bin/run worker foo", fx.dir.display())
    );
    assert!(!config.sections.contains_key("_private"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn module_prefix_and_python_path() {
    let fx =
        plugin("[general]\n_version=1\n_add_plugin_dir_to_python_path = 0\n[custom]\nmy-key = 1\n");
    fs_err::write(fx.dir.join(".layerapi2_label"), "plugin_foo@mfdata\n").unwrap();
    let mut s = settings(&fx, "GENERIC");
    s.env.insert("PYTHONPATH".into(), "/opt/lib".into());
    // The label says mfdata, no module is given: an MFDATA plugin.
    let config = load(&fx.dir, &s).unwrap();
    assert_eq!(
        config.variables["MFDATA_CURRENT_PLUGIN_LABEL"],
        "plugin_foo@mfdata"
    );
    assert_eq!(config.variables["MFDATA_CURRENT_PLUGIN_CUSTOM_MY_KEY"], "1");
    assert_eq!(
        config.variables["PYTHONPATH"],
        format!("{}/lib:/opt/lib", fx.dir.display())
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // The same module given: the same; another one given: an error naming both, where a
    // warning used to let the plugin load under the given module's prefix.
    s.module = "MFDATA".into();
    s.module_given = true;
    assert!(load(&fx.dir, &s).is_ok());
    s.module = "MFSERV".into();
    let problems = load(&fx.dir, &s).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0]
        .message
        .contains("`mfdata` but `--module`/`MFPLUG_MODULE` names `MFSERV`"));
    assert_eq!(problems[0].line, Some(1));
}

#[test]
fn unknown_variable_renders_empty_with_a_warning() {
    let fx = plugin("[general]\n_version=1\n[custom]\nx = a{{NOPE}}b\n");
    let config = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap();
    assert_eq!(config.get("custom", "x"), Some("ab"));
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].line, Some(4 + GENERAL_LINES));
    assert!(config.warnings[0].message.contains("`NOPE`"));
}

#[test]
fn layers_override_in_order_and_variants_resolve_after_merging() {
    let fx = plugin(BASE);
    write_override(&fx, 0, "[custom]\n# foo = commented\nfoo = admin\nnew = 1\n[extra_daemon_worker]\nnumprocesses = 3\n");
    write_override(&fx, 1, "[extra_daemon_worker]\nnumprocesses = 4\n");
    let config = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap();
    assert_eq!(config.get("custom", "foo"), Some("admin"));
    assert_eq!(config.get("custom", "new"), Some("1"));
    assert_eq!(config.get("extra_daemon_worker", "numprocesses"), Some("4"));
    assert_eq!(config.layers.len(), 3);
    // The plugin's `foo[DEV]` still beats the admin's plain `foo` under DEV.
    let config = load(&fx.dir, &settings(&fx, "DEV")).unwrap();
    assert_eq!(config.get("custom", "foo"), Some("dev"));
    match &config.sections["extra_daemon_worker"]["numprocesses"].origin {
        Origin::File { path, line } => {
            assert!(path.ends_with("provision/foo.ini"));
            assert_eq!(*line, 2);
        }
        other => panic!("unexpected origin {other:?}"),
    }
}

#[test]
fn private_keys_are_not_overridable() {
    let fx = plugin(BASE);
    let path = write_override(
        &fx,
        0,
        "[general]\n_version = 9\n[_hidden]\nx=1\n[custom]\nfoo = ok\n",
    );
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    let errors: Vec<_> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].file.as_deref(), Some(path.as_path()));
    assert_eq!(errors[0].line, Some(2));
    assert!(errors[0]
        .message
        .contains("`_version` cannot be overridden"));
    assert_eq!(errors[1].line, Some(3));
}

#[test]
fn unknown_sections_and_keys_are_errors_with_suggestions() {
    let fx = plugin(
        "[general]\n_version = 1\n_sumary = x\n[extra_deamon_foo]\nnumprocesses=1\n[extra_daemon_bar]\nnumprocess = 2\n_cmd_and_args = x\n[app_x]\nmodule_specific = kept\n",
    );
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    let summary: Vec<(Option<usize>, Option<String>, Option<String>)> = problems
        .iter()
        .map(|p| (p.line, p.key.clone(), p.hint.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some(3 + GENERAL_LINES),
                Some("_sumary".into()),
                Some("did you mean `_summary`?".into())
            ),
            (
                Some(4 + GENERAL_LINES),
                None,
                Some("did you mean `[extra_daemon_foo]`?".into())
            ),
            (
                Some(7 + GENERAL_LINES),
                Some("numprocess".into()),
                Some("did you mean `numprocesses`?".into())
            ),
        ]
    );
    assert!(problems[0].to_string().contains(&format!(
        "config.ini`, line {}, section `[general]`: unknown key `_sumary`",
        3 + GENERAL_LINES
    )));
}

#[test]
fn switch_rules_belong_to_mfdata() {
    let text = "[general]\n_version = 1\n[switch_rules:fnmatch:x]\n* = y\n";
    let fx = plugin(text);
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, Some(3 + GENERAL_LINES));
    assert!(problems[0]
        .message
        .contains("section `[switch_rules:fnmatch:x]` is not one of this plugin's module"));
    fs_err::write(fx.dir.join(".layerapi2_label"), "plugin_foo@mfdata\n").unwrap();
    let config = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap();
    assert_eq!(config.get("switch_rules:fnmatch:x", "*"), Some("y"));
}

#[test]
fn every_module_requires_the_package_keys() {
    let fx = plugin_raw("[general]\n_version = 1\n_summary =\n_url = null\n");
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for key in ["_license", "_maintainer", "_vendor"] {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("line 1, section `[general]`: `{key}` is missing"))),
            "{messages:?}"
        );
    }
    assert!(
        messages
            .iter()
            .any(|m| m
                .contains("line 3, section `[general]`: `_summary`: is empty, but it is required")),
        "{messages:?}"
    );
    // `null` is a value for a required key, as for MetWork.
    assert_eq!(problems.len(), 4, "{messages:?}");
}

#[test]
fn coercion_errors_name_the_key_even_for_unselected_variants() {
    let fx = plugin(
        "[general]\n_version = 1.0 beta\n[extra_daemon_a]\n_cmd_and_args = x\nnumprocesses[PROD] = many\ngraceful_timeout = {{ 'abc' }}\n",
    );
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
    let n = GENERAL_LINES;
    assert_eq!(
        lines,
        vec![Some(2 + n), Some(5 + n), Some(6 + n)],
        "{problems:?}"
    );
    // A junk integer reads as 0 with a warning, as MetWork's `to_int` reads it.
    assert_eq!(problems[0].severity, Severity::Error);
    assert!(problems[1]
        .message
        .contains("`numprocesses[PROD]`: `many` is not an integer: it reads as 0"));
    assert_eq!(problems[1].severity, Severity::Warning);
    assert!(problems[2]
        .message
        .contains("`graceful_timeout` once rendered: `abc` is not"));
    assert_eq!(problems[2].severity, Severity::Warning);
}

#[test]
fn missing_pieces_are_all_reported() {
    let tmp = tempfile::tempdir().unwrap();
    fs_err::write(tmp.path().join(".plugin_format_version"), "\n").unwrap();
    let s = Settings {
        module: "MFPLUG".into(),
        module_given: false,
        config_name: "GENERIC".into(),
        home: None,
        env: BTreeMap::new(),
    };
    let problems = load(tmp.path(), &s).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].message.contains(".layerapi2_label` is missing"));
    assert!(problems[1]
        .to_string()
        .contains(".plugin_format_version`: is empty"));
    assert!(problems[2].to_string().contains("config.ini`: is missing"));
}

#[test]
fn general_and_version_are_required_and_syntax_errors_collected() {
    let fx = plugin("[custom]\nx = 1\nbad line\n[custom]\n");
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 3, "{messages:?}");
    assert!(messages[0].contains("has no `[general]` section"));
    assert!(messages[1].contains("line 3: `bad line` is neither"));
    assert!(messages[2].contains("line 4: section `[custom]` is already defined on line 1"));

    let fx = plugin("[general]\n_release = 2\n");
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    assert!(problems[0].message.contains("`_version` is missing"));
}

#[test]
fn template_syntax_error_is_reported() {
    let fx = plugin("[general]\n_version = 1\n[custom]\nx = {{ oops\n");
    let problems = load(&fx.dir, &settings(&fx, "GENERIC")).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(4 + GENERAL_LINES));
    assert!(problems[0].message.starts_with("`x` cannot be rendered"));
}

#[test]
fn placeholders() {
    assert_eq!(
        fill_placeholders(
            "{plugin_dir}/{app_name} {extra_name} {other}",
            "p",
            "/d",
            "app_web"
        ),
        "/d/web {extra_name} {other}"
    );
    assert_eq!(
        fill_placeholders("{step_name}", "p", "/d", "step_main"),
        "main"
    );
}

#[test]
fn variable_names() {
    assert_eq!(
        variable_name("MFDATA", "custom", "foo-bar"),
        "MFDATA_CURRENT_PLUGIN_CUSTOM_FOO_BAR"
    );
    assert_eq!(
        variable_name("MFPLUG", "custom_db", "a.b"),
        "MFPLUG_CURRENT_PLUGIN_CUSTOM_DB_A_B"
    );
}
