//! What mfplug says to a person: errors with their causes and hints, warnings, status lines.
//!
//! Data goes to stdout (through [`out`]), everything else to stderr, readable without colour;
//! colour follows `--color` and `NO_COLOR` through `anstream`. `-q` silences status lines and
//! warnings, `-v` adds details; errors are always printed.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicI8, Ordering};

use anstyle::{AnsiColor, Style};

use crate::config::{Problem, Severity};

static VERBOSITY: AtomicI8 = AtomicI8::new(0);

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();
const GOOD: Style = AnsiColor::Green.on_default().bold();

/// Sets how much is said: negative is quiet, positive verbose.
pub(crate) fn set_verbosity(level: i8) {
    VERBOSITY.store(level, Ordering::Relaxed);
}

pub(crate) fn verbosity() -> i8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// An error a user can act on: what went wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct UserError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// An error with a hint, to return from a command.
pub(crate) fn error_with_hint(
    message: impl Into<String>,
    hint: impl Into<String>,
) -> anyhow::Error {
    UserError {
        message: message.into(),
        hint: Some(hint.into()),
    }
    .into()
}

/// Prints `error: ...`, its `Caused by:` lines and the first hint found in the chain; a
/// configuration that does not load ([`crate::config::Invalid`]) has its problems printed
/// first.
pub fn print_error(err: &anyhow::Error) {
    if let Some(invalid) = err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::config::Invalid>())
    {
        for problem in &invalid.problems {
            print_problem(problem);
        }
    }
    let mut stderr = anstream::stderr().lock();
    let _ = writeln!(stderr, "{ERROR}error{ERROR:#}: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  Caused by: {cause}");
    }
    if let Some(hint) = hint(err) {
        let _ = writeln!(stderr, "\n{HINT}hint{HINT:#}: {hint}");
    }
}

/// What to do about one typed error of a stage, or `None` when it has nothing to say.
pub(crate) type Hinter = fn(&(dyn std::error::Error + 'static)) -> Option<String>;

/// The hints of the stages' typed errors: the commands decide the words (`commands::hint`),
/// set once when a command line starts.
static HINTER: std::sync::OnceLock<Hinter> = std::sync::OnceLock::new();

/// Sets where the hints of typed errors come from (the first call wins).
pub(crate) fn set_hinter(hinter: Hinter) {
    let _ = HINTER.set(hinter);
}

/// The first hint of the chain: a [`UserError`]'s, or the one the commands give a typed error.
fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(user) = e.downcast_ref::<UserError>() {
            return user.hint.clone();
        }
        HINTER.get().and_then(|hinter| hinter(e))
    })
}

/// Prints one problem of a plugin dir, with its hint indented below it.
pub(crate) fn print_problem(problem: &Problem) {
    let shown = match problem.severity {
        Severity::Error => true,
        Severity::Warning => verbosity() >= 0,
        Severity::Info => verbosity() > 0,
    };
    if !shown {
        return;
    }
    let mut stderr = anstream::stderr().lock();
    let (style, word) = match problem.severity {
        Severity::Error => (ERROR, "error"),
        Severity::Warning => (WARNING, "warning"),
        Severity::Info => (HINT, "note"),
    };
    let _ = writeln!(stderr, "{style}{word}{style:#}: {problem}");
    if let Some(hint) = &problem.hint {
        let _ = writeln!(stderr, "  {HINT}hint{HINT:#}: {hint}");
    }
}

/// A warning, unless `-q`.
pub(crate) fn warn(message: impl Display) {
    if verbosity() >= 0 {
        let _ = writeln!(anstream::stderr(), "{WARNING}warning{WARNING:#}: {message}");
    }
}

/// A status line on stderr, unless `-q`.
pub(crate) fn status(verb: &str, message: impl Display) {
    if verbosity() >= 0 {
        let _ = writeln!(anstream::stderr(), "{GOOD}{verb:>12}{GOOD:#} {message}");
    }
}

/// A detail, with `-v` only.
pub(crate) fn verbose(message: impl Display) {
    if verbosity() > 0 {
        let _ = writeln!(anstream::stderr(), "{message}");
    }
}

/// Plain text on stderr, unless `-q` (a template's next steps, ...).
pub(crate) fn note(message: impl Display) {
    if verbosity() >= 0 {
        let _ = writeln!(anstream::stderr(), "{message}");
    }
}

/// Data on stdout. A closed pipe surfaces as an `io::Error` that `main` turns into exit 0.
pub(crate) fn out(text: impl Display) -> std::io::Result<()> {
    let mut stdout = anstream::stdout().lock();
    writeln!(stdout, "{text}")
}

/// Bytes on stdout as they are (a completion script, a man page).
pub(crate) fn out_bytes(bytes: &[u8]) -> std::io::Result<()> {
    std::io::stdout().lock().write_all(bytes)
}

/// A value as pretty JSON on stdout.
pub(crate) fn out_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    out(text)?;
    Ok(())
}

