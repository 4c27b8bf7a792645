//! The `config.ini` dialect, read and written without losing a byte the user wrote.
//!
//! MetWork reads `config.ini` with Python's `configparser` (through `opinionated_configparser`)
//! set up as: `=` is the only delimiter, `#` the only comment prefix, no inline comments, keys
//! case-sensitive, duplicate sections and keys refused, values continued on indented lines.
//! This module reads that dialect into a [`Document`] that keeps every line (comments, blank
//! lines, spacing) so that mfplug can change one value and write the file back with the rest
//! untouched. It knows nothing of the schema: see `config::schema` for that.
//!
//! pip reads pip.conf with Python's default `configparser` (`=` and `:` delimiters, `#` and `;`
//! comments, keys lowercased, blank lines allowed inside a multi-line value): the same reader
//! reads that dialect too, through [`Document::parse_with`] and [`Dialect::PIP_CONF`].

use std::collections::HashMap;
use std::fmt;

/// One problem found while reading a file; reading goes on after it so that `mfplug check`
/// reports every problem of a file, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub(crate) kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseErrorKind {
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
    pub(crate) variant: Option<String>,
}

impl Key {
    pub(crate) fn plain(name: &str) -> Key {
        Key {
            name: name.to_owned(),
            variant: None,
        }
    }

    /// Splits `name[VARIANT]`; `None` when the brackets are malformed.
    pub(crate) fn parse(text: &str) -> Option<Key> {
        let text = text.trim();
        match text.split_once('[') {
            None if !text.contains(']') => Some(Key::plain(text)),
            None => None,
            Some((name, rest)) => {
                let rest = rest.strip_suffix(']')?;
                let name = name.trim_end();
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
    pub(crate) line: usize,
    /// The original lines with their line endings, or `None` once the value was changed
    /// (then it is written afresh).
    raw: Option<Vec<String>>,
    /// The blanks before the key, kept when the entry is written afresh: the lines after it
    /// must not become its continuation lines.
    indent: String,
    /// Once written afresh, the comment lines that were among its lines: kept, after it.
    comments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A comment or blank line, or a line that did not parse (kept as it is, line ending
    /// included).
    Trivia(String),
    Entry(Entry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the header; 0 for a section added by [`Document::set`].
    pub(crate) line: usize,
    /// The header line as written, line ending included.
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

    pub(crate) fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries().find(|e| &e.key == key)
    }
}

/// A parsed `config.ini`: sections in file order, entries in section order, comments kept.
///
/// Every line is kept with its own line ending (`\n`, `\r\n` or a lone `\r`, which Python's
/// universal newlines read as line breaks too), with the byte order mark if there was one,
/// so that [`Document::to_text`] gives back the exact input. Lines written afresh (a changed
/// entry, a new section) take the file's first line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Whether the text started with a UTF-8 byte order mark (kept, not parsed).
    bom: bool,
    preamble: Vec<String>,
    sections: Vec<Section>,
    /// The index of the first section of each name, so that lookups stay constant-time in
    /// files with many sections.
    by_name: HashMap<String, usize>,
    /// Whether the text ended with a line ending, so that writing it back does too.
    trailing_newline: bool,
    /// The line ending of new lines: the file's first one, else `\n`.
    newline: &'static str,
    /// How the text was read (and what a comment line is when an entry is rewritten).
    dialect: Dialect,
}

impl Default for Document {
    /// An empty file: what is set in it ends with a newline.
    fn default() -> Document {
        Document {
            bom: false,
            preamble: Vec::new(),
            sections: Vec::new(),
            by_name: HashMap::new(),
            trailing_newline: true,
            newline: "\n",
            dialect: Dialect::CONFIG_INI,
        }
    }
}

const BOM: char = '\u{feff}';

/// How the lines of a file are read: the two set-ups of Python's `configparser` that mfplug
/// meets. Neither has inline comments; both continue a value on the lines indented deeper
/// than its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// What separates a key from its value: the first of these on the line.
    delimiters: &'static [char],
    /// What starts a comment line.
    comment_prefixes: &'static [char],
    /// Whether `key[VARIANT]` is a key with a variant (else the brackets are part of the key).
    variants: bool,
    /// Whether key names are lowercased, as configparser's default `optionxform` does.
    lowercase_keys: bool,
    /// Whether blank lines inside a multi-line value leave it open, so that an indented line
    /// after them still continues it (configparser's `empty_lines_in_values`).
    blank_lines_in_values: bool,
}

impl Dialect {
    /// `config.ini` as MetWork reads it (see the module's documentation).
    pub(crate) const CONFIG_INI: Dialect = Dialect {
        delimiters: &['='],
        comment_prefixes: &['#'],
        variants: true,
        lowercase_keys: false,
        blank_lines_in_values: false,
    };

    /// pip.conf as pip reads it: Python's default `RawConfigParser`.
    pub(crate) const PIP_CONF: Dialect = Dialect {
        delimiters: &['=', ':'],
        comment_prefixes: &['#', ';'],
        variants: false,
        lowercase_keys: true,
        blank_lines_in_values: true,
    };

    /// Whether the (trimmed) line is a comment.
    fn is_comment(&self, trimmed: &str) -> bool {
        trimmed.starts_with(self.comment_prefixes)
    }

    /// The key of `key_text` as this dialect names it; `None` when a variant is malformed.
    fn key(&self, key_text: &str) -> Option<Key> {
        let mut key = if self.variants {
            Key::parse(key_text)?
        } else {
            Key::plain(key_text.trim())
        };
        if self.lowercase_keys {
            key.name = key.name.to_lowercase();
        }
        Some(key)
    }
}

/// The lines of `text`, each as (the line with its ending, the line without it). A line ends
/// at `\r\n`, `\n` or a lone `\r`, as Python's universal newlines read it.
fn split_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (content_len, ending_len) = match rest.find(['\r', '\n']) {
            None => (rest.len(), 0),
            Some(at) if rest.get(at..at + 2) == Some("\r\n") => (at, 2),
            Some(at) => (at, 1),
        };
        // Both lengths end on ASCII bytes found by `find`: char boundaries.
        let (whole, after) = rest.split_at_checked(content_len + ending_len)?;
        let content = whole.get(..content_len)?;
        rest = after;
        Some((whole, content))
    })
}

