"""plan: inputs, their grouping into products, and the jobs between them (no env needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import exposure, program, tiny_fits
from jwenv import plan
from jwenv.errors import BadInput, JwenvError


# -- inputs ---------------------------------------------------------------------------------
def test_classify_levels_and_backgrounds(tmp_path):
    uncal = tiny_fits(tmp_path / "jw1_uncal.fits", TELESCOP="JWST", EXP_TYPE="NRC_IMAGE")
    rate = tiny_fits(tmp_path / "jw2_rate.fits", TELESCOP="JWST", BKGDTARG=True)
    cal = tiny_fits(tmp_path / "jw3_cal.fits", TELESCOP="JWST")
    items = plan.classify([uncal, rate, cal])
    assert [(i.stage, i.background, i.base) for i in items] == [
        (1, False, "jw1"), (2, True, "jw2"), (3, False, "jw3")]
    assert plan.parse_stages(None, items) == [1, 2, 3]
    assert plan.parse_stages("2,3", plan.classify([rate, cal])) == [2, 3]


def test_association_input(tmp_path):
    sci = tiny_fits(tmp_path / "jw1_rate.fits", TELESCOP="JWST")
    bkg = tiny_fits(tmp_path / "jw2_rate.fits", TELESCOP="JWST")
    asn = tmp_path / "x_image2_asn.json"
    asn.write_text(json.dumps({"asn_type": "image2", "products": [{"members": [
        {"expname": "jw1_rate.fits", "exptype": "science"},
        {"expname": "jw2_rate.fits", "exptype": "background"}]}]}))
    items = plan.classify([asn])
    assert [(i.path, i.stage, i.background) for i in items] == [(sci, 2, False),
                                                                 (bkg, 2, True)]


@pytest.mark.parametrize(("value", "message"), [("4", "stages are 1, 2 and 3"),
                                                ("1,3", "consecutive"), ("x", "stage numbers"),
                                                ("1", "start at stage 2")])
def test_bad_stages(tmp_path, value, message):
    items = plan.classify([tiny_fits(tmp_path / "a_rate.fits", TELESCOP="JWST")])
    with pytest.raises(BadInput, match=message):
        plan.parse_stages(value, items)


def test_step_args_must_name_a_step():
    assert plan.split_step_args(["--steps.jump.rejection_threshold=5"]) == [
        ("jump", "--steps.jump.rejection_threshold=5")]
    with pytest.raises(BadInput):
        plan.split_step_args(["--verbose"])


def test_header_facts_and_mixed_programs(tmp_path):
    a = exposure(tmp_path, 1, 1)
    b = exposure(tmp_path, 1, 2, program="02345")
    (ia, ib) = plan.classify([a, b])
    assert (ia.header["FILTER"], ia.header["OBSERVTN"], ia.pixels()) == ("F200W", "001",
                                                                        160000)
    with pytest.raises(BadInput, match=r"2 programs \(01234, 02345\).*--allow-mixed"):
        plan.check_programs([ia, ib], allow_mixed=False)
    plan.check_programs([ia, ib], allow_mixed=True)


# -- grouping -----------------------------------------------------------------------------
def test_own_grouping_never_mixes_filters_and_names_like_the_archive(tmp_path):
    items = plan.classify(program(tmp_path))
    g = plan.fallback_grouping(None, items, "no jwst.associations")
    assert g.source == "asn_from_list" and "no jwst.associations" in g.detail
    names = sorted(a.name for a in g.level3)
    assert names == ["jw01234-o001_t001_nircam_clear-f150w-sub400p",
                     "jw01234-o001_t001_nircam_clear-f200w-sub400p",
                     "jw01234-o002_t002_nircam_clear-f150w-sub400p",
                     "jw01234-o002_t002_nircam_clear-f200w-sub400p"]
    by_base = {i.base: i for i in items}
    for asn in g.level3:
        assert len(asn.science) == 2
        assert len({by_base[b].header["FILTER"] for b in asn.science}) == 1
    assert len(g.level2) == 8 and all(len(a.background) == 1 for a in g.level2)
    plan.check_grouping(g, items)


def test_a_grouping_that_mixes_filters_is_refused(tmp_path):
    items = plan.classify([exposure(tmp_path, 1, 1, "F150W"), exposure(tmp_path, 1, 2)])
    bad = plan.Grouping("given", "x", level3=[plan.Association(
        3, "jw01234-o001_t001_nircam_both", "image3", [i.base for i in items])])
    with pytest.raises(JwenvError, match="would mix nircam clear-f150w, nircam clear-f200w"):
        plan.check_grouping(bad, items)


def _archive_asn(folder: Path, name: str, level: int, members: list[str]) -> Path:
    suffix = "rate" if level == 2 else "cal"
    path = folder / f"jw01234-o001_20260101t000000_image{level}_00001_asn.json"
    path.write_text(json.dumps({"asn_type": f"image{level}", "asn_pool": "p", "products": [
        {"name": name, "members": [{"expname": f"{m}_{suffix}.fits", "exptype": "science"}
                                   for m in members]}]}))
    return path


def test_archive_associations_beside_the_inputs_are_found_and_used(tmp_path):
    files = [exposure(tmp_path, 1, n) for n in (1, 2)]
    items = plan.classify(files)
    asn = _archive_asn(tmp_path, "jw01234-o001_t001_nircam_clear-f200w-sub400p", 3,
                       [i.base for i in items])
    (tmp_path / "unrelated_asn.json").write_text('{"asn_type": "image3", "products": []}')
    found = plan.find_association_files(items, [])
    assert found == [asn]
    g = plan.from_files(found, "1 association file(s) found beside the inputs")
    assert [a.name for a in g.level3] == ["jw01234-o001_t001_nircam_clear-f200w-sub400p"]
    assert g.level3[0].data["asn_pool"] == "p"
    with pytest.raises(BadInput, match="no such association"):
        plan.find_association_files(items, [tmp_path / "missing_asn.json"])


def test_a_given_association_naming_a_missing_member_is_one_line(tmp_path):
    files = [exposure(tmp_path, 1, 1, level="cal")]
    items = plan.classify(files)
    asn = _archive_asn(tmp_path, "jw01234-o001_t001_x", 3, [items[0].base, "jw01234999"])
    g = plan.from_files([asn], "given")
    with pytest.raises(BadInput, match="names jw01234999, which is not among the inputs"):
        plan.jobs(items, g, tmp_path / "out", [3])


# -- jobs --------------------------------------------------------------------------------------
def test_jobs_wire_stages_through_their_associations(tmp_path):
    items = plan.classify(program(tmp_path / "in"))
    g = plan.fallback_grouping(None, items, "x")
    out = tmp_path / "out"
    jobs = {j.id: j for j in plan.jobs(items, g, out, [1, 2, 3])}
    assert sum(j.stage == 1 for j in jobs.values()) == 9  # every exposure, background too
    assert sum(j.stage == 2 for j in jobs.values()) == 8
    assert sum(j.stage == 3 for j in jobs.values()) == 4
    sci = "jw01234001001_01101_00003_nrcb1"
    image2 = jobs[f"2/{sci}"]
    assert image2.needs == [f"1/{sci}", "1/jw01234003001_01101_00001_nrcb1"]  # + background
    assert image2.products == [out / f"{sci}_cal.fits"]
    members = image2.asn["products"][0]["members"]
    assert members == [{"expname": str(out / f"{sci}_rate.fits"), "exptype": "science"},
                       {"expname": str(out / "jw01234003001_01101_00001_nrcb1_rate.fits"),
                        "exptype": "background"}]
    image3 = jobs["3/jw01234-o001_t001_nircam_clear-f200w-sub400p"]
    assert image3.needs == [f"2/{sci}", "2/jw01234001001_01101_00004_nrcb1"]
    assert image3.products == [out / "jw01234-o001_t001_nircam_clear-f200w-sub400p_i2d.fits"]
    assert image3.asn["asn_pool"]  # 0.15.1 reads only associations that name their pool
    # stage 1 keeps exposure order within a detector and visit
    assert jobs["1/jw01234001001_01101_00002_nrcb1"].after == [
        "1/jw01234001001_01101_00001_nrcb1"]
    assert jobs["1/jw01234002001_01101_00001_nrcb1"].after == []  # another visit


def test_jobs_from_rate_files_read_the_inputs_in_place(tmp_path):
    rates = [exposure(tmp_path / "in", 1, n, level="rate") for n in (1, 2)]
    items = plan.classify(rates)
    g = plan.fallback_grouping(None, items, "x")
    jobs = plan.jobs(items, g, tmp_path / "out", [2, 3])
    assert [j.stage for j in jobs] == [2, 2, 3]
    assert jobs[0].needs == [] and jobs[0].inputs == [rates[0]]
    assert jobs[0].given_inputs == [rates[0]]


def test_memory_estimates_grow_with_the_exposure(tmp_path):
    small = plan.classify([exposure(tmp_path, 1, 1)])[0]
    big = plan.classify([exposure(tmp_path, 1, 2, NGROUPS=10, SUBSIZE1=2048,
                                  SUBSIZE2=2048)])[0]
    (js, jb) = plan.jobs([small, big], None, tmp_path / "out", [1])
    assert js.memory < 400 << 20 < 4 << 30 < jb.memory


def test_fingerprint_changes_with_the_file(tmp_path):
    f = exposure(tmp_path, 1, 1)
    before = plan.fingerprint([f])
    assert plan.fingerprint([f]) == before
    with fits.open(f, mode="update") as hdul:
        hdul[0].header["FILTER"] = "F150W"
    assert plan.fingerprint([f]) != before


def test_a_directory_gives_each_exposures_lowest_level(tmp_path):
    d = tmp_path / "download"
    uncal = exposure(d, 1, 1)
    exposure(d, 1, 1, level="rate")
    rate = exposure(d, 1, 2, level="rate")
    exposure(d, 1, 2, level="cal")
    (d / "notes.txt").write_text("")
    assert plan.expand([d]) == [uncal, rate]
    assert [i.stage for i in plan.classify([d])] == [1, 2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="holds no exposures"):
        plan.classify([tmp_path / "empty"])
