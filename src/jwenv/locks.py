"""Exact locks: `jwenv export NAME` writes one, `jwenv install --lock FILE` rebuilds from it.

A lock is a pip requirements file of exact pins (what `uv pip freeze` saw in the
environment) with a header of `# key: value` lines carrying what else a faithful
rebuild needs on another machine: the Python version, the CRDS context, and the
build settings of the strategy that made it (old sdists only build with the era's
numpy and setuptools, so build constraints and the date cut-off travel with it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jwenv.backends import InstallPlan
from jwenv.errors import BadInput
from jwenv.store import Manifest
from jwenv.strategies import WHEELS_ONLY

MAGIC = "# jwenv lock 1"


def export_lock(manifest: Manifest) -> str:
    plan = manifest.plan or {}
    header = {
        "jwst": manifest.jwst_version,
        "python": manifest.python_version,
        "crds-context": manifest.crds_context,
        "strategy": manifest.strategy,
        "source": manifest.source,
        "requested": manifest.requested,
        "build-constraints": json.dumps(plan.get("build_constraints") or []),
        "exclude-newer": plan.get("exclude_newer") or "",
        "exclude-newer-packages": json.dumps(plan.get("exclude_newer_packages") or {}),
        # environments built before plans recorded it had the same wheels-only stack
        "only-binary": json.dumps(plan.get("only_binary", list(WHEELS_ONLY))),
        # what old git-only releases also need to build and run (strategies.md)
        "overrides": json.dumps(plan.get("overrides") or []),
        "build-helpers": json.dumps(plan.get("build_helpers") or []),
        "build-requirements": json.dumps(plan.get("build_requirements") or {}),
        "build-variables": json.dumps(plan.get("build_variables") or {}),
        "site-hooks": json.dumps(plan.get("site_hooks") or []),
        # what `jwenv pip` and `jwenv kernel` added (their pins are among the lines below)
        "added": json.dumps(manifest.added),
        "created": manifest.created,
    }
    lines = [MAGIC, *(f"# {k}: {v}" for k, v in header.items()), *manifest.packages]
    return "\n".join(lines) + "\n"


@dataclass
class Lock:
    header: dict[str, str]
    pins: list[str] = field(default_factory=list)

    @property
    def jwst_version(self) -> str:
        return self.header.get("jwst", "")

    @property
    def python(self) -> str:
        return self.header.get("python", "")

    @property
    def context(self) -> str:
        return self.header.get("crds-context", "")

    @property
    def added(self) -> list[str]:
        return list(json.loads(self.header.get("added") or "[]"))

    def _field(self, key: str, default: str) -> Any:
        """A JSON header field; a hand-edited one that does not parse is one line."""
        try:
            return json.loads(self.header.get(key) or default)
        except ValueError as exc:
            raise BadInput(f"lock header '# {key}:' is not valid JSON ({exc})") from None

    def plan(self) -> InstallPlan:
        when = self.header.get("exclude-newer") or None
        try:
            exclude_newer = datetime.fromisoformat(when) if when else None
        except ValueError:
            raise BadInput(f"lock header '# exclude-newer:' is not a date: {when!r}") from None
        return InstallPlan(
            strategy="lock",
            requirements=list(self.pins),
            build_constraints=self._field("build-constraints", "[]"),
            exclude_newer=exclude_newer,
            exclude_newer_packages=self._field("exclude-newer-packages", "{}"),
            only_binary=self._field("only-binary", json.dumps(list(WHEELS_ONLY))),
            overrides=self._field("overrides", "[]"),
            build_helpers=self._field("build-helpers", "[]"),
            build_requirements=self._field("build-requirements", "{}"),
            build_variables=self._field("build-variables", "{}"),
            site_hooks=self._field("site-hooks", "[]"),
            notes=[f"from lock of jwst {self.jwst_version}"],
        )


def _by_name(lines: list[str]) -> dict[str, str]:
    """`name==1.0` and `name @ url` lines by normalised name (PEP 503)."""
    out = {}
    for line in lines:
        name = re.split(r"\s*(?:==|@|===)\s*", line, maxsplit=1)[0]
        out[re.sub(r"[-_.]+", "-", name).lower()] = line.strip()
    return out


def differences(lock: Lock, manifest: Manifest, context: str | None = None) -> list[str]:
    """How an installed environment differs from a lock: packages, Python, CRDS context
    (`context`: the one asked for, default the lock's). Empty when they are the same."""
    found: list[str] = []
    want, have = _by_name(lock.pins), _by_name(manifest.packages)
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            found.append(f"{have.get(name) or f'no {name}'} installed, "
                         f"{want.get(name) or f'no {name}'} in the lock")
    if lock.python and lock.python != manifest.python_version:
        found.append(f"Python {manifest.python_version} installed, {lock.python} in the lock")
    context = context or lock.context
    if context and context != manifest.crds_context:
        found.append(f"CRDS context {manifest.crds_context or '(none)'} pinned, {context} "
                     "asked for")
    return found


def read_lock(path: Path) -> Lock:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read lock file {path}: {exc.strerror}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != MAGIC:
        raise BadInput(f"{path} is not a jwenv lock (write one with `jwenv export NAME`)")
    header: dict[str, str] = {}
    pins: list[str] = []
    for line in lines[1:]:
        if line.startswith("# ") and ": " in line:
            key, value = line[2:].split(": ", 1)
            header[key.strip()] = value.strip()
        elif line.strip() and not line.startswith("#"):
            pins.append(line.strip())
    if not any(p.split("==")[0].split(" @ ")[0].strip().lower() == "jwst" for p in pins):
        raise BadInput(f"{path} pins no jwst")
    return Lock(header, pins)
