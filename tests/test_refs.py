"""`jwenv.refs`: which reference files would change for some products under another
CRDS context, as the release's own crds selects them (scripts/bestrefs.py), offline.

Unit tests check the inputs and the summary line with no environment; integration tests
use the whole offline program made with a second context (jwst_9001.pmap: F150W's flat
is a new file, nothing else differs) under real releases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from astropy.io import fits

from helpers import tiny_fits
from jwenv import offline, refs
from jwenv.errors import BadInput

OLD, NEW = "jwst_9000.pmap", "jwst_9001.pmap"
RELEASES = ["1.20.2", "3.0.0"]


def _product(folder: Path, name: str, **header: Any) -> Path:
    return tiny_fits(folder / name, **header)


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    text = str(exc.value)
    assert text and "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


# -- inputs (no environment) -----------------------------------------------------------------
def test_inputs_are_checked_before_anything_runs(tmp_path):
    jw = _product(tmp_path, "jw_cal.fits", TELESCOP="JWST", CRDS_CTX="jwst_1464.pmap")
    bare = _product(tmp_path, "jw_uncal.fits", TELESCOP="JWST")
    new, old, recorded = refs.check_inputs([jw, bare, jw], new="9001", old="jwst_9000.pmap")
    assert (new, old) == (NEW, OLD)
    assert recorded == {jw: "jwst_1464.pmap", bare: None}  # once each, in order
    assert refs.check_inputs([jw], new=NEW)[2] == {jw: "jwst_1464.pmap"}


@pytest.mark.parametrize("case, needles", [
    ("hst", ["hst_cal.fits is not a JWST product", "TELESCOP=HST"]),
    ("text", ["notes.txt is not a FITS file"]),
    ("no_ctx", ["jw_uncal.fits has no CRDS_CTX", "--against"]),
    ("bad_ctx", ["jw_cal.fits: its CRDS_CTX 'hst_0001.pmap' is not a CRDS context"]),
    ("bad_new", ["bad CRDS context 'jwst_9001.imap'"]),
    ("bad_old", ["bad CRDS context 'latest'"]),
    ("missing", ["no such file"]),
    ("none", ["no products given"]),
])
def test_bad_inputs_are_one_line_errors(tmp_path, case, needles):
    files = {
        "hst": [_product(tmp_path, "hst_cal.fits", TELESCOP="HST", CRDS_CTX=OLD)],
        "text": [tmp_path / "notes.txt"],
        "no_ctx": [_product(tmp_path, "jw_uncal.fits", TELESCOP="JWST")],
        "bad_ctx": [_product(tmp_path, "jw_cal.fits", TELESCOP="JWST",
                             CRDS_CTX="hst_0001.pmap")],
        "missing": [tmp_path / "gone_cal.fits"],
        "none": [],
    }.get(case, [_product(tmp_path, "ok_cal.fits", TELESCOP="JWST", CRDS_CTX=OLD)])
    if case == "text":
        files[0].write_text("not FITS\n")
    new = "jwst_9001.imap" if case == "bad_new" else NEW
    old = "latest" if case == "bad_old" else None
    with pytest.raises(BadInput) as exc:
        refs.check_inputs(files, new=new, old=old)
    _one_line(exc, *needles)


# -- the report (no environment) ------------------------------------------------------------
def _report(changes: list[dict[str, tuple[str, str]]], errors: int = 0) -> refs.RefsReport:
    products = [refs.ProductRefs(Path(f"/p/jw{i}_cal.fits"), OLD, NEW,
                                 {t: refs.RefChange(t, a, b) for t, (a, b) in c.items()})
                for i, c in enumerate(changes)]
    products += [refs.ProductRefs(Path(f"/p/bad{i}_cal.fits"), OLD, NEW, error="cannot open")
                 for i in range(errors)]
    return refs.RefsReport("3.0.0", "3.0.0", "13.2.7", "/c", NEW, None, products)


SAME = {"dark": ("d.fits", "d.fits"), "photom": ("p.fits", "p.fits")}
FLAT = {**SAME, "flat": ("f0.fits", "f1.fits")}


def test_summary_names_what_changes_for_how_many_products():
    report = _report([FLAT] * 4 + [SAME] * 6)
    assert report.summary() == "flat changes for 4 of 10 products; nothing else changes"
    assert report.changed_types() == {"flat": [Path(f"/p/jw{i}_cal.fits") for i in range(4)]}
    both = _report([{**FLAT, "dark": ("d.fits", "d2.fits")}] * 2 + [FLAT])
    assert both.summary() == ("flat changes for 3 of 3 products; dark changes for 2 of 3 "
                              "products; nothing else changes")
    assert _report([SAME]).summary() == "no reference file changes for the product"
    assert _report([SAME] * 2).summary() == ("no reference file changes for any of the 2 "
                                             "products")
    partly = _report([FLAT, SAME], errors=1)
    assert partly.summary() == ("flat changes for 1 of 3 products; nothing else changes (1 of "
                                "3 could not be checked, e.g. bad0_cal.fits: cannot open)")
    assert _report([], errors=2).summary() == ("none of the 2 products could be checked: "
                                               "bad0_cal.fits: cannot open")


def test_report_as_json():
    data = json.loads(json.dumps(_report([FLAT, SAME], errors=1).to_dict()))
    assert data["summary"].startswith("flat changes for 1 of 3 products")
    assert data["changed_types"] == {"flat": ["/p/jw0_cal.fits"]}
    first = data["products"][0]
    assert first["changed"] == ["flat"]
    assert first["types"]["flat"] == {"old": "f0.fits", "new": "f1.fits", "changed": True}
    assert first["types"]["dark"]["changed"] is False
    assert data["products"][2]["error"] == "cannot open"


class _ScriptEnv:
    """Stands in for an Env: records the script's arguments, answers with `result`."""

    name = "3.0.0"
    manifest = SimpleNamespace(jwst_version="3.0.0")

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def run_script(self, name, *args, what, cache=None):
        self.calls.append((name, args))
        return self.result

    def crds_settings(self, **_):
        return SimpleNamespace(path="/c")


