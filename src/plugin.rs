//! The plugin directory: where its name comes from and what a valid name is.
//!
//! A plugin's name is not its directory's name but the `NAME` of `plugin_NAME@module` in
//! `.layerapi2_label`, as in MetWork. The rules on names are checked here, once: a
//! [`PluginName`] is the only way to name a plugin inside the code, made at the edges (clap's
//! value parsers, the label, `PLUGIN.json`, the install record), so that a path under the
//! home built from one never leaves its dir.

use std::io::Read as _;
use std::path::{Path, PathBuf};

pub(crate) const LABEL_FILE: &str = ".layerapi2_label";
pub(crate) const CONFIG_FILE: &str = "config.ini";
pub(crate) const FORMAT_VERSION_FILE: &str = ".plugin_format_version";

/// Why a plugin name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the plugin name is empty")]
    Empty,
    #[error("invalid character `{ch}` at position {position} of plugin name `{name}`: use only letters, digits, `_` and `-`")]
    BadChar {
        name: String,
        ch: char,
        position: usize,
    },
    #[error("plugin name `{name}` starts with `{prefix}`, which is reserved")]
    ReservedPrefix { name: String, prefix: &'static str },
    #[error("plugin name `{0}` is reserved")]
    Reserved(String),
    #[error("plugin name `{0}` starts with `-`, which would read as an option: start it with a letter, a digit or `_`")]
    LeadingDash(String),
}

/// Checks a plugin name: `^[A-Za-z0-9_-]+$`, not starting with `plugin_`, `__` or `-`, not
/// `base` or `config` (MetWork's own names in the runtime home). A thin wrapper of
/// [`PluginName::parse`] for the callers that only check.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    PluginName::parse(name).map(|_| ())
}

/// A plugin name that passed the rules of `docs/config.md`: `^[A-Za-z0-9_-]+$`, not starting
/// with `plugin_`, `__` or `-`, not `base` or `config`. Joined under a dir it names one entry
/// of that dir, never `..`, `.`, an absolute path or something with a `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub(crate) struct PluginName(String);

impl PluginName {
    /// Checks `name` against the rules; the error names the rule broken.
    pub(crate) fn parse(name: &str) -> Result<PluginName, NameError> {
        check_name(name)?;
        Ok(PluginName(name.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for PluginName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PluginName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for PluginName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl AsRef<std::ffi::OsStr> for PluginName {
    fn as_ref(&self) -> &std::ffi::OsStr {
        std::ffi::OsStr::new(&self.0)
    }
}

impl std::fmt::Display for PluginName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PluginName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<PluginName, NameError> {
        PluginName::parse(s)
    }
}

impl PartialEq<str> for PluginName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PluginName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for PluginName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<PluginName> for String {
    fn from(name: PluginName) -> String {
        name.0
    }
}

impl<'de> serde::Deserialize<'de> for PluginName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PluginName, D::Error> {
        let text = String::deserialize(d)?;
        PluginName::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some((index, ch)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(NameError::BadChar {
            name: name.to_owned(),
            ch,
            position: index + 1,
        });
    }
    for prefix in ["plugin_", "__"] {
        if name.starts_with(prefix) {
            return Err(NameError::ReservedPrefix {
                name: name.to_owned(),
                prefix,
            });
        }
    }
    if matches!(name, "base" | "config") {
        return Err(NameError::Reserved(name.to_owned()));
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingDash(name.to_owned()));
    }
    Ok(())
}

/// Why no plugin dir was found for a command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirError {
    #[error("`{0}` is not a directory")]
    NotADir(PathBuf),
    #[error("plugin dir `{0}` does not exist")]
    Missing(PathBuf),
    #[error("`{0}` is not inside a plugin dir: neither it nor a parent holds `config.ini` or `.layerapi2_label`")]
    NotInside(PathBuf),
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The plugin dir a command works on, as cargo finds `Cargo.toml`: the given dir, which must
/// exist; else the nearest dir from the current one going up that holds `config.ini` or
/// `.layerapi2_label`.
pub(crate) fn find_dir(dir: Option<PathBuf>) -> Result<PathBuf, DirError> {
    if let Some(dir) = dir {
        return match fs_err::metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(DirError::NotADir(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DirError::Missing(dir)),
            Err(e) => Err(DirError::Io {
                path: dir,
                source: e,
            }),
        };
    }
    let cwd = std::env::current_dir().map_err(|source| DirError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let found = cwd.ancestors().find(|dir| {
        [CONFIG_FILE, LABEL_FILE]
            .iter()
            .any(|file| fs_err::symlink_metadata(dir.join(file)).is_ok_and(|m| m.is_file()))
    });
    match found {
        // The current dir itself is given as `.`, as a user would write it.
        Some(dir) if dir == cwd => Ok(PathBuf::from(".")),
        Some(dir) => Ok(dir.to_path_buf()),
        None => Err(DirError::NotInside(cwd)),
    }
}

/// The most mfplug reads of a plugin's own small files (`.layerapi2_label`, `config.ini`,
/// `crontab`, `postinstall`'s first bytes): far above any real one, far below memory.
pub(crate) const MAX_OWN_FILE: u64 = 8 << 20;

/// Reads one of the plugin's own files as text, refusing a symlink (the file must be the
/// plugin's own, not something it points at) and anything bigger than [`MAX_OWN_FILE`]:
/// `Ok(None)` when it is absent.
#[expect(
    clippy::disallowed_methods,
    reason = "tells a symlink by its errno (`ELOOP`), which `fs_err` hides; every error made here names the path"
)]
pub(crate) fn read_own_file(path: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(std::io::Error::other(format!(
                "`{}` is a symlink: mfplug reads a plugin's own files only from the plugin",
                path.display()
            )))
        }
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot read `{}`: {e}", path.display()),
            ))
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "`{}` is not a regular file",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_OWN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display()))
        })?;
    if bytes.len() as u64 > MAX_OWN_FILE {
        return Err(std::io::Error::other(format!(
            "`{}` is bigger than {} MiB: too big for one of a plugin's own files",
            path.display(),
            MAX_OWN_FILE >> 20
        )));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("`{}` is not UTF-8 text", path.display()),
        )
    })
}

