//! The project's own tasks, run with `cargo xtask TASK` (see matklad/cargo-xtask).
//!
//! - `ci`: what CI runs: `cargo fmt --check`, `tidy` (with the allow-lists), `cargo clippy -D
//!   warnings` and the whole suite.
//! - `tidy`: the module graph of `src/`, its cycles, and the invariants of
//!   `docs/architecture.md` that a grep can check (see `tidy.rs`).
//! - `bench [NAME]`: the benchmarks (all, or the one named), each printing the peer's figure
//!   beside ours and the ratio.
//! - `dist`: shell completions and man pages of the built binary, in `target/dist/`.
//! - `fuzz [TARGET] [--minutes N]`: the fuzz targets of the suite, run longer, saving failures.

mod bench_build;
mod bench_develop;
mod bench_install;
mod bench_release;
mod bench_verify;
mod fuzz;
mod tidy;
#[cfg(test)]
mod tidy_tests;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

mod bench_lock;

const USAGE: &str = "\
usage: cargo xtask TASK

tasks:
  ci            cargo fmt --check, tidy with the known-cycles/violations allow-lists, clippy
                with warnings denied, the whole test suite
  bench [NAME]  run the benchmarks, all or the named ones (release, install, lock, build, develop,
                verify), against the peers in the same run, with ratios
  tidy [--known-cycles FILE] [--known-violations FILE] [--modules]
                print the module graph of src/ (one line per top-level module, `module -> dep,
                dep`, from the `use crate::` lines and `crate::`/`super::` paths; `--modules`
                adds every module) and check the invariants of docs/architecture.md: no
                `cli`/`commands` outside cli, commands, main; no print macros, indicatif or
                io::stdout() writes outside ui, main; no ExitCode outside main, commands;
                no writes under the runtime home outside home; config offline and read-only,
                the modules the map keeps apart, no index host, one unsafe block (the list:
                xtask/src/tidy.rs). Fails on any cycle or violation, except those in the
                allow-lists (FILE relative to the workspace root), which are printed as
                warnings. `ci` passes xtask/tidy-known-cycles.txt and
                xtask/tidy-known-violations.txt, which hold the cycle and violations of issue
                15's start, so only a NEW one fails ci
  dist          write shell completions and man pages to target/dist/
  fuzz [TARGET] [--minutes N]
                run the fuzz targets (all, or the named one) for N minutes in all (default 5),
                saving each failing input under tests/fuzz-regressions/ for the suite to replay";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("dist") => dist(),
        Some("fuzz") => fuzz::run(&root(), &args[1..]),
        Some("tidy") => tidy::run(&root(), &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs one step and says which one failed.
fn step(name: &str, mut cmd: Command) -> Result<()> {
    eprintln!("==> {name}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{name}`"))?;
    if !status.success() {
        bail!("`{name}` failed ({status})");
    }
    Ok(())
}

fn ci() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --all -- --check", fmt)?;

    eprintln!(
        "==> tidy --known-cycles {} --known-violations {}",
        tidy::KNOWN_CYCLES,
        tidy::KNOWN_VIOLATIONS
    );
    tidy::run(
        &root(),
        &[
            "--known-cycles".to_owned(),
            tidy::KNOWN_CYCLES.to_owned(),
            "--known-violations".to_owned(),
            tidy::KNOWN_VIOLATIONS.to_owned(),
        ],
    )
    .context("`tidy` failed")?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        clippy,
    )?;

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked"]);
    // Snapshots are checked, never written, in CI.
    test.env("INSTA_UPDATE", "no");
    step("cargo test --workspace", test)?;
    eprintln!("==> ci: all steps passed");
    Ok(())
}

/// The benchmarks, by name; they come with the commands they measure. `bench` alone runs
/// them all.
/// The `[general]` section of the benchmarks' plugins: every key mfplug requires (as
/// MetWork does), so that they load as a real plugin does.
pub const BENCH_GENERAL: &str = "[general]\n_version = 1.0.0\n_summary = a benchmark plugin\n_license = BSD\n_url = unknown\n_maintainer = bench\n_vendor = bench\n";

const BENCHMARKS: &[&str] = &["release", "install", "lock", "build", "develop", "verify"];

fn bench(args: &[String]) -> Result<()> {
    let selected: Vec<&str> = if args.is_empty() {
        BENCHMARKS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    if let Some(unknown) = selected.iter().find(|n| !BENCHMARKS.contains(n)) {
        bail!(
            "no benchmark `{unknown}`: the benchmarks are {}",
            BENCHMARKS.join(", ")
        );
    }
    let mut build = cargo();
    build.args(["build", "--release", "--locked", "--bin", "mfplug"]);
    step("cargo build --release --bin mfplug", build)?;
    let binary = root().join("target/release/mfplug");
    for name in selected {
        eprintln!("==> bench {name}");
        match name {
            "release" => bench_release::run(&root(), &binary)?,
            "install" => bench_install::run(&root(), &binary)?,
            "lock" => bench_lock::run(&root(), &binary)?,
            "build" => bench_build::run(&root(), &binary)?,
            "develop" => bench_develop::run(&root(), &binary)?,
            "verify" => bench_verify::run(&root(), &binary)?,
            _ => unreachable!("checked above"),
        }
    }
    Ok(())
}

fn dist() -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "--locked", "--bin", "mfplug"]);
    step("cargo build --release", build)?;
    let binary = root().join("target/release/mfplug");
    let out = root().join("target/dist/completions");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
    for (shell, file) in [
        ("bash", "mfplug.bash"),
        ("zsh", "_mfplug"),
        ("fish", "mfplug.fish"),
        ("elvish", "mfplug.elv"),
        ("powershell", "_mfplug.ps1"),
    ] {
        let output = Command::new(&binary)
            .args(["completions", shell])
            .output()
            .with_context(|| format!("cannot run `{}`", binary.display()))?;
        if !output.status.success() {
            bail!("`mfplug completions {shell}` failed");
        }
        let path = out.join(file);
        std::fs::write(&path, output.stdout)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    // The man pages: `mfplug.1` and one per command, from the same clap definition.
    let man = root().join("target/dist/man");
    let mut pages = Command::new(&binary);
    pages.arg("generate-man").arg(&man);
    step("mfplug generate-man", pages)?;
    Ok(())
}
