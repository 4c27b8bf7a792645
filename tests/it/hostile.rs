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

// ---------------------------------------------------------------------------------------
// Raw tar streams, header by header: PAX and GNU long-name headers, lying sizes, damage.

const EPOCH: u64 = 946_684_800;

/// One tar header block of any type, its checksum set.
fn block(path: &[u8], typeflag: u8, size: u64, mode: u32, link: &[u8]) -> Vec<u8> {
    let mut h = raw_header(
        &path[..path.len().min(100)],
        tar::EntryType::new(typeflag),
        size,
        mode,
    );
    h.as_gnu_mut().unwrap().linkname[..link.len().min(100)]
        .copy_from_slice(&link[..link.len().min(100)]);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// Data padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// A regular member: header and data.
fn file_member(path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = block(path.as_bytes(), b'0', data.len() as u64, 0o644, b"");
    out.extend(padded(data));
    out
}

fn symlink_member(path: &str, target: &str) -> Vec<u8> {
    block(path.as_bytes(), b'2', 0, 0o777, target.as_bytes())
}

/// A PAX extended header (type `x`) holding these records.
fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = [key.as_bytes(), b"=", value, b"\n"].concat();
        // The length counts its own digits and the space.
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        data.extend(format!("{len} ").as_bytes());
        data.extend(body);
    }
    let mut out = block(b"././@PaxHeader", b'x', data.len() as u64, 0o644, b"");
    out.extend(padded(&data));
    out
}

fn line_file(path: &str, data: &[u8]) -> String {
    format!(
        "{path}\t644\t{}\t{}",
        data.len(),
        hex(&Sha256::digest(data))
    )
}

fn line_link(path: &str, target: &str) -> String {
    format!(
        "{path}\tlink\t{}\t{}",
        target.len(),
        hex(&Sha256::digest(target.as_bytes()))
    )
}

/// The tar bytes of a format-1 file: a head stating `lines` (and what `edit` changes of
/// PLUGIN.json), then `body` as given, then the end blocks.
fn raw_plugin(lines: &[String], edit: impl FnOnce(&mut serde_json::Value), body: &[u8]) -> Vec<u8> {
    let mut lines = lines.to_vec();
    lines.sort();
    let record: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let size: u64 = lines
        .iter()
        .map(|l| l.split('\t').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    let mut meta = serde_json::json!({
        "format": 1, "name": "evil", "version": "1", "release": "1",
        "build_time": EPOCH, "tool": "test", "platform": "any",
        "plugin_hash": Record::plugin_hash(&record),
        "files": lines.len(), "size": size,
    });
    edit(&mut meta);
    let meta = meta.to_string();
    let mut out = file_member(".mfplug/PLUGIN.json", meta.as_bytes());
    out.extend(file_member(".mfplug/RECORD", record.as_bytes()));
    out.extend_from_slice(body);
    out.extend([0u8; 1024]);
    out
}

/// zstd with its content checksum, as `mfplug release` writes it.
fn zst(tar_bytes: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut encoder, tar_bytes).unwrap();
    encoder.finish().unwrap()
}

fn write_zst(dir: &Path, name: &str, tar_bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, zst(tar_bytes)).unwrap();
    path
}