/// The first line ending of `text`, or `\n`.
fn first_newline(text: &str) -> &'static str {
    match text.find(['\r', '\n']) {
        None => "\n",
        Some(at) => match text.get(at..at + 2) {
            Some("\r\n") => "\r\n",
            _ if text.get(at..=at) == Some("\r") => "\r",
            _ => "\n",
        },
    }
}

fn ends_with_newline(text: &str) -> bool {
    text.ends_with(['\n', '\r'])
}

fn strip_newline(line: &str) -> &str {
    line.strip_suffix("\r\n")
        .or_else(|| line.strip_suffix(['\n', '\r']))
        .unwrap_or(line)
}

impl Document {
    /// Reads `text` as a `config.ini`; lines that do not parse are reported and kept as they
    /// are.
    ///
    /// Linear in the size of the text: sections and keys already seen are found by hashing.
    pub fn parse(text: &str) -> (Document, Vec<ParseError>) {
        Document::parse_with(text, Dialect::CONFIG_INI)
    }

    /// Reads `text` in `dialect`, as [`Document::parse`] does.
    pub(crate) fn parse_with(text: &str, dialect: Dialect) -> (Document, Vec<ParseError>) {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (true, body),
            None => (false, text),
        };
        let doc = Document {
            bom,
            trailing_newline: body.is_empty() || ends_with_newline(body),
            newline: first_newline(body),
            dialect,
            ..Document::default()
        };
        let mut reader = Reader {
            doc,
            errors: Vec::new(),
            keys: HashMap::new(),
            open: None,
            pending: 0,
        };
        for (index, (whole, raw)) in split_lines(body).enumerate() {
            reader.line(index + 1, whole, raw);
        }
        (reader.doc, reader.errors)
    }

    fn push_trivia(&mut self, raw: &str) {
        match self.sections.last_mut() {
            Some(section) => section.items.push(Item::Trivia(raw.to_owned())),
            None => self.preamble.push(raw.to_owned()),
        }
    }

    /// Removes the last `count` items of section `section` (trivia pushed after its last
    /// entry) and returns their lines.
    fn take_trivia(&mut self, section: usize, count: usize) -> Vec<String> {
        let Some(target) = self.sections.get_mut(section) else {
            return Vec::new();
        };
        let from = target.items.len().saturating_sub(count);
        target
            .items
            .drain(from..)
            .filter_map(|item| match item {
                Item::Trivia(line) => Some(line),
                Item::Entry(_) => None,
            })
            .collect()
    }

    fn entry_mut(&mut self, section: usize, item: usize) -> Option<&mut Entry> {
        match self.sections.get_mut(section)?.items.get_mut(item)? {
            Item::Entry(e) => Some(e),
            Item::Trivia(_) => None,
        }
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub(crate) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(*self.by_name.get(name)?)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        let key = self.dialect.key(key)?;
        Some(self.section(section)?.get(&key)?.value.as_str())
    }

    /// Sets `key` in `section`, in place when it exists (its comments stay around it),
    /// else after the last entry of the section, else in a new section at the end.
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let dialect = self.dialect;
        let key = dialect.key(key).unwrap_or_else(|| Key::plain(key));
        let newline = self.newline;
        let index = match self.by_name.get(section) {
            Some(&index) => index,
            None => {
                if let Some(last) = self.sections.last_mut() {
                    if !matches!(last.items.last(), Some(Item::Trivia(t)) if t.trim().is_empty()) {
                        last.items.push(Item::Trivia(newline.to_owned()));
                    }
                } else if !self.preamble.is_empty() {
                    self.preamble.push(newline.to_owned());
                }
                self.by_name.insert(section.to_owned(), self.sections.len());
                self.sections.push(Section {
                    name: section.to_owned(),
                    line: 0,
                    header: format!("[{section}]{newline}"),
                    items: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        let Some(target) = self.sections.get_mut(index) else {
            return;
        };
        if let Some(entry) = target.entries_mut().find(|e| e.key == key) {
            if entry.value != value {
                entry.value = value.to_owned();
                let comments = entry.raw.take().unwrap_or_default().into_iter().skip(1);
                entry
                    .comments
                    .extend(comments.filter(|l| dialect.is_comment(l.trim_start())));
            }
            return;
        }
        let last = target
            .items
            .iter()
            .rposition(|item| matches!(item, Item::Entry(_)));
        let (at, indent) = match last.and_then(|i| Some((i, target.items.get(i)?))) {
            Some((i, Item::Entry(e))) => (i + 1, e.indent.clone()),
            _ => (0, String::new()),
        };
        // A line after it indented deeper would read as its continuation: a blank line
        // ends the new value first.
        // (Comment lines in between would be its own.)
        let next =
            target.items.iter().skip(at).find(
                |item| !matches!(item, Item::Trivia(t) if dialect.is_comment(t.trim_start())),
            );
        let swallows = matches!(next, Some(Item::Trivia(t))
            if !t.trim().is_empty() && t.len() - t.trim_start().len() > indent.len());
        if swallows {
            target.items.insert(at, Item::Trivia(newline.to_owned()));
        }
        target.items.insert(
            at,
            Item::Entry(Entry {
                key,
                value: value.to_owned(),
                line: 0,
                raw: None,
                indent,
                comments: Vec::new(),
            }),
        );
    }

    /// Removes `key` from `section`; returns whether it was there.
    pub fn remove(&mut self, section: &str, key: &str) -> bool {
        let Some(key) = self.dialect.key(key) else {
            return false;
        };
        let Some(target) = self
            .by_name
            .get(section)
            .and_then(|&index| self.sections.get_mut(index))
        else {
            return false;
        };
        let before = target.items.len();
        target
            .items
            .retain(|item| !matches!(item, Item::Entry(e) if e.key == key));
        before != target.items.len()
    }

    /// The text of the document: unchanged lines as they were read (line endings and byte
    /// order mark included), changed entries written as `key = value` with continuation lines
    /// indented by four spaces, in the file's line ending.
    pub fn to_text(&self) -> String {
        let newline = self.newline;
        let mut lines: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        lines.extend(self.preamble.iter().map(|l| l.as_str().into()));
        for section in &self.sections {
            lines.push(section.header.as_str().into());
            for item in &section.items {
                match item {
                    Item::Trivia(t) => lines.push(t.as_str().into()),
                    Item::Entry(e) => match &e.raw {
                        Some(raw) => lines.extend(raw.iter().map(|l| l.as_str().into())),
                        None => {
                            lines.push(format_entry(e, newline).into());
                            lines.extend(e.comments.iter().map(|l| l.as_str().into()));
                        }
                    },
                }
            }
        }
        let mut text = String::new();
        if self.bom {
            text.push(BOM);
        }
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if i + 1 == count && !self.trailing_newline {
                text.push_str(strip_newline(line));
            } else {
                text.push_str(line);
                // A line that was last (with no ending) and is not any more gets one.
                if !ends_with_newline(line) {
                    text.push_str(newline);
                }
            }
        }
        text
    }
}

/// The entry that an indented line continues.
#[derive(Debug, Clone, Copy)]
struct Open {
    section: usize,
    item: usize,
    /// The blanks before its key.
    indent: usize,
}

/// A line being read: its number (1-based), the line with its ending, and the line trimmed.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    whole: &'a str,
    trimmed: &'a str,
}

