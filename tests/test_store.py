from __future__ import annotations

import json

import pytest

from jwenv.errors import BadInput, StoreError
from jwenv.store import MANIFEST, Manifest, Store, validate_name, write_json_atomic


def _manifest(name: str = "1.20.2") -> Manifest:
    return Manifest(name=name, requested=name, jwst_version=name, source="pypi",
                    requirement=f"jwst=={name}", python_version="3.11.7",
                    python_path="/usr/bin/python3", backend="uv",
                    crds_context="jwst_1464.pmap", created="2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize("name", ["1.20.2", "my-env_2", "0.15.1+local", "a.b"])
def test_good_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a..b", "x y", "a\\b", "é"])
def test_bad_names(name):
    with pytest.raises(BadInput, match="bad environment name"):
        validate_name(name)


def test_manifest_round_trip(tmp_path):
    store = Store(tmp_path / "home", tmp_path / "cache")
    store.ensure()
    env_dir = store.env_path("1.20.2")
    env_dir.mkdir()
    store.write_manifest(env_dir, _manifest())
    assert store.read_manifest("1.20.2") == _manifest()
    data = json.loads((env_dir / MANIFEST).read_text())
    assert data["schema"] == 1 and data["crds_context"] == "jwst_1464.pmap"


def test_future_schema_is_refused():
    data = _manifest().to_dict() | {"schema": 99}
    with pytest.raises(StoreError):
        Manifest.from_dict(data)


def test_only_dirs_with_a_manifest_are_environments(tmp_path):
    store = Store(tmp_path / "home", tmp_path / "cache")
    store.ensure()
    (store.envs_dir / "half-built").mkdir()
    good = store.env_path("good")
    good.mkdir()
    store.write_manifest(good, _manifest("good"))
    (store.env_path("corrupt")).mkdir()
    (store.env_path("corrupt") / MANIFEST).write_text("{not json")
    assert list(store.names()) == ["corrupt", "good"]
    assert store.read_manifest("corrupt") is None
    assert store.read_manifest("half-built") is None


def test_clean_staging_removes_leftovers_of_that_name_only(tmp_path):
    store = Store(tmp_path / "home", tmp_path / "cache")
    a, b = store.new_staging("1.20"), store.new_staging("1.20.2")  # a prefix of the other
    store.clean_staging("1.20")
    assert not a.exists() and b.exists()


def test_publish_over_an_existing_env_swaps_atomically(tmp_path, monkeypatch):
    import jwenv.store as store_mod

    store = Store(tmp_path / "home", tmp_path / "cache")
    for content in ("old", "new"):
        staging = store.new_staging("x")
        (staging / "marker").write_text(content)
        store.publish(staging, "x")
    assert (store.env_path("x") / "marker").read_text() == "new"
    # where the OS cannot exchange, the two-rename fallback gives the same result
    monkeypatch.setattr(store_mod, "_exchange", lambda a, b: False)
    staging = store.new_staging("x")
    (staging / "marker").write_text("newer")
    store.publish(staging, "x")
    assert (store.env_path("x") / "marker").read_text() == "newer"
    assert list(store.staging_dir.iterdir()) == []


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_unwritable_store_is_one_clear_error(tmp_path):
    # A path under a regular file cannot be created, even by root.
    (tmp_path / "file").write_text("")
    store = Store(tmp_path / "file" / "home", tmp_path / "cache")
    with pytest.raises(StoreError, match=r"not writable.*JWENV_HOME"):
        store.ensure()
