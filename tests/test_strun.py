"""strun: output directories and the one-line error of a failed run."""

from __future__ import annotations

from pathlib import Path

import pytest

from jwenv import strun
from jwenv.errors import BadInput


def test_output_dir_in_both_spellings_and_forms():
    assert strun.output_dir(["strun", "P", "x.fits", "--output_dir", "out"]) == "out"
    assert strun.output_dir(["strun", "P", "--output-dir=o2"]) == "o2"
    assert strun.output_dir(["strun", "P", "x.fits"]) is None


def test_ensure_output_dir_only_for_strun(tmp_path):
    assert strun.ensure_output_dir(["strun", "P", "--output_dir", "a/b"], tmp_path) == \
        tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    assert strun.ensure_output_dir(["python", "--output_dir", "c"], tmp_path) is None
    assert not (tmp_path / "c").exists()


def test_command_for_adds_each_versions_directory_and_refuses_its_own():
    assert strun.command_for(["strun", "P", "x.fits"], Path("/o/1.20.2")) == [
        "strun", "P", "x.fits", "--output_dir", "/o/1.20.2"]
    assert strun.command_for(["python", "-c", "pass"], Path("/o")) == ["python", "-c", "pass"]
    with pytest.raises(BadInput, match="each version gets its own directory"):
        strun.command_for(["strun", "P", "--output_dir=x"], Path("/o"))


def test_error_line(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("INFO - start\nValueError: bad input\n")
    assert strun.error_line(log, 1) == "ValueError: bad input"
    assert strun.error_line(tmp_path / "none.log", 5) == "exit 5, no output"
