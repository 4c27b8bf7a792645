//! The schema of `config.ini`: which sections and keys exist, their defaults and coercions.
//!
//! It follows MetWork's plugin configuration: `[general]` with `_`-keys, free `[custom*]`
//! sections, `[extra_daemon_*]`, `[app_*]` and `[step_*]` process sections, and
//! `[switch_rules*:*]` sections kept as they are. Anything else is refused with a "did you
//! mean", so that a typo does not silently become a key nobody reads.

/// How a value is read, as MetWork's coercions read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Optional text: `null` reads as the empty string (MetWork's `null_to_empty`).
    Text,
    /// Required text: non-empty, `null` kept as it is (MetWork's `minlength: 1`, no coercion).
    RequiredText,
    /// An integer as MetWork's `to_int` reads it (Python's `int`): anything else reads as 0,
    /// with a warning.
    Int,
    /// `1 true yes y t` (any case) are true, anything else false; written `1`/`0`.
    Bool,
    /// A number as Python's `float` reads it; anything else is refused.
    Float,
    /// `^[a-z0-9-_.]+$`, as MetWork's `_version`.
    Version,
    /// One of the listed words (MetWork's `allowed`).
    OneOf(&'static [&'static str]),
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

/// The `[general]` keys of every module (mfplugin's `SCHEMA`), plus mfplug's `python`.
pub(crate) const GENERAL: &[KeySpec] = &[
    key("_version", Kind::Version, None),
    key("_release", Kind::Version, Some("1")),
    key("_summary", Kind::RequiredText, None),
    key("_license", Kind::RequiredText, None),
    key("_url", Kind::RequiredText, None),
    key("_maintainer", Kind::RequiredText, None),
    key("_vendor", Kind::RequiredText, None),
    key("_add_plugin_dir_to_python_path", Kind::Bool, Some("1")),
    // The interpreter `mfplug lock` resolves for (issue 5); `python3` on PATH when unset.
    key("python", Kind::Text, None),
];

/// Keys of `[extra_daemon_*]`, `[app_*]` and `[step_*]` sections (mfplugin's
/// `COMMAND_SCHEMA`): `numprocesses` defaults to 0, a process that does not run.
pub(crate) const PROCESS: &[KeySpec] = &[
    key("_cmd_and_args", Kind::Text, None),
    key("numprocesses", Kind::Int, Some("0")),
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

/// MFSERV's `[general]` keys (`mfserv/adm/plugins.py`): the nginx fragment files (relative
/// to the plugin dir, which must exist unless empty or `null`) and the lua path.
pub(crate) const MFSERV_GENERAL: &[KeySpec] = &[
    key("_extra_nginx_http_conf_filename", Kind::Text, Some("")),
    key("_extra_nginx_server_conf_filename", Kind::Text, Some("")),
    key(
        "_extra_nginx_init_worker_by_lua_block_filename",
        Kind::Text,
        Some(""),
    ),
    key("_add_plugin_dir_to_lua_path", Kind::Bool, Some("1")),
];

/// MFSERV's `[internal]` keys.
pub(crate) const MFSERV_INTERNAL: &[KeySpec] = &[key("disable_nginx_conf", Kind::Bool, Some("0"))];

/// MFSERV's `[app_*]` keys besides the [`PROCESS`] ones. `timeout` has no default here: it
/// falls back to `MFSERV_NGINX_TIMEOUT` (`config::profile`).
pub(crate) const MFSERV_APP: &[KeySpec] = &[
    key("smart_stop_signal", Kind::Int, Some("15")),
    key("smart_stop_delay", Kind::Int, Some("3")),
    key("smart_start_delay", Kind::Int, Some("3")),
    key("timeout", Kind::Int, None),
    key("_debug_extra_options", Kind::Text, Some("")),
    key("_prefix_based_routing", Kind::Bool, Some("1")),
    key("_virtualdomain_based_routing", Kind::Bool, Some("0")),
    key(
        "virtualdomain_based_routing_extra_vhosts",
        Kind::Text,
        Some(""),
    ),
    key("_static_routing", Kind::Bool, Some("1")),
    key("_static_url_prefix", Kind::Text, Some("/static")),
    key("_static_directory", Kind::Text, Some("/static")),
    key("prefix_based_routing_extra_routes", Kind::Text, Some("")),
    key("_gateway_interface_mode", Kind::Text, Some("")),
    key("_extra_nginx_conf_filename", Kind::Text, Some("")),
    key("_extra_nginx_conf_static_filename", Kind::Text, Some("")),
    key("_http_test_endpoint", Kind::Text, Some("")),
    key("_http_test_expected_status_code", Kind::Int, Some("200")),
    key("_http_test_expected_body", Kind::Text, Some("OK")),
    key("_http_test_timeout", Kind::Int, Some("10")),
];

/// The failure policies of an MFDATA step.
pub(crate) const FAILURE_POLICIES: &[&str] = &["keep", "delete", "move"];

/// MFDATA's `[step_*]` keys besides the [`PROCESS`] ones (`mfdata/adm/plugins.py`).
pub(crate) const MFDATA_STEP: &[KeySpec] = &[
    key(
        "watched_directories",
        Kind::Text,
        Some("{MFDATA_CURRENT_STEP_DIR}"),
    ),
    key(
        "failure_policy",
        Kind::OneOf(FAILURE_POLICIES),
        Some("keep"),
    ),
    key("failure_policy_move_dest_dir", Kind::Text, Some("")),
    key("timeout", Kind::Int, Some("600")),
    key("retry_total", Kind::Int, Some("0")),
    key("retry_min_wait", Kind::Float, Some("10")),
    key("retry_max_wait", Kind::Float, Some("120")),
    key("retry_backoff", Kind::Float, Some("0.0")),
];

/// MFBASE's `[general]` keys (`mfbase/adm/plugins.py`).
pub(crate) const MFBASE_GENERAL: &[KeySpec] = &[
    key("_use_postgresql", Kind::Bool, Some("1")),
    key("_use_storage", Kind::Bool, Some("1")),
    key("storage_access_allows", Kind::Text, Some("all")),
    key("storage_auth_passwd_filename", Kind::Text, Some("")),
    key("storage_satisfy", Kind::OneOf(&["any", "all"]), Some("any")),
    key("storage_forbidden_dav_methods", Kind::Text, Some("")),
    key("storage_dav_access", Kind::Text, Some("")),
    key("storage_autoindex_format", Kind::Text, Some("html")),
];

/// The keys a section kind takes in a module: the known ones (a later table overrides a key
/// of an earlier one), and whether other keys are allowed too (as text).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub(crate) known: &'static [&'static [KeySpec]],
    pub(crate) open: bool,
}

