//! The online half of `mfplug build`: the locked files that the vendor dir lacks are fetched
//! from the index (in parallel, through the verified download cache of `index`), checked
//! against the lock's hashes and vendored; vendored files the lock no longer names are pruned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};

use super::{file_identity, Pin, ALLOW_BINARY, VENDOR_DIR};
use crate::index::simple::normalize;
use crate::index::{self, simple::Location, Client};
use crate::interpreter::Target;
use crate::lock::{requirements, INPUT_FILE, SOURCES_DIR};
use crate::ui;

/// The index client for the plugin in `dir`: the indexes and find-links the lock was made
/// with (its header), then flags of the requirements file, `MFPLUG_INDEX_URL`,
/// `PIP_INDEX_URL`, pip's configuration.
pub fn client(dir: &Path, lock_text: &str, cache: &Path) -> Result<std::sync::Arc<Client>> {
    let sources = dir.join(SOURCES_DIR);
    let input = requirements::read(&sources.join(INPUT_FILE)).ok();
    let env = |key: &str| std::env::var(key).ok();
    let (primary, extra) = index::config::discover(
        None,
        input.as_ref().and_then(|i| i.index_url.as_deref()),
        &env,
    );
    let mut indexes: Vec<String> = primary.map(|(u, _)| u).into_iter().collect();
    indexes.extend(extra);
    if let Some(input) = &input {
        indexes.extend(input.extra_index_urls.iter().cloned());
    }
    let mut find_links: Vec<PathBuf> = input
        .as_ref()
        .map(|i| i.find_links.clone())
        .unwrap_or_default();
    for line in lock_text.lines() {
        if let Some(dir) = line.strip_prefix("# find-links: ") {
            find_links.push(PathBuf::from(dir.trim()));
        }
    }
    find_links.retain(|p| p.is_dir());
    if indexes.is_empty() && find_links.is_empty() {
        return Err(ui::error_with_hint(
            "some locked files are not vendored and no package index is configured",
            "set `MFPLUG_INDEX_URL`, `PIP_INDEX_URL` or `index-url` in pip.conf, or vendor the files in `python3_virtualenv_sources/src/`",
        ));
    }
    let netrc = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")))
        .and_then(|p| std::fs::read_to_string(p).ok());
    Ok(Client::new(index::Options {
        indexes,
        find_links,
        cache_dir: cache.to_path_buf(),
        offline: false,
        netrc,
    }))
}

/// Makes the vendor dir hold, for every pin, a file with one of its hashes (a wheel that fits
/// when wheels are allowed, else the sdist), and nothing else. Gives the names fetched and
/// pruned.
pub fn vendor(
    dir: &Path,
    lock_text: &str,
    pins: &[Pin],
    target: &Target,
    allow: Option<&[String]>,
    cache: &Path,
) -> Result<(Vec<String>, Vec<String>)> {
    let vendor_dir = dir.join(SOURCES_DIR).join(VENDOR_DIR);
    fs_err::create_dir_all(&vendor_dir)?;
    let mut present: Vec<(String, String)> = Vec::new();
    for entry in fs_err::read_dir(&vendor_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !name.starts_with('.') {
            present.push((name, crate::archive::sha256_file(&entry.path())?));
        }
    }
    let wanted_hashes: HashSet<&str> = pins
        .iter()
        .flat_map(|p| p.hashes.iter().map(String::as_str))
        .collect();
    let mut missing: Vec<&Pin> = Vec::new();
    for pin in pins {
        let has = present.iter().any(|(name, sha)| {
            pin.hashes.contains(sha)
                && file_identity(name).is_some_and(|(n, _)| n == pin.name)
                && (!name.ends_with(".whl") || target.accepts_wheel(name))
        });
        if !has {
            missing.push(pin);
        }
    }
    let mut fetched = Vec::new();
    if !missing.is_empty() {
        let client = client(dir, lock_text, cache)?;
        let archives = cache.join("archives");
        let progress = progress_bar(missing.len());
        let results: Mutex<Vec<Result<String>>> = Mutex::new(Vec::new());
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4.min(missing.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(pin) = missing.get(i) else { break };
                    progress.set_message(pin.name.clone());
                    let result = fetch_one(&client, pin, target, allow, &vendor_dir, &archives);
                    progress.inc(1);
                    results.lock().expect("results").push(result);
                });
            }
        });
        progress.finish_and_clear();
        for result in results.into_inner().expect("results") {
            fetched.push(result?);
        }
        fetched.sort();
    }
    // Prune what the lock no longer names.
    let mut pruned = Vec::new();
    for (name, sha) in &present {
        if !wanted_hashes.contains(sha.as_str()) {
            fs_err::remove_file(vendor_dir.join(name))?;
            pruned.push(name.clone());
        }
    }
    Ok((fetched, pruned))
}

