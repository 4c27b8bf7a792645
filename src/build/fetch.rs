//! The online half of `mfplug build`: the locked files that the vendor dir lacks are fetched
//! from the index (in parallel, through the verified download cache of `index`), checked
//! against the lock's hashes and vendored; vendored files the lock no longer names are pruned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{file_identity, BuildError, Pin, VENDOR_DIR};
use crate::fsx::AtomicFile;
use crate::index::simple::normalize;
use crate::index::{self, simple::DistFile, simple::Location, Client};
use crate::interpreter::Target;
use crate::lock::{requirements, INPUT_FILE, SOURCES_DIR};
use crate::ui;

/// The index client for the plugin in `dir`: the indexes and find-links the lock was made
/// with (its header), then flags of the requirements file, `MFPLUG_INDEX_URL`,
/// `PIP_INDEX_URL`, pip's configuration.
pub(crate) fn client(
    dir: &Path,
    lock_text: &str,
    cache: &Path,
    flags: &index::config::Flags,
) -> Result<std::sync::Arc<Client>> {
    let sources = dir.join(SOURCES_DIR);
    let input = requirements::read(&sources.join(INPUT_FILE)).ok();
    let env = |key: &str| std::env::var(key).ok();
    let (primary, extra) = index::config::discover(
        flags.index_url.as_deref(),
        input.as_ref().and_then(|i| i.index_url.as_deref()),
        &env,
    );
    let mut indexes: Vec<String> = match primary {
        Some((url, _)) => {
            let mut indexes = vec![url];
            indexes.extend(extra);
            indexes
        }
        // Nothing names an index: the ones the lock was made from (recorded without
        // credentials; netrc supplies them).
        None => lock_text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("# index-url: ")
                    .or_else(|| l.strip_prefix("# extra-index-url: "))
            })
            .map(|url| url.trim().to_owned())
            .collect(),
    };
    indexes.extend(flags.extra_index_url.iter().cloned());
    if let Some(input) = &input {
        indexes.extend(input.extra_index_urls.iter().cloned());
    }
    let mut seen = std::collections::HashSet::new();
    indexes.retain(|url| seen.insert(url.clone()));
    if flags.no_index || input.as_ref().is_some_and(|i| i.no_index) {
        indexes.clear();
    }
    let mut find_links: Vec<PathBuf> = flags.find_links.clone();
    find_links.extend(
        input
            .as_ref()
            .map(|i| i.find_links.clone())
            .unwrap_or_default(),
    );
    for line in lock_text.lines() {
        if let Some(dir) = line.strip_prefix("# find-links: ") {
            find_links.push(PathBuf::from(dir.trim()));
        }
    }
    find_links.retain(|p| p.is_dir());
    if indexes.is_empty() && find_links.is_empty() {
        return Err(BuildError::NoIndex.into());
    }
    let netrc = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")))
        .and_then(|p| fs_err::read_to_string(p).ok());
    Ok(Client::new(index::Options {
        indexes,
        find_links,
        cache_dir: cache.to_path_buf(),
        offline: false,
        netrc,
    }))
}

/// What [`vendor`] did, and what the vendor dir holds after it.
#[derive(Debug, Default)]
pub(crate) struct Vendored {
    pub(crate) fetched: Vec<String>,
    pub(crate) pruned: Vec<String>,
    /// Files named after a pin whose bytes were not the lock's for that name: removed (and
    /// fetched again).
    pub(crate) replaced: Vec<String>,
    /// Every file of the vendor dir with its sha256: each was hashed once, here.
    pub(crate) hashes: BTreeMap<String, String>,
}

/// The regular files of the vendor dir (dot files left out), each with its sha256.
pub(crate) fn hash_vendor_dir(vendor_dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut hashes = BTreeMap::new();
    let entries = match fs_err::read_dir(vendor_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(hashes),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !name.starts_with('.') {
            let sha = crate::fsx::sha256_file(&entry.path())?;
            hashes.insert(name, sha);
        }
    }
    Ok(hashes)
}

