//! `mfplug build` and `mfplug clean`: wheels vendored and locked by the tests, installed into
//! `local/` without pip; then used by a real interpreter (and by pip, to list and uninstall).

use std::path::Path;

use crate::index::wheel_zip;
use crate::support::{succeed, TestContext};

/// A wheel with a package, optional console script, `.data` scripts, data and headers.
pub fn wheel(name: &str, version: &str, script: bool) -> (String, Vec<u8>) {
    let dist = name.replace('-', "_");
    let info = format!("{dist}-{version}.dist-info");
    let data = format!("{dist}-{version}.data");
    let mut files: Vec<(String, String)> = vec![
        (
            format!("{dist}/__init__.py"),
            format!("VERSION = {version:?}\n\ndef main():\n    print('{name} ' + VERSION)\n    return 0\n"),
        ),
        (
            format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n"),
        ),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: mfplug-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_owned(),
        ),
        (format!("{info}/top_level.txt"), format!("{dist}\n")),
    ];
    if script {
        files.push((
            format!("{info}/entry_points.txt"),
            format!("[console_scripts]\n{name} = {dist}:main\n"),
        ));
        files.push((
            format!("{data}/scripts/{name}-helper"),
            "#!python\nimport sys\nprint('helper ran with', sys.prefix)\n".to_owned(),
        ));
        files.push((
            format!("{data}/data/share/{name}/notes.txt"),
            "data file\n".to_owned(),
        ));
        files.push((format!("{data}/headers/{name}.h"), "int x;\n".to_owned()));
    }
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(path, text)| (path, text.into_bytes()))
        .collect();
    (
        format!("{dist}-{version}-py3-none-any.whl"),
        wheel_zip(&info, &files, &[]),
    )
}

/// A python plugin whose vendor dir holds `wheels` and whose lock is made by `mfplug lock
/// --find-links` on that dir.
fn python_plugin(ctx: &TestContext, dir: &str, requirements: &str, wheels: &[(String, Vec<u8>)]) {
    ctx.write(&format!("{dir}/.layerapi2_label"), "plugin_py@mfplug\n");
    ctx.write(
        &format!("{dir}/config.ini"),
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n",
    );
    ctx.write(
        &format!("{dir}/python3_virtualenv_sources/requirements-to-freeze.txt"),
        requirements,
    );
    ctx.write(
        &format!("{dir}/python3_virtualenv_sources/allow_binary_packages"),
        "",
    );
    let vendor = ctx.work.join(dir).join("python3_virtualenv_sources/src");
    std::fs::create_dir_all(&vendor).unwrap();
    for (name, bytes) in wheels {
        std::fs::write(vendor.join(name), bytes).unwrap();
    }
    lock(ctx, dir);
}

fn lock(ctx: &TestContext, dir: &str) {
    let vendor = ctx.work.join(dir).join("python3_virtualenv_sources/src");
    succeed(ctx.cmd(["lock", dir, "--find-links"]).arg(&vendor));
}

