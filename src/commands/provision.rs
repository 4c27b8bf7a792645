//! `mfplug provision [--watch] [--prune]`: the home converges on the `.plugin` files of its
//! `provision/` dir.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::home::provision::{self, ProvisionOptions, ProvisionReport};

pub(crate) fn run(
    watch: bool,
    interval: Duration,
    prune: bool,
    wait: Duration,
    ctx: &Ctx,
) -> Result<ExitCode> {
    let json = ctx.json;
    let report = provision::provision(
        &ctx.home,
        &ctx.settings(),
        &ProvisionOptions {
            watch,
            interval,
            prune,
            wait,
            json,
            on_round: &|round| render(round, json),
        },
    )?;
    Ok(super::exit(render(&report, json)?))
}

/// A round's report: with `--json`, one JSON line per event (the status lines were said as
/// they happened otherwise); whether every plugin converged.
fn render(report: &ProvisionReport, json: bool) -> Result<bool> {
    if json {
        for event in &report.events {
            super::out_json_line(event)?;
        }
    }
    Ok(report.ok())
}
