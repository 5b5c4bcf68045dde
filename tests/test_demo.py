"""`jwenv demo` end to end on two real releases, offline (the README's main job)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import jwenv

pytestmark = pytest.mark.integration


def test_demo_runs_the_chain_offline_and_compares_every_level(real_env, real_home, tmp_path):
    for version in ("1.20.2", "3.0.0"):
        real_env(version)  # shared with the other integration tests
    env = dict(os.environ, JWENV_HOME=str(real_home))
    out = jwenv("demo", "--versions", "1.20.2,3.0.0", "-o", str(tmp_path / "demo"), "--json",
                env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["envs"] == ["1.20.2", "3.0.0"]
    context = result["program"]["context"]
    for run in result["results"]:
        assert run["ok"], run["error"]
        # grouped by the release's rules: the background has its own level-2/3 products
        assert [r["stage"] for r in run["runs"]] == [1, 1, 1, 2, 2, 2, 3, 3]
        out_dir = Path(run["output_dir"])
        (i2d,) = out_dir.glob("jw01234-o001_t001_nircam_clear-f200w-sub400p_i2d.fits")
        with fits.open(i2d) as hdul:
            assert hdul[0].header["CAL_VER"] == run["jwst_version"]
            assert hdul[0].header["CRDS_CTX"] == context
    names = [f["name"] for f in result["comparison"]["files"]]
    for level in ("_rate.fits", "_cal.fits", "_i2d.fits", "_cat.ecsv"):
        assert any(n.endswith(level) for n in names), level
    rate = next(f for f in result["comparison"]["files"] if f["name"].endswith("_rate.fits"))
    cal_ver = {d["keyword"]: d for d in rate["provenance"]["versions"]}["CAL_VER"]
    assert (cal_ver["a"], cal_ver["b"]) == ("1.20.2", "3.0.0")
    # the inputs were generated once, outside every version's output directory
    data = Path(result["program"]["uncal"][0]).parent
    assert all(data != Path(r["output_dir"]) for r in result["results"])
