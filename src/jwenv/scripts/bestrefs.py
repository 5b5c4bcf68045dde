"""Which reference files change between two CRDS contexts, with the release's own crds.

Run by a managed environment's python (never imported by jwenv); Python 3.6+.

    python bestrefs.py --new jwst_9001.pmap [--old jwst_9000.pmap] FILE...

For each product (any level the release's datamodels open: uncal, rate, cal, i2d...),
its CRDS parameters are taken the way the pipeline takes them (the model's
``get_crds_parameters()``; a flattened tree in releases that lack it), and crds's own
``getrecommendations`` (what ``getreferences`` computes, without fetching files) gives
the best reference of every type the contexts' instrument mapping (imap) defines, under
the old context (``--old``, else the product's own CRDS_CTX) and the new one. Types that
resolve to no file under either context (N/A, no match) are left out: they select
nothing either way. Nothing is downloaded: the contexts' mappings must be in the cache
(CRDS_PATH; offline, CRDS_SERVER_URL is serverless).

Prints one JSON object on its last stdout line:

    {"jwst_version", "crds_version", "crds_path", "new_context", "old_context" (or null),
     "contexts": {context: null, or why it cannot be used ("is not in the local ...")},
     "files": [{"file", "instrument", "old_context", "new_context",
                "types": {reftype: {"old", "new", "changed"}}, "note" (if any)}
               or {"file", "error"}, ...]}

A reference is a file name, "N/A" (not applicable) or "NOT FOUND <why>" (crds's words).
Exit status 1 if any file or context has an error, 0 otherwise.
"""

import argparse
import json
import os
import sys
import warnings

CONTEXT_KEY = "meta.ref_file.crds.context_used"  # the CRDS_CTX keyword in the datamodels


def one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def open_model(path):
    try:  # releases >= 1.9
        from stdatamodels.jwst import datamodels as dm
    except ImportError:  # releases <= 1.8
        from jwst import datamodels as dm
    return dm.open(path)


def _parameters(model):
    if hasattr(model, "get_crds_parameters"):
        return dict(model.get_crds_parameters())
    # releases <= 0.16: stpipe's crds_client flattened the tree itself
    flat = model.to_flat_dict(include_arrays=False)
    return {key: value for key, value in flat.items()
            if isinstance(value, (str, int, float, complex, bool))}


def product_parameters(path):
    """(CRDS parameters, the context the product was made with or None, a note), the
    parameters as the pipeline computes them: `get_crds_parameters()`, else stpipe's
    older flattening.

    A product whose ASDF tree this release cannot read (written by a newer release: its
    WCS tags, say) is read from its primary header alone, which holds every keyword
    reference selection uses; the note says so."""
    note = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with open_model(path) as model:
                params = _parameters(model)
        except Exception as exc:
            if not path.lower().endswith((".fits", ".fits.gz")):
                raise
            from astropy.io import fits

            try:
                header = fits.getheader(path, 0)
            except Exception:
                raise exc from None
            with open_model(fits.HDUList([fits.PrimaryHDU(header=header)])) as model:
                params = _parameters(model)
            note = ("parameters from the primary header only: this release cannot open the "
                    "product ({})".format(one_line(exc)))
    used = params.get(CONTEXT_KEY)
    if not used and path.lower().endswith((".fits", ".fits.gz")):
        from astropy.io import fits

        used = fits.getheader(path, 0).get("CRDS_CTX")
    used = str(used).strip() if used else None
    return params, used or None, note


def crds_modules():
    import crds

    try:
        from crds.core import config, rmap
    except ImportError:  # crds < 7.2
        from crds import config, rmap
    return crds, config, rmap


