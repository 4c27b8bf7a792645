//! The input of a lock, `requirements-to-freeze.txt`, read as pip reads a requirements file:
//! PEP 508 lines, comments, `\` continuations, `-r`/`-c` includes, index options and `--pre`.
//! Every file read is kept with its bytes, so that the lock records the hash of them all.

use std::path::{Path, PathBuf};

use pep508_rs::Requirement;

use crate::index::requirement::parse_requirement;

#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("`{}` includes itself through `-r`/`-c`", path.display())]
    Cycle { path: PathBuf },
    #[error("`{}` is not a regular file, or is larger than {MAX_SIZE} bytes", path.display())]
    TooBig { path: PathBuf },
    #[error("`{}` makes more than {MAX_FILES} reads of included files (`-r`/`-c`)", path.display())]
    TooManyIncludes { path: PathBuf },
}

/// The most a requirements file may weigh (the largest real ones are a few KiB).
pub(crate) const MAX_SIZE: u64 = 16 * 1024 * 1024;
/// The most files one read may go through, counting a file included twice twice (ten files
/// that each include the next one twice would otherwise read one file a thousand times).
pub(crate) const MAX_FILES: usize = 256;

/// A requirement and the line it comes from.
#[derive(Debug, Clone)]
pub struct Located {
    pub requirement: Requirement,
    /// `file:line`, relative to the plugin dir.
    pub origin: String,
}

/// Everything the requirements files say.
#[derive(Debug, Default)]
pub struct Input {
    pub requirements: Vec<Located>,
    pub constraints: Vec<Located>,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// Local dirs, or URLs of pages of links.
    pub find_links: Vec<PathBuf>,
    /// `--no-index`: only the find-links.
    pub no_index: bool,
    pub pre: bool,
    /// The files read, in order, with their name relative to the first file's dir.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Input {
    /// The sha256 of every file read (name and content), which the lock records.
    pub fn sha256(&self) -> String {
        let mut all = Vec::new();
        for (name, bytes) in &self.files {
            all.extend_from_slice(name.as_bytes());
            all.push(0);
            all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            all.extend_from_slice(bytes);
        }
        crate::fsx::sha256_hex(&all)
    }
}

/// Reads `path` and the files it includes.
pub fn read(path: &Path) -> Result<Input, RequirementsError> {
    let mut input = Input::default();
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    read_into(path, &base, false, &mut input, &mut Vec::new())?;
    Ok(input)
}

/// The file being read: where it is, how it is shown, and whether its lines constrain.
struct Source<'a> {
    path: &'a Path,
    /// The dir its includes and find-links are relative to.
    dir: PathBuf,
    /// Its name relative to the first file's dir, for origins.
    shown: String,
    /// Read through `-c`: its requirements are constraints.
    constraint: bool,
}

impl Source<'_> {
    /// A `Malformed` error at `line:column` of this file.
    fn malformed(&self, line: usize, column: usize, message: String) -> RequirementsError {
        RequirementsError::Malformed {
            path: self.path.to_path_buf(),
            line,
            column,
            message,
        }
    }
}

/// Reads one file into `input` (recursing into its includes); `stack` holds the files
/// being read, to refuse a cycle.
fn read_into(
    path: &Path,
    base: &Path,
    constraint: bool,
    input: &mut Input,
    stack: &mut Vec<PathBuf>,
) -> Result<(), RequirementsError> {
    let (source, text) = enter(path, base, constraint, input, stack)?;
    for (number, line) in logical_lines(&text) {
        let line = expand_env(&line, &|name| std::env::var(name).ok());
        let line = strip_comment(&line);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let column = line.len() - line.trim_start().len() + 1;
        if trimmed.starts_with('-') {
            read_option(&source, (number, column), trimmed, base, input, stack)?;
        } else {
            read_requirement(&source, (number, column), trimmed, input)?;
        }
    }
    stack.pop();
    Ok(())
}

/// Checks that `path` may be read (no cycle, not too many files), reads it, records its
/// bytes in `input.files`, pushes it on `stack`, and returns it with its text (without a
/// UTF-8 byte order mark, as some editors write).
fn enter<'a>(
    path: &'a Path,
    base: &Path,
    constraint: bool,
    input: &mut Input,
    stack: &mut Vec<PathBuf>,
) -> Result<(Source<'a>, String), RequirementsError> {
    let canonical = fs_err::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canonical) {
        return Err(RequirementsError::Cycle {
            path: path.to_path_buf(),
        });
    }
    if input.files.len() >= MAX_FILES {
        return Err(RequirementsError::TooManyIncludes {
            path: path.to_path_buf(),
        });
    }
    let bytes = read_bounded(path)?;
    let shown = path
        .strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = String::from_utf8_lossy(&bytes)
        .trim_start_matches('\u{feff}')
        .to_owned();
    input.files.push((shown.clone(), bytes));
    stack.push(canonical);
    let source = Source {
        path,
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        shown,
        constraint,
    };
    Ok((source, text))
}

