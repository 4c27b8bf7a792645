//! Tidy checks inside `cargo test`: every module says why it exists, the architecture doc's
//! code map is the tree of `src/`, no test is ignored, the binary runs only through
//! `TestContext`, no test is named after a review round.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    for dir in ["src", "tests", "xtask/src"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} does not start with a `//!` comment saying why it exists",
                file.display()
            );
        }
    }
}

/// The modules of `src/` by their path (`build::fetch`), but for `main`, `lib` and the unit
/// test files.
fn src_modules() -> std::collections::BTreeSet<String> {
    let mut modules = std::collections::BTreeSet::new();
    for file in rust_files(&root().join("src")) {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        if rel.ends_with("tests.rs") || rel == "src/main.rs" || rel == "src/lib.rs" {
            continue;
        }
        let module = rel
            .trim_start_matches("src/")
            .trim_end_matches("/mod.rs")
            .trim_end_matches(".rs")
            .replace('/', "::");
        modules.insert(module);
    }
    modules
}

/// The modules the code map of `doc` names: the first cell of each row of its table (a
/// `` `module` `` in backticks), under the `## Code map` heading.
fn code_map_modules(doc: &str) -> Vec<String> {
    let Some((_, rest)) = doc.split_once("\n## Code map\n") else {
        return Vec::new();
    };
    let section = rest.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|cell| cell.split_once('`').map(|(module, _)| module.to_owned()))
        .collect()
}

/// What is wrong with `doc`'s code map for the modules `modules`: a module it has no row for,
/// a row for a module that does not exist, a module with two rows.
fn code_map_errors(doc: &str, modules: &std::collections::BTreeSet<String>) -> Vec<String> {
    let rows = code_map_modules(doc);
    let mut errors = Vec::new();
    for module in modules {
        if !rows.contains(module) {
            errors.push(format!("no row for `{module}`"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        if !modules.contains(row) {
            errors.push(format!("a row for `{row}`, which is not a module of src/"));
        }
        if !seen.insert(row) {
            errors.push(format!("two rows for `{row}`"));
        }
    }
    errors
}

/// The code map of `docs/architecture.md` has one row per module of `src/` and no other: a
/// module named only in passing (in prose, or as the prefix of its submodule's row) or a row
/// left behind by a module that went does not count.
#[test]
fn architecture_doc_names_every_module() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let errors = code_map_errors(&doc, &src_modules());
    assert!(
        errors.is_empty(),
        "the code map of docs/architecture.md is not the tree of src/:\n{}",
        errors.join("\n")
    );
}

/// The check itself, on broken copies of a map: each way of being wrong is reported.
#[test]
fn the_code_map_check_finds_what_is_missing_or_left_over() {
    let modules: std::collections::BTreeSet<String> =
        ["home", "home::install"].map(str::to_owned).into();
    let map = |rows: &str| {
        format!("# A\n\n`home` in prose\n\n## Code map\n\n| module | owns |\n|---|---|\n{rows}\n## Next\n\n| `gone` | x |\n")
    };
    assert!(code_map_errors(&map("| `home` | h |\n| `home::install` | i |"), &modules).is_empty());
    assert_eq!(
        code_map_errors(&map("| `home::install` | i |"), &modules),
        ["no row for `home`"]
    );
    assert_eq!(
        code_map_errors(
            &map("| `home` | h |\n| `home::install` | i |\n| `old` | o |"),
            &modules
        ),
        ["a row for `old`, which is not a module of src/"]
    );
    assert_eq!(
        code_map_errors(
            &map("| `home` | h |\n| `home` | h |\n| `home::install` | i |"),
            &modules
        ),
        ["two rows for `home`"]
    );
    assert_eq!(code_map_errors("no map", &modules).len(), 2);
}

/// Every run of the built binary goes through `TestContext` (`cmd`, `command`,
/// `command_under`), which clears the environment: a raw spawn would inherit the runner's
/// `MFPLUG_HOME`, `XDG_CACHE_HOME`, `PIP_INDEX_URL`... and test the machine, not mfplug.
#[test]
fn the_binary_is_run_only_through_the_test_context() {
    let needle = ["CARGO_BIN_EXE", "_mfplug"].concat();
    for file in rust_files(&root().join("tests")) {
        if file.ends_with("tests/it/support.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&needle),
            "{} runs mfplug itself: use `ctx.cmd(...)`, `ctx.command(...)` or `ctx.command_under(...)`",
            file.display()
        );
    }
}

/// A test's name says what it guards: no `r5_`-style prefix (the round of review that asked
/// for it, which says nothing to the next reader).
#[test]
fn no_test_is_named_after_a_review_round() {
    for file in rust_files(&root().join("tests")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let Some(name) = line.trim_start().strip_prefix("fn r") else {
                continue;
            };
            let digits = name.chars().take_while(char::is_ascii_digit).count();
            assert!(
                digits == 0 || !name[digits..].starts_with('_'),
                "{}:{}: `fn r{name}`: name the test after what it guards",
                file.display(),
                number + 1
            );
        }
    }
}

#[test]
fn no_ignored_tests() {
    let needle = ["#[", "ignore"].concat();
    for dir in ["src", "tests"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(!text.contains(&needle), "{} ignores a test", file.display());
        }
    }
}

/// The snapshot filters replace what changes from run to run, and only that: the runtime home,
/// the cache dir, the temp root, wall-clock times, durations, mfplug's version (not a
/// plugin's `0.1.0`).
#[test]
fn snapshot_filters_hide_what_changes_from_run_to_run() {
    let ctx = crate::support::TestContext::new();
    let root = ctx.root().display().to_string();
    let text = format!(
        "home {home}/plugins/foo\n\
         cache {root}/user/.cache/mfplug/wheels and {root}/cache/mfplug/pages\n\
         work {root}/work/p, raw {raw}/work\n\
         built 2026-12-02 06:45:50 UTC, at 2026-12-02T06:45:50.123Z\n\
         Built `local/`: 2 packages in 0.04 s; GET x -> 200 (12 ms); took 3s\n\
         {{\"elapsed_ms\": 1234}}\n\
         tool: mfplug {version}, agent mfplug/{version}\n\
         {version}\n\
         plugin foo 0.1.0, 3 packages, 2 errors\n",
        home = ctx.home.display(),
        raw = ctx.tmp.path().display(),
        version = env!("CARGO_PKG_VERSION"),
    );
    let filters = ctx.filters();
    let filters: Vec<(&str, &str)> = filters
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!(text, @r#"
        home [HOME]/plugins/foo
        cache [CACHE_DIR]/wheels and [CACHE_DIR]/pages
        work [TEMP_DIR]/work/p, raw [TEMP_DIR]/work
        built [TIME], at [TIME]
        Built `local/`: 2 packages in [ELAPSED]; GET x -> 200 ([ELAPSED]); took [ELAPSED]
        {"elapsed_ms": [ELAPSED]}
        tool: mfplug [VERSION], agent mfplug/[VERSION]
        [VERSION]
        plugin foo 0.1.0, 3 packages, 2 errors
        "#);
    });
}
