//! Legacy MetWork `.plugin` files: a tar.gz of `metwork_plugin/` with `.metadata.json` and
//! `.files.json` beside the plugin's files, the name in `.layerapi2_label`.
//!
//! They are read with the same refusals as format 1 (paths, types, symlinks, sizes); what can
//! be verified is that every file `.files.json` lists is there and nothing lies outside
//! `metwork_plugin/`. MetWork's own hash is an md5 of the metadata, not of the content, so it
//! is shown as stated, never trusted.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::unpack::{
    check_path, entry_kind, is_metadata_path, label_name, read_small, Admit, ArchiveError, Decoded,
    EntryKind, Guard, Limits, TarReader,
};

/// The top directory of a legacy file.
pub(crate) const TOP: &str = "metwork_plugin";
const METADATA: &str = ".metadata.json";
const FILES: &str = ".files.json";

/// What a legacy file says of itself.
#[derive(Debug, Clone, Default)]
pub struct LegacyInfo {
    pub name: String,
    pub version: String,
    pub release: String,
    pub(crate) summary: String,
    pub(crate) license: String,
    pub(crate) url: String,
    pub(crate) maintainer: String,
    pub(crate) vendor: String,
    /// MetWork's stated hash (md5 of metadata), or empty.
    pub(crate) hash: String,
    /// Files of the plugin (metadata files excluded) and their total size.
    pub files: u64,
    pub size: u64,
    /// Symlinks that lead outside the plugin: `path -> target`, sorted.
    pub external_symlinks: Vec<String>,
}

