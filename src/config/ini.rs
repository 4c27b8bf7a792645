//! The `config.ini` dialect, read and written without losing a byte the user wrote.
//!
//! MetWork reads `config.ini` with Python's `configparser` (through `opinionated_configparser`)
//! set up as: `=` is the only delimiter, `#` the only comment prefix, no inline comments, keys
//! case-sensitive, duplicate sections and keys refused, values continued on indented lines.
//! This module reads that dialect into a [`Document`] that keeps every line (comments, blank
//! lines, spacing) so that mfplug can change one value and write the file back with the rest
//! untouched. It knows nothing of the schema: see `config::schema` for that.

use std::fmt;

/// One problem found while reading a file; reading goes on after it so that `mfplug check`
/// reports every problem of a file, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("`{0}` is outside any section")]
    MissingSectionHeader(String),
    #[error("invalid section header `{0}`")]
    InvalidSectionHeader(String),
    #[error("`{0}` is neither `key = value`, a `[section]` nor a `#` comment")]
    MissingEquals(String),
    #[error("empty key in `{0}`")]
    EmptyKey(String),
    #[error("invalid variant in key `{0}`: expected `key[VARIANT]`")]
    InvalidVariant(String),
    #[error("section `[{name}]` is already defined on line {first}")]
    DuplicateSection { name: String, first: usize },
    #[error("key `{key}` is already set on line {first} of section `[{section}]`")]
    DuplicateKey {
        section: String,
        key: String,
        first: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// A key as written: `name` or `name[VARIANT]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub name: String,
    pub variant: Option<String>,
}

impl Key {
    pub fn plain(name: &str) -> Key {
        Key {
            name: name.to_owned(),
            variant: None,
        }
    }

    /// Splits `name[VARIANT]`; `None` when the brackets are malformed.
    pub fn parse(text: &str) -> Option<Key> {
        let text = text.trim();
        match text.find('[') {
            None if !text.contains(']') => Some(Key::plain(text)),
            None => None,
            Some(open) => {
                let rest = text[open + 1..].strip_suffix(']')?;
                let name = text[..open].trim_end();
                let variant = rest.trim();
                if name.is_empty()
                    || variant.is_empty()
                    || variant.contains(['[', ']'])
                    || name.contains(']')
                {
                    return None;
                }
                Some(Key {
                    name: name.to_owned(),
                    variant: Some(variant.to_owned()),
                })
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}[{}]", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// A `key = value` entry with the lines it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    /// The value: continuation lines joined with `\n`, surrounding blanks removed.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The original lines, or `None` once the value was changed (then it is written afresh).
    raw: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A comment or blank line, or a line that did not parse (kept as it is).
    Trivia(String),
    Entry(Entry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the header; 0 for a section added by [`Document::set`].
    pub line: usize,
    header: String,
    items: Vec<Item>,
}

impl Section {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.items.iter().filter_map(|item| match item {
            Item::Entry(e) => Some(e),
            Item::Trivia(_) => None,
        })
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.items.iter_mut().filter_map(|item| match item {
            Item::Entry(e) => Some(e),
            Item::Trivia(_) => None,
        })
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries().find(|e| &e.key == key)
    }
}

/// A parsed `config.ini`: sections in file order, entries in section order, comments kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    preamble: Vec<String>,
    sections: Vec<Section>,
    /// Whether the text ended with a newline, so that writing it back does too.
    trailing_newline: bool,
}

impl Document {
    /// Reads `text`; lines that do not parse are reported and kept as they are.
    pub fn parse(text: &str) -> (Document, Vec<ParseError>) {
        let mut doc = Document {
            trailing_newline: text.is_empty() || text.ends_with('\n'),
            ..Document::default()
        };
        let mut errors = Vec::new();
        // The entry that an indented line continues: (section index, item index, key indent).
        let mut open: Option<(usize, usize, usize)> = None;

        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = raw.trim();
            let indent = raw.len() - raw.trim_start().len();

            if trimmed.is_empty() {
                open = None;
                doc.push_trivia(raw);
                continue;
            }
            if trimmed.starts_with('#') {
                // A comment inside a multi-line value is skipped by configparser; keep it with
                // the entry so that rewriting the entry keeps it too.
                match open {
                    Some((s, i, _)) => doc.entry_raw_mut(s, i).push(raw.to_owned()),
                    None => doc.push_trivia(raw),
                }
                continue;
            }
            if let Some((s, i, key_indent)) = open {
                if indent > key_indent {
                    let entry = doc.entry_mut(s, i);
                    entry.raw.get_or_insert_with(Vec::new).push(raw.to_owned());
                    if !entry.value.is_empty() {
                        entry.value.push('\n');
                    }
                    entry.value.push_str(trimmed);
                    continue;
                }
            }
            open = None;

            if trimmed.starts_with('[') {
                match parse_header(trimmed) {
                    Some(name) => {
                        if let Some(first) = doc.sections.iter().find(|s| s.name == name) {
                            errors.push(ParseError {
                                line: number,
                                kind: ParseErrorKind::DuplicateSection {
                                    name: name.clone(),
                                    first: first.line,
                                },
                            });
                        }
                        doc.sections.push(Section {
                            name,
                            line: number,
                            header: raw.to_owned(),
                            items: Vec::new(),
                        });
                    }
                    None => {
                        errors.push(ParseError {
                            line: number,
                            kind: ParseErrorKind::InvalidSectionHeader(trimmed.to_owned()),
                        });
                        doc.push_trivia(raw);
                    }
                }
                continue;
            }

            let Some((key_text, value)) = trimmed.split_once('=') else {
                errors.push(ParseError {
                    line: number,
                    kind: ParseErrorKind::MissingEquals(trimmed.to_owned()),
                });
                doc.push_trivia(raw);
                continue;
            };
            if doc.sections.is_empty() {
                errors.push(ParseError {
                    line: number,
                    kind: ParseErrorKind::MissingSectionHeader(trimmed.to_owned()),
                });
                doc.push_trivia(raw);
                continue;
            }
            if key_text.trim().is_empty() {
                errors.push(ParseError {
                    line: number,
                    kind: ParseErrorKind::EmptyKey(trimmed.to_owned()),
                });
                doc.push_trivia(raw);
                continue;
            }
            let Some(key) = Key::parse(key_text) else {
                errors.push(ParseError {
                    line: number,
                    kind: ParseErrorKind::InvalidVariant(key_text.trim().to_owned()),
                });
                doc.push_trivia(raw);
                continue;
            };
            let section_index = doc.sections.len() - 1;
            let section = &mut doc.sections[section_index];
            if let Some(first) = section.get(&key) {
                errors.push(ParseError {
                    line: number,
                    kind: ParseErrorKind::DuplicateKey {
                        section: section.name.clone(),
                        key: key.to_string(),
                        first: first.line,
                    },
                });
                section.items.push(Item::Trivia(raw.to_owned()));
                continue;
            }
            section.items.push(Item::Entry(Entry {
                key,
                value: value.trim().to_owned(),
                line: number,
                raw: Some(vec![raw.to_owned()]),
            }));
            open = Some((section_index, section.items.len() - 1, indent));
        }
        (doc, errors)
    }

