//! The module a plugin belongs to: the one its label names, as in MetWork (`plugin_NAME@mfserv`
//! is an MFSERV plugin: its variables are `MFSERV_CURRENT_PLUGIN_*`). `--module` and
//! `MFPLUG_MODULE` name the module of a plugin being created; given for a plugin whose label
//! names another module, they are an error, as MetWork refuses a label whose module is not the
//! running one. A module mfplug does not know is an error naming the known ones.

use std::path::Path;

use super::{Problem, Settings};
use crate::plugin::{self, Label};

/// The modules mfplug knows, upper case, as MetWork's `adm/plugins.py` define them: the
/// generic model (mfplug's own `MFPLUG`, and `GENERIC`, MetWork's name for it outside a
/// module), then `MFSERV`, `MFDATA` and `MFBASE`.
pub(crate) const KNOWN: [&str; 5] = ["MFPLUG", "GENERIC", "MFSERV", "MFDATA", "MFBASE"];

/// Whether mfplug knows `module` (in any case).
pub(crate) fn is_known(module: &str) -> bool {
    KNOWN.iter().any(|known| known.eq_ignore_ascii_case(module))
}

/// The known modules as a label writes them, for a message: "`mfplug` (or `generic`),
/// `mfserv`, `mfdata` and `mfbase`".
pub(crate) fn known_list() -> String {
    "`mfplug` (or `generic`), `mfserv`, `mfdata` and `mfbase`".to_owned()
}

/// The module of the plugin labelled `label` (read from `dir`), upper case: the label's,
/// which must be a known one written in lower case, and which `--module`/`MFPLUG_MODULE`, when
/// given, must agree with. Else the problem is added to `problems` (on a disagreement, it names
/// both and how to fix it), and the module is the label's when mfplug knows it (its profile
/// checks the rest of the plugin), else `settings.module`, so that loading goes on to report
/// the other problems.
pub(crate) fn of_label(
    dir: &Path,
    label: &Label,
    settings: &Settings,
    problems: &mut Vec<Problem>,
) -> String {
    match checked(dir, label, settings) {
        Ok(module) => module,
        Err(problem) => {
            problems.push(*problem);
            if is_known(&label.module) {
                label.module.to_ascii_uppercase()
            } else {
                settings.module.clone()
            }
        }
    }
}

/// [`of_label`], its problem returned.
fn checked(dir: &Path, label: &Label, settings: &Settings) -> Result<String, Box<Problem>> {
    let path = dir.join(plugin::LABEL_FILE);
    let line = label_line(&path);
    let problem = |message: String, hint: String| {
        Box::new(Problem::error(Some(&path), message).at(line).hint(hint))
    };
    let written = label.module.as_str();
    let module = written.to_ascii_uppercase();
    if !is_known(written) {
        return Err(problem(
            format!(
                "the label names module `{written}`, which mfplug does not know: the known \
                 modules are {}",
                known_list()
            ),
            format!(
                "write one of them after the `@` (e.g. `plugin_{}@mfplug` for a plugin of no \
                 MetWork module); mfplug knows a module by its profile (its keys, defaults and \
                 checks), so another module needs one added to mfplug first",
                label.name
            ),
        ));
    }
    if written != written.to_ascii_lowercase() {
        return Err(problem(
            format!("the label names module `{written}` in upper case"),
            format!(
                "write `plugin_{}@{}`: MetWork (layerapi2 and mfplugin) matches a label's \
                 module in lower case",
                label.name,
                written.to_ascii_lowercase()
            ),
        ));
    }
    if settings.module_given && !settings.module.eq_ignore_ascii_case(&module) {
        return Err(problem(
            format!(
                "the label names module `{written}` but `--module`/`MFPLUG_MODULE` names `{}`",
                settings.module
            ),
            format!(
                "a plugin's module comes from its label: drop `--module {given}` (and unset \
                 `MFPLUG_MODULE`) to use it as an {module} plugin, or write \
                 `plugin_{}@{}` in the label to make it an {given} plugin",
                label.name,
                settings.module.to_ascii_lowercase(),
                given = settings.module,
            ),
        ));
    }
    Ok(module)
}

/// The line of the label's text in the label file (after blank and `#` lines); 0 when it
/// cannot be read again.
fn label_line(path: &Path) -> usize {
    let Ok(Some(text)) = plugin::read_own_file(path) else {
        return 0;
    };
    text.lines()
        .position(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
        .map_or(0, |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(module: &str, given: bool) -> Settings {
        Settings {
            module: module.into(),
            module_given: given,
            config_name: "GENERIC".into(),
            home: None,
            env: std::collections::BTreeMap::new(),
        }
    }

    /// The module of a plugin labelled `text`, `module` given or not.
    fn module_of(text: &str, module: &str, given: bool) -> Result<String, Box<Problem>> {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::write(tmp.path().join(plugin::LABEL_FILE), text).unwrap();
        let label = Label::read(tmp.path()).unwrap();
        checked(tmp.path(), &label, &settings(module, given))
    }

    #[test]
    fn the_label_names_the_module() {
        for (text, module, given, expected) in [
            ("plugin_foo@mfserv\n", "MFPLUG", false, "MFSERV"),
            ("plugin_foo@mfserv\n", "MFSERV", true, "MFSERV"),
            ("plugin_foo@generic\n", "MFPLUG", false, "GENERIC"),
        ] {
            let got = module_of(text, module, given).unwrap();
            assert_eq!(got, expected, "{text} {module}");
        }
    }

    #[test]
    fn disagreeing_unknown_and_upper_case_modules_are_refused() {
        let problem = module_of("# comment\n\nplugin_foo@mfserv\n", "MFDATA", true).unwrap_err();
        assert_eq!(problem.line, Some(3));
        assert!(problem.message.contains("`mfserv`") && problem.message.contains("`MFDATA`"));
        let hint = problem.hint.unwrap();
        assert!(hint.contains("drop `--module MFDATA`") && hint.contains("plugin_foo@mfdata"));

        let problem = module_of("plugin_foo@mfodd\n", "MFPLUG", false).unwrap_err();
        assert_eq!(problem.line, Some(1));
        assert!(problem
            .message
            .contains("`mfodd`, which mfplug does not know"));
        assert!(problem.message.contains("`mfserv`, `mfdata` and `mfbase`"));

        let problem = module_of("plugin_foo@MFSERV\n", "MFPLUG", false).unwrap_err();
        assert!(problem.hint.unwrap().contains("`plugin_foo@mfserv`"));
        assert!(is_known("mfbase") && !is_known("mfadmin"));
    }
}
