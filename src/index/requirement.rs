//! PEP 508 requirement lines (a requirements-file line, a `Requires-Dist`, a build
//! requirement), parsed with the inputs that panic `pep508_rs` refused first. It lives in
//! `index` because core metadata needs it; `lock::requirements` uses it from here.

use std::str::FromStr;

use pep508_rs::Requirement;

/// Why a PEP 508 requirement does not parse: the message, and the character it starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRequirement {
    pub(crate) message: String,
    pub(crate) start: usize,
}

impl std::fmt::Display for BadRequirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether `c` may be inside a PEP 508 name (or extra).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

/// A PEP 508 requirement (a requirements line, a `Requires-Dist`, a build requirement).
///
/// `pep508_rs` 0.9 panics on some inputs, which are refused here first: a name or an extra
/// that ends with `.`, `-` or `_` before some other character (`a-{`, `a[x-]`: "validation
/// should match PEP 508 parsing"), and a character that is not ASCII after a marker
/// (`a; extra == 'x'é`: a byte index inside a character).
pub(crate) fn parse_requirement(text: &str) -> Result<Requirement, BadRequirement> {
    let bad = |start: usize, message: &str| BadRequirement {
        message: message.to_owned(),
        start,
    };
    let chars: Vec<char> = text.chars().collect();
    // Its markers' parser takes a count of characters for one of bytes (it slices inside a
    // character after a marker): PEP 508 is ASCII but for quoted strings, which no real
    // requirement fills with anything else.
    if let Some(at) = chars.iter().position(|c| !c.is_ascii()) {
        let c = chars.get(at).copied().unwrap_or_default();
        return Err(BadRequirement {
            message: format!(
                "a requirement is ASCII text (PEP 508), found `{c}` ({:#x})",
                u32::from(c)
            ),
            start: at,
        });
    }
    let mut i = chars.iter().take_while(|c| c.is_whitespace()).count();
    let name_start = i;
    while chars.get(i).is_some_and(|c| is_name_char(*c)) {
        i += 1;
    }
    if i > name_start && chars.get(i - 1).is_some_and(|c| !c.is_ascii_alphanumeric()) {
        return Err(bad(
            i - 1,
            "a package name must end with a letter or a digit",
        ));
    }
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    if chars.get(i) == Some(&'[') {
        check_extras(&chars, i)?;
    }
    Requirement::from_str(text).map_err(|e| BadRequirement {
        message: e.message.to_string(),
        start: e.start,
    })
}

/// Refuses an extra (of the `[...]` that opens at `open`) whose name ends with `.`, `-` or
/// `_`, which `pep508_rs` would panic on; an unclosed `[` is left to `pep508_rs`.
fn check_extras(chars: &[char], open: usize) -> Result<(), BadRequirement> {
    let Some(close) = chars
        .iter()
        .skip(open)
        .position(|c| *c == ']')
        .map(|p| p + open)
    else {
        return Ok(());
    };
    let mut item_start = open + 1;
    for at in open + 1..=close {
        if !chars.get(at).is_some_and(|c| *c == ',' || *c == ']') {
            continue;
        }
        let item: String = chars
            .get(item_start..at)
            .unwrap_or_default()
            .iter()
            .collect();
        let item = item.trim();
        let first_ok = item
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let last_bad = item
            .chars()
            .last()
            .is_some_and(|c| !c.is_ascii_alphanumeric());
        if first_ok && item.chars().all(is_name_char) && last_bad {
            return Err(BadRequirement {
                message: "an extra's name must end with a letter or a digit".to_owned(),
                start: item_start,
            });
        }
        item_start = at + 1;
    }
    Ok(())
}
