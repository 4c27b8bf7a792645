//! `cargo xtask tidy`: the map of `docs/architecture.md` checked against the code.
//!
//! It reads every `src/**/*.rs` (file = module: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`,
//! `src/lib.rs` and `src/main.rs` the crate root, shown as `main`), lexes it (comments and
//! string contents are not code; `#[cfg(test)]` items are skipped), collects each module's
//! dependencies from its `use crate::...` trees and `crate::`/`super::`/`self::` paths, collapses
//! them to top-level modules, and reports:
//!
//! - the module graph, one line per top-level module (`module -> dep, dep`);
//! - its cycles (strongly connected components of more than one module);
//! - the grep-level invariants of the map: who may name `cli`/`commands` (`layering`), print or
//!   use `indicatif` or write to `io::stdout()` (`terminal`), decide exit codes (`exit-code`), write under the runtime home
//!   (`home-writes`); and the finer ones: `config` offline and read-only, `config::ini` without
//!   the schema, `config::schema` without files, `archive` without the home, `index` without the
//!   resolver, `lock::resolve` without network or processes, no index host in the code, one
//!   `unsafe` block.
//!
//! Findings already known (today's cycle and violations, recorded in `xtask/tidy-known-*.txt`)
//! are warnings; a new one is an error. This file is pure std + anyhow so that
//! `tests/it/tidy.rs` includes it and `cargo test` runs the same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The name of the crate root (`src/main.rs`, `src/lib.rs`) in the graph.
pub const ROOT: &str = "main";

/// The allow-list of cycles `cargo xtask ci` passes, relative to the workspace root.
pub const KNOWN_CYCLES: &str = "xtask/tidy-known-cycles.txt";
/// The allow-list of invariant violations `cargo xtask ci` passes.
pub const KNOWN_VIOLATIONS: &str = "xtask/tidy-known-violations.txt";

/// Modules that may name `cli` and `commands`.
const MAY_NAME_CLI: &[&str] = &["cli", "commands", ROOT];
/// Modules that may write to the terminal.
const MAY_PRINT: &[&str] = &["ui", ROOT];
/// Modules that may decide exit codes.
const MAY_EXIT: &[&str] = &[ROOT, "commands"];
/// Modules that may word a hint (`ui::error_with_hint`, `ui::UserError`): stages return typed
/// errors, whose hints `commands::hint` decides.
const MAY_HINT: &[&str] = &[ROOT, "ui", "commands"];
/// The one module that changes the runtime home.
const HOME: &str = "home";