/// The live status line of `mfplug develop`: kept at the bottom of a terminal's stderr, cleared
/// before any other line is written through [`with_live_cleared`] or [`child_line`], then drawn
/// again. `None` when there is none (stderr is not a terminal, or `-q`).
static LIVE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Erases the status line from the start of the current terminal line. Written to the raw
/// stderr: it is not colour, and `anstream` would strip it with `NO_COLOR`.
const CLEAR_LINE: &str = "\r\x1b[2K";

fn live_lock() -> std::sync::MutexGuard<'static, Option<String>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets (or, with `None`, removes) the live status line, and draws it.
pub(crate) fn live_status(text: Option<String>) {
    let mut live = live_lock();
    let mut stderr = std::io::stderr().lock();
    if live.is_some() {
        let _ = write!(stderr, "{CLEAR_LINE}");
    }
    if let Some(text) = &text {
        let _ = write!(stderr, "{text}");
    }
    let _ = stderr.flush();
    *live = text;
}

/// Runs `print` (which writes whole lines to the terminal) with the live status line out of
/// the way, then draws it again.
pub(crate) fn with_live_cleared<T>(print: impl FnOnce() -> T) -> T {
    let live = live_lock();
    if live.is_some() {
        let _ = write!(std::io::stderr(), "{CLEAR_LINE}");
    }
    let result = print();
    if let Some(text) = live.as_ref() {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{text}");
        let _ = stderr.flush();
    }
    result
}

/// One line of a child process's output (a daemon's), after its `prefix`: its stdout on our
/// stdout, its stderr on our stderr. Shown even with `-q`: it is the child's, not ours.
pub(crate) fn child_line(prefix: &str, line: &str, to_stderr: bool) {
    with_live_cleared(|| {
        if to_stderr {
            let _ = writeln!(anstream::stderr(), "{prefix} {line}");
        } else {
            let mut stdout = anstream::stdout().lock();
            let _ = writeln!(stdout, "{prefix} {line}");
            let _ = stdout.flush();
        }
    });
}

/// How a stage reports a long step (files packed, files fetched, requests made) without
/// knowing how it is shown: the command hands it a [`Bar`] on a terminal, [`NoProgress`]
/// elsewhere and in tests.
#[allow(
    dead_code,
    reason = "the stages move to it one by one (issue 15); remove when all do"
)]
pub(crate) trait Progress: Sync {
    /// The total is now known: a count becomes a bar.
    fn set_total(&self, total: u64);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// What is being done now, beside the count.
    fn message(&self, text: &str);
    /// The step is over: the bar goes away.
    fn finish(&self);
}

/// Progress nobody sees.
pub(crate) struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// A progress line on a terminal's stderr, `LABEL [=====>   ] 3/10 message`: a spinner and a
/// count until the total is known. Hidden when stderr is not a terminal or with `-q`.
pub(crate) struct Bar(indicatif::ProgressBar, Option<String>);

impl Bar {
    /// A bar labelled `label` (`Fetching`), of `total` units if known.
    pub(crate) fn new(label: &str, total: Option<u64>) -> Bar {
        if !Bar::visible() {
            return Bar(indicatif::ProgressBar::hidden(), None);
        }
        let bar = match total {
            Some(total) => indicatif::ProgressBar::new(total),
            None => indicatif::ProgressBar::no_length(),
        };
        bar.set_prefix(label.to_owned());
        Bar::style(&bar, total.is_some());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Bar(bar, None)
    }

    /// Whether a bar is drawn: on a terminal's stderr, unless `-q`.
    fn visible() -> bool {
        use std::io::IsTerminal;
        verbosity() >= 0 && std::io::stderr().is_terminal()
    }

    /// A bar labelled `label` that stays out of sight until the stage says how much there is
    /// to do ([`Progress::set_total`]): for a step that may have nothing to do (`Fetching`
    /// the files the vendor dir lacks).
    pub(crate) fn when_counted(label: &str) -> Bar {
        Bar(indicatif::ProgressBar::hidden(), Some(label.to_owned()))
    }

    fn style(bar: &indicatif::ProgressBar, counted: bool) {
        let template = if counted {
            "{prefix:>12.green.bold} [{bar:30}] {pos}/{len} {msg}"
        } else {
            "{prefix:>12.green.bold} {spinner} {pos} {msg} ({elapsed})"
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .map(|style| style.progress_chars("=> "))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        if let Some(label) = &self.1 {
            if Bar::visible() {
                // Styled and counted before it is drawn at all.
                self.0.set_prefix(label.clone());
                Bar::style(&self.0, true);
                self.0.set_length(total);
                self.0
                    .set_draw_target(indicatif::ProgressDrawTarget::stderr());
                self.0
                    .enable_steady_tick(std::time::Duration::from_millis(100));
            }
            return;
        }
        if !self.0.is_hidden() {
            Bar::style(&self.0, true);
            self.0.set_length(total);
        }
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_owned());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// `2026-11-25 10:59:25 UTC` from seconds since 1970 (civil-from-days, no time zone data).
pub(crate) fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::format_time;

    #[test]
    fn times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(946_684_800), "2000-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_795_604_365), "2026-11-25 10:59:25 UTC");
    }
}
