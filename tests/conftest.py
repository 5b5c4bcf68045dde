"""Shared fixtures.

Unit tests run with no network: the package index URL points at a closed local
port, uv is offline, and the only jwst they install is the fake one built by
fakejwst.py. Integration tests (marked `integration`) install real releases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakejwst import build_source_tree, build_wheel

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


@pytest.fixture
def home(tmp_path, monkeypatch, request):
    """A private jwenv store; unit tests also get a dead index and offline uv."""
    h = tmp_path / "jwenv-home"
    monkeypatch.setenv("JWENV_HOME", str(h))
    for var in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT", "JWENV_OFFLINE",
                "JWENV_JWST_GIT"):
        monkeypatch.delenv(var, raising=False)
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("JWENV_PYPI_URL", "http://127.0.0.1:9/pypi/jwst/json")
        monkeypatch.setenv("UV_OFFLINE", "1")
    return h


@pytest.fixture(scope="session")
def fake_wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheels"))


@pytest.fixture
def fake_source(tmp_path) -> Path:
    return build_source_tree(tmp_path / "jwst-src")


def jwenv(*args: str, env: dict | None = None, input: str | None = None,
          check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the jwenv CLI as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "jwenv", *args], capture_output=True,
                          text=True, env=env if env is not None else dict(os.environ),
                          input=input, check=check, cwd=cwd)


@pytest.fixture
def installed(home, fake_wheel):
    """The fake jwst installed as environment `9.9.9`."""
    out = jwenv("install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import")
    assert out.returncode == 0, out.stderr
    return "9.9.9"


def strun_report(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# -- real releases (integration) ----------------------------------------------------
class RealEnv:
    """A real installed jwst environment, as integration tests use it."""

    def __init__(self, env) -> None:
        self.env = env
        self.name = env.name
        self.python = env.python
        self.bin = env.bin

    def environ(self, **extra: str) -> dict[str, str]:
        return self.env.environ(extra=extra)


@pytest.fixture(scope="session")
def real_home(tmp_path_factory) -> Path:
    """One store for the whole integration session (environments are reused)."""
    return Path(os.environ.get("JWENV_TEST_HOME") or tmp_path_factory.mktemp("real-home"))


@pytest.fixture(scope="session")
def jwst_mirror(tmp_path_factory) -> str:
    """A jwst git repository holding tag 0.15.1, cloned from the shared bundle.

    GitHub is unreachable here; an air-gapped site points JWENV_JWST_GIT at its own
    mirror the same way.
    """
    bundle = SHARED / "jwst-git" / "jwst-0.15.1.bundle"
    if not bundle.is_file():
        pytest.fail(f"{bundle} is missing: the 0.15.1 tests need ../shared beside the checkout")
    clone = tmp_path_factory.mktemp("mirror") / "jwst"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(clone)], check=True)
    url = clone.as_uri()
    os.environ["JWENV_JWST_GIT"] = url  # Env.install reads it when resolving 0.15.1
    return url


@pytest.fixture(scope="session")
def real_env(real_home):
    """``real_env("1.20.2")``: that release, installed by jwenv itself."""
    from jwenv.envs import Env, InstallOptions
    from jwenv.store import Store

    store = Store(real_home, real_home / "cache")
    cache: dict[str, RealEnv] = {}

    def get(version: str, **options) -> RealEnv:
        if version not in cache:
            env = Env.install(version, InstallOptions(**options), store=store)
            cache[version] = RealEnv(env)
        return cache[version]

    return get