const PRINT_MACROS: &[&str] = &["println", "eprintln", "print", "eprint"];
/// File-system calls that change something, as `path::call(`.
const WRITE_CALLS: &[&str] = &[
    "create_dir",
    "create_dir_all",
    "rename",
    "remove_file",
    "remove_dir",
    "remove_dir_all",
    "symlink",
    "hard_link",
    "copy",
    "set_permissions",
    "write_atomic",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    Str(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
    fn is(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
    fn is_ident(&self, s: &str) -> bool {
        self.ident() == Some(s)
    }
}

/// Rust source as tokens: identifiers, string contents, `::` and single punctuation. Comments,
/// numbers, char literals and lifetimes' quotes are dropped.
pub fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let at = |j: usize| chars.get(j).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = at(i);
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && at(i) != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 1;
            i += 2;
            while i < chars.len() && depth > 0 {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                } else {
                    if at(i) == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            let start = line;
            let s = quoted(&chars, &mut i, &mut line);
            out.push(Token {
                tok: Tok::Str(s),
                line: start,
            });
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: its name is lexed as an identifier.
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let begin = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = chars.get(begin..i).unwrap_or_default().iter().collect();
            let next = at(i);
            if matches!(word.as_str(), "b" | "c") && next == '"' {
                let start = line;
                let s = quoted(&chars, &mut i, &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start,
                });
            } else if matches!(word.as_str(), "r" | "br" | "cr")
                && (next == '"' || next == '#')
                && raw_string_ahead(&chars, i)
            {
                let start = line;
                let s = raw(&chars, &mut i, &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start,
                });
            } else if word == "r" && next == '#' {
                // A raw identifier, `r#type`.
                i += 1;
                let begin = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                let word: String = chars.get(begin..i).unwrap_or_default().iter().collect();
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            } else if word == "b" && next == '\'' {
                // A byte literal, `b'x'`, `b'\n'`: handled as a char literal next round.
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else if c.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// A `"..."` literal from its opening quote at `*i`; leaves `*i` after the closing one.
fn quoted(chars: &[char], i: &mut usize, line: &mut usize) -> String {
    let mut s = String::new();
    *i += 1;
    while let Some(&c) = chars.get(*i) {
        match c {
            '\\' => {
                if chars.get(*i + 1) == Some(&'\n') {
                    *line += 1;
                }
                s.push(c);
                if let Some(&e) = chars.get(*i + 1) {
                    s.push(e);
                }
                *i += 2;
            }
            '"' => {
                *i += 1;
                return s;
            }
            _ => {
                if c == '\n' {
                    *line += 1;
                }
                s.push(c);
                *i += 1;
            }
        }
    }
    s
}

/// Whether `#...#"` (or `"`) starts at `i`, after an `r`.
fn raw_string_ahead(chars: &[char], mut i: usize) -> bool {
    while chars.get(i) == Some(&'#') {
        i += 1;
    }
    chars.get(i) == Some(&'"')
}

/// A raw literal `#*"..."#*` from its first `#` or quote at `*i`.
fn raw(chars: &[char], i: &mut usize, line: &mut usize) -> String {
    let mut hashes = 0;
    while chars.get(*i) == Some(&'#') {
        hashes += 1;
        *i += 1;
    }
    *i += 1;
    let mut s = String::new();
    while let Some(&c) = chars.get(*i) {
        if c == '"' && (1..=hashes).all(|k| chars.get(*i + k) == Some(&'#')) {
            *i += 1 + hashes;
            return s;
        }
        if c == '\n' {
            *line += 1;
        }
        s.push(c);
        *i += 1;
    }
    s
}

/// The index after the item starting at `i`: its `;` or its closing brace.
fn item_end(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(t) = tokens.get(i) {
        match t.tok {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Tok::Punct(';') if depth == 0 => return i + 1,
            Tok::Punct('{') if depth == 0 => return block_end(tokens, i),
            _ => {}
        }
        i += 1;
    }
    i
}

/// The index after the `}` matching the `{` at `i`.
fn block_end(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(t) = tokens.get(i) {
        if t.is('{') {
            depth += 1;
        } else if t.is('}') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// The index after an attribute `#[...]` or `#![...]` at `i`, if one starts there.
fn attribute_end(tokens: &[Token], i: usize) -> Option<usize> {
    let mut j = i;
    if !tokens.get(j)?.is('#') {
        return None;
    }
    j += 1;
    if tokens.get(j)?.is('!') {
        j += 1;
    }
    if !tokens.get(j)?.is('[') {
        return None;
    }
    let mut depth = 0usize;
    while let Some(t) = tokens.get(j) {
        if t.is('[') {
            depth += 1;
        } else if t.is(']') {
            depth -= 1;
            if depth == 0 {
                return Some(j + 1);
            }
        }
        j += 1;
    }
    Some(j)
}

/// The tokens without the items under `#[cfg(test)]`, and the names of the test-only modules
/// declared by `#[cfg(test)] mod NAME;` (whose files are test code too).
pub fn strip_tests(tokens: &[Token]) -> (Vec<Token>, Vec<String>) {
    let cfg_test = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut kept = Vec::new();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let here = tokens.get(i..i + cfg_test.len()).unwrap_or_default();
        if here.iter().map(|t| &t.tok).eq(cfg_test.iter()) {
            let mut j = i + cfg_test.len();
            while let Some(end) = attribute_end(tokens, j) {
                j = end;
            }
            if tokens.get(j).is_some_and(|t| t.is_ident("pub")) {
                j += 1;
                if tokens.get(j).is_some_and(|t| t.is('(')) {
                    while tokens.get(j).is_some_and(|t| !t.is(')')) {
                        j += 1;
                    }
                    j += 1;
                }
            }
            if tokens.get(j).is_some_and(|t| t.is_ident("mod"))
                && tokens.get(j + 2).is_some_and(|t| t.is(';'))
            {
                if let Some(name) = tokens.get(j + 1).and_then(Token::ident) {
                    test_mods.push(name.to_owned());
                }
            }
            i = item_end(tokens, j);
        } else {
            if let Some(t) = tokens.get(i) {
                kept.push(t.clone());
            }
            i += 1;
        }
    }
    (kept, test_mods)
}

/// One source file of the crate.
#[derive(Debug, Clone)]
pub struct Source {
    /// Relative to the crate's root dir, with `/`: `src/home/install.rs`.
    pub path: String,
    pub text: String,
}

/// The module a file is: `src/a/b.rs`, `src/a/b/mod.rs` → `["a", "b"]`; the root → `[]`.
pub fn module_of(path: &str) -> Option<Vec<String>> {
    let rel = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rel.starts_with("bin/") {
        return None;
    }
    let rel = rel.strip_suffix("/mod").unwrap_or(rel);
    if rel == "lib" || rel == "main" {
        return Some(Vec::new());
    }
    Some(rel.split('/').map(str::to_owned).collect())
}

/// A module path as printed: `home::install`, the root as `main`.
pub fn display(module: &[String]) -> String {
    if module.is_empty() {
        ROOT.to_owned()
    } else {
        module.join("::")
    }
}

fn top(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| ROOT.to_owned())
}

/// A crate-relative path found in a module, resolved: `["home", "install", "run"]`.
#[derive(Debug, Clone)]
struct PathRef {
    segments: Vec<String>,
    /// The token index where it starts.
    at: usize,
    line: usize,
}

/// Every crate-relative path in `tokens` (of `module`), `use` trees expanded:
/// `crate::`, `super::`, `self::`, `CRATE_NAME::` and paths starting with a child module.
fn crate_paths(
    tokens: &[Token],
    module: &[String],
    children: &BTreeSet<String>,
    crate_name: &str,
) -> Vec<PathRef> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Some(word) = t.ident() else { continue };
        if !tokens.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep) {
            continue;
        }
        if i > 0 && tokens.get(i - 1).is_some_and(|p| p.tok == Tok::PathSep) {
            continue;
        }
        let base: Vec<String> = match word {
            "crate" => Vec::new(),
            "super" => module
                .get(..module.len().saturating_sub(1))
                .unwrap_or_default()
                .to_vec(),
            "self" => module.to_vec(),
            w if w == crate_name => Vec::new(),
            w if children.contains(w) => {
                let mut m = module.to_vec();
                m.push(w.to_owned());
                m
            }
            _ => continue,
        };
        let mut found = Vec::new();
        use_tree(tokens, i + 2, base, &mut found);
        out.extend(found.into_iter().map(|segments| PathRef {
            segments,
            at: i,
            line: t.line,
        }));
    }
    out
}

