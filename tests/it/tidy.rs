//! Tidy checks inside `cargo test`: every module says why it exists, the architecture doc
//! names every module, no test is ignored, the binary runs only through `TestContext`, no test
//! is named after a review round, and the module graph and the map's invariants hold (the
//! checker of `cargo xtask tidy`, included from `xtask/src/tidy.rs`, so `cargo test` and
//! `cargo xtask ci` check the same).

use std::path::{Path, PathBuf};

#[allow(dead_code, reason = "the xtask uses the rest of the checker")]
#[path = "../../xtask/src/tidy.rs"]
mod checker;

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

/// The modules of `src/` (`home::install`), less the crate root and test-only files.
fn src_modules() -> Vec<String> {
    let mut modules: Vec<String> = rust_files(&root().join("src"))
        .iter()
        .filter_map(|file| {
            let rel = file.strip_prefix(root()).unwrap().display().to_string();
            let module = checker::module_of(&rel)?;
            (!module.is_empty() && module.last().is_some_and(|m| m != "tests"))
                .then(|| module.join("::"))
        })
        .collect();
    modules.sort();
    modules
}

/// The rows of the code map (`| \`module\` | owns |`) that name no module of `modules`, and
/// the modules named by no row nor anywhere in the doc as a whole `` `module` ``.
fn map_mismatches(doc: &str, modules: &[String]) -> (Vec<String>, Vec<String>) {
    let rows: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(m, _)| m))
        .collect();
    let stale = rows
        .iter()
        .filter(|r| !modules.iter().any(|m| m == *r))
        .map(|r| (*r).to_owned())
        .collect();
    let unnamed = modules
        .iter()
        .filter(|m| !rows.contains(&m.as_str()) && !doc.contains(&format!("`{m}`")))
        .cloned()
        .collect();
    (stale, unnamed)
}

#[test]
fn architecture_doc_names_every_module() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let modules = src_modules();
    assert!(modules.len() > 10, "{modules:?}");
    let (stale, unnamed) = map_mismatches(&doc, &modules);
    assert!(
        unnamed.is_empty(),
        "docs/architecture.md does not name the modules {unnamed:?}: give each a row of the code map"
    );
    assert!(
        stale.is_empty(),
        "the code map of docs/architecture.md has rows for modules that do not exist: {stale:?}"
    );
}

#[test]
fn architecture_doc_check_catches_a_broken_map() {
    let modules = ["home", "home::install", "lock"].map(str::to_owned);
    // The old check (a prefix) took `home::install` or `lock --check` for the modules.
    let doc = "| `home::install` | the pipeline |\n| `gone` | a deleted module |\n`lock --check`\n";
    let (stale, unnamed) = map_mismatches(doc, &modules);
    assert_eq!(unnamed, ["home", "lock"]);
    assert_eq!(stale, ["gone"]);
    let doc = "| `home` | x |\n| `home::install` | y |\nthe `lock` module\n";
    assert_eq!(map_mismatches(doc, &modules), (vec![], vec![]));
}

#[test]
fn module_graph_has_no_new_cycle_and_the_maps_invariants_hold() {
    let root = root();
    let (report, verdict) = checker::check(
        &root,
        Some(&root.join(checker::KNOWN_CYCLES)),
        Some(&root.join(checker::KNOWN_VIOLATIONS)),
    )
    .unwrap();
    let text = format!(
        "{}{}",
        checker::render_graph(&report.graph),
        checker::render_verdict(&report, &verdict)
    );
    // The graph is the crate's: every top-level module is a node, the root reaches `cli`.
    for module in src_modules() {
        let top = module.split("::").next().unwrap();
        assert!(report.graph.contains_key(top), "{top} is missing:\n{text}");
    }
    assert!(report.graph["main"].contains("cli"), "{text}");
    assert!(
        verdict.passed(),
        "new cycles or new violations of docs/architecture.md (fix them; the allow-lists in \
         xtask/ hold only what was there before):\n{text}"
    );
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
