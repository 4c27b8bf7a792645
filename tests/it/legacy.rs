//! Legacy MetWork `.plugin` files (tar.gz of `metwork_plugin/`), built here the way MetWork
//! builds them: `info`, `verify` and `convert` to format 1.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::mfplug_snapshot;
use crate::support::{make_executable, members, succeed, TestContext};

/// Writes a MetWork plugin dir, then its `.plugin`: `tar czf` of `metwork_plugin/` holding the
/// plugin's files, `.metadata.json` and `.files.json`.
fn legacy_plugin(ctx: &TestContext, listed_extra: &[&str], outside: bool) -> PathBuf {
    let src = ctx.root().join("legacy-src/metwork_plugin");
    let files: &[(&str, &str)] = &[
        (".layerapi2_label", "plugin_oldplug@mfdata\n"),
        (
            "config.ini",
            "[general]\n_version=1.2.3\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n_summary=an old plugin\n\n[custom]\nfoo=bar\n",
        ),
        ("main.py", "print('hello')\n"),
        ("bin/tool", "#!/bin/sh\necho tool\n"),
        (".plugin_format_version", "1.0.0\n"),
    ];
    for (path, text) in files {
        let full = src.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
    }
    make_executable(&src.join("bin/tool"));
    let mut listed: Vec<String> = files.iter().map(|(p, _)| (*p).to_owned()).collect();
    listed.extend(listed_extra.iter().map(|s| (*s).to_owned()));
    std::fs::write(
        src.join(".files.json"),
        serde_json::to_string(&listed).unwrap(),
    )
    .unwrap();
    std::fs::write(
        src.join(".metadata.json"),
        // Exactly the ten keys mfplugin's `Plugin.build` writes, every value a string.
        serde_json::json!({
            "version": "1.2.3", "release": "1",
            "build_host": "builder", "build_date": "2020-01-01T00:00:00Z", "size": "232",
            "summary": "an old plugin", "license": "BSD",
            "packager": "Ops <ops@example.invalid>", "vendor": "MetWork", "url": ""
        })
        .to_string(),
    )
    .unwrap();
    let out = ctx.work.join("oldplug-1.2.3-1.metwork.plugin");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    builder.append_dir_all("metwork_plugin", &src).unwrap();
    if outside {
        let mut h = tar::Header::new_gnu();
        h.set_path("elsewhere.txt").unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append(&h, &b"x"[..]).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    out
}

#[test]
fn legacy_info_and_verify() {
    let ctx = TestContext::new();
    let file = legacy_plugin(&ctx, &[], false);
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    // The packed size depends on the files' mtimes, so the text is checked line by line.
    let out = ctx.cmd(["info", &name]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "name: oldplug\n",
        "version: 1.2.3\n",
        "release: 1\n",
        "maintainer: Ops <ops@example.invalid>\n",
        "format: legacy\n",
        "files: 5\n",
        "size: 232 B unpacked, ",
        // hashlib.md5("builder, 2020-01-01T00:00:00Z, 232, 1.2.3, 1".encode()).hexdigest(),
        // as mfplugin's `get_plugin_hash` computes it.
        "plugin hash: metwork:7a1564794aaaeb14653ae719417a436a",
    ] {
        assert!(stdout.contains(line), "{line} not in {stdout}");
    }
    mfplug_snapshot!(ctx, ctx.cmd(["verify", &name]), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
        Verified `oldplug-1.2.3-1.metwork.plugin`: plugin `oldplug`, every listed file is present (a legacy file has no content hashes)
    ");
}

#[test]
fn legacy_missing_listed_file_or_member_outside_is_refused() {
    let ctx = TestContext::new();
    let file = legacy_plugin(&ctx, &["lib/gone.py"], false);
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("lists `lib/gone.py` but the file has no such member"));

    let ctx = TestContext::new();
    let file = legacy_plugin(&ctx, &[], true);
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("member `elsewhere.txt` is outside `metwork_plugin/`"));
    ctx.cmd(["convert"]).arg(&file).assert().code(1);
    assert!(!ctx.work.join("oldplug-1.2.3-1.plugin").exists());
}

