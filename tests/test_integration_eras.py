"""Old releases get environments that work, each by a general strategy.

Real installs: 0.15.1 from git (the user's own example; never on PyPI) on the Python of its
era, 1.12.5 through its operational pins, new releases resolved as of their release date.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import jwenv
from jwenv import offline

pytestmark = pytest.mark.integration


def _healthy(env) -> dict:
    m = env.env.manifest
    assert m.health["ok"], m.health
    names = [c["check"] for c in m.health["checks"]]
    assert names == ["import jwst", "import pipelines", "strun",
                     "GroupScaleStep on a tiny exposure"]
    return m.health


def test_0_15_1_from_git_on_the_python_of_its_era(real_env, jwst_mirror):
    env = real_env("0.15.1")
    m = env.env.manifest
    assert (m.jwst_version, m.source, m.crds_context) == ("0.15.1", "git", "jwst_0586.pmap")
    assert m.requirement == f"jwst @ git+{jwst_mirror}@0.15.1"
    assert m.python_version.startswith("3.8."), m.python_reason  # numpy 1.18's wheels
    assert m.strategy in ("ops", "dated")
    health = _healthy(env)
    step = health["checks"][-1]["detail"]
    assert step["CAL_VER"] == "0.15.1" and step["S_GRPSCL"] == "COMPLETE"
    pins = {p.split("==")[0].lower(): p for p in m.packages if "==" in p}
    assert pins["numpy"].startswith("numpy==1.1")  # the era's numpy, not today's


def test_1_12_5_through_its_operational_pins(real_env, real_home):
    env = real_env("1.12.5")
    m = env.env.manifest
    assert m.strategy == "ops", m.strategy_log
    _healthy(env)
    # the sdp pins bound what got installed
    assert "gwcs==0.19.0" in m.packages and "numpy==1.25.2" in m.packages
    lock = jwenv("export", "1.12.5", env=dict(os.environ, JWENV_HOME=str(real_home)))
    assert "# strategy: ops" in lock.stdout and '"numpy<=1.25.2"' in lock.stdout


def test_new_releases_resolve_as_of_their_date(real_env):
    for version in ("1.20.2", "3.0.0"):
        m = real_env(version).env.manifest
        assert m.strategy == "dated", m.strategy_log
        assert [a["strategy"] for a in m.strategy_log] == ["ops", "dated"]
        assert "no requirements-sdp.txt" in m.strategy_log[0]["detail"]
    pins = set(real_env("1.20.2").env.manifest.packages)
    # today's photutils 3.0 breaks 1.20.2's tweakreg; the release's date gives 2.x
    assert any(p.startswith("photutils==2.") for p in pins), sorted(pins)


def test_doctor_reruns_the_check(real_env, real_home):
    real_env("1.12.5")
    out = jwenv("doctor", "1.12.5", "--json", env=dict(os.environ, JWENV_HOME=str(real_home)))
    assert out.returncode == 0, out.stdout[-2000:]
    assert json.loads(out.stdout)["1.12.5"]["ok"]


def test_the_users_example_compare_0_15_1_with_3_0_0_offline(real_env, real_home, tmp_path):
    """`jwenv compare 0.15.1 3.0.0 -- strun jwst.pipeline.Detector1Pipeline x_uncal.fits`,
    offline, on an exposure and CRDS cache that 0.15.1's own datamodels wrote."""
    old, new = real_env("0.15.1"), real_env("3.0.0")
    program = offline.prepare([old.env, new.env], tmp_path / "program")
    env = dict(os.environ, JWENV_HOME=str(real_home), CRDS_PATH=str(program.crds_path),
               CRDS_IGNORE_MAPPING_CHECKSUM="1")
    out = jwenv("compare", "0.15.1", "3.0.0", "-o", str(tmp_path / "runs"), "--offline",
                "--crds-context", program.context, "--json", "--",
                "strun", "jwst.pipeline.Detector1Pipeline", str(program.uncal[0]), env=env)
    assert out.returncode == 1, out.stderr[-3000:]  # they differ, and both ran
    report = json.loads(out.stdout)
    assert [r["returncode"] for r in report["runs"]] == [0, 0]
    rate = next(f for f in report["comparisons"][0]["files"]
                if f["name"].endswith("_rate.fits"))
    prov = rate["provenance"]
    versions = {d["keyword"]: (d["a"], d["b"]) for d in prov["versions"]}
    assert versions["CAL_VER"] == ("0.15.1", "3.0.0")
    assert versions["CRDS_CTX"] == (program.context, program.context)
    # 3.0.0 skips persistence by default: its references and step status differ
    assert "R_PERSAT" in {d["keyword"] for d in prov["reference_files"]}
    assert "S_PERSIS" in {d["keyword"] for d in prov["step_status"]}
    sci = next(i for i in rate["images"] if i["extension"].startswith("SCI"))
    assert sci["n_beyond_tolerance"] > 0
