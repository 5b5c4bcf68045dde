"""Source catalogs: matched on the sky, unmatched sources listed, angles compared modulo
their period (exact figures)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from jwenv.compare import TableDiff, angle_period, compare_paths, match_sources

RA0, DEC0 = 53.16, -27.78
ARCSEC = 1 / 3600


def sky_catalog(rows: int = 6) -> Table:
    """Like jwst's Image3 catalog: label, pixel and sky centroids, flux, orientations."""
    t = Table()
    t["label"] = np.arange(1, rows + 1)
    t["xcentroid"] = np.linspace(10.0, 60.0, rows)
    t["ycentroid"] = np.linspace(5.0, 30.0, rows)
    # sources 2 arcsec apart along RA
    ra = RA0 + np.arange(rows) * 2 * ARCSEC / np.cos(np.radians(DEC0))
    t["sky_centroid"] = SkyCoord(ra * u.deg, np.full(rows, DEC0) * u.deg)
    t["aper_total_flux"] = np.linspace(1e-6, 2e-6, rows) * u.Jy
    # photutils: -90..90 (here also beyond, as 1.20.2 wrote -180..180)
    t["orientation"] = np.array([-24.867505, 44.952884, -170.0, 10.0, 89.9, -0.01])[:rows]
    t["orientation"].unit = "deg"
    t["orientation"].info.description = ("The angle (degrees) between the positive X axis "
                                         "and the major axis (increases counter-clockwise)")
    t["sky_orientation"] = t["orientation"] + 329.5
    t["sky_orientation"].unit = "deg"
    t["sky_orientation"].info.description = "The position angle from North of the major axis"
    t["semimajor_sigma"] = np.full(rows, 2.0) * u.pix
    t["semimajor_sigma"].info.description = "1-sigma standard deviation along the semimajor axis"
    return t


def write(table: Table, path: Path) -> Path:
    table.write(path, format="ascii.ecsv", overwrite=True)
    return path


def catalog_diff(tmp_path: Path, a: Table, b: Table, **options: object) -> TableDiff:
    result = compare_paths(write(a, tmp_path / "a_cat.ecsv"), write(b, tmp_path / "b_cat.ecsv"),
                           **options)
    (fc,) = result.files
    assert fc.error is None
    (table,) = fc.tables
    return table


def figures(table: TableDiff) -> dict[str, tuple[float | None, int]]:
    return {c.name: (c.max_abs_diff, c.n_different) for c in table.columns}


def test_angle_periods() -> None:
    assert angle_period("orientation", "deg") == 180.0  # an ellipse's major axis
    assert angle_period("sky_orientation", "deg", "position angle of the major axis") == 180.0
    assert angle_period("PA_V3", "deg") == 360.0
    assert angle_period("theta", "rad") == pytest.approx(2 * np.pi)
    assert angle_period("ra_offset", "deg") == 360.0
    assert angle_period("semimajor_sigma", "pix", "along the semimajor axis") is None
    assert angle_period("flux", "Jy") is None


def test_angle_wrap_gives_no_difference(tmp_path: Path) -> None:
    a = sky_catalog()
    b = sky_catalog()
    # the other release writes 0..360: -24.867505 -> 335.132495, 389.5 -> 29.5 ...
    b["orientation"] = np.mod(a["orientation"], 360)
    b["sky_orientation"] = np.mod(a["sky_orientation"], 360)
    # an ellipse at 89.9 degrees is the same ellipse at -90.1
    b["orientation"][4] = -90.1
    table = catalog_diff(tmp_path, a, b)
    assert table.identical
    got = figures(table)
    assert got["orientation"][1] == 0 and got["orientation"][0] < 1e-9
    assert got["sky_orientation"][1] == 0 and got["sky_orientation"][0] < 1e-9
    periods = {c.name: c.period for c in table.columns if c.period}
    assert periods == {"sky_centroid.ra": 360.0, "orientation": 180.0, "sky_orientation": 180.0}

    # ... while a real turn of 0.25 degrees across the wrap is reported as 0.25
    b["orientation"][0] = 335.132495 + 0.25
    got = figures(catalog_diff(tmp_path, a, b))
    assert got["orientation"] == (pytest.approx(0.25, abs=1e-9), 1)