/// The state of [`Document::parse_with`] between two lines.
struct Reader {
    doc: Document,
    errors: Vec<ParseError>,
    /// The keys of the section being read, with the line each was set on.
    keys: HashMap<Key, usize>,
    open: Option<Open>,
    /// The blank and comment lines read since the open entry's last line, kept as trivia of its
    /// section until an indented line makes them its own (blank lines in values only).
    pending: usize,
}

impl Reader {
    /// Reads one line (`whole` with its ending, `raw` without): blank, comment, continuation,
    /// section header or entry.
    fn line(&mut self, number: usize, whole: &str, raw: &str) {
        let trimmed = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        let line = Line {
            number,
            whole,
            trimmed,
        };
        if trimmed.is_empty() {
            self.blank(whole);
        } else if self.doc.dialect.is_comment(trimmed) {
            self.comment(whole);
        } else if !self.continuation(line, indent) {
            self.open = None;
            self.pending = 0;
            if trimmed.starts_with('[') {
                self.header(line);
            } else {
                self.entry(line, raw, indent);
            }
        }
    }

    /// A blank line: the end of the open value, unless the dialect lets values hold blank
    /// lines (then it waits in `pending`).
    fn blank(&mut self, whole: &str) {
        if self.doc.dialect.blank_lines_in_values && self.open.is_some() {
            self.pending += 1;
        } else {
            self.open = None;
        }
        self.doc.push_trivia(whole);
    }

