"""Associations and pipeline facts, made with the release's own tools.

Run by a managed environment's python (never imported by jwenv); Python 3.6+.

    python make_asn.py level2 --out ASN --science SCI [--background BG ...]
    python make_asn.py level3 --out ASN --product-name NAME CAL [CAL ...]
    python make_asn.py batch SPEC.json   # several at once: one jwst import
    python make_asn.py steps          # {"Detector1Pipeline": [step names], ...}

Prints one JSON object on its last stdout line.
"""

import argparse
import json
import os
import sys


def _dump(asn, out):
    _name, text = asn.dump(format="json")
    with open(out, "w") as fh:
        fh.write(text)
    return {"asn": out}


def level2(args):
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level2_base import DMSLevel2bBase

    asn = asn_from_list.asn_from_list([os.path.abspath(args.science)], rule=DMSLevel2bBase)
    members = asn["products"][0]["members"]
    for bg in args.background or []:
        # A background exposure is a member of each science product, not a product itself.
        members.append({"expname": os.path.abspath(bg), "exptype": "background"})
    return _dump(asn, args.out)


def level3(args):
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level3_base import DMS_Level3_Base

    asn = asn_from_list.asn_from_list([os.path.abspath(f) for f in args.files],
                                      rule=DMS_Level3_Base, product_name=args.product_name)
    return _dump(asn, args.out)


def batch(args):
    """SPEC: [{"level": 2, "out", "science", "background": [...]},
              {"level": 3, "out", "product_name", "files": [...]}, ...]"""
    with open(args.spec) as fh:
        specs = json.load(fh)
    written = []
    for spec in specs:
        ns = argparse.Namespace(out=spec["out"], science=spec.get("science"),
                                background=spec.get("background"),
                                product_name=spec.get("product_name"), files=spec.get("files"))
        written.append((level2 if spec["level"] == 2 else level3)(ns)["asn"])
    return {"asn": written}


def steps(_args):
    import jwst.pipeline as pipelines

    out = {}
    for name in ("Detector1Pipeline", "Image2Pipeline", "Image3Pipeline", "Spec2Pipeline",
                 "Spec3Pipeline"):
        cls = getattr(pipelines, name, None)
        if cls is not None:
            out[name] = sorted(getattr(cls, "step_defs", {}))
    return out


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    p2 = sub.add_parser("level2")
    p2.add_argument("--out", required=True)
    p2.add_argument("--science", required=True)
    p2.add_argument("--background", action="append")
    p3 = sub.add_parser("level3")
    p3.add_argument("--out", required=True)
    p3.add_argument("--product-name", required=True)
    p3.add_argument("files", nargs="+")
    pb = sub.add_parser("batch")
    pb.add_argument("spec")
    sub.add_parser("steps")
    args = parser.parse_args()
    result = {"level2": level2, "level3": level3, "batch": batch, "steps": steps}[args.cmd](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
