//! The `.plugin` file, format 1: what it holds and how it is written and read.
//!
//! A tar stream compressed with zstd: `.mfplug/PLUGIN.json` first (the metadata), then
//! `.mfplug/RECORD` (one line per entry: path, mode, size, sha256), then the entries sorted by
//! path bytes. The plugin hash is the sha256 of RECORD, so it does not depend on compression.
//! `pack` writes such a file reproducibly from a plugin dir; `unpack` reads one, and any
//! hostile input, safely; `legacy` reads MetWork's tar.gz files. See `docs/plugin-format.md`.

pub mod legacy;
pub(crate) mod metwork;
pub(crate) mod pack;
pub mod unpack;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The format number written in `PLUGIN.json`.
pub(crate) const FORMAT: u32 = 1;
pub(crate) const META_PATH: &str = ".mfplug/PLUGIN.json";
pub(crate) const RECORD_PATH: &str = ".mfplug/RECORD";
/// The mtime of every member when `SOURCE_DATE_EPOCH` is not set: 2000-01-01T00:00:00Z, a
/// fixed constant (not 0, which some tools read as "no time").
pub(crate) const DEFAULT_EPOCH: u64 = 946_684_800;

/// `PLUGIN.json`: what a `.plugin` file is, readable without unpacking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PluginMeta {
    pub(crate) format: u32,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) release: String,
    #[serde(default)]
    pub(crate) summary: String,
    #[serde(default)]
    pub(crate) license: String,
    #[serde(default)]
    pub(crate) maintainer: String,
    #[serde(default)]
    pub(crate) vendor: String,
    #[serde(default)]
    pub(crate) url: String,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, or [`DEFAULT_EPOCH`].
    pub(crate) build_time: u64,
    /// `mfplug X.Y.Z`.
    pub(crate) tool: String,
    /// `any`, or `linux-ARCH` when the plugin holds compiled (ELF) files.
    pub(crate) platform: String,
    /// `sha256:HEX` of RECORD.
    pub(crate) plugin_hash: String,
    /// Number of RECORD lines and the sum of their sizes.
    pub(crate) files: u64,
    pub(crate) size: u64,
    /// Symlinks whose absolute target is outside the plugin: `path -> target`.
    #[serde(default)]
    pub(crate) external_symlinks: Vec<String>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, `executable` or not.
    File { executable: bool },
    /// A symlink: size and hash are those of its target text.
    Symlink,
    /// An empty directory (directories with content are implied by their files).
    Dir,
}

impl Kind {
    /// The kind as RECORD writes it: the file's mode (`644`, `755`), `link` or `dir`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::File { executable: false } => "644",
            Kind::File { executable: true } => "755",
            Kind::Symlink => "link",
            Kind::Dir => "dir",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "644" => Kind::File { executable: false },
            "755" => Kind::File { executable: true },
            "link" => Kind::Symlink,
            "dir" => Kind::Dir,
            _ => return None,
        })
    }
}

/// One RECORD line: `path TAB mode TAB size TAB sha256`; a dir's path ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub path: String,
    pub kind: Kind,
    pub(crate) size: u64,
    /// Hex sha256 of the content (of the target text for a symlink); empty for a dir.
    pub sha256: String,
}

impl fmt::Display for RecordEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = if self.sha256.is_empty() {
            "-"
        } else {
            &self.sha256
        };
        write!(
            f,
            "{}\t{}\t{}\t{}",
            self.path,
            self.kind.as_str(),
            self.size,
            hash
        )
    }
}

/// The whole RECORD, in path-byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub entries: Vec<RecordEntry>,
}

impl Record {
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        for entry in &self.entries {
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        text
    }

    /// Parses RECORD; the error names the line that does not parse.
    pub(crate) fn parse(text: &str) -> Result<Record, String> {
        let mut entries: Vec<RecordEntry> = Vec::new();
        let Some(body) = text.strip_suffix('\n').or(text.is_empty().then_some("")) else {
            return Err("RECORD does not end with a newline".into());
        };
        let lines = body.split('\n').filter(|_| !body.is_empty());
        for (index, line) in lines.enumerate() {
            let bad = |why: &str| format!("RECORD line {}: {why}", index + 1);
            if line.contains('\r') {
                return Err(bad("a carriage return: lines end with `\\n` only"));
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [path, kind, size, hash] = fields[..] else {
                return Err(bad("expected `path TAB mode TAB size TAB sha256`"));
            };
            let kind = Kind::parse(kind).ok_or_else(|| bad(&format!("unknown mode `{kind}`")))?;
            let size: u64 = size
                .parse()
                .map_err(|_| bad(&format!("invalid size `{size}`")))?;
            let sha256 = if kind == Kind::Dir {
                if hash != "-" || size != 0 {
                    return Err(bad(&format!(
                        "`{path}` is a directory: its size is `0` and its sha256 `-`"
                    )));
                }
                String::new()
            } else if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                hash.to_ascii_lowercase()
            } else {
                return Err(bad(&format!("invalid sha256 `{hash}`")));
            };
            if (kind == Kind::Dir) != path.ends_with('/') {
                return Err(bad(&format!(
                    "`{path}`: a directory's path, and only a directory's, ends with `/`"
                )));
            }
            if let Some(previous) = entries.last() {
                if previous.path.as_bytes() >= path.as_bytes() {
                    return Err(bad(&format!(
                        "`{path}` is not after `{}`: RECORD must be sorted, without duplicates",
                        previous.path
                    )));
                }
            }
            entries.push(RecordEntry {
                path: path.to_owned(),
                kind,
                size,
                sha256,
            });
        }
        Ok(Record { entries })
    }

