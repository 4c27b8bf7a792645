//! Tidy checks inside `cargo test`: every module says why it exists, the architecture doc
//! names every module, no test is ignored.

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

#[test]
fn architecture_doc_names_every_module() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    for file in rust_files(&root().join("src")) {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let module = rel
            .trim_start_matches("src/")
            .trim_end_matches("/mod.rs")
            .trim_end_matches(".rs")
            .replace('/', "::");
        if rel.ends_with("tests.rs") || rel == "src/main.rs" || rel == "src/lib.rs" {
            continue;
        }
        assert!(
            doc.contains(&format!("`{module}")),
            "docs/architecture.md does not name `{module}`"
        );
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
