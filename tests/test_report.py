"""jwenv.report: the one-screen summary, --verbose, and pictures read back pixel by pixel."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from rich.console import Console

from helpers import cli
from jwenv.compare import DQ_FLAGS, Comparison, ImageDiff, compare_paths
from jwenv.report import (
    PLOTS_HINT,
    findings,
    image_picture,
    level_summaries,
    pool_maxabs,
    pool_mean,
    product_level,
    render_terminal,
    write_html,
)

# `jwenv diff --json` of the demo's products (1.20.2 against 3.0.0: rate, rateints, cal,
# crf, i2d, segm, catalog; 19 pairs, 3 trapsfilled files only in 1.20.2), identical
# table columns left out to keep the file small.
DEMO = Path(__file__).parent / "data" / "demo_comparison.json"
LEVELS = ["trapsfilled", "rateints", "rate", "cal", "crf", "i2d", "segm", "catalog"]


def demo() -> Comparison:
    return Comparison.from_dict(json.loads(DEMO.read_text()))


def rendered(comparison: Comparison, width: int, verbose: bool = False) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    render_terminal(comparison, console, verbose=verbose)
    return console.export_text()


# ---------------------------------------------------------------------------- terminal


@pytest.mark.parametrize("width", [80, 100, 160])
def test_demo_summary_fits_on_one_screen(width: int) -> None:
    text = rendered(demo(), width)
    lines = text.splitlines()
    assert len(lines) <= 40, text
    assert all(len(line) <= width for line in lines)
    # provenance once for the pair of runs, not per file
    assert text.count("R_PERSAT") == 1 and text.count("S_PERSIS") == 1
    assert "jwst 1.20.2 → 3.0.0" in text and "context jwst_9000.pmap" in text
    # one line per product level, in pipeline order
    level_lines = [line.split()[0] for line in lines if line.split()
                   and line.split()[0] in LEVELS]
    assert level_lines[:len(LEVELS)] == LEVELS
    assert "3 only in A" in text
    assert "Worst differences" in text
    assert "19 of 19 file(s) differ" in text


def test_demo_level_figures() -> None:
    rows = {r.level: r for r in level_summaries(demo())}
    assert [(r.files, r.identical, r.only_in_a) for r in rows.values()] == [
        (0, 0, 3), (3, 0, 0), (3, 0, 0), (3, 0, 0), (3, 0, 0), (5, 0, 0), (1, 0, 0),
        (1, 0, 0)]
    assert rows["i2d"].worst.startswith("SCI: 94% px beyond tol, max|Δ| 0.184")
    assert "DQ +18 SATURATED" in rows["rate"].worst
    assert rows["catalog"].worst.startswith("40 of 40 → 40 sources matched")
    assert rows["segm"].worst.startswith("data identical; provenance")


def test_demo_verbose_has_every_file() -> None:
    comparison = demo()
    text = rendered(comparison, 200, verbose=True)
    assert len(text.splitlines()) > 200
    for fc in comparison.files:
        assert fc.name in text
    for name in comparison.only_in_a:
        assert name in text
    assert "orientation" in text and "0.253 (mod 180)" in text


def test_renumbered_sources_rank_below_a_changed_measurement(tmp_path: Path) -> None:
    from test_compare_catalogs import sky_catalog

    a, b = sky_catalog(), sky_catalog()
    b["label"] = b["label"][::-1]  # the other release numbers the sources the other way
    b["aper_total_flux"][2] *= 1.5
    a.write(tmp_path / "a_cat.ecsv")
    b.write(tmp_path / "b_cat.ecsv")
    (fc,) = compare_paths(tmp_path / "a_cat.ecsv", tmp_path / "b_cat.ecsv").files
    ranked = [(f.item, f.text) for f in findings(fc)]
    assert ranked[0] == ("aper_total_flux",
                         "aper_total_flux: 1 of 6 rows beyond tol, max|Δ| 7e-07")
    assert ranked[-1][0] == "label"


def test_product_levels() -> None:
    assert product_level("jw01_nrca1_rate.fits") == "rate"
    assert product_level("jw01-o001_t001_nircam_clear-f200w_cat.ecsv") == "catalog"
    assert product_level("v1_jw01_cal.fits ↔ v2_jw01_cal.fits") == "cal"
    assert product_level("notes.fits") == "other"


# ---------------------------------------------------------------------------- pictures


def rate_pair(tmp_path: Path, shape: tuple[int, int], changed: tuple[int, int],
              delta: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    sci = rng.normal(100.0, 1.0, size=shape).astype(np.float32)
    new = sci.copy()
    new[changed] += np.float32(delta)
    paths = []
    for name, data in (("a_rate.fits", sci), ("b_rate.fits", new)):
        hdu = fits.ImageHDU(data, name="SCI")
        hdu.header["BUNIT"] = "DN/s"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / name)
        paths.append(tmp_path / name)
    return paths[0], paths[1]


def read_png(data: bytes, tmp_path: Path) -> np.ndarray:
    import matplotlib.image

    path = tmp_path / "picture.png"
    path.write_bytes(data)
    return matplotlib.image.imread(path)[..., :3]  # RGB in 0..1


def screen_position(box: tuple[int, int, int, int], scale: int, pool: int,
                    pixel: tuple[int, int]) -> tuple[int, int]:
    """Where a data pixel lands in a panel (origin lower): (row, column) in the PNG."""
    x0, y0, _, height = box
    row, col = pixel[0] // pool, pixel[1] // pool
    return y0 + height - row * scale - scale // 2 - 1, x0 + col * scale + scale // 2


def assert_only_there(rgb: np.ndarray, box: tuple[int, int, int, int], at: tuple[int, int],
                      colour: tuple[float, float, float], scale: int) -> None:
    """The panel shows ``colour`` at ``at`` and near-white (no change) elsewhere, apart
    from the ring drawn around a lone change."""
    import matplotlib

    x0, y0, width, height = box
    panel = rgb[y0 + 2:y0 + height - 2, x0 + 2:x0 + width - 2]
    row, col = at[0] - y0 - 2, at[1] - x0 - 2
    assert np.abs(panel[row, col] - np.array(colour)).max() < 0.03, panel[row, col]
    hits = np.argwhere(np.abs(panel - np.array(colour)).max(axis=-1) < 0.03)
    assert np.abs(hits - [row, col]).max() <= scale  # that colour only there
    yy, xx = np.mgrid[:panel.shape[0], :panel.shape[1]]
    far = (yy - row) ** 2 + (xx - col) ** 2 > (14 + scale) ** 2
    white = np.array(matplotlib.colormaps["RdBu_r"](0.5)[:3])
    assert np.abs(panel[far] - white).max() < 0.03


def test_single_changed_pixel_is_visible(tmp_path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    a, b = rate_pair(tmp_path, (120, 90), changed=(37, 51), delta=50.0)
    picture = image_picture(plt, str(a), str(b), "SCI", ImageDiff("SCI"))
    assert (picture.pool, picture.scale) == (1, 2)  # small: every pixel, enlarged
    rgb = read_png(picture.png, tmp_path)
    box = picture.boxes["A − B"]
    assert box[2:] == (90 * 2, 120 * 2)
    at = screen_position(box, picture.scale, picture.pool, (37, 51))
    darkest_blue = matplotlib.colormaps["RdBu_r"](0.0)[:3]  # A − B = −50 = −max|Δ|
    assert_only_there(rgb, box, at, darkest_blue, picture.scale)
    assert "±50 DN/s" in picture.caption


def test_single_changed_pixel_survives_downsampling(tmp_path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    # 1500×2000 shown 4×4 pixels per point: a lone pixel off the 4-pixel grid
    a, b = rate_pair(tmp_path, (1500, 2000), changed=(1001, 1503), delta=-7.0)
    picture = image_picture(plt, str(a), str(b), "SCI", ImageDiff("SCI"))
    assert (picture.pool, picture.scale) == (4, 1)
    rgb = read_png(picture.png, tmp_path)
    box = picture.boxes["A − B"]
    assert box[2:] == (500, 375)
    at = screen_position(box, picture.scale, picture.pool, (1001, 1503))
    darkest_red = matplotlib.colormaps["RdBu_r"](1.0)[:3]  # A − B = +7 = +max|Δ|
    assert_only_there(rgb, box, at, darkest_red, picture.scale)


def test_dq_picture_shows_which_flags_changed_where(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    dq_a = np.zeros((60, 80), dtype=np.uint32)
    dq_a[10, 10] = DQ_FLAGS["JUMP_DET"]
    dq_b = np.zeros_like(dq_a)
    dq_b[40, 60:63] = DQ_FLAGS["SATURATED"]
    for name, dq in (("a_cal.fits", dq_a), ("b_cal.fits", dq_b)):
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(dq, name="DQ")]).writeto(tmp_path / name)
    image = compare_paths(tmp_path / "a_cal.fits", tmp_path / "b_cal.fits").files[0].images[0]
    assert image.is_dq
    picture = image_picture(plt, str(tmp_path / "a_cal.fits"), str(tmp_path / "b_cal.fits"),
                            "DQ", image)
    rgb = read_png(picture.png, tmp_path)
    box = picture.boxes["flags changed (A → B)"]
    # the most common change gets the first colour: SATURATED gained (3), JUMP_DET lost (1)
    for pixel, colour in (((40, 61), "#d62728"), ((10, 10), "#1f77b4")):
        row, col = screen_position(box, picture.scale, picture.pool, pixel)
        assert np.abs(rgb[row, col] - np.array(to_rgb(colour))).max() < 0.03, pixel
    row, col = screen_position(box, picture.scale, picture.pool, (30, 30))
    assert np.abs(rgb[row, col] - 1.0).max() < 0.03  # unchanged: white


def test_pooling_keeps_the_largest_change_with_its_sign() -> None:
    values = np.zeros((5, 6))
    values[1, 2] = -3.0
    values[1, 3] = 2.0
    values[4, 5] = np.nan  # a NaN-pattern change survives too
    pooled = pool_maxabs(values, 2)
    assert pooled.shape == (3, 3)
    assert pooled[0, 1] == -3.0 and np.isnan(pooled[2, 2])
    assert np.count_nonzero(np.nan_to_num(pooled)) == 1
    assert pool_mean(np.arange(16.0).reshape(4, 4), 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]


# ---------------------------------------------------------------------------- HTML


def test_html_pictures_written_beside_the_page(tmp_path: Path) -> None:
    a, b = rate_pair(tmp_path, (64, 64), changed=(5, 6), delta=1.0)
    page = write_html(compare_paths(a, b), tmp_path / "report")
    (png,) = sorted(page.parent.glob("*.png"))
    assert png.name == "a_rate_b_rate_SCI.png"
    assert f'href="{png.name}"' in page.read_text()
    import base64
    import re

    (embedded,) = re.findall(r"data:image/png;base64,([^\"]+)", page.read_text())
    assert base64.b64decode(embedded) == png.read_bytes()


def test_html_header_table_shows_only_differing_columns(tmp_path: Path) -> None:
    names = [f"K{i:03d}" for i in range(160)]

    def hdrtab(changed: bool) -> fits.BinTableHDU:
        columns = {n: np.array([1.0, 2.0]) for n in names}
        if changed:
            columns["K005"] = np.array([1.0, 3.0])
            columns["K100"] = np.array([0.5, 2.0])
        return fits.BinTableHDU.from_columns(
            [fits.Column(name=n, format="D", array=v) for n, v in columns.items()],
            name="HDRTAB")

    for name, changed in (("a_i2d.fits", False), ("b_i2d.fits", True)):
        fits.HDUList([fits.PrimaryHDU(), hdrtab(changed)]).writeto(tmp_path / name)
    page = write_html(compare_paths(tmp_path / "a_i2d.fits", tmp_path / "b_i2d.fits"),
                      tmp_path / "report").read_text()
    assert "<td>K005</td>" in page and "<td>K100</td>" in page
    assert "<td>K006</td>" not in page
    assert "158 identical column(s) not shown" in page


# ---------------------------------------------------------------------------- CLI


def test_cli_verbose_and_skipped_pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    for side, delta in (("A", 0.0), ("B", 2.0)):
        (tmp_path / side).mkdir()
        for n in range(3):
            data = np.full((8, 8), 1.0 + (delta if n == 1 else 0.0), dtype=np.float32)
            fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(
                tmp_path / side / f"jw0{n}_cal.fits")
    short = cli("diff", str(tmp_path / "A"), str(tmp_path / "B"))
    assert short.returncode == 1
    assert "cal" in short.stdout and "1 of 3 file(s) differ" in short.stdout
    assert "SCI: 100% px beyond tol, max|Δ| 2" in short.stdout
    assert "worst in jw01" in short.stdout  # the worst difference names its file
    assert "jw00_cal.fits" not in short.stdout
    full = cli("diff", str(tmp_path / "A"), str(tmp_path / "B"), "--verbose")
    assert full.returncode == 1 and "jw00_cal.fits" in full.stdout

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    out = cli("diff", str(tmp_path / "A"), str(tmp_path / "B"), "--html",
              str(tmp_path / "report"))
    assert out.returncode == 1
    assert f"pictures skipped: {PLOTS_HINT}" in out.stderr
    assert (tmp_path / "report" / "index.html").is_file()
    assert not list((tmp_path / "report").glob("*.png"))
