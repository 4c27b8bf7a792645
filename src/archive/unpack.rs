//! Reading a `.plugin` file (format 1) safely, whoever wrote it.
//!
//! One streaming pass: `PLUGIN.json`, then RECORD (checked against the plugin hash), then
//! every member, checked before a byte of it is written: a relative, normalised path that no
//! earlier symlink member lies on; a regular file, symlink or directory only; listed in RECORD
//! with the same mode, size and sha256; within the size bounds. Verification reads and hashes
//! everything and writes nothing; extraction writes only under a target dir that must be new
//! (install makes it a temp dir and renames it into place after the whole file checked out).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{hex, Kind, PluginMeta, Record, RecordEntry, META_PATH, RECORD_PATH};

/// Bounds on what a `.plugin` file may hold: a file that claims more is refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_member: u64,
    pub max_total: u64,
    pub max_members: u64,
    pub max_record: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_member: 16 << 30,
            max_total: 64 << 30,
            max_members: 2_000_000,
            max_record: 256 << 20,
        }
    }
}

/// Why a `.plugin` file is refused. Each names the member at fault.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the file")]
    Io(#[source] io::Error),
    #[error("the compressed stream is corrupt or truncated")]
    Corrupt(#[source] io::Error),
    #[error("not a format-1 `.plugin` file: {0}")]
    NotAPlugin(String),
    #[error("`PLUGIN.json` is invalid: {0}")]
    BadMeta(String),
    #[error("invalid RECORD: {0}")]
    BadRecord(String),
    #[error("RECORD does not match the plugin hash: PLUGIN.json says `{stated}`, RECORD hashes to `{actual}`")]
    RecordHash { stated: String, actual: String },
    #[error("member `{0}` has an absolute path")]
    AbsolutePath(String),
    #[error("member `{0}` has a `..` or an empty or `.` component in its path")]
    TraversalPath(String),
    #[error("member `{0}` has a path that is not UTF-8")]
    NonUtf8Path(String),
    #[error("member `{path}` is written through the earlier symlink member `{link}`")]
    ThroughSymlink { path: String, link: String },
    #[error("symlink member `{path}` points outside the plugin (`{target}`)")]
    SymlinkEscapes { path: String, target: String },
    #[error("member `{path}` is a {kind}, which a `.plugin` file may not hold")]
    ForbiddenType { path: String, kind: &'static str },
    #[error("member `{0}` appears twice")]
    Duplicate(String),
    #[error("member `{0}` is not listed in RECORD")]
    NotInRecord(String),
    #[error("RECORD lists `{0}` but the file has no such member")]
    MissingMember(String),
    #[error("member `{path}` is {size} bytes, beyond the bound of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("the members add up to more than the bound of {0} bytes")]
    TotalTooLarge(u64),
    #[error("the file has more than {0} members")]
    TooManyMembers(u64),
    #[error("`{path}` differs from RECORD: {what}")]
    Mismatch { path: String, what: String },
    #[error("cannot write `{}`", .0.display())]
    Write(PathBuf, #[source] io::Error),
}

/// What a verified read found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub meta: PluginMeta,
    pub record: Record,
    /// The RECORD text, as stored.
    pub record_text: String,
}

/// Wraps the decoder so that its errors read as a corrupt stream, not as an I/O failure.
pub struct Decoded<R>(pub R);

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, CorruptMarker(e)))
    }
}

#[derive(Debug)]
struct CorruptMarker(io::Error);

impl std::fmt::Display for CorruptMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CorruptMarker {}

pub fn classify(e: io::Error) -> ArchiveError {
    let corrupt = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<CorruptMarker>().is_some())
        || matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
        );
    if corrupt {
        ArchiveError::Corrupt(e)
    } else {
        ArchiveError::Io(e)
    }
}

