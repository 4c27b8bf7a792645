//! Installing a wheel into a virtualenv without pip (PEP 427, PEP 376, entry points).
//!
//! A wheel is unpacked once into the cache (`$XDG_CACHE_HOME/mfplug/wheels/SHA256/`, written
//! beside and renamed into place, so two processes can share it); installing it then hard-links
//! its files into `site-packages` (copies where the file system refuses links), writes the
//! `.data/scripts` with their shebang rewritten, the console and GUI entry points, `INSTALLER`
//! and a new `RECORD`, so that `pip list`, `pip show` and `pip uninstall` work on the result.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use sha2::{Digest, Sha256};

/// Where a wheel's files go in a virtualenv.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The env dir being written (maybe a temp dir).
    pub(crate) root: PathBuf,
    /// The dir the env will live at (for shebangs).
    pub(crate) prefix: PathBuf,
    /// `X.Y`.
    pub(crate) python_version: String,
}

impl Layout {
    pub(crate) fn site_packages(&self) -> PathBuf {
        self.root
            .join("lib")
            .join(format!("python{}", self.python_version))
            .join("site-packages")
    }

    fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    fn shebang(&self) -> String {
        format!("#!{}/bin/python", self.prefix.display())
    }
}

/// Unpacks the wheel at `path` (whose sha256 is `sha256`) into the cache, once.
pub(crate) fn unpack_cached(path: &Path, sha256: &str, cache: &Path) -> Result<PathBuf> {
    let target = cache.join("wheels").join(sha256);
    if target.join(".complete").is_file() {
        return Ok(target);
    }
    let parent = cache.join("wheels");
    fs_err::create_dir_all(&parent)?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{sha256}."))
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a dir in `{}`", parent.display()))?;
    let file = fs_err::File::open(path)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("`{}` is not a valid wheel (zip)", path.display()))?;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .with_context(|| format!("`{}` is corrupt", path.display()))?;
        let Some(name) = entry.enclosed_name() else {
            bail!(
                "`{}` holds an unsafe path `{}`",
                path.display(),
                entry.name()
            );
        };
        let out = temp.path().join(name);
        if entry.is_dir() {
            fs_err::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut file = fs_err::File::create(&out)?;
        std::io::copy(&mut entry, &mut file)
            .with_context(|| format!("`{}` is corrupt or truncated", path.display()))?;
        if let Some(mode) = entry.unix_mode() {
            if mode & 0o111 != 0 {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&out, std::fs::Permissions::from_mode(0o755))?;
            }
        }
    }
    fs_err::write(temp.path().join(".complete"), "")?;
    let temp = temp.keep();
    match fs_err::rename(&temp, &target) {
        Ok(()) => Ok(target),
        // Another process unpacked it first: use theirs.
        Err(_) if target.join(".complete").is_file() => {
            let _ = fs_err::remove_dir_all(&temp);
            Ok(target)
        }
        Err(e) => {
            let _ = fs_err::remove_dir_all(&temp);
            Err(anyhow::Error::new(e).context(format!("cannot write `{}`", target.display())))
        }
    }
}

/// `name-version.dist-info` of an unpacked wheel.
fn dist_info(unpacked: &Path) -> Result<PathBuf> {
    for entry in fs_err::read_dir(unpacked)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".dist-info") && entry.file_type()?.is_dir() {
            return Ok(PathBuf::from(name));
        }
    }
    bail!("the wheel has no `.dist-info` directory")
}

/// Links `from` to `to`, or copies it where a link is not possible.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let _ = fs_err::remove_file(to);
    if fs_err::hard_link(from, to).is_err() {
        fs_err::copy(from, to)?;
    }
    Ok(())
}

fn record_line(path: &str, bytes: &[u8]) -> String {
    format!(
        "{},sha256={},{}",
        csv_field(path),
        crate::fsx::base64_urlsafe(&Sha256::digest(bytes)),
        bytes.len()
    )
}

