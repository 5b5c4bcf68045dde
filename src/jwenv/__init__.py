"""jwenv: side-by-side jwst pipeline environments with pinned CRDS contexts.

The Python API a batch worker uses::

    from jwenv import Store, Env
    env = Env.install("1.20.2")          # or Env.get("1.20.2") if already there
    env.run(["strun", "jwst.pipeline.Detector1Pipeline", "x_uncal.fits"])
    env.environ(offline=True)            # the variables a run gets
"""

from jwenv.envs import Env, InstallOptions
from jwenv.errors import JwenvError
from jwenv.store import Store

__all__ = ["Env", "InstallOptions", "JwenvError", "Store"]
__version__ = "0.1.0"
