"""`jwenv compare` on fake releases: separate outputs, failures reported, exit codes."""

from __future__ import annotations

import json

import numpy as np
from astropy.io import fits

from fakejwst import build_wheel
from helpers import BASE_PYTHON, cli


def _install(tmp_path, version):
    wheel = build_wheel(tmp_path / f"w{version}", version)
    out = cli("install", str(wheel), "--python", str(BASE_PYTHON), "--check", "import")
    assert out.returncode == 0, out.stderr


def _uncal(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    path = inputs / "jw01_uncal.fits"
    data = np.full((24, 30), 3.0, dtype=">f4")  # exactly one FITS block: no padding at the end
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")])
    hdul[0].header["CAL_VER"] = "0.0"
    hdul.writeto(path)
    return path


def test_compare_runs_each_version_apart_and_finds_the_change(tmp_path):
    for v in ("9.9.9", "9.9.8"):
        _install(tmp_path, v)
    uncal = _uncal(tmp_path)
    before = uncal.read_bytes()
    out = cli("compare", "9.9.9", "9.9.8", "-j", "2", "-o", str(tmp_path / "runs"),
                "--json", "--", "strun", "fake.Pipeline", str(uncal))
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    dirs = [r["output_dir"] for r in report["runs"]]
    assert dirs == [str(tmp_path / "runs" / "9.9.9"), str(tmp_path / "runs" / "9.9.8")]
    assert all(r["command"][-2:] == ["--output_dir", d] for r, d in zip(report["runs"], dirs,
                                                                        strict=True))
    (rate,) = report["comparisons"][0]["files"]
    assert rate["name"] == "jw01_rate.fits"
    sci = next(h for h in rate["images"] if h["extension"].startswith("SCI"))
    assert (sci["n_beyond_tolerance"], sci["max_abs_diff"]) == (1, 9.0)
    assert uncal.read_bytes() == before
    assert sorted(p.name for p in uncal.parent.iterdir()) == ["jw01_uncal.fits"]


def test_a_failing_version_is_reported_and_the_rest_compare(tmp_path):
    for v in ("9.9.9", "9.9.8", "9.9.1"):
        _install(tmp_path, v)
    uncal = _uncal(tmp_path)
    out = cli("compare", "9.9.9", "9.9.1", "9.9.8", "-o", str(tmp_path / "runs"), "--",
                "strun", "fake.Pipeline", str(uncal))
    assert out.returncode == 2
    assert "9.9.1 exited 5: ERROR: this fake release always fails" in out.stderr
    assert "jw01_rate.fits" in out.stdout  # 9.9.9 and 9.9.8 were still compared


def test_compare_refuses_a_shared_output_dir(tmp_path):
    _install(tmp_path, "9.9.9")
    _install(tmp_path, "9.9.8")
    out = cli("compare", "9.9.9", "9.9.8", "--", "strun", "x", "--output_dir", "same",
                cwd=tmp_path)
    assert out.returncode == 2 and "each version gets its own directory" in out.stderr
    assert not (tmp_path / "jwenv-runs").exists()  # nothing made for a refused command
    out = cli("compare", "9.9.9", "--", "strun", "x", cwd=tmp_path)
    assert out.returncode == 2 and "usage: jwenv compare" in out.stderr