/// Reads a path (or a `{...}` group of them) from `i` under `prefix`; returns the index after.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(s)) => {
                match s.as_str() {
                    "super" => {
                        path.pop();
                    }
                    "self" => {}
                    _ => path.push(s.clone()),
                }
                i += 1;
                if tokens.get(i).is_some_and(|t| t.tok == Tok::PathSep) {
                    i += 1;
                    continue;
                }
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while let Some(t) = tokens.get(i) {
                    if t.is('}') {
                        return i + 1;
                    }
                    if t.is(',') {
                        i += 1;
                    } else if t.is_ident("as") {
                        i += 2;
                    } else {
                        let before = i;
                        i = use_tree(tokens, i, path.clone(), out);
                        if i == before {
                            i += 1;
                        }
                    }
                }
                return i;
            }
            Some(Tok::Punct('*')) => {
                i += 1;
                break;
            }
            _ => break,
        }
    }
    out.push(path);
    i
}

/// The deepest known module a resolved path lies in.
fn owner<'a>(segments: &[String], modules: &'a BTreeSet<Vec<String>>) -> Option<&'a Vec<String>> {
    (0..=segments.len())
        .rev()
        .find_map(|n| modules.get(segments.get(..n).unwrap_or_default()))
}

/// A broken invariant of the map, found at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `layering`, `terminal`, `exit-code`, `home-writes`.
    pub rule: &'static str,
    /// The top-level module.
    pub module: String,
    /// What it does, in words: `uses crate::cli`.
    pub what: String,
    /// Where, `src/lock/mod.rs:12` (not part of the key: lines move).
    pub at: String,
}

impl Violation {
    /// The line of the allow-list: rule, module and what, no file or line.
    pub fn key(&self) -> String {
        format!("{}: {} {}", self.rule, self.module, self.what)
    }
}

