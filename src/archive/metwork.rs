//! Writing MetWork's own `.plugin` format, as mfplugin's `Plugin.build` does: a tar.gz of
//! `metwork_plugin/` holding the plugin's files (after `.releaseignore`), `.files.json` (the
//! list of the files, each as `metwork_plugin/PATH`) and `.metadata.json` (exactly MetWork's
//! ten keys, every value a string). MetWork's plugin hash is an md5 of five of those values
//! ([`metwork_hash`]); [`super::legacy`] reads such files back.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use md5::Digest as _;

use serde::Serialize;

use super::legacy::TOP;
use super::pack::{MetaBase, Source};
use super::Kind;
use crate::fsx::AtomicFile;

/// `.metadata.json`, its keys in MetWork's order; `size` is a string, as MetWork writes it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Metadata {
    pub(crate) version: String,
    pub(crate) release: String,
    pub(crate) build_host: String,
    pub(crate) build_date: String,
    pub(crate) size: String,
    pub(crate) summary: String,
    pub(crate) license: String,
    pub(crate) packager: String,
    pub(crate) vendor: String,
    pub(crate) url: String,
}

/// What was written: the file and its metadata.
pub(crate) struct Written {
    pub(crate) path: PathBuf,
    /// The plugin's name (MetWork's metadata does not hold it: the label does).
    pub(crate) name: String,
    pub(crate) metadata: Metadata,
    pub(crate) files: u64,
    /// The total size of the regular files (`size` of the metadata, as a number).
    pub(crate) size: u64,
    /// MetWork's plugin hash of the file, `metwork:MD5`.
    pub(crate) plugin_hash: String,
    pub(crate) file_size: u64,
}

/// MetWork's plugin hash (mfplugin's `get_hash`): the md5 of `build_host, build_date, size,
/// version, release`, each `unknown` when missing.
pub(crate) fn metwork_hash(
    build_host: &str,
    build_date: &str,
    size: &str,
    version: &str,
    release: &str,
) -> String {
    let sid = [build_host, build_date, size, version, release].join(", ");
    crate::fsx::hex(&md5::Md5::digest(sid.as_bytes()))
}

/// `2026-11-25T10:59:25Z` (MetWork's `build_date`) from seconds since 1970.
pub(crate) fn build_date(secs: u64) -> String {
    // `ui::format_time` gives `2026-11-25 10:59:25 UTC`.
    let text = crate::ui::format_time(secs);
    format!("{}Z", text.trim_end_matches(" UTC").replacen(' ', "T", 1))
}

