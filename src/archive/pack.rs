//! Writing a `.plugin` file from a plugin dir, reproducibly and in constant memory.
//!
//! One read of each file: it is hashed while it streams into tar, then zstd, then the output
//! file, behind room kept for the head (`PLUGIN.json` and RECORD), which is written last.
//! Nothing of the environment reaches the bytes: paths are sorted, times are
//! `SOURCE_DATE_EPOCH` (or a constant), owners are 0, modes are 0644/0755.

use std::io::{self, Read, Seek as _, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{mpsc, OnceLock};

use anyhow::{bail, Context as _, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

use crate::fsx::{hex, sha256_hex};

use super::{Kind, PluginMeta, Record, RecordEntry, META_PATH, RECORD_PATH};

/// Directories of version control systems: never packed.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"];
/// The start of the names of a release's temp files, beside its output.
const TEMP_PREFIX: &str = ".mfplug-release-";
/// The ignore file of a plugin dir.
pub(crate) const RELEASEIGNORE: &str = ".releaseignore";

/// One thing to pack, before hashing.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path inside the plugin, `/`-separated.
    pub(crate) rel: String,
    pub(crate) abs: PathBuf,
    pub(crate) kind: Kind,
    /// The target of a symlink.
    pub(crate) target: Option<String>,
}

/// Options of [`pack`].
#[derive(Clone, Copy)]
pub(crate) struct PackOptions<'a> {
    pub(crate) level: i32,
    /// The mtime of every member.
    pub(crate) epoch: u64,
    /// Where the count of entries packed goes: a count until the walk ends and the total is
    /// known, then a bar.
    pub(crate) progress: &'a dyn crate::ui::Progress,
}

/// What [`pack`] wrote.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    pub(crate) path: PathBuf,
    pub(crate) meta: PluginMeta,
    pub(crate) file_size: u64,
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

/// Walks what a release of `dir` holds: every file, symlink and empty dir, less the paths of
/// `exclude` and, with `release_rules`, less `.releaseignore` matches, VCS dirs, `local/` and
/// a Rust plugin's `target/` (`convert` keeps all of a legacy file). Lazily, so that packing
/// starts with the first file, and sorted by member name bytes: the walk visits each dir's
/// entries by name, a dir as if its name ended with `/` (an empty dir's member name ends
/// with `/`).
pub(crate) fn walk(dir: &Path, exclude: &[PathBuf], release_rules: bool) -> Result<Walk> {
    let ignore = if release_rules {
        releaseignore(dir)?
    } else {
        Gitignore::empty()
    };
    let root_abs =
        std::path::absolute(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    // As paths inside the tree, compared with each entry's without building its full path.
    let exclude: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|p| {
            let p = std::path::absolute(p).ok()?;
            Some(p.strip_prefix(&root_abs).ok()?.to_path_buf())
        })
        .collect();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| member_order(a).cmp(member_order(b)))
        .into_iter();
    Ok(Walk {
        dir: dir.to_path_buf(),
        is_rust: dir.join("Cargo.toml").is_file(),
        release_rules,
        // Without negations a matched directory can be skipped whole; with them, a file
        // inside it may be brought back, so the walk goes in and decides file by file.
        prune_ignored: ignore.num_whitelists() == 0,
        ignore,
        exclude,
        walker,
        pending_dir: None,
        queued: None,
        failed: false,
    })
}

/// The bytes of an entry's member name within its dir: a dir sorts as if its name ended
/// with `/`.
fn member_order(entry: &walkdir::DirEntry) -> impl Iterator<Item = u8> + '_ {
    let slash = entry.file_type().is_dir().then_some(b'/');
    entry
        .file_name()
        .as_encoded_bytes()
        .iter()
        .copied()
        .chain(slash)
}