fn tree_of(file: &Path) -> Vec<(String, u32, Vec<u8>)> {
    members(file)
        .into_iter()
        .filter(|m| !m.path.starts_with(".mfplug/"))
        .map(|m| (m.path, m.mode, m.data))
        .collect()
}

#[test]
fn convert_writes_an_equivalent_format_1_file() {
    let ctx = TestContext::new();
    let file = legacy_plugin(&ctx, &[], false);
    succeed(
        ctx.cmd(["convert"])
            .arg(&file)
            .args(["-o", "converted", "--json"]),
    );
    let converted = ctx.work.join("converted/oldplug-1.2.3-1.plugin");
    ctx.cmd(["verify"]).arg(&converted).assert().success();
    let info = ctx
        .cmd(["info", "--json"])
        .arg(&converted)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["name"], "oldplug");
    assert_eq!(json["version"], "1.2.3");
    assert_eq!(json["maintainer"], "Ops <ops@example.invalid>");
    assert_eq!(json["files"], 5);
    let tree = tree_of(&converted);
    let paths: Vec<&str> = tree.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            ".layerapi2_label",
            ".plugin_format_version",
            "bin/tool",
            "config.ini",
            "main.py"
        ]
    );
    assert_eq!(tree[2].1, 0o755);
    assert_eq!(tree[4].2, b"print('hello')\n");
    // Converting again gives the same bytes.
    let first = std::fs::read(&converted).unwrap();
    ctx.cmd(["convert"])
        .arg(&file)
        .args(["-o", "converted"])
        .assert()
        .success();
    assert_eq!(first, std::fs::read(&converted).unwrap());
    // A format-1 file is not converted.
    let out = ctx.cmd(["convert"]).arg(&converted).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already a format-1"));
}

