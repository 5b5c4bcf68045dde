"""fastrun: which `jwenv run` forms skip Typer, and what the fast path does."""

from __future__ import annotations

import pytest

from helpers import cli, strun_report
from jwenv.fastrun import parse_simple_run


@pytest.mark.parametrize(("opts", "parsed"), [
    (["1.20.2"], ("1.20.2", None, None)),
    (["--offline", "1.20.2"], ("1.20.2", None, True)),
    (["1.20.2", "--online"], ("1.20.2", None, False)),
    (["--crds-context", "jwst_1464.pmap", "x"], ("x", "jwst_1464.pmap", None)),
    (["--crds-context=1464", "x"], ("x", "1464", None)),
])
def test_simple_forms_are_parsed_here(opts, parsed):
    assert parse_simple_run(opts) == parsed


@pytest.mark.parametrize("opts", [[], ["--install", "x"], ["a", "b"], ["--crds-context"],
                                  ["--help"], ["--offline"]])
def test_anything_else_goes_to_typer(opts):
    assert parse_simple_run(opts) is None


def test_the_fast_path_runs_only_what_exists(installed):
    out = cli("run", "--offline", installed, "--", "python", "-c", "pass")
    assert out.returncode == 0, out.stderr
    missing = cli("run", "not-installed", "--", "strun")
    assert missing.returncode == 1
    assert "no environment named 'not-installed'" in missing.stderr
    assert cli("run", installed, "--").stderr.startswith("jwenv: error: no command given")


def test_install_flag_goes_through_the_full_cli(installed, capfd):
    # --install is Typer's: an installed env is used as is (no build, no index)
    out = cli("run", "--install", installed, "--", "strun", "--exit", "3")
    assert out.returncode == 3
    assert strun_report(capfd.readouterr().out)["argv"] == ["--exit", "3"]