/// The lazy walk of [`walk`].
pub(crate) struct Walk {
    dir: PathBuf,
    is_rust: bool,
    release_rules: bool,
    prune_ignored: bool,
    ignore: Gitignore,
    exclude: Vec<PathBuf>,
    walker: walkdir::IntoIter,
    /// The last dir seen, until an entry inside it shows it is not empty.
    pending_dir: Option<Source>,
    /// An entry read while deciding that the pending dir was empty.
    queued: Option<Source>,
    failed: bool,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Walk {
    /// Whether the walk goes into a dir.
    fn enters(&self, entry: &walkdir::DirEntry) -> bool {
        let rel = entry.path().strip_prefix(&self.dir).unwrap_or(entry.path());
        if !entry.file_type().is_dir() {
            return true;
        }
        let name = entry.file_name().to_string_lossy();
        // `target/` of a Rust plugin is cargo's: its binaries are shipped in `bin/`.
        let cargo_target = rel == Path::new("target") && self.is_rust;
        if self.release_rules
            && (VCS_DIRS.contains(&name.as_ref()) || rel == Path::new("local") || cargo_target)
        {
            return false;
        }
        !(self.prune_ignored
            && self
                .ignore
                .matched_path_or_any_parents(rel, true)
                .is_ignore())
    }

    /// The next entry of the tree that goes in the release, in order, dirs included.
    fn next_entry(&mut self) -> Option<Result<Source>> {
        loop {
            let entry = match self.walker.next()? {
                Ok(entry) => entry,
                Err(e) => {
                    return Some(Err(anyhow::Error::new(e).context(format!(
                        "cannot read the tree of `{}`",
                        self.dir.display()
                    ))))
                }
            };
            if entry.file_type().is_dir() && !self.enters(&entry) {
                self.walker.skip_current_dir();
                continue;
            }
            let rel_path = entry.path().strip_prefix(&self.dir).unwrap_or(entry.path());
            let file_type = entry.file_type();
            if self
                .ignore
                .matched_path_or_any_parents(rel_path, file_type.is_dir())
                .is_ignore()
            {
                continue;
            }
            if self.exclude.iter().any(|e| e == rel_path) {
                continue;
            }
            // mfplug's own temp files: a release's output in the making (in whatever dir the
            // output goes, which may be inside the tree), a build's new env.
            let name = entry.file_name().to_string_lossy();
            if name.starts_with(TEMP_PREFIX)
                || (rel_path.components().count() == 1 && name.starts_with(".mfplug-"))
            {
                continue;
            }
            return Some(self.source(&entry, rel_path));
        }
    }

    fn source(&self, entry: &walkdir::DirEntry, rel_path: &Path) -> Result<Source> {
        let rel = rel_text(rel_path)?;
        let abs = entry.path().to_path_buf();
        let file_type = entry.file_type();
        if file_type.is_dir() {
            Ok(Source {
                rel: format!("{rel}/"),
                abs,
                kind: Kind::Dir,
                target: None,
            })
        } else if file_type.is_symlink() {
            let target = fs_err::read_link(&abs)?;
            let target_text = target
                .to_str()
                .with_context(|| format!("symlink `{rel}` has a target that is not UTF-8"))?
                .to_owned();
            if super::unpack::is_metadata_path(&rel) {
                return Err(PackError::MetadataSymlink { rel }.into());
            }
            if !target.is_absolute() && !stays_inside(rel_path, &target) {
                return Err(PackError::SymlinkOutside {
                    rel,
                    target: target_text,
                }
                .into());
            }
            Ok(Source {
                rel,
                abs,
                kind: Kind::Symlink,
                target: Some(target_text),
            })
        } else if file_type.is_file() {
            // The mode is read when the file is packed: no stat here.
            Ok(Source {
                rel,
                abs,
                kind: Kind::File { executable: false },
                target: None,
            })
        } else {
            Err(PackError::SpecialFile { rel }.into())
        }
    }
}

impl Iterator for Walk {
    type Item = Result<Source>;

    /// Directories are implied by what they hold; only empty ones are yielded: a dir is held
    /// back until the next entry shows whether anything lies inside it.
    fn next(&mut self) -> Option<Result<Source>> {
        if self.failed {
            return None;
        }
        if let Some(queued) = self.queued.take() {
            return Some(Ok(queued));
        }
        loop {
            let next = match self.next_entry() {
                None => return self.pending_dir.take().map(Ok),
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(next)) => next,
            };
            if let Some(pending) = self.pending_dir.take() {
                if !next.rel.starts_with(&pending.rel) {
                    // Nothing went in it: an empty dir, yielded before what follows.
                    if next.kind == Kind::Dir {
                        self.pending_dir = Some(next);
                        return Some(Ok(pending));
                    }
                    self.queued = Some(next);
                    return Some(Ok(pending));
                }
            }
            if next.kind == Kind::Dir {
                self.pending_dir = Some(next);
                continue;
            }
            return Some(Ok(next));
        }
    }
}

