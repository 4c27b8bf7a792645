//! The command line itself: help, version, completions, exit codes, global options.

use crate::mfplug_snapshot;
use crate::support::TestContext;

/// Every command of DESIGN.md's table, and the ones the operator's side adds.
const COMMANDS: &[&str] = &[
    "bootstrap",
    "check",
    "config",
    "lock",
    "build",
    "clean",
    "develop",
    "release",
    "install",
    "uninstall",
    "list",
    "info",
    "verify",
    "env",
    "wrapper",
    "repackage",
    "convert",
    "provision",
    "crontab",
    "completions",
];

#[test]
fn help_lists_every_command() {
    let ctx = TestContext::new();
    let output = mfplug_snapshot!(ctx, ctx.cmd(["--help"]));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for command in COMMANDS {
        assert!(
            stdout.contains(&format!("\n  {command} ")),
            "`{command}` is missing from --help"
        );
    }
}

#[test]
fn every_command_has_help() {
    let ctx = TestContext::new();
    for command in COMMANDS {
        ctx.cmd([command, "--help"]).assert().success();
    }
    ctx.cmd(["bootstrap", "create", "--help"])
        .assert()
        .success();
    ctx.cmd(["bootstrap", "list", "--help"]).assert().success();
}

#[test]
fn version() {
    let ctx = TestContext::new();
    mfplug_snapshot!(ctx, ctx.cmd(["--version"]), @r"
    success: true
    exit_code: 0
    ----- stdout -----
    mfplug [VERSION]

    ----- stderr -----
    ");
}

#[test]
fn usage_errors_exit_2() {
    let ctx = TestContext::new();
    ctx.cmd(["frobnicate"]).assert().code(2);
    ctx.cmd(["check", "--nope"]).assert().code(2);
    ctx.cmd(["wrapper", "x"]).assert().code(2);
    ctx.cmd(["-q", "-v", "check"]).assert().code(2);
    ctx.cmd(["--color", "sometimes", "check"]).assert().code(2);
    mfplug_snapshot!(ctx, ctx.cmd(["--module", "mf-data", "check"]), @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid value 'mf-data' for '--module <NAME>': `mf-data` is not a module name: use a letter then letters, digits or `_` (e.g. MFDATA)

    For more information, try '--help'.
    ");
}

/// What bash offers after `mfplug WORDS`, the last word being completed: the generated script
/// sourced and its completion function called as bash's `complete -F` calls it.
fn bash_completions(ctx: &TestContext, words: &[&str]) -> Vec<String> {
    let script = ctx.cmd(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let path = ctx.root().join("mfplug.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = format!(
        "source \"$0\" && COMP_WORDS=(mfplug {words}) && COMP_CWORD={cword} && \
         _mfplug mfplug \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = quoted.join(" "),
        cword = words.len(),
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(line)
        .arg(&path)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Each shell gets its own script, registered for `mfplug`, that knows every command, the
/// subcommands and the flags of each; bash's is run: it completes commands, subcommands and
/// flags.
#[test]
fn completions_for_every_shell() {
    let ctx = TestContext::new();
    let offered = bash_completions(&ctx, &[""]);
    for command in COMMANDS {
        assert!(
            offered.iter().any(|w| w == command),
            "{command}: {offered:?}"
        );
    }
    let mut subcommands: Vec<String> = bash_completions(&ctx, &["bootstrap", ""])
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect();
    subcommands.sort();
    assert_eq!(subcommands, ["create", "help", "list"]);
    assert_eq!(bash_completions(&ctx, &["build", "--off"]), ["--offline"]);

    let registration = [
        ("bash", "complete -F _mfplug"),
        ("zsh", "#compdef mfplug"),
        ("fish", "complete -c mfplug"),
        ("elvish", "edit:completion:arg-completer[mfplug]"),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName 'mfplug'",
        ),
    ];
    let mut scripts = std::collections::BTreeSet::new();
    for (shell, registers) in registration {
        let output = ctx.cmd(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains(registers),
            "{shell} script does not register mfplug:\n{text}"
        );
        for word in COMMANDS
            .iter()
            .chain(&["create", "list", "offline", "new-name"])
        {
            assert!(text.contains(word), "{shell} script does not know `{word}`");
        }
        assert!(
            scripts.insert(text),
            "{shell} got the script of another shell"
        );
    }
    ctx.cmd(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn global_options_go_anywhere_and_come_from_the_environment() {
    let ctx = TestContext::new();
    // --module after the command, and through MFPLUG_MODULE (a plugin's module is its
    // label's: the flag names the module of a new plugin, and must agree with the label).
    ctx.cmd(["bootstrap", "create", "p", "--module", "mfdata"])
        .assert()
        .success();
    let out = ctx
        .cmd(["config", "p", "--module", "mfdata"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("MFDATA_CURRENT_PLUGIN_NAME=p"));
    ctx.cmd(["bootstrap", "create", "s"])
        .env("MFPLUG_MODULE", "MFSERV")
        .assert()
        .success();
    let out = ctx
        .cmd(["config", "s"])
        .env("MFPLUG_MODULE", "MFSERV")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("MFSERV_CURRENT_PLUGIN_NAME=s"));
    // -q silences the status line and the next steps.
    let out = ctx
        .cmd(["-q", "bootstrap", "create", "q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn color_follows_the_flag() {
    let ctx = TestContext::new();
    let out = ctx
        .cmd(["--color", "always", "check", "missing"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("\u{1b}["));
    let out = ctx
        .cmd(["--color", "never", "check", "missing"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("\u{1b}["));
}

/// A reader that went away (`mfplug completions bash | head -0`) is not a failure: exit 0,
/// nothing on stderr. The pipe's read end is closed before mfplug starts, so its first write
/// meets `EPIPE` for sure (a reader closing after the spawn could lose the race and let the
/// whole text fit in the pipe's buffer); both writers are covered, the completions' own and
/// `ui::out`'s (`config`).
#[test]
fn broken_pipe_is_not_an_error() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "p"]).assert().success();
    for args in [vec!["completions", "bash"], vec!["config", "p"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = ctx
            .command(&args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// `--wait` and `--interval` refuse what is not a number of seconds (`nan`, `inf`,
/// negative, huge) with a usage error saying what is allowed; they used to abort (exit 134).
#[test]
fn seconds_that_are_not_numbers_are_usage_errors() {
    let ctx = TestContext::new();
    for value in ["nan", "NaN", "inf", "-inf", "-1", "1e300", "soon"] {
        // `--wait=VALUE`, so that `-1` reads as a value.
        let (wait, interval) = (format!("--wait={value}"), format!("--interval={value}"));
        for args in [
            vec!["install", &wait, "x.plugin"],
            vec!["uninstall", &wait, "x"],
            vec!["provision", &wait],
            vec!["provision", "--watch", &interval],
        ] {
            let out = ctx.cmd(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("give a number"), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
    mfplug_snapshot!(ctx, ctx.cmd(["provision", "--interval", "nan"]), @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid value 'nan' for '--interval <SECS>': `nan` is not an interval: give a number of seconds from 0.05 to 86400 (e.g. `2` or `0.5`)

    For more information, try '--help'.
    ");
    // Nothing was touched: the home was not even made.
    assert!(!ctx.home.join("plugins").exists());
}

/// `cargo xtask dist`'s man pages: `mfplug.1` and one page per visible command (nested ones
/// too), each a roff page under the name a reader types, with the command's own flags.
#[test]
fn man_pages_for_every_command() {
    let ctx = TestContext::new();
    ctx.cmd(["-q", "generate-man", "man"]).assert().success();
    let mut pages: Vec<String> = std::fs::read_dir(ctx.work.join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for command in COMMANDS {
        assert!(
            pages.contains(&format!("mfplug-{command}.1")),
            "{command}: {pages:?}"
        );
    }
    assert!(pages.contains(&"mfplug.1".to_owned()));
    assert!(pages.contains(&"mfplug-bootstrap-create.1".to_owned()));
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("help") || p.contains("generate-man")),
        "{pages:?}"
    );
    let lock = ctx.read("man/mfplug-lock.1");
    assert!(lock.starts_with(".ie") || lock.contains(".TH"), "{lock}");
    assert!(lock.contains(r"mfplug lock"), "{lock}");
    assert!(lock.contains(r"\-\-upgrade\-package"), "{lock}");
}