/// [`record_line`] of a file, hashed as it streams (a wheel's member can weigh gigabytes).
fn record_line_of_file(path: &str, file: &Path) -> Result<String> {
    let (size, digest) = crate::fsx::digest_file(file)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    Ok(format!(
        "{},sha256={},{size}",
        csv_field(path),
        crate::fsx::base64_urlsafe(&digest)
    ))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The path of `file` relative to `site`, with `..` where it is outside (scripts in `bin/`).
fn relative_to_site(site: &Path, file: &Path) -> String {
    let site: Vec<Component> = site.components().collect();
    let file_c: Vec<Component> = file.components().collect();
    let common = site.iter().zip(&file_c).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); site.len() - common];
    parts.extend(
        file_c[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// The `[console_scripts]` and `[gui_scripts]` of `entry_points.txt`: name -> (module, attr).
fn entry_points(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
            continue;
        }
        if !matches!(section.trim(), "console_scripts" | "gui_scripts")
            || line.is_empty()
            || line.starts_with('#')
        {
            continue;
        }
        let Some((name, target)) = line.split_once('=') else {
            continue;
        };
        let target = target.split('[').next().unwrap_or_default().trim();
        let (module, attr) = target.split_once(':').unwrap_or((target, ""));
        out.push((
            name.trim().to_owned(),
            module.trim().to_owned(),
            attr.trim().to_owned(),
        ));
    }
    out
}

fn script(shebang: &str, module: &str, attr: &str) -> String {
    let (import, call) = if attr.is_empty() {
        (format!("import {module}"), module.to_owned())
    } else {
        let head = attr.split('.').next().unwrap_or(attr);
        (format!("from {module} import {head}"), attr.to_owned())
    };
    format!(
        "{shebang}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n{import}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({call}())\n"
    )
}

fn write_executable(path: &Path, text: &[u8]) -> Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let _ = fs_err::remove_file(path);
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.write_all(text)?;
    Ok(())
}

/// Installs an unpacked wheel into the env of `layout`; gives the `.dist-info` dir name.
pub(crate) fn install(unpacked: &Path, layout: &Layout) -> Result<String> {
    let site = layout.site_packages();
    let info = dist_info(unpacked)?;
    let info_name = info.to_string_lossy().into_owned();
    let data_name = info_name.replace(".dist-info", ".data");
    let mut record: Vec<String> = Vec::new();

    for entry in walkdir::WalkDir::new(unpacked)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(unpacked).unwrap_or(entry.path());
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        if rel_text == ".complete"
            || rel_text == format!("{info_name}/RECORD")
            || rel_text == format!("{info_name}/INSTALLER")
        {
            continue;
        }
        let (target, is_script) = match rel_text.strip_prefix(&format!("{data_name}/")) {
            Some(rest) => data_target(rest, &info_name, layout)?,
            None => (site.join(rel), false),
        };
        if is_script {
            let bytes = script_with_shebang(entry.path(), layout)?;
            write_executable(&target, &bytes)?;
            record.push(record_line(&relative_to_site(&site, &target), &bytes));
        } else {
            link_or_copy(entry.path(), &target)?;
            record.push(record_line_of_file(
                &relative_to_site(&site, &target),
                entry.path(),
            )?);
        }
    }
    write_entry_point_scripts(&unpacked.join(&info), layout, &mut record)?;
    let installer = site.join(&info).join("INSTALLER");
    fs_err::write(&installer, "mfplug\n")?;
    record.push(record_line(&format!("{info_name}/INSTALLER"), b"mfplug\n"));
    record.push(format!("{info_name}/RECORD,,"));
    record.sort();
    let record_path = site.join(&info).join("RECORD");
    let _ = fs_err::remove_file(&record_path);
    fs_err::write(&record_path, record.join("\n") + "\n")?;
    Ok(info_name)
}

