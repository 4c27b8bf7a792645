//! What a module's profile does once the values are rendered, as MetWork's module
//! configuration classes do (`mfserv/adm/plugins.py`, `mfdata/adm/plugins.py`,
//! `mfbase/adm/plugins.py`): the checks that need the plugin dir or several keys at once
//! (a nginx fragment file that must exist, a `move` failure policy and its destination, the
//! order of the retry waits), and the values the module forces (an MFSERV app in debug runs
//! one process; its `graceful_timeout` is above its `timeout`).

use std::path::Path;

use indexmap::IndexMap;

use super::{variable_name, Origin, PluginConfig, Problem, Setting};

/// The effective sections of a plugin, as [`PluginConfig::sections`] holds them.
type Sections = IndexMap<String, IndexMap<String, Setting>>;

/// MFSERV's keys naming a nginx fragment file, relative to the plugin dir.
const NGINX_FILE_KEYS: &[&str] = &[
    "_extra_nginx_http_conf_filename",
    "_extra_nginx_server_conf_filename",
    "_extra_nginx_init_worker_by_lua_block_filename",
    "_extra_nginx_conf_filename",
    "_extra_nginx_conf_static_filename",
];

/// MFSERV's `timeout` of an app when `MFSERV_NGINX_TIMEOUT` is not set.
const DEFAULT_NGINX_TIMEOUT: i64 = 60;

/// Applies the profile of `module` to the rendered `config`: its checks (their problems added
/// to `problems`) and the values it forces, whose variables follow.
pub(crate) fn apply(
    module: &str,
    env: &std::collections::BTreeMap<String, String>,
    config: &mut PluginConfig,
    problems: &mut Vec<Problem>,
) {
    let dir = std::path::absolute(&config.dir).unwrap_or_else(|_| config.dir.clone());
    let mut forced: Vec<(String, String, String)> = Vec::new();
    match module {
        "MFSERV" => {
            check_nginx_files(&dir, &config.sections, problems);
            check_routes(&config.sections, problems);
            forced = mfserv_apps(&config.sections, env);
        }
        "MFDATA" => {
            check_steps(&config.sections, problems);
            forced = mfdata_steps(&config.sections);
        }
        "MFBASE" => forced = mfbase_storage(&dir, &config.sections, problems),
        _ => {}
    }
    for (section, key, value) in forced {
        force(module, config, &section, &key, value);
    }
}

/// Sets `[section] key` to `value` (a default when the key was not written) and its variable
/// (for a key not starting with `_`).
fn force(module: &str, config: &mut PluginConfig, section: &str, key: &str, value: String) {
    let Some(keys) = config.sections.get_mut(section) else {
        return;
    };
    if !key.starts_with('_') {
        config
            .variables
            .insert(variable_name(module, section, key), value.clone());
    }
    match keys.get_mut(key) {
        Some(setting) => setting.value = value,
        None => {
            keys.insert(
                key.to_owned(),
                Setting {
                    raw: value.clone(),
                    value,
                    variant: None,
                    origin: Origin::Default,
                },
            );
        }
    }
}

/// A problem about `[section] key`, at the line that set it (the section's file when it is a
/// default).
fn problem_at(section: &str, key: &str, setting: Option<&Setting>, message: String) -> Problem {
    let (file, line) = match setting.map(|s| &s.origin) {
        Some(Origin::File { path, line }) => (Some(path.as_path()), Some(*line)),
        _ => (None, None),
    };
    let mut problem = Problem::error(file, message)
        .in_section(section)
        .for_key(key);
    problem.line = line;
    problem
}

/// The sections whose name starts with `prefix`.
fn sections_with<'a>(
    sections: &'a Sections,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a IndexMap<String, Setting>)> + 'a {
    sections
        .iter()
        .filter(move |(name, _)| name.starts_with(prefix))
}

/// The integer value of a key (0 when absent: the schema coerced it already).
fn int(keys: &IndexMap<String, Setting>, key: &str) -> i64 {
    keys.get(key)
        .and_then(|s| s.value.trim().parse().ok())
        .unwrap_or(0)
}

/// MFSERV: a nginx fragment key of `[general]` or `[app_*]` names a file under the plugin dir,
/// unless it is empty (`null` reads as empty).
fn check_nginx_files(dir: &Path, sections: &Sections, problems: &mut Vec<Problem>) {
    let candidates = sections
        .iter()
        .filter(|(name, _)| *name == "general" || name.starts_with("app_"));
    for (section, keys) in candidates {
        for key in NGINX_FILE_KEYS {
            let Some(setting) = keys.get(*key) else {
                continue;
            };
            let value = setting.value.trim();
            if value.is_empty() || dir.join(value).is_file() {
                continue;
            }
            let message = format!(
                "`{key}` names `{value}`, which is not a file under the plugin dir (`{}`)",
                dir.join(value).display()
            );
            problems.push(problem_at(section, key, Some(setting), message).hint(
                "write the path of the nginx fragment relative to the plugin dir, or leave \
                     the value empty (or `null`) for none",
            ));
        }
    }
}

