//! Reading a `.plugin` file (format 1) safely, whoever wrote it.
//!
//! One streaming pass: `PLUGIN.json`, then RECORD (checked against the plugin hash), then
//! every member, checked before a byte of it is written: a relative, normalised path within
//! the length bounds that no earlier symlink member lies on; a regular file, symlink or
//! directory only; listed in RECORD with the same mode, size and sha256; within the size
//! bounds. The tar headers are read here, not by the tar crate, so that every length (GNU long
//! names, PAX records, member sizes) is bounded before it is read, and the zstd stream is read
//! to its end (frame checksums included, nothing after it). Verification reads and hashes
//! everything and writes nothing; extraction writes only under a target dir that must be new
//! (install makes it a temp dir and renames it into place after the whole file checked out).

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsx::{hex, sha256_hex};

use super::{Kind, PluginMeta, Record, RecordEntry, META_PATH, RECORD_PATH};

/// Bounds on what a `.plugin` file may hold: a file that claims more is refused, before the
/// bytes it claims are read. `docs/plugin-format.md` lists them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of one member.
    pub max_member: u64,
    /// Bytes of all the members together.
    pub max_total: u64,
    /// Members (and so RECORD lines).
    pub max_members: u64,
    /// Bytes of RECORD.
    pub max_record: u64,
    /// Bytes of `PLUGIN.json` (and of a legacy file's `.metadata.json`, of the label and of
    /// the `config.ini` a legacy file is read with).
    pub max_meta: u64,
    /// Bytes of a member's path (and of a symlink's target).
    pub max_path: usize,
    /// Bytes of one component of a path.
    pub max_component: usize,
    /// Components of a path.
    pub max_depth: usize,
    /// Bytes of one PAX extended header.
    pub max_pax: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_member: 16 << 30,
            max_total: 64 << 30,
            max_members: 2_000_000,
            max_record: 256 << 20,
            max_meta: 1 << 20,
            max_path: 4096,
            max_component: 255,
            max_depth: 256,
            max_pax: 64 << 10,
        }
    }
}

/// Zero bytes allowed after tar's end-of-archive block (tar pads its output to a whole
/// record: GNU tar's is 10 KiB).
const MAX_TRAILING_ZEROS: u64 = 1 << 20;
/// Symlinks followed to resolve one target, as Linux's `ELOOP` bound.
const MAX_LINK_HOPS: usize = 40;

/// mfplug's own files in a plugin: the members that may not be symlinks (install and the
/// runtime read and write them), besides `.mfplug/` and anything under it.
pub(crate) const METADATA_FILES: &[&str] = &[
    "config.ini",
    ".layerapi2_label",
    ".plugin_format_version",
    "crontab",
    "postinstall",
    ".releaseignore",
    ".autorestart_includes",
    ".autorestart_excludes",
    ".layerapi2_dependencies",
    ".layerapi2_extra_env",
];

/// Whether a plugin path (no trailing `/`) is one of mfplug's own metadata paths.
pub(crate) fn is_metadata_path(path: &str) -> bool {
    path == ".mfplug" || path.starts_with(".mfplug/") || METADATA_FILES.contains(&path)
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
    #[error("invalid tar stream {at}: {what}")]
    BadTar { at: String, what: String },
    #[error("`PLUGIN.json` is invalid: {0}")]
    BadMeta(String),
    #[error("invalid RECORD: {0}")]
    BadRecord(String),
    #[error("RECORD does not match the plugin hash: PLUGIN.json says `{stated}`, RECORD hashes to `{actual}`")]
    RecordHash { stated: String, actual: String },
    #[error("`PLUGIN.json` says `{field}: {stated}`, but the file holds {actual}")]
    MetaDisagrees {
        field: &'static str,
        stated: String,
        actual: String,
    },
    #[error("invalid plugin name in `{source_file}`: {why}")]
    BadName { source_file: String, why: String },
    #[error(
        "`PLUGIN.json` names the plugin `{meta}`, but its `.layerapi2_label` names it `{label}`"
    )]
    NameMismatch { meta: String, label: String },
    #[error("member `{0}` has an absolute path")]
    AbsolutePath(String),
    #[error("member `{0}` has a `..` or an empty or `.` component in its path")]
    TraversalPath(String),
    #[error("member `{0}` has a path that is not UTF-8")]
    NonUtf8Path(String),
    #[error("member `{path}` has a path of {len} bytes, beyond the bound of {limit} bytes")]
    PathTooLong {
        path: String,
        len: usize,
        limit: usize,
    },
    #[error(
        "member `{path}` has a path component of {len} bytes, beyond the bound of {limit} bytes"
    )]
    ComponentTooLong {
        path: String,
        len: usize,
        limit: usize,
    },
    #[error("member `{path}` has a path of {depth} components, beyond the bound of {limit}")]
    TooDeep {
        path: String,
        depth: usize,
        limit: usize,
    },
    #[error("a {what} header of {size} bytes {at} is beyond the bound of {limit} bytes")]
    HeaderTooLarge {
        what: &'static str,
        at: String,
        size: u64,
        limit: u64,
    },
    #[error("member `{path}` is written through the earlier symlink member `{link}`")]
    ThroughSymlink { path: String, link: String },
    #[error("member `{path}` lies under `{file}`, which is a file")]
    UnderFile { path: String, file: String },
    #[error("symlink member `{path}` points outside the plugin (`{target}`)")]
    SymlinkEscapes { path: String, target: String },
    #[error("symlink member `{0}` goes through more than 40 symlinks")]
    SymlinkLoop(String),
    #[error("member `{0}` is a symlink: mfplug's own files (`.mfplug/`, `config.ini`, `.layerapi2_label`, `crontab`, ...) may not be")]
    MetadataSymlink(String),
    #[error("member `{0}` is under `.mfplug/`, which holds only `PLUGIN.json` and `RECORD`")]
    ReservedPath(String),
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
    pub(crate) meta: PluginMeta,
    pub record: Record,
    /// The RECORD text, as stored.
    pub record_text: String,
}

/// Wraps the decoder so that its errors read as a corrupt stream, not as an I/O failure.
pub(crate) struct Decoded<R>(pub(crate) R);

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

pub(crate) fn classify(e: io::Error) -> ArchiveError {
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

/// A path for an error message: at most 200 characters of it.
fn shown(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// Checks a member path: relative, no `..`, no empty or `.` component, within the length and
/// depth bounds; gives it without a trailing `/`.
pub(crate) fn check_path(raw: &[u8], limits: &Limits) -> Result<String, ArchiveError> {
    if raw.len() > limits.max_path {
        return Err(ArchiveError::PathTooLong {
            path: shown(&String::from_utf8_lossy(raw)),
            len: raw.len(),
            limit: limits.max_path,
        });
    }
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
    let mut depth = 0;
    for component in trimmed.split('/') {
        depth += 1;
        if component.len() > limits.max_component {
            return Err(ArchiveError::ComponentTooLong {
                path: shown(text),
                len: component.len(),
                limit: limits.max_component,
            });
        }
    }
    if depth > limits.max_depth {
        return Err(ArchiveError::TooDeep {
            path: shown(text),
            depth,
            limit: limits.max_depth,
        });
    }
    Ok(trimmed.to_owned())
}

// ---------------------------------------------------------------------------------------
// The tar stream, read header by header with every length bounded.

const BLOCK: usize = 512;

/// One member of the tar stream, its extension headers (GNU long name and link, PAX)
/// applied.
#[derive(Debug, Clone)]
pub(crate) struct TarMember {
    pub(crate) path: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) entry_type: u8,
    pub(crate) size: u64,
    pub(crate) mode: u32,
}

/// What a tar entry type is, for the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Symlink,
    Dir,
}

