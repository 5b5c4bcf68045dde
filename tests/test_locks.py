"""locks: what `jwenv export` writes and `install --lock` reads back."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jwenv import locks, strategies
from jwenv.errors import BadInput
from jwenv.store import Manifest


def _manifest(plan: dict) -> Manifest:
    return Manifest(name="1.12.5", requested="1.12.5", jwst_version="1.12.5", source="pypi",
                    requirement="jwst==1.12.5", python_version="3.11.7",
                    python_path="/usr/bin/python3.11", backend="uv",
                    crds_context="jwst_1166.pmap", created="2026-01-01T00:00:00+00:00",
                    strategy="ops", packages=["jwst==1.12.5", "numpy==1.25.2"], plan=plan)


def test_round_trip_keeps_pins_python_context_and_build_settings(tmp_path):
    plan = {"build_constraints": ["numpy<=1.25.2", "setuptools<60"],
            "exclude_newer": "2023-10-20T18:27:00+00:00",
            "exclude_newer_packages": {"stsci.imagestats": "2024-04-05"},
            "only_binary": ["numpy", "scipy"]}
    path = tmp_path / "x.lock"
    path.write_text(locks.export_lock(_manifest(plan)))
    lock = locks.read_lock(path)
    assert (lock.jwst_version, lock.python, lock.context) == ("1.12.5", "3.11.7",
                                                              "jwst_1166.pmap")
    rebuilt = lock.plan()
    assert rebuilt.requirements == ["jwst==1.12.5", "numpy==1.25.2"]
    assert rebuilt.build_constraints == ["numpy<=1.25.2", "setuptools<60"]
    assert rebuilt.exclude_newer == datetime(2023, 10, 20, 18, 27, tzinfo=timezone.utc)
    assert rebuilt.exclude_newer_packages == {"stsci.imagestats": "2024-04-05"}
    assert rebuilt.only_binary == ["numpy", "scipy"]
    assert rebuilt.strategy == "lock"


def test_a_lock_of_an_older_environment_gets_the_wheels_only_stack(tmp_path):
    # environments built before plans recorded `only_binary` were built wheels-only too
    text = locks.export_lock(_manifest({}))
    assert f"# only-binary: {json.dumps(list(strategies.WHEELS_ONLY))}" in text
    old = "\n".join(ln for ln in text.splitlines() if "only-binary" not in ln)
    path = tmp_path / "old.lock"
    path.write_text(old)
    assert locks.read_lock(path).plan().only_binary == list(strategies.WHEELS_ONLY)


@pytest.mark.parametrize(("text", "message"), [
    ("numpy==1.0\n", "is not a jwenv lock"),
    ("# jwenv lock 1\n# jwst: 1.0\nnumpy==1.0\n", "pins no jwst"),
])
def test_bad_locks(tmp_path, text, message):
    path = tmp_path / "bad.lock"
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        locks.read_lock(path)
    with pytest.raises(BadInput, match="cannot read lock file"):
        locks.read_lock(tmp_path / "missing.lock")


def test_differences_name_what_differs(tmp_path):
    path = tmp_path / "x.lock"
    manifest = _manifest({})
    path.write_text(locks.export_lock(manifest))
    lock = locks.read_lock(path)
    assert locks.differences(lock, manifest) == []
    path.write_text(locks.export_lock(manifest).replace("numpy==1.25.2", "NumPy==1.24.0")
                    .replace("# python: 3.11.7", "# python: 3.11.9"))
    found = locks.differences(locks.read_lock(path), manifest, "jwst_1200.pmap")
    assert found == ["numpy==1.25.2 installed, NumPy==1.24.0 in the lock",
                     "Python 3.11.7 installed, 3.11.9 in the lock",
                     "CRDS context jwst_1166.pmap pinned, jwst_1200.pmap asked for"]


def test_a_lock_keeps_what_old_git_releases_need(tmp_path):
    plan = {"overrides": ["asdf==2.4.2"], "build_helpers": ["relic==1.1.2"],
            "build_requirements": {"jwst": ["numpy", "astropy"]},
            "build_variables": {"jwst": {"SETUPTOOLS_SCM_PRETEND_VERSION": "1.13.0+gf952d3e"}},
            "site_hooks": ["asdf_inline_threshold"]}
    path = tmp_path / "git.lock"
    path.write_text(locks.export_lock(_manifest(plan)))
    rebuilt = locks.read_lock(path).plan()
    assert rebuilt.overrides == ["asdf==2.4.2"] and rebuilt.build_helpers == ["relic==1.1.2"]
    assert rebuilt.build_requirements == {"jwst": ["numpy", "astropy"]}
    assert rebuilt.build_variables["jwst"]["SETUPTOOLS_SCM_PRETEND_VERSION"] == "1.13.0+gf952d3e"
    assert rebuilt.site_hooks == ["asdf_inline_threshold"]


@pytest.mark.parametrize(("line", "message"), [
    ("# overrides: [asdf==2.4.2", "lock header '# overrides:' is not valid JSON"),
    ("# exclude-newer: last tuesday", "lock header '# exclude-newer:' is not a date"),
])
def test_a_hand_edited_header_that_does_not_parse_is_one_line(tmp_path, line, message):
    path = tmp_path / "edited.lock"
    text = locks.export_lock(_manifest({"overrides": ["asdf==2.4.2"]}))
    key = line.split(":")[0]
    path.write_text("\n".join(line if ln.startswith(key + ":") else ln
                              for ln in text.splitlines()) + "\n")
    if key not in text:
        path.write_text(text.replace("\n", f"\n{line}\n", 1))
    with pytest.raises(BadInput, match=message):
        locks.read_lock(path).plan()
