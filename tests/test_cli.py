"""The command line as a user meets it: one-line errors, --json, exit codes."""

from __future__ import annotations

import json

import pytest

from conftest import BASE_PYTHON, jwenv


def _one_line_error(out, *needles):
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    # Progress lines may precede it (stderr is not a terminal here); the error is one line.
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("jwenv: error")]
    assert len(lines) == 1 and out.stderr.strip().endswith(lines[0]), out.stderr
    for n in needles:
        assert n in lines[0], lines[0]


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
def test_errors_are_one_line(home, args, needles):
    _one_line_error(jwenv(*args), *needles)


def test_no_python_is_one_line(home, fake_wheel):
    out = jwenv("install", str(fake_wheel), "--python", "3.99")
    _one_line_error(out, "3.99", "found:", "uv python install 3.99")


def test_store_not_writable(home, tmp_path):
    (tmp_path / "file").write_text("")
    import os
    env = dict(os.environ, JWENV_HOME=str(tmp_path / "file" / "home"))
    _one_line_error(jwenv("install", "latest", env=env), "not writable")


def test_debug_shows_the_traceback(home):
    out = jwenv("--debug", "run", "7.7.7", "--", "strun")
    assert "Traceback" in out.stderr and "EnvNotFound" in out.stderr


def test_list_info_env_json(home, installed):
    rows = json.loads(jwenv("list", "--json").stdout)
    assert [r["name"] for r in rows] == ["9.9.9"] and rows[0]["size_bytes"] > 0
    info = json.loads(jwenv("info", installed, "--json").stdout)
    assert info["jwst_version"] == "9.9.9" and info["python_path"]
    variables = json.loads(jwenv("env", installed, "--json").stdout)
    assert variables["VIRTUAL_ENV"] == info["path"]
    exports = jwenv("env", installed).stdout
    assert f"export VIRTUAL_ENV={info['path']}" in exports
    table = jwenv("list").stdout
    assert "9.9.9" in table and "CRDS context" in table


def test_pin_then_env_shows_it(home, installed):
    assert jwenv("pin", installed, "jwst_1464.pmap").returncode == 0
    assert "export CRDS_CONTEXT=jwst_1464.pmap" in jwenv("env", installed).stdout
    status = json.loads(jwenv("crds", "status", installed, "--offline", "--json").stdout)
    assert status["mode"] == "offline" and status["context"] == "jwst_1464.pmap"
    assert status["context_cached"] is False


def test_install_twice_reports_cached(home, fake_wheel):
    args = ["install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import"]
    assert jwenv(*args).returncode == 0
    again = jwenv(*args, "--json")
    assert again.returncode == 0 and "already installed" in again.stderr
    assert json.loads(again.stdout)["name"] == "9.9.9"


def test_remove(home, installed):
    assert jwenv("remove", installed).returncode == 0
    assert json.loads(jwenv("list", "--json").stdout) == []


def test_shell_runs_with_the_env_active(home, installed, monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/sh")
    out = jwenv("shell", installed, input='echo "venv=$VIRTUAL_ENV"; exit 3\n')
    assert out.returncode == 3 and "/envs/9.9.9" in out.stdout


def test_virtualenv_backend(home, fake_wheel):
    out = jwenv("install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import",
                "--backend", "virtualenv", "--name", "venv-fake", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["backend"] == "virtualenv"
    run = jwenv("run", "venv-fake", "--", "strun", "--exit", "4")
    assert run.returncode == 4  # the console script works after the move from staging


def test_export_then_install_from_the_lock(home, installed, tmp_path):
    assert jwenv("pin", installed, "jwst_1234.pmap").returncode == 0
    lock = tmp_path / "env.lock"
    assert jwenv("export", installed, "-o", str(lock)).returncode == 0
    text = lock.read_text()
    assert text.startswith("# jwenv lock 1\n")
    assert "# crds-context: jwst_1234.pmap" in text and "# jwst: 9.9.9" in text
    out = jwenv("install", "--lock", str(lock), "--name", "copy", "--check", "import", "--json")
    assert out.returncode == 0, out.stderr
    copy = json.loads(out.stdout)
    original = json.loads(jwenv("info", installed, "--json").stdout)
    assert copy["packages"] == original["packages"]
    assert copy["crds_context"] == "jwst_1234.pmap"
    assert copy["python_version"] == original["python_version"]
    assert copy["strategy"] == "lock"


def test_bad_lock_files(home, tmp_path):
    not_a_lock = tmp_path / "reqs.txt"
    not_a_lock.write_text("numpy==1.0\n")
    _one_line_error(jwenv("install", "--lock", str(not_a_lock)), "is not a jwenv lock")
    _one_line_error(jwenv("install", "--lock", str(tmp_path / "missing")), "cannot read lock")
    _one_line_error(jwenv("install"), "give a VERSION or --lock")


def test_available_lists_releases_with_contexts_and_installed(home, installed, tmp_path,
                                                             monkeypatch):
    from test_releases import _pypi_json

    data = _pypi_json()
    data["releases"]["9.9.9"] = [{"upload_time_iso_8601": "2026-10-01T00:00:00Z",
                                  "requires_python": ">=3.10", "yanked": False}]
    index = tmp_path / "jwst.json"
    index.write_text(json.dumps(data))
    monkeypatch.setenv("JWENV_PYPI_URL", index.as_uri())  # urllib reads file:// URLs
    rows = {r["version"]: r for r in json.loads(jwenv("available", "--json").stdout)}
    assert rows["9.9.9"]["installed"] == ["9.9.9"]
    assert rows["1.20.2"]["crds_context"] == "jwst_1464.pmap"
    assert rows["1.20.2"]["dms_build"] == "B12.1.1"
    assert rows["1.20.2"]["released"] == "2025-11-03"
    assert rows["1.20.2"]["requires_python"] == ">=3.11,<3.14"
    assert "0.15.1" not in rows and "3.1.0rc1" not in rows  # git-only / prerelease: --all
    every = {r["version"]: r for r in json.loads(jwenv("available", "--all", "--json").stdout)}
    assert every["0.15.1"]["source"] == "git" and every["0.15.1"]["released"] == "2020-03-10"
    assert "jwst_1464.pmap" in jwenv("available").stdout


def test_repair_rebuilds_from_the_envs_own_lock(home, installed):
    assert jwenv("pin", installed, "jwst_0777.pmap").returncode == 0
    before = json.loads(jwenv("info", installed, "--json").stdout)
    out = jwenv("repair", installed)
    assert out.returncode == 0, out.stderr
    after = json.loads(jwenv("info", installed, "--json").stdout)
    assert after["created"] >= before["created"] and after["strategy"] == "lock"
    assert after["packages"] == before["packages"]
    assert after["crds_context"] == "jwst_0777.pmap"
