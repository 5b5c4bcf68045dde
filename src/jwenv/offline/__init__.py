"""The synthetic offline program: NIRCam exposures, a truth table and a local CRDS cache.

The files are written inside a managed environment by ``scripts/make_program.py``,
with the release's own datamodels. This module runs it and describes what it made
(`Program`); `match_truth` scores a stage-3 catalog against the truth table.
The demo, `doctor --deep`, the tests and the benchmarks all use it.
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
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    found = Table.read(catalog, format="ascii.ecsv")["sky_centroid"]
    t = Table.read(truth, format="ascii.ecsv")
    injected = SkyCoord(t["ra"], t["dec"], unit="deg")
    # nearest catalog source per injected one (brute force: no scipy needed)
    sep = injected[:, None].separation(found[None, :]).to(u.arcsec).min(axis=1).value
    return {"injected": len(t), "catalog": len(found),
            "recovered": int((sep < tol_arcsec).sum()), "worst_arcsec": float(sep.max()),
            "tolerance_arcsec": tol_arcsec}
