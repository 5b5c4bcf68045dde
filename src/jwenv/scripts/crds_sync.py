"""Fetch (or, offline, check) the references some exposures need under one context.

Run by a managed environment's python (never imported by jwenv); Python 3.6+.

    python crds_sync.py --context jwst_1464.pmap [--download] FILE...

Each file's best references are found as bestrefs.py finds them (the release's own
crds, the pipeline's CRDS parameters, every type of the context's instrument mapping);
each is then looked up in the cache (CRDS_PATH). With --download, the missing ones are
fetched once, here, with crds's own API, so that workers can later run with
CRDS_READONLY_CACHE=1 (concurrent on-demand downloads have partial-file bugs:
crds#930). Offline, nothing is fetched: the missing ones are listed.

Prints one JSON object on its last stdout line:
    {"context", "crds_path", "files": [{"file", "refs": {type: name}} or {"file",
     "error"}], "needed": [names], "missing": [names], "downloaded": [names],
     "error": null or why the download failed}
"""

import argparse
import json
import os
import sys

from bestrefs import Contexts, is_file, one_line, product_parameters, recommend


def needed(contexts, path, context):
    params, _used, _note = product_parameters(path)
    instrument = str(params.get("meta.instrument.name") or "").strip()
    if not instrument:
        raise ValueError("no instrument name (INSTRUME) in the product")
    kinds = contexts.reftypes(context, instrument) - {"all"}
    return {k: v for k, v in recommend(contexts, params, kinds, context).items() if is_file(v)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", required=True)
    parser.add_argument("--download", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    contexts = Contexts()
    out = {"context": args.context, "crds_path": os.environ.get("CRDS_PATH", ""),
           "files": [], "needed": [], "missing": [], "downloaded": [], "error": None}
    if contexts.load(args.context) is None:
        out["error"] = "CRDS context {} {}".format(args.context,
                                                   contexts.errors[args.context])
        print(json.dumps(out))
        return 1
    names = set()
    for path in args.files:
        try:
            refs = needed(contexts, path, args.context)
        except Exception as exc:
            out["files"].append({"file": path, "error": one_line(exc)})
            continue
        out["files"].append({"file": path, "refs": refs})
        names |= set(refs.values())
    out["needed"] = sorted(names)
    missing = [n for n in out["needed"]
               if not os.path.exists(contexts.config.locate_file(n, "jwst"))]
    if missing and args.download:
        try:
            from crds.client import api
            api.dump_references(args.context, baserefs=missing)
            out["downloaded"] = [n for n in missing
                                 if os.path.exists(contexts.config.locate_file(n, "jwst"))]
        except Exception as exc:
            out["error"] = "could not download: " + one_line(exc)
        missing = [n for n in missing if n not in out["downloaded"]]
    out["missing"] = missing
    print(json.dumps(out))
    return 1 if missing or out["error"] or any("error" in f for f in out["files"]) else 0


if __name__ == "__main__":
    sys.exit(main())
