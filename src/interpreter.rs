//! The target interpreter of a lock: which Python the plugin runs on, so that markers are
//! evaluated and wheels chosen for it and not for the machine mfplug happens to run on.
//!
//! The interpreter is probed once with a small script (no `packaging` needed: the tags are
//! computed from `sys`, `sysconfig` and `platform`), and the answer is cached in
//! `$XDG_CACHE_HOME/mfplug/interpreters/`, keyed by the interpreter's path and mtime.
//! `--python-version` and `--platform` turn the probe into another target.

use std::path::{Path, PathBuf};
use std::process::Command;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use serde::{Deserialize, Serialize};

/// The script printing what mfplug needs to know about an interpreter, as JSON.
const PROBE: &str = r#"
import glob, json, os, platform, re, struct, subprocess, sys, sysconfig

def fmt(v):
    s = "%d.%d.%d" % (v.major, v.minor, v.micro)
    if v.releaselevel != "final":
        s += {"alpha": "a", "beta": "b", "candidate": "rc"}[v.releaselevel] + str(v.serial)
    return s

def musl_version():
    for loader in glob.glob("/lib/ld-musl-*.so.1"):
        try:
            out = subprocess.run([loader], stderr=subprocess.PIPE, stdout=subprocess.PIPE).stderr.decode()
        except OSError:
            continue
        m = re.search(r"Version (\d+)\.(\d+)", out)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None

def platforms():
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    tags = []
    if plat.startswith("linux_"):
        arch = plat[len("linux_"):]
        if arch == "x86_64" and struct.calcsize("P") == 4:
            arch = "i686"
        glibc = None
        try:
            v = os.confstr("CS_GNU_LIBC_VERSION")
            if v and v.startswith("glibc "):
                glibc = tuple(int(x) for x in v.split()[1].split(".")[:2])
        except (AttributeError, ValueError, OSError):
            pass
        if glibc and glibc[0] == 2:
            for minor in range(glibc[1], 4, -1):
                tags.append("manylinux_2_%d_%s" % (minor, arch))
                legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
                if legacy:
                    tags.append("%s_%s" % (legacy, arch))
        else:
            musl = musl_version()
            if musl:
                for minor in range(musl[1], -1, -1):
                    tags.append("musllinux_%d_%d_%s" % (musl[0], minor, arch))
        tags.append("linux_" + arch)
    else:
        tags.append(plat)
    return tags

