//! The schema of `config.ini`: which sections and keys exist, their defaults and coercions.
//!
//! It follows MetWork's plugin configuration: `[general]` with `_`-keys, free `[custom*]`
//! sections, `[extra_daemon_*]`, `[app_*]` and `[step_*]` process sections, and
//! `[switch_rules*:*]` sections kept as they are. Anything else is refused with a "did you
//! mean", so that a typo does not silently become a key nobody reads.

/// How a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text (`null` reads as the empty string).
    Text,
    /// A non-negative integer.
    Int,
    /// `1 true yes y t` (any case) are true, anything else false; written `1`/`0`.
    Bool,
    /// `^[a-z0-9-_.]+$`, as MetWork's `_version`.
    Version,
}

/// A known key: its name, how it is read and its default, if it has one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySpec {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) default: Option<&'static str>,
}

const fn key(name: &'static str, kind: Kind, default: Option<&'static str>) -> KeySpec {
    KeySpec {
        name,
        kind,
        default,
    }
}

pub(crate) const GENERAL: &[KeySpec] = &[
    key("_version", Kind::Version, None),
    key("_release", Kind::Version, Some("1")),
    key("_summary", Kind::Text, Some("")),
    key("_license", Kind::Text, Some("")),
    key("_url", Kind::Text, Some("")),
    key("_maintainer", Kind::Text, Some("")),
    key("_vendor", Kind::Text, Some("")),
    key("_add_plugin_dir_to_python_path", Kind::Bool, Some("1")),
    // The interpreter `mfplug lock` resolves for (issue 5); `python3` on PATH when unset.
    key("python", Kind::Text, None),
];

/// Keys of `[extra_daemon_*]`, `[app_*]` and `[step_*]` sections.
pub(crate) const PROCESS: &[KeySpec] = &[
    key("_cmd_and_args", Kind::Text, None),
    key("numprocesses", Kind::Int, Some("1")),
    key("graceful_timeout", Kind::Int, Some("10")),
    key("max_age", Kind::Int, Some("0")),
    key("rlimit_as", Kind::Int, Some("0")),
    key("rlimit_nofile", Kind::Int, Some("0")),
    key("rlimit_stack", Kind::Int, Some("0")),
    key("rlimit_fsize", Kind::Int, Some("0")),
    key("debug", Kind::Bool, Some("0")),
    key("log_split_stdout_stderr", Kind::Text, Some("AUTO")),
    key("log_split_multiple_workers", Kind::Text, Some("AUTO")),
];

/// What a section is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    General,
    /// `[custom]` and `[custom*]`: free keys, all text.
    Custom,
    /// `[extra_daemon_NAME]`: only the [`PROCESS`] keys.
    ExtraDaemon,
    /// `[app_NAME]` and `[step_NAME]`: the [`PROCESS`] keys plus the module's own, kept as text.
    ModuleProcess,
    /// `[switch_rules*:*]`: kept as they are.
    SwitchRules,
    /// Sections starting with `_`: ignored, as in MetWork.
    Private,
    Unknown,
}

/// The prefixes of process sections, and the `_cmd_and_args` placeholder naming the process.
pub(crate) const PROCESS_PREFIXES: &[(&str, &str)] = &[
    ("extra_daemon_", "extra_name"),
    ("app_", "app_name"),
    ("step_", "step_name"),
];

pub(crate) fn section_kind(name: &str) -> SectionKind {
    if name.starts_with('_') {
        SectionKind::Private
    } else if name == "general" {
        SectionKind::General
    } else if name.starts_with("custom") {
        SectionKind::Custom
    } else if name.starts_with("switch_rules") && name.contains(':') {
        SectionKind::SwitchRules
    } else if name.len() > "extra_daemon_".len() && name.starts_with("extra_daemon_") {
        SectionKind::ExtraDaemon
    } else if (name.len() > 4 && name.starts_with("app_"))
        || (name.len() > 5 && name.starts_with("step_"))
    {
        SectionKind::ModuleProcess
    } else {
        SectionKind::Unknown
    }
}

/// The known keys of a section kind; `None` when the section takes free keys.
pub(crate) fn known_keys(kind: SectionKind) -> Option<&'static [KeySpec]> {
    match kind {
        SectionKind::General => Some(GENERAL),
        SectionKind::ExtraDaemon | SectionKind::ModuleProcess => Some(PROCESS),
        _ => None,
    }
}

/// The spec of `key` in a section of `kind`, if the key is known there.
pub(crate) fn key_spec(kind: SectionKind, key: &str) -> Option<&'static KeySpec> {
    known_keys(kind)?.iter().find(|k| k.name == key)
}

/// Whether `key` may appear in a section of `kind`.
pub(crate) fn key_allowed(kind: SectionKind, key: &str) -> bool {
    match kind {
        SectionKind::General | SectionKind::ExtraDaemon => key_spec(kind, key).is_some(),
        SectionKind::Custom | SectionKind::ModuleProcess | SectionKind::SwitchRules => true,
        SectionKind::Private => true,
        SectionKind::Unknown => false,
    }
}

