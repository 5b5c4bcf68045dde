"""Render a :class:`jwenv.compare.Comparison`: a one-screen summary or every figure for
the terminal, or one self-contained HTML page with pictures (matplotlib, optional).

Rendering only: all figures come from ``compare.py``; the pictures re-read the
(memory-mapped) data because a Comparison deliberately holds no pixels.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jwenv.compare import (
    DQ_FLAGS,
    Comparison,
    FileComparison,
    ImageDiff,
    KeywordDiff,
    SpectrumDiff,
    TableDiff,
)

if TYPE_CHECKING:
    from rich.console import Console

PLOTS_HINT = "Pictures need matplotlib: pip install 'jwenv[plots]'"
MAX_HEADER_ROWS = 25  # per file; the JSON output has them all
SUMMARY_PROVENANCE_ROWS = 10  # reference files and step statuses shown in the summary
SUMMARY_WORST = 6  # "worst differences" lines in the summary
PANEL_PIXELS = 512  # longest side of one picture panel, in data pixels after pooling
SPECTRUM_PICTURES = 6  # spectrum plots per file (most changed first); the tables have all
# Tables that repeat header keywords (a level-3 product's HDRTAB, one row per input):
# their differences are provenance, not data.
METADATA_TABLES = frozenset({"HDRTAB"})
# Catalog columns that number sources: renumbering is not a measurement changing, so
# they rank last among the worst differences (they are still reported).
ID_COLUMNS = frozenset({"label", "id", "source_id", "nn_label"})
# Pipeline order for product levels; levels not listed come after, alphabetically.
LEVEL_ORDER = ("uncal", "dark", "ramp", "trapsfilled", "rateints", "rate", "calints", "cal",
               "crfints", "crf", "bsubints", "bsub", "s2d", "s3d", "x1dints", "x1d", "c1d",
               "whtlt", "i2d", "segm", "catalog", "psfstack", "psfalign", "psfsub", "median")
_LEVEL_RE = re.compile(r"_([A-Za-z0-9]+)\.(?:fits\.gz|fits|fit|fts|ecsv|asdf)$", re.I)
_BIT_NAMES = {value.bit_length() - 1: name for name, value in DQ_FLAGS.items()}


# ---------------------------------------------------------------------------- helpers


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def _pct(fraction: float) -> str:
    if fraction == 0:
        return "0"
    if fraction >= 0.1:
        return f"{fraction * 100:.0f}%"
    return f"{fraction * 100:.2g}%" if fraction >= 1e-4 else f"{fraction * 100:.1e}%"


def _arcsec(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.3g} mas" if value < 1 else f"{value:.3g}″"


def _value(value: Any) -> str:
    return "(missing)" if value is None else str(value)


def _short(value: Any) -> str:
    """A reference file as a person names it: without ``crds://``."""
    text = _value(value)
    return text[len("crds://"):] if text.startswith("crds://") else text


def _shape(image: ImageDiff) -> str:
    def one(shape: list[int] | None, dtype: str | None) -> str:
        return "absent" if shape is None and dtype is None else (
            f"{'×'.join(map(str, shape or []))} {dtype or ''}".strip())

    a, b = one(image.shape_a, image.dtype_a), one(image.shape_b, image.dtype_b)
    return a if a == b else f"{a} → {b}"


def _nan_change(image: ImageDiff) -> str:
    parts = []
    if image.became_nan:
        parts.append(f"+{image.became_nan}")
    if image.stopped_nan:
        parts.append(f"−{image.stopped_nan}")
    return " ".join(parts) or "0"


def _flag_text(gained: dict[str, int], lost: dict[str, int]) -> str:
    parts = []
    for name in dict.fromkeys([*gained, *lost]):
        if gained.get(name):
            parts.append(f"+{gained[name]} {name}")
        if lost.get(name):
            parts.append(f"−{lost[name]} {name}")
    return ", ".join(parts)


def _flags(image: ImageDiff) -> str:
    return _flag_text({f.name: f.gained for f in image.dq_flags},
                      {f.name: f.lost for f in image.dq_flags})


def _image_summary(image: ImageDiff) -> str:
    """One line a scientist can read: what changed in this extension."""
    if image.shape_changed or image.dtype_changed:
        return f"{image.extension}: {_shape(image)}"
    if image.is_dq:
        return f"{image.extension}: {image.n_different} px changed ({_flags(image)})"
    text = (f"{image.extension}: {_pct(image.fraction_beyond_tolerance)} px beyond tol, "
            f"max|Δ| {_num(image.max_abs_diff)}")
    if image.became_nan or image.stopped_nan:
        text += f", NaN {_nan_change(image)}"
    return text


def _period(period: float | None) -> str:
    return f" (mod {period:g})" if period else ""


def _matching(table: TableDiff) -> str:
    """How a catalog's sources were paired, in one phrase."""
    if table.matched_by == "row" or table.n_matched is None:
        return ""
    text = (f"{table.n_matched} of {table.rows_a} → {table.rows_b} sources matched on "
            f"{table.matched_by} within {_arcsec(table.match_radius_arcsec)}")
    if table.max_separation_arcsec is not None:
        text += f" (max separation {_arcsec(table.max_separation_arcsec)})"
    return text


def _unit(unit: str) -> str:
    return "µm" if unit.strip().lower() in ("um", "micron", "microns") else unit.strip()


def _signed_pct(value: float | None) -> str:
    """A relative difference in percent; below 1e-12 (rounding of doubles) it is 0."""
    if value is None:
        return "–"
    return "0" if abs(value) < 1e-12 else f"{value * 100:+.3g}%"


def _wavelength(value: float | None, unit: str) -> str:
    return "–" if value is None else f"{value:.4g} {_unit(unit)}".strip()


def _wave_range(values: list[float] | None, unit: str) -> str:
    return "–" if not values else f"{values[0]:.4g}–{values[1]:.4g} {_unit(unit)}".strip()


