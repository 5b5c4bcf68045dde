"""Synthetic NIRCam programs with a local CRDS cache, for running jwst releases offline.

``make_program.py`` is a standalone script: it runs under a managed environment's own
interpreter (so the release's own datamodels write every file) and never imports jwenv.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT: Path = Path(__file__).with_name("make_program.py")
"""The generator script, to run as ``<env>/bin/python SCRIPT --out DIR``."""

CONTEXT = "jwst_9000.pmap"
"""The hand-made CRDS context the generated cache serves."""

OFFLINE_CRDS_ENV: dict[str, str] = {
    "CRDS_SERVER_URL": "https://jwst-serverless-mode.stsci.edu",
    "CRDS_CONTEXT": CONTEXT,
    "CRDS_IGNORE_MAPPING_CHECKSUM": "1",
}
"""Environment for an offline run; add ``CRDS_PATH=<out>/crds``."""

__all__ = ["CONTEXT", "OFFLINE_CRDS_ENV", "SCRIPT"]
