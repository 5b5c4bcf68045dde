from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jwenv import releases, strategies
from jwenv.errors import BadInput
from jwenv.releases import Resolved

SDP = """# header comment
-e .
jwst==0.17.0
asdf==2.7.1
numpy==1.19.1
stsci.imagestats==1.6.2
codecov==2.1.8  # gone from PyPI: fine as a constraint, fatal as a requirement
git+https://example.org/x
"""


def _resolved(version="0.17.0"):
    return Resolved(version, "pypi", f"jwst=={version}", version)


def test_real_fixes_file_loads():
    fixes = strategies.load_fixes()
    assert "pytest" in fixes.default_requirements
    ids = {f.id for f in fixes.fixes}
    assert {"imagestats-sdist-clones-relic", "imagestats-sdp-pin",
            "ops-build-tooling-of-the-era", "ops-pkg-resources"} <= ids
    for fix in fixes.fixes:
        assert fix.reason and fix.source, fix.id
        assert not fix.source.startswith(".."), fix.id  # sources a reader of the repo can open
        assert set(fix.strategies) <= set(strategies.STRATEGIES), fix.id
        fix.applies("ops", "1.0.0")  # its `when` parses


def test_release_data_is_the_repositorys_envs_directory():
    # one home for release data: the package reads the top-level envs/ (src/jwenv/data links
    # there), never a copy that could go stale
    root = Path(__file__).resolve().parents[1]
    assert releases.release_data("fixes.toml") == (root / "envs" / "fixes.toml").read_text()


def test_sdp_constraints_drop_jwst_options_and_urls():
    assert strategies.sdp_constraints(SDP) == [
        "asdf==2.7.1", "numpy==1.19.1", "stsci.imagestats==1.6.2", "codecov==2.1.8"]


def test_ops_plan_uses_constraints_never_requirements():
    plan = strategies.plan("ops", _resolved(), release_date=None, sdp_text=SDP)
    assert plan.requirements[0] == "jwst==0.17.0"
    assert "codecov==2.1.8" in plan.constraints
    assert not any(r.startswith("codecov") for r in plan.requirements)
    assert "numpy<=1.19.1" in plan.build_constraints  # a ceiling: older builds are fine
    assert not any(c.startswith("stsci.imagestats") for c in plan.constraints)  # a fix drops it
    assert "setuptools<60" in plan.constraints  # old-era fix applies below 1.0


def test_ops_needs_sdp():
    assert strategies.plan("ops", _resolved(), release_date=None, sdp_text=None) == \
        "the release ships no requirements-sdp.txt"


def test_dated_plan_bounds_by_release_date():
    when = datetime(2023, 10, 19, 18, 27, tzinfo=timezone.utc)
    plan = strategies.plan("dated", _resolved("1.12.5"), release_date=when, sdp_text=None)
    assert plan.exclude_newer == datetime(2023, 10, 20, 18, 27, tzinfo=timezone.utc)
    assert "stsci.imagestats" in plan.exclude_newer_packages
    assert strategies.plan("dated", _resolved(), release_date=None, sdp_text=None) == \
        "the release date is unknown"


def test_latest_is_plain():
    plan = strategies.plan("latest", _resolved("3.0.0"), release_date=None, sdp_text=SDP)
    assert plan.requirements == ["jwst==3.0.0"]
    assert plan.constraints == [] and plan.exclude_newer is None


def test_fix_when_and_strategies(tmp_path):
    path = tmp_path / "fixes.toml"
    path.write_text('[defaults]\nrequirements = []\n\n[[fix]]\nid = "x"\nreason = "r"\n'
                    'when = ">=1.15,<1.17"\nstrategies = ["dated"]\nconstraints = ["gwcs<0.22"]\n')
    fixes = strategies.load_fixes(path)
    d = datetime(2024, 7, 8, tzinfo=timezone.utc)
    hit = strategies.plan("dated", _resolved("1.15.1"), release_date=d, sdp_text=None,
                          fixes=fixes)
    miss = strategies.plan("dated", _resolved("1.17.0"), release_date=d, sdp_text=None,
                           fixes=fixes)
    assert hit.constraints == ["gwcs<0.22"] and hit.notes == ["x"]
    assert miss.constraints == []


def test_fix_constraint_overrides_the_sdp_pin(tmp_path):
    path = tmp_path / "fixes.toml"
    path.write_text('[[fix]]\nid = "np"\nreason = "r"\nconstraints = ["numpy<1.20"]\n')
    plan = strategies.plan("ops", _resolved(), release_date=None, sdp_text=SDP,
                           fixes=strategies.load_fixes(path))
    assert [c for c in plan.constraints if c.startswith("numpy")] == ["numpy<1.20"]


@pytest.mark.parametrize("bad", ["fast", "ops,,nope", ""])
def test_bad_strategy_order(bad):
    with pytest.raises(BadInput):
        strategies.validate_order(bad)
    assert strategies.validate_order("dated,ops") == ("dated", "ops")


