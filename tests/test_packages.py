"""`jwenv pip NAME -- install x`: into the environment, keeping its versions, recorded.

Offline: the packages are tiny wheels in a --find-links directory.
"""

from __future__ import annotations

import json

import pytest

from fakejwst import build_package_wheel
from helpers import cli, jwenv, one_line_error
from jwenv import locks, packages


@pytest.fixture
def wheels(tmp_path):
    where = tmp_path / "wheels"
    build_package_wheel(where, "helperdep", "1.0")
    build_package_wheel(where, "helperdep", "2.0")
    build_package_wheel(where, "wantsnew", "1.0", ("helperdep>=2",))
    return ["--find-links", str(where)]


def _version(env: str, dist: str) -> str:
    out = jwenv("run", env, "--", "python", "-c",
                f"import importlib.metadata as m; print(m.version('{dist}'))")
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def _manifest(env: str) -> dict:
    return json.loads(cli("info", env, "--json").stdout)


def test_install_keeps_versions_unless_upgrade_and_is_recorded(installed, wheels, tmp_path):
    out = jwenv("pip", installed, "--", "install", "helperdep==1.0", *wheels)
    assert out.returncode == 0, out.stderr
    assert f"jwenv: {installed}: helperdep==1.0; recorded" in out.stderr
    assert _version(installed, "helperdep") == "1.0"
    m = _manifest(installed)
    assert m["added"] == ["helperdep==1.0"] and "helperdep==1.0" in m["packages"]

    # wantsnew needs helperdep>=2: the installed 1.0 is kept, so it is refused in one line
    line = one_line_error(jwenv("pip", installed, "--", "install", "wantsnew", *wheels),
                          "could not install wantsnew into 9.9.9",
                          "jwenv pip 9.9.9 -- install --upgrade wantsnew")
    assert "Traceback" not in line
    assert _version(installed, "helperdep") == "1.0"
    assert _manifest(installed)["added"] == ["helperdep==1.0"]

    out = jwenv("pip", installed, "--", "install", "--upgrade", "wantsnew", *wheels)
    assert out.returncode == 0, out.stderr
    assert _version(installed, "helperdep") == "2.0"
    m = _manifest(installed)
    assert m["added"] == ["helperdep==1.0", "wantsnew"]
    assert {"helperdep==2.0", "wantsnew==1.0"} <= set(m["packages"])

    # the lock `jwenv export` writes carries both
    lock = tmp_path / "env.lock"
    assert cli("export", installed, "-o", str(lock)).returncode == 0
    read = locks.read_lock(lock)
    assert read.added == ["helperdep==1.0", "wantsnew"] and "wantsnew==1.0" in read.pins

    out = jwenv("pip", installed, "--", "uninstall", "wantsnew")
    assert out.returncode == 0, out.stderr
    assert _manifest(installed)["added"] == ["helperdep==1.0"]
    assert "wantsnew==1.0" not in _manifest(installed)["packages"]


def test_list_passes_through_and_nothing_installs_elsewhere(installed):
    out = jwenv("pip", installed, "--", "list")
    assert out.returncode == 0 and "jwst" in out.stdout and "9.9.9" in out.stdout
    one_line_error(cli("pip", installed, "--", "install", "x", "--python", "/usr/bin/python3"),
                   "always installs into the environment")
    one_line_error(cli("pip", installed, "--", "sync", "x.txt"), "usage: jwenv pip 9.9.9")
    one_line_error(cli("pip", installed, "--", "install"), "nothing to install")


@pytest.mark.parametrize(("args", "reqs"), [
    (["x", "--find-links", "d", "y>=2"], ["x", "y>=2"]),
    (["-U", "--index-url=https://i", "z[all]==1"], ["z[all]==1"]),
    (["-e", "./src", "-P", "numpy"], ["-e ./src"]),
])
def test_requirements_are_told_from_option_values(args, reqs):
    assert packages.split_args(args)[0] == reqs
    assert packages.requirement_name("Photutils[all]>=1.9") == "photutils"
