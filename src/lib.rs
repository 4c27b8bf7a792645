//! mfplug: the build-and-release toolchain for MetWork-style plugins.
//!
//! The binary's `main` parses the command line with [`cli`] and reports errors; each stage of
//! a plugin's life has its module. See `docs/architecture.md` for the map.

// Every file-system error names its path: `fs_err`, never `std::fs` (see `clippy.toml`).
#![deny(clippy::disallowed_methods)]

pub mod archive;
pub mod bootstrap;
pub mod build;
pub mod cli;
pub mod config;
pub mod develop;
pub mod env;
pub mod fsx;
pub mod home;
pub mod index;
pub mod inspect;
pub mod interpreter;
pub mod lock;
pub mod plugin;
pub mod release;
pub mod ui;