fn rel_text(rel: &Path) -> Result<String> {
    let text = rel
        .to_str()
        .with_context(|| format!("`{}`: file names must be UTF-8", rel.display()))?;
    if text.contains(['\t', '\n', '\r']) {
        return Err(PackError::UnrecordableName {
            name: text.escape_default().to_string(),
        }
        .into());
    }
    Ok(text.to_owned())
}

/// Whether a relative symlink target, read from the link's dir, stays inside the tree.
pub(crate) fn stays_inside(link: &Path, target: &Path) -> bool {
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

/// What a plugin dir holds that a `.plugin` file cannot, with where; `commands` says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackError {
    /// One of mfplug's own files (`PLUGIN.json`, `RECORD`, ...) is a symlink.
    #[error("`{rel}` is a symlink: mfplug reads and writes this file itself, so it must be a regular file")]
    MetadataSymlink { rel: String },
    /// A relative symlink leads out of the plugin dir.
    #[error("symlink `{rel}` points outside the plugin dir (`{target}`)")]
    SymlinkOutside { rel: String, target: String },
    /// A fifo, socket or device.
    #[error("`{rel}` is a special file (fifo, socket or device), which a plugin cannot hold")]
    SpecialFile { rel: String },
    /// A name RECORD cannot hold (a tab or a newline in it), escaped.
    #[error("`{name}`: a file name with a tab or a newline cannot be recorded")]
    UnrecordableName { name: String },
    /// A symlink leads out of the plugin through another.
    #[error("cannot release: {why}")]
    SymlinkChain { why: String },
}

/// The metadata a release starts from (the rest is computed): what `info` shows first.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct MetaBase {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) release: String,
    pub(crate) summary: String,
    pub(crate) license: String,
    pub(crate) maintainer: String,
    pub(crate) vendor: String,
    pub(crate) url: String,
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
    // A large output buffer: zstd hands over at most a buffer of compressed bytes per call,
    // and a small one (the default is 32 KiB) keeps finished jobs waiting in memory.
    let raw = zstd::stream::raw::Encoder::new(level).context("cannot start zstd")?;
    let mut encoder = zstd::Encoder::with_writer(zstd::stream::zio::Writer::new_with_capacity(
        writer,
        raw,
        OUTPUT_BUFFER,
    ));
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

/// Bytes per read of a file being packed: small enough that the bytes are still in the CPU's
/// cache when they are hashed, then copied into zstd (1 MiB reads cost 10% more CPU).
const READ_BUFFER: usize = 128 << 10;

/// Bytes of zstd's output buffer.
const OUTPUT_BUFFER: usize = 1 << 20;

/// Bytes per zstd job.
const JOB_SIZE: u32 = 4 << 20;

/// A body smaller than this is copied after the head instead of being written behind room
/// kept for it: the copy costs little and the file then has no padding.
const COMPACT_BELOW: u64 = 1 << 20;

/// The magic number of a zstd skippable frame (the first of the sixteen zstd reserves).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// The head frame: `PLUGIN.json` and RECORD.
fn head_frame(head: &[u8], level: i32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = zstd::Encoder::new(&mut out, level)?;
    encoder.include_checksum(true)?;
    encoder.write_all(head)?;
    encoder.finish()?;
    Ok(out)
}

/// `PLUGIN.json` from the base, RECORD's hash, the count and total size of its entries.
fn plugin_meta(
    base: &MetaBase,
    plugin_hash: String,
    (files, size): (u64, u64),
    compiled: bool,
    external_symlinks: Vec<String>,
    epoch: u64,
) -> PluginMeta {
    PluginMeta {
        format: super::FORMAT,
        name: base.name.clone(),
        version: base.version.clone(),
        release: base.release.clone(),
        summary: base.summary.clone(),
        license: base.license.clone(),
        maintainer: base.maintainer.clone(),
        vendor: base.vendor.clone(),
        url: base.url.clone(),
        build_time: epoch,
        tool: format!("mfplug {}", env!("CARGO_PKG_VERSION")),
        platform: if compiled {
            format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
        } else {
            "any".into()
        },
        plugin_hash,
        files,
        size,
        external_symlinks,
    }
}