/// The host name MetWork records: `MFHOSTNAME_FULL`, else the kernel's host name.
pub(crate) fn build_host() -> String {
    if let Some(host) = std::env::var("MFHOSTNAME_FULL")
        .ok()
        .filter(|h| !h.trim().is_empty())
    {
        return host;
    }
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Writes the plugin's `sources` as a MetWork `.plugin` file at `out` (a temp file beside it,
/// renamed into place: a failure leaves no partial file). Every entry has the time `epoch`
/// and no owner, so that the bytes depend only on the plugin, the host and the date.
pub(crate) fn write<I>(
    sources: I,
    base: &MetaBase,
    build_host: String,
    epoch: u64,
    out: &Path,
) -> Result<Written>
where
    I: IntoIterator<Item = Result<Source>>,
{
    let mut sources: Vec<Source> = sources
        .into_iter()
        .filter(|s| {
            // MetWork's own files are written below, never taken from the plugin dir.
            s.as_ref().map_or(true, |s| {
                s.rel != ".files.json" && s.rel != ".metadata.json"
            })
        })
        .collect::<Result<_>>()?;
    sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    let tmp = AtomicFile::new(out)
        .with_context(|| format!("cannot create a temp file beside `{}`", out.display()))?;
    let gz = flate2::write::GzEncoder::new(tmp, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let (files, size) = append_tree(&mut tar, &sources, epoch)?;
    let listed: Vec<String> = files.iter().map(|rel| format!("{TOP}/{rel}")).collect();
    let metadata = Metadata {
        version: base.version.clone(),
        release: base.release.clone(),
        build_host,
        build_date: build_date(epoch),
        size: size.to_string(),
        summary: base.summary.clone(),
        license: base.license.clone(),
        packager: base.maintainer.clone(),
        vendor: base.vendor.clone(),
        url: base.url.clone(),
    };
    append_bytes(&mut tar, ".files.json", &python_json(&listed)?, epoch)?;
    append_bytes(&mut tar, ".metadata.json", &python_json(&metadata)?, epoch)?;
    let gz = tar.into_inner().context("cannot finish the tar stream")?;
    let mut tmp = gz.finish().context("cannot finish the gzip stream")?;
    tmp.flush()?;
    tmp.set_mode(0o644)?;
    tmp.commit()
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    let plugin_hash = format!(
        "metwork:{}",
        metwork_hash(
            &metadata.build_host,
            &metadata.build_date,
            &metadata.size,
            &metadata.version,
            &metadata.release
        )
    );
    Ok(Written {
        path: out.to_path_buf(),
        name: base.name.clone(),
        metadata,
        files: files.len() as u64,
        size,
        plugin_hash,
        file_size: fs_err::metadata(out)?.len(),
    })
}

/// Appends `metwork_plugin/`, every dir on the way to an entry, and the entries; gives the
/// files (and symlinks) listed in `.files.json` and the total size of the regular files, as
/// MetWork counts them.
fn append_tree<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    sources: &[Source],
    epoch: u64,
) -> Result<(Vec<String>, u64)> {
    let mut dirs = std::collections::BTreeSet::new();
    for source in sources {
        let mut parent = Path::new(&source.rel).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.to_string_lossy().into_owned());
            parent = dir.parent();
        }
        if source.kind == Kind::Dir {
            dirs.insert(source.rel.trim_end_matches('/').to_owned());
        }
    }
    append_dir(tar, "", epoch)?;
    for dir in &dirs {
        append_dir(tar, dir, epoch)?;
    }
    let mut files = Vec::new();
    let mut size = 0;
    for source in sources {
        match source.kind {
            Kind::Dir => continue,
            Kind::Symlink => {
                let mut header = header(tar::EntryType::Symlink, 0o777, 0, epoch);
                let target = source.target.as_deref().unwrap_or_default();
                tar.append_link(&mut header, format!("{TOP}/{}", source.rel), target)
                    .with_context(|| format!("cannot pack `{}`", source.rel))?;
            }
            Kind::File { executable } => {
                let mut file = fs_err::File::open(&source.abs)?;
                let len = file.metadata()?.len();
                let mode = if executable { 0o755 } else { 0o644 };
                let mut header = header(tar::EntryType::Regular, mode, len, epoch);
                tar.append_data(&mut header, format!("{TOP}/{}", source.rel), &mut file)
                    .with_context(|| format!("cannot pack `{}`", source.abs.display()))?;
                size += len;
            }
        }
        files.push(source.rel.clone());
    }
    Ok((files, size))
}

/// A tar header of mfplug's: no owner, the given mode, size and time.
fn header(kind: tar::EntryType, mode: u32, size: u64, epoch: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(epoch);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Appends the dir `metwork_plugin/REL/` (the top dir itself for an empty `rel`).
fn append_dir<W: std::io::Write>(tar: &mut tar::Builder<W>, rel: &str, epoch: u64) -> Result<()> {
    let mut header = header(tar::EntryType::Directory, 0o755, 0, epoch);
    let path = if rel.is_empty() {
        format!("{TOP}/")
    } else {
        format!("{TOP}/{rel}/")
    };
    tar.append_data(&mut header, &path, std::io::empty())
        .with_context(|| format!("cannot pack `{path}`"))
}

/// Appends one of MetWork's own files, `metwork_plugin/NAME`.
fn append_bytes<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    epoch: u64,
) -> Result<()> {
    let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64, epoch);
    tar.append_data(&mut header, format!("{TOP}/{name}"), bytes)
        .with_context(|| format!("cannot pack `{TOP}/{name}`"))
}

/// JSON as Python's `json.dumps(value, indent=4)` writes it (what mfplugin writes): four
/// spaces, `": "` between key and value, non-ASCII escaped as `\uXXXX`.
fn python_json(value: &impl Serialize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    let text = String::from_utf8(out)?;
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Ok(ascii.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_date_are_metwork_s() {
        // hashlib.md5("h, 2020-01-01T00:00:00Z, 10, 1.0.0, 1".encode()).hexdigest()
        assert_eq!(
            metwork_hash("h", "2020-01-01T00:00:00Z", "10", "1.0.0", "1"),
            "8a879177c1490e472469849754a1cf07"
        );
        assert_eq!(build_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(build_date(1_764_672_000), "2025-12-02T10:40:00Z");
    }

    #[test]
    fn json_is_python_s() {
        let text = String::from_utf8(python_json(&vec!["a", "é"]).unwrap()).unwrap();
        assert_eq!(text, "[\n    \"a\",\n    \"\\u00e9\"\n]");
    }
}
