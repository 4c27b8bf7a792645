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
}

impl Invalid {
    /// What to do about it.
    pub(crate) fn hint(&self) -> String {
        format!("`mfplug check {}` lists every problem", self.dir.display())
    }
}

/// [`load`], with its problems as an [`Invalid`] error.
pub(crate) fn load_reported(dir: &Path, settings: &Settings) -> Result<PluginConfig, Invalid> {
    load(dir, settings).map_err(|problems| Invalid {
        dir: dir.to_path_buf(),
        problems,
    })
}