    fn push_trivia(&mut self, raw: &str) {
        match self.sections.last_mut() {
            Some(section) => section.items.push(Item::Trivia(raw.to_owned())),
            None => self.preamble.push(raw.to_owned()),
        }
    }

    fn entry_mut(&mut self, section: usize, item: usize) -> &mut Entry {
        match &mut self.sections[section].items[item] {
            Item::Entry(e) => e,
            Item::Trivia(_) => unreachable!("an open entry index always points at an entry"),
        }
    }

    fn entry_raw_mut(&mut self, section: usize, item: usize) -> &mut Vec<String> {
        self.entry_mut(section, item)
            .raw
            .get_or_insert_with(Vec::new)
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        let key = Key::parse(key)?;
        Some(self.section(section)?.get(&key)?.value.as_str())
    }

    /// Sets `key` in `section`, in place when it exists (its comments stay around it),
    /// else after the last entry of the section, else in a new section at the end.
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let key = Key::parse(key).unwrap_or_else(|| Key::plain(key));
        let index = match self.sections.iter().position(|s| s.name == section) {
            Some(index) => index,
            None => {
                if let Some(last) = self.sections.last_mut() {
                    if !matches!(last.items.last(), Some(Item::Trivia(t)) if t.trim().is_empty()) {
                        last.items.push(Item::Trivia(String::new()));
                    }
                } else if !self.preamble.is_empty() {
                    self.preamble.push(String::new());
                }
                self.sections.push(Section {
                    name: section.to_owned(),
                    line: 0,
                    header: format!("[{section}]"),
                    items: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        let target = &mut self.sections[index];
        if let Some(entry) = target.entries_mut().find(|e| e.key == key) {
            if entry.value != value {
                entry.value = value.to_owned();
                entry.raw = None;
            }
            return;
        }
        let at = target
            .items
            .iter()
            .rposition(|item| matches!(item, Item::Entry(_)))
            .map_or(0, |i| i + 1);
        target.items.insert(
            at,
            Item::Entry(Entry {
                key,
                value: value.to_owned(),
                line: 0,
                raw: None,
            }),
        );
    }

    /// Removes `key` from `section`; returns whether it was there.
    pub fn remove(&mut self, section: &str, key: &str) -> bool {
        let Some(key) = Key::parse(key) else {
            return false;
        };
        let Some(target) = self.sections.iter_mut().find(|s| s.name == section) else {
            return false;
        };
        let before = target.items.len();
        target
            .items
            .retain(|item| !matches!(item, Item::Entry(e) if e.key == key));
        before != target.items.len()
    }

    /// The text of the document: unchanged lines as they were read, changed entries written
    /// as `key = value` with continuation lines indented by four spaces.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = self.preamble.clone();
        for section in &self.sections {
            lines.push(section.header.clone());
            for item in &section.items {
                match item {
                    Item::Trivia(t) => lines.push(t.clone()),
                    Item::Entry(e) => match &e.raw {
                        Some(raw) => lines.extend(raw.iter().cloned()),
                        None => lines.push(format_entry(&e.key, &e.value)),
                    },
                }
            }
        }
        let mut text = lines.join("\n");
        if self.trailing_newline && !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

fn format_entry(key: &Key, value: &str) -> String {
    let mut out = format!("{key} =");
    for (i, line) in value.lines().enumerate() {
        if i == 0 {
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        } else {
            out.push_str("\n    ");
            out.push_str(line);
        }
    }
    out
}

/// `[name]`, optionally followed by a `#` comment, as configparser's `\[(?P<header>.+)\]`.
fn parse_header(trimmed: &str) -> Option<String> {
    let close = trimmed.rfind(']')?;
    let after = trimmed[close + 1..].trim();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let name = trimmed[1..close].trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# leading comment

[general]
# the version
_version = 1.2.3
_summary=a summary # not a comment
[custom]
foo = bar
foo[DEV] = dev bar
  # comment inside
multi = first
    second

    # trailing comment of custom
";

    #[test]
    fn parses_entries_variants_and_multiline_values() {
        let (doc, errors) = Document::parse(SAMPLE);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.get("general", "_version"), Some("1.2.3"));
        assert_eq!(
            doc.get("general", "_summary"),
            Some("a summary # not a comment")
        );
        assert_eq!(doc.get("custom", "foo"), Some("bar"));
        assert_eq!(doc.get("custom", "foo[DEV]"), Some("dev bar"));
        assert_eq!(doc.get("custom", "multi"), Some("first\nsecond"));
        assert_eq!(doc.section("custom").unwrap().line, 7);
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let (doc, _) = Document::parse(SAMPLE);
        assert_eq!(doc.to_text(), SAMPLE);
        let crlf_less = "[a]\nx=1";
        assert_eq!(Document::parse(crlf_less).0.to_text(), crlf_less);
    }

    #[test]
    fn set_keeps_comments_and_order() {
        let (mut doc, _) = Document::parse(SAMPLE);
        doc.set("custom", "foo", "changed");
        doc.set("custom", "new", "value");
        doc.set("extra_daemon_x", "numprocesses", "2");
        let text = doc.to_text();
        assert!(text.contains("# leading comment\n\n[general]\n# the version\n"));
        assert!(text.contains("foo = changed\nfoo[DEV] = dev bar\n"));
        assert!(text.contains("    second\nnew = value\n\n    # trailing comment of custom\n"));
        assert!(text.ends_with("\n[extra_daemon_x]\nnumprocesses = 2\n"));
        let (again, errors) = Document::parse(&text);
        assert!(errors.is_empty());
        assert_eq!(again.get("custom", "foo"), Some("changed"));
        assert_eq!(again.get("custom", "multi"), Some("first\nsecond"));
    }

    #[test]
    fn set_multiline_and_remove() {
        let (mut doc, _) = Document::parse("[a]\nx = 1\ny = 2\n");
        doc.set("a", "x", "one\ntwo");
        assert!(doc.remove("a", "y"));
        assert!(!doc.remove("a", "y"));
        assert_eq!(doc.to_text(), "[a]\nx = one\n    two\n");
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "key = outside\n[a]\nx = 1\nx = 2\nnot a pair\n[a]\n= v\nk[ = 1\n[b\n";
        let (_, errors) = Document::parse(text);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 4, 5, 6, 7, 8, 9]);
        assert!(matches!(
            errors[0].kind,
            ParseErrorKind::MissingSectionHeader(_)
        ));
        assert_eq!(
            errors[1].to_string(),
            "line 4: key `x` is already set on line 3 of section `[a]`"
        );
        assert!(matches!(
            errors[3].kind,
            ParseErrorKind::DuplicateSection { first: 2, .. }
        ));
        assert!(matches!(errors[5].kind, ParseErrorKind::InvalidVariant(_)));
        assert!(matches!(
            errors[6].kind,
            ParseErrorKind::InvalidSectionHeader(_)
        ));
    }

    #[test]
    fn keys_are_case_sensitive_and_colon_is_not_a_delimiter() {
        let (doc, errors) = Document::parse("[s]\nFoo = 1\nfoo = 2\na:b = 3\n");
        assert!(errors.is_empty());
        assert_eq!(doc.get("s", "Foo"), Some("1"));
        assert_eq!(doc.get("s", "foo"), Some("2"));
        assert_eq!(doc.get("s", "a:b"), Some("3"));
    }

    #[test]
    fn header_may_carry_a_comment() {
        let (doc, errors) = Document::parse("[switch_rules:fnmatch:latest] # rules\nx = 1\n");
        assert!(errors.is_empty());
        assert_eq!(doc.sections()[0].name, "switch_rules:fnmatch:latest");
    }

    #[test]
    fn key_parse() {
        assert_eq!(
            Key::parse(" foo[DEV_X] "),
            Some(Key {
                name: "foo".into(),
                variant: Some("DEV_X".into())
            })
        );
        assert_eq!(Key::parse("foo[]"), None);
        assert_eq!(Key::parse("foo]"), None);
        assert_eq!(Key::parse("foo[a]b"), None);
    }
}