/// What tidy found in a crate.
#[derive(Debug, Default)]
pub struct Report {
    /// Top-level module → the top-level modules it depends on.
    pub graph: BTreeMap<String, BTreeSet<String>>,
    /// Full module (`home::install`) → the full modules it depends on.
    pub modules: BTreeMap<String, BTreeSet<String>>,
    /// The cycles of `graph`, each sorted, as strongly connected components.
    pub cycles: Vec<Vec<String>>,
    /// One per key, at its first place.
    pub violations: Vec<Violation>,
}

/// Reads `src/**/*.rs` under `crate_dir`.
pub fn read_sources(crate_dir: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read `{}`", dir.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read `{}`", path.display()))?;
                let rel = path
                    .strip_prefix(crate_dir)
                    .with_context(|| format!("`{}` is outside the crate", path.display()))?;
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(Source { path: rel, text });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The `[package] name` of a `Cargo.toml`, as code names it (`-` → `_`).
pub fn crate_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
                if let Some(value) = value.strip_prefix('=') {
                    return Some(value.trim().trim_matches('"').replace('-', "_"));
                }
            }
        }
    }
    None
}

struct Parsed {
    path: String,
    module: Vec<String>,
    tokens: Vec<Token>,
}

/// The graph, its cycles and the violations of the map's invariants in `sources`.
pub fn analyse(sources: &[Source], crate_name: &str) -> Report {
    let mut parsed = Vec::new();
    let mut test_files = BTreeSet::new();
    for source in sources {
        let Some(module) = module_of(&source.path) else {
            continue;
        };
        let (tokens, test_mods) = strip_tests(&lex(&source.text));
        for name in test_mods {
            let mut m = module.clone();
            m.push(name);
            test_files.insert(m);
        }
        parsed.push(Parsed {
            path: source.path.clone(),
            module,
            tokens,
        });
    }
    parsed.retain(|p| !test_files.contains(&p.module));
    let modules: BTreeSet<Vec<String>> = parsed.iter().map(|p| p.module.clone()).collect();

    let mut report = Report::default();
    let mut seen = BTreeSet::new();
    let mut add = |report: &mut Report, v: Violation| {
        if seen.insert(v.key()) {
            report.violations.push(v);
        }
    };
    for p in &parsed {
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == p.module.len() + 1 && m.starts_with(&p.module))
            .filter_map(|m| m.last().cloned())
            .collect();
        let paths = crate_paths(&p.tokens, &p.module, &children, crate_name);
        let me = top(&p.module);
        report.graph.entry(me.clone()).or_default();
        let deps = report.modules.entry(display(&p.module)).or_default();
        let mut resolved = Vec::new();
        for path in &paths {
            let Some(dep) = owner(&path.segments, &modules) else {
                continue;
            };
            if *dep != p.module {
                deps.insert(display(dep));
            }
            resolved.push((path, dep));
        }
        for (path, dep) in &resolved {
            let dep_top = top(dep);
            if dep_top != me {
                report
                    .graph
                    .entry(me.clone())
                    .or_default()
                    .insert(dep_top.clone());
            }
            if ["cli", "commands"].contains(&dep_top.as_str())
                && !MAY_NAME_CLI.contains(&me.as_str())
            {
                add(
                    &mut report,
                    Violation {
                        rule: "layering",
                        module: me.clone(),
                        what: format!("uses crate::{dep_top}"),
                        at: format!("{}:{}", p.path, path.line),
                    },
                );
            }
        }
        for v in token_checks(p, &me, &paths, &modules) {
            add(&mut report, v);
        }
        for v in apart_checks(p, &resolved) {
            add(&mut report, v);
        }
    }
    report.cycles = cycles(&report.graph);
    report
}

/// Module pairs the map keeps apart: the rule, the module (and its submodules), and the module
/// it must not use (nor its submodules).
const APART: &[(&str, &str, &str)] = &[
    // "`config` never writes a file and never reads the network".
    ("config-offline", "config", "index"),
    // "`config::ini` knows nothing of the schema".
    ("ini-knows-no-schema", "config::ini", "config::schema"),
    // "`archive` never reads the runtime home".
    ("archive-knows-no-home", "archive", "home"),
    // "`index` knows nothing of the resolver".
    ("index-knows-no-resolver", "index", "lock::resolve"),
];