/// The kind of an entry type, or the name of what a `.plugin` file may not hold.
pub(crate) fn entry_kind(entry_type: u8) -> Result<EntryKind, &'static str> {
    match entry_type {
        b'0' | b'\0' | b'7' => Ok(EntryKind::File),
        b'2' => Ok(EntryKind::Symlink),
        b'5' => Ok(EntryKind::Dir),
        b'1' => Err("hard link"),
        b'3' => Err("character device"),
        b'4' => Err("block device"),
        b'6' => Err("fifo"),
        b'S' => Err("sparse file"),
        _ => Err("special entry"),
    }
}

/// The bytes of a NUL-terminated header field.
fn field(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => bytes.get(..end).unwrap_or_default(),
        None => bytes,
    }
}

/// A numeric header field: octal text (spaces and NULs around it), or GNU base-256.
fn number(bytes: &[u8], what: &str) -> Result<u64, String> {
    let bad = || format!("its {what} field is not a number");
    match bytes.split_first() {
        Some((&first, rest)) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return Err(bad());
            }
            let mut value = u64::from(first & 0x3f);
            for &b in rest {
                value = value
                    .checked_mul(256)
                    .and_then(|v| v.checked_add(u64::from(b)))
                    .ok_or_else(bad)?;
            }
            Ok(value)
        }
        _ => {
            let text = field(bytes);
            let digits: &[u8] = {
                let start = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
                let rest = text.get(start..).unwrap_or_default();
                let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
                rest.get(..end).unwrap_or_default()
            };
            let mut value: u64 = 0;
            for &b in digits {
                if !(b'0'..=b'7').contains(&b) {
                    return Err(bad());
                }
                value = value
                    .checked_mul(8)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    .ok_or_else(bad)?;
            }
            Ok(value)
        }
    }
}

struct Header {
    name: Vec<u8>,
    link: Vec<u8>,
    entry_type: u8,
    size: u64,
    mode: u32,
}

fn parse_header(block: &[u8; BLOCK]) -> Result<Header, String> {
    let part = |from: usize, to: usize| block.get(from..to).unwrap_or_default();
    let stored = number(part(148, 156), "checksum")?;
    let field_bytes = part(148, 156);
    let unsigned: u64 = block.iter().map(|&b| u64::from(b)).sum::<u64>()
        - field_bytes.iter().map(|&b| u64::from(b)).sum::<u64>()
        + 8 * 32;
    // Some old tars summed signed bytes: computed only when the unsigned sum is not it.
    let signed = || -> i64 {
        block.iter().map(|&b| i64::from(b as i8)).sum::<i64>()
            - field_bytes.iter().map(|&b| i64::from(b as i8)).sum::<i64>()
            + 8 * 32
    };
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed()) {
        return Err("a header's checksum does not match".into());
    }
    let mut name = field(part(0, 100)).to_vec();
    if part(257, 263) == b"ustar\0" {
        let prefix = field(part(345, 500));
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    let mode = number(part(100, 108), "mode")?;
    Ok(Header {
        name,
        link: field(part(157, 257)).to_vec(),
        entry_type: block.get(156).copied().unwrap_or_default(),
        size: number(part(124, 136), "size")?,
        mode: u32::try_from(mode & 0o7777).unwrap_or_default(),
    })
}

/// What a PAX header sets for the next member.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

fn parse_pax(data: &[u8], global: bool) -> Result<Pax, String> {
    let mut pax = Pax::default();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let bad = || "a PAX record is malformed".to_owned();
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(rest.get(..space).unwrap_or_default())
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)?;
        let record = rest.get(..len).ok_or_else(bad)?;
        rest = rest.get(len..).unwrap_or_default();
        let body = record
            .get(space + 1..)
            .and_then(|b| b.strip_suffix(b"\n"))
            .ok_or_else(bad)?;
        let eq = body.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        let key = body.get(..eq).unwrap_or_default();
        let value = body.get(eq + 1..).unwrap_or_default();
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            b"size" => {
                pax.size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| "a PAX `size` is not a number".to_owned())?,
                )
            }
            _ if key.starts_with(b"GNU.sparse.") => {
                return Err("a PAX header makes a sparse file".into())
            }
            _ => {}
        }
    }
    if global && (pax.path.is_some() || pax.link.is_some() || pax.size.is_some()) {
        return Err("a global PAX header sets a path or a size".into());
    }
    Ok(pax)
}

/// The extension headers (GNU long name and link, PAX) read so far before a member, for
/// the member that follows them.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
    /// Extension headers read, the global PAX ones included.
    count: u32,
}

impl Extensions {
    /// Whether a header is waiting for its member.
    fn pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }
}