/// MFSERV: each `;`-separated route of `prefix_based_routing_extra_routes` starts with `/` and
/// does not end with one (`/` itself is allowed).
fn check_routes(sections: &Sections, problems: &mut Vec<Problem>) {
    let key = "prefix_based_routing_extra_routes";
    for (section, keys) in sections_with(sections, "app_") {
        let Some(setting) = keys.get(key) else {
            continue;
        };
        for route in setting.value.split(';').map(str::trim) {
            let why = if route.is_empty() || route == "/" {
                continue;
            } else if !route.starts_with('/') {
                "does not start with `/`"
            } else if route.ends_with('/') {
                "ends with `/` (only `/` itself may)"
            } else {
                continue;
            };
            let message = format!("`{key}`: the route `{route}` {why}");
            problems.push(problem_at(section, key, Some(setting), message));
        }
    }
}

/// MFSERV's forced app values: `timeout` ≤ 0 (or unset) is `MFSERV_NGINX_TIMEOUT`; in debug,
/// one process and no `max_age`; `graceful_timeout` is `timeout + smart_stop_delay + 10`, so
/// that the supervisor never kills the signal wrapper first.
fn mfserv_apps(
    sections: &Sections,
    env: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String, String)> {
    let nginx_timeout = env
        .get("MFSERV_NGINX_TIMEOUT")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_NGINX_TIMEOUT);
    let mut forced = Vec::new();
    for (section, keys) in sections_with(sections, "app_") {
        let mut timeout = int(keys, "timeout");
        if timeout <= 0 {
            timeout = nginx_timeout;
        }
        let mut set = |key: &str, value: i64| {
            forced.push((section.clone(), key.to_owned(), value.to_string()));
        };
        set("timeout", timeout);
        if keys.get("debug").is_some_and(|s| s.value == "1") {
            if int(keys, "numprocesses") > 0 {
                set("numprocesses", 1);
            }
            if int(keys, "max_age") > 0 {
                set("max_age", 0);
            }
        }
        let graceful = timeout
            .saturating_add(int(keys, "smart_stop_delay"))
            .saturating_add(10);
        set("graceful_timeout", graceful);
    }
    forced
}

/// MFDATA: a `move` failure policy needs its destination, and `retry_max_wait` may not be
/// below `retry_min_wait`.
fn check_steps(sections: &Sections, problems: &mut Vec<Problem>) {
    for (section, keys) in sections_with(sections, "step_") {
        let policy = keys.get("failure_policy");
        let dest = keys
            .get("failure_policy_move_dest_dir")
            .map_or("", |s| s.value.trim());
        if policy.is_some_and(|s| s.value == "move") && dest.is_empty() {
            let message =
                "`failure_policy = move` needs `failure_policy_move_dest_dir`, which is not set"
                    .to_owned();
            problems.push(problem_at(section, "failure_policy", policy, message).hint(
                "add `failure_policy_move_dest_dir = /the/dir` to the section, or choose \
                     `keep` or `delete`",
            ));
        }
        let wait = |key: &str| {
            keys.get(key)
                .and_then(|s| s.value.trim().parse::<f64>().ok())
        };
        if let (Some(min), Some(max)) = (wait("retry_min_wait"), wait("retry_max_wait")) {
            if max < min {
                let message = format!(
                    "`retry_max_wait` ({max}) is below `retry_min_wait` ({min}): it must be at \
                     least as long"
                );
                let setting = keys.get("retry_max_wait");
                let at = match setting.map(|s| &s.origin) {
                    Some(Origin::Default) => keys.get("retry_min_wait"),
                    _ => setting,
                };
                problems.push(problem_at(section, "retry_max_wait", at, message));
            }
        }
    }
}

/// MFDATA's forced step value: `graceful_timeout` is the step's `timeout`.
fn mfdata_steps(sections: &Sections) -> Vec<(String, String, String)> {
    sections_with(sections, "step_")
        .map(|(section, keys)| {
            let timeout = int(keys, "timeout").to_string();
            (section.clone(), "graceful_timeout".to_owned(), timeout)
        })
        .collect()
}

/// MFBASE: `storage_auth_passwd_filename`, relative to the plugin dir unless absolute, must
/// name a file; `storage_forbidden_dav_methods` is written upper case, comma separated.
fn mfbase_storage(
    dir: &Path,
    sections: &Sections,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String, String)> {
    let mut forced = Vec::new();
    let Some(general) = sections.get("general") else {
        return forced;
    };
    let key = "storage_auth_passwd_filename";
    if let Some(setting) = general.get(key) {
        let value = setting.value.trim();
        if !value.is_empty() {
            let path = dir.join(value);
            if !path.is_file() {
                let message = format!("`{key}`: `{}` is not a file", path.display());
                problems.push(problem_at("general", key, Some(setting), message));
            }
            let path = path.display().to_string();
            forced.push(("general".to_owned(), key.to_owned(), path));
        }
    }
    let key = "storage_forbidden_dav_methods";
    if let Some(setting) = general.get(key).filter(|s| !s.value.is_empty()) {
        let methods: Vec<String> = setting
            .value
            .replace(' ', ",")
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        forced.push(("general".to_owned(), key.to_owned(), methods.join(",")));
    }
    forced
}
