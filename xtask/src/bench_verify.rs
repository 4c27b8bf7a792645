//! `cargo xtask bench verify`: `mfplug verify FILE` of a valid plugin with N files and N
//! symlinks, for N = 10 000, 20 000 and 40 000, each file made by `mfplug release` from a tree
//! generated under `target/bench/`. Prints the median times and t(40 000) / t(10 000): about 4
//! when the reader's work is linear in the members (the symlink guard that scanned every
//! earlier path for each symlink made it about 20).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::bench_lock::median;
use crate::bench_release::timed;

const SIZES: [usize; 3] = [10_000, 20_000, 40_000];

/// A plugin of `n` small files and `n` relative symlinks to them, in 100 dirs, unless the
/// marker says it is there already.
fn generate(root: &Path, n: usize) -> Result<()> {
    let marker = root.join(".bench-complete");
    if marker.is_file() {
        return Ok(());
    }
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    eprintln!("generating {}", root.display());
    std::fs::create_dir_all(root)?;
    std::fs::write(root.join(".layerapi2_label"), "plugin_benchverify@mfplug\n")?;
    std::fs::write(root.join("config.ini"), crate::BENCH_GENERAL)?;
    for i in 0..n {
        let dir = root.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("f{i:06}.txt")), format!("file {i}\n"))?;
        std::os::unix::fs::symlink(format!("f{i:06}.txt"), dir.join(format!("l{i:06}")))?;
    }
    std::fs::write(&marker, "")?;
    Ok(())
}

pub fn run(root: &Path, mfplug: &Path) -> Result<()> {
    let bench = root.join("target/bench");
    let mfplug_text = mfplug.display().to_string();
    let runs = 5;
    let mut medians: Vec<(usize, Duration)> = Vec::new();
    for n in SIZES {
        let tree = bench.join(format!("verify-tree-{n}"));
        generate(&tree, n)?;
        let out = bench.join(format!("verify-out-{n}"));
        std::fs::create_dir_all(&out)?;
        let (tree_text, out_text) = (tree.display().to_string(), out.display().to_string());
        timed(
            &mfplug_text,
            &["-q", "release", &tree_text, "-o", &out_text],
        )
        .with_context(|| format!("cannot release `{tree_text}`"))?;
        let file = out.join("benchverify-1.0.0-1.plugin").display().to_string();
        let mut times = Vec::new();
        // One warm-up run, so that every run reads from the page cache.
        for i in 0..=runs {
            let (t, _) = timed(&mfplug_text, &["-q", "verify", &file])?;
            if i > 0 {
                times.push(t);
            }
        }
        medians.push((n, median(times)));
    }
    println!("verify benchmark: N files and N symlinks, median of {runs} runs");
    for (n, t) in &medians {
        println!(
            "  N = {n:>6}   mfplug verify   median {:>8.3} s",
            t.as_secs_f64()
        );
    }
    if let (Some((_, first)), Some((_, last))) = (medians.first(), medians.last()) {
        println!(
            "  ratio t(40 000) / t(10 000): {:.2} (linear: about 4)",
            last.as_secs_f64() / first.as_secs_f64()
        );
    }
    Ok(())
}
