"""like: the release and context that made a product (`install --like`, `@FILE`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from helpers import cli, jwenv, one_line_error, strun_report, tiny_fits
from jwenv import like, releases
from jwenv.errors import BadInput, UnknownVersion


def _product(path: Path, **header) -> Path:
    return tiny_fits(path, **{"TELESCOP": "JWST", **header})


def _index(*versions: str):
    index = releases.Index()
    for v in versions:
        index.releases[Version(v)] = releases.Release(Version(v), on_pypi=True)
    return lambda: index


def test_a_release_and_its_context(tmp_path):
    p = _product(tmp_path / "x_cal.fits", CAL_VER="1.12.5", CRDS_CTX="jwst_1130.pmap")
    m = like.maker_of(p)
    assert (m.version, m.context, m.request, m.name) == (
        "1.12.5", "jwst_1130.pmap", "1.12.5", "1.12.5+jwst_1130")


def test_a_development_version_needs_its_commit(tmp_path, monkeypatch):
    p = _product(tmp_path / "x_cal.fits", CAL_VER="1.12.6.dev12+gabc1234",
                 CRDS_CTX="jwst_1130.pmap")
    monkeypatch.setenv("JWENV_JWST_GIT", (tmp_path / "nowhere").as_uri())
    with pytest.raises(UnknownVersion) as err:
        like.maker_of(p, _index("1.12.4", "1.12.5", "1.13.0"))
    message = str(err.value)
    assert "made by jwst 1.12.6.dev12+gabc1234, a development version" in message
    assert message.endswith("the nearest release is 1.12.5") and "\n" not in message
    repo = tmp_path / "jwst"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.setenv("JWENV_JWST_GIT", repo.as_uri())
    m = like.maker_of(p, _index("1.12.5"))
    assert m.request == f"git+{repo.as_uri()}@abc1234"
    assert m.name == "1.12.6.dev12+gabc1234+jwst_1130"


@pytest.mark.parametrize(("header", "message"), [
    ({"CRDS_CTX": "jwst_1130.pmap", "SDP_VER": "2024_1"}, "records no CAL_VER"),
    ({"CAL_VER": "1.12.5"}, "records no CRDS_CTX"),
    ({"CAL_VER": "1.12.5", "CRDS_CTX": "hst_0001.pmap"}, "bad CRDS context"),
    ({"CAL_VER": "1.12.5", "CRDS_CTX": "jwst_1130.pmap", "TELESCOP": "HST"},
     "is not a JWST product"),
])
def test_what_cannot_say_what_made_it(tmp_path, header, message):
    with pytest.raises(BadInput, match=message):
        like.maker_of(_product(tmp_path / "x_cal.fits", **header))


def test_at_file_reuses_the_env_of_that_release_and_context(installed, tmp_path, capfd):
    assert cli("pin", installed, "jwst_1234.pmap").returncode == 0
    made = _product(tmp_path / "p_rate.fits", CAL_VER="9.9.9", CRDS_CTX="jwst_1234.pmap")
    out = cli("install", "--like", str(made), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == installed  # found, whatever its name
    assert "was made by jwst 9.9.9 with jwst_1234.pmap: environment 9.9.9" in out.stderr
    ran = cli("run", f"@{made}", "--", "strun", "--exit", "3")
    assert ran.returncode == 3
    assert strun_report(capfd.readouterr().out)["env"]["CRDS_CONTEXT"] == "jwst_1234.pmap"
    other = _product(tmp_path / "q_rate.fits", CAL_VER="9.9.9", CRDS_CTX="jwst_0042.pmap")
    one_line_error(cli("run", f"@{other}", "--", "strun"),
                   "no environment of jwst 9.9.9 with jwst_0042.pmap",
                   f"jwenv install --like {other}")


def test_at_file_from_the_console_script_reads_no_product_on_the_fast_path(installed,
                                                                           tmp_path):
    # `run @FILE` goes to the full CLI (the fast path never opens a FITS file)
    made = _product(tmp_path / "p_rate.fits", CAL_VER="9.9.9", CRDS_CTX="jwst_0001.pmap")
    out = jwenv("run", f"@{made}", "--", "strun")
    one_line_error(out, "no environment of jwst 9.9.9 with jwst_0001.pmap")