/// The pin a vendored file is named after (its name and version).
pub(crate) fn pin_of<'a>(pins: &'a [Pin], filename: &str) -> Option<&'a Pin> {
    let (name, version) = file_identity(filename)?;
    pins.iter().find(|p| p.name == name && p.version == version)
}

/// Whether the vendored file `name` (of sha256 `sha`, in `vendor_dir`) is one the lock names
/// for `pin`: its bytes hash to the lock's hash for that name (or, with a lock that names no
/// files, to one of the pin's hashes, and the content is of the kind the name says).
pub(crate) fn is_locked_file(pin: &Pin, vendor_dir: &Path, name: &str, sha: &str) -> bool {
    file_identity(name).is_some_and(|(n, _)| n == pin.name)
        && pin.accepts(name, sha)
        && (!pin.files.is_empty() || content_fits(&vendor_dir.join(name), name))
}

/// Where [`vendor`] fetches from and reports to.
pub(crate) struct Fetch<'a> {
    /// mfplug's cache: the HTTP cache and the content-addressed store of files.
    pub(crate) cache: &'a Path,
    /// The index flags (else the requirements file, the environment, pip.conf, the lock).
    pub(crate) index: &'a index::config::Flags,
    /// Told how many files are fetched, and each one done.
    pub(crate) progress: &'a dyn ui::Progress,
}