/// Checks a member path: relative, no `..`, no empty or `.` component; gives it without a
/// trailing `/`.
pub fn check_path(raw: &[u8]) -> Result<String, ArchiveError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| ArchiveError::NonUtf8Path(String::from_utf8_lossy(raw).into_owned()))?;
    if text.starts_with('/') {
        return Err(ArchiveError::AbsolutePath(text.to_owned()));
    }
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || trimmed.contains('\0')
    {
        return Err(ArchiveError::TraversalPath(text.to_owned()));
    }
    Ok(trimmed.to_owned())
}

/// The state of a pass over the members: what was seen, and where symlinks are.
#[derive(Default)]
pub struct Guard {
    pub seen: HashSet<String>,
    symlinks: HashSet<String>,
    count: u64,
    total: u64,
}

impl Guard {
    /// Checks a member against the earlier ones: no duplicate, not under an earlier symlink,
    /// no symlink over an earlier member's parent, within the bounds.
    pub fn admit(
        &mut self,
        path: &str,
        is_symlink: bool,
        size: u64,
        limits: &Limits,
    ) -> Result<(), ArchiveError> {
        self.count += 1;
        if self.count > limits.max_members {
            return Err(ArchiveError::TooManyMembers(limits.max_members));
        }
        if size > limits.max_member {
            return Err(ArchiveError::TooLarge {
                path: path.to_owned(),
                size,
                limit: limits.max_member,
            });
        }
        self.total += size;
        if self.total > limits.max_total {
            return Err(ArchiveError::TotalTooLarge(limits.max_total));
        }
        let mut prefix = path;
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if self.symlinks.contains(parent) {
                return Err(ArchiveError::ThroughSymlink {
                    path: path.to_owned(),
                    link: parent.to_owned(),
                });
            }
            prefix = parent;
        }
        if !self.seen.insert(path.to_owned()) {
            return Err(ArchiveError::Duplicate(path.to_owned()));
        }
        if is_symlink {
            let under = format!("{path}/");
            if let Some(earlier) = self.seen.iter().find(|p| p.starts_with(&under)) {
                return Err(ArchiveError::ThroughSymlink {
                    path: earlier.clone(),
                    link: path.to_owned(),
                });
            }
            self.symlinks.insert(path.to_owned());
        }
        Ok(())
    }
}

pub fn forbidden(entry_type: tar::EntryType) -> Option<&'static str> {
    use tar::EntryType as T;
    match entry_type {
        T::Regular | T::Continuous | T::Symlink | T::Directory => None,
        T::Link => Some("hard link"),
        T::Char => Some("character device"),
        T::Block => Some("block device"),
        T::Fifo => Some("fifo"),
        _ => Some("special entry"),
    }
}

fn read_small(entry: &mut impl Read, limit: u64, what: &str) -> Result<String, ArchiveError> {
    let mut text = String::new();
    entry
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData && e.get_ref().is_none() {
                ArchiveError::NotAPlugin(format!("`{what}` is not UTF-8"))
            } else {
                classify(e)
            }
        })?;
    if text.len() as u64 > limit {
        return Err(ArchiveError::TooLarge {
            path: what.to_owned(),
            size: text.len() as u64,
            limit,
        });
    }
    Ok(text)
}

/// Reads the head of a format-1 file: `PLUGIN.json` and RECORD, checked against each other.
/// `info` stops here; `verify` and extraction go on with [`read`].
pub fn read_head(path: &Path, limits: &Limits) -> Result<Verified, ArchiveError> {
    let file = std::fs::File::open(path).map_err(ArchiveError::Io)?;
    let mut archive = open(file)?;
    let mut entries = archive.entries().map_err(classify)?;
    head(&mut entries, limits)
}

fn open(
    file: std::fs::File,
) -> Result<tar::Archive<Decoded<zstd::Decoder<'static, io::BufReader<std::fs::File>>>>, ArchiveError>
{
    let decoder = zstd::Decoder::new(file).map_err(ArchiveError::Io)?;
    Ok(tar::Archive::new(Decoded(decoder)))
}

