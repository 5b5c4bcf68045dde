"""The seed's own example under 0.15.1: the imaging chain, stages 1-3, offline.

0.15.1 (2020, git only) runs Detector1 -> Image2 -> Image3 on the synthetic NIRCam program
that its own datamodels wrote, grouped by its own association rules, and the catalog finds
the injected stars. Then `compare 0.15.1 3.0.0 --reprocess` on the program 0.15.1 made and
3.0.0 topped up (`--extend`) compares every level: rate, cal, i2d and catalog.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import archive_env, jwenv
from jwenv import offline

pytestmark = pytest.mark.integration

PRODUCT = "jw01234-o001_t001_nircam_clear-f200w-sub400p"  # the star field's level 3


def _imap(program: offline.Program) -> dict[str, str]:
    text = (program.crds_path / "mappings" / "jwst" / "jwst_nircam_9000.imap").read_text()
    return ast.literal_eval(text.split("selector = ", 1)[1])


@pytest.fixture(scope="module")
def old_program(real_env, tmp_path_factory) -> offline.Program:
    """The 3-exposure program, every file written by 0.15.1."""
    return offline.prepare([real_env("0.15.1").env], tmp_path_factory.mktemp("p0151"),
                           program=True)


def test_the_generator_probes_what_0_15_1_reads(old_program):
    """Only the types 0.15.1's steps declare and its crds knows: drizpars (resample), no
    filteroffset (its crds has no such NIRCam type), no apcorr/abvegaoffset (its source
    catalog reads none); its refpix needs usable reference pixels."""
    report = old_program.report
    types = set(report["reference_types"])
    assert {"distortion", "flat", "photom", "area", "drizpars", "persat", "trapdensity",
            "trappars"} <= types
    assert not types & {"filteroffset", "apcorr", "abvegaoffset"}
    assert report["refpix_flags"] == "REFERENCE_PIXEL"
    assert _imap(old_program).get("apcorr", "N/A") == "N/A"  # unknown to its crds


def test_the_imaging_chain_under_0_15_1(real_env, real_home, old_program, tmp_path):
    out = tmp_path / "runs"
    proc = jwenv("reprocess", "0.15.1", *map(str, old_program.uncal), "-o", str(out),
                 "--offline", "--crds-context", old_program.context, "--json",
                 env=archive_env(real_home, old_program))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(proc.stdout)["results"]
    assert result["ok"], result["error"]
    # 0.15.1's own asn_generate grouped it: a level-2 product per exposure, one level 3
    # (its rules make none for the star-free background observation)
    assert result["grouping"]["source"] == "release rules"
    assert [r["stage"] for r in result["runs"]] == [1, 1, 1, 2, 2, 2, 3]
    assert {r["runner"] for r in result["runs"]} == {"warm"}
    d = Path(result["output_dir"])
    i2d, cat = d / f"{PRODUCT}_i2d.fits", d / f"{PRODUCT}_cat.ecsv"
    assert i2d.is_file() and cat.is_file()
    with fits.open(i2d) as h:
        header = h[0].header
    assert header["CAL_VER"] == "0.15.1" and header["CRDS_CTX"] == old_program.context
    for key in ("S_TWKREG", "S_SKYMAT", "S_OUTLIR", "S_RESAMP", "S_WCS", "S_FLAT",
                "S_PHOTOM", "S_PERSIS", "S_REFPIX"):
        assert header[key] == "COMPLETE", key
    assert header["R_DRZPAR"].endswith("jwst_nircam_drizpars_9000.fits")
    m = offline.match_truth(cat, old_program.truth, 0.05)
    assert m["recovered"] == m["injected"] == 40, m
    assert m["worst_arcsec"] < 0.01, m


def test_compare_0_15_1_with_3_0_0_at_every_level(real_env, real_home, tmp_path):
    """Made by 0.15.1, topped up by 3.0.0 (which writes the apcorr and abvegaoffset its
    source catalog needs), run by both, every product level compared."""
    old, new = real_env("0.15.1"), real_env("3.0.0")
    program = offline.prepare([old.env, new.env], tmp_path / "program", program=True)
    imap = _imap(program)
    for kind in ("apcorr", "abvegaoffset", "filteroffset", "drizpars"):
        assert imap[kind] == f"jwst_nircam_{kind}_9000.rmap", (kind, imap[kind])
    out = tmp_path / "runs"
    proc = jwenv("compare", "0.15.1", "3.0.0", "--reprocess", "-o", str(out), "--offline",
                 "--crds-context", program.context, "--json", "--",
                 *map(str, program.uncal), env=archive_env(real_home, program))
    assert proc.returncode == 1, proc.stderr[-3000:]  # both ran, and they differ
    report = json.loads(proc.stdout)
    assert [(r["env"], r["ok"]) for r in report["runs"]] == [("0.15.1", True),
                                                             ("3.0.0", True)]
    for run in report["runs"]:
        m = offline.match_truth(Path(run["output_dir"]) / f"{PRODUCT}_cat.ecsv",
                                program.truth, 0.05)
        assert m["recovered"] == m["injected"], (run["env"], m)
    (comparison,) = report["comparisons"]
    files = {f["name"]: f for f in comparison["files"]}
    for level in ("_rate.fits", "_cal.fits", "_i2d.fits", "_cat.ecsv"):
        assert any(n.endswith(level) for n in files), (level, sorted(files))
    assert f"{PRODUCT}_i2d.fits" in files and f"{PRODUCT}_cat.ecsv" in files
    rate = next(f for n, f in files.items() if n.endswith("_rate.fits"))
    versions = {d["keyword"]: (d["a"], d["b"]) for d in rate["provenance"]["versions"]}
    assert versions["CAL_VER"] == ("0.15.1", "3.0.0")
