"""Reading logs for people: the one line that says why something failed.

Every failure jwenv reports (an installer, a health check, an in-environment
script, a pipeline run) ends in a log or a captured stream; this module is the
one reader that turns it into a line. The most specific kind of line wins, and
the last of that kind: a CRDS error names the missing reference, a Python
exception its cause, an installer's ``error:``/``×`` line the failed build.
A log whose last line is a warning (0.15.1's strun exits 1 with nothing else)
therefore does not report the warning when an error line exists.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_CHARS = 300
_REASONS = (
    re.compile(r"CRDS - ERROR - +(.*)"),
    re.compile(r"^\s*(\w+(?:Error|Exception): .*)$"),
    re.compile(r"^\s*((?:error[:\s]|×).*)$"),
    re.compile(r"(ERROR.*)"),
)


def lines(text: str | None) -> list[str]:
    """The non-blank lines of `text`."""
    return [ln for ln in (text or "").splitlines() if ln.strip()]


def read(path: Path) -> str:
    """A log's text, or '' when it cannot be read (a missing log is not a second error)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def reason(text: str | None, default: str = "no output") -> str:
    """The one line of `text` that best says why it failed, whitespace folded."""
    found = lines(text)
    for pattern in _REASONS:
        hits = [m.group(1) for ln in found if (m := pattern.search(ln))]
        if hits:
            return _one(hits[-1])
    return _one(found[-1]) if found else default


def tail(text: str | None, n: int = 5) -> list[str]:
    """The last `n` non-blank lines, as they are (for showing beside a reason)."""
    return lines(text)[-n:]


def _one(line: str) -> str:
    return " ".join(line.split())[:MAX_CHARS]
