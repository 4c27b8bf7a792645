//! Core metadata (`METADATA`, `PKG-INFO`): what a release requires, read from a PEP 658
//! metadata file, out of a wheel, or out of an sdist.

use std::io::Read;
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::Requirement;

/// What the resolver needs from a release's metadata.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) requires_dist: Vec<Requirement>,
    pub(crate) requires_python: Option<VersionSpecifiers>,
}

/// Parses core metadata text (RFC 822 headers; the body after the first blank line is the
/// description and is not read).
pub(crate) fn parse(text: &str) -> Result<Metadata, String> {
    let mut requires_dist = Vec::new();
    let mut requires_python = None;
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    for (key, value) in fields {
        match key.as_str() {
            "requires-dist" => {
                let req = super::requirement::parse_requirement(&value)
                    .map_err(|e| format!("bad `Requires-Dist: {value}`: {e}"))?;
                requires_dist.push(req);
            }
            "requires-python" if !value.is_empty() => {
                requires_python = Some(
                    VersionSpecifiers::from_str(&value)
                        .map_err(|e| format!("bad `Requires-Python: {value}`: {e}"))?,
                );
            }
            _ => {}
        }
    }
    Ok(Metadata {
        requires_dist,
        requires_python,
    })
}

/// Whether core metadata says its `Requires-Dist` is `Dynamic` (metadata 2.2): an sdist's
/// `PKG-INFO` then does not promise the wheel's requirements.
pub(crate) fn dynamic_requirements(text: &str) -> bool {
    text.lines().take_while(|l| !l.is_empty()).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("dynamic")
                && v.trim().eq_ignore_ascii_case("requires-dist")
        })
    })
}

/// The most a metadata file inside an archive may weigh.
const LIMIT: u64 = 16 * 1024 * 1024;

/// Reads a member as text, refusing one larger than [`LIMIT`].
fn read_member(member: impl Read, name: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    member
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if bytes.len() as u64 > LIMIT {
        return Err(format!("`{name}` is larger than {LIMIT} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| format!("`{name}` is not UTF-8"))
}

/// The `*.dist-info/METADATA` of a wheel (read from a file: a wheel is never held whole).
pub(crate) fn from_wheel(file: impl Read + std::io::Seek) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip file: {e}"))?;
    let name = archive
        .file_names()
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .ok_or("no `*.dist-info/METADATA` in the wheel")?;
    let member = archive.by_name(&name).map_err(|e| e.to_string())?;
    read_member(member, &name)
}

/// The archive format of an sdist, from its file name: every one pip builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdistFormat {
    /// `.tar.gz`, `.tgz`
    TarGz,
    /// `.tar.bz2`
    TarBz2,
    /// `.tar.xz`
    TarXz,
    /// `.zip`
    Zip,
}

impl SdistFormat {
    /// The format a file name says, or `None` for a name that is no sdist's.
    pub(crate) fn of(filename: &str) -> Option<SdistFormat> {
        let lower = filename.to_ascii_lowercase();
        [
            (".tar.gz", SdistFormat::TarGz),
            (".tgz", SdistFormat::TarGz),
            (".tar.bz2", SdistFormat::TarBz2),
            (".tar.xz", SdistFormat::TarXz),
            (".zip", SdistFormat::Zip),
        ]
        .into_iter()
        .find_map(|(ext, format)| lower.ends_with(ext).then_some(format))
    }

    /// The tar stream of a tarred sdist, decompressed as it is read (`None` for a zip).
    pub(crate) fn tar<'a>(self, file: impl Read + 'a) -> Option<tar::Archive<Box<dyn Read + 'a>>> {
        let stream: Box<dyn Read + 'a> = match self {
            SdistFormat::TarGz => Box::new(flate2::read::GzDecoder::new(file)),
            SdistFormat::TarBz2 => Box::new(bzip2::read::BzDecoder::new(file)),
            SdistFormat::TarXz => Box::new(liblzma::read::XzDecoder::new(file)),
            SdistFormat::Zip => return None,
        };
        Some(tar::Archive::new(stream))
    }
}