class Contexts:
    """Loaded contexts, and why a context cannot be used (one line each)."""

    def __init__(self):
        self.crds, self.config, self.rmap = crds_modules()
        self.loaded = {}
        self.errors = {}

    def load(self, name):
        if name in self.loaded or name in self.errors:
            return self.loaded.get(name)
        try:
            where = self.config.locate_mapping(name)
        except Exception as exc:
            self.errors[name] = "is not a CRDS context: " + one_line(exc)
            return None
        if not os.path.exists(where):
            root = os.environ.get("CRDS_PATH", "")
            shown = os.path.relpath(where, root) if root and where.startswith(root) else where
            self.errors[name] = "is not in the local CRDS cache {} (no {})".format(
                root or "(CRDS_PATH unset)", shown)
            return None
        try:
            self.loaded[name] = self.rmap.get_cached_mapping(name)
        except Exception as exc:
            self.errors[name] = "cannot be loaded by CRDS: " + one_line(exc)
        return self.loaded.get(name)

    def reftypes(self, name, instrument):
        """Every type `name`'s imap for `instrument` defines."""
        imap = self.loaded[name].get_imap(instrument.lower())
        return set(imap.selections.keys())


def normalise(value):
    """A crds result: a file name, "N/A", or "NOT FOUND <why>" as crds says it."""
    value = " ".join(str(value).split())
    if value.upper().startswith("NOT FOUND"):
        why = value[len("NOT FOUND"):].strip()
        return "N/A" if why.upper() in ("N/A", "NA") else "NOT FOUND " + why
    if value.upper() == "N/A":
        return "N/A"
    return os.path.basename(value)  # getreferences gives paths; recommendations names


def is_file(value):
    return value != "N/A" and not value.upper().startswith("NOT FOUND")


def recommend(contexts, params, reftypes, context):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = contexts.crds.getrecommendations(params, reftypes=sorted(reftypes),
                                                 context=context, observatory="jwst")
    out = {}
    for kind in reftypes:
        if kind in found:
            out[kind] = normalise(found[kind])
        else:
            out[kind] = "NOT FOUND not in the answer"
    return out


def compare_file(contexts, path, old, new):
    params, used, note = product_parameters(path)
    old = old or used
    if not old:
        return {"file": path, "error": "no CRDS_CTX in the product: give the old context"}
    for name in (old, new):
        if contexts.load(name) is None:
            return {"file": path, "error": "CRDS context {} {}".format(
                name, contexts.errors[name])}
    instrument = str(params.get("meta.instrument.name") or "").strip()
    if not instrument:
        return {"file": path, "error": "no instrument name (INSTRUME) in the product"}
    kinds = set()
    for name in (old, new):
        try:
            kinds |= contexts.reftypes(name, instrument)
        except Exception as exc:
            return {"file": path, "error": "CRDS context {} has no rules for {}: {}".format(
                name, instrument, one_line(exc))}
    kinds.discard("all")  # a spec placeholder, not a reference type
    before = recommend(contexts, params, kinds, old)
    after = recommend(contexts, params, kinds, new)
    types = {}
    for kind in sorted(kinds):
        a, b = before[kind], after[kind]
        if is_file(a) or is_file(b):
            types[kind] = {"old": a, "new": b, "changed": a != b}
    out = {"file": path, "instrument": instrument.upper(), "old_context": old,
           "new_context": new, "types": types}
    if note:
        out["note"] = note
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", required=True, help="the context to compare with")
    parser.add_argument("--old", help="the context compared against (default: each "
                                      "product's own CRDS_CTX)")
    parser.add_argument("files", nargs="+", help="JWST products")
    args = parser.parse_args(argv)

    import logging

    logging.captureWarnings(True)
    contexts = Contexts()
    files = []
    for path in args.files:
        path = os.path.abspath(path)
        try:
            files.append(compare_file(contexts, path, args.old, args.new))
        except Exception as exc:
            files.append({"file": path, "error": one_line(exc)})
    for name in (args.new, args.old):
        if name:
            contexts.load(name)
    try:
        import jwst

        jwst_version = jwst.__version__
    except Exception:
        jwst_version = None
    result = {
        "jwst_version": jwst_version,
        "crds_version": getattr(contexts.crds, "__version__", None),
        "crds_path": os.environ.get("CRDS_PATH"),
        "new_context": args.new,
        "old_context": args.old,
        "contexts": dict({name: None for name in contexts.loaded}, **contexts.errors),
        "files": files,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 1 if contexts.errors or any("error" in f for f in files) else 0


if __name__ == "__main__":
    sys.exit(main())
