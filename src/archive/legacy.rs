//! Legacy MetWork `.plugin` files: a tar.gz of `metwork_plugin/` with `.metadata.json` and
//! `.files.json` beside the plugin's files, the name in `.layerapi2_label`.
//!
//! They are read with the same refusals as format 1 (paths, types, symlinks, sizes); what can
//! be verified is that every file `.files.json` lists is there and nothing lies outside
//! `metwork_plugin/`. MetWork's own hash is an md5 of five metadata values, not of the
//! content: it is computed as mfplugin does and shown, never trusted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::unpack::{
    admit_member, check_inside, create_file, create_target, is_metadata_path, label_name,
    make_parent, member_kind, read_small, symlink_target, write_dir, write_symlink, ArchiveError,
    Decoded, EntryKind, Guard, Limits, TarMember, TarReader,
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
    /// MetWork's plugin hash (the md5 of five metadata values, as mfplugin computes it), or
    /// empty when the file has no `.metadata.json`.
    pub(crate) hash: String,
    /// Files of the plugin (metadata files excluded) and their total size.
    pub files: u64,
    pub size: u64,
    /// Symlinks that lead outside the plugin: `path -> target`, sorted.
    pub external_symlinks: Vec<String>,
}

impl LegacyInfo {
    /// Its name, version, release and describing fields, as a release starts from them.
    pub(crate) fn about(&self) -> super::pack::MetaBase {
        super::pack::MetaBase {
            name: self.name.clone(),
            version: self.version.clone(),
            release: self.release.clone(),
            summary: self.summary.clone(),
            license: self.license.clone(),
            maintainer: self.maintainer.clone(),
            vendor: self.vendor.clone(),
            url: self.url.clone(),
        }
    }
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
    create_target(target)?;
    let mut pass = LegacyPass::new(limits, target);
    while let Some(member) = tar.next_member(limits)? {
        pass.member(&mut tar, &member)?;
    }
    pass.finish()
}

/// What [`read`] gathers in its pass over the members.
struct LegacyPass<'a> {
    limits: &'a Limits,
    target: Option<&'a Path>,
    guard: Guard,
    /// `.metadata.json`, parsed.
    metadata: Option<BTreeMap<String, Value>>,
    /// The paths `.files.json` lists.
    listed: Option<Vec<String>>,
    /// The texts of `.layerapi2_label` and `config.ini`.
    label: Option<String>,
    config: Option<String>,
    info: LegacyInfo,
    buf: Vec<u8>,
}

impl<'a> LegacyPass<'a> {
    /// A pass that has seen no member yet.
    fn new(limits: &'a Limits, target: Option<&'a Path>) -> Self {
        LegacyPass {
            limits,
            target,
            guard: Guard::default(),
            metadata: None,
            listed: None,
            label: None,
            config: None,
            info: LegacyInfo::default(),
            buf: vec![0u8; 256 * 1024],
        }
    }

    /// Checks one member and, with a target, extracts it there; `.metadata.json` and
    /// `.files.json` are read, not extracted.
    fn member<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        member: &TarMember,
    ) -> Result<(), ArchiveError> {
        let Some((rel, kind, link)) = self.admit(member)? else {
            return Ok(());
        };
        if kind == EntryKind::File && self.read_metadata(tar, member, &rel)? {
            return Ok(());
        }
        let out = self.target.map(|t| t.join(&rel));
        match kind {
            EntryKind::Dir => {
                if let Some(out) = out {
                    write_dir(&out)?;
                }
            }
            EntryKind::Symlink => {
                check_inside(&rel, &link)?;
                self.info.files += 1;
                if let Some(out) = out {
                    write_symlink(&link, &out)?;
                }
            }
            EntryKind::File => self.file(tar, member, &rel, out.as_deref())?,
        }
        Ok(())
    }

    /// Checks a member's path, type and symlink target and admits it into the guard: gives
    /// its path below `metwork_plugin/`, its kind and its target (empty but for a symlink);
    /// `None` for `metwork_plugin/` itself.
    fn admit(
        &mut self,
        member: &TarMember,
    ) -> Result<Option<(String, EntryKind, String)>, ArchiveError> {
        let (full, kind) = member_kind(member, self.limits)?;
        if full == TOP && kind == EntryKind::Dir {
            return Ok(None);
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
        let link = symlink_target(member, kind, &rel, self.limits, || {
            ArchiveError::NonUtf8Path(rel.clone())
        })?;
        admit_member(&mut self.guard, &rel, kind, &link, member.size, self.limits)?;
        Ok(Some((rel, kind, link)))
    }

    /// Reads the file member `rel` when it is `.metadata.json` or `.files.json`, bounded;
    /// gives whether it was one of them.
    fn read_metadata<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        member: &TarMember,
        rel: &str,
    ) -> Result<bool, ArchiveError> {
        match rel {
            METADATA => {
                let text = read_small(tar, member, self.limits.max_meta, METADATA)?;
                self.metadata = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| ArchiveError::BadMeta(format!("`{METADATA}`: {e}")))?,
                );
                Ok(true)
            }
            FILES => {
                let text = read_small(tar, member, self.limits.max_record, FILES)?;
                let list: Vec<String> = serde_json::from_str(&text)
                    .map_err(|e| ArchiveError::BadMeta(format!("`{FILES}`: {e}")))?;
                self.listed = Some(list);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A file member of the plugin, counted: the label and `config.ini` read whole (bounded)
    /// and kept, the others streamed; written to `out` with a target.
    fn file<R: Read>(
        &mut self,
        tar: &mut TarReader<R>,
        member: &TarMember,
        rel: &str,
        out: Option<&Path>,
    ) -> Result<(), ArchiveError> {
        self.info.files += 1;
        self.info.size += member.size;
        let executable = member.mode & 0o111 != 0;
        if rel == crate::plugin::LABEL_FILE || rel == crate::plugin::CONFIG_FILE {
            let text = read_small(tar, member, self.limits.max_meta, rel)?;
            if let Some(out) = out {
                write_file(out, text.as_bytes(), executable)?;
            }
            if rel == crate::plugin::LABEL_FILE {
                self.label = Some(text);
            } else {
                self.config = Some(text);
            }
            return Ok(());
        }
        let mut file = match out {
            Some(out) => Some(open_new(out, executable)?),
            None => None,
        };
        loop {
            let n = tar.read_data(&mut self.buf)?;
            if n == 0 {
                break;
            }
            if let (Some(file), Some(out)) = (file.as_mut(), out) {
                std::io::Write::write_all(file, self.buf.get(..n).unwrap_or_default())
                    .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))?;
            }
        }
        Ok(())
    }

    /// After the last member: `.metadata.json` was there, so was every file `.files.json`
    /// lists, the symlinks resolve; the name and the fields come from the label, the metadata
    /// and `config.ini`.
    fn finish(self) -> Result<LegacyInfo, ArchiveError> {
        let metadata = self.metadata.ok_or_else(|| {
            ArchiveError::NotAPlugin(format!(
                "`{TOP}/{METADATA}` is missing: not a MetWork plugin file"
            ))
        })?;
        if let Some(list) = &self.listed {
            check_listed(list, &self.guard)?;
        }
        let mut info = self.info;
        info.external_symlinks = self.guard.external_symlinks()?;
        info.name = plugin_name(&metadata, self.label.as_deref())?;
        fill_fields(&mut info, &metadata, self.config.as_deref());
        Ok(info)
    }
}