def _shift(value: float | None, spectrum: SpectrumDiff) -> str:
    """A wavelength shift, and in grid steps (pixels, roughly) when the step is known."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    text = f"{value:+.3g} {_unit(spectrum.wavelength_unit)}".strip()
    if spectrum.step:
        text += f" ({value / spectrum.step:+.2g} px)"
    return text


def _grid_shift(spectrum: SpectrumDiff) -> str:
    """The grid's shift: its median, and its largest when that differs; "within tol" when
    no wavelength moved beyond tolerance (rounding of the WCS: 1e-15 µm)."""
    if spectrum.grid_shift is None:
        return "sizes differ"
    if spectrum.grid_shift_max == 0:
        return "0"
    if not spectrum.n_wavelengths_beyond_tolerance:
        return "within tol"
    text = _shift(spectrum.grid_shift, spectrum)
    if spectrum.grid_shift_max not in (None, spectrum.grid_shift):
        text += f", max {_shift(spectrum.grid_shift_max, spectrum)}"
    return text


def _spectrum_shifts(spectrum: SpectrumDiff) -> str:
    parts = []
    if spectrum.grid_shift is not None:
        parts.append(f"grid {_grid_shift(spectrum)}")
    if spectrum.feature_shift is not None:
        parts.append(f"features {_shift(spectrum.feature_shift, spectrum)}")
    return "λ shift " + ", ".join(parts) if parts else ""


def spectrum_summary(spectrum: SpectrumDiff) -> str:
    """One line: the flux by wavelength (B/A − 1 on the common grid) and the shifts."""
    unit = spectrum.wavelength_unit
    parts = []
    if spectrum.range_a != spectrum.range_b:
        parts.append(f"range {_wave_range(spectrum.range_a, unit)} → "
                     f"{_wave_range(spectrum.range_b, unit)}")
    if spectrum.rows_a != spectrum.rows_b:
        parts.append(f"rows {spectrum.rows_a} → {spectrum.rows_b}")
    if spectrum.n_common == 0:
        parts.append(f"{spectrum.column or 'flux'}: no common wavelengths")
    else:
        text = f"{spectrum.column} by λ: median {_signed_pct(spectrum.median_rel)}"
        worst = _signed_pct(spectrum.worst_rel)
        if spectrum.worst_rel is not None:
            text += f", worst {worst}"
            if worst != "0":
                text += f" at {_wavelength(spectrum.worst_wavelength, unit)}"
        text += f", {spectrum.n_beyond_tolerance} of {spectrum.n_common} beyond tol"
        parts.append(text)
    shifts = _spectrum_shifts(spectrum)
    if shifts:
        parts.append(shifts)
    head = f"{spectrum.label}: " if spectrum.label else ""
    return head + "; ".join(parts)


def _spectrum_score(spectrum: SpectrumDiff) -> float:
    """The share of the spectrum beyond tolerance; a changed grid counts as all of it."""
    if (spectrum.rows_a != spectrum.rows_b or spectrum.range_a != spectrum.range_b
            or spectrum.n_wavelengths_beyond_tolerance):
        return 1.0
    return spectrum.n_beyond_tolerance / max(spectrum.n_common, 1)


def _spectrum_tables(fc: FileComparison) -> dict[str, set[str]]:
    """Tables whose spectra were compared by wavelength, and their columns that this
    replaces (WAVELENGTH and the flux column compared)."""
    out: dict[str, set[str]] = defaultdict(set)
    for spectrum in fc.spectra:
        out[spectrum.name.split("[")[0]].update({"WAVELENGTH", spectrum.column})
    return out


def _table_summary(table: TableDiff, label: bool = True) -> str:
    parts = []
    if table.n_matched is not None:
        parts.append(f"{table.n_matched} of {table.rows_a} → {table.rows_b} sources matched")
    if table.sources_only_in_a or table.sources_only_in_b:
        parts.append(f"sources only in A {len(table.sources_only_in_a)}, "
                     f"only in B {len(table.sources_only_in_b)}")
    elif table.rows_a != table.rows_b:
        parts.append(f"rows {table.rows_a} → {table.rows_b}")
    changed = [c for c in table.columns if not c.identical]
    if changed:
        cols = [f"{c.name} ({_num(c.max_abs_diff)})" if c.max_abs_diff is not None else c.name
                for c in changed[:4]]
        more = f" +{len(changed) - 4} more" if len(changed) > 4 else ""
        parts.append(f"{len(changed)} column(s) differ: {', '.join(cols)}{more}")
    cols = table.columns_only_in_a + table.columns_only_in_b
    if cols:
        parts.append(f"columns added/removed: {', '.join(cols)}")
    return f"{table.name}: {'; '.join(parts)}" if label else "; ".join(parts)


def file_summary(fc: FileComparison) -> str:
    """What differs in one file's data and headers (its provenance is shown once for the
    whole comparison, in the provenance table)."""
    if fc.error:
        return fc.error
    if fc.kind in ("asdf", "opaque"):
        return "same bytes" if fc.bytes_equal else "bytes differ (compared as opaque)"
    parts = [_image_summary(i) for i in fc.images if not i.identical]
    changed = [s for s in fc.spectra if not s.identical]
    parts += [f"{s.name}: {spectrum_summary(s)}" for s in changed[:2]]
    if len(changed) > 2:
        parts.append(f"{len(changed) - 2} more spectra differ")
    if fc.spectra_only_in_a or fc.spectra_only_in_b:
        parts.append(f"spectra only in A {len(fc.spectra_only_in_a)}, "
                     f"only in B {len(fc.spectra_only_in_b)}")
    if fc.spectra_error:
        parts.append(f"spectra not compared by wavelength ({fc.spectra_error})")
    parts += [_table_summary(t, label=fc.kind != "ecsv") for t in fc.tables if not t.identical]
    if fc.hdus_only_in_a or fc.hdus_only_in_b:
        parts.append("extensions " + ", ".join(
            [f"−{h}" for h in fc.hdus_only_in_a] + [f"+{h}" for h in fc.hdus_only_in_b]))
    if fc.headers:
        parts.append(f"{len(fc.headers)} header keyword(s)")
    if not parts and fc.provenance is not None and not fc.provenance.identical:
        parts.append("provenance only (see the provenance table)")
    if fc.stopped_early:
        parts.append("(quick: stopped at first difference)")
    return "; ".join(parts) or "identical within tolerance"


def _status(fc: FileComparison) -> str:
    if fc.error:
        return "error"
    return "identical" if fc.identical else "differs"


def product_level(name: str) -> str:
    """``jw..._rate.fits`` → ``rate``; ``…_cat.ecsv`` → ``catalog``; else ``other``."""
    match = _LEVEL_RE.search(name.split(" ↔ ")[-1])
    if not match:
        return "other"
    level = match.group(1).lower()
    return "catalog" if level == "cat" else level


def _level_key(level: str) -> tuple[int, str]:
    return (LEVEL_ORDER.index(level) if level in LEVEL_ORDER else len(LEVEL_ORDER), level)


def _levels(names: Iterable[str]) -> str:
    counts = Counter(product_level(n) for n in names)
    return ", ".join(f"{level} ×{n}" if n > 1 else level
                     for level, n in sorted(counts.items(), key=lambda kv: _level_key(kv[0])))


@dataclass
class ProvenanceEntry:
    """One provenance keyword across the files of a comparison."""

    section: str  # "versions", "reference_files", "step_status"
    keyword: str
    a: str
    b: str
    files: list[str] = field(default_factory=list)

    def where(self, total: int) -> str:
        if len(self.files) == total:
            return f"all {total}" if total > 1 else "1"
        levels = sorted({product_level(f) for f in self.files}, key=_level_key)
        return f"{len(self.files)}: {', '.join(levels)}"


def provenance_entries(comparison: Comparison) -> list[ProvenanceEntry]:
    """Provenance aggregated over all files: each keyword once, with the files it is in."""
    entries: dict[tuple[str, str], ProvenanceEntry] = {}
    values: dict[tuple[str, str], tuple[set[str], set[str]]] = defaultdict(
        lambda: (set(), set()))
    for fc in comparison.files:
        if fc.provenance is None:
            continue
        for section in ("versions", "reference_files", "step_status"):
            for kd in getattr(fc.provenance, section):
                key = (section, kd.keyword)
                entry = entries.setdefault(key, ProvenanceEntry(section, kd.keyword, "", ""))
                entry.files.append(fc.name)
                values[key][0].add(_value(kd.a))
                values[key][1].add(_value(kd.b))
    for key, entry in entries.items():
        entry.a, entry.b = (", ".join(sorted(v)) for v in values[key])
    return list(entries.values())


def provenance_rows(comparison: Comparison) -> dict[str, list[tuple[str, str, str, int]]]:
    """Provenance across all files: (keyword, A values, B values, number of files)."""
    out: dict[str, list[tuple[str, str, str, int]]] = {
        "versions": [], "reference_files": [], "step_status": []}
    for e in provenance_entries(comparison):
        out[e.section].append((e.keyword, e.a, e.b, len(e.files)))
    return out


def _fits_with_provenance(comparison: Comparison) -> int:
    return sum(fc.provenance is not None and fc.kind == "fits" for fc in comparison.files)


def _verdict(comparison: Comparison) -> str:
    tol = f"rtol={comparison.rtol:g}, atol={comparison.atol:g}"
    if comparison.error:
        return f"Error: {comparison.error}"
    n_diff = sum(not f.identical for f in comparison.files)
    unpaired = len(comparison.only_in_a) + len(comparison.only_in_b)
    if comparison.identical:
        return f"Identical within {tol} ({len(comparison.files)} file(s) compared)."
    text = f"{n_diff} of {len(comparison.files)} file(s) differ ({tol})"
    if unpaired:
        text += f"; {unpaired} file(s) without a partner"
    if comparison.stopped_early:
        text += "; quick mode stopped at the first difference"
    return text + "."


# ---------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """One thing that differs, ranked: the share of a product that moved beyond tolerance
    (structural changes, errors and lost sources first)."""

    score: float
    level: str
    file: str
    item: str  # extension, table or column
    text: str


def findings(fc: FileComparison) -> list[Finding]:
    """What differs in one file's data, worst first (provenance and headers excluded)."""
    level = product_level(fc.name)
    out: list[Finding] = []

    def add(score: float, item: str, text: str) -> None:
        out.append(Finding(score, level, fc.name, item, text))

    if fc.error:
        add(1000.0, "", f"error: {fc.error}")
    if fc.bytes_equal is False:
        add(10.0, "", "bytes differ (compared as opaque)")
    if fc.hdus_only_in_a or fc.hdus_only_in_b:
        add(20.0, "", "extensions " + ", ".join(
            [f"−{h}" for h in fc.hdus_only_in_a] + [f"+{h}" for h in fc.hdus_only_in_b]))
    for i in fc.images:
        if i.identical:
            continue
        if i.shape_changed or i.dtype_changed:
            add(50.0, i.extension, _image_summary(i))
        elif i.is_dq:
            add(i.n_different / max(i.n_pixels, 1), i.extension, _image_summary(i))
        else:
            nan = (i.became_nan + i.stopped_nan) / max(i.n_pixels, 1)
            add(i.fraction_beyond_tolerance + nan, i.extension, _image_summary(i))
    if fc.spectra_only_in_a or fc.spectra_only_in_b:
        add(30.0, "spectra", "spectra " + ", ".join(
            [f"−{n}" for n in fc.spectra_only_in_a] + [f"+{n}" for n in fc.spectra_only_in_b]))
    # Spectra by wavelength stand for their table: ranked as its worst column at least,
    # and first on a tie; its row-by-row WAVELENGTH and flux figures are then left out.
    by_wavelength = _spectrum_tables(fc)
    table_share = {t.name: max((c.n_different / max(t.n_matched or t.rows_a, 1)
                                for c in t.columns if not c.identical), default=0.0)
                   for t in fc.tables}
    for spectrum in fc.spectra:
        if not spectrum.identical:
            score = max(_spectrum_score(spectrum),
                        table_share.get(spectrum.name.split("[")[0], 0.0))
            add(score, f"{spectrum.name} by λ", spectrum_summary(spectrum))
    for t in fc.tables:
        if t.identical or t.name.split(",")[0].upper() in METADATA_TABLES:
            continue
        replaced = by_wavelength.get(t.name, set())
        lost, new = len(t.sources_only_in_a), len(t.sources_only_in_b)
        if lost or new:
            add(30.0 + (lost + new) / max(t.rows_a + t.rows_b, 1), t.name,
                f"{lost} source(s) only in A, {new} only in B")
        elif t.rows_a != t.rows_b and not replaced:
            add(30.0, t.name, f"rows {t.rows_a} → {t.rows_b}")
        rows = t.n_matched if t.n_matched is not None else t.rows_a
        for c in t.columns:
            if c.identical or c.name.upper() in replaced:
                continue
            text = f"{c.name}: {c.n_different} of {rows} rows"
            if c.max_abs_diff is not None:
                text += f" beyond tol, max|Δ| {_num(c.max_abs_diff)}{_period(c.period)}"
            if c.dtype_a != c.dtype_b:
                text += f" ({c.dtype_a} → {c.dtype_b})"
            weight = 0.01 if c.name.lower() in ID_COLUMNS else 1.0
            add(weight * c.n_different / max(rows, 1), c.name, text)
        for name in t.columns_only_in_a + t.columns_only_in_b:
            side = "A" if name in t.columns_only_in_a else "B"
            add(1.0, name, f"column {name} only in {side}")
    return sorted(out, key=lambda f: -f.score)