/// Package-index hosts, which the map says are never written into the code.
const INDEX_HOSTS: &[&str] = &["pypi.org", "pythonhosted.org", "registry.npmjs.org"];

/// The one module with an `unsafe` block (`pre_exec`), and how many it has.
const UNSAFE_HOME: (&str, usize) = ("develop::supervise", 1);

/// Whether `module` is `within` or one of its submodules.
fn is_in(module: &str, within: &str) -> bool {
    module == within
        || module
            .strip_prefix(within)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// The finer rules of the map: modules kept apart, `config` read-only and offline,
/// `config::schema` without files, `lock::resolve` without network or processes, no index host,
/// one `unsafe` block.
fn apart_checks(p: &Parsed, deps: &[(&PathRef, &Vec<String>)]) -> Vec<Violation> {
    let me = display(&p.module);
    let mut out = Vec::new();
    let mut found = |rule: &'static str, what: String, line: usize| {
        out.push(Violation {
            rule,
            module: me.clone(),
            what,
            at: format!("{}:{}", p.path, line),
        });
    };
    for (rule, module, not) in APART {
        if !is_in(&me, module) {
            continue;
        }
        for (path, dep) in deps {
            let dep = display(dep);
            if is_in(&dep, not) && !is_in(not, &me) {
                found(rule, format!("uses crate::{dep}"), path.line);
            }
        }
    }
    let tokens = &p.tokens;
    let mut unsafe_blocks = 0;
    for (i, t) in tokens.iter().enumerate() {
        let prev = |k: usize| i.checked_sub(k).and_then(|j| tokens.get(j));
        let next = tokens.get(i + 1);
        match &t.tok {
            Tok::Str(s) => {
                if let Some(host) = INDEX_HOSTS.iter().find(|h| s.contains(*h)) {
                    found("no-index-host", format!("names the host {host}"), t.line);
                }
            }
            Tok::Ident(word) => {
                let pathed = prev(1).is_some_and(|p| p.tok == Tok::PathSep);
                let called = next.is_some_and(|n| n.is('('));
                let std_fs = word == "fs" && prev(2).is_some_and(|p| p.is_ident("std")) && pathed;
                let writes = called
                    && pathed
                    && (WRITE_CALLS.contains(&word.as_str())
                        || (word == "write"
                            && prev(2).is_some_and(|f| f.is_ident("fs") || f.is_ident("fs_err")))
                        || (word == "create" && prev(2).is_some_and(|f| f.is_ident("File"))));
                if is_in(&me, "config") && writes {
                    found("config-offline", format!("writes with {word}"), t.line);
                }
                if is_in(&me, "config") && word == "ureq" {
                    found("config-offline", "uses ureq".to_owned(), t.line);
                }
                if is_in(&me, "config::schema") && (word == "fs_err" || std_fs) {
                    found("schema-knows-no-files", format!("uses {word}"), t.line);
                }
                if is_in(&me, "lock::resolve") && (word == "ureq" || word == "Command") {
                    found("resolve-asks-index", format!("uses {word}"), t.line);
                }
                if word == "unsafe" {
                    unsafe_blocks += 1;
                    if me != UNSAFE_HOME.0 {
                        found("one-unsafe", "uses unsafe".to_owned(), t.line);
                    }
                }
            }
            _ => {}
        }
    }
    if me == UNSAFE_HOME.0 && unsafe_blocks > UNSAFE_HOME.1 {
        found(
            "one-unsafe",
            format!("has {unsafe_blocks} unsafe blocks, not {}", UNSAFE_HOME.1),
            1,
        );
    }
    out
}