    /// A comment line. One inside a multi-line value is skipped by configparser; it is kept
    /// with the entry so that rewriting the entry keeps it too.
    fn comment(&mut self, whole: &str) {
        let pending = self.pending;
        match self
            .open
            .and_then(|o| self.doc.entry_mut(o.section, o.item))
        {
            Some(_) if pending > 0 => {
                self.pending += 1;
                self.doc.push_trivia(whole);
            }
            Some(entry) => entry
                .raw
                .get_or_insert_with(Vec::new)
                .push(whole.to_owned()),
            None => self.doc.push_trivia(whole),
        }
    }

    /// Whether the line, indented deeper than the open entry's key, continues its value (then
    /// the entry takes it, with the pending lines before it).
    fn continuation(&mut self, line: Line<'_>, indent: usize) -> bool {
        let Some(open) = self.open.filter(|o| indent > o.indent) else {
            return false;
        };
        let between = self.doc.take_trivia(open.section, self.pending);
        let Some(entry) = self.doc.entry_mut(open.section, open.item) else {
            return false;
        };
        let blanks = between.iter().filter(|l| l.trim().is_empty()).count();
        let raw = entry.raw.get_or_insert_with(Vec::new);
        raw.extend(between);
        raw.push(line.whole.to_owned());
        if !entry.value.is_empty() {
            entry.value.push('\n');
            entry.value.extend(std::iter::repeat_n('\n', blanks));
        }
        entry.value.push_str(line.trimmed);
        self.pending = 0;
        true
    }

