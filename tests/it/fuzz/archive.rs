//! Fuzz target `archive`: the format-1 reader (`mfplug::archive::unpack::read`, what `verify`
//! and install run), extracting into a fresh target dir.
//!
//! Inputs are real `.plugin` files: a tar of `.mfplug/PLUGIN.json`, `.mfplug/RECORD` and
//! entries (files, symlinks, empty dirs, with hostile names and targets among them, written
//! with GNU long names and PAX headers at times), compressed with zstd and its checksums, then
//! damaged: bit flips and byte changes in the tar (then compressed again, so that the reader
//! sees them), truncation, garbage appended, or flips in the compressed bytes. Invariants:
//! nothing is written outside the target dir, and a file the reader accepts extracts exactly
//! what its RECORD lists.

use std::path::Path;

use mfplug::archive::unpack::{self, Limits};
use mfplug::archive::{hex, Record};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::Target;

pub const TARGET: Target = Target {
    name: "archive",
    strategy,
    run,
};

/// One entry of a generated plugin.
#[derive(Debug, Clone)]
pub enum Entry {
    File(String, Vec<u8>, bool),
    Link(String, String),
    Dir(String),
}

/// Names that reach the reader's checks: plain ones, nested ones, mfplug's own files, and
/// hostile ones.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-c]{1,3}(/[a-c]{1,3}){0,2}",
        1 => Just(".layerapi2_label".to_owned()),
        1 => Just("crontab".to_owned()),
        1 => Just(".mfplug".to_owned()),
        1 => Just(".mfplug/x".to_owned()),
        1 => Just("../escaped".to_owned()),
        1 => Just("a/../../escaped".to_owned()),
        1 => Just("/tmp/mfplug-fuzz-evil".to_owned()),
        1 => Just("a//b".to_owned()),
        1 => "[a-c]{100,130}/[a-c]{1,3}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c]{1,3}",
        1 => Just("..".to_owned()),
        1 => Just("../escaped".to_owned()),
        1 => Just("a/../..".to_owned()),
        1 => Just("/etc".to_owned()),
        1 => Just("/tmp".to_owned()),
        1 => "\\.\\./[a-c]{1,3}",
        1 => "[a-c]{1,3}/\\.\\.",
    ]
}

pub fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let entry = prop_oneof![
        5 => (name(), proptest::collection::vec(any::<u8>(), 0..64), any::<bool>())
            .prop_map(|(n, d, x)| Entry::File(n, d, x)),
        3 => (name(), target()).prop_map(|(n, t)| Entry::Link(n, t)),
        1 => name().prop_map(Entry::Dir),
    ];
    // One entry per path, mostly: a duplicate now and then.
    (proptest::collection::vec(entry, 0..8), any::<u8>()).prop_map(|(mut entries, keep)| {
        if keep % 8 != 0 {
            let mut seen = std::collections::HashSet::new();
            entries.retain(|e| {
                seen.insert(
                    key(e)
                        .strip_suffix(b"/")
                        .map(<[u8]>::to_vec)
                        .unwrap_or_else(|| key(e)),
                )
            });
        }
        // The label, mostly one that names the plugin.
        for e in &mut entries {
            if let Entry::File(p, data, _) = e {
                if p == ".layerapi2_label" && keep % 4 != 1 {
                    *data = b"plugin_fuzz@mfplug\n".to_vec();
                }
            }
        }
        entries
    })
}

