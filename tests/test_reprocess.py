"""`jwenv reprocess`: input validation (no env needed) and the real chain offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from astropy.io import fits

from helpers import cli, exposure, jwenv, one_line_error, tiny_fits
from helpers import program as fake_program
from jwenv import offline
from jwenv.record import Record


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: tiny_fits(d / "x_uncal.fits", TELESCOP="HST"), "is not a JWST product"),
    (lambda d: (d / "x_uncal.fits").write_text("not fits") and d / "x_uncal.fits",
     "is not a FITS file"),
    (lambda d: tiny_fits(d / "x_weird.fits", TELESCOP="JWST"), "cannot tell the stage"),
    (lambda d: d / "missing_uncal.fits", "no such input"),
    (lambda d: (d / "e_asn.json").write_text('{"asn_type": "image3", "products": []}')
     and d / "e_asn.json", "empty association"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, make, message):
    path = make(tmp_path)
    out = cli("reprocess", "any-env", str(path), "-o", str(tmp_path / "out"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("jwenv: error:")
    assert message in out.stderr
    assert not (tmp_path / "out").exists()


# -- a whole program on the fake release (warm workers, record, failures) ------------------
def _run(installed, files, out, *args):
    res = cli("reprocess", installed, *map(str, files), "-o", str(out), "-j", "2", "--json",
              *args)
    data = json.loads(res.stdout) if res.stdout.strip() else None
    return res, data


def _states(data):
    return {f"{r['stage']}/{r['name']}": (r["state"], r["runner"], r["up_to_date"])
            for r in data["results"][0]["runs"]}


def test_a_program_runs_on_warm_workers_and_a_rerun_does_nothing(installed, tmp_path):
    files = fake_program(tmp_path / "in")
    before = {f: f.read_bytes() for f in files}
    res, data = _run(installed, files, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    # the fake has no association rules: jwenv's own grouping, and it says so
    assert "could not run" in res.stderr and "grouped by observation" in res.stderr
    assert data["results"][0]["grouping"]["source"] == "asn_from_list"
    states = _states(data)
    assert len(states) == 9 + 8 + 4
    assert {s for s, _r, _u in states.values()} == {"done"}
    assert {r for _s, r, _u in states.values()} == {"warm"}
    out = tmp_path / "out" / installed
    assert sorted(p.name for p in out.glob("*_i2d.fits")) == [
        "jw01234-o001_t001_nircam_clear-f150w-sub400p_i2d.fits",
        "jw01234-o001_t001_nircam_clear-f200w-sub400p_i2d.fits",
        "jw01234-o002_t002_nircam_clear-f150w-sub400p_i2d.fits",
        "jw01234-o002_t002_nircam_clear-f200w-sub400p_i2d.fits"]
    assert all(f.read_bytes() == b for f, b in before.items())  # inputs untouched
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(f.name for f in files)
    again, data = _run(installed, files, tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert all(u for _s, _r, u in _states(data).values())


def test_one_broken_exposure_stops_only_what_needs_it(installed, tmp_path):
    files = [*fake_program(tmp_path / "in"), exposure(tmp_path / "in", 1, 5, detector="NRCBAD")]
    res, data = _run(installed, files, tmp_path / "out")
    assert res.returncode == 1
    error = [ln for ln in res.stderr.splitlines() if ln.startswith("jwenv: error")]
    assert error == ["jwenv: error: 3 of 23 jobs not done (1 failed); first: stage 1 "
                     "jw01234001001_01101_00005_nrcbad: ValueError: this exposure is broken"]
    states = _states(data)
    assert states["1/jw01234001001_01101_00005_nrcbad"][0] == "failed"
    assert states["2/jw01234001001_01101_00005_nrcbad"][0] == "skipped"
    assert states["3/jw01234-o001_t001_nircam_clear-f200w-sub400p"][0] == "skipped"
    assert sum(s == "done" for s, _r, _u in states.values()) == 20
    run = next(r for r in data["results"][0]["runs"] if r["state"] == "skipped"
               and r["stage"] == 3)
    assert run["error"] == "needs 2/jw01234001001_01101_00005_nrcbad skipped"
    # without --retry-failed the failure stays; with it, the failed job runs again
    _, data = _run(installed, files, tmp_path / "out")
    assert _states(data)["1/jw01234001001_01101_00005_nrcbad"][0] == "failed"
    _, data = _run(installed, files, tmp_path / "out", "--retry-failed")
    record = Record(tmp_path / "out" / installed / "jwenv-record.sqlite")
    assert record.row("1/jw01234001001_01101_00005_nrcbad").attempts == 2
    assert record.row("1/jw01234001001_01101_00001_nrcb1").attempts == 1


def test_a_dying_worker_costs_one_retry_in_a_fresh_process(installed, tmp_path):
    files = [exposure(tmp_path / "in", 1, n, detector=d) for n, d in ((1, "NRCB1"),
                                                                      (2, "NRCDIES"))]
    res, data = _run(installed, files, tmp_path / "out", "--stages", "1")
    assert res.returncode == 0, res.stderr
    assert "the worker running jw01234001001_01101_00002_nrcdies died (killed by signal 9); " \
           "retrying it once in a fresh process" in res.stderr
    states = _states(data)
    assert states["1/jw01234001001_01101_00002_nrcdies"][:2] == ("done", "strun")
    assert states["1/jw01234001001_01101_00001_nrcb1"][:2] == ("done", "warm")


def test_kill_9_then_resume_redoes_only_the_jobs_in_flight(installed, tmp_path):
    files = [exposure(tmp_path / "in", obs, 1, detector=d)
             for obs, d in ((1, "NRCB1"), (2, "NRCB2"), (3, "NRCSLEEPY"))]
    out = tmp_path / "out"
    env = dict(os.environ, FAKE_JWST_SLEEP="60")
    proc = subprocess.Popen([sys.executable, "-m", "jwenv", "reprocess", installed,
                             *map(str, files), "-o", str(out), "--stages", "1", "-j", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = out / installed / "jwenv-record.sqlite"
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None
        if record.is_file():
            with Record(record) as rec:
                states = {r.id: r.state for r in rec.rows()}
            if states.get("1/jw01234003001_01101_00001_nrcsleepy") == "running":
                break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    res = cli("reprocess", installed, *map(str, files), "-o", str(out), "--stages", "1",
              "--json")
    assert res.returncode == 0, res.stderr
    assert "1 job(s) were running when the last run stopped: they run again" in res.stderr
    with Record(record) as rec:
        attempts = {r.id: (r.state, r.attempts) for r in rec.rows()}
    assert attempts == {"1/jw01234001001_01101_00001_nrcb1": ("done", 1),
                        "1/jw01234002001_01101_00001_nrcb2": ("done", 1),
                        "1/jw01234003001_01101_00001_nrcsleepy": ("done", 2)}


def test_strun_mode_dry_run_and_budget(installed, tmp_path):
    files = fake_program(tmp_path / "in")[:2]
    dry = cli("reprocess", installed, *map(str, files), "-o", str(tmp_path / "dry"),
              "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["plans"][0]
    assert [j["id"] for j in planned["jobs"]][:2] == ["1/jw01234001001_01101_00001_nrcb1",
                                                      "1/jw01234001001_01101_00002_nrcb1"]
    assert not (tmp_path / "dry").exists()  # a dry run writes nothing
    small = cli("reprocess", installed, *map(str, files), "-o", str(tmp_path / "o"),
                "--memory", "1M")
    one_line_error(small, "--memory 1.0 MB is smaller than the smallest job")
    assert not (tmp_path / "o").exists()
    res, data = _run(installed, files, tmp_path / "s", "--strun", "--stages", "1")
    assert res.returncode == 0, res.stderr
    assert {r for _s, r, _u in _states(data).values()} == {"strun"}


def test_inputs_of_two_programs_need_allow_mixed(installed, tmp_path):
    files = [exposure(tmp_path / "in", 1, 1), exposure(tmp_path / "in", 1, 1,
                                                       program="02345")]
    one_line_error(cli("reprocess", installed, *map(str, files), "-o", str(tmp_path / "o")),
                   "--allow-mixed")
    assert not (tmp_path / "o").exists()
    res, _ = _run(installed, files, tmp_path / "o", "--allow-mixed", "--stages", "1")
    assert res.returncode == 0, res.stderr


# -- the real chain (integration) ------------------------------------------------------
@pytest.fixture(scope="module")
def program(real_env, tmp_path_factory):
    """The synthetic 3-exposure program: made by the older release, readable by both."""
    envs = [real_env("1.20.2").env, real_env("3.0.0").env]
    return offline.prepare(envs, tmp_path_factory.mktemp("program"), program=True)


def _cli_env(real_home, program) -> dict[str, str]:
    return dict(os.environ, JWENV_HOME=str(real_home), CRDS_PATH=str(program.crds_path),
                CRDS_IGNORE_MAPPING_CHECKSUM="1")


@pytest.fixture(scope="module")
def whole(whole_program):
    return whole_program


def _generator_level3(real_home, pool: Path, version: str, tmp: Path) -> set[str]:
    """The level-3 products the release's own asn_generate makes from a pool."""
    tmp.mkdir()
    proc = jwenv("run", "--offline", version, "--", "asn_generate", str(pool),
                 "--all-candidates", "-p", str(tmp), cwd=tmp,
                 env=dict(os.environ, JWENV_HOME=str(real_home)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for path in tmp.glob("*_asn.json"):
        asn = json.loads(path.read_text())
        if asn["asn_type"].endswith("3"):
            names |= {p["name"] for p in asn["products"]}
    return names


@pytest.mark.integration
def test_whole_program_under_two_releases_by_their_own_rules(real_env, real_home, whole,
                                                              tmp_path):
    """The release's association rules, the archive's names, one filter per product, every
    catalog against its observation's truth, every level compared; then a re-run that has
    nothing to do."""
    out = tmp_path / "runs"
    proc = jwenv("compare", "1.20.2", "3.0.0", "--reprocess", "-j", "2", "-o", str(out),
                 "--offline", "--crds-context", whole.context, "--json", "--",
                 *[str(p) for p in whole.uncal], env=_cli_env(real_home, whole))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    truths = whole.truths()
    for result in report["runs"]:
        assert result["ok"], result["error"]
        assert result["grouping"]["source"] == "release rules"
        d = Path(result["output_dir"])
        assert {r["runner"] for r in result["runs"]} == {"warm"}
        assert [sum(r["stage"] == s for r in result["runs"]) for s in (1, 2, 3)] == [10, 10, 6]
        # the products and names are what the release's own generator makes from the pool
        (pool,) = (d / "asn").glob("jw01234_*_pool.csv")
        made = {p.name.removesuffix("_i2d.fits") for p in d.glob("jw01234-o*_i2d.fits")}
        assert made == _generator_level3(real_home, pool, result["env"],
                                         tmp_path / f"gen-{result['env']}")
        assert made == {f"jw01234-o{o}_t{o}_nircam_clear-{f}-sub400p"
                        for o in ("001", "002", "003") for f in ("f150w", "f200w")}
        for name in sorted(made):
            i2d = d / f"{name}_i2d.fits"
            with fits.open(i2d) as h:
                assert h[0].header["CAL_VER"] == result["jwst_version"]
                assert h[0].header["FILTER"].lower() in name
                # every input of the mosaic has the product's filter (the header table)
                assert {str(f).strip().lower() for f in h["HDRTAB"].data["FILTER"]} == {
                    h[0].header["FILTER"].lower()}
                obs = name.split("-o", 1)[1][:3]
                if obs in truths:  # science fields; o003 is the star-free background
                    for key in ("S_TWKREG", "S_SKYMAT", "S_OUTLIR", "S_RESAMP"):
                        assert h[0].header[key] == "COMPLETE", (name, key)
            if obs in truths:
                m = offline.match_truth(d / f"{name}_cat.ecsv", truths[obs], 0.05)
                assert m["recovered"] == m["injected"], (name, m)
        with fits.open(next(d.glob("jw01234001*_cal.fits"))) as h:
            for key in ("S_WCS", "S_FLAT", "S_PHOTOM", "S_BKDSUB"):
                assert h[0].header[key] == "COMPLETE", key
        assert len(list((d / "logs").glob("stage*.log"))) == 26
    (comparison,) = report["comparisons"]
    names = {f["name"] for f in comparison["files"]}
    for level in ("_rate.fits", "_cal.fits", "_i2d.fits", "_cat.ecsv"):
        assert any(n.endswith(level) for n in names), level
    again = jwenv("reprocess", "3.0.0", *[str(p) for p in whole.uncal], "-o", str(out),
                  "--offline", "--crds-context", whole.context, "--json",
                  env=_cli_env(real_home, whole))
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(r["up_to_date"] for r in json.loads(again.stdout)["results"][0]["runs"])


@pytest.mark.integration
def test_warm_workers_make_what_strun_makes(real_env, real_home, whole, tmp_path):
    """Detector1 and Image2 on warm workers and with one strun each: `jwenv diff` finds
    nothing (DATE-like keywords and the ASDF history aside, as jwst's regression tests)."""
    real_env("3.0.0")
    science = next(p for p in whole.uncal if "jw01234001" in str(p))
    backgrounds = [Path(p) for p in whole.report["background"]]
    inputs = [str(science), *map(str, backgrounds)]
    for mode in ("warm", "strun"):
        proc = jwenv("reprocess", "3.0.0", *inputs, "--stages", "1,2", "-o",
                     str(tmp_path / mode), "--offline", "--crds-context", whole.context,
                     "--json", *(["--strun"] if mode == "strun" else []),
                     env=_cli_env(real_home, whole))
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs = json.loads(proc.stdout)["results"][0]["runs"]
        assert {r["runner"] for r in runs} == {mode}
    diff = jwenv("diff", str(tmp_path / "warm" / "3.0.0"), str(tmp_path / "strun" / "3.0.0"),
                 "--json")
    assert diff.returncode == 0, diff.stdout[-3000:]
    compared = {f["name"] for f in json.loads(diff.stdout)["comparisons"][0]["files"]}
    stem = science.name.removesuffix("_uncal.fits")
    assert {f"{stem}_rate.fits", f"{stem}_cal.fits"} <= compared


@pytest.mark.integration
def test_kill_9_and_a_broken_exposure_then_resume(real_env, real_home, whole, tmp_path):
    """One exposure CRDS cannot serve fails alone (its products skipped, with the reason);
    a kill -9 mid-run, then a resume that redoes only the jobs in flight."""
    real_env("3.0.0")
    first = next(Path(p) for p in whole.uncal if "jw01234001" in str(p))
    bad = tmp_path / "in" / first.name.replace("nrcb1", "nrca1")
    bad.parent.mkdir()
    bad.write_bytes(first.read_bytes())
    fits.setval(bad, "DETECTOR", value="NRCA1")  # the local context serves NRCB1 only
    inputs = [*map(str, whole.uncal), str(bad)]
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "jwenv", "reprocess", "3.0.0", *inputs, "-o", str(out),
           "-j", "2", "--offline", "--crds-context", whole.context]
    proc = subprocess.Popen(cmd, env=_cli_env(real_home, whole), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    record = out / "3.0.0" / "jwenv-record.sqlite"
    deadline = time.monotonic() + 600
    while True:
        assert time.monotonic() < deadline and proc.poll() is None
        if record.is_file():
            with Record(record) as rec:
                counts = rec.counts()
            if counts["done"] >= 4 and counts["running"] >= 1:
                break
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    with Record(record) as rec:
        before = {r.id: r.state for r in rec.rows()}
    in_flight = {k for k, v in before.items() if v == "running"}
    resumed = jwenv(*cmd[3:], "--json", env=_cli_env(real_home, whole))
    assert resumed.returncode == 1  # the broken exposure
    assert f"{len(in_flight)} job(s) were running when the last run stopped" in resumed.stderr
    runs = {f"{r['stage']}/{r['name']}": r for r in json.loads(resumed.stdout)["results"][0]
            ["runs"]}
    base = bad.name.removesuffix("_uncal.fits")
    assert runs[f"1/{base}"]["state"] == "failed"
    assert "Error determining best reference" in runs[f"1/{base}"]["error"]
    assert runs[f"2/{base}"]["state"] == "skipped"
    # the bad exposure's product (all detectors of o001 in its filter) waits for it
    (skipped3,) = [k for k, r in runs.items() if r["stage"] == 3 and r["state"] == "skipped"]
    assert skipped3.startswith("3/jw01234-o001_t001_nircam_clear-")
    done = {k for k, r in runs.items() if r["state"] == "done"}
    assert len(done) == len(runs) - 3
    for key in done:
        expected = 2 if key in in_flight else 1
        assert runs[key]["attempts"] == expected, (key, before.get(key), runs[key])


@pytest.mark.integration
def test_restart_from_rate_products(real_env, real_home, program, tmp_path):
    """How archive users work: download rate files, restart at stage 2."""
    env = real_env("1.20.2")
    stage1 = tmp_path / "stage1"
    for uncal in program.uncal:
        rc = env.env.run(["strun", "jwst.pipeline.Detector1Pipeline", str(uncal),
                          "--output_dir", str(stage1)], cache=program.cache,
                         log=tmp_path / "d1.log")
        assert rc == 0, (tmp_path / "d1.log").read_text()[-2000:]
    rates = sorted(stage1.glob("*_rate.fits"))
    proc = jwenv("reprocess", "1.20.2", *[str(p) for p in rates], "--stages", "2",
                 "-o", str(tmp_path / "out"), "--offline", "--crds-context", program.context,
                 "--json", env=_cli_env(real_home, program))
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(proc.stdout)["results"][0]["runs"]
    assert [r["stage"] for r in runs] == [2, 2, 2]  # the background has its own product
    science = [r for r in runs if "jw01234001" in r["name"]]
    assert [len(r["inputs"]) for r in science] == [2, 2]  # ... and is each one's background
    assert sorted(p.name for p in stage1.iterdir()) == sorted(
        [*(p.name for p in rates), *(p.name for p in stage1.glob("*_rateints.fits")),
         *(p.name for p in stage1.glob("*_trapsfilled.fits"))])  # inputs untouched


@pytest.mark.integration
def test_missing_reference_is_crds_own_message(real_env, real_home, program, tmp_path):
    real_env("1.20.2")
    bad = tmp_path / "jw01234001001_01101_00001_nrca1_uncal.fits"
    bad.write_bytes(program.uncal[0].read_bytes())
    fits.setval(bad, "DETECTOR", value="NRCA1")  # the local context serves NRCB1 only
    out_dir = tmp_path / "out"
    proc = jwenv("reprocess", "1.20.2", str(bad), "--stages", "1", "-o", str(out_dir),
                 "--offline", "--crds-context", program.context,
                 env=_cli_env(real_home, program))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("jwenv: error: 1 of 1 jobs not done (1 failed); first: stage 1 "
                           "jw01234001001_01101_00001_nrca1: ")
    assert "Error determining best reference for '" in last and "NRCA1" in last
    assert not list((out_dir / "1.20.2").glob("*.fits"))  # nothing that looks complete


@pytest.mark.integration
def test_doctor_deep_tells_era_pins_from_todays(real_env, real_home):
    """1.20.2 with today's photutils (3.0) fails Image3's tweakreg; jwenv's era-correct
    environment runs the whole chain. An import check passes for both."""
    env = dict(os.environ, JWENV_HOME=str(real_home))
    real_env("1.20.2")
    good = jwenv("doctor", "1.20.2", "--deep", "--json", env=env)
    assert good.returncode == 0, good.stdout[-3000:]
    checks = json.loads(good.stdout)["1.20.2"]["checks"]
    assert checks[-1]["check"] == "catalog against the truth table" and checks[-1]["ok"]
    latest = jwenv("install", "1.20.2", "--deps", "latest", "--name", "1.20.2-latest",
                   "--check", "import", "--json", env=env)
    assert latest.returncode == 0, latest.stderr[-2000:]
    packages = json.loads(latest.stdout)["packages"]
    assert any(p.startswith("photutils==3.") for p in packages), packages
    bad = jwenv("doctor", "1.20.2-latest", "--deep", "--json", env=env)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)["1.20.2-latest"]
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed[0]["check"].startswith("stage 3 Image3Pipeline")
    assert "xcentroid" in report["checks"][-1]["detail"]  # tweakreg's own complaint


def test_progress_and_summary_are_this_runs_own(installed, tmp_path):
    """Progress lines give the clock once (a job's own time is in its line); after a rerun
    whose stage 1 fails, nothing of the earlier run is shown as if this run made it."""
    import re

    from fakejwst import build_wheel
    from helpers import BASE_PYTHON

    files = fake_program(tmp_path / "in")
    args = ["reprocess", installed, *map(str, files), "-o", str(tmp_path / "out"), "-j", "2"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    lines = [ln for ln in first.stderr.splitlines() if " stage " in ln]
    assert lines and all(re.match(r"^\[\d+:\d\d\] ", ln) for ln in lines), lines[:3]
    assert not any(re.search(r"\(\d+ s\) \d+ s", ln) for ln in lines)
    assert "_i2d.fits: SCI" in first.stdout  # stage 3 products, summarised

    broken = build_wheel(tmp_path / "w", "9.9.1")  # a release whose every job fails
    assert cli("install", str(broken), "--python", str(BASE_PYTHON), "--check", "import",
               "--name", installed, "--force").returncode == 0
    again = cli(*args)
    assert again.returncode == 1
    assert "_i2d.fits" not in again.stdout and "SCI" not in again.stdout
    assert "needs 2/" in again.stdout  # stage 3: skipped, with the reason
    _, data = _run(installed, files, tmp_path / "out")
    stage3 = [r for r in data["results"][0]["runs"] if r["stage"] == 3]
    assert {r["state"] for r in stage3} == {"skipped"}
    assert all(r["peak_rss"] is None and r["seconds"] == 0 and r["made_by"] is None
               for r in stage3)
