//! `cargo xtask fuzz [TARGET] [--minutes N]`: the suite's fuzz targets (`tests/it/fuzz/`) run
//! longer than the suite's bounded pass, from a fresh seed, with every failing input (shrunk)
//! saved under `tests/fuzz-regressions/TARGET/`, which the suite then replays.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// The targets: one file per target in `tests/it/fuzz/`, less the driver.
fn targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("tests/it/fuzz");
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read `{}`", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .path();
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            if path.extension().is_some_and(|e| e == "rs") && stem != "mod" {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    // A file the driver does not declare would match no test, and "pass".
    let driver = dir.join("mod.rs");
    let text = std::fs::read_to_string(&driver)
        .with_context(|| format!("cannot read `{}`", driver.display()))?;
    if let Some(missing) = names.iter().find(|n| !text.contains(&format!("mod {n};"))) {
        bail!(
            "`tests/it/fuzz/{missing}.rs` is not declared in `{}`",
            driver.display()
        );
    }
    Ok(names)
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let all = targets(root)?;
    let mut minutes = 5.0_f64;
    let mut selected = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => {
                let value = args.next().context("`--minutes` needs a number")?;
                minutes = value
                    .parse()
                    .ok()
                    .filter(|m: &f64| m.is_finite() && *m > 0.0)
                    .with_context(|| format!("`--minutes {value}`: give a positive number"))?;
            }
            name if all.iter().any(|t| t == name) => selected.push(name.to_owned()),
            other => bail!(
                "no fuzz target `{other}`: the targets are {}",
                all.join(", ")
            ),
        }
    }
    if selected.is_empty() {
        selected = all;
    }
    let seconds = ((minutes * 60.0) / selected.len() as f64).ceil().max(1.0) as u64;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!(
        "==> fuzz {} for {seconds} s each, seed {seed} (MFPLUG_FUZZ_SEED={seed} repeats it)",
        selected.join(", ")
    );
    let mut failed = Vec::new();
    for name in &selected {
        let mut cmd = crate::cargo();
        cmd.args(["test", "--release", "--locked", "--test", "it", "--"])
            .arg(format!("fuzz::{name}::fuzz"))
            .args(["--exact", "--nocapture"])
            .env("MFPLUG_FUZZ_SECONDS", seconds.to_string())
            .env("MFPLUG_FUZZ_CASES", "2000")
            .env("MFPLUG_FUZZ_SEED", seed.to_string())
            .env("MFPLUG_FUZZ_SAVE", "1");
        if let Err(e) = crate::step(&format!("fuzz {name}"), cmd) {
            eprintln!("error: {e:#}");
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzzing found failures in {}: the inputs are saved under `tests/fuzz-regressions/` \
             (commit them with the fix; the suite replays them)",
            failed.join(", ")
        );
    }
    eprintln!("==> fuzz: no failure");
    Ok(())
}
