from __future__ import annotations

from pathlib import Path

import pytest

from jwenv import crds
from jwenv.errors import BadInput


@pytest.mark.parametrize(("given", "canonical"), [("jwst_1464.pmap", "jwst_1464.pmap"),
                                                  ("1464", "jwst_1464.pmap"),
                                                  ("586", "jwst_0586.pmap")])
def test_context_names(given, canonical):
    assert crds.validate_context(given) == canonical


@pytest.mark.parametrize("bad", ["jwst_14.pmap", "hst_1464.pmap", "jwst_1464.imap", "latest",
                                 "jwst_1464", "../jwst_1464.pmap"])
def test_bad_context_names(bad):
    with pytest.raises(BadInput, match="bad CRDS context"):
        crds.validate_context(bad)


def test_defaults(tmp_path):
    s = crds.settings(context="jwst_1464.pmap", default_path=tmp_path, environ={})
    assert s.variables() == {"CRDS_PATH": str(tmp_path),
                             "CRDS_SERVER_URL": "https://jwst-crds.stsci.edu",
                             "CRDS_CONTEXT": "jwst_1464.pmap"}


def test_users_crds_settings_are_honoured(tmp_path):
    env = {"CRDS_PATH": "/data/crds", "CRDS_SERVER_URL": "https://my-mirror",
           "CRDS_CONTEXT": "jwst_0001.pmap"}
    s = crds.settings(context="jwst_1464.pmap", default_path=tmp_path, environ=env)
    assert s.variables() == {"CRDS_PATH": "/data/crds", "CRDS_SERVER_URL": "https://my-mirror",
                             "CRDS_CONTEXT": "jwst_1464.pmap"}  # the pin wins for the context
    assert s.path_from_user and s.server_from_user


def test_offline_is_serverless(tmp_path):
    s = crds.settings(context="jwst_1464.pmap", default_path=tmp_path,
                      environ={"JWENV_OFFLINE": "1", "CRDS_SERVER_URL": "https://x"})
    assert s.offline and s.server_url == crds.SERVERLESS_SERVER
    assert not crds.settings(context="", default_path=tmp_path, environ={},
                             offline=False).offline


def test_mappings_cached(tmp_path):
    (tmp_path / "mappings" / "jwst").mkdir(parents=True)
    (tmp_path / "mappings" / "jwst" / "jwst_1464.pmap").write_text("header = {}")
    assert crds.mappings_cached(str(tmp_path), "jwst_1464.pmap")
    assert not crds.mappings_cached(str(tmp_path), "jwst_1465.pmap")
    assert not crds.mappings_cached(str(Path("/nonexistent")), "")


def test_prepare_cache_makes_instrument_dirs_so_parallel_runs_do_not_race(tmp_path):
    crds.prepare_cache(str(tmp_path / "cache"))
    made = sorted(p.name for p in (tmp_path / "cache" / "references" / "jwst").iterdir())
    assert made == sorted(crds.INSTRUMENT_DIRS)
    crds.prepare_cache(str(tmp_path / "cache"))  # again: nothing to do, no error


def test_prepare_cache_leaves_a_cache_it_cannot_write_alone(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    crds.prepare_cache(str(not_a_dir))  # CRDS reports such a cache itself; no error here
    assert not_a_dir.is_file()