/// Free keys, all text.
const FREE: Keys = Keys {
    known: &[],
    open: true,
};

/// A module's profile, as its `adm/plugins.py` defines it: the keys of each section kind;
/// `None` for a section kind the module does not have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    pub(crate) general: Keys,
    pub(crate) internal: Option<Keys>,
    pub(crate) extra_daemon: Keys,
    pub(crate) app: Option<Keys>,
    pub(crate) step: Option<Keys>,
    pub(crate) switch_rules: bool,
}

/// mfplug's own module (and MetWork's `GENERIC`): `[app_*]` and `[step_*]` take the process
/// keys plus free ones, as mfplug did before modules had profiles.
const GENERIC: Profile = Profile {
    general: Keys {
        known: &[GENERAL],
        open: false,
    },
    internal: None,
    extra_daemon: Keys {
        known: &[PROCESS],
        open: false,
    },
    app: Some(Keys {
        known: &[PROCESS],
        open: true,
    }),
    step: Some(Keys {
        known: &[PROCESS],
        open: true,
    }),
    switch_rules: false,
};

/// The process keys alone, no other key allowed (mfplugin's `[app_*]` and
/// `[extra_daemon_*]`).
const STRICT_PROCESS: Keys = Keys {
    known: &[PROCESS],
    open: false,
};

/// MFSERV (`mfserv/adm/plugins.py`): nginx keys in `[general]`, `[internal]`, its `[app_*]`
/// keys; no `[step_*]`.
const MFSERV: Profile = Profile {
    general: Keys {
        known: &[GENERAL, MFSERV_GENERAL],
        open: false,
    },
    internal: Some(Keys {
        known: &[MFSERV_INTERNAL],
        open: false,
    }),
    extra_daemon: STRICT_PROCESS,
    app: Some(Keys {
        known: &[PROCESS, MFSERV_APP],
        open: false,
    }),
    step: None,
    switch_rules: false,
};