/// A tar header of any type, written by the tar crate (GNU format), checksum set.
fn header(path: &[u8], entry_type: u8, size: u64, mode: u32, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().expect("a GNU header");
    let n = path.len().min(100);
    gnu.name[..n].copy_from_slice(&path[..n]);
    let l = link.len().min(100);
    gnu.linkname[..l].copy_from_slice(&link[..l]);
    h.set_entry_type(tar::EntryType::new(entry_type));
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(946_684_800);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// A member, its long path through a GNU long name or a PAX header (by `style`).
pub fn member(
    out: &mut Vec<u8>,
    path: &str,
    entry_type: u8,
    data: &[u8],
    mode: u32,
    link: &str,
    style: u8,
) {
    let long = path.len() > 99 || link.len() > 99;
    if long && style.is_multiple_of(2) {
        if path.len() > 99 {
            out.extend(header(
                b"././@LongLink",
                b'L',
                path.len() as u64 + 1,
                0o644,
                b"",
            ));
            out.extend(padded(format!("{path}\0").as_bytes()));
        }
        if link.len() > 99 {
            out.extend(header(
                b"././@LongLink",
                b'K',
                link.len() as u64 + 1,
                0o644,
                b"",
            ));
            out.extend(padded(format!("{link}\0").as_bytes()));
        }
    } else if long || style % 5 == 1 {
        let mut records = Vec::new();
        for (key, value) in [("path", path), ("linkpath", link)] {
            if value.is_empty() {
                continue;
            }
            let body = format!("{key}={value}\n");
            let mut len = body.len() + 2;
            while format!("{len} ").len() + body.len() != len {
                len += 1;
            }
            records.extend(format!("{len} {body}").as_bytes());
        }
        out.extend(header(
            b"././@PaxHeader",
            b'x',
            records.len() as u64,
            0o644,
            b"",
        ));
        out.extend(padded(&records));
    }
    out.extend(header(
        path.as_bytes(),
        entry_type,
        data.len() as u64,
        mode,
        link.as_bytes(),
    ));
    out.extend(padded(data));
}

/// The tar stream of a format-1 file holding `entries`, with a head that matches them.
fn plugin_tar(entries: &[Entry], style: u8) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    let mut external = Vec::new();
    for entry in entries {
        lines.push(match entry {
            Entry::File(p, d, x) => format!(
                "{p}\t{}\t{}\t{}",
                if *x { "755" } else { "644" },
                d.len(),
                hex(&Sha256::digest(d))
            ),
            Entry::Link(p, t) => {
                if t.starts_with('/') {
                    external.push(format!("{p} -> {t}"));
                }
                format!(
                    "{p}\tlink\t{}\t{}",
                    t.len(),
                    hex(&Sha256::digest(t.as_bytes()))
                )
            }
            Entry::Dir(p) => format!("{p}/\tdir\t0\t-"),
        });
    }
    lines.sort();
    let record: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let size: u64 = lines
        .iter()
        .filter_map(|l| l.split('\t').nth(2)?.parse::<u64>().ok())
        .sum();
    external.sort();
    let meta = serde_json::json!({
        "format": 1, "name": "fuzz", "version": "1", "release": "1",
        "build_time": 946_684_800u64, "tool": "fuzz", "platform": "any",
        "plugin_hash": Record::plugin_hash(&record),
        "files": lines.len(), "size": size, "external_symlinks": external,
    })
    .to_string();
    let mut out = Vec::new();
    member(
        &mut out,
        ".mfplug/PLUGIN.json",
        b'0',
        meta.as_bytes(),
        0o644,
        "",
        0,
    );
    member(
        &mut out,
        ".mfplug/RECORD",
        b'0',
        record.as_bytes(),
        0o644,
        "",
        0,
    );
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(key);
    for entry in &sorted {
        match entry {
            Entry::File(p, d, x) => member(
                &mut out,
                p,
                b'0',
                d,
                if *x { 0o755 } else { 0o644 },
                "",
                style,
            ),
            Entry::Link(p, t) => member(&mut out, p, b'2', b"", 0o777, t, style),
            Entry::Dir(p) => member(&mut out, &format!("{p}/"), b'5', b"", 0o755, "", style),
        }
    }
    out.extend([0u8; 1024]);
    out
}

fn key(entry: &Entry) -> Vec<u8> {
    match entry {
        Entry::File(p, ..) | Entry::Link(p, _) => p.as_bytes().to_vec(),
        Entry::Dir(p) => format!("{p}/").into_bytes(),
    }
}

pub fn zst(tar: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::Encoder::new(Vec::new(), 1).expect("encoder");
    encoder.include_checksum(true).expect("checksum flag");
    std::io::Write::write_all(&mut encoder, tar).expect("compress");
    encoder.finish().expect("finish")
}

/// How a valid file is damaged.
#[derive(Debug, Clone)]
pub enum Damage {
    None,
    /// Bytes of the plain stream changed (then compressed again): (position, xor).
    Plain(Vec<(usize, u8)>),
    /// The same, then every header's checksum made right again, so that the change reaches
    /// the fields (type, size, mode, names).
    PlainFixed(Vec<(usize, u8)>),
    /// The plain stream cut short, then compressed.
    CutPlain(usize),
    /// Bytes of the compressed file changed.
    Packed(Vec<(usize, u8)>),
    /// The compressed file cut short.
    CutPacked(usize),
    /// Garbage after the compressed file.
    Append(Vec<u8>),
}

pub fn damage() -> impl Strategy<Value = Damage> {
    let flips = || proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4);
    prop_oneof![
        2 => Just(Damage::None),
        2 => flips().prop_map(Damage::Plain),
        5 => flips().prop_map(Damage::PlainFixed),
        1 => any::<usize>().prop_map(Damage::CutPlain),
        1 => flips().prop_map(Damage::Packed),
        1 => any::<usize>().prop_map(Damage::CutPacked),
        1 => proptest::collection::vec(any::<u8>(), 1..32).prop_map(Damage::Append),
    ]
}

