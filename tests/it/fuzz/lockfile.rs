//! Fuzz target `lockfile`: placeholder input (arbitrary bytes) until the reader's own strategy
//! lands; see `super` for the driver.

use proptest::prelude::*;

use super::Target;

pub const TARGET: Target = Target {
    name: "lockfile",
    strategy: || proptest::collection::vec(any::<u8>(), 0..512).boxed(),
    run,
};

fn run(input: &[u8]) -> String {
    format!("{} bytes", input.len())
}

fuzz_tests!();