/// The tar stream over a decoder: headers, then the data of each member, then the end,
/// after which only zero bytes (a bounded number) may follow.
pub(crate) struct TarReader<R> {
    inner: R,
    /// Data bytes of the current member not read yet, and the padding after them.
    remaining: u64,
    padding: u64,
    /// Where the reader is, for messages: `after member `x``.
    at: String,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            at: "at the start".into(),
        }
    }

    fn bad(&self, what: impl Into<String>) -> ArchiveError {
        ArchiveError::BadTar {
            at: self.at.clone(),
            what: what.into(),
        }
    }

    /// Reads `buf` whole; `false` at the end of the stream before its first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, ArchiveError> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
            match self.inner.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
        if filled == 0 && !buf.is_empty() {
            return Ok(false);
        }
        if filled < buf.len() {
            return Err(self.truncated());
        }
        Ok(true)
    }

    /// A read error of the stream, saying where in the tar stream it came.
    fn failed(&self, e: io::Error) -> ArchiveError {
        match classify(e) {
            ArchiveError::Corrupt(inner) => ArchiveError::Corrupt(io::Error::new(
                inner.kind(),
                format!("{inner} (reading the tar stream {})", self.at),
            )),
            other => other,
        }
    }

    fn truncated(&self) -> ArchiveError {
        ArchiveError::Corrupt(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the tar stream ends {} in the middle of a member", self.at),
        ))
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ArchiveError> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let len = usize::try_from(n.min(scratch.len() as u64)).unwrap_or(scratch.len());
            let chunk = scratch.get_mut(..len).unwrap_or_default();
            if !self.fill(chunk)? {
                return Err(self.truncated());
            }
            n -= len as u64;
        }
        Ok(())
    }

    /// Reads the data of the current member into `buf`; 0 at its end.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        let len = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        if len == 0 {
            return Ok(0);
        }
        let chunk = buf.get_mut(..len).unwrap_or_default();
        loop {
            match self.inner.read(chunk) {
                Ok(0) => return Err(self.truncated()),
                Ok(n) => {
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
    }

    /// The data of a small member (its size bounded by the caller), read whole.
    fn read_all(&mut self, size: u64) -> Result<Vec<u8>, ArchiveError> {
        let len = usize::try_from(size).map_err(|_| self.bad("a header is too large"))?;
        let mut data = vec![0u8; len];
        if !self.fill(&mut data)? && len > 0 {
            return Err(self.truncated());
        }
        self.skip(size.next_multiple_of(BLOCK as u64) - size)?;
        Ok(data)
    }

    /// The next member; `None` at tar's end, once the rest of the stream is read and found
    /// to be zeros only.
    pub(crate) fn next_member(
        &mut self,
        limits: &Limits,
    ) -> Result<Option<TarMember>, ArchiveError> {
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest)?;
        let mut ext = Extensions::default();
        loop {
            let block = self.next_block()?;
            if block.iter().all(|&b| b == 0) {
                if ext.pending() {
                    return Err(self.bad("an extension header is not followed by a member"));
                }
                self.finish()?;
                return Ok(None);
            }
            let header = parse_header(&block).map_err(|what| self.bad(what))?;
            if matches!(header.entry_type, b'L' | b'K' | b'x' | b'g') {
                // At most one of each kind but the global one, which is ignored: a bound on
                // the work before a member all the same.
                ext.count += 1;
                if ext.count > 4 {
                    return Err(self.bad("more than 4 extension headers before one member"));
                }
            }
            match header.entry_type {
                b'L' | b'K' => self.read_long(&header, &mut ext, limits)?,
                b'x' | b'g' => self.read_pax(&header, &mut ext, limits)?,
                _ => return self.start_member(header, ext, limits).map(Some),
            }
        }
    }

    /// The next 512-byte block of headers: the stream may not end before tar's end blocks.
    fn next_block(&mut self) -> Result<[u8; BLOCK], ArchiveError> {
        let mut block = [0u8; BLOCK];
        if !self.fill(&mut block)? {
            return Err(ArchiveError::Corrupt(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the tar stream ends {} without its end-of-archive blocks",
                    self.at
                ),
            )));
        }
        Ok(block)
    }

    /// Reads the data of a GNU long name (`L`) or long link (`K`) header into `ext`, its
    /// trailing NULs dropped: within the path bound (and a NUL), one of each per member.
    fn read_long(
        &mut self,
        header: &Header,
        ext: &mut Extensions,
        limits: &Limits,
    ) -> Result<(), ArchiveError> {
        let (what, slot) = if header.entry_type == b'L' {
            ("GNU long name", &mut ext.long_name)
        } else {
            ("GNU long link", &mut ext.long_link)
        };
        let limit = limits.max_path as u64 + 1;
        if header.size > limit {
            return Err(ArchiveError::HeaderTooLarge {
                what,
                at: self.at.clone(),
                size: header.size,
                limit,
            });
        }
        if slot.is_some() {
            return Err(self.bad(format!("two {what} headers for one member")));
        }
        let mut data = self.read_all(header.size)?;
        while data.last() == Some(&0) {
            data.pop();
        }
        *slot = Some(data);
        Ok(())
    }

    /// Reads a PAX header within the PAX bound: a member's (`x`, one per member) into `ext`;
    /// a global one (`g`, which may set no path or size) is checked and dropped.
    fn read_pax(
        &mut self,
        header: &Header,
        ext: &mut Extensions,
        limits: &Limits,
    ) -> Result<(), ArchiveError> {
        let global = header.entry_type == b'g';
        if header.size > limits.max_pax {
            return Err(ArchiveError::HeaderTooLarge {
                what: "PAX",
                at: self.at.clone(),
                size: header.size,
                limit: limits.max_pax,
            });
        }
        let data = self.read_all(header.size)?;
        let parsed = parse_pax(&data, global).map_err(|what| self.bad(what))?;
        if !global {
            if ext.pax.is_some() {
                return Err(self.bad("two PAX headers for one member"));
            }
            ext.pax = Some(parsed);
        }
        Ok(())
    }

    /// The member a header begins, its extension headers applied: its size within the member
    /// bound, its data (and the padding after it) the next bytes of the stream.
    fn start_member(
        &mut self,
        header: Header,
        ext: Extensions,
        limits: &Limits,
    ) -> Result<TarMember, ArchiveError> {
        let mut member = TarMember {
            path: ext.long_name.unwrap_or(header.name),
            link: ext.long_link.unwrap_or(header.link),
            entry_type: header.entry_type,
            size: header.size,
            mode: header.mode,
        };
        if let Some(pax) = ext.pax {
            if let Some(path) = pax.path {
                member.path = path;
            }
            if let Some(link) = pax.link {
                member.link = link;
            }
            if let Some(size) = pax.size {
                member.size = size;
            }
        }
        // Only files have data; any size on another entry is skipped as data, as tar does,
        // within the member bound.
        if member.size > limits.max_member {
            return Err(ArchiveError::TooLarge {
                path: shown(&String::from_utf8_lossy(&member.path)),
                size: member.size,
                limit: limits.max_member,
            });
        }
        self.remaining = member.size;
        self.padding = member.size.next_multiple_of(BLOCK as u64) - member.size;
        self.at = format!(
            "after member `{}`",
            shown(&String::from_utf8_lossy(&member.path))
        );
        Ok(member)
    }

    /// After tar's end block: the rest of the stream, read to its end (which makes the
    /// decoder check the last frame and refuse anything after it), must be zeros.
    fn finish(&mut self) -> Result<(), ArchiveError> {
        self.at = "after its end-of-archive block".into();
        let mut buf = [0u8; 8192];
        let mut zeros: u64 = 0;
        loop {
            let n = match self.inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed(e)),
            };
            if buf.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
                return Err(ArchiveError::BadTar {
                    at: "after its end-of-archive block".into(),
                    what: "data follows the end of the tar stream".into(),
                });
            }
            zeros += n as u64;
            if zeros > MAX_TRAILING_ZEROS {
                return Err(ArchiveError::BadTar {
                    at: "after its end-of-archive block".into(),
                    what: format!("more than {MAX_TRAILING_ZEROS} bytes of padding follow"),
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The guard: what was seen, as a tree of path components.

/// What a path of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKind {
    /// A directory implied by the members below it.
    Implied,
    File,
    Dir,
    Symlink(String),
}

#[derive(Debug)]
struct Node {
    parent: u32,
    name: Box<str>,
    kind: NodeKind,
    /// A member at or under this node, to name it in errors.
    witness: u32,
}

/// Where a symlink's target leads.
#[derive(Debug, Clone)]
enum Resolved {
    /// To a path of the tree (`extra` components below `node` that the file does not hold).
    Inside { node: u32, extra: usize },
    /// Outside the plugin, through an absolute target.
    Outside(String),
    /// Above the plugin's root.
    Escapes,
    /// Through more than [`MAX_LINK_HOPS`] symlinks.
    Loop,
}

const ROOT: u32 = 0;

/// The state of a pass over the members: every path seen, as a tree of components, which
/// answers in time linear in the path's length whether it is new, whether an earlier symlink
/// or file lies on it, and whether a symlink would cover an earlier member.
pub(crate) struct Guard {
    nodes: Vec<Node>,
    children: HashMap<(u32, Box<str>), u32>,
    links: Vec<u32>,
    count: u64,
    total: u64,
    /// Path components walked, by `admit` and by link resolution: the guard's work, which the
    /// tests check grows linearly with the members.
    #[cfg(test)]
    steps: std::cell::Cell<u64>,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard {
            nodes: vec![Node {
                parent: ROOT,
                name: "".into(),
                kind: NodeKind::Implied,
                witness: ROOT,
            }],
            children: HashMap::new(),
            links: Vec::new(),
            count: 0,
            total: 0,
            #[cfg(test)]
            steps: std::cell::Cell::new(0),
        }
    }
}

/// What is admitted into the guard.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Admit<'a> {
    File,
    Dir,
    Symlink(&'a str),
}

impl Guard {
    fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    fn path_of(&self, mut id: u32) -> String {
        let mut parts = Vec::new();
        while id != ROOT {
            let Some(node) = self.node(id) else { break };
            parts.push(&*node.name);
            id = node.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    fn find(&self, path: &str) -> Option<u32> {
        let mut id = ROOT;
        for component in path.split('/') {
            id = *self.children.get(&(id, component.into()))?;
        }
        Some(id)
    }

    /// Whether a member of this path (no trailing `/`) was admitted.
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.find(path)
            .and_then(|id| self.node(id))
            .is_some_and(|n| n.kind != NodeKind::Implied)
    }

    /// Checks a member against the earlier ones: no duplicate, not under an earlier symlink
    /// or file, no symlink or file over an earlier member's parent, within the bounds.
    pub(crate) fn admit(
        &mut self,
        path: &str,
        what: Admit<'_>,
        size: u64,
        limits: &Limits,
    ) -> Result<(), ArchiveError> {
        self.count_member(path, size, limits)?;
        let first_new = self.nodes.len();
        let (id, created) = self.walk(path, limits)?;
        let kind = match what {
            Admit::File => NodeKind::File,
            Admit::Dir => NodeKind::Dir,
            Admit::Symlink(target) => NodeKind::Symlink(target.to_owned()),
        };
        self.place(path, id, created, first_new, kind)
    }

    /// Counts a member of `size` bytes against the bounds on the members, on one member's
    /// size and on their total.
    fn count_member(&mut self, path: &str, size: u64, limits: &Limits) -> Result<(), ArchiveError> {
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
        self.total = self.total.saturating_add(size);
        if self.total > limits.max_total {
            return Err(ArchiveError::TotalTooLarge(limits.max_total));
        }
        Ok(())
    }

    /// Walks `path` down the tree, adding the nodes it lacks as implied dirs; refuses a path
    /// through an earlier symlink or file. Gives its leaf and whether a node was added.
    fn walk(&mut self, path: &str, limits: &Limits) -> Result<(u32, bool), ArchiveError> {
        let mut id = ROOT;
        let mut created = false;
        let mut components = path.split('/').peekable();
        while let Some(component) = components.next() {
            #[cfg(test)]
            self.steps.set(self.steps.get() + 1);
            let last = components.peek().is_none();
            let key: (u32, Box<str>) = (id, component.into());
            if let Some(&child) = self.children.get(&key) {
                if !last {
                    self.pass_through(path, child)?;
                }
                id = child;
            } else {
                let new = u32::try_from(self.nodes.len())
                    .map_err(|_| ArchiveError::TooManyMembers(limits.max_members))?;
                self.nodes.push(Node {
                    parent: id,
                    name: component.into(),
                    kind: NodeKind::Implied,
                    witness: ROOT,
                });
                self.children.insert(key, new);
                id = new;
                created = true;
            }
        }
        Ok((id, created))
    }

    /// Refuses `path` going on below the node `child`, an earlier symlink or file.
    fn pass_through(&self, path: &str, child: u32) -> Result<(), ArchiveError> {
        match self.node(child).map(|n| &n.kind) {
            Some(NodeKind::Symlink(_)) => Err(ArchiveError::ThroughSymlink {
                path: path.to_owned(),
                link: self.path_of(child),
            }),
            Some(NodeKind::File) => Err(ArchiveError::UnderFile {
                path: path.to_owned(),
                file: self.path_of(child),
            }),
            _ => Ok(()),
        }
    }

    /// Makes the leaf `id` the member `path` of `kind`: refuses a duplicate and, when the
    /// leaf was there before (an earlier member lies under it), a symlink or file; the nodes
    /// added from `first_new` on get it as their witness.
    fn place(
        &mut self,
        path: &str,
        id: u32,
        created: bool,
        first_new: usize,
        kind: NodeKind,
    ) -> Result<(), ArchiveError> {
        let Some(leaf) = self.nodes.get_mut(id as usize) else {
            return Err(ArchiveError::Duplicate(path.to_owned()));
        };
        if leaf.kind != NodeKind::Implied {
            return Err(ArchiveError::Duplicate(path.to_owned()));
        }
        if !created {
            // The node was there before: an earlier member lies under this path.
            let witness = leaf.witness;
            match kind {
                NodeKind::Symlink(_) => {
                    return Err(ArchiveError::ThroughSymlink {
                        path: self.path_of(witness),
                        link: path.to_owned(),
                    })
                }
                NodeKind::File => {
                    return Err(ArchiveError::UnderFile {
                        path: self.path_of(witness),
                        file: path.to_owned(),
                    })
                }
                _ => {}
            }
        }
        for node in self.nodes.iter_mut().skip(first_new) {
            node.witness = id;
        }
        let Some(leaf) = self.nodes.get_mut(id as usize) else {
            return Err(ArchiveError::Duplicate(path.to_owned()));
        };
        let is_link = matches!(kind, NodeKind::Symlink(_));
        leaf.kind = kind;
        if is_link {
            self.links.push(id);
        }
        Ok(())
    }

    /// Resolves `target`, read from the dir `from`, through the symlinks of the tree.
    fn resolve_from(
        &self,
        from: u32,
        target: &str,
        hops: usize,
        memo: &mut HashMap<u32, Resolved>,
    ) -> Resolved {
        if target.starts_with('/') {
            return Resolved::Outside(target.to_owned());
        }
        let mut at = from;
        let mut extra = 0usize;
        let mut parts = target.split('/').peekable();
        while let Some(part) = parts.next() {
            #[cfg(test)]
            self.steps.set(self.steps.get() + 1);
            match part {
                "" | "." => {}
                ".." => {
                    if extra > 0 {
                        extra -= 1;
                    } else if at == ROOT {
                        return Resolved::Escapes;
                    } else {
                        at = self.node(at).map_or(ROOT, |n| n.parent);
                    }
                }
                name => {
                    let child = if extra > 0 {
                        None
                    } else {
                        self.children.get(&(at, name.into())).copied()
                    };
                    let Some(child) = child else {
                        extra += 1;
                        continue;
                    };
                    if let Some(NodeKind::Symlink(_)) = self.node(child).map(|n| &n.kind) {
                        match self.resolve_link(child, hops + 1, memo) {
                            Resolved::Inside { node, extra: e } => {
                                at = node;
                                extra = e;
                            }
                            Resolved::Outside(outside) => {
                                let rest: Vec<&str> = parts.collect();
                                return Resolved::Outside(if rest.is_empty() {
                                    outside
                                } else {
                                    format!("{}/{}", outside.trim_end_matches('/'), rest.join("/"))
                                });
                            }
                            other => return other,
                        }
                    } else {
                        at = child;
                    }
                }
            }
        }
        Resolved::Inside { node: at, extra }
    }

    fn resolve_link(&self, link: u32, hops: usize, memo: &mut HashMap<u32, Resolved>) -> Resolved {
        if let Some(done) = memo.get(&link) {
            return done.clone();
        }
        // `hops` links were followed before this one.
        if hops >= MAX_LINK_HOPS {
            return Resolved::Loop;
        }
        let Some(Node {
            parent,
            kind: NodeKind::Symlink(target),
            ..
        }) = self.node(link)
        else {
            return Resolved::Inside {
                node: link,
                extra: 0,
            };
        };
        // Marked as a loop while it resolves: a link that leads back to itself is one.
        memo.insert(link, Resolved::Loop);
        let resolved = self.resolve_from(*parent, target, hops, memo);
        memo.insert(link, resolved.clone());
        resolved
    }

    /// Every symlink resolved through the others, once all are known: an error for one that
    /// leads above the root (or loops), and the `path -> target` of those that lead outside
    /// through an absolute target, sorted.
    pub(crate) fn external_symlinks(&self) -> Result<Vec<String>, ArchiveError> {
        let mut memo = HashMap::new();
        let mut external = Vec::new();
        for &link in &self.links {
            let Some(NodeKind::Symlink(target)) = self.node(link).map(|n| &n.kind) else {
                continue;
            };
            match self.resolve_link(link, 0, &mut memo) {
                Resolved::Inside { .. } => {}
                Resolved::Outside(_) => {
                    external.push(format!("{} -> {target}", self.path_of(link)));
                }
                Resolved::Escapes => {
                    return Err(ArchiveError::SymlinkEscapes {
                        path: self.path_of(link),
                        target: target.clone(),
                    })
                }
                Resolved::Loop => return Err(ArchiveError::SymlinkLoop(self.path_of(link))),
            }
        }
        external.sort();
        Ok(external)
    }
}

/// Reads a small member whole, refusing it beyond `limit` bytes (named, never cut) and when
/// it is not UTF-8. The legacy reader reads its metadata files with it too.
pub(super) fn read_small<R: Read>(
    tar: &mut TarReader<R>,
    member: &TarMember,
    limit: u64,
    what: &str,
) -> Result<String, ArchiveError> {
    if member.size > limit {
        return Err(ArchiveError::TooLarge {
            path: what.to_owned(),
            size: member.size,
            limit,
        });
    }
    let data = tar.read_all(member.size)?;
    // `read_all` read the padding too: nothing is left of this member.
    tar.remaining = 0;
    tar.padding = 0;
    String::from_utf8(data).map_err(|_| ArchiveError::NotAPlugin(format!("`{what}` is not UTF-8")))
}

/// The decoded tar stream of a format-1 file.
type Format1Stream = TarReader<Decoded<zstd::Decoder<'static, io::BufReader<fs_err::File>>>>;

fn open(path: &Path) -> Result<Format1Stream, ArchiveError> {
    let file = fs_err::File::open(path).map_err(ArchiveError::Io)?;
    let decoder = zstd::Decoder::new(file).map_err(ArchiveError::Io)?;
    Ok(TarReader::new(Decoded(decoder)))
}

/// Reads the head of a format-1 file: `PLUGIN.json` and RECORD, checked against each other.
/// `info` stops here; `verify` and extraction go on with [`read`].
pub fn read_head(path: &Path, limits: &Limits) -> Result<Verified, ArchiveError> {
    let mut tar = open(path)?;
    head(&mut tar, limits)
}

fn head<R: Read>(tar: &mut TarReader<R>, limits: &Limits) -> Result<Verified, ArchiveError> {
    let mut next = |expected: &str, limit: u64| -> Result<String, ArchiveError> {
        let Some(member) = tar.next_member(limits)? else {
            return Err(ArchiveError::NotAPlugin(format!("`{expected}` is missing")));
        };
        let path = check_path(&member.path, limits)?;
        if path != expected || entry_kind(member.entry_type) != Ok(EntryKind::File) {
            return Err(ArchiveError::NotAPlugin(format!(
                "the first members must be `{META_PATH}` then `{RECORD_PATH}`, found `{path}`"
            )));
        }
        read_small(tar, &member, limit, expected)
    };
    let meta_text = next(META_PATH, limits.max_meta)?;
    let meta: PluginMeta =
        serde_json::from_str(&meta_text).map_err(|e| ArchiveError::BadMeta(e.to_string()))?;
    if meta.format != super::FORMAT {
        return Err(ArchiveError::BadMeta(format!(
            "format {} is not known to this mfplug (it reads format {})",
            meta.format,
            super::FORMAT
        )));
    }
    crate::plugin::PluginName::parse(&meta.name).map_err(|e| ArchiveError::BadName {
        source_file: META_PATH.into(),
        why: e.to_string(),
    })?;
    let record_text = next(RECORD_PATH, limits.max_record)?;
    let actual = Record::plugin_hash(&record_text);
    if actual != meta.plugin_hash {
        return Err(ArchiveError::RecordHash {
            stated: meta.plugin_hash.clone(),
            actual,
        });
    }
    let record = Record::parse(&record_text).map_err(ArchiveError::BadRecord)?;
    if record.entries.len() as u64 > limits.max_members {
        return Err(ArchiveError::TooManyMembers(limits.max_members));
    }
    let files = record.entries.len() as u64;
    if meta.files != files {
        return Err(ArchiveError::MetaDisagrees {
            field: "files",
            stated: meta.files.to_string(),
            actual: format!("{files} (the lines of RECORD)"),
        });
    }
    let size = record
        .entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.size));
    if meta.size != size {
        return Err(ArchiveError::MetaDisagrees {
            field: "size",
            stated: meta.size.to_string(),
            actual: format!("{size} bytes (the sum of RECORD's sizes)"),
        });
    }
    if size > limits.max_total {
        return Err(ArchiveError::TotalTooLarge(limits.max_total));
    }
    Ok(Verified {
        meta,
        record,
        record_text,
    })
}

