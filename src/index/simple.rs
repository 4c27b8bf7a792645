//! The simple repository API, read: a project's page as PEP 691 JSON or PEP 503 HTML (with the
//! PEP 592 yanked, PEP 658/714 metadata and `data-requires-python` attributes), and the names
//! and versions that distribution file names carry.

use pep440_rs::Version;
use pep508_rs::PackageName;
use serde::Deserialize;

/// Where a file can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Url(String),
    Path(std::path::PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Url(url) => f.write_str(&super::config::strip_credentials(url)),
            Location::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One distribution file of a project, as the index lists it.
#[derive(Debug, Clone)]
pub(crate) struct DistFile {
    pub(crate) filename: String,
    pub(crate) location: Location,
    /// The sha256 the index gives, if any.
    pub(crate) sha256: Option<String>,
    pub(crate) requires_python: Option<String>,
    pub(crate) yanked: bool,
    /// PEP 658: the metadata file exists (`FILE.metadata`), with its sha256 when given.
    pub(crate) metadata: Option<Option<String>>,
    pub(crate) version: Version,
    pub(crate) is_wheel: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ParseError(pub(crate) String);

/// The extensions of an sdist (or a legacy source archive).
const SDIST_EXTENSIONS: [&str; 5] = [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz"];

/// A distribution file name cut at its extension: the one parser of `NAME-VER-...whl` and
/// `NAME-VER.tar.gz` names that [`parse_filename`] and [`file_identity`] share.
enum Cut<'a> {
    /// A wheel: its first two `-` parts, and how many parts it has (5 or 6 when valid).
    Wheel {
        dist: &'a str,
        version: &'a str,
        parts: usize,
    },
    /// An sdist: the name without its extension (`NAME-VER`, where NAME may hold `-`).
    Sdist { stem: &'a str },
}

/// Cuts `filename` (see [`Cut`]); `None` for a file that is no distribution.
fn cut(filename: &str) -> Option<Cut<'_>> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let mut parts = stem.split('-');
        let dist = parts.next()?;
        let version = parts.next()?;
        return Some(Cut::Wheel {
            dist,
            version,
            parts: stem.split('-').count(),
        });
    }
    let stem = SDIST_EXTENSIONS
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    Some(Cut::Sdist { stem })
}

/// The version carried by a distribution file name of project `name`, and whether it is a
/// wheel; `None` for files that are not distributions of this project.
pub(crate) fn parse_filename(name: &PackageName, filename: &str) -> Option<(Version, bool)> {
    match cut(filename)? {
        Cut::Wheel {
            dist,
            version,
            parts,
        } => {
            if parts < 5 || normalize(dist) != name.as_ref() {
                return None;
            }
            version.parse().ok().map(|v| (v, true))
        }
        Cut::Sdist { stem } => {
            // Legacy sdist names may hold `-` in the project name: split where the prefix is
            // the name.
            for (i, _) in stem.match_indices('-') {
                let (Some(dist), Some(version)) = (stem.get(..i), stem.get(i + 1..)) else {
                    continue;
                };
                if normalize(dist) == name.as_ref() {
                    return version.parse().ok().map(|v| (v, false));
                }
            }
            None
        }
    }
}

/// The normalised name and the version of a distribution file name (wheel or sdist), for a
/// file whose project is not known (an sdist's name is split at its last `-`).
pub(crate) fn file_identity(filename: &str) -> Option<(String, String)> {
    let (name, version) = match cut(filename)? {
        Cut::Wheel { dist, version, .. } => (dist, version),
        Cut::Sdist { stem } => stem.rsplit_once('-')?,
    };
    Some((normalize(name), version.to_owned()))
}

/// `text[from..to]`, or `""` where that is not a range of whole characters (never the case
/// for the offsets of ASCII bytes found in the same text, which are all this module uses).
fn part(text: &str, from: usize, to: usize) -> &str {
    text.get(from..to).unwrap_or_default()
}

/// `text[from..]`, or `""` (see [`part`]).
fn tail(text: &str, from: usize) -> &str {
    text.get(from..).unwrap_or_default()
}

/// PEP 503 normalisation.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(default, rename = "core-metadata")]
    core_metadata: serde_json::Value,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: serde_json::Value,
}

/// The metadata flag of PEP 691/714: `true`, or a dict of hashes.
fn json_metadata(value: &serde_json::Value) -> Option<Option<String>> {
    match value {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(map) => Some(
            map.get("sha256")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        ),
        _ => None,
    }
}

