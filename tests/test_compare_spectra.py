"""Spectra (x1d, c1d) compared by wavelength, not by row: constructed EXTRACT1D tables with
known differences (a flux scaled by 2 % over part of the range, wavelengths shifted by a
known amount, other grids, several spectra per file), the report's figures and the
spectrum picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwenv.compare import (
    Comparison,
    FileComparison,
    Spectrum,
    SpectrumDiff,
    compare_paths,
    compare_spectrum,
    feature_shift,
)
from jwenv.report import findings, render_terminal, spectrum_summary, write_html

# A MIRI LRS-like spectrum: a rising continuum with two emission lines (Jy, µm).
WAVE = np.linspace(5.0, 12.0, 351)  # 0.02 µm a row
STEP = 0.02
LINES = ((6.985, 0.015, 0.06), (10.511, 0.020, 0.084))  # centre, peak, FWHM


def model(wave: np.ndarray, shift: float = 0.0, lines: bool = True) -> np.ndarray:
    flux = 0.008 * (wave / 8.0) ** 1.5
    for centre, peak, fwhm in LINES if lines else ():
        flux = flux + peak * np.exp(-0.5 * ((wave - centre - shift) / (fwhm / 2.3548)) ** 2)
    return flux


def extract1d(wave: np.ndarray, flux: np.ndarray, **header: object) -> fits.BinTableHDU:
    table = Table({"WAVELENGTH": wave, "FLUX": flux, "FLUX_ERROR": np.abs(flux) * 0.01,
                   "SURF_BRIGHT": flux * 1e3, "DQ": np.zeros(wave.size, dtype=np.uint32)})
    table["WAVELENGTH"].unit, table["FLUX"].unit = "um", "Jy"
    hdu = fits.BinTableHDU(table, name="EXTRACT1D")
    for key, value in header.items():
        hdu.header[key] = value
    return hdu


def x1d(path: Path, *tables: fits.BinTableHDU, version: str = "1.20.2") -> Path:
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "JWST", "CAL_VER": version, "EXP_TYPE": "MIR_LRS-FIXEDSLIT"})
    fits.HDUList([primary, *tables]).writeto(path, overwrite=True)
    return path


def pair(tmp_path: Path, a: list[fits.BinTableHDU], b: list[fits.BinTableHDU]
         ) -> FileComparison:
    (fc,) = compare_paths(x1d(tmp_path / "a_x1d.fits", *a),
                          x1d(tmp_path / "b_x1d.fits", *b, version="3.0.0")).files
    return fc


def only(fc: FileComparison) -> SpectrumDiff:
    (spectrum,) = fc.spectra
    return spectrum


# ---------------------------------------------------------------------------- figures


def test_flux_scaled_by_two_percent_over_part_of_the_range(tmp_path: Path) -> None:
    flux = model(WAVE)
    scaled = flux.copy()
    scaled[150:201] *= 1.02  # 8.00 … 9.00 µm, 51 rows
    fc = pair(tmp_path, [extract1d(WAVE, flux)], [extract1d(WAVE, scaled)])
    s = only(fc)
    assert (s.name, s.column, s.wavelength_unit, s.flux_unit) == ("EXTRACT1D", "FLUX", "um", "Jy")
    assert (s.points_a, s.points_b, s.n_common, s.grid) == (351, 351, 351, "A")
    assert s.range_a == s.range_b == s.overlap == [5.0, 12.0]
    assert s.step == pytest.approx(STEP)
    assert s.median_rel == 0.0
    assert s.worst_rel == pytest.approx(0.02, abs=1e-12)
    assert WAVE[150] <= s.worst_wavelength <= WAVE[200]
    assert s.n_beyond_tolerance == 51
    top = 150 + int(np.argmax(flux[150:201]))
    assert s.max_abs_diff == pytest.approx(0.02 * flux[top])
    assert s.max_abs_wavelength == pytest.approx(WAVE[top])
    assert (s.grid_shift, s.grid_shift_max, s.n_wavelengths_beyond_tolerance) == (0.0, 0.0, 0)
    assert abs(s.feature_shift) < 1e-3 * STEP  # a flux scaling moves no line
    assert s.feature_correlation > 0.99
    assert not s.identical
    text = spectrum_summary(s)
    assert "FLUX by λ: median 0, worst +2% at 8." in text and "51 of 351 beyond tol" in text
    # the row-by-row table comparison is still there (the JSON has every figure)
    (table,) = fc.tables
    assert {c.name: c.n_different for c in table.columns}["FLUX"] == 51


def test_wavelength_shift_of_a_known_amount(tmp_path: Path) -> None:
    # B's whole grid moved by a quarter of a row, flux values as they were: its lines
    # are 0.005 µm redder
    flux = model(WAVE)
    s = only(pair(tmp_path, [extract1d(WAVE, flux)], [extract1d(WAVE + 0.005, flux)]))
    assert s.grid_shift == pytest.approx(0.005, abs=1e-12)
    assert s.grid_shift_max == pytest.approx(0.005, abs=1e-12)
    assert s.n_wavelengths_beyond_tolerance == 351
    assert s.feature_shift == pytest.approx(0.005, abs=0.01 * STEP)
    assert s.overlap == pytest.approx([5.005, 12.0])
    assert (s.n_common, s.grid) == (350, "A")  # A's rows from 5.02 µm on
    text = spectrum_summary(s)
    assert "grid +0.005 µm (+0.25 px)" in text and "features +0.005 µm (+0.25 px)" in text

    # the same grid, the lines themselves moved 0.01 µm blue: no grid shift, the
    # cross-correlation finds them
    s = only(pair(tmp_path, [extract1d(WAVE, flux)], [extract1d(WAVE, model(WAVE, -0.01))]))
    assert (s.grid_shift, s.n_wavelengths_beyond_tolerance) == (0.0, 0)
    assert s.feature_shift == pytest.approx(-0.01, abs=0.025 * STEP)
    assert min(abs(s.worst_wavelength - line[0]) for line in LINES) < 0.1  # on a line's flank

    # wavelengths that moved by rounding only (1e-13 µm): no shift worth a number
    s = only(pair(tmp_path, [extract1d(WAVE, flux)], [extract1d(WAVE + 1e-13, flux * 1.01)]))
    assert s.grid_shift == pytest.approx(1e-13) and s.n_wavelengths_beyond_tolerance == 0
    assert "λ shift grid within tol" in spectrum_summary(s)


def test_different_row_counts_and_grids(tmp_path: Path) -> None:
    # B: 200 rows over 6-11 µm; a straight line, so interpolation is exact
    line = 2.0 * WAVE + 1.0
    wave_b = np.linspace(6.0, 11.0, 200)
    fc = pair(tmp_path, [extract1d(WAVE, line)], [extract1d(wave_b, 2.0 * wave_b + 1.0)])
    s = only(fc)
    assert (s.rows_a, s.rows_b, s.points_a, s.points_b) == (351, 200, 351, 200)
    assert s.range_a == [5.0, 12.0] and s.range_b == [6.0, 11.0] and s.overlap == [6.0, 11.0]
    assert (s.grid, s.n_common) == ("B", 200)  # B is coarser there: 200 against 251 rows
    assert s.median_rel == pytest.approx(0.0, abs=1e-14)
    assert s.worst_rel == pytest.approx(0.0, abs=1e-14)
    assert s.n_beyond_tolerance == 0
    assert s.grid_shift is None and s.n_wavelengths_beyond_tolerance is None
    assert s.feature_shift is None  # a straight line has nothing to align
    assert not s.identical
    (table,) = fc.tables
    assert (table.rows_a, table.rows_b, table.columns) == (351, 200, [])
    # the spectrum stands for its table: its range, not a bare "rows 351 → 200"
    (finding,) = [f for f in findings(fc) if f.item.startswith("EXTRACT1D")]
    assert finding.score == 1.0
    assert finding.text.startswith("range 5–12 µm → 6–11 µm; rows 351 → 200; FLUX by λ: "
                                   "median 0, worst 0, 0 of 200 beyond tol")

    # lines on another grid: found where they are, within 2.5 % of a row
    for shift in (0.0, 0.0123):
        s = only(pair(tmp_path, [extract1d(WAVE, model(WAVE))],
                      [extract1d(wave_b, model(wave_b, shift))]))
        assert s.feature_shift == pytest.approx(shift, abs=0.025 * STEP)


def test_row_order_and_nan_rows_do_not_matter_by_wavelength(tmp_path: Path) -> None:
    # MIRI LRS writes red to blue; a release writing blue to red is the same spectrum.
    # NaN rows (no flux) are not points.
    flux = model(WAVE)
    flux_nan = flux.copy()
    flux_nan[:3] = np.nan
    fc = pair(tmp_path, [extract1d(WAVE[::-1], flux_nan[::-1])], [extract1d(WAVE, flux_nan)])
    s = only(fc)
    assert not fc.tables[0].identical  # row by row everything moved
    assert (s.grid_shift, s.median_rel, s.worst_rel, s.n_beyond_tolerance) == (0.0, 0.0, 0.0, 0)
    assert (s.points_a, s.n_common, s.range_a) == (348, 348, [WAVE[3], 12.0])
    assert s.identical


def test_surf_bright_when_flux_is_empty(tmp_path: Path) -> None:
    hdu_a = extract1d(WAVE, model(WAVE))
    hdu_b = extract1d(WAVE, model(WAVE))
    hdu_a.data["FLUX"][:] = np.nan
    hdu_b.data["SURF_BRIGHT"] *= 1.1
    s = only(pair(tmp_path, [hdu_a], [hdu_b]))
    assert s.column == "SURF_BRIGHT"
    assert s.median_rel == pytest.approx(0.1)


def test_identical_spectra_are_not_compared_again(tmp_path: Path) -> None:
    fc = pair(tmp_path, [extract1d(WAVE, model(WAVE))], [extract1d(WAVE, model(WAVE))])
    assert fc.identical and fc.spectra == []


# ---------------------------------------------------------------------------- several spectra


def test_several_extensions_pair_by_slit(tmp_path: Path) -> None:
    flux = model(WAVE)
    a = [extract1d(WAVE, flux, SLTNAME="S1", SPORDER=1),
         extract1d(WAVE, flux * 2, SLTNAME="S2", SPORDER=1)]
    b = [extract1d(WAVE, flux * 2 * 1.05, SLTNAME="S2", SPORDER=1),  # order swapped
         extract1d(WAVE, flux, SLTNAME="S1", SPORDER=1),
         extract1d(WAVE, flux, SLTNAME="S3", SPORDER=1)]
    fc = pair(tmp_path, a, b)
    spectra = {(s.name, s.name_b, s.label): s for s in fc.spectra}
    assert set(spectra) == {("EXTRACT1D", "EXTRACT1D,2", "SLTNAME S1"),
                            ("EXTRACT1D,2", "EXTRACT1D", "SLTNAME S2")}
    assert spectra["EXTRACT1D", "EXTRACT1D,2", "SLTNAME S1"].identical
    s2 = spectra["EXTRACT1D,2", "EXTRACT1D", "SLTNAME S2"]
    assert s2.median_rel == pytest.approx(0.05) and s2.worst_rel == pytest.approx(0.05)
    assert (fc.spectra_only_in_a, fc.spectra_only_in_b) == ([], ["EXTRACT1D,3 (SLTNAME S3)"])
    assert any(f.text == "spectra +EXTRACT1D,3 (SLTNAME S3)" for f in findings(fc))


def test_one_spectrum_per_row(tmp_path: Path) -> None:
    # jwst's WFSS x1d: one EXTRACT1D, a row per source, array columns padded with NaN
    def table(sources: list[int], lengths: list[int], scale: dict[int, float]
              ) -> fits.BinTableHDU:
        width = 400
        wave = np.full((len(sources), width), np.nan)
        flux = np.full((len(sources), width), np.nan)
        for row, (source, n) in enumerate(zip(sources, lengths, strict=True)):
            wave[row, :n] = WAVE[:n]
            flux[row, :n] = model(WAVE[:n]) * source * scale.get(source, 1.0)
        return fits.BinTableHDU(Table({
            "SOURCE_ID": np.array(sources, dtype=np.int32), "WAVELENGTH": wave, "FLUX": flux,
            "N_ALONGDISP": np.array(lengths, dtype=np.uint32)}), name="EXTRACT1D")

    fc = pair(tmp_path, [table([7, 8, 9], [351, 300, 351], {})],
              [table([9, 7], [351, 351], {9: 0.9})])
    spectra = {s.label: s for s in fc.spectra}
    assert set(spectra) == {"SOURCE_ID 7", "SOURCE_ID 9"}
    assert (spectra["SOURCE_ID 7"].name, spectra["SOURCE_ID 7"].name_b) == (
        "EXTRACT1D[0]", "EXTRACT1D[1]")
    assert spectra["SOURCE_ID 7"].identical and spectra["SOURCE_ID 7"].points_a == 351
    assert spectra["SOURCE_ID 9"].median_rel == pytest.approx(-0.1)
    assert fc.spectra_only_in_a == ["EXTRACT1D[1] (SOURCE_ID 8)"]


def test_feature_shift_needs_features() -> None:
    smooth = model(WAVE, lines=False)
    shift, correlation = feature_shift(WAVE, smooth, WAVE + 0.01, smooth, step=STEP,
                                       lo=5.01, hi=12.0)
    assert shift is None and correlation is not None and correlation > 0.9
    x = Spectrum("EXTRACT1D", None, {}, WAVE, {"FLUX": model(WAVE)}, {"WAVELENGTH": "um"})
    y = Spectrum("EXTRACT1D", None, {}, WAVE + 0.01, {"FLUX": model(WAVE)}, {})
    assert compare_spectrum(x, y).feature_shift == pytest.approx(0.01, abs=0.01 * STEP)


# ---------------------------------------------------------------------------- report


def directories(tmp_path: Path) -> tuple[Path, Path]:
    flux = model(WAVE)
    scaled = flux.copy()
    scaled[150:201] *= 1.02
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    x1d(tmp_path / "A" / "jw01_x1d.fits", extract1d(WAVE, flux))
    x1d(tmp_path / "B" / "jw01_x1d.fits", extract1d(WAVE, scaled), version="3.0.0")
    x1d(tmp_path / "A" / "jw02_x1d.fits", extract1d(WAVE, flux))
    x1d(tmp_path / "B" / "jw02_x1d.fits", extract1d(WAVE + 0.005, flux), version="3.0.0")
    return tmp_path / "A", tmp_path / "B"


def test_summary_verbose_and_json(tmp_path: Path) -> None:
    from rich.console import Console

    result = compare_paths(*directories(tmp_path))
    console = Console(record=True, width=200)
    render_terminal(result, console)
    summary = console.export_text()
    level = next(line for line in summary.splitlines() if line.startswith("x1d"))
    # the grid change ranks first (all of it moved), then the 2 % scaling
    assert "range 5–12 µm → 5.005–12.01 µm" in level and "grid +0.005 µm (+0.25 px)" in level

    console = Console(record=True, width=250)
    render_terminal(result, console, verbose=True)
    verbose = console.export_text()
    assert "FLUX by λ: median 0, worst +2% at 8." in verbose  # the files table
    assert "+2% at 8." in verbose and "51 of 351" in verbose  # jw01's spectra table
    assert "jw01_x1d.fits: spectra by wavelength (B/A − 1 on the common grid)" in verbose
    assert "350 on A's grid" in verbose and "+0.005 µm (+0.25 px)" in verbose

    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert Comparison.from_dict(json.loads(text)).to_dict() == data
    spectrum = data["files"][0]["spectra"][0]
    assert spectrum["n_beyond_tolerance"] == 51 and spectrum["identical"] is False


def test_spectrum_picture(tmp_path: Path) -> None:
    import matplotlib.image

    page = write_html(compare_paths(*directories(tmp_path)), tmp_path / "report")
    html = page.read_text()
    assert "<h3>Spectra by wavelength (B/A − 1 on the common grid)</h3>" in html
    pngs = sorted(p.name for p in page.parent.glob("*.png"))
    assert pngs == ["jw01_x1d_EXTRACT1D.png", "jw02_x1d_EXTRACT1D.png"]
    assert "EXTRACT1D: spectra A and B, and B/A on the common grid (351 points of A" in html
    picture = matplotlib.image.imread(page.parent / "jw01_x1d_EXTRACT1D.png")
    height, width = picture.shape[:2]
    assert 450 <= height <= 650 and 800 <= width <= 1000
    rgb = (picture[..., :3] * 255).round().astype(int)
    colours = {tuple(c) for c in rgb.reshape(-1, 3)}
    assert (31, 119, 180) in colours  # A's curve
    assert any(r > 200 and g < 80 and b < 80 for r, g, b in colours)  # B's curve, the circle
    # both panels: the lower one (B/A) holds black ratio pixels below the upper half
    dark = (rgb.sum(axis=-1) < 60)
    assert dark[height // 2:, width // 8:].sum() > 200
