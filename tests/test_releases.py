from __future__ import annotations

import json
import subprocess
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


# -- mirrors and git refs (issue 17) ----------------------------------------------------
def _repo_with_tags(path, *tags):
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for tag in tags:
        subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t",
                        "commit", "-q", "--allow-empty", "-m", tag], check=True)
        subprocess.run(["git", "-C", str(path), "tag", tag], check=True)
    return path


def test_a_mirror_given_as_a_plain_directory_is_its_file_url(tmp_path, monkeypatch, index):
    mirror = _repo_with_tags(tmp_path / "srv" / "jwst", "0.15.1")
    monkeypatch.setenv("JWENV_JWST_GIT", str(mirror))
    got = releases.resolve("0.15.1", lambda: index)
    assert got.git_repo == mirror.as_uri()
    assert got.requirement == f"jwst @ git+{mirror.as_uri()}@0.15.1"
    releases.check_git_ref(got.git_repo, got.git_ref)  # reachable, has the tag
    spaced = _repo_with_tags(tmp_path / "my mirrors" / "jwst", "0.15.1")
    assert "%20" in releases.normalize_repo(str(spaced))  # a URL: the space is quoted
    releases.check_git_ref(releases.normalize_repo(str(spaced)), "0.15.1")  # and found
    assert releases.normalize_repo("https://example.org/jwst") == "https://example.org/jwst"
    assert releases.normalize_repo("git@example.org:jwst.git") == "git@example.org:jwst.git"


def test_bad_mirrors_and_refs_are_one_line_bad_input(tmp_path):
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(BadInput, match="is not a git repository"):
        releases.check_git_ref(plain.as_uri(), "0.15.1")
    repo = _repo_with_tags(tmp_path / "jwst", "0.9.2", "0.9.4", "0.15.1")
    with pytest.raises(BadInput, match=r"has no tag or branch '0\.9\.9' \(nearest tags: "
                                       r"0\.9\.4, 0\.15\.1\)"):
        releases.check_git_ref(str(repo), "0.9.9")
    with pytest.raises(BadInput, match=r"jwst 0\.9\.3 has no tag: DMS built it from commit "
                                       r"d795045, which .* does not have \(nearest tags: "
                                       r"0\.9\.2, 0\.9\.4\)"):
        releases.check_git_ref(repo.as_uri(), "d795045", version="0.9.3")


def test_a_dms_row_without_a_tag_resolves_to_the_commit_dms_built(monkeypatch):
    data = _pypi_json()
    data["info"]["description"] = README.replace(
        "| 0.15.1   |", "| 0.9.3 | B7.1.3rc1 | | 457 | 2018-05-11 | | rc1 |\n| 0.15.1   |")
    index = releases.build_index(data)
    monkeypatch.setenv("JWENV_JWST_GIT", "https://example.org/jwst")
    got = releases.resolve("0.9.3", lambda: index)
    assert (got.git_ref, got.version) == ("d795045", "0.9.3")
    assert "DMS built it from commit d795045" in got.note