/// `mfplug verify FILE`: exit 1, and the message holds `message`.
fn verify_refuses(ctx: &TestContext, file: &Path, message: &str) {
    let out = ctx.cmd(["verify"]).arg(file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", file.display());
    assert!(
        stderr.contains(message),
        "{}: expected `{message}` in:\n{stderr}",
        file.display()
    );
}

fn verify_accepts(ctx: &TestContext, file: &Path) {
    let out = ctx.cmd(["verify"]).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pax_and_gnu_long_names_are_checked_like_plain_ones() {
    let ctx = TestContext::new();
    // A PAX path renames a harmless member to `../x`.
    let mut body = pax(&[("path", b"../x")]);
    body.extend(file_member("ok.txt", b"x"));
    let file = write_zst(
        &ctx.work,
        "pax-dotdot.plugin",
        &raw_plugin(&[line_file("ok.txt", b"x")], |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "member `../x` has a `..`");
    let target = ctx.root().join("pax-target");
    unpack::read(&file, &Limits::default(), Some(&target)).unwrap_err();
    assert!(!ctx.root().join("x").exists());

    // A GNU long name does the same.
    let mut body = block(b"././@LongLink", b'L', 5, 0o644, b"");
    body.extend(padded(b"../x\0"));
    body.extend(file_member("ok.txt", b"x"));
    let file = write_zst(
        &ctx.work,
        "gnu-dotdot.plugin",
        &raw_plugin(&[line_file("ok.txt", b"x")], |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "member `../x` has a `..`");

    // A PAX linkpath makes a symlink escape.
    let mut body = pax(&[("linkpath", b"../../etc")]);
    body.extend(symlink_member("l", "inside"));
    let file = write_zst(
        &ctx.work,
        "pax-link.plugin",
        &raw_plugin(&[line_link("l", "../../etc")], |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "symlink member `l` points outside the plugin");

    // A long name within the bounds is read: a valid file with one.
    let long = format!("{}/{}", "d".repeat(200), "f".repeat(200));
    let mut body = block(b"././@LongLink", b'L', long.len() as u64 + 1, 0o644, b"");
    body.extend(padded(format!("{long}\0").as_bytes()));
    body.extend(file_member("short-name-in-header", b"data"));
    let file = write_zst(
        &ctx.work,
        "long-ok.plugin",
        &raw_plugin(&[line_file(&long, b"data")], |_| {}, &body),
    );
    verify_accepts(&ctx, &file);
}

#[test]
fn a_huge_long_name_or_pax_header_is_refused_before_it_is_read() {
    let ctx = TestContext::new();
    // 256 MiB of long name, a few KB compressed: refused from its header, without reading it.
    let mut body = block(b"././@LongLink", b'L', 256 << 20, 0o644, b"");
    body.extend(vec![b'a'; 1 << 20]);
    let file = write_zst(
        &ctx.work,
        "long-name.plugin",
        &raw_plugin(&[], |_| {}, &body),
    );
    assert!(std::fs::metadata(&file).unwrap().len() < 64 << 10);
    let started = std::time::Instant::now();
    verify_refuses(
        &ctx,
        &file,
        "a GNU long name header of 268435456 bytes after member `.mfplug/RECORD` is beyond the bound of 4097 bytes",
    );
    assert!(started.elapsed().as_secs() < 5);

    let body = block(b"././@LongLink", b'K', 3 << 30, 0o644, b"");
    let file = write_zst(
        &ctx.work,
        "long-link.plugin",
        &raw_plugin(&[], |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "a GNU long link header of 3221225472 bytes");

    let body = block(b"././@PaxHeader", b'x', 1 << 30, 0o644, b"");
    let file = write_zst(&ctx.work, "pax.plugin", &raw_plugin(&[], |_| {}, &body));
    verify_refuses(&ctx, &file, "a PAX header of 1073741824 bytes");

    // A path of 1 MB through a long name: refused at once.
    let path = "a/".repeat(1 << 19);
    let mut body = block(b"././@LongLink", b'L', path.len() as u64, 0o644, b"");
    body.extend(padded(path.as_bytes()));
    body.extend(file_member("x", b""));
    let file = write_zst(&ctx.work, "deep.plugin", &raw_plugin(&[], |_| {}, &body));
    let started = std::time::Instant::now();
    verify_refuses(&ctx, &file, "beyond the bound of 4097 bytes");
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn extension_header_bounds_at_the_limit_and_beyond() {
    let ctx = TestContext::new();
    let limits = Limits {
        max_path: 100,
        max_component: 100,
        max_pax: 600,
        ..Limits::default()
    };
    // A long name of max_path bytes and its NUL: read; one more: refused, naming the bound.
    let name = "n".repeat(100);
    let long = |name: &str| {
        let mut body = block(b"././@LongLink", b'L', name.len() as u64 + 1, 0o644, b"");
        body.extend(padded(format!("{name}\0").as_bytes()));
        body.extend(file_member("h", b""));
        body
    };
    let file = write_zst(
        &ctx.work,
        "long-at.plugin",
        &raw_plugin(&[line_file(&name, b"")], |_| {}, &long(&name)),
    );
    unpack::read(&file, &limits, None).unwrap();
    let over = format!("{name}n");
    let file = write_zst(
        &ctx.work,
        "long-over.plugin",
        &raw_plugin(&[line_file(&over, b"")], |_| {}, &long(&over)),
    );
    let e = unpack::read(&file, &limits, None).unwrap_err();
    assert!(
        e.to_string().contains("102 bytes") && e.to_string().contains("bound of 101 bytes"),
        "{e}"
    );

    // A PAX header of max_pax bytes: read; one more: refused.
    let with_pax = |len: usize| {
        // `NNN comment=...\n`: pick the comment so that the record is `len` bytes.
        let comment = vec![b'c'; len - "600 comment=\n".len()];
        let mut body = pax(&[("comment", &comment)]);
        body.extend(file_member("p", b""));
        body
    };
    let file = write_zst(
        &ctx.work,
        "pax-at.plugin",
        &raw_plugin(&[line_file("p", b"")], |_| {}, &with_pax(600)),
    );
    unpack::read(&file, &limits, None).unwrap();
    let file = write_zst(
        &ctx.work,
        "pax-over.plugin",
        &raw_plugin(&[line_file("p", b"")], |_| {}, &with_pax(601)),
    );
    let e = unpack::read(&file, &limits, None).unwrap_err();
    assert!(e.to_string().contains("PAX header of 601 bytes"), "{e}");
    assert!(e.to_string().contains("bound of 600 bytes"), "{e}");
}

#[test]
fn head_bounds_at_the_limit_and_beyond() {
    let ctx = TestContext::new();
    let file = write_zst(
        &ctx.work,
        "head.plugin",
        &raw_plugin(
            &[line_file("a", b"1"), line_file("b", b"2")],
            |_| {},
            &[file_member("a", b"1"), file_member("b", b"2")].concat(),
        ),
    );
    let head = unpack::read_head(&file, &Limits::default()).unwrap();
    let record_len = head.record_text.len() as u64;
    // PLUGIN.json: its own size as the bound reads; one byte less refuses, naming it.
    let bytes = zstd::decode_all(std::fs::File::open(&file).unwrap()).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let meta_len = archive.entries().unwrap().next().unwrap().unwrap().size();
    let at = |meta: u64, record: u64, members: u64| Limits {
        max_meta: meta,
        max_record: record,
        max_members: members,
        ..Limits::default()
    };
    unpack::read(&file, &at(meta_len, record_len, 2), None).unwrap();
    let e = unpack::read(&file, &at(meta_len - 1, record_len, 2), None).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "`.mfplug/PLUGIN.json` is {meta_len} bytes, beyond the bound of {} bytes",
            meta_len - 1
        )),
        "{e}"
    );
    let e = unpack::read(&file, &at(meta_len, record_len - 1, 2), None).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "`.mfplug/RECORD` is {record_len} bytes, beyond the bound"
        )),
        "{e}"
    );
    // RECORD lines: as many as the member bound reads, one more is refused from the head.
    let e = unpack::read_head(&file, &at(meta_len, record_len, 1)).unwrap_err();
    assert!(e.to_string().contains("more than 1 members"), "{e}");
}

#[test]
fn member_and_total_size_at_the_limit_and_beyond() {
    let ctx = TestContext::new();
    let file = craft(
        &ctx.work,
        "sizes.plugin",
        &[m("a", Body::File(&[1; 600])), m("b", Body::File(&[2; 400]))],
        &[],
    );
    let l = |member: u64, total: u64| Limits {
        max_member: member,
        max_total: total,
        ..Limits::default()
    };
    unpack::read(&file, &l(600, 1000), None).unwrap();
    let e = unpack::read(&file, &l(599, 1000), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("member `a` is 600 bytes, beyond the bound of 599 bytes"),
        "{e}"
    );
    let e = unpack::read(&file, &l(600, 999), None).unwrap_err();
    assert!(
        e.to_string().contains("more than the bound of 999 bytes"),
        "{e}"
    );
}

#[test]
fn a_pax_size_beyond_the_record_is_never_read_or_written() {
    let ctx = TestContext::new();
    // The header and RECORD say 5 bytes; the PAX size says 10 MiB of zeros (a bomb).
    let mut body = pax(&[("size", (10u64 << 20).to_string().as_bytes())]);
    body.extend(block(b"bomb", b'0', 5, 0o644, b""));
    body.extend(vec![0u8; 10 << 20]);
    let lines = [line_file("bomb", &[0u8; 5])];
    let file = write_zst(&ctx.work, "bomb.plugin", &raw_plugin(&lines, |_| {}, &body));
    verify_refuses(
        &ctx,
        &file,
        "`bomb` differs from RECORD: 10485760 bytes, RECORD says 5",
    );
    let target = ctx.root().join("bomb-target");
    unpack::read(&file, &Limits::default(), Some(&target)).unwrap_err();
    assert!(!target.join("bomb").exists(), "nothing of it was written");

    // Beyond the member bound, it is refused from its header.
    let small = Limits {
        max_member: 1 << 20,
        ..Limits::default()
    };
    let e = unpack::read(&file, &small, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("member `bomb` is 10485760 bytes, beyond the bound of 1048576 bytes"),
        "{e}"
    );
}

#[test]
fn symlink_chains_are_resolved_and_listed() {
    let ctx = TestContext::new();
    // `etc -> /etc` is listed; `pw -> etc/passwd` leads to `/etc/passwd` too, and is not.
    let lines = [line_link("etc", "/etc"), line_link("pw", "etc/passwd")];
    let body = [
        symlink_member("etc", "/etc"),
        symlink_member("pw", "etc/passwd"),
    ]
    .concat();
    let hidden = write_zst(
        &ctx.work,
        "hidden.plugin",
        &raw_plugin(
            &lines,
            |m| m["external_symlinks"] = serde_json::json!(["etc -> /etc"]),
            &body,
        ),
    );
    verify_refuses(
        &ctx,
        &hidden,
        "`PLUGIN.json` says `external_symlinks: [\"etc -> /etc\"]`, but the file holds [\"etc -> /etc\", \"pw -> etc/passwd\"]",
    );
    let listed = write_zst(
        &ctx.work,
        "listed.plugin",
        &raw_plugin(
            &lines,
            |m| m["external_symlinks"] = serde_json::json!(["etc -> /etc", "pw -> etc/passwd"]),
            &body,
        ),
    );
    verify_accepts(&ctx, &listed);

    // An absolute symlink hidden from the list.
    let hidden = write_zst(
        &ctx.work,
        "abs.plugin",
        &raw_plugin(
            &[line_link("l", "/etc/passwd")],
            |_| {},
            &symlink_member("l", "/etc/passwd"),
        ),
    );
    verify_refuses(&ctx, &hidden, "says `external_symlinks: []`");

    // `a/up -> ..` is the root; `b -> a/up/..` is lexically inside but above the root.
    let lines = [line_link("a/up", ".."), line_link("b", "a/up/..")];
    let body = [symlink_member("a/up", ".."), symlink_member("b", "a/up/..")].concat();
    let file = write_zst(
        &ctx.work,
        "chain.plugin",
        &raw_plugin(&lines, |_| {}, &body),
    );
    verify_refuses(
        &ctx,
        &file,
        "symlink member `b` points outside the plugin (`a/up/..`)",
    );
}

#[test]
fn plugin_json_that_lies_is_refused() {
    let ctx = TestContext::new();
    let lines = [line_file("a", b"1")];
    let body = file_member("a", b"1");
    let file = write_zst(
        &ctx.work,
        "files.plugin",
        &raw_plugin(&lines, |m| m["files"] = 999_999.into(), &body),
    );
    verify_refuses(
        &ctx,
        &file,
        "`PLUGIN.json` says `files: 999999`, but the file holds 1",
    );
    ctx.cmd(["info"]).arg(&file).assert().code(1);
    let file = write_zst(
        &ctx.work,
        "size.plugin",
        &raw_plugin(&lines, |m| m["size"] = 5.into(), &body),
    );
    verify_refuses(
        &ctx,
        &file,
        "`PLUGIN.json` says `size: 5`, but the file holds 1 bytes",
    );
    // An ELF file in a plugin that says `any`, and a platform with no ELF file.
    let elf = b"\x7fELF\x02\x01\x01";
    let file = write_zst(
        &ctx.work,
        "elf.plugin",
        &raw_plugin(
            &[line_file("bin/x", elf)],
            |_| {},
            &file_member("bin/x", elf),
        ),
    );
    verify_refuses(
        &ctx,
        &file,
        "says `platform: any`, but the file holds the compiled (ELF) file `bin/x`",
    );
    let file = write_zst(
        &ctx.work,
        "noelf.plugin",
        &raw_plugin(&lines, |m| m["platform"] = "linux-x86_64".into(), &body),
    );
    verify_refuses(
        &ctx,
        &file,
        "says `platform: linux-x86_64`, but the file holds no compiled",
    );
    // A name that is not a plugin name.
    let file = write_zst(
        &ctx.work,
        "name.plugin",
        &raw_plugin(&lines, |m| m["name"] = "../../x".into(), &body),
    );
    verify_refuses(&ctx, &file, "invalid plugin name in `.mfplug/PLUGIN.json`");
    // RECORD with CRLF lines: its hash matches, its lines do not parse.
    let record = format!("{}\r\n", line_file("a", b"1"));
    let mut tar = file_member(
        ".mfplug/PLUGIN.json",
        serde_json::json!({
            "format": 1, "name": "evil", "version": "1", "release": "1",
            "build_time": EPOCH, "tool": "test", "platform": "any",
            "plugin_hash": Record::plugin_hash(&record), "files": 1, "size": 1,
        })
        .to_string()
        .as_bytes(),
    );
    tar.extend(file_member(".mfplug/RECORD", record.as_bytes()));
    tar.extend(&body);
    tar.extend([0u8; 1024]);
    let file = write_zst(&ctx.work, "crlf.plugin", &tar);
    verify_refuses(&ctx, &file, "RECORD line 1: a carriage return");
}

#[test]
fn a_label_that_names_another_plugin_is_refused() {
    let ctx = TestContext::new();
    let label = b"plugin_other@mfplug\n";
    let file = write_zst(
        &ctx.work,
        "mismatch.plugin",
        &raw_plugin(
            &[line_file(".layerapi2_label", label)],
            |_| {},
            &file_member(".layerapi2_label", label),
        ),
    );
    verify_refuses(
        &ctx,
        &file,
        "`PLUGIN.json` names the plugin `evil`, but its `.layerapi2_label` names it `other`",
    );
    let bad = b"plugin_../../x@m\n";
    let file = write_zst(
        &ctx.work,
        "badlabel.plugin",
        &raw_plugin(
            &[line_file(".layerapi2_label", bad)],
            |_| {},
            &file_member(".layerapi2_label", bad),
        ),
    );
    verify_refuses(&ctx, &file, "invalid plugin name in `.layerapi2_label`");
}

#[test]
fn mfplug_own_files_may_not_be_symlinks() {
    let ctx = TestContext::new();
    for (path, target) in [
        (".mfplug", "/tmp"),
        ("crontab", "/dev/zero"),
        ("config.ini", "/etc/passwd"),
        (".layerapi2_label", "other"),
        ("postinstall", "/bin/sh"),
        (".layerapi2_extra_env", "x"),
    ] {
        let file = write_zst(
            &ctx.work,
            "meta-link.plugin",
            &raw_plugin(
                &[line_link(path, target)],
                |m| {
                    if target.starts_with('/') {
                        m["external_symlinks"] = serde_json::json!([format!("{path} -> {target}")]);
                    }
                },
                &symlink_member(path, target),
            ),
        );
        verify_refuses(
            &ctx,
            &file,
            &format!("member `{path}` is a symlink: mfplug's own files"),
        );
    }
    let file = write_zst(
        &ctx.work,
        "under-mfplug.plugin",
        &raw_plugin(
            &[line_file(".mfplug/INSTALL.json", b"{}")],
            |_| {},
            &file_member(".mfplug/INSTALL.json", b"{}"),
        ),
    );
    verify_refuses(
        &ctx,
        &file,
        "member `.mfplug/INSTALL.json` is under `.mfplug/`",
    );
    // A symlink of the same name deeper in the tree is the plugin's own business.
    let file = write_zst(
        &ctx.work,
        "deep-link.plugin",
        &raw_plugin(
            &[line_link("sub/crontab", "../x")],
            |_| {},
            &symlink_member("sub/crontab", "../x"),
        ),
    );
    verify_accepts(&ctx, &file);
}

#[test]
fn damage_to_the_tar_stream_is_refused() {
    let ctx = TestContext::new();
    let lines = [line_file("a", b"hello")];
    let good = raw_plugin(&lines, |_| {}, &file_member("a", b"hello"));
    verify_accepts(&ctx, &write_zst(&ctx.work, "good.plugin", &good));

    // A flipped bit in a header: its checksum no longer matches.
    let mut bad = good.clone();
    bad[1024 + 2] ^= 1;
    let file = write_zst(&ctx.work, "cksum.plugin", &bad);
    verify_refuses(&ctx, &file, "checksum does not match");
    // The tar stream cut before its end blocks, in a valid zstd stream.
    let cut = &good[..good.len() - 1024];
    let file = write_zst(&ctx.work, "noend.plugin", cut);
    verify_refuses(&ctx, &file, "without its end-of-archive blocks");
    // Data after the end of the tar stream, inside the zstd stream.
    let mut after = good.clone();
    after.extend(b"surprise");
    let file = write_zst(&ctx.work, "after.plugin", &after);
    verify_refuses(&ctx, &file, "data follows the end of the tar stream");
    // Two headers of a kind for one member.
    let mut body = pax(&[("path", b"a")]);
    body.extend(pax(&[("path", b"a")]));
    body.extend(file_member("a", b"hello"));
    let file = write_zst(
        &ctx.work,
        "twopax.plugin",
        &raw_plugin(&lines, |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "two PAX headers for one member");
    // Global PAX headers (ignored) before a member: at most 4 extension headers.
    let global = {
        let mut h = pax(&[("comment", b"hi")]);
        h[156] = b'g';
        h[148..156].fill(b' ');
        let sum: u32 = h[..512].iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    };
    let mut body = global.repeat(4);
    body.extend(file_member("a", b"hello"));
    let file = write_zst(&ctx.work, "g4.plugin", &raw_plugin(&lines, |_| {}, &body));
    verify_accepts(&ctx, &file);
    let mut body = global.repeat(5);
    body.extend(file_member("a", b"hello"));
    let file = write_zst(&ctx.work, "g5.plugin", &raw_plugin(&lines, |_| {}, &body));
    verify_refuses(
        &ctx,
        &file,
        "more than 4 extension headers before one member",
    );
    // A symlink member that carries data: its bytes count toward the bounds.
    let mut body = block(b"l", b'2', 3000, 0o777, b"a");
    body.extend(padded(&[7u8; 3000]));
    let file = write_zst(
        &ctx.work,
        "linkdata.plugin",
        &raw_plugin(&[line_link("l", "a")], |_| {}, &body),
    );
    let small = Limits {
        max_total: 2000,
        ..Limits::default()
    };
    let e = unpack::read(&file, &small, None).unwrap_err();
    assert!(
        e.to_string().contains("more than the bound of 2000 bytes"),
        "{e}"
    );
    // A sparse member.
    let body = block(b"a", b'S', 5, 0o644, b"");
    let file = write_zst(
        &ctx.work,
        "sparse.plugin",
        &raw_plugin(&lines, |_| {}, &body),
    );
    verify_refuses(&ctx, &file, "member `a` is a sparse file");
}

/// What the home holds: every path, with the content of its files and links.
fn home_state(ctx: &TestContext) -> String {
    let mut lines: Vec<String> = walkdir::WalkDir::new(&ctx.home)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.path().ends_with(".lock"))
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(&ctx.home)
                .unwrap()
                .display()
                .to_string();
            if e.file_type().is_symlink() {
                format!(
                    "{rel} -> {}",
                    std::fs::read_link(e.path()).unwrap().display()
                )
            } else if e.file_type().is_file() {
                format!(
                    "{rel} {}",
                    hex(&Sha256::digest(std::fs::read(e.path()).unwrap()))
                )
            } else {
                format!("{rel}/")
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn install_of_a_hostile_file_leaves_the_home_as_it_was() {
    let ctx = TestContext::new();
    ctx.write("src/good/.layerapi2_label", "plugin_good@mfplug\n");
    ctx.write("src/good/config.ini", "[general]\n_version = 1.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n");
    ctx.write("src/good/main.py", "print('hi')\n");
    let out = ctx
        .cmd(["-q", "release", "src/good", "-o", "dist"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctx
        .cmd(["install", "dist/good-1.0.0-1.plugin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = home_state(&ctx);

    let label = b"plugin_good@mfplug\n";
    let evil_label = b"plugin_evil@mfplug\n";
    let config = b"[general]\n_version = 2.0.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n";
    let base = |extra: &[(String, Vec<u8>)]| {
        let mut lines = vec![
            line_file(".layerapi2_label", evil_label),
            line_file("config.ini", config),
        ];
        let mut body = [
            file_member(".layerapi2_label", evil_label),
            file_member("config.ini", config),
        ]
        .concat();
        for (line, member) in extra {
            lines.push(line.clone());
            body.extend(member);
        }
        (lines, body)
    };
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let (lines, body) = base(&[]);
    cases.push((
        "name-mismatch",
        raw_plugin(
            &[line_file(".layerapi2_label", label), lines[1].clone()],
            |_| {},
            &[
                file_member(".layerapi2_label", label),
                file_member("config.ini", config),
            ]
            .concat(),
        ),
        "names it `good`",
    ));
    let (lines, body2) = base(&[(
        line_link(".mfplug", "/tmp"),
        symlink_member(".mfplug", "/tmp"),
    )]);
    cases.push((
        "mfplug-link",
        raw_plugin(
            &lines,
            |m| m["external_symlinks"] = serde_json::json!([".mfplug -> /tmp"]),
            &body2,
        ),
        "member `.mfplug` is a symlink",
    ));
    let (lines3, body3) = base(&[(
        line_link("crontab", "/dev/zero"),
        symlink_member("crontab", "/dev/zero"),
    )]);
    cases.push((
        "crontab-link",
        raw_plugin(
            &lines3,
            |m| m["external_symlinks"] = serde_json::json!(["crontab -> /dev/zero"]),
            &body3,
        ),
        "member `crontab` is a symlink",
    ));
    let mut through = body.clone();
    through.extend(symlink_member("up", "/tmp"));
    through.extend(file_member("up/mfplug-evil", b"x"));
    cases.push((
        "through-link",
        raw_plugin(
            &[
                lines.clone(),
                vec![line_link("up", "/tmp"), line_file("up/mfplug-evil", b"x")],
            ]
            .concat(),
            |m| m["external_symlinks"] = serde_json::json!(["up -> /tmp"]),
            &through,
        ),
        "through the earlier symlink member `up`",
    ));
    let mut pax_body = body.clone();
    pax_body.extend(pax(&[("path", b"../../escaped")]));
    pax_body.extend(file_member("x", b"x"));
    cases.push((
        "pax-dotdot",
        raw_plugin(
            &[lines.clone(), vec![line_file("x", b"x")]].concat(),
            |_| {},
            &pax_body,
        ),
        "member `../../escaped` has a `..`",
    ));
    let mut dup = body.clone();
    dup.extend(file_member("config.ini", config));
    cases.push((
        "duplicate",
        raw_plugin(&lines, |_| {}, &dup),
        "member `config.ini` appears twice",
    ));
    let mut hard = body.clone();
    hard.extend(block(b"hard", b'1', 0, 0o644, b"config.ini"));
    cases.push((
        "hardlink",
        raw_plugin(&lines, |_| {}, &hard),
        "member `hard` is a hard link",
    ));
    let mut fifo = body.clone();
    fifo.extend(block(b"pipe", b'6', 0, 0o644, b""));
    cases.push((
        "fifo",
        raw_plugin(&lines, |_| {}, &fifo),
        "member `pipe` is a fifo",
    ));
    let mut dev = body.clone();
    dev.extend(block(b"dev", b'4', 0, 0o644, b""));
    cases.push((
        "device",
        raw_plugin(&lines, |_| {}, &dev),
        "member `dev` is a block device",
    ));
    let mut lying = body.clone();
    lying.extend(file_member("main.py", b"rm -rf ~\n"));
    cases.push((
        "record-lies",
        raw_plugin(
            &[lines.clone(), vec![line_file("main.py", b"print()\n")]].concat(),
            |_| {},
            &lying,
        ),
        "`main.py` differs from RECORD",
    ));
    cases.push((
        "json-lies",
        raw_plugin(&lines, |m| m["files"] = 999_999.into(), &body),
        "says `files: 999999`",
    ));
    let mut bomb = body.clone();
    bomb.extend(pax(&[("size", (16u64 << 20).to_string().as_bytes())]));
    bomb.extend(block(b"bomb", b'0', 1, 0o644, b""));
    bomb.extend(vec![0u8; 16 << 20]);
    cases.push((
        "bomb",
        raw_plugin(
            &[lines.clone(), vec![line_file("bomb", b"\0")]].concat(),
            |_| {},
            &bomb,
        ),
        "`bomb` differs from RECORD: 16777216 bytes, RECORD says 1",
    ));
    let mut tiny_lines = lines.clone();
    let mut tiny = body.clone();
    for i in 0..100_000 {
        let path = format!("t/{i:06}");
        tiny_lines.push(line_file(&path, b""));
        tiny.extend(file_member(&path, b""));
    }
    tiny.extend(file_member("t/999999", b""));
    cases.push((
        "many-tiny",
        raw_plugin(&tiny_lines, |_| {}, &tiny),
        "member `t/999999` is not listed in RECORD",
    ));

    for (name, tar, message) in &cases {
        let file = write_zst(&ctx.work, &format!("{name}.plugin"), tar);
        verify_refuses(&ctx, &file, message);
        let out = ctx.cmd(["install", "--force"]).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected `{message}` in:\n{stderr}"
        );
        assert_eq!(home_state(&ctx), before, "{name} changed the home");
    }
    // Truncation and a flipped bit anywhere in the compressed file of a valid one.
    let (lines, body) = base(&[]);
    let plain = raw_plugin(&lines, |_| {}, &body);
    let valid = zst(&plain);
    for cut in [4, valid.len() / 2, valid.len() - 8] {
        let file = ctx.work.join("cut.plugin");
        std::fs::write(&file, &valid[..valid.len() - cut]).unwrap();
        ctx.cmd(["verify"]).arg(&file).assert().code(1);
        ctx.cmd(["install", "--force"]).arg(&file).assert().code(1);
        assert_eq!(home_state(&ctx), before, "a cut of {cut} changed the home");
    }
    for at in (4..valid.len()).step_by(valid.len() / 7) {
        let mut flipped = valid.clone();
        flipped[at] ^= 0x10;
        let file = ctx.work.join("flip.plugin");
        std::fs::write(&file, &flipped).unwrap();
        if zstd::decode_all(&flipped[..]).ok().as_deref() == Some(&plain[..]) {
            // A bit zstd does not read (a reserved flag): the same file.
            continue;
        }
        let out = ctx.cmd(["verify"]).arg(&file).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "a flip at {at} of {}",
            valid.len()
        );
        ctx.cmd(["install", "--force"]).arg(&file).assert().code(1);
        assert_eq!(home_state(&ctx), before, "a flip at {at} changed the home");
    }
    let out = ctx.cmd(["list"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("good"));
    ctx.cmd(["verify", "good"]).assert().success();
    assert!(!ctx.root().join("escaped").exists());
    assert!(!Path::new("/tmp/mfplug-evil").exists());
}

#[test]
fn zeros_after_the_end_block_at_the_bound_and_beyond() {
    let ctx = TestContext::new();
    let lines = [line_file("a", b"1")];
    let good = raw_plugin(&lines, |_| {}, &file_member("a", b"1"));
    // `raw_plugin` ends with two zero blocks: the second is the first byte after the end.
    let mut at = good.clone();
    at.extend(vec![0u8; (1 << 20) - 512]);
    let file = write_zst(&ctx.work, "zeros-at.plugin", &at);
    unpack::read(&file, &Limits::default(), None).unwrap();
    let mut over = at;
    over.push(0);
    let file = write_zst(&ctx.work, "zeros-over.plugin", &over);
    let e = unpack::read(&file, &Limits::default(), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("more than 1048576 bytes of padding follow"),
        "{e}"
    );
}