/// The name in a `.layerapi2_label`'s text, checked against the name rules.
pub(crate) fn label_name(text: &str, source_file: &str) -> Result<String, ArchiveError> {
    use crate::plugin::{Label, LabelTextError};
    match Label::parse_checked(text) {
        Ok(label) => Ok(label.name.to_string()),
        Err(LabelTextError::Malformed) => Err(ArchiveError::BadName {
            source_file: source_file.to_owned(),
            why: format!("`{}` is not `plugin_NAME@module`", shown(text.trim())),
        }),
        Err(LabelTextError::BadName(e)) => Err(ArchiveError::BadName {
            source_file: source_file.to_owned(),
            why: e.to_string(),
        }),
    }
}

/// Reads a whole format-1 file, checking every member; with `target`, extracts it there
/// (`target` must not exist yet; it is created). On error, what was extracted stays in
/// `target` for the caller to remove.
pub fn read(path: &Path, limits: &Limits, target: Option<&Path>) -> Result<Verified, ArchiveError> {
    let mut tar = open(path)?;
    let verified = head(&mut tar, limits)?;
    create_target(target)?;
    let mut pass = Extraction::new(&verified, limits, target);
    while let Some(member) = tar.next_member(limits)? {
        pass.member(&mut tar, &member)?;
    }
    pass.finish()?;
    Ok(verified)
}