/// A legacy file from these members of `metwork_plugin/` (with `.metadata.json` and
/// `.files.json` added), built with the tar crate.
fn legacy_from(
    ctx: &TestContext,
    name: &str,
    files: &[(&str, &[u8])],
    links: &[(&str, &str)],
) -> PathBuf {
    let out = ctx.work.join(name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    let metadata =
        serde_json::json!({"name": "oldplug", "version": "1.0", "release": "1"}).to_string();
    let listed: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
    let listed = serde_json::to_string(&listed).unwrap();
    let mut all: Vec<(&str, &[u8])> = vec![
        (".metadata.json", metadata.as_bytes()),
        (".files.json", listed.as_bytes()),
    ];
    all.extend_from_slice(files);
    for (path, data) in all {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder
            .append_data(&mut h, format!("metwork_plugin/{path}"), data)
            .unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        builder
            .append_link(&mut h, format!("metwork_plugin/{path}"), target)
            .unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    out
}

fn refused_with(ctx: &TestContext, args: &[&str], file: &Path, message: &str) {
    let out = ctx.cmd(args).arg(file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected `{message}` in:\n{stderr}"
    );
}

#[test]
fn a_label_that_climbs_out_is_refused_before_anything_is_written() {
    let ctx = TestContext::new();
    let config: &[u8] = b"[general]\n_version=1.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n";
    let file = legacy_from(
        &ctx,
        "escape.plugin",
        &[
            (".layerapi2_label", b"plugin_../../escaped@m\n"),
            ("config.ini", config),
        ],
        &[],
    );
    let message = "invalid plugin name in `metwork_plugin/.layerapi2_label`";
    refused_with(&ctx, &["info"], &file, message);
    refused_with(&ctx, &["verify"], &file, message);
    refused_with(&ctx, &["convert", "-o", "out/inner"], &file, message);
    assert!(!ctx.work.join("out").exists(), "convert wrote nothing");
    assert!(!ctx.root().join("escaped-1.0-1.plugin").exists());
    refused_with(&ctx, &["install"], &file, message);
    let plugins: Vec<_> = std::fs::read_dir(ctx.home.join("plugins"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        plugins.iter().all(|n| n.to_string_lossy().starts_with('.')),
        "a stray entry in plugins/: {plugins:?}"
    );
    let out = succeed(&mut ctx.cmd(["list"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("escaped"));

    // A name from `.metadata.json` is checked too, when there is no label.
    let ctx = TestContext::new();
    let out = ctx.work.join("meta.plugin");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    let metadata = br#"{"name": "../x", "version": "1"}"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(metadata.len() as u64);
    h.set_mode(0o644);
    builder
        .append_data(&mut h, "metwork_plugin/.metadata.json", &metadata[..])
        .unwrap();
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    refused_with(
        &ctx,
        &["verify"],
        &out,
        "invalid plugin name in `metwork_plugin/.metadata.json`",
    );
}

#[test]
fn config_and_label_beyond_the_bound_are_refused_not_cut() {
    let ctx = TestContext::new();
    let label: &[u8] = b"plugin_oldplug@mfdata\n";
    let mut config = b"[general]\n_version=1.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n".to_vec();
    config.resize(1 << 20, b'#');
    config[(1 << 20) - 1] = b'\n';
    let file = legacy_from(
        &ctx,
        "at.plugin",
        &[(".layerapi2_label", label), ("config.ini", &config)],
        &[],
    );
    succeed(ctx.cmd(["convert", "-o", "dist"]).arg(&file));
    let converted = ctx.work.join("dist/oldplug-1.0-1.plugin");
    let tree = members(&converted);
    let kept = tree.iter().find(|m| m.path == "config.ini").unwrap();
    assert_eq!(kept.data.len(), 1 << 20, "kept whole");

    config.push(b'\n');
    let file = legacy_from(
        &ctx,
        "over.plugin",
        &[(".layerapi2_label", label), ("config.ini", &config)],
        &[],
    );
    let message = "member `config.ini` is 1048577 bytes, beyond the bound of 1048576 bytes";
    refused_with(&ctx, &["verify"], &file, message);
    refused_with(&ctx, &["convert", "-o", "dist2"], &file, message);
    assert!(!ctx.work.join("dist2").exists());
}

#[test]
fn legacy_metadata_files_may_not_be_symlinks() {
    let ctx = TestContext::new();
    let label: &[u8] = b"plugin_oldplug@mfdata\n";
    let config: &[u8] = b"[general]\n_version=1.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n";
    for (path, target) in [
        ("crontab", "/dev/zero"),
        ("postinstall", "/bin/sh"),
        (".mfplug", "/tmp"),
    ] {
        let file = legacy_from(
            &ctx,
            "link.plugin",
            &[(".layerapi2_label", label), ("config.ini", config)],
            &[(path, target)],
        );
        let message = if path == ".mfplug" {
            "member `.mfplug` is under `.mfplug/`".to_owned()
        } else {
            format!("member `{path}` is a symlink: mfplug's own files")
        };
        refused_with(&ctx, &["verify"], &file, &message);
        refused_with(&ctx, &["install"], &file, &message);
    }
    // A chain of links out of the plugin through an absolute one is shown by `info`.
    let file = legacy_from(
        &ctx,
        "chain.plugin",
        &[(".layerapi2_label", label), ("config.ini", config)],
        &[("etc", "/etc"), ("pw", "etc/passwd")],
    );
    let out = succeed(ctx.cmd(["info"]).arg(&file));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("external symlink: pw -> etc/passwd"),
        "{stdout}"
    );
}

/// `release --format metwork` writes what MetWork installs: read back by a Python reader that
/// does what mfplugin's `PluginFile.load` does (label, the ten metadata keys, `.files.json`)
/// and computes MetWork's hash as `get_plugin_hash` does; mfplug's own reader agrees.
#[test]
fn metwork_format_release_reads_back_as_mfplugin_reads_it() {
    let python = crate::support::require_tool("python3", "apt-get install python3");
    let ctx = TestContext::new();
    ctx.cmd([
        "bootstrap",
        "create",
        "foo",
        "-t",
        "bin",
        "--module",
        "MFDATA",
    ])
    .assert()
    .success();
    std::fs::write(ctx.work.join("foo/notes é.txt"), "é\n").unwrap();
    let out = ctx
        .cmd([
            "release", "foo", "--format", "metwork", "-o", "out", "--json",
        ])
        .env("MFHOSTNAME_FULL", "builder.example")
        .env("SOURCE_DATE_EPOCH", "1577836800")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = ctx.work.join("out/foo-0.0.1-1.metwork.mfdata.plugin");
    assert_eq!(report["path"], "out/foo-0.0.1-1.metwork.mfdata.plugin");
    let reader = r#"
import hashlib, json, sys, tarfile
tf = tarfile.open(name=sys.argv[1], mode="r")
label = tf.extractfile("metwork_plugin/.layerapi2_label").read().decode("utf8").strip()
name = label.split("@")[0][len("plugin_"):]
metadata = json.loads(tf.extractfile("metwork_plugin/.metadata.json").read().decode("utf8").strip())
keys = ["version", "release", "build_host", "build_date", "size", "summary", "license",
        "packager", "vendor", "url"]
values = [metadata[k] for k in keys]
files = json.loads(tf.extractfile("metwork_plugin/.files.json").read().decode("utf8").strip())
members = sorted(m.name for m in tf.getmembers() if not m.isdir())
sid = ", ".join([metadata.get(k, "unknown") for k in ["build_host", "build_date", "size", "version", "release"]])
print(json.dumps({
    "name": name, "keys": sorted(metadata), "types": sorted({type(v).__name__ for v in values}),
    "metadata": metadata, "files": sorted(files), "members": members,
    "hash": hashlib.md5(sid.encode("utf8")).hexdigest(),
}))
"#;
    let read = std::process::Command::new(python)
        .arg("-c")
        .arg(reader)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read["name"], "foo");
    assert_eq!(read["types"], serde_json::json!(["str"]));
    let mut keys = vec![
        "build_date",
        "build_host",
        "license",
        "packager",
        "release",
        "size",
        "summary",
        "url",
        "vendor",
        "version",
    ];
    keys.sort_unstable();
    assert_eq!(read["keys"], serde_json::json!(keys));
    assert_eq!(read["metadata"]["build_host"], "builder.example");
    assert_eq!(read["metadata"]["build_date"], "2020-01-01T00:00:00Z");
    assert_eq!(read["metadata"]["version"], "0.0.1");
    // `.files.json` lists every member but itself and `.metadata.json`.
    let mut listed: Vec<String> = read["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    listed.push("metwork_plugin/.files.json".into());
    listed.push("metwork_plugin/.metadata.json".into());
    listed.sort();
    assert_eq!(serde_json::json!(listed), read["members"]);
    assert!(listed.contains(&"metwork_plugin/notes é.txt".to_owned()));
    // The size MetWork states is the sum of the listed regular files.
    let hash = format!("metwork:{}", read["hash"].as_str().unwrap());
    assert_eq!(report["plugin_hash"], hash.as_str());
    let info = ctx
        .cmd(["info", "out/foo-0.0.1-1.metwork.mfdata.plugin", "--json"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["plugin_hash"], hash.as_str());
    assert_eq!(info["format"], "legacy");
    assert_eq!(info["name"], "foo");
    ctx.cmd(["verify", "out/foo-0.0.1-1.metwork.mfdata.plugin"])
        .assert()
        .success();
    ctx.cmd(["install", "out/foo-0.0.1-1.metwork.mfdata.plugin"])
        .assert()
        .success();
}