/// The checks that read tokens: terminal output, exit codes, writes under the home.
fn token_checks(
    p: &Parsed,
    me: &str,
    paths: &[PathRef],
    modules: &BTreeSet<Vec<String>>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let at = |line: usize| format!("{}:{}", p.path, line);
    let tokens = &p.tokens;
    for (i, t) in tokens.iter().enumerate() {
        let Some(word) = t.ident() else { continue };
        let next = tokens.get(i + 1);
        let after = tokens.get(i + 2);
        let prev_sep = i >= 2
            && tokens.get(i - 1).is_some_and(|p| p.tok == Tok::PathSep)
            && tokens.get(i - 2).is_some_and(|p| p.is_ident("process"));
        if !MAY_PRINT.contains(&me) {
            let is_macro = next.is_some_and(|n| n.is('!'))
                && after.is_some_and(|a| a.is('(') || a.is('[') || a.is('{'));
            if is_macro && PRINT_MACROS.contains(&word) {
                out.push(Violation {
                    rule: "terminal",
                    module: me.to_owned(),
                    what: format!("uses {word}!"),
                    at: at(t.line),
                });
            }
            if word == "indicatif" {
                out.push(Violation {
                    rule: "terminal",
                    module: me.to_owned(),
                    what: "uses indicatif".to_owned(),
                    at: at(t.line),
                });
            }
            // `io::stdout()` written to; asking `is_terminal()` of it writes nothing.
            let stream = (word == "stdout" || word == "stderr")
                && i >= 2
                && tokens.get(i - 1).is_some_and(|p| p.tok == Tok::PathSep)
                && tokens.get(i - 2).is_some_and(|p| p.is_ident("io"))
                && next.is_some_and(|n| n.is('('))
                && after.is_some_and(|a| a.is(')'));
            let asked = tokens.get(i + 3).is_some_and(|d| d.is('.'))
                && tokens.get(i + 4).is_some_and(|d| d.is_ident("is_terminal"))
                || (0..i).rev().take(8).any(|k| {
                    tokens.get(k).is_some_and(|d| d.is_ident("is_terminal"))
                        && tokens.get(k + 1).is_some_and(|d| d.is('('))
                });
            if stream && !asked {
                out.push(Violation {
                    rule: "terminal",
                    module: me.to_owned(),
                    what: format!("writes to io::{word}"),
                    at: at(t.line),
                });
            }
        }
        if !MAY_HINT.contains(&me) && (word == "error_with_hint" || word == "UserError") {
            out.push(Violation {
                rule: "hints",
                module: me.to_owned(),
                what: format!("words a hint ({word})"),
                at: at(t.line),
            });
        }
        if !MAY_EXIT.contains(&me) {
            if word == "ExitCode" {
                out.push(Violation {
                    rule: "exit-code",
                    module: me.to_owned(),
                    what: "uses ExitCode".to_owned(),
                    at: at(t.line),
                });
            }
            if word == "exit" && prev_sep && next.is_some_and(|n| n.is('(')) {
                out.push(Violation {
                    rule: "exit-code",
                    module: me.to_owned(),
                    what: "uses process::exit".to_owned(),
                    at: at(t.line),
                });
            }
        }
    }
    if me != HOME {
        out.extend(home_writes(p, me, paths, modules));
    }
    out
}

