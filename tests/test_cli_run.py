"""`jwenv run`: live stdio, exit codes, signals, no orphans (fake jwst, no network).

In subprocesses on purpose: what is tested is what a real process passes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import jwenv, strun_report


def test_exit_code_and_cwd_pass_through(installed, tmp_path):
    out = jwenv("run", installed, "--", "strun", "--exit", "7", cwd=tmp_path)
    assert out.returncode == 7
    report = strun_report(out.stdout)
    assert report["cwd"] == str(tmp_path)
    assert report["env"]["VIRTUAL_ENV"].endswith("/envs/9.9.9")
    assert report["python"].startswith(report["env"]["VIRTUAL_ENV"])


def test_stdin_reaches_the_child(installed):
    out = jwenv("run", installed, "--", "strun", "--stdin", input="hello ramps")
    assert strun_report(out.stdout)["stdin"] == "hello ramps"


def test_options_after_the_separator_belong_to_the_command(installed):
    out = jwenv("run", installed, "--", "strun", "--crds-context", "--help-me", "--debug")
    assert strun_report(out.stdout)["argv"] == ["--crds-context", "--help-me", "--debug"]


def test_crds_context_override_for_one_run(installed):
    out = jwenv("run", "--crds-context", "jwst_0042.pmap", installed, "--", "strun")
    assert strun_report(out.stdout)["env"]["CRDS_CONTEXT"] == "jwst_0042.pmap"
    out = jwenv("run", installed, "--", "strun")
    assert strun_report(out.stdout)["env"]["CRDS_CONTEXT"] in ("", None)  # fake: no pin


def _start_sleeper(installed: str, pidfile: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "jwenv", "run", installed, "--", "strun",
                             "--sleep", "60", str(pidfile)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_sigterm_reaches_the_child(installed, tmp_path):
    pidfile = tmp_path / "child.pid"
    proc = _start_sleeper(installed, pidfile)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 99  # the child's own exit code after its handler ran
    assert (tmp_path / "child.pid.signal").read_text() == str(int(signal.SIGTERM))


def test_sigint_reaches_the_child(installed, tmp_path):
    pidfile = tmp_path / "child.pid"
    proc = _start_sleeper(installed, pidfile)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=30)
    child = int(pidfile.read_text())
    assert rc == 128 + signal.SIGINT  # the fake has no SIGINT handler: it died of it
    assert not _alive(child)


def test_kill_9_leaves_no_orphan(installed, tmp_path):
    pidfile = tmp_path / "child.pid"
    proc = _start_sleeper(installed, pidfile)
    child = int(pidfile.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "strun outlived a killed jwenv"
        time.sleep(0.05)


def test_strun_output_dir_is_created_first(installed, tmp_path):
    # Some releases' strun fails when --output_dir does not exist yet.
    out = jwenv("run", installed, "--", "strun", "x", "--output_dir", "new/out", cwd=tmp_path)
    assert out.returncode == 0 and (tmp_path / "new" / "out").is_dir()
    jwenv("run", installed, "--", "strun", "x", "--output_dir=other", cwd=tmp_path)
    assert (tmp_path / "other").is_dir()


def test_commands_that_cannot_start_are_one_line_with_shell_codes(installed, tmp_path):
    out = jwenv("run", installed, "--", "no-such-program")
    assert out.returncode == 127 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "jwenv: error: command not found in the environment: " \
                                 "no-such-program"
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    out = jwenv("run", installed, "--", str(script))
    assert out.returncode == 126 and out.stderr.startswith("jwenv: error: permission denied")
    out = jwenv("run", installed, "--", str(tmp_path / "missing.sh"))
    assert out.returncode == 127 and "cannot run" in out.stderr and "Traceback" not in out.stderr


def test_pip_outside_the_environment_is_never_reached(installed, tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    for tool in ("pip", "pip3", "pip3.11"):
        (shims / tool).write_text(f"#!/bin/sh\ntouch {tmp_path}/reached-{tool}\n")
        (shims / tool).chmod(0o755)
    environ = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}")
    for tool in ("pip", "pip3", "pip3.11"):
        out = jwenv("run", installed, "--", tool, "install", "x", env=environ)
        assert out.returncode == 127 and not (tmp_path / f"reached-{tool}").exists()
        assert out.stderr.strip() == (
            f"jwenv: error: this environment has no {tool} (one further along PATH would "
            f"install into another Python): use `jwenv pip {installed} -- install PACKAGE`")
    # an explicit path is the user's choice
    out = jwenv("run", installed, "--", str(shims / "pip"), env=environ)
    assert out.returncode == 0 and (tmp_path / "reached-pip").exists()


def test_offline_strun_with_an_empty_crds_cache_is_one_line_before_it_starts(installed,
                                                                            tmp_path):
    cache = tmp_path / "crds"
    environ = dict(os.environ, CRDS_PATH=str(cache))
    cmd = ["strun", "jwst.pipeline.Detector1Pipeline", "x_uncal.fits"]
    out = jwenv("run", installed, "--offline", "--crds-context", "jwst_1464.pmap", "--", *cmd,
                env=environ)
    assert out.returncode == 1 and out.stdout == ""  # strun never started
    assert out.stderr.strip() == (
        f"jwenv: error: offline, but the CRDS cache {cache} has no jwst_1464.pmap nor "
        f"server_config: with network, fill it once with `jwenv crds sync {installed} "
        "x_uncal.fits` (the context and the references it needs), or set CRDS_PATH to a "
        "cache that has them")
    out = jwenv("run", installed, "--offline", "--", *cmd, env=environ)  # no pin
    assert "has no server_config (which names the context to use)" in out.stderr
    # online, another program than strun, or a step told not to read CRDS: not checked
    assert jwenv("run", installed, "--online", "--", *cmd, env=environ).returncode == 0
    assert jwenv("run", installed, "--offline", "--", *cmd, "--disable-crds-steppars",
                 env=environ).returncode == 0
    assert jwenv("run", installed, "--offline", "--", "python", "-c", "pass",
                 env=environ).returncode == 0
    # a cache holding the context and CRDS's server_config: strun runs
    (cache / "mappings" / "jwst").mkdir(parents=True)
    (cache / "mappings" / "jwst" / "jwst_1464.pmap").write_text("header = {}\n")
    (cache / "config" / "jwst").mkdir(parents=True)
    (cache / "config" / "jwst" / "server_config").write_text("{}\n")
    out = jwenv("run", installed, "--offline", "--crds-context", "jwst_1464.pmap", "--", *cmd,
                env=environ)
    assert out.returncode == 0 and strun_report(out.stdout)["env"]["CRDS_CONTEXT"] == \
        "jwst_1464.pmap"
