"""The synthetic offline program: NIRCam exposures, a truth table and a local CRDS cache.

The files are written inside a managed environment by ``scripts/make_program.py``,
with the release's own datamodels. This module runs it and describes what it made
(`Program`); `match_truth` scores a stage-3 catalog against the truth table.
The demo, `doctor --deep`, the tests and the benchmarks all use it.

Spectroscopy: ``scripts/make_spectra.py`` writes a MIRI LRS fixed-slit program (two nods,
a point source with a known spectrum) the same way; `generate_spectra`/`prepare_spectra`
run it (`Spectra`), `score_spectrum` scores an x1d against its truth spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from jwenv.crds import LocalCache
from jwenv.envs import Env


@dataclass
class Program:
    """What the generator made (its JSON report)."""

    root: Path
    cache: LocalCache
    uncal: list[Path]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def context(self) -> str:
        return self.cache.context

    @property
    def crds_path(self) -> Path:
        return self.cache.path

    @property
    def truth(self) -> Path:
        """The truth table of the three-exposure program (one observation)."""
        return Path(self.report["truth"])

    def truths(self) -> dict[str, Path]:
        """Observation number ("001") -> its truth table (every mode that has one)."""
        if "observations" in self.report:
            return {o["observation"]: Path(o["truth"]) for o in self.report["observations"]}
        return {"001": self.truth} if "truth" in self.report else {}


@dataclass(frozen=True)
class Whole:
    """The shape of a whole program: observations × filters × dithers.

    `second_context`: a filter whose flat differs in a second context, jwst_9001.pmap
    (the generator's --second-context; its report's ``second_context`` says what)."""

    observations: int = 2
    filters: tuple[str, ...] = ("F150W", "F200W")
    dithers: int = 2
    second_context: str | None = None

    def args(self) -> list[str]:
        second = ["--second-context", self.second_context] if self.second_context else []
        return ["--observations", str(self.observations), "--filters",
                ",".join(self.filters), "--dithers", str(self.dithers), *second]


def generate(env: Env, out: Path, *, program: bool = False, size: int | None = None,
             seed: int | None = None, whole: Whole | None = None,
             second_context: str | None = None) -> Program:
    """Run the generator with the environment's own Python.

    `program=True` makes the three-exposure program for the stage 1→3 chain; `whole` a
    program of several observations and filters; otherwise one small exposure for
    Detector1. `second_context` (a filter): the program's cache also holds jwst_9001.pmap,
    whose only change is that filter's flat (a whole program says it in `whole`).
    """
    out.mkdir(parents=True, exist_ok=True)
    args = ["--out", str(out)]
    if whole is not None:
        args += whole.args()
    elif program:
        args.append("--program")
        if second_context:
            args += ["--second-context", second_context]
    if size is not None:
        args += ["--size", str(size)]
    if seed is not None:
        args += ["--seed", str(seed)]
    report = env.run_script("make_program", *args, what="run the offline generator")
    return Program(root=out, cache=LocalCache(Path(report["crds_path"]), report["context"]),
                   uncal=[Path(p) for p in report["uncal"]], report=report)


def prepare(envs: list[Env], out: Path, *, program: bool = False,
            size: int | None = None, whole: Whole | None = None,
            second_context: str | None = None) -> Program:
    """Inputs every env can read: made by the oldest, mappings topped up by the others.

    Files written by an older datamodels load in newer releases, not always the reverse.
    """
    ordered = sorted(envs, key=lambda e: Version(e.manifest.jwst_version))
    made = generate(ordered[0], out, program=program, size=size, whole=whole,
                    second_context=second_context)
    for env in ordered[1:]:
        env.run_script("make_program", "--out", str(out), "--extend",
                       what="extend the local CRDS mappings")
    return made


def match_truth(catalog: Path, truth: Path, tol_arcsec: float = 0.05) -> dict[str, Any]:
    """How many injected sources the stage-3 catalog found within `tol_arcsec`."""
    import astropy.units as u
    import numpy as np
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    listed = Table.read(catalog, format="ascii.ecsv")["sky_centroid"]
    # a segment with no centroid (0.15.1: the zero-filled border of an over-subtracted
    # i2d) has NaN coordinates; it matches nothing and must not poison the minimum
    found = listed[np.isfinite(listed.ra.deg) & np.isfinite(listed.dec.deg)]
    t = Table.read(truth, format="ascii.ecsv")
    injected = SkyCoord(t["ra"], t["dec"], unit="deg")
    # nearest catalog source per injected one (brute force: no scipy needed)
    sep = injected[:, None].separation(found[None, :]).to(u.arcsec).min(axis=1).value
    return {"injected": len(t), "catalog": len(listed),
            "recovered": int((sep < tol_arcsec).sum()), "worst_arcsec": float(sep.max()),
            "tolerance_arcsec": tol_arcsec}


# -- spectroscopy ------------------------------------------------------------------------------
@dataclass
class Spectra(Program):
    """What the spectroscopic generator made: MIRI LRS fixed slit, two nods along the slit,
    `truth` (wavelength -> flux density, Jy), the emission `lines` and the `nods`."""

    @property
    def lines(self) -> list[dict[str, Any]]:
        return list(self.report.get("lines", []))

    @property
    def nods(self) -> list[dict[str, Any]]:
        return list(self.report.get("nods", []))


def generate_spectra(env: Env, out: Path, *, seed: int | None = None) -> Spectra:
    """Run ``scripts/make_spectra.py`` with the environment's own Python."""
    out.mkdir(parents=True, exist_ok=True)
    args = ["--out", str(out)] + (["--seed", str(seed)] if seed is not None else [])
    report = env.run_script("make_spectra", *args, what="run the spectroscopic generator")
    return Spectra(root=out, cache=LocalCache(Path(report["crds_path"]), report["context"]),
                   uncal=[Path(p) for p in report["uncal"]], report=report)


