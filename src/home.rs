//! The runtime home (`$MFPLUG_HOME`): where installed plugins, admin overrides and logs live.
//!
//! This module owns the home's layout; the install pipeline that fills it comes with the
//! operator's commands.

use std::path::{Path, PathBuf};

/// The home: `--home`/`MFPLUG_HOME` (clap reads both), else `$XDG_DATA_HOME/mfplug`, else
/// `~/.local/share/mfplug`.
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("mfplug")
}

/// Where an installed (or devlinked) plugin named `name` lives.
pub fn plugin_dir(home: &Path, name: &str) -> PathBuf {
    home.join("plugins").join(name)
}
