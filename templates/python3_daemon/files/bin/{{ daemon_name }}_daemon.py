#!/usr/bin/env python3
"""The {{ daemon_name }} extra daemon of the {{ name }} plugin.

mfplug runs it as [extra_daemon_{{ daemon_name }}] (see config.ini) in the plugin
environment, restarts it when it dies, and stops it with SIGTERM (then SIGKILL
after graceful_timeout seconds). So it stays in the foreground and exits
promptly on SIGTERM. What it prints goes to the log (and to the terminal under
`mfplug develop`): flush it, or the log lags behind.

Settings come from the environment, never from config.ini: [custom] interval
is {{ MODULE }}_CURRENT_PLUGIN_CUSTOM_INTERVAL.

Try it alone (Ctrl-C stops it):
    {{ MODULE }}_CURRENT_PLUGIN_CUSTOM_INTERVAL=1 bin/{{ daemon_name }}_daemon.py
"""

import os
import signal
import sys
import time

PREFIX = "{{ MODULE }}_CURRENT_PLUGIN_"
DEFAULT_INTERVAL = 5.0
MAX_INTERVAL = 86400.0


class Stop(Exception):
    """Raised by the signal handler, to leave the main loop at once."""


def on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def read_interval():
    """Seconds between two heartbeats, from [custom] interval (a float)."""
    raw = os.environ.get(PREFIX + "CUSTOM_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_INTERVAL:
        print(
            "invalid interval %r (seconds, more than 0 and at most %g): using %g"
            % (raw, MAX_INTERVAL, DEFAULT_INTERVAL),
            file=sys.stderr,
            flush=True,
        )
        return DEFAULT_INTERVAL
    return value


def main():
    plugin = os.environ.get(PREFIX + "NAME", "{{ name }}")
    interval = read_interval()
    beats = 0
    try:
        # SIGTERM (mfplug stopping the daemon) and SIGINT (Ctrl-C) both raise
        # Stop, which interrupts time.sleep() at once.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print("%s daemon started (pid %d)" % (plugin, os.getpid()), flush=True)
        while True:
            time.sleep(interval)
            beats += 1
            print("%s heartbeat %d (every %gs)" % (plugin, beats, interval), flush=True)
    except Stop as stop:
        # A second signal must not interrupt the clean-up.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("%s daemon stopping (%s)" % (plugin, stop), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
