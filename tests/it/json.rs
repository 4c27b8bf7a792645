//! `--json` (issue 15): every document that `docs/json.md` describes is checked against the
//! real output of its command: `schema_version` first and equal to 1, and exactly the
//! top-level keys of its `Keys:` line.

use std::collections::BTreeMap;

use crate::index::{release, Index, Mode};
use crate::support::TestContext;

/// The `Keys:` line of each `## COMMAND` section of `docs/json.md`.
fn documented() -> BTreeMap<String, Vec<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let mut out = BTreeMap::new();
    let mut section = None;
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = Some(title.to_owned());
        } else if let (Some(keys), Some(title)) = (line.strip_prefix("Keys: "), &section) {
            let keys = keys
                .split(", ")
                .map(|k| k.trim_matches('`').to_owned())
                .collect();
            out.insert(title.clone(), keys);
        }
    }
    out
}

/// Runs `args` with `--json`, checks its exit code, and gives its document (the first line of
/// a JSON Lines stream).
fn document(ctx: &TestContext, args: &[&str], code: i32) -> serde_json::Value {
    let out = ctx
        .cmd(args.iter().copied().chain(["--json"]))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let text = if args[0] == "provision" {
        text.lines().next().unwrap_or_default().to_owned()
    } else {
        text
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

#[test]
fn every_documented_json_shape_is_what_the_command_prints() {
    let docs = documented();
    let ctx = TestContext::new();
    let index = Index::start(Mode::Html, &[release("a", "1.0", &[])]);
    let mut seen: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut run = |section: &str, args: &[&str], code: i32| {
        seen.insert(section.to_owned(), document(&ctx, args, code));
    };
    run("bootstrap list", &["bootstrap", "list"], 0);
    run(
        "bootstrap create",
        &["bootstrap", "create", "foo", "-t", "bin"],
        0,
    );
    run("check", &["check", "foo"], 0);
    run("config", &["config", "foo"], 0);
    run("build", &["build", "foo"], 0);
    run("clean", &["clean", "foo"], 0);
    run("release", &["release", "foo", "-o", "out"], 0);
    let file = "out/foo-0.0.1-1.plugin";
    run("info FILE", &["info", file, "--files"], 0);
    run("verify FILE", &["verify", file], 0);
    run("install", &["install", file], 0);
    run("list", &["list"], 0);
    run("info NAME", &["info", "foo", "--files"], 0);
    run("verify NAME", &["verify", "foo"], 0);
    run("crontab", &["crontab"], 0);
    run("uninstall", &["uninstall", "foo"], 0);
    std::fs::create_dir_all(ctx.home.join("provision")).unwrap();
    std::fs::copy(
        ctx.work.join(file),
        ctx.home.join("provision/foo-0.0.1-1.plugin"),
    )
    .unwrap();
    run("provision", &["provision"], 0);
    ctx.write(
        "plugin/python3_virtualenv_sources/requirements-to-freeze.txt",
        "a\n",
    );
    run("lock", &["lock", "plugin", "--index-url", &index.url], 0);
    run("lock --check", &["lock", "plugin", "--check"], 0);

    let mut undocumented = Vec::new();
    for (section, value) in &seen {
        let Some(keys) = docs.get(section) else {
            undocumented.push(section.clone());
            continue;
        };
        let object = value.as_object().unwrap();
        assert_eq!(
            object.keys().next().map(String::as_str),
            Some("schema_version"),
            "{section}"
        );
        assert_eq!(object["schema_version"], 1, "{section}");
        let mut got: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = keys.iter().map(String::as_str).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "`{section}` in docs/json.md against its output");
    }
    assert!(
        undocumented.is_empty(),
        "not in docs/json.md: {undocumented:?}"
    );
    let untested: Vec<&String> = docs.keys().filter(|s| !seen.contains_key(*s)).collect();
    assert!(untested.is_empty(), "documented but not run: {untested:?}");
    // The values follow the shapes too.
    assert_eq!(seen["info FILE"]["entries"][0]["kind"], "file");
    assert_eq!(seen["list"]["plugins"][0]["name"], "foo");
    assert_eq!(seen["uninstall"]["action"], "uninstalled");
    assert_eq!(seen["lock"]["packages"][0]["name"], "a");
    assert_eq!(seen["lock --check"]["fresh"], true);
    assert_eq!(seen["provision"]["action"], "Provisioned");
}