/// MFDATA (`mfdata/adm/plugins.py`): its `[step_*]` keys and `[switch_rules*:*]` sections;
/// `[app_*]` takes the process keys alone, as in mfplugin's base schema.
const MFDATA: Profile = Profile {
    general: GENERIC.general,
    internal: None,
    extra_daemon: STRICT_PROCESS,
    app: Some(STRICT_PROCESS),
    step: Some(Keys {
        known: &[PROCESS, MFDATA_STEP],
        open: false,
    }),
    switch_rules: true,
};

/// MFBASE (`mfbase/adm/plugins.py`): PostgreSQL and storage keys in `[general]`; `[app_*]`
/// takes the process keys alone; no `[step_*]`.
const MFBASE: Profile = Profile {
    general: Keys {
        known: &[GENERAL, MFBASE_GENERAL],
        open: false,
    },
    internal: None,
    extra_daemon: STRICT_PROCESS,
    app: Some(STRICT_PROCESS),
    step: None,
    switch_rules: false,
};

/// The profile of `module` (upper case); the generic one for a module mfplug does not know
/// (that problem is reported from the label).
pub(crate) fn profile(module: &str) -> &'static Profile {
    match module {
        "MFSERV" => &MFSERV,
        "MFDATA" => &MFDATA,
        "MFBASE" => &MFBASE,
        _ => &GENERIC,
    }
}

impl Profile {
    /// The keys of a section of `kind`; `None` when the module has no such section.
    pub(crate) fn keys(&self, kind: SectionKind) -> Option<Keys> {
        match kind {
            SectionKind::General => Some(self.general),
            SectionKind::Internal => self.internal,
            SectionKind::Custom | SectionKind::Private => Some(FREE),
            SectionKind::ExtraDaemon => Some(self.extra_daemon),
            SectionKind::App => self.app,
            SectionKind::Step => self.step,
            SectionKind::SwitchRules => self.switch_rules.then_some(FREE),
            SectionKind::Unknown => None,
        }
    }

    /// The known keys of a section of `kind`, each once (a later table's spec wins), in
    /// table order.
    pub(crate) fn known_keys(&self, kind: SectionKind) -> Vec<&'static KeySpec> {
        let mut out: Vec<&'static KeySpec> = Vec::new();
        for table in self.keys(kind).map_or(&[][..], |k| k.known) {
            for spec in table.iter() {
                match out.iter_mut().find(|s| s.name == spec.name) {
                    Some(slot) => *slot = spec,
                    None => out.push(spec),
                }
            }
        }
        out
    }

    /// The spec of `key` in a section of `kind`, if the key is known there.
    pub(crate) fn key_spec(&self, kind: SectionKind, key: &str) -> Option<&'static KeySpec> {
        self.known_keys(kind).into_iter().find(|k| k.name == key)
    }

    /// Whether `key` may appear in a section of `kind`.
    pub(crate) fn key_allowed(&self, kind: SectionKind, key: &str) -> bool {
        match self.keys(kind) {
            Some(keys) => keys.open || self.key_spec(kind, key).is_some(),
            None => false,
        }
    }

    /// The sections the module has, for a message.
    pub(crate) fn section_list(&self) -> String {
        let mut names = vec!["`[general]`"];
        if self.internal.is_some() {
            names.push("`[internal]`");
        }
        names.extend(["`[custom*]`", "`[extra_daemon_NAME]`"]);
        if self.app.is_some() {
            names.push("`[app_NAME]`");
        }
        if self.step.is_some() {
            names.push("`[step_NAME]`");
        }
        if self.switch_rules {
            names.push("`[switch_rules*:*]`");
        }
        match names.split_last() {
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Whether the module has sections of `kind`.
    pub(crate) fn has_section(&self, kind: SectionKind) -> bool {
        self.keys(kind).is_some()
    }
}

/// What a section is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    General,
    /// `[internal]` (MFSERV).
    Internal,
    /// `[custom]` and `[custom*]`: free keys, all text.
    Custom,
    /// `[extra_daemon_NAME]`: only the [`PROCESS`] keys.
    ExtraDaemon,
    /// `[app_NAME]`: the [`PROCESS`] keys plus the module's own.
    App,
    /// `[step_NAME]`: the [`PROCESS`] keys plus the module's own.
    Step,
    /// `[switch_rules*:*]` (MFDATA): kept as they are.
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
    } else if name == "internal" {
        SectionKind::Internal
    } else if name.starts_with("custom") {
        SectionKind::Custom
    } else if name.starts_with("switch_rules") && name.contains(':') {
        SectionKind::SwitchRules
    } else if name.len() > "extra_daemon_".len() && name.starts_with("extra_daemon_") {
        SectionKind::ExtraDaemon
    } else if name.len() > 4 && name.starts_with("app_") {
        SectionKind::App
    } else if name.len() > 5 && name.starts_with("step_") {
        SectionKind::Step
    } else {
        SectionKind::Unknown
    }
}

