"""jwenv: side-by-side jwst pipeline environments with pinned CRDS contexts.

The Python API a batch worker uses::

    from jwenv import Env, InstallOptions
    env = Env.install("1.20.2")          # cached: returns at once when present
    env.run(["strun", "jwst.pipeline.Detector1Pipeline", "x_uncal.fits"])
    env.environ(offline=True)            # the variables a run gets
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Env", "InstallOptions", "JwenvError", "Store"]

_LAZY = {"Env": "jwenv.envs", "InstallOptions": "jwenv.installer",
         "JwenvError": "jwenv.errors", "Store": "jwenv.store"}


def __getattr__(name: str) -> Any:
    # Lazy so `jwenv run` and `jwenv diff` do not pay for modules they never use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