    /// `sha256:HEX` of the RECORD text: the plugin hash.
    pub fn plugin_hash(text: &str) -> String {
        format!("sha256:{}", crate::fsx::sha256_hex(text.as_bytes()))
    }
}

/// Lower-case hex of bytes, re-exported for the tests that build RECORD lines.
pub use crate::fsx::hex;

/// The file name of a release: `NAME-VERSION-RELEASE.plugin`.
pub(crate) fn file_name(name: &str, version: &str, release: &str) -> String {
    format!("{name}-{version}-{release}.plugin")
}

/// The stored time: `SOURCE_DATE_EPOCH` when set (and valid), else [`DEFAULT_EPOCH`].
pub(crate) fn source_date_epoch() -> Result<u64, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| {
            format!("`SOURCE_DATE_EPOCH` is `{value}`, not a number of seconds since 1970")
        }),
        _ => Ok(DEFAULT_EPOCH),
    }
}

/// Human-readable size: `12.3 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What kind of `.plugin` file a path holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    /// zstd: format 1.
    Format1,
    /// gzip: a legacy MetWork file.
    Legacy,
}

/// Sniffs the format of a `.plugin` file.
pub(crate) fn sniff(path: &std::path::Path) -> std::io::Result<Option<FileFormat>> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = fs_err::File::open(path)?;
    let n = file.read(&mut magic)?;
    Ok(match magic.get(..n).unwrap_or_default() {
        [0x28, 0xb5, 0x2f, 0xfd] => Some(FileFormat::Format1),
        // A zstd skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian).
        [b, 0x2a, 0x4d, 0x18] if b & 0xf0 == 0x50 => Some(FileFormat::Format1),
        [0x1f, 0x8b, ..] => Some(FileFormat::Legacy),
        _ => None,
    })
}

/// The description of a `.plugin` file shown by `info` (either format).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileInfo {
    pub(crate) path: PathBuf,
    /// `1`, or `legacy` for a MetWork file.
    pub(crate) format: String,
    /// Name, version, release and the describing fields.
    #[serde(flatten)]
    pub(crate) about: pack::MetaBase,
    pub(crate) build_time: Option<u64>,
    pub(crate) tool: Option<String>,
    pub(crate) platform: Option<String>,
    pub(crate) files: u64,
    /// Unpacked size (sum of the files).
    pub(crate) size: u64,
    /// Size of the `.plugin` file itself.
    pub(crate) file_size: u64,
    /// `sha256:...` for format 1; MetWork's own hash (md5 of metadata) for legacy files.
    pub(crate) plugin_hash: String,
    pub(crate) external_symlinks: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_order() {
        let text = "a\t644\t3\t".to_owned()
            + &"0".repeat(64)
            + "\nb/c\tlink\t1\t"
            + &"a".repeat(64)
            + "\nd/\tdir\t0\t-\nx\t755\t0\t"
            + &"f".repeat(64)
            + "\n";
        let record = Record::parse(&text).unwrap();
        assert_eq!(record.entries.len(), 4);
        assert_eq!(record.entries[1].kind, Kind::Symlink);
        assert_eq!(record.to_text(), text);
        assert!(Record::parse("b\t644\t1\t-\n").is_err());
        let unsorted = format!("b\t644\t1\t{0}\na\t644\t1\t{0}\n", "0".repeat(64));
        assert!(Record::parse(&unsorted).unwrap_err().contains("sorted"));
        let dup = format!("a\t644\t1\t{0}\na\t644\t1\t{0}\n", "0".repeat(64));
        assert!(Record::parse(&dup).is_err());
        assert!(Record::parse("a\t600\t1\tx\n")
            .unwrap_err()
            .contains("line 1"));
    }

    #[test]
    fn record_refuses_crlf_a_missing_newline_and_a_hashed_dir() {
        let hash = "0".repeat(64);
        let e = Record::parse(&format!("a\t644\t1\t{hash}\r\n")).unwrap_err();
        assert!(e.contains("line 1: a carriage return"), "{e}");
        let e = Record::parse(&format!("a\t644\t1\t{hash}")).unwrap_err();
        assert!(e.contains("does not end with a newline"), "{e}");
        let e = Record::parse(&format!("d/\tdir\t0\t{hash}\n")).unwrap_err();
        assert!(e.contains("line 1: `d/` is a directory"), "{e}");
        let e = Record::parse("d/\tdir\t3\t-\n").unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        assert!(Record::parse("").unwrap().entries.is_empty());
        let e = Record::parse(&format!("a\t644\t1\t{hash}\n\n")).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