/// Applies the damage: `plain` is the tar stream, `pack` compresses it.
pub fn damaged(mut plain: Vec<u8>, damage: &Damage, pack: fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let flip = |bytes: &mut Vec<u8>, at: &[(usize, u8)]| {
        for &(pos, xor) in at {
            if !bytes.is_empty() {
                let len = bytes.len();
                bytes[pos % len] ^= xor;
            }
        }
    };
    match damage {
        Damage::None => pack(&plain),
        Damage::Plain(at) => {
            flip(&mut plain, at);
            pack(&plain)
        }
        Damage::PlainFixed(at) => {
            // Aimed at the header blocks.
            let headers: Vec<usize> = (0..plain.len() / 512)
                .filter(|i| plain.get(i * 512 + 257..i * 512 + 262) == Some(b"ustar"))
                .collect();
            if !headers.is_empty() {
                let at: Vec<(usize, u8)> = at
                    .iter()
                    .map(|&(pos, xor)| (headers[pos % headers.len()] * 512 + (pos / 7) % 512, xor))
                    .collect();
                flip(&mut plain, &at);
            }
            for i in headers {
                let block = &mut plain[i * 512..i * 512 + 512];
                block[148..156].fill(b' ');
                let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
                block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            }
            pack(&plain)
        }
        Damage::CutPlain(at) => {
            plain.truncate(at % (plain.len() + 1));
            pack(&plain)
        }
        Damage::Packed(at) => {
            let mut bytes = pack(&plain);
            flip(&mut bytes, at);
            bytes
        }
        Damage::CutPacked(at) => {
            let mut bytes = pack(&plain);
            bytes.truncate(at % (bytes.len() + 1));
            bytes
        }
        Damage::Append(garbage) => {
            let mut bytes = pack(&plain);
            bytes.extend(garbage);
            bytes
        }
    }
}

fn strategy() -> BoxedStrategy<Vec<u8>> {
    (entries(), any::<u8>(), damage())
        .prop_map(|(entries, style, damage)| damaged(plugin_tar(&entries, style), &damage, zst))
        .boxed()
}

/// Everything under `dir`, relative, sorted: `path` for files, `path/` for dirs,
/// `path -> target` for symlinks.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("under dir")
                .display()
                .to_string();
            if e.path_is_symlink() {
                let target = std::fs::read_link(e.path()).expect("read link");
                format!("{rel} -> {}", target.display())
            } else if e.file_type().is_dir() {
                format!("{rel}/")
            } else {
                rel
            }
        })
        .collect();
    out.sort();
    out
}

/// Asserts that the sandbox holds the target dir (or nothing) and nothing else, and that
/// nothing was written at the absolute paths the inputs aim at.
pub fn assert_contained(sandbox: &Path) {
    let beside: Vec<String> = std::fs::read_dir(sandbox)
        .expect("read the sandbox")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "input.plugin" && n != "target")
        .collect();
    assert!(beside.is_empty(), "written beside the target: {beside:?}");
    assert!(!Path::new("/tmp/mfplug-fuzz-evil").exists());
    assert!(!Path::new("/tmp/escaped").exists());
}

fn run(input: &[u8]) -> String {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let file = sandbox.path().join("input.plugin");
    std::fs::write(&file, input).expect("write the input");
    let target = sandbox.path().join("target");
    let result = unpack::read(&file, &Limits::default(), Some(&target));
    assert_contained(sandbox.path());
    let verify = unpack::read(&file, &Limits::default(), None);
    let verdict = match &result {
        Ok(verified) => {
            // Accepted: the target holds exactly RECORD's entries (and the dirs above them).
            let mut wanted: Vec<String> = Vec::new();
            for entry in &verified.record.entries {
                let path = entry.path.trim_end_matches('/');
                let mut parent = Path::new(path).parent();
                while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    wanted.push(format!("{}/", p.display()));
                    parent = p.parent();
                }
                wanted.push(match entry.kind {
                    mfplug::archive::Kind::Dir => format!("{path}/"),
                    mfplug::archive::Kind::Symlink => {
                        let target = std::fs::read_link(target.join(path)).expect("a symlink");
                        format!("{path} -> {}", target.display())
                    }
                    mfplug::archive::Kind::File { .. } => {
                        let data = std::fs::read(target.join(path)).expect("a file");
                        assert_eq!(hex(&Sha256::digest(&data)), entry.sha256, "{path}");
                        path.to_owned()
                    }
                });
            }
            wanted.sort();
            wanted.dedup();
            assert_eq!(tree(&target), wanted);
            format!("ok: {} entries", verified.record.entries.len())
        }
        Err(e) => format!("refused: {e}"),
    };
    // Verification (nothing written) gives the same verdict as extraction.
    let verify_verdict = match &verify {
        Ok(v) => format!("ok: {} entries", v.record.entries.len()),
        Err(e) => format!("refused: {e}"),
    };
    assert_eq!(verdict, verify_verdict, "verify and extraction disagree");
    verdict.replace(&sandbox.path().display().to_string(), "[SANDBOX]")
}

fuzz_tests!();
