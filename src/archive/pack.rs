//! Writing a `.plugin` file from a plugin dir, reproducibly and in constant memory.
//!
//! Two passes over the files: the first hashes them (in parallel) to write RECORD, which
//! comes before them in the stream; the second streams each file into tar, then zstd, then a
//! temp file beside the output, hashing again so that a file that changed in between is
//! caught. Nothing of the environment reaches the bytes: paths are sorted, times are
//! `SOURCE_DATE_EPOCH` (or a constant), owners are 0, modes are 0644/0755.

use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

use super::{hex, Kind, PluginMeta, Record, RecordEntry, META_PATH, RECORD_PATH};

/// Directories of version control systems: never packed.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"];
/// The ignore file of a plugin dir.
pub const RELEASEIGNORE: &str = ".releaseignore";

/// One thing to pack, before hashing.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path inside the plugin, `/`-separated.
    pub rel: String,
    pub abs: PathBuf,
    pub kind: Kind,
    /// The target of a symlink.
    pub target: Option<String>,
}

/// Options of [`pack`].
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub level: i32,
    /// The mtime of every member.
    pub epoch: u64,
    /// Show a progress bar (only used when the tree is large).
    pub progress: bool,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone)]
pub struct Packed {
    pub path: PathBuf,
    pub meta: PluginMeta,
    pub file_size: u64,
}

/// Reads `.releaseignore` at the root of `dir`, if present.
fn releaseignore(dir: &Path) -> Result<Gitignore> {
    let path = dir.join(RELEASEIGNORE);
    let mut builder = GitignoreBuilder::new(dir);
    if path.is_file() {
        let text = fs_err::read_to_string(&path)?;
        for (index, line) in text.lines().enumerate() {
            builder
                .add_line(Some(path.clone()), line)
                .with_context(|| {
                    format!(
                        "`{}` line {}: invalid pattern `{line}`",
                        path.display(),
                        index + 1
                    )
                })?;
        }
    }
    builder
        .build()
        .with_context(|| format!("cannot read `{}`", path.display()))
}

/// Lists what a release of `dir` holds: every file, symlink and empty dir, less the paths of
/// `exclude` and, with `release_rules`, less `.releaseignore` matches, VCS dirs and `local/`
/// (`convert` keeps all of a legacy file). Sorted by path bytes.
pub fn collect(dir: &Path, exclude: &[PathBuf], release_rules: bool) -> Result<Vec<Source>> {
    let ignore = if release_rules {
        releaseignore(dir)?
    } else {
        Gitignore::empty()
    };
    // Without negations a matched directory can be skipped whole; with them, a file inside
    // it may be brought back, so the walk goes in and decides file by file.
    let prune_ignored = ignore.num_whitelists() == 0;
    let exclude: HashSet<PathBuf> = exclude
        .iter()
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    let root_abs =
        std::path::absolute(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;

    let is_rust = dir.join("Cargo.toml").is_file();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            if entry.file_type().is_dir() {
                let name = entry.file_name().to_string_lossy();
                // `target/` of a Rust plugin is cargo's: its binaries are shipped in `bin/`.
                let cargo_target = rel == Path::new("target") && is_rust;
                if release_rules
                    && (VCS_DIRS.contains(&name.as_ref())
                        || rel == Path::new("local")
                        || cargo_target
                        || (rel.components().count() == 1 && name.starts_with(".mfplug-")))
                {
                    return false;
                }
                if prune_ignored && ignore.matched_path_or_any_parents(rel, true).is_ignore() {
                    return false;
                }
            }
            true
        });

    let mut sources = Vec::new();
    let mut dirs = Vec::new();
    for entry in walker {
        let entry =
            entry.with_context(|| format!("cannot read the tree of `{}`", dir.display()))?;
        let rel_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = rel_text(rel_path)?;
        let file_type = entry.file_type();
        if ignore
            .matched_path_or_any_parents(rel_path, file_type.is_dir())
            .is_ignore()
        {
            continue;
        }
        if exclude.contains(&root_abs.join(rel_path)) {
            continue;
        }
        let abs = entry.path().to_path_buf();
        if file_type.is_dir() {
            dirs.push(rel);
        } else if file_type.is_symlink() {
            let target = fs_err::read_link(&abs)?;
            let target_text = target
                .to_str()
                .with_context(|| format!("symlink `{rel}` has a target that is not UTF-8"))?
                .to_owned();
            if !target.is_absolute() && !stays_inside(rel_path, &target) {
                return Err(crate::ui::error_with_hint(
                    format!("symlink `{rel}` points outside the plugin dir (`{target_text}`)"),
                    "make it point inside the plugin, use an absolute target (it is then reported by `mfplug info`), or list it in `.releaseignore`",
                ));
            }
            sources.push(Source {
                rel,
                abs,
                kind: Kind::Symlink,
                target: Some(target_text),
            });
        } else if file_type.is_file() {
            // The mode is read when the file is packed: no stat here.
            sources.push(Source {
                rel,
                abs,
                kind: Kind::File { executable: false },
                target: None,
            });
        } else {
            return Err(crate::ui::error_with_hint(
                format!("`{rel}` is a special file (fifo, socket or device), which a plugin cannot hold"),
                "list it in `.releaseignore`",
            ));
        }
    }
    // Directories are implied by what they hold; only empty ones are recorded.
    let mut parents: HashSet<&str> = HashSet::new();
    for source in &sources {
        let mut path = source.rel.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !parents.insert(parent) {
                break;
            }
            path = parent;
        }
    }
    for dir_rel in &dirs {
        let mut path = dir_rel.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            parents.insert(parent);
            path = parent;
        }
    }
    let empty: Vec<String> = dirs
        .iter()
        .filter(|d| !parents.contains(d.as_str()))
        .cloned()
        .collect();
    for rel in empty {
        sources.push(Source {
            abs: dir.join(&rel),
            rel,
            kind: Kind::Dir,
            target: None,
        });
    }
    sources.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(sources)
}