/// Functions outside `home` that both name a place in the home (`home.join(..)`, a `home::`
/// path, a `"plugins/..."` literal) and change the file system.
fn home_writes(
    p: &Parsed,
    me: &str,
    paths: &[PathRef],
    modules: &BTreeSet<Vec<String>>,
) -> Vec<Violation> {
    let tokens = &p.tokens;
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let named_fn = t.is_ident("fn") && tokens.get(i + 1).is_some_and(|n| n.ident().is_some());
        if !named_fn {
            continue;
        }
        // The body: the first `{` outside the signature's brackets; none for a declaration.
        let mut j = i + 2;
        let mut depth = 0usize;
        let mut body = None;
        while let Some(t) = tokens.get(j) {
            match t.tok {
                Tok::Punct('(' | '[' | '<') => depth += 1,
                Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
                Tok::Punct('>') if !tokens.get(j - 1).is_some_and(|p| p.is('-')) => {
                    depth = depth.saturating_sub(1)
                }
                Tok::Punct(';') if depth == 0 => break,
                Tok::Punct('{') if depth == 0 => {
                    body = Some((j, block_end(tokens, j)));
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let Some((start, end)) = body else { continue };
        let inside = tokens.get(start..end).unwrap_or_default();
        let names_home = inside.windows(3).any(|w| {
            w.first().is_some_and(|a| a.is_ident("home"))
                && w.get(1).is_some_and(|b| b.is('.'))
                && w.get(2).is_some_and(|c| c.is_ident("join"))
        }) || inside.iter().any(|t| match &t.tok {
            Tok::Str(s) => s == "plugins" || s.starts_with("plugins/") || s.contains("/plugins/"),
            _ => false,
        }) || paths.iter().any(|r| {
            (start..end).contains(&r.at)
                && owner(&r.segments, modules).is_some_and(|m| top(m) == HOME)
        });
        if !names_home {
            continue;
        }
        for (k, w) in inside.iter().enumerate() {
            let Some(word) = w.ident() else { continue };
            let called = inside.get(k + 1).is_some_and(|n| n.is('('));
            let pathed = k > 0 && inside.get(k - 1).is_some_and(|p| p.tok == Tok::PathSep);
            let fs_write = word == "write"
                && k >= 2
                && inside
                    .get(k - 2)
                    .is_some_and(|f| f.is_ident("fs") || f.is_ident("fs_err"));
            let file_create =
                word == "create" && k >= 2 && inside.get(k - 2).is_some_and(|f| f.is_ident("File"));
            if called && pathed && (WRITE_CALLS.contains(&word) || fs_write || file_create) {
                out.push(Violation {
                    rule: "home-writes",
                    module: me.to_owned(),
                    what: format!("calls {word} on a path in the home"),
                    at: format!("{}:{}", p.path, w.line),
                });
            }
        }
    }
    out
}

/// The strongly connected components of more than one node (Tarjan), each sorted.
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let deps = s.graph.get(v).into_iter().flatten();
        for w in deps {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low.get(w).copied().unwrap_or(usize::MAX);
                if let Some(lv) = s.low.get_mut(v) {
                    *lv = (*lv).min(lw);
                }
            } else if s.on_stack.contains(w) {
                let iw = s.index.get(w).copied().unwrap_or(usize::MAX);
                if let Some(lv) = s.low.get_mut(v) {
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low.get(v) == s.index.get(v) {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// A cycle as tidy prints it and the allow-list holds it: `a, b, c`.
pub fn cycle_line(cycle: &[String]) -> String {
    cycle.join(", ")
}

/// The lines of an allow-list, less blank lines and `#` comments.
pub fn allow_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The findings split into known (warnings) and new (errors), and the known ones now gone.
#[derive(Debug, Default)]
pub struct Verdict {
    pub known_cycles: Vec<Vec<String>>,
    pub new_cycles: Vec<Vec<String>>,
    pub gone_cycles: Vec<String>,
    pub known_violations: Vec<Violation>,
    pub new_violations: Vec<Violation>,
    pub gone_violations: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.new_cycles.is_empty() && self.new_violations.is_empty()
    }
}

/// A cycle is known when its modules all lie in one known cycle (a known cycle that shrank or
/// split is still known); a violation when its key is listed.
pub fn judge(report: &Report, known_cycles: &[String], known_violations: &[String]) -> Verdict {
    let known_sets: Vec<BTreeSet<&str>> = known_cycles
        .iter()
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect()
        })
        .collect();
    let mut verdict = Verdict::default();
    for cycle in &report.cycles {
        if known_sets
            .iter()
            .any(|k| cycle.iter().all(|m| k.contains(m.as_str())))
        {
            verdict.known_cycles.push(cycle.clone());
        } else {
            verdict.new_cycles.push(cycle.clone());
        }
    }
    for (line, set) in known_cycles.iter().zip(&known_sets) {
        let whole = report
            .cycles
            .iter()
            .any(|c| c.len() == set.len() && c.iter().all(|m| set.contains(m.as_str())));
        if !whole {
            verdict.gone_cycles.push(line.clone());
        }
    }
    for v in &report.violations {
        if known_violations.contains(&v.key()) {
            verdict.known_violations.push(v.clone());
        } else {
            verdict.new_violations.push(v.clone());
        }
    }
    let keys: BTreeSet<String> = report.violations.iter().map(Violation::key).collect();
    verdict.gone_violations = known_violations
        .iter()
        .filter(|k| !keys.contains(*k))
        .cloned()
        .collect();
    verdict
}

/// The module graph, one line per top-level module: `module -> dep, dep`.
pub fn render_graph(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::new();
    for (module, deps) in graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        if deps.is_empty() {
            let _ = writeln!(out, "{module} ->");
        } else {
            let _ = writeln!(out, "{module} -> {}", deps.join(", "));
        }
    }
    out
}

/// The findings in words: the known ones as warnings, the new ones as errors.
pub fn render_verdict(report: &Report, verdict: &Verdict) -> String {
    let mut out = String::new();
    let inside = |cycle: &[String]| {
        let mut s = String::new();
        for m in cycle {
            let deps: Vec<&str> = report
                .graph
                .get(m)
                .into_iter()
                .flatten()
                .filter(|d| cycle.contains(d))
                .map(String::as_str)
                .collect();
            let _ = writeln!(s, "    {m} -> {}", deps.join(", "));
        }
        s
    };
    for c in &verdict.known_cycles {
        let _ = writeln!(
            out,
            "warning: known cycle ({} modules): {}",
            c.len(),
            cycle_line(c)
        );
        out.push_str(&inside(c));
    }
    for c in &verdict.new_cycles {
        let _ = writeln!(
            out,
            "error: new cycle ({} modules): {}",
            c.len(),
            cycle_line(c)
        );
        out.push_str(&inside(c));
    }
    for v in &verdict.known_violations {
        let _ = writeln!(out, "warning: known violation: {} ({})", v.key(), v.at);
    }
    for v in &verdict.new_violations {
        let _ = writeln!(out, "error: {} ({})", v.key(), v.at);
    }
    for line in &verdict.gone_cycles {
        let _ = writeln!(
            out,
            "note: the known cycle `{line}` is gone or changed: update `{KNOWN_CYCLES}`"
        );
    }
    for line in &verdict.gone_violations {
        let _ = writeln!(
            out,
            "note: the known violation `{line}` is gone: remove it from `{KNOWN_VIOLATIONS}`"
        );
    }
    out
}

/// Reads an allow-list file; a missing file is an error (a typo would allow nothing silently).
pub fn read_allow_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the allow-list `{}`", path.display()))?;
    Ok(allow_list(&text))
}

