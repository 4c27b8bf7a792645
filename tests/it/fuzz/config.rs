//! Fuzz target `config`: the `config.ini` reader and writer (`mfplug::config::ini`) and the
//! whole plugin model (`mfplug::config::load`), on files shaped like MetWork's: `[general]`,
//! `[app_*]`, `[extra_daemon_*]`, `[custom*]`, private and switch-rule sections, keys with
//! variants (`k[DEV]`), continuation lines, comments anywhere, Jinja values, any line ending,
//! a byte order mark, with or without a final newline; then damaged (bit flips, truncation,
//! garbage appended, hostile bytes inserted, a line repeated).
//!
//! Invariants: parse then `to_text` gives back every byte; an edit changes only what it
//! edits and reads back; loading writes nothing in the plugin dir; and (from the driver) no
//! panic, the same verdict twice.

use proptest::prelude::*;

use super::Target;
use mfplug::config::ini::Document;

pub const TARGET: Target = Target {
    name: "config",
    strategy: || {
        (file(), damage())
            .prop_map(|(file, damage)| damage.apply(file))
            .boxed()
    },
    run,
};

/// Section names: MetWork's kinds, then a few that are wrong.
const SECTIONS: &[&str] = &[
    "custom",
    "custom_db",
    "app_main",
    "step_one",
    "extra_daemon_w",
    "extra_daemon_x",
    "_private",
    "switch_rules:fnmatch:latest",
];
const BAD_SECTIONS: &[&str] = &["generl", "extra_deamon_y", "general", "extra_daemon_"];

/// Keys: those of the schema, free ones, then a few that are wrong.
const KEYS: &[&str] = &[
    "_cmd_and_args",
    "numprocesses",
    "graceful_timeout",
    "max_age",
    "rlimit_as",
    "debug",
    "log_split_stdout_stderr",
    "foo",
    "url",
    "port",
    "a:b",
];
const BAD_KEYS: &[&str] = &["_version", "_summary", "numprocess", "x y", "_release"];

const VARIANTS: &[&str] = &[
    "",
    "",
    "",
    "[DEV]",
    "[DEV_JOHN]",
    "[PROD]",
    "[dev]",
    " [ DEV ] ",
];
const BAD_VARIANTS: &[&str] = &["[", "[]", "[a]b", "]"];

const VALUES: &[&str] = &[
    "1",
    "0",
    "10",
    "yes",
    "null",
    "",
    "http://localhost:8080",
    "a # not a comment",
    "ünïcödé ✓",
    "{{MFPLUG_CURRENT_PLUGIN_NAME}}",
    "{{MFPLUG_CURRENT_PLUGIN_DIR}}/bin/run {extra_name} {plugin_name}",
    "{{MFPLUG_CURRENT_PLUGIN_CUSTOM_FOO}}/x",
    "{{ MFPLUG_CURRENT_PLUGIN_CUSTOM_FOO ~ MFPLUG_CURRENT_PLUGIN_CUSTOM_FOO }}",
    "{{ UNDEFINED_THING | default('d') }}",
    "{% if MFPLUG_CURRENT_PLUGIN_NAME %}1{% else %}0{% endif %}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{{ MFCONFIG }}-{{ FUZZ_ENV }}",
    "{{ MFPLUG_CURRENT_PLUGIN_EXTRA_DAEMON_W_NUMPROCESSES }}",
];
const BAD_VALUES: &[&str] = &[
    "18446744073709551616",
    "-1",
    "{{",
    "{% endif %}",
    "{{ 'x' * 1000 }}",
    "{{ nope( }}",
];

/// One of `good`, or now and then one of `bad`.
fn pick(good: &'static [&'static str], bad: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        12 => prop::sample::select(good),
        1 => prop::sample::select(bad),
    ]
    .prop_map(String::from)
    .boxed()
}

/// An entry (with its continuation lines), a comment, a blank line or a line that is wrong.
fn item() -> impl Strategy<Value = Vec<String>> {
    let entry = (
        pick(KEYS, BAD_KEYS),
        pick(VARIANTS, BAD_VARIANTS),
        prop::sample::select(&[" = ", "=", "\t=\t", " =", "= ", "  =  "][..]),
        pick(VALUES, BAD_VALUES),
        prop::sample::select(&["", "", "", "  ", "\t"][..]),
        prop::collection::vec(
            (
                prop::sample::select(&["    ", "\t", "      ", "    # inside"][..]),
                pick(VALUES, BAD_VALUES),
            ),
            0..3,
        ),
    )
        .prop_map(|(key, variant, eq, value, indent, more)| {
            let mut lines = vec![format!("{indent}{key}{variant}{eq}{value}")];
            lines.extend(more.into_iter().map(|(i, v)| format!("{indent}{i}{v}")));
            lines
        });
    prop_oneof![
        8 => entry,
        2 => prop::sample::select(&["# a comment", "  # indented comment", "#", "#x = 1"][..])
            .prop_map(|l| vec![l.to_owned()]),
        2 => prop::sample::select(&["", "   ", "\t"][..]).prop_map(|l| vec![l.to_owned()]),
        1 => prop::sample::select(&["no equals sign", "= v", "[", "[ ]", "[x] junk", "  cont"][..])
            .prop_map(|l| vec![l.to_owned()]),
    ]
}

