//! What a MetWork plugin dir may hold that mfplug does not do, said by `mfplug check` rather
//! than ignored: a Python 2 virtualenv, and a Makefile's `custom::` target.

use std::path::Path;

use super::Problem;

/// MetWork's dir of Python 2 requirements.
const PYTHON2_SOURCES: &str = "python2_virtualenv_sources";

/// A warning for each part of the plugin in `dir` that mfplug does not build.
pub(crate) fn unsupported(dir: &Path) -> Vec<Problem> {
    let mut out = Vec::new();
    let python2 = dir.join(PYTHON2_SOURCES);
    if python2.is_dir() {
        let mut p = Problem::warning(
            Some(&python2),
            format!("`{PYTHON2_SOURCES}/` is not supported: mfplug builds only a Python 3 env (`python3_virtualenv_sources/`)"),
        );
        p.hint = Some("move the requirements to `python3_virtualenv_sources/requirements-to-freeze.txt`, or remove the dir".into());
        out.push(p);
    }
    let makefile = dir.join("Makefile");
    if let Ok(Some(text)) = crate::plugin::read_own_file(&makefile) {
        if let Some(line) = custom_target_line(&text) {
            let mut p = Problem::warning(
                Some(&makefile),
                "the `custom::` target is not supported: `mfplug build` does not run it",
            );
            p.line = Some(line);
            p.hint = Some("run its steps yourself before `mfplug release`, or move them into a `bin/` script the plugin runs".into());
            out.push(p);
        }
    }
    out
}

/// The line (from 1) of a Makefile rule whose target is `custom` (`custom::` or `custom:`)
/// and that does something: a prerequisite, or a recipe line that is not a comment. MetWork's
/// own templates write an empty one (`custom::` then `@# your custom build directives here`),
/// which mfplug has nothing to say about.
fn custom_target_line(text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().find_map(|(i, line)| {
        let rest = line.strip_prefix("custom")?.trim_start();
        let prerequisites = rest.strip_prefix("::").or_else(|| rest.strip_prefix(':'))?;
        if rest.starts_with(":=") {
            return None;
        }
        let recipe = lines
            .iter()
            .skip(i + 1)
            .take_while(|l| l.starts_with('\t'))
            .map(|l| l.trim().trim_start_matches(['@', '-', '+']).trim_start());
        let does_something = !prerequisites.trim().is_empty()
            || recipe
                .into_iter()
                .any(|r| !r.is_empty() && !r.starts_with('#'));
        does_something.then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::custom_target_line;

    #[test]
    fn custom_targets() {
        assert_eq!(
            custom_target_line("all:\n\techo\ncustom::\n\tmake x\n"),
            Some(3)
        );
        assert_eq!(custom_target_line("custom: dep\n"), Some(1));
        assert_eq!(
            custom_target_line("customize:\ncustom := 1\n\tcustom::\n"),
            None
        );
    }
}
