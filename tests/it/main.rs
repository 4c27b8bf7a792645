//! The integration suite: one binary, one module per command, each running the built
//! `mfplug` in a fresh temp dir with a hermetic environment.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::string_slice,
    reason = "the tests assert: a panic is how a test fails"
)]

mod support;

mod bootstrap;
mod build;
mod check;
mod cli;
mod config;
mod develop;
mod env;
mod fuzz;
mod home;
mod hostile;
mod index;
mod json;
mod kinds;
mod legacy;
mod lock;
mod metwork;
mod release;
mod tidy;
