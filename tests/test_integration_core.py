"""The core end to end on real jwst releases from PyPI (network: PyPI only).

The CRDS server is unreachable here, so every step below also proves that the
run needs no network beyond the package index.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import jwenv

pytestmark = pytest.mark.integration

MAKE_UNCAL = """
import sys, numpy as np
try:
    from stdatamodels.jwst import datamodels as dm
except ImportError:
    from jwst import datamodels as dm
m = dm.RampModel(data=np.full((1, 4, 16, 16), 50.0, dtype=np.float32))
m.meta.instrument.name = "NIRCAM"; m.meta.instrument.detector = "NRCB1"
m.meta.instrument.filter = "F200W"; m.meta.instrument.pupil = "CLEAR"
m.meta.exposure.type = "NRC_IMAGE"; m.meta.exposure.readpatt = "BRIGHT2"
m.meta.exposure.nframes = 2; m.meta.exposure.frame_divisor = 4
m.meta.exposure.ngroups = 4; m.meta.exposure.nints = 1
m.meta.observation.date = "2024-01-01"; m.meta.observation.time = "00:00:00"
m.meta.subarray.name = "SUB16"; m.meta.subarray.xstart = 1; m.meta.subarray.ystart = 1
m.meta.subarray.xsize = 16; m.meta.subarray.ysize = 16
m.save(sys.argv[1])
"""


@pytest.fixture(scope="module")
def cli_env(real_home):
    """Environment for CLI subprocesses that share the session's real store."""
    return dict(os.environ, JWENV_HOME=str(real_home))


@pytest.mark.parametrize(("version", "context"), [("1.20.2", "jwst_1464.pmap"),
                                                  ("3.0.0", "jwst_1581.pmap")])
def test_version_and_pinned_context(real_env, cli_env, version, context):
    real_env(version)
    out = jwenv("run", version, "--", "python", "-c",
                "import jwst, os; print(jwst.__version__, os.environ['CRDS_CONTEXT'])",
                env=cli_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{version} {context}"


@pytest.mark.parametrize("version", ["1.20.2", "3.0.0"])
def test_group_scale_step_runs_offline(real_env, cli_env, version, tmp_path):
    env = real_env(version)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    uncal = inputs / "jw01234001001_01101_00001_nrcb1_uncal.fits"
    subprocess.run([str(env.python), "-c", MAKE_UNCAL, str(uncal)], check=True)
    before = sorted(p.name for p in inputs.iterdir())
    out_dir = tmp_path / "out"
    out = jwenv("run", version, "--", "strun", "jwst.group_scale.GroupScaleStep", str(uncal),
                "--disable-crds-steppars", "--output_dir", str(out_dir), env=cli_env,
                cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    product = out_dir / "jw01234001001_01101_00001_nrcb1_groupscalestep.fits"
    with fits.open(product) as hdul:
        assert hdul[0].header["CAL_VER"] == version
        assert hdul[0].header["S_GRPSCL"] == "COMPLETE"
        assert float(hdul["SCI"].data[0, 0, 0, 0]) == pytest.approx(100.0)  # 50 * 4 / 2
    assert sorted(p.name for p in inputs.iterdir()) == before  # input dir untouched


def test_exit_code_passes_through(real_env, cli_env):
    real_env("1.20.2")
    out = jwenv("run", "1.20.2", "--", "python", "-c", "import sys; sys.exit(7)", env=cli_env)
    assert out.returncode == 7


def test_cached_reinstall_is_fast(real_env, cli_env):
    real_env("1.20.2")
    import time
    t0 = time.monotonic()
    out = jwenv("install", "1.20.2", env=cli_env)
    assert out.returncode == 0 and "already installed" in out.stderr
    assert time.monotonic() - t0 < 5.0  # target 2 s: measured in benchmarks/bench_core.py


def test_two_concurrent_installs_yield_one_healthy_env(tmp_path):
    env = dict(os.environ, JWENV_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "jwenv", "install", "1.20.2", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=1200) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("already installed" in err for _o, err in outs) == 1
    listed = jwenv("list", "--json", env=env)
    import json
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["healthy"]) for r in rows] == [("1.20.2", True)]
    assert not list((tmp_path / "home" / "staging").iterdir())


def test_virtualenv_backend_end_to_end(real_home, cli_env, tmp_path):
    out = jwenv("install", "1.20.2", "--backend", "virtualenv", "--name", "1.20.2-pip",
                "--json", env=cli_env)
    assert out.returncode == 0, out.stderr[-3000:]
    # the console script works after the move from staging
    run = jwenv("run", "1.20.2-pip", "--", "strun", "--help", env=cli_env)
    assert run.returncode in (0, 2) and "usage" in (run.stdout + run.stderr).lower()
    import json
    info = json.loads(jwenv("info", "1.20.2-pip", "--json", env=cli_env).stdout)
    assert info["backend"] == "virtualenv" and info["health"]["ok"]
    assert Path(info["path"]).name == "1.20.2-pip"


def test_lock_reproduces_a_real_environment(real_env, cli_env, tmp_path):
    real_env("1.20.2")
    lock = tmp_path / "1.20.2.lock"
    assert jwenv("export", "1.20.2", "-o", str(lock), env=cli_env).returncode == 0
    out = jwenv("install", "--lock", str(lock), "--name", "1.20.2-from-lock", "--json",
                env=cli_env)
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    copy = json.loads(out.stdout)
    original = json.loads(jwenv("info", "1.20.2", "--json", env=cli_env).stdout)
    assert copy["packages"] == original["packages"]
    assert copy["health"]["ok"] and copy["crds_context"] == "jwst_1464.pmap"


def test_git_only_release_with_unreachable_repository_is_one_line(cli_env):
    env = dict(cli_env, JWENV_JWST_GIT="https://git.invalid/spacetelescope/jwst")
    # A name of its own: the session store may already hold 0.15.1 from the mirror.
    out = jwenv("install", "0.15.1", "--name", "0.15.1-unreachable", env=env)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("jwenv: error: cannot reach jwst git repository "
                           "https://git.invalid/spacetelescope/jwst")
    assert "JWENV_JWST_GIT" in last