fn head<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    limits: &Limits,
) -> Result<Verified, ArchiveError> {
    let mut next = |expected: &str, limit: u64| -> Result<String, ArchiveError> {
        let mut entry = match entries.next() {
            Some(entry) => entry.map_err(classify)?,
            None => return Err(ArchiveError::NotAPlugin(format!("`{expected}` is missing"))),
        };
        let path = check_path(&entry.path_bytes())?;
        if path != expected || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(ArchiveError::NotAPlugin(format!(
                "the first members must be `{META_PATH}` then `{RECORD_PATH}`, found `{path}`"
            )));
        }
        read_small(&mut entry, limit, expected)
    };
    let meta_text = next(META_PATH, 1 << 20)?;
    let meta: PluginMeta =
        serde_json::from_str(&meta_text).map_err(|e| ArchiveError::BadMeta(e.to_string()))?;
    if meta.format != super::FORMAT {
        return Err(ArchiveError::BadMeta(format!(
            "format {} is not known to this mfplug (it reads format {})",
            meta.format,
            super::FORMAT
        )));
    }
    let record_text = next(RECORD_PATH, limits.max_record)?;
    let actual = Record::plugin_hash(&record_text);
    if actual != meta.plugin_hash {
        return Err(ArchiveError::RecordHash {
            stated: meta.plugin_hash.clone(),
            actual,
        });
    }
    let record = Record::parse(&record_text).map_err(ArchiveError::BadRecord)?;
    Ok(Verified {
        meta,
        record,
        record_text,
    })
}

