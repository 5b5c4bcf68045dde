"""Finding the Python interpreters on this machine.

Sources, in order: `pythonX.Y` / `python3` on PATH, pyenv's versions (which its
shims hide except for the global one), and interpreters uv has installed. Every
candidate is asked its own version: names lie (python3 may be any 3.x).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from jwenv.errors import BadInput, NoInterpreter

_NAME_RE = re.compile(r"^python3(\.\d+)?$")
_PROBE = "import sys, json; print(json.dumps([list(sys.version_info[:3]), sys.executable]))"


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: Version
    source: str  # "path", "pyenv", "uv" or "given"

    @property
    def minor(self) -> str:
        return f"{self.version.major}.{self.version.minor}"


def probe(path: Path, source: str = "given") -> Interpreter | None:
    """Ask an interpreter what it is; None if it does not run."""
    try:
        out = subprocess.run([str(path), "-I", "-c", _PROBE], capture_output=True, text=True,
                             timeout=15)
        (major, minor, micro), _exe = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return Interpreter(Path(path), Version(f"{major}.{minor}.{micro}"), source)


def _candidates() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not os.path.isdir(d) or "shims" in Path(d).parts[-1:]:
            continue
        try:
            for entry in sorted(os.listdir(d)):
                if _NAME_RE.match(entry):
                    found.append((Path(d) / entry, "path"))
        except OSError:
            continue
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for exe in sorted(Path(pyenv_root).glob("versions/*/bin/python3.*")):
        if re.fullmatch(r"python3\.\d+", exe.name):
            found.append((exe, "pyenv"))
    uv_dir = _uv_python_dir()
    if uv_dir:
        for exe in sorted(uv_dir.glob("*/bin/python3.*")):
            if re.fullmatch(r"python3\.\d+", exe.name):
                found.append((exe, "uv"))
    # pyenv's shim for the global version is on PATH; resolve it to the real file too.
    shim = shutil.which("python3")
    if shim:
        found.append((Path(shim), "path"))
    return found


def _uv_python_dir() -> Path | None:
    env = os.environ.get("UV_PYTHON_INSTALL_DIR")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    d = Path(data) / "uv" / "python"
    return d if d.is_dir() else None


def discover() -> list[Interpreter]:
    """Every working interpreter, one per (version, real file), newest first."""
    seen: set[Path] = set()
    result: list[Interpreter] = []
    for path, source in _candidates():
        try:
            real = path.resolve()
        except OSError:
            continue
        if real in seen:
            continue
        seen.add(real)
        interp = probe(path, source)
        if interp is not None and interp.version.major == 3:
            result.append(interp)
    by_version: dict[Version, Interpreter] = {}
    for interp in result:
        by_version.setdefault(interp.version, interp)
    return sorted(by_version.values(), key=lambda i: i.version, reverse=True)


def allowed(interpreters: list[Interpreter], requires_python: str | None) -> list[Interpreter]:
    """Those that satisfy Requires-Python, newest first."""
    spec = SpecifierSet(requires_python or "")
    return [i for i in interpreters if spec.contains(i.version, prereleases=True)]


def from_option(value: str, interpreters: list[Interpreter] | None = None) -> Interpreter:
    """`--python 3.8` (a version) or `--python /path/to/python`."""
    if "/" in value or value.startswith("python"):
        exe = shutil.which(value) or value
        interp = probe(Path(exe))
        if interp is None:
            raise NoInterpreter(f"--python {value}: not a working Python interpreter")
        return interp
    if not re.fullmatch(r"3(\.\d+){1,2}", value):
        raise BadInput(f"--python {value!r}: give a version like 3.11 or a path to an interpreter")
    found = interpreters if interpreters is not None else discover()
    want = Version(value)
    for interp in found:
        if interp.version.release[: len(want.release)] == want.release:
            return interp
    raise NoInterpreter(missing_message(f"=={value}.*" if value.count(".") == 1 else f"=={value}",
                                        found, wanted=value))


# The oldest Python that `uv python install` offers (`uv python list --all-versions`).
UV_OLDEST = Version("3.8")


def missing_message(requires: str, found: list[Interpreter], wanted: str | None = None) -> str:
    minor = wanted or _suggest(requires)
    return (f"no Python interpreter satisfies {requires} (found: {_minors(found)}); "
            f"get one with {_how_to_get(minor)} or pass --python /path/to/python")


def era_message(release: str, pythons: list[str], found: list[Interpreter]) -> str:
    """One line: the release ran only on Pythons this machine lacks (jwst 0.7.7: 2.7, 3.5)."""
    py3 = [p for p in pythons if not p.startswith("2.")]
    want = py3[-1] if py3 else pythons[-1]
    py2 = "; uv makes no Python 2 environments" if len(py3) < len(pythons) else ""
    return (f"jwst {release} ran on Python {' or '.join(pythons)} only, and none is usable "
            f"here (found: {_minors(found)}{py2}); get Python {want} with "
            f"{_how_to_get(want, pyenv_too=True)}, or pass --python /path/to/python{want}")


def _minors(found: list[Interpreter]) -> str:
    return ", ".join(sorted({i.minor for i in found}, key=Version)) or "none"


def _how_to_get(minor: str, pyenv_too: bool = False) -> str:
    if Version(minor) < UV_OLDEST:
        return f"`pyenv install {minor}`" + (f" (uv provides {UV_OLDEST} and newer)"
                                             if pyenv_too else "")
    return f"`uv python install {minor}`" + (f" or `pyenv install {minor}`" if pyenv_too else "")


def _suggest(requires: str) -> str:
    """The newest minor a requirement allows ('3.11' when it is not a specifier at all)."""
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:  # e.g. "any Python 3": no requirement to honour
        return "3.11"
    for minor in range(14, 5, -1):
        if spec.contains(Version(f"3.{minor}.0")) or spec.contains(Version(f"3.{minor}.99")):
            return f"3.{minor}"
    return "3.11"