fn run(cmd: &mut std::process::Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn build_offline_installs_wheels_without_pip() {
    let ctx = TestContext::new();
    python_plugin(
        &ctx,
        "p",
        "tool\ndep\n",
        &[wheel("tool", "1.0", true), wheel("dep", "2.0", false)],
    );
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("2 packages (2 installed, 0 removed)"),
        "{stderr}"
    );
    let local = ctx.work.join("p/local");
    assert!(local.join("pyvenv.cfg").is_file());
    assert!(local.join("bin/activate").is_file());

    // The console script and the `.data/scripts` one run with the env's interpreter.
    let (ok, text) = run(&mut std::process::Command::new(local.join("bin/tool")));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "tool 1.0");
    let (ok, text) = run(&mut std::process::Command::new(
        local.join("bin/tool-helper"),
    ));
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("helper ran with {}", local.display())),
        "{text}"
    );
    let (ok, text) = run(std::process::Command::new(local.join("bin/python")).args([
        "-c",
        "import tool, dep, sys; print(dep.VERSION, sys.prefix)",
    ]));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), format!("2.0 {}", local.display()));
    assert!(local.join("share/tool/notes.txt").is_file());
    assert!(local.join("include/site").is_dir());

    // The plugin env finds them through `local/bin` and VIRTUAL_ENV.
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("p"), ctx.home.join("plugins/py")).unwrap();
    let out = ctx.cmd(["wrapper", "py", "--", "tool"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool 1.0");

    // pip sees what mfplug installed, and can uninstall it.
    crate::support::require_command(
        "python3",
        &["-m", "pip", "--version"],
        "apt-get install python3-pip",
    );
    let python = local.join("bin/python");
    let pip = |args: &[&str]| {
        run(std::process::Command::new("python3")
            .args(["-m", "pip", "--disable-pip-version-check", "--python"])
            .arg(&python)
            .args(args))
    };
    let (ok, text) = pip(&["list", "--format", "freeze"]);
    assert!(ok, "{text}");
    let listed: Vec<&str> = text.lines().filter(|l| l.contains("==")).collect();
    assert!(listed.contains(&"tool==1.0"), "{text}");
    assert!(listed.contains(&"dep==2.0"), "{text}");
    // `-v` shows the installer that `INSTALLER` names; `-f`, the files of `RECORD`.
    let (ok, text) = pip(&["show", "-v", "-f", "tool"]);
    assert!(ok, "{text}");
    let fields: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(fields.contains(&"Version: 1.0"), "{text}");
    assert!(fields.contains(&"Installer: mfplug"), "{text}");
    assert!(fields.contains(&"tool/__init__.py"), "{text}");
    let (ok, text) = pip(&["uninstall", "-y", "tool"]);
    assert!(ok, "{text}");
    assert!(!local.join("bin/tool").exists());
    assert!(!local.join("lib").join(site(&local)).join("tool").exists());
}

fn site(local: &Path) -> String {
    let lib = std::fs::read_dir(local.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    format!("{}/site-packages", lib.file_name().to_string_lossy())
}

#[test]
fn second_build_is_a_no_op_and_a_changed_lock_installs_only_what_changed() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    ctx.cmd(["build", "p", "--offline"]).assert().success();
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));

    // Add a package: only it is installed; the old env keeps working until the swap.
    let (name, bytes) = wheel("extra", "0.1", false);
    std::fs::write(
        ctx.work.join("p/python3_virtualenv_sources/src").join(name),
        bytes,
    )
    .unwrap();
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "tool\nextra\n",
    );
    lock(&ctx, "p");
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 packages (1 installed, 0 removed)"),
        "{stderr}"
    );
    // Remove one: only it goes.
    std::fs::remove_file(
        ctx.work
            .join("p/python3_virtualenv_sources/src/tool-1.0-py3-none-any.whl"),
    )
    .unwrap();
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "extra\n",
    );
    lock(&ctx, "p");
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 packages (0 installed, 1 removed)"),
        "{stderr}"
    );
    assert!(!ctx.work.join("p/local/bin/tool").exists());
    let (ok, text) = run(
        std::process::Command::new(ctx.work.join("p/local/bin/python"))
            .args(["-c", "import extra"]),
    );
    assert!(ok, "{text}");
}

#[test]
fn a_failed_build_leaves_the_old_local_working() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    ctx.cmd(["build", "p", "--offline"]).assert().success();
    // A corrupt wheel whose hash the lock accepts.
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    let path = vendor.join("tool-1.0-py3-none-any.whl");
    let old_hash = crate::index::sha256(&std::fs::read(&path).unwrap());
    let corrupt = b"PK\x03\x04 this is not a zip at all".to_vec();
    std::fs::write(&path, &corrupt).unwrap();
    let lock_path = ctx
        .work
        .join("p/python3_virtualenv_sources/requirements3.txt");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    std::fs::write(
        &lock_path,
        text.replace(&old_hash, &crate::index::sha256(&corrupt)),
    )
    .unwrap();
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tool-1.0-py3-none-any.whl"), "{stderr}");
    let (ok, text) = run(&mut std::process::Command::new(
        ctx.work.join("p/local/bin/tool"),
    ));
    assert!(ok, "{text}");
    assert!(std::fs::read_dir(ctx.work.join("p")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".mfplug-local-")));
}

#[test]
fn vendor_dir_and_lock_must_agree() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    let (name, bytes) = wheel("stray", "1.0", false);
    std::fs::write(vendor.join(&name), bytes).unwrap();
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("vendored `stray-1.0-py3-none-any.whl` is not in the lock"));
    std::fs::remove_file(vendor.join(&name)).unwrap();
    std::fs::remove_file(vendor.join("tool-1.0-py3-none-any.whl")).unwrap();
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`tool==1.0` is missing from `python3_virtualenv_sources/src/`"),
        "{stderr}"
    );
    // A stale lock is refused too.
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "tool\nother\n",
    );
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing or stale"));
    assert!(!ctx.work.join("p/local").exists());
}