/// Analyses the crate at `crate_dir` against the two allow-lists (none: every finding is new).
pub fn check(
    crate_dir: &Path,
    known_cycles: Option<&Path>,
    known_violations: Option<&Path>,
) -> Result<(Report, Verdict)> {
    let manifest = crate_dir.join("Cargo.toml");
    let manifest_text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    let name = crate_name(&manifest_text)
        .with_context(|| format!("`{}` has no `[package] name`", manifest.display()))?;
    let report = analyse(&read_sources(crate_dir)?, &name);
    let cycles = known_cycles
        .map(read_allow_list)
        .transpose()?
        .unwrap_or_default();
    let violations = known_violations
        .map(read_allow_list)
        .transpose()?
        .unwrap_or_default();
    let verdict = judge(&report, &cycles, &violations);
    Ok((report, verdict))
}

/// `cargo xtask tidy [--known-cycles FILE] [--known-violations FILE] [--modules]`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut known_cycles = None;
    let mut known_violations = None;
    let mut modules = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--known-cycles" => &mut known_cycles,
            "--known-violations" => &mut known_violations,
            "--modules" => {
                modules = true;
                continue;
            }
            other => bail!(
                "unknown argument `{other}`: tidy takes `--known-cycles FILE`, \
                 `--known-violations FILE` and `--modules`"
            ),
        };
        let value = args
            .next()
            .with_context(|| format!("`{arg}` needs a file (for instance `{KNOWN_CYCLES}`)"))?;
        *slot = Some(root.join(value));
    }
    let (report, verdict) = check(root, known_cycles.as_deref(), known_violations.as_deref())?;
    println!("module graph of src/ (top-level modules, from `use crate::` and `crate::` paths):");
    print!("{}", render_graph(&report.graph));
    if modules {
        println!("module graph of src/ (every module):");
        print!("{}", render_graph(&report.modules));
    }
    print!("{}", render_verdict(&report, &verdict));
    if !verdict.passed() {
        let hint = if known_cycles.is_none() && known_violations.is_none() {
            format!(
                "; `--known-cycles {KNOWN_CYCLES} --known-violations {KNOWN_VIOLATIONS}` (as \
                 `cargo xtask ci` runs it) shows only the new ones"
            )
        } else {
            String::new()
        };
        bail!(
            "tidy found {} new cycle(s) and {} new violation(s) of docs/architecture.md: \
             break the cycle, or move the code to the module the map gives it (the allow-lists \
             `{KNOWN_CYCLES}` and `{KNOWN_VIOLATIONS}` record only what was true before){hint}",
            verdict.new_cycles.len(),
            verdict.new_violations.len()
        );
    }
    println!(
        "tidy: no new cycle, no new violation ({} known cycle(s), {} known violation(s))",
        verdict.known_cycles.len(),
        verdict.known_violations.len()
    );
    Ok(())
}
