from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.version import Version

from jwenv import interpreters
from jwenv.errors import BadInput, NoInterpreter


def test_discover_finds_the_running_python():
    found = interpreters.discover()
    mine = Version("{}.{}.{}".format(*sys.version_info[:3]))
    assert mine in {i.version for i in found}
    assert [i.version for i in found] == sorted((i.version for i in found), reverse=True)


def test_allowed_filters_by_requires_python():
    fake = [interpreters.Interpreter(Path(f"/x/python3.{m}"), Version(f"3.{m}.1"), "path")
            for m in (13, 11, 8)]
    assert [i.minor for i in interpreters.allowed(fake, ">=3.11,<3.14")] == ["3.13", "3.11"]
    assert [i.minor for i in interpreters.allowed(fake, None)] == ["3.13", "3.11", "3.8"]


def test_python_option_forms():
    me = interpreters.from_option(sys.executable)
    assert me.version.release[:2] == sys.version_info[:2]
    with pytest.raises(BadInput):
        interpreters.from_option("three")
    with pytest.raises(NoInterpreter, match=r"uv python install 3\.99"):
        interpreters.from_option("3.99", [])


def test_missing_message_names_need_found_and_fix():
    fake = [interpreters.Interpreter(Path("/x/python3.11"), Version("3.11.7"), "path")]
    msg = interpreters.missing_message(">=3.6,<3.9", fake)
    assert ">=3.6,<3.9" in msg and "found: 3.11" in msg and "uv python install 3.8" in msg


def test_a_release_of_an_older_python_says_which_and_how_to_get_it():
    from jwenv.interpreters import era_message

    found = [interpreters.Interpreter(Path("/x/python3.6"), Version("3.6.15"), "pyenv")]
    msg = era_message("0.7.7", ["2.7", "3.5"], found)
    assert msg.startswith("jwst 0.7.7 ran on Python 2.7 or 3.5 only")
    assert "found: 3.6" in msg and "uv makes no Python 2 environments" in msg
    # uv offers no 3.5, so only pyenv is suggested for it; a 3.8 release gets both
    assert "`pyenv install 3.5`" in msg and "uv python install 3.5" not in msg
    assert "\n" not in msg
    assert "`uv python install 3.8`" in era_message("0.17.0", ["3.8"], found)


def test_no_interpreter_and_no_requirement_still_says_how_to_get_one():
    from jwenv.interpreters import missing_message

    msg = missing_message("any Python 3", [])
    assert msg.startswith("no Python interpreter satisfies any Python 3 (found: none)")
    assert "`uv python install 3.11`" in msg