/// Creates the dir a file is extracted into, which must not exist yet.
pub(super) fn create_target(target: Option<&Path>) -> Result<(), ArchiveError> {
    if let Some(target) = target {
        fs_err::create_dir(target).map_err(|e| ArchiveError::Write(target.to_path_buf(), e))?;
    }
    Ok(())
}

/// A member's checked path (no trailing `/`) and its kind, refused when a `.plugin` file may
/// not hold that type.
pub(super) fn member_kind(
    member: &TarMember,
    limits: &Limits,
) -> Result<(String, EntryKind), ArchiveError> {
    let path = check_path(&member.path, limits)?;
    let kind = entry_kind(member.entry_type).map_err(|kind| ArchiveError::ForbiddenType {
        path: path.clone(),
        kind,
    })?;
    Ok((path, kind))
}

/// A symlink member's target, within the path bound, `not_utf8` when it is not UTF-8; empty
/// for another member.
pub(super) fn symlink_target(
    member: &TarMember,
    kind: EntryKind,
    path: &str,
    limits: &Limits,
    not_utf8: impl FnOnce() -> ArchiveError,
) -> Result<String, ArchiveError> {
    if kind != EntryKind::Symlink {
        return Ok(String::new());
    }
    if member.link.len() > limits.max_path {
        return Err(ArchiveError::PathTooLong {
            path: path.to_owned(),
            len: member.link.len(),
            limit: limits.max_path,
        });
    }
    String::from_utf8(member.link.clone()).map_err(|_| not_utf8())
}