#[test]
fn clean_and_super_clean_remove_generated_files_only() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    ctx.cmd(["build", "p", "--offline"]).assert().success();
    ctx.write("p/mycode.py", "x = 1\n");
    ctx.write("p/__pycache__/mycode.cpython-311.pyc", "");
    let out = ctx.cmd(["clean", "p"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        stderr.contains("Removed") && stderr.contains("local"),
        "{stderr}"
    );
    assert!(!ctx.work.join("p/local").exists());
    assert!(!ctx.work.join("p/__pycache__").exists());
    assert!(ctx.work.join("p/mycode.py").is_file());
    assert!(ctx
        .work
        .join("p/python3_virtualenv_sources/requirements3.txt")
        .is_file());
    let out = ctx.cmd(["clean", "p"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to remove"));
    ctx.cmd(["clean", "--super", "p"]).assert().success();
    assert!(!ctx
        .work
        .join("p/python3_virtualenv_sources/requirements3.txt")
        .exists());
    assert!(!ctx.work.join("p/python3_virtualenv_sources/src").exists());
    assert!(ctx
        .work
        .join("p/python3_virtualenv_sources/requirements-to-freeze.txt")
        .is_file());
    assert!(ctx.work.join("p/config.ini").is_file());
}

#[test]
fn install_builds_local_offline_from_the_vendored_wheels() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    ctx.cmd(["-q", "release", "p", "-o", "dist"])
        .assert()
        .success();
    let file = ctx.work.join("dist/py-1.0.0-1.plugin");
    // An empty cache: everything comes from the `.plugin` file.
    succeed(
        ctx.cmd(["install"])
            .arg(&file)
            .env("XDG_CACHE_HOME", ctx.root().join("empty-cache")),
    );
    let installed = ctx.home.join("plugins/py");
    let script = std::fs::read_to_string(installed.join("local/bin/tool")).unwrap();
    assert!(
        script.starts_with(&format!("#!{}/local/bin/python", installed.display())),
        "{script}"
    );
    let out = ctx.cmd(["wrapper", "py", "--", "tool"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tool 1.0");
    ctx.cmd(["verify", "py"]).assert().success();
}

/// Online: a missing lock is made, the locked files are fetched from the index into the
/// vendor dir, `local/` is built; then `--offline` with an empty cache rebuilds it from the
/// plugin dir alone, and a lock that drops a package prunes its file.
#[test]
fn build_fetches_vendors_prunes_and_rebuilds_offline() {
    use crate::index::{release, Index, Mode};
    let ctx = TestContext::new();
    let index = Index::start(
        Mode::Json,
        &[
            release("alpha", "1.0", &["beta>=1"]),
            release("beta", "1.2", &[]),
        ],
    );
    ctx.write("p/.layerapi2_label", "plugin_py@mfplug\n");
    ctx.write("p/config.ini", "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "alpha\n",
    );
    ctx.write("p/python3_virtualenv_sources/allow_binary_packages", "");
    let cache = ctx.root().join("cache");
    let out = ctx
        .cmd(["build", "p"])
        .env("MFPLUG_INDEX_URL", &index.url)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Vendored `alpha-1.0-py3-none-any.whl`"),
        "{stderr}"
    );
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    assert!(vendor.join("beta-1.2-py3-none-any.whl").is_file());
    let python = ctx.work.join("p/local/bin/python");
    let (ok, text) =
        run(std::process::Command::new(&python)
            .args(["-c", "import alpha, beta; print(beta.VERSION)"]));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "1.2");

    // The plugin dir alone: no index, an empty cache.
    ctx.cmd(["clean", "p"]).assert().success();
    succeed(
        ctx.cmd(["build", "p", "--offline"])
            .env("XDG_CACHE_HOME", ctx.root().join("empty-cache")),
    );
    let (ok, text) = run(std::process::Command::new(&python).args(["-c", "import alpha"]));
    assert!(ok, "{text}");

    // Dropping a requirement relocks and prunes its vendored file.
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "beta\n",
    );
    let out = ctx
        .cmd(["build", "p"])
        .env("MFPLUG_INDEX_URL", &index.url)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Pruned `alpha-1.0-py3-none-any.whl`"),
        "{stderr}"
    );
    assert!(!vendor.join("alpha-1.0-py3-none-any.whl").exists());
    let (ok, _) = run(std::process::Command::new(&python).args(["-c", "import alpha"]));
    assert!(!ok, "alpha was uninstalled");
}

/// An sdist whose PEP 517 backend is in the sdist itself (`backend-path`), with no build
/// requirements: built offline with the target interpreter, cached by the sdist's hash.
fn sdist(name: &str, version: &str, fail: bool) -> (String, Vec<u8>) {
    logged_sdist(name, version, fail, None)
}

