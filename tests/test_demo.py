"""`jwenv demo` end to end on two real releases, offline (issue 4's main job)."""

from __future__ import annotations

import json
import os

import pytest
from astropy.io import fits

from conftest import jwenv

pytestmark = pytest.mark.integration


def test_demo_runs_offline_and_compares(real_env, real_home, tmp_path):
    for version in ("1.20.2", "3.0.0"):
        real_env(version)  # shared with the other integration tests
    env = dict(os.environ, JWENV_HOME=str(real_home))
    out = jwenv("demo", "--versions", "1.20.2,3.0.0", "-o", str(tmp_path / "demo"), "--json",
                env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["envs"] == ["1.20.2", "3.0.0"]
    context = result["program"]["context"]
    for run in result["runs"]:
        assert run["returncode"] == 0
        rates = [f for f in os.listdir(run["output_dir"]) if f.endswith("_rate.fits")]
        assert len(rates) == 1
        with fits.open(os.path.join(run["output_dir"], rates[0])) as hdul:
            header = hdul[0].header
            assert header["CAL_VER"] == run["jwst_version"]
            assert header["CRDS_CTX"] == context
            assert header["R_SATURA"].endswith(".fits") and "9000" in header["R_SATURA"]
            assert header["S_JUMP"] == "COMPLETE" and header["S_RAMP"] == "COMPLETE"
    files = {f["name"]: f for f in result["comparison"]["files"]}
    rate = next(f for name, f in files.items() if name.endswith("_rate.fits"))
    cal_ver = {d["keyword"]: d for d in rate["provenance"]["versions"]}["CAL_VER"]
    assert (cal_ver["a"], cal_ver["b"]) == ("1.20.2", "3.0.0")
    # the inputs were generated once, by the older release, and never written to again
    uncal = result["program"]["uncal"][0]
    assert os.path.dirname(uncal) not in {r["output_dir"] for r in result["runs"]}
