from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from packaging.version import Version

from jwenv import crds, releases
from jwenv.errors import BadInput, IndexUnreachable, UnknownVersion

README = """
## DMS Operational Build Versions

| jwst tag | DMS build | SDP_VER  | CRDS_CONTEXT | Released   | Ops Install | Notes |
| -------- | --------- | -------- | ------------ | ---------- | ----------- | ----- |
| 3.0.0    | B13.0     | 2026.1.0 | 1581         | 2026-07-09 |             | rc    |
| 1.20.2   | B12.1.1   | 2025.4.1 | 1464         | 2025-10-31 |             | patch |
| 1.12.5   | B10.0.1   | 2023.3.1 | 1166         | 2023-10-19 | 2023-12-05  | patch |
| 1.12.4   |           |          |              | 2023-10-12 |             | pins  |
| 0.15.1   | B7.4.2    | 2020.1.0 | 0586         | 2020-03-10 |             | final |

## Next section
| not | a | row |
"""


def _pypi_json() -> dict:
    def files(ver, when, py, yanked=False):
        return [{"upload_time_iso_8601": when, "requires_python": py, "yanked": yanked,
                 "packagetype": "bdist_wheel"}]
    return {
        "info": {"description": README, "version": "3.0.0"},
        "releases": {
            "3.0.0": files("3.0.0", "2026-07-14T21:07:49.003529Z", ">=3.11,<3.15"),
            "1.20.2": files("1.20.2", "2025-11-03T17:15:16.365171Z", ">=3.11,<3.14"),
            "1.12.5": files("1.12.5", "2023-10-19T18:27:37Z", ">=3.9"),
            "1.12.4": files("1.12.4", "2023-10-12T10:00:00Z", ">=3.9"),
            "1.12.3": files("1.12.3", "2023-10-03T10:00:00Z", ">=3.9", yanked=True),
            "3.1.0rc1": files("3.1.0rc1", "2026-09-01T00:00:00Z", ">=3.11"),
            "1.0.0": [],
        },
    }


@pytest.fixture
def index():
    return releases.build_index(_pypi_json())


def test_dms_table_parsing():
    rows = releases.parse_dms_table(README)
    assert set(rows) == {"3.0.0", "1.20.2", "1.12.5", "1.12.4", "0.15.1"}
    assert rows["1.20.2"].context == "jwst_1464.pmap"
    assert rows["0.15.1"].context == "jwst_0586.pmap"
    assert rows["1.12.4"].context == ""
    assert rows["3.0.0"].dms_build == "B13.0"


def test_index_merges_pypi_and_git_only_releases(index):
    assert index.releases[Version("1.20.2")].on_pypi
    git_only = index.releases[Version("0.15.1")]
    assert not git_only.on_pypi
    assert git_only.release_date == datetime(2020, 3, 10, tzinfo=timezone.utc)
    assert index.releases[Version("1.20.2")].requires_python == ">=3.11,<3.14"
    assert Version("1.0.0") not in index.releases  # no files: nothing to install


def test_context_falls_back_to_nearest_earlier_release(index):
    pairs = index.paired_contexts()
    assert crds.paired_context("1.20.2", pairs) == "jwst_1464.pmap"
    assert crds.paired_context("1.12.4", pairs) == "jwst_0586.pmap"  # 1.12.3 has no row
    assert crds.paired_context("1.12.5", pairs) == "jwst_1166.pmap"


def test_resolve_exact_latest_and_specifier(index):
    assert releases.resolve("1.20.2", lambda: index).requirement == "jwst==1.20.2"
    assert releases.resolve("latest", lambda: index).version == "3.0.0"
    assert releases.resolve("~=1.12.0", lambda: index).version == "1.12.5"
    assert releases.resolve("<1.12.5,>=1.12", lambda: index).version == "1.12.4"  # skips yanked


def test_git_only_release_resolves_to_its_tag(index, monkeypatch):
    monkeypatch.delenv("JWENV_JWST_GIT", raising=False)  # the integration mirror sets it
    r = releases.resolve("0.15.1", lambda: index)
    assert (r.source, r.git_ref) == ("git", "0.15.1")
    assert r.requirement == "jwst @ git+https://github.com/spacetelescope/jwst@0.15.1"
    monkeypatch.setenv("JWENV_JWST_GIT", "file:///mirror/jwst")
    assert releases.resolve("0.15.1", lambda: index).requirement == \
        "jwst @ git+file:///mirror/jwst@0.15.1"


def test_unknown_version_suggests_nearest_and_git_form(index):
    with pytest.raises(UnknownVersion) as err:
        releases.resolve("1.20.9", lambda: index)
    msg = str(err.value)
    assert "nearest: " in msg and "1.20.2" in msg and "git+" in msg


