"""Compare jwst pipeline products (FITS, ECSV catalogs, ASDF) between two runs.

Core only: everything here returns data (dataclasses with ``to_dict()``); ``report.py``
renders it. Depends on numpy and astropy only, and imports nothing else of jwenv; numpy
is imported with the module, astropy only when a file is opened. "A" is the reference
(old) side and "B" the new one: a flag "gained" is set in B but not in A.
"""

from __future__ import annotations

import fnmatch
import math
import mmap
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# Same tolerances as jwst's own regression tests (jwst/regtest/conftest.py, fixture
# ``fitsdiff_default_kwargs``: rtol=1e-5, atol=1e-7), so "identical" here means what it
# means to the pipeline developers: |a - b| <= atol + rtol * |b|.
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-7

# Keywords that change on every run even when nothing else does. Glob patterns are allowed.
DEFAULT_IGNORED: tuple[str, ...] = ("DATE", "FILENAME", "CHECKSUM", "DATASUM", "IRAF-TLM")
# jwst's regtests skip this HDU too: it holds the serialized datamodel tree, whose
# history entries and timestamps differ on every run.
DEFAULT_IGNORED_HDUS: tuple[str, ...] = ("ASDF",)
# Table columns jwst's regression tests skip too (``ignore_fields``): a level-3 product's
# HDRTAB repeats each input's DATE and version keywords.
DEFAULT_IGNORED_FIELDS: tuple[str, ...] = ("DATE", "CAL_VER", "CAL_VCS", "CRDS_VER",
                                           "CRDS_CTX")
# Reported side by side in the provenance section; expected to differ between versions,
# so (like in jwst's regtests) they never make two products "different" on their own.
VERSION_KEYWORDS: tuple[str, ...] = ("CAL_VER", "CAL_VCS", "CRDS_VER", "CRDS_CTX")

DQ_EXTENSIONS = frozenset({"DQ", "PIXELDQ", "GROUPDQ"})
# JWST data-quality bits, from the ``dqflags.pixel`` table of stdatamodels/jwst (documented
# under "Data Quality Flags" in the jwst reference-file docs). Embedded because jwenv never
# imports jwst. Bit 4 was RESERVED_1, bit 7 RESERVED_4 in older releases.
DQ_FLAGS: dict[str, int] = {
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "UNRELIABLE_ERROR": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "UNRELIABLE_RESET": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}
_BIT_NAMES = {value.bit_length() - 1: name for name, value in DQ_FLAGS.items()}

FITS_EXTENSIONS = (".fits", ".fits.gz", ".fit", ".fts")
PRODUCT_EXTENSIONS = (*FITS_EXTENSIONS, ".ecsv", ".asdf")
# 64 Ki pixels: a float64 buffer (512 kB) stays in the CPU cache across the dozen passes
# made over it, and peak memory stays flat however large the file is.
DEFAULT_CHUNK_ELEMENTS = 1 << 16
# Catalog sources match when mutual nearest neighbours on the sky within this distance:
# 3 NIRCam short-wave pixels, 2 MIRI pixels; `--match-radius` to change.
DEFAULT_MATCH_RADIUS_ARCSEC = 0.2
# Where a catalog's sky position is (jwst's source catalogs), checked first.
SKY_POSITION_COLUMNS: tuple[str, ...] = ("sky_centroid",)

# Structure keywords whose changes already show up as shape/dtype/column changes.
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS*", "PCOUNT", "GCOUNT", "EXTEND",
               "TFIELDS", "TFORM*", "TTYPE*", "TDIM*")
_PRODUCT_RE = re.compile(r"(_[A-Za-z0-9]+)?(\.fits\.gz|\.fits|\.fit|\.fts|\.ecsv|\.asdf)$")
_SEPARATORS = "_-./"


# ---------------------------------------------------------------------------- results