fn rel_text(rel: &Path) -> Result<String> {
    let text = rel
        .to_str()
        .with_context(|| format!("`{}`: file names must be UTF-8", rel.display()))?;
    if text.contains(['\t', '\n', '\r']) {
        return Err(crate::ui::error_with_hint(
            format!(
                "`{}`: a file name with a tab or a newline cannot be recorded",
                text.escape_default()
            ),
            "rename it, or list it in `.releaseignore`",
        ));
    }
    Ok(text.to_owned())
}

/// Whether a relative symlink target, read from the link's dir, stays inside the tree.
pub fn stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: i64 = link.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// The metadata a release starts from (the rest is computed).
#[derive(Debug, Clone)]
pub struct MetaBase {
    pub name: String,
    pub version: String,
    pub release: String,
    pub summary: String,
    pub license: String,
    pub maintainer: String,
    pub vendor: String,
    pub url: String,
}

/// A reader that hashes and counts what goes through it, and keeps its first bytes.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    magic: [u8; 4],
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.count < 4 {
            let start = self.count as usize;
            let take = (4 - start).min(n);
            self.magic[start..start + take].copy_from_slice(&buf[..take]);
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The file being packed, swapped in and out of one long-lived `BufReader`.
struct Slot(Option<HashingReader<io::Take<fs_err::File>>>);

impl Read for Slot {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(reader) => reader.read(buf),
            None => Ok(0),
        }
    }
}

/// What tells that a file changed while it was read: its change time and its size.
type Stamp = ((i64, i64), u64);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    ((meta.ctime(), meta.ctime_nsec()), meta.size())
}