/// Every file `.files.json` lists (`./` and `metwork_plugin/` prefixes dropped) but the
/// metadata files is a member.
fn check_listed(list: &[String], guard: &Guard) -> Result<(), ArchiveError> {
    for file in list {
        let file = file.trim_start_matches("./");
        let file = file.strip_prefix(&format!("{TOP}/")).unwrap_or(file);
        let wanted = file.trim_end_matches('/');
        if wanted != METADATA && wanted != FILES && !guard.contains(wanted) {
            return Err(ArchiveError::MissingMember(file.to_owned()));
        }
    }
    Ok(())
}

/// The plugin's name: the label's when there is one, else `.metadata.json`'s (which must be
/// a valid name when stated at all); one of them must give it.
fn plugin_name(
    metadata: &BTreeMap<String, Value>,
    label: Option<&str>,
) -> Result<String, ArchiveError> {
    let stated = text(metadata, "name");
    if !stated.is_empty() {
        crate::plugin::PluginName::parse(&stated).map_err(|e| ArchiveError::BadName {
            source_file: format!("{TOP}/{METADATA}"),
            why: e.to_string(),
        })?;
    }
    let name = match label {
        Some(label) => label_name(label, &format!("{TOP}/{}", crate::plugin::LABEL_FILE))?,
        None => stated,
    };
    if name.is_empty() {
        return Err(ArchiveError::BadMeta(format!(
            "no plugin name: `{TOP}/{}` is missing",
            crate::plugin::LABEL_FILE
        )));
    }
    Ok(name)
}

/// The fields of `info` besides the name and the counts: each from `.metadata.json`, else
/// from `config.ini`'s `[general]` (`_version`, ...); the release is `1` when neither says.
fn fill_fields(info: &mut LegacyInfo, metadata: &BTreeMap<String, Value>, config: Option<&str>) {
    let general = config
        .map(|c| crate::config::ini::Document::parse(c).0)
        .unwrap_or_default();
    let pick = |key: &str, ini_key: &str| {
        let v = text(metadata, key);
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
    // MetWork writes the maintainer as `packager`.
    info.maintainer = match text(metadata, "packager") {
        packager if !packager.is_empty() => packager,
        _ => pick("maintainer", "_maintainer"),
    };
    info.vendor = pick("vendor", "_vendor");
    info.hash = if metadata.is_empty() {
        String::new()
    } else {
        // mfplugin's `get_plugin_hash`: each value as stated, `unknown` when missing.
        let stated = |key: &str| match metadata.get(key) {
            None => "unknown".to_owned(),
            Some(_) => text(metadata, key),
        };
        super::metwork::metwork_hash(
            &stated("build_host"),
            &stated("build_date"),
            &stated("size"),
            &stated("version"),
            &stated("release"),
        )
    };
}

/// Creates an extracted file, which must be new, and its parent dirs.
fn open_new(out: &Path, executable: bool) -> Result<fs_err::File, ArchiveError> {
    make_parent(out)?;
    create_file(out, executable)
}

/// Extracts a file read whole: `bytes` written to a new `out`.
fn write_file(out: &Path, bytes: &[u8], executable: bool) -> Result<(), ArchiveError> {
    let mut file = open_new(out, executable)?;
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|e| ArchiveError::Write(out.to_path_buf(), e))
}