fn section() -> impl Strategy<Value = Vec<String>> {
    (
        pick(SECTIONS, BAD_SECTIONS),
        prop::sample::select(&["", "", " # a comment", "  "][..]),
        prop::collection::vec(item(), 0..6),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(name, after, items, unique)| {
            let mut lines = vec![format!("[{name}]{after}")];
            let mut seen = std::collections::HashSet::new();
            for item in items {
                // Mostly one line per key, as a valid file has.
                let key = item[0]
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                if unique && item[0].contains('=') && !seen.insert(key) {
                    continue;
                }
                lines.extend(item);
            }
            lines
        })
}

/// A whole file: usually a valid `[general]` first, then sections, in one line-ending style
/// (or a mix), with or without a byte order mark and a final newline.
fn file() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::collection::vec(section(), 0..6),
        prop::sample::select(&["\n", "\r\n", "\r", "mixed"][..]),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        any::<u64>(),
    )
        .prop_map(
            |(preamble, general, sections, ending, final_newline, bom, seed)| {
                let mut lines: Vec<String> = Vec::new();
                if preamble {
                    lines.push("# preamble comment".into());
                    lines.push(String::new());
                }
                if general {
                    lines.extend(
                        ["[general]", "_version = 1.0.0", "_summary = fuzzed"].map(String::from),
                    );
                }
                lines.extend(sections.into_iter().flatten());
                let mut text = String::new();
                if bom {
                    text.push('\u{feff}');
                }
                let count = lines.len();
                for (i, line) in lines.iter().enumerate() {
                    text.push_str(line);
                    if i + 1 < count || final_newline {
                        text.push_str(match ending {
                            "mixed" => ["\n", "\r\n", "\r"][((seed >> (i % 32 * 2)) % 3) as usize],
                            one => one,
                        });
                    }
                }
                text.into_bytes()
            },
        )
}

/// What is done to a valid file.
#[derive(Debug, Clone)]
enum Damage {
    None,
    FlipBits(Vec<(usize, u8)>),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, Vec<u8>),
    RepeatLine(usize),
}

impl Damage {
    fn apply(self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Damage::None => {}
            Damage::FlipBits(flips) => {
                let len = bytes.len();
                for (at, bit) in flips {
                    if len > 0 {
                        bytes[at % len] ^= 1 << (bit % 8);
                    }
                }
            }
            Damage::Truncate(at) => {
                let len = bytes.len();
                bytes.truncate(at % (len + 1));
            }
            Damage::Append(garbage) => bytes.extend(garbage),
            Damage::Insert(at, hostile) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, hostile);
            }
            Damage::RepeatLine(n) => {
                let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
                if !lines.is_empty() {
                    let line = lines[n % lines.len()].to_vec();
                    let at: usize = lines[..n % lines.len()].iter().map(|l| l.len()).sum();
                    bytes.splice(at..at, line);
                }
            }
        }
        bytes
    }
}

/// Bytes that mean something to the reader, inserted anywhere.
const HOSTILE: &[&[u8]] = &[
    b"[",
    b"]",
    b"=",
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b"{{",
    b"}}",
    b"{%",
    b"#",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\0",
    "\u{feff}".as_bytes(),
    "é".as_bytes(),
    b"\n    more\n",
    b"\n[general]\n",
    b"\nfoo = dup\n",
];

fn damage() -> impl Strategy<Value = Damage> {
    let hostile = prop::sample::select(HOSTILE).prop_map(<[u8]>::to_vec);
    prop_oneof![
        4 => Just(Damage::None),
        1 => prop::collection::vec((any::<usize>(), any::<u8>()), 1..4).prop_map(Damage::FlipBits),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        3 => (any::<usize>(), hostile).prop_map(|(at, h)| Damage::Insert(at, h)),
        1 => any::<usize>().prop_map(Damage::RepeatLine),
    ]
}

