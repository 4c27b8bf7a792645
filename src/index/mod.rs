//! The package index client: project pages (PEP 691 JSON when offered, PEP 503 HTML
//! otherwise), core metadata (PEP 658/714 files, else out of the wheel, else the sdist's
//! `PKG-INFO`), downloads verified by hash, `--find-links` dirs, and an HTTP cache honouring
//! `ETag`, `Last-Modified` and `Cache-Control` in `$XDG_CACHE_HOME/mfplug`.
//!
//! Everything is memoised per run and can be prefetched on a pool of threads, so that the
//! resolver never waits for one package at a time.

pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod metadata;
pub(crate) mod requirement;
pub(crate) mod simple;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pep508_rs::PackageName;

use crate::fsx::{sha256_hex, AtomicFile, HashReader};

pub(crate) use metadata::Metadata;
pub(crate) use simple::{DistFile, Location};

/// The `Accept` header of PEP 691: JSON preferred, HTML accepted.
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// How many requests run at once.
const WORKERS: usize = 16;
/// The most a project page may weigh (the largest on PyPI are a few MiB).
const PAGE_LIMIT: u64 = 256 * 1024 * 1024;
/// The most a core metadata file may weigh.
const METADATA_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexError {
    #[error("cannot reach `{url}`")]
    Unreachable {
        url: String,
        #[source]
        source: Box<ureq::Transport>,
    },
    #[error("`{url}` answered {status} {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("`{url}` answered something that is not a package index page")]
    Garbage {
        url: String,
        #[source]
        source: simple::ParseError,
    },
    #[error("cannot read the response of `{url}`")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("package `{name}` is not on the index")]
    UnknownPackage { name: String },
    #[error(
        "hash mismatch for `{url}`: the index says sha256 {expected}, the download is {actual}"
    )]
    HashMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("`{url}` is not in the cache, and `--offline` forbids the network")]
    Offline { url: String },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad metadata in `{file}`: {reason}")]
    Metadata { file: String, reason: String },
    #[error("`{url}` answered `304 Not Modified` to a request that sent no validator")]
    NotModified { url: String },
    #[error("`{url}` sent more than {limit} bytes")]
    TooBig { url: String, limit: u64 },
}

impl IndexError {
    /// What to do about it, for a command that fetches files (`build`).
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            IndexError::Status {
                status: 401 | 403, ..
            } => "the index wants credentials: put them in the URL (`https://user:token@host/...`) or in `~/.netrc`",
            IndexError::HashMismatch { .. } => {
                "the index serves other bytes than it lists: a broken mirror or a proxy in the way; nothing was kept"
            }
            IndexError::NotModified { .. } => {
                "the index or a proxy in the way answers `304` to plain requests: check the proxy"
            }
            IndexError::Offline { .. } => "run the command once without `--offline` to fill the cache",
            IndexError::Io { .. } => "check the path, its permissions and the free space of its disk",
            _ => "check that the index is up and its URL right; `--offline` uses only what is vendored or cached",
        }
    }
}

type Shared<T> = Arc<OnceLock<Result<Arc<T>, Arc<IndexError>>>>;
pub(crate) use crate::pool::Job;

/// How the client is set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Index URLs, primary first (credentials allowed in them).
    pub(crate) indexes: Vec<String>,
    pub(crate) find_links: Vec<PathBuf>,
    /// `$XDG_CACHE_HOME/mfplug`.
    pub(crate) cache_dir: PathBuf,
    pub(crate) offline: bool,
    /// The text of `~/.netrc`, if any.
    pub(crate) netrc: Option<String>,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    options: Options,
    pages: Mutex<HashMap<String, Shared<Vec<DistFile>>>>,
    metadata: Mutex<HashMap<String, Shared<Metadata>>>,
    hashes: Mutex<HashMap<String, Shared<String>>>,
    requests: AtomicUsize,
    jobs: crate::pool::Background,
}

/// A response body with what the caller needs to interpret it.
struct Body {
    bytes: Vec<u8>,
    content_type: String,
    url: String,
}

/// A downloaded file, checked: where it is and its sha256.
#[derive(Debug, Clone)]
pub(crate) struct Downloaded {
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
}