def test_shifted_source_is_matched_by_position(tmp_path: Path) -> None:
    a = sky_catalog()
    b = sky_catalog()
    moved = b["sky_centroid"][3]
    b["sky_centroid"][3] = SkyCoord(moved.ra, moved.dec + 0.05 * u.arcsec)
    b = b[::-1]  # the other release lists the sources in another order
    table = catalog_diff(tmp_path, a, b)
    assert (table.matched_by, table.n_matched) == ("sky_centroid", 6)
    assert table.match_radius_arcsec == 0.2
    assert table.max_separation_arcsec == pytest.approx(0.05, rel=1e-6)
    assert table.sources_only_in_a == table.sources_only_in_b == []
    got = figures(table)
    assert got["sky_centroid.dec"] == (pytest.approx(0.05 * ARCSEC, rel=1e-6), 1)
    assert got["sky_centroid.ra"] == (pytest.approx(0.0, abs=1e-12), 0)
    # paired by position, not by row: every other column is the same source's
    for name in ("label", "xcentroid", "aper_total_flux", "orientation"):
        assert got[name] == (0.0, 0), name
    assert not table.identical

    # 0.5 arcsec is beyond the default radius, within a wider one
    b = sky_catalog()
    b["sky_centroid"][3] = SkyCoord(moved.ra, moved.dec + 0.5 * u.arcsec)
    table = catalog_diff(tmp_path, a, b)
    assert table.n_matched == 5
    assert [s["id"] for s in table.sources_only_in_a] == [4]
    assert table.sources_only_in_a[0]["nearest_arcsec"] == pytest.approx(0.5, rel=1e-6)
    assert catalog_diff(tmp_path, a, b, match_radius=1.0).n_matched == 6


def test_unmatched_sources_are_listed(tmp_path: Path) -> None:
    a = sky_catalog()
    b = sky_catalog()
    b.remove_row(2)  # label 3 is lost
    b.add_row(b[0])  # and a new source appears 30 arcsec north of label 1
    b["label"][-1] = 7
    b["sky_centroid"][-1] = SkyCoord(a["sky_centroid"][0].ra, (DEC0 + 30 * ARCSEC) * u.deg)
    table = catalog_diff(tmp_path, a, b)
    assert (table.rows_a, table.rows_b, table.n_matched) == (6, 6, 5)
    (lost,) = table.sources_only_in_a
    assert (lost["row"], lost["id"]) == (2, 3)
    assert (lost["ra"], lost["dec"]) == (pytest.approx(a["sky_centroid"][2].ra.deg),
                                         pytest.approx(DEC0))
    assert lost["nearest_arcsec"] == pytest.approx(2.0, rel=1e-4)  # its neighbours
    (new,) = table.sources_only_in_b
    assert (new["row"], new["id"], new["nearest_arcsec"]) == (5, 7, None)  # > 2 arcsec away
    assert new["dec"] == pytest.approx(DEC0 + 30 * ARCSEC)
    assert all(c.identical for c in table.columns)  # the matched five agree
    assert not table.identical
    assert compare_paths(tmp_path / "a_cat.ecsv", tmp_path / "b_cat.ecsv").exit_code() == 1


def test_catalog_without_sky_positions_pairs_rows(tmp_path: Path) -> None:
    a = sky_catalog()
    del a["sky_centroid"]
    b = a.copy()
    b["aper_total_flux"][1] *= 2
    table = catalog_diff(tmp_path, a, b)
    assert (table.matched_by, table.n_matched) == ("row", None)
    assert figures(table)["aper_total_flux"] == (pytest.approx(1.2e-6), 1)


def test_match_sources_both_ways_nearest() -> None:
    # two A sources near one B source: only the nearer one is its match
    a = SkyCoord([RA0, RA0] * u.deg, [DEC0, DEC0 + 0.15 * ARCSEC] * u.deg)
    b = SkyCoord([RA0] * u.deg, [DEC0 + 0.1 * ARCSEC] * u.deg)
    rows_a, rows_b, sep, near_a, near_b = match_sources(a, b, 0.2)
    assert (rows_a.tolist(), rows_b.tolist()) == ([1], [0])
    assert sep == pytest.approx([0.05], rel=1e-6)
    assert near_a == pytest.approx([0.1, 0.05], rel=1e-6)
    assert near_b == pytest.approx([0.05], rel=1e-6)