/// The top-level `PKG-INFO` of an sdist (`.tar.gz`, `.tgz`, `.tar.bz2`, `.tar.xz` or `.zip`).
///
/// Before metadata 2.2, setuptools left `Requires-Dist` out of an sdist's `PKG-INFO` and wrote
/// the requirements to `NAME.egg-info/requires.txt`: when `PKG-INFO` has none and that file
/// exists, its requirements are added as `Requires-Dist` headers.
pub(crate) fn from_sdist(
    filename: &str,
    file: impl Read + std::io::Seek,
) -> Result<String, String> {
    let depth = |path: &str| path.trim_start_matches("./").matches('/').count();
    let is_pkg_info = |path: &str| path.ends_with("/PKG-INFO") && depth(path) == 1;
    let is_requires = |path: &str| path.ends_with(".egg-info/requires.txt") && depth(path) == 2;
    let mut pkg_info = None;
    let mut requires = None;
    let format =
        SdistFormat::of(filename).ok_or_else(|| format!("`{filename}` is not an sdist"))?;
    if format == SdistFormat::Zip {
        let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip file: {e}"))?;
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        for name in names {
            let wanted = is_pkg_info(&name) || is_requires(&name);
            if !wanted {
                continue;
            }
            let member = archive.by_name(&name).map_err(|e| e.to_string())?;
            let text = read_member(member, &name)?;
            if is_pkg_info(&name) {
                pkg_info = Some(text);
            } else {
                requires = Some(text);
            }
        }
    } else {
        let mut archive = format
            .tar(file)
            .ok_or_else(|| format!("`{filename}` is not a tarred sdist"))?;
        for entry in archive
            .entries()
            .map_err(|e| format!("not a compressed tar: {e}"))?
        {
            let mut entry = entry.map_err(|e| format!("not a compressed tar: {e}"))?;
            let path = entry
                .path()
                .map_err(|e| e.to_string())?
                .display()
                .to_string();
            if is_pkg_info(&path) || is_requires(&path) {
                let text = read_member(&mut entry, &path)?;
                if is_pkg_info(&path) {
                    pkg_info = Some(text);
                } else {
                    requires = Some(text);
                }
            }
        }
    }
    let pkg_info = pkg_info.ok_or("no `PKG-INFO` in the sdist")?;
    let has_requires_dist = pkg_info
        .lines()
        .take_while(|l| !l.is_empty())
        .any(|l| l.to_ascii_lowercase().starts_with("requires-dist:"));
    match requires {
        Some(requires) if !has_requires_dist => Ok(add_requires_dist(&pkg_info, &requires)),
        _ => Ok(pkg_info),
    }
}

/// `PKG-INFO` with the requirements of an egg-info `requires.txt` added as `Requires-Dist`.
fn add_requires_dist(pkg_info: &str, requires: &str) -> String {
    let mut headers = Vec::new();
    let mut marker: Option<String> = None;
    for line in requires.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (extra, condition) = section.split_once(':').unwrap_or((section, ""));
            let mut parts = Vec::new();
            if !condition.trim().is_empty() {
                parts.push(format!("({})", condition.trim()));
            }
            if !extra.trim().is_empty() {
                parts.push(format!("extra == \"{}\"", extra.trim()));
            }
            marker = (!parts.is_empty()).then(|| parts.join(" and "));
            continue;
        }
        headers.push(match (&marker, line.split_once(';')) {
            (None, _) => format!("Requires-Dist: {line}"),
            (Some(m), None) => format!("Requires-Dist: {line}; {m}"),
            (Some(m), Some((req, own))) => {
                format!("Requires-Dist: {}; ({}) and {m}", req.trim(), own.trim())
            }
        });
    }
    let (head, body) = match pkg_info.find("\n\n") {
        Some(i) => pkg_info.split_at(i + 1),
        None => (pkg_info, ""),
    };
    let mut out = head.to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for h in headers {
        out.push_str(&h);
        out.push('\n');
    }
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `PKG-INFO` of an sdist of every format pip builds, and a name that is none.
    #[test]
    fn sdist_metadata_of_every_format() {
        use std::io::Write as _;
        let pkg_info = "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n";
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(pkg_info.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "a-1.0/PKG-INFO", pkg_info.as_bytes())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let xz = xz.finish().unwrap();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("a-1.0/PKG-INFO", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(pkg_info.as_bytes()).unwrap();
        let zip = zip.finish().unwrap().into_inner();
        for (name, bytes) in [
            ("a-1.0.tar.gz", &gz),
            ("a-1.0.tgz", &gz),
            ("a-1.0.tar.bz2", &bz),
            ("a-1.0.tar.xz", &xz),
            ("a-1.0.zip", &zip),
        ] {
            let text = from_sdist(name, std::io::Cursor::new(bytes.clone())).unwrap();
            assert_eq!(text, pkg_info, "{name}");
        }
        assert!(from_sdist("a-1.0.rar", std::io::Cursor::new(gz)).is_err());
    }

    #[test]
    fn metadata() {
        let m = parse(
            "Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: b>=1\nRequires-Dist: c; extra == 'x'\nRequires-Python: >=3.7\n\nRequires-Dist: not-a-header\n",
        )
        .unwrap();
        assert_eq!(m.requires_dist.len(), 2);
        assert_eq!(m.requires_python.unwrap().to_string(), ">=3.7");
        assert!(dynamic_requirements("Name: a\nDynamic: Requires-Dist\n"));
        assert!(!dynamic_requirements("Name: a\nDynamic: Version\n"));
    }

    #[test]
    fn egg_info_requires() {
        let text = add_requires_dist(
            "Metadata-Version: 2.1\nName: a\nVersion: 1\n\nDescription\n",
            "b>=1\n\n[fast]\nc\n\n[:sys_platform == \"win32\"]\nd\n[x:python_version < \"3\"]\ne\n",
        );
        let m = parse(&text).unwrap();
        let reqs: Vec<String> = m.requires_dist.iter().map(ToString::to_string).collect();
        assert_eq!(reqs.len(), 4, "{reqs:?}");
        assert_eq!(reqs[0], "b>=1");
        assert!(reqs[1].contains("extra == 'fast'") || reqs[1].contains("extra == \"fast\""));
        assert!(text.ends_with("\nDescription\n"));
    }
}
