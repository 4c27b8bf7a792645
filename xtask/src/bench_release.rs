//! `cargo xtask bench release`: `mfplug release` against `tar | zstd` on the same tree, in the
//! same run, with medians, the ratio, both output sizes and mfplug's peak RSS; then the peak
//! RSS of a release of a 1 GiB tree, to show that memory does not grow with the tree.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bench_lock::median;

/// A small deterministic generator: the tree is the same on every machine and run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "plugin", "config", "daemon", "release", "import", "return", "value", "section", "metwork",
    "def", "class", "self", "print", "data", "file", "path", "None", "True", "for", "in",
];

fn text(rng: &mut XorShift, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 16);
    while out.len() < size {
        let word = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        out.extend_from_slice(word.as_bytes());
        out.push(if rng.next().is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(size);
    out
}

/// Writes a plugin tree of `small` text files and `large` binaries of `large_size` bytes (half
/// random, half repetitive), unless the marker says it is there already.
pub fn generate(root: &Path, small: usize, large: usize, large_size: usize) -> Result<u64> {
    let marker = root.join(".bench-complete");
    if marker.is_file() {
        return Ok(std::fs::read_to_string(&marker)?.trim().parse()?);
    }
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    eprintln!("generating {}", root.display());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    std::fs::create_dir_all(root)?;
    std::fs::write(root.join(".layerapi2_label"), "plugin_bench@mfplug\n")?;
    std::fs::write(root.join("config.ini"), crate::BENCH_GENERAL)?;
    for i in 0..small {
        let dir = root.join(format!("src/pkg{:03}/mod{:02}", i % 200, (i / 200) % 50));
        std::fs::create_dir_all(&dir)?;
        let size = 500 + (rng.next() % 7000) as usize;
        let data = text(&mut rng, size);
        total += data.len() as u64;
        std::fs::write(dir.join(format!("file{i:05}.py")), data)?;
    }
    let mut buf = vec![0u8; large_size];
    for i in 0..large {
        let dir = root.join(format!("lib/blobs{:02}", i % 10));
        std::fs::create_dir_all(&dir)?;
        let half = large_size / 2;
        rng.fill(&mut buf[..half]);
        for (j, b) in buf[half..].iter_mut().enumerate() {
            *b = ((j / 64) % 251) as u8 ^ (i as u8);
        }
        total += buf.len() as u64;
        std::fs::write(dir.join(format!("blob{i:04}.bin")), &buf)?;
    }
    std::fs::write(&marker, total.to_string())?;
    Ok(total)
}

/// Runs `cmd` and gives its wall time and its peak RSS in KiB (through `/usr/bin/time`).
pub fn timed(program: &str, args: &[&str]) -> Result<(Duration, Option<u64>)> {
    let time = Path::new("/usr/bin/time");
    let rss_file = std::env::temp_dir().join(format!("mfplug-bench-rss-{}", std::process::id()));
    let start = Instant::now();
    let status = if time.exists() {
        Command::new(time)
            .args(["-f", "%M", "-o"])
            .arg(&rss_file)
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    } else {
        Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
    }
    .with_context(|| format!("cannot run `{program}`"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.trim().lines().last()?.trim().parse().ok());
    let _ = std::fs::remove_file(&rss_file);
    Ok((elapsed, rss))
}

pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(root: &Path, mfplug: &Path) -> Result<()> {
    let bench = root.join("target/bench");
    let tree = bench.join("release-tree");
    let total = generate(&tree, 19_900, 100, 2_400_000)?;
    let out = bench.join("release-out");
    std::fs::create_dir_all(&out)?;
    let mfplug_out = out.join("bench-1.0.0-1.plugin");
    let peer_out = out.join("peer.tar.zst");
    let tree_text = tree.display().to_string();
    let out_text = out.display().to_string();
    let mfplug_text = mfplug.display().to_string();
    let peer = have("tar") && have("zstd");
    if !peer {
        eprintln!("peer skipped: `tar` or `zstd` is not installed");
    }
    let peer_cmd = format!(
        "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C '{tree_text}' -cf - . | zstd -q -T0 -3 -f -o '{}'",
        peer_out.display()
    );
    // The machine's speed drifts between runs: enough of them that the medians settle.
    let runs = 9;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut rss = 0u64;
    // One warm-up of each, so that both read from the page cache.
    for i in 0..=runs {
        let (t, r) = timed(
            &mfplug_text,
            &["-q", "release", &tree_text, "-o", &out_text],
        )?;
        if peer {
            let (p, _) = timed("sh", &["-c", &peer_cmd])?;
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
        "release benchmark: {} files, {:.1} MiB",
        20_000,
        total as f64 / 1048576.0
    );
    println!(
        "  mfplug release        median {:>8.3} s   size {:>10} bytes   peak RSS {} KiB",
        ours_m.as_secs_f64(),
        std::fs::metadata(&mfplug_out)?.len(),
        rss
    );
    if peer {
        let theirs_m = median(theirs);
        let ours_size = std::fs::metadata(&mfplug_out)?.len() as f64;
        let theirs_size = std::fs::metadata(&peer_out)?.len() as f64;
        println!(
            "  tar | zstd -T0 -3     median {:>8.3} s   size {:>10} bytes",
            theirs_m.as_secs_f64(),
            theirs_size as u64
        );
        println!(
            "  ratio (mfplug / peer): time {:.3}, size {:.4}",
            ours_m.as_secs_f64() / theirs_m.as_secs_f64(),
            ours_size / theirs_size
        );
    }

    // Memory does not grow with the tree: a 1 GiB tree of larger files.
    let large = bench.join("release-tree-1g");
    let large_total = generate(&large, 2_000, 400, 2_600_000)?;
    let (t, r) = timed(
        &mfplug_text,
        &[
            "-q",
            "release",
            &large.display().to_string(),
            "-o",
            &out_text,
        ],
    )?;
    println!(
        "  1 GiB tree ({:.0} MiB): mfplug release {:.3} s, peak RSS {} KiB",
        large_total as f64 / 1048576.0,
        t.as_secs_f64(),
        r.map_or("unknown".into(), |r| r.to_string())
    );
    Ok(())
}
