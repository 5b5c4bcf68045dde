"""The synthetic NIRCam program and its local CRDS cache, run by real jwst releases offline.

Everything runs in real environments (``real_env``): the generator with the release's own
python, CRDS in serverless mode, strun with HTTP(S) proxies pointing at a closed port so
that any network access fails loudly instead of silently succeeding.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jwenv import scripts
from jwenv.crds import LocalCache

SCRIPT = scripts.path("make_program")

pytestmark = pytest.mark.integration

RELEASES = ["1.20.2", "3.0.0"]
NO_NETWORK = {  # CRDS uses requests, which honours these: any connection attempt fails
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}
# Steps that must run (and so need generated references) for a NIRCam imaging ramp.
DETECTOR1_COMPLETE = ["S_DQINIT", "S_SATURA", "S_IPC", "S_SUPERB", "S_REFPIX", "S_LINEAR",
                      "S_DARK", "S_JUMP", "S_RAMP"]
DETECTOR1_REFS = ["R_MASK", "R_SATURA", "R_SUPERB", "R_LINEAR", "R_DARK", "R_READNO",
                  "R_GAIN", "R_IPC"]


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run and fail with the output's tail (not a bare CalledProcessError)."""
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{cmd[:3]} exited {proc.returncode}:\n{tail}")
    return proc


def _offline_env(real: Any, info: dict[str, Any]) -> dict[str, str]:
    """What jwenv gives a run against the generated cache (crds.LocalCache), no network."""
    return real.environ(cache=LocalCache(Path(info["crds_path"]), info["context"]),
                        **NO_NETWORK)


def _generate(real: Any, out: Path) -> dict[str, Any]:
    env = {**real.env.environ(offline=True), **NO_NETWORK}  # as Env.run_script runs it
    proc = _run([real.python, SCRIPT, "--out", out, "--size", "64", "--seed", "0"], env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def program(real_env, tmp_path_factory):
    """One generated program per release (generation takes ~8 s: imports)."""
    cache: dict[str, tuple[Any, dict[str, Any]]] = {}

    def get(version: str) -> tuple[Any, dict[str, Any]]:
        if version not in cache:
            real = real_env(version)
            out = tmp_path_factory.mktemp(f"program-{version}")
            cache[version] = (real, _generate(real, out))
        return cache[version]

    return get


def test_generator_layout_resolves_in_crds(program):
    real, info = program("1.20.2")
    crds_path = Path(info["crds_path"])
    assert info["context"] == "jwst_9000.pmap"
    assert (crds_path / "config" / "jwst" / "server_config").is_file()
    assert (crds_path / "mappings" / "jwst" / info["context"]).is_file()
    assert len(info["uncal"]) == 1 and info["uncal"][0].endswith("_uncal.fits")
    assert Path(info["uncal"][0]).is_file()
    assert {"mask", "saturation", "superbias", "linearity", "dark", "readnoise", "gain",
            "ipc"} <= set(info["reference_types"])

    probe = textwrap.dedent("""
        import json, sys
        import crds
        try:
            from stdatamodels.jwst import datamodels
        except ImportError:
            from jwst import datamodels
        info = json.loads(sys.argv[1])
        pmap = crds.get_cached_mapping(info["context"])
        with datamodels.open(info["uncal"][0]) as model:
            params = model.get_crds_parameters()
        refs = crds.getreferences(params, reftypes=info["reference_types"] + ["flat"],
                                  context=info["context"], observatory="jwst")
        print(json.dumps({"name": pmap.name, "mappings": sorted(pmap.mapping_names()),
                          "refs": refs}))
    """)
    proc = _run([real.python, "-c", probe, json.dumps(info)], _offline_env(real, info))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == info["context"]
    assert "jwst_nircam_9000.imap" in result["mappings"]
    refs = result["refs"]
    assert "N/A" in refs.pop("flat").upper()  # unneeded types are N/A, not errors
    assert sorted(refs) == sorted(info["reference_types"])
    refdir = crds_path / "references" / "jwst" / "nircam"
    for reftype, path in refs.items():
        assert Path(path).is_file(), (reftype, path)
        assert Path(path).parent == refdir, (reftype, path)
        assert f"_{reftype}_" in Path(path).name


@pytest.mark.parametrize("version", RELEASES)
def test_detector1_offline(program, version, tmp_path):
    real, info = program(version)
    out = tmp_path / "out"
    out.mkdir()  # some releases' strun does not create --output_dir
    uncal = Path(info["uncal"][0])
    _run([real.bin / "strun", "jwst.pipeline.Detector1Pipeline", uncal, "--output_dir", out],
         _offline_env(real, info), cwd=tmp_path)

    from astropy.io import fits

    rate = out / uncal.name.replace("_uncal.fits", "_rate.fits")
    assert rate.is_file(), sorted(p.name for p in out.iterdir())
    with fits.open(rate) as hdul:
        header = hdul[0].header
        sci = hdul["SCI"].data
    assert header["CAL_VER"] == version
    assert header["CRDS_CTX"] == info["context"]
    statuses = {k: header[k] for k in header if k.startswith("S_")}
    assert all(statuses.get(k) == "COMPLETE" for k in DETECTOR1_COMPLETE), statuses
    refs = {k: header[k] for k in header if k.startswith("R_")}
    assert set(DETECTOR1_REFS) <= set(refs), refs
    generated = {p.name for p in (Path(info["crds_path"]) / "references").rglob("*.fits")}
    for key, value in refs.items():
        if value.upper() != "N/A":
            assert value.removeprefix("crds://") in generated, (key, value)

    # The rate image is meaningful: a ~150 DN/s sky, point sources above it, NaN only on
    # the reference-pixel border and the two dead pixels.
    import numpy as np

    assert sci.shape == (64, 64)
    inner = sci[4:, 4:]
    assert 135 < np.nanmedian(inner) < 165
    assert np.nanmax(inner) > 20 * np.nanmedian(inner)
    assert int(np.isnan(sci).sum()) == 64 * 4 * 2 - 16 + 2


# The full program (Detector1 -> Image2 -> Image3, catalog against the truth table) runs
# through `jwenv reprocess` under 1.20.2 and 3.0.0 in tests/test_reprocess.py.
