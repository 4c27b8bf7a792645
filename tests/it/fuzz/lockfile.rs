//! Fuzz target `lockfile`: the reader of `requirements3.txt` (`mfplug::lock::lockfile::parse`)
//! on lockfiles written by `mfplug::lock::lockfile::render` and then damaged (bit flips,
//! truncation, appended garbage, odd bytes and unicode, CRLF).
//!
//! Invariants: what `render` writes `parse` reads back to the same pins, hashes and files
//! (checked on the undamaged lockfile of every case, before it is damaged, and by
//! `render_then_parse_gives_the_pins_back`); and on any input, rendering what `parse` read
//! and reading that again gives the same pins, hashes and files (`parse` is a fixed point
//! of `render`), so that a lockfile `mfplug lock` rewrites never loses or invents a pin.

use std::collections::BTreeMap;

use mfplug::lock::lockfile::{self, Header, Pin, Previous};
use pep440_rs::Version;
use pep508_rs::PackageName;
use proptest::prelude::*;

use super::Target;

pub const TARGET: Target = Target {
    name: "lockfile",
    strategy,
    run,
};

fn name() -> BoxedStrategy<String> {
    super::package_name("[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?")
}

fn version() -> BoxedStrategy<String> {
    prop::sample::select(vec![
        "1.0",
        "2.0.1",
        "1.0b1",
        "0.post1",
        "1!2.0",
        "3.20+local",
        "2024.1.1rc2.dev3",
    ])
    .prop_map(str::to_owned)
    .boxed()
}

fn hex64() -> BoxedStrategy<String> {
    any::<[u8; 32]>()
        .prop_map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
        .boxed()
}

/// One pin: a version, up to four files (wheels and an sdist) each with its hash, who
/// requires it.
fn pin() -> BoxedStrategy<Pin> {
    let file = (
        prop::sample::select(vec![
            "py3-none-any.whl",
            "cp311-cp311-manylinux_2_17_x86_64.whl",
            "tar.gz",
            "zip",
        ]),
        hex64(),
    );
    let via = prop::collection::vec(
        prop_oneof![Just("-r requirements-to-freeze.txt".to_owned()), name(),],
        0..3,
    );
    (name(), version(), prop::collection::vec(file, 1..5), via)
        .prop_map(|(name, version, files, via)| {
            let name: PackageName = name.parse().unwrap();
            let version: Version = version.parse().unwrap();
            let dist = name.as_ref().replace('-', "_");
            let mut named: Vec<(String, String)> = files
                .into_iter()
                .map(|(kind, hash)| {
                    let filename = if kind.ends_with(".whl") {
                        format!("{dist}-{version}-{kind}")
                    } else {
                        format!("{dist}-{version}.{kind}")
                    };
                    (filename, hash)
                })
                .collect();
            named.sort();
            named.dedup_by(|a, b| a.0 == b.0);
            let mut hashes: Vec<String> = named.iter().map(|(_, h)| h.clone()).collect();
            hashes.sort();
            hashes.dedup();
            Pin {
                name,
                version,
                hashes,
                via,
                files: named,
            }
        })
        .boxed()
}

fn header() -> BoxedStrategy<Header> {
    (
        hex64(),
        prop::collection::vec(
            prop::sample::select(vec![
                "https://h/simple",
                "http://127.0.0.1:8080/simple",
                "https://mirror/x",
            ]),
            0..3,
        ),
        prop::collection::vec(
            prop::sample::select(vec!["/w/wheels", "https://h/links"]),
            0..2,
        ),
    )
        .prop_map(|(sha, indexes, links)| Header {
            input_file: "requirements-to-freeze.txt".to_owned(),
            input_sha256: sha,
            index_urls: indexes.into_iter().map(str::to_owned).collect(),
            find_links: links.into_iter().map(str::to_owned).collect(),
            python: "cpython 3.11.7 (manylinux_2_36_x86_64)".to_owned(),
        })
        .boxed()
}

/// Pins with distinct names (a lockfile pins each package once).
fn pins() -> BoxedStrategy<Vec<Pin>> {
    prop::collection::vec(pin(), 0..8)
        .prop_map(|pins| {
            let mut seen = std::collections::BTreeSet::new();
            pins.into_iter()
                .filter(|p| seen.insert(p.name.clone()))
                .collect()
        })
        .boxed()
}

/// What a lockfile says, as comparable data: the input hash, and per pin its version,
/// hashes and files.
type Said = (
    Option<String>,
    BTreeMap<String, (String, Vec<String>, Vec<(String, String)>)>,
);