/// The content of `.layerapi2_label`: `plugin_NAME@module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) name: PluginName,
    pub(crate) module: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LabelError {
    #[error("`{}` is missing: it holds the plugin name as `plugin_NAME@module`", .0.display())]
    Missing(PathBuf),
    #[error("cannot read `{}`: {}", .0.display(), .1)]
    Unreadable(PathBuf, String),
    #[error("`{}` holds `{}`, not `plugin_NAME@module`", .0.display(), .1)]
    Malformed(PathBuf, String),
    #[error("`{}`: {}", .0.display(), .1)]
    BadName(PathBuf, NameError),
}

/// Why the text of a label is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LabelTextError {
    /// Not one `plugin_NAME@module` line.
    Malformed,
    /// The shape is right, the name breaks a rule.
    BadName(NameError),
}

impl Label {
    /// Parses `plugin_NAME@module` (blank lines and `#` comments around it are allowed), the
    /// name checked against the rules, saying whether the shape or the name is wrong.
    pub(crate) fn parse_checked(text: &str) -> Result<Label, LabelTextError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next().ok_or(LabelTextError::Malformed)?;
        if lines.next().is_some() {
            return Err(LabelTextError::Malformed);
        }
        let rest = line
            .strip_prefix("plugin_")
            .ok_or(LabelTextError::Malformed)?;
        let (name, module) = rest.rsplit_once('@').ok_or(LabelTextError::Malformed)?;
        if module.is_empty() || name.is_empty() {
            return Err(LabelTextError::Malformed);
        }
        let name = PluginName::parse(name).map_err(LabelTextError::BadName)?;
        Ok(Label {
            name,
            module: module.to_owned(),
        })
    }

    /// Reads and checks the label of the plugin in `dir`: the file itself (not a symlink),
    /// bounded in size.
    pub(crate) fn read(dir: &Path) -> Result<Label, LabelError> {
        let path = dir.join(LABEL_FILE);
        let text = match read_own_file(&path) {
            Ok(Some(text)) => text,
            Ok(None) => return Err(LabelError::Missing(path)),
            Err(e) => {
                let why = e.to_string();
                // `read_own_file` names the path already; say only why here.
                let why = why
                    .strip_prefix(&format!("cannot read `{}`: ", path.display()))
                    .unwrap_or(&why)
                    .to_owned();
                return Err(LabelError::Unreadable(path, why));
            }
        };
        Label::parse_checked(&text).map_err(|e| match e {
            LabelTextError::Malformed => LabelError::Malformed(path, text.trim().into()),
            LabelTextError::BadName(e) => LabelError::BadName(path, e),
        })
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin_{}@{}", self.name, self.module)
    }
}

