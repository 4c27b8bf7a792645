//! Fuzzing on the stable toolchain: each hostile-input reader is a target, driven by proptest
//! with inputs shaped like the real thing (and then damaged), and replayed from
//! `tests/fuzz-regressions/TARGET/`, where `cargo xtask fuzz` saves every input that ever broke
//! it.
//!
//! A target is a strategy that makes input bytes and a `run` that feeds them to the reader and
//! returns its verdict as text. Its invariants are asserted inside `run` (nothing written
//! outside its target dir, a round trip that keeps every byte); the driver adds the two every
//! target shares: `run` never panics, and the same input gives the same verdict.
//!
//! Environment, for `cargo xtask fuzz`: `MFPLUG_FUZZ_CASES` (cases per target, default
//! [`DEFAULT_CASES`]), `MFPLUG_FUZZ_SECONDS` (keep going in batches until this much time has
//! passed), `MFPLUG_FUZZ_SEED` (a number; default: fixed, so that CI is repeatable),
//! `MFPLUG_FUZZ_SAVE=1` (write a failing input under `tests/fuzz-regressions/TARGET/`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use sha2::Digest;

/// The two tests of a target module: its saved inputs replayed, and a fuzzing pass.
macro_rules! fuzz_tests {
    () => {
        #[test]
        fn replay() {
            super::replay(&TARGET);
        }

        #[test]
        fn fuzz() {
            super::drive(&TARGET);
        }
    };
}

mod archive;
mod config;
mod legacy;
mod lockfile;
mod requirements;

/// Cases per target in the suite's bounded pass: five targets, a few thousand cases in all.
pub const DEFAULT_CASES: u32 = 600;

/// One reader under test.
pub struct Target {
    pub name: &'static str,
    /// Makes the input bytes.
    pub strategy: fn() -> BoxedStrategy<Vec<u8>>,
    /// Feeds them to the reader; returns its verdict. Panics (or fails an assert) when an
    /// invariant of the target breaks.
    pub run: fn(&[u8]) -> String,
}

fn env_number(var: &str) -> Option<u64> {
    let text = std::env::var(var).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={text:?} is not a whole number")),
    )
}

pub fn regressions_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(name)
}

/// The shared invariants on one input: no panic, and one verdict however often it is read.
fn check_once(target: &Target, input: &[u8]) -> Result<String, TestCaseError> {
    let first = std::panic::catch_unwind(|| (target.run)(input));
    let first = match first {
        Ok(verdict) => verdict,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            return Err(TestCaseError::fail(format!("panicked: {message}")));
        }
    };
    let second = (target.run)(input);
    if first != second {
        return Err(TestCaseError::fail(format!(
            "two readings disagree:\n  first:  {first}\n  second: {second}"
        )));
    }
    Ok(first)
}

/// Replays every saved input of the target.
pub fn replay(target: &Target) {
    let dir = regressions_dir(target.name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("regression entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let input = std::fs::read(&path).expect("read a saved fuzz input");
        if let Err(e) = check_once(target, &input) {
            panic!(
                "{}: saved input `{}` fails again: {e}",
                target.name,
                path.display()
            );
        }
    }
}

/// Runs the target's strategy for the configured cases (and time), shrinking a failure to a
/// small input, which is printed and, with `MFPLUG_FUZZ_SAVE=1`, saved for the replay.
pub fn drive(target: &Target) {
    let cases = env_number("MFPLUG_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as u32);
    let deadline =
        env_number("MFPLUG_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let base_seed = env_number("MFPLUG_FUZZ_SEED").unwrap_or(0x6d66_706c_7567);
    let mut batch = 0u64;
    loop {
        let seed = base_seed.wrapping_add(batch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8..16].copy_from_slice(&target.name.len().to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2048,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&(target.strategy)(), |input| {
            check_once(target, &input).map(drop)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Abort(reason)) => panic!("{}: fuzzing aborted: {reason}", target.name),
            Err(TestError::Fail(reason, input)) => fail(target, &reason.to_string(), &input),
        }
        batch += 1;
        match deadline {
            Some(deadline) if Instant::now() < deadline => continue,
            _ => break,
        }
    }
    eprintln!("{}: {} batches of {cases} cases passed", target.name, batch);
}

fn fail(target: &Target, reason: &str, input: &[u8]) -> ! {
    let digest = sha2::Sha256::digest(input);
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut saved = String::new();
    if std::env::var_os("MFPLUG_FUZZ_SAVE").is_some_and(|v| v == "1") {
        let dir = regressions_dir(target.name);
        std::fs::create_dir_all(&dir).expect("create the regressions dir");
        let path = dir.join(format!("{id}.bin"));
        std::fs::write(&path, input).expect("save the failing input");
        saved = format!("\nsaved as `{}`: the suite replays it", path.display());
    }
    let shown: String = input.iter().take(256).map(|b| format!("{b:02x}")).collect();
    panic!(
        "{}: {reason}\ninput ({} bytes, sha256 {id}…): {shown}{}{saved}",
        target.name,
        input.len(),
        if input.len() > 256 { "…" } else { "" }
    );
}

/// A package name: a real one, or one matching `pattern` (the requirements and lockfile
/// targets differ in the case they allow).
pub fn package_name(pattern: &'static str) -> BoxedStrategy<String> {
    use proptest::prelude::*;
    prop_oneof![
        prop::sample::select(vec![
            "requests",
            "Foo.Bar",
            "foo_bar",
            "a",
            "x-y-z",
            "Django",
            "zope.interface",
            "idna",
        ])
        .prop_map(str::to_owned),
        pattern,
    ]
    .boxed()
}
