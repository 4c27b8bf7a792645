//! A package index for the lock tests: wheels and sdists built on the fly, served as PEP 503
//! HTML or PEP 691 JSON (with PEP 658 metadata files) by an in-process HTTP server on
//! 127.0.0.1, so that no test touches the network.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::Digest;

/// A release to publish.
#[derive(Clone, Debug)]
pub struct Release {
    pub name: String,
    pub version: String,
    pub requires: Vec<String>,
    pub requires_python: Option<String>,
    pub yanked: bool,
    /// Publish an sdist instead of a wheel.
    pub sdist: bool,
    /// The wheel's tag (default `py3-none-any`).
    pub tag: String,
    /// Bytes of incompressible data to add to the wheel (to make it big).
    pub padding: usize,
    /// Leave `Requires-Python` out of the index page (it stays in the metadata).
    pub hide_requires_python: bool,
    /// An old-style sdist: requirements in `NAME.egg-info/requires.txt`, not in `PKG-INFO`.
    pub egg_info: bool,
}

/// `name==version` requiring `requires`, as a `py3-none-any` wheel.
pub fn release(name: &str, version: &str, requires: &[&str]) -> Release {
    Release {
        name: name.to_owned(),
        version: version.to_owned(),
        requires: requires.iter().map(|r| (*r).to_owned()).collect(),
        requires_python: None,
        yanked: false,
        sdist: false,
        tag: "py3-none-any".to_owned(),
        padding: 0,
        hide_requires_python: false,
        egg_info: false,
    }
}

impl Release {
    pub fn yanked(mut self) -> Release {
        self.yanked = true;
        self
    }
    pub fn requires_python(mut self, spec: &str) -> Release {
        self.requires_python = Some(spec.to_owned());
        self
    }
    pub fn sdist(mut self) -> Release {
        self.sdist = true;
        self
    }
    pub fn tag(mut self, tag: &str) -> Release {
        self.tag = tag.to_owned();
        self
    }

    fn dist_name(&self) -> String {
        self.name.replace(['-', '.'], "_")
    }

    pub fn metadata(&self) -> String {
        let mut text = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(rp) = &self.requires_python {
            text.push_str(&format!("Requires-Python: {rp}\n"));
        }
        let mut extras: Vec<String> = Vec::new();
        for r in &self.requires {
            if let Some(i) = r.find("extra == '") {
                let extra = r[i + 10..].split('\'').next().unwrap().to_owned();
                if !extras.contains(&extra) {
                    extras.push(extra);
                }
            }
        }
        for e in extras {
            text.push_str(&format!("Provides-Extra: {e}\n"));
        }
        for r in &self.requires {
            text.push_str(&format!("Requires-Dist: {r}\n"));
        }
        text.push_str("\nA test package.\n");
        text
    }

    pub fn filename(&self) -> String {
        if self.sdist {
            format!("{}-{}.tar.gz", self.dist_name(), self.version)
        } else {
            format!("{}-{}-{}.whl", self.dist_name(), self.version, self.tag)
        }
    }

