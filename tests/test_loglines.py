"""loglines: the one line of a log that says why."""

from __future__ import annotations

from jwenv import loglines

STRUN_LOG = """\
2025-01-01 12:00:00,000 - stpipe - INFO - Detector1Pipeline instance created.
2025-01-01 12:00:01,000 - CRDS - ERROR -  Error determining best reference for 'trappars'  \
=   No match found.
2025-01-01 12:00:01,000 - stpipe - ERROR - step failed
crds.core.exceptions.CrdsLookupError: Error determining best reference
WARNING: the last line is only a warning
"""

UV_LOG = """\
$ uv pip install -r requirements.txt
  × Failed to build `stsci-imagestats==1.6.2`
  ├─▶ The build backend returned an error
      ModuleNotFoundError: No module named 'numpy'
      hint: This usually indicates a problem with the package or the build environment.
"""


def test_crds_error_wins():
    assert loglines.reason(STRUN_LOG) == (
        "Error determining best reference for 'trappars' = No match found.")


def test_a_python_exception_beats_installer_and_warning_lines():
    assert loglines.reason(UV_LOG) == "ModuleNotFoundError: No module named 'numpy'"
    assert loglines.reason("Traceback:\nKeyError: 'asn_pool'\nWARNING: x\n") == \
        "KeyError: 'asn_pool'"


def test_installer_error_lines_then_any_error_then_the_last_line():
    assert loglines.reason("resolving\n  × No solution found when resolving\n  ╰─▶ Because x\n") \
        == "× No solution found when resolving"
    assert loglines.reason("error: Failed to fetch\nmore\n") == "error: Failed to fetch"
    assert loglines.reason("x - stpipe - ERROR - step failed\nbye\n") == "ERROR - step failed"
    assert loglines.reason("just\n  the   last\n\n") == "the last"
    assert loglines.reason("", default="exit 3, no output") == "exit 3, no output"


def test_long_lines_are_cut_and_tails_keep_their_lines(tmp_path):
    assert len(loglines.reason("x" * 1000)) == loglines.MAX_CHARS
    assert loglines.tail("a\n\nb\nc\n", 2) == ["b", "c"]
    assert loglines.read(tmp_path / "missing.log") == ""
