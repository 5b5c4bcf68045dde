"""AsdfFile(inline_threshold=...) for jwst 0.12.1-0.12.3 (release-fix data, envs/fixes.toml).

jwst 0.12.1-0.12.3 create every data model with `asdf.AsdfFile(..., inline_threshold=0)`.
That argument existed only in asdf's development branch from 2018-10-09 (b4b5fe2, "Add
top-level option for controlling inline threshold size") until its revert on 2018-11-15
(cbc688d), and DMS ran a snapshot from that window (asdf 2.1.1a.dev9+g359434a,
astroconda-releases jwstdp/0.12.x). No asdf release on PyPI has it. This hook gives the
environment's asdf the same argument with the same effect as b4b5fe2 (the block manager's
inline threshold), and changes nothing else: it wraps AsdfFile.__init__ when asdf.asdf is
first imported, so interpreter start-up imports nothing. Loaded by a .pth file jwenv writes
into the environment's site-packages (the manifest's plan lists it under site_hooks).
"""

from _jwenv_after_import import after_import


def _patch(module):
    cls = getattr(module, "AsdfFile", None)
    if cls is None or getattr(cls.__init__, "_jwenv_inline_threshold", False):
        return
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        threshold = kwargs.pop("inline_threshold", None)
        original(self, *args, **kwargs)
        if threshold is not None:
            self._blocks._inline_threshold_size = threshold

    __init__._jwenv_inline_threshold = True
    cls.__init__ = __init__


after_import("asdf.asdf", _patch)
