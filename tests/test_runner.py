"""runner: a child's environment, exit codes, logs, and in-environment JSON scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from jwenv import runner
from jwenv.errors import BadInput


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(body)
    return path


def test_run_environ_isolates_and_puts_the_env_first(tmp_path):
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/other", "PYTHONHOME": "/x",
            "CONDA_PREFIX": "/conda", "VIRTUAL_ENV": "/another/venv", "HOME": "/home/u"}
    env = runner.run_environ(tmp_path / "env", {"CRDS_CONTEXT": "jwst_0001.pmap"}, base)
    assert env["PATH"] == f"{tmp_path / 'env' / 'bin'}{os.pathsep}/usr/bin"
    assert env["VIRTUAL_ENV"] == str(tmp_path / "env")
    assert env["CRDS_CONTEXT"] == "jwst_0001.pmap" and env["HOME"] == "/home/u"
    assert not {"PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX"} & set(env)
    assert runner.isolated(base) == {"PATH": "/usr/bin", "HOME": "/home/u"}


def test_run_passes_the_exit_code_and_writes_the_log(tmp_path):
    log = tmp_path / "run.log"
    code = runner.run([sys.executable, "-c", "import sys; print('to the log'); sys.exit(7)"],
                      dict(os.environ), cwd=tmp_path, log=log)
    assert code == 7
    assert log.read_text() == "to the log\n"


def test_a_child_killed_by_a_signal_gives_128_plus_n(tmp_path):
    code = runner.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"],
                      dict(os.environ), log=tmp_path / "log")
    assert code == 128 + 9


def test_programs_are_found_on_the_runs_path(tmp_path):
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "only-here"
    tool.write_text("#!/bin/sh\nexit 3\n")
    tool.chmod(0o755)
    environ = dict(os.environ, PATH=str(tmp_path / "bin"))
    assert runner.which_in("only-here", environ) == str(tool)
    assert runner.run(["only-here"], environ, log=tmp_path / "log") == 3
    with pytest.raises(runner.CommandFailed) as err:
        runner.run(["not-there"], environ)
    assert err.value.exit_code == 127
    with pytest.raises(BadInput, match="no command given"):
        runner.run([], environ)


def test_json_script_returns_the_last_line_even_with_a_failing_exit(tmp_path):
    script = _script(tmp_path, "import json, sys\nprint('noise')\n"
                               "print(json.dumps({'ok': False}))\nsys.exit(1)\n")
    assert runner.run_json_script(Path(sys.executable), script, [], dict(os.environ),
                                  what="check") == {"ok": False}


def test_json_script_without_a_result_is_one_line(tmp_path):
    script = _script(tmp_path, "import sys\nprint('progress')\n"
                               "raise KeyError('asn_pool')\n")
    with pytest.raises(runner.ScriptFailed) as err:
        runner.run_json_script(Path(sys.executable), script, [], dict(os.environ),
                               what="make the associations")
    assert err.value.why == "KeyError: 'asn_pool'"
    assert str(err.value) == "make the associations: KeyError: 'asn_pool'"


def test_json_script_started_now_read_later(tmp_path):
    script = _script(tmp_path, "import json, sys\nprint(json.dumps({'args': sys.argv[1:]}))\n")
    job = runner.JsonScript(Path(sys.executable), script, ["a", "b"], dict(os.environ))
    assert job.result("echo") == {"args": ["a", "b"]}
    slow = runner.JsonScript(Path(sys.executable), _script(tmp_path, "import time\n"
                                                                      "time.sleep(60)\n"),
                             [], dict(os.environ))
    slow.stop()
    assert slow.proc.returncode is not None
