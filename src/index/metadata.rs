//! Core metadata (`METADATA`, `PKG-INFO`): what a release requires, read from a PEP 658
//! metadata file, out of a wheel, or out of an sdist.

use std::io::Read;
use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::Requirement;

/// What the resolver needs from a release's metadata.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub requires_dist: Vec<Requirement>,
    pub requires_python: Option<VersionSpecifiers>,
}

/// Parses core metadata text (RFC 822 headers; the body after the first blank line is the
/// description and is not read).
pub fn parse(text: &str) -> Result<Metadata, String> {
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
                let req = Requirement::from_str(&value)
                    .map_err(|e| format!("bad `Requires-Dist: {value}`: {}", e.message))?;
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

/// The `*.dist-info/METADATA` of a wheel.
pub fn from_wheel(bytes: &[u8]) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a zip file: {e}"))?;
    let name = archive
        .file_names()
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .ok_or("no `*.dist-info/METADATA` in the wheel")?;
    let mut text = String::new();
    archive
        .by_name(&name)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    Ok(text)
}

/// The top-level `PKG-INFO` of an sdist (`.tar.gz` or `.zip`).
pub fn from_sdist(filename: &str, bytes: &[u8]) -> Result<String, String> {
    let is_top_pkg_info = |path: &str| {
        let path = path.trim_start_matches("./");
        path.ends_with("/PKG-INFO") && path.matches('/').count() == 1
    };
    if filename.ends_with(".zip") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("not a zip file: {e}"))?;
        let name = archive
            .file_names()
            .find(|n| is_top_pkg_info(n))
            .map(str::to_owned)
            .ok_or("no `PKG-INFO` in the sdist")?;
        let mut text = String::new();
        archive
            .by_name(&name)
            .map_err(|e| e.to_string())?
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        return Ok(text);
    }
    let decoder = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(decoder);
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar.gz: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("not a tar.gz: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        if is_top_pkg_info(&path) {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read `{path}`: {e}"))?;
            return Ok(text);
        }
    }
    Err("no `PKG-INFO` in the sdist".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let m = parse(
            "Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: b>=1\nRequires-Dist: c; extra == 'x'\nRequires-Python: >=3.7\n\nRequires-Dist: not-a-header\n",
        )
        .unwrap();
        assert_eq!(m.requires_dist.len(), 2);
        assert_eq!(m.requires_python.unwrap().to_string(), ">=3.7");
    }
}
