//! Node and Rust plugins: lock, build, clean and release with npm and cargo, end to end from
//! the `nodejs` and `rust` templates.

use crate::support::{member_paths, stderr, TestContext};

fn npm_registry_reachable() -> bool {
    std::process::Command::new("npm")
        .args([
            "view",
            "is-number@7.0.0",
            "version",
            "--fetch-timeout=5000",
            "--fetch-retries=0",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn node_plugin_lock_build_clean_release() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "nodejs", "n"])
        .assert()
        .success();
    // A local dependency: npm installs it with no registry.
    ctx.write(
        "n/localdep/package.json",
        "{\"name\": \"localdep\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n",
    );
    ctx.write("n/localdep/index.js", "module.exports = 42;\n");
    let manifest = ctx.read("n/package.json");
    let mut json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    json["dependencies"] = serde_json::json!({"localdep": "file:./localdep"});
    ctx.write(
        "n/package.json",
        &serde_json::to_string_pretty(&json).unwrap(),
    );

    let out = ctx.cmd(["lock", "--check", "n"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`package-lock.json` is stale: `package-lock.json` is missing"),
        "{}",
        stderr(&out)
    );
    let out = ctx.cmd(["lock", "n"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ctx.cmd(["lock", "--check", "n"]).assert().success();

    let out = ctx.cmd(["build", "n", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("n/node_modules/localdep").exists());
    let out = ctx.cmd(["build", "n", "--offline"]).output().unwrap();
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));

    // The env finds the modules through NODE_PATH.
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("n"), ctx.home.join("plugins/n")).unwrap();
    let out = ctx
        .cmd([
            "wrapper",
            "n",
            "--",
            "node",
            "-e",
            "console.log(require('localdep'))",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        stderr(&out)
    );

    // The release ships node_modules.
    ctx.cmd(["-q", "release", "n", "-o", "dist"])
        .assert()
        .success();
    let paths = member_paths(&ctx.work.join("dist/n-0.0.1-1.plugin"));
    assert!(
        paths.iter().any(|p| p.starts_with("node_modules/")),
        "{paths:?}"
    );

    ctx.cmd(["clean", "n"]).assert().success();
    assert!(!ctx.work.join("n/node_modules").exists());
    assert!(ctx.work.join("n/package-lock.json").exists());
    ctx.cmd(["clean", "--super", "n"]).assert().success();
    assert!(!ctx.work.join("n/package-lock.json").exists());
    assert!(ctx.work.join("n/main.js").exists());

    // Without npm: a clear error that says what to install.
    let out = ctx
        .cmd(["build", "n"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`npm` is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn node_plugin_with_a_registry_dependency() {
    if !npm_registry_reachable() {
        println!("skipped: the npm registry is not reachable from here");
        return;
    }
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "nodejs", "n"])
        .assert()
        .success();
    let mut json: serde_json::Value = serde_json::from_str(&ctx.read("n/package.json")).unwrap();
    json["dependencies"] = serde_json::json!({"is-number": "7.0.0"});
    ctx.write(
        "n/package.json",
        &serde_json::to_string_pretty(&json).unwrap(),
    );
    let out = ctx.cmd(["build", "n"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx
        .work
        .join("n/node_modules/is-number/package.json")
        .is_file());
}

#[test]
fn rust_plugin_builds_offline_into_bin_and_releases_without_target() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "rust", "r"])
        .assert()
        .success();
    let out = ctx.cmd(["lock", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("r/Cargo.lock").is_file());
    ctx.cmd(["lock", "--check", "r"]).assert().success();
    let out = ctx.cmd(["build", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("r/bin/r").is_file());

    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("r"), ctx.home.join("plugins/r")).unwrap();
    let out = ctx.cmd(["wrapper", "r", "--", "r"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains('r'));

    ctx.cmd(["-q", "release", "r", "-o", "dist"])
        .assert()
        .success();
    let paths = member_paths(&ctx.work.join("dist/r-0.0.1-1.plugin"));
    assert!(paths.contains(&"bin/r".to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("target/")), "{paths:?}");

    // A manifest that no longer fits the lock is reported by `lock --check`.
    let manifest = ctx.read("r/Cargo.toml");
    ctx.write(
        "r/Cargo.toml",
        &manifest.replace(
            "[dependencies]",
            "[dependencies]\nmissing-crate-xyz = \"1\"",
        ),
    );
    let out = ctx.cmd(["lock", "--check", "r"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`Cargo.lock` is stale"),
        "{}",
        stderr(&out)
    );
    ctx.write("r/Cargo.toml", &manifest);

    ctx.cmd(["clean", "r"]).assert().success();
    assert!(!ctx.work.join("r/target").exists());
    assert!(ctx.work.join("r/bin/r").exists(), "clean keeps bin/");
}

/// A crate vendored in the plugin (a directory source, as `cargo vendor` writes it, pointed at
/// by `.cargo/config.toml`): `lock` and `build --offline` work from the plugin dir alone.
#[test]
fn rust_plugin_with_a_vendored_dependency_builds_offline() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "rust", "r"])
        .assert()
        .success();
    ctx.write(
        "r/rust_vendor/helper/Cargo.toml",
        "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    ctx.write(
        "r/rust_vendor/helper/src/lib.rs",
        "pub fn answer() -> u32 { 42 }\n",
    );
    ctx.write(
        "r/rust_vendor/helper/.cargo-checksum.json",
        &format!("{{\"files\":{{}},\"package\":\"{}\"}}", "0".repeat(64)),
    );
    ctx.write(
        "r/.cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"rust_vendor\"\n",
    );
    let manifest = ctx.read("r/Cargo.toml");
    ctx.write(
        "r/Cargo.toml",
        &manifest.replace("[dependencies]", "[dependencies]\nhelper = \"0.1\""),
    );
    ctx.write(
        "r/src/main.rs",
        "fn main() {\n    println!(\"answer {}\", helper::answer());\n}\n",
    );
    let out = ctx.cmd(["lock", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctx.cmd(["build", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = std::process::Command::new(ctx.work.join("r/bin/r"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "answer 42");
}
