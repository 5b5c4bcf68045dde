"""Shared by the site hooks (written beside them as _jwenv_after_import.py): run a patch on
a module right after it is first executed, so interpreter start-up imports nothing more.
Kept to Python 3.6 syntax: the hooks run in the oldest environments."""

import sys


class _Finder:
    """Patch `name` right after it is executed, once."""

    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module
        patch = self.patch

        def exec_module(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def after_import(name, patch):
    """Call `patch(module)` once `name` is imported (now, if it already is)."""
    if name in sys.modules:
        patch(sys.modules[name])
    else:
        sys.meta_path.insert(0, _Finder(name, patch))
