//! Creating `local/`, a virtualenv of the target interpreter, the way `python -m venv` lays
//! one out: `pyvenv.cfg`, `bin/python*` links to the interpreter, activate scripts,
//! `lib/pythonX.Y/site-packages` (and `lib64` pointing at `lib`). It is written at `root` but
//! made for `prefix`, where it will be renamed to (install builds it in the staging dir).

use std::path::Path;

use anyhow::Result;

/// What a virtualenv needs to know of its interpreter.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// The interpreter's real executable.
    pub(crate) executable: std::path::PathBuf,
    /// `X.Y.Z`.
    pub(crate) full_version: String,
    /// `X.Y`.
    pub(crate) version: String,
}

const ACTIVATE: &str = r#"# This file must be used with "source bin/activate" *from bash or sh*; it cannot be run.

deactivate () {
    if [ -n "${_OLD_VIRTUAL_PATH:-}" ] ; then
        PATH="${_OLD_VIRTUAL_PATH:-}"
        export PATH
        unset _OLD_VIRTUAL_PATH
    fi
    if [ -n "${_OLD_VIRTUAL_PYTHONHOME:-}" ] ; then
        PYTHONHOME="${_OLD_VIRTUAL_PYTHONHOME:-}"
        export PYTHONHOME
        unset _OLD_VIRTUAL_PYTHONHOME
    fi
    hash -r 2> /dev/null
    if [ -n "${_OLD_VIRTUAL_PS1:-}" ] ; then
        PS1="${_OLD_VIRTUAL_PS1:-}"
        export PS1
        unset _OLD_VIRTUAL_PS1
    fi
    unset VIRTUAL_ENV
    unset VIRTUAL_ENV_PROMPT
    if [ ! "${1:-}" = "nondestructive" ] ; then
        unset -f deactivate
    fi
}

deactivate nondestructive

VIRTUAL_ENV="__VENV__"
export VIRTUAL_ENV

_OLD_VIRTUAL_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH

if [ -n "${PYTHONHOME:-}" ] ; then
    _OLD_VIRTUAL_PYTHONHOME="${PYTHONHOME:-}"
    unset PYTHONHOME
fi

if [ -z "${VIRTUAL_ENV_DISABLE_PROMPT:-}" ] ; then
    _OLD_VIRTUAL_PS1="${PS1:-}"
    PS1="(__PROMPT__) ${PS1:-}"
    export PS1
    VIRTUAL_ENV_PROMPT="(__PROMPT__) "
    export VIRTUAL_ENV_PROMPT
fi

hash -r 2> /dev/null
"#;

const ACTIVATE_FISH: &str = r#"# This file must be used with "source bin/activate.fish" *from fish*.

function deactivate -d "Exit the virtual environment"
    if test -n "$_OLD_VIRTUAL_PATH"
        set -gx PATH $_OLD_VIRTUAL_PATH
        set -e _OLD_VIRTUAL_PATH
    end
    set -e VIRTUAL_ENV
    set -e VIRTUAL_ENV_PROMPT
    if test "$argv[1]" != "nondestructive"
        functions -e deactivate
    end
end

deactivate nondestructive

set -gx VIRTUAL_ENV "__VENV__"
set -gx _OLD_VIRTUAL_PATH $PATH
set -gx PATH "$VIRTUAL_ENV/bin" $PATH
set -gx VIRTUAL_ENV_PROMPT "(__PROMPT__) "
"#;

const ACTIVATE_CSH: &str = r#"# This file must be used with "source bin/activate.csh" *from csh*.

alias deactivate 'test $?_OLD_VIRTUAL_PATH != 0 && setenv PATH "$_OLD_VIRTUAL_PATH" && unset _OLD_VIRTUAL_PATH; rehash; unsetenv VIRTUAL_ENV; unsetenv VIRTUAL_ENV_PROMPT; test "\!:*" != "nondestructive" && unalias deactivate'

deactivate nondestructive

setenv VIRTUAL_ENV "__VENV__"
set _OLD_VIRTUAL_PATH="$PATH"
setenv PATH "$VIRTUAL_ENV/bin:$PATH"
setenv VIRTUAL_ENV_PROMPT "(__PROMPT__) "
rehash
"#;

/// Creates the env at `root`, for `prefix`, named `prompt` in activated shells.
pub(crate) fn create(root: &Path, prefix: &Path, base: &Base, prompt: &str) -> Result<()> {
    let bin = root.join("bin");
    fs_err::create_dir_all(&bin)?;
    fs_err::create_dir_all(
        root.join("lib")
            .join(format!("python{}", base.version))
            .join("site-packages"),
    )?;
    fs_err::create_dir_all(root.join("include"))?;
    if !root.join("lib64").exists() {
        fs_err::os::unix::fs::symlink("lib", root.join("lib64"))?;
    }
    let home = base
        .executable
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    fs_err::write(
        root.join("pyvenv.cfg"),
        format!(
            "home = {home}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\ncommand = mfplug build\n",
            base.full_version,
            base.executable.display()
        ),
    )?;
    let major = base.version.split('.').next().unwrap_or("3");
    for name in [
        "python".to_owned(),
        format!("python{major}"),
        format!("python{}", base.version),
    ] {
        let link = bin.join(&name);
        let _ = fs_err::remove_file(&link);
        fs_err::os::unix::fs::symlink(&base.executable, &link)?;
    }
    let venv = prefix.display().to_string();
    for (name, template) in [
        ("activate", ACTIVATE),
        ("activate.fish", ACTIVATE_FISH),
        ("activate.csh", ACTIVATE_CSH),
    ] {
        fs_err::write(
            bin.join(name),
            template
                .replace("__VENV__", &venv)
                .replace("__PROMPT__", prompt),
        )?;
    }
    Ok(())
}