/// Admits a member at `path` into the guard: the bytes it brings to the stream (`size`)
/// count, whatever its type.
pub(super) fn admit_member(
    guard: &mut Guard,
    path: &str,
    kind: EntryKind,
    link: &str,
    size: u64,
    limits: &Limits,
) -> Result<(), ArchiveError> {
    let admitted = match kind {
        EntryKind::File => Admit::File,
        EntryKind::Dir => Admit::Dir,
        EntryKind::Symlink => Admit::Symlink(link),
    };
    guard.admit(path, admitted, size, limits)
}

/// Refuses a relative symlink target that leads above the plugin's root from `path`.
pub(super) fn check_inside(path: &str, link: &str) -> Result<(), ArchiveError> {
    if !link.starts_with('/') && !super::pack::stays_inside(Path::new(path), Path::new(link)) {
        return Err(ArchiveError::SymlinkEscapes {
            path: path.to_owned(),
            target: link.to_owned(),
        });
    }
    Ok(())
}

/// Extracts a symlink member: `out` made a symlink to `link`, its parent created.
pub(super) fn write_symlink(link: &str, out: &Path) -> Result<(), ArchiveError> {
    make_parent(out)?;
    fs_err::os::unix::fs::symlink(link, out).map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}

/// Extracts a dir member: `out` and its parents created.
pub(super) fn write_dir(out: &Path) -> Result<(), ArchiveError> {
    fs_err::create_dir_all(out).map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}

/// A member's `Mismatch` with its RECORD entry.
fn mismatch(path: &str, what: String) -> ArchiveError {
    ArchiveError::Mismatch {
        path: path.to_owned(),
        what,
    }
}

/// The state of [`read`]'s pass over the members after the head.
struct Extraction<'a> {
    verified: &'a Verified,
    limits: &'a Limits,
    target: Option<&'a Path>,
    /// RECORD's entries by their recorded path.
    wanted: HashMap<&'a str, &'a RecordEntry>,
    guard: Guard,
    buf: Vec<u8>,
    /// The first compiled (ELF) file seen, which makes the platform other than `any`.
    elf: Option<String>,
}

impl<'a> Extraction<'a> {
    /// A pass that checks the members against `verified`'s RECORD.
    fn new(verified: &'a Verified, limits: &'a Limits, target: Option<&'a Path>) -> Self {
        let wanted = verified
            .record
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e))
            .collect();
        Extraction {
            verified,
            limits,
            target,
            wanted,
            guard: Guard::default(),
            buf: vec![0u8; 256 * 1024],
            elf: None,
        }
    }

    /// Checks one member (its path, type, place among the earlier ones and RECORD entry)
    /// and, with a target, extracts it there.
    fn member<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        member: &TarMember,
    ) -> Result<(), ArchiveError> {
        let (path, kind) = member_kind(member, self.limits)?;
        if path == ".mfplug" || path.starts_with(".mfplug/") {
            return Err(if kind == EntryKind::Symlink {
                ArchiveError::MetadataSymlink(path)
            } else {
                ArchiveError::ReservedPath(path)
            });
        }
        if kind == EntryKind::Symlink && is_metadata_path(&path) {
            return Err(ArchiveError::MetadataSymlink(path));
        }
        let link = symlink_target(member, kind, &path, self.limits, || {
            mismatch(&path, "its target is not UTF-8".into())
        })?;
        admit_member(
            &mut self.guard,
            &path,
            kind,
            &link,
            member.size,
            self.limits,
        )?;
        let record = self.recorded(&path, kind)?;
        let out = self.target.map(|t| t.join(&path));
        match kind {
            EntryKind::Symlink => {
                check_symlink(&path, &link, record)?;
                if let Some(out) = out {
                    write_symlink(&link, &out)?;
                }
            }
            EntryKind::Dir => {
                if record.kind != Kind::Dir {
                    return Err(mismatch(
                        &path,
                        format!("a directory, RECORD says `{}`", record.kind.as_str()),
                    ));
                }
                if let Some(out) = out {
                    write_dir(&out)?;
                }
            }
            EntryKind::File => self.file(tar, member, &path, record, out.as_deref())?,
        }
        Ok(())
    }

    /// RECORD's entry for a member; an empty dir is recorded under its member name, which
    /// ends with `/`.
    fn recorded(&self, path: &str, kind: EntryKind) -> Result<&'a RecordEntry, ArchiveError> {
        let key = if kind == EntryKind::Dir {
            format!("{path}/")
        } else {
            path.to_owned()
        };
        self.wanted
            .get(key.as_str())
            .copied()
            .ok_or_else(|| ArchiveError::NotInRecord(path.to_owned()))
    }

    /// A file member: checked against RECORD, its data streamed (hashed, and written to
    /// `out` with a target), then its sha256 checked; notes the first ELF file, and checks
    /// the name in the label against `PLUGIN.json`'s.
    fn file<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        member: &TarMember,
        path: &str,
        record: &RecordEntry,
        out: Option<&Path>,
    ) -> Result<(), ArchiveError> {
        let executable = check_file(path, member, record)?;
        let is_label = path == crate::plugin::LABEL_FILE;
        if is_label && member.size > self.limits.max_meta {
            return Err(ArchiveError::TooLarge {
                path: path.to_owned(),
                size: member.size,
                limit: self.limits.max_meta,
            });
        }
        let file = match out {
            Some(out) => {
                make_parent(out)?;
                Some((create_file(out, executable)?, out))
            }
            None => None,
        };
        let streamed = stream(tar, &mut self.buf, file, is_label)?;
        if streamed.sha256 != record.sha256 {
            return Err(mismatch(path, "its sha256 is not the recorded one".into()));
        }
        if streamed.magic == b"\x7fELF" && self.elf.is_none() {
            self.elf = Some(path.to_owned());
        }
        if is_label {
            let text = String::from_utf8_lossy(&streamed.kept);
            let name = label_name(&text, crate::plugin::LABEL_FILE)?;
            if name != self.verified.meta.name {
                return Err(ArchiveError::NameMismatch {
                    meta: self.verified.meta.name.clone(),
                    label: name,
                });
            }
        }
        Ok(())
    }

    /// After the last member: every RECORD entry had its member, and `PLUGIN.json`'s
    /// `external_symlinks` and `platform` say what the members are.
    fn finish(self) -> Result<(), ArchiveError> {
        let meta = &self.verified.meta;
        for entry in &self.verified.record.entries {
            if !self.guard.contains(entry.path.trim_end_matches('/')) {
                return Err(ArchiveError::MissingMember(entry.path.clone()));
            }
        }
        let external = self.guard.external_symlinks()?;
        let mut stated = meta.external_symlinks.clone();
        stated.sort();
        if stated != external {
            return Err(ArchiveError::MetaDisagrees {
                field: "external_symlinks",
                stated: format!("{:?}", meta.external_symlinks),
                actual: format!("{external:?} (its symlinks that lead outside the plugin)"),
            });
        }
        check_platform(meta, self.elf.as_deref())
    }
}