# -- git-only releases before 0.15 (issue 17) -------------------------------------------
def _git(version, ref=None):
    return Resolved(version, "git", f"jwst @ git+file:///m@{ref or version}", version,
                    git_repo="file:///m", git_ref=ref or version)


def test_dms_environments_are_data_with_sources():
    envs = strategies.dms_environments()
    assert {"0.7.7", "0.8.0", "0.9.0", "0.9.3", "0.10.0", "0.11.0", "0.12.3"} <= set(envs)
    for version, env in envs.items():
        assert env.spec.startswith("jwstdp/") and "astroconda-releases" in env.source, version
        assert env.pythons and env.requirements, version
        assert all("==" in r for r in env.requirements), version
        assert any(r.startswith("numpy==") for r in env.requirements), version
    assert releases.dms_commit("0.9.3") == "d795045"  # no tag: the commit DMS built
    assert envs["0.7.7"].pythons == ("2.7", "3.5")


def test_a_release_that_declares_nothing_takes_what_dms_ran():
    when = datetime(2019, 1, 15, tzinfo=timezone.utc)
    facts = strategies.SourceFacts(has_pyproject=False, declared=("namedlist",))
    plan = strategies.plan("dated", _git("0.12.3"), release_date=when, sdp_text=None,
                           source=facts)
    dms = strategies.dms_environments()["0.12.3"]
    assert set(dms.requirements) <= set(plan.requirements)
    assert plan.pythons == list(dms.pythons)
    numpy = next(r for r in dms.requirements if r.startswith("numpy=="))
    assert numpy.replace("==", "<=") in plan.build_constraints  # builds: no newer numpy
    assert any(n.startswith("dms-environment: jwstdp/0.12.3/") for n in plan.notes)
    # a setup.py from before PEP 518: numpy and astropy in the builds of everything named
    assert plan.build_requirements["jwst"] == ["numpy", "astropy"]
    assert plan.build_requirements["stsci-image"] == ["numpy", "astropy"]
    assert "relic==1.1.2" in plan.build_helpers  # its setup.py clones relic otherwise
    assert plan.exclude_newer_packages["setuptools"] == "2019-04-23"  # the legacy floor
    assert "asdf_inline_threshold" in plan.site_hooks


def test_legacy_fixes_stay_with_their_era():
    when = datetime(2020, 3, 10, tzinfo=timezone.utc)
    plan = strategies.plan("dated", _git("0.15.1"), release_date=when, sdp_text=None,
                           source=strategies.SourceFacts())
    assert not plan.build_helpers and not plan.build_requirements and not plan.pythons
    assert "setuptools" not in plan.exclude_newer_packages  # a cut-off after 2019-04-23
    assert plan.exclude_newer_packages["stsci.imagestats"] == "2024-04-05"


SETUP_0142 = """    install_requires=[
        'asdf @ git+https://github.com/spacetelescope/asdf@c1373db953c77b62541',
        'crds>=7.2.7',
        'stsci.image>=2.3.3',
    ],"""


def test_git_pins_and_declared_names_from_setup_py():
    assert strategies.git_pins(SETUP_0142) == (
        ("asdf", "https://github.com/spacetelescope/asdf", "c1373db953c77b62541"),)
    assert strategies.declared_names(SETUP_0142) == ("asdf", "crds", "stsci-image")


def _fake_pypi(tmp_path, monkeypatch, name, uploads):
    root = tmp_path / "pypi"
    (root / name).mkdir(parents=True)
    (root / name / "json").write_text(json.dumps({"releases": {
        v: [{"upload_time_iso_8601": t, "yanked": False}] for v, t in uploads.items()}}))
    (root / "jwst").mkdir()
    monkeypatch.setenv("JWENV_PYPI_URL", (root / "jwst" / "json").as_uri())


def test_a_git_pin_becomes_the_pypi_release_of_the_jwst_release_date(tmp_path, monkeypatch):
    _fake_pypi(tmp_path, monkeypatch, "asdf", {"2.4.2": "2019-08-29T20:00:01Z",
                                               "2.5.0": "2019-12-23T22:39:41Z",
                                               "2.5.0rc1": "2019-11-01T00:00:00Z"})
    when = datetime(2019, 11, 19, tzinfo=timezone.utc)
    (choice,) = strategies.resolve_git_pins(strategies.git_pins(SETUP_0142), when,
                                            tmp_path / "cache")
    assert choice.override == "asdf==2.4.2"
    assert choice.note == ("asdf @ git+https://github.com/spacetelescope/asdf@c1373db is "
                           "pinned to a git commit: using asdf 2.4.2, the PyPI release "
                           "current on 2019-11-19")
    plan = strategies.plan("latest", _git("0.14.2"), release_date=when, sdp_text=None,
                           pins=[choice])
    assert plan.overrides == ["asdf==2.4.2"] and choice.note in plan.notes


