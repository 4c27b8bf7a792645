//! The plugin directory: where its name comes from and what a valid name is.
//!
//! A plugin's name is not its directory's name but the `NAME` of `plugin_NAME@module` in
//! `.layerapi2_label`, as in MetWork. The rules on names are checked here, once, for every
//! command that takes a name (`bootstrap create`, `install --new-name`, `check`).

use std::path::{Path, PathBuf};

pub const LABEL_FILE: &str = ".layerapi2_label";
pub const CONFIG_FILE: &str = "config.ini";
pub const FORMAT_VERSION_FILE: &str = ".plugin_format_version";

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
}

/// Checks a plugin name: `^[A-Za-z0-9_-]+$`, not starting with `plugin_` or `__`, not `base`
/// or `config` (MetWork's own names in the runtime home).
pub fn validate_name(name: &str) -> Result<(), NameError> {
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
    Ok(())
}

/// The content of `.layerapi2_label`: `plugin_NAME@module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub name: String,
    pub module: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("`{}` is missing: it holds the plugin name as `plugin_NAME@module`", .0.display())]
    Missing(PathBuf),
    #[error("cannot read `{}`: {}", .0.display(), .1)]
    Unreadable(PathBuf, String),
    #[error("`{}` holds `{}`, not `plugin_NAME@module`", .0.display(), .1)]
    Malformed(PathBuf, String),
    #[error("`{}`: {}", .0.display(), .1)]
    BadName(PathBuf, NameError),
}

impl Label {
    pub fn new(name: &str, module: &str) -> Label {
        Label {
            name: name.to_owned(),
            module: module.to_ascii_lowercase(),
        }
    }

    /// Parses `plugin_NAME@module`: blank lines and `#` comments around it are allowed.
    pub fn parse(text: &str) -> Option<Label> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines.next()?;
        if lines.next().is_some() {
            return None;
        }
        let rest = line.strip_prefix("plugin_")?;
        let (name, module) = rest.rsplit_once('@')?;
        if module.is_empty() || name.is_empty() {
            return None;
        }
        Some(Label {
            name: name.to_owned(),
            module: module.to_owned(),
        })
    }

    /// Reads and checks the label of the plugin in `dir`.
    pub fn read(dir: &Path) -> Result<Label, LabelError> {
        let path = dir.join(LABEL_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabelError::Missing(path))
            }
            Err(e) => return Err(LabelError::Unreadable(path, e.to_string())),
        };
        let label = Label::parse(&text)
            .ok_or_else(|| LabelError::Malformed(path.clone(), text.trim().into()))?;
        validate_name(&label.name).map_err(|e| LabelError::BadName(path, e))?;
        Ok(label)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin_{}@{}", self.name, self.module)
    }
}

/// Reads `.plugin_format_version` if present: one line, a version of the tool that made it.
pub fn read_format_version(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join(FORMAT_VERSION_FILE);
    match std::fs::read_to_string(&path) {
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

    #[test]
    fn labels() {
        assert_eq!(
            Label::parse("plugin_foo@mfdata\n"),
            Some(Label::new("foo", "mfdata"))
        );
        assert_eq!(
            Label::parse("plugin_a@b@mfserv"),
            Some(Label::new("a@b", "mfserv"))
        );
        assert_eq!(Label::parse("foo@mfdata"), None);
        assert_eq!(Label::parse("plugin_foo"), None);
        assert_eq!(Label::parse("plugin_foo@"), None);
        assert_eq!(Label::parse("plugin_a@x\nplugin_b@x"), None);
        assert_eq!(Label::new("x", "MFDATA").to_string(), "plugin_x@mfdata");
    }
}