/// `PLUGIN.json` for `record`, and the head: `PLUGIN.json` and RECORD as tar members.
fn head(
    base: &MetaBase,
    record: &Record,
    compiled: bool,
    external_symlinks: Vec<String>,
    epoch: u64,
) -> Result<(PluginMeta, Vec<u8>)> {
    let record_text = record.to_text();
    let meta = plugin_meta(
        base,
        Record::plugin_hash(&record_text),
        (
            record.entries.len() as u64,
            record.entries.iter().map(|e| e.size).sum(),
        ),
        compiled,
        external_symlinks,
        epoch,
    );
    let mut meta_json = serde_json::to_string_pretty(&meta)?;
    meta_json.push('\n');
    let mut head = raw_member(META_PATH, meta_json.as_bytes(), epoch)?;
    head.extend(raw_member(RECORD_PATH, record_text.as_bytes(), epoch)?);
    Ok((meta, head))
}

/// Counts the bytes written to it.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The room kept at the start of the file for the head frame, so that the body is written
/// once, in place, estimated as the walk goes.
///
/// The head is known only once every file is read, but its compressed size nearly is: the
/// names and kinds are known, and a hash compresses as well as any other string of random hex
/// digits. So a draft head with made-up hashes and 7-digit sizes (a file of 10 MB or more
/// has a longer one) is compressed, and the room is its size plus a margin. The result
/// depends on the tree only, so the output stays reproducible.
struct HeadRoom {
    draft: zstd::Encoder<'static, Counter>,
    state: u64,
    files: u64,
    size: u64,
    external_symlinks: Vec<String>,
}

impl HeadRoom {
    fn new(level: i32) -> Result<Self> {
        Ok(Self {
            draft: zstd::Encoder::new(Counter(0), level)?,
            state: 0x9e37_79b9_7f4a_7c15,
            files: 0,
            size: 0,
            external_symlinks: Vec::new(),
        })
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Adds the draft RECORD line of `source`.
    fn add(&mut self, source: &Source) -> Result<()> {
        let (size, sha256) = match source.kind {
            Kind::Dir => (0, String::new()),
            _ => {
                let size = match &source.target {
                    Some(target) => target.len() as u64,
                    None => 1_000_000 + self.next() % 9_000_000,
                };
                let mut digest = [0u8; 32];
                for chunk in digest.chunks_mut(8) {
                    chunk.copy_from_slice(&self.next().to_le_bytes());
                }
                (size, hex(&digest))
            }
        };
        if let Some(target) = source.target.as_deref().filter(|t| t.starts_with('/')) {
            self.external_symlinks
                .push(format!("{} -> {target}", source.rel));
        }
        let entry = RecordEntry {
            path: source.rel.clone(),
            kind: source.kind,
            size,
            sha256,
        };
        writeln!(self.draft, "{entry}")?;
        self.files += 1;
        self.size += size;
        Ok(())
    }

    /// The room: the compressed draft (RECORD, then `PLUGIN.json`) and a margin.
    fn finish(mut self, base: &MetaBase, epoch: u64) -> Result<u64> {
        let meta = plugin_meta(
            base,
            format!("sha256:{}", "0".repeat(64)),
            (self.files, self.size),
            true,
            std::mem::take(&mut self.external_symlinks),
            epoch,
        );
        let json = serde_json::to_string_pretty(&meta)?;
        self.draft
            .write_all(&raw_member(META_PATH, json.as_bytes(), epoch)?)?;
        let estimate = self.draft.finish()?.0;
        Ok(estimate + estimate / 50 + 1024)
    }
}

/// What goes between the head frame and a body written `room` bytes into the file: nothing
/// when the head fills the room exactly, else a zstd skippable frame (4 bytes of magic, 4 of
/// length, then the bytes to skip), which every zstd reader passes over. `None` when the head
/// does not fit, or the gap is too small for a frame.
fn padding(room: u64, head: u64) -> Option<Vec<u8>> {
    let gap = room.checked_sub(head)?;
    if gap == 0 {
        return Some(Vec::new());
    }
    let skipped = u32::try_from(gap.checked_sub(8)?).ok()?;
    let mut frame = Vec::with_capacity(gap as usize);
    frame.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    frame.extend_from_slice(&skipped.to_le_bytes());
    frame.resize(gap as usize, 0);
    Some(frame)
}

/// Writes `prefix` then the body, which starts `room` bytes into `spaced`, into a new file.
fn compact(
    spaced: &tempfile::NamedTempFile,
    room: u64,
    prefix: &[u8],
    temp: impl Fn(&str) -> Result<tempfile::NamedTempFile>,
) -> Result<tempfile::NamedTempFile> {
    let out = temp(".tmp")?;
    out.as_file()
        .write_all(prefix)
        .with_context(|| format!("cannot write `{}`", out.path().display()))?;
    let mut reader = spaced.reopen()?;
    reader.seek(SeekFrom::Start(room))?;
    // On Linux this is copy_file_range: the body is not read back into this process.
    io::copy(&mut reader, &mut out.as_file())
        .with_context(|| format!("cannot write `{}`", out.path().display()))?;
    Ok(out)
}

/// Moves the finished file to `out`, atomically: `out` holds the old file or the new one.
///
/// Over an existing file, the two are exchanged and the old one is then removed with the temp
/// file. A plain rename over it makes ext4 write the whole new file to disk inside the rename
/// (its safeguard for programs that replace files without `fsync`), which took as long as a
/// sixth of the packing.
fn replace(file: tempfile::NamedTempFile, out: &Path) -> Result<()> {
    let is_file = fs_err::symlink_metadata(out).is_ok_and(|m| m.is_file());
    if is_file && crate::fsx::exchange(file.path(), out).is_ok() {
        // The temp path now names the old file: closing the temp file removes it.
        return file.close().context("cannot remove the previous file");
    }
    // No file there yet, or a file system without exchange.
    file.persist(out)?;
    Ok(())
}

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

/// Where the compressed body goes: a spool file while the walk is still going, then the output
/// file, `room` bytes in, after a copy of what was spooled.
struct BodyOut<'a> {
    out: &'a std::fs::File,
    spool: Option<tempfile::NamedTempFile>,
    room: &'a OnceLock<u64>,
}

