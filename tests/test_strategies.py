from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from jwenv import strategies
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
    assert strategies.release_data("fixes.toml") == (root / "envs" / "fixes.toml").read_text()


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
