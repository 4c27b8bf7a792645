//! The `mfplug` binary: parse, run, report, exit with a documented code.

// Every file-system error names its path: `fs_err`, never `std::fs` (see `clippy.toml`).
#![deny(clippy::disallowed_methods)]

use std::process::ExitCode;

fn main() -> ExitCode {
    match mfplug::run() {
        Ok(code) => code,
        Err(err) => {
            // A reader that went away (`mfplug config | head`) is not a failure.
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            mfplug::print_error(&err);
            ExitCode::from(mfplug::EXIT_FAILURE)
        }
    }
}