/// Reads `.plugin_format_version` if present: one line, a version of the tool that made it.
pub(crate) fn read_format_version(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join(FORMAT_VERSION_FILE);
    match fs_err::read_to_string(&path) {
        Ok(text) => {
            let value = text.trim();
            if value.is_empty() {
                Err("is empty: it should hold the version of the tool that made the plugin".into())
            } else if value.lines().count() > 1
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
            {
                Err(format!("holds `{value}`, not a version"))
            } else {
                Ok(Some(value.to_owned()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("foo_bar-2"), Ok(()));
        assert_eq!(
            validate_name("foo.bar").unwrap_err().to_string(),
            "invalid character `.` at position 4 of plugin name `foo.bar`: use only letters, digits, `_` and `-`"
        );
        assert!(matches!(
            validate_name("plugin_x"),
            Err(NameError::ReservedPrefix { .. })
        ));
        assert!(matches!(
            validate_name("__x"),
            Err(NameError::ReservedPrefix { .. })
        ));
        assert_eq!(
            validate_name("base"),
            Err(NameError::Reserved("base".into()))
        );
        assert_eq!(
            validate_name("config"),
            Err(NameError::Reserved("config".into()))
        );
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_name("é"),
            Err(NameError::BadChar { ch: 'é', .. })
        ));
    }

    fn name(text: &str) -> PluginName {
        PluginName::parse(text).unwrap()
    }

    #[test]
    fn plugin_names() {
        assert_eq!(name("foo").as_str(), "foo");
        assert_eq!(&*name("foo"), "foo");
        assert_eq!(name("foo").to_string(), "foo");
        for bad in [
            "../x", "..", ".", "/etc", "a/b", "", "-rf", "--", "base", "plugin_x",
        ] {
            assert!(PluginName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PluginName::parse("-rf").unwrap_err().to_string(),
            "plugin name `-rf` starts with `-`, which would read as an option: start it with a letter, a digit or `_`"
        );
        assert!(PluginName::parse("a-").is_ok());
        let json: Result<PluginName, _> = serde_json::from_str("\"../../x\"");
        assert!(json.is_err());
        assert_eq!(serde_json::to_string(&name("foo")).unwrap(), "\"foo\"");
    }

    #[test]
    fn own_files_are_not_read_through_symlinks_nor_whole_when_huge() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs_err::write(&real, "text").unwrap();
        assert_eq!(read_own_file(&real).unwrap().as_deref(), Some("text"));
        assert_eq!(read_own_file(&dir.path().join("absent")).unwrap(), None);
        let link = dir.path().join("link");
        fs_err::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(read_own_file(&link)
            .unwrap_err()
            .to_string()
            .contains("is a symlink"));
        let zero = dir.path().join("zero");
        fs_err::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_own_file(&zero).is_err());
        let big = dir.path().join("big");
        let file = fs_err::File::create(&big).unwrap();
        file.set_len(MAX_OWN_FILE + 1).unwrap();
        assert!(read_own_file(&big)
            .unwrap_err()
            .to_string()
            .contains("too big"));
    }

    #[test]
    fn labels() {
        let parse = |text| Label::parse_checked(text).ok();
        assert_eq!(
            parse("plugin_foo@mfdata\n"),
            Some(Label {
                name: name("foo"),
                module: "mfdata".into()
            })
        );
        assert_eq!(parse("plugin_a@b@mfserv"), None);
        assert_eq!(
            Label::parse_checked("plugin_../../x@m"),
            Err(LabelTextError::BadName(NameError::BadChar {
                name: "../../x".into(),
                ch: '.',
                position: 1
            }))
        );
        assert_eq!(parse("foo@mfdata"), None);
        assert_eq!(parse("plugin_foo"), None);
        assert_eq!(parse("plugin_foo@"), None);
        assert_eq!(parse("plugin_a@x\nplugin_b@x"), None);
        assert_eq!(
            parse("plugin_x@mfdata").unwrap().to_string(),
            "plugin_x@mfdata"
        );
    }
}
