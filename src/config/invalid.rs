//! A configuration that does not load, as an error: the dir and every problem found, which
//! `ui::print_error` prints before the error line, and the hint (`mfplug check DIR`).

use std::path::{Path, PathBuf};

use super::{load, PluginConfig, Problem, Settings};

/// The configuration of `dir` has errors: `problems` lists them all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the configuration of `{}`", dir.display())]
pub(crate) struct Invalid {
    pub(crate) dir: PathBuf,
    pub(crate) problems: Vec<Problem>,
    /// What to do about it, when `mfplug check DIR` is not the answer (a dir the user never
    /// sees, such as an install's staging copy).
    hint: Option<String>,
}

impl Invalid {
    /// What to do about it.
    pub(crate) fn hint(&self) -> String {
        self.hint
            .clone()
            .unwrap_or_else(|| format!("`mfplug check {}` lists every problem", self.dir.display()))
    }

    /// The same error with another hint.
    pub(crate) fn with_hint(self, hint: impl Into<String>) -> Invalid {
        Invalid {
            hint: Some(hint.into()),
            ..self
        }
    }
}

/// [`load`], with its problems as an [`Invalid`] error.
pub(crate) fn load_reported(dir: &Path, settings: &Settings) -> Result<PluginConfig, Invalid> {
    load(dir, settings).map_err(|problems| Invalid {
        dir: dir.to_path_buf(),
        problems,
        hint: None,
    })
}
