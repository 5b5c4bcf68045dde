"""`jwenv shell`: the environment is first on PATH after the user's rc files ran.

Each shell gets a HOME whose rc file puts another directory (with its own `python` and
`pip`, as pyenv's shims) first on PATH, as `pyenv init` in ~/.bashrc does. Real shells in
real processes; a shell this machine lacks fails the test (the startup files are also
checked without shells in test_startup_files_source_the_users_first).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import jwenv
from jwenv import shells

RC = {  # the rc file each shell reads, and a line in its language that prepends a dir
    "bash": (".bashrc", 'export PATH="$HOME/shims:$PATH"\n'),
    "zsh": (".zshrc", 'export PATH="$HOME/shims:$PATH"\n'),
    "fish": (".config/fish/config.fish", "set -gx PATH $HOME/shims $PATH\n"),
    "sh": (".shrc", 'export PATH="$HOME/shims:$PATH"\n'),
}
PROBE = {
    "posix": 'command -v python; echo "prompt=$PS1"; echo "crds=$CRDS_SERVER_URL"\n'
             'pip install x; echo "pip=$?"\nexit 3\n',
    "fish": 'command -v python; echo "prompt="(fish_prompt); echo "crds=$CRDS_SERVER_URL"\n'
            'pip install x; echo "pip=$status"\nexit 3\n',
}


def _home(tmp_path: Path, kind: str) -> Path:
    home = tmp_path / "user"
    shims = home / "shims"
    shims.mkdir(parents=True)
    for tool in ("python", "pip"):
        (shims / tool).write_text(f"#!/bin/sh\necho 'the shims {tool}'\n")
        (shims / tool).chmod(0o755)
    rc, line = RC[kind]
    (home / rc).parent.mkdir(parents=True, exist_ok=True)
    (home / rc).write_text(line)
    return home


@pytest.mark.parametrize("kind", ["bash", "zsh", "fish", "sh"])
def test_env_is_first_on_path_after_the_rc_files(installed, home, tmp_path, kind):
    shell = shutil.which("dash" if kind == "sh" else kind)
    if shell is None:
        pytest.fail(f"{kind} is not installed here: this test runs the real shell")
    user = _home(tmp_path, kind)
    environ = dict(os.environ, HOME=str(user), SHELL=shell, XDG_CONFIG_HOME=str(user / ".config"))
    environ.pop("ZDOTDIR", None)
    if kind == "sh":
        environ["ENV"] = str(user / ".shrc")  # how a POSIX sh user has an rc file
    probe = PROBE["fish" if kind == "fish" else "posix"]
    out = jwenv("shell", installed, "--offline", env=environ, input=probe)
    assert out.returncode == 3, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(home / "envs" / installed / "bin" / "python"), out.stdout
    assert f"prompt=({installed}) " in out.stdout
    assert "crds=https://jwst-serverless-mode.stsci.edu" in out.stdout
    # pip would be the shims' (another Python's): it says how to install instead
    assert "pip=127" in out.stdout and "the shims pip" not in out.stdout
    assert f"jwenv pip {installed} -- install" in out.stderr


def test_without_the_rc_handling_the_shims_would_win(installed, tmp_path):
    """The test above can fail: a shell given the variables only loses to the rc file."""
    from jwenv.envs import Env

    user = _home(tmp_path, "bash")
    environ = Env.get(installed).environ(base=dict(os.environ, HOME=str(user)))
    import subprocess

    out = subprocess.run(["bash", "-i"], input="command -v python\n", env=environ,
                         capture_output=True, text=True)
    assert out.stdout.splitlines()[0] == str(user / "shims" / "python")


def test_startup_files_source_the_users_first(tmp_path):
    act = shells.Activation("1.20.2", Path("/e/1.20.2/bin"),
                            {"VIRTUAL_ENV": "/e/1.20.2", "CRDS_CONTEXT": "jwst_1464.pmap"},
                            ["PYTHONPATH"], has_pip=False)
    environ = {"HOME": "/home/u", "PATH": "/e/1.20.2/bin:/usr/bin"}
    bash = shells.prepare("/bin/bash", act, environ, tmp_path)
    assert bash.argv == ["/bin/bash", "--rcfile", str(tmp_path / "bashrc"), "-i"]
    text = (tmp_path / "bashrc").read_text()
    assert text.index(". \"$HOME/.bashrc\"") < text.index("PATH=/e/1.20.2/bin:")
    assert "export CRDS_CONTEXT=jwst_1464.pmap" in text and "unset PYTHONPATH" in text
    zsh = shells.prepare("/usr/bin/zsh", act, dict(environ, ZDOTDIR="/home/u/.zsh"), tmp_path)
    assert zsh.environ["ZDOTDIR"] == str(tmp_path)
    assert zsh.environ["JWENV_USER_ZDOTDIR"] == "/home/u/.zsh"
    zshrc = (tmp_path / ".zshrc").read_text()
    assert zshrc.index('source "$ZDOTDIR/.zshrc"') < zshrc.index("PATH=/e/1.20.2/bin:")
    fish = shells.prepare("/usr/bin/fish", act, environ, tmp_path)
    assert fish.argv[2] == "--init-command"  # fish runs it after config.fish
    init = (tmp_path / "jwenv.fish").read_text()
    assert "set -gx PATH '/e/1.20.2/bin' (string match -v -- '/e/1.20.2/bin' $PATH)" in init
    assert "function fish_prompt; echo -n '(1.20.2) '" in init
    other = shells.prepare("/usr/bin/tcsh", act, environ, tmp_path)
    assert other.argv == ["/usr/bin/tcsh", "-i"] and "PATH" in other.note
