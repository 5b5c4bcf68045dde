"""The command line as a user meets it: one-line errors, --json, exit codes.

Run in-process (helpers.cli) where a subprocess is not the point.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import BASE_PYTHON, cli, jwenv
from helpers import one_line_error as _one_line_error


@pytest.mark.parametrize(("args", "needles"), [
    (["run", "7.7.7", "--", "strun"], ["no environment named '7.7.7'", "jwenv install 7.7.7"]),
    (["install", "1.2.x"], ["malformed version"]),
    (["install", "latest"], ["cannot reach the package index", "installed environments"]),
    (["install", "/nonexistent/src"], ["no such source directory"]),
    (["install", "latest", "--crds-context", "jwst_99.pmap"], ["bad CRDS context"]),
    (["install", "latest", "--name", "../evil"], ["bad environment name"]),
    (["install", "latest", "--backend", "conda"], ["unknown backend"]),
    (["install", "latest", "--deps", "fast"], ["unknown --deps"]),
    (["install", "git+file:///nonexistent/jwst@0.15.1"], ["cannot reach jwst git repository"]),
    (["info", "a/b"], ["bad environment name"]),
    (["pin", "nope", "jwst_1464.pmap"], ["no environment named"]),
    (["install", "/x.whl"], ["no such wheel"]),
])
def test_errors_are_one_line(args, needles):
    _one_line_error(cli(*args), *needles)


def test_errors_are_one_line_from_the_console_script():
    # the same path as a user's shell: python -m jwenv, in a process of its own
    _one_line_error(jwenv("install", "1.2.x"), "malformed version")


def test_no_python_is_one_line(fake_wheel):
    out = cli("install", str(fake_wheel), "--python", "3.99")
    _one_line_error(out, "3.99", "found:", "uv python install 3.99")


def test_store_not_writable(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("JWENV_HOME", str(tmp_path / "file" / "home"))
    _one_line_error(cli("install", "latest"), "not writable")


def test_debug_shows_the_traceback():
    out = jwenv("--debug", "run", "7.7.7", "--", "strun")
    assert "Traceback" in out.stderr and "EnvNotFound" in out.stderr


def test_list_info_env_json(installed):
    rows = json.loads(cli("list", "--json").stdout)
    assert [r["name"] for r in rows] == ["9.9.9"] and rows[0]["size_bytes"] > 0
    info = json.loads(cli("info", installed, "--json").stdout)
    assert info["jwst_version"] == "9.9.9" and info["python_path"]
    variables = json.loads(cli("env", installed, "--json").stdout)
    assert variables["VIRTUAL_ENV"] == info["path"]
    exports = cli("env", installed).stdout
    assert f"export VIRTUAL_ENV={info['path']}" in exports
    table = cli("list").stdout
    assert "9.9.9" in table and "CRDS context" in table


def test_pin_then_env_shows_it(installed):
    assert cli("pin", installed, "jwst_1464.pmap").returncode == 0
    assert "export CRDS_CONTEXT=jwst_1464.pmap" in cli("env", installed).stdout
    status = json.loads(cli("crds", "status", installed, "--offline", "--json").stdout)
    assert status["mode"] == "offline" and status["context"] == "jwst_1464.pmap"
    assert status["context_cached"] is False


def test_install_twice_reports_cached(fake_wheel):
    args = ["install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import"]
    assert cli(*args).returncode == 0
    again = cli(*args, "--json")
    assert again.returncode == 0 and "already installed" in again.stderr
    assert json.loads(again.stdout)["name"] == "9.9.9"


def test_remove(installed):
    assert cli("remove", installed).returncode == 0
    assert json.loads(cli("list", "--json").stdout) == []


def test_shell_runs_with_the_env_active(installed, monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/sh")
    out = jwenv("shell", installed, input='echo "venv=$VIRTUAL_ENV"; exit 3\n')
    assert out.returncode == 3 and "/envs/9.9.9" in out.stdout


def test_virtualenv_backend(fake_wheel):
    out = cli("install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import",
                "--backend", "virtualenv", "--name", "venv-fake", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["backend"] == "virtualenv"
    run = jwenv("run", "venv-fake", "--", "strun", "--exit", "4")
    assert run.returncode == 4  # the console script works after the move from staging


def test_export_then_install_from_the_lock(installed, tmp_path):
    assert cli("pin", installed, "jwst_1234.pmap").returncode == 0
    lock = tmp_path / "env.lock"
    assert cli("export", installed, "-o", str(lock)).returncode == 0
    text = lock.read_text()
    assert text.startswith("# jwenv lock 1\n")
    assert "# crds-context: jwst_1234.pmap" in text and "# jwst: 9.9.9" in text
    out = cli("install", "--lock", str(lock), "--name", "copy", "--check", "import", "--json")
    assert out.returncode == 0, out.stderr
    copy = json.loads(out.stdout)
    original = json.loads(cli("info", installed, "--json").stdout)
    assert copy["packages"] == original["packages"]
    assert copy["crds_context"] == "jwst_1234.pmap"
    assert copy["python_version"] == original["python_version"]
    assert copy["strategy"] == "lock"


def test_bad_lock_files(tmp_path):
    not_a_lock = tmp_path / "reqs.txt"
    not_a_lock.write_text("numpy==1.0\n")
    _one_line_error(cli("install", "--lock", str(not_a_lock)), "is not a jwenv lock")
    _one_line_error(cli("install", "--lock", str(tmp_path / "missing")), "cannot read lock")
    _one_line_error(cli("install"), "give a VERSION or --lock")


def test_available_lists_releases_with_contexts_and_installed(installed, tmp_path,
                                                             monkeypatch):
    from test_releases import _pypi_json

    data = _pypi_json()
    data["releases"]["9.9.9"] = [{"upload_time_iso_8601": "2026-10-01T00:00:00Z",
                                  "requires_python": ">=3.10", "yanked": False}]
    index = tmp_path / "jwst.json"
    index.write_text(json.dumps(data))
    monkeypatch.setenv("JWENV_PYPI_URL", index.as_uri())  # urllib reads file:// URLs
    rows = {r["version"]: r for r in json.loads(cli("available", "--json").stdout)}
    assert rows["9.9.9"]["installed"] == ["9.9.9"]
    assert rows["1.20.2"]["crds_context"] == "jwst_1464.pmap"
    assert rows["1.20.2"]["dms_build"] == "B12.1.1"
    assert rows["1.20.2"]["released"] == "2025-11-03"
    assert rows["1.20.2"]["requires_python"] == ">=3.11,<3.14"
    assert "0.15.1" not in rows and "3.1.0rc1" not in rows  # git-only / prerelease: --all
    every = {r["version"]: r for r in json.loads(cli("available", "--all", "--json").stdout)}
    assert every["0.15.1"]["source"] == "git" and every["0.15.1"]["released"] == "2020-03-10"
    assert "jwst_1464.pmap" in cli("available").stdout


def test_repair_rebuilds_from_the_envs_own_lock(home, installed):
    assert cli("pin", installed, "jwst_0777.pmap").returncode == 0
    before = json.loads(cli("info", installed, "--json").stdout)
    marker = home / "envs" / installed / "jwenv-test-marker"
    marker.write_text("in the old environment only")
    out = cli("repair", installed)
    assert out.returncode == 0, out.stderr
    after = json.loads(cli("info", installed, "--json").stdout)
    assert not marker.exists()  # a new build replaced the environment
    assert after["strategy"] == "lock" and after["created"] >= before["created"]
    assert after["packages"] == before["packages"]
    assert after["crds_context"] == "jwst_0777.pmap"


def test_install_of_a_partial_version_says_which_release_it_chose(installed, tmp_path,
                                                                 monkeypatch):
    from test_releases import _pypi_json

    data = _pypi_json()
    for ver in ("9.9.0", "9.9.9"):
        data["releases"][ver] = [{"upload_time_iso_8601": "2026-10-01T00:00:00Z",
                                  "requires_python": ">=3.10", "yanked": False}]
    index = tmp_path / "jwst.json"
    index.write_text(json.dumps(data))
    monkeypatch.setenv("JWENV_PYPI_URL", index.as_uri())
    out = cli("install", "9.9")
    assert out.returncode == 0, out.stderr
    assert "jwenv: 9.9 means the newest 9.9.x: jwst 9.9.9" in out.stderr
    assert "9.9.9 is already installed" in out.stderr  # 9.9.9, not 9.9.0


@pytest.mark.parametrize("product", ["x_rate.fits", "data/jw01234_cal.fits"])
def test_install_of_a_product_points_to_like(product):
    line = _one_line_error(cli("install", product), "is a data product",
                           f"jwenv install --like {product}")
    assert "source directory" not in line


def test_install_lock_into_an_existing_name_is_a_no_op_or_refused(installed, tmp_path):
    lock = tmp_path / "env.lock"
    assert cli("export", installed, "-o", str(lock)).returncode == 0
    same = cli("install", "--lock", str(lock), "--check", "import")
    assert same.returncode == 0 and "identical to" in same.stderr, same.stderr
    before = json.loads(cli("info", installed, "--json").stdout)
    jwst_pin = next(p for p in before["packages"] if p.startswith("jwst"))
    changed = tmp_path / "changed.lock"
    changed.write_text(lock.read_text().replace(jwst_pin, "jwst==9.9.8"))
    line = _one_line_error(cli("install", "--lock", str(changed), "--check", "import"),
                           "9.9.9 is installed but differs from", "jwst==9.9.8 in the lock",
                           "--force")
    assert "already installed" not in line
    after = json.loads(cli("info", installed, "--json").stdout)
    assert after["created"] == before["created"]  # untouched
    # an explicit --name of an existing environment is checked the same way
    _one_line_error(cli("install", "--lock", str(changed), "--name", installed), "--force")


# -- help and errors a user meets first -----------------------------------------------------
@pytest.mark.parametrize("command", ["shell", "env", "reprocess", "run", "install", "kernel",
                                     "pip", "du", "crds status"])
def test_help_is_readable(command):
    out = cli(*command.split(), "--help", env=dict(os.environ, COLUMNS="120"))
    assert out.returncode == 0
    assert "<bool>" not in out.stdout and "<str>" not in out.stdout
    usage = next(ln for ln in out.stdout.splitlines() if "Usage:" in ln)
    assert "{" not in usage
    assert command in ("du", "install") or "NAME" in usage


def test_every_option_says_what_it_does():
    import typer.main

    from jwenv.cli import app

    missing = []

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])
            elif name not in ("diff", "compare"):  # comparisons: issue 13's other half
                missing.extend(f"{' '.join([*prefix, name])} {p.name}" for p in command.params
                               if not getattr(p, "help", None))

    walk(typer.main.get_command(app), [])
    assert missing == []


def test_version():
    from jwenv import __version__

    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"jwenv {__version__}"


def test_run_without_a_name_says_so(installed):
    for args in (["run", "--", "strun", "x"], ["run", "--offline", "--", "strun", "x"]):
        line = _one_line_error(cli(*args), "no environment given before `--`",
                               "jwenv run NAME -- strun x", "installed: 9.9.9")
        assert "no environment named 'strun'" not in line


def test_remove_of_a_missing_env_does_not_suggest_installing_it():
    line = _one_line_error(cli("remove", "7.7.7"), "no environment named '7.7.7'",
                           "jwenv list")
    assert "install" not in line


# -- git-only releases: bad input is one line and exit 2 (issue 17) ----------------------
def _git_only_index(tmp_path, monkeypatch, rows: str):
    from test_releases import README, _pypi_json

    data = _pypi_json()
    data["info"]["description"] = README.replace("| 0.15.1   |", rows + "\n| 0.15.1   |")
    index = tmp_path / "jwst.json"
    index.write_text(json.dumps(data))
    monkeypatch.setenv("JWENV_PYPI_URL", index.as_uri())


def _mirror(path, *tags):
    from test_releases import _repo_with_tags

    return _repo_with_tags(path, *tags)


def test_git_only_bad_input_is_one_line_exit_2(tmp_path, monkeypatch):
    repo = _mirror(tmp_path / "mirror" / "jwst", "0.7.7", "0.9.2", "0.9.4")
    _git_only_index(tmp_path, monkeypatch,
                    "| 0.7.7 | B7.0 | 2016_2 | 303 | 2016-12-13 | | final |\n"
                    "| 0.9.3 | B7.1.3rc1 | | 457 | 2018-05-11 | | rc1 |")
    monkeypatch.setenv("JWENV_JWST_GIT", str(repo))  # a plain directory
    cases = [
        (["install", f"git+{repo.as_uri()}@0.9.9"], ["has no tag or branch '0.9.9'",
                                                     "nearest tags: 0.9.4"]),
        (["install", "0.9.3"], ["jwst 0.9.3 has no tag: DMS built it from commit d795045",
                                "does not have (nearest tags: 0.9.2, 0.9.4)"]),
        (["install", "0.7.7", "--backend", "uv"], ["jwst 0.7.7 ran on Python 2.7 or 3.5",
                                                   "pyenv install 3.5"]),
        (["install", f"git+{(tmp_path / 'mirror').as_uri()}@0.7.7"],
         ["is not a git repository"]),
    ]
    for args, needles in cases:
        out = cli(*args)
        _one_line_error(out, *needles)
        assert out.returncode == 2, (args, out.stderr)


def test_available_all_marks_known_releases(tmp_path, monkeypatch):
    from jwenv import strategies

    _git_only_index(tmp_path, monkeypatch,
                    "| 0.7.7 | B7.0 | 2016_2 | 303 | 2016-12-13 | | final |")
    monkeypatch.setattr(strategies, "known_releases", lambda: {
        "0.15.1": {"ok": True, "strategy": "ops", "python": "3.8.18", "detector1": True},
        "0.7.7": {"ok": False, "why": "needs Python 3.5"}})
    rows = {r["version"]: r for r in json.loads(cli("available", "--all", "--json").stdout)}
    assert rows["0.15.1"]["known"]["ok"] and not rows["0.7.7"]["known"]["ok"]
    assert rows["3.0.0"]["known"] is None  # not measured
    table = cli("available", "--all").stdout
    assert "known" in table and "no: needs" in table
