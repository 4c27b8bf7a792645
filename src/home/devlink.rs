//! The devlink of `mfplug develop`: `plugins/NAME` in the home as a symlink to the plugin's
//! source dir, made under the home's lock; an installed plugin in its way is moved aside to
//! `displaced/`, never deleted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

use super::HomeLock;
use crate::ui;

/// How long `develop` waits for another writer of the home before it links.
const LINK_WAIT: Duration = Duration::from_secs(30);

/// Links `home/plugins/NAME` to `dir`. A devlink (a symlink) is replaced; an installed plugin
/// (a real dir) is refused, or with `force` moved aside to `home/displaced/NAME.SECONDS`, never
/// deleted. The link is made beside its place and renamed over it: it is never missing.
pub(crate) fn link(
    home: &Path,
    name: &crate::plugin::PluginName,
    dir: &Path,
    force: bool,
) -> Result<PathBuf> {
    // One writer at a time, as every change of the home.
    let _lock = HomeLock::acquire(home, Some(LINK_WAIT))?;
    let link = super::plugin_dir(home, name);
    let plugins = link.parent().context("the plugins dir has a parent")?;
    fs_err::create_dir_all(plugins)?;
    match fs_err::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if fs_err::read_link(&link)? == dir {
                return Ok(link);
            }
        }
        Ok(_) if force => {
            let displaced = home.join("displaced");
            fs_err::create_dir_all(&displaced)?;
            let seconds = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = displaced.join(format!("{name}.{seconds}"));
            let mut n = 1;
            while aside.exists() {
                aside = displaced.join(format!("{name}.{seconds}.{n}"));
                n += 1;
            }
            fs_err::rename(&link, &aside)?;
            ui::warn(format!(
                "the installed `{name}` was moved to `{}` (`--force`)",
                aside.display()
            ));
        }
        Ok(_) => {
            return Err(super::HomeError::InstalledNotDevlink {
                name: name.clone(),
                path: link.clone(),
            }
            .into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let temp = plugins.join(format!(".{name}.devlink.{}", std::process::id()));
    let _ = fs_err::remove_file(&temp);
    fs_err::os::unix::fs::symlink(dir, &temp)
        .with_context(|| format!("cannot create the link `{}`", temp.display()))?;
    fs_err::rename(&temp, &link)?;
    Ok(link)
}