    /// Reports a line that does not parse, and keeps it as it is.
    fn reject(&mut self, line: Line<'_>, kind: ParseErrorKind) {
        self.errors.push(ParseError {
            line: line.number,
            kind,
        });
        self.doc.push_trivia(line.whole);
    }

    /// A `[section]` line: a new section (a second one of a name is reported, and kept).
    fn header(&mut self, line: Line<'_>) {
        let Some(name) = parse_header(line.trimmed, self.doc.dialect) else {
            let kind = ParseErrorKind::InvalidSectionHeader(line.trimmed.to_owned());
            return self.reject(line, kind);
        };
        let doc = &mut self.doc;
        match doc.by_name.get(&name) {
            Some(&first) => self.errors.push(ParseError {
                line: line.number,
                kind: ParseErrorKind::DuplicateSection {
                    name: name.clone(),
                    first: doc.sections.get(first).map_or(0, |s| s.line),
                },
            }),
            None => {
                doc.by_name.insert(name.clone(), doc.sections.len());
            }
        }
        self.keys.clear();
        doc.sections.push(Section {
            name,
            line: line.number,
            header: line.whole.to_owned(),
            items: Vec::new(),
        });
    }

    /// A `key = value` line (`raw` without its ending, `indent` its leading blanks): an entry
    /// of the last section, or a problem.
    fn entry(&mut self, line: Line<'_>, raw: &str, indent: usize) {
        let Some(key_text) = line.trimmed.split_once(self.doc.dialect.delimiters) else {
            let kind = ParseErrorKind::MissingEquals(line.trimmed.to_owned());
            return self.reject(line, kind);
        };
        let Some(key) = self.key(line, key_text.0) else {
            return;
        };
        let section_index = self.doc.sections.len().saturating_sub(1);
        let Some(section) = self.doc.sections.last_mut() else {
            return;
        };
        let key_indent = raw
            .split_at_checked(indent)
            .map_or("", |(blanks, _)| blanks);
        self.keys.insert(key.clone(), line.number);
        section.items.push(Item::Entry(Entry {
            key,
            value: key_text.1.trim().to_owned(),
            line: line.number,
            raw: Some(vec![line.whole.to_owned()]),
            indent: key_indent.to_owned(),
            comments: Vec::new(),
        }));
        self.open = Some(Open {
            section: section_index,
            item: section.items.len() - 1,
            indent,
        });
    }

    /// The key of an entry line, or `None` once its problem is reported: no section yet, an
    /// empty key, a malformed variant, a key the section already has.
    fn key(&mut self, line: Line<'_>, key_text: &str) -> Option<Key> {
        let Some(section) = self.doc.sections.last() else {
            let kind = ParseErrorKind::MissingSectionHeader(line.trimmed.to_owned());
            self.reject(line, kind);
            return None;
        };
        let problem = if key_text.trim().is_empty() {
            Err(ParseErrorKind::EmptyKey(line.trimmed.to_owned()))
        } else {
            match self.doc.dialect.key(key_text) {
                None => Err(ParseErrorKind::InvalidVariant(key_text.trim().to_owned())),
                Some(key) => match self.keys.get(&key) {
                    Some(&first) => Err(ParseErrorKind::DuplicateKey {
                        section: section.name.clone(),
                        key: key.to_string(),
                        first,
                    }),
                    None => Ok(key),
                },
            }
        };
        problem.map_err(|kind| self.reject(line, kind)).ok()
    }
}

