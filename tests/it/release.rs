//! `mfplug release`, `info`, `verify` and `convert` on `.plugin` files: reproducibility,
//! `.releaseignore`, symlinks, tampering, hostile archives and legacy MetWork files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::mfplug_snapshot;
use crate::support::{member_paths, members, stderr, succeed, TestContext};

/// A small plugin dir written file by file in the given order, with the given file mode.
fn plugin_tree(root: &Path, reversed: bool, mode: u32) {
    let mut files: Vec<(&str, &str)> = vec![
        (".layerapi2_label", "plugin_rel@mfplug\n"),
        (
            "config.ini",
            "[general]\n_version = 1.2.0\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n_summary = release test\n",
        ),
        ("bin/run", "#!/bin/sh\necho run\n"),
        ("lib/util.py", "X = 1\n"),
        ("data/a.txt", "aaa\n"),
        ("data/b.txt", "bbb\n"),
        ("zz/deep/er/file.txt", "deep\n"),
        ("Zupper.txt", "upper sorts before lower by bytes\n"),
    ];
    if reversed {
        files.reverse();
    }
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
        let mode = if path.starts_with("bin/") {
            mode | 0o111
        } else {
            mode
        };
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::os::unix::fs::symlink("../lib/util.py", root.join("bin/util-link")).unwrap();
}

fn set_mtime(root: &Path, seconds: i64) {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let file = std::fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap();
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
            file.set_modified(time).unwrap();
        }
    }
}

fn release(ctx: &TestContext, dir: &str, extra: &[&str]) -> PathBuf {
    let out = succeed(ctx.cmd(["release", dir]).args(extra).arg("--json"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = PathBuf::from(json["path"].as_str().unwrap());
    if path.is_absolute() {
        path
    } else {
        ctx.work.join(path)
    }
}

#[test]
fn release_is_reproducible_across_mtimes_umask_paths_and_order() {
    let ctx = TestContext::new();
    let a = ctx.work.join("one/copy");
    let b = ctx.work.join("two/elsewhere/copy");
    plugin_tree(&a, false, 0o644);
    plugin_tree(&b, true, 0o600);
    set_mtime(&a, 1_000_000);
    set_mtime(&b, 1_700_000_000);
    let fa = release(&ctx, "one/copy", &["-o", "out-a"]);
    let fb = release(&ctx, "two/elsewhere/copy", &["-o", "out-b"]);
    assert_eq!(fa.file_name().unwrap(), "rel-1.2.0-1.plugin");
    assert_eq!(std::fs::read(&fa).unwrap(), std::fs::read(&fb).unwrap());

    let paths = member_paths(&fa);
    assert_eq!(
        paths,
        vec![
            ".mfplug/PLUGIN.json",
            ".mfplug/RECORD",
            ".layerapi2_label",
            "Zupper.txt",
            "bin/run",
            "bin/util-link",
            "config.ini",
            "data/a.txt",
            "data/b.txt",
            "empty/dir/",
            "lib/util.py",
            "zz/deep/er/file.txt",
        ]
    );
    for member in members(&fa) {
        let (path, mode, link) = (member.path, member.mode, member.link);
        match path.as_str() {
            "bin/run" => assert_eq!(mode, 0o755),
            "bin/util-link" => assert_eq!(link.as_deref(), Some("../lib/util.py")),
            "empty/dir/" => assert_eq!(mode, 0o755),
            _ => assert_eq!(mode, 0o644, "{path}"),
        }
    }
}

#[test]
fn source_date_epoch_changes_the_bytes_not_the_hash_and_levels_keep_the_hash() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    let hash = |args: &[&str], epoch: Option<&str>| {
        let mut cmd = ctx.cmd(["release", "p", "--json"]);
        cmd.args(args);
        if let Some(epoch) = epoch {
            cmd.env("SOURCE_DATE_EPOCH", epoch);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let bytes = std::fs::read(ctx.work.join("p/rel-1.2.0-1.plugin")).unwrap();
        (json["plugin_hash"].as_str().unwrap().to_owned(), bytes)
    };
    let (h3, b3) = hash(&[], None);
    let (h1, b1) = hash(&["--level", "1"], None);
    let (h19, b19) = hash(&["--level", "19"], None);
    let (he, be) = hash(&[], Some("1700000000"));
    assert_eq!(h3, h1);
    assert_eq!(h3, h19);
    assert_ne!(b3, b1);
    assert_ne!(b3, b19);
    assert_eq!(h3, he);
    assert_ne!(b3, be);
    let (_, again) = hash(&[], None);
    assert_eq!(b3, again);
    let info = ctx
        .cmd(["info", "p/rel-1.2.0-1.plugin", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["build_time"], 946_684_800);
    assert_eq!(json["plugin_hash"], h3.as_str());

    ctx.cmd(["release", "p", "--level", "0"]).assert().code(1);
    ctx.cmd(["release", "p", "--level", "23"]).assert().code(1);
    ctx.cmd(["release", "p"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .assert()
        .code(1);
}

#[test]
fn releaseignore_vcs_local_and_the_output_file() {
    let ctx = TestContext::new();
    let p = ctx.work.join("p");
    plugin_tree(&p, false, 0o644);
    for (path, text) in [
        (".git/HEAD", "ref"),
        ("sub/.svn/entries", "x"),
        ("local/bin/python", "venv"),
        ("sub/local/kept.txt", "only the top local/ is left out"),
        ("build/out.o", "obj"),
        ("build/keep.me", "negated inside an ignored dir"),
        ("logs/a.log", "log"),
        ("top.txt", "anchored"),
        ("sub/top.txt", "not anchored: kept"),
        ("important.log", "negated file"),
    ] {
        let full = p.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    std::fs::write(
        p.join(".releaseignore"),
        "# comment\nbuild/\n!build/keep.me\n*.log\n!important.log\n/top.txt\n",
    )
    .unwrap();
    let file = release(&ctx, "p", &[]);
    let paths = member_paths(&file);
    for kept in [
        "build/keep.me",
        "important.log",
        "sub/top.txt",
        "sub/local/kept.txt",
        ".releaseignore",
    ] {
        assert!(
            paths.contains(&kept.to_owned()),
            "{kept} missing from {paths:?}"
        );
    }
    for left in [
        ".git/HEAD",
        "sub/.svn/entries",
        "local/bin/python",
        "build/out.o",
        "logs/a.log",
        "top.txt",
    ] {
        assert!(!paths.contains(&left.to_owned()), "{left} in {paths:?}");
    }
    // The output file in the tree, from an earlier release, is not packed into the next one.
    let again = release(&ctx, "p", &[]);
    assert!(!member_paths(&again).iter().any(|p| p.ends_with(".plugin")));
    // An invalid pattern is an error naming the file and line.
    std::fs::write(p.join(".releaseignore"), "ok\n[z-a]\n").unwrap();
    let out = ctx.cmd(["release", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".releaseignore` line 2"));
}

#[test]
fn symlinks_inside_absolute_and_escaping() {
    let ctx = TestContext::new();
    let p = ctx.work.join("p");
    plugin_tree(&p, false, 0o644);
    std::os::unix::fs::symlink("/usr/bin/env", p.join("bin/env")).unwrap();
    std::os::unix::fs::symlink("../data", p.join("lib/data-dir")).unwrap();
    let file = release(&ctx, "p", &[]);
    let info = ctx.cmd(["info"]).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&info.stdout);
    assert!(
        stdout.contains("external symlink: bin/env -> /usr/bin/env"),
        "{stdout}"
    );
    ctx.cmd(["verify"]).arg(&file).assert().success();

    std::os::unix::fs::symlink("../../outside", p.join("lib/escape")).unwrap();
    mfplug_snapshot!(ctx, ctx.cmd(["release", "p"]), @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: failed to release `p`
      Caused by: symlink `lib/escape` points outside the plugin dir (`../../outside`)

    hint: make it point inside the plugin, use an absolute target (it is then reported by `mfplug info`), or list it in `.releaseignore`
    ");
}

#[test]
fn release_output_info_and_verify() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    let out = mfplug_snapshot!(ctx, ctx.cmd(["release", "p", "-o", "dist"]));
    assert!(out.status.success());
    mfplug_snapshot!(ctx, ctx.cmd(["info", "dist/rel-1.2.0-1.plugin"]));
    mfplug_snapshot!(ctx, ctx.cmd(["verify", "dist/rel-1.2.0-1.plugin"]));
}

#[test]
fn release_refuses_a_broken_plugin() {
    let ctx = TestContext::new();
    ctx.write("bad/.layerapi2_label", "plugin_bad@mfplug\n");
    ctx.write("bad/config.ini", "[general]\n_version = 1\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n[wrong]\n");
    let out = ctx.cmd(["release", "bad"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot release `bad`"));
    assert!(!ctx.work.join("bad/bad-1-1.plugin").exists());
    ctx.cmd(["info", "nothing.plugin"]).assert().code(1);
    ctx.write("notaplugin.plugin", "hello");
    let out = ctx.cmd(["verify", "notaplugin.plugin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a `.plugin` file"));
}

/// Rewrites the tar stream inside a `.plugin` file.
fn tamper(file: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = zstd::decode_all(std::fs::File::open(file).unwrap()).unwrap();
    edit(&mut bytes);
    std::fs::write(file, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in archive")
}

#[test]
fn verify_catches_a_flipped_byte_in_a_member_and_in_record() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    let file = release(&ctx, "p", &[]);
    let original = std::fs::read(&file).unwrap();

    tamper(&file, |tar| {
        let at = find(tar, b"deep\n");
        tar[at] = b'D';
    });
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "`zz/deep/er/file.txt` differs from RECORD: its sha256 is not the recorded one"
        ),
        "{stderr}"
    );

    std::fs::write(&file, &original).unwrap();
    tamper(&file, |tar| {
        let at =
            find(tar, b"zz/deep/er/file.txt\t644\t5\t") + "zz/deep/er/file.txt\t644\t5\t".len();
        tar[at] = if tar[at] == b'0' { b'1' } else { b'0' };
    });
    let out = ctx.cmd(["verify", "--json"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("RECORD does not match the plugin hash"));

    // Truncated and corrupt compressed streams.
    std::fs::write(&file, &original[..original.len() / 2]).unwrap();
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt or truncated"));
    let mut corrupt = original.clone();
    for byte in corrupt.iter_mut().skip(20).step_by(7) {
        *byte ^= 0x5a;
    }
    std::fs::write(&file, &corrupt).unwrap();
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// An empty dir sorts by its member name (`a/`), after `a.txt` and `a-b`: the RECORD stays in
/// byte order and the file verifies.
#[test]
fn empty_dirs_sort_by_their_member_name() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    std::fs::create_dir_all(ctx.work.join("p/a")).unwrap();
    ctx.write("p/a.txt", "x");
    ctx.write("p/a-b", "y");
    let file = release(&ctx, "p", &[]);
    ctx.cmd(["verify"]).arg(&file).assert().success();
    let paths = member_paths(&file);
    let at = |name: &str| paths.iter().position(|p| p == name).unwrap();
    assert!(
        at("a-b") < at("a.txt") && at("a.txt") < at("a/"),
        "{paths:?}"
    );
}

/// Incompressible bytes, the same on every run.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

const LONG_PATH: &str = "lib/a-rather-long-package-name/with/some/deeply/nested/module/directories/inside/it/and_a_long_file_name.py";

/// The first frame's size and the magic number of the frame after it.
fn after_first_frame(file: &Path) -> (usize, u32) {
    let bytes = std::fs::read(file).unwrap();
    let first = zstd::zstd_safe::find_frame_compressed_size(&bytes).unwrap();
    let magic = u32::from_le_bytes(bytes[first..first + 4].try_into().unwrap());
    (first, magic)
}

#[test]
fn a_large_body_is_written_once_behind_the_head_and_reads_as_one_stream() {
    let ctx = TestContext::new();
    let a = ctx.work.join("one/big");
    let b = ctx.work.join("two/big");
    for (root, reversed) in [(&a, false), (&b, true)] {
        plugin_tree(root, reversed, 0o644);
        let mut names: Vec<usize> = (0..300).collect();
        if reversed {
            names.reverse();
        }
        for i in names {
            let dir = root.join(format!("pkg/m{:02}", i % 17));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i:03}.py")), format!("N = {i}\n")).unwrap();
        }
        std::fs::write(root.join("data/blob.bin"), noise(3 << 20, 7)).unwrap();
        // Past tar's 100-byte name field: a GNU long-name member goes first.
        let long = root.join(LONG_PATH);
        std::fs::create_dir_all(long.parent().unwrap()).unwrap();
        std::fs::write(&long, noise(70_000, 9)).unwrap();
    }
    set_mtime(&b, 1_700_000_000);
    let fa = release(&ctx, "one/big", &["-o", "out-a"]);
    let fb = release(&ctx, "two/big", &["-o", "out-b"]);
    assert_eq!(std::fs::read(&fa).unwrap(), std::fs::read(&fb).unwrap());

    // The head frame, then the skippable frame over the room it did not use, then the body.
    let (_, magic) = after_first_frame(&fa);
    assert_eq!(magic, 0x184D_2A50, "a skippable frame follows the head");
    let paths = member_paths(&fa);
    assert_eq!(paths[..2], [".mfplug/PLUGIN.json", ".mfplug/RECORD"]);
    assert_eq!(paths.len(), 12 + 300 + 2);
    let all = members(&fa);
    let data = |path: &str| &all.iter().find(|m| m.path == path).unwrap().data;
    assert_eq!(*data("data/blob.bin"), noise(3 << 20, 7));
    assert_eq!(*data(LONG_PATH), noise(70_000, 9));
    ctx.cmd(["verify"]).arg(&fa).assert().success();
    ctx.cmd(["install"]).arg(&fa).assert().success();
    let installed = ctx.home.join("plugins/rel/data/blob.bin");
    assert_eq!(std::fs::read(installed).unwrap(), noise(3 << 20, 7));

    // Released again over the first file: the same bytes, and nothing else left in the dir.
    let again = release(&ctx, "one/big", &["-o", "out-a"]);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&fb).unwrap());
    let left: Vec<_> = std::fs::read_dir(ctx.work.join("out-a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [again.file_name().unwrap()]);

    // A refusal found late in the walk, with most of the body written: the previous file is
    // kept as it was, and no temp file is left.
    std::os::unix::fs::symlink("../../../outside", a.join("zz/deep/escape")).unwrap();
    let out = ctx
        .cmd(["release", "one/big", "-o", "out-a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("points outside the plugin dir"));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&fb).unwrap());
    let left: Vec<_> = std::fs::read_dir(ctx.work.join("out-a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [again.file_name().unwrap()]);

    // Output into a dir inside the tree: the temp files being written are not packed.
    let inside = release(&ctx, "two/big", &["-o", "two/big/dist"]);
    let again = release(&ctx, "two/big", &["-o", "two/big/dist"]);
    assert_eq!(
        std::fs::read(&inside).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let in_dist: Vec<String> = member_paths(&again)
        .into_iter()
        .filter(|p| p.starts_with("dist/"))
        .collect();
    assert_eq!(in_dist, ["dist/"], "the output dir holds nothing to pack");

    // A small body is copied after the head: no padding.
    plugin_tree(&ctx.work.join("small"), false, 0o644);
    let small = release(&ctx, "small", &[]);
    let (_, magic) = after_first_frame(&small);
    assert_eq!(magic, 0xFD2F_B528, "a data frame follows the head");
}

#[test]
fn the_whole_zstd_stream_is_checked_and_a_leading_skippable_frame_is_valid() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    let file = release(&ctx, "p", &[]);
    let bytes = std::fs::read(&file).unwrap();

    // The last 4 bytes (the last frame's checksum) cut off.
    let cut = ctx.work.join("cut.plugin");
    std::fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
    let out = ctx.cmd(["verify"]).arg(&cut).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the compressed stream is corrupt or truncated"),
        "{}",
        stderr(&out)
    );

    // 1 MiB of garbage after the stream.
    let mut garbage = bytes.clone();
    garbage.extend((0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let long = ctx.work.join("garbage.plugin");
    std::fs::write(&long, &garbage).unwrap();
    let out = ctx.cmd(["verify"]).arg(&long).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));

    // A skippable frame first, as `docs/plugin-format.md` allows: the same plugin.
    let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 16, 0, 0, 0];
    skippable.extend([0u8; 16]);
    skippable.extend(&bytes);
    let lead = ctx.work.join("lead.plugin");
    std::fs::write(&lead, &skippable).unwrap();
    let out = ctx.cmd(["verify"]).arg(&lead).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    succeed(ctx.cmd(["info"]).arg(&lead));
}

#[test]
fn a_killed_release_leaves_nothing_that_the_next_one_keeps() {
    let ctx = TestContext::new();
    plugin_tree(&ctx.work.join("p"), false, 0o644);
    std::fs::create_dir_all(ctx.work.join("dist")).unwrap();
    // A process that has exited: its pid names a stale temp file.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = ctx
        .work
        .join(format!("dist/.mfplug-release-{dead}-AbCdEf.tmp"));
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    // This test's own pid is alive: its file is a live release's, and stays.
    let live = ctx.work.join(format!(
        "dist/.mfplug-release-{}-XyZ.tmp",
        std::process::id()
    ));
    std::fs::write(&live, b"in progress").unwrap();
    let other = ctx.work.join("dist/.mfplug-release-notapid.tmp");
    std::fs::write(&other, b"?").unwrap();
    succeed(&mut ctx.cmd(["-q", "release", "p", "-o", "dist"]));
    assert!(!stale.exists(), "the stale temp file is removed");
    assert!(live.exists());
    assert!(other.exists());
    let names: Vec<String> = std::fs::read_dir(ctx.work.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn release_refuses_what_verify_would_refuse() {
    let ctx = TestContext::new();
    let p = ctx.work.join("p");
    plugin_tree(&p, false, 0o644);
    std::os::unix::fs::symlink("/dev/zero", p.join("crontab")).unwrap();
    let out = ctx.cmd(["release", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`crontab` is a symlink: mfplug reads and writes this file itself"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(p.join("crontab")).unwrap();

    // A chain: `etc -> /etc`, then `pw -> etc/passwd` leads outside too, and is listed.
    std::os::unix::fs::symlink("/etc", p.join("etc")).unwrap();
    std::os::unix::fs::symlink("etc/passwd", p.join("pw")).unwrap();
    let file = release(&ctx, "p", &[]);
    let info = succeed(ctx.cmd(["info"]).arg(&file));
    let stdout = String::from_utf8_lossy(&info.stdout);
    assert!(
        stdout.contains("external symlink: etc -> /etc\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("external symlink: pw -> etc/passwd"),
        "{stdout}"
    );
    succeed(ctx.cmd(["verify"]).arg(&file));
    std::fs::remove_file(p.join("pw")).unwrap();
    std::fs::remove_file(p.join("etc")).unwrap();

    // `lib/up -> ..` is the root, and `lib/out -> up/..` lexically `lib/..`: above it.
    std::os::unix::fs::symlink("..", p.join("lib/up")).unwrap();
    std::os::unix::fs::symlink("up/../x", p.join("lib/out")).unwrap();
    let out = ctx.cmd(["release", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("symlink member `lib/out` points outside the plugin (`up/../x`)"),
        "{}",
        stderr(&out)
    );
}