/// Why a value does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CoerceError {
    #[error("`{0}` is not a non-negative integer")]
    NotInt(String),
    #[error("`{0}` is not a valid version: use only a-z, 0-9, `-`, `_` and `.`")]
    BadVersion(String),
}

/// Reads `value` as `kind` and gives its normal form (`1`/`0` for booleans).
pub(crate) fn coerce(kind: Kind, value: &str) -> Result<String, CoerceError> {
    let value = value.trim();
    if value == "null" {
        return match kind {
            Kind::Bool => Ok("0".into()),
            Kind::Int => Err(CoerceError::NotInt(value.into())),
            Kind::Version => Err(CoerceError::BadVersion(value.into())),
            Kind::Text => Ok(String::new()),
        };
    }
    match kind {
        Kind::Text => Ok(value.to_owned()),
        Kind::Bool => Ok(if parse_bool(value) { "1" } else { "0" }.into()),
        Kind::Int => value
            .parse::<u64>()
            .map(|n| n.to_string())
            .map_err(|_| CoerceError::NotInt(value.into())),
        Kind::Version => {
            if !value.is_empty()
                && value
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
            {
                Ok(value.to_owned())
            } else {
                Err(CoerceError::BadVersion(value.into()))
            }
        }
    }
}

/// MetWork's boolean reading: `1 true yes y t` in any case.
pub(crate) fn parse_bool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "t"
    )
}

/// Names longer than this get no suggestion: a typo of a known name is short, and comparing
/// a long one with every prefix of it would take time quadratic in its length.
const MAX_SUGGESTED_LEN: usize = 64;

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A suggestion for an unknown section name: a known name, or a known prefix put in front of
/// what looks like the section's own name (`extra_deamon_foo` gives `extra_daemon_foo`).
pub(crate) fn suggest_section(name: &str) -> Option<String> {
    if name.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    if let Some(found) = did_you_mean(name, ["general", "custom"]) {
        return Some(found.to_owned());
    }
    let mut best: Option<(f64, String)> = None;
    for (i, _) in name.match_indices('_') {
        // `_` is one byte: the split after it is on a char boundary.
        let Some((head, rest)) = name.split_at_checked(i + 1) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        for (prefix, _) in PROCESS_PREFIXES {
            let score = strsim::jaro_winkler(head, prefix);
            if score > 0.8 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, format!("{prefix}{rest}")));
            }
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_kinds() {
        assert_eq!(section_kind("general"), SectionKind::General);
        assert_eq!(section_kind("custom"), SectionKind::Custom);
        assert_eq!(section_kind("custom_db"), SectionKind::Custom);
        assert_eq!(section_kind("extra_daemon_foo"), SectionKind::ExtraDaemon);
        assert_eq!(section_kind("extra_daemon_"), SectionKind::Unknown);
        assert_eq!(section_kind("app_main"), SectionKind::ModuleProcess);
        assert_eq!(section_kind("step_main"), SectionKind::ModuleProcess);
        assert_eq!(
            section_kind("switch_rules:fnmatch:latest"),
            SectionKind::SwitchRules
        );
        assert_eq!(section_kind("_private"), SectionKind::Private);
        assert_eq!(section_kind("generl"), SectionKind::Unknown);
    }

    #[test]
    fn coercions() {
        assert_eq!(coerce(Kind::Bool, "Yes").unwrap(), "1");
        assert_eq!(coerce(Kind::Bool, "T").unwrap(), "1");
        assert_eq!(coerce(Kind::Bool, "0").unwrap(), "0");
        assert_eq!(coerce(Kind::Bool, "nope").unwrap(), "0");
        assert_eq!(coerce(Kind::Bool, "null").unwrap(), "0");
        assert_eq!(coerce(Kind::Text, "null").unwrap(), "");
        assert_eq!(coerce(Kind::Int, " 42 ").unwrap(), "42");
        assert_eq!(
            coerce(Kind::Int, "-1").unwrap_err(),
            CoerceError::NotInt("-1".into())
        );
        assert!(coerce(Kind::Int, "1e3").is_err());
        assert_eq!(coerce(Kind::Version, "1.0.0-rc_1").unwrap(), "1.0.0-rc_1");
        assert!(coerce(Kind::Version, "1.0 beta").is_err());
        assert!(coerce(Kind::Version, "V1").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("numprocess", ["numprocesses", "debug"]),
            Some("numprocesses")
        );
        assert_eq!(did_you_mean("zzz", ["numprocesses"]), None);
        assert_eq!(suggest_section("generl").as_deref(), Some("general"));
        assert_eq!(
            suggest_section("extra_deamon_foo").as_deref(),
            Some("extra_daemon_foo")
        );
        assert_eq!(suggest_section("aap_foo").as_deref(), Some("app_foo"));
        assert_eq!(
            suggest_section("éxtra_déamon_é").as_deref(),
            Some("extra_daemon_é")
        );
        assert_eq!(suggest_section("_"), None);
        // A long name gets no suggestion (and takes no time).
        let long = "a_".repeat(20_000);
        assert_eq!(suggest_section(&long), None);
        assert_eq!(
            did_you_mean(&"numprocesses".repeat(10), ["numprocesses"]),
            None
        );
    }
}