fn header(kind: Kind, size: u64, epoch: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let (entry_type, mode) = match kind {
        Kind::File { executable } => (
            tar::EntryType::Regular,
            if executable { 0o755 } else { 0o644 },
        ),
        Kind::Symlink => (tar::EntryType::Symlink, 0o777),
        Kind::Dir => (tar::EntryType::Directory, 0o755),
    };
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(epoch);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// The zstd encoder of the body, set up the same way on every machine: the multithreaded
/// output depends on the job size and level, not on the number of workers.
fn body_encoder<W: Write>(writer: W, level: i32) -> Result<zstd::Encoder<'static, W>> {
    use zstd::stream::raw::CParameter;
    let mut encoder = zstd::Encoder::new(writer, level).context("cannot start zstd")?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    encoder
        .multithread(workers.max(1))
        .context("cannot start zstd's worker threads")?;
    // Smaller jobs than zstd's default keep the memory flat (a few MiB per worker) for a
    // size cost well under 1%.
    encoder.set_parameter(CParameter::JobSize(JOB_SIZE))?;
    encoder.include_checksum(true)?;
    Ok(encoder)
}

/// Bytes per read of a file being packed.
const READ_BUFFER: usize = 1 << 20;

/// Bytes per zstd job.
const JOB_SIZE: u32 = 4 << 20;

/// A tar member as raw blocks: header, data, padding to 512 bytes.
fn raw_member(path: &str, data: &[u8], epoch: u64) -> Result<Vec<u8>> {
    let mut h = header(Kind::File { executable: false }, data.len() as u64, epoch);
    h.set_path(path)?;
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    Ok(out)
}

