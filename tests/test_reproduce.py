"""reproduce: rerun what made archive products and say why they differ."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from helpers import archive_env, cli, jwenv, one_line_error
from jwenv import compare, provenance
from jwenv import reproduce as rep
from jwenv.errors import BadInput


def _product(path: Path, data: float = 1.0, **header) -> Path:
    hdu = fits.PrimaryHDU()
    cards = {"TELESCOP": "JWST", "CAL_VER": "3.0.0", "CRDS_CTX": "jwst_9000.pmap",
             "R_FLAT": "crds://jwst_nircam_flat_9000.fits", "S_FLAT": "COMPLETE",
             "S_PHOTOM": "COMPLETE", **header}
    for key, value in cards.items():
        hdu.header[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([hdu, fits.ImageHDU(np.full((4, 4), data, "f4"), name="SCI")]).writeto(path)
    return path


@pytest.mark.parametrize(("name", "header", "message"), [
    ("jw1_uncal.fits", {"CAL_VER": None, "SDP_VER": "2025_1",
                        "DATAMODL": "Level1bModel"}, "is a raw exposure"),
    ("jw1_cal.fits", {"TELESCOP": "HST"}, "is not a JWST product"),
    ("jw1_x1d.fits", {}, "jwenv reproduces *_rate, *_rateints, *_cal, *_calints and *_i2d"),
])
def test_products_that_cannot_be_reproduced(tmp_path, name, header, message):
    p = _product(tmp_path / name, **{k: v for k, v in header.items() if v is not None})
    if header.get("CAL_VER", "") is None:
        fits.delval(p, "CAL_VER")
    with pytest.raises(BadInput, match=message.replace("*", r"\*")):
        rep.targets([p])


def test_recorded_parameters_become_step_arguments():
    log = provenance.PipelineLog("calwebb_detector1", step="Detector1Pipeline", parameters={
        "save_calibrated_ramp": False, "steps": {
            "jump": {"rejection_threshold": 5.0, "maximum_cores": "1", "output_dir": None,
                     "pre_hooks": [], "skip": False, "int_name": ""},
            "persistence": {"skip": True, "save_persistence": None}}})
    facts = provenance.Provenance("x", "calibrated", release="3.0.0", logs=[log])
    assert rep.recorded_arguments(facts, "Detector1Pipeline") == [
        "--steps.jump.rejection_threshold=5.0", "--steps.jump.maximum_cores=1",
        "--steps.jump.skip=False", "--steps.persistence.skip=True"]
    assert rep.recorded_arguments(facts, "Image2Pipeline") == []
    old = provenance.Provenance("x", "calibrated", release="1.12.5", logs=None)
    assert rep.recorded_arguments(old, "Detector1Pipeline") == []


def test_reasons_come_in_the_order_a_person_checks(tmp_path):
    a = _product(tmp_path / "a" / "x_cal.fits")
    b = _product(tmp_path / "b" / "x_cal.fits", data=2.0, S_PHOTOM="SKIPPED",
                 R_FLAT="crds://jwst_nircam_flat_9100.fits")
    c = compare.compare_paths(a, b, ignore_keywords=rep.IGNORED_KEYWORDS)
    found = rep.reasons(c, provenance.read(a), provenance.read(b))
    assert found[0] == "R_FLAT: crds://jwst_nircam_flat_9000.fits → " \
                       "crds://jwst_nircam_flat_9100.fits"
    assert found[1] == "S_PHOTOM: COMPLETE → SKIPPED"
    assert found[2].startswith("data SCI: 16 value(s) beyond tolerance")
    same = compare.compare_paths(a, a, ignore_keywords=rep.IGNORED_KEYWORDS)
    assert rep.reasons(same, provenance.read(a), provenance.read(a)) == []


def test_cli_usage_is_one_line(tmp_path):
    one_line_error(cli("reproduce", str(tmp_path / "x_cal.fits")), "usage: jwenv reproduce")


# -- real products (integration) ------------------------------------------------------------
def _reproduce(real_home, archive, *args):
    out = jwenv("reproduce", *map(str, args), "--json",
                env=archive_env(real_home, archive.program))
    data = json.loads(out.stdout) if out.stdout.strip() else None
    return out, data


def _product_named(archive, suffix: str) -> Path:
    name = archive.program.uncal[0].name.replace("_uncal", f"_{suffix}")
    return archive.products / name


@pytest.mark.integration
def test_install_like_picks_the_release_and_context(real_home, archive):
    cal = _product_named(archive, "cal")
    env = archive_env(real_home, archive.program)
    out = jwenv("install", "--like", str(cal), "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    manifest = json.loads(out.stdout)
    assert (manifest["name"], manifest["jwst_version"], manifest["crds_context"]) == (
        "3.0.0+jwst_9000", "3.0.0", "jwst_9000.pmap")
    again = jwenv("install", f"@{cal}", env=env)
    assert again.returncode == 0
    assert "environment 3.0.0+jwst_9000" in again.stderr  # reused, not rebuilt


@pytest.mark.integration
def test_the_archive_products_are_reproduced(real_home, archive, tmp_path):
    level3 = next(archive.products.glob("jw01234-o001_*_i2d.fits"))
    products = [_product_named(archive, "rate"), _product_named(archive, "cal"), level3]
    out, data = _reproduce(real_home, archive, *products, "--inputs",
                           *archive.program.uncal, "-o", tmp_path / "rerun", "--offline")
    assert out.returncode == 0, (out.stderr[-3000:], data)
    assert [v["verdict"] for v in data["verdicts"]] == ["reproduced"] * 3
    # the product's own step parameter (jump.rejection_threshold=5) was passed back
    rate = provenance.read(Path(data["verdicts"][0]["reproduction"]))
    assert rate.parameters["calwebb_detector1"]["steps"]["jump"]["rejection_threshold"] == 5.0


@pytest.mark.integration
def test_another_context_differs_by_the_flat_first(real_home, archive, tmp_path):
    out, data = _reproduce(real_home, archive, _product_named(archive, "cal"), "--inputs",
                           *archive.program.uncal, "-o", tmp_path / "rerun", "--offline",
                           "--crds-context", "jwst_9001.pmap")
    assert out.returncode == 1, out.stderr[-3000:]
    (verdict,) = data["verdicts"]
    assert verdict["verdict"] == "differs" and verdict["context"] == "jwst_9001.pmap"
    change = archive.program.report["second_context"]
    assert verdict["reasons"][0] == f"R_FLAT: crds://{change['old']} → crds://{change['new']}"
    assert any(r.startswith("data SCI") for r in verdict["reasons"])


@pytest.mark.integration
def test_a_changed_step_parameter_is_named(real_home, archive, tmp_path):
    out, data = _reproduce(real_home, archive, _product_named(archive, "rate"), "--inputs",
                           *archive.program.uncal, "-o", tmp_path / "rerun", "--offline",
                           "--steps.jump.rejection_threshold=4")
    assert out.returncode == 1, out.stderr[-3000:]
    (verdict,) = data["verdicts"]
    assert verdict["reasons"][0] == \
        "parameter calwebb_detector1.steps.jump.rejection_threshold: 5.0 → 4.0"


@pytest.mark.integration
def test_bad_reproductions_are_one_line(real_home, archive, tmp_path):
    env = archive_env(real_home, archive.program)
    rate, uncal = _product_named(archive, "rate"), archive.program.uncal
    hst = tmp_path / rate.name
    shutil.copy(rate, hst)
    fits.setval(hst, "TELESCOP", value="HST")
    for args, needle in (
            ([hst, "--inputs", *uncal], "is not a JWST product"),
            ([uncal[0], "--inputs", *uncal], "is a raw exposure"),
            ([rate, "--inputs", *uncal, "--crds-context", "jwst_9999.pmap"],
             "CRDS context jwst_9999.pmap is not in the local CRDS cache"),
            ([rate, "--inputs", uncal[1]], f"no input is exposure {uncal[0].name[:-11]}")):
        out = jwenv("reproduce", *map(str, args), "--offline", "-o", str(tmp_path / "o"),
                    env=env)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        one_line_error(out, needle)


@pytest.mark.integration
def test_provenance_and_refs_of_the_archive(real_home, archive):
    env = archive_env(real_home, archive.program)
    out = jwenv("provenance", str(archive.products), "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    assert len(data["products"]) >= 15 and len(data["groups"]) < len(data["products"])
    assert {g["release"] for g in data["groups"]} == {"3.0.0"}
    cals = sorted(archive.products.glob("*_cal.fits"))
    out = jwenv("refs", *map(str, cals), "--context", "jwst_9001.pmap", "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["summary"] == f"flat changes for {len(cals)} of {len(cals)} products; " \
                                "nothing else changes"