def prepare_spectra(envs: list[Env], out: Path, *, seed: int | None = None) -> Spectra:
    """The spectroscopic program every env can read: made by the oldest, its mappings
    topped up (N/A for types a newer release asks for) by the others."""
    ordered = sorted(envs, key=lambda e: Version(e.manifest.jwst_version))
    made = generate_spectra(ordered[0], out, seed=seed)
    for env in ordered[1:]:
        env.run_script("make_spectra", "--out", str(out), "--extend",
                       what="extend the local CRDS mappings")
    return made


def score_spectrum(x1d: Path, truth: Path, *, tolerance: float = 0.05) -> dict[str, Any]:
    """An extracted spectrum (x1d, its first EXTRACT1D table) against the truth spectrum.

    Lines: the centroid of the flux above the true continuum, within one resolution
    element of its highest point found within three of the truth; `offset_resolution` is
    the shift in resolution elements. Continuum: flux / truth at every finite row more than
    three line widths from any line and 0.5 um inside the truth's range; `within` is the
    share of those rows within `tolerance`."""
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table

    t = Table.read(truth, format="ascii.ecsv")
    with fits.open(x1d) as hdul:
        data = hdul["EXTRACT1D"].data
        wave = np.asarray(data["WAVELENGTH"], float)
        flux = np.asarray(data["FLUX"], float)
    ok = np.isfinite(wave) & np.isfinite(flux)
    wave, flux = wave[ok], flux[ok]
    order = np.argsort(wave)
    wave, flux = wave[order], flux[order]
    t_wave = np.asarray(t["wavelength"], float)
    true = np.interp(wave, t_wave, np.asarray(t["flux"], float))
    excess = flux - np.interp(wave, t_wave, np.asarray(t["continuum"], float))
    lines = []
    keep = (wave > t_wave.min() + 0.5) & (wave < t_wave.max() - 0.5)
    for line in t.meta.get("lines", []):
        center, res = float(line["wavelength"]), float(line["resolution_um"])
        keep &= np.abs(wave - center) > 3 * float(line["fwhm_um"])
        window = np.abs(wave - center) <= 3 * res
        if not window.any():
            lines.append({"name": line["name"], "truth_um": center, "measured_um": None,
                          "offset_um": None, "offset_resolution": None,
                          "resolution_um": res})
            continue
        peak = int(np.argmax(np.where(window, excess, -np.inf)))
        near = (np.abs(wave - wave[peak]) <= res) & (excess > 0)
        measured = float(np.sum(wave[near] * excess[near]) / np.sum(excess[near]))
        lines.append({"name": line["name"], "truth_um": center, "measured_um": measured,
                      "offset_um": measured - center,
                      "offset_resolution": (measured - center) / res, "resolution_um": res,
                      "peak_jy": float(flux[peak]), "truth_peak_jy": float(true[peak])})
    ratio = flux[keep] / true[keep]
    worst = int(np.argmax(np.abs(ratio - 1))) if ratio.size else None
    continuum = {"points": int(ratio.size), "tolerance": tolerance,
                 "median_ratio": float(np.median(ratio)) if ratio.size else None,
                 "worst_ratio": float(ratio[worst]) if worst is not None else None,
                 "worst_um": float(wave[keep][worst]) if worst is not None else None,
                 "within": float(np.mean(np.abs(ratio - 1) <= tolerance)) if ratio.size
                 else 0.0}
    return {"rows": int(ok.sum()), "lines": lines, "continuum": continuum}