def test_the_script_result_becomes_a_report(tmp_path):
    a = _product(tmp_path, "a_cal.fits", TELESCOP="JWST", CRDS_CTX=OLD)
    b = _product(tmp_path, "b_cal.fits", TELESCOP="JWST", CRDS_CTX=OLD)
    env = _ScriptEnv({
        "jwst_version": "3.0.0", "crds_version": "13.2.7", "crds_path": "/c",
        "contexts": {OLD: None, NEW: None},
        "files": [{"file": str(a), "old_context": OLD, "new_context": NEW,
                   "types": {"flat": {"old": "f0.fits", "new": "f1.fits", "changed": True}}},
                  {"file": str(b), "error": "cannot\n open"}]})
    report = refs.changes(env, [a, b], new="9001")
    assert env.calls == [("bestrefs", ("--new", NEW, str(a), str(b)))]  # old: their own
    assert report.products[0].changed == ["flat"]
    assert report.products[1].error == "cannot open"
    assert report.summary().startswith("flat changes for 1 of 2 products")


def test_a_context_missing_from_the_cache_is_one_line(tmp_path):
    a = _product(tmp_path, "a_cal.fits", TELESCOP="JWST", CRDS_CTX="jwst_1464.pmap")
    why = "is not in the local CRDS cache /c (no mappings/jwst/jwst_1464.pmap)"
    env = _ScriptEnv({"contexts": {NEW: None, "jwst_1464.pmap": why},
                      "files": [{"file": str(a), "error": f"CRDS context jwst_1464.pmap {why}"}]})
    with pytest.raises(BadInput) as exc:
        refs.changes(env, [a], new=NEW)
    assert _one_line(exc) == f"CRDS context jwst_1464.pmap (CRDS_CTX of 1 product) {why}"