impl BodyOut<'_> {
    /// Moves to the output file, once the room for the head is known.
    fn settle(&mut self, room: u64) -> io::Result<()> {
        let Some(spool) = self.spool.take() else {
            return Ok(());
        };
        let mut out = self.out;
        out.seek(SeekFrom::Start(room))?;
        // On Linux this is copy_file_range: the spool is not read back into this process.
        io::copy(&mut spool.reopen()?, &mut out)?;
        spool.close()
    }
}

impl Write for BodyOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.spool.is_some() {
            if let Some(&room) = self.room.get() {
                self.settle(room)?;
            }
        }
        match &self.spool {
            Some(spool) => spool.as_file().write(buf),
            None => {
                let mut out = self.out;
                out.write(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Walks ahead of the packing, on its own thread: each entry goes to the packer, and once the
/// walk is over, the room for the head is estimated from all of them.
fn walk_ahead(
    sources: impl Iterator<Item = Result<Source>>,
    to_packer: mpsc::Sender<Result<Source>>,
    base: &MetaBase,
    opts: &PackOptions<'_>,
    room: &OnceLock<u64>,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut estimate = HeadRoom::new(opts.level)?;
    for source in sources {
        let failed = source.is_err();
        if let Ok(source) = &source {
            estimate.add(source)?;
        }
        // A closed channel: the packer failed, and says why.
        if to_packer.send(source).is_err() || failed {
            return Ok(());
        }
    }
    drop(to_packer);
    crate::ui::verbose(format!(
        "walked {} entries in {:.3} s",
        estimate.files,
        started.elapsed().as_secs_f64()
    ));
    // The count becomes a bar.
    opts.progress.set_total(estimate.files);
    let _ = room.set(estimate.finish(base, opts.epoch)?);
    Ok(())
}

/// What the body holds, for the head.
struct Body {
    entries: Vec<RecordEntry>,
    compiled: bool,
    external_symlinks: Vec<String>,
}

/// Runs the reader's own checks (bounds, paths, symlinks through symlinks) on `source`, so
/// that a release is never a file that `verify` refuses.
fn admit_source(
    source: &Source,
    limits: &super::unpack::Limits,
    guard: &mut super::unpack::Guard,
) -> Result<()> {
    let checked = |e: super::unpack::ArchiveError| {
        anyhow::Error::new(e).context(format!("cannot release `{}`", source.rel))
    };
    let path = super::unpack::check_path(source.rel.as_bytes(), limits).map_err(checked)?;
    let admitted = match (source.kind, &source.target) {
        (Kind::Symlink, Some(target)) => super::unpack::Admit::Symlink(target),
        (Kind::Symlink, None) => super::unpack::Admit::Symlink(""),
        (Kind::Dir, _) => super::unpack::Admit::Dir,
        (Kind::File { .. }, _) => super::unpack::Admit::File,
    };
    guard.admit(&path, admitted, 0, limits).map_err(checked)?;
    Ok(())
}

/// The reusable state of [`pack_body`]'s members: one read buffer for every file, and whether
/// a file seen so far is compiled (an ELF file).
struct FilePacker<'w, F> {
    buf: Vec<u8>,
    compiled: bool,
    epoch: u64,
    writing: &'w F,
}

impl<F: Fn(io::Error) -> anyhow::Error> FilePacker<'_, F> {
    /// Packs one file: the header (after a GNU long-name member when the path needs one)
    /// through tar, and the data here, hashed as it goes (tar's own copy would feed zstd 8 KiB
    /// at a time). Refuses a file that changed while it was read.
    fn pack_file<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        source: Source,
    ) -> Result<RecordEntry> {
        let file = fs_err::File::open(&source.abs)?;
        let meta = file.metadata()?;
        let before = stamp(&meta);
        let executable = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o111 != 0
        };
        let kind = Kind::File { executable };
        let mut h = header(kind, meta.len(), self.epoch);
        builder
            .append_data(&mut h, &source.rel, io::empty())
            .with_context(|| format!("cannot pack `{}`", source.rel))?;
        let mut reader = file.take(meta.len());
        let (count, sha256) = self.stream(&mut reader, builder.get_mut())?;
        let after = reader.get_ref().metadata()?;
        if count != meta.len() || stamp(&after) != before {
            bail!(
                "`{}` changed while the release was being written; run `mfplug release` again",
                source.rel
            );
        }
        Ok(RecordEntry {
            path: source.rel,
            kind,
            size: count,
            sha256,
        })
    }

    /// Copies `reader` into `out` then pads it to 512 bytes; gives its size and sha256.
    fn stream(&mut self, reader: &mut impl Read, out: &mut impl Write) -> Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut count = 0u64;
        loop {
            let n = reader.read(&mut self.buf)?;
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            self.compiled |= count == 0 && chunk.starts_with(b"\x7fELF");
            hasher.update(chunk);
            out.write_all(chunk).map_err(self.writing)?;
            count += n as u64;
        }
        let tail = (512 - count % 512) % 512;
        out.write_all(&[0; 512][..tail as usize])
            .map_err(self.writing)?;
        Ok((count, hex(&hasher.finalize())))
    }
}