def worst_findings(comparison: Comparison, limit: int = SUMMARY_WORST) -> list[Finding]:
    """The worst differences over all files: one per (level, item), two per level at most,
    so the same change seen in rate and rateints, or in forty catalog columns, does not
    fill the list."""
    ranked = sorted((f for fc in comparison.files for f in findings(fc)),
                    key=lambda f: -f.score)
    seen: set[tuple[str, str]] = set()
    per_level: Counter[str] = Counter()
    out = []
    for f in ranked:
        if (f.level, f.item) in seen or per_level[f.level] >= 2:
            continue
        seen.add((f.level, f.item))
        per_level[f.level] += 1
        out.append(f)
        if len(out) == limit:
            break
    return out


@dataclass
class LevelSummary:
    """One product level (rate, cal, i2d, catalog, …) of a comparison."""

    level: str
    files: int = 0
    identical: int = 0
    errors: int = 0
    only_in_a: int = 0
    only_in_b: int = 0
    worst: str = ""


def level_summaries(comparison: Comparison) -> list[LevelSummary]:
    levels: dict[str, LevelSummary] = {}
    by_level: dict[str, list[FileComparison]] = defaultdict(list)
    for fc in comparison.files:
        by_level[product_level(fc.name)].append(fc)
    for level, files in by_level.items():
        row = levels.setdefault(level, LevelSummary(level))
        row.files = len(files)
        row.identical = sum(fc.identical for fc in files)
        row.errors = sum(fc.error is not None for fc in files)
        row.worst = _level_worst(files)
    for name in comparison.only_in_a:
        levels.setdefault(product_level(name), LevelSummary(product_level(name))).only_in_a += 1
    for name in comparison.only_in_b:
        levels.setdefault(product_level(name), LevelSummary(product_level(name))).only_in_b += 1
    return sorted(levels.values(), key=lambda r: _level_key(r.level))


def _level_worst(files: list[FileComparison]) -> str:
    """The worst figure of a level, DQ flag changes summed over its files, how catalog
    sources matched; or what else differs when the data do not."""
    ranked = sorted((f for fc in files for f in findings(fc)), key=lambda f: -f.score)
    parts = []
    matching = [t for fc in files for t in fc.tables if t.n_matched is not None]
    if matching:
        n_a = sum(t.rows_a for t in matching)
        n_b = sum(t.rows_b for t in matching)
        n = sum(t.n_matched or 0 for t in matching)
        seps = [t.max_separation_arcsec for t in matching if t.max_separation_arcsec is not None]
        parts.append(f"{n} of {n_a} → {n_b} sources matched"
                     + (f" (≤ {_arcsec(max(seps))})" if seps else ""))
    non_dq = [f for f in ranked if not f.text.startswith(tuple(
        f"{i.extension}:" for fc in files for i in fc.images if i.is_dq))]
    where = ""
    if non_dq:
        parts.append(non_dq[0].text)
        if len(files) > 1:
            where = f"worst in {_short_name(non_dq[0].file)}"
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for fc in files:
        for i in fc.images:
            for flag in i.dq_flags:
                gained[flag.name] += flag.gained
                lost[flag.name] += flag.lost
    if gained or lost:
        parts.append(f"DQ {_flag_text(dict(gained), dict(lost))}")
    if where:
        parts.append(where)
    if not ranked:
        others = []
        if any(fc.provenance is not None and not fc.provenance.identical for fc in files):
            others.append("provenance")
        n_headers = sum(len(fc.headers) for fc in files)
        if n_headers:
            others.append(f"{n_headers} header keyword(s)")
        meta = sum(not t.identical for fc in files for t in fc.tables
                   if t.name.split(",")[0].upper() in METADATA_TABLES)
        if meta:
            others.append("HDRTAB")
        if others:
            parts.append("data identical; " + ", ".join(others) + " differ")
    return "; ".join(parts)


def _short_name(name: str, width: int = 32) -> str:
    """A file's name without its product suffix, shortened in the middle."""
    stem = _LEVEL_RE.sub("", name.split(" ↔ ")[-1].rsplit("/", 1)[-1])
    if len(stem) <= width:
        return stem
    head = (width - 1) * 3 // 5
    return f"{stem[:head]}…{stem[len(stem) - (width - 1 - head):]}"