/// Reads a whole format-1 file, checking every member; with `target`, extracts it there
/// (`target` must not exist yet; it is created). On error, what was extracted stays in
/// `target` for the caller to remove.
pub fn read(path: &Path, limits: &Limits, target: Option<&Path>) -> Result<Verified, ArchiveError> {
    let file = std::fs::File::open(path).map_err(ArchiveError::Io)?;
    let mut archive = open(file)?;
    let mut entries = archive.entries().map_err(classify)?;
    let verified = head(&mut entries, limits)?;
    let wanted: HashMap<&str, &RecordEntry> = verified
        .record
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    if let Some(target) = target {
        std::fs::create_dir(target).map_err(|e| ArchiveError::Write(target.to_path_buf(), e))?;
    }
    let mut guard = Guard::default();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in entries {
        let mut entry = entry.map_err(classify)?;
        let raw = entry.path_bytes().into_owned();
        let path = check_path(&raw)?;
        let entry_type = entry.header().entry_type();
        if let Some(kind) = forbidden(entry_type) {
            return Err(ArchiveError::ForbiddenType { path, kind });
        }
        let is_symlink = entry_type == tar::EntryType::Symlink;
        let size = entry.header().size().map_err(classify)?;
        guard.admit(&path, is_symlink, size, limits)?;
        // An empty dir is recorded under its member name, which ends with `/`.
        let key = if entry_type == tar::EntryType::Directory {
            format!("{path}/")
        } else {
            path.clone()
        };
        let record = *wanted
            .get(key.as_str())
            .ok_or_else(|| ArchiveError::NotInRecord(path.clone()))?;
        let mismatch = |what: String| ArchiveError::Mismatch {
            path: path.clone(),
            what,
        };
        let out = target.map(|t| t.join(&path));
        match entry_type {
            tar::EntryType::Symlink => {
                if record.kind != Kind::Symlink {
                    return Err(mismatch(format!(
                        "a symlink, RECORD says `{}`",
                        record.kind.as_str()
                    )));
                }
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let link = String::from_utf8(link)
                    .map_err(|_| mismatch("its target is not UTF-8".into()))?;
                if !link.starts_with('/')
                    && !super::pack::stays_inside(Path::new(&path), Path::new(&link))
                {
                    return Err(ArchiveError::SymlinkEscapes {
                        path: path.clone(),
                        target: link,
                    });
                }
                if hex(&Sha256::digest(link.as_bytes())) != record.sha256
                    || link.len() as u64 != record.size
                {
                    return Err(mismatch(format!(
                        "its target `{link}` is not the recorded one"
                    )));
                }
                if let Some(out) = out {
                    make_parent(&out)?;
                    std::os::unix::fs::symlink(&link, &out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            tar::EntryType::Directory => {
                if record.kind != Kind::Dir {
                    return Err(mismatch(format!(
                        "a directory, RECORD says `{}`",
                        record.kind.as_str()
                    )));
                }
                if let Some(out) = out {
                    std::fs::create_dir_all(&out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            _ => {
                let Kind::File { executable } = record.kind else {
                    return Err(mismatch(format!(
                        "a file, RECORD says `{}`",
                        record.kind.as_str()
                    )));
                };
                let mode = entry.header().mode().map_err(classify)?;
                if (mode & 0o111 != 0) != executable {
                    return Err(mismatch(format!(
                        "mode {:o}, RECORD says {}",
                        mode & 0o777,
                        record.kind.as_str()
                    )));
                }
                if size != record.size {
                    return Err(mismatch(format!(
                        "{size} bytes, RECORD says {}",
                        record.size
                    )));
                }
                let mut file = match &out {
                    Some(out) => {
                        make_parent(out)?;
                        Some(create_file(out, executable)?)
                    }
                    None => None,
                };
                let mut hasher = Sha256::new();
                loop {
                    let n = entry.read(&mut buf).map_err(classify)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    if let (Some(file), Some(out)) = (file.as_mut(), &out) {
                        io::Write::write_all(file, &buf[..n])
                            .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                    }
                }
                if hex(&hasher.finalize()) != record.sha256 {
                    return Err(mismatch("its sha256 is not the recorded one".into()));
                }
            }
        }
    }
    for entry in &verified.record.entries {
        if !guard.seen.contains(entry.path.trim_end_matches('/')) {
            return Err(ArchiveError::MissingMember(entry.path.clone()));
        }
    }
    Ok(verified)
}

fn make_parent(out: &Path) -> Result<(), ArchiveError> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
    }
    Ok(())
}

fn create_file(out: &Path, executable: bool) -> Result<std::fs::File, ArchiveError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(out)
        .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(check_path(b"a/b").unwrap(), "a/b");
        assert_eq!(check_path(b"a/b/").unwrap(), "a/b");
        assert!(matches!(
            check_path(b"/etc/passwd"),
            Err(ArchiveError::AbsolutePath(_))
        ));
        assert!(matches!(
            check_path(b"a/../../b"),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"a//b"),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"./a"),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b""),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"a\xffb"),
            Err(ArchiveError::NonUtf8Path(_))
        ));
    }

    #[test]
    fn guard_refuses_writes_through_symlinks_and_duplicates() {
        let limits = Limits::default();
        let mut g = Guard::default();
        g.admit("a", true, 0, &limits).unwrap();
        assert!(matches!(
            g.admit("a/b", false, 0, &limits),
            Err(ArchiveError::ThroughSymlink { .. })
        ));
        g.admit("c/d", false, 0, &limits).unwrap();
        assert!(matches!(
            g.admit("c", true, 0, &limits),
            Err(ArchiveError::ThroughSymlink { .. })
        ));
        assert!(matches!(
            g.admit("c/d", false, 0, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        let small = Limits {
            max_member: 10,
            max_total: 15,
            ..Limits::default()
        };
        let mut g = Guard::default();
        assert!(matches!(
            g.admit("x", false, 11, &small),
            Err(ArchiveError::TooLarge { .. })
        ));
        g.admit("y", false, 10, &small).unwrap();
        assert!(matches!(
            g.admit("z", false, 10, &small),
            Err(ArchiveError::TotalTooLarge(15))
        ));
    }
}