/// A mutex's guard, also after a thread panicked holding it: the maps it guards are memos
/// whose entries are whole or absent, never half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sha256 of a file, streamed.
fn hash_file(path: &Path) -> Result<String, IndexError> {
    crate::fsx::sha256_file(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn open(path: &Path) -> Result<fs_err::File, IndexError> {
    fs_err::File::open(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A text file of at most `limit` bytes.
fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    let file =
        fs_err::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut bytes)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("`{}` is larger than {limit} bytes", path.display()));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())
}

/// A response body of at most `limit` bytes.
fn read_limited(
    response: Box<ureq::Response>,
    url: &str,
    limit: u64,
) -> Result<Vec<u8>, IndexError> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(response.into_reader(), limit + 1),
        &mut bytes,
    )
    .map_err(|source| IndexError::Read {
        url: config::strip_credentials(url),
        source,
    })?;
    if bytes.len() as u64 > limit {
        return Err(IndexError::TooBig {
            url: config::strip_credentials(url),
            limit,
        });
    }
    Ok(bytes)
}

impl Client {
    pub(crate) fn new(options: Options) -> Arc<Client> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(60))
            .max_idle_connections_per_host(WORKERS)
            .user_agent(concat!("mfplug/", env!("CARGO_PKG_VERSION")))
            .build();
        Arc::new(Client {
            agent,
            options,
            pages: Mutex::default(),
            metadata: Mutex::default(),
            hashes: Mutex::default(),
            requests: AtomicUsize::new(0),
            jobs: crate::pool::Background::new(WORKERS),
        })
    }

    /// How many HTTP requests went out so far.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Runs `job` on the pool.
    pub(crate) fn spawn(self: &Arc<Self>, job: Job) {
        self.jobs.spawn(job);
    }

    /// Fetches a project's page in the background.
    pub(crate) fn prefetch_project(self: &Arc<Self>, name: &PackageName) {
        let key = name.to_string();
        if lock(&self.pages).contains_key(&key) {
            return;
        }
        let client = Arc::clone(self);
        let name = name.clone();
        self.spawn(Box::new(move || {
            let _ = client.project(&name);
        }));
    }

    /// Computes the sha256 of files in the background (downloading those the index gives no
    /// hash for).
    pub(crate) fn prefetch_hash(self: &Arc<Self>, file: &DistFile) {
        if file.sha256.is_some() {
            return;
        }
        let client = Arc::clone(self);
        let file = file.clone();
        self.spawn(Box::new(move || {
            let _ = client.sha256(&file);
        }));
    }

    /// Every distribution file of a project, from every index and `--find-links` dir.
    pub(crate) fn project(
        &self,
        name: &PackageName,
    ) -> Result<Arc<Vec<DistFile>>, Arc<IndexError>> {
        let cell = {
            let mut pages = lock(&self.pages);
            Arc::clone(pages.entry(name.to_string()).or_default())
        };
        cell.get_or_init(|| self.fetch_project(name).map(Arc::new).map_err(Arc::new))
            .clone()
    }

    fn fetch_project(&self, name: &PackageName) -> Result<Vec<DistFile>, IndexError> {
        let mut files = Vec::new();
        let mut found = false;
        for index in &self.options.indexes {
            let url = format!("{}/{}/", index.trim_end_matches('/'), name);
            match self.get_page(&url) {
                Ok(body) => {
                    found = true;
                    let base = url::Url::parse(&body.url).map_err(|e| IndexError::Garbage {
                        url: body.url.clone(),
                        source: simple::ParseError(e.to_string()),
                    })?;
                    let parsed = if body.content_type.contains("json") {
                        simple::parse_json(name, &base, &body.bytes)
                    } else {
                        simple::parse_html(name, &base, &body.bytes)
                    };
                    files.extend(parsed.map_err(|source| IndexError::Garbage {
                        url: config::strip_credentials(&url),
                        source,
                    })?);
                }
                Err(IndexError::Status { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for dir in &self.options.find_links {
            let text = dir.to_string_lossy();
            if text.starts_with("http://") || text.starts_with("https://") {
                // A page of links to distribution files, as pip's `--find-links URL`.
                let body = self.get_page(&text)?;
                let base = url::Url::parse(&body.url).map_err(|e| IndexError::Garbage {
                    url: body.url.clone(),
                    source: simple::ParseError(e.to_string()),
                })?;
                let listed = simple::parse_html(name, &base, &body.bytes).map_err(|source| {
                    IndexError::Garbage {
                        url: config::strip_credentials(&text),
                        source,
                    }
                })?;
                found |= !listed.is_empty();
                files.extend(listed);
                continue;
            }
            let entries = fs_err::read_dir(dir).map_err(|source| IndexError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let filename = entry.file_name().to_string_lossy().into_owned();
                if let Some((version, is_wheel)) = simple::parse_filename(name, &filename) {
                    found = true;
                    files.push(DistFile {
                        filename,
                        location: Location::Path(entry.path()),
                        sha256: None,
                        requires_python: None,
                        yanked: false,
                        metadata: None,
                        version,
                        is_wheel,
                    });
                }
            }
        }
        if !found {
            return Err(IndexError::UnknownPackage {
                name: name.to_string(),
            });
        }
        Ok(files)
    }

    /// The names of the projects of the primary index (its root page), for "did you mean".
    pub(crate) fn project_names(&self) -> Result<Vec<String>, IndexError> {
        let Some(index) = self.options.indexes.first() else {
            return Ok(Vec::new());
        };
        let url = format!("{}/", index.trim_end_matches('/'));
        let body = self.get_page(&url)?;
        if body.content_type.contains("json") {
            #[derive(serde::Deserialize)]
            struct Root {
                projects: Vec<Project>,
            }
            #[derive(serde::Deserialize)]
            struct Project {
                name: String,
            }
            return Ok(serde_json::from_slice::<Root>(&body.bytes)
                .map(|r| r.projects.into_iter().map(|p| p.name).collect())
                .unwrap_or_default());
        }
        let text = String::from_utf8_lossy(&body.bytes);
        let mut names = Vec::new();
        let mut rest = text.as_ref();
        while let Some((_, anchor)) = rest.split_once("<a") {
            let Some((inside, after)) = anchor.split_once("</a>") else {
                break;
            };
            if let Some((_, name)) = inside.split_once('>') {
                names.push(name.trim().to_owned());
            }
            rest = after;
        }
        Ok(names)
    }

    /// The core metadata of a distribution file.
    pub(crate) fn metadata(&self, file: &DistFile) -> Result<Arc<Metadata>, Arc<IndexError>> {
        let cell = {
            let mut map = lock(&self.metadata);
            Arc::clone(map.entry(file.location.to_string()).or_default())
        };
        cell.get_or_init(|| self.fetch_metadata(file).map(Arc::new).map_err(Arc::new))
            .clone()
    }

    fn fetch_metadata(&self, file: &DistFile) -> Result<Metadata, IndexError> {
        let bad = |reason: String| IndexError::Metadata {
            file: file.filename.clone(),
            reason,
        };
        let text = match (&file.metadata, &file.location) {
            (Some(hash), Location::Url(url)) => {
                let url = format!("{url}.metadata");
                let got = self.get_immutable(&url, hash.as_deref())?;
                read_text(&got.path, METADATA_LIMIT).map_err(bad)?
            }
            (None, Location::Url(url)) if file.is_wheel => {
                match self.wheel_metadata_by_range(url, file.sha256.as_deref())? {
                    Ranged::Text(text) => text,
                    Ranged::Whole(got) => metadata::from_wheel(open(&got.path)?).map_err(bad)?,
                    Ranged::No => {
                        let got = self.download(file)?;
                        metadata::from_wheel(open(&got.path)?).map_err(bad)?
                    }
                }
            }
            _ => {
                let got = self.download(file)?;
                if file.is_wheel {
                    metadata::from_wheel(open(&got.path)?).map_err(bad)?
                } else {
                    let text =
                        metadata::from_sdist(&file.filename, open(&got.path)?).map_err(bad)?;
                    if metadata::dynamic_requirements(&text) {
                        crate::ui::warn(format!(
                            "`{}` declares its requirements dynamic (computed at build time): the lock uses those its `PKG-INFO` lists, which may be incomplete",
                            file.filename
                        ));
                    }
                    text
                }
            }
        };
        metadata::parse(&text).map_err(bad)
    }

    /// A wheel's METADATA read with HTTP range requests: the zip's central directory from the
    /// end of the file, then the one member. [`Ranged::Whole`] when a server that ignores
    /// `Range` sent the whole file (streamed, verified and cached on the way), [`Ranged::No`]
    /// when the file is already in the cache or range reads failed.
    fn wheel_metadata_by_range(
        &self,
        url: &str,
        sha256: Option<&str>,
    ) -> Result<Ranged, IndexError> {
        let metadata_cache = self
            .options
            .cache_dir
            .join("metadata")
            .join(sha256_hex(config::strip_credentials(url).as_bytes()));
        if let Ok(text) = read_text(&metadata_cache, METADATA_LIMIT) {
            return Ok(Ranged::Text(text));
        }
        let cache_file = self.files_cache(url);
        if self.options.offline || cache_file.is_file() {
            return Ok(Ranged::No);
        }
        let response = match self.send(url, None, &[("Range", format!("bytes=-{RANGE_BLOCK}"))])? {
            Sent::Response(response) => response,
            Sent::NotModified => return Ok(Ranged::No),
        };
        let total = response
            .header("content-range")
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.trim().parse::<u64>().ok());
        let (206, Some(total)) = (response.status(), total) else {
            // The whole file came: stream it into the cache, checked.
            let got = self.stream_to_cache(url, response, sha256, &cache_file)?;
            return Ok(Ranged::Whole(got));
        };
        let bytes = read_limited(response, url, RANGE_BLOCK)?;
        if total == bytes.len() as u64 {
            // The whole file, as a 206: check it and keep it.
            check_digest(
                || config::strip_credentials(url),
                &sha256_hex(&bytes),
                sha256,
            )?;
            crate::fsx::store_cache_file(&cache_file, &bytes);
            return Ok(Ranged::No);
        }
        Ok(self.metadata_from_zip_tail(url, total, bytes, &metadata_cache))
    }

    /// Reads a wheel's `METADATA` through range requests, starting from its last `tail`
    /// bytes (of `total`), and caches it at `metadata_cache`; `Ranged::No` when the zip
    /// cannot be read that way (the caller then downloads it whole).
    fn metadata_from_zip_tail(
        &self,
        url: &str,
        total: u64,
        bytes: Vec<u8>,
        metadata_cache: &Path,
    ) -> Ranged {
        let start = total.saturating_sub(bytes.len() as u64);
        let reader = RangeReader {
            client: self,
            url,
            total,
            position: 0,
            chunks: vec![(start, bytes)],
        };
        let shown = config::strip_credentials(url);
        let mut archive = match zip::ZipArchive::new(reader) {
            Ok(archive) => archive,
            Err(e) => {
                crate::ui::verbose(format!(
                    "range reads of `{shown}` failed ({e}): reading it whole"
                ));
                return Ranged::No;
            }
        };
        let Some(name) = archive
            .file_names()
            .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
            .map(str::to_owned)
        else {
            return Ranged::No;
        };
        let mut text = String::new();
        let read = archive
            .by_name(&name)
            .map_err(std::io::Error::other)
            .and_then(|f| {
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, METADATA_LIMIT),
                    &mut text,
                )
            });
        match read {
            Ok(_) => {
                crate::fsx::store_cache_file(metadata_cache, text.as_bytes());
                Ranged::Text(text)
            }
            Err(e) => {
                crate::ui::verbose(format!(
                    "range reads of `{shown}` failed ({e}): reading it whole"
                ));
                Ranged::No
            }
        }
    }

    /// Drops a file from the download cache (one that turned out not to be what the lock
    /// wants).
    pub(crate) fn forget(&self, file: &DistFile) {
        if let Location::Url(url) = &file.location {
            let _ = fs_err::remove_file(self.files_cache(url));
        }
    }

    fn files_cache(&self, url: &str) -> PathBuf {
        self.options
            .cache_dir
            .join("files")
            .join(sha256_hex(config::strip_credentials(url).as_bytes()))
    }

    /// The sha256 of a file: the index's, or computed from the file.
    pub(crate) fn sha256(&self, file: &DistFile) -> Result<Arc<String>, Arc<IndexError>> {
        if let Some(hash) = &file.sha256 {
            return Ok(Arc::new(hash.to_ascii_lowercase()));
        }
        let cell = {
            let mut map = lock(&self.hashes);
            Arc::clone(map.entry(file.location.to_string()).or_default())
        };
        cell.get_or_init(|| {
            self.download(file)
                .map(|got| Arc::new(got.sha256))
                .map_err(Arc::new)
        })
        .clone()
    }

    /// A distribution file on disk, checked against the index's hash: a `--find-links` file
    /// where it is, a URL's in the download cache (streamed there, never held in memory).
    pub(crate) fn download(&self, file: &DistFile) -> Result<Downloaded, IndexError> {
        self.download_expecting(file, file.sha256.as_deref())
    }

    /// [`Client::download`], checked against `expected` (the lock's hash for that file) when
    /// given, else against the index's.
    pub(crate) fn download_expecting(
        &self,
        file: &DistFile,
        expected: Option<&str>,
    ) -> Result<Downloaded, IndexError> {
        match &file.location {
            Location::Path(path) => {
                let actual = hash_file(path)?;
                check_digest(|| path.display().to_string(), &actual, expected)?;
                Ok(Downloaded {
                    path: path.clone(),
                    sha256: actual,
                })
            }
            Location::Url(url) => self.get_immutable(url, expected),
        }
    }

    /// A file that never changes at its URL: from the cache (checked), else streamed into it
    /// through a hashing reader, checked, and only then renamed into place.
    fn get_immutable(&self, url: &str, sha256: Option<&str>) -> Result<Downloaded, IndexError> {
        let cache_file = self.files_cache(url);
        if cache_file.is_file() {
            match hash_file(&cache_file) {
                Ok(actual) if sha256.is_none_or(|h| h.eq_ignore_ascii_case(&actual)) => {
                    return Ok(Downloaded {
                        path: cache_file,
                        sha256: actual,
                    });
                }
                // Not what is wanted (another file at a reused URL, or a damaged cache).
                _ => drop(fs_err::remove_file(&cache_file)),
            }
        }
        if self.options.offline {
            return Err(IndexError::Offline {
                url: config::strip_credentials(url),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = match self.send(url, None, &[])? {
                Sent::Response(response) => response,
                Sent::NotModified => {
                    return Err(IndexError::NotModified {
                        url: config::strip_credentials(url),
                    })
                }
            };
            match self.stream_to_cache(url, response, sha256, &cache_file) {
                Err(IndexError::Read { .. }) if attempt < 3 => {
                    std::thread::sleep(backoff(attempt));
                }
                done => return done,
            }
        }
    }

    /// Streams a response body into a temp file beside `cache_file`, hashing as it goes; the
    /// file takes its place only when the hash is the expected one (else nothing is left).
    fn stream_to_cache(
        &self,
        url: &str,
        response: Box<ureq::Response>,
        expected: Option<&str>,
        cache_file: &Path,
    ) -> Result<Downloaded, IndexError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        let dir = cache_file.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        let mut tmp = AtomicFile::new(cache_file).map_err(io(dir))?;
        let mut reader = HashReader::new(response.into_reader());
        std::io::copy(&mut reader, &mut tmp).map_err(|source| {
            if reader.failed {
                IndexError::Read {
                    url: config::strip_credentials(url),
                    source,
                }
            } else {
                IndexError::Io {
                    path: dir.to_path_buf(),
                    source,
                }
            }
        })?;
        let actual = reader.finish();
        check_digest(|| config::strip_credentials(url), &actual, expected)?;
        // Verified by its hash when it is read again: a cache, not synced.
        tmp.commit_unsynced().map_err(io(cache_file))?;
        Ok(Downloaded {
            path: cache_file.to_path_buf(),
            sha256: actual,
        })
    }

    /// A project page, through the HTTP cache.
    fn get_page(&self, url: &str) -> Result<Body, IndexError> {
        let key = sha256_hex(config::strip_credentials(url).as_bytes());
        let dir = self.options.cache_dir.join("pages");
        let cached = cache::Entry::load(&dir, &key);
        if let Some((entry, bytes)) = &cached {
            if self.options.offline || entry.is_fresh() {
                return Ok(Body {
                    bytes: bytes.clone(),
                    content_type: entry.content_type.clone(),
                    url: entry.url.clone(),
                });
            }
        }
        if self.options.offline {
            return Err(IndexError::Offline {
                url: config::strip_credentials(url),
            });
        }
        let mut headers = vec![("Accept", ACCEPT.to_owned())];
        if let Some((entry, _)) = &cached {
            if let Some(etag) = &entry.etag {
                headers.push(("If-None-Match", etag.clone()));
            }
            if let Some(modified) = &entry.last_modified {
                headers.push(("If-Modified-Since", modified.clone()));
            }
        }
        let mut policy = cache::Policy::default();
        match self.request(url, Some(&mut policy), &headers, PAGE_LIMIT)? {
            Fetched::NotModified => {
                // A 304 answers a conditional request only: without a cached page, the index
                // (or a proxy) answered a question that was not asked.
                let Some((mut entry, bytes)) = cached else {
                    return Err(IndexError::NotModified {
                        url: config::strip_credentials(url),
                    });
                };
                entry.refresh(&policy);
                entry.save(&dir, &key, None);
                Ok(Body {
                    bytes,
                    content_type: entry.content_type,
                    url: entry.url,
                })
            }
            Fetched::Body(body) => {
                if !policy.no_store {
                    let entry = cache::Entry::new(&body.url, &body.content_type, &policy);
                    entry.save(&dir, &key, Some(&body.bytes));
                }
                Ok(body)
            }
        }
    }

    /// One GET whose body (at most `limit` bytes) is read into memory, retried when reading it
    /// fails.
    fn request(
        &self,
        url: &str,
        mut policy: Option<&mut cache::Policy>,
        headers: &[(&str, String)],
        limit: u64,
    ) -> Result<Fetched, IndexError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = match self.send(url, policy.as_deref_mut(), headers)? {
                Sent::NotModified => return Ok(Fetched::NotModified),
                Sent::Response(response) => response,
            };
            let content_type = response.content_type().to_owned();
            let final_url = response.get_url().to_owned();
            match read_limited(response, url, limit) {
                Ok(bytes) => {
                    return Ok(Fetched::Body(Body {
                        bytes,
                        content_type,
                        url: final_url,
                    }))
                }
                Err(IndexError::Read { .. }) if attempt < 3 => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One GET, with credentials, retries with backoff on transient errors, and `-v` output;
    /// the body is left for the caller to read.
    fn send(
        &self,
        url: &str,
        mut policy: Option<&mut cache::Policy>,
        headers: &[(&str, String)],
    ) -> Result<Sent, IndexError> {
        let shown = config::strip_credentials(url);
        let auth = self.authorization(url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let start = std::time::Instant::now();
            let mut request = self.agent.get(&shown);
            for (name, value) in headers {
                request = request.set(name, value);
            }
            if let Some(auth) = &auth {
                request = request.set("Authorization", auth);
            }
            let result = request.call();
            let elapsed = start.elapsed().as_millis();
            match result {
                Ok(response) => {
                    crate::ui::verbose(format!(
                        "GET {shown} -> {} ({elapsed} ms)",
                        response.status()
                    ));
                    if let Some(policy) = policy.as_deref_mut() {
                        *policy = cache::Policy::from_response(&response);
                    }
                    if response.status() == 304 {
                        return Ok(Sent::NotModified);
                    }
                    return Ok(Sent::Response(Box::new(response)));
                }
                Err(ureq::Error::Status(status, response)) => {
                    crate::ui::verbose(format!("GET {shown} -> {status} ({elapsed} ms)"));
                    let transient = status == 429 || status >= 500;
                    if transient && attempt < 3 {
                        std::thread::sleep(backoff(attempt));
                        continue;
                    }
                    return Err(IndexError::Status {
                        url: shown,
                        status,
                        reason: response.status_text().to_owned(),
                    });
                }
                Err(ureq::Error::Transport(transport)) => {
                    crate::ui::verbose(format!("GET {shown} -> {transport} ({elapsed} ms)"));
                    if attempt < 3 {
                        std::thread::sleep(backoff(attempt));
                        continue;
                    }
                    return Err(IndexError::Unreachable {
                        url: shown,
                        source: Box::new(transport),
                    });
                }
            }
        }
    }

    /// `Authorization: Basic` from the URL's credentials, else from netrc for its host.
    fn authorization(&self, url: &str) -> Option<String> {
        let parsed = url::Url::parse(url).ok()?;
        let (user, password) = if !parsed.username().is_empty() {
            (
                percent_decode(parsed.username()),
                percent_decode(parsed.password().unwrap_or_default()),
            )
        } else {
            config::netrc_lookup(self.options.netrc.as_deref()?, parsed.host_str()?)?
        };
        Some(format!(
            "Basic {}",
            crate::fsx::base64(format!("{user}:{password}").as_bytes())
        ))
    }
}

/// How much a range request asks for at least.
const RANGE_BLOCK: u64 = 64 * 1024;

/// A remote file read by HTTP range requests, for `zip` to seek in.
struct RangeReader<'a> {
    client: &'a Client,
    url: &'a str,
    total: u64,
    position: u64,
    /// Fetched parts: start offset and bytes.
    chunks: Vec<(u64, Vec<u8>)>,
}

impl std::io::Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.total || buf.is_empty() {
            return Ok(0);
        }
        let pos = self.position;
        let found = self
            .chunks
            .iter()
            .find(|(start, bytes)| *start <= pos && pos < start + bytes.len() as u64);
        let (start, bytes) = match found {
            Some(chunk) => chunk,
            None => {
                let end = (pos + RANGE_BLOCK.max(buf.len() as u64)).min(self.total) - 1;
                let sent = self
                    .client
                    .send(self.url, None, &[("Range", format!("bytes={pos}-{end}"))])
                    .map_err(std::io::Error::other)?;
                let Sent::Response(response) = sent else {
                    return Err(std::io::Error::other("unexpected 304"));
                };
                if response.status() != 206 {
                    return Err(std::io::Error::other("the server stopped honouring ranges"));
                }
                let bytes = read_limited(response, self.url, end - pos + 1)
                    .map_err(std::io::Error::other)?;
                if bytes.is_empty() {
                    return Err(std::io::Error::other("the server sent an empty range"));
                }
                self.chunks.push((pos, bytes));
                let Some(last) = self.chunks.last() else {
                    return Err(std::io::Error::other("no range was kept"));
                };
                last
            }
        };
        let offset = usize::try_from(pos - start).unwrap_or(usize::MAX);
        let available = bytes.get(offset..).unwrap_or_default();
        let n = buf.len().min(available.len());
        let (Some(to), Some(from)) = (buf.get_mut(..n), available.get(..n)) else {
            return Ok(0);
        };
        to.copy_from_slice(from);
        self.position += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for RangeReader<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(n) => self.total.checked_add_signed(n),
            std::io::SeekFrom::Current(n) => self.position.checked_add_signed(n),
        };
        let Some(target) = target else {
            return Err(std::io::Error::other("seek before the start"));
        };
        self.position = target;
        Ok(self.position)
    }
}

enum Fetched {
    Body(Body),
    NotModified,
}

/// What range reads of a wheel gave.
enum Ranged {
    /// Its METADATA.
    Text(String),
    /// The whole file, sent by a server that ignores `Range`.
    Whole(Downloaded),
    /// Nothing: read the whole file.
    No,
}

/// A response whose body is not read yet, or a `304`.
enum Sent {
    Response(Box<ureq::Response>),
    NotModified,
}

/// Checks a file's sha256 against the one the index gave, when it gave one; `shown` names
/// the file in the error.
fn check_digest(
    shown: impl FnOnce() -> String,
    actual: &str,
    expected: Option<&str>,
) -> Result<(), IndexError> {
    match expected {
        Some(expected) if !actual.eq_ignore_ascii_case(expected) => Err(IndexError::HashMismatch {
            url: shown(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 4u64.saturating_pow(attempt.saturating_sub(1)))
}

/// `%XX` escapes decoded (an invalid one kept as it is), as userinfo in a URL is written.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `$XDG_CACHE_HOME/mfplug`, else `~/.cache/mfplug`.
pub(crate) fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("mfplug")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
