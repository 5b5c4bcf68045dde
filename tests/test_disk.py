"""`jwenv du` and `jwenv clean`: real figures, and nothing installed is ever removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import cli
from jwenv.store import STAGING_OWNER, Store, dir_usage

MB = 1024 * 1024


def _blob(path, size=MB):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def test_own_bytes_leave_out_what_is_hard_linked_from_elsewhere(tmp_path):
    cache, tree = tmp_path / "cache", tmp_path / "tree"
    shared = _blob(cache / "numpy.so", 3 * MB)
    tree.mkdir()
    os.link(shared, tree / "numpy.so")  # as uv links a cached wheel's files
    _blob(tree / "own.py", MB)
    os.link(tree / "own.py", tree / "own-again.py")  # both links inside: still its own
    total, own = dir_usage(tree)
    assert 4 * MB <= total < 4 * MB + 64 * 1024
    assert MB <= own < MB + 64 * 1024


def test_du_reports_envs_and_each_cache(installed, home, tmp_path, monkeypatch):
    uv_cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    env_dir = home / "envs" / installed
    big = _blob(uv_cache / "archive-v0" / "x" / "big.so", 2 * MB)
    os.link(big, env_dir / "big.so")
    _blob(home / "cache" / "crds" / "mappings" / "jwst" / "jwst_1464.pmap", MB)
    _blob(home / "cache" / "index" / "jwst.json", 100_000)
    _blob(home / "staging" / "1.20.2@abc" / "env" / "lib.so", MB)
    _blob(home / "logs" / "1.20.2-dated-1.log", 10_000)
    out = cli("du", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    env = data["environments"][0]
    assert env["name"] == installed and env["linked_bytes"] >= 2 * MB
    assert env["own_bytes"] == env["apparent_bytes"] - env["linked_bytes"] < env["apparent_bytes"]
    areas = {a["key"]: a for a in data["areas"]}
    assert areas["uv-cache"]["path"] == str(uv_cache) and areas["uv-cache"]["bytes"] >= 2 * MB
    assert areas["crds-cache"]["bytes"] >= MB and areas["index-cache"]["bytes"] >= 100_000
    assert areas["staging"]["bytes"] >= MB and areas["logs"]["bytes"] >= 10_000
    assert data["total_bytes"] == env["own_bytes"] + sum(a["bytes"] for a in data["areas"])
    table = cli("du").stdout
    for label in ("env 9.9.9", "uv cache (shared)", "CRDS cache", "index cache",
                  "failed builds' leftovers", "installer logs", "total"):
        assert label in table
    listed = json.loads(cli("list", "--json").stdout)[0]
    assert listed["own_bytes"] == env["own_bytes"]
    assert "own" in cli("list").stdout


def test_clean_dry_run_then_clean_never_an_env_or_a_build_in_progress(installed, home,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    store = Store()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    failed = _blob(home / "staging" / "1.20.2@old" / "env" / "lib.so").parents[1]
    (failed / STAGING_OWNER).write_text(dead)  # its builder is gone
    running = _blob(home / "staging" / "3.0.0@now" / "env" / "lib.so").parents[1]
    (running / STAGING_OWNER).write_text(str(os.getpid()))  # a build in progress
    log = _blob(home / "logs" / "1.20.2-dated-1.log", 10_000)
    crds = _blob(store.crds_dir / "mappings" / "jwst" / "jwst_1464.pmap")
    _blob(store.index_dir / "jwst.json", 1000)

    dry = json.loads(cli("clean", "--dry-run", "--json").stdout)
    assert {r["label"] for r in dry["removed"]} == {"failed build's leftovers",
                                                   "installer log", "index cache"}
    assert not any(r["removed"] for r in dry["removed"]) and dry["bytes"] > MB
    assert failed.exists() and log.exists() and store.index_dir.exists()

    out = cli("clean")
    assert out.returncode == 0 and "freed" in out.stdout, out.stderr
    assert not failed.exists() and not log.exists() and not store.index_dir.exists()
    assert running.exists() and crds.exists()
    assert (home / "envs" / installed / "jwenv.json").is_file()
    assert cli("run", installed, "--", "strun", "--exit", "0").returncode == 0

    monkeypatch.setenv("CRDS_PATH", str(store.crds_dir))  # the user's: never touched
    assert "not touched" in cli("clean", "--crds").stdout and crds.exists()
    monkeypatch.delenv("CRDS_PATH")
    cli("clean", "--crds")
    assert not crds.exists() and (home / "envs" / installed).is_dir()
    assert cli("clean").stdout.strip() == "nothing to clean"