# -- real releases -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def program(real_env, tmp_path_factory):
    """The whole program (2 observations x 2 filters x 2 dithers + 2 backgrounds) with a
    second context in which only F150W's flat differs; made by 1.20.2, extended by 3.0.0."""
    envs = [real_env(v).env for v in RELEASES]
    made = offline.prepare(envs, tmp_path_factory.mktemp("refs"),
                           whole=offline.Whole(second_context="F150W"))
    assert made.report["contexts"] == [OLD, NEW]
    return made


def _filters(paths: list[Path]) -> dict[Path, str]:
    return {p: fits.getheader(p, 0)["FILTER"] for p in paths}


@pytest.mark.integration
@pytest.mark.parametrize("version", RELEASES)
def test_only_the_flat_changes_for_exactly_the_f150w_products(real_env, program, version):
    report = refs.changes(real_env(version).env, program.uncal, new=NEW, old=OLD,
                          cache=program.cache)
    f150w = [p for p, f in _filters(program.uncal).items() if f == "F150W"]
    assert len(f150w) == 5 and len(program.uncal) == 10  # 4 science + 1 background
    assert report.summary() == "flat changes for 5 of 10 products; nothing else changes"
    assert report.changed_types() == {"flat": f150w}
    change = program.report["second_context"]
    generated = set(program.report["reference_types"])
    for product in report.products:
        assert not product.error, product.error
        assert (product.old_context, product.new_context) == (OLD, NEW)
        assert set(product.refs) == generated  # every type the cache serves, no N/A ones
        flat = product.refs["flat"]
        if product.path in f150w:
            assert (flat.old, flat.new) == (change["old"], change["new"])
        else:
            assert not flat.changed and flat.old != change["old"]
    assert report.jwst_version == version


@pytest.mark.integration
def test_old_defaults_to_each_products_crds_ctx(real_env, program, tmp_path):
    """Products that record the context they were made with (CRDS_CTX), each its own."""
    by_filter = _filters(program.uncal)
    f150w = next(p for p, f in by_filter.items() if f == "F150W")
    f200w = next(p for p, f in by_filter.items() if f == "F200W")
    made = {}
    for src, ctx, name in ((f150w, OLD, "a"), (f200w, OLD, "b"), (f150w, NEW, "c")):
        dest = tmp_path / f"{name}_{src.name}"
        shutil.copy(src, dest)
        fits.setval(dest, "CRDS_CTX", value=ctx)
        made[dest] = ctx
    report = refs.changes(real_env("3.0.0").env, list(made), new=NEW, cache=program.cache)
    assert report.old_context is None
    assert [p.old_context for p in report.products] == list(made.values())
    assert [p.changed for p in report.products] == [["flat"], [], []]
    assert report.summary() == "flat changes for 1 of 3 products; nothing else changes"


@pytest.mark.integration
@pytest.mark.parametrize("case, needles", [
    ("unknown_new", ["CRDS context jwst_9999.pmap is not in the local CRDS cache"]),
    ("unknown_recorded", ["CRDS context jwst_9999.pmap (CRDS_CTX of 1 product) is not in"]),
    ("malformed", ["bad CRDS context 'jwst_9001'"]),
    ("non_jwst", ["is not a JWST product"]),
    ("no_ctx", ["has no CRDS_CTX"]),
])
def test_bad_inputs_under_a_real_release(real_env, program, tmp_path, case, needles):
    uncal = program.uncal[0]
    files, new, old = [uncal], NEW, OLD
    if case == "unknown_new":
        new = "jwst_9999.pmap"
    elif case == "unknown_recorded":
        files, old = [tmp_path / uncal.name], None
        shutil.copy(uncal, files[0])
        fits.setval(files[0], "CRDS_CTX", value="jwst_9999.pmap")
    elif case == "malformed":
        new = "jwst_9001"
    elif case == "non_jwst":
        files = [tmp_path / uncal.name]
        shutil.copy(uncal, files[0])
        fits.setval(files[0], "TELESCOP", value="HST")
    elif case == "no_ctx":
        old = None  # the generated exposures record no context
    with pytest.raises(BadInput) as exc:
        refs.changes(real_env("3.0.0").env, files, new=new, old=old, cache=program.cache)
    _one_line(exc, *needles)