/// Why a value does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CoerceError {
    #[error("`{0}` is not an integer: it reads as 0, as MetWork's `to_int` reads it")]
    NotInt(String),
    #[error("`{0}` is not a number")]
    NotFloat(String),
    #[error("`{0}` is not a valid version: use only a-z, 0-9, `-`, `_` and `.`")]
    BadVersion(String),
    #[error("is empty, but it is required (MetWork requires a non-empty value)")]
    Empty,
    #[error("`{0}` is not one of {1}")]
    NotOneOf(String, String),
}

impl CoerceError {
    /// The value MetWork reads instead, when it reads one: then the problem is a warning.
    pub(crate) fn fallback(&self) -> Option<&'static str> {
        match self {
            CoerceError::NotInt(_) => Some("0"),
            _ => None,
        }
    }
}

/// Reads `value` as `kind` and gives its normal form (`1`/`0` for booleans).
pub(crate) fn coerce(kind: Kind, value: &str) -> Result<String, CoerceError> {
    let value = value.trim();
    match kind {
        Kind::Text if value == "null" => Ok(String::new()),
        Kind::Text => Ok(value.to_owned()),
        Kind::RequiredText if value.is_empty() => Err(CoerceError::Empty),
        Kind::RequiredText => Ok(value.to_owned()),
        Kind::Bool => Ok(if parse_bool(value) { "1" } else { "0" }.into()),
        Kind::Int => to_int(value)
            .map(|n| n.to_string())
            .ok_or_else(|| CoerceError::NotInt(value.into())),
        Kind::Float => to_float(value)
            .map(|_| value.to_owned())
            .ok_or_else(|| CoerceError::NotFloat(value.into())),
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
        Kind::OneOf(words) => {
            let value = if value == "null" { "" } else { value };
            if words.contains(&value) {
                Ok(value.to_owned())
            } else {
                let list = words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(CoerceError::NotOneOf(value.into(), list))
            }
        }
    }
}

/// Python's `int` of a (trimmed) text: an optional sign, then digits, `_` allowed between
/// digits; `None` otherwise (or past `i64`).
pub(crate) fn to_int(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    let well_formed = !digits.is_empty()
        && digits
            .split('_')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return None;
    }
    value.replace('_', "").parse().ok()
}

/// Python's `float` of a (trimmed) text, near enough: what Rust reads as an `f64`.
pub(crate) fn to_float(value: &str) -> Option<f64> {
    value.parse().ok()
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
        assert_eq!(section_kind("app_main"), SectionKind::App);
        assert_eq!(section_kind("step_main"), SectionKind::Step);
        assert_eq!(section_kind("internal"), SectionKind::Internal);
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
        // As MetWork's `to_int` (Python's `int`): a sign and `_` between digits are fine;
        // anything else is refused with 0 to read instead.
        assert_eq!(coerce(Kind::Int, "-1").unwrap(), "-1");
        assert_eq!(coerce(Kind::Int, "+1_000").unwrap(), "1000");
        for junk in ["1e3", "null", "", "1_", "_1", "1__0", "--1", "0x10"] {
            let e = coerce(Kind::Int, junk).unwrap_err();
            assert_eq!(e, CoerceError::NotInt(junk.into()));
            assert_eq!(e.fallback(), Some("0"));
        }
        assert_eq!(
            coerce(Kind::RequiredText, " ").unwrap_err(),
            CoerceError::Empty
        );
        assert_eq!(coerce(Kind::RequiredText, "null").unwrap(), "null");
        assert_eq!(coerce(Kind::Float, "1.5").unwrap(), "1.5");
        assert!(coerce(Kind::Float, "soon").is_err());
        let policy = Kind::OneOf(&["keep", "move"]);
        assert_eq!(coerce(policy, "move").unwrap(), "move");
        assert_eq!(
            coerce(policy, "drop").unwrap_err().to_string(),
            "`drop` is not one of `keep`, `move`"
        );
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