    /// The file's bytes: a wheel (zip with dist-info) or an sdist (tar.gz with PKG-INFO).
    pub fn build(&self) -> Vec<u8> {
        let dist = self.dist_name();
        if self.sdist {
            let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
            let prefix = format!("{dist}-{}", self.version);
            let mut members = vec![(
                format!("{prefix}/setup.py"),
                "from setuptools import setup\nsetup()\n".to_owned(),
            )];
            if self.egg_info {
                let pkg_info: String = self
                    .metadata()
                    .lines()
                    .filter(|l| !l.starts_with("Requires-Dist"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                members.push((format!("{prefix}/PKG-INFO"), pkg_info));
                let requires: String = self.requires.iter().map(|r| format!("{r}\n")).collect();
                members.push((format!("{prefix}/{dist}.egg-info/requires.txt"), requires));
            } else {
                members.push((format!("{prefix}/PKG-INFO"), self.metadata()));
            }
            for (path, text) in members {
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(&mut header, path, text.as_bytes()).unwrap();
            }
            return tar.into_inner().unwrap().finish().unwrap();
        }
        let info = format!("{dist}-{}.dist-info", self.version);
        let files = [
            (
                format!("{dist}/__init__.py"),
                format!("VERSION = {:?}\n", self.version),
            ),
            (format!("{info}/METADATA"), self.metadata()),
            (
                format!("{info}/WHEEL"),
                format!(
                    "Wheel-Version: 1.0\nGenerator: mfplug-tests\nRoot-Is-Purelib: true\nTag: {}\n",
                    self.tag
                ),
            ),
        ];
        let files: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .map(|(path, text)| (path, text.into_bytes()))
            .collect();
        let mut stored = Vec::new();
        if self.padding > 0 {
            // xorshift64, 8 bytes a step: fast enough for 100 MiB in a debug build.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut data: Vec<u8> = Vec::with_capacity(self.padding + 8);
            while data.len() < self.padding {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.extend_from_slice(&x.to_le_bytes());
            }
            data.truncate(self.padding);
            stored.push((format!("{dist}/data.bin"), data));
        }
        wheel_zip(&info, &files, &stored)
    }
}

/// The zip of a wheel: `files` deflated, then `stored` ones as they are, then RECORD (without
/// hashes, which installers do not need to check).
pub fn wheel_zip(info: &str, files: &[(String, Vec<u8>)], stored: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut record = String::new();
    let stored_options = options.compression_method(zip::CompressionMethod::Stored);
    let all = files
        .iter()
        .map(|f| (f, options))
        .chain(stored.iter().map(|f| (f, stored_options)));
    for ((path, data), options) in all {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(data).unwrap();
        record.push_str(&format!("{path},,\n"));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    zip.start_file(format!("{info}/RECORD"), options).unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

pub fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the server answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// PEP 503 HTML only (no metadata files, as a static dir would).
    Html,
    /// PEP 691 JSON when asked, with PEP 658 metadata files.
    Json,
    /// Every request answers this status.
    Status(u16),
    /// Project pages are not index pages.
    Garbage,
    /// HTML, but the first request of every path answers 503 (a transient failure).
    Flaky,
    /// HTML pages listing a wrong sha256 for every file (so a download shows the mismatch).
    WrongHashes,
    /// HTML pages, but every file (and metadata file) answers this status.
    FileStatus(u16),
    /// HTML pages listing the right sha256, but every file is served cut in half (a download
    /// that stopped early, its `Content-Length` the short one's).
    Truncated,
}

struct File {
    release: Release,
    bytes: Vec<u8>,
    /// The bytes' sha256, computed once (a test wheel may weigh 100 MiB).
    sha256: String,
}

impl File {
    fn new(release: Release, bytes: Vec<u8>) -> File {
        let sha256 = sha256(&bytes);
        File {
            release,
            bytes,
            sha256,
        }
    }
}

struct State {
    mode: Mode,
    projects: BTreeMap<String, Vec<File>>,
    /// Every request: path and status.
    requests: Vec<(String, u16)>,
    /// The `Authorization` header every request must carry, if any.
    auth: Option<String>,
    /// `Cache-Control: max-age` of the pages, if any.
    max_age: Option<u32>,
    /// Whether `Range` requests of files are honoured.
    ranges: bool,
}

/// The server; it stops when dropped.
pub struct Index {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

impl Index {
    pub fn start(mode: Mode, releases: &[Release]) -> Index {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let state = Arc::new(Mutex::new(State {
            mode,
            projects: BTreeMap::new(),
            requests: Vec::new(),
            auth: None,
            max_age: None,
            ranges: false,
        }));
        let mut index = Index {
            url: format!("http://127.0.0.1:{port}/simple"),
            state: Arc::clone(&state),
            server: Arc::clone(&server),
            thread: None,
        };
        for r in releases {
            index.publish(r.clone());
        }
        let thread = std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let state = Arc::clone(&state);
                // One thread per request: the client fetches in parallel.
                std::thread::spawn(move || handle(&state, request, port));
            }
        });
        index.thread = Some(thread);
        index
    }

    pub fn publish(&self, release: Release) {
        let bytes = release.build();
        let mut state = self.state.lock().unwrap();
        state
            .projects
            .entry(normalize(&release.name))
            .or_default()
            .push(File::new(release, bytes));
    }

    /// Publishes `bytes` as the file of `release` (its name, version and kind; the metadata
    /// stays the release's).
    pub fn publish_bytes(&self, release: Release, bytes: Vec<u8>) {
        let mut state = self.state.lock().unwrap();
        state
            .projects
            .entry(normalize(&release.name))
            .or_default()
            .push(File::new(release, bytes));
    }

    /// The bytes served as `filename`.
    pub fn bytes_of(&self, filename: &str) -> Vec<u8> {
        let state = self.state.lock().unwrap();
        state
            .projects
            .values()
            .flatten()
            .find(|f| f.release.filename() == filename)
            .map(|f| f.bytes.clone())
            .unwrap_or_else(|| panic!("`{filename}` is not published"))
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Requires `Authorization: Basic base64(user:password)` (given encoded) on every request.
    pub fn require_auth(&self, basic: &str) {
        self.state.lock().unwrap().auth = Some(format!("Basic {basic}"));
    }

    /// Honours `Range: bytes=...` for files, as a CDN would.
    pub fn honour_ranges(&self) {
        self.state.lock().unwrap().ranges = true;
    }

    /// Sends `Cache-Control: max-age=SECONDS` with the pages.
    pub fn set_max_age(&self, seconds: u32) {
        self.state.lock().unwrap().max_age = Some(seconds);
    }

    /// The paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.requests.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The paths requested so far, with the status they got.
    pub fn statuses(&self) -> Vec<(String, u16)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Writes every wheel into `dir` (for `pip install --find-links`).
    pub fn write_files(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let state = self.state.lock().unwrap();
        for files in state.projects.values() {
            for f in files {
                std::fs::write(dir.join(f.release.filename()), &f.bytes).unwrap();
            }
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn handle(state: &Mutex<State>, request: tiny_http::Request, port: u16) {
    let path = request.url().to_owned();
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let accept = header("Accept").unwrap_or_default();
    let if_none_match = header("If-None-Match");
    let authorization = header("Authorization");
    let range = header("Range");
    let (status, content_type, body, extra) = {
        let mut state = state.lock().unwrap();
        let (mut status, content_type, mut body) =
            if state.auth.is_some() && state.auth != authorization {
                (401, "text/html".to_owned(), b"who are you".to_vec())
            } else {
                respond(&state, &path, &accept, port)
            };
        let mut extra = Vec::new();
        if let (true, 200, Some(range)) = (state.ranges, status, &range) {
            if path.starts_with("/files/") {
                let total = body.len();
                let spec = range.trim_start_matches("bytes=");
                let (start, end) = match spec.split_once('-') {
                    Some(("", n)) => (total.saturating_sub(n.parse().unwrap()), total - 1),
                    Some((a, "")) => (a.parse().unwrap(), total - 1),
                    Some((a, b)) => (
                        a.parse().unwrap(),
                        b.parse::<usize>().unwrap().min(total - 1),
                    ),
                    None => (0, total - 1),
                };
                body = body[start..=end].to_vec();
                status = 206;
                extra.push((
                    "Content-Range".to_owned(),
                    format!("bytes {start}-{end}/{total}"),
                ));
            }
        }
        if status == 200 && path.starts_with("/simple/") {
            let etag = format!("\"{}\"", &sha256(&body)[..16]);
            if if_none_match.as_deref() == Some(etag.as_str()) {
                status = 304;
                body = Vec::new();
            }
            extra.push(("ETag".to_owned(), etag));
            if let Some(age) = state.max_age {
                extra.push(("Cache-Control".to_owned(), format!("max-age={age}")));
            }
        }
        state.requests.push((path.clone(), status));
        (status, content_type, body, extra)
    };
    let mut response = tiny_http::Response::from_data(body)
        .with_status_code(status)
        .with_header(
            tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()).unwrap(),
        );
    for (name, value) in extra {
        response = response
            .with_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
    }
    let _ = request.respond(response);
}

fn respond(state: &State, path: &str, accept: &str, port: u16) -> (u16, String, Vec<u8>) {
    let html = "text/html".to_owned();
    if let Mode::Status(code) = state.mode {
        return (code, html, b"no".to_vec());
    }
    if state.mode == Mode::Flaky && !state.requests.iter().any(|(p, _)| p == path) {
        return (503, html, b"try again".to_vec());
    }
    let json = state.mode == Mode::Json && accept.contains("application/vnd.pypi.simple.v1+json");
    if path == "/simple/" {
        let mut text = String::from("<html><body>\n");
        for name in state.projects.keys() {
            text.push_str(&format!("<a href=\"/simple/{name}/\">{name}</a>\n"));
        }
        text.push_str("</body></html>\n");
        return (200, html, text.into_bytes());
    }
    if let Some(name) = path
        .strip_prefix("/simple/")
        .and_then(|p| p.strip_suffix('/'))
    {
        let Some(files) = state.projects.get(name) else {
            return (404, html, b"not found".to_vec());
        };
        if state.mode == Mode::Garbage {
            return (
                200,
                html,
                b"Service temporarily replaced by a teapot\n".to_vec(),
            );
        }
        let hash = |f: &File| {
            if state.mode == Mode::WrongHashes {
                "0".repeat(64)
            } else {
                f.sha256.clone()
            }
        };
        if json {
            let files: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    let mut v = serde_json::json!({
                        "filename": f.release.filename(),
                        "url": format!("http://127.0.0.1:{port}/files/{}", f.release.filename()),
                        "hashes": {"sha256": hash(f)},
                        "yanked": f.release.yanked,
                    });
                    if let (Some(rp), false) =
                        (&f.release.requires_python, f.release.hide_requires_python)
                    {
                        v["requires-python"] = rp.clone().into();
                    }
                    if !f.release.sdist {
                        v["core-metadata"] =
                            serde_json::json!({"sha256": sha256(f.release.metadata().as_bytes())});
                    }
                    v
                })
                .collect();
            let page =
                serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files});
            return (
                200,
                "application/vnd.pypi.simple.v1+json".to_owned(),
                page.to_string().into_bytes(),
            );
        }
        let mut text = format!("<!DOCTYPE html>\n<html><body><h1>Links for {name}</h1>\n");
        for f in files {
            let mut attrs = String::new();
            if let (Some(rp), false) = (&f.release.requires_python, f.release.hide_requires_python)
            {
                attrs.push_str(&format!(
                    " data-requires-python=\"{}\"",
                    rp.replace('<', "&lt;").replace('>', "&gt;")
                ));
            }
            if f.release.yanked {
                attrs.push_str(" data-yanked=\"\"");
            }
            text.push_str(&format!(
                "<a href=\"../../files/{0}#sha256={1}\"{attrs}>{0}</a><br/>\n",
                f.release.filename(),
                hash(f)
            ));
        }
        text.push_str("</body></html>\n");
        return (200, html, text.into_bytes());
    }
    if let (Mode::FileStatus(code), true) = (&state.mode, path.starts_with("/files/")) {
        return (*code, html, Vec::new());
    }
    if let Some(filename) = path.strip_prefix("/files/") {
        for files in state.projects.values() {
            for f in files {
                let name = f.release.filename();
                if filename == name {
                    let bytes = if state.mode == Mode::Truncated {
                        f.bytes[..f.bytes.len() / 2].to_vec()
                    } else {
                        f.bytes.clone()
                    };
                    return (200, "application/octet-stream".to_owned(), bytes);
                }
                if filename == format!("{name}.metadata") && state.mode == Mode::Json {
                    return (
                        200,
                        "text/plain".to_owned(),
                        f.release.metadata().into_bytes(),
                    );
                }
            }
        }
    }
    (404, html, b"not found".to_vec())
}