# ---------------------------------------------------------------------------- terminal


def render_terminal(comparison: Comparison, console: Console, *, verbose: bool = False) -> None:
    """One screen by default: provenance once, one line per product level, the worst
    differences. ``verbose``: every file, extension, column and header keyword."""
    console.print(f"[bold]A[/]: {comparison.a}\n[bold]B[/]: {comparison.b}", markup=True,
                  highlight=False)
    if comparison.error:
        console.print(f"[bold red]{_verdict(comparison)}[/]")
        return
    if verbose:
        _render_verbose(comparison, console)
    else:
        _render_summary(comparison, console)
    colour = "green" if comparison.identical else ("red" if comparison.exit_code() == 2
                                                   else "yellow")
    console.print(f"[bold {colour}]{_verdict(comparison)}[/]")


def _line(console: Console, cells: list[tuple[str, str | None]], widths: list[int],
          indent: int = 0) -> None:
    """One line, never wrapped: cells padded to ``widths`` (negative: right-aligned), the
    last cell takes the rest of the console's width and is cut with an ellipsis."""
    from rich.text import Text

    text = Text(" " * indent)
    for (value, style), width in zip(cells[:-1], widths, strict=False):
        text.append(value.rjust(-width) if width < 0 else value.ljust(width), style=style)
        text.append("  ")
    last, style = cells[-1]
    room = max(12, console.width - len(text.plain))
    if len(last) > room:
        last = last[:room - 1] + "…"
    text.append(last, style=style)
    console.print(text, no_wrap=True, overflow="ellipsis", crop=True)


def _render_provenance_summary(comparison: Comparison, console: Console) -> None:
    from rich.markup import escape

    entries = provenance_entries(comparison)
    if not entries:
        return
    total = _fits_with_provenance(comparison)
    versions = {e.keyword: e for e in entries if e.section == "versions"}
    head = []
    for keys, label in ((("CAL_VER", "version.jwst"), "jwst"), (("CRDS_VER",), "CRDS"),
                        (("CRDS_CTX",), "context")):
        e = next((versions[k] for k in keys if k in versions), None)
        if e is not None:
            head.append(f"{label} {e.a}" if e.a == e.b else f"{label} {e.a} → {e.b}")
    packages = [f"{k.split('.', 1)[1]} {e.a} → {e.b}" for k, e in versions.items()
                if k.lower().startswith("version.") and e.a != e.b
                and k.lower() != "version.jwst"]
    count = f" ({total} FITS file(s))" if total else ""
    console.print(f"[bold]Provenance[/]{count}: " + escape(" · ".join(head)), highlight=False)
    if packages:
        _line(console, [("packages: " + ", ".join(packages), None)], [], indent=2)
    changes = [e for e in entries if e.section != "versions"]
    if not changes:
        if total:
            console.print("  same reference files and step statuses")
        return
    shown = changes[:SUMMARY_PROVENANCE_ROWS]
    key_width = max(len(e.keyword) for e in shown)
    wheres = [e.where(total) for e in shown]
    where_width = max(len(w) for w in wheres)
    change_width = min(max(len(f"{_short(e.a)} → {_short(e.b)}") for e in shown),
                       max(20, console.width - key_width - where_width - 8))
    for e, where in zip(shown, wheres, strict=True):
        change = f"{_short(e.a)} → {_short(e.b)}"
        if len(change) > change_width:
            change = change[:change_width - 1] + "…"
        _line(console, [(e.keyword, "yellow"), (change, None), (where, "dim")],
              [key_width, change_width], indent=2)
    if len(changes) > SUMMARY_PROVENANCE_ROWS:
        console.print(f"  … {len(changes) - SUMMARY_PROVENANCE_ROWS} more reference file / "
                      "step changes (--verbose)")


