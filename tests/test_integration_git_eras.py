"""Git-only DMS releases from before 0.15, and 1.13.0, install from a site's mirror (issue 17).

Real installs from a plain-directory clone of ../shared/jwst-git/jwst-dms.bundle, offline
from GitHub: one release that declares no dependencies (<= 0.12: DMS's environment from
data), one whose setup.py clones relic (0.13.x), one whose dependencies are pinned to
GitHub commits (0.14.x), and 1.13.0 (a typo in the tag). Lean on purpose: the import-level
health check (stages 1-3 import), and Detector1 offline under 0.11.0 and 0.13.8.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jwenv import offline

pytestmark = pytest.mark.integration

STAGES = {"Detector1Pipeline", "Image2Pipeline", "Image3Pipeline"}


def _imports_stages_1_to_3(manifest) -> None:
    assert manifest.health["ok"], manifest.health
    found = next(c for c in manifest.health["checks"] if c["check"] == "import pipelines")
    assert set(found["detail"]) >= STAGES, found


def _pins(manifest) -> dict[str, str]:
    return {p.split("==")[0].lower(): p.split("==")[1] for p in manifest.packages if "==" in p}


def _detector1_offline(env, tmp_path) -> None:
    """Detector1 offline on an exposure and CRDS cache written by the release's own
    datamodels (the generator runs in every era from Python 3.7 on, numpy 1.15 included)."""
    from astropy.io import fits

    program = offline.generate(env, tmp_path / "program", size=64, seed=0)
    out = tmp_path / "run"
    rc = env.run(["strun", "jwst.pipeline.Detector1Pipeline", str(program.uncal[0]),
                  "--output_dir", str(out)], cache=program.cache, offline=True,
                 log=tmp_path / "detector1.log")
    assert rc == 0, (tmp_path / "detector1.log").read_text()[-3000:]
    (rate,) = out.glob("*_rate.fits")
    header = fits.getheader(rate)
    assert (header["CAL_VER"], header["CRDS_CTX"]) == (env.manifest.jwst_version,
                                                       program.context)


def test_a_release_that_declares_nothing_gets_what_dms_ran(dms_env, dms_mirror, tmp_path):
    from jwenv import strategies

    env = dms_env("0.11.0", check="import").env
    m = env.manifest
    assert (m.jwst_version, m.source, m.crds_context) == ("0.11.0", "git", "jwst_0482.pmap")
    assert m.requirement == f"jwst @ git+{dms_mirror.as_uri()}@0.11.0"  # a plain directory
    _imports_stages_1_to_3(m)
    data = strategies.dms_environments()["0.11.0"]
    assert m.python_version[:3] in data.pythons  # a Python DMS ran it on
    assert any(n.startswith("dms-environment: jwstdp/0.11.0/") for n in m.plan["notes"])
    pins = _pins(m)
    for req in data.requirements:  # DMS's environment, pinned from the data
        name, version = req.split("==")
        assert pins[name.lower()] == version, (req, pins.get(name.lower()))
    _detector1_offline(env, tmp_path)


def test_a_setup_py_that_clones_relic_and_detector1_offline(dms_env, tmp_path):
    env = dms_env("0.13.8", check="import").env
    m = env.manifest
    assert (m.jwst_version, m.crds_context) == ("0.13.8", "jwst_0541.pmap")
    _imports_stages_1_to_3(m)
    assert "relic==1.1.2" in m.plan["build_helpers"]
    _detector1_offline(env, tmp_path)


def test_dependencies_pinned_to_github_commits_take_the_pypi_release_of_the_date(dms_env):
    m = dms_env("0.14.2", check="import").env.manifest
    assert (m.jwst_version, m.crds_context) == ("0.14.2", "jwst_0570.pmap")
    _imports_stages_1_to_3(m)
    said = [n for n in m.plan["notes"] if "is pinned to a git commit" in n]
    assert {n.split(" @ ")[0] for n in said} == {"asdf", "astropy", "gwcs"}, said
    pins = _pins(m)
    for override in m.plan["overrides"]:  # e.g. asdf==2.4.2, the release of 2019-11-18
        name, version = override.split("==")
        assert pins[name] == version
        assert f"using {name} {version}, the PyPI release current on 2019-11-18" in " ".join(said)


def test_1_13_0_runs_its_tagged_code(dms_env):
    m = dms_env("1.13.0", check="import").env.manifest
    assert m.crds_context == "jwst_1179.pmap"
    _imports_stages_1_to_3(m)
    assert "1.13.0-version-commit-typo" in m.plan["notes"]
    # the tag's code unchanged; its version carries the commit, so `__version_commit__` is set
    assert m.jwst_version.startswith("1.13.0+g"), m.jwst_version
    assert Path(m.python_path).exists()