/// [`sdist`], whose backend appends a line to `log` (when given) each time it builds.
fn logged_sdist(name: &str, version: &str, fail: bool, log: Option<&Path>) -> (String, Vec<u8>) {
    let top = format!("{name}-{version}");
    let log = log.map(|p| p.display().to_string()).unwrap_or_default();
    let backend = format!(
        r#"import os, shutil, sys, zipfile
NAME, VERSION, LOG = {name:?}, {version:?}, {log:?}
def get_requires_for_build_wheel(config_settings=None):
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    # Run as pip runs a backend: the isolated env's bin/ first on PATH, its python first.
    first = os.environ["PATH"].split(os.pathsep)[0]
    assert first == os.path.dirname(sys.executable), os.environ["PATH"]
    assert os.path.dirname(shutil.which("python")) == first, shutil.which("python")
    assert os.environ["VIRTUAL_ENV"] == os.path.dirname(first)
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"built {{NAME}}\n")
    if {fail}:
        raise RuntimeError("the backend refuses to build")
    filename = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    info = f"{{NAME}}-{{VERSION}}.dist-info"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as z:
        z.writestr(f"{{NAME}}/__init__.py", "BUILT = 'from sdist'\n")
        z.writestr(f"{{info}}/METADATA", f"Metadata-Version: 2.1\nName: {{NAME}}\nVersion: {{VERSION}}\n")
        z.writestr(f"{{info}}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{{info}}/RECORD", "")
    return filename
"#,
        fail = if fail { "True" } else { "False" }
    );
    let files = [
        (format!("{top}/PKG-INFO"), format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")),
        (
            format!("{top}/pyproject.toml"),
            "[build-system]\nrequires = []\nbuild-backend = \"testbackend\"\nbackend-path = [\".\"]\n".to_owned(),
        ),
        (format!("{top}/testbackend.py"), backend),
    ];
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, text) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    (
        format!("{top}.tar.gz"),
        tar.into_inner().unwrap().finish().unwrap(),
    )
}

