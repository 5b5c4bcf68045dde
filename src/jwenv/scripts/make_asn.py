"""Associations and pipeline facts, made with the release's own tools.

Run by a managed environment's python (never imported by jwenv); Python 3.6+.

    python make_asn.py generate --out DIR FILE...   # a pool from the headers, then the
                                                    # release's own rules (asn_generate)
    python make_asn.py steps          # {"Detector1Pipeline": [step names], ...}

Prints one JSON object on its last stdout line.

`generate` does what STScI operations do: one pool row per exposure (every primary
header keyword, plus the DMS pool columns that are not header keywords), written
pipe-separated, then `asn_generate --all-candidates` (candidate associations only,
as the archive has them; no discovered a3NNN products). jwst's own mkpool is not used:
its TARGETID is a running counter (it splits observations and mixes targets) and its
FILENAME keeps the path and level given. FILENAME is always the exposure's _uncal
base name, whatever level was given: the rules derive member names from it.
Background exposures (BKGDTARG=T) get a background candidate per science observation
of their instrument (APT's candidates are not in the headers), where the release's
image2 rules take background members (jwst >= 1.9.4).
"""

import argparse
import datetime
import json
import os
import re
import sys
import warnings

# Columns of DMS pools that are not primary-header keywords (values as DMS writes them).
NON_HEADER = {"pntgtype": "science", "exposerr": "null", "dms_note": "null", "is_psf": "f",
              "is_imprt": "f", "mostilno": "1", "dithptin": "1"}
TA_EXP_TYPES = re.compile(r"_(tacq|taconfirm|confirm|msata|wata|taslit|verify)$", re.I)
PRODUCT_NAME = re.compile(r"^(?P<base>jw.+?)_(?P<suffix>[a-z0-9]+)\.fits(\.gz)?$", re.I)


def uncal_name(path):
    """jw..._nrcb1_cal.fits -> jw..._nrcb1_uncal.fits (the name DMS pools carry)."""
    m = PRODUCT_NAME.match(os.path.basename(path))
    if not m:
        raise SystemExit("not an exposure product name: {}".format(os.path.basename(path)))
    return m.group("base") + "_uncal.fits"


def _pool_value(v):
    """Header value -> pool text (DMS style: booleans T/F, no delimiter inside)."""
    if isinstance(v, bool):
        return "T" if v else "F"
    return str(v).strip().replace("|", "/").replace('"', "'") or "null"


def _is_background(row):
    return row.get("bkgdtarg", "F").upper() in ("T", "TRUE")


def _target_numbers(rows):
    """(TARGPROP, TARGNAME) -> a number, by first exposure start (APT's numbers are not
    in the headers)."""
    first = {}
    for r in rows:
        key = (r.get("targprop", "null").lower(), r.get("targname", "null").lower())
        start = r.get("expstart") or r.get("date-obs", "") + "T" + r.get("time-obs", "")
        first[key] = min(first.get(key, start), start)
    order = sorted(first, key=lambda k: (first[k], k))
    return {k: str(i + 1) for i, k in enumerate(order)}


def _image2_takes_backgrounds():
    import inspect

    try:
        from jwst.associations.lib import rules_level2b
        return "Constraint_Background" in inspect.getsource(rules_level2b.Asn_Lv2Image)
    except Exception:  # the newer rules have it
        return True


