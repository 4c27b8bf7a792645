//! `cargo xtask bench install`: `mfplug install` (full verification, extraction, record) of
//! the release benchmark's plugin against `zstd -dc FILE | tar -xf -` into an empty dir, in
//! the same run, with medians and the ratio.

use std::path::Path;

use anyhow::Result;

use crate::bench_lock::median;
use crate::bench_release::{generate, have, timed};

pub fn run(root: &Path, mfplug: &Path) -> Result<()> {
    let bench = root.join("target/bench");
    let tree = bench.join("release-tree");
    let total = generate(&tree, 19_900, 100, 2_400_000)?;
    let out = bench.join("install-in");
    std::fs::create_dir_all(&out)?;
    let mfplug_text = mfplug.display().to_string();
    let (_, _) = timed(
        &mfplug_text,
        &[
            "-q",
            "release",
            &tree.display().to_string(),
            "-o",
            &out.display().to_string(),
        ],
    )?;
    let file = out.join("bench-1.0.0-1.plugin");
    let file_text = file.display().to_string();
    let peer = have("tar") && have("zstd");
    if !peer {
        eprintln!("peer skipped: `tar` or `zstd` is not installed");
    }
    let runs = 5;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut rss = 0;
    for i in 0..=runs {
        let home = bench.join("install-home");
        let _ = std::fs::remove_dir_all(&home);
        let (t, r) = timed(
            "env",
            &[
                &format!("MFPLUG_HOME={}", home.display()),
                &mfplug_text,
                "-q",
                "install",
                &file_text,
            ],
        )?;
        let dir = bench.join("install-peer");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if peer {
            let cmd = format!("zstd -dc '{file_text}' | tar -xf - -C '{}'", dir.display());
            let (p, _) = timed("sh", &["-c", &cmd])?;
            if i > 0 {
                theirs.push(p);
            }
        }
        if i > 0 {
            ours.push(t);
            rss = rss.max(r.unwrap_or(0));
        }
    }
    let ours_m = median(ours);
    println!(
        "install benchmark: {:.1} MiB plugin, 20 000 files",
        total as f64 / 1048576.0
    );
    println!(
        "  mfplug install (verify + extract + record)  median {:>8.3} s   peak RSS {rss} KiB",
        ours_m.as_secs_f64()
    );
    if peer {
        let theirs_m = median(theirs);
        println!(
            "  zstd -dc | tar -xf                          median {:>8.3} s",
            theirs_m.as_secs_f64()
        );
        println!(
            "  ratio (mfplug / peer): {:.3}",
            ours_m.as_secs_f64() / theirs_m.as_secs_f64()
        );
    }
    Ok(())
}
