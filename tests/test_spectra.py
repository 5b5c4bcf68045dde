"""Spectroscopy end to end (integration): the synthetic MIRI LRS fixed-slit program (two nods
along the slit) through Detector1 -> Spec2 -> Spec3 under two releases, offline, grouped by
each release's own association rules, scored against the program's truth spectrum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import archive_env, jwenv
from jwenv import offline

RELEASES = ("1.20.2", "3.0.0")
LEVEL3 = "jw01234-o001_t001_miri_p750l"


@pytest.fixture(scope="module")
def spectra(real_env, tmp_path_factory):
    """Made by the older release, its CRDS mappings topped up by the newer one."""
    envs = [real_env(v).env for v in RELEASES]
    return offline.prepare_spectra(envs, tmp_path_factory.mktemp("spectra"))


@pytest.fixture(scope="module")
def chain(spectra, real_home, tmp_path_factory):
    """`compare --reprocess` of the two nods under both releases: (report, output root)."""
    out = tmp_path_factory.mktemp("spectra-runs") / "runs"
    proc = jwenv("compare", *RELEASES, "--reprocess", "-j", "2", "-o", str(out), "--offline",
                 "--crds-context", spectra.context, "--json", "--",
                 *map(str, spectra.uncal), env=archive_env(real_home, spectra))
    # the releases differ (a difference is exit 1); anything else is a failure
    assert proc.returncode == 1, proc.stderr[-3000:]
    return json.loads(proc.stdout), out


@pytest.mark.integration
def test_the_program_is_what_the_chain_needs(spectra):
    report = spectra.report
    assert report["mode"] == "MIR_LRS-FIXEDSLIT"
    assert len(spectra.uncal) == 2 and [n["patt_num"] for n in spectra.nods] == [1, 2]
    for name in ("distortion", "specwcs", "flat", "photom", "pathloss", "extract1d",
                 "apcorr", "mask", "dark", "linearity", "readnoise", "gain"):
        assert name in report["reference_types"], name
    assert "rscd" in report["na_types"]  # its table changed between the two releases
    for path in spectra.uncal:
        h = fits.getheader(path)
        assert (h["EXP_TYPE"], h["PATTTYPE"], h["NUMDTHPT"]) == (
            "MIR_LRS-FIXEDSLIT", "ALONG-SLIT-NOD", 2)
    assert [line["name"] for line in spectra.lines] == ["[Ar II]", "[S IV]"]


@pytest.mark.integration
def test_spectra_under_two_releases(chain, spectra):
    """Each release: the rules pair the nods as each other's background, Spec2 makes _cal
    and _s2d, Spec3 the _x1d (S_EXTR1D COMPLETE); every line within one resolution element
    of its truth, the continuum within 5 % after photom."""
    report, _out = chain
    nods = sorted(p.name.removesuffix("_uncal.fits") for p in spectra.uncal)
    for result in report["runs"]:
        assert result["ok"], result["error"]
        assert result["grouping"]["source"] == "release rules"
        assert {r["runner"] for r in result["runs"]} == {"warm"}
        assert [(r["stage"], r["pipeline"]) for r in result["runs"]] == [
            (1, "Detector1Pipeline"), (1, "Detector1Pipeline"), (2, "Spec2Pipeline"),
            (2, "Spec2Pipeline"), (3, "Spec3Pipeline")]
        level2 = {a["science"][0]: a["background"] for a in result["grouping"]["level2"]}
        assert level2 == {nods[0]: [nods[1]], nods[1]: [nods[0]]}
        assert [a["name"] for a in result["grouping"]["level3"]] == [LEVEL3]
        d = Path(result["output_dir"])
        for nod in nods:
            for suffix in ("cal", "s2d", "x1d"):
                assert (d / f"{nod}_{suffix}.fits").is_file(), (nod, suffix)
            with fits.open(d / f"{nod}_cal.fits") as h:
                for key in ("S_WCS", "S_BKDSUB", "S_SRCTYP", "S_FLAT", "S_PTHLOS",
                            "S_PHOTOM"):
                    assert h[0].header[key] == "COMPLETE", (nod, key)
                assert h["SCI"].header["SRCTYPE"] == "POINT"  # nodded: a point source
        assert (d / f"{LEVEL3}_s2d.fits").is_file()
        x1d = d / f"{LEVEL3}_x1d.fits"
        with fits.open(x1d) as h:
            assert h[0].header["CAL_VER"] == result["jwst_version"]
            assert h[0].header["S_EXTR1D"] == "COMPLETE"
            assert h[0].header["S_RESAMP"] == "COMPLETE"
        score = offline.score_spectrum(x1d, spectra.truth)
        for line in score["lines"]:
            assert abs(line["offset_resolution"]) < 1, (result["env"], line)
        cont = score["continuum"]
        assert cont["points"] > 150 and cont["within"] == 1.0, (result["env"], cont)
        assert abs(cont["median_ratio"] - 1) < 0.05, (result["env"], cont)


@pytest.mark.integration
def test_compare_reprocess_reports_every_level(chain):
    report, _out = chain
    (comparison,) = report["comparisons"]
    assert comparison["exit_code"] == 1 and not comparison["identical"]
    files = {f["name"]: f for f in comparison["files"]}
    for level in ("_rate.fits", "_cal.fits", "_s2d.fits", "_x1d.fits"):
        compared = [f for name, f in files.items() if name.endswith(level)]
        assert compared, level
        assert any(not f["identical"] for f in compared), level
    assert f"{LEVEL3}_x1d.fits" in files
    # the level-3 spectrum by wavelength: the same grid, no line moved, the flux within a
    # fraction of a percent (measured: median +0.024 %, worst +7.4 % at 5.12 µm, where
    # the flux is lowest)
    (spectrum,) = files[f"{LEVEL3}_x1d.fits"]["spectra"]
    assert spectrum["grid"] == "A" and spectrum["n_common"] >= 240
    assert spectrum["n_wavelengths_beyond_tolerance"] == 0
    assert abs(spectrum["feature_shift"]) < 0.01 * spectrum["step"]
    assert abs(spectrum["median_rel"]) < 0.002 and 0 < abs(spectrum["worst_rel"]) < 0.25


@pytest.mark.integration
def test_a_missing_reference_type_is_crds_own_message(chain, spectra, real_home, tmp_path):
    """A context that does not name a type the release asks for (as an older context
    lacks a newer release's types): Spec2 fails with CRDS's own words, in one line."""
    _report, out = chain
    crds = tmp_path / "crds"
    shutil.copytree(spectra.crds_path, crds)
    imap = crds / "mappings" / "jwst" / "jwst_miri_9000.imap"
    text = imap.read_text()
    assert "'specwcs' : " in text
    imap.write_text("".join(ln for ln in text.splitlines(True) if "'specwcs' : " not in ln))
    rates = sorted((out / "1.20.2").glob("*_mirimage_rate.fits"))
    assert len(rates) == 2
    env = dict(archive_env(real_home, spectra), CRDS_PATH=str(crds))
    proc = jwenv("reprocess", "1.20.2", *map(str, rates), "-o", str(tmp_path / "out"),
                 "--offline", "--crds-context", spectra.context, env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jwenv: error: 3 of 3 jobs not done (2 failed); first: stage 2 "
                           "jw01234001001_01101_0000"), last
    assert last.endswith(": Error determining best reference for 'specwcs' = Unknown "
                         "reference type 'specwcs'"), last
    assert not list((tmp_path / "out" / "1.20.2").glob("*.fits"))