/// Parses a PEP 691 JSON page.
pub(crate) fn parse_json(
    name: &PackageName,
    base: &url::Url,
    body: &[u8],
) -> Result<Vec<DistFile>, ParseError> {
    let page: JsonPage = serde_json::from_slice(body)
        .map_err(|e| ParseError(format!("not a PEP 691 JSON page: {e}")))?;
    let mut files = Vec::new();
    for f in page.files {
        let Some((version, is_wheel)) = parse_filename(name, &f.filename) else {
            continue;
        };
        let url = base
            .join(&f.url)
            .map_err(|e| ParseError(format!("bad URL `{}`: {e}", f.url)))?;
        let yanked = match &f.yanked {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(_) => true,
            _ => false,
        };
        let metadata = json_metadata(&f.core_metadata).or(json_metadata(&f.dist_info_metadata));
        files.push(DistFile {
            filename: f.filename,
            location: Location::Url(strip_fragment(url)),
            sha256: f.hashes.get("sha256").cloned(),
            requires_python: f.requires_python.filter(|s| !s.trim().is_empty()),
            yanked,
            metadata,
            version,
            is_wheel,
        });
    }
    Ok(files)
}

fn strip_fragment(mut url: url::Url) -> String {
    url.set_fragment(None);
    url.to_string()
}

/// Parses a PEP 503 HTML page: every `<a>` with its attributes.
pub(crate) fn parse_html(
    name: &PackageName,
    base: &url::Url,
    body: &[u8],
) -> Result<Vec<DistFile>, ParseError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ParseError("the page is not UTF-8 text".to_owned()))?;
    let lower = text.to_ascii_lowercase();
    if !lower.contains("<a") && !lower.contains("<html") && !lower.contains("<!doctype") {
        return Err(ParseError(
            "not a PEP 503 HTML page: no `<a>` links and no `<html>`".to_owned(),
        ));
    }
    let base = html_base(text, &lower, base);
    let mut files = Vec::new();
    let mut pos = 0;
    // `lower` is `text` with ASCII letters lowered: the same bytes at the same offsets.
    while let Some(found) = tail(&lower, pos).find("<a") {
        let start = pos + found;
        let after = tail(&lower, start + 2).chars().next();
        if !after.is_some_and(|c| c.is_whitespace() || c == '>') {
            pos = start + 2;
            continue;
        }
        let Some(tag_end) = tail(&lower, start).find('>').map(|e| start + e) else {
            break;
        };
        let Some(close) = tail(&lower, tag_end).find("</a>").map(|e| tag_end + e) else {
            break;
        };
        let attrs = attributes(part(text, start + 2, tag_end));
        let filename = unescape(part(text, tag_end + 1, close).trim());
        pos = close + 4;
        files.extend(link_file(name, &base, &attrs, filename)?);
    }
    Ok(files)
}

/// What relative links of a page are relative to: its `<base href>` when it has one.
fn html_base(text: &str, lower: &str, base: &url::Url) -> url::Url {
    let Some(start) = lower.find("<base ") else {
        return base.clone();
    };
    let end = tail(lower, start)
        .find('>')
        .map(|e| start + e)
        .unwrap_or(text.len());
    attributes(part(text, start + 5, end))
        .into_iter()
        .find(|(k, _)| k == "href")
        .and_then(|(_, href)| base.join(&href).ok())
        .unwrap_or_else(|| base.clone())
}

/// The file one `<a>` links to (its text the file name, else the URL's last segment), or
/// `None` for a link without `href` or to a file not of `name`.
fn link_file(
    name: &PackageName,
    base: &url::Url,
    attrs: &[(String, String)],
    filename: String,
) -> Result<Option<DistFile>, ParseError> {
    let get = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let Some(href) = get("href") else {
        return Ok(None);
    };
    let url = base
        .join(&href)
        .map_err(|e| ParseError(format!("bad link `{href}`: {e}")))?;
    let filename = if filename.is_empty() {
        url.path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default()
            .to_owned()
    } else {
        filename
    };
    let Some((version, is_wheel)) = parse_filename(name, &filename) else {
        return Ok(None);
    };
    let sha256 = url
        .fragment()
        .and_then(|f| f.strip_prefix("sha256="))
        .map(str::to_owned);
    let metadata = get("data-core-metadata")
        .or_else(|| get("data-dist-info-metadata"))
        .filter(|v| v != "false")
        .map(|v| v.strip_prefix("sha256=").map(str::to_owned));
    Ok(Some(DistFile {
        filename,
        location: Location::Url(strip_fragment(url)),
        sha256,
        requires_python: get("data-requires-python").filter(|s| !s.trim().is_empty()),
        yanked: get("data-yanked").is_some(),
        metadata,
        version,
        is_wheel,
    }))
}

