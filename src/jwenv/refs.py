"""Which reference files would change for some products under another CRDS context.

    report = refs.changes(env, [Path("x_cal.fits"), ...], new="jwst_9001.pmap")
    report.summary()    # 'flat changes for 5 of 10 products; nothing else changes'
    report.to_dict()    # for --json

Each product is compared between the context it was made with (its CRDS_CTX keyword,
or `old` for all of them) and `new`. jwenv selects no reference itself: the release's
own crds does, inside the environment (``scripts/bestrefs.py``: the product's CRDS
parameters as the pipeline takes them, crds's ``getrecommendations`` under each
context), offline against the local CRDS cache, which must hold both contexts'
mappings (the user's CRDS_PATH, or a hand-made `crds.LocalCache`). Nothing is
downloaded and nothing is run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jwenv import crds
from jwenv.envs import Env
from jwenv.errors import BadInput, JwenvError


@dataclass(frozen=True)
class RefChange:
    """One reference type of one product: its best reference under each context (a file
    name, "N/A", or "NOT FOUND <why>" in crds's words)."""

    reftype: str
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "changed": self.changed}


@dataclass(frozen=True)
class ProductRefs:
    """One product's references under both contexts (types that select no file under
    either are left out), or the one-line reason it could not be checked."""

    path: Path
    old_context: str
    new_context: str
    refs: dict[str, RefChange] = field(default_factory=dict)
    error: str = ""
    note: str = ""

    @property
    def changed(self) -> list[str]:
        return sorted(t for t, r in self.refs.items() if r.changed)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": str(self.path), "old_context": self.old_context,
            "new_context": self.new_context, "changed": self.changed,
            "types": {t: r.to_dict() for t, r in sorted(self.refs.items())}}
        if self.error:
            out["error"] = self.error
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class RefsReport:
    env: str
    jwst_version: str
    crds_version: str
    crds_path: str
    new_context: str
    old_context: str | None  # None: each product's own CRDS_CTX
    products: list[ProductRefs]

    @property
    def failed(self) -> list[ProductRefs]:
        return [p for p in self.products if p.error]

    def changed_types(self) -> dict[str, list[Path]]:
        """Reference type -> the products whose reference of that type changes (types
        in order of how many products they touch, then by name)."""
        found: dict[str, list[Path]] = {}
        for p in self.products:
            for t in p.changed:
                found.setdefault(t, []).append(p.path)
        return dict(sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    def summary(self) -> str:
        """One line, e.g. 'flat changes for 4 of 10 products; nothing else changes'."""
        total = len(self.products)
        noun = "product" if total == 1 else "products"
        failed = self.failed
        if failed and len(failed) == total:
            return (f"none of the {total} {noun} could be checked: "
                    f"{failed[0].path.name}: {failed[0].error}")
        changes = self.changed_types()
        if changes:
            parts = [f"{t} changes for {len(paths)} of {total} {noun}"
                     for t, paths in changes.items()]
            line = "; ".join(parts) + "; nothing else changes"
        else:
            line = ("no reference file changes for the product" if total == 1 else
                    f"no reference file changes for any of the {total} {noun}")
        if failed:
            line += (f" ({len(failed)} of {total} could not be checked, e.g. "
                     f"{failed[0].path.name}: {failed[0].error})")
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "jwst_version": self.jwst_version,
            "crds_version": self.crds_version, "crds_path": self.crds_path,
            "new_context": self.new_context, "old_context": self.old_context,
            "summary": self.summary(),
            "changed_types": {t: [str(p) for p in paths]
                              for t, paths in self.changed_types().items()},
            "products": [p.to_dict() for p in self.products],
        }


# -- inputs -------------------------------------------------------------------------------
def check_inputs(files: list[Path], *, new: str,
                 old: str | None = None) -> tuple[str, str | None, dict[Path, str | None]]:
    """Validate before anything runs: (new context, old context, product -> its CRDS_CTX).

    Every file must be a JWST FITS product; without `old`, each must record the context
    it was made with (CRDS_CTX). Contexts must be names like jwst_1464.pmap (or 1464).
    Raises a one-line BadInput otherwise.
    """
    from astropy.io import fits  # not on `jwenv run`'s path

    new = crds.validate_context(new)
    old = crds.validate_context(old) if old else None
    if not files:
        raise BadInput("no products given: name JWST FITS products (*_uncal, *_rate, *_cal, "
                       "*_i2d.fits ...)")
    recorded: dict[Path, str | None] = {}
    for given in files:
        path = Path(os.path.abspath(given))
        if path in recorded:
            continue
        if not path.is_file():
            raise BadInput(f"no such file: {given}")
        try:
            header = fits.getheader(path, 0)
        except (OSError, ValueError):
            raise BadInput(f"{path.name} is not a FITS file") from None
        telescope = str(header.get("TELESCOP", "")).strip()
        if telescope.upper() != "JWST":
            raise BadInput(f"{path.name} is not a JWST product "
                           f"(TELESCOP={telescope or 'missing'})")
        value = str(header.get("CRDS_CTX", "") or "").strip()
        if not value:
            if old is None:
                raise BadInput(f"{path.name} has no CRDS_CTX (the context it was made with): "
                               "give the context to compare against (--against)")
            recorded[path] = None
            continue
        try:
            recorded[path] = crds.validate_context(value)
        except BadInput:
            raise BadInput(f"{path.name}: its CRDS_CTX {value!r} is not a CRDS context name "
                           "like jwst_1464.pmap") from None
    return new, old, recorded


