"""Render a :class:`jwenv.compare.Comparison`: rich tables for the terminal, or one
self-contained HTML page (pictures embedded as base64 PNG when matplotlib is installed).

Rendering only: all figures come from ``compare.py``; the HTML pictures re-read the
(memory-mapped, downsampled) data because a Comparison deliberately holds no pixels.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jwenv.compare import (
    Comparison,
    FileComparison,
    ImageDiff,
    TableDiff,
)

if TYPE_CHECKING:
    from rich.console import Console

PLOTS_HINT = "Pictures need matplotlib: pip install 'jwenv[plots]'"
MAX_HEADER_ROWS = 25  # per file; the JSON output has them all
_PICTURE_PIXELS = 300  # longest side of a downsampled image


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
    return f"{fraction * 100:.2g}%" if fraction >= 1e-4 else f"{fraction * 100:.1e}%"


def _value(value: Any) -> str:
    return "(missing)" if value is None else str(value)


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


def _flags(image: ImageDiff) -> str:
    parts = []
    for flag in image.dq_flags:
        if flag.gained:
            parts.append(f"+{flag.gained} {flag.name}")
        if flag.lost:
            parts.append(f"−{flag.lost} {flag.name}")
    return ", ".join(parts)


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


def _table_summary(table: TableDiff) -> str:
    if table.rows_a != table.rows_b:
        return f"{table.name}: rows {table.rows_a} → {table.rows_b}"
    changed = [c for c in table.columns if not c.identical]
    parts = [f"{c.name} ({_num(c.max_abs_diff)})" if c.max_abs_diff is not None else c.name
             for c in changed[:4]]
    more = f" +{len(changed) - 4} more" if len(changed) > 4 else ""
    cols = table.columns_only_in_a + table.columns_only_in_b
    extra = f"; columns added/removed: {', '.join(cols)}" if cols else ""
    return f"{table.name}: {len(changed)} column(s) differ: {', '.join(parts)}{more}{extra}"


def file_summary(fc: FileComparison) -> str:
    """The short "what differs" text used in both renderings."""
    if fc.error:
        return fc.error
    if fc.kind in ("asdf", "opaque"):
        return "same bytes" if fc.bytes_equal else "bytes differ (compared as opaque)"
    parts = []
    if fc.provenance is not None:
        parts += [f"{k.keyword}: {_value(k.a)} → {_value(k.b)}"
                  for k in fc.provenance.reference_files + fc.provenance.step_status]
    parts += [_image_summary(i) for i in fc.images if not i.identical]
    parts += [_table_summary(t) for t in fc.tables if not t.identical]
    if fc.hdus_only_in_a or fc.hdus_only_in_b:
        parts.append("extensions " + ", ".join(
            [f"−{h}" for h in fc.hdus_only_in_a] + [f"+{h}" for h in fc.hdus_only_in_b]))
    if fc.headers:
        parts.append(f"{len(fc.headers)} header keyword(s)")
    if fc.stopped_early:
        parts.append("(quick: stopped at first difference)")
    return "; ".join(parts) or "identical within tolerance"


def _status(fc: FileComparison) -> str:
    if fc.error:
        return "error"
    return "identical" if fc.identical else "differs"


def provenance_rows(comparison: Comparison) -> dict[str, list[tuple[str, str, str, int]]]:
    """Provenance across all files: (keyword, A values, B values, number of files)."""
    sections: dict[str, list[tuple[str, str, str, int]]] = {}
    for section in ("versions", "reference_files", "step_status"):
        seen: dict[str, tuple[set[str], set[str], int]] = defaultdict(lambda: (set(), set(), 0))
        for fc in comparison.files:
            if fc.provenance is None:
                continue
            for kd in getattr(fc.provenance, section):
                a, b, n = seen[kd.keyword]
                a.add(_value(kd.a))
                b.add(_value(kd.b))
                seen[kd.keyword] = (a, b, n + 1)
        sections[section] = [(key, ", ".join(sorted(a)), ", ".join(sorted(b)), n)
                             for key, (a, b, n) in seen.items()]
    return sections


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


# ---------------------------------------------------------------------------- terminal


def render_terminal(comparison: Comparison, console: Console) -> None:
    """Print provenance first, then one summary row per file, then per-extension detail
    for the files that differ."""
    from rich.table import Table

    console.print(f"[bold]A[/]: {comparison.a}\n[bold]B[/]: {comparison.b}")
    prov = provenance_rows(comparison)
    if any(prov.values()):
        table = Table(title="Provenance", title_justify="left", show_lines=False)
        for col in ("", "keyword", "A", "B", "files"):
            table.add_column(col)
        labels = {"versions": "version", "reference_files": "ref file",
                  "step_status": "step"}
        for section, rows in prov.items():
            for key, a, b, n in rows:
                style = "yellow" if a != b else None
                table.add_row(labels[section], key, a, b, str(n), style=style)
        console.print(table)

    if comparison.files:
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
    colour = "green" if comparison.identical else ("red" if comparison.exit_code() == 2
                                                   else "yellow")
    console.print(f"[bold {colour}]{_verdict(comparison)}[/]")


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
    for t in fc.tables:
        if t.identical:
            continue
        table = Table(title=f"{fc.name}: table {t.name} (rows {t.rows_a} → {t.rows_b})",
                      title_justify="left")
        for col in ("column", "dtype", "max|Δ|", "n differ"):
            table.add_column(col)
        for c in t.columns:
            if not c.identical:
                dtype = c.dtype_a if c.dtype_a == c.dtype_b else f"{c.dtype_a} → {c.dtype_b}"
                table.add_row(c.name, dtype, _num(c.max_abs_diff), str(c.n_different))
        for name in t.columns_only_in_a:
            table.add_row(name, "only in A", "", "")
        for name in t.columns_only_in_b:
            table.add_row(name, "only in B", "", "")
        console.print(table)
    if fc.headers:
        table = Table(title=f"{fc.name}: header keywords", title_justify="left")
        for col in ("hdu", "keyword", "A", "B"):
            table.add_column(col, overflow="fold")
        for kd in fc.headers[:MAX_HEADER_ROWS]:
            table.add_row(kd.hdu, kd.keyword, _value(kd.a), _value(kd.b))
        if len(fc.headers) > MAX_HEADER_ROWS:
            table.add_row("…", f"{len(fc.headers) - MAX_HEADER_ROWS} more (see --json)", "", "")
        console.print(table)


# ---------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.differs{color:#a60}.identical{color:#270}.error{color:#b00}
.note{background:#fff6d5;padding:.5em;border:1px solid #e6cf7a}
figure{display:inline-block;margin:.3em}figcaption{font-size:.85em;text-align:center}
"""