/// Packs one symlink: its target is its content.
fn pack_symlink<W: Write>(
    builder: &mut tar::Builder<W>,
    source: Source,
    epoch: u64,
) -> Result<RecordEntry> {
    let target = source.target.as_deref().unwrap_or_default();
    let mut h = header(Kind::Symlink, 0, epoch);
    builder
        .append_link(&mut h, &source.rel, target)
        .with_context(|| format!("cannot pack symlink `{}`", source.rel))?;
    Ok(RecordEntry {
        size: target.len() as u64,
        sha256: sha256_hex(target.as_bytes()),
        path: source.rel,
        kind: Kind::Symlink,
    })
}

/// Packs one (empty) dir.
fn pack_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    source: Source,
    epoch: u64,
) -> Result<RecordEntry> {
    let mut h = header(Kind::Dir, 0, epoch);
    builder.append_data(&mut h, &source.rel, io::empty())?;
    Ok(RecordEntry {
        path: source.rel,
        kind: Kind::Dir,
        size: 0,
        sha256: String::new(),
    })
}

/// Streams every entry the walk sends into `builder`, each file read once and hashed as it goes.
fn pack_body<W: Write>(
    sources: mpsc::Receiver<Result<Source>>,
    builder: &mut tar::Builder<W>,
    opts: &PackOptions<'_>,
    writing: impl Fn(io::Error) -> anyhow::Error,
) -> Result<Body> {
    let mut entries = Vec::new();
    let mut files = FilePacker {
        // One buffer for every file, initialised once.
        buf: vec![0u8; READ_BUFFER],
        compiled: false,
        epoch: opts.epoch,
        writing: &writing,
    };
    let limits = super::unpack::Limits::default();
    let mut guard = super::unpack::Guard::default();
    for source in sources {
        let source = source?;
        admit_source(&source, &limits, &mut guard)?;
        let entry = match source.kind {
            Kind::File { .. } => files.pack_file(builder, source)?,
            Kind::Symlink => pack_symlink(builder, source, opts.epoch)?,
            Kind::Dir => pack_dir(builder, source, opts.epoch)?,
        };
        opts.progress.advance(1);
        entries.push(entry);
    }
    // Every symlink resolved through the others: one that leads above the plugin through
    // another is refused, and one that leads outside through an absolute one is listed.
    let external_symlinks = guard
        .external_symlinks()
        .map_err(|e| PackError::SymlinkChain { why: e.to_string() })?;
    Ok(Body {
        entries,
        compiled: files.compiled,
        external_symlinks,
    })
}

/// The temp files of a release, beside its output, named so that [`purge_stale_temps`] finds
/// those of a release that was stopped.
struct Temps {
    out_dir: PathBuf,
    prefix: String,
}

impl Temps {
    /// The temp files beside `out`; removes those stopped releases left there.
    fn beside(out: &Path) -> Temps {
        let out_dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        purge_stale_temps(&out_dir);
        let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
        Temps { out_dir, prefix }
    }

    /// A new temp file whose name ends with `suffix`.
    fn create(&self, suffix: &str) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&self.prefix)
            .suffix(suffix)
            .tempfile_in(&self.out_dir)
            .with_context(|| format!("cannot create a file in `{}`", self.out_dir.display()))
    }
}

/// What [`write_body`] wrote into the spaced file: the body's contents, its length, and the
/// room kept before it for the head.
struct WrittenBody {
    body: Body,
    len: u64,
    room: u64,
}

/// Writes the body into `spaced`, behind the room for the head: the walk runs on a thread of
/// its own, ahead of the packing; the room is known when it ends, and what was compressed
/// before that is spooled, then copied into place.
fn write_body<I>(
    sources: I,
    base: &MetaBase,
    spaced: &tempfile::NamedTempFile,
    temps: &Temps,
    opts: &PackOptions<'_>,
    writing: impl Fn(io::Error) -> anyhow::Error,
) -> Result<WrittenBody>
where
    I: Iterator<Item = Result<Source>> + Send,
{
    let room = OnceLock::new();
    std::thread::scope(|scope| -> Result<_> {
        let (to_packer, from_walk) = mpsc::channel();
        let walker = scope.spawn(|| walk_ahead(sources, to_packer, base, opts, &room));
        let packed = (|| -> Result<_> {
            let out = BodyOut {
                out: spaced.as_file(),
                spool: Some(temps.create(".spool")?),
                room: &room,
            };
            let mut builder = tar::Builder::new(body_encoder(out, opts.level)?);
            let body = pack_body(from_walk, &mut builder, opts, &writing)?;
            let encoder = builder
                .into_inner()
                .context("cannot finish the tar stream")?;
            let out = encoder.finish().context("cannot finish the zstd stream")?;
            Ok((body, out))
        })();
        // On a failed pack the channel is closed, and the walk stops at its next entry.
        let walked = walker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (body, mut out) = packed?;
        walked?;
        let Some(&room) = room.get() else {
            bail!("the walk ended without sizing the head (a bug of mfplug: please report it)")
        };
        out.settle(room).map_err(&writing)?;
        let mut file = spaced.as_file();
        let len = file.stream_position()? - room;
        Ok(WrittenBody { body, len, room })
    })
}

/// Puts the head frame `prefix` before the body: into the room kept for it (with a skippable
/// frame over what is left), or, when it does not fit or the body is small, into a new file
/// the body is copied into after it.
fn place_head(
    spaced: tempfile::NamedTempFile,
    prefix: &[u8],
    written: &WrittenBody,
    temps: &Temps,
    writing: impl Fn(io::Error) -> anyhow::Error,
) -> Result<tempfile::NamedTempFile> {
    let room = written.room;
    let pad = padding(room, prefix.len() as u64).filter(|_| written.len >= COMPACT_BELOW);
    let Some(pad) = pad else {
        crate::ui::verbose(format!(
            "head of {} bytes, room of {room}: copying the body after it",
            prefix.len()
        ));
        return compact(&spaced, room, prefix, |suffix| temps.create(suffix));
    };
    use std::os::unix::fs::FileExt;
    let file = spaced.as_file();
    file.write_all_at(prefix, 0).map_err(&writing)?;
    file.write_all_at(&pad, prefix.len() as u64)
        .map_err(&writing)?;
    Ok(spaced)
}

/// Packs `sources` (from [`walk`]) into `out` (written beside it and moved into place).
///
/// One read of each file: it is hashed while it streams into the body (tar, then zstd),
/// which is written into the output file behind room kept for the head (see `HeadRoom`). The
/// head (`PLUGIN.json`, RECORD), known only at the end, is a zstd frame of its own written
/// into that room, followed by a skippable frame over what is left of it: zstd readers decode
/// concatenated frames as one stream and pass over skippable ones, so the file is one tar
/// stream with RECORD second. When the head does not fit, or the body is small, the body is
/// copied after the head into a new file instead.
///
/// The walk runs on a thread of its own, ahead of the packing; the room is known when it ends,
/// and what was compressed before that is spooled, then copied into place.
pub(crate) fn pack<I>(
    sources: I,
    base: MetaBase,
    out: &Path,
    opts: &PackOptions<'_>,
) -> Result<Packed>
where
    I: IntoIterator<Item = Result<Source>>,
    I::IntoIter: Send,
{
    let started = std::time::Instant::now();
    let temps = Temps::beside(out);
    let writing =
        |e: io::Error| anyhow::Error::new(e).context(format!("cannot write `{}`", out.display()));
    let spaced = temps.create(".tmp")?;
    opts.progress.message("files");
    let written = write_body(sources.into_iter(), &base, &spaced, &temps, opts, writing);
    opts.progress.finish();
    let mut written = written?;
    crate::ui::verbose(format!(
        "packed {} entries in {:.3} s",
        written.body.entries.len(),
        started.elapsed().as_secs_f64()
    ));

    let (meta, head) = head(
        &base,
        &Record {
            entries: std::mem::take(&mut written.body.entries),
        },
        written.body.compiled,
        std::mem::take(&mut written.body.external_symlinks),
        opts.epoch,
    )?;
    let prefix = head_frame(&head, opts.level)?;
    let final_file = place_head(spaced, &prefix, &written, &temps, writing)?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(final_file.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    let file_size = final_file.as_file().metadata()?.len();
    replace(final_file, out).with_context(|| format!("cannot write `{}`", out.display()))?;
    Ok(Packed {
        path: out.to_path_buf(),
        meta,
        file_size,
    })
}

/// Removes the temp files that a release killed before its end left in `dir`: those whose
/// name holds the pid of a process that no longer runs (`.mfplug-release-PID-...`). A live
/// release's files, and names of any other shape, are left alone.
pub(crate) fn purge_stale_temps(dir: &Path) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid_is_alive(pid) {
            continue;
        }
        let path = entry.path();
        match fs_err::remove_file(&path) {
            Ok(()) => crate::ui::verbose(format!(
                "removed `{}`, left by a release that was stopped",
                path.display()
            )),
            Err(e) => crate::ui::verbose(format!("cannot remove `{}`: {e}", path.display())),
        }
    }
}

/// Whether a process of this pid runs (one of another user counts as running).
fn pid_is_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_a_skippable_frame_or_nothing() {
        assert_eq!(padding(100, 100), Some(Vec::new()));
        assert_eq!(padding(100, 101), None);
        for head in 93..100 {
            assert_eq!(padding(100, head), None, "a gap of {} bytes", 100 - head);
        }
        let pad = padding(100, 92).unwrap();
        assert_eq!(pad.len(), 8);
        assert_eq!(pad[..4], SKIPPABLE_MAGIC.to_le_bytes());
        assert_eq!(pad[4..8], 0u32.to_le_bytes());
        let pad = padding(1000, 10).unwrap();
        assert_eq!(pad.len(), 990);
        assert_eq!(pad[4..8], 982u32.to_le_bytes());
        // zstd reads it as a frame that holds nothing.
        let mut stream = zstd::encode_all(&b"head"[..], 3).unwrap();
        stream.extend(&pad);
        stream.extend(zstd::encode_all(&b" body"[..], 3).unwrap());
        assert_eq!(zstd::decode_all(&stream[..]).unwrap(), b"head body");
    }

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
