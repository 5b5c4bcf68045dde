"""`jwenv reproduce`: rerun what made archive products, and say whether they come out the same.

For each product: the release and CRDS context that made it (`like.maker_of`), the
inputs among those given that lead to it (its exposure, or the members of its level-3
product by the release's own association rules), the chain from the inputs' level to
the product's, with the step parameters the product recorded (jwst >= 1.18's
processing log) and any the user adds; then the new product against the archive's,
with the tolerances and ignored keywords of jwst's regression tests. The verdict says
why it differs in the order a person checks: reference files, step statuses, step
parameters, then data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwenv import compare, crds, provenance
from jwenv import plan as planning
from jwenv import reprocess as rp
from jwenv.envs import Env
from jwenv.errors import BadInput
from jwenv.like import Maker, maker_of

# suffix of a product -> the stage that made it
PRODUCT_STAGE = {"rate": 1, "rateints": 1, "cal": 2, "calints": 2, "i2d": 3}
# Keywords a rerun cannot share with the archive's product besides those jwst's regression
# tests ignore: the names of the association pool and table it was run from.
IGNORED_KEYWORDS = (*compare.DEFAULT_IGNORED, "NAXIS1", "TFORM*", "ASNPOOL", "ASNTABLE")
IGNORED_FIELDS = (*compare.DEFAULT_IGNORED_FIELDS, "ASNPOOL", "ASNTABLE")  # level 3's HDRTAB
# Parameters that are not passed back: how a step is named or configured, not how it calibrates
NOT_PASSED = frozenset({"class", "name", "config_file"})


@dataclass
class Target:
    """One archive product to reproduce."""

    product: Path
    stage: int
    name: str  # exposure base (stages 1-2) or level-3 product name
    maker: Maker
    facts: provenance.Provenance


@dataclass
class Verdict:
    product: Path
    env: str
    context: str
    verdict: str  # "reproduced", "differs" or "error"
    reasons: list[str] = field(default_factory=list)
    reproduction: Path | None = None
    comparison: Any = None  # compare.Comparison

    @property
    def exit_code(self) -> int:
        return {"reproduced": 0, "differs": 1}.get(self.verdict, 2)

    def to_dict(self) -> dict[str, Any]:
        return {"product": str(self.product), "env": self.env, "context": self.context,
                "verdict": self.verdict, "reasons": self.reasons,
                "reproduction": str(self.reproduction) if self.reproduction else None,
                "comparison": self.comparison.to_dict() if self.comparison else None}


def targets(products: Sequence[Path], index: Callable[[], Any] | None = None) -> list[Target]:
    """Validate the products (one-line errors) and find what made each."""
    out = []
    for raw in products:
        path = Path(raw).absolute()
        facts = provenance.read(path)
        if facts.kind != "calibrated":
            raise BadInput(f"{path.name} is a raw exposure: nothing made it to reproduce")
        suffix = path.name.removesuffix(".gz").removesuffix(".fits").rsplit("_", 1)[-1]
        if suffix not in PRODUCT_STAGE:
            raise BadInput(f"{path.name}: jwenv reproduces *_rate, *_rateints, *_cal, "
                           "*_calints and *_i2d products")
        stage = PRODUCT_STAGE[suffix]
        name = planning.exposure_base(path.name) if stage < 3 else \
            path.name.split(f"_{suffix}.fits", 1)[0]
        out.append(Target(path, stage, name, maker_of(path, index), facts))
    return out


def recorded_arguments(facts: provenance.Provenance, pipeline: str) -> list[str]:
    """`--steps.STEP.PARAM=VALUE` for what the product's log says the pipeline ran with
    (nothing for products of jwst < 1.18, which record no parameters)."""
    out: list[str] = []
    for log in facts.logs or []:
        if log.step != pipeline or not log.parameters:
            continue
        for step, pars in (log.parameters.get("steps") or {}).items():
            if not isinstance(pars, dict):
                continue
            for key, value in provenance.science_parameters(pars).items():
                if key in NOT_PASSED or value is None or value == "" \
                        or isinstance(value, (list, dict)):
                    continue
                out.append(f"--steps.{step}.{key}={value}")
    return out


def _matching(target: Target, inputs: list[planning.Input]) -> list[planning.Input]:
    if target.stage < 3:
        found = [i for i in inputs if i.base == target.name and i.stage <= target.stage]
        if not found:
            raise BadInput(f"{target.product.name}: no input is exposure {target.name} at a "
                           f"level before it (inputs: "
                           f"{', '.join(sorted(i.path.name for i in inputs))})")
        return found
    return list(inputs)  # the release's rules pick the members (checked after planning)


def reproduce(products: Sequence[Path], inputs: Sequence[Path], out_root: Path, *,
              get_env: Callable[[Maker], Env], context: str | None = None,
              step_args: Sequence[str] = (), offline: bool | None = None, jobs: int = 1,
              memory: int, on_event: Callable[[str, str], None] | None = None,
              index: Callable[[], Any] | None = None) -> list[Verdict]:
    """Reproduce each product from `inputs` under what made it (see module docstring).
    `get_env` finds or installs the environment of a maker; `context` overrides the
    product's CRDS context; `step_args` add to (and win over) its recorded parameters."""
    found = targets(products, index)
    items = planning.classify(list(inputs))
    planning.split_step_args(step_args)
    if context:
        context = crds.validate_context(context)
    by_maker: dict[tuple[str, str], list[Target]] = {}
    for t in found:
        _matching(t, items)  # every product has its inputs, before anything runs
        by_maker.setdefault((t.maker.version, t.maker.context), []).append(t)
    verdicts: list[Verdict] = []
    for group in by_maker.values():
        env = get_env(group[0].maker)
        settings = env.crds_settings(context=context, offline=offline)
        if settings.offline and not crds.mappings_cached(settings.path, settings.context):
            raise BadInput(f"CRDS context {settings.context} is not in the local CRDS cache "
                           f"{settings.path} (offline: nothing can be downloaded)")
        chosen = {i.path: i for t in group for i in _matching(t, items)}
        wanted = list(chosen.values())
        stages = list(range(min(i.stage for i in wanted), max(t.stage for t in group) + 1))
        recorded: list[str] = []
        for t in group:
            pipeline = planning.pipeline_for(t.stage, [i for i in wanted if
                                                       i.base == t.name] or wanted)
            recorded += [a for a in recorded_arguments(t.facts, pipeline)
                         if a not in recorded]
        overridden = {a.split("=", 1)[0] for a in step_args}
        arguments = [a for a in recorded if a.split("=", 1)[0] not in overridden]
        plan = rp.make_plan(env, wanted, out_root, stages=stages,
                            step_args=[*arguments, *step_args], context=context,
                            offline=offline, on_event=on_event)
        made = {j.name for j in plan.jobs if j.stage == 3}
        for t in group:
            if t.stage == 3 and t.name not in made:
                raise BadInput(f"{t.product.name}: the inputs make no level-3 product of that "
                               f"name under jwst {env.manifest.jwst_version}'s rules (they "
                               f"make: {', '.join(sorted(made)) or 'none'})")
        (result,) = rp.run_plans([plan], jobs=jobs, memory=memory, context=context,
                                 offline=offline, on_event=on_event)
        ctx = plan.stamp["context"]
        for t in group:
            verdicts.append(_verdict(t, result, env, ctx))
    return verdicts


