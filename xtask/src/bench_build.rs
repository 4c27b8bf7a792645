//! `cargo xtask bench build`: on the lock benchmark's closure, `mfplug build --offline` into a
//! fresh `local/` (warm cache) against `uv venv` + `uv pip install --require-hashes` (warm
//! cache) and `python3 -m venv` + `pip install --require-hashes`, same wheels, same run; then
//! the no-op rebuild.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::bench_lock::{find_peer as peer, median, rm, timed, GENERATOR};

pub fn run(root: &Path, mfplug: &Path) -> Result<()> {
    let work = root.join("target/bench/build");
    let index = work.join("index");
    if !index.join("requirements.in").is_file() {
        std::fs::create_dir_all(&work)?;
        let generator = work.join("lock_index.py");
        std::fs::write(&generator, GENERATOR)?;
        let status = Command::new("python3")
            .arg(&generator)
            .arg(&index)
            .args(["160", "4"])
            .status()
            .context("cannot run python3")?;
        if !status.success() {
            bail!("the index generator failed");
        }
    }
    let wheels = index.join("files");
    let plugin = work.join("plugin");
    let sources = plugin.join("python3_virtualenv_sources");
    std::fs::create_dir_all(&sources)?;
    std::fs::write(plugin.join(".layerapi2_label"), "plugin_bench@mfplug\n")?;
    std::fs::write(plugin.join("config.ini"), crate::BENCH_GENERAL)?;
    std::fs::copy(
        index.join("requirements.in"),
        sources.join("requirements-to-freeze.txt"),
    )?;
    std::fs::write(sources.join("allow_binary_packages"), "")?;
    let cache = work.join("cache-mfplug");
    let mf = |args: &[&str]| {
        let mut cmd = Command::new(mfplug);
        cmd.args(args).env("XDG_CACHE_HOME", &cache);
        cmd
    };
    let plugin_text = plugin.display().to_string();
    let wheels_text = wheels.display().to_string();
    // Lock, vendor and warm the cache once, untimed.
    timed(&mut mf(&[
        "-q",
        "lock",
        &plugin_text,
        "--find-links",
        &wheels_text,
    ]))?;
    timed(&mut mf(&["-q", "build", &plugin_text]))?;
    let lock = sources.join("requirements3.txt");
    let packages = std::fs::read_to_string(&lock)?
        .lines()
        .filter(|l| l.contains("=="))
        .count();

    let runs = 5;
    let mut ours = Vec::new();
    for _ in 0..runs {
        rm(&plugin.join("local"));
        ours.push(timed(&mut mf(&["-q", "build", "--offline", &plugin_text]))?);
    }
    let mut noop = Vec::new();
    for _ in 0..10 {
        noop.push(timed(&mut mf(&["-q", "build", "--offline", &plugin_text]))?);
    }
    let ours = median(ours);
    println!("build: {packages} locked wheels into a fresh env, warm caches, same run");
    println!(
        "  mfplug build --offline            median {:>8.1} ms",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "  mfplug build (no-op)              median {:>8.1} ms",
        median(noop).as_secs_f64() * 1e3
    );

    let lock_text = lock.display().to_string();
    match peer("uv") {
        None => println!("  uv: skipped, not in $MFPLUG_BENCH_PEERS nor on PATH"),
        Some(uv) => {
            let venv = work.join("venv-uv");
            let uv_cache = work.join("cache-uv");
            let install = |venv: &Path| {
                let mut cmd = Command::new(&uv);
                cmd.args([
                    "pip",
                    "install",
                    "--quiet",
                    "--no-config",
                    "--require-hashes",
                    "--no-index",
                    "--find-links",
                ])
                .arg(&wheels)
                .arg("--python")
                .arg(venv.join("bin/python"))
                .arg("--cache-dir")
                .arg(&uv_cache)
                .args(["-r", &lock_text]);
                cmd
            };
            let make_venv = |venv: &Path| {
                let mut cmd = Command::new(&uv);
                cmd.args(["venv", "--quiet", "--no-config", "--python", "python3"])
                    .arg(venv);
                cmd
            };
            rm(&venv);
            timed(&mut make_venv(&venv))?;
            timed(&mut install(&venv))?;
            let mut theirs = Vec::new();
            for _ in 0..runs {
                rm(&venv);
                let a = timed(&mut make_venv(&venv))?;
                let b = timed(&mut install(&venv))?;
                theirs.push(a + b);
            }
            let theirs = median(theirs);
            println!(
                "  uv venv + uv pip install          median {:>8.1} ms   mfplug / uv = {:.2}",
                theirs.as_secs_f64() * 1e3,
                ours.as_secs_f64() / theirs.as_secs_f64()
            );
        }
    }
    let venv = work.join("venv-pip");
    let mut theirs = Vec::new();
    for _ in 0..3 {
        rm(&venv);
        let a = timed(
            Command::new("python3")
                .args(["-m", "venv", "--without-pip"])
                .arg(&venv),
        )?;
        let b = timed(
            Command::new("python3")
                .args(["-m", "pip", "--disable-pip-version-check", "--python"])
                .arg(venv.join("bin/python"))
                .args([
                    "install",
                    "--quiet",
                    "--require-hashes",
                    "--no-index",
                    "--find-links",
                ])
                .arg(&wheels)
                .args(["-r", &lock_text]),
        )?;
        theirs.push(a + b);
    }
    let theirs = median(theirs);
    println!(
        "  python3 -m venv + pip install     median {:>8.1} ms   pip / mfplug = {:.1}",
        theirs.as_secs_f64() * 1e3,
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}