fn said(previous: &Previous) -> Said {
    let pins = previous
        .pins
        .iter()
        .map(|(name, version)| {
            let hashes = previous.hashes.get(name).cloned().unwrap_or_default();
            let mut files = previous.files.get(name).cloned().unwrap_or_default();
            files.sort();
            (name.to_string(), (version.to_string(), hashes, files))
        })
        .collect();
    (previous.input_sha256.clone(), pins)
}

fn expected(header: &Header, pins: &[Pin]) -> Said {
    let pins = pins
        .iter()
        .map(|p| {
            let mut files = p.files.clone();
            files.sort();
            (
                p.name.to_string(),
                (p.version.to_string(), p.hashes.clone(), files),
            )
        })
        .collect();
    (Some(header.input_sha256.clone()), pins)
}

/// The pins `parse` read, as `render` takes them.
fn pins_of(previous: &Previous) -> Vec<Pin> {
    previous
        .pins
        .iter()
        .map(|(name, version)| Pin {
            name: name.clone(),
            version: version.clone(),
            hashes: previous.hashes.get(name).cloned().unwrap_or_default(),
            via: Vec::new(),
            files: previous.files.get(name).cloned().unwrap_or_default(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// What `render` writes, `parse` reads back: the same pins, hashes and files.
    #[test]
    fn render_then_parse_gives_the_pins_back(header in header(), pins in pins()) {
        let text = lockfile::render(&header, &pins);
        prop_assert_eq!(said(&lockfile::parse(&text)), expected(&header, &pins));
    }
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Flip(Vec<(usize, u8)>),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, &'static str),
    Crlf,
}

fn damage() -> BoxedStrategy<Damage> {
    prop_oneof![
        2 => Just(Damage::None),
        3 => prop::collection::vec((any::<usize>(), 1..=255u8), 1..6).prop_map(Damage::Flip),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        4 => (
            any::<usize>(),
            prop::sample::select(vec![
                "é", "\u{301}", "\u{feff}", "\0", "\\", "\\\n", "#", " # ", "\n", "\n\n", "\r",
                "🙂", "\u{3000}", "==", ";", "[", "--hash=sha256:", " --hash=sha256:zz",
                "# file: x sha256:", "\n    # file: a-1.whl sha256:ff\n", "\nb==1.0\n",
                "# input-sha256: ", "\t", "-",
            ]),
        )
            .prop_map(|(at, text)| Damage::Insert(at, text)),
        1 => Just(Damage::Crlf),
    ]
    .boxed()
}

fn apply(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::None => {}
        Damage::Flip(flips) => {
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= mask;
                }
            }
        }
        Damage::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        Damage::Append(garbage) => bytes.extend_from_slice(garbage),
        Damage::Insert(at, text) => {
            let i = at % (bytes.len() + 1);
            bytes.splice(i..i, text.bytes());
        }
        Damage::Crlf => {
            let text = String::from_utf8_lossy(&bytes).replace('\n', "\r\n");
            bytes = text.into_bytes();
        }
    }
    bytes
}

fn strategy() -> BoxedStrategy<Vec<u8>> {
    (header(), pins(), damage())
        .prop_map(|(header, pins, damage)| {
            let text = lockfile::render(&header, &pins);
            // The round trip, on the lockfile as written.
            assert_eq!(
                said(&lockfile::parse(&text)),
                expected(&header, &pins),
                "parse does not read back what render wrote:\n{text}"
            );
            apply(text.into_bytes(), &damage)
        })
        .boxed()
}

fn run(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let first = lockfile::parse(&text);
    // Rendering what was read, and reading that, gives it again.
    let header = Header {
        input_file: "requirements-to-freeze.txt".to_owned(),
        input_sha256: first.input_sha256.clone().unwrap_or_default(),
        index_urls: Vec::new(),
        find_links: Vec::new(),
        python: "cpython 3.11.7".to_owned(),
    };
    let rendered = lockfile::render(&header, &pins_of(&first));
    let second = lockfile::parse(&rendered);
    let (sha, pins) = said(&first);
    let (sha_again, pins_again) = said(&second);
    assert_eq!(
        pins_again, pins,
        "a pin changed through render and parse:\n{rendered}"
    );
    if sha.as_deref().is_some_and(|s| !s.is_empty()) {
        assert_eq!(sha_again, sha, "the input hash changed:\n{rendered}");
    }
    let mut verdict = format!("input {sha:?}");
    for (name, (version, hashes, files)) in pins {
        verdict.push_str(&format!("\n{name}=={version} {hashes:?} {files:?}"));
    }
    verdict
}

fuzz_tests!();
