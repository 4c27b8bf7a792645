'use strict';

// The {{ name }} plugin: a tiny daemon that prints a heartbeat.
//
// Uncomment [extra_daemon_main] in config.ini and mfplug runs it in the plugin
// environment, restarts it when it dies, and stops it with SIGTERM (then
// SIGKILL after graceful_timeout seconds). So it stays in the foreground and
// exits promptly on SIGTERM.
//
// Settings come from the environment, never from config.ini: [custom] interval
// is {{ MODULE }}_CURRENT_PLUGIN_CUSTOM_INTERVAL.
//
// Try it alone (Ctrl-C stops it):
//     {{ MODULE }}_CURRENT_PLUGIN_CUSTOM_INTERVAL=1 node main.js

const PREFIX = '{{ MODULE }}_CURRENT_PLUGIN_';
const DEFAULT_INTERVAL = 5;
const MAX_INTERVAL = 86400;

// Seconds between two heartbeats, from [custom] interval (a float).
function readInterval() {
  const raw = (process.env[PREFIX + 'CUSTOM_INTERVAL'] || '').trim();
  if (raw === '') {
    return DEFAULT_INTERVAL;
  }
  const value = Number(raw);
  if (!(value > 0 && value <= MAX_INTERVAL)) {
    console.error(
      `invalid interval ${JSON.stringify(raw)} (seconds, more than 0 and at most ${MAX_INTERVAL}): using ${DEFAULT_INTERVAL}`
    );
    return DEFAULT_INTERVAL;
  }
  return value;
}

const plugin = process.env[PREFIX + 'NAME'] || '{{ name }}';
const interval = readInterval();
let beats = 0;

console.log(`${plugin} daemon started (pid ${process.pid})`);
const timer = setInterval(() => {
  beats += 1;
  console.log(`${plugin} heartbeat ${beats} (every ${interval}s)`);
}, interval * 1000);

// SIGTERM: mfplug stops the daemon; SIGINT: Ctrl-C.
function stop(signal) {
  clearInterval(timer);
  console.log(`${plugin} daemon stopping (${signal})`);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
