//! Fuzz target `requirements`: the reader of `requirements-to-freeze.txt`
//! (`mfplug::lock::requirements::read`) on files written to a temp dir.
//!
//! An input is up to four files separated by the byte `0x1e`: the requirements file, then
//! `gen-1.txt` .. `gen-3.txt`, which its `-r`/`-c` lines (and theirs) include, as generated
//! requirement files are. Each is made of lines shaped like the real thing (PEP 508 names with
//! extras, specifiers and markers, comments, `\` continuations, index options, CRLF, a byte
//! order mark), then damaged: bit flips, truncation, appended garbage, odd bytes and unicode
//! inserted. Invariants: the reader writes nothing (the dir holds the same files, byte for
//! byte), every requirement it gives names a line of the file it comes from, and its text
//! reads back as the same requirement.

use std::str::FromStr;

use proptest::prelude::*;

use super::Target;

pub const TARGET: Target = Target {
    name: "requirements",
    strategy,
    run,
};

/// The separator of the files in one input.
const SEPARATOR: u8 = 0x1e;
const NAMES: [&str; 4] = [
    "requirements-to-freeze.txt",
    "gen-1.txt",
    "gen-2.txt",
    "gen-3.txt",
];

fn name() -> BoxedStrategy<String> {
    super::package_name("[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?")
}

fn specifier() -> BoxedStrategy<String> {
    let one = prop::sample::select(vec![
        "==1.0",
        ">=2.0.1",
        "<=1.0b1",
        "==1.*",
        "!=0.post1",
        ">1!2.0",
        "==3.20+local",
        "~=2024.1.1rc2.dev3",
        "<3",
        "===1.0",
        " >= 1.0 ",
    ]);
    prop::collection::vec(one, 0..3)
        .prop_map(|parts| parts.join(","))
        .boxed()
}

fn marker() -> BoxedStrategy<String> {
    prop::sample::select(vec![
        "",
        " ; python_version >= '3.8'",
        "; sys_platform == \"linux\" and extra == 'x'",
        " ; platform_machine != 'arm64' or os_name == 'nt'",
        "; (python_full_version < '3.12' and implementation_name == 'cpython')",
    ])
    .prop_map(str::to_owned)
    .boxed()
}

/// A PEP 508 requirement line, maybe with a trailing comment or per-requirement option.
fn requirement() -> BoxedStrategy<String> {
    let extras = prop::sample::select(vec!["", "[security]", "[socks,security]", "[ x ]"]);
    let tail = prop::sample::select(vec![
        "",
        "  # the main one",
        " --hash=sha256:0123abcd",
        " --config-settings key=value",
        "\t#comment",
    ]);
    (name(), extras, any::<bool>(), specifier(), marker(), tail)
        .prop_map(|(name, extras, space, spec, marker, tail)| {
            let gap = if space { " " } else { "" };
            format!("{name}{extras}{gap}{spec}{marker}{tail}")
        })
        .boxed()
}

/// An option line of file number `k`: includes of the generated files after it (as a
/// generator writes them: no cycle), index options, comments; rarely a fatal one.
fn option(k: usize) -> BoxedStrategy<String> {
    let mut includes = Vec::new();
    for file in NAMES.iter().skip(k + 1) {
        includes.push(format!("-r {file}"));
        includes.push(format!("--requirement={file}"));
        includes.push(format!("-r{file}"));
        includes.push(format!("-c {file}"));
        includes.push(format!("--constraint {file}"));
    }
    includes.push("# no include".to_owned());
    let common = prop::sample::select(vec![
        "-i http://i/simple",
        "--index-url=https://${MFPLUG_FUZZ_TOKEN}@h/simple",
        "--extra-index-url http://x/simple",
        "-f ./wheels",
        "--find-links https://h/links",
        "--no-index",
        "--pre",
        "--only-binary :all:",
        "--trusted-host h",
        "# a comment",
        "",
    ]);
    let fatal = prop::sample::select(vec![
        "-r requirements-to-freeze.txt",
        "-r missing.txt",
        "-e .",
        "--unknown-option",
        "-r",
    ]);
    prop_oneof![
        4 => prop::sample::select(includes),
        4 => common.prop_map(str::to_owned),
        1 => fatal.prop_map(str::to_owned),
    ]
    .boxed()
}

