"""What a reprocessing run is made of: inputs, associations, and the jobs between them.

1. **Inputs** (`classify`): exposures at any level (uncal → stage 1, rate/rateints → 2,
   cal/calints → 3) and association files, checked before anything is written, with the
   header facts the plan needs (program, observation, detector, filter, sizes...).
2. **Associations** (`associations`): how exposures group into level-2 and level-3
   products, from one of three sources, said in the plan:
   - association files given as inputs or with `--asn`, or found beside the inputs
     (`*_asn.json`, as archive downloads have them): used as given;
   - otherwise the release's own rules, as STScI operations run them: a pool from the
     inputs' headers, then `asn_generate` inside the environment (scripts/make_asn.py);
   - only if that generator cannot run: the release's `asn_from_list`, grouped by
     observation, target, instrument, optical element and subarray, with archive-style
     names; jwenv says so.
   No level-3 product ever mixes filters, pupils or instruments: that is checked here,
   whatever the source.
3. **Jobs** (`jobs`): one stage-1 job per exposure, one stage-2 job per level-2 product,
   one stage-3 job per level-3 product; each with what it needs done first, its
   products, its estimated peak memory, and a spec that any executor can run. Stage 1
   keeps exposure order within a detector and visit (persistence reads earlier
   exposures of the same detector).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jwenv.envs import Env
from jwenv.errors import BadInput, JwenvError
from jwenv.store import write_json_atomic

SUFFIX_STAGE = {"uncal": 1, "rate": 2, "rateints": 2, "cal": 3, "calints": 3}
STAGE_PIPELINES = {1: ("Detector1Pipeline", "Detector1Pipeline"),
                   2: ("Image2Pipeline", "Spec2Pipeline"),
                   3: ("Image3Pipeline", "Spec3Pipeline")}
_PRODUCT = re.compile(r"^(?P<base>.+?)_(?P<suffix>uncal|rate|rateints|cal|calints|x1d|"
                      r"crf|i2d)\.fits(\.gz)?$")
# Memory priors (bytes), corrected from measured peaks while a run goes on. Stage 1: fit to
# measured Detector1 peaks (0.3 GB for 400x400x5 groups, 1.4-2.2 GB for 2048x2048x5,
# release-dependent); the per-pixel-group term is what the MIRI team measured for their
# own scheduler (0.048 GB per group x integration on a 1032x1024 frame: 45 B) doubled.
BASE_BYTES = 250 << 20
STAGE1_BYTES_PER_PIXEL_GROUP = 100
STAGE2_BYTES_PER_PIXEL = 150
STAGE3_BYTES_PER_MEMBER_PIXEL = 200
HEADER_KEYS = ("PROGRAM", "OBSERVTN", "VISIT", "EXPOSURE", "DETECTOR", "INSTRUME", "FILTER",
               "PUPIL", "EXP_TYPE", "SUBARRAY", "TARGPROP", "TARGNAME", "EXPSTART",
               "NGROUPS", "NINTS", "SUBSIZE1", "SUBSIZE2")


# -- inputs --------------------------------------------------------------------------------
@dataclass
class Input:
    path: Path
    stage: int  # the first stage this file goes through
    background: bool = False
    exp_type: str = ""
    header: dict[str, Any] = field(default_factory=dict)  # HEADER_KEYS that are present

    @property
    def base(self) -> str:
        """The exposure name without its product suffix."""
        return exposure_base(self.path.name)

    def pixels(self) -> int:
        nx = int(self.header.get("SUBSIZE1") or 2048)
        ny = int(self.header.get("SUBSIZE2") or 2048)
        return nx * ny


def exposure_base(name: str) -> str:
    m = _PRODUCT.match(Path(name).name)
    return m.group("base") if m else Path(name).name.rsplit("_", 1)[0]


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a directory (an archive download) gives, per exposure, its
    lowest-level product there (uncal, else rate/rateints, else cal/calints)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            out.append(path)
            continue
        best: dict[str, tuple[int, Path]] = {}
        for f in sorted(path.glob("*.fits")):
            m = _PRODUCT.match(f.name)
            if m is None or m.group("suffix") not in SUFFIX_STAGE:
                continue
            stage = SUFFIX_STAGE[m.group("suffix")]
            if m.group("base") not in best or stage < best[m.group("base")][0]:
                best[m.group("base")] = (stage, f)
        if not best:
            raise BadInput(f"{raw} holds no exposures (*_uncal, *_rate, *_cal .fits)")
        out += [f for _stage, f in sorted(best.values(), key=lambda x: x[1].name)]
    return out


def classify(paths: Sequence[Path]) -> list[Input]:
    """Validate every input before anything is written (one-line errors)."""
    if not paths:
        raise BadInput("no inputs: give *_uncal.fits, *_rate.fits, *_cal.fits or an "
                       "association (.json)")
    found: list[Input] = []
    for raw in expand(paths):
        path = Path(raw).absolute()
        if not path.is_file():
            raise BadInput(f"no such input: {raw}")
        if path.suffix == ".json":
            found += _from_association(path)
        else:
            found.append(_from_fits(path))
    seen: set[Path] = set()
    return [i for i in found if not (i.path in seen or seen.add(i.path))]


def _from_fits(path: Path, stage: int | None = None, background: bool | None = None) -> Input:
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError):
        raise BadInput(f"{path.name} is not a FITS file") from None
    if str(header.get("TELESCOP", "")).strip().upper() != "JWST":
        raise BadInput(f"{path.name} is not a JWST product (TELESCOP="
                       f"{header.get('TELESCOP', 'missing')!r})")
    suffix = path.stem.rsplit("_", 1)[-1] if "_" in path.stem else ""
    if stage is None:
        if suffix not in SUFFIX_STAGE:
            raise BadInput(f"cannot tell the stage of {path.name}: expected *_uncal, *_rate, "
                           "*_rateints, *_cal or an association")
        stage = SUFFIX_STAGE[suffix]
    if background is None:
        background = bool(header.get("BKGDTARG", False))
    facts = {k: header[k] for k in HEADER_KEYS if k in header}
    for k, v in facts.items():
        if isinstance(v, str):
            facts[k] = v.strip()
    return Input(path, stage, background, str(header.get("EXP_TYPE", "")).strip(), facts)


def _read_association(path: Path) -> dict[str, Any]:
    try:
        asn = json.loads(path.read_text())
        str(asn.get("asn_type", ""))
        products = asn.get("products") or []
        assert isinstance(products, list)
    except (ValueError, AttributeError, AssertionError, OSError):
        raise BadInput(f"{path.name} is not an association (JSON with asn_type and "
                       "products)") from None
    return asn


def _level(asn: dict[str, Any], path: Path) -> int:
    asn_type = str(asn.get("asn_type", "")).lower()
    level = 2 if asn_type.endswith("2") else 3 if asn_type.endswith("3") else None
    if level is None:
        raise BadInput(f"{path.name}: unknown asn_type {asn_type!r} (image2/spec2/image3/"
                       "spec3)")
    return level


def _from_association(path: Path) -> list[Input]:
    asn = _read_association(path)
    stage = _level(asn, path)
    out = []
    for product in asn.get("products") or []:
        for member in product.get("members", []):
            exptype = str(member.get("exptype", "science")).lower()
            if exptype not in ("science", "background"):
                continue
            member_path = (path.parent / member["expname"]).absolute()
            if not member_path.is_file():
                raise BadInput(f"{path.name} names {member['expname']}, which does not exist")
            out.append(_from_fits(member_path, stage, exptype == "background"))
    if not any(not i.background for i in out):
        raise BadInput(f"{path.name} is an empty association (no science members)")
    return out


def check_programs(inputs: Sequence[Input], allow_mixed: bool) -> None:
    programs = sorted({str(i.header.get("PROGRAM", "")) for i in inputs} - {""})
    if len(programs) > 1 and not allow_mixed:
        raise BadInput(f"the inputs come from {len(programs)} programs "
                       f"({', '.join(programs)}): reprocess them apart, or give "
                       "--allow-mixed to reprocess them together")


def parse_stages(value: str | None, inputs: list[Input]) -> list[int]:
    first = min(i.stage for i in inputs)
    if value is None:
        return list(range(first, 4))
    try:
        stages = sorted({int(s) for s in value.split(",") if s.strip()})
    except ValueError:
        raise BadInput(f"--stages {value!r}: give stage numbers like 1,2,3") from None
    if not stages or any(s not in (1, 2, 3) for s in stages):
        raise BadInput(f"--stages {value!r}: stages are 1, 2 and 3")
    if stages != list(range(stages[0], stages[-1] + 1)):
        raise BadInput(f"--stages {value!r}: stages must be consecutive")
    if stages[0] < first:
        raise BadInput(f"--stages {value!r}: the inputs start at stage {first}")
    return stages


def split_step_args(args: Sequence[str]) -> list[tuple[str, str]]:
    """`--steps.jump.rejection_threshold=5` → ("jump", the arg); anything else is an error."""
    out = []
    for arg in args:
        if not arg.startswith("--steps.") or "=" not in arg or arg.count(".") < 2:
            raise BadInput(f"unexpected argument {arg!r}: pipeline options are "
                           "--steps.STEP.PARAM=VALUE")
        out.append((arg.split(".", 2)[1], arg))
    return out


def is_image(inputs: Sequence[Input]) -> bool:
    science = [i for i in inputs if not i.background] or list(inputs)
    return all("IMAGE" in i.exp_type or not i.exp_type for i in science)


def pipeline_for(stage: int, inputs: Sequence[Input]) -> str:
    image, spec = STAGE_PIPELINES[stage]
    return image if is_image(inputs) else spec


# -- associations -----------------------------------------------------------------------------
@dataclass
class Association:
    """One product of an association file: its level, name and members (base names)."""

    level: int
    name: str
    asn_type: str
    science: list[str]
    background: list[str] = field(default_factory=list)
    source: str = ""  # the file it came from
    data: dict[str, Any] = field(default_factory=dict)  # the file's other keys (asn_pool...)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "data"}


@dataclass
class Grouping:
    """The associations of a run, and where they came from (said to the user)."""

    source: str  # "given", "release rules" or "asn_from_list"
    detail: str
    level2: list[Association] = field(default_factory=list)
    level3: list[Association] = field(default_factory=list)
    pool: tuple[str, str] | None = None  # (file name, text) of the pool the rules read

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "detail": self.detail,
                "level2": [a.to_dict() for a in self.level2],
                "level3": [a.to_dict() for a in self.level3]}


def _associations_in(path: Path, data: dict[str, Any]) -> list[Association]:
    level = _level(data, path)
    keep = {k: v for k, v in data.items() if k != "products"}
    out = []
    for product in data.get("products") or []:
        sci, bkg = [], []
        for m in product.get("members", []):
            kind = str(m.get("exptype", "science")).lower()
            if kind == "science":
                sci.append(exposure_base(m["expname"]))
            elif kind == "background":
                bkg.append(exposure_base(m["expname"]))
        if sci:
            out.append(Association(level, str(product.get("name") or sci[0]),
                                   str(data.get("asn_type", "")), sci, bkg, str(path), keep))
    return out


def find_association_files(inputs: Sequence[Input], given: Sequence[Path]) -> list[Path]:
    """`--asn` files, else `*_asn.json` beside the inputs that name one of them."""
    if given:
        missing = [str(p) for p in given if not Path(p).is_file()]
        if missing:
            raise BadInput(f"no such association: {missing[0]}")
        return [Path(p).absolute() for p in given]
    bases = {i.base for i in inputs}
    found = []
    for folder in sorted({i.path.parent for i in inputs}):
        for path in sorted(folder.glob("*_asn.json")):
            try:
                data = json.loads(path.read_text())
                members = [exposure_base(m["expname"]) for p in data.get("products", [])
                           for m in p.get("members", [])]
            except (ValueError, KeyError, TypeError, AttributeError, OSError):
                continue
            if bases & set(members):
                found.append(path)
    return found


def from_files(files: Sequence[Path], source: str) -> Grouping:
    grouping = Grouping("given", source)
    for path in files:
        for asn in _associations_in(path, _read_association(path)):
            (grouping.level2 if asn.level == 2 else grouping.level3).append(asn)
    return grouping


def from_release(env: Env, inputs: Sequence[Input], workdir: Path) -> Grouping:
    """The release's own rules on a pool of the inputs' headers (scripts/make_asn.py)."""
    report = env.run_script("make_asn", "generate", "--out", str(workdir),
                            *[str(i.path) for i in inputs],
                            what="generate associations with its own rules")
    pool = Path(report["pool"])
    grouping = Grouping("release rules", f"jwst {env.manifest.jwst_version}'s association "
                                         f"rules (asn_generate) on {pool.name}",
                        pool=(pool.name, pool.read_text()))
    for entry in report["associations"]:
        path = Path(entry["file"])
        for asn in _associations_in(path, _read_association(path)):
            (grouping.level2 if asn.level == 2 else grouping.level3).append(asn)
    return grouping


def _optical_element(i: Input) -> str:
    parts = [str(i.header.get(k, "")).lower() for k in ("PUPIL", "FILTER")]
    return "-".join(p for p in parts if p and p not in ("n/a", "none"))


def _level3_key(i: Input) -> tuple[str, ...]:
    return (str(i.header.get("PROGRAM", "")), str(i.header.get("OBSERVTN", "")),
            str(i.header.get("TARGPROP") or i.header.get("TARGNAME") or ""),
            str(i.header.get("INSTRUME", "")).lower(), _optical_element(i),
            str(i.header.get("SUBARRAY", "")).lower())


def fallback_grouping(env: Env, inputs: Sequence[Input], why: str) -> Grouping:
    """Our own grouping (the rules' candidates: observation × target × optical path),
    archive-style names, files written by the release's asn_from_list."""
    science = [i for i in inputs if not i.background]
    backgrounds = [i for i in inputs if i.background]
    grouping = Grouping("asn_from_list", f"the release's generator could not run ({why}); "
                                         "grouped by observation, target, instrument, "
                                         "optical element and subarray")
    for i in science:
        bkg = [b.base for b in backgrounds
               if b.header.get("INSTRUME") == i.header.get("INSTRUME")]
        grouping.level2.append(Association(2, i.base, "image2" if is_image([i]) else "spec2",
                                           [i.base], bkg))
    targets: dict[str, int] = {}
    groups: dict[tuple[str, ...], list[Input]] = {}
    for i in sorted(science, key=lambda i: (str(i.header.get("EXPSTART", "")), i.base)):
        key = _level3_key(i)
        targets.setdefault(key[2], len(targets) + 1)
        groups.setdefault(key, []).append(i)
    for key, members in groups.items():
        program, obs, target, instrument, optical, subarray = key
        name = (f"jw{program or '00000'}-o{obs or '000'}_t{targets[target]:03d}_"
                f"{instrument or 'unknown'}_{optical or 'clear'}")
        if subarray and subarray != "full":
            name += f"-{subarray}"
        grouping.level3.append(Association(3, name, "image3" if is_image(members) else
                                           "spec3", [m.base for m in members]))
    return grouping


def check_grouping(grouping: Grouping, inputs: Sequence[Input]) -> None:
    """Never two filters, pupils or instruments in one level-3 product."""
    by_base = {i.base: i for i in inputs}
    for asn in grouping.level3:
        members = [by_base[b] for b in asn.science if b in by_base]
        optics = {(str(m.header.get("INSTRUME", "")), _optical_element(m)) for m in members}
        if len(optics) > 1:
            shown = ", ".join(sorted(f"{a.lower()} {b}" for a, b in optics))
            raise JwenvError(f"{asn.source or grouping.source}: level-3 product {asn.name} "
                             f"would mix {shown}; refusing to make it")


def dedupe_level2(level2: Sequence[Association]) -> list[Association]:
    """One level-2 product per exposure, preferring the one that has background members
    (old rules write one per candidate)."""
    best: dict[str, Association] = {}
    for asn in level2:
        key = asn.science[0]
        if key not in best or len(asn.background) > len(best[key].background):
            best[key] = asn
    return list(best.values())


# -- jobs -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One pipeline run of the plan: what any executor needs (`spec`) and the schedule's
    facts (needs, after, memory)."""

    id: str  # "<stage>/<product name>", unique within an environment's run
    stage: int
    pipeline: str
    name: str
    target: Path  # what strun is given: an exposure or an association
    inputs: list[Path]  # files it reads
    products: list[Path]  # what it must write
    needs: list[str] = field(default_factory=list)  # job ids that must be done first
    after: list[str] = field(default_factory=list)  # job ids that must finish first
    memory: int = BASE_BYTES
    asn: dict[str, Any] | None = None  # the association file to write at `target`
    given_inputs: list[Path] = field(default_factory=list)  # inputs not made by the plan
    optional: list[Path] = field(default_factory=list)  # what it may write (a catalog, s2d)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "pipeline": self.pipeline,
                "name": self.name, "target": str(self.target),
                "inputs": [str(p) for p in self.inputs],
                "products": [str(p) for p in self.products],
                "optional": [str(p) for p in self.optional], "needs": self.needs,
                "after": self.after, "memory": self.memory}


def _stage1_memory(i: Input) -> int:
    groups = int(i.header.get("NGROUPS") or 10) * int(i.header.get("NINTS") or 1)
    return BASE_BYTES + STAGE1_BYTES_PER_PIXEL_GROUP * groups * i.pixels()


def jobs(inputs: Sequence[Input], grouping: Grouping | None, out: Path,
         stages: Sequence[int]) -> list[Job]:
    """Every job of the run, in a sensible start order (stage 1 by exposure time)."""
    by_base = {i.base: i for i in inputs}
    made: dict[str, tuple[Path, str]] = {}  # exposure base, level -> (product, job id)
    plan: list[Job] = []
    ordered = sorted(inputs, key=lambda i: (str(i.header.get("EXPSTART", "")), i.base))
    if 1 in stages:
        chains: dict[tuple[str, str, str, str], str] = {}
        for i in ordered:
            if i.stage != 1:
                continue
            rate = out / f"{i.base}_rate.fits"
            job = Job(f"1/{i.base}", 1, "Detector1Pipeline", i.base, i.path, [i.path], [rate],
                      memory=_stage1_memory(i), given_inputs=[i.path])
            chain = (str(i.header.get("PROGRAM", "")), str(i.header.get("OBSERVTN", "")),
                     str(i.header.get("VISIT", "")), str(i.header.get("DETECTOR", "")))
            if chain in chains:
                job.after = [chains[chain]]
            chains[chain] = job.id
            made[f"{i.base}/2"] = (rate, job.id)
            plan.append(job)

    def member(base: str, level: int) -> tuple[Path, str | None, bool]:
        """Where stage `level` reads exposure `base`: a product of this plan or an input."""
        if f"{base}/{level}" in made:
            path, job_id = made[f"{base}/{level}"]
            return path, job_id, False
        i = by_base.get(base)
        if i is not None and i.stage == level:
            return i.path, None, True
        raise BadInput(f"an association names {base}, which is neither among the inputs at "
                       f"stage {level} nor made by an earlier stage")

    if grouping is None:
        return plan
    start = {i.base: (str(i.header.get("EXPSTART", "")), i.base) for i in inputs}
    if 2 in stages:
        level2 = sorted(dedupe_level2(grouping.level2),
                        key=lambda a: start.get(a.science[0], ("", a.science[0])))
        for asn in level2:
            if not any(b in by_base or f"{b}/2" in made for b in asn.science):
                continue
            sci = by_base.get(asn.science[0])
            if sci is None or sci.stage > 2:
                continue
            needs, given, files = [], [], []
            for kind, bases in (("science", asn.science), ("background", asn.background)):
                for b in bases:
                    path, job_id, is_given = member(b, 2)
                    files.append((kind, path))
                    needs += [job_id] if job_id else []
                    given += [path] if is_given else []
            suffix = "calints" if files[0][1].name.endswith("_rateints.fits") else "cal"
            cal = out / f"{asn.science[0]}_{suffix}.fits"
            target = out / "asn" / f"{asn.name}_{asn.asn_type or 'image2'}_asn.json"
            pipeline = pipeline_for(2, [sci])
            nints = int(sci.header.get("NINTS") or 1)
            # Spec2 also writes the resampled 2-D and the extracted 1-D spectrum of slit
            # modes (MIRI LRS fixed slit: _s2d, _x1d); other modes make other sets
            optional = [] if pipeline == "Image2Pipeline" else \
                [out / f"{asn.science[0]}_{s}.fits" for s in ("s2d", "x1d")]
            plan.append(Job(f"2/{asn.name}", 2, pipeline, asn.name, target,
                            [p for _k, p in files], [cal], needs=needs,
                            memory=BASE_BYTES + STAGE2_BYTES_PER_PIXEL * sci.pixels() * nints,
                            asn=_asn_document(asn, files), given_inputs=given,
                            optional=optional))
            made[f"{asn.science[0]}/3"] = (cal, f"2/{asn.name}")
    if 3 in stages:
        for asn in grouping.level3:
            files, needs, given, members = [], [], [], []
            for b in asn.science:
                try:
                    path, job_id, is_given = member(b, 3)
                except BadInput:
                    if grouping.source == "given":
                        raise BadInput(f"{Path(asn.source).name} names {b}, which is not "
                                       "among the inputs") from None
                    continue  # not reprocessed here (the rules also list other members)
                files.append(("science", path))
                needs += [job_id] if job_id else []
                given += [path] if is_given else []
                members.append(by_base.get(b))
            if not files:
                continue
            known = [m for m in members if m is not None]
            pipeline = pipeline_for(3, known)
            optional = []
            if pipeline == "Image3Pipeline":  # a field with no source has no catalog
                products = [out / f"{asn.name}_i2d.fits"]
                optional = [out / f"{asn.name}_cat.ecsv"]
            else:  # spectra: the 1-D spectrum (run end to end: MIRI LRS fixed slit, whose
                # Spec3 also writes the combined 2-D _s2d; _c1d where the mode combines)
                products = [out / f"{asn.name}_x1d.fits"]
                optional = [out / f"{asn.name}_{s}.fits" for s in ("s2d", "c1d")]
            pixels = sum(m.pixels() for m in known) or len(files) * 2048 * 2048
            target = out / "asn" / f"{asn.name}_{asn.asn_type or 'image3'}_asn.json"
            plan.append(Job(f"3/{asn.name}", 3, pipeline, asn.name, target,
                            [p for _k, p in files], products, needs=needs,
                            memory=BASE_BYTES + STAGE3_BYTES_PER_MEMBER_PIXEL * pixels,
                            asn=_asn_document(asn, files), given_inputs=given,
                            optional=optional))
    return plan


def _asn_document(asn: Association, files: list[tuple[str, Path]]) -> dict[str, Any]:
    """The association as jwenv writes it: absolute member paths (Image2 opens members
    relative to the working directory), science and background members only (Image3 of
    releases before 0.16.1 loads every member), and `asn_pool` (0.15.1 needs it)."""
    doc = {"asn_type": asn.asn_type or ("image2" if asn.level == 2 else "image3"),
           "asn_rule": f"jwenv {asn.level}", "asn_pool": "jwenv", "asn_id": "jwenv",
           "program": "", "target": "", "version_id": None, "code_version": "",
           "degraded_status": "No known degraded exposures in association.",
           "constraints": "", "products": []}
    doc.update({k: v for k, v in asn.data.items() if k != "products"})
    doc["products"] = [{"name": asn.name, "members": [
        {"expname": str(path), "exptype": kind} for kind, path in files]}]
    return doc


def write_associations(plan: Sequence[Job]) -> None:
    for job in plan:
        if job.asn is not None:
            job.target.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(job.target, job.asn)


def fingerprint(paths: Sequence[Path], *extra: str) -> str:
    """Names, sizes and times of `paths` (and `extra`): what makes a cached answer stale."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]