fn fetch_one(
    client: &Client,
    pin: &Pin,
    target: &Target,
    allow: Option<&[String]>,
    vendor_dir: &Path,
    archives: &Path,
) -> Result<String> {
    let name: pep508_rs::PackageName = pin
        .name
        .parse()
        .map_err(|_| anyhow::anyhow!("`{}` is not a package name", pin.name))?;
    let files = client
        .project(&name)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot list the files of `{}`", pin.name))?;
    let wheels_allowed =
        allow.is_some_and(|list| list.is_empty() || list.contains(&normalize(&pin.name)));
    let version: pep440_rs::Version = pin
        .version
        .parse()
        .map_err(|_| anyhow::anyhow!("`{}` is not a version", pin.version))?;
    let candidates: Vec<_> = files.iter().filter(|f| f.version == version).collect();
    let mut ordered: Vec<_> = candidates
        .iter()
        .filter(|f| f.is_wheel && target.accepts_wheel(&f.filename))
        .collect();
    let sdists = candidates.iter().filter(|f| !f.is_wheel);
    if wheels_allowed {
        ordered.extend(sdists);
    } else {
        let mut first: Vec<_> = sdists.collect();
        first.extend(ordered);
        ordered = first;
    }
    for file in ordered {
        let out = vendor_dir.join(&file.filename);
        // The content-addressed store first: a file any plugin vendored before, by hash.
        if let Some(bytes) = pin.hashes.iter().find_map(|h| {
            std::fs::read(archives.join(h))
                .ok()
                .filter(|b| index::sha256_hex(b) == *h)
        }) {
            crate::lock::write_atomic(&out, &bytes)
                .with_context(|| format!("cannot write `{}`", out.display()))?;
            return Ok(file.filename.clone());
        }
        let sha = client.sha256(file).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !pin.hashes.contains(&sha) {
            continue;
        }
        let bytes = client
            .download(file)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot download `{}`", file.filename))?;
        let actual = index::sha256_hex(&bytes);
        if !pin.hashes.contains(&actual) {
            // Not kept anywhere: the next build downloads it again.
            client.forget(file);
            return Err(ui::error_with_hint(
                format!(
                    "downloaded `{}` does not match the lock: its sha256 is {actual}",
                    file.filename
                ),
                "the index serves another file than the one locked: check the index, or relock with `mfplug lock --upgrade-package`",
            ));
        }
        let _ = std::fs::create_dir_all(archives)
            .and_then(|()| crate::lock::write_atomic(&archives.join(&actual), &bytes));
        crate::lock::write_atomic(&out, &bytes)
            .with_context(|| format!("cannot write `{}`", out.display()))?;
        ui::verbose(format!(
            "vendored `{}` from {}",
            file.filename,
            match &file.location {
                Location::Path(p) => p.display().to_string(),
                Location::Url(u) => index::config::strip_credentials(u),
            }
        ));
        return Ok(file.filename.clone());
    }
    Err(ui::error_with_hint(
        format!(
            "no file of `{}=={}` on the index matches the lock's hashes{}",
            pin.name,
            pin.version,
            if wheels_allowed {
                ""
            } else {
                " (wheels are not allowed for it)"
            }
        ),
        format!(
            "run `mfplug lock --upgrade-package {}`, or check `{ALLOW_BINARY}`",
            pin.name
        ),
    ))
}

/// A bar of the files fetched, on a terminal only.
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if ui::verbosity() < 0 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("    Fetching [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