/// Where a file of the wheel's `.data` dir goes (`rest` is its path inside that dir), and
/// whether it is a script.
fn data_target(rest: &str, info_name: &str, layout: &Layout) -> Result<(PathBuf, bool)> {
    let (kind, inner) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(match kind {
        "purelib" | "platlib" => (layout.site_packages().join(inner), false),
        "scripts" => (layout.bin().join(inner), true),
        "headers" => {
            let dist = info_name.split('-').next().unwrap_or_default();
            (
                layout
                    .root
                    .join("include/site")
                    .join(format!("python{}", layout.python_version))
                    .join(dist)
                    .join(inner),
                false,
            )
        }
        "data" => (layout.root.join(inner), false),
        other => bail!("unknown `.data` directory `{other}` in the wheel"),
    })
}

/// A script's bytes, its `#!python` (or `#!pythonw`) line replaced by the env's
/// interpreter (PEP 427).
fn script_with_shebang(path: &Path, layout: &Layout) -> Result<Vec<u8>> {
    let bytes = fs_err::read(path)?;
    if !bytes.starts_with(b"#!python") {
        return Ok(bytes);
    }
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let mut fixed = layout.shebang().into_bytes();
    fixed.extend_from_slice(&bytes[end..]);
    Ok(fixed)
}

/// Writes a script in the env's `bin/` for each console or GUI entry point of the
/// dist-info dir `info`, recording each.
fn write_entry_point_scripts(info: &Path, layout: &Layout, record: &mut Vec<String>) -> Result<()> {
    let site = layout.site_packages();
    let Ok(text) = fs_err::read_to_string(info.join("entry_points.txt")) else {
        return Ok(());
    };
    for (name, module, attr) in entry_points(&text) {
        if name.is_empty() || name.contains('/') {
            continue;
        }
        let path = layout.bin().join(&name);
        let text = script(&layout.shebang(), &module, &attr);
        write_executable(&path, text.as_bytes())?;
        record.push(record_line(
            &relative_to_site(&site, &path),
            text.as_bytes(),
        ));
    }
    Ok(())
}

/// Removes an installed distribution from an env, by its RECORD (the way `pip uninstall` does).
pub(crate) fn uninstall(layout: &Layout, info_name: &str) -> Result<()> {
    let site = layout.site_packages();
    let record_path = site.join(info_name).join("RECORD");
    let text = fs_err::read_to_string(&record_path)?;
    let mut dirs: BTreeMap<PathBuf, ()> = BTreeMap::new();
    for line in text.lines() {
        let path = line
            .rsplitn(3, ',')
            .last()
            .unwrap_or_default()
            .trim_matches('"');
        if path.is_empty() {
            continue;
        }
        let full = site.join(path);
        let _ = fs_err::remove_file(&full);
        if let Some(parent) = full.parent() {
            dirs.insert(parent.to_path_buf(), ());
        }
    }
    let _ = fs_err::remove_dir_all(site.join(info_name));
    // Remove the dirs the package left empty, deepest first.
    for dir in dirs.keys().rev() {
        let mut dir = dir.as_path();
        while dir.starts_with(&site) && dir != site {
            if fs_err::remove_dir(dir).is_err() {
                break;
            }
            dir = dir.parent().unwrap_or(&site);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let site = Path::new("/e/lib/python3.11/site-packages");
        assert_eq!(
            relative_to_site(site, Path::new("/e/lib/python3.11/site-packages/a/b.py")),
            "a/b.py"
        );
        assert_eq!(
            relative_to_site(site, Path::new("/e/bin/tool")),
            "../../../bin/tool"
        );
    }

    #[test]
    fn entry_point_parsing() {
        let text = "[console_scripts]\ntool = pkg.cli:main\nother=pkg:obj.run [extra]\n[gui_scripts]\ngui = pkg.gui:start\n[other]\nx = y:z\n";
        let eps = entry_points(text);
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[1], ("other".into(), "pkg".into(), "obj.run".into()));
        let s = script("#!/env/bin/python", "pkg", "obj.run");
        assert!(s.contains("from pkg import obj\n"));
        assert!(s.contains("sys.exit(obj.run())"));
    }
}
