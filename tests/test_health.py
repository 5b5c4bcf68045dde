"""health: the check that decides whether a build is kept (fake jwst, offline)."""

from __future__ import annotations

from jwenv import Env, health


def test_import_level_passes_on_the_fake(installed):
    env = Env.get(installed)
    report = health.check(env.path, "import", env.environ(offline=True))
    assert report["ok"] and report["jwst_version"] == "9.9.9"
    assert [c["check"] for c in report["checks"]] == ["import jwst", "import pipelines"]
    assert not (env.path / "jwenv-health").exists()  # its work directory is removed


def test_a_failing_check_is_a_report_with_the_reason(installed):
    env = Env.get(installed)
    report = health.check(env.path, "full", env.environ(offline=True))
    assert not report["ok"]  # the fake cannot run GroupScaleStep
    assert health.first_failure(report).startswith("GroupScaleStep on a tiny exposure: ")


def test_a_broken_interpreter_is_a_report_not_an_exception(installed, tmp_path):
    env = Env.get(installed)
    (env.python).unlink()
    (env.python).write_text("#!/bin/sh\necho 'Fatal Python error: init' >&2\nexit 1\n")
    env.python.chmod(0o755)
    report = health.check(env.path, "import", env.environ(offline=True))
    assert report == {**report, "ok": False}
    assert health.first_failure(report) == "health script: Fatal Python error: init"
    assert health.check(env.path, "none", {})["ok"]