/// The attributes of a tag's inside, names lower-cased, values unescaped.
fn attributes(inside: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = inside.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let key: String = chars[start..i].iter().collect::<String>().to_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            let value: String = if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                let s = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                let v = chars[s..i].iter().collect();
                i += 1;
                v
            } else {
                let s = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                chars[s..i].iter().collect()
            };
            out.push((key, unescape(&value)));
        } else {
            out.push((key, String::new()));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        // `after` follows the `&`.
        let Some((entity, next)) = after.split_once(';').filter(|(e, _)| e.len() < 9) else {
            out.push('&');
            rest = after;
            continue;
        };
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = next;
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_files() {
        assert_eq!(normalize("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(
            file_identity("foo_bar-1.0-py3-none-any.whl"),
            Some(("foo-bar".into(), "1.0".into()))
        );
        assert_eq!(
            file_identity("foo-bar-1.0.tar.gz"),
            Some(("foo-bar".into(), "1.0".into()))
        );
        assert_eq!(file_identity("readme.txt"), None);
    }

    #[test]
    fn html_page() {
        let name: PackageName = "foo-bar".parse().unwrap();
        let base = url::Url::parse("http://h/simple/foo-bar/").unwrap();
        let page = br#"<!DOCTYPE html><html><body>
<a href="../../files/foo_bar-1.0-py3-none-any.whl#sha256=abc" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256=def">foo_bar-1.0-py3-none-any.whl</a>
<a href="/files/Foo.Bar-1.1rc1.tar.gz" data-yanked="">Foo.Bar-1.1rc1.tar.gz</a>
<a href="/files/other-1.0.tar.gz">other-1.0.tar.gz</a>
</body></html>"#;
        let files = parse_html(&name, &base, page).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0].location,
            Location::Url("http://h/files/foo_bar-1.0-py3-none-any.whl".into())
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abc"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.7"));
        assert_eq!(files[0].metadata, Some(Some("def".into())));
        assert!(files[1].yanked && !files[1].is_wheel);
        assert_eq!(files[1].version.to_string(), "1.1rc1");
    }

    /// Multi-byte characters around every marker the reader looks for, entities cut short,
    /// tags left open: each page gives files or an error, never a panic.
    #[test]
    fn hostile_html_pages_do_not_panic() {
        let name: PackageName = "foo".parse().unwrap();
        let base = url::Url::parse("http://h/simple/foo/").unwrap();
        let pages: [&str; 10] = [
            "<a href=\"é\">foo-1.0.tar.gzé&#x1F600;&é;&</a>",
            "<base é><a href=x>foo-1.0.tar.gz</a>",
            "<html><a",
            "<html><aé",
            "<a\u{3000}href=\"/f/foo-1.0.tar.gz\">foo-1.0.tar.gz</a>",
            "<a href=\"/f/foo-1.0.tar.gz\">&#xFFFFFFFF;&#99999999999;&amp&lt;é</a>",
            "<a href='/f/foo-é.tar.gz'>foo-é.tar.gz</a><a href=/f/foo-1.0-é-é-é.whl>x</a>",
            "<html><base href=\"\u{301}\"></html>",
            "<a href=\"/f/foo-1.0.tar.gz\">",
            "<!doctype html>\u{feff}<a href=\"/f/é-1.0.tar.gz\">é-1.0.tar.gz</a>",
        ];
        for page in pages {
            let _ = parse_html(&name, &base, page.as_bytes());
        }
        assert_eq!(unescape("a&#x41;&é;&"), "aA&é;&");
        assert_eq!(parse_filename(&name, "foo-é.tar.gz"), None);
        assert_eq!(parse_filename(&name, "é-1.0.tar.gz"), None);
    }

    #[test]
    fn json_page() {
        let name: PackageName = "foo".parse().unwrap();
        let base = url::Url::parse("http://h/simple/foo/").unwrap();
        let page = br#"{"meta":{"api-version":"1.0"},"name":"foo","files":[
{"filename":"foo-1.0-py3-none-any.whl","url":"/f/foo-1.0-py3-none-any.whl","hashes":{"sha256":"aa"},"core-metadata":{"sha256":"bb"},"yanked":"broken"}]}"#;
        let files = parse_json(&name, &base, page).unwrap();
        assert_eq!(files[0].metadata, Some(Some("bb".into())));
        assert!(files[0].yanked);
        assert!(parse_json(&name, &base, b"<html>").is_err());
    }
}