@pytest.mark.parametrize("spec", ["1.2.x", "==", "banana", ""])
def test_malformed_versions(index, spec):
    with pytest.raises(BadInput):
        releases.resolve(spec, lambda: index)


def test_git_url_forms():
    r = releases.resolve("git+https://github.com/spacetelescope/jwst@0.15.1", _no_index)
    assert (r.git_repo, r.git_ref, r.version) == (
        "https://github.com/spacetelescope/jwst", "0.15.1", "0.15.1")
    r = releases.resolve("git+https://example.org/jwst@main", _no_index)
    assert (r.git_ref, r.version) == ("main", None)
    r = releases.resolve("git+ssh://git@example.org/jwst", _no_index)
    assert (r.git_repo, r.git_ref) == ("ssh://git@example.org/jwst", None)


def _no_index():
    raise AssertionError("a git URL or a path must not need the index")


def test_local_directory_and_wheel(tmp_path, fake_wheel):
    with pytest.raises(BadInput, match="no such source directory"):
        releases.resolve(str(tmp_path / "missing"), _no_index)
    with pytest.raises(BadInput, match="not a Python source tree"):
        releases.resolve(str(tmp_path), _no_index)
    (tmp_path / "pyproject.toml").write_text("")
    assert releases.resolve(str(tmp_path), _no_index).source == "local"
    r = releases.resolve(str(fake_wheel), _no_index)
    assert (r.source, r.version) == ("local", "9.9.9")


def test_index_unreachable_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("JWENV_PYPI_URL", "http://127.0.0.1:9/pypi/jwst/json")
    with pytest.raises(IndexUnreachable, match="installed environments still run"):
        releases.load_index(tmp_path)


def test_stale_cache_beats_no_answer(tmp_path, monkeypatch):
    (tmp_path / "jwst.json").write_text(json.dumps(_pypi_json()))
    import os
    os.utime(tmp_path / "jwst.json", (0, 0))  # far older than the TTL
    monkeypatch.setenv("JWENV_PYPI_URL", "http://127.0.0.1:9/pypi/jwst/json")
    index = releases.load_index(tmp_path)
    assert Version("3.0.0") in index.releases


def test_unreachable_git_repository_is_one_line(tmp_path):
    with pytest.raises(IndexUnreachable, match="cannot reach jwst git repository"):
        releases.check_git_ref(f"file://{tmp_path}/nothing-here", "0.15.1")


# -- partial versions: `1.20` is the newest 1.20.x ----------------------------------------
def _with_patches() -> releases.Index:
    data = _pypi_json()
    for ver, when in (("1.20.0", "2025-09-01T00:00:00Z"), ("1.20.1", "2025-10-01T00:00:00Z"),
                      ("1.20.3rc1", "2025-12-01T00:00:00Z")):
        data["releases"][ver] = [{"upload_time_iso_8601": when, "requires_python": ">=3.11",
                                  "yanked": False}]
    return releases.build_index(data)


@pytest.mark.parametrize(("spec", "version"), [
    ("1.20", "1.20.2"),  # not 1.20.0, and not the 1.20.3 prerelease
    ("1", "1.20.2"),  # the newest 1.x, not 3.0.0
    ("1.12", "1.12.5"),
    ("1.20.0", "1.20.0"),  # three numbers: exactly that release
    ("==1.20.0", "1.20.0"),
    ("1.20.1", "1.20.1"),
])
def test_partial_version_is_the_newest_patch(spec, version):
    resolved = releases.resolve(spec, _with_patches)
    assert resolved.version == version and resolved.requirement == f"jwst=={version}"


def test_partial_version_says_which_it_chose():
    assert releases.resolve("1.20", _with_patches).note == \
        "1.20 means the newest 1.20.x: jwst 1.20.2"
    assert releases.resolve("1.20.0", _with_patches).note == ""  # nothing was chosen
    assert "3.0.0" in releases.resolve("latest", _with_patches).note
    with pytest.raises(UnknownVersion, match=r"1\.21"):
        releases.resolve("1.21", _with_patches)


@pytest.mark.parametrize("spec", ["x_rate.fits", "data/jw01_cal.fits", "./y_i2d.fits",
                                  "z_uncal.fits.gz"])
def test_a_product_is_not_a_release(spec):
    with pytest.raises(BadInput, match="is a data product") as err:
        releases.resolve(spec, _no_index)
    assert f"jwenv install --like {spec}" in str(err.value)
    assert "source directory" not in str(err.value)
