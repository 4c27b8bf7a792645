//! Which indexes to ask, as pip would: the URL from `--index-url`, then `MFPLUG_INDEX_URL`,
//! then `PIP_INDEX_URL`, then pip's configuration files; credentials from the URL or
//! `~/.netrc`. No index host is written here: with none configured, the caller says how to set
//! one.

use std::path::{Path, PathBuf};

use crate::config::ini::{Dialect, Document};

/// Where the primary index URL came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlSource {
    Flag,
    RequirementsFile,
    Env(&'static str),
    PipConf(PathBuf),
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::Flag => f.write_str("`--index-url`"),
            UrlSource::RequirementsFile => f.write_str("the requirements file"),
            UrlSource::Env(name) => write!(f, "`{name}`"),
            UrlSource::PipConf(path) => write!(f, "`{}`", path.display()),
        }
    }
}

/// The pip configuration files, highest precedence first.
pub(crate) fn pip_conf_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = env("PIP_CONFIG_FILE") {
        if file != "os.devnull" && file != "/dev/null" {
            files.push(PathBuf::from(file));
        }
    }
    let home = env("HOME").map(PathBuf::from);
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(dir) = config_home {
        files.push(dir.join("pip/pip.conf"));
    }
    if let Some(home) = &home {
        files.push(home.join(".pip/pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    files
}

/// The CA bundle pip would use: `PIP_CERT`, else `cert` of the first pip.conf that sets it.
pub(crate) fn discover_cert(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(cert) = env("PIP_CERT").filter(|c| !c.is_empty()) {
        return Some(PathBuf::from(cert));
    }
    pip_conf_files(env)
        .iter()
        .find_map(|file| read_pip_conf_key(file, "cert"))
        .map(PathBuf::from)
}

/// The entries of a pip.conf that an install reads, in file order: those of `[global]` and
/// `[install]`, as (section, key, value), the key named as pip names it (`index_url` is
/// `index-url`); `None` when the file cannot be read. pip's configparser reads the file
/// (`config::ini` in its pip.conf dialect); a line it would refuse is passed over.
fn pip_conf_entries(path: &Path) -> Option<Vec<(String, String, String)>> {
    let text = fs_err::read_to_string(path).ok()?;
    let (doc, _) = Document::parse_with(&text, Dialect::PIP_CONF);
    let entries = doc
        .sections()
        .iter()
        .filter(|section| section.name == "global" || section.name == "install")
        .flat_map(|section| {
            section.entries().map(|entry| {
                let key = entry.key.name.replace('_', "-");
                (section.name.clone(), key, entry.value.trim().to_owned())
            })
        })
        .collect();
    Some(entries)
}

/// One key of the `[global]` (or `[install]`) section of a pip.conf: the first set to
/// something.
fn read_pip_conf_key(path: &Path, wanted: &str) -> Option<String> {
    pip_conf_entries(path)?
        .into_iter()
        .find(|(_, key, value)| key == wanted && !value.is_empty())
        .map(|(_, _, value)| value)
}

/// `index-url` and `extra-index-url` of the `[global]` section of a pip.conf (or of
/// `[install]` when `[global]` has none).
pub(crate) fn read_pip_conf(path: &Path) -> Option<(Option<String>, Vec<String>)> {
    let mut index = None;
    let mut extra = Vec::new();
    for (section, key, value) in pip_conf_entries(path)? {
        match key.as_str() {
            "index-url" if index.is_none() || section == "global" => index = Some(value),
            "extra-index-url" => extra.extend(value.split_whitespace().map(str::to_owned)),
            _ => {}
        }
    }
    Some((index.filter(|s| !s.is_empty()), extra))
}

/// The index options a command was given (`--index-url`, `--extra-index-url`,
/// `--find-links`, `--no-index`), before the requirements file, the environment and
/// pip.conf.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub(crate) index_url: Option<String>,
    pub(crate) extra_index_url: Vec<String>,
    pub(crate) find_links: Vec<PathBuf>,
    pub(crate) no_index: bool,
}

/// The primary index URL and where it came from, plus the extra ones, by precedence.
pub(crate) fn discover(
    flag: Option<&str>,
    from_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<(String, UrlSource)>, Vec<String>) {
    let mut extra = Vec::new();
    if let Some(e) = env("PIP_EXTRA_INDEX_URL") {
        extra.extend(e.split_whitespace().map(str::to_owned));
    }
    let mut conf_index = None;
    for file in pip_conf_files(env) {
        if let Some((index, more)) = read_pip_conf(&file) {
            if conf_index.is_none() {
                if let Some(index) = index {
                    conf_index = Some((index, UrlSource::PipConf(file.clone())));
                }
            }
            if extra.is_empty() {
                extra.extend(more);
            }
        }
    }
    let primary = flag
        .map(|u| (u.to_owned(), UrlSource::Flag))
        .or_else(|| from_file.map(|u| (u.to_owned(), UrlSource::RequirementsFile)))
        .or_else(|| {
            env("MFPLUG_INDEX_URL")
                .filter(|u| !u.is_empty())
                .map(|u| (u, UrlSource::Env("MFPLUG_INDEX_URL")))
        })
        .or_else(|| {
            env("PIP_INDEX_URL")
                .filter(|u| !u.is_empty())
                .map(|u| (u, UrlSource::Env("PIP_INDEX_URL")))
        })
        .or(conf_index);
    (primary, extra)
}

/// The URL without its `user:password@`, for messages and the lockfile.
pub(crate) fn strip_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Credentials for a host from a netrc file: `machine HOST login USER password PASS`.
pub(crate) fn netrc_lookup(text: &str, host: &str) -> Option<(String, String)> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    let mut default = None;
    while i < tokens.len() {
        let matches = match tokens[i] {
            "machine" if i + 1 < tokens.len() => {
                i += 2;
                tokens[i - 1] == host
            }
            "default" => {
                i += 1;
                false
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let is_default = tokens[i.saturating_sub(1)] == "default";
        let (mut login, mut password) = (String::new(), String::new());
        while i + 1 < tokens.len() && !matches!(tokens[i], "machine" | "default") {
            match tokens[i] {
                "login" => login = tokens[i + 1].to_owned(),
                "password" => password = tokens[i + 1].to_owned(),
                _ => {}
            }
            i += 2;
        }
        if matches {
            return Some((login, password));
        }
        if is_default {
            default = Some((login, password));
        }
    }
    default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        fs_err::write(
            &conf,
            "[global]\nindex-url = http://conf/simple\nextra-index-url =\n    http://x1/simple\n    http://x2/simple\n",
        )
        .unwrap();
        let conf_s = conf.display().to_string();
        let env = |k: &str| match k {
            "PIP_CONFIG_FILE" => Some(conf_s.clone()),
            _ => None,
        };
        let (primary, extra) = discover(None, None, &env);
        assert_eq!(primary.unwrap().0, "http://conf/simple");
        assert_eq!(extra, ["http://x1/simple", "http://x2/simple"]);
        let env2 = |k: &str| match k {
            "PIP_CONFIG_FILE" => Some(conf_s.clone()),
            "PIP_INDEX_URL" => Some("http://pip/simple".to_owned()),
            _ => None,
        };
        let (primary, _) = discover(None, None, &env2);
        assert_eq!(primary.unwrap().1, UrlSource::Env("PIP_INDEX_URL"));
        let (primary, _) = discover(Some("http://flag/"), Some("http://file/"), &env2);
        assert_eq!(primary.unwrap().0, "http://flag/");
    }

    /// pip.conf is read as pip's configparser reads it: `:` as well as `=`, `;` comments,
    /// keys in any case and with `_`, list values continued after blank lines and comments,
    /// other sections ignored, `[global]` before `[install]`.
    #[test]
    fn pip_conf_dialect() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        fs_err::write(
            &conf,
            "; a comment\n[install]\nindex-url = http://install/simple\n\
             [freeze]\nextra-index-url = http://freeze/simple\n\
             [global]\nIndex_URL: http://global/simple\nextra_index_url =\n\
             \x20   http://x1/simple\n\n    ; between\n# again\n\thttp://x2/simple http://x3/simple\n\
             cert : /etc/ca.pem\n",
        )
        .unwrap();
        let (index, extra) = read_pip_conf(&conf).unwrap();
        assert_eq!(index.as_deref(), Some("http://global/simple"));
        assert_eq!(
            extra,
            ["http://x1/simple", "http://x2/simple", "http://x3/simple"]
        );
        assert_eq!(
            read_pip_conf_key(&conf, "cert").as_deref(),
            Some("/etc/ca.pem")
        );
        fs_err::write(&conf, "[install]\nindex_url=http://install/simple\n").unwrap();
        let (index, extra) = read_pip_conf(&conf).unwrap();
        assert_eq!(index.as_deref(), Some("http://install/simple"));
        assert!(extra.is_empty());
        assert_eq!(read_pip_conf(&dir.path().join("missing.conf")), None);
    }

    #[test]
    fn cert() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        fs_err::write(&conf, "[global]\ncert = /etc/corp-ca.pem\n").unwrap();
        let conf_s = conf.display().to_string();
        let env = |k: &str| (k == "PIP_CONFIG_FILE").then(|| conf_s.clone());
        assert_eq!(discover_cert(&env), Some(PathBuf::from("/etc/corp-ca.pem")));
        let env = |k: &str| (k == "PIP_CERT").then(|| "/x.pem".to_owned());
        assert_eq!(discover_cert(&env), Some(PathBuf::from("/x.pem")));
    }

    #[test]
    fn netrc_and_credentials() {
        let text = "machine a.example login u password p\ndefault login d password q";
        assert_eq!(
            netrc_lookup(text, "a.example"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(netrc_lookup(text, "b"), Some(("d".into(), "q".into())));
        assert_eq!(
            strip_credentials("http://u:p@h:1/simple/"),
            "http://h:1/simple/"
        );
    }
}
