"""Shared fixtures.

`real_env` is the integration tests' way to get a real, installed jwst release.
It is a stand-in until jwenv's own Env API lands; its contract stays the same:
``real_env("1.20.2")`` returns an object with ``.python`` (Path to the env's
interpreter), ``.bin`` (its bin/ directory) and ``.environ(**extra)`` (a copy of
os.environ with the env's bin/ first on PATH and VIRTUAL_ENV set, plus extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class RealEnv:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def environ(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.root)
        env.update(extra)
        return env


_PYTHON_FOR = {"3.0.0": "3.11", "1.20.2": "3.11"}


@pytest.fixture(scope="session")
def real_env(tmp_path_factory):
    cache: dict[str, RealEnv] = {}
    base = tmp_path_factory.mktemp("real-envs")

    def get(version: str) -> RealEnv:
        if version not in cache:
            root = base / version
            uv = [sys.executable, "-m", "uv"]
            subprocess.run([*uv, "venv", "-q", "-p", _PYTHON_FOR.get(version, "3.11"), str(root)],
                           check=True)
            subprocess.run([*uv, "pip", "install", "-q", "-p", str(root / "bin" / "python"),
                            f"jwst=={version}"], check=True)
            cache[version] = RealEnv(root)
        return cache[version]

    return get