/// The logical lines of `text` (`\` continuations joined), each with the number of the
/// line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(stripped) = raw.strip_suffix('\\') {
            acc.push_str(stripped);
            pending = Some((start, acc));
        } else {
            acc.push_str(raw);
            logical.push((start, acc));
        }
    }
    if let Some(p) = pending {
        logical.push(p);
    }
    logical
}

/// `line` without its comment: a `#` that starts the line or follows whitespace.
fn strip_comment(line: &str) -> &str {
    line.match_indices('#')
        .find_map(|(i, _)| {
            let before = line.get(..i)?;
            (i == 0 || before.ends_with(char::is_whitespace)).then_some(before)
        })
        .unwrap_or(line)
}

/// Applies an option line (`-r`, `-c`, index options, `--pre`, ...) at `(line, column)`.
fn read_option(
    source: &Source<'_>,
    (number, column): (usize, usize),
    trimmed: &str,
    base: &Path,
    input: &mut Input,
    stack: &mut Vec<PathBuf>,
) -> Result<(), RequirementsError> {
    let (option, value) = split_option(trimmed);
    let need = |value: Option<&str>| {
        value
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| source.malformed(number, column, format!("`{option}` needs a value")))
    };
    match option {
        "-r" | "--requirement" => {
            let file = source.dir.join(need(value)?);
            read_into(&file, base, source.constraint, input, stack)?;
        }
        "-c" | "--constraint" => {
            let file = source.dir.join(need(value)?);
            read_into(&file, base, true, input, stack)?;
        }
        "-i" | "--index-url" => input.index_url = Some(need(value)?),
        "--extra-index-url" => input.extra_index_urls.push(need(value)?),
        "-f" | "--find-links" => {
            let value = need(value)?;
            let is_url = value.starts_with("http://") || value.starts_with("https://");
            input.find_links.push(if is_url {
                PathBuf::from(value)
            } else {
                source.dir.join(value)
            });
        }
        "--no-index" => input.no_index = true,
        "--pre" => input.pre = true,
        "--no-binary" | "--only-binary" | "--prefer-binary" | "--trusted-host" => {}
        "-e" | "--editable" => {
            return Err(source.malformed(
                number,
                column,
                "editable requirements cannot be locked: give a name and a version".to_owned(),
            ))
        }
        other => return Err(source.malformed(number, column, format!("unknown option `{other}`"))),
    }
    Ok(())
}

/// Parses a requirement line at `(line, column)` into the requirements or constraints.
fn read_requirement(
    source: &Source<'_>,
    (number, column): (usize, usize),
    trimmed: &str,
    input: &mut Input,
) -> Result<(), RequirementsError> {
    // Per-requirement options (`--hash=...`, `--config-settings ...`) do not change what
    // is resolved: the lock computes its own hashes.
    let trimmed = match trimmed.split_once(" --") {
        Some((requirement, _)) => requirement.trim_end(),
        None => trimmed,
    };
    let requirement = parse_requirement(trimmed).map_err(|e| {
        // `e.start` counts characters: the column is that many characters in.
        let chars = trimmed.chars().count();
        source.malformed(
            number,
            column + e.start.min(chars),
            format!("{} in `{trimmed}`", e.message),
        )
    })?;
    let located = Located {
        requirement,
        origin: format!("{}:{number}", source.shown),
    };
    if source.constraint {
        input.constraints.push(located);
    } else {
        input.requirements.push(located);
    }
    Ok(())
}