/// A symlink member against its RECORD entry: recorded as a symlink, inside the plugin
/// unless absolute, with the recorded target.
fn check_symlink(path: &str, link: &str, record: &RecordEntry) -> Result<(), ArchiveError> {
    if record.kind != Kind::Symlink {
        return Err(mismatch(
            path,
            format!("a symlink, RECORD says `{}`", record.kind.as_str()),
        ));
    }
    check_inside(path, link)?;
    if sha256_hex(link.as_bytes()) != record.sha256 || link.len() as u64 != record.size {
        return Err(mismatch(
            path,
            format!("its target `{}` is not the recorded one", shown(link)),
        ));
    }
    Ok(())
}

/// A file member against its RECORD entry: recorded as a file, with the same executable bit
/// and the same size. The member's size (its PAX size when it has one) is the one its data is
/// read with: checked here, nothing beyond RECORD's size is read or written. Gives whether
/// the file is executable.
fn check_file(path: &str, member: &TarMember, record: &RecordEntry) -> Result<bool, ArchiveError> {
    let Kind::File { executable } = record.kind else {
        return Err(mismatch(
            path,
            format!("a file, RECORD says `{}`", record.kind.as_str()),
        ));
    };
    if (member.mode & 0o111 != 0) != executable {
        return Err(mismatch(
            path,
            format!(
                "mode {:o}, RECORD says {}",
                member.mode & 0o777,
                record.kind.as_str()
            ),
        ));
    }
    if member.size != record.size {
        return Err(mismatch(
            path,
            format!("{} bytes, RECORD says {}", member.size, record.size),
        ));
    }
    Ok(executable)
}

/// What streaming a file member's data found.
struct Streamed {
    /// The data's sha256, in hex.
    sha256: String,
    /// Its first 4 bytes (fewer in a shorter file).
    magic: Vec<u8>,
    /// All of it, when it was asked to be kept.
    kept: Vec<u8>,
}

/// Streams the current member's data through `buf`: hashed, its first bytes kept, all of it
/// kept with `keep` (for a member whose size the caller bounded), written to `file`'s open
/// file when there is one.
fn stream<R: Read>(
    tar: &mut TarReader<R>,
    buf: &mut [u8],
    mut file: Option<(fs_err::File, &Path)>,
    keep: bool,
) -> Result<Streamed, ArchiveError> {
    let mut hasher = Sha256::new();
    let mut magic: Vec<u8> = Vec::with_capacity(4);
    let mut kept = Vec::new();
    loop {
        let n = tar.read_data(buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if magic.len() < 4 {
            let want = (4 - magic.len()).min(chunk.len());
            magic.extend_from_slice(chunk.get(..want).unwrap_or_default());
        }
        hasher.update(chunk);
        if keep {
            kept.extend_from_slice(chunk);
        }
        if let Some((file, out)) = file.as_mut() {
            io::Write::write_all(file, chunk)
                .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))?;
        }
    }
    Ok(Streamed {
        sha256: hex(&hasher.finalize()),
        magic,
        kept,
    })
}

/// `PLUGIN.json`'s `platform` against the members: `any` exactly when no file is compiled
/// (ELF); `elf` is the first compiled file.
fn check_platform(meta: &PluginMeta, elf: Option<&str>) -> Result<(), ArchiveError> {
    match (elf, meta.platform == "any") {
        (Some(elf), true) => Err(ArchiveError::MetaDisagrees {
            field: "platform",
            stated: "any".into(),
            actual: format!("the compiled (ELF) file `{elf}`"),
        }),
        (None, false) => Err(ArchiveError::MetaDisagrees {
            field: "platform",
            stated: meta.platform.clone(),
            actual: "no compiled (ELF) file, which makes it `any`".into(),
        }),
        _ => Ok(()),
    }
}

/// Creates the parent dirs of an extracted member.
pub(super) fn make_parent(out: &Path) -> Result<(), ArchiveError> {
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent).map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
    }
    Ok(())
}

