"""Scripts that run *inside* managed environments, by the environment's own Python.

Each is a standalone file (Python 3.6+, the standard library plus what the
release has) that never imports jwenv, and prints one JSON object as its last
stdout line:

- ``health_check.py``: the health check (jwenv.health);
- ``make_asn.py``: associations and pipeline facts, with the release's own tools;
- ``make_program.py``: the synthetic offline program and its CRDS cache (jwenv.offline);
- ``make_spectra.py``: the synthetic MIRI LRS fixed-slit program and its cache (jwenv.offline);
- ``worker.py``: a warm worker that runs strun jobs in-process (jwenv.workers);
- ``bestrefs.py``: best references under two contexts, by the release's crds (jwenv.refs);
- ``crds_sync.py``: fetch (offline: check) the references inputs need (jwenv.refs.sync).

The CRDS variables they run with come from jwenv.crds, like every run's.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def path(name: str) -> Path:
    """The file of script `name` (e.g. "health_check"), to run as `<env python> PATH`."""
    found = _HERE / f"{name}.py"
    if not found.is_file():
        raise FileNotFoundError(found)
    return found