/// Makes the vendor dir hold, for every pin, a file the lock names (a wheel that fits when
/// wheels are allowed, else the sdist), and nothing else.
pub(crate) fn vendor(
    dir: &Path,
    lock_text: &str,
    pins: &[Pin],
    target: &Target,
    allow: Option<&[String]>,
    fetch: &Fetch<'_>,
) -> Result<Vendored> {
    let vendor_dir = dir.join(SOURCES_DIR).join(VENDOR_DIR);
    fs_err::create_dir_all(&vendor_dir)?;
    let mut present = hash_vendor_dir(&vendor_dir)?;
    // A file named after a pin but holding other bytes than the lock's for that name (a
    // wheel saved under an sdist's name, a changed file): named, removed, fetched again.
    let mut replaced = Vec::new();
    let wrong: Vec<String> = present
        .iter()
        .filter(|(name, sha)| {
            pin_of(pins, name).is_some_and(|pin| !is_locked_file(pin, &vendor_dir, name, sha))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in wrong {
        if let Some(sha) = present.remove(&name) {
            ui::warn(format!(
                "vendored `{name}` is not the file the lock names (its sha256 is {sha}): replacing it"
            ));
        }
        fs_err::remove_file(vendor_dir.join(&name))?;
        replaced.push(name);
    }
    let mut missing: Vec<&Pin> = Vec::new();
    for pin in pins {
        let has = present.iter().any(|(name, sha)| {
            is_locked_file(pin, &vendor_dir, name, sha)
                && (!name.ends_with(".whl") || target.accepts_wheel(name))
        });
        if !has {
            missing.push(pin);
        }
    }
    let mut fetched = Vec::new();
    if !missing.is_empty() {
        let client = client(dir, lock_text, fetch.cache, fetch.index)?;
        let archives = fetch.cache.join("archives");
        fetch.progress.set_total(missing.len() as u64);
        let results = fetch_all(&missing, fetch.progress, |pin| {
            fetch_one(&client, pin, target, allow, &vendor_dir, &archives)
        });
        for result in results {
            let (name, sha) = result?;
            present.insert(name.clone(), sha);
            fetched.push(name);
        }
        fetched.sort();
    }
    // Prune what the lock no longer names.
    let mut pruned = Vec::new();
    let unwanted: Vec<String> = present
        .iter()
        .filter(|(name, sha)| {
            !pins
                .iter()
                .any(|pin| is_locked_file(pin, &vendor_dir, name, sha))
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in unwanted {
        fs_err::remove_file(vendor_dir.join(&name))?;
        present.remove(&name);
        pruned.push(name);
    }
    Ok(Vendored {
        fetched,
        pruned,
        replaced,
        hashes: present,
    })
}

/// Fetches one pin's file into the vendor dir; gives its name and sha256.
fn fetch_one(
    client: &Client,
    pin: &Pin,
    target: &Target,
    allow: Option<&[String]>,
    vendor_dir: &Path,
    archives: &Path,
) -> Result<(String, String)> {
    let name: pep508_rs::PackageName = pin
        .name
        .parse()
        .map_err(|_| anyhow::anyhow!("`{}` is not a package name", pin.name))?;
    let files = client
        .project(&name)
        .map_err(|error| BuildError::ListFiles {
            name: pin.name.clone(),
            error,
        })?;
    let wheels_allowed =
        allow.is_some_and(|list| list.is_empty() || list.contains(&normalize(&pin.name)));
    for file in candidates(&files, pin, target, wheels_allowed)? {
        let Some(expected) = expected_hash(client, pin, file)? else {
            continue;
        };
        vendor_file(client, file, &expected, vendor_dir, archives)?;
        return Ok((file.filename.clone(), expected));
    }
    Err(BuildError::NoMatchingFile {
        name: pin.name.clone(),
        version: pin.version.clone(),
        wheels_allowed,
    }
    .into())
}

/// The files of the pin's version worth trying, in order: the wheels the target accepts,
/// then the sdists; sdists first when wheels are not allowed for it (MetWork's rule).
fn candidates<'a>(
    files: &'a [DistFile],
    pin: &Pin,
    target: &Target,
    wheels_allowed: bool,
) -> Result<Vec<&'a DistFile>> {
    let version: pep440_rs::Version = pin
        .version
        .parse()
        .map_err(|_| anyhow::anyhow!("`{}` is not a version", pin.version))?;
    let of_version = || files.iter().filter(|f| f.version == version);
    let wheels = of_version().filter(|f| f.is_wheel && target.accepts_wheel(&f.filename));
    let sdists = of_version().filter(|f| !f.is_wheel);
    Ok(if wheels_allowed {
        wheels.chain(sdists).collect()
    } else {
        sdists.chain(wheels).collect()
    })
}

/// The sha256 the file must have to be the locked one, or `None` when it is not: the hash
/// the lock gives for this very file name; with an older lock that names no files, the
/// file's own hash, which must be one of the pin's. A file the index lists with other bytes
/// is not the locked file either.
fn expected_hash(client: &Client, pin: &Pin, file: &DistFile) -> Result<Option<String>> {
    let expected = match pin.hash_of(&file.filename) {
        Some(hash) => hash.to_ascii_lowercase(),
        None if !pin.files.is_empty() => return Ok(None),
        None => {
            let sha = client.sha256(file).map_err(|error| BuildError::Hash {
                file: file.filename.clone(),
                error,
            })?;
            if !pin.accepts(&file.filename, &sha) {
                return Ok(None);
            }
            sha.to_string()
        }
    };
    let listed_other = file
        .sha256
        .as_deref()
        .is_some_and(|listed| !listed.eq_ignore_ascii_case(&expected));
    Ok((!listed_other).then_some(expected))
}

/// Puts `file` (whose sha256 must be `expected`) into the vendor dir: from the
/// content-addressed store, where any plugin vendored it before, else downloaded (hashed as
/// it streams) and then kept in the store.
fn vendor_file(
    client: &Client,
    file: &DistFile,
    expected: &str,
    vendor_dir: &Path,
    archives: &Path,
) -> Result<()> {
    let out = vendor_dir.join(&file.filename);
    let stored = archives.join(expected).join(&file.filename);
    if stored.is_file() {
        if copy_verified(&stored, &out, expected).is_ok() {
            return Ok(());
        }
        // A damaged entry: dropped, and the file downloaded again.
        let _ = fs_err::remove_file(&stored);
    }
    let got = match client.download_expecting(file, Some(expected)) {
        Ok(got) => got,
        Err(index::IndexError::HashMismatch { actual, .. }) => {
            // Not kept anywhere: the next build downloads it again.
            client.forget(file);
            return Err(BuildError::DownloadMismatch {
                file: file.filename.clone(),
                actual,
                expected: expected.to_owned(),
            }
            .into());
        }
        Err(e) => {
            return Err(BuildError::Download {
                file: file.filename.clone(),
                error: e,
            }
            .into())
        }
    };
    // The download was hashed as it streamed in: copied as it is.
    copy_atomic(&got.path, &out)?;
    let entry_dir = stored.parent().unwrap_or(archives);
    // The store of older builds kept `archives/SHA256` as a file: it gives way.
    if entry_dir.is_file() {
        let _ = fs_err::remove_file(entry_dir);
    }
    if fs_err::create_dir_all(entry_dir).is_ok() {
        let _ = copy_atomic(&got.path, &stored);
    }
    ui::verbose(format!(
        "vendored `{}` from {}",
        file.filename,
        match &file.location {
            Location::Path(p) => p.display().to_string(),
            Location::Url(u) => index::config::strip_credentials(u),
        }
    ));
    Ok(())
}

/// Copies `from` to `to` through a temp file beside `to` and a rename: a reader sees the old
/// file or the new one, never half of one.
pub(crate) fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let mut tmp = AtomicFile::new(to)
        .with_context(|| format!("cannot create a temp file in `{}`", dir_of(to).display()))?;
    let mut source = fs_err::File::open(from)?;
    std::io::copy(&mut source, &mut tmp)
        .with_context(|| format!("cannot copy `{}` to `{}`", from.display(), to.display()))?;
    tmp.commit()
        .with_context(|| format!("cannot write `{}`", to.display()))?;
    Ok(())
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// [`copy_atomic`], hashing the bytes as they are copied: `to` appears only if they hash to
/// `expected`. Gives the sha256.
pub(crate) fn copy_verified(from: &Path, to: &Path, expected: &str) -> Result<String> {
    let mut tmp = AtomicFile::new(to)
        .with_context(|| format!("cannot create a temp file in `{}`", dir_of(to).display()))?;
    let mut source = crate::fsx::HashReader::new(fs_err::File::open(from)?);
    std::io::copy(&mut source, &mut tmp)
        .with_context(|| format!("cannot copy `{}` to `{}`", from.display(), to.display()))?;
    let actual = source.finish();
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(BuildError::ChangedFile {
            path: from.to_path_buf(),
            expected: expected.to_owned(),
            actual,
        }
        .into());
    }
    tmp.commit()
        .with_context(|| format!("cannot write `{}`", to.display()))?;
    Ok(actual)
}

/// Whether a file's first bytes are those of the kind its name says: a zip for `.whl` and
/// `.zip`, gzip for `.tar.gz` and `.tgz`, bzip2 for `.tar.bz2`, xz for `.tar.xz`.
pub(crate) fn content_fits(path: &Path, name: &str) -> bool {
    let mut head = [0u8; 6];
    let read =
        fs_err::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    if read.is_err() {
        return false;
    }
    if name.ends_with(".whl") || name.ends_with(".zip") {
        head.starts_with(b"PK\x03\x04")
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        head.starts_with(&[0x1f, 0x8b])
    } else if name.ends_with(".tar.bz2") {
        head.starts_with(b"BZh")
    } else if name.ends_with(".tar.xz") {
        head.starts_with(b"\xfd7zXZ\x00")
    } else {
        true
    }
}

/// Fetches every missing pin on a few threads, reporting each one done to `progress`.
fn fetch_all<R: Send>(
    missing: &[&Pin],
    progress: &dyn ui::Progress,
    fetch: impl Fn(&Pin) -> R + Sync,
) -> Vec<R> {
    let results = crate::pool::map(missing, 4, |pin| {
        progress.message(&pin.name);
        let result = fetch(pin);
        progress.advance(1);
        result
    });
    progress.finish();
    results
}