def _verdict(t: Target, result: rp.Result, env: Env, context: str) -> Verdict:
    new = result.output_dir / t.product.name.removesuffix(".gz")
    v = Verdict(t.product, env.name, context, "error", reproduction=new)
    if not new.is_file():
        run = next((r for r in result.runs if r.name == t.name and r.stage == t.stage), None)
        why = run.error if run and run.error else f"{new.name} was not made"
        v.reasons = [f"the rerun failed: {why}"]
        return v
    comparison = compare.compare_paths(t.product, new, ignore_keywords=IGNORED_KEYWORDS,
                                       ignore_fields=IGNORED_FIELDS)
    v.comparison = comparison
    if comparison.exit_code() == 2:
        v.reasons = [comparison.error or next(f.error for f in comparison.files if f.error)]
        return v
    v.reasons = reasons(comparison, t.facts, provenance.read(new))
    v.verdict = "reproduced" if not v.reasons else "differs"
    return v


def reasons(comparison: Any, old: provenance.Provenance,
            new: provenance.Provenance) -> list[str]:
    """Why two products differ, in the order a person checks: reference files, step
    statuses, step parameters, then data."""
    (fc,) = comparison.files
    prov = fc.provenance
    out = [f"{d.keyword}: {d.a} → {d.b}" for d in (prov.reference_files if prov else [])]
    out += [f"{d.keyword}: {d.a} → {d.b}" for d in (prov.step_status if prov else [])]
    groups = provenance.group([old, new])
    if len(groups) == 2:
        for key, (a, b) in provenance.parameter_differences(groups).items():
            if a is not None and b is not None:
                out.append(f"parameter {key}: {a} → {b}")
    for image in fc.images:
        if not image.identical:
            out.append(f"data {image.extension}: {image.n_beyond_tolerance} value(s) beyond "
                       f"tolerance, max |Δ| {image.max_abs_diff:.3g}")
    for table in fc.tables:
        if not table.identical:
            out.append(f"table {table.name} differs")
    out += [f"header {d.hdu} {d.keyword}: {d.a} → {d.b}" for d in fc.headers
            if not d.keyword.startswith(("R_", "S_"))]
    out += [f"extension {h} only in the archive's product" for h in fc.hdus_only_in_a]
    out += [f"extension {h} only in the rerun's product" for h in fc.hdus_only_in_b]
    return out
