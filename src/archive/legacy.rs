//! Legacy MetWork `.plugin` files: a tar.gz of `metwork_plugin/` with `.metadata.json` and
//! `.files.json` beside the plugin's files, the name in `.layerapi2_label`.
//!
//! They are read with the same refusals as format 1 (paths, types, symlinks, sizes); what can
//! be verified is that every file `.files.json` lists is there and nothing lies outside
//! `metwork_plugin/`. MetWork's own hash is an md5 of the metadata, not of the content, so it
//! is shown as stated, never trusted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::unpack::{check_path, classify, forbidden, ArchiveError, Guard, Limits};

/// The top directory of a legacy file.
pub const TOP: &str = "metwork_plugin";
const METADATA: &str = ".metadata.json";
const FILES: &str = ".files.json";

/// What a legacy file says of itself.
#[derive(Debug, Clone, Default)]
pub struct LegacyInfo {
    pub name: String,
    pub version: String,
    pub release: String,
    pub summary: String,
    pub license: String,
    pub url: String,
    pub maintainer: String,
    pub vendor: String,
    /// MetWork's stated hash (md5 of metadata), or empty.
    pub hash: String,
    /// Files of the plugin (metadata files excluded) and their total size.
    pub files: u64,
    pub size: u64,
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
    let file = std::fs::File::open(path).map_err(ArchiveError::Io)?;
    let decoder =
        super::unpack::Decoded(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut archive = tar::Archive::new(decoder);
    if let Some(target) = target {
        std::fs::create_dir(target).map_err(|e| ArchiveError::Write(target.to_path_buf(), e))?;
    }
    let mut guard = Guard::default();
    let mut metadata: Option<BTreeMap<String, Value>> = None;
    let mut listed: Option<Vec<String>> = None;
    let mut label = None;
    let mut config = None;
    let mut info = LegacyInfo::default();
    for entry in archive.entries().map_err(classify)? {
        let mut entry = entry.map_err(classify)?;
        let raw = entry.path_bytes().into_owned();
        let full = check_path(&raw)?;
        let entry_type = entry.header().entry_type();
        if let Some(kind) = forbidden(entry_type) {
            return Err(ArchiveError::ForbiddenType { path: full, kind });
        }
        let size = entry.header().size().map_err(classify)?;
        let is_symlink = entry_type == tar::EntryType::Symlink;
        guard.admit(&full, is_symlink, size, limits)?;
        if full == TOP && entry_type == tar::EntryType::Directory {
            continue;
        }
        let Some(rel) = full.strip_prefix(&format!("{TOP}/")) else {
            return Err(ArchiveError::NotAPlugin(format!(
                "member `{full}` is outside `{TOP}/`"
            )));
        };
        let rel = rel.to_owned();
        let small = |entry: &mut tar::Entry<'_, _>| -> Result<String, ArchiveError> {
            let mut text = String::new();
            entry
                .take(1 << 20)
                .read_to_string(&mut text)
                .map_err(classify)?;
            Ok(text)
        };
        match (rel.as_str(), entry_type) {
            (METADATA, tar::EntryType::Regular) => {
                let text = small(&mut entry)?;
                metadata = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| ArchiveError::BadMeta(format!("`{METADATA}`: {e}")))?,
                );
                continue;
            }
            (FILES, tar::EntryType::Regular) => {
                let text = small(&mut entry)?;
                let list: Vec<String> = serde_json::from_str(&text)
                    .map_err(|e| ArchiveError::BadMeta(format!("`{FILES}`: {e}")))?;
                listed = Some(list);
                continue;
            }
            _ => {}
        }
        let out = target.map(|t| t.join(&rel));
        match entry_type {
            tar::EntryType::Directory => {
                if let Some(out) = out {
                    std::fs::create_dir_all(&out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let link =
                    String::from_utf8(link).map_err(|_| ArchiveError::NonUtf8Path(rel.clone()))?;
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
                        std::fs::create_dir_all(parent)
                            .map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
                    }
                    std::os::unix::fs::symlink(&link, &out)
                        .map_err(|e| ArchiveError::Write(out.clone(), e))?;
                }
            }
            _ => {
                info.files += 1;
                info.size += size;
                let executable = entry.header().mode().map_err(classify)? & 0o111 != 0;
                if rel == crate::plugin::LABEL_FILE || rel == crate::plugin::CONFIG_FILE {
                    let text = small(&mut entry)?;
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
                match out {
                    Some(out) => {
                        let mut file = open_new(&out, executable)?;
                        std::io::copy(&mut entry, &mut file).map_err(classify)?;
                    }
                    None => {
                        std::io::copy(&mut entry, &mut std::io::sink()).map_err(classify)?;
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
            let wanted = format!("{TOP}/{file}");
            if !guard.seen.contains(wanted.trim_end_matches('/')) {
                return Err(ArchiveError::MissingMember(file.to_owned()));
            }
        }
    }
    info.name = match label.as_deref().and_then(crate::plugin::Label::parse) {
        Some(label) => label.name.to_string(),
        None => text(&metadata, "name"),
    };
    if info.name.is_empty() {
        return Err(ArchiveError::BadMeta(format!(
            "no plugin name: `{TOP}/{}` is missing or invalid",
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

fn open_new(out: &Path, executable: bool) -> Result<std::fs::File, ArchiveError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ArchiveError::Write(parent.to_path_buf(), e))?;
    }
    std::fs::OpenOptions::new()
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