def _plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses, numpy scalars, paths and tuples become plain types."""
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class _Record:
    """Mixin: ``to_dict`` (fields plus computed properties) and its inverse ``from_dict``."""

    _nested: ClassVar[dict[str, type[_Record]]] = {}
    _computed: ClassVar[tuple[str, ...]] = ("identical",)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]
        out.update({name: _plain(getattr(self, name)) for name in self._computed})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            value = data[f.name]
            sub = cls._nested.get(f.name)
            if sub is not None and value is not None:
                value = ([sub.from_dict(v) for v in value] if isinstance(value, list)
                         else sub.from_dict(value))
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass
class KeywordDiff(_Record):
    """One header keyword (or ECSV meta key); ``None`` means absent on that side."""

    keyword: str
    a: Any
    b: Any
    hdu: str = "PRIMARY"
    _computed: ClassVar[tuple[str, ...]] = ()


@dataclass
class Provenance(_Record):
    """Versions (always listed) and the reference files / step statuses that differ."""

    versions: list[KeywordDiff] = field(default_factory=list)
    reference_files: list[KeywordDiff] = field(default_factory=list)
    step_status: list[KeywordDiff] = field(default_factory=list)
    _nested: ClassVar[dict[str, type[_Record]]] = {
        "versions": KeywordDiff, "reference_files": KeywordDiff, "step_status": KeywordDiff}

    @property
    def identical(self) -> bool:
        return not self.reference_files and not self.step_status


@dataclass
class FlagChange(_Record):
    """Pixels that gained (set in B only) or lost (set in A only) one DQ bit."""

    name: str
    bit: int
    gained: int = 0
    lost: int = 0
    _computed: ClassVar[tuple[str, ...]] = ()


@dataclass
class ImageDiff(_Record):
    """Figures for one image extension. Statistics use pixels that are finite in both."""

    extension: str
    shape_a: list[int] | None = None
    shape_b: list[int] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    is_dq: bool = False
    n_pixels: int = 0
    n_different: int = 0  # value differs at all, NaN-pattern changes included
    n_beyond_tolerance: int = 0  # |a-b| > atol + rtol*|b|, inf mismatches, any DQ change
    max_abs_diff: float = 0.0
    mean_abs_diff: float = 0.0
    max_rel_diff: float = 0.0  # relative to |b|, over pixels where b != 0
    nan_a: int = 0
    nan_b: int = 0
    became_nan: int = 0
    stopped_nan: int = 0
    dq_flags: list[FlagChange] = field(default_factory=list)
    stopped_early: bool = False
    _nested: ClassVar[dict[str, type[_Record]]] = {"dq_flags": FlagChange}
    _computed: ClassVar[tuple[str, ...]] = ("identical", "fraction_beyond_tolerance")

    @property
    def shape_changed(self) -> bool:
        return self.shape_a != self.shape_b

    @property
    def dtype_changed(self) -> bool:
        return self.dtype_a != self.dtype_b

    @property
    def fraction_beyond_tolerance(self) -> float:
        return self.n_beyond_tolerance / self.n_pixels if self.n_pixels else 0.0

    @property
    def identical(self) -> bool:
        return (not self.shape_changed and not self.dtype_changed
                and self.n_beyond_tolerance == 0 and self.became_nan == 0
                and self.stopped_nan == 0)


@dataclass
class ColumnDiff(_Record):
    """One table column present on both sides (compared row by row)."""

    name: str
    dtype_a: str
    dtype_b: str
    max_abs_diff: float | None = None  # None for non-numeric columns
    n_different: int = 0  # elements beyond tolerance, NaN changes, or unequal (non-numeric)
    period: float | None = None  # angles: differences taken modulo this (360, or 180)
    _computed: ClassVar[tuple[str, ...]] = ("identical",)

    @property
    def identical(self) -> bool:
        return self.n_different == 0 and self.dtype_a == self.dtype_b


@dataclass
class TableDiff(_Record):
    """A BinTable HDU or an ECSV catalog.

    Catalogs with a sky position are matched source by source (``matched_by`` names the
    position column); other tables pair rows by position, and their columns are compared
    only if the row counts match. Unmatched sources are listed as dicts: ``row``, ``id``
    (the catalog's label), ``ra``, ``dec`` (degrees) and ``nearest_arcsec`` (distance to
    the nearest source on the other side).
    """

    name: str
    rows_a: int
    rows_b: int
    columns: list[ColumnDiff] = field(default_factory=list)
    columns_only_in_a: list[str] = field(default_factory=list)
    columns_only_in_b: list[str] = field(default_factory=list)
    stopped_early: bool = False
    matched_by: str = "row"  # "row", or the sky-position column sources were matched on
    match_radius_arcsec: float | None = None
    n_matched: int | None = None
    max_separation_arcsec: float | None = None
    sources_only_in_a: list[dict[str, Any]] = field(default_factory=list)
    sources_only_in_b: list[dict[str, Any]] = field(default_factory=list)
    _nested: ClassVar[dict[str, type[_Record]]] = {"columns": ColumnDiff}

    @property
    def identical(self) -> bool:
        return (self.rows_a == self.rows_b and not self.columns_only_in_a
                and not self.columns_only_in_b and not self.sources_only_in_a
                and not self.sources_only_in_b and all(c.identical for c in self.columns))


@dataclass
class SpectrumDiff(_Record):
    """One spectrum (an x1d/c1d table, or one row of a table with a spectrum per row)
    compared by wavelength, not by row.

    The common grid is the overlap of the two wavelength ranges, sampled at the coarser
    side's own wavelengths there (``grid``: "A" or "B", A when equally fine); the other
    side is interpolated linearly onto it (a point next to a NaN stays NaN). ``column`` is
    FLUX, or SURF_BRIGHT when FLUX has no finite value on a side. Relative differences
    are (B − A)/|A| ("B/A − 1"), over common points where |A| is at least 1 % of its
    median |A|, so an edge where the flux falls to zero does not dominate. Wavelengths are
    in ``wavelength_unit``; ``step`` is the grid's median spacing (one pixel, roughly).

    Two wavelength shifts: ``grid_shift``, the median of B − A between the two grids'
    wavelengths taken in order (``grid_shift_max`` the one of largest magnitude), when both
    have as many finite wavelengths; ``feature_shift``, where B's spectral features are
    relative to A's (B's lines at λ + shift), by cross-correlating the two spectra with
    their continuum removed; None when the overlap holds no features to align (a smooth
    continuum).
    """

    name: str  # "EXTRACT1D", "EXTRACT1D,2", "EXTRACT1D[3]" (row 3 of a row-per-spectrum table)
    name_b: str
    label: str = ""  # what tells the file's spectra apart, e.g. "SLTNAME S200A1, SPORDER 1"
    column: str = "FLUX"
    wavelength_unit: str = ""
    flux_unit: str = ""
    points_a: int = 0  # finite (wavelength, flux) points
    points_b: int = 0
    range_a: list[float] | None = None  # [shortest, longest] wavelength
    range_b: list[float] | None = None
    overlap: list[float] | None = None
    grid: str = "A"
    n_common: int = 0  # common-grid points with a finite value on both sides
    step: float | None = None
    median_rel: float | None = None
    worst_rel: float | None = None  # signed: the B/A − 1 of largest magnitude
    worst_wavelength: float | None = None
    max_abs_diff: float | None = None  # largest |A − B| on the common grid
    max_abs_wavelength: float | None = None
    n_beyond_tolerance: int = 0  # common points with |A − B| > atol + rtol·|B|
    rows_a: int = 0
    rows_b: int = 0
    grid_shift: float | None = None
    grid_shift_max: float | None = None
    n_wavelengths_beyond_tolerance: int | None = None  # grid wavelengths that moved
    feature_shift: float | None = None
    feature_correlation: float | None = None  # normalised, at the shift found
    _computed: ClassVar[tuple[str, ...]] = ("identical",)

    @property
    def identical(self) -> bool:
        return (self.range_a == self.range_b and self.points_a == self.points_b
                and self.n_beyond_tolerance == 0
                and not self.n_wavelengths_beyond_tolerance)


@dataclass
class FileComparison(_Record):
    """One pair of products. ``error`` is set when a file could not be read."""

    name: str  # display name: path of A relative to the compared directory
    a: str
    b: str
    kind: str  # "fits", "ecsv", "asdf" or "opaque" (bytes only)
    product: str = ""  # e.g. "_cal.fits", "_cat.ecsv"
    provenance: Provenance | None = None
    images: list[ImageDiff] = field(default_factory=list)
    tables: list[TableDiff] = field(default_factory=list)
    headers: list[KeywordDiff] = field(default_factory=list)
    hdus_only_in_a: list[str] = field(default_factory=list)
    hdus_only_in_b: list[str] = field(default_factory=list)
    bytes_equal: bool | None = None  # only for opaque comparisons (.asdf)
    error: str | None = None
    stopped_early: bool = False
    # Spectra (x1d, c1d) compared by wavelength, when a spectral table differs. They add
    # figures, not differences: a spectrum that differs is a table that differs.
    spectra: list[SpectrumDiff] = field(default_factory=list)
    spectra_only_in_a: list[str] = field(default_factory=list)
    spectra_only_in_b: list[str] = field(default_factory=list)
    spectra_error: str | None = None  # why the spectra could not be compared
    _nested: ClassVar[dict[str, type[_Record]]] = {
        "provenance": Provenance, "images": ImageDiff, "tables": TableDiff,
        "headers": KeywordDiff, "spectra": SpectrumDiff}

    @property
    def identical(self) -> bool:
        return (self.error is None and self.bytes_equal is not False
                and (self.provenance is None or self.provenance.identical)
                and not self.hdus_only_in_a and not self.hdus_only_in_b and not self.headers
                and all(i.identical for i in self.images)
                and all(t.identical for t in self.tables))


@dataclass
class Comparison(_Record):
    """Result of :func:`compare_paths`: every paired file plus the unpaired ones."""

    a: str
    b: str
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    quick: bool = False
    files: list[FileComparison] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # non-product files, not compared
    error: str | None = None
    stopped_early: bool = False
    _nested: ClassVar[dict[str, type[_Record]]] = {"files": FileComparison}

    @property
    def identical(self) -> bool:
        return (self.error is None and not self.only_in_a and not self.only_in_b
                and all(f.identical for f in self.files))

    def exit_code(self) -> int:
        """Like diff/fitsdiff: 0 identical within tolerance, 1 differences, 2 error."""
        if self.error is not None or any(f.error is not None for f in self.files):
            return 2
        return 0 if self.identical else 1

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["exit_code"] = self.exit_code()
        return out


# ---------------------------------------------------------------------------- entry point


def compare_paths(
    a: Path | str,
    b: Path | str,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    quick: bool = False,
    ignore_keywords: Iterable[str] = DEFAULT_IGNORED,
    ignore_hdus: Iterable[str] = DEFAULT_IGNORED_HDUS,
    ignore_fields: Iterable[str] = DEFAULT_IGNORED_FIELDS,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    match_radius: float = DEFAULT_MATCH_RADIUS_ARCSEC,
) -> Comparison:
    """Compare two product files, or two directories of products.

    Directories are walked recursively; files pair up by identical relative path, then by
    product suffix plus the rest of the name once differing prefixes are stripped.
    ``quick`` stops at the first difference beyond tolerance (figures are then partial).
    Catalog sources are matched on the sky within ``match_radius`` arcseconds.
    """
    a, b = Path(a), Path(b)
    opts = _Options(rtol=rtol, atol=atol, quick=quick, chunk_elements=max(1, int(chunk_elements)),
                    ignore_keywords=tuple(k.upper() for k in ignore_keywords),
                    ignore_hdus=frozenset(h.upper() for h in ignore_hdus),
                    ignore_fields=frozenset(f.upper() for f in ignore_fields),
                    match_radius=float(match_radius))
    result = Comparison(a=str(a), b=str(b), rtol=rtol, atol=atol, quick=quick)
    missing = [str(p) for p in (a, b) if not p.exists()]
    if missing:
        result.error = f"no such file or directory: {', '.join(missing)}"
        return result
    if a.is_dir() != b.is_dir():
        # Like diff: a file against a directory means the same-named file inside it.
        if a.is_dir():
            a = a / b.name
        else:
            b = b / a.name
        if not (a.exists() and b.exists()):
            result.error = f"no such file: {a if not a.exists() else b}"
            return result
    if not a.is_dir():
        label = a.name if a.name == b.name else f"{a.name} ↔ {b.name}"
        result.files.append(compare_files(a, b, label, opts))
        result.stopped_early = result.files[0].stopped_early
        return result

    files_a, skipped_a = _products(a)
    files_b, skipped_b = _products(b)
    result.skipped = sorted(set(skipped_a) | set(skipped_b))
    pairs, result.only_in_a, result.only_in_b = pair_products(files_a, files_b)
    for name_a, name_b in pairs:
        label = name_a if name_a == name_b else f"{name_a} ↔ {name_b}"
        fc = compare_files(a / name_a, b / name_b, label, opts)
        result.files.append(fc)
        if quick and not fc.identical:
            result.stopped_early = True
            break
    return result


def compare_runs(outputs: Sequence[Path], *, failed: int = 0,
                 **options: Any) -> tuple[list[Comparison], int]:
    """Compare the products of every good run with the first one's.

    `outputs` are the good runs' output directories, in the order given; `failed` how
    many runs failed. Returns the comparisons and the exit code: 2 when a run failed or
    fewer than two are good (nothing to compare), else 0 identical / 1 different (or 2
    when a comparison itself failed).
    """
    first, *others = outputs or [Path()]
    comparisons = [compare_paths(first, other, **options) for other in others]
    if failed or len(outputs) < 2:
        return comparisons, 2
    return comparisons, max((c.exit_code() for c in comparisons), default=0)


@dataclass(frozen=True)
class _Options:
    rtol: float
    atol: float
    quick: bool
    chunk_elements: int
    ignore_keywords: tuple[str, ...]
    ignore_hdus: frozenset[str]
    ignore_fields: frozenset[str] = frozenset()
    match_radius: float = DEFAULT_MATCH_RADIUS_ARCSEC

    def ignored(self, keyword: str) -> bool:
        key = keyword.upper()
        return any(fnmatch.fnmatchcase(key, pat) for pat in self.ignore_keywords)


def compare_files(a: Path, b: Path, name: str, opts: _Options) -> FileComparison:
    """Compare one pair; any failure to read becomes ``error`` (exit code 2), never raises."""
    kind = _kind(a)
    match = _PRODUCT_RE.search(a.name)
    fc = FileComparison(name=name, a=str(a), b=str(b), kind=kind,
                        product=match.group(0) if match else a.suffix)
    try:
        if kind == "fits":
            _compare_fits(a, b, fc, opts)
        elif kind == "ecsv":
            _compare_ecsv(a, b, fc, opts)
        else:
            fc.bytes_equal = _bytes_equal_files(a, b)
    except Exception as exc:  # unreadable/corrupt product: report it, keep comparing others
        fc.error = f"{type(exc).__name__}: {exc}"
    return fc


# ---------------------------------------------------------------------------- pairing


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(FITS_EXTENSIONS):
        return "fits"
    if name.endswith(".ecsv"):
        return "ecsv"
    return "asdf" if name.endswith(".asdf") else "opaque"


def _products(root: Path) -> tuple[list[str], list[str]]:
    products, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        (products if path.name.lower().endswith(PRODUCT_EXTENSIONS) else skipped).append(rel)
    return products, skipped


def _product_suffix(name: str) -> str:
    match = _PRODUCT_RE.search(name)
    return match.group(0) if match else ""


def _shared_tail(x: str, y: str) -> int:
    """Length of the common ending of x and y that starts at a name boundary in both."""
    n = 0
    while n < min(len(x), len(y)) and x[-1 - n] == y[-1 - n]:
        n += 1
    while n > 0:
        starts_with_sep = x[-n] in _SEPARATORS
        after_sep = all(len(s) == n or s[-n - 1] in _SEPARATORS for s in (x, y))
        if starts_with_sep or after_sep:
            break
        n -= 1
    return n


def pair_products(names_a: list[str], names_b: list[str]) -> tuple[
        list[tuple[str, str]], list[str], list[str]]:
    """Pair relative paths: exact matches, then same product suffix and same name once
    differing prefixes are stripped (longest shared ending wins). Returns
    (pairs, only_in_a, only_in_b)."""
    set_b = set(names_b)
    pairs = [(n, n) for n in names_a if n in set_b]
    exact = {n for n, _ in pairs}
    rest_a = [n for n in names_a if n not in exact]
    rest_b = [n for n in names_b if n not in exact]
    candidates = []
    for x in rest_a:
        suffix = _product_suffix(x)
        for y in rest_b:
            if _product_suffix(y) != suffix:
                continue
            tail = _shared_tail(x, y)
            # The shared part must hold more than the product suffix and its separator.
            if len(x[len(x) - tail:].lstrip(_SEPARATORS)) > len(suffix.lstrip(_SEPARATORS)):
                candidates.append((-tail, x, y))
    used_a: set[str] = set()
    used_b: set[str] = set()
    for _, x, y in sorted(candidates):
        if x not in used_a and y not in used_b:
            pairs.append((x, y))
            used_a.add(x)
            used_b.add(y)
    only_a = [n for n in rest_a if n not in used_a]
    only_b = [n for n in rest_b if n not in used_b]
    return sorted(pairs), only_a, only_b


def _bytes_equal_files(a: Path, b: Path, block: int = 1 << 20) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            ba, bb = fa.read(block), fb.read(block)
            if ba != bb:
                return False
            if not ba:
                return True


# ---------------------------------------------------------------------------- FITS


def _hdu_keys(hdul: Any) -> dict[str, int]:
    """Map display names ("PRIMARY", "SCI", "SCI,2") to HDU indices."""
    keys: dict[str, int] = {}
    for index, hdu in enumerate(hdul):
        if index == 0:
            keys["PRIMARY"] = 0
            continue
        name = (hdu.name or f"HDU{index}").upper()
        ver = hdu.header.get("EXTVER", 1)
        key = name if ver == 1 else f"{name},{ver}"
        while key in keys:  # duplicate EXTNAME/EXTVER: keep both, in file order
            ver = int(ver) + 1
            key = f"{name},{ver}"
        keys[key] = index
    return keys


def _compare_fits(a: Path, b: Path, fc: FileComparison, opts: _Options) -> None:
    from astropy.io import fits

    # do_not_scale_image_data keeps integer images (DQ is uint32 stored with BZERO=2**31)
    # memory-mapped; astropy would otherwise make a full scaled copy. We scale per chunk.
    open_kw = {"memmap": True, "do_not_scale_image_data": True}
    with fits.open(a, **open_kw) as ha, fits.open(b, **open_kw) as hb:
        keys_a, keys_b = _hdu_keys(ha), _hdu_keys(hb)
        fc.provenance = _provenance(ha[0].header, hb[0].header, opts)
        if opts.quick and not fc.provenance.identical:
            fc.stopped_early = True
            return
        fc.hdus_only_in_a = [k for k in keys_a if k not in keys_b and _hdu_wanted(k, opts)]
        fc.hdus_only_in_b = [k for k in keys_b if k not in keys_a and _hdu_wanted(k, opts)]
        common = [k for k in keys_a if k in keys_b and _hdu_wanted(k, opts)]
        for key in common:  # headers first: cheap, and quick mode may stop here
            hda, hdb = ha[keys_a[key]], hb[keys_b[key]]
            fc.headers.extend(_header_diffs(key, hda.header, hdb.header, opts))
        if opts.quick and (fc.headers or fc.hdus_only_in_a or fc.hdus_only_in_b):
            fc.stopped_early = True
            return
        for key in common:
            hda, hdb = ha[keys_a[key]], hb[keys_b[key]]
            if _is_table(hda) or _is_table(hdb):
                if _is_table(hda) and _is_table(hdb):
                    result = _compare_table_hdus(key, hda, hdb, opts)
                    fc.tables.append(result)
                else:  # an image became a table or vice versa: a structural change
                    fc.images.append(ImageDiff(extension=key, dtype_a=_hdu_type(hda),
                                               dtype_b=_hdu_type(hdb)))
                    result = fc.images[-1]
            else:
                result = _compare_image_hdus(key, hda, hdb, opts)
                if result is None:
                    continue
                fc.images.append(result)
            if opts.quick and not result.identical:
                fc.stopped_early = True
                return
        if fc.hdus_only_in_a or fc.hdus_only_in_b or not all(t.identical for t in fc.tables):
            _compare_spectra(ha, hb, fc, opts)


def _hdu_wanted(key: str, opts: _Options) -> bool:
    return key.split(",")[0] not in opts.ignore_hdus


def _is_table(hdu: Any) -> bool:
    return hdu.header.get("XTENSION", "").strip() in ("BINTABLE", "TABLE")


def _hdu_type(hdu: Any) -> str:
    return "table" if _is_table(hdu) else "image"


def _provenance(ha: Any, hb: Any, opts: _Options) -> Provenance:
    prov = Provenance()
    for key in VERSION_KEYWORDS:
        if key in ha or key in hb:
            prov.versions.append(KeywordDiff(key, _json_value(ha.get(key)),
                                             _json_value(hb.get(key))))
    names = dict.fromkeys([*ha.keys(), *hb.keys()])
    for key in names:
        if not key.startswith(("R_", "S_")) or opts.ignored(key):
            continue
        va, vb = _json_value(ha.get(key)), _json_value(hb.get(key))
        if va != vb:
            target = prov.reference_files if key.startswith("R_") else prov.step_status
            target.append(KeywordDiff(key, va, vb))
    return prov


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)  # astropy's Undefined, complex values, ...


def _values_equal(x: Any, y: Any, opts: _Options) -> bool:
    numbers = (int, float)
    if (isinstance(x, numbers) and isinstance(y, numbers)
            and not isinstance(x, bool) and not isinstance(y, bool)):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return math.isclose(x, y, rel_tol=opts.rtol, abs_tol=opts.atol)
    return x == y


def _header_diffs(hdu: str, ha: Any, hb: Any, opts: _Options) -> list[KeywordDiff]:
    def values(header: Any) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for card in header.cards:
            key = card.keyword
            if (opts.ignored(key) or any(fnmatch.fnmatchcase(key, p) for p in _STRUCTURAL)
                    or (hdu == "PRIMARY" and (key in VERSION_KEYWORDS
                                              or key.startswith(("R_", "S_"))))):
                continue
            out.setdefault(key, []).append(_json_value(card.value))
        return out

    def show(v: list[Any] | None) -> Any:  # repeated keywords (HISTORY...) stay lists
        return v if v is None or len(v) > 1 else v[0]

    va, vb = values(ha), values(hb)
    diffs = []
    for key in dict.fromkeys([*va, *vb]):
        xa, xb = va.get(key), vb.get(key)
        if (xa is not None and xb is not None and len(xa) == len(xb)
                and all(_values_equal(x, y, opts) for x, y in zip(xa, xb, strict=True))):
            continue
        diffs.append(KeywordDiff(key, show(xa), show(xb), hdu=hdu))
    return diffs


# ---------------------------------------------------------------------------- images


def _scaling(hdu: Any) -> tuple[float, float]:
    return float(hdu.header.get("BSCALE", 1.0)), float(hdu.header.get("BZERO", 0.0))


def _physical_dtype(raw: np.dtype, scale: tuple[float, float]) -> str:
    """The dtype a user sees (astropy's scaled view), e.g. uint32 for int32+BZERO=2**31."""
    bscale, bzero = scale
    if raw.kind == "i" and bscale == 1 and bzero == 2 ** (raw.itemsize * 8 - 1):
        return f"uint{raw.itemsize * 8}"
    if bscale != 1 or bzero != 0:
        return "float64" if raw.itemsize > 2 else "float32"
    return raw.newbyteorder("=").name


def _compare_image_hdus(key: str, hda: Any, hdb: Any, opts: _Options) -> ImageDiff | None:
    da, db = hda.data, hdb.data
    if da is None and db is None:
        return None
    sa, sb = _scaling(hda), _scaling(hdb)
    diff = ImageDiff(
        extension=key,
        shape_a=None if da is None else [int(n) for n in da.shape],
        shape_b=None if db is None else [int(n) for n in db.shape],
        dtype_a=None if da is None else _physical_dtype(da.dtype, sa),
        dtype_b=None if db is None else _physical_dtype(db.dtype, sb),
    )
    if da is None or db is None or da.shape != db.shape:
        return diff
    diff.is_dq = key.split(",")[0] in DQ_EXTENSIONS and da.dtype.kind in "iu"
    compare_arrays(da, db, diff, rtol=opts.rtol, atol=opts.atol, quick=opts.quick,
                   chunk_elements=opts.chunk_elements, scale_a=sa, scale_b=sb)
    return diff


def _flat_chunks(arr: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Flat views of at most ``size`` elements, in memory order (no copies for memmaps)."""
    if arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        for start in range(0, flat.size, size):
            yield flat[start:start + size]
    else:  # not seen for FITS memmaps; fall back to slices of the first axis
        rows = max(1, size // max(1, arr[0].size)) if arr.ndim > 1 else size
        for start in range(0, arr.shape[0], rows):
            yield np.ascontiguousarray(arr[start:start + rows]).reshape(-1)


class _PageReleaser:
    """Drop already-compared pages of a memory-mapped array from our resident set.

    Reading a memmap faults its pages into RSS; without this a multi-GB comparison would
    look (and be accounted) as multi-GB peak memory. Data is only read, so discarding
    pages is harmless: they are re-read from the file if touched again.
    """

    def __init__(self, arr: np.ndarray) -> None:
        self._mm: mmap.mmap | None = None
        obj: Any = arr
        while obj is not None and not isinstance(obj, mmap.mmap):
            obj = getattr(obj, "base", None)
        if obj is None or not hasattr(obj, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        try:
            start = np.frombuffer(obj, dtype=np.uint8, count=1)
            self._base = start.__array_interface__["data"][0]
            del start  # release the buffer export, or astropy can't close the mmap
            self._mm = obj
        except (TypeError, ValueError, BufferError):
            self._mm = None

    def release(self, chunk: np.ndarray) -> None:
        if self._mm is None or chunk.nbytes == 0:
            return
        offset = chunk.__array_interface__["data"][0] - self._base
        first = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages only
        last = (offset + chunk.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if first < last <= len(self._mm):
            try:
                self._mm.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                self._mm = None


def _to_physical(raw: np.ndarray, scale: tuple[float, float], as_int: bool,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Scaled values as int64 (exact, for DQ bits) or float64; into ``out`` if given."""
    bscale, bzero = scale
    if as_int:  # exact integers: DQ bit arithmetic must not go through float
        return raw.astype(np.int64) + int(bzero)
    if out is None:
        out = raw.astype(np.float64)
    else:
        np.copyto(out, raw, casting="unsafe")  # byte swap and widen in one pass
    if bscale != 1:
        out *= bscale
    if bzero != 0:
        out += bzero
    return out


def _bit_counts(values: np.ndarray) -> np.ndarray:
    """How many elements have each of the 64 bits set."""
    if values.size == 0:
        return np.zeros(64, dtype=np.int64)
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)


class _Scratch:
    """Buffers reused from chunk to chunk: a fresh multi-MB temporary per chunk costs a
    page fault per 4 kB, more than the arithmetic on it."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, str], np.ndarray] = {}

    def get(self, slot: str, n: int, dtype: Any = np.float64) -> np.ndarray:
        key = (slot, np.dtype(dtype).str)
        buf = self._buffers.get(key)
        if buf is None or buf.size < n:
            buf = self._buffers[key] = np.empty(n, dtype=dtype)
        return buf[:n]


def _count_nan(raw: np.ndarray, scratch: _Scratch) -> int:
    return int(np.count_nonzero(np.isnan(raw, out=scratch.get("nan", raw.size, bool))))


def compare_arrays(
    a: np.ndarray,
    b: np.ndarray,
    diff: ImageDiff,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    quick: bool = False,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    scale_a: tuple[float, float] = (1.0, 0.0),
    scale_b: tuple[float, float] = (1.0, 0.0),
) -> ImageDiff:
    """Fill ``diff`` with figures for two same-shape arrays, chunk by chunk.

    Arrays may be raw (big-endian, unscaled) FITS memmaps; ``scale_*`` are (BSCALE, BZERO).
    Identical chunks are detected on raw bytes and cost one comparison and a NaN count;
    a chunk where only some pixels differ converts just those to float64 (or int64 for
    DQ); a chunk that differs everywhere is worked on in cache-sized reusable buffers.
    """
    floating = a.dtype.kind == "f" or b.dtype.kind == "f" or any(
        s[0] != 1 or s[1] != int(s[1]) for s in (scale_a, scale_b))
    as_int = not floating
    dq_bits = diff.is_dq and as_int
    same_raw = a.dtype == b.dtype and scale_a == scale_b
    raw_view = np.dtype(f"u{a.dtype.itemsize}") if a.dtype.itemsize in (1, 2, 4, 8) else None
    releasers = (_PageReleaser(a), _PageReleaser(b))
    scratch = _Scratch()
    sum_abs = 0.0
    bits_gained = np.zeros(64, dtype=np.int64)
    bits_lost = np.zeros(64, dtype=np.int64)
    diff.n_pixels = int(a.size)

    for ca, cb in zip(_flat_chunks(a, chunk_elements), _flat_chunks(b, chunk_elements),
                      strict=True):
        size = ca.size
        if same_raw and raw_view is not None:
            # Bitwise comparison on the raw bytes: endianness and scaling don't matter.
            neq = np.not_equal(ca.view(raw_view), cb.view(raw_view),
                               out=scratch.get("neq", size, bool))
            n_neq = int(np.count_nonzero(neq))
            idx = None if n_neq in (0, size) else np.flatnonzero(neq)
        else:  # different dtypes or scaling: compare physical values
            pa, pb = _to_physical(ca, scale_a, as_int), _to_physical(cb, scale_b, as_int)
            neq = pa != pb
            if floating:
                neq &= ~(np.isnan(pa) & np.isnan(pb))
            n_neq = int(np.count_nonzero(neq))
            idx = None if n_neq in (0, size) else np.flatnonzero(neq)
            del pa, pb, neq
        nan_chunk = _count_nan(ca, scratch) if floating and n_neq < size else 0
        if n_neq == 0:
            diff.nan_a += nan_chunk
            diff.nan_b += nan_chunk if same_raw else _count_nan(cb, scratch)
        else:
            dense = idx is None  # e.g. a flat-field change: every pixel differs
            if dense and not as_int:
                va = _to_physical(ca, scale_a, False, out=scratch.get("a", size))
                vb = _to_physical(cb, scale_b, False, out=scratch.get("b", size))
            else:
                va = _to_physical(ca if dense else ca[idx], scale_a, as_int)
                vb = _to_physical(cb if dense else cb[idx], scale_b, as_int)
            if dq_bits:
                ua, ub = va.astype(np.uint64), vb.astype(np.uint64)
                bits_gained += _bit_counts(ub & ~ua)
                bits_lost += _bit_counts(ua & ~ub)
                diff.n_different += n_neq
                diff.n_beyond_tolerance += n_neq
            else:
                part, nan_a, nan_b = _accumulate(
                    diff, va.astype(np.float64, copy=False), vb.astype(np.float64, copy=False),
                    rtol, atol, scratch=scratch)
                sum_abs += part
                # NaNs among the differing pixels are counted there; the rest are shared.
                diff.nan_a += nan_a if dense else nan_chunk
                diff.nan_b += nan_b if dense else nan_chunk - nan_a + nan_b
        for releaser, chunk in zip(releasers, (ca, cb), strict=True):
            releaser.release(chunk)
        if quick and (diff.n_beyond_tolerance or diff.became_nan or diff.stopped_nan):
            diff.stopped_early = True
            break

    n_valid = diff.n_pixels - diff.nan_a - diff.became_nan  # finite-or-inf in both
    diff.mean_abs_diff = sum_abs / n_valid if n_valid > 0 else 0.0
    if diff.is_dq:
        diff.dq_flags = [
            FlagChange(name=_BIT_NAMES.get(bit, f"BIT_{bit}"), bit=bit,
                       gained=int(bits_gained[bit]), lost=int(bits_lost[bit]))
            for bit in range(64) if bits_gained[bit] or bits_lost[bit]]
    return diff


def _accumulate(diff: ImageDiff, va: np.ndarray, vb: np.ndarray, rtol: float, atol: float,
                *, period: float | None = None,
                scratch: _Scratch | None = None) -> tuple[float, int, int]:
    """Add the figures of pixels whose values differ.

    ``va`` and ``vb`` are private float64 copies and are overwritten. With ``period``
    (angles), |a - b| is taken modulo it: 359.9 and -0.1 degrees differ by 0.2.
    Returns (summed |a-b|, NaNs in va, NaNs in vb).
    """
    if va.size == 0:
        return 0.0, 0, 0
    scratch = scratch or _Scratch()
    d = np.subtract(va, vb, out=scratch.get("d", va.size))
    np.abs(d, out=d)
    top = float(d.max())  # NaN if any NaN (NaN or inf-inf), inf if one side is inf
    nan_a = nan_b = 0
    if not math.isfinite(top):  # rare: NaN-pattern changes or infinities
        isnan_a, isnan_b = np.isnan(va), np.isnan(vb)
        nan_a, nan_b = int(np.count_nonzero(isnan_a)), int(np.count_nonzero(isnan_b))
        became = int(np.count_nonzero(~isnan_a & isnan_b))
        stopped = int(np.count_nonzero(isnan_a & ~isnan_b))
        diff.became_nan += became
        diff.stopped_nan += stopped
        both = ~isnan_a & ~isnan_b
        x, y = va[both], vb[both]
        finite = np.isfinite(x) & np.isfinite(y)
        inf_mismatch = int(np.count_nonzero(~finite & (x != y)))
        diff.n_different += inf_mismatch + became + stopped
        diff.n_beyond_tolerance += inf_mismatch
        vb = y[finite]
        d = np.abs(x[finite] - vb)
        if d.size == 0:
            return 0.0, nan_a, nan_b
    if period:
        np.fmod(d, period, out=d)
        np.minimum(d, period - d, out=d)
    top = float(d.max())
    diff.max_abs_diff = max(diff.max_abs_diff, top)
    # d >= +0.0 (abs clears the sign bit), so a zero value is all-zero bits.
    diff.n_different += int(np.count_nonzero(d.view(np.uint64)))
    ab = np.abs(vb, out=vb)
    rel = scratch.get("rel", d.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(d, ab, out=rel)  # inf where b == 0 < d, NaN where both are 0
    worst = float(np.fmax.reduce(rel))  # ignores those NaNs
    if worst == math.inf:  # relative to |b| over pixels where b != 0 only
        rel.fill(0.0)
        np.divide(d, ab, out=rel, where=ab > 0)
        worst = float(rel.max())
    if worst == worst:  # not NaN: some b != 0
        diff.max_rel_diff = max(diff.max_rel_diff, worst)
    ab *= rtol
    ab += atol  # now the per-pixel tolerance
    beyond = np.greater(d, ab, out=scratch.get("beyond", d.size, bool))
    diff.n_beyond_tolerance += int(np.count_nonzero(beyond))
    return float(d.sum()), nan_a, nan_b


# ---------------------------------------------------------------------------- tables


def _compare_table_hdus(key: str, hda: Any, hdb: Any, opts: _Options) -> TableDiff:
    def columns(hdu: Any) -> dict[str, np.ndarray]:
        data = hdu.data
        if data is None:
            return {}
        return {name: np.asarray(data[name]) for name in data.columns.names}

    def periods(hdu: Any) -> dict[str, float]:
        if hdu.data is None:
            return {}
        out = {}
        for col in hdu.data.columns:
            period = angle_period(col.name, col.unit)
            if period:
                out[col.name] = period
        return out

    rows_a = 0 if hda.data is None else len(hda.data)
    rows_b = 0 if hdb.data is None else len(hdb.data)
    return compare_columns(key, columns(hda), columns(hdb), rows_a, rows_b, opts,
                           periods={**periods(hdb), **periods(hda)})


def _compare_ecsv(a: Path, b: Path, fc: FileComparison, opts: _Options) -> None:
    from astropy.table import Table

    ta = Table.read(a, format="ascii.ecsv")
    tb = Table.read(b, format="ascii.ecsv")
    meta_a, meta_b = _flatten(ta.meta), _flatten(tb.meta)
    fc.provenance = Provenance()
    for key in dict.fromkeys([*meta_a, *meta_b]):
        if opts.ignored(key):
            continue
        va, vb = meta_a.get(key), meta_b.get(key)
        if key.lower().startswith("version."):  # e.g. version.jwst: informational
            fc.provenance.versions.append(KeywordDiff(key, va, vb, hdu="META"))
        elif not (va is not None and vb is not None and _values_equal(va, vb, opts)):
            fc.headers.append(KeywordDiff(key, va, vb, hdu="META"))
    if opts.quick and fc.headers:
        fc.stopped_early = True
        return
    fc.tables.append(compare_catalogs(a.name, ta, tb, opts))


def _flatten(meta: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = _json_value(value) if not isinstance(value, list) else str(value)
    return out


_ANGLE_UNITS = frozenset({"deg", "degree", "degrees", "rad", "radian", "radians"})
_ANGLE_NAME = re.compile(r"(^|_)(angle|pa|theta|posang|position_angle|roll)(_|$)", re.I)


def angle_period(name: str, unit: Any = None, description: str | None = None) -> float | None:
    """The period a column's values wrap with, in its own unit, or None if not an angle.

    An ellipse's orientation (``orientation``, ``sky_orientation``: the major axis) is
    the same after 180°; other angles (unit deg or rad, or named like one) after 360°.
    So one release writing −180…180 and another 0…360 makes no difference.
    """
    unit_name = str(unit).strip().lower() if unit is not None else ""
    orientation = "orientation" in name.lower()
    if not (orientation or unit_name in _ANGLE_UNITS or _ANGLE_NAME.search(name)):
        return None
    half = orientation or "major axis" in (description or "").lower()
    full = math.pi * 2 if unit_name.startswith("rad") else 360.0
    return full / 2 if half else full


def _table_columns(table: Any) -> dict[str, np.ndarray]:
    """Plain arrays per column; mixins (SkyCoord, Quantity, Time) become numbers."""
    out: dict[str, np.ndarray] = {}
    for name in table.colnames:
        col = table[name]
        if _is_sky(col):  # SkyCoord: compare in degrees
            out[f"{name}.ra"] = np.asarray(col.ra.deg, dtype=np.float64)
            out[f"{name}.dec"] = np.asarray(col.dec.deg, dtype=np.float64)
            continue
        if hasattr(col, "mjd") and hasattr(col, "scale"):  # Time
            out[name] = np.asarray(col.mjd, dtype=np.float64)
            continue
        value = getattr(col, "value", col)  # Quantity -> ndarray
        data = np.ma.getdata(value)
        mask = np.ma.getmaskarray(value) if np.ma.isMaskedArray(value) else None
        arr = np.asarray(data)
        if mask is not None and mask.any() and arr.dtype.kind == "f":
            arr = np.where(mask, np.nan, arr)
        out[name] = arr
    return out


def _dtype_label(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind in "US":  # "U10" reads better than numpy's "str320"
        label = arr.dtype.str.lstrip("<>|=")
    else:
        label = "object" if kind == "O" else arr.dtype.newbyteorder("=").name
    return label + (str(list(arr.shape[1:])) if arr.ndim > 1 else "")


def _is_sky(col: Any) -> bool:
    return hasattr(col, "ra") and hasattr(col, "dec") and hasattr(col, "separation")


def _sky_column(ta: Any, tb: Any) -> str | None:
    """The sky-position column both catalogs have: sky_centroid, else the first SkyCoord."""
    common = [n for n in ta.colnames if n in tb.colnames and _is_sky(ta[n]) and _is_sky(tb[n])]
    preferred = [n for n in SKY_POSITION_COLUMNS if n in common]
    return (preferred or common or [None])[0]


def _catalog_periods(table: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in table.colnames:
        col = table[name]
        if _is_sky(col):
            out[f"{name}.ra"] = 360.0
            continue
        period = angle_period(name, getattr(col, "unit", None),
                              getattr(getattr(col, "info", None), "description", None))
        if period:
            out[name] = period
    return out


def _source_id(table: Any, row: int) -> Any:
    for name in ("label", "id", "source_id", "ID"):
        if name in table.colnames:
            return _json_value(np.asarray(table[name])[row].item())
    return None


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)


def _nearest_grid(src: np.ndarray, cat: np.ndarray, window_arcsec: float,
                  block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbour within a window, in numpy: unit vectors hashed into cubes as big
    as the window, each source looking in its own and the 26 neighbouring cubes."""
    chord = 2 * math.sin(math.radians(window_arcsec / 3600) / 2)
    span = math.floor(1 / chord) + 2
    width = 2 * span + 1  # cube indices run over -span..span on each axis

    def keys(vectors: np.ndarray) -> np.ndarray:
        k = np.floor(vectors / chord).astype(np.int64) + span
        return (k[:, 0] * width + k[:, 1]) * width + k[:, 2]

    order = np.argsort(keys(cat), kind="stable")
    sorted_keys = keys(cat)[order]
    best = np.full(len(src), -1, dtype=np.int64)
    best_d2 = np.full(len(src), np.inf)
    offsets = [(dx * width + dy) * width + dz
               for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
    for start in range(0, len(src), block):
        part = src[start:start + block]
        own = keys(part)
        for off in offsets:
            lo = np.searchsorted(sorted_keys, own + off, "left")
            hi = np.searchsorted(sorted_keys, own + off, "right")
            counts = hi - lo
            if not counts.any():
                continue
            rows = np.repeat(np.arange(len(part)), counts)
            first = np.repeat(lo - np.cumsum(counts) + counts, counts)
            cand = order[first + np.arange(counts.sum())]
            d2 = ((part[rows] - cat[cand]) ** 2).sum(axis=1)
            # the best candidate per source: sort by (source, distance), keep the first
            pick = np.lexsort((d2, rows))
            rows, cand, d2 = rows[pick], cand[pick], d2[pick]
            head = np.ones(rows.size, dtype=bool)
            head[1:] = rows[1:] != rows[:-1]
            rows, cand, d2 = rows[head], cand[head], d2[head]
            better = d2 < best_d2[start + rows]
            best[start + rows[better]] = cand[better]
            best_d2[start + rows[better]] = d2[better]
    sep = np.degrees(2 * np.arcsin(np.minimum(np.sqrt(best_d2) / 2, 1.0))) * 3600
    far = (best < 0) | (sep > window_arcsec)
    best[far] = -1
    sep[far] = np.nan
    return best, sep


def _nearest(ra_a: np.ndarray, dec_a: np.ndarray, ra_b: np.ndarray, dec_b: np.ndarray,
             window_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """For each source of A, the nearest source of B within the window: (index or -1,
    separation in arcsec or NaN). astropy's ``match_to_catalog_sky`` when scipy (its
    KD-tree) is installed, else the same answer from a numpy grid."""
    try:
        import scipy.spatial  # noqa: F401
    except ImportError:
        return _nearest_grid(_unit_vectors(ra_a, dec_a), _unit_vectors(ra_b, dec_b),
                             window_arcsec)
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    idx, sep, _ = SkyCoord(ra_a * u.deg, dec_a * u.deg).match_to_catalog_sky(
        SkyCoord(ra_b * u.deg, dec_b * u.deg))
    idx, sep = np.asarray(idx, dtype=np.int64), np.asarray(sep.arcsec, dtype=np.float64)
    far = sep > window_arcsec
    idx[far] = -1
    sep[far] = np.nan
    return idx, sep


def match_sources(sky_a: Any, sky_b: Any, radius_arcsec: float) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair sources that are each other's nearest neighbour on the sky within the radius
    (arcsec). ``sky_a``, ``sky_b`` are SkyCoord arrays (B is taken into A's frame).

    Returns (rows of A, rows of B, separations in arcsec) of the pairs in A's order, and
    for every source of A and of B the distance to its nearest neighbour on the other
    side when that is within ``max(10 × radius, 2″)``, else NaN.
    """
    if sky_b.frame.name != sky_a.frame.name:
        sky_b = sky_b.transform_to(sky_a.frame)
    ra_a, dec_a = np.atleast_1d(sky_a.spherical.lon.deg), np.atleast_1d(sky_a.spherical.lat.deg)
    ra_b, dec_b = np.atleast_1d(sky_b.spherical.lon.deg), np.atleast_1d(sky_b.spherical.lat.deg)
    nearest_a, nearest_b = np.full(ra_a.size, np.nan), np.full(ra_b.size, np.nan)
    empty = np.zeros(0, dtype=np.int64)
    ok_a = np.flatnonzero(np.isfinite(ra_a) & np.isfinite(dec_a))
    ok_b = np.flatnonzero(np.isfinite(ra_b) & np.isfinite(dec_b))
    if ok_a.size == 0 or ok_b.size == 0:
        return empty, empty, np.zeros(0), nearest_a, nearest_b
    window = max(10 * radius_arcsec, 2.0)
    to_b, sep_ab = _nearest(ra_a[ok_a], dec_a[ok_a], ra_b[ok_b], dec_b[ok_b], window)
    to_a, sep_ba = _nearest(ra_b[ok_b], dec_b[ok_b], ra_a[ok_a], dec_a[ok_a], window)
    nearest_a[ok_a], nearest_b[ok_b] = sep_ab, sep_ba
    mutual = to_b >= 0
    mutual[mutual] = to_a[to_b[mutual]] == np.flatnonzero(mutual)
    mutual &= sep_ab <= radius_arcsec
    return ok_a[mutual], ok_b[to_b[mutual]], sep_ab[mutual], nearest_a, nearest_b


def compare_catalogs(name: str, ta: Any, tb: Any, opts: _Options) -> TableDiff:
    """Two source catalogs (astropy Tables): sources matched on the sky where both have a
    sky position (else rows by position), unmatched sources listed, then the matched
    sources' columns compared, angles modulo their period."""
    cols_a, cols_b = _table_columns(ta), _table_columns(tb)
    periods = {**_catalog_periods(tb), **_catalog_periods(ta)}
    # Sky positions: atol only (1e-7 deg = 0.36 mas); rtol on degrees would let a source
    # move 1.9 arcsec at RA 53 degrees and still count as identical.
    absolute = frozenset(n for t in (ta, tb) for c in t.colnames if _is_sky(t[c])
                         for n in (f"{c}.ra", f"{c}.dec"))
    sky = _sky_column(ta, tb)
    if sky is None:
        return compare_columns(name, cols_a, cols_b, len(ta), len(tb), opts, periods=periods,
                               absolute=absolute)
    rows_a, rows_b, sep, near_a, near_b = match_sources(ta[sky], tb[sky], opts.match_radius)
    result = compare_columns(name, cols_a, cols_b, len(ta), len(tb), opts, periods=periods,
                             absolute=absolute, pairs=(rows_a, rows_b))
    result.matched_by = sky
    result.match_radius_arcsec = opts.match_radius
    result.n_matched = int(rows_a.size)
    result.max_separation_arcsec = float(sep.max()) if sep.size else None

    def unmatched(table: Any, matched: np.ndarray, nearest: np.ndarray) -> list[dict[str, Any]]:
        coords = table[sky]
        ra, dec = np.atleast_1d(coords.spherical.lon.deg), np.atleast_1d(coords.spherical.lat.deg)
        return [{"row": int(i), "id": _source_id(table, int(i)),
                 "ra": _json_value(float(ra[i])), "dec": _json_value(float(dec[i])),
                 "nearest_arcsec": _json_value(float(nearest[i])) if nearest[i] == nearest[i]
                 else None}
                for i in sorted(set(range(len(table))) - set(matched.tolist()))]

    result.sources_only_in_a = unmatched(ta, rows_a, near_a)
    result.sources_only_in_b = unmatched(tb, rows_b, near_b)
    return result


def compare_columns(name: str, cols_a: dict[str, np.ndarray], cols_b: dict[str, np.ndarray],
                    rows_a: int, rows_b: int, opts: _Options, *,
                    periods: dict[str, float] | None = None,
                    absolute: frozenset[str] = frozenset(),
                    pairs: tuple[np.ndarray, np.ndarray] | None = None) -> TableDiff:
    """Per-column figures. Rows are paired by ``pairs`` (rows of A, rows of B), or by
    position, and then only when the row counts match. Columns in ``periods`` are
    angles, compared modulo their period; those in ``absolute`` with atol only."""
    result = TableDiff(name=name, rows_a=rows_a, rows_b=rows_b,
                       columns_only_in_a=[c for c in cols_a if c not in cols_b],
                       columns_only_in_b=[c for c in cols_b if c not in cols_a])
    if pairs is None and rows_a != rows_b:
        return result
    n_rows = rows_a if pairs is None else len(pairs[0])
    periods = periods or {}
    for col in (c for c in cols_a if c in cols_b and c.upper() not in opts.ignore_fields):
        xa, xb = cols_a[col], cols_b[col]
        if pairs is not None:
            xa, xb = xa[pairs[0]], xb[pairs[1]]
        cd = ColumnDiff(name=col, dtype_a=_dtype_label(xa), dtype_b=_dtype_label(xb))
        numeric = xa.dtype.kind in "iuf" and xb.dtype.kind in "iuf"
        if xa.shape != xb.shape:
            cd.n_different = n_rows
        elif numeric:
            scratch = ImageDiff(extension=col)
            cd.period = periods.get(col)
            _accumulate(scratch, xa.astype(np.float64).ravel(), xb.astype(np.float64).ravel(),
                        0.0 if col in absolute else opts.rtol, opts.atol, period=cd.period)
            cd.max_abs_diff = scratch.max_abs_diff
            cd.n_different = (scratch.n_beyond_tolerance + scratch.became_nan
                              + scratch.stopped_nan)
        elif xa.dtype.kind == "O" or xb.dtype.kind == "O":  # variable-length arrays
            cd.n_different = sum(not np.array_equal(x, y) for x, y in zip(xa, xb, strict=True))
        else:
            cd.n_different = int(np.count_nonzero(xa != xb))
        result.columns.append(cd)
        if opts.quick and not cd.identical:
            result.stopped_early = True
            break
    return result


# ---------------------------------------------------------------------------- spectra

# A spectral table (an x1d's EXTRACT1D, a c1d's COMBINE1D): a WAVELENGTH column and one of
# these, compared in this order of preference.
SPECTRUM_FLUX_COLUMNS: tuple[str, ...] = ("FLUX", "SURF_BRIGHT")
# What names one spectrum: keywords of its extension (slit, source, order, exposure group)
# and, in tables with one spectrum per row (jwst's WFSS and TSO x1d: array columns padded
# with NaN, N_ALONGDISP valid values), the row's own columns.
SPECTRUM_HEADER_KEYS: tuple[str, ...] = ("SLTNAME", "SOURCEID", "SPORDER", "EXPGRPID")
SPECTRUM_ROW_KEYS: tuple[str, ...] = ("SOURCE_ID", "INT_NUM")
# Relative differences count where |A| is at least this share of its median |A|.
SPECTRUM_REL_FLOOR = 0.01


@dataclass
class Spectrum:
    """One spectrum as stored: wavelengths in row order (NaN padding cut off), its flux
    columns, units, and what names it (``identity``)."""

    extension: str
    row: int | None
    identity: dict[str, Any]
    wavelength: np.ndarray
    fluxes: dict[str, np.ndarray]
    units: dict[str, str]

    @property
    def name(self) -> str:
        return self.extension if self.row is None else f"{self.extension}[{self.row}]"

    def points(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(wavelength, flux) ascending in wavelength, rows with a finite wavelength; the
        flux may be NaN."""
        wave, flux = self.wavelength, self.fluxes[column]
        ok = np.isfinite(wave)
        order = np.argsort(wave[ok], kind="stable")
        return wave[ok][order], flux[ok][order]


def _identity_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        value = value.strip()
    return value if isinstance(value, (bool, int, float, str)) and value != "" else None


def read_spectra(hdul: Any, ignore_hdus: Iterable[str] = ()) -> list[Spectrum]:
    """Every spectrum of an open FITS file: each table HDU with WAVELENGTH and FLUX (or
    SURF_BRIGHT) holds one, or one per row when its columns are arrays."""
    ignored = {h.upper() for h in ignore_hdus}
    out: list[Spectrum] = []
    for key, index in _hdu_keys(hdul).items():
        hdu = hdul[index]
        if index == 0 or not _is_table(hdu) or key.split(",")[0] in ignored:
            continue
        data = hdu.data
        if data is None:
            continue
        names = {n.upper(): n for n in data.columns.names}
        fluxes = [c for c in SPECTRUM_FLUX_COLUMNS if c in names]
        if "WAVELENGTH" not in names or not fluxes:
            continue
        units = {c: str(data.columns[names[c]].unit or "").strip()
                 for c in ("WAVELENGTH", *fluxes)}
        header_id = {k: v for k in SPECTRUM_HEADER_KEYS
                     if (v := _identity_value(hdu.header.get(k))) is not None}
        wave = np.asarray(data[names["WAVELENGTH"]], dtype=np.float64)
        values = {c: np.asarray(data[names[c]], dtype=np.float64) for c in fluxes}
        if wave.ndim == 1:
            out.append(Spectrum(key, None, header_id, wave, values, units))
            continue
        wave = wave.reshape(wave.shape[0], -1)
        counts = (np.asarray(data[names["N_ALONGDISP"]]).ravel()
                  if "N_ALONGDISP" in names else None)
        row_keys = {k: np.asarray(data[names[k]]).ravel()
                    for k in SPECTRUM_ROW_KEYS if k in names}
        for row in range(wave.shape[0]):
            n = int(counts[row]) if counts is not None else wave.shape[1]
            identity = dict(header_id)
            for k, column in row_keys.items():
                if (v := _identity_value(column[row])) is not None:
                    identity[k] = v
            out.append(Spectrum(key, row, identity, wave[row, :n],
                                {c: v.reshape(wave.shape[0], -1)[row, :n]
                                 for c, v in values.items()}, units))
    return out


def _same_spectrum(x: Spectrum, y: Spectrum) -> bool:
    common = [k for k in x.identity if k in y.identity]
    if common:
        return all(x.identity[k] == y.identity[k] for k in common)
    return (x.extension, x.row) == (y.extension, y.row)


def pair_spectra(spectra_a: list[Spectrum], spectra_b: list[Spectrum]) -> tuple[
        list[tuple[int, int]], list[int], list[int]]:
    """Pair spectra by what names them (slit, source, order, …: equal wherever both say),
    else by extension and row; one spectrum on each side always pairs. Returns (pairs of
    indices, unpaired of A, unpaired of B)."""
    if len(spectra_a) == 1 and len(spectra_b) == 1:
        return [(0, 0)], [], []
    used: set[int] = set()
    pairs = []
    for i, x in enumerate(spectra_a):
        candidates = [j for j, y in enumerate(spectra_b)
                      if j not in used and _same_spectrum(x, y)]
        if not candidates:
            continue
        j = next((j for j in candidates
                  if (spectra_b[j].extension, spectra_b[j].row) == (x.extension, x.row)),
                 candidates[0])
        used.add(j)
        pairs.append((i, j))
    paired_a = {i for i, _ in pairs}
    return (pairs, [i for i in range(len(spectra_a)) if i not in paired_a],
            [j for j in range(len(spectra_b)) if j not in used])


def _labels(spectra: list[Spectrum]) -> list[str]:
    """What tells a file's spectra apart: the identity keys whose values vary."""
    if len(spectra) < 2:
        return [""] * len(spectra)
    keys = [k for k in dict.fromkeys(k for s in spectra for k in s.identity)
            if len({s.identity.get(k) for s in spectra}) > 1]
    return [", ".join(f"{k} {s.identity[k]}" for k in keys if k in s.identity)
            for s in spectra]


def _flux_column(x: Spectrum, y: Spectrum) -> str:
    common = [c for c in SPECTRUM_FLUX_COLUMNS if c in x.fluxes and c in y.fluxes]
    for column in common:
        if np.isfinite(x.fluxes[column]).any() and np.isfinite(y.fluxes[column]).any():
            return column
    return common[0] if common else ""


def spectra_on_grid(x: Spectrum, y: Spectrum, column: str) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, str]:
    """A and B on their common grid: the overlap of the two ranges (of points with a
    finite flux), at the wavelengths of the side with fewer points there (A on a tie),
    the other side interpolated linearly. Returns (wavelengths, A, B, "A" or "B")."""
    wa, fa = x.points(column)
    wb, fb = y.points(column)
    ra, rb = wa[np.isfinite(fa)], wb[np.isfinite(fb)]
    empty = np.zeros(0)
    if ra.size == 0 or rb.size == 0:
        return empty, empty, empty, "A"
    lo, hi = max(ra[0], rb[0]), min(ra[-1], rb[-1])
    in_a, in_b = (wa >= lo) & (wa <= hi), (wb >= lo) & (wb <= hi)
    if lo > hi or not in_a.any() or not in_b.any():
        return empty, empty, empty, "A"
    if np.count_nonzero(in_b & np.isfinite(fb)) < np.count_nonzero(in_a & np.isfinite(fa)):
        grid = wb[in_b]
        return grid, np.interp(grid, wa, fa), fb[in_b], "B"
    grid = wa[in_a]
    return grid, fa[in_a], np.interp(grid, wb, fb), "A"


def compare_spectrum(x: Spectrum, y: Spectrum, *, rtol: float = DEFAULT_RTOL,
                     atol: float = DEFAULT_ATOL) -> SpectrumDiff:
    """The figures of :class:`SpectrumDiff` for spectra A (``x``) and B (``y``)."""
    column = _flux_column(x, y)
    result = SpectrumDiff(
        name=x.name, name_b=y.name, column=column,
        wavelength_unit=x.units.get("WAVELENGTH") or y.units.get("WAVELENGTH", ""),
        flux_unit=x.units.get(column) or y.units.get(column, ""),
        rows_a=int(x.wavelength.size), rows_b=int(y.wavelength.size))
    grid_a = np.sort(x.wavelength[np.isfinite(x.wavelength)])
    grid_b = np.sort(y.wavelength[np.isfinite(y.wavelength)])
    if grid_a.size == grid_b.size and grid_a.size:  # in wavelength order: rows may run red
        dw = grid_b - grid_a                         # to blue in one and not the other
        result.grid_shift = float(np.median(dw))
        result.grid_shift_max = float(dw[np.argmax(np.abs(dw))])
        result.n_wavelengths_beyond_tolerance = int(np.count_nonzero(
            np.abs(dw) > atol + rtol * np.abs(grid_b)))
    if not column:
        return result
    wa, fa = x.points(column)
    wb, fb = y.points(column)
    good_a, good_b = np.isfinite(fa), np.isfinite(fb)
    result.points_a, result.points_b = int(good_a.sum()), int(good_b.sum())
    if good_a.any():
        result.range_a = [float(wa[good_a][0]), float(wa[good_a][-1])]
    if good_b.any():
        result.range_b = [float(wb[good_b][0]), float(wb[good_b][-1])]
    grid, va, vb, side = spectra_on_grid(x, y, column)
    result.grid = side
    if grid.size == 0 or result.range_a is None or result.range_b is None:
        return result
    result.overlap = [max(result.range_a[0], result.range_b[0]),
                      min(result.range_a[1], result.range_b[1])]
    if grid.size > 1:
        result.step = float(np.median(np.diff(grid)))
    ok = np.isfinite(va) & np.isfinite(vb)
    result.n_common = int(ok.sum())
    if not ok.any():
        return result
    g, a, b = grid[ok], va[ok], vb[ok]
    delta = np.abs(a - b)
    worst = int(np.argmax(delta))
    result.max_abs_diff, result.max_abs_wavelength = float(delta[worst]), float(g[worst])
    result.n_beyond_tolerance = int(np.count_nonzero(delta > atol + rtol * np.abs(b)))
    level = np.abs(a)
    floor = SPECTRUM_REL_FLOOR * float(np.median(level))
    sel = (level >= floor) & (level > 0)
    if sel.any():
        rel = (b[sel] - a[sel]) / level[sel]
        result.median_rel = float(np.median(rel))
        worst = int(np.argmax(np.abs(rel)))
        result.worst_rel, result.worst_wavelength = float(rel[worst]), float(g[sel][worst])
    if result.step:
        result.feature_shift, result.feature_correlation = feature_shift(
            wa[good_a], fa[good_a], wb[good_b], fb[good_b], step=result.step,
            lo=result.overlap[0], hi=result.overlap[1])
    return result


def _running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean over a centred window of ``width`` samples (fewer at the ends)."""
    half = width // 2
    total = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(values.size)
    lo, hi = np.maximum(index - half, 0), np.minimum(index + half + 1, values.size)
    return (total[hi] - total[lo]) / (hi - lo)


def feature_shift(wa: np.ndarray, fa: np.ndarray, wb: np.ndarray, fb: np.ndarray, *,
                  step: float, lo: float, hi: float, max_steps: int = 20,
                  oversample: int = 4, window_steps: int = 10,
                  ) -> tuple[float | None, float | None]:
    """How far B's spectral features are from A's, in wavelength (B's at λ + shift).

    Both spectra (ascending, finite) are resampled on a uniform grid over [lo, hi],
    ``oversample`` points per ``step``; a running mean over ``window_steps`` steps is
    subtracted (the continuum), and the normalised cross-correlation is maximised over
    shifts up to ``max_steps`` steps: first at whole samples, then to a fraction of one
    (golden section). Returns (shift, correlation), or (None, correlation or None) when
    nothing localises the shift: no structure, a peak below 0.5, a peak at the edge of
    the search, or a correlation still above 90 % of the peak three steps away (a smooth
    continuum).
    """
    if not (hi > lo and step > 0) or wa.size < 4 or wb.size < 4:
        return None, None
    n = min(int((hi - lo) / step * oversample) + 1, 1 << 16)
    if n < 4 * window_steps * oversample:
        return None, None
    u = np.linspace(lo, hi, n)
    h = float(u[1] - u[0])
    width = int(window_steps * step / h) | 1
    ya = np.interp(u, wa, fa)
    yb = np.interp(u, wb, fb)
    ya -= _running_mean(ya, width)
    yb -= _running_mean(yb, width)
    k = min(round(max_steps * step / h), n // 4)
    core = ya[k:n - k]
    norm_a = float(np.sqrt(np.dot(core, core)))  # np.dot: `@` on 1-D arrays is far slower
    scale = float(np.sqrt(np.mean(np.square(np.interp(u[k:n - k], wa, fa))))) * core.size ** 0.5
    if not np.isfinite(norm_a) or norm_a <= 1e-9 * scale:  # no structure: a straight line
        return None, None

    # every whole-sample lag at once: the products in one pass, B's norms by cumulative sums
    lags = np.arange(-k, k + 1)
    size = 1 << int(n + core.size - 1).bit_length()  # no wrap-around: FFT, n log n
    products = np.fft.irfft(np.fft.rfft(yb, size) * np.conj(np.fft.rfft(core, size)),
                            size)[:lags.size]  # [m]: yb[m:m + core.size] · core
    squares = np.concatenate([[0.0], np.cumsum(yb * yb)])
    norms_b = np.sqrt(np.maximum(squares[core.size:] - squares[:-core.size], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(norms_b > 0, products / (norm_a * norms_b), 0.0)
    best = int(np.argmax(corr))
    peak = float(corr[best])
    side = max(1, round(3 * step / h))
    around = [corr[i] for i in (best - side, best + side) if 0 <= i < corr.size]
    if (peak < 0.5 or best in (0, corr.size - 1)
            or (around and float(np.mean(around)) > 0.9 * peak)):
        return None, peak
    x_core = u[k:n - k]

    def at_shift(s: float) -> float:
        seg = np.interp(x_core + s, u, yb)
        norm_b = float(np.sqrt(np.dot(seg, seg)))
        return float(np.dot(core, seg)) / (norm_a * norm_b) if norm_b > 0 else 0.0

    left, right = (lags[best] - 1) * h, (lags[best] + 1) * h
    ratio = (math.sqrt(5) - 1) / 2
    c, d = right - ratio * (right - left), left + ratio * (right - left)
    fc, fd = at_shift(c), at_shift(d)
    while right - left > h * 1e-3:
        if fc > fd:
            right, d, fd = d, c, fc
            c = right - ratio * (right - left)
            fc = at_shift(c)
        else:
            left, c, fc = c, d, fd
            d = left + ratio * (right - left)
            fd = at_shift(d)
    shift = (left + right) / 2
    return shift, at_shift(shift)


def _compare_spectra(ha: Any, hb: Any, fc: FileComparison, opts: _Options) -> None:
    """Spectra of two open FITS files, paired by what names them, compared by wavelength.
    A spectrum that cannot be read costs the spectra section only (``spectra_error``)."""
    try:
        spectra_a = read_spectra(ha, opts.ignore_hdus)
        spectra_b = read_spectra(hb, opts.ignore_hdus)
        if not spectra_a and not spectra_b:
            return
        labels_a, labels_b = _labels(spectra_a), _labels(spectra_b)
        pairs, only_a, only_b = pair_spectra(spectra_a, spectra_b)
        for i, j in pairs:
            diff = compare_spectrum(spectra_a[i], spectra_b[j], rtol=opts.rtol, atol=opts.atol)
            diff.label = labels_a[i] or labels_b[j]
            fc.spectra.append(diff)
        fc.spectra_only_in_a = [_spectrum_title(spectra_a[i], labels_a[i]) for i in only_a]
        fc.spectra_only_in_b = [_spectrum_title(spectra_b[j], labels_b[j]) for j in only_b]
    except Exception as exc:  # the row-by-row table comparison stands regardless
        fc.spectra_error = f"{type(exc).__name__}: {exc}"


def _spectrum_title(spectrum: Spectrum, label: str) -> str:
    return f"{spectrum.name} ({label})" if label else spectrum.name


__all__ = [
    "DEFAULT_ATOL", "DEFAULT_CHUNK_ELEMENTS", "DEFAULT_IGNORED", "DEFAULT_IGNORED_FIELDS",
    "DEFAULT_IGNORED_HDUS",
    "DEFAULT_MATCH_RADIUS_ARCSEC", "DEFAULT_RTOL", "DQ_EXTENSIONS", "DQ_FLAGS",
    "SKY_POSITION_COLUMNS", "SPECTRUM_FLUX_COLUMNS", "SPECTRUM_HEADER_KEYS",
    "SPECTRUM_REL_FLOOR", "SPECTRUM_ROW_KEYS", "VERSION_KEYWORDS", "ColumnDiff",
    "Comparison", "FileComparison", "FlagChange", "ImageDiff", "KeywordDiff", "Provenance",
    "Spectrum", "SpectrumDiff", "TableDiff", "angle_period", "compare_arrays",
    "compare_catalogs", "compare_paths", "compare_spectrum", "feature_shift",
    "match_sources", "pair_products", "pair_spectra", "read_spectra", "spectra_on_grid",
]
