//! mfplug: the build-and-release toolchain for MetWork-style plugins.
//!
//! The binary's `main` runs the command line ([`run`]) and reports errors ([`print_error`],
//! [`EXIT_FAILURE`]); each stage of a plugin's life has its module. See `docs/architecture.md`
//! for the map.
//!
//! The library surface is what the binary, the integration tests and the fuzz targets
//! (`tests/it/`) read, and nothing more, so that the compiler reports the rest when it is
//! dead:
//!
//! - for the binary: [`run`], [`print_error`], [`EXIT_FAILURE`];
//! - from [`archive`], [`archive::hex`], [`archive::Record`], [`archive::Kind`], the readers
//!   [`archive::unpack::read`] (with [`archive::unpack::Limits`] and
//!   [`archive::unpack::ArchiveError`]) and [`archive::legacy::read`];
//! - from [`config`], [`config::load`], [`config::Settings`], [`config::ini::Document`];
//! - from [`lock`], [`lock::requirements::read`], [`lock::lockfile::render`] and
//!   [`lock::lockfile::parse`] (with their `Header`, `Pin` and `Previous`);
//! - from [`plugin`], [`plugin::validate_name`];
//!
//! with the types their signatures name. Everything else is `pub(crate)`.

// Every file-system error names its path: `fs_err`, never `std::fs` (see `clippy.toml`).
#![deny(clippy::disallowed_methods)]

pub mod archive;
pub(crate) mod bootstrap;
pub(crate) mod build;
pub(crate) mod cli;
pub(crate) mod commands;
pub mod config;
pub(crate) mod develop;
pub(crate) mod env;
pub(crate) mod fsx;
pub(crate) mod home;
pub(crate) mod index;
pub(crate) mod interpreter;
pub mod lock;
pub mod plugin;
pub(crate) mod pool;
pub(crate) mod release;
pub(crate) mod ui;

pub use commands::EXIT_FAILURE;
pub use ui::print_error;

/// Parses the command line and runs its command: the binary's whole work but the reporting
/// of an error.
pub fn run() -> anyhow::Result<std::process::ExitCode> {
    use clap::Parser as _;
    commands::run(cli::Cli::parse())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The surface above is the whole of it: outside `archive`, `config`, `lock` and `plugin`
    /// (whose modules the tests read), a module is `pub(crate)` and so are its items, so that
    /// the compiler reports what nothing uses. The three items the binary needs are the
    /// exceptions.
    #[test]
    fn only_the_documented_surface_is_public() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let surface = [
            "archive",
            "config",
            "lock",
            "plugin.rs",
            "lib.rs",
            "main.rs",
        ];
        let allowed = [
            ("commands", "pub const EXIT_FAILURE"),
            ("ui.rs", "pub fn print_error"),
            ("fsx.rs", "pub fn hex"),
        ];
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(&src).unwrap();
            let Some(top) = rel.components().next() else {
                continue;
            };
            let top = top.as_os_str().to_string_lossy();
            if entry.path().extension().is_none_or(|e| e != "rs") || surface.contains(&&*top) {
                continue;
            }
            let text = fs_err::read_to_string(entry.path()).unwrap();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim_start();
                let public = [
                    "fn ", "struct ", "enum ", "const ", "mod ", "type ", "static ", "use ",
                    "trait ",
                ]
                .iter()
                .any(|k| line.starts_with(&format!("pub {k}")));
                if public
                    && !allowed
                        .iter()
                        .any(|(f, item)| top == *f && line.starts_with(item))
                {
                    found.push(format!("src/{}:{}: {line}", rel.display(), n + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "make these `pub(crate)`:\n{}",
            found.join("\n")
        );
    }
}