fn text(meta: &BTreeMap<String, Value>, key: &str) -> String {
    match meta.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Reads (and with `target`, extracts without the `metwork_plugin/` prefix and the metadata
/// files) a legacy file, checking what the format allows.
pub fn read(
    path: &Path,
    limits: &Limits,
    target: Option<&Path>,
) -> Result<LegacyInfo, ArchiveError> {
    let file = fs_err::File::open(path).map_err(ArchiveError::Io)?;
    let decoder = Decoded(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut tar = TarReader::new(decoder);
    if let Some(target) = target {
        fs_err::create_dir(target).map_err(|e| ArchiveError::Write(target.to_path_buf(), e))?;
    }
    let mut guard = Guard::default();
    let mut metadata: Option<BTreeMap<String, Value>> = None;
    let mut listed: Option<Vec<String>> = None;
    let mut label = None;
    let mut config = None;
    let mut info = LegacyInfo::default();
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(member) = tar.next_member(limits)? {
        let full = check_path(&member.path, limits)?;
        let kind = entry_kind(member.entry_type).map_err(|kind| ArchiveError::ForbiddenType {
            path: full.clone(),
            kind,
        })?;
        if full == TOP && kind == EntryKind::Dir {
            continue;
        }
        let Some(rel) = full.strip_prefix(&format!("{TOP}/")) else {
            return Err(ArchiveError::NotAPlugin(format!(
                "member `{full}` is outside `{TOP}/`"
            )));
        };
        let rel = rel.to_owned();
        if rel == ".mfplug" || rel.starts_with(".mfplug/") {
            return Err(ArchiveError::ReservedPath(rel));
        }
        if kind == EntryKind::Symlink && is_metadata_path(&rel) {
            return Err(ArchiveError::MetadataSymlink(rel));
        }
        let link = if kind == EntryKind::Symlink {
            if member.link.len() > limits.max_path {
                return Err(ArchiveError::PathTooLong {
                    path: rel.clone(),
                    len: member.link.len(),
                    limit: limits.max_path,
                });
            }
            String::from_utf8(member.link.clone())
                .map_err(|_| ArchiveError::NonUtf8Path(rel.clone()))?
        } else {
            String::new()
        };
        let size = if kind == EntryKind::File {
            member.size
        } else {
            0
        };
        let admitted = match kind {
            EntryKind::File => Admit::File,
            EntryKind::Dir => Admit::Dir,
            EntryKind::Symlink => Admit::Symlink(&link),
        };
        // The bytes the member brings to the stream count, whatever its type.
        guard.admit(&rel, admitted, member.size, limits)?;
        match (rel.as_str(), kind) {
            (METADATA, EntryKind::File) => {
                let text = read_small(&mut tar, &member, limits.max_meta, METADATA)?;
                metadata = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| ArchiveError::BadMeta(format!("`{METADATA}`: {e}")))?,
                );
                continue;
            }
            (FILES, EntryKind::File) => {
                let text = read_small(&mut tar, &member, limits.max_record, FILES)?;
                let list: Vec<String> = serde_json::from_str(&text)
                    .map_err(|e| ArchiveError::BadMeta(format!("`{FILES}`: {e}")))?;
                listed = Some(list);
                continue;
            }
            _ => {}
        }
        let out = target.map(|t| t.join(&rel));
        match kind {
            EntryKind::Dir => {
                if let Some(out) = out {
                    fs_err::create_dir_all(&out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            EntryKind::Symlink => {
                if !link.starts_with('/')
                    && !super::pack::stays_inside(Path::new(&rel), Path::new(&link))
                {
                    return Err(ArchiveError::SymlinkEscapes {
                        path: rel,
                        target: link,
                    });
                }
                info.files += 1;
                if let Some(out) = out {
                    if let Some(parent) = out.parent() {
                        fs_err::create_dir_all(parent)
                            .map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
                    }
                    fs_err::os::unix::fs::symlink(&link, &out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            EntryKind::File => {
                info.files += 1;
                info.size += size;
                let executable = member.mode & 0o111 != 0;
                if rel == crate::plugin::LABEL_FILE || rel == crate::plugin::CONFIG_FILE {
                    let text = read_small(&mut tar, &member, limits.max_meta, &rel)?;
                    if let Some(out) = &out {
                        write_file(out, text.as_bytes(), executable)?;
                    }
                    if rel == crate::plugin::LABEL_FILE {
                        label = Some(text);
                    } else {
                        config = Some(text);
                    }
                    continue;
                }
                let mut file = match &out {
                    Some(out) => Some(open_new(out, executable)?),
                    None => None,
                };
                loop {
                    let n = tar.read_data(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    if let (Some(file), Some(out)) = (file.as_mut(), &out) {
                        std::io::Write::write_all(file, buf.get(..n).unwrap_or_default())
                            .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                    }
                }
            }
        }
    }
    let metadata = metadata.ok_or_else(|| {
        ArchiveError::NotAPlugin(format!(
            "`{TOP}/{METADATA}` is missing: not a MetWork plugin file"
        ))
    })?;
    if let Some(list) = &listed {
        for file in list {
            let file = file.trim_start_matches("./");
            let file = file.strip_prefix(&format!("{TOP}/")).unwrap_or(file);
            let wanted = file.trim_end_matches('/');
            if wanted != METADATA && wanted != FILES && !guard.contains(wanted) {
                return Err(ArchiveError::MissingMember(file.to_owned()));
            }
        }
    }
    info.external_symlinks = guard.external_symlinks()?;
    let stated = text(&metadata, "name");
    if !stated.is_empty() {
        crate::plugin::PluginName::parse(&stated).map_err(|e| ArchiveError::BadName {
            source_file: format!("{TOP}/{METADATA}"),
            why: e.to_string(),
        })?;
    }
    info.name = match &label {
        Some(label) => label_name(label, &format!("{TOP}/{}", crate::plugin::LABEL_FILE))?,
        None => stated,
    };
    if info.name.is_empty() {
        return Err(ArchiveError::BadMeta(format!(
            "no plugin name: `{TOP}/{}` is missing",
            crate::plugin::LABEL_FILE
        )));
    }
    let general = config
        .map(|c| crate::config::ini::Document::parse(&c).0)
        .unwrap_or_default();
    let pick = |key: &str, ini_key: &str| {
        let v = text(&metadata, key);
        if v.is_empty() {
            general
                .get("general", ini_key)
                .unwrap_or_default()
                .to_owned()
        } else {
            v
        }
    };
    info.version = pick("version", "_version");
    info.release = pick("release", "_release");
    if info.release.is_empty() {
        info.release = "1".into();
    }
    info.summary = pick("summary", "_summary");
    info.license = pick("license", "_license");
    info.url = pick("url", "_url");
    info.maintainer = pick("maintainer", "_maintainer");
    info.vendor = pick("vendor", "_vendor");
    info.hash = text(&metadata, "hash");
    Ok(info)
}

fn open_new(out: &Path, executable: bool) -> Result<fs_err::File, ArchiveError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent).map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
    }
    fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(out)
        .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}

fn write_file(out: &Path, bytes: &[u8], executable: bool) -> Result<(), ArchiveError> {
    let mut file = open_new(out, executable)?;
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}
