"""Jupyter kernels of environments: `jwenv kernel NAME`, `kernel list`, `kernel remove`.

A kernel is the environment's own python running ipykernel, registered as a kernelspec
("jwst 1.20.2 (jwst_1464.pmap)") whose `env` carries what a run gets: VIRTUAL_ENV, PATH
with the environment's bin/ first, and every CRDS variable (Env.environ), so CRDS is
configured before the notebook imports jwst. ipykernel is added to the environment like
any package (packages.pip, with the release's date cut-off: an era-compatible version).

jwenv writes the kernelspec itself (kernel.json), so it needs nothing of Jupyter: it goes
where Jupyter looks for user kernelspecs, `$JUPYTER_DATA_DIR/kernels/` or the platform's
Jupyter data directory, and is marked `metadata.jwenv` so that `list` and `remove` only
ever see jwenv's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jwenv import crds, packages
from jwenv.errors import EnvNotFound, JwenvError
from jwenv.store import write_json_atomic

if TYPE_CHECKING:
    from jwenv.envs import Env

PREFIX = "jwenv-"


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Jupyter's user data directory (as jupyter_core computes it)."""
    environ = os.environ if environ is None else environ
    if environ.get("JUPYTER_DATA_DIR"):
        return Path(environ["JUPYTER_DATA_DIR"]).expanduser()
    home = Path(environ.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if os.name == "nt":
        return Path(environ.get("APPDATA") or home) / "jupyter"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "jupyter"


def kernel_name(env_name: str, context: str | None = None) -> str:
    """`jwenv-1.20.2`, or `jwenv-1.20.2-jwst_1413` for a kernel on another context
    (kernelspec names allow letters, digits, `.`, `_` and `-`)."""
    name = PREFIX + env_name + (f"-{context.removesuffix('.pmap')}" if context else "")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


@dataclass
class Kernel:
    name: str
    path: Path  # the kernelspec's directory
    display_name: str
    env: str
    context: str
    python: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "display_name": self.display_name,
                "env": self.env, "context": self.context, "python": self.python}


def display_name(env: Env, context: str) -> str:
    shown = f"jwst {env.manifest.jwst_version} ({context or 'no CRDS context'})"
    return shown if env.name == env.manifest.jwst_version else f"{shown} [{env.name}]"


def kernel_environ(env: Env, *, context: str | None = None,
                   offline: bool | None = None) -> dict[str, str]:
    """The kernelspec's `env`: what a run gets (bin/ first on PATH, VIRTUAL_ENV, CRDS),
    and no other Python's path (empty values: Python ignores them)."""
    full = env.environ(context=context, offline=offline)
    keys = {"VIRTUAL_ENV", "PATH", "JWENV_ENV",
            *env.crds_settings(context=context, offline=offline).variables()}
    out = {k: full[k] for k in sorted(keys) if k in full}
    out.update(PYTHONPATH="", PYTHONHOME="")
    return out


def install(env: Env, *, context: str | None = None, offline: bool | None = None,
            log: Path, environ: Mapping[str, str] | None = None,
            on_event=None) -> Kernel:
    """Add ipykernel to the environment (era-compatible, its versions kept) if it lacks
    it, and register the kernelspec; returns it. Again with the same context: updated."""
    note = on_event or (lambda _k, _d: None)
    ctx = crds.validate_context(context) if context else env.context
    if not packages.has(env, "ipykernel"):
        note("install", f"adding ipykernel to {env.name} (its installed versions kept)")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        try:
            packages.pip(env, ["install", "ipykernel"], era=True, log=log)
        except packages.PipFailed as exc:
            raise JwenvError(f"{exc} (log: {log})") from None
    name = kernel_name(env.name, ctx if ctx != env.context else None)
    where = data_dir(environ) / "kernels" / name
    where.mkdir(parents=True, exist_ok=True)
    shown = display_name(env, ctx)
    write_json_atomic(where / "kernel.json", {
        "argv": [str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": shown,
        "language": "python",
        "interrupt_mode": "signal",
        "env": kernel_environ(env, context=context, offline=offline),
        "metadata": {"debugger": True, "jwenv": {
            "env": env.name, "jwst": env.manifest.jwst_version, "context": ctx}},
    })
    return Kernel(name, where, shown, env.name, ctx, str(env.python))


def _read(path: Path) -> Kernel | None:
    try:
        spec = json.loads((path / "kernel.json").read_text())
        mine = spec["metadata"]["jwenv"]
        return Kernel(path.name, path, spec["display_name"], mine["env"], mine["context"],
                      spec["argv"][0])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def listed(environ: Mapping[str, str] | None = None) -> list[Kernel]:
    """jwenv's kernelspecs in Jupyter's user data directory."""
    root = data_dir(environ) / "kernels"
    if not root.is_dir():
        return []
    found = (_read(p) for p in sorted(root.iterdir()) if p.name.startswith(PREFIX))
    return [k for k in found if k is not None]


def remove(name: str, environ: Mapping[str, str] | None = None, *,
           missing_ok: bool = False) -> list[Kernel]:
    """Remove the kernels of environment `name` (or the kernelspec named `name`)."""
    gone = [k for k in listed(environ) if name in (k.env, k.name)]
    if not gone and not missing_ok:
        raise EnvNotFound(f"no jwenv kernel of {name!r} (see `jwenv kernel list`)")
    for k in gone:
        shutil.rmtree(k.path, ignore_errors=True)
    return gone
