//! Fuzz target `legacy`: MetWork's tar.gz reader (`mfplug::archive::legacy::read`, what `info`,
//! `verify` and `convert` run), extracting into a fresh target dir as `convert` does.
//!
//! Inputs are real legacy files: a gzipped tar of `metwork_plugin/` with `.metadata.json`,
//! `.files.json`, a label, a `config.ini` and generated entries (hostile names and symlink
//! targets among them), then damaged as the `archive` target damages its inputs. Invariants:
//! nothing is written outside the target dir; an accepted file extracts every member but the
//! two metadata files, and the name it gives follows the name rules.

use std::io::Write as _;

use mfplug::archive::legacy;
use mfplug::archive::unpack::Limits;
use proptest::prelude::*;

use super::archive::{assert_contained, damage, damaged, entries, member, tree, Entry};
use super::Target;

pub const TARGET: Target = Target {
    name: "legacy",
    strategy,
    run,
};

fn gz(tar: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(tar).expect("compress");
    encoder.finish().expect("finish")
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "plugin_[a-c]{1,4}@mf[a-z]{2,4}\n",
        1 => Just("plugin_../../escaped@m\n".to_owned()),
        1 => Just("plugin_base@m\n".to_owned()),
        1 => Just("garbage".to_owned()),
    ]
}

fn legacy_tar(entries: &[Entry], label: &str, style: u8) -> Vec<u8> {
    let mut listed: Vec<String> = vec![".layerapi2_label".into(), "config.ini".into()];
    let mut out = Vec::new();
    let top = |p: &str| format!("metwork_plugin/{p}");
    member(&mut out, "metwork_plugin/", b'5', b"", 0o755, "", 0);
    let metadata =
        serde_json::json!({"name": "fuzz", "version": "1.0", "release": "1"}).to_string();
    member(
        &mut out,
        &top(".metadata.json"),
        b'0',
        metadata.as_bytes(),
        0o644,
        "",
        0,
    );
    member(
        &mut out,
        &top(".layerapi2_label"),
        b'0',
        label.as_bytes(),
        0o644,
        "",
        0,
    );
    member(
        &mut out,
        &top("config.ini"),
        b'0',
        b"[general]\n_version=1.0\n_summary = t\n_license = BSD-3-Clause\n_url = https://example.invalid\n_maintainer = t <t@example.invalid>\n_vendor = t\n",
        0o644,
        "",
        0,
    );
    for entry in entries {
        match entry {
            Entry::File(p, d, x) => {
                listed.push(p.clone());
                member(
                    &mut out,
                    &top(p),
                    b'0',
                    d,
                    if *x { 0o755 } else { 0o644 },
                    "",
                    style,
                );
            }
            Entry::Link(p, t) => {
                listed.push(p.clone());
                member(&mut out, &top(p), b'2', b"", 0o777, t, style);
            }
            Entry::Dir(p) => member(
                &mut out,
                &top(&format!("{p}/")),
                b'5',
                b"",
                0o755,
                "",
                style,
            ),
        }
    }
    let files = serde_json::to_string(&listed).expect("json");
    member(
        &mut out,
        &top(".files.json"),
        b'0',
        files.as_bytes(),
        0o644,
        "",
        0,
    );
    out.extend([0u8; 1024]);
    out
}

fn strategy() -> BoxedStrategy<Vec<u8>> {
    (entries(), label(), any::<u8>(), damage())
        .prop_map(|(entries, label, style, damage)| {
            damaged(legacy_tar(&entries, &label, style), &damage, gz)
        })
        .boxed()
}

fn run(input: &[u8]) -> String {
    let sandbox = tempfile::tempdir().expect("sandbox");
    let file = sandbox.path().join("input.plugin");
    std::fs::write(&file, input).expect("write the input");
    let target = sandbox.path().join("target");
    let result = legacy::read(&file, &Limits::default(), Some(&target));
    assert_contained(sandbox.path());
    let verify = legacy::read(&file, &Limits::default(), None);
    let show = |r: &Result<legacy::LegacyInfo, _>| match r {
        Ok(info) => format!(
            "ok: `{}` {}-{}, {} files, {} bytes, external {:?}",
            info.name, info.version, info.release, info.files, info.size, info.external_symlinks
        ),
        Err(e) => format!("refused: {e}"),
    };
    let verdict = show(&result);
    if let Ok(info) = &result {
        mfplug::plugin::validate_name(&info.name).expect("an accepted name follows the rules");
        let extracted = tree(&target);
        assert!(
            !extracted
                .iter()
                .any(|p| p == ".metadata.json" || p == ".files.json"),
            "{extracted:?}"
        );
        let files = extracted.iter().filter(|p| !p.ends_with('/')).count() as u64;
        assert_eq!(files, info.files, "{extracted:?}");
    }
    assert_eq!(verdict, show(&verify), "verify and extraction disagree");
    verdict.replace(&sandbox.path().display().to_string(), "[SANDBOX]")
}

fuzz_tests!();