#[test]
fn sdists_are_built_with_pep_517_when_wheels_are_not_allowed() {
    let ctx = TestContext::new();
    let builds = ctx.root().join("builds.log");
    let (sdist_name, sdist_bytes) = logged_sdist("sdpkg", "1.0", false, Some(&builds));
    let sdist_sha = crate::index::sha256(&sdist_bytes);
    python_plugin(&ctx, "p", "sdpkg\n", &[(sdist_name, sdist_bytes)]);
    // No `allow_binary_packages`: every package is built from its sdist, as in MetWork.
    std::fs::remove_file(
        ctx.work
            .join("p/python3_virtualenv_sources/allow_binary_packages"),
    )
    .unwrap();
    let cache = ctx.root().join("cache");
    let out = ctx
        .cmd(["build", "p", "--offline"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Building `sdpkg` from its sdist"),
        "{stderr}"
    );
    let (ok, text) = run(
        std::process::Command::new(ctx.work.join("p/local/bin/python"))
            .args(["-c", "import sdpkg; print(sdpkg.BUILT)"]),
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "from sdist");
    assert_eq!(std::fs::read_to_string(&builds).unwrap(), "built sdpkg\n");
    // The wheel is cached by the sdist's hash: a fresh env installs it without running the
    // backend again.
    let cached = cache.join("mfplug/built").join(&sdist_sha);
    let wheels: Vec<String> = std::fs::read_dir(&cached)
        .unwrap_or_else(|e| panic!("{}: {e}", cached.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(wheels, ["sdpkg-1.0-py3-none-any.whl"]);
    ctx.cmd(["clean", "p"]).assert().success();
    assert!(!ctx.work.join("p/local").exists());
    let out = ctx
        .cmd(["build", "p", "--offline"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&builds).unwrap(),
        "built sdpkg\n",
        "the backend ran again"
    );
    let (ok, text) = run(
        std::process::Command::new(ctx.work.join("p/local/bin/python"))
            .args(["-c", "import sdpkg; print(sdpkg.BUILT)"]),
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "from sdist");

    // A failing backend: its output tail is shown, the old env stays.
    let ctx2 = TestContext::new();
    python_plugin(&ctx2, "p", "bad\n", &[sdist("bad", "1.0", true)]);
    std::fs::remove_file(
        ctx2.work
            .join("p/python3_virtualenv_sources/allow_binary_packages"),
    )
    .unwrap();
    let out = ctx2.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the backend refuses to build"), "{stderr}");
    assert!(!ctx2.work.join("p/local").exists());
}

/// A build of a plugin dir that another build holds waits, says so, and touches nothing
/// until the hold is released (the hold is taken here, on the lock file a first build left in
/// the cache, so that the wait does not hang on a race); then two builds at once both succeed.
#[test]
fn concurrent_builds_wait_for_each_other() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    succeed(&mut ctx.cmd(["build", "p", "--offline"]));
    ctx.cmd(["clean", "p"]).assert().success();
    let locks_dir = ctx.root().join("user/.cache/mfplug/locks");
    let locks: Vec<std::fs::File> = std::fs::read_dir(&locks_dir)
        .unwrap()
        .map(|e| {
            std::fs::File::options()
                .write(true)
                .open(e.unwrap().path())
                .unwrap()
        })
        .collect();
    assert!(
        !locks.is_empty(),
        "the build left no lock in {}",
        locks_dir.display()
    );
    for lock in &locks {
        lock.lock().unwrap();
    }
    let log = ctx.root().join("build.err");
    let mut waiting = ctx
        .command(["build", "p", "--offline"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let start = std::time::Instant::now();
    while !said().contains("Waiting") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the second build did not wait:\n{}",
            said()
        );
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "it ended:\n{}",
            said()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        said().contains("for another `mfplug build` of `p`"),
        "{}",
        said()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "{}", said());
    assert!(
        !ctx.work.join("p/local").exists(),
        "it built while held:\n{}",
        said()
    );
    drop(locks);
    assert!(waiting.wait().unwrap().success(), "{}", said());
    let (ok, text) = run(&mut std::process::Command::new(
        ctx.work.join("p/local/bin/tool"),
    ));
    assert!(ok, "{text}");

    // Two at once, neither held by the test: both succeed, one env.
    ctx.cmd(["clean", "p"]).assert().success();
    let spawn = || {
        ctx.command(["build", "p", "--offline"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let (ok, text) = run(&mut std::process::Command::new(
        ctx.work.join("p/local/bin/tool"),
    ));
    assert!(ok, "{text}");
}

/// An index that serves other bytes than the locked ones under the same name: refused, named,
/// and nothing vendored or built from it.
#[test]
fn a_file_that_does_not_match_the_lock_is_refused() {
    use crate::index::{release, Index, Mode};
    let ctx = TestContext::new();
    let good = Index::start(Mode::Json, &[release("alpha", "1.0", &[])]);
    let mut other = release("alpha", "1.0", &[]);
    other.padding = 64;
    let bad = Index::start(Mode::Json, &[other]);
    ctx.write("p/.layerapi2_label", "plugin_py@mfplug\n");
    ctx.write("p/config.ini", "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    ctx.write(
        "p/python3_virtualenv_sources/requirements-to-freeze.txt",
        "alpha\n",
    );
    ctx.write("p/python3_virtualenv_sources/allow_binary_packages", "");
    ctx.cmd(["lock", "p"])
        .env("MFPLUG_INDEX_URL", &good.url)
        .assert()
        .success();
    let out = ctx
        .cmd(["build", "p"])
        .env("MFPLUG_INDEX_URL", &bad.url)
        .env("XDG_CACHE_HOME", ctx.root().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no file of `alpha==1.0` on the index matches the lock's hashes"),
        "{stderr}"
    );
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    assert!(std::fs::read_dir(&vendor).map_or(true, |mut d| d.next().is_none()));
    assert!(!ctx.work.join("p/local").exists());
}

/// A missing interpreter: named, with what to do, and nothing built.
#[test]
fn a_missing_interpreter_is_a_clear_error() {
    let ctx = TestContext::new();
    python_plugin(&ctx, "p", "tool\n", &[wheel("tool", "1.0", true)]);
    ctx.write(
        "p/config.ini",
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\npython = /nonexistent/python3.99\n",
    );
    let out = ctx.cmd(["build", "p", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/python3.99"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!ctx.work.join("p/local").exists());
}

/// A plugin dir locked on nothing yet: `requirements`, and `allow_binary_packages` when
/// `wheels` (empty: wheels for all), else none (every package from its sdist, as MetWork).
fn online_plugin(ctx: &TestContext, dir: &str, requirements: &str, wheels: bool) {
    ctx.write(&format!("{dir}/.layerapi2_label"), "plugin_py@mfplug\n");
    ctx.write(
        &format!("{dir}/config.ini"),
        "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n",
    );
    ctx.write(
        &format!("{dir}/python3_virtualenv_sources/requirements-to-freeze.txt"),
        requirements,
    );
    if wheels {
        ctx.write(
            &format!("{dir}/python3_virtualenv_sources/allow_binary_packages"),
            "",
        );
    }
}

/// One plugin vendoring wheels and another building from sdists, sharing one cache, in
/// both orders: each vendors, under each file name, the bytes the lock gives for that name
/// (not the other file's bytes, whose hash is in the lock too).
#[test]
fn plugins_sharing_a_cache_vendor_the_bytes_the_lock_names_for_each_file() {
    use crate::index::{release, Index, Mode};
    let index = Index::start(Mode::Json, &[release("idna", "3.20", &[])]);
    let (sdist_name, sdist_bytes) = sdist("idna", "3.20", false);
    index.publish_bytes(release("idna", "3.20", &[]).sdist(), sdist_bytes.clone());
    let wheel_name = "idna-3.20-py3-none-any.whl";
    let wheel_bytes = index.bytes_of(wheel_name);
    for order in [["wheels", "sdists"], ["sdists", "wheels"]] {
        let ctx = TestContext::new();
        let cache = ctx.root().join("cache");
        for plugin in order {
            online_plugin(&ctx, plugin, "idna\n", plugin == "wheels");
            let out = ctx
                .cmd(["build", plugin])
                .env("MFPLUG_INDEX_URL", &index.url)
                .env("XDG_CACHE_HOME", &cache)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{order:?} {plugin}: {stderr}");
            let lock = std::fs::read_to_string(
                ctx.work
                    .join(plugin)
                    .join("python3_virtualenv_sources/requirements3.txt"),
            )
            .unwrap();
            assert!(
                lock.contains(&format!(
                    "# file: {sdist_name} sha256:{}",
                    crate::index::sha256(&sdist_bytes)
                )),
                "{lock}"
            );
            let vendor = ctx.work.join(plugin).join("python3_virtualenv_sources/src");
            let (name, bytes, check) = if plugin == "wheels" {
                (wheel_name, &wheel_bytes, "idna.VERSION")
            } else {
                (sdist_name.as_str(), &sdist_bytes, "idna.BUILT")
            };
            let vendored = std::fs::read(vendor.join(name)).unwrap();
            assert!(
                vendored == *bytes,
                "{order:?}: `{name}` of {plugin} holds other bytes (sha256 {})",
                crate::index::sha256(&vendored)
            );
            let (ok, text) = run(std::process::Command::new(
                ctx.work.join(plugin).join("local/bin/python"),
            )
            .args(["-c", &format!("import idna; print({check})")]));
            assert!(ok, "{order:?} {plugin}: {text}");
            assert_eq!(
                text.trim(),
                if plugin == "wheels" {
                    "3.20"
                } else {
                    "from sdist"
                }
            );
        }
    }
}

/// A file already in the vendor dir under a locked name but with the other file's bytes:
/// refused offline (named, nothing built), replaced online.
#[test]
fn a_wrong_file_in_the_vendor_dir_is_refused_offline_and_replaced_online() {
    use crate::index::{release, Index, Mode};
    let index = Index::start(Mode::Json, &[release("idna", "3.20", &[])]);
    let (sdist_name, sdist_bytes) = sdist("idna", "3.20", false);
    index.publish_bytes(release("idna", "3.20", &[]).sdist(), sdist_bytes.clone());
    let wheel_bytes = index.bytes_of("idna-3.20-py3-none-any.whl");
    let ctx = TestContext::new();
    online_plugin(&ctx, "p", "idna\n", false);
    let cache = ctx.root().join("cache");
    succeed(
        ctx.cmd(["lock", "p"])
            .env("MFPLUG_INDEX_URL", &index.url)
            .env("XDG_CACHE_HOME", &cache),
    );
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::write(vendor.join(&sdist_name), &wheel_bytes).unwrap();

    let out = ctx
        .cmd(["build", "p", "--offline"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("vendored `{sdist_name}` does not match the lock")),
        "{stderr}"
    );
    assert!(!ctx.work.join("p/local").exists());

    let out = ctx
        .cmd(["build", "p"])
        .env("MFPLUG_INDEX_URL", &index.url)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("Replaced `{sdist_name}`")),
        "{stderr}"
    );
    assert!(std::fs::read(vendor.join(&sdist_name)).unwrap() == sdist_bytes);
    let (ok, text) = run(
        std::process::Command::new(ctx.work.join("p/local/bin/python"))
            .args(["-c", "import idna; print(idna.BUILT)"]),
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "from sdist");

    // A lock made before `# file:` lines: a wheel's bytes under the sdist's name are still
    // refused (the content is not of the kind the name says).
    let lock_path = ctx
        .work
        .join("p/python3_virtualenv_sources/requirements3.txt");
    let old_style: String = std::fs::read_to_string(&lock_path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("# file:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&lock_path, old_style).unwrap();
    std::fs::write(vendor.join(&sdist_name), &wheel_bytes).unwrap();
    let out = ctx
        .cmd(["build", "p", "--offline"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("vendored `{sdist_name}` does not match the lock")),
        "{stderr}"
    );
}

/// Runs mfplug with `args` under python3, which reports the peak RSS of its one child (in
/// KiB, `getrusage(RUSAGE_CHILDREN)` after it exits); gives its stderr and success too.
fn peak_rss_kib(ctx: &TestContext, args: &[&str], env: &[(&str, &Path)]) -> (bool, String, u64) {
    let script = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:])\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n";
    let mut cmd = ctx.command_under("python3", ["-c", script]);
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd
        .output()
        .expect("python3 runs (install it: `apt-get install python3`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut words = stdout.split_whitespace();
    let rss: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "python3 reported no peak RSS: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let ok = words.next() == Some("0");
    (ok, String::from_utf8_lossy(&out.stderr).into_owned(), rss)
}

/// A 100 MiB wheel (one stored member of incompressible bytes), served whole (no metadata
/// file, no ranges): `lock` reads its metadata and `build` vendors it with a peak RSS far
/// below the wheel's size, because downloads stream to a temp file through a hashing reader.
#[test]
fn lock_and_build_stream_a_big_wheel_in_bounded_memory() {
    use crate::index::{release, Index, Mode};
    const SIZE: usize = 100 * 1024 * 1024;
    let mut big = release("big", "1.0", &[]);
    big.padding = SIZE;
    let index = Index::start(Mode::Html, &[big]);
    let ctx = TestContext::new();
    online_plugin(&ctx, "p", "big\n", true);
    let url = std::path::PathBuf::from(&index.url);
    let (ok, stderr, lock_rss) = peak_rss_kib(
        &ctx,
        &["lock", "p"],
        &[
            ("MFPLUG_INDEX_URL", &url),
            ("XDG_CACHE_HOME", &ctx.root().join("lock-cache")),
        ],
    );
    assert!(ok, "{stderr}");
    // Another cache: the build downloads the wheel again.
    let (ok, stderr, build_rss) = peak_rss_kib(
        &ctx,
        &["build", "p"],
        &[
            ("MFPLUG_INDEX_URL", &url),
            ("XDG_CACHE_HOME", &ctx.root().join("build-cache")),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Vendored `big-1.0-py3-none-any.whl`"),
        "{stderr}"
    );
    let vendored = ctx
        .work
        .join("p/python3_virtualenv_sources/src/big-1.0-py3-none-any.whl");
    assert!(std::fs::metadata(&vendored).unwrap().len() > SIZE as u64);
    println!(
        "peak RSS: lock {lock_rss} KiB, build {build_rss} KiB, wheel {} KiB",
        SIZE / 1024
    );
    let bound = (SIZE / 1024 / 2) as u64;
    assert!(
        lock_rss < bound,
        "lock peaked at {lock_rss} KiB (bound {bound} KiB)"
    );
    assert!(
        build_rss < bound,
        "build peaked at {build_rss} KiB (bound {bound} KiB)"
    );
}

/// A download cut short (or of other bytes) is refused, named, and leaves nothing in the
/// cache or the vendor dir.
#[test]
fn a_truncated_download_is_refused_and_leaves_nothing() {
    use crate::index::{release, Index, Mode};
    let mut alpha = release("alpha", "1.0", &[]);
    alpha.padding = 256 * 1024;
    let index = Index::start(Mode::Html, &[alpha]);
    let ctx = TestContext::new();
    online_plugin(&ctx, "p", "alpha\n", true);
    succeed(
        ctx.cmd(["lock", "p"])
            .env("MFPLUG_INDEX_URL", &index.url)
            .env("XDG_CACHE_HOME", ctx.root().join("lock-cache")),
    );
    index.set_mode(Mode::Truncated);
    let cache = ctx.root().join("cache");
    let out = ctx
        .cmd(["build", "p"])
        .env("MFPLUG_INDEX_URL", &index.url)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("downloaded `alpha-1.0-py3-none-any.whl` does not match the lock"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    assert!(std::fs::read_dir(&vendor).map_or(true, |mut d| d.next().is_none()));
    for dir in ["files", "archives"] {
        let leftovers: Vec<_> = walkdir::WalkDir::new(cache.join("mfplug").join(dir))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    assert!(!ctx.work.join("p/local").exists());
}

/// Runs mfplug with `args` under python3, which counts with inotify the opens of each file
/// of `watched` meanwhile; gives the child's success, its stderr and the counts.
fn opens_during(
    ctx: &TestContext,
    watched: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
) -> (bool, String, std::collections::BTreeMap<String, usize>) {
    let script = r#"import ctypes, json, os, struct, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x20) < 0:
    sys.exit("inotify: errno %d" % ctypes.get_errno())
r = subprocess.run(sys.argv[2:])
counts = {}
while True:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        break
    i = 0
    while i < len(data):
        _, _, _, length = struct.unpack_from("iIII", data, i)
        name = data[i + 16:i + 16 + length].rstrip(b"\0").decode()
        if name:
            counts[name] = counts.get(name, 0) + 1
        i += 16 + length
print(r.returncode, json.dumps(counts))
"#;
    let mut cmd = ctx.command_under(
        "python3",
        [
            std::ffi::OsStr::new("-c"),
            script.as_ref(),
            watched.as_os_str(),
        ],
    );
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd
        .output()
        .expect("python3 runs (install it: `apt-get install python3`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (code, counts) = stdout
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("python3 reported no counts: {stdout}{stderr}"));
    (code == "0", stderr, serde_json::from_str(counts).unwrap())
}

/// Online, a vendored file is hashed once per build: the fetch's hash is the one the build
/// matches with the lock (it used to hash every vendored file a second time).
#[test]
fn each_vendored_file_is_read_once_per_build() {
    use crate::index::{release, Index, Mode};
    let index = Index::start(Mode::Json, &[release("alpha", "1.0", &[])]);
    let ctx = TestContext::new();
    online_plugin(&ctx, "p", "alpha\n", true);
    let cache = ctx.root().join("cache");
    let url = std::path::PathBuf::from(&index.url);
    let env = [
        ("MFPLUG_INDEX_URL", url.as_path()),
        ("XDG_CACHE_HOME", &cache),
    ];
    let (ok, stderr, _) = peak_rss_kib(&ctx, &["build", "p"], &env);
    assert!(ok, "{stderr}");
    // A new env from the same vendor dir, the wheel already unpacked in the cache.
    ctx.cmd(["clean", "p"]).assert().success();
    let vendor = ctx.work.join("p/python3_virtualenv_sources/src");
    let (ok, stderr, opens) = opens_during(&ctx, &vendor, &["build", "p"], &env);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Built"), "{stderr}");
    assert_eq!(
        opens.get("alpha-1.0-py3-none-any.whl"),
        Some(&1),
        "{opens:?}"
    );
}

/// `lock --index-url URL` and then a bare `build`: the build fetches from the index the lock
/// records (which the lock wrote without the URL's credentials), as uv's `sync` does after
/// `lock`; `build --no-index` and `build --index-url` take the lock's options.
#[test]
fn build_fetches_from_the_index_the_lock_was_made_from() {
    use crate::index::{release, Index, Mode};
    let ctx = TestContext::new();
    let index = Index::start(Mode::Json, &[release("alpha", "1.0", &[])]);
    online_plugin(&ctx, "p", "alpha\n", true);
    let cache = ctx.root().join("cache");
    let with_secret = index.url.replacen("http://", "http://user:secret@", 1);
    succeed(
        ctx.cmd(["lock", "p", "--index-url", &with_secret])
            .env("XDG_CACHE_HOME", &cache),
    );
    let lock = ctx.read("p/python3_virtualenv_sources/requirements3.txt");
    assert!(!lock.contains("secret"), "{lock}");
    assert!(
        lock.contains(&format!("# index-url: {}", index.url)),
        "{lock}"
    );

    let out = ctx
        .cmd(["build", "p"])
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Vendored `alpha-1.0-py3-none-any.whl`"),
        "{stderr}"
    );

    // The vendored file gone: `--no-index` has nowhere to fetch it from; `--index-url` has.
    std::fs::remove_dir_all(ctx.work.join("p/python3_virtualenv_sources/src")).unwrap();
    std::fs::remove_dir_all(ctx.work.join("p/local")).unwrap();
    let empty = ctx.root().join("empty-cache");
    let out = ctx
        .cmd(["build", "p", "--no-index"])
        .env("XDG_CACHE_HOME", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no package index"), "{stderr}");
    succeed(
        ctx.cmd(["build", "p", "--index-url", &index.url])
            .env("XDG_CACHE_HOME", &empty),
    );
}

/// Every sdist format pip builds (`.tgz`, `.tar.bz2`, `.tar.xz`, `.zip`; `.tar.gz` above) is
/// unpacked and built through PEP 517 offline, as pip and uv build them.
#[test]
fn sdists_of_every_format_pip_builds_are_built() {
    use std::io::{Read as _, Write as _};
    for ext in ["tgz", "tar.bz2", "tar.xz", "zip"] {
        let ctx = TestContext::new();
        let name = format!("fmt{}", ext.replace('.', ""));
        let (_, gz) = sdist(&name, "1.0", false);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let bytes = match ext {
            "tgz" => gz.clone(),
            "tar.bz2" => {
                let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                w.write_all(&tar_bytes).unwrap();
                w.finish().unwrap()
            }
            "tar.xz" => {
                let mut w = liblzma::write::XzEncoder::new(Vec::new(), 1);
                w.write_all(&tar_bytes).unwrap();
                w.finish().unwrap()
            }
            _ => {
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let mut archive = tar::Archive::new(&tar_bytes[..]);
                for entry in archive.entries().unwrap() {
                    let mut entry = entry.unwrap();
                    let path = entry.path().unwrap().display().to_string();
                    let mut text = Vec::new();
                    entry.read_to_end(&mut text).unwrap();
                    zip.start_file(path, zip::write::SimpleFileOptions::default())
                        .unwrap();
                    zip.write_all(&text).unwrap();
                }
                zip.finish().unwrap().into_inner()
            }
        };
        let file = format!("{name}-1.0.{ext}");
        python_plugin(&ctx, "p", &format!("{name}\n"), &[(file.clone(), bytes)]);
        std::fs::remove_file(
            ctx.work
                .join("p/python3_virtualenv_sources/allow_binary_packages"),
        )
        .unwrap();
        let out = ctx
            .cmd(["build", "p", "--offline"])
            .env("XDG_CACHE_HOME", ctx.root().join("cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ok, text) = run(
            std::process::Command::new(ctx.work.join("p/local/bin/python"))
                .args(["-c", &format!("import {name}; print({name}.BUILT)")]),
        );
        assert!(ok, "{file}: {text}");
        assert_eq!(text.trim(), "from sdist", "{file}");
    }
}
