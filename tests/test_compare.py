"""jwenv.compare / jwenv.report on constructed product pairs with known differences."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwenv.compare import (
    DEFAULT_IGNORED,
    DQ_FLAGS,
    Comparison,
    FlagChange,
    ImageDiff,
    KeywordDiff,
    compare_arrays,
    compare_paths,
    pair_products,
)
from jwenv.report import PLOTS_HINT, render_terminal, write_html

SHAPE = (20, 30)
SATURATED = DQ_FLAGS["SATURATED"]


def primary(**changes: object) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    cards = {
        "DATE": "2025-01-01T00:00:00.000", "FILENAME": "x_cal.fits",
        "CAL_VER": "1.20.2", "CRDS_VER": "13.0.1", "CRDS_CTX": "jwst_1364.pmap",
        "R_FLAT": "crds://jwst_nircam_flat_0313.fits",
        "R_DARK": "crds://jwst_nircam_dark_0342.fits",
        "S_JUMP": "COMPLETE", "S_FLAT": "COMPLETE", "TELESCOP": "JWST",
    }
    cards.update(changes)
    for key, value in cards.items():
        if value is not None:
            hdu.header[key] = value
    return hdu


def base_sci() -> np.ndarray:
    sci = (np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) / 7.0) - 20.0
    sci[0, :2] = np.nan  # NaNs present on both sides must not count as changes
    return sci


def base_dq() -> np.ndarray:
    dq = np.zeros(SHAPE, dtype=np.uint32)
    dq[0, :2] = DQ_FLAGS["DO_NOT_USE"] | DQ_FLAGS["REFERENCE_PIXEL"]  # bit 31: BZERO path
    return dq


def write_product(path: Path, *, sci: np.ndarray | None = None, dq: np.ndarray | None = None,
                  header: dict | None = None, extra: list | None = None,
                  checksum: bool = False) -> Path:
    sci = base_sci() if sci is None else sci
    hdus = [
        primary(**(header or {})),
        fits.ImageHDU(sci, name="SCI"),
        fits.ImageHDU(np.abs(base_sci()) * 0.1, name="ERR"),
        fits.ImageHDU(base_dq() if dq is None else dq, name="DQ"),
        *(extra or []),
    ]
    fits.HDUList(hdus).writeto(path, overwrite=True, checksum=checksum)
    return path


def image(comparison: Comparison, ext: str) -> ImageDiff:
    (fc,) = comparison.files
    return next(i for i in fc.images if i.extension == ext)


def catalog(flux_shift: float = 0.0, rows: int = 6) -> Table:
    table = Table()
    table["id"] = np.arange(1, rows + 1)
    table["xcentroid"] = np.linspace(10.0, 60.0, rows)
    table["flux"] = np.linspace(1.0, 2.0, rows) + flux_shift
    table["is_extended"] = np.array([True, False] * (rows // 2))
    table.meta["version"] = {"jwst": "1.20.2"}
    return table


# ---------------------------------------------------------------------------- basics


def test_identical_files_exit_zero(tmp_path: Path) -> None:
    a = write_product(tmp_path / "a_cal.fits")
    b = tmp_path / "b_cal.fits"
    shutil.copy(a, b)
    result = compare_paths(a, b)
    assert result.identical
    assert result.exit_code() == 0
    (fc,) = result.files
    assert [i.extension for i in fc.images] == ["SCI", "ERR", "DQ"]
    sci = image(result, "SCI")
    assert (sci.n_pixels, sci.nan_a, sci.nan_b, sci.n_different) == (600, 2, 2, 0)
    assert sci.max_abs_diff == 0.0
    assert fc.headers == []


def test_changed_reference_file_names_exactly_r_flat(tmp_path: Path) -> None:
    a = write_product(tmp_path / "a.fits")
    b = write_product(tmp_path / "b.fits", header={"R_FLAT": "crds://jwst_nircam_flat_0400.fits"})
    result = compare_paths(a, b)
    prov = result.files[0].provenance
    assert prov.reference_files == [KeywordDiff(
        "R_FLAT", "crds://jwst_nircam_flat_0313.fits", "crds://jwst_nircam_flat_0400.fits")]
    assert prov.step_status == []
    assert result.files[0].headers == []  # provenance keywords are not repeated there
    assert all(i.identical for i in result.files[0].images)
    assert result.exit_code() == 1


def test_skipped_step_is_named(tmp_path: Path) -> None:
    a = write_product(tmp_path / "a.fits")
    b = write_product(tmp_path / "b.fits", header={"S_JUMP": "SKIPPED", "S_FLAT": None})
    prov = compare_paths(a, b).files[0].provenance
    assert prov.step_status == [KeywordDiff("S_JUMP", "COMPLETE", "SKIPPED"),
                                KeywordDiff("S_FLAT", "COMPLETE", None)]
    assert prov.reference_files == []


def test_version_keywords_are_informational(tmp_path: Path) -> None:
    a = write_product(tmp_path / "a.fits")
    b = write_product(tmp_path / "b.fits", header={"CAL_VER": "1.21.0",
                                                  "CRDS_CTX": "jwst_1400.pmap"})
    result = compare_paths(a, b)
    versions = {k.keyword: (k.a, k.b) for k in result.files[0].provenance.versions}
    assert versions == {"CAL_VER": ("1.20.2", "1.21.0"), "CRDS_VER": ("13.0.1", "13.0.1"),
                        "CRDS_CTX": ("jwst_1364.pmap", "jwst_1400.pmap")}
    assert result.identical  # like jwst's regtests: versions alone are not a difference


# ---------------------------------------------------------------------------- images


def test_saturated_flag_on_three_pixels(tmp_path: Path) -> None:
    dq = base_dq()
    dq[5, 3:6] |= SATURATED
    dq[7, 7] = DQ_FLAGS["JUMP_DET"]
    dq_a = base_dq()
    dq_a[9, 9] = DQ_FLAGS["JUMP_DET"]  # moves from (9,9) to (7,7): one gained, one lost
    a = write_product(tmp_path / "a.fits", dq=dq_a)
    b = write_product(tmp_path / "b.fits", dq=dq)
    dq_diff = image(compare_paths(a, b), "DQ")
    assert dq_diff.is_dq and dq_diff.dtype_a == "uint32"
    assert dq_diff.dq_flags == [FlagChange("SATURATED", 1, gained=3, lost=0),
                                FlagChange("JUMP_DET", 2, gained=1, lost=1)]
    assert dq_diff.n_different == 5


def test_five_new_nans(tmp_path: Path) -> None:
    sci = base_sci()
    sci[4, 10:15] = np.nan
    sci[0, 0] = -20.0  # and one pixel stops being NaN
    result = compare_paths(write_product(tmp_path / "a.fits"),
                           write_product(tmp_path / "b.fits", sci=sci))
    sci_diff = image(result, "SCI")
    assert (sci_diff.became_nan, sci_diff.stopped_nan) == (5, 1)
    assert (sci_diff.nan_a, sci_diff.nan_b) == (2, 6)
    assert sci_diff.n_beyond_tolerance == 0  # only the NaN pattern changed
    assert sci_diff.max_abs_diff == 0.0
    assert not sci_diff.identical


def test_shape_change(tmp_path: Path) -> None:
    sci = np.zeros((20, 32), dtype=np.float32)
    result = compare_paths(write_product(tmp_path / "a.fits"),
                           write_product(tmp_path / "b.fits", sci=sci))
    sci_diff = image(result, "SCI")
    assert (sci_diff.shape_a, sci_diff.shape_b) == ([20, 30], [20, 32])
    assert sci_diff.n_pixels == 0 and not sci_diff.identical
    assert image(result, "ERR").identical


def test_tolerance_below_atol_is_identical(tmp_path: Path) -> None:
    zeros = np.zeros(SHAPE, dtype=np.float64)
    tiny = zeros.copy()
    tiny[3, 3] = 5e-8  # < atol=1e-7
    a = write_product(tmp_path / "a.fits", sci=zeros)
    result = compare_paths(a, write_product(tmp_path / "b.fits", sci=tiny))
    sci_diff = image(result, "SCI")
    assert result.identical and result.exit_code() == 0
    assert sci_diff.n_different == 1 and sci_diff.n_beyond_tolerance == 0
    assert sci_diff.max_abs_diff == pytest.approx(5e-8)

    big = zeros.copy()
    big[3, 3] = 2e-7
    result = compare_paths(a, write_product(tmp_path / "c.fits", sci=big))
    assert image(result, "SCI").n_beyond_tolerance == 1 and result.exit_code() == 1
    # ... unless the caller loosens atol
    assert compare_paths(a, tmp_path / "c.fits", atol=1e-6).identical


def test_relative_tolerance(tmp_path: Path) -> None:
    ones = np.full(SHAPE, 1000.0)
    near, far = ones.copy(), ones.copy()
    near[1, 1] = 1000.005  # |Δ| = 5e-3 <= 1e-7 + 1e-5 * 1000
    far[1, 1] = 1000.02
    a = write_product(tmp_path / "a.fits", sci=ones)
    assert compare_paths(a, write_product(tmp_path / "b.fits", sci=near)).identical
    sci_diff = image(compare_paths(a, write_product(tmp_path / "c.fits", sci=far)), "SCI")
    assert sci_diff.n_beyond_tolerance == 1
    assert sci_diff.max_rel_diff == pytest.approx(0.02 / 1000.02)
    assert sci_diff.fraction_beyond_tolerance == pytest.approx(1 / 600)


def test_chunked_figures_equal_whole_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(42)
    a = rng.normal(100.0, 10.0, size=(3, 40, 50)).astype(np.float32)  # a cube
    b = a.copy()
    shifted = rng.random(a.shape) < 0.1
    b[shifted] += rng.normal(0, 1, size=int(shifted.sum())).astype(np.float32)
    b.flat[rng.choice(a.size, 200, replace=False)] *= 1.001
    b.flat[rng.choice(a.size, 11, replace=False)] = np.nan
    a.flat[rng.choice(a.size, 7, replace=False)] = np.nan
    fa = write_product(tmp_path / "a.fits", sci=a)
    fb = write_product(tmp_path / "b.fits", sci=b)

    chunked = image(compare_paths(fa, fb, chunk_elements=97), "SCI")  # ~62 chunks
    whole = image(compare_paths(fa, fb, chunk_elements=a.size), "SCI")

    # Independent whole-array reference computed with plain numpy.
    x, y = a.astype(np.float64), b.astype(np.float64)
    both = ~np.isnan(x) & ~np.isnan(y)
    d = np.abs(x - y)[both]
    reference = {
        "became_nan": int((~np.isnan(x) & np.isnan(y)).sum()),
        "stopped_nan": int((np.isnan(x) & ~np.isnan(y)).sum()),
        "n_beyond_tolerance": int((d > 1e-7 + 1e-5 * np.abs(y[both])).sum()),
        "max_abs_diff": float(d.max()),
        "max_rel_diff": float((d / np.abs(y[both])).max()),
        "nan_a": int(np.isnan(x).sum()),
        "nan_b": int(np.isnan(y).sum()),
    }
    for result in (chunked, whole):
        for key, value in reference.items():
            assert getattr(result, key) == pytest.approx(value), key
        assert result.mean_abs_diff == pytest.approx(d.mean())
    assert reference["n_beyond_tolerance"] > 100 and reference["became_nan"] > 0


def test_every_pixel_differs_figures_equal_numpy(tmp_path: Path) -> None:
    """A flat change (every pixel differs: the buffer-reusing path) with NaN changes in
    some chunks and a zero B pixel (excluded from the relative figure)."""
    rng = np.random.default_rng(7)
    a = rng.normal(10.0, 2.0, size=(64, 50)).astype(np.float32)
    b = (a * np.float32(1.01)).astype(np.float32)
    a[3, :4] = np.nan  # NaN in both (different payloads are still "NaN in both")
    b[3, :4] = np.float32("nan")
    b[40, 7] = np.nan  # became NaN
    a[50, 9] = np.nan  # stopped being NaN
    b[10, 10] = 0.0
    fa = write_product(tmp_path / "a.fits", sci=a)
    fb = write_product(tmp_path / "b.fits", sci=b)
    x, y = a.astype(np.float64), b.astype(np.float64)
    both = ~np.isnan(x) & ~np.isnan(y)
    d = np.abs(x - y)[both]
    nonzero = y[both] != 0
    for chunk in (64, 1000, a.size):
        sci = image(compare_paths(fa, fb, chunk_elements=chunk), "SCI")
        assert (sci.nan_a, sci.nan_b, sci.became_nan, sci.stopped_nan) == (5, 5, 1, 1)
        assert sci.n_beyond_tolerance == int((d > 1e-7 + 1e-5 * np.abs(y[both])).sum())
        assert sci.n_different == a.size - 4
        assert sci.max_abs_diff == pytest.approx(float(d.max()), rel=1e-12)
        assert sci.max_rel_diff == pytest.approx(
            float((d[nonzero] / np.abs(y[both][nonzero])).max()), rel=1e-12)
        assert sci.mean_abs_diff == pytest.approx(float(d.mean()), rel=1e-9)


def test_compare_arrays_dq_cube_chunked() -> None:
    a = np.zeros((2, 3, 8, 8), dtype=np.uint8)  # GROUPDQ-like
    b = a.copy()
    b[1, 2, :, 4] |= 4  # JUMP_DET on 8 pixels of one group
    b[0, 0, 0, 0] = 1
    result = compare_arrays(a, b, ImageDiff("GROUPDQ", is_dq=True), chunk_elements=5)
    assert result.dq_flags == [FlagChange("DO_NOT_USE", 0, 1, 0),
                               FlagChange("JUMP_DET", 2, 8, 0)]


def test_quick_mode_stops_early(tmp_path: Path) -> None:
    sci = base_sci() + 1.0  # every pixel differs
    dq = base_dq()
    dq[1, 1] = SATURATED
    a = write_product(tmp_path / "a.fits")
    b = write_product(tmp_path / "b.fits", sci=sci, dq=dq)
    full = compare_paths(a, b, chunk_elements=50)
    quick = compare_paths(a, b, chunk_elements=50, quick=True)
    assert image(full, "SCI").n_beyond_tolerance == 598
    assert [i.extension for i in full.files[0].images] == ["SCI", "ERR", "DQ"]
    (fc,) = quick.files
    assert fc.stopped_early and quick.stopped_early and quick.exit_code() == 1
    assert [i.extension for i in fc.images] == ["SCI"]  # ERR and DQ never read
    assert fc.images[0].stopped_early
    assert fc.images[0].n_beyond_tolerance == 48  # first chunk only: 50 px, 2 NaN


def test_quick_mode_stops_at_first_differing_file(tmp_path: Path) -> None:
    for side in "ab":
        (tmp_path / side).mkdir()
        for n in range(3):
            sci = base_sci() + (1.0 if side == "b" else 0.0)
            write_product(tmp_path / side / f"jw0{n}_cal.fits", sci=sci)
    result = compare_paths(tmp_path / "a", tmp_path / "b", quick=True)
    assert [f.name for f in result.files] == ["jw00_cal.fits"]
    assert result.stopped_early


# ---------------------------------------------------------------------------- headers


def test_volatile_keywords_ignored(tmp_path: Path) -> None:
    a = write_product(tmp_path / "a.fits", checksum=True)
    b = write_product(tmp_path / "b.fits", checksum=True, header={
        "DATE": "2026-02-02T12:00:00.000", "FILENAME": "other_cal.fits",
        "IRAF-TLM": "2026-02-02T12:00:00"})
    assert compare_paths(a, b).identical

    c = write_product(tmp_path / "c.fits", header={"TELESCOP": "HST", "NEWKEY": 3})
    result = compare_paths(a, c)
    assert {(k.hdu, k.keyword, k.a, k.b) for k in result.files[0].headers} == {
        ("PRIMARY", "TELESCOP", "JWST", "HST"), ("PRIMARY", "NEWKEY", None, 3)}
    assert compare_paths(a, c, ignore_keywords=(*DEFAULT_IGNORED, "TELESCOP", "NEW*")).identical


# ---------------------------------------------------------------------------- tables


def test_bintable_shifted_column(tmp_path: Path) -> None:
    def spectrum(shift: float, rows: int = 50) -> fits.BinTableHDU:
        wave = np.linspace(1.0, 5.0, rows)
        return fits.BinTableHDU(Table({
            "WAVELENGTH": wave, "FLUX": np.sin(wave) + 2.0 + shift,
            "DQ": np.zeros(rows, dtype=np.uint32)}), name="EXTRACT1D")

    a = write_product(tmp_path / "a_x1d.fits", extra=[spectrum(0.0)])
    b = write_product(tmp_path / "b_x1d.fits", extra=[spectrum(0.25)])
    (table,) = compare_paths(a, b).files[0].tables
    assert table.name == "EXTRACT1D" and (table.rows_a, table.rows_b) == (50, 50)
    figures = {c.name: (c.max_abs_diff, c.n_different) for c in table.columns}
    assert figures["FLUX"] == (pytest.approx(0.25), 50)
    assert figures["WAVELENGTH"] == (0.0, 0) and figures["DQ"] == (0.0, 0)

    c = write_product(tmp_path / "c_x1d.fits", extra=[spectrum(0.0, rows=45)])
    (table,) = compare_paths(a, c).files[0].tables
    assert (table.rows_a, table.rows_b, table.columns) == (50, 45, [])
    assert not table.identical


def test_ecsv_catalog_shifted_column_and_rows(tmp_path: Path) -> None:
    catalog().write(tmp_path / "a_cat.ecsv")
    catalog(flux_shift=0.125).write(tmp_path / "b_cat.ecsv")
    result = compare_paths(tmp_path / "a_cat.ecsv", tmp_path / "b_cat.ecsv")
    (fc,) = result.files
    assert fc.kind == "ecsv" and fc.product == "_cat.ecsv"
    (table,) = fc.tables
    figures = {c.name: (c.max_abs_diff, c.n_different) for c in table.columns}
    assert figures == {"id": (0.0, 0), "xcentroid": (0.0, 0),
                       "flux": (pytest.approx(0.125), 6), "is_extended": (None, 0)}
    assert result.exit_code() == 1

    catalog(rows=4).write(tmp_path / "c_cat.ecsv")
    (table,) = compare_paths(tmp_path / "a_cat.ecsv", tmp_path / "c_cat.ecsv").files[0].tables
    assert (table.rows_a, table.rows_b) == (6, 4)


# ---------------------------------------------------------------------------- directories


def test_directory_pairing(tmp_path: Path) -> None:
    a, b = tmp_path / "v1", tmp_path / "v2"
    for d in (a, b):
        d.mkdir()
    write_product(a / "same_rate.fits")
    write_product(b / "same_rate.fits")
    write_product(a / "run1_jw01_nrca1_cal.fits")
    write_product(b / "run2_jw01_nrca1_cal.fits", header={"R_FLAT": "crds://other.fits"})
    write_product(a / "jw01_nrca1_crf.fits")  # suffix differs from B's: never paired
    write_product(b / "jw01_nrca1_i2d.fits")
    (a / "x.asdf").write_bytes(b"#ASDF 1.0.0\nsame")
    (b / "x.asdf").write_bytes(b"#ASDF 1.0.0\ndiff")
    (a / "pipeline.log").write_text("not a product")

    result = compare_paths(a, b)
    assert {f.name: f.identical for f in result.files} == {
        "run1_jw01_nrca1_cal.fits ↔ run2_jw01_nrca1_cal.fits": False,
        "same_rate.fits": True, "x.asdf": False}
    assert result.only_in_a == ["jw01_nrca1_crf.fits"]
    assert result.only_in_b == ["jw01_nrca1_i2d.fits"]
    assert result.skipped == ["pipeline.log"]
    asdf = next(f for f in result.files if f.kind == "asdf")
    assert asdf.bytes_equal is False
    assert result.exit_code() == 1


def test_pair_products_rules() -> None:
    pairs, only_a, only_b = pair_products(
        ["v1_jw01_cal.fits", "sub/jw02_rate.fits", "jw03_cat.ecsv", "a_cal.fits"],
        ["v2_jw01_cal.fits", "jw02_rate.fits", "jw03_segm.fits", "b_cal.fits"])
    assert pairs == [("sub/jw02_rate.fits", "jw02_rate.fits"),
                     ("v1_jw01_cal.fits", "v2_jw01_cal.fits")]
    # "a_cal" and "b_cal" share only the product suffix: not the same product.
    assert only_a == ["jw03_cat.ecsv", "a_cal.fits"]
    assert only_b == ["jw03_segm.fits", "b_cal.fits"]


def test_errors_exit_two(tmp_path: Path) -> None:
    good = write_product(tmp_path / "a.fits")
    bad = tmp_path / "b.fits"
    bad.write_bytes(b"this is not FITS at all" * 200)
    result = compare_paths(good, bad)
    assert result.exit_code() == 2 and result.files[0].error
    missing = compare_paths(good, tmp_path / "nope.fits")
    assert missing.exit_code() == 2 and "nope.fits" in missing.error


# ---------------------------------------------------------------------------- output


def differing_pair(tmp_path: Path) -> tuple[Path, Path]:
    sci = base_sci()
    sci[4, 10:15] = np.nan
    sci[10, 10] += 3.0
    dq = base_dq()
    dq[5, 3:6] |= SATURATED
    wave = np.linspace(1, 2, 30)
    spec_a = fits.BinTableHDU(Table({"WAVELENGTH": wave, "FLUX": wave * 2}), name="EXTRACT1D")
    spec_b = fits.BinTableHDU(Table({"WAVELENGTH": wave, "FLUX": wave * 2.1}), name="EXTRACT1D")
    a = write_product(tmp_path / "a_x1d.fits", extra=[spec_a])
    b = write_product(tmp_path / "b_x1d.fits", sci=sci, dq=dq, extra=[spec_b],
                      header={"R_FLAT": "crds://new_flat.fits", "S_JUMP": "SKIPPED"})
    return a, b


def test_json_round_trip(tmp_path: Path) -> None:
    result = compare_paths(*differing_pair(tmp_path))
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity leak out
    again = Comparison.from_dict(json.loads(text))
    assert again.to_dict() == data
    assert data["exit_code"] == 1 and data["identical"] is False
    sci = next(i for i in data["files"][0]["images"] if i["extension"] == "SCI")
    assert sci["became_nan"] == 5 and sci["max_abs_diff"] == pytest.approx(3.0)
    assert sci["fraction_beyond_tolerance"] == pytest.approx(1 / 600)


def test_render_terminal_mentions_the_differences(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=160)
    render_terminal(compare_paths(*differing_pair(tmp_path)), console)
    text = console.export_text()
    assert text.index("Provenance") < text.index("images")  # one pair: its own tables
    for expected in ("R_FLAT", "S_JUMP", "SKIPPED", "+3 SATURATED", "+5", "FLUX",
                     "1 of 1 file(s) differ"):
        assert expected in text


def _external_references(page: str, beside: Path | None = None) -> list[str]:
    """References that are neither embedded data nor files written beside the page."""
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    return [r for r in refs if not r.startswith("data:")
            and not (beside is not None and "/" not in r and (beside / r).is_file())]


def test_html_with_matplotlib(tmp_path: Path) -> None:
    # matplotlib is in the [test] extra: the pictures are tested for real
    path = write_html(compare_paths(*differing_pair(tmp_path)), tmp_path / "report")
    page = path.read_text()
    assert path.name == "index.html"
    assert _external_references(page, beside=path.parent) == [] and "<link" not in page
    # SCI and DQ: A, B, A−B side by side in one picture each; one overplotted spectrum,
    # embedded in the page and written beside it
    assert page.count("data:image/png;base64,") == 3
    assert sorted(p.name for p in path.parent.glob("*.png")) == [
        "a_x1d_b_x1d_DQ.png", "a_x1d_b_x1d_EXTRACT1D.png", "a_x1d_b_x1d_SCI.png"]
    assert "EXTRACT1D: spectra A and B" in page
    assert PLOTS_HINT not in page
    assert "+3 SATURATED" in page and "R_FLAT" in page


def test_html_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    page = write_html(compare_paths(*differing_pair(tmp_path)), tmp_path / "r").read_text()
    assert PLOTS_HINT in page
    assert "<img" not in page and _external_references(page) == []
    assert "+3 SATURATED" in page and "FLUX" in page and "S_JUMP" in page
