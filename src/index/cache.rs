//! The HTTP cache of project pages: the body and what `ETag`, `Last-Modified` and
//! `Cache-Control` said about it, so that a fresh page costs no request and a stale one only
//! a conditional one (`304 Not Modified`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What a response said about caching it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    /// `max-age`, in seconds; `None` when absent.
    pub(crate) max_age: Option<u64>,
    /// `no-cache`: revalidate every time.
    pub(crate) no_cache: bool,
    /// `no-store`: do not keep the response.
    pub(crate) no_store: bool,
}

impl Policy {
    pub(crate) fn from_response(response: &ureq::Response) -> Policy {
        let mut policy = Policy {
            etag: response.header("etag").map(str::to_owned),
            last_modified: response.header("last-modified").map(str::to_owned),
            ..Policy::default()
        };
        if let Some(control) = response.header("cache-control") {
            for directive in control.split(',') {
                let directive = directive.trim().to_ascii_lowercase();
                if let Some(age) = directive.strip_prefix("max-age=") {
                    policy.max_age = age.trim_matches('"').parse().ok();
                } else if directive == "no-cache" {
                    policy.no_cache = true;
                } else if directive == "no-store" {
                    policy.no_store = true;
                }
            }
        }
        policy
    }
}

/// A cached page's headers; its body lives beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) url: String,
    pub(crate) content_type: String,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) max_age: Option<u64>,
    pub(crate) no_cache: bool,
    /// When the page was stored or last revalidated, in seconds since the epoch.
    pub(crate) stored: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Entry {
    pub(crate) fn new(url: &str, content_type: &str, policy: &Policy) -> Entry {
        Entry {
            url: url.to_owned(),
            content_type: content_type.to_owned(),
            etag: policy.etag.clone(),
            last_modified: policy.last_modified.clone(),
            max_age: policy.max_age,
            no_cache: policy.no_cache,
            stored: now(),
        }
    }

    /// Whether the page may be used without asking the server.
    pub(crate) fn is_fresh(&self) -> bool {
        !self.no_cache
            && self
                .max_age
                .is_some_and(|age| now() < self.stored.saturating_add(age))
    }

    /// Takes in what a `304` said.
    pub(crate) fn refresh(&mut self, policy: &Policy) {
        if policy.etag.is_some() {
            self.etag.clone_from(&policy.etag);
        }
        if policy.last_modified.is_some() {
            self.last_modified.clone_from(&policy.last_modified);
        }
        self.max_age = policy.max_age;
        self.no_cache = policy.no_cache;
        self.stored = now();
    }

    pub(crate) fn load(dir: &Path, key: &str) -> Option<(Entry, Vec<u8>)> {
        let entry =
            serde_json::from_slice(&fs_err::read(dir.join(format!("{key}.json"))).ok()?).ok()?;
        let body = fs_err::read(dir.join(format!("{key}.body"))).ok()?;
        Some((entry, body))
    }

    /// Saves the entry (and the body when given: the body first, so that a crash leaves
    /// either the old pair or a new body the old headers do not validate).
    pub(crate) fn save(&self, dir: &Path, key: &str, body: Option<&[u8]>) {
        if let Some(body) = body {
            crate::fsx::store_cache_file(&dir.join(format!("{key}.body")), body);
        }
        if let Ok(json) = serde_json::to_vec(self) {
            crate::fsx::store_cache_file(&dir.join(format!("{key}.json")), &json);
        }
    }
}