/// Creates an extracted file, which must be new, with mode 755 or 644.
pub(super) fn create_file(out: &Path, executable: bool) -> Result<fs_err::File, ArchiveError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    fs_err::OpenOptions::new()
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
        let l = Limits::default();
        assert_eq!(check_path(b"a/b", &l).unwrap(), "a/b");
        assert_eq!(check_path(b"a/b/", &l).unwrap(), "a/b");
        assert!(matches!(
            check_path(b"/etc/passwd", &l),
            Err(ArchiveError::AbsolutePath(_))
        ));
        assert!(matches!(
            check_path(b"a/../../b", &l),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"a//b", &l),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"./a", &l),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"", &l),
            Err(ArchiveError::TraversalPath(_))
        ));
        assert!(matches!(
            check_path(b"a\xffb", &l),
            Err(ArchiveError::NonUtf8Path(_))
        ));
    }

    #[test]
    fn header_numbers_and_pax_records() {
        assert_eq!(number(b"0000644\0", "mode").unwrap(), 0o644);
        assert_eq!(number(b"  755 \0\0", "mode").unwrap(), 0o755);
        assert_eq!(number(b"\0\0\0\0", "size").unwrap(), 0);
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[7..].copy_from_slice(&[0x04, 0, 0, 0, 0]);
        assert_eq!(number(&big, "size").unwrap(), 16 << 30);
        assert!(number(b"0009\0", "size").is_err());
        assert!(number(&[0xff; 12], "size").is_err());
        assert!(number(
            &[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "size"
        )
        .is_err());

        let pax = parse_pax(b"12 path=a/b\n11 size=42\n", false).unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"a/b"[..]));
        assert_eq!(pax.size, Some(42));
        for bad in [
            &b"0 path=x\n"[..],
            b"99 path=x\n",
            b"9 path=x",
            b"x path=a\n",
            b"10 pathx\n",
        ] {
            assert!(
                parse_pax(bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_pax(b"21 GNU.sparse.size=1\n", false).is_err());
        assert!(parse_pax(b"10 path=a\n", true).is_err());
        assert!(parse_pax(b"13 comment=a\n", true).is_ok());
    }

    #[test]
    fn path_bounds_at_the_limit_and_beyond() {
        let l = Limits::default();
        // 4096 bytes: 16 components of 255 bytes and their slashes, then a last one.
        let component = "c".repeat(255);
        let mut at_limit = vec![component.as_str(); 16].join("/");
        at_limit.push('/');
        at_limit.push_str(&"d".repeat(4096 - at_limit.len()));
        assert_eq!(at_limit.len(), 4096);
        check_path(at_limit.as_bytes(), &l).unwrap();
        let over = format!("{at_limit}e");
        let e = check_path(over.as_bytes(), &l).unwrap_err();
        assert!(
            e.to_string()
                .contains("4097 bytes, beyond the bound of 4096"),
            "{e}"
        );

        check_path("c".repeat(255).as_bytes(), &l).unwrap();
        let e = check_path("c".repeat(256).as_bytes(), &l).unwrap_err();
        assert!(
            matches!(
                e,
                ArchiveError::ComponentTooLong {
                    len: 256,
                    limit: 255,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("beyond the bound of 255 bytes"));

        let deep = vec!["a"; 256].join("/");
        check_path(deep.as_bytes(), &l).unwrap();
        let e = check_path(format!("{deep}/a").as_bytes(), &l).unwrap_err();
        assert!(
            matches!(
                e,
                ArchiveError::TooDeep {
                    depth: 257,
                    limit: 256,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("beyond the bound of 256"));
    }

    #[test]
    fn guard_refuses_writes_through_symlinks_and_duplicates() {
        let limits = Limits::default();
        let mut g = Guard::default();
        g.admit("a", Admit::Symlink("x"), 0, &limits).unwrap();
        assert!(matches!(
            g.admit("a/b", Admit::File, 0, &limits),
            Err(ArchiveError::ThroughSymlink { .. })
        ));
        g.admit("c/d", Admit::File, 0, &limits).unwrap();
        let e = g.admit("c", Admit::Symlink("x"), 0, &limits).unwrap_err();
        assert!(
            matches!(&e, ArchiveError::ThroughSymlink { path, link } if path == "c/d" && link == "c"),
            "{e}"
        );
        assert!(matches!(
            g.admit("c/d", Admit::File, 0, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        assert!(matches!(
            g.admit("c/d/e", Admit::File, 0, &limits),
            Err(ArchiveError::UnderFile { .. })
        ));
        assert!(g.contains("c/d"));
        assert!(!g.contains("c"));
        let small = Limits {
            max_member: 10,
            max_total: 15,
            ..Limits::default()
        };
        let mut g = Guard::default();
        assert!(matches!(
            g.admit("x", Admit::File, 11, &small),
            Err(ArchiveError::TooLarge { .. })
        ));
        g.admit("y", Admit::File, 10, &small).unwrap();
        assert!(matches!(
            g.admit("z", Admit::File, 10, &small),
            Err(ArchiveError::TotalTooLarge(15))
        ));
    }

    #[test]
    fn member_count_at_the_limit_and_beyond() {
        let small = Limits {
            max_members: 3,
            ..Limits::default()
        };
        let mut g = Guard::default();
        for p in ["a", "b", "c"] {
            g.admit(p, Admit::File, 0, &small).unwrap();
        }
        let e = g.admit("d", Admit::File, 0, &small).unwrap_err();
        assert!(e.to_string().contains("more than 3 members"), "{e}");
    }

    #[test]
    fn symlinks_resolve_through_each_other() {
        let l = Limits::default();
        let mut g = Guard::default();
        g.admit("etc", Admit::Symlink("/etc"), 0, &l).unwrap();
        g.admit("pw", Admit::Symlink("etc/passwd"), 0, &l).unwrap();
        g.admit("d/inner", Admit::Symlink("../pw"), 0, &l).unwrap();
        g.admit("d/ok", Admit::Symlink("../ok.txt"), 0, &l).unwrap();
        g.admit("ok.txt", Admit::File, 0, &l).unwrap();
        assert_eq!(
            g.external_symlinks().unwrap(),
            ["d/inner -> ../pw", "etc -> /etc", "pw -> etc/passwd"]
        );

        // `a/up -> ..` is the root; `b -> a/up/..` is lexically `a`, but above the root.
        let mut g = Guard::default();
        g.admit("a/up", Admit::Symlink(".."), 0, &l).unwrap();
        g.admit("b", Admit::Symlink("a/up/.."), 0, &l).unwrap();
        let e = g.external_symlinks().unwrap_err();
        assert!(
            matches!(&e, ArchiveError::SymlinkEscapes { path, .. } if path == "b"),
            "{e}"
        );

        let mut g = Guard::default();
        g.admit("x", Admit::Symlink("y"), 0, &l).unwrap();
        g.admit("y", Admit::Symlink("x"), 0, &l).unwrap();
        assert!(matches!(
            g.external_symlinks(),
            Err(ArchiveError::SymlinkLoop(_))
        ));
    }

    #[test]
    fn symlink_hops_at_the_limit_and_beyond() {
        let l = Limits::default();
        // A chain of `n` links, `l0 -> l1 -> ... -> file`.
        let chain = |n: usize| {
            let mut g = Guard::default();
            for i in 0..n {
                let next = if i + 1 == n {
                    "file".to_owned()
                } else {
                    format!("l{}", i + 1)
                };
                g.admit(&format!("l{i}"), Admit::Symlink(&next), 0, &l)
                    .unwrap();
            }
            g.admit("file", Admit::File, 0, &l).unwrap();
            g.external_symlinks()
        };
        chain(40).unwrap();
        let e = chain(41).unwrap_err();
        assert!(e.to_string().contains("more than 40 symlinks"), "{e}");
    }

    /// A guard of 2n members, n of them symlinks, some through others: the work per member
    /// (path components walked) does not grow with n. The old guard scanned every earlier path
    /// for each symlink: 64x the work for 8x the members. Counted, not timed, so that a busy
    /// machine cannot fail it; `cargo xtask bench verify` times it.
    #[test]
    fn guard_is_linear() {
        let l = Limits::default();
        let work = |n: usize| {
            let mut g = Guard::default();
            for i in 0..n {
                g.admit(&format!("d/e{}/f{i}", i % 100), Admit::File, 1, &l)
                    .unwrap();
                let target = if i % 2 == 0 {
                    format!("e{}/f{i}", i % 100)
                } else {
                    format!("l{}", i - 1)
                };
                g.admit(&format!("d/l{i}"), Admit::Symlink(&target), 0, &l)
                    .unwrap();
            }
            assert!(g.external_symlinks().unwrap().is_empty());
            g.steps.get()
        };
        let small = work(10_000);
        let large = work(80_000);
        assert!(
            large <= small * 8 + small / 10,
            "{small} steps for 20 000 members, {large} for 160 000"
        );
    }
}