/// Packs `sources` (from [`collect`]) into `out` (written beside it and renamed into place).
///
/// One read of each file: it is hashed while it streams into the body (tar, then zstd, into
/// a temp file). The head (`PLUGIN.json`, RECORD), known only at the end, is a zstd frame of
/// its own written first in the output, followed by the body's frames: zstd readers decode
/// concatenated frames as one stream, so the file is one tar stream with RECORD second.
pub fn pack(sources: &[Source], base: MetaBase, out: &Path, opts: &PackOptions) -> Result<Packed> {
    let started = std::time::Instant::now();
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = |suffix: &str| {
        tempfile::Builder::new()
            .prefix(".mfplug-release-")
            .suffix(suffix)
            .tempfile_in(&out_dir)
            .with_context(|| format!("cannot create a file in `{}`", out_dir.display()))
    };
    let body = temp(".body")?;
    let progress = progress_bar(opts.progress, sources.len());

    let mut builder = tar::Builder::new(body_encoder(
        BufWriter::with_capacity(1 << 20, body.as_file()),
        opts.level,
    )?);
    let mut entries = Vec::with_capacity(sources.len());
    let mut compiled = false;
    let mut reader = io::BufReader::with_capacity(READ_BUFFER, Slot(None));
    for source in sources {
        let entry = match source.kind {
            Kind::File { .. } => {
                let file = fs_err::File::open(&source.abs)?;
                let meta = file.metadata()?;
                let before = stamp(&meta);
                let executable = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.permissions().mode() & 0o111 != 0
                };
                let kind = Kind::File { executable };
                let mut h = header(kind, meta.len(), opts.epoch);
                // One buffer for every file: large reads (`io::copy` in tar moves a
                // `BufReader`'s whole buffer at a time), initialised once.
                reader.get_mut().0 = Some(HashingReader {
                    inner: file.take(meta.len()),
                    hasher: Sha256::new(),
                    count: 0,
                    magic: [0; 4],
                });
                builder
                    .append_data(&mut h, &source.rel, &mut reader)
                    .with_context(|| format!("cannot pack `{}`", source.rel))?;
                let Some(reader) = reader.get_mut().0.take() else {
                    unreachable!("the reader was set above")
                };
                let after = reader.inner.get_ref().metadata()?;
                if reader.count != meta.len() || stamp(&after) != before {
                    bail!(
                        "`{}` changed while the release was being written; run `mfplug release` again",
                        source.rel
                    );
                }
                compiled |= reader.magic == *b"\x7fELF";
                RecordEntry {
                    path: source.rel.clone(),
                    kind,
                    size: reader.count,
                    sha256: hex(&reader.hasher.finalize()),
                }
            }
            Kind::Symlink => {
                let target = source.target.as_deref().unwrap_or_default();
                let mut h = header(Kind::Symlink, 0, opts.epoch);
                builder
                    .append_link(&mut h, &source.rel, target)
                    .with_context(|| format!("cannot pack symlink `{}`", source.rel))?;
                RecordEntry {
                    path: source.rel.clone(),
                    kind: Kind::Symlink,
                    size: target.len() as u64,
                    sha256: hex(&Sha256::digest(target.as_bytes())),
                }
            }
            Kind::Dir => {
                let mut h = header(Kind::Dir, 0, opts.epoch);
                builder.append_data(&mut h, format!("{}/", source.rel), io::empty())?;
                RecordEntry {
                    path: source.rel.clone(),
                    kind: Kind::Dir,
                    size: 0,
                    sha256: String::new(),
                }
            }
        };
        progress.inc(1);
        entries.push(entry);
    }
    let encoder = builder
        .into_inner()
        .context("cannot finish the tar stream")?;
    encoder
        .finish()
        .context("cannot finish the zstd stream")?
        .flush()?;
    progress.finish_and_clear();
    crate::ui::verbose(format!(
        "packed {} entries in {:.3} s",
        entries.len(),
        started.elapsed().as_secs_f64()
    ));

    let record = Record { entries };
    let record_text = record.to_text();
    let external_symlinks = sources
        .iter()
        .filter_map(|s| {
            let target = s.target.as_deref()?;
            target
                .starts_with('/')
                .then(|| format!("{} -> {target}", s.rel))
        })
        .collect();
    let meta = PluginMeta {
        format: super::FORMAT,
        name: base.name,
        version: base.version,
        release: base.release,
        summary: base.summary,
        license: base.license,
        maintainer: base.maintainer,
        vendor: base.vendor,
        url: base.url,
        build_time: opts.epoch,
        tool: format!("mfplug {}", env!("CARGO_PKG_VERSION")),
        platform: if compiled {
            format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
        } else {
            "any".into()
        },
        plugin_hash: Record::plugin_hash(&record_text),
        files: record.entries.len() as u64,
        size: record.entries.iter().map(|e| e.size).sum(),
        external_symlinks,
    };
    let mut meta_json = serde_json::to_string_pretty(&meta)?;
    meta_json.push('\n');

    let mut head = raw_member(META_PATH, meta_json.as_bytes(), opts.epoch)?;
    head.extend(raw_member(RECORD_PATH, record_text.as_bytes(), opts.epoch)?);
    let final_file = temp(".tmp")?;
    {
        let mut writer = BufWriter::new(final_file.as_file());
        let mut encoder = zstd::Encoder::new(&mut writer, opts.level)?;
        encoder.include_checksum(true)?;
        encoder.write_all(&head)?;
        encoder.finish()?;
        writer.flush()?;
    }
    let mut body_file = body.reopen()?;
    // On Linux this is copy_file_range: the body is not read back into this process.
    io::copy(&mut body_file, &mut final_file.as_file())
        .with_context(|| format!("cannot write `{}`", final_file.path().display()))?;
    // Not fsynced, like `tar` or `cargo package`: the rename makes it appear whole or not at
    // all, and a release can be made again. Install, which must survive a crash, syncs.
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(final_file.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    let file_size = final_file.as_file().metadata()?.len();
    final_file
        .persist(out)
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    Ok(Packed {
        path: out.to_path_buf(),
        meta,
        file_size,
    })
}

/// A byte progress bar on a terminal when the tree is large; hidden otherwise.
fn progress_bar(wanted: bool, files: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !(wanted && files > 2_000 && io::stderr().is_terminal()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("   Packing [{bar:30}] {pos}/{len} files ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_symlinks() {
        assert!(stays_inside(Path::new("a/b"), Path::new("c")));
        assert!(stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(!stays_inside(Path::new("a/b"), Path::new("../../c")));
        assert!(!stays_inside(Path::new("b"), Path::new("../c")));
        assert!(stays_inside(Path::new("a/b"), Path::new("./../a/./c")));
        assert!(!stays_inside(Path::new("a/b"), Path::new("../../a/c")));
    }
}
