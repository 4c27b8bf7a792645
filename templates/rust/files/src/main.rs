//! The binary of the {{ name }} plugin, copied into bin/ by `mfplug build`.
//!
//! Run alone, it greets. With `--daemon`, it prints a heartbeat every
//! [custom] interval seconds until it is stopped: that is what the commented
//! [extra_daemon_main] of config.ini runs. mfplug stops a daemon with SIGTERM,
//! whose default action ends this process at once.
//!
//! Settings come from the environment, never from config.ini: [custom] greeting
//! is {{ MODULE }}_CURRENT_PLUGIN_CUSTOM_GREETING.

use std::env;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// The prefix of the variables of the plugin environment.
const PREFIX: &str = "{{ MODULE }}_CURRENT_PLUGIN_";
const DEFAULT_INTERVAL: f64 = 5.0;
const MAX_INTERVAL: f64 = 86400.0;

/// The value of the plugin variable `PREFIX + key`, or `default` outside the plugin environment.
fn setting(key: &str, default: &str) -> String {
    env::var(format!("{PREFIX}{key}")).unwrap_or_else(|_| default.to_owned())
}

/// Seconds between two heartbeats, from [custom] interval (a float).
fn interval() -> f64 {
    let raw = setting("CUSTOM_INTERVAL", "");
    let raw = raw.trim();
    if raw.is_empty() {
        return DEFAULT_INTERVAL;
    }
    match raw.parse::<f64>() {
        Ok(value) if value > 0.0 && value <= MAX_INTERVAL => value,
        _ => {
            eprintln!(
                "invalid interval {raw:?} (seconds, more than 0 and at most {MAX_INTERVAL}): using {DEFAULT_INTERVAL}"
            );
            DEFAULT_INTERVAL
        }
    }
}

fn main() -> ExitCode {
    let name = setting("NAME", "{{ name }}");
    let mut daemon = false;
    for arg in env::args().skip(1) {
        match arg.as_str() {
            "--daemon" => daemon = true,
            _ => {
                eprintln!("{name}: unexpected argument {arg:?}\nusage: {name} [--daemon]");
                return ExitCode::from(2);
            }
        }
    }

    let greeting = setting("CUSTOM_GREETING", "hello");
    println!("{greeting} from the {name} plugin");
    if !daemon {
        return ExitCode::SUCCESS;
    }

    let interval = interval();
    println!("{name} daemon started (pid {})", std::process::id());
    let mut beats: u64 = 0;
    loop {
        thread::sleep(Duration::from_secs_f64(interval));
        beats += 1;
        println!("{name} heartbeat {beats} (every {interval}s)");
    }
}