/// `key = value` with its continuation lines (four blanks deeper), each ending with `newline`.
fn format_entry(entry: &Entry, newline: &str) -> String {
    let Entry {
        key, value, indent, ..
    } = entry;
    let mut out = format!("{indent}{key} =");
    for (i, (_, line)) in split_lines(value).enumerate() {
        if i == 0 {
            if !line.is_empty() {
                out.push(' ');
                out.push_str(line);
            }
        } else {
            out.push_str(newline);
            out.push_str(indent);
            out.push_str("    ");
            out.push_str(line);
        }
    }
    out.push_str(newline);
    out
}

/// `[name]`, optionally followed by a comment, as configparser's `\[(?P<header>.+)\]`.
fn parse_header(trimmed: &str, dialect: Dialect) -> Option<String> {
    let (name, after) = trimmed.strip_prefix('[')?.rsplit_once(']')?;
    let after = after.trim();
    if !(after.is_empty() || dialect.is_comment(after)) {
        return None;
    }
    let name = name.trim();
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

    /// Issue 14: every input comes back byte for byte, whatever its line endings, byte order
    /// mark, final newline, blanks or comments.
    #[test]
    fn round_trips_every_shape_byte_for_byte() {
        let crlf = SAMPLE.replace('\n', "\r\n");
        let cr = SAMPLE.replace('\n', "\r");
        let inputs = [
            crlf.as_str(),
            cr.as_str(),
            "\u{feff}[general]\r\n_version = 1\r\n",
            "\u{feff}",
            "[a]\r\nx=1",
            "[a]\nx = 1\r\ny = 2\rz = 3\n\r\n",
            "\t[a]\t# c\n\tx\t=\t1\t\n\t\tcont\t\n   \n#\n",
            "[a]\nx = 1\n  # inside\n  more\r\n\r\n# after\r\n",
            "\n\n\r\n",
            "no section\r\n[\r\n= v\r\nk[ = 1\r\nx=1\r\nx=2\r\n",
            "[é]\nclé[DÉV] = ünï\u{2028}côdé\n",
            "[a]\nx = 1\r\n\r\n\r\n",
            "",
        ];
        for input in inputs {
            let (doc, _) = Document::parse(input);
            assert_eq!(doc.to_text(), input, "{input:?}");
        }
        let (doc, errors) = Document::parse(&crlf);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.get("custom", "multi"), Some("first\nsecond"));
        assert_eq!(doc.get("general", "_version"), Some("1.2.3"));
        let (doc, errors) = Document::parse(&cr);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.get("custom", "foo[DEV]"), Some("dev bar"));
        let (doc, errors) = Document::parse("\u{feff}[general]\r\n_version = 1\r\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.get("general", "_version"), Some("1"));
    }

    /// Issue 14: an edit rewrites only the edited lines, in the file's line ending.
    #[test]
    fn edits_keep_the_other_bytes_and_the_line_ending() {
        let crlf = SAMPLE.replace('\n', "\r\n");
        let (mut doc, _) = Document::parse(&crlf);
        doc.set("custom", "foo", "changed");
        doc.set("custom", "new", "one\ntwo");
        doc.set("extra_daemon_x", "numprocesses", "2");
        let expected = crlf
            .replace("foo = bar\r\n", "foo = changed\r\n")
            .replace("    second\r\n", "    second\r\nnew = one\r\n    two\r\n")
            + "\r\n[extra_daemon_x]\r\nnumprocesses = 2\r\n";
        assert_eq!(doc.to_text(), expected);
        assert!(doc.remove("custom", "multi"));
        let removed = expected.replace("multi = first\r\n    second\r\n", "");
        assert_eq!(doc.to_text(), removed);

        let (mut doc, _) = Document::parse("\u{feff}[a]\rx = 1\ry = 2");
        doc.set("a", "y", "3");
        assert_eq!(doc.to_text(), "\u{feff}[a]\rx = 1\ry = 3");
        doc.set("a", "z", "4");
        assert_eq!(doc.to_text(), "\u{feff}[a]\rx = 1\ry = 3\rz = 4");
        assert!(doc.remove("a", "z"));
        assert!(doc.remove("a", "y"));
        assert_eq!(doc.to_text(), "\u{feff}[a]\rx = 1");

        let mut empty = Document::default();
        empty.set("a", "x", "1");
        assert_eq!(empty.to_text(), "[a]\nx = 1\n");
    }

    /// Issue 14 (found by the fuzz target): an edit does not change what the lines around it
    /// mean, and loses no comment.
    #[test]
    fn edits_keep_the_meaning_of_the_other_lines() {
        // An indented key written afresh keeps its indent, or the next key would continue it.
        let (mut doc, _) = Document::parse("[a]\n  x = 1\n  y = 2\n");
        doc.set("a", "x", "one\ntwo");
        assert_eq!(doc.to_text(), "[a]\n  x = one\n      two\n  y = 2\n");
        doc.set("a", "z", "3");
        assert_eq!(
            doc.to_text(),
            "[a]\n  x = one\n      two\n  y = 2\n  z = 3\n"
        );
        let (again, errors) = Document::parse(&doc.to_text());
        assert!(errors.is_empty());
        assert_eq!(again.get("a", "y"), Some("2"));
        // A new key before an indented line that is not a continuation: a blank line between.
        let (mut doc, errors) = Document::parse("[a]\n# c\n  junk\n");
        assert_eq!(errors.len(), 1);
        doc.set("a", "new", "1");
        assert_eq!(doc.to_text(), "[a]\nnew = 1\n\n# c\n  junk\n");
        let (again, _) = Document::parse(&doc.to_text());
        assert_eq!(again.get("a", "new"), Some("1"));
        // The comments among a value's lines stay when it is written afresh.
        let (mut doc, _) = Document::parse("[a]\nx = 1\n# about y\ny = 2\n");
        doc.set("a", "x", "changed");
        assert_eq!(doc.to_text(), "[a]\nx = changed\n# about y\ny = 2\n");
    }

    /// Issue 14: a file with many sections and keys is read in linear time (a section or a
    /// key set twice is found by hashing, not by a scan of those before).
    #[test]
    fn many_sections_and_keys_parse_quickly() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("[s{i}]\nk = {i}\n"));
        }
        text.push_str("[big]\n");
        for i in 0..20_000 {
            text.push_str(&format!("k{i} = {i}\n"));
        }
        text.push_str("[s7]\nk19999 = dup\n[big]\n");
        let (doc, errors) = Document::parse(&text);
        assert_eq!(doc.to_text(), text);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(matches!(
            errors[0].kind,
            ParseErrorKind::DuplicateSection { first: 15, .. }
        ));
        assert_eq!(doc.get("s19999", "k"), Some("19999"));
        assert_eq!(doc.get("big", "k123"), Some("123"));
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

    /// pip.conf's dialect: `:` and `=`, `;` and `#` comments, keys lowercased, no variants,
    /// a value continued after blank lines and comments; still byte for byte.
    #[test]
    fn pip_conf_dialect() {
        let text = "; c\n[global] ; c\nIndex-URL: a:b = c\nlist =\n  one\n\n  ; c\n\n  two\n\nk[x] = 1\nnext = 2\n\n# end\n";
        let (doc, errors) = Document::parse_with(text, Dialect::PIP_CONF);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.to_text(), text);
        assert_eq!(doc.get("global", "index-url"), Some("a:b = c"));
        assert_eq!(doc.get("global", "list"), Some("one\n\n\ntwo"));
        assert_eq!(doc.get("global", "k[x]"), Some("1"));
        assert_eq!(doc.get("global", "next"), Some("2"));
        let mut edited = doc.clone();
        edited.set("global", "list", "three");
        assert_eq!(
            edited.to_text(),
            text.replace("list =\n  one\n\n  ; c\n\n  two\n", "list = three\n  ; c\n")
        );
        // The same text as a `config.ini`: `;` is no comment, a blank line ends a value.
        let text = text.replace("[global] ; c", "[global]");
        let (doc, errors) = Document::parse(&text);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 7, 9], "{errors:?}");
        assert_eq!(doc.get("global", "Index-URL: a:b"), Some("c"));
        assert_eq!(doc.get("global", "list"), Some("one"));
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