/// File number `k`: lines (a `\` continuation now and then), LF or CRLF, maybe a byte order
/// mark.
fn file(k: usize) -> BoxedStrategy<Vec<u8>> {
    let line = prop_oneof![3 => requirement(), 2 => option(k)];
    (
        prop::collection::vec((line, any::<u8>()), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, bom)| {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut out = String::new();
            if bom {
                out.push('\u{feff}');
            }
            for (line, cut) in lines {
                // Split a line over two with a `\` continuation, at a character boundary.
                let at = usize::from(cut) % (line.len() + 1);
                match (cut % 5 == 0, line.split_at_checked(at)) {
                    (true, Some((head, rest))) => {
                        // pip joins the two as they are: the split may fall in a token.
                        out.push_str(&format!("{head}\\{end}{rest}{end}"));
                    }
                    _ => out.push_str(&format!("{line}{end}")),
                }
            }
            out.into_bytes()
        })
        .boxed()
}

/// One way of damaging the bytes.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Flip(Vec<(usize, u8)>),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, &'static str),
}

fn damage() -> BoxedStrategy<Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        2 => prop::collection::vec((any::<usize>(), 1..=255u8), 1..6).prop_map(Damage::Flip),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Append),
        3 => (
            any::<usize>(),
            prop::sample::select(vec![
                "é", "-é", "\u{301}", "\u{feff}", "\0", "\\", "\\\n", "#", "${", "${X}", "-", "\r",
                "\u{202e}", "🙂", "\u{3000}", "\u{ff}", "\x1e", "==", ";", "[", "@ http://x",
            ]),
        )
            .prop_map(|(at, text)| Damage::Insert(at, text)),
        1 => (any::<usize>(), prop::sample::select(vec!["\u{ff}", "\u{c3}"]))
            .prop_map(|(at, _)| Damage::Flip(vec![(at, 0x80)])),
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
    }
    bytes
}

fn strategy() -> BoxedStrategy<Vec<u8>> {
    ((file(0), file(1), file(2), file(3)), damage())
        .prop_map(|((a, b, c, d), damage)| {
            let joined = [a, b, c, d].join(&SEPARATOR);
            apply(joined, &damage)
        })
        .boxed()
}

/// The files of the dir with their bytes, sorted.
fn listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn run(input: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (bytes, name) in input.split(|b| *b == SEPARATOR).zip(NAMES) {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let before = listing(dir.path());
    let result = mfplug::lock::requirements::read(&dir.path().join(NAMES[0]));
    assert_eq!(listing(dir.path()), before, "the reader changed its dir");
    let shown = dir.path().display().to_string();
    let hide = |text: String| text.replace(&shown, "<dir>");
    let input = match result {
        Ok(input) => input,
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            return hide(format!("error: {text}"));
        }
    };
    let mut verdict = format!("ok {}", input.sha256());
    for (kind, list) in [
        ("requirement", &input.requirements),
        ("constraint", &input.constraints),
    ] {
        for located in list {
            let requirement = &located.requirement;
            // The origin is a line of a file that was read.
            let (file, line) = located
                .origin
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("origin `{}` has no line", located.origin));
            let line: usize = line.parse().unwrap();
            let (_, bytes) = input
                .files
                .iter()
                .find(|(name, _)| name == file)
                .unwrap_or_else(|| panic!("origin `{}` is not a file read", located.origin));
            let lines = String::from_utf8_lossy(bytes).lines().count();
            assert!(
                line >= 1 && line <= lines.max(1),
                "origin `{}` is past the end ({lines} lines)",
                located.origin
            );
            // What it says reads back as itself.
            let text = requirement.to_string();
            let again: pep508_rs::Requirement = pep508_rs::Requirement::from_str(&text)
                .unwrap_or_else(|e| panic!("`{text}` does not read back: {e}"));
            assert_eq!(&again, requirement, "`{text}` reads back as another");
            verdict.push_str(&format!("\n{kind} {text} ({})", located.origin));
        }
    }
    verdict.push_str(&format!(
        "\nindex {:?} extra {:?} find-links {:?} no-index {} pre {} files {:?}",
        input.index_url,
        input.extra_index_urls,
        input.find_links,
        input.no_index,
        input.pre,
        input.files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    ));
    hide(verdict)
}

fuzz_tests!();
