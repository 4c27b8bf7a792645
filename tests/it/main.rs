//! The integration suite: one binary, one module per command, each running the built
//! `mfplug` in a fresh temp dir with a hermetic environment.

mod support;

mod bootstrap;
mod check;
mod cli;
mod config;
mod develop;
mod env;
mod hostile;
mod legacy;
mod release;
mod tidy;
