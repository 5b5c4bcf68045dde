"""The layers point one way (docs/design.md): CLI → core → foundations.

Read from the source with `ast`, as pipx's test_imports does, so a rule broken by an
import inside a function is caught too. The rules, each a test below:
- no import circle in the package;
- only the console entry (fastrun, __main__) imports cli; only the CLI layer imports
  Typer or rich, or prints;
- foundations import only foundations; the core imports nothing of the CLI;
- the installer never imports envs (Env is built on the installer, not the reverse);
- compare, schedule and record import nothing of jwenv; nor do in-environment scripts;
- `jwenv run`'s modules load neither Typer nor the installer (start-up cost).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "jwenv"

CLI = {"jwenv.cli", "jwenv.fastrun", "jwenv.report", "jwenv.__main__"}
FOUNDATIONS = {"jwenv.errors", "jwenv.store", "jwenv.crds", "jwenv.runner", "jwenv.loglines",
               "jwenv.strun", "jwenv.backends", "jwenv.interpreters", "jwenv.scripts",
               "jwenv.record", "jwenv.schedule"}
ENTRY = {"jwenv.fastrun", "jwenv.__main__"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = _modules()
IN_ENV_SCRIPTS = {m for m in MODULES if m.startswith("jwenv.scripts.")}


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module `path` imports (at any depth in the file), with its line."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            # `from jwenv import crds` imports the module jwenv.crds
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names
                      if f"{node.module}.{a.name}" in MODULES]
    return found


def _jwenv_edges(module: str) -> set[str]:
    return {name for name, _ in _imports(MODULES[module])
            if name in MODULES and name != module and name != "jwenv"}


GRAPH = {m: _jwenv_edges(m) for m in MODULES}


def _violations(modules: set[str], allowed) -> list[str]:
    return [f"{m} imports {dep}" for m in sorted(modules) for dep in sorted(GRAPH[m])
            if not allowed(dep)]


def test_the_rules_see_every_module():
    assert {"jwenv.cli", "jwenv.envs", "jwenv.installer", "jwenv.crds"} <= set(MODULES)
    assert set(MODULES) >= FOUNDATIONS | CLI
    assert "jwenv.envs" in GRAPH["jwenv.reprocess"]  # an import at the top is seen
    assert "jwenv.installer" in GRAPH["jwenv.envs"]  # and one inside a function


def test_no_import_circle():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for dep in sorted(GRAPH[m]):
            if state.get(dep) == 1:
                circle = [*path[path.index(dep):], dep]
                pytest.fail("import circle: " + " → ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_only_the_entry_point_imports_the_cli():
    assert [f"{m} imports jwenv.cli" for m in sorted(GRAPH)
            if "jwenv.cli" in GRAPH[m] and m not in ENTRY] == []


@pytest.mark.parametrize("library", ["typer", "rich", "click"])
def test_only_the_cli_layer_imports_the_ui_libraries(library):
    bad = [f"{m}:{line}" for m in sorted(set(MODULES) - CLI)
           for name, line in _imports(MODULES[m]) if name.split(".")[0] == library]
    assert bad == []


def test_only_the_cli_layer_prints():
    """Core code returns data; in-environment scripts print their JSON (their protocol)."""
    bad = []
    for m in sorted(set(MODULES) - CLI - IN_ENV_SCRIPTS):
        for node in ast.walk(ast.parse(MODULES[m].read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "print":
                    bad.append(f"{m}:{node.lineno} print()")
                elif (isinstance(f, ast.Attribute) and f.attr == "write"
                      and isinstance(f.value, ast.Attribute)
                      and f.value.attr in ("stdout", "stderr")):
                    bad.append(f"{m}:{node.lineno} sys.{f.value.attr}.write()")
    assert bad == []


def test_foundations_import_only_foundations():
    assert _violations(FOUNDATIONS, lambda dep: dep in FOUNDATIONS) == []


def test_the_core_imports_nothing_of_the_cli():
    core = set(MODULES) - CLI - FOUNDATIONS - IN_ENV_SCRIPTS
    assert _violations(core, lambda dep: dep not in CLI) == []


def test_the_installer_never_imports_envs():
    assert "jwenv.envs" not in GRAPH["jwenv.installer"]


@pytest.mark.parametrize("module", ["jwenv.compare", "jwenv.schedule", "jwenv.record"])
def test_self_contained_modules_import_nothing_of_jwenv(module):
    # compare: reused by anything that has products; schedule and record: by any executor
    assert [n for n, _ in _imports(MODULES[module]) if n.startswith("jwenv")] == []


def test_in_environment_scripts_import_nothing_of_jwenv():
    assert {"jwenv.scripts.health_check", "jwenv.scripts.make_asn",
                              "jwenv.scripts.make_program"} <= IN_ENV_SCRIPTS
    bad = [f"{m}:{line} {n}" for m in sorted(IN_ENV_SCRIPTS)
           for n, line in _imports(MODULES[m]) if n.split(".")[0] == "jwenv"]
    assert bad == []


def test_the_run_path_loads_neither_typer_nor_the_installer():
    probe = ("import sys, jwenv.fastrun, jwenv.envs; "
             "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('typer', 'click', 'rich', 'numpy', 'astropy') or m in "
             "('jwenv.cli', 'jwenv.installer', 'jwenv.releases', 'jwenv.strategies'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == []
