//! Hostile `.plugin` files, crafted member by member with the tar crate: every one is refused
//! by `mfplug verify` with a clear error, and extraction writes nothing outside its target.

use std::path::{Path, PathBuf};

use mfplug::archive::unpack::{self, ArchiveError, Limits};
use mfplug::archive::{hex, Record};
use sha2::{Digest, Sha256};

use crate::support::TestContext;

enum Body {
    File(&'static [u8]),
    Symlink(&'static str),
    HardLink(&'static str),
    Char,
    Fifo,
    Dir,
    /// A header that claims this many bytes, with none behind it.
    Claims(u64),
}

struct Member {
    path: &'static [u8],
    body: Body,
    /// Listed in RECORD.
    recorded: bool,
}

fn m(path: &'static str, body: Body) -> Member {
    Member {
        path: path.as_bytes(),
        body,
        recorded: true,
    }
}

fn raw_header(path: &[u8], entry_type: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path);
    h.set_entry_type(entry_type);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(946_684_800);
    h
}

/// Writes a format-1 file with a valid head (PLUGIN.json, RECORD, matching hash) around the
/// given members; `extra_record` adds RECORD lines with no member.
fn craft(dir: &Path, name: &str, members: &[Member], extra_record: &[&str]) -> PathBuf {
    let mut lines: Vec<String> = Vec::new();
    for member in members.iter().filter(|m| m.recorded) {
        let path = String::from_utf8_lossy(member.path).into_owned();
        let line = match &member.body {
            Body::File(data) => format!(
                "{path}\t644\t{}\t{}",
                data.len(),
                hex(&Sha256::digest(data))
            ),
            Body::Symlink(t) | Body::HardLink(t) => {
                format!(
                    "{path}\tlink\t{}\t{}",
                    t.len(),
                    hex(&Sha256::digest(t.as_bytes()))
                )
            }
            Body::Dir => format!("{path}\tdir\t0\t-"),
            Body::Char | Body::Fifo => format!("{path}\t644\t0\t{}", hex(&Sha256::digest(b""))),
            Body::Claims(n) => format!("{path}\t644\t{n}\t{}", hex(&Sha256::digest(b""))),
        };
        lines.push(line);
    }
    for extra in extra_record {
        lines.push(format!("{extra}\t644\t0\t{}", hex(&Sha256::digest(b""))));
    }
    lines.sort();
    lines.dedup();
    let record: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let size: u64 = lines
        .iter()
        .map(|l| l.split('\t').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    let meta = serde_json::json!({
        "format": 1, "name": "evil", "version": "1", "release": "1",
        "build_time": 946684800u64, "tool": "test", "platform": "any",
        "plugin_hash": Record::plugin_hash(&record),
        "files": lines.len(), "size": size,
    })
    .to_string();

    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in [
        (".mfplug/PLUGIN.json", meta.as_str()),
        (".mfplug/RECORD", record.as_str()),
    ] {
        let mut h = raw_header(
            path.as_bytes(),
            tar::EntryType::Regular,
            text.len() as u64,
            0o644,
        );
        h.set_cksum();
        builder.append(&h, text.as_bytes()).unwrap();
    }
    for member in members {
        let (entry_type, size, data, link): (tar::EntryType, u64, &[u8], Option<&str>) =
            match &member.body {
                Body::File(data) => (tar::EntryType::Regular, data.len() as u64, data, None),
                Body::Symlink(t) => (tar::EntryType::Symlink, 0, b"", Some(t)),
                Body::HardLink(t) => (tar::EntryType::Link, 0, b"", Some(t)),
                Body::Char => (tar::EntryType::Char, 0, b"", None),
                Body::Fifo => (tar::EntryType::Fifo, 0, b"", None),
                Body::Dir => (tar::EntryType::Directory, 0, b"", None),
                Body::Claims(n) => (tar::EntryType::Regular, *n, b"", None),
            };
        let mut h = raw_header(
            member.path,
            entry_type,
            size,
            if entry_type == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            },
        );
        if let Some(link) = link {
            h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, zstd::encode_all(&tar_bytes[..], 3).unwrap()).unwrap();
    path
}

/// Runs `mfplug verify` (exit 1 and the message) and an extraction into a sandbox (the
/// error, and nothing written outside the target).
fn refused(
    ctx: &TestContext,
    name: &str,
    members: &[Member],
    extra: &[&str],
    message: &str,
) -> ArchiveError {
    let file = craft(&ctx.work, &format!("{name}.plugin"), members, extra);
    let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    assert!(
        stderr.contains(message),
        "{name}: expected `{message}` in:\n{stderr}"
    );

    let sandbox = ctx.root().join(format!("sandbox-{name}"));
    std::fs::create_dir_all(&sandbox).unwrap();
    let target = sandbox.join("target");
    let err = unpack::read(&file, &Limits::default(), Some(&target)).unwrap_err();
    let outside: Vec<_> = std::fs::read_dir(&sandbox)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "target")
        .collect();
    assert!(
        outside.is_empty(),
        "{name}: wrote {outside:?} beside the target"
    );
    assert!(!Path::new("/tmp/mfplug-evil").exists());
    assert!(!ctx.root().join("escaped").exists(), "{name}");
    err
}

#[test]
fn hostile_members_are_refused() {
    let ctx = TestContext::new();
    let ok = || m("ok.txt", Body::File(b"fine\n"));

    let e = refused(
        &ctx,
        "absolute",
        &[ok(), m("/tmp/mfplug-evil", Body::File(b"x"))],
        &[],
        "has an absolute path",
    );
    assert!(matches!(e, ArchiveError::AbsolutePath(_)));
    let e = refused(
        &ctx,
        "dotdot",
        &[m("a/../../escaped", Body::File(b"x"))],
        &[],
        "has a `..`",
    );
    assert!(matches!(e, ArchiveError::TraversalPath(_)));
    let e = refused(
        &ctx,
        "through-symlink",
        &[
            m("link", Body::Symlink("sub")),
            m("link/escaped", Body::File(b"x")),
        ],
        &[],
        "is written through the earlier symlink member `link`",
    );
    assert!(matches!(e, ArchiveError::ThroughSymlink { .. }));
    let e = refused(
        &ctx,
        "absolute-symlink-then-write",
        &[
            m("up", Body::Symlink("/")),
            m("up/tmp/mfplug-evil", Body::File(b"x")),
        ],
        &[],
        "through the earlier symlink",
    );
    assert!(matches!(e, ArchiveError::ThroughSymlink { .. }));
    let e = refused(
        &ctx,
        "escaping-symlink",
        &[m("out", Body::Symlink("../../escaped"))],
        &[],
        "points outside the plugin",
    );
    assert!(matches!(e, ArchiveError::SymlinkEscapes { .. }));
    let e = refused(
        &ctx,
        "hardlink",
        &[ok(), m("hard", Body::HardLink("ok.txt"))],
        &[],
        "is a hard link",
    );
    assert!(matches!(e, ArchiveError::ForbiddenType { .. }));
    let e = refused(
        &ctx,
        "device",
        &[m("dev", Body::Char)],
        &[],
        "is a character device",
    );
    assert!(matches!(e, ArchiveError::ForbiddenType { .. }));
    let e = refused(&ctx, "fifo", &[m("pipe", Body::Fifo)], &[], "is a fifo");
    assert!(matches!(e, ArchiveError::ForbiddenType { .. }));
    let e = refused(&ctx, "duplicate", &[ok(), ok()], &[], "appears twice");
    assert!(matches!(e, ArchiveError::Duplicate(_)));
    let again = Member {
        path: b"d",
        body: Body::File(b"x"),
        recorded: false,
    };
    let e = refused(
        &ctx,
        "dir-then-file-same-path",
        &[m("d/", Body::Dir), again],
        &[],
        "appears twice",
    );
    assert!(matches!(e, ArchiveError::Duplicate(_)));
    let unlisted = Member {
        path: b"sneaky.sh",
        body: Body::File(b"x"),
        recorded: false,
    };
    let e = refused(
        &ctx,
        "not-in-record",
        &[ok(), unlisted],
        &[],
        "is not listed in RECORD",
    );
    assert!(matches!(e, ArchiveError::NotInRecord(_)));
    let e = refused(
        &ctx,
        "missing-member",
        &[ok()],
        &["ghost.txt"],
        "RECORD lists `ghost.txt` but the file has no such member",
    );
    assert!(matches!(e, ArchiveError::MissingMember(_)));
    let e = refused(
        &ctx,
        "too-large",
        &[m("huge", Body::Claims(20 << 30))],
        &[],
        "beyond the bound",
    );
    assert!(matches!(e, ArchiveError::TooLarge { .. }));
}

#[test]
fn a_member_beyond_the_total_bound_is_refused() {
    let ctx = TestContext::new();
    let file = craft(
        &ctx.work,
        "big.plugin",
        &[m("a", Body::File(&[1; 600])), m("b", Body::File(&[2; 600]))],
        &[],
    );
    let limits = Limits {
        max_total: 1000,
        ..Limits::default()
    };
    let err = unpack::read(&file, &limits, None).unwrap_err();
    assert!(matches!(err, ArchiveError::TotalTooLarge(1000)), "{err}");
    // Within the bounds the same file reads and extracts, with its modes.
    let target = ctx.root().join("extracted");
    unpack::read(&file, &Limits::default(), Some(&target)).unwrap();
    assert_eq!(std::fs::read(target.join("a")).unwrap(), vec![1; 600]);
}

#[test]
fn a_head_that_is_not_ours_is_refused() {
    let ctx = TestContext::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = raw_header(b"config.ini", tar::EntryType::Regular, 3, 0o644);
    h.set_cksum();
    builder.append(&h, &b"abc"[..]).unwrap();
    let bytes = zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap();
    std::fs::write(ctx.work.join("plain.plugin"), bytes).unwrap();
    let out = ctx.cmd(["verify", "plain.plugin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("the first members must be `.mfplug/PLUGIN.json`"));
    ctx.cmd(["info", "plain.plugin"]).assert().code(1);
}