def test_a_mirror_that_has_the_commit_wins(tmp_path, monkeypatch):
    repo = tmp_path / "mirrors" / "asdf"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    monkeypatch.setenv("JWENV_GIT_MIRRORS", str(tmp_path / "mirrors"))
    pins = (("asdf", "https://github.com/spacetelescope/asdf", commit),)
    (choice,) = strategies.resolve_git_pins(pins, None, tmp_path / "cache")
    assert choice.override == f"asdf @ git+{repo.resolve().as_uri()}@{commit}"
    other = (("asdf", "https://github.com/spacetelescope/asdf", "c1373db953c77b62541"),)
    (missing,) = strategies.resolve_git_pins(other, None, tmp_path / "cache")
    assert missing.override is None and "release date is unknown" in missing.note


def test_the_1_13_0_fix_builds_the_tag_with_its_commit_as_local_version():
    facts = strategies.SourceFacts(commit="f952d3ec5964c5ec43d9ac47ec2bf9d782693d03")
    plan = strategies.plan("ops", _git("1.13.0"), release_date=None, sdp_text="numpy==1.26.2",
                           source=facts)
    assert plan.build_variables == {
        "jwst": {"SETUPTOOLS_SCM_PRETEND_VERSION": "1.13.0+gf952d3e"}}
    assert "1.13.0-version-commit-typo" in plan.notes
    unknown = strategies.plan("ops", _git("1.13.0"), release_date=None,
                              sdp_text="numpy==1.26.2", source=strategies.SourceFacts())
    assert unknown.build_variables == {}  # no commit, no fix (and no guessed one)
    assert strategies.plan("ops", _git("1.13.1"), release_date=None, sdp_text="numpy==1.26.2",
                           source=facts).build_variables == {}


@pytest.mark.parametrize(("text", "family"), [
    ("fatal: unable to access 'https://github.com/spacetelescope/relic.git/'", "relic"),
    ("Numpy is required to build this package.", "numpy at build time"),
    ("No solution found when resolving: `setuptools>=40.8.0`", "setuptools>=40.8.0"),
    ("health check failed: import pipelines: ImportError: cannot import name "
     "'__version_commit__'", "misspells __version_commit__"),
    ("Failed to fetch: `git+https://github.com/astropy/astropy@df61bbc22ed2fd5c8`",
     "pinned to a git commit"),
    ("Download error on https://pypi.python.org/simple/astropy-helpers/", "easy_install"),
    ("health check failed: import jwst: ModuleNotFoundError: No module named 'namedlist'",
     "jwst imports namedlist, which the environment lacks"),
    ("health check failed: import jwst: ModuleNotFoundError: No module named 'asdf.types'",
     "older than the release needs (no module asdf.types)"),
])
def test_failure_families_are_named(text, family):
    from types import SimpleNamespace

    assert family in strategies.failure_family([SimpleNamespace(detail=text, log="")])
    assert strategies.failure_family([SimpleNamespace(detail="not applicable: x", log="")]) \
        == ""


def _fake_asdf(site: Path, source: str) -> None:
    """An `asdf` package whose asdf.asdf module is `source`, in `site`."""
    (site / "asdf").mkdir()
    (site / "asdf" / "__init__.py").write_text("")
    (site / "asdf" / "asdf.py").write_text(source)


def test_the_asdf_site_hook_gives_the_snapshot_argument(tmp_path):
    _fake_asdf(tmp_path, "class _Blocks:\n    _inline_threshold_size = 50\n\n"
                         "class AsdfFile:\n    def __init__(self, tree=None):\n"
                         "        self._blocks = _Blocks()\n")
    strategies.write_site_hooks(tmp_path, ["asdf_inline_threshold"])
    code = ("import _jwenv_asdf_inline_threshold\n"  # what the .pth does at start-up
            "from asdf.asdf import AsdfFile\n"
            "print(AsdfFile(inline_threshold=0)._blocks._inline_threshold_size,"
            " AsdfFile()._blocks._inline_threshold_size)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["0", "50"]


def test_the_asdf_resolver_site_hook_adds_the_snapshot_method(tmp_path):
    _fake_asdf(tmp_path, "class AsdfFile:\n"
                         "    def tag_to_schema_resolver(self, uri):\n        return uri + '#tag'\n"
                         "    def url_mapping(self, uri):\n        return uri + '#url'\n")
    strategies.write_site_hooks(tmp_path, ["asdf_resolver"])
    assert (tmp_path / "_jwenv_asdf_resolver.pth").read_text() == "import _jwenv_asdf_resolver\n"
    code = ("import _jwenv_asdf_resolver\n"
            "from asdf.asdf import AsdfFile\nprint(AsdfFile().resolver('x'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "x#tag#url"
    assert "asdf-resolver" in strategies.plan(
        "dated", _git("0.9.0"), release_date=datetime(2017, 12, 22, tzinfo=timezone.utc),
        sdp_text=None).notes