def _load_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when the plots extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


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


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(png: str, caption: str) -> str:
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{png}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _plane(path: str, extension: str) -> tuple[np.ndarray, str] | None:
    """A downsampled 2-D float plane of one extension (first plane of cubes)."""
    from astropy.io import fits

    name, _, ver = extension.partition(",")
    key: Any = 0 if name == "PRIMARY" else ((name, int(ver)) if ver else name)
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
        hdu = hdul[key]
        data = hdu.data
        if data is None or data.ndim == 0:
            return None
        note = ""
        while data.ndim > 2:
            data = data[0]
            note += "[0]"
        if data.ndim == 1:
            data = data[np.newaxis, :]
        step = max(1, math.ceil(max(data.shape) / _PICTURE_PIXELS))
        plane = np.array(data[::step, ::step], dtype=np.float64)
        bscale, bzero = hdu.header.get("BSCALE", 1.0), hdu.header.get("BZERO", 0.0)
        plane = plane * bscale + bzero
    if step > 1:
        note += f" every {step}th pixel"
    return plane, note.strip()


def _limits(*arrays: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    if finite.size == 0:
        return -1.0, 1.0
    if symmetric:
        top = float(np.percentile(np.abs(finite), 99)) or float(np.abs(finite).max()) or 1.0
        return -top, top
    low, high = np.percentile(finite, [1, 99])
    return float(low), (float(high) if high > low else float(low) + 1.0)


def _image_figures(plt: Any, fc: FileComparison, image: ImageDiff) -> str:
    if image.shape_changed:
        return ""
    planes = [_plane(fc.a, image.extension), _plane(fc.b, image.extension)]
    if planes[0] is None or planes[1] is None:
        return ""
    (a, note), (b, _) = planes
    if image.is_dq:
        third, label, cmap3 = (a != b).astype(float), "changed pixels", "Reds"
        lim3 = (0.0, 1.0)
    else:
        third, label, cmap3 = a - b, "A − B", "RdBu_r"
        lim3 = _limits(third, symmetric=True)
    lim = _limits(a, b)
    out = []
    for data, title, cmap, (vmin, vmax) in ((a, "A", "gray", lim), (b, "B", "gray", lim),
                                            (third, label, cmap3, lim3)):
        fig, ax = plt.subplots(figsize=(3.0, 3.0))
        colours = plt.get_cmap(cmap).with_extremes(bad="#e000e0")  # NaN pixels stand out
        shown = ax.imshow(data, origin="lower", cmap=colours, vmin=vmin, vmax=vmax,
                          interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(f"{image.extension}: {title}", fontsize=9)
        ax.tick_params(labelsize=7)
        out.append(_figure(_png(fig), f"{image.extension} {title} {note}".strip()))
    return "".join(out)


def _spectrum_figure(plt: Any, fc: FileComparison, table: TableDiff) -> str:
    """Overplot A and B for x1d-like tables (WAVELENGTH and FLUX columns)."""
    from astropy.io import fits

    names = {c.name.upper() for c in table.columns}
    if not {"WAVELENGTH", "FLUX"} <= names or table.rows_a != table.rows_b:
        return ""
    name, _, ver = table.name.partition(",")
    key: Any = (name, int(ver)) if ver else name
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 4.0), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    curves = []
    for path, label in ((fc.a, "A"), (fc.b, "B")):
        with fits.open(path, memmap=True) as hdul:
            data = hdul[key].data
            wave = np.array(data["WAVELENGTH"], dtype=np.float64).ravel()
            flux = np.array(data["FLUX"], dtype=np.float64).ravel()
        top.plot(wave, flux, lw=0.8, label=label, alpha=0.8)
        curves.append((wave, flux))
    bottom.plot(curves[0][0], curves[0][1] - curves[1][1], lw=0.8, color="k")
    top.set_ylabel("FLUX", fontsize=8)
    bottom.set_ylabel("A − B", fontsize=8)
    bottom.set_xlabel("WAVELENGTH", fontsize=8)
    top.legend(fontsize=8)
    top.set_title(f"{fc.name} {table.name}", fontsize=9)
    return _figure(_png(fig), f"{table.name}: spectra A and B")


def write_html(comparison: Comparison, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (no external resources) and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = _load_pyplot()
    parts = [f"<h1>jwenv diff</h1><p><b>A</b>: {html.escape(comparison.a)}<br>"
             f"<b>B</b>: {html.escape(comparison.b)}</p>",
             f"<p><b>{html.escape(_verdict(comparison))}</b></p>"]
    if plt is None:
        parts.append(f'<p class="note">{html.escape(PLOTS_HINT, quote=False)}</p>')

    prov = provenance_rows(comparison)
    if any(prov.values()):
        rows, classes = [], []
        for section, entries in prov.items():
            for key, a, b, n in entries:
                rows.append((section.replace("_", " "), key, a, b, n))
                classes.append("differs" if a != b else None)
        parts.append("<h2>Provenance</h2>"
                     + _html_table(("", "keyword", "A", "B", "files"), rows, classes))

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
        parts.append(_file_html(fc, plt))
    if comparison.skipped:
        parts.append(f"<p>{len(comparison.skipped)} non-product file(s) not compared: "
                     f"{html.escape(', '.join(comparison.skipped))}</p>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>jwenv diff</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _file_html(fc: FileComparison, plt: Any) -> str:
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
        if plt is not None:
            parts += [f"<div>{_safe(_image_figures, plt, fc, i)}</div>" for i in images]
    for t in fc.tables:
        if t.identical:
            continue
        rows = [(c.name, c.dtype_a if c.dtype_a == c.dtype_b else f"{c.dtype_a} → {c.dtype_b}",
                 _num(c.max_abs_diff), c.n_different) for c in t.columns]
        rows += [(n, "only in A", "", "") for n in t.columns_only_in_a]
        rows += [(n, "only in B", "", "") for n in t.columns_only_in_b]
        parts.append(f"<h3>Table {html.escape(t.name)}: rows {t.rows_a} → {t.rows_b}</h3>"
                     + _html_table(("column", "dtype", "max|Δ|", "n differ"), rows))
        if plt is not None and fc.kind == "fits":
            parts.append(_safe(_spectrum_figure, plt, fc, t))
    if fc.headers:
        rows = [(k.hdu, k.keyword, _value(k.a), _value(k.b)) for k in fc.headers]
        parts.append("<h3>Header keywords</h3>"
                     + _html_table(("hdu", "keyword", "A", "B"), rows))
    return "".join(parts)


def _safe(render: Any, *args: Any) -> str:
    """A picture that fails to draw must not cost the user the tables."""
    try:
        return render(*args)
    except Exception as exc:
        return f'<p class="note">picture unavailable: {html.escape(str(exc))}</p>'


__all__ = ["PLOTS_HINT", "file_summary", "provenance_rows", "render_terminal", "write_html"]