# -- the comparison ------------------------------------------------------------------------
def changes(env: Env, files: list[Path], *, new: str, old: str | None = None,
            cache: crds.LocalCache | None = None) -> RefsReport:
    """Best references of each product under `old` (default: its own CRDS_CTX) and `new`,
    computed by `env`'s crds, offline, in the local CRDS cache (`cache`, else the CRDS_PATH
    a run of `env` gets). A context that is not in the cache is a one-line BadInput."""
    new, old, recorded = check_inputs(files, new=new, old=old)
    paths = list(recorded)
    args = ["--new", new, *(["--old", old] if old else []), *map(str, paths)]
    result = env.run_script("bestrefs", *args, what="find the best references",
                            cache=cache)
    crds_path = str(result.get("crds_path") or env.crds_settings(offline=True,
                                                                  cache=cache).path)
    bad = {name: why for name, why in (result.get("contexts") or {}).items() if why}
    if bad:
        name, why = next((n, bad[n]) for n in [new, old, *bad] if n in bad)
        users = [p for p, ctx in recorded.items() if old is None and ctx == name]
        whose = f" (CRDS_CTX of {_count(users, 'product')})" if users and name != new else ""
        raise BadInput(f"CRDS context {name}{whose} {why}")
    rows = result.get("files")
    if not isinstance(rows, list) or len(rows) != len(paths):
        raise JwenvError(f"jwst {env.manifest.jwst_version} could not find the best "
                         "references: its bestrefs script gave no result per product")
    products = [_product(path, row, new, old or recorded[path] or "")
                for path, row in zip(paths, rows, strict=True)]
    return RefsReport(env=env.name, jwst_version=str(result.get("jwst_version") or
                                                     env.manifest.jwst_version),
                      crds_version=str(result.get("crds_version") or ""),
                      crds_path=crds_path, new_context=new, old_context=old,
                      products=products)


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _product(path: Path, row: dict[str, Any], new: str, old: str) -> ProductRefs:
    if row.get("error"):
        return ProductRefs(path, old, new, error=" ".join(str(row["error"]).split()))
    refs = {t: RefChange(t, str(r["old"]), str(r["new"]))
            for t, r in (row.get("types") or {}).items()}
    return ProductRefs(path, str(row.get("old_context") or old),
                       str(row.get("new_context") or new), refs,
                       note=str(row.get("note") or ""))


# -- fetching once ---------------------------------------------------------------------------
@dataclass
class SyncReport:
    """The references some exposures need under one context, and which the cache lacks."""

    env: str
    context: str
    crds_path: str
    needed: list[str]
    missing: list[str]
    downloaded: list[str]
    errors: dict[str, str]  # product -> why its references could not be found

    @property
    def ok(self) -> bool:
        return not self.missing and not self.errors

    def summary(self) -> str:
        if self.errors:
            path, why = next(iter(self.errors.items()))
            return f"{Path(path).name}: {why}"
        if self.missing:
            return (f"{len(self.missing)} of {len(self.needed)} references for {self.context} "
                    f"are missing from {self.crds_path}: {', '.join(self.missing)}")
        got = f" ({len(self.downloaded)} downloaded)" if self.downloaded else ""
        return (f"all {len(self.needed)} references for {self.context} are in "
                f"{self.crds_path}{got}")

    def to_dict(self) -> dict[str, Any]:
        return {"env": self.env, "context": self.context, "crds_path": self.crds_path,
                "needed": self.needed, "missing": self.missing,
                "downloaded": self.downloaded, "errors": self.errors, "ok": self.ok,
                "summary": self.summary()}


def sync(env: Env, files: list[Path], *, context: str | None = None,
         offline: bool | None = None, cache: crds.LocalCache | None = None) -> SyncReport:
    """Fetch once, before anything runs, the references `files` need under `context`
    (default: the env's pin), with the release's own crds (scripts/crds_sync.py); offline,
    only check the cache. Workers then read the cache with CRDS_READONLY_CACHE=1."""
    settings = env.crds_settings(context=context, offline=offline, cache=cache)
    if not settings.context:
        raise BadInput(f"{env.name} pins no CRDS context: give --context")
    for f in files:
        if not Path(f).is_file():
            raise BadInput(f"no such file: {f}")
    args = ["--context", settings.context, *(["--download"] if not settings.offline else []),
            *(str(Path(f).absolute()) for f in files)]
    job = env.script("crds_sync", *args, cache=cache, offline=settings.offline)
    result = env.finish(job, "find the references to sync")
    if result.get("error") and not result.get("needed"):
        raise BadInput(str(result["error"]))
    errors = {f["file"]: f["error"] for f in result.get("files", []) if "error" in f}
    if result.get("error"):
        errors["(download)"] = str(result["error"])
    return SyncReport(env.name, settings.context, str(result.get("crds_path") or
                                                      settings.path),
                      list(result.get("needed", [])), list(result.get("missing", [])),
                      list(result.get("downloaded", [])), errors)
