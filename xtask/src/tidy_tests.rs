//! Unit tests of the tidy checker on deliberately broken copies of a crate: a tiny fake `src/`
//! with a cycle, a `println!` in a stage module and the other broken invariants, written to a
//! temp dir and read back as `cargo xtask tidy` reads the real one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::tidy::{self, Source};

/// A fresh dir under the system temp dir, removed when dropped.
struct TempCrate(PathBuf);

impl TempCrate {
    fn new(name: &str, files: &[(&str, &str)]) -> TempCrate {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        TempCrate(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCrate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MANIFEST: &str = "[package]\nname = \"fake-crate\"\nversion = \"0.1.0\"\n";

fn keys(report: &tidy::Report) -> Vec<String> {
    report.violations.iter().map(tidy::Violation::key).collect()
}

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

fn deps(report: &tidy::Report, module: &str) -> Vec<String> {
    report.modules[module].iter().cloned().collect()
}

#[test]
fn a_broken_copy_has_its_cycle_and_its_println_found() {
    let krate = TempCrate::new(
        "broken",
        &[
            ("Cargo.toml", MANIFEST),
            (
                "src/main.rs",
                "//! root\nmod lock;\nmod build;\nmod ui;\nfn main() { lock::run(); ui::say(); }\n",
            ),
            (
                "src/lock/mod.rs",
                "//! lock\nmod resolve;\npub fn run() { resolve::go() }\n",
            ),
            // The cycle goes through a submodule and `super::super::`.
            (
                "src/lock/resolve.rs",
                "//! resolve\nuse super::super::build;\npub fn go() { build::again() }\n",
            ),
            (
                "src/build.rs",
                "//! a stage that prints\npub fn again() {\n    println!(\"built\");\n    \
                 crate::lock::run();\n}\n",
            ),
            (
                "src/ui.rs",
                "//! ui may print\npub fn say() { println!(\"hi\"); eprintln!(\"there\"); }\n",
            ),
        ],
    );
    let (report, verdict) = tidy::check(krate.path(), None, None).unwrap();

    assert_eq!(
        tidy::render_graph(&report.graph),
        "build -> lock\nlock -> build\nmain -> lock, ui\nui ->\n"
    );
    assert_eq!(
        report.cycles,
        vec![vec!["build".to_owned(), "lock".to_owned()]]
    );
    assert_eq!(keys(&report), vec!["terminal: build uses println!"]);
    assert_eq!(report.violations[0].at, "src/build.rs:3");
    assert!(!verdict.passed());
    assert_eq!(verdict.new_cycles, report.cycles);
    let text = tidy::render_verdict(&report, &verdict);
    assert!(
        text.contains("error: new cycle (2 modules): build, lock\n"),
        "{text}"
    );
    assert!(
        text.contains("error: terminal: build uses println! (src/build.rs:3)"),
        "{text}"
    );

    // The run of the task fails naming both.
    let err = tidy::run(krate.path(), &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("1 new cycle(s) and 1 new violation(s)"),
        "{err:#}"
    );
}

#[test]
fn known_findings_warn_and_new_ones_fail() {
    let krate = TempCrate::new(
        "known",
        &[
            ("Cargo.toml", MANIFEST),
            (
                "src/lib.rs",
                "//! root\npub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
            ),
            ("src/a.rs", "//! a\nuse crate::b;\n"),
            (
                "src/b.rs",
                "//! b\nuse crate::a;\npub fn f() { eprint!(\"x\") }\n",
            ),
            ("src/c.rs", "//! c\nuse crate::d;\n"),
            ("src/d.rs", "//! d\nuse crate::c;\n"),
            ("known-cycles.txt", "# today's\na, b, z\n\n"),
            (
                "known-violations.txt",
                "terminal: b uses eprint!\nterminal: q uses print!\n",
            ),
        ],
    );
    let (report, verdict) = tidy::check(
        krate.path(),
        Some(&krate.path().join("known-cycles.txt")),
        Some(&krate.path().join("known-violations.txt")),
    )
    .unwrap();
    assert_eq!(report.cycles.len(), 2);
    // `a, b` lies inside the known `a, b, z` (a known cycle that shrank stays known).
    assert_eq!(
        verdict.known_cycles,
        vec![vec!["a".to_owned(), "b".to_owned()]]
    );
    assert_eq!(
        verdict.new_cycles,
        vec![vec!["c".to_owned(), "d".to_owned()]]
    );
    assert_eq!(verdict.gone_cycles, vec!["a, b, z"]);
    assert_eq!(verdict.known_violations.len(), 1);
    assert!(verdict.new_violations.is_empty());
    assert_eq!(verdict.gone_violations, vec!["terminal: q uses print!"]);
    assert!(!verdict.passed());
    let text = tidy::render_verdict(&report, &verdict);
    assert!(
        text.contains("warning: known cycle (2 modules): a, b\n"),
        "{text}"
    );
    assert!(
        text.contains("error: new cycle (2 modules): c, d\n"),
        "{text}"
    );
    assert!(
        text.contains("warning: known violation: terminal: b uses eprint!"),
        "{text}"
    );
    assert!(
        text.contains("note: the known violation `terminal: q uses print!` is gone"),
        "{text}"
    );

    // With both cycles known, it passes.
    std::fs::write(krate.path().join("known-cycles.txt"), "a, b\nc, d\n").unwrap();
    let args: Vec<String> = [
        "--known-cycles",
        "known-cycles.txt",
        "--known-violations",
        "known-violations.txt",
    ]
    .map(str::to_owned)
    .to_vec();
    tidy::run(krate.path(), &args).unwrap();

    // A cycle that grew (a new module joined the known one) is new.
    std::fs::write(krate.path().join("src/b.rs"), "//! b\nuse crate::{a, c};\n").unwrap();
    std::fs::write(krate.path().join("src/d.rs"), "//! d\nuse crate::{a, c};\n").unwrap();
    let err = tidy::run(krate.path(), &args).unwrap_err();
    assert!(format!("{err:#}").contains("1 new cycle(s)"), "{err:#}");
    let (report, _) = tidy::check(krate.path(), None, None).unwrap();
    assert_eq!(
        report.cycles,
        vec![["a", "b", "c", "d"].map(str::to_owned).to_vec()]
    );

    // A missing allow-list is an error, not an empty list.
    let missing = ["--known-cycles", "nope.txt"].map(str::to_owned).to_vec();
    let err = tidy::run(krate.path(), &missing).unwrap_err();
    assert!(format!("{err:#}").contains("nope.txt"), "{err:#}");
}

#[test]
fn every_invariant_of_the_map_is_checked() {
    let stage = "//! a stage that breaks every rule\n\
        use std::path::Path;\n\
        use crate::cli::LockArgs;\n\
        pub fn run(home: &Path) -> std::process::ExitCode {\n\
            let bar = indicatif::ProgressBar::new(1);\n\
            fs_err::create_dir_all(home.join(\"log\")).ok();\n\
            if std::io::stderr().is_terminal() {}\n\
            if IsTerminal::is_terminal(&std::io::stdout()) {}\n\
            std::io::Write::write_all(&mut std::io::stdout().lock(), b\"x\").ok();\n\
            std::process::exit(3)\n\
        }\n\
        pub fn link(name: &str) {\n\
            let link = crate::home::plugin_dir(name);\n\
            std::os::unix::fs::symlink(\"here\", &link).ok();\n\
        }\n\
        pub fn elsewhere(dir: &Path) { fs_err::create_dir_all(dir).ok(); }\n\
        pub fn hinted() -> anyhow::Error { crate::ui::error_with_hint(\"what\", \"do\") }\n";
    let allowed = "//! may do it\n\
        use crate::commands::lock;\n\
        pub fn run() -> std::process::ExitCode {\n\
            std::process::ExitCode::SUCCESS\n\
        }\n";
    let report = tidy::analyse(
        &sources(&[
            ("src/lib.rs", "//! root\n"),
            ("src/stage.rs", stage),
            ("src/cli.rs", allowed),
            ("src/commands/mod.rs", allowed),
            ("src/home.rs", "//! home\npub fn plugin_dir() {}\n"),
            ("src/home/install.rs", "//! home writes\nfn f(home: &Path) { fs_err::rename(home.join(\"a\"), home.join(\"b\")).ok(); }\n"),
        ]),
        "fake_crate",
    );
    assert_eq!(
        keys(&report),
        vec![
            "layering: stage uses crate::cli",
            "exit-code: stage uses ExitCode",
            "terminal: stage uses indicatif",
            "terminal: stage writes to io::stdout",
            "exit-code: stage uses process::exit",
            "hints: stage words a hint (error_with_hint)",
            "home-writes: stage calls create_dir_all on a path in the home",
            "home-writes: stage calls symlink on a path in the home",
            // `cli` is clap definitions only: it names `commands`, but the exit code is not
            // its to decide.
            "exit-code: cli uses ExitCode",
        ]
    );
}

#[test]
fn comments_strings_and_test_code_are_not_dependencies() {
    let a = "//! a: crate::b in a doc comment\n\
        // use crate::b;\n\
        /* crate::b::f(); /* nested */ crate::b */\n\
        const S: &str = \"crate::b::f() println!(x)\";\n\
        const R: &str = r#\"crate::b \"quoted\" println!()\"#;\n\
        const C: char = '\"';\n\
        fn f<'a>(x: &'a str) -> &'a str { x }\n\
        use crate::c;\n\
        #[cfg(test)]\n\
        mod tests {\n\
            use crate::b;\n\
            #[test]\n\
            fn t() { println!(\"{}\", crate::b::f()); }\n\
        }\n\
        #[cfg(test)]\n\
        mod more_tests;\n";
    let report = tidy::analyse(
        &sources(&[
            ("src/main.rs", "//! root\nmod a;\nmod b;\nmod c;\n"),
            ("src/a/mod.rs", a),
            (
                "src/a/more_tests.rs",
                "//! tests\nuse crate::b;\nfn t() { print!(\"\") }\n",
            ),
            ("src/b.rs", "//! b\n"),
            ("src/c.rs", "//! c\n"),
        ]),
        "fake_crate",
    );
    assert_eq!(deps(&report, "a"), vec!["c"]);
    assert!(!report.modules.contains_key("a::more_tests"));
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn use_trees_super_self_and_children_resolve() {
    let report = tidy::analyse(
        &sources(&[
            (
                "src/lib.rs",
                "//! root\npub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n",
            ),
            (
                "src/a/mod.rs",
                "//! a\npub mod x;\nuse crate::{b, c::{self as cc, y::{Z, W as V}}, e::*};\n\
                 use x::Thing;\nfn f() { self::x::g(); }\n",
            ),
            ("src/a/x.rs", "//! x\nuse super::super::d;\nuse super::X;\n"),
            ("src/b.rs", "//! b\n"),
            ("src/c/mod.rs", "//! c\npub mod y;\n"),
            ("src/c/y.rs", "//! y\n"),
            ("src/d.rs", "//! d\n"),
            ("src/e.rs", "//! e\n"),
            // The binary names the library's modules by the crate's name.
            ("src/main.rs", "//! bin\nuse fake_crate::{e, b::B};\n"),
        ]),
        "fake_crate",
    );
    assert_eq!(deps(&report, "a"), vec!["a::x", "b", "c", "c::y", "e"]);
    assert_eq!(deps(&report, "a::x"), vec!["a", "d"]);
    assert_eq!(deps(&report, "main"), vec!["b", "e"]);
    let top: BTreeSet<&str> = report.graph["a"].iter().map(String::as_str).collect();
    assert_eq!(top, BTreeSet::from(["b", "c", "d", "e"]));
    assert!(report.cycles.is_empty());
}

#[test]
fn crate_name_reads_the_package_section() {
    let manifest = "[workspace]\nname = \"no\"\n[package]\nversion = \"1\"\nname = \"my-tool\"\n";
    assert_eq!(tidy::crate_name(manifest).as_deref(), Some("my_tool"));
    assert_eq!(tidy::crate_name("[workspace]\n"), None);
}

#[test]
fn the_finer_rules_of_the_map_are_checked() {
    let report = tidy::analyse(
        &sources(&[
            ("src/lib.rs", "//! root\n"),
            (
                "src/config/mod.rs",
                "//! config\npub mod ini;\npub mod schema;\n\
                 fn save(p: &Path) { fs_err::write(p, \"x\").ok(); crate::index::get(); }\n",
            ),
            ("src/config/ini.rs", "//! ini\nuse super::schema::Kind;\n"),
            (
                "src/config/schema.rs",
                "//! schema\nfn f() { std::fs::read_to_string(\"a\").ok(); }\n",
            ),
            (
                "src/archive.rs",
                "//! archive\nuse crate::home::plugin_dir;\n",
            ),
            ("src/home.rs", "//! home\n"),
            (
                "src/index.rs",
                "//! index\nuse crate::lock::resolve::Pkg;\nuse crate::lock::requirements;\n\
                 const URL: &str = \"https://pypi.org/simple\";\n",
            ),
            (
                "src/lock/mod.rs",
                "//! lock\npub mod resolve;\npub mod requirements;\n",
            ),
            ("src/lock/requirements.rs", "//! reqs\n"),
            (
                "src/lock/resolve.rs",
                "//! resolve\nfn f() { std::process::Command::new(\"pip\"); ureq::get(\"x\"); }\n",
            ),
            (
                "src/develop/supervise.rs",
                "//! supervise\nfn a() { unsafe { x() } }\nfn b() { unsafe { y() } }\n",
            ),
            ("src/develop/mod.rs", "//! develop\npub mod supervise;\n"),
            ("src/plugin.rs", "//! plugin\nfn f() { unsafe { z() } }\n"),
        ]),
        "fake_crate",
    );
    let mut found = keys(&report);
    found.sort();
    assert_eq!(
        found,
        vec![
            "archive-knows-no-home: archive uses crate::home",
            "config-offline: config uses crate::index",
            "config-offline: config writes with write",
            "index-knows-no-resolver: index uses crate::lock::resolve",
            "ini-knows-no-schema: config::ini uses crate::config::schema",
            "no-index-host: index names the host pypi.org",
            "one-unsafe: develop::supervise has 2 unsafe blocks, not 1",
            "one-unsafe: plugin uses unsafe",
            "resolve-asks-index: lock::resolve uses Command",
            "resolve-asks-index: lock::resolve uses ureq",
            "schema-knows-no-files: config::schema uses fs",
        ]
    );
}
