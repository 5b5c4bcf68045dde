"""`jwenv reprocess`: input validation (no env needed) and the real chain offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from helpers import cli, jwenv
from jwenv import offline
from jwenv import reprocess as rp
from jwenv.errors import BadInput


def _fits(path: Path, **header) -> Path:
    hdu = fits.PrimaryHDU()
    for key, value in header.items():
        hdu.header[key] = value
    fits.HDUList([hdu, fits.ImageHDU(np.zeros((4, 4), "f4"), name="SCI")]).writeto(path)
    return path


def test_classify_levels_and_backgrounds(tmp_path):
    uncal = _fits(tmp_path / "jw1_uncal.fits", TELESCOP="JWST", EXP_TYPE="NRC_IMAGE")
    rate = _fits(tmp_path / "jw2_rate.fits", TELESCOP="JWST", BKGDTARG=True)
    cal = _fits(tmp_path / "jw3_cal.fits", TELESCOP="JWST")
    items = rp.classify([uncal, rate, cal])
    assert [(i.stage, i.background, i.base) for i in items] == [
        (1, False, "jw1"), (2, True, "jw2"), (3, False, "jw3")]
    assert rp.parse_stages(None, items) == [1, 2, 3]
    assert rp.parse_stages("2,3", rp.classify([rate, cal])) == [2, 3]


def test_association_input(tmp_path):
    sci = _fits(tmp_path / "jw1_rate.fits", TELESCOP="JWST")
    bkg = _fits(tmp_path / "jw2_rate.fits", TELESCOP="JWST")
    asn = tmp_path / "x_image2_asn.json"
    asn.write_text(json.dumps({"asn_type": "image2", "products": [{"members": [
        {"expname": "jw1_rate.fits", "exptype": "science"},
        {"expname": "jw2_rate.fits", "exptype": "background"}]}]}))
    items = rp.classify([asn])
    assert [(i.path, i.stage, i.background) for i in items] == [(sci, 2, False),
                                                                 (bkg, 2, True)]


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: _fits(d / "x_uncal.fits", TELESCOP="HST"), "is not a JWST product"),
    (lambda d: (d / "x_uncal.fits").write_text("not fits") and d / "x_uncal.fits",
     "is not a FITS file"),
    (lambda d: _fits(d / "x_weird.fits", TELESCOP="JWST"), "cannot tell the stage"),
    (lambda d: d / "missing_uncal.fits", "no such input"),
    (lambda d: (d / "e_asn.json").write_text('{"asn_type": "image3", "products": []}')
     and d / "e_asn.json", "empty association"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(BadInput, match=message):
        rp.classify([path])
    out = cli("reprocess", "any-env", str(path), "-o", str(tmp_path / "out"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("jwenv: error:")
    assert message in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("value", "message"), [("4", "stages are 1, 2 and 3"),
                                                ("1,3", "consecutive"), ("x", "stage numbers"),
                                                ("1", "start at stage 2")])
def test_bad_stages(tmp_path, value, message):
    items = rp.classify([_fits(tmp_path / "a_rate.fits", TELESCOP="JWST")])
    with pytest.raises(BadInput, match=message):
        rp.parse_stages(value, items)


def test_step_args_must_name_a_step():
    assert rp.split_step_args(["--steps.jump.rejection_threshold=5"]) == [
        ("jump", "--steps.jump.rejection_threshold=5")]
    with pytest.raises(BadInput):
        rp.split_step_args(["--verbose"])


# -- the real chain (integration) ------------------------------------------------------
@pytest.fixture(scope="module")
def program(real_env, tmp_path_factory):
    """The synthetic 3-exposure program: made by the older release, readable by both."""
    envs = [real_env("1.20.2").env, real_env("3.0.0").env]
    return offline.prepare(envs, tmp_path_factory.mktemp("program"), program=True)


def _cli_env(real_home, program) -> dict[str, str]:
    return dict(os.environ, JWENV_HOME=str(real_home), CRDS_PATH=str(program.crds_path),
                CRDS_IGNORE_MAPPING_CHECKSUM="1")


def _catalog_matches_truth(catalog: Path, truth: Path, tol_arcsec: float) -> None:
    m = offline.match_truth(catalog, truth, tol_arcsec)
    assert m["recovered"] == m["injected"] == 40, m


@pytest.mark.integration
def test_full_chain_under_two_releases_and_compare(real_env, real_home, program, tmp_path):
    real_env("3.0.0")
    out = tmp_path / "runs"
    proc = jwenv("compare", "1.20.2", "3.0.0", "--reprocess", "-j", "2", "-o", str(out),
                 "--offline", "--crds-context", program.context, "--json", "--",
                 *[str(p) for p in program.uncal], env=_cli_env(real_home, program))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    for result in report["runs"]:
        assert result["ok"], result["error"]
        d = Path(result["output_dir"])
        rates = sorted(d.glob("*_rate.fits"))
        cals = sorted(d.glob("*_cal.fits"))
        (i2d,) = d.glob("*-jwenv_*_i2d.fits")
        (cat,) = d.glob("*_cat.ecsv")
        assert len(rates) == 3 and len(cals) == 2  # the background has no cal product
        with fits.open(rates[0]) as h:
            assert h[0].header["S_JUMP"] == "COMPLETE" and h[0].header["S_RAMP"] == "COMPLETE"
        with fits.open(cals[0]) as h:
            for key in ("S_WCS", "S_FLAT", "S_PHOTOM", "S_BKDSUB"):
                assert h[0].header[key] == "COMPLETE", key
        with fits.open(i2d) as h:
            for key in ("S_TWKREG", "S_SKYMAT", "S_OUTLIR", "S_RESAMP"):
                assert h[0].header[key] == "COMPLETE", key
            assert h[0].header["CAL_VER"] == result["jwst_version"]
        _catalog_matches_truth(cat, Path(program.report["truth"]), 0.05)
        assert (d / "logs").is_dir() and len(list((d / "logs").glob("stage*.log"))) == 6
    (comparison,) = report["comparisons"]
    names = {f["name"] for f in comparison["files"]}
    for level in ("_rate.fits", "_cal.fits", "_i2d.fits", "_cat.ecsv"):
        assert any(n.endswith(level) for n in names), level
    # a re-run finds everything up to date
    again = jwenv("reprocess", "1.20.2", *[str(p) for p in program.uncal], "-o", str(out),
                  "--offline", "--crds-context", program.context, "--json",
                  env=_cli_env(real_home, program))
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(r["up_to_date"] for r in json.loads(again.stdout)["results"][0]["runs"])


@pytest.mark.integration
def test_restart_from_rate_products(real_env, real_home, program, tmp_path):
    """How archive users work: download rate files, restart at stage 2."""
    env = real_env("1.20.2")
    stage1 = tmp_path / "stage1"
    for uncal in program.uncal:
        rc = env.env.run(["strun", "jwst.pipeline.Detector1Pipeline", str(uncal),
                          "--output_dir", str(stage1)], cache=program.cache,
                         log=tmp_path / "d1.log")
        assert rc == 0, (tmp_path / "d1.log").read_text()[-2000:]
    rates = sorted(stage1.glob("*_rate.fits"))
    proc = jwenv("reprocess", "1.20.2", *[str(p) for p in rates], "--stages", "2",
                 "-o", str(tmp_path / "out"), "--offline", "--crds-context", program.context,
                 "--json", env=_cli_env(real_home, program))
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(proc.stdout)["results"][0]["runs"]
    assert [r["stage"] for r in runs] == [2, 2]  # the background joins as a member only
    assert sorted(p.name for p in stage1.iterdir()) == sorted(
        [*(p.name for p in rates), *(p.name for p in stage1.glob("*_rateints.fits")),
         *(p.name for p in stage1.glob("*_trapsfilled.fits"))])  # inputs untouched


@pytest.mark.integration
def test_missing_reference_is_crds_own_message(real_env, real_home, program, tmp_path):
    real_env("1.20.2")
    bad = tmp_path / "jw01234001001_01101_00001_nrca1_uncal.fits"
    bad.write_bytes(program.uncal[0].read_bytes())
    fits.setval(bad, "DETECTOR", value="NRCA1")  # the local context serves NRCB1 only
    out_dir = tmp_path / "out"
    proc = jwenv("reprocess", "1.20.2", str(bad), "--stages", "1", "-o", str(out_dir),
                 "--offline", "--crds-context", program.context,
                 env=_cli_env(real_home, program))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jwenv: error: stage 1 (Detector1Pipeline) failed")
    assert "Error determining best reference for '" in last and "NRCA1" in last
    assert not list((out_dir / "1.20.2").glob("*.fits"))  # nothing that looks complete


@pytest.mark.integration
def test_doctor_deep_tells_era_pins_from_todays(real_env, real_home):
    """1.20.2 with today's photutils (3.0) fails Image3's tweakreg; jwenv's era-correct
    environment runs the whole chain. An import check passes for both."""
    env = dict(os.environ, JWENV_HOME=str(real_home))
    real_env("1.20.2")
    good = jwenv("doctor", "1.20.2", "--deep", "--json", env=env)
    assert good.returncode == 0, good.stdout[-3000:]
    checks = json.loads(good.stdout)["1.20.2"]["checks"]
    assert checks[-1]["check"] == "catalog against the truth table" and checks[-1]["ok"]
    latest = jwenv("install", "1.20.2", "--deps", "latest", "--name", "1.20.2-latest",
                   "--check", "import", "--json", env=env)
    assert latest.returncode == 0, latest.stderr[-2000:]
    packages = json.loads(latest.stdout)["packages"]
    assert any(p.startswith("photutils==3.") for p in packages), packages
    bad = jwenv("doctor", "1.20.2-latest", "--deep", "--json", env=env)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)["1.20.2-latest"]
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed[0]["check"].startswith("stage 3 Image3Pipeline")
    assert "xcentroid" in report["checks"][-1]["detail"]  # tweakreg's own complaint