def pool_rows(files):
    from astropy.io import fits

    rows = []
    for path in files:
        header = fits.getheader(path, 0)
        row = {k.lower(): _pool_value(v) for k, v in header.items()
               if k not in ("", "COMMENT", "HISTORY")}
        row["filename"] = uncal_name(path)
        rows.append(row)
    numbers = _target_numbers(rows)
    backgrounds = _image2_takes_backgrounds()
    bkg_instruments = {r.get("instrume") for r in rows if _is_background(r)}
    for r in rows:
        for col, default in NON_HEADER.items():
            if r.get(col, "null") in ("null", ""):
                r[col] = default
        r["obs_num"] = r.get("observtn", "null")
        r["targetid"] = numbers[(r.get("targprop", "null").lower(),
                                 r.get("targname", "null").lower())]
        if TA_EXP_TYPES.search(r.get("exp_type", "")):
            r["pntgtype"] = "target_acquisition"
        r["asn_candidate"] = [("o{:0>3}".format(r.get("observtn", "000")), "observation")]
    if backgrounds:
        for r in rows:
            if r.get("instrume") in bkg_instruments and not _is_background(r):
                cid = ("c1{:0>3}".format(r.get("observtn", "000")), "background")
                r["asn_candidate"].append(cid)
                for b in rows:
                    if _is_background(b) and b.get("instrume") == r.get("instrume") \
                            and cid not in b["asn_candidate"]:
                        b["asn_candidate"].append(cid)
    for r in rows:
        r["asn_candidate"] = str(r["asn_candidate"])
    return rows


def write_pool(rows, out):
    program = "{:0>5}".format(rows[0].get("program", "00000"))
    # Named after the newest exposure's start, not the clock: the name is recorded in every
    # product (ASNPOOL), and the same inputs must give the same products.
    starts = sorted(re.sub(r"[^0-9]", "", r.get("date-obs", "") + r.get("time-obs", ""))[:14]
                    for r in rows)
    stamp = starts[-1] if starts and len(starts[-1]) == 14 else \
        datetime.datetime.utcnow().strftime("%Y%m%d%H%M%S")
    stamp = stamp[:8] + "t" + stamp[8:]
    path = os.path.join(out, "jw{}_{}_pool.csv".format(program, stamp))
    cols = sorted({k for r in rows for k in r})
    first = ["filename", "program", "obs_num", "visit", "act_id", "exposure", "exp_type",
             "instrume", "detector", "filter", "pupil", "subarray", "targetid", "targprop",
             "targname", "bkgdtarg", "pntgtype", "asn_candidate"]
    cols = [c for c in first if c in cols] + [c for c in cols if c not in first]
    with open(path, "w") as fh:
        fh.write("|".join(c.upper() for c in cols) + "\n")
        for r in rows:
            fh.write("|".join(r.get(c, "null") for c in cols) + "\n")
    return path


def generate(args):
    out = os.path.abspath(args.out)
    if not os.path.isdir(out):
        os.makedirs(out)
    warnings.simplefilter("ignore")
    from jwst.associations.main import Main

    rows = pool_rows(args.files)
    pool = write_pool(rows, out)
    argv = [pool, "-p", out, "--all-candidates"]
    cwd = os.getcwd()
    os.chdir(out)  # some releases write where they run
    try:
        # jwst >= 1.10: Main() only configures; older: the constructor generates and saves
        gen = Main.cli(argv) if hasattr(Main, "cli") else Main(argv)
    finally:
        os.chdir(cwd)
    associations = []
    for asn in gen.associations:
        fname = asn.dump(format="json")[0]
        if not fname.endswith(".json"):
            fname += ".json"
        with open(os.path.join(out, fname)) as fh:
            data = json.load(fh)
        associations.append({
            "file": os.path.join(out, fname), "asn_type": data.get("asn_type"),
            "asn_rule": data.get("asn_rule"),
            "products": [{"name": p["name"],
                          "members": [{"expname": m["expname"], "exptype": m["exptype"]}
                                      for m in p["members"]]}
                         for p in data.get("products", [])]})
    return {"pool": pool, "associations": sorted(associations, key=lambda a: a["file"])}


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
    sub.add_parser("steps")
    pg = sub.add_parser("generate")
    pg.add_argument("--out", required=True)
    pg.add_argument("files", nargs="+")
    args = parser.parse_args()
    result = {"steps": steps, "generate": generate}[args.cmd](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