impl = sys.implementation.name
short = {"cpython": "cp", "pypy": "pp"}.get(impl, impl)
print(json.dumps({
    "implementation": impl,
    "short": short,
    "abiflags": getattr(sys, "abiflags", ""),
    "executable": sys.executable,
    "platforms": platforms(),
    "markers": {
        "implementation_name": impl,
        "implementation_version": fmt(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
"#;

#[derive(Debug, thiserror::Error)]
pub(crate) enum InterpreterError {
    #[error("cannot find the interpreter `{0}`")]
    NotFound(String),
    #[error("cannot run the interpreter `{}`", path.display())]
    Run {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the interpreter `{}` failed to describe itself: {stderr}", path.display())]
    Probe { path: PathBuf, stderr: String },
    #[error("the interpreter `{}` answered the probe with something unexpected", path.display())]
    Garbage {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{0}` is not a Python version such as `3.11` or `3.11.4`")]
    BadVersion(String),
}

/// The markers of PEP 508, as the interpreter reports them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Markers {
    pub(crate) implementation_name: String,
    pub(crate) implementation_version: String,
    pub(crate) os_name: String,
    pub(crate) platform_machine: String,
    pub(crate) platform_python_implementation: String,
    pub(crate) platform_release: String,
    pub(crate) platform_system: String,
    pub(crate) platform_version: String,
    pub(crate) python_full_version: String,
    pub(crate) python_version: String,
    pub(crate) sys_platform: String,
}

/// What a probe tells about an interpreter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) implementation: String,
    /// The short implementation name of wheel tags: `cp`, `pp`.
    pub(crate) short: String,
    pub(crate) abiflags: String,
    pub(crate) executable: String,
    /// Platform tags, most specific first.
    pub(crate) platforms: Vec<String>,
    pub(crate) markers: Markers,
}

/// The target of a lock: the interpreter's markers and the wheel tags it accepts.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) probe: Probe,
    pub(crate) markers: MarkerEnvironment,
    tags: std::collections::HashSet<(String, String, String)>,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    path: PathBuf,
    mtime_ns: u128,
    size: u64,
    probe: Probe,
}

/// Finds `name` (a path, or a command on `PATH`).
pub(crate) fn find(name: &str) -> Result<PathBuf, InterpreterError> {
    let candidate = Path::new(name);
    if candidate.components().count() > 1 {
        return if candidate.is_file() {
            Ok(candidate.to_path_buf())
        } else {
            Err(InterpreterError::NotFound(name.to_owned()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let full = dir.join(name);
        if full.is_file() {
            return Ok(full);
        }
    }
    Err(InterpreterError::NotFound(name.to_owned()))
}

/// Probes the interpreter at `path`, through the cache in `cache_dir` when it is still valid.
pub(crate) fn probe(path: &Path, cache_dir: Option<&Path>) -> Result<Probe, InterpreterError> {
    let real = fs_err::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let meta = fs_err::metadata(&real).ok();
    let mtime_ns = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let size = meta.map(|m| m.len()).unwrap_or(0);
    let cache_file = cache_dir.map(|dir| {
        dir.join("interpreters").join(format!(
            "{}.json",
            crate::fsx::sha256_hex(path.as_os_str().as_encoded_bytes())
        ))
    });
    if let Some(file) = &cache_file {
        if let Ok(text) = fs_err::read(file) {
            if let Ok(entry) = serde_json::from_slice::<CacheEntry>(&text) {
                if entry.path == real && entry.mtime_ns == mtime_ns && entry.size == size {
                    return Ok(entry.probe);
                }
            }
        }
    }
    let output = Command::new(path)
        .args(["-I", "-c", PROBE])
        .output()
        .map_err(|source| InterpreterError::Run {
            path: path.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(InterpreterError::Probe {
            path: path.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let probe: Probe =
        serde_json::from_slice(&output.stdout).map_err(|source| InterpreterError::Garbage {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(file) = &cache_file {
        let entry = CacheEntry {
            path: real,
            mtime_ns,
            size,
            probe: probe.clone(),
        };
        // The cache is an optimisation: failing to write it is not an error.
        if let Ok(text) = serde_json::to_vec(&entry) {
            crate::fsx::store_cache_file(file, &text);
        }
    }
    Ok(probe)
}

impl Target {
    /// The target of `probe`, with its Python version or platform replaced when asked.
    pub(crate) fn new(
        mut probe: Probe,
        python_version: Option<&str>,
        platform: Option<&str>,
    ) -> Result<Target, InterpreterError> {
        if let Some(version) = python_version {
            let parts: Vec<&str> = version.split('.').collect();
            let valid = (2..=3).contains(&parts.len())
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !valid {
                return Err(InterpreterError::BadVersion(version.to_owned()));
            }
            probe.markers.python_version = format!("{}.{}", parts[0], parts[1]);
            probe.markers.python_full_version = if parts.len() == 3 {
                version.to_owned()
            } else {
                format!("{version}.0")
            };
            if probe.implementation == "cpython" {
                probe.markers.implementation_version = probe.markers.python_full_version.clone();
            }
        }
        if let Some(platform) = platform {
            probe.platforms = platform
                .split(',')
                .map(|p| p.trim().replace(['-', '.'], "_"))
                .collect();
            let first = probe.platforms[0].as_str();
            let (system, sys_platform) = if first.starts_with("macosx") {
                ("Darwin", "darwin")
            } else if first.starts_with("win") {
                ("Windows", "win32")
            } else {
                ("Linux", "linux")
            };
            probe.markers.platform_system = system.to_owned();
            probe.markers.sys_platform = sys_platform.to_owned();
            if let Some(machine) = ["x86_64", "aarch64", "i686", "armv7l", "ppc64le", "s390x"]
                .iter()
                .find(|m| first.ends_with(*m))
            {
                probe.markers.platform_machine = (*machine).to_owned();
            }
        }
        let m = &probe.markers;
        let markers = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: &m.implementation_name,
            implementation_version: &m.implementation_version,
            os_name: &m.os_name,
            platform_machine: &m.platform_machine,
            platform_python_implementation: &m.platform_python_implementation,
            platform_release: &m.platform_release,
            platform_system: &m.platform_system,
            platform_version: &m.platform_version,
            python_full_version: &m.python_full_version,
            python_version: &m.python_version,
            sys_platform: &m.sys_platform,
        })
        .map_err(|_| InterpreterError::BadVersion(m.python_full_version.clone()))?;
        let tags = tags(&probe);
        Ok(Target {
            probe,
            markers,
            tags,
        })
    }

    /// The Python version, as `Requires-Python` compares it.
    pub(crate) fn python_full_version(&self) -> pep440_rs::Version {
        self.markers.python_full_version().version.clone()
    }

    /// Whether a wheel's file name fits this target.
    pub(crate) fn accepts_wheel(&self, filename: &str) -> bool {
        let Some(stem) = filename.strip_suffix(".whl") else {
            return false;
        };
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() < 5 {
            return false;
        }
        let n = parts.len();
        let (py, abi, plat) = (parts[n - 3], parts[n - 2], parts[n - 1]);
        py.split('.').any(|py| {
            abi.split('.').any(|abi| {
                plat.split('.').any(|plat| {
                    self.tags
                        .contains(&(py.to_owned(), abi.to_owned(), plat.to_owned()))
                })
            })
        })
    }

    /// One line describing the target, for the lockfile's header.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} {} ({})",
            self.probe.implementation,
            self.probe.markers.python_full_version,
            self.probe
                .platforms
                .first()
                .map(String::as_str)
                .unwrap_or("any")
        )
    }
}

/// The wheel tags a target accepts, as `packaging.tags.sys_tags` lists them.
fn tags(probe: &Probe) -> std::collections::HashSet<(String, String, String)> {
    let mut set = std::collections::HashSet::new();
    let version = &probe.markers.python_version;
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    let minor: u32 = minor.parse().unwrap_or(0);
    let short = &probe.short;
    let own = format!("{short}{major}{minor}");
    let mut platforms = probe.platforms.clone();
    let mut add = |py: &str, abi: &str, plats: &[String]| {
        for plat in plats {
            set.insert((py.to_owned(), abi.to_owned(), plat.clone()));
        }
    };
    // Interpreter-specific tags.
    add(&own, &format!("{own}{}", probe.abiflags), &platforms);
    if probe.short == "cp" {
        add(&own, "abi3", &platforms);
        for m in (2..minor).rev() {
            add(&format!("cp{major}{m}"), "abi3", &platforms);
        }
    }
    add(&own, "none", &platforms);
    // Generic tags: any interpreter of this language version.
    for m in (0..=minor).rev() {
        add(&format!("py{major}{m}"), "none", &platforms);
    }
    add(&format!("py{major}"), "none", &platforms);
    platforms = vec!["any".to_owned()];
    add(&own, "none", &platforms);
    for m in (0..=minor).rev() {
        add(&format!("py{major}{m}"), "none", &platforms);
    }
    add(&format!("py{major}"), "none", &platforms);
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Probe {
        Probe {
            implementation: "cpython".into(),
            short: "cp".into(),
            abiflags: String::new(),
            executable: "/usr/bin/python3".into(),
            platforms: vec![
                "manylinux_2_17_x86_64".into(),
                "manylinux2014_x86_64".into(),
                "linux_x86_64".into(),
            ],
            markers: Markers {
                implementation_name: "cpython".into(),
                implementation_version: "3.11.7".into(),
                os_name: "posix".into(),
                platform_machine: "x86_64".into(),
                platform_python_implementation: "CPython".into(),
                platform_release: String::new(),
                platform_system: "Linux".into(),
                platform_version: String::new(),
                python_full_version: "3.11.7".into(),
                python_version: "3.11".into(),
                sys_platform: "linux".into(),
            },
        }
    }

    #[test]
    fn wheel_tags() {
        let t = Target::new(probe(), None, None).unwrap();
        assert!(t.accepts_wheel("a-1.0-py3-none-any.whl"));
        assert!(t.accepts_wheel("a-1.0-py2.py3-none-any.whl"));
        assert!(t.accepts_wheel("a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"));
        assert!(t.accepts_wheel("a-1.0-cp38-abi3-manylinux2014_x86_64.whl"));
        assert!(!t.accepts_wheel("a-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"));
        assert!(!t.accepts_wheel("a-1.0-cp311-cp311-win_amd64.whl"));
        assert!(!t.accepts_wheel("a-1.0-cp311-cp311-musllinux_1_1_x86_64.whl"));
        let t = Target::new(probe(), Some("3.8"), Some("win_amd64")).unwrap();
        assert!(t.accepts_wheel("a-1.0-cp38-cp38-win_amd64.whl"));
        assert_eq!(t.markers.sys_platform(), "win32");
    }
}