def _render_summary(comparison: Comparison, console: Console) -> None:
    _render_provenance_summary(comparison, console)
    if len(comparison.files) == 1 and not (comparison.only_in_a or comparison.only_in_b):
        # one pair: its own tables fit on a screen
        (fc,) = comparison.files
        if fc.identical or fc.error or fc.kind in ("asdf", "opaque"):
            console.print(f"{fc.name}: {file_summary(fc)}", markup=False, highlight=False)
        else:
            _render_file_detail(fc, console)
        return
    rows = level_summaries(comparison)
    if rows:
        widths = [max(5, *(len(r.level) for r in rows)), -5, -4, -6]
        _line(console, [("level", "bold"), ("files", "bold"), ("same", "bold"),
                        ("differ", "bold"), ("worst", "bold")], widths)
        for r in rows:
            differ = r.files - r.identical
            unpaired = [f"{n} only in {side}" for n, side in ((r.only_in_a, "A"),
                                                              (r.only_in_b, "B")) if n]
            worst = "; ".join(p for p in (", ".join(unpaired), r.worst) if p)
            _line(console, [(r.level, None), (str(r.files), None), (str(r.identical), None),
                            (str(differ), "yellow" if differ else None),
                            (worst, "red" if unpaired else None)], widths)
    worst = worst_findings(comparison)
    if worst:
        console.print("[bold]Worst differences[/]")
        level_width = max(len(f.level) for f in worst)
        text_width = min(max(len(f.text) for f in worst),
                         max(30, (console.width - level_width - 6) * 2 // 3))
        for f in worst:
            text = f.text if len(f.text) <= text_width else f.text[:text_width - 1] + "…"
            _line(console, [(f.level, None), (text, None), (_short_name(f.file), "dim")],
                  [level_width, text_width], indent=2)
    hints = []
    if len(comparison.files) > 1 or any(fc.headers for fc in comparison.files):
        hints.append("--verbose: every file, extension, column and header keyword")
    hints.append("--html DIR: pictures")
    if comparison.skipped:
        hints.append(f"{len(comparison.skipped)} non-product file(s) not compared")
    console.print("[dim]" + " · ".join(hints) + "[/]")


def _render_verbose(comparison: Comparison, console: Console) -> None:
    from rich.table import Table

    entries = provenance_entries(comparison)
    if entries:
        total = _fits_with_provenance(comparison)
        table = Table(title="Provenance", title_justify="left")
        for col in ("", "keyword", "A", "B", "files"):
            table.add_column(col, overflow="fold")
        labels = {"versions": "version", "reference_files": "ref file",
                  "step_status": "step"}
        for e in entries:
            style = "yellow" if e.a != e.b else None
            table.add_row(labels[e.section], e.keyword, e.a, e.b, e.where(total), style=style)
        console.print(table)

    if comparison.files or comparison.only_in_a or comparison.only_in_b:
        table = Table(title="Files", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("status")
        table.add_column("what differs", overflow="fold")
        colours = {"identical": "green", "differs": "yellow", "error": "red"}
        for fc in comparison.files:
            status = _status(fc)
            table.add_row(fc.name, f"[{colours[status]}]{status}[/]", file_summary(fc))
        for name in comparison.only_in_a:
            table.add_row(name, "[red]only in A[/]", "")
        for name in comparison.only_in_b:
            table.add_row(name, "[red]only in B[/]", "")
        console.print(table)

    for fc in comparison.files:
        if fc.identical or fc.error or fc.kind in ("asdf", "opaque"):
            continue
        _render_file_detail(fc, console)
    if comparison.skipped:
        console.print(f"[dim]{len(comparison.skipped)} non-product file(s) not compared[/]")


def _source_rows(table: TableDiff) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for side, sources in (("A", table.sources_only_in_a), ("B", table.sources_only_in_b)):
        for s in sources:
            rows.append((side, _value(s.get("id")), f"{s.get('ra', float('nan')):.7f}",
                         f"{s.get('dec', float('nan')):.7f}",
                         _arcsec(s.get("nearest_arcsec")) if s.get("nearest_arcsec") is not None
                         else "none near"))
    return rows


SPECTRUM_HEADER = ("spectrum", "λ range A → B", "common", "median B/A−1", "worst B/A−1",
                   "max|Δ|", "beyond tol", "λ grid shift", "feature shift")


def spectrum_rows(fc: FileComparison) -> list[tuple[str, ...]]:
    """The spectra table (terminal and HTML): one row per pair that differs."""
    rows = []
    for sd in fc.spectra:
        if sd.identical:
            continue
        unit = sd.wavelength_unit
        name = f"{sd.name} ({sd.label})" if sd.label else sd.name
        ranges = (_wave_range(sd.range_a, unit) if sd.range_a == sd.range_b else
                  f"{_wave_range(sd.range_a, unit)} → {_wave_range(sd.range_b, unit)}")
        common = f"{sd.n_common} on {sd.grid}'s grid"
        if sd.rows_a != sd.rows_b:
            common += f" (rows {sd.rows_a} → {sd.rows_b})"
        worst = _signed_pct(sd.worst_rel)
        if worst not in ("0", "–"):
            worst += f" at {_wavelength(sd.worst_wavelength, unit)}"
        largest = (f"{_num(sd.max_abs_diff)} {sd.flux_unit} at "
                   f"{_wavelength(sd.max_abs_wavelength, unit)}"
                   if sd.max_abs_diff is not None else "–")
        feature = (_shift(sd.feature_shift, sd) if sd.feature_shift is not None
                   else "no features to align")
        rows.append((f"{name}: {sd.column}", ranges, common, _signed_pct(sd.median_rel),
                     worst, largest, f"{sd.n_beyond_tolerance} of {sd.n_common}",
                     _grid_shift(sd), feature))
    rows += [(f"{n}: only in A",) + ("",) * 8 for n in fc.spectra_only_in_a]
    rows += [(f"{n}: only in B",) + ("",) * 8 for n in fc.spectra_only_in_b]
    return rows


def _render_file_detail(fc: FileComparison, console: Console) -> None:
    from rich.table import Table

    images = [i for i in fc.images if not i.identical]
    if images:
        table = Table(title=f"{fc.name}: images", title_justify="left")
        for col in ("ext", "shape/dtype", "max|Δ|", "mean|Δ|", "max rel",
                    "beyond tol", "NaN +/−", "DQ flags"):
            table.add_column(col, overflow="fold")
        for i in images:
            if i.is_dq:
                row = ["–", "–", "–", f"{i.n_different} px", "–", _flags(i)]
            else:
                row = [_num(i.max_abs_diff), _num(i.mean_abs_diff), _num(i.max_rel_diff),
                       f"{i.n_beyond_tolerance} ({_pct(i.fraction_beyond_tolerance)})",
                       _nan_change(i), ""]
            table.add_row(i.extension, _shape(i), *row)
        console.print(table)
    spectra = spectrum_rows(fc)
    if spectra:
        table = Table(title=f"{fc.name}: spectra by wavelength (B/A − 1 on the common grid)",
                      title_justify="left")
        for col in SPECTRUM_HEADER:
            table.add_column(col, overflow="fold")
        for row in spectra:
            table.add_row(*row)
        console.print(table)
    if fc.spectra_error:
        console.print(f"{fc.name}: spectra not compared by wavelength ({fc.spectra_error})",
                      markup=False, highlight=False)
    for t in fc.tables:
        if t.identical:
            continue
        title = f"{fc.name}: table {t.name} (rows {t.rows_a} → {t.rows_b})"
        if _matching(t):
            title += f"\n{_matching(t)}"
        table = Table(title=title, title_justify="left")
        for col in ("column", "dtype", "max|Δ|", "n differ"):
            table.add_column(col)
        changed = [c for c in t.columns if not c.identical]
        for c in changed:
            dtype = c.dtype_a if c.dtype_a == c.dtype_b else f"{c.dtype_a} → {c.dtype_b}"
            table.add_row(c.name, dtype, _num(c.max_abs_diff) + _period(c.period),
                          str(c.n_different))
        for name in t.columns_only_in_a:
            table.add_row(name, "only in A", "", "")
        for name in t.columns_only_in_b:
            table.add_row(name, "only in B", "", "")
        same = len(t.columns) - len(changed)
        if same:
            table.caption = f"{same} identical column(s) not shown"
        console.print(table)
        sources = _source_rows(t)
        if sources:
            st = Table(title=f"{fc.name}: unmatched sources", title_justify="left")
            for col in ("only in", "id", "RA", "Dec", "nearest other"):
                st.add_column(col)
            for row in sources:
                st.add_row(*row)
            console.print(st)
    if fc.headers:
        table = Table(title=f"{fc.name}: header keywords", title_justify="left")
        for col in ("hdu", "keyword", "A", "B"):
            table.add_column(col, overflow="fold")
        for kd in fc.headers[:MAX_HEADER_ROWS]:
            table.add_row(kd.hdu, kd.keyword, _value(kd.a), _value(kd.b))
        if len(fc.headers) > MAX_HEADER_ROWS:
            table.add_row("…", f"{len(fc.headers) - MAX_HEADER_ROWS} more (see --json)", "", "")
        console.print(table)


# ---------------------------------------------------------------------------- pictures


def plots_available() -> bool:
    """Whether ``--html`` reports get pictures (matplotlib is the ``plots`` extra)."""
    return _load_pyplot() is not None


def _load_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when the plots extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


@dataclass
class Picture:
    """A PNG and where its panels are, in image pixels from the top-left corner:
    ``boxes[title] = (x0, y0, width, height)``; ``scale`` screen pixels per pooled pixel,
    ``pool`` data pixels per pooled pixel along each axis."""

    png: bytes
    boxes: dict[str, tuple[int, int, int, int]]
    scale: int
    pool: int
    caption: str


def _hdu_key(extension: str) -> Any:
    name, _, ver = extension.partition(",")
    return 0 if name == "PRIMARY" else ((name, int(ver)) if ver else name)


def _read_plane(path: str, extension: str) -> tuple[np.ndarray, str, str]:
    """A 2-D plane of one extension at full resolution, scaled (the first plane of a
    cube), its note (``[0]`` for cubes) and its unit (BUNIT)."""
    from astropy.io import fits

    # Memory-mapped and unscaled (DQ is int32 with BZERO=2**31): only one plane is read,
    # and scaled here, integers exactly.
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        hdu = hdul[_hdu_key(extension)]
        data = hdu.data
        if data is None or data.ndim == 0:
            raise ValueError(f"{extension} holds no image")
        note = ""
        while data.ndim > 2:
            data = data[0]
            note += "[0]"
        if data.ndim == 1:
            data = data[np.newaxis, :]
        bscale = float(hdu.header.get("BSCALE", 1.0))
        bzero = float(hdu.header.get("BZERO", 0.0))
        if data.dtype.kind in "iu" and bscale == 1 and bzero == int(bzero):
            plane = data.astype(np.int64) + int(bzero)
        else:
            plane = data.astype(np.float64) * bscale + bzero
        unit = str(hdu.header.get("BUNIT", hdul[0].header.get("BUNIT", ""))).strip()
    return plane, note, unit


def _blocks(values: np.ndarray, k: int, fill: Any) -> np.ndarray:
    """``values`` cut into k×k blocks: shape (rows, cols, k*k), padded with ``fill``."""
    h, w = values.shape
    ph, pw = -(-h // k) * k, -(-w // k) * k
    if (ph, pw) != (h, w):
        padded = np.full((ph, pw), fill, dtype=values.dtype)
        padded[:h, :w] = values
        values = padded
    return (values.reshape(ph // k, k, pw // k, k).transpose(0, 2, 1, 3)
            .reshape(ph // k, pw // k, k * k))


def pool_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Block means ignoring NaN (NaN where a block is all NaN)."""
    if k == 1:
        return values.astype(np.float64)
    blocks = _blocks(values.astype(np.float64), k, np.nan)
    with np.errstate(invalid="ignore"):
        count = np.sum(~np.isnan(blocks), axis=-1)
        total = np.nansum(blocks, axis=-1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pool_maxabs(values: np.ndarray, k: int) -> np.ndarray:
    """Per block the value of largest magnitude, sign kept: one changed pixel survives any
    downsampling. A block with a NaN (a NaN-pattern change) stays NaN."""
    if k == 1:
        return values
    blocks = _blocks(values, k, 0.0)
    magnitude = np.abs(blocks)
    has_nan = np.isnan(magnitude).any(axis=-1)
    magnitude[np.isnan(magnitude)] = -1.0
    pick = np.argmax(magnitude, axis=-1)[..., np.newaxis]
    out = np.take_along_axis(blocks, pick, axis=-1)[..., 0]
    out[has_nan] = np.nan
    return out


def pool_max(values: np.ndarray, k: int) -> np.ndarray:
    return values if k == 1 else _blocks(values, k, 0).max(axis=-1)


def _geometry(shape: tuple[int, ...]) -> tuple[int, int]:
    """(pool, scale): data pixels pooled per side, screen pixels per pooled pixel."""
    longest = max(shape)
    pool = max(1, math.ceil(longest / PANEL_PIXELS))
    scale = max(1, min(8, 300 // max(1, math.ceil(longest / pool))))
    return pool, scale


class _Canvas:
    """Panels side by side at exact pixel sizes (one pooled pixel = ``scale`` screen
    pixels, no resampling), each with a colour bar or a legend to its right."""

    TITLE, MARGIN, BAR, BAR_TEXT, GAP = 26, 8, 14, 78, 14

    def __init__(self, plt: Any, height: int, widths: list[int], extra: list[int]) -> None:
        self.plt = plt
        self.dpi = 100
        self.height = height + self.TITLE + 2 * self.MARGIN
        self.widths, self.extra = widths, extra
        self.width = self.MARGIN + sum(w + e + self.GAP for w, e in zip(widths, extra,
                                                                         strict=True))
        self.fig = plt.figure(figsize=(self.width / self.dpi, self.height / self.dpi),
                              dpi=self.dpi)
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self._x = self.MARGIN
        self._panel_height = height

    def _axes(self, x: int, y: int, w: int, h: int) -> Any:
        """Axes at pixel box (x, y from the top-left)."""
        return self.fig.add_axes((x / self.width, 1 - (y + h) / self.height,
                                  w / self.width, h / self.height))

    def panel(self, title: str, width: int, extra: int, bar: bool = False) -> tuple[Any, Any]:
        x, y = self._x, self.TITLE + self.MARGIN
        ax = self._axes(x, y, width, self._panel_height)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
        side = self._axes(x + width + 6, y, self.BAR, self._panel_height) if bar else None
        self.boxes[title] = (x, y, width, self._panel_height)
        self._x += width + extra + self.GAP
        return ax, side

    def png(self) -> bytes:
        buf = io.BytesIO()
        # zlib level 3: smaller than the default for noisy images, and twice as fast
        self.fig.savefig(buf, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 3})
        self.plt.close(self.fig)
        return buf.getvalue()


def _ab_norm(a: np.ndarray, b: np.ndarray) -> Any:
    """The same ZScale limits and asinh stretch for A and B (astropy.visualization)."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    finite = np.concatenate([a[np.isfinite(a)].ravel(), b[np.isfinite(b)].ravel()])
    if finite.size == 0:
        vmin, vmax = 0.0, 1.0
    else:
        vmin, vmax = ZScaleInterval().get_limits(finite)
        if not vmax > vmin:
            vmin, vmax = float(finite.min()), float(finite.max())
            if not vmax > vmin:
                vmin, vmax = vmin - 0.5, vmin + 0.5
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch())


def _diff_norm(diff: np.ndarray) -> tuple[Any, str]:
    """Symmetric limits at the real max|Δ|; a symmetric log scale when most changes are
    far smaller than the largest (so neither hides the other)."""
    from matplotlib.colors import Normalize, SymLogNorm

    magnitude = np.abs(diff[np.isfinite(diff)])
    changed = magnitude[magnitude > 0]
    if changed.size == 0:
        return Normalize(-1.0, 1.0), "linear"
    top = float(changed.max())
    typical = float(np.median(changed))
    if typical >= top / 20:
        return Normalize(-top, top), "linear"
    linthresh = max(typical, top * 1e-4)
    return SymLogNorm(linthresh=linthresh, linscale=1.0, vmin=-top, vmax=top, base=10), \
        "symmetric log"


def _rings(ax: Any, mask: np.ndarray, limit: int = 25) -> None:
    """Circle up to ``limit`` changed pooled pixels so a handful stays findable."""
    rows, cols = np.nonzero(mask)
    if 0 < rows.size <= limit:
        ax.scatter(cols, rows, s=140, facecolors="none", edgecolors="black", linewidths=0.8)


def image_picture(plt: Any, path_a: str, path_b: str, extension: str,
                  image: ImageDiff) -> Picture:
    """A, B and A−B side by side (for DQ: flagged pixels and which flags changed where)."""
    a, note, unit = _read_plane(path_a, extension)
    b, _, _ = _read_plane(path_b, extension)
    pool, scale = _geometry(a.shape)
    if image.is_dq:
        return _dq_picture(plt, a, b, extension, pool, scale, note)
    a, b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        diff = a - b
    diff[nan_a & nan_b] = 0.0  # NaN on both sides is no change
    diff[nan_a ^ nan_b] = np.nan  # a NaN-pattern change: shown in its own colour
    pa, pb, pd = pool_mean(a, pool), pool_mean(b, pool), pool_maxabs(diff, pool)
    height, width = pd.shape[0] * scale, pd.shape[1] * scale
    canvas = _Canvas(plt, height, [width] * 3, [_Canvas.BAR + _Canvas.BAR_TEXT] * 3)
    ab_norm = _ab_norm(pa, pb)
    grey = plt.get_cmap("gray").with_extremes(bad="#e000e0")
    for title, data in (("A", pa), ("B", pb)):
        ax, bar = canvas.panel(title, width, _Canvas.BAR + _Canvas.BAR_TEXT, bar=True)
        shown = ax.imshow(data, origin="lower", cmap=grey, norm=ab_norm,
                          interpolation="nearest", aspect="auto")
        colorbar = canvas.fig.colorbar(shown, cax=bar)
        colorbar.ax.tick_params(labelsize=7)
        if unit:
            colorbar.set_label(unit, fontsize=8)
    norm, kind = _diff_norm(diff)
    ax, bar = canvas.panel("A − B", width, _Canvas.BAR + _Canvas.BAR_TEXT, bar=True)
    shown = ax.imshow(pd, origin="lower", cmap=plt.get_cmap("RdBu_r").with_extremes(
        bad="#00b000"), norm=norm, interpolation="nearest", aspect="auto")
    colorbar = canvas.fig.colorbar(shown, cax=bar)
    colorbar.ax.tick_params(labelsize=7)
    colorbar.set_label(f"A − B [{unit or 'no BUNIT'}]" + (f", {kind}" if kind != "linear"
                                                           else ""), fontsize=8)
    _rings(ax, np.isnan(pd) | (pd != 0))
    caption = (f"{extension}{note}: A and B on a ZScale/asinh stretch; A − B "
               f"{kind}, ±{_num(float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 0)}"
               f" {unit}; green: NaN on one side only")
    if pool > 1:
        caption += f"; {pool}×{pool} pixels per point (A, B: mean; A − B: largest |Δ|)"
    return Picture(canvas.png(), canvas.boxes, scale, pool, caption.strip())


def _dq_picture(plt: Any, a: np.ndarray, b: np.ndarray, extension: str, pool: int,
                scale: int, note: str) -> Picture:
    """Flagged pixels in A and B, and which flags changed where, with a legend."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    ua, ub = a.astype(np.int64).astype(np.uint64), b.astype(np.int64).astype(np.uint64)
    gained, lost = ub & ~ua, ua & ~ub
    categories: list[tuple[str, int, int]] = []  # (label, bit, +1 gained / -1 lost)
    counts = []
    for values, sign, word in ((gained, 1, "gained"), (lost, -1, "lost")):
        for bit in range(64):
            n = int(np.count_nonzero(values & np.uint64(1 << bit)))
            if n:
                categories.append((f"{_BIT_NAMES.get(bit, f'BIT_{bit}')} {word}", bit, sign))
                counts.append(n)
    order = np.argsort(counts)[::-1][:9]  # the nine most common get their own colour
    kept = [categories[i] for i in order]
    kept_counts = [counts[i] for i in order]
    codes = np.zeros(a.shape, dtype=np.int16)
    n_changes = np.zeros(a.shape, dtype=np.int16)
    for index, (_, bit, sign) in enumerate(kept, start=1):
        hit = ((gained if sign > 0 else lost) & np.uint64(1 << bit)) != 0
        codes[hit] = index
        n_changes += hit
    several = len(kept) + 1
    codes[n_changes > 1] = several
    other = (ua != ub) & (codes == 0)  # changes beyond the nine
    codes[other] = several
    pa, pb = pool_max((ua != 0).astype(np.int16), pool), pool_max((ub != 0).astype(np.int16), pool)
    pc = pool_max(codes, pool)
    height, width = pc.shape[0] * scale, pc.shape[1] * scale
    legend_width = 190
    canvas = _Canvas(plt, height, [width] * 3, [0, 0, legend_width])
    flagged = ListedColormap(["white", "#606060"])
    for title, data in (("A: flagged", pa), ("B: flagged", pb)):
        ax, _ = canvas.panel(title, width, 0)
        ax.imshow(data, origin="lower", cmap=flagged, vmin=0, vmax=1, interpolation="nearest",
                  aspect="auto")
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
               "#17becf", "#bcbd22"]
    colours = ["white", *palette[:len(kept)], "black"]
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(len(colours) + 1) - 0.5, len(colours))
    ax, _ = canvas.panel("flags changed (A → B)", width, legend_width)
    ax.imshow(pc, origin="lower", cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    rows, cols = np.nonzero(pc)
    if 0 < rows.size <= 5000:  # a few changed pixels: a 5-pixel square each, same colour
        side = 5 * 72 / canvas.dpi  # points
        ax.scatter(cols, rows, s=side ** 2, marker="s", linewidths=0,
                   c=[colours[code] for code in pc[rows, cols]])
        ax.set_xlim(-0.5, pc.shape[1] - 0.5)
        ax.set_ylim(-0.5, pc.shape[0] - 0.5)
    _rings(ax, pc > 0)
    handles = [Patch(color=colours[i + 1], label=f"{label} ({n})")
               for i, ((label, _, _), n) in enumerate(zip(kept, kept_counts, strict=True))]
    if (codes == several).any():
        handles.append(Patch(color="black",
                             label=f"several / other ({int((codes == several).sum())})"))
    if not handles:
        handles.append(Patch(color="white", label="no flag changed"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
              frameon=False, borderaxespad=0)
    caption = (f"{extension}{note}: pixels with any flag set in A and in B; which flags "
               "changed where")
    if pool > 1:
        caption += f"; {pool}×{pool} pixels per point (any change kept)"
    return Picture(canvas.png(), canvas.boxes, scale, pool, caption)


def _spectrum_of(path: str, name: str) -> Any:
    """The spectrum named ``name`` (``EXTRACT1D``, ``EXTRACT1D,2``, ``EXTRACT1D[3]``)."""
    from astropy.io import fits

    from jwenv.compare import read_spectra

    with fits.open(path, memmap=False) as hdul:
        found = [s for s in read_spectra(hdul) if s.name == name]
    if not found:
        raise ValueError(f"no spectrum {name} in {Path(path).name}")
    return found[0]


def _release(fc: FileComparison, side: str) -> str:
    """``jwst 1.20.2`` from the file's CAL_VER, for the legend."""
    for kd in fc.provenance.versions if fc.provenance else []:
        if kd.keyword in ("CAL_VER", "version.jwst"):
            value = kd.a if side == "A" else kd.b
            return f"{side}: jwst {value}" if value else side
    return side


def spectrum_picture(plt: Any, fc: FileComparison, spectrum: SpectrumDiff) -> Picture:
    """Both spectra over their own wavelengths, and B/A on the common grid below it (where
    |A| is at least 1 % of its median, as the figures), the worst point marked."""
    from jwenv.compare import SPECTRUM_REL_FLOOR, spectra_on_grid

    sa, sb = _spectrum_of(fc.a, spectrum.name), _spectrum_of(fc.b, spectrum.name_b)
    column, unit = spectrum.column, _unit(spectrum.wavelength_unit)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 5.5), dpi=100, sharex=True,
                                      gridspec_kw={"height_ratios": [2.2, 1]})
    for s, side, colour, width in ((sa, "A", "#1f77b4", 1.8), (sb, "B", "#d62728", 0.8)):
        wave, flux = s.points(column)
        top.plot(wave, flux, lw=width, color=colour, label=_release(fc, side))
    if spectrum.overlap:  # grey: wavelengths only one side has
        ends = [r for r in (spectrum.range_a, spectrum.range_b) if r]
        lo, hi = min(r[0] for r in ends), max(r[1] for r in ends)
        for ax in (top, bottom):
            for span in ((lo, spectrum.overlap[0]), (spectrum.overlap[1], hi)):
                if span[1] > span[0]:
                    ax.axvspan(*span, color="#e6e6e6", zorder=0)
    grid, a, b, _ = spectra_on_grid(sa, sb, column)
    ok = np.isfinite(a) & np.isfinite(b)
    level = np.abs(a)
    floor = SPECTRUM_REL_FLOOR * float(np.median(level[ok])) if ok.any() else 0.0
    ok &= (level >= floor) & (level > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, 1 + (b - a) / level, np.nan)
    bottom.axhline(1.0, color="#888888", lw=0.8)
    bottom.plot(grid, ratio, lw=0.9, color="k")
    if spectrum.worst_rel is not None and spectrum.worst_wavelength is not None:
        bottom.plot([spectrum.worst_wavelength], [1 + spectrum.worst_rel], "o", ms=7,
                    mfc="none", mec="#d62728")
    figures = [f"median {_signed_pct(spectrum.median_rel)}"]
    if spectrum.worst_rel is not None:
        figures.append(f"worst {_signed_pct(spectrum.worst_rel)} at "
                       f"{_wavelength(spectrum.worst_wavelength, unit)} (circled)")
    shifts = _spectrum_shifts(spectrum)
    bottom.set_title("B/A − 1: " + ", ".join(figures) + (f"; {shifts}" if shifts else ""),
                     fontsize=7.5, loc="left")
    bottom.margins(y=0.15)
    flux_unit = spectrum.flux_unit
    top.set_ylabel(f"{column} [{flux_unit}]" if flux_unit else column, fontsize=8)
    bottom.set_ylabel("B / A", fontsize=8)
    bottom.set_xlabel(f"WAVELENGTH [{unit}]" if unit else "WAVELENGTH", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    top.legend(fontsize=8, loc="best")
    title = f"{fc.name} {spectrum.name}" + (f" ({spectrum.label})" if spectrum.label else "")
    top.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    caption = (f"{spectrum.name}: spectra A and B, and B/A on the common grid "
               f"({spectrum.n_common} points of {spectrum.grid}, shaded: the overlap "
               f"{_wave_range(spectrum.overlap, spectrum.wavelength_unit)}): "
               f"{spectrum_summary(spectrum)}")
    return Picture(buf.getvalue(), {}, 1, 1, caption)


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.differs{color:#a60}.identical{color:#270}.error{color:#b00}
.note{background:#fff6d5;padding:.5em;border:1px solid #e6cf7a}
figure{margin:.5em 0 1.5em}figcaption{font-size:.85em;color:#444}
figure img{max-width:100%;height:auto;image-rendering:pixelated}
"""


def _html_table(header: Iterable[str], rows: Iterable[Iterable[Any]],
                classes: Iterable[str | None] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for row, cls in zip(rows, classes or _forever(None), strict=False):
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                    + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _forever(value: Any) -> Iterable[Any]:
    while True:
        yield value


class _Pictures:
    """Pictures of one report: embedded in the page and written beside it as PNG files."""

    def __init__(self, plt: Any, out_dir: Path) -> None:
        self.plt = plt
        self.out_dir = out_dir
        self.written: list[Path] = []
        self._names: set[str] = set()

    def _file_name(self, *parts: str) -> str:
        text = re.sub(r"\.(fits\.gz|fits|fit|fts|ecsv|asdf)(?=[^A-Za-z0-9]|$)", "",
                      "_".join(parts))
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "picture"
        name, n = f"{stem}.png", 2
        while name in self._names:
            name, n = f"{stem}_{n}.png", n + 1
        self._names.add(name)
        return name

    def figure(self, picture: Picture | None, *name_parts: str) -> str:
        if picture is None:
            return ""
        name = self._file_name(*name_parts)
        path = self.out_dir / name
        path.write_bytes(picture.png)
        self.written.append(path)
        data = base64.b64encode(picture.png).decode("ascii")
        return (f'<figure><img alt="{html.escape(picture.caption)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(picture.caption)} · "
                f'<a href="{html.escape(name)}">{html.escape(name)}</a></figcaption></figure>')


def write_html(comparison: Comparison, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (self-contained: pictures embedded) and each picture
    as a PNG file beside it; return the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _load_pyplot()
    pictures = _Pictures(plt, out_dir) if plt is not None else None
    parts = [f"<h1>jwenv diff</h1><p><b>A</b>: {html.escape(comparison.a)}<br>"
             f"<b>B</b>: {html.escape(comparison.b)}</p>",
             f"<p><b>{html.escape(_verdict(comparison))}</b></p>"]
    if plt is None:
        parts.append(f'<p class="note">{html.escape(PLOTS_HINT, quote=False)}</p>')

    entries = provenance_entries(comparison)
    if entries:
        total = _fits_with_provenance(comparison)
        rows, classes = [], []
        for e in entries:
            rows.append((e.section.replace("_", " "), e.keyword, e.a, e.b, e.where(total)))
            classes.append("differs" if e.a != e.b else None)
        parts.append("<h2>Provenance</h2>"
                     + _html_table(("", "keyword", "A", "B", "files"), rows, classes))

    levels = level_summaries(comparison)
    if levels:
        rows = [(r.level, r.files, r.identical, r.files - r.identical,
                 r.only_in_a or "", r.only_in_b or "", r.worst) for r in levels]
        parts.append("<h2>Product levels</h2>" + _html_table(
            ("level", "files", "same", "differ", "only in A", "only in B", "worst"), rows))

    rows = [(fc.name, _status(fc), file_summary(fc)) for fc in comparison.files]
    rows += [(n, "only in A", "") for n in comparison.only_in_a]
    rows += [(n, "only in B", "") for n in comparison.only_in_b]
    classes = [_status(fc) for fc in comparison.files] + ["error"] * (
        len(comparison.only_in_a) + len(comparison.only_in_b))
    parts.append("<h2>Files</h2>" + _html_table(("file", "status", "what differs"), rows,
                                                   classes))

    for fc in comparison.files:
        if fc.identical or fc.error or fc.kind in ("asdf", "opaque"):
            continue
        parts.append(f"<h2>{html.escape(fc.name)}</h2>")
        parts.append(_file_html(fc, pictures))
    if comparison.skipped:
        parts.append(f"<p>{len(comparison.skipped)} non-product file(s) not compared: "
                     f"{html.escape(', '.join(comparison.skipped))}</p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>jwenv diff</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _file_html(fc: FileComparison, pictures: _Pictures | None) -> str:
    parts = []
    images = [i for i in fc.images if not i.identical]
    if images:
        rows = []
        for i in images:
            rows.append((i.extension, _shape(i),
                         "–" if i.is_dq else _num(i.max_abs_diff),
                         "–" if i.is_dq else _num(i.mean_abs_diff),
                         "–" if i.is_dq else _num(i.max_rel_diff),
                         f"{i.n_beyond_tolerance} ({_pct(i.fraction_beyond_tolerance)})",
                         _nan_change(i), _flags(i)))
        parts.append("<h3>Images</h3>" + _html_table(
            ("ext", "shape/dtype", "max|Δ|", "mean|Δ|", "max rel", "beyond tol", "NaN +/−",
             "DQ flags gained/lost"), rows))
        if pictures is not None:
            for i in images:
                if i.shape_changed or i.dtype_changed:
                    continue
                parts.append(_safe(lambda i=i: pictures.figure(
                    image_picture(pictures.plt, fc.a, fc.b, i.extension, i),
                    fc.name, i.extension)))
    spectra = spectrum_rows(fc)
    if spectra:
        parts.append("<h3>Spectra by wavelength (B/A − 1 on the common grid)</h3>"
                     + _html_table(SPECTRUM_HEADER, spectra))
    if fc.spectra_error:
        parts.append(f'<p class="note">spectra not compared by wavelength: '
                     f"{html.escape(fc.spectra_error)}</p>")
    if pictures is not None:
        changed = sorted((s for s in fc.spectra if not s.identical), key=_spectrum_score,
                         reverse=True)
        for spectrum in changed[:SPECTRUM_PICTURES]:
            parts.append(_safe(lambda s=spectrum: pictures.figure(
                spectrum_picture(pictures.plt, fc, s), fc.name, s.name)))
        if len(changed) > SPECTRUM_PICTURES:
            parts.append(f"<p>{len(changed) - SPECTRUM_PICTURES} more spectra differ (in the "
                         "table above; not drawn).</p>")
    for t in fc.tables:
        if t.identical:
            continue
        changed = [c for c in t.columns if not c.identical]
        rows = [(c.name, c.dtype_a if c.dtype_a == c.dtype_b else f"{c.dtype_a} → {c.dtype_b}",
                 _num(c.max_abs_diff) + _period(c.period), c.n_different) for c in changed]
        rows += [(n, "only in A", "", "") for n in t.columns_only_in_a]
        rows += [(n, "only in B", "", "") for n in t.columns_only_in_b]
        same = len(t.columns) - len(changed)
        note = f"<p>{same} identical column(s) not shown.</p>" if same else ""
        matching = f"<p>{html.escape(_matching(t))}</p>" if _matching(t) else ""
        parts.append(f"<h3>Table {html.escape(t.name)}: rows {t.rows_a} → {t.rows_b}</h3>"
                     + matching + _html_table(("column", "dtype", "max|Δ|", "n differ"), rows)
                     + note)
        sources = _source_rows(t)
        if sources:
            parts.append("<h4>Unmatched sources</h4>" + _html_table(
                ("only in", "id", "RA", "Dec", "nearest other"), sources))
    if fc.headers:
        rows = [(k.hdu, k.keyword, _value(k.a), _value(k.b)) for k in fc.headers]
        parts.append("<h3>Header keywords</h3>"
                     + _html_table(("hdu", "keyword", "A", "B"), rows))
    return "".join(parts)


def _safe(render: Any) -> str:
    """A picture that fails to draw must not cost the user the tables."""
    try:
        return render()
    except Exception as exc:
        return f'<p class="note">picture unavailable: {html.escape(str(exc))}</p>'


__all__ = ["LEVEL_ORDER", "PLOTS_HINT", "Finding", "KeywordDiff", "LevelSummary", "Picture",
           "ProvenanceEntry", "file_summary", "findings", "image_picture", "level_summaries",
           "plots_available", "pool_max", "pool_maxabs", "pool_mean", "product_level",
           "provenance_entries", "provenance_rows", "render_terminal", "spectrum_picture",
           "spectrum_rows", "spectrum_summary", "worst_findings", "write_html"]
