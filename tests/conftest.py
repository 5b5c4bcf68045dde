"""Fixtures (shared helpers are in helpers.py).

Every test runs against a private jwenv store (`home`, autouse), so none can
write into the user's. Unit tests also run with no network: the package index
URL points at a closed local port, uv is offline, and the only jwst they install
is the fake one built by fakejwst.py. Integration tests (marked `integration`)
install real releases into one session store that they share.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fakejwst import build_source_tree, build_wheel
from helpers import BASE_PYTHON, SHARED, Archive, RealEnv, archive_env, jwenv

ISOLATED_VARS = ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT", "JWENV_OFFLINE",
                 "JWENV_JWST_GIT")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, request):
    """A private jwenv store; unit tests also get a dead index and offline uv."""
    h = tmp_path / "jwenv-home"
    monkeypatch.setenv("JWENV_HOME", str(h))
    for var in ISOLATED_VARS:
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


@pytest.fixture(scope="session")
def fake_env_template(tmp_path_factory, fake_wheel) -> Path:
    """The fake jwst installed once by jwenv itself; `installed` copies it per test."""
    template = tmp_path_factory.mktemp("fake-home")
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARS}
    env.update(JWENV_HOME=str(template), UV_OFFLINE="1",
               JWENV_PYPI_URL="http://127.0.0.1:9/pypi/jwst/json")
    out = jwenv("install", str(fake_wheel), "--python", str(BASE_PYTHON), "--check", "import",
                env=env)
    assert out.returncode == 0, out.stderr
    return template / "envs" / "9.9.9"


@pytest.fixture
def installed(home, fake_env_template):
    """The fake jwst as environment `9.9.9` of this test's store (a copy of the template:
    uv's venvs are relocatable, and the manifest names no path of its own)."""
    shutil.copytree(fake_env_template, home / "envs" / "9.9.9", symlinks=True)
    return "9.9.9"


# -- real releases (integration) ----------------------------------------------------
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
    return clone.as_uri()


@pytest.fixture(scope="session")
def dms_mirror(tmp_path_factory) -> Path:
    """A plain-directory clone of the DMS bundle: every tagged git-only release (0.7.7-0.16.2,
    1.13.0-1.13.3), given to jwenv as `JWENV_JWST_GIT=<directory>`, as a site's mirror."""
    bundle = SHARED / "jwst-git" / "jwst-dms.bundle"
    if not bundle.is_file():
        pytest.fail(f"{bundle} is missing: the git-only release tests need ../shared")
    clone = tmp_path_factory.mktemp("dms-mirror") / "jwst"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(clone)], check=True)
    return clone


@pytest.fixture(scope="session")
def dms_env(real_home, dms_mirror):
    """``dms_env("0.13.8", check="import")``: a git-only release installed by jwenv from the
    DMS mirror into the session store (shared with real_env)."""
    from jwenv import Env, InstallOptions
    from jwenv.store import Store

    store = Store(real_home, real_home / "cache")
    cache: dict[str, RealEnv] = {}

    def get(version: str, **options) -> RealEnv:
        if version not in cache:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("JWENV_JWST_GIT", str(dms_mirror))
                env = Env.install(version, InstallOptions(**options), store=store)
            cache[version] = RealEnv(env)
        return cache[version]

    return get


@pytest.fixture(scope="session")
def real_env(real_home, jwst_mirror):
    """``real_env("1.20.2")``: that release, installed by jwenv itself into the session
    store (git-only releases, such as 0.15.1, from the bundle's mirror)."""
    from jwenv import Env, InstallOptions
    from jwenv.store import Store

    store = Store(real_home, real_home / "cache")
    cache: dict[str, RealEnv] = {}

    def get(version: str, **options) -> RealEnv:
        if version not in cache:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("JWENV_JWST_GIT", jwst_mirror)  # read when resolving 0.15.1
                env = Env.install(version, InstallOptions(**options), store=store)
            cache[version] = RealEnv(env)
        return cache[version]

    return get


@pytest.fixture(scope="session")
def archive(real_env, real_home, tmp_path_factory):
    """Archive-like products: the three-exposure program through stages 1-3 under 3.0.0
    and jwst_9000.pmap, with one step parameter set (jump.rejection_threshold=5); its
    cache also holds jwst_9001.pmap, whose only change is the (F200W) flat."""
    from jwenv import offline

    env = real_env("3.0.0")
    root = tmp_path_factory.mktemp("archive")
    program = offline.prepare([env.env], root / "program", program=True,
                              second_context="F200W")
    out = root / "runs"
    proc = jwenv("reprocess", "3.0.0", *map(str, program.uncal), "-o", str(out), "--offline",
                 "--crds-context", program.context, "--steps.jump.rejection_threshold=5",
                 env=archive_env(real_home, program))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Archive(program, out / "3.0.0")


@pytest.fixture(scope="session")
def whole_program(real_env, tmp_path_factory):
    """A whole program: 2 observations (2 targets) x 2 filters x 2 dithers, a background
    per filter; made by 1.20.2, readable by 3.0.0 too."""
    from jwenv import offline

    envs = [real_env("1.20.2").env, real_env("3.0.0").env]
    return offline.prepare(envs, tmp_path_factory.mktemp("whole"), whole=offline.Whole())