/// A regular file of at most [`MAX_SIZE`] bytes (not `/dev/zero`, not a fifo).
fn read_bounded(path: &Path) -> Result<Vec<u8>, RequirementsError> {
    use std::io::Read as _;
    let read_error = |source| RequirementsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() || meta.len() > MAX_SIZE {
        return Err(RequirementsError::TooBig {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(RequirementsError::TooBig {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// `${NAME}` replaced by the variable's value, as pip does (names of upper-case letters,
/// digits and `_`; an unset variable is left as it is). Credentials in an index URL come
/// this way.
fn expand_env(line: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some((before, after)) = rest.split_once("${") {
        out.push_str(before);
        let closed = after.split_once('}').filter(|(n, _)| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
        match closed.and_then(|(name, tail)| Some((env(name)?, tail))) {
            Some((value, tail)) => {
                out.push_str(&value);
                rest = tail;
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `--opt value`, `--opt=value`, `-o value` or `-ovalue`.
fn split_option(line: &str) -> (&str, Option<&str>) {
    // `-ovalue`: a one-letter option glued to its value (`-é` is no such thing: its second
    // byte does not end a character).
    let mut chars = line.chars();
    if let (Some('-'), Some(letter), Some(next)) = (chars.next(), chars.next(), chars.next()) {
        if letter != '-' && letter.is_ascii() && !next.is_whitespace() {
            if let Some((option, value)) = line.split_at_checked(2) {
                return (option, Some(value.trim()));
            }
        }
    }
    if let Some((opt, value)) = line.split_once('=') {
        if opt.starts_with("--") && !opt.contains(char::is_whitespace) {
            return (opt, Some(value.trim()));
        }
    }
    match line.split_once(char::is_whitespace) {
        Some((opt, value)) => (opt, Some(value.trim())),
        None => (line, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_syntax() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("req.txt"),
            "# comment\nfoo[bar]>=1.0 ; python_version >= '3' # trailing\n--index-url http://i/simple\n\
             baz \\\n  ==2.0 --hash=sha256:00\n-rmore.txt\n-c cons.txt\n--pre\n",
        )
        .unwrap();
        fs_err::write(dir.path().join("more.txt"), "qux\n").unwrap();
        fs_err::write(dir.path().join("cons.txt"), "qux<3\n").unwrap();
        let input = read(&dir.path().join("req.txt")).unwrap();
        let names: Vec<String> = input
            .requirements
            .iter()
            .map(|r| r.requirement.name.to_string())
            .collect();
        assert_eq!(names, ["foo", "baz", "qux"]);
        assert_eq!(input.constraints.len(), 1);
        assert_eq!(input.index_url.as_deref(), Some("http://i/simple"));
        assert!(input.pre);
        assert_eq!(input.files.len(), 3);
        assert_eq!(input.requirements[1].origin, "req.txt:4");
    }

    #[test]
    fn byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("req.txt"),
            "\u{feff}foo\r\nbar \\\r\n  >=1\r\n",
        )
        .unwrap();
        let input = read(&dir.path().join("req.txt")).unwrap();
        assert_eq!(input.requirements.len(), 2);
        assert_eq!(input.requirements[1].requirement.to_string(), "bar>=1");
    }

    #[test]
    fn environment_variables() {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(
            expand_env("-i https://${TOKEN}@h/simple", &env),
            "-i https://s3cret@h/simple"
        );
        assert_eq!(expand_env("a ${UNSET} b", &env), "a ${UNSET} b");
        assert_eq!(expand_env("${lower}", &env), "${lower}");
        assert_eq!(expand_env("x${", &env), "x${");
    }

    #[test]
    fn odd_options_and_unicode_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        for (text, wanted) in [
            ("-é\n", "unknown option `-é`"),
            ("-éa\n", "unknown option `-éa`"),
            ("--é=1\n", "unknown option `--é`"),
            ("-\n", "unknown option `-`"),
            ("-r\n", "`-r` needs a value"),
            ("é>=1\n", "req.txt:1:1"),
            ("foo >= é\n", "req.txt:1:"),
            ("${é} ${\n", "req.txt:1:"),
            ("#é\n-rmissing-é.txt\n", "missing-é.txt"),
            // pep508_rs panics on these; they are refused first.
            (
                "00-{x\n",
                "a package name must end with a letter or a digit",
            ),
            (
                "a_ [x]\n",
                "a package name must end with a letter or a digit",
            ),
            (
                "a[x-]\n",
                "an extra's name must end with a letter or a digit",
            ),
            (
                "a[ok, x. ]>=1\n",
                "an extra's name must end with a letter or a digit",
            ),
        ] {
            fs_err::write(dir.path().join("req.txt"), text).unwrap();
            let err = read(&dir.path().join("req.txt")).unwrap_err();
            let shown = format!("{err}: {:?}", std::error::Error::source(&err));
            assert!(shown.contains(wanted), "{text:?}: {shown}");
        }
    }

    #[test]
    fn devices_big_files_and_include_bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let req = dir.path().join("req.txt");
        fs_err::write(&req, "-r /dev/zero\n").unwrap();
        let err = read(&req).unwrap_err();
        assert!(err.to_string().contains("is not a regular file"), "{err}");
        // Each file includes the next one four times: 4^6 reads without the bound.
        for k in 0..6 {
            let next = format!("f{}.txt", k + 1);
            fs_err::write(
                dir.path().join(format!("f{k}.txt")),
                format!("-r {next}\n-r {next}\n-r {next}\n-r {next}\n"),
            )
            .unwrap();
        }
        fs_err::write(dir.path().join("f6.txt"), "a\n").unwrap();
        let err = read(&dir.path().join("f0.txt")).unwrap_err();
        assert!(err.to_string().contains("more than 256 reads"), "{err}");
        // Within the bounds, as before.
        fs_err::write(&req, "-r f5.txt\n").unwrap();
        assert_eq!(read(&req).unwrap().requirements.len(), 4);
    }

    #[test]
    fn malformed_line_has_a_position() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("req.txt"), "ok\n  foo >= \n").unwrap();
        let err = read(&dir.path().join("req.txt")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("req.txt:2:"), "{text}");
    }
}