fn run(input: &[u8]) -> String {
    let mut verdict = Vec::new();
    let text = match std::str::from_utf8(input) {
        Ok(text) => text.to_owned(),
        Err(e) => {
            verdict.push(format!("not UTF-8 at byte {}", e.valid_up_to()));
            // The reader takes text: go on with what a lossy reading gives.
            String::from_utf8_lossy(input).into_owned()
        }
    };

    // Parse then write: every byte back.
    let (doc, errors) = Document::parse(&text);
    assert_eq!(doc.to_text(), text, "the text did not round-trip");
    verdict.push(format!(
        "{} sections, {} errors at lines {:?}",
        doc.sections().len(),
        errors.len(),
        errors.iter().map(|e| e.line).collect::<Vec<_>>()
    ));

    // A new section is added after what was there, which stays byte for byte.
    if !text.contains("fuzz_added") {
        let mut edited = doc.clone();
        edited.set("fuzz_added", "k", "v1\nv2");
        let out = edited.to_text();
        let kept = text.strip_suffix(['\n', '\r']).unwrap_or(&text);
        assert!(
            out.starts_with(kept),
            "an added section changed the text before it"
        );
        let (again, _) = Document::parse(&out);
        assert_eq!(again.to_text(), out);
        assert_eq!(again.get("fuzz_added", "k"), Some("v1\nv2"), "{out:?}");
    }

    // Changing then removing an entry of a file without errors reads back.
    if errors.is_empty() {
        let first = doc.sections().iter().find_map(|s| {
            let entry = s.entries().next()?;
            Some((s.name.clone(), entry.key.to_string()))
        });
        if let Some((section, key)) = first {
            let mut edited = doc.clone();
            edited.set(&section, &key, "changed\nand more");
            edited.set(&section, "fuzz_new_key", "new");
            let out = edited.to_text();
            let (again, again_errors) = Document::parse(&out);
            assert!(again_errors.is_empty(), "{again_errors:?} in {out:?}");
            assert_eq!(
                again.get(&section, &key),
                Some("changed\nand more"),
                "{out:?}"
            );
            assert_eq!(again.get(&section, "fuzz_new_key"), Some("new"), "{out:?}");
            assert_eq!(
                others(&again, &section, &key),
                others(&doc, &section, &key),
                "{out:?}"
            );
            assert_eq!(
                comments(&out),
                comments(&text),
                "a comment was lost: {out:?}"
            );
            assert!(edited.remove(&section, &key));
            let out = edited.to_text();
            let (again, _) = Document::parse(&out);
            assert_eq!(again.get(&section, &key), None, "{out:?}");
            assert_eq!(
                others(&again, &section, &key),
                others(&doc, &section, &key),
                "{out:?}"
            );
        }
    }

    verdict.push(load(input));
    verdict.join("; ")
}

/// Every entry but `[section] key` (and the one the fuzzer adds), as (section, key, value).
fn others(doc: &Document, section: &str, key: &str) -> Vec<(String, String, String)> {
    doc.sections()
        .iter()
        .flat_map(|s| {
            s.entries()
                .filter(|e| {
                    !(s.name == section
                        && (e.key.to_string() == key || e.key.name == "fuzz_new_key"))
                })
                .map(|e| (s.name.clone(), e.key.to_string(), e.value.clone()))
        })
        .collect()
}

/// The comment lines of a text, in order.
fn comments(text: &str) -> Vec<String> {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The whole plugin model on a plugin dir holding the input as its `config.ini`.
fn load(input: &[u8]) -> String {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("p");
    std::fs::create_dir(&dir).expect("plugin dir");
    std::fs::write(dir.join(".layerapi2_label"), "plugin_fuzz@mfplug\n").expect("label");
    std::fs::write(dir.join("config.ini"), input).expect("config.ini");
    let settings = mfplug::config::Settings {
        module: "MFPLUG".into(),
        module_given: false,
        config_name: "DEV_JOHN".into(),
        home: Some("/nonexistent/mfplug-fuzz-home".into()),
        env: [("FUZZ_ENV".to_owned(), "from-env".to_owned())].into(),
    };
    let result = mfplug::config::load(&dir, &settings);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the plugin dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".layerapi2_label", "config.ini"],
        "load wrote in the plugin dir"
    );
    let dir_text = dir.display().to_string();
    let verdict = match result {
        Ok(config) => format!(
            "loaded: {} sections, {} variables, {} warnings: {:?}",
            config.sections.len(),
            config.variables.len(),
            config.warnings.len(),
            config.variables.iter().collect::<Vec<_>>()
        ),
        Err(problems) => format!(
            "refused: {:?}",
            problems
                .iter()
                .map(|p| format!("{:?} {:?} {}", p.line, p.section, p.message))
                .collect::<Vec<_>>()
        ),
    };
    verdict.replace(&dir_text, "[DIR]")
}

fuzz_tests!();
